"""The model card: what ``weights/<task>/card.json`` holds, as typed records (the schema lives here, nowhere else).

A card travels with a model's weights and answers three questions for whoever picks the weights up:

* **How do I rebuild it?** ``config`` and ``meta`` are the arguments of the task's ``build_model``; the sha256 of
  the weights file lets the loader refuse a file that changed since it was written (core/weights.py).
* **How good is it, and compared to what?** ``metrics`` (held-out test) and ``val_metrics`` of the served model;
  one ``Variant`` row per variant trained with the same budget; each variant's per-epoch ``history``; and, when
  the app answers with several variants at once, the ``Ensemble`` that ``python -m core.ensemble`` picked.
* **How was it made?** the ``Dataset`` (source, license, each file's checksum) and the ``Training`` run (command,
  device, seed, recipe), with the earlier stages it continued from.

``ModelCard.from_dict`` is strict, like the loader: a field the schema does not know, or one it needs and does not
find, is a ``CardError`` naming the field (``comparison.lstm.best_epoch``), never a silent default. Fields whose
default is ``None`` are the optional ones (an ensemble, a kept variant's weights file): absent from the file when
they do not apply. ``to_dict`` writes the fields back in their schema order, so reading and writing a card gives
the same JSON. Files are read and written by ``core.weights.read_card`` / ``write_card`` (which add the file's
name and the command that fixes it to any error); commands and paths on a card are shortened by core/paths.py.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class CardError(ValueError):
    """A card that does not fit the schema; the message names the field (core.weights adds the file and the fix)."""


# ---- the records -------------------------------------------------------------------------------------------------

@dataclass(kw_only=True)
class EpochRecord:
    """One epoch of one variant's training (core.train.fit appends one per epoch; the card's curves draw them)."""

    epoch: int  # 1, 2, ... (continued training counts on from the earlier stages' epochs)
    train_loss: float  # mean training loss over the epoch's batches
    val: dict  # every metric of task.evaluate on the validation split after the epoch
    grad_norm: float  # mean total gradient norm before clipping: exploding gradients show here first
    seconds: float  # wall time of the epoch, training and validation
    samples_per_s: float  # training throughput, for comparing devices and cells
    lr: float  # learning rate during the epoch (the recipe's lr_decay lowers it epoch by epoch)


@dataclass(kw_only=True)
class TrainedBy:
    """How a variant that joined this card from another weights folder (core.ensemble --add) was trained there."""

    command: str | None  # the command that trained it, paths shortened
    device: str | None  # cpu, cuda, mps
    profile: str | None  # the recipe profile it used ("default" without --profile)
    seed: int | None  # its random seed
    wall_seconds: float | None  # how long its training took


@dataclass(kw_only=True)
class Variant:
    """One row of the card's comparison: a variant of the task's model trained with the same data and budget."""

    config: dict  # build_model's config for this variant (the task's config with the variant's changes)
    val: dict  # validation metrics of its best epoch (the epoch whose weights were kept)
    test: dict  # held-out test metrics of those weights
    num_params: int  # trainable and frozen parameters together
    epochs: int  # epochs trained, all stages together
    best_epoch: int  # the epoch whose weights were kept (0: none beat the weights it continued from)
    train_seconds: float  # wall time of its training, all stages together
    stopped: str  # why its training ended: "epochs", "patience", "time budget", "max steps"
    weights_file: str | None = None  # variant-<name>.safetensors when its weights are kept beside the served ones
    weights_sha256: str | None = None  # that file's checksum, checked before it is loaded
    trained_by: TrainedBy | None = None  # set when it was trained in another folder and joined by core.ensemble


@dataclass(kw_only=True)
class DataFile:
    """One file the training data was read from; core.evaluate warns when today's copy differs."""

    path: str  # relative to the data directory (never the host's absolute path)
    sha256: str  # checksum of the file as trained on
    bytes: int  # its size


@dataclass(kw_only=True)
class Dataset:
    """What the model was trained on."""

    description: str  # one line: the data and its split (the task's Splits.dataset)
    source: str  # origin and license (the task's data_source)
    synthetic: bool  # trained on the task's tiny synthetic data: the metrics mean nothing
    files: list[DataFile]  # every file read, with its checksum


@dataclass(kw_only=True)
class TrainingStage:
    """One run of ``python -m core.train`` (a card continued with --init-from keeps its earlier runs too)."""

    command: str  # the command as typed, absolute paths shortened (core.paths.command_line)
    seed: int  # random seed of the run
    device: str  # cpu, cuda, cuda:0, mps
    profile: str | None = None  # the recipe profile ("default" without --profile); older cards do not say
    world_size: int  # processes under torchrun (1: a single process)
    recipe: dict  # the core.task.Recipe as trained, every field (profiles applied, command-line changes made)
    wall_seconds: float  # wall time of the whole run, every variant


@dataclass(kw_only=True)
class Training(TrainingStage):
    """The run that wrote these weights, and the earlier runs it continued from."""

    stages: list[TrainingStage] | None = None  # earlier runs (--init-from), oldest first; None: trained from scratch


@dataclass(kw_only=True)
class SweepRow:
    """One mixing tried by core.ensemble on the validation split."""

    weights: list[float]  # one per member, the served variant's first; they sum to 1
    val: dict  # validation metrics of the ensemble with these weights


@dataclass(kw_only=True)
class Ensemble:
    """Several trained variants answering together, their scores mixed with fixed weights (core/ensemble.py)."""

    members: list[str]  # variant names, the served variant first
    weights: list[float]  # mixing weight of each member, picked on validation
    metric: str  # the validation metric the weights were picked by
    selected_on: str  # the split they were picked on: "validation"
    sweep: list[SweepRow]  # every mixing tried
    val: dict  # validation metrics of the mixing picked
    test: dict  # test metrics of the mixing picked (the test split scored once)
    single_val: dict | None  # validation metrics of the served variant alone (weight 1.0), when it was tried
    command: str  # the core.ensemble command, paths shortened
    seconds: float  # wall time of the sweep
    created: str  # UTC time the ensemble was picked, ISO 8601


@dataclass(kw_only=True)
class Calibration:
    """A classifier's temperature (core/calibrate.py): its logits are divided by it before the softmax, so that
    the confidence shown matches how often such answers are right. Fitted on validation; scored on test."""

    temperature: float  # T > 0: above 1 the raw model was over-confident, below 1 under-confident
    answering: str  # what it was fitted for: "ensemble" or "served variant" (the module that answers by default)
    fit_on: str  # the split T was fitted on: "validation"
    bins: int  # confidence bins of the expected calibration error
    val_before: dict  # validation ece / nll / accuracy with T = 1
    val_after: dict  # the same with the fitted T
    test_before: dict  # held-out test ece / nll / accuracy with T = 1
    test_after: dict  # the same with the fitted T (the accuracy is unchanged: T never changes the answer)
    command: str  # the command that fitted it (core.calibrate or core.train), paths shortened
    created: str  # UTC time it was fitted, ISO 8601


@dataclass(kw_only=True)
class ModelCard:
    """Everything ``card.json`` holds (see the module docstring). The last group is filled in by
    core.weights.save_weights when the weights file is written."""

    name: str  # the task's name (its folder under weights/)
    title: str  # the task's title, as the navigation shows it
    shape: str  # the task's shape (core.shapes), e.g. "many_to_one"
    summary: str  # one line: what goes in, what comes out
    config: dict  # build_model's config of the served variant
    metrics: dict  # held-out test metrics of what answers (the served variant, or its ensemble)
    val_metrics: dict  # validation metrics of what answers
    served_variant: str  # the variant the app loads ("default" for a task without variants)
    comparison: dict[str, Variant]  # every variant trained, by name
    history: dict[str, list[EpochRecord]]  # every variant's epochs, by name
    metric: str  # the recipe's metric: selects the served variant and heads the card
    higher_is_better: bool  # direction of that metric (accuracy: True, NLL: False)
    anchors: dict[str, str]  # published numbers on similar tasks, with their sources, for scale
    meta: dict  # build_model's meta: vocabularies, labels (what the data taught the model to expect)
    dataset: Dataset  # what it was trained on
    training: Training  # how it was trained
    num_params: int = 0  # parameters of the served variant
    weights_file: str = ""  # "model.safetensors"
    weights_sha256: str = ""  # its checksum, checked before a byte of it is read
    weights_bytes: int = 0  # its size
    versions: dict[str, str] = field(default_factory=dict)  # python, torch, safetensors that wrote it
    created: str = ""  # UTC time the weights were written, ISO 8601
    ensemble: Ensemble | None = None  # set when the app answers with several variants at once
    calibration: Calibration | None = None  # a classifier's temperature, set by core.calibrate (or core.train)

    # ---- reading and writing -------------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Any) -> ModelCard:
        """A card from parsed JSON; CardError (naming the field) when it does not fit the schema."""
        return _read(cls, data, "")

    def to_dict(self) -> dict:
        """The card as JSON-ready dicts, fields in schema order, optional fields that are None left out."""
        return _write(self)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CardError(f"is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
        return cls.from_dict(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=_json_default) + "\n"

    # ---- what readers ask --------------------------------------------------------------------------------------

    def variant_weights(self) -> list[str]:
        """The variants other than the served one whose weights are kept beside it (loadable by name)."""
        return [n for n, v in self.comparison.items() if v.weights_file and n != self.served_variant]

    def all_stages(self) -> list[TrainingStage]:
        """Every training run behind these weights, oldest first, this card's own run last."""
        return [*(self.training.stages or []), self.training]


# ---- the strict reader and the writer (one generic walk over the dataclasses above) -----------------------------

_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _optional(f: dataclasses.Field) -> bool:
    """A field the file may leave out: its default is None."""
    return f.default is None


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _read(tp: Any, value: Any, where: str) -> Any:
    """``value`` (parsed JSON) checked against the type ``tp``; dataclasses are built field by field."""
    here = where or "the card"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _read(inner, value, where)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise CardError(f"{here} must be an object, not {_kind(value)}")
        fields = {f.name: f for f in dataclasses.fields(tp)}
        unknown = [k for k in value if k not in fields]
        if unknown:
            raise CardError(f"has a field the model card does not know: {_join(where, unknown[0])}")
        missing = [n for n, f in fields.items() if n not in value and not _optional(f)]
        if missing:
            raise CardError(f"has no {_join(where, missing[0])!r}")
        hints = _hints(tp)
        return tp(**{k: _read(hints[k], v, _join(where, k)) for k, v in value.items()})
    if origin is list:
        if not isinstance(value, list):
            raise CardError(f"{here} must be a list, not {_kind(value)}")
        return [_read(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise CardError(f"{here} must be an object, not {_kind(value)}")
        return {k: _read(args[1], v, _join(where, k)) for k, v in value.items()}
    ok = {str: lambda v: isinstance(v, str), bool: lambda v: isinstance(v, bool),
          int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          dict: lambda v: isinstance(v, dict), list: lambda v: isinstance(v, list)}.get(tp)
    if ok is not None and not ok(value):
        raise CardError(f"{here} must be {tp.__name__}, not {_kind(value)}")
    return value


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else str(key)


def _write(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _write(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not (_optional(f) and getattr(value, f.name) is None)}
    if isinstance(value, dict):
        return {k: _write(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_write(v) for v in value]
    return value


def _json_default(o: Any) -> Any:
    """What json cannot write on its own but a card may hold: paths, tensors and numpy scalars."""
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "tolist"):  # a tensor or an array
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")

