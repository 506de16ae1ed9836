"""The plugin contract: what a task declares so that core can train it, serve it, inspect it and give it a page.

A plugin is a package in ``tasks/`` (or an installed package in the ``rnnlab.tasks`` entry-point group) that
exposes ``TASK``, an instance of a ``Task`` subclass. Importing it must not import Streamlit: the page lives in
its own module, named by ``Task.page`` and imported only by the app.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from core import paths
from core.data import Vocab
from core.paths import WEIGHTS_ROOT, display_path
from core.runtime import IN_MEMORY, Runtime
from core.shapes import SHAPES

if TYPE_CHECKING:
    from core.serving import EnsembleWords



@dataclass
class Recipe:
    """How ``python -m core.train`` trains a task. Every variant gets the same budget."""

    metric: str  # key of evaluate()'s dict that selects the served model (on validation) and heads the card
    # another key of evaluate()'s dict that picks the best epoch and the served variant instead (None: ``metric``),
    # e.g. a mean over several ways of writing the same validation text
    select: str | None = None
    higher_is_better: bool = True  # accuracy: True; NLL: False
    epochs: int = 10  # upper bound; early stopping usually ends sooner
    batch_size: int = 64  # sequences per optimizer step
    lr: float = 1e-3  # Adam(W) learning rate
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    clip_norm: float | None = 1.0  # clip the total gradient norm to this (None: off); tames exploding gradients
    clip_value: float | None = None  # clip each gradient entry to [-v, v] (None: off)
    patience: int = 3  # epochs without validation improvement before stopping
    max_minutes: float | None = None  # wall-clock budget per variant, so "same budget" is a real bound
    variants: dict[str, dict] = field(default_factory=dict)  # name -> config overrides, all on the card
    serve: str | None = None  # variant to serve; None = the best on the validation metric
    anchors: dict[str, str] = field(default_factory=dict)  # published numbers shown beside ours, with sources
    lr_decay: float = 1.0  # multiply lr by this after every epoch (1.0: constant)
    keep_variants: bool = False  # also save every non-served variant (the page compares them live)
    # name -> changes for a bigger machine, picked with `core.train --profile NAME`: recipe fields to set, plus
    # "variants": {variant: config changes}. A GPU trains larger models for longer in the same wall time; the
    # card records the profile and the resulting recipe, so the numbers stay reproducible.
    profiles: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    """How a student reads one metric: in words, with its unit and which way is better."""

    label: str  # the words on screen, e.g. "accuracy on the negation sentences"
    unit: str = ""  # "%" (a fraction shown as a percentage), "nats per note", "BLEU points (0-100)", or "" (a count)
    better: str = "higher"  # "higher" | "lower" | "" (a count or a setting: no direction)


def _m(label: str, unit: str = "", better: str = "higher") -> Metric:
    return Metric(label, unit, better)


# Metrics and chart series most tasks share: a task's own Display names the rest (and may reword these).
COMMON_METRICS: dict[str, Metric] = {
    "accuracy": _m("accuracy", "%"),
    "loss": _m("loss (cross-entropy)", "nats", "lower"),
    "nll": _m("negative log-likelihood", "nats", "lower"),
    "f1": _m("F1 (harmonic mean of precision and recall)", "%"),
    "macro_f1": _m("F1 averaged over the classes", "%"),
    "precision": _m("precision", "%"),
    "recall": _m("recall", "%"),
    "token_accuracy": _m("accuracy per word", "%"),
    "perplexity": _m("perplexity", "choices", "lower"),
    "examples": _m("examples scored", "", ""),
    "sentences": _m("sentences scored", "", ""),
}
# What the training history records per epoch (core.train), as the Model card's charts name it.
HISTORY_SERIES: dict[str, str] = {
    "train_loss": "training loss",
    "grad_norm": "gradient size before clipping",
    "lr": "learning rate",
    "seconds": "seconds per epoch",
    "samples_per_s": "examples per second",
}


@dataclass(frozen=True)
class Display:
    """The words a task's screens use for what its model card records (core.task.check_task holds a card to it).

    A metric or a variant the card names without a label here (or in COMMON_METRICS / the cell names) breaks the
    contract: adding one is one line, ``"f1_lower": Metric("F1 on lower-case text", "%")``."""

    metrics: dict[str, Metric] = field(default_factory=dict)  # metric key (evaluate()'s dict) -> its words
    variants: dict[str, str] = field(default_factory=dict)  # variant key (Recipe.variants, the card) -> its words
    inputs: str = ""  # what goes in, in words ("a movie review", "a 28 x 28 picture read row by row")
    terms: dict[str, str] = field(default_factory=dict)  # other ids its card's texts use -> words ("names_origin")

    def in_words(self, text: str) -> str:
        """``text`` (a card's description, a note) with every id this Display names -- metric keys, snake_case
        variant keys, ``terms`` -- replaced by its words. Pure."""
        import re

        table = {**{k: self.metric_label(k) for k in self.metrics}, **self.terms}
        table.update({k: v for k, v in self.variants.items() if "_" in k})
        for key in sorted(table, key=len, reverse=True):
            text = re.sub(rf"(?<![\w.]){re.escape(key)}(?![\w])", table[key], text)
        return text

    def metric(self, key: str) -> Metric | None:
        """The words for a metric key: the task's own, else the shared ones; None when nobody named it."""
        return self.metrics.get(key) or COMMON_METRICS.get(key)

    def metric_label(self, key: str, with_unit: bool = False) -> str:
        """A metric key as a student reads it; an unlabelled key (a broken contract) shows as it is."""
        m = self.metric(key)
        if m is None:
            return key
        unit = m.unit if with_unit and m.unit and m.unit != "%" else ""
        return f"{m.label} ({unit})" if unit else m.label

    def variant(self, key: str) -> str | None:
        """The words for a variant key: the task's own, else a cell's name when the key is one; None otherwise."""
        if key in self.variants:
            return self.variants[key]
        if key == "default":  # the one variant of a recipe that names none: the task's default config
            return "the model (default settings)"
        from core.layers import CELL_LABELS

        cell = CELL_LABELS.get(key)
        return cell.long if cell else None

    def series_label(self, key: str) -> str:
        """A training-history series ("train_loss", "val accuracy") in words."""
        if key in HISTORY_SERIES:
            return HISTORY_SERIES[key]
        if key.startswith("val "):
            return f"{self.metric_label(key[4:])} (validation)"
        return self.metric_label(key)


@dataclass(frozen=True)
class Headline:
    """A card metric that sums a task up (the README's Models table shows it), with the target its issue set.
    Its words are the task's Display label for ``key``; ``note`` adds only what the label leaves out."""

    key: str  # metric key on the card (evaluate()'s dict); a "%" metric shows as a percentage
    target: str = "--"  # the target in words, e.g. ">= 85%" ("--": none set)
    note: str = ""  # context in brackets after the label, e.g. "SST-2"; "{beam}" is the card's metric "beam"

    def label(self, display: Display, metrics: dict) -> str:
        """The metric's words, with the note (its ``{key}`` fields read from the card's ``metrics``). Pure."""
        fields = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in metrics.items()}
        note = self.note.format_map(_Missing(fields)) if self.note else ""
        words = display.metric_label(self.key)
        if not note:
            return words
        return f"{words[:-1]}; {note})" if words.endswith(")") else f"{words} ({note})"

    def scale(self, display: Display) -> int:
        """100 for a fraction shown as a percentage, else 1."""
        m = display.metric(self.key)
        return 100 if m is not None and m.unit == "%" else 1


class _Missing(dict):
    def __missing__(self, key: str) -> str:  # a note naming a metric the card lacks shows "?"
        return "?"


def card_vocabulary(card: dict) -> tuple[set[str], set[str]]:
    """(metric keys, variant keys) a card.json names: its test and validation metrics, every variant's, the served
    variant and the ensemble's members. Pure: reads the parsed JSON."""
    metrics = set(card.get("metrics") or {}) | set(card.get("val_metrics") or {})
    variants = set((card.get("comparison") or {}).keys()) | set((card.get("history") or {}).keys())
    for row in (card.get("comparison") or {}).values():
        metrics |= set((row or {}).get("test") or {}) | set((row or {}).get("val") or {})
    if card.get("metric"):
        metrics.add(card["metric"])
    if card.get("served_variant"):
        variants.add(card["served_variant"])
    variants |= set(((card.get("ensemble") or {}).get("members")) or [])
    return metrics, variants


def display_problems(display: Any, card: dict | None) -> list[str]:
    """What the task's Display leaves unnamed on its card (empty list: every metric and variant has words)."""
    if not isinstance(display, Display):
        return ["display must be a core.task.Display (the words for its metrics and variants)"]
    bad = [k for k, m in display.metrics.items() if not (isinstance(m, Metric) and m.label.strip())]
    problems = [f"display.metrics[{k!r}] must be a core.task.Metric with a label" for k in bad]
    if card is None:
        return problems
    metrics, variants = card_vocabulary(card)
    for key in sorted(k for k in metrics if display.metric(k) is None):
        problems.append(f"the card's metric {key!r} has no label: add {key!r}: Metric(\"<words>\", \"<unit>\", "
                        "\"higher\"|\"lower\") to the task's display.metrics")
    for key in sorted(k for k in variants if display.variant(k) is None):
        problems.append(f"the card's variant {key!r} has no label: add {key!r}: \"<words>\" to the task's "
                        "display.variants")
    return problems


@dataclass
class Splits:
    """A task's data: three held-apart splits plus what the model needs to be built (vocabulary, labels)."""

    train: Any
    val: Any
    test: Any
    meta: dict  # JSON-serialisable (vocab, labels, ...); written to the card and passed to build_model
    files: list[Path] = field(default_factory=list)  # the data files read; their sha256 goes on the card
    dataset: str = ""  # a one-line description of the data and split, for the card


@dataclass
class Demo:
    """A ready-made input a person can try in one click."""

    label: str
    input: Any  # what predict() takes: text, a dict of settings, an image array ...
    note: str = ""  # why this demo is interesting


class Task:
    """Subclass and fill in. Attributes first, then the methods core calls."""

    name: str = ""  # unique id: lower_snake_case; the folder under weights/ and the URL path
    title: str = ""  # shown in the navigation
    shape: str = ""  # one of core.shapes.SHAPES
    summary: str = ""  # one line: what goes in, what comes out
    config: dict = {}  # default model config: constructor arguments of build_model
    recipe: Recipe = Recipe(metric="accuracy")
    page: str = ""  # "package.module:function" rendering the page; the function takes (task)
    data_subdir: str = ""  # where the real data lives under RNNLAB_DATA_ROOT, e.g. "sentiment/sst"
    data_source: str = ""  # origin and license of the data, shown on the model card
    weights_dir: Path | None = None  # default: weights/<name>; an external package points into itself
    primary_input: str = "text"  # text | image | midi | clip | settings -- what the page asks for
    metric_notes: dict = {}  # metric key -> a caveat the model card prints under its metrics table
    ensemble_words: EnsembleWords | None = None  # how the page names the served variant and its ensemble (if any)
    display: Display = Display()  # the words for every metric and variant its card shows (check_task holds it)
    headlines: tuple[Headline, ...] = ()  # the card metrics that sum it up (README's table); () = recipe.metric
    # what predict() takes (every demo's input is one; the contract checks): str, dict, np.ndarray, a tuple of these
    input_type: type | tuple[type, ...] = str

    def __init_subclass__(cls, **kwargs):
        # Every module a subclass's build_model returns carries its run-time record (model.runtime), however it is
        # built -- training, loading, a test -- so predict and evaluate always find it there.
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("build_model")
        if own is None or getattr(own, "sets_runtime", False):
            return

        def build_model(self, config: dict, meta: dict, _build=own) -> nn.Module:
            model = _build(self, config, meta)
            if isinstance(model, nn.Module):
                model.runtime = self.runtime(meta, config)
            return model

        build_model.__doc__, build_model.__qualname__ = own.__doc__, own.__qualname__
        build_model.sets_runtime = True
        cls.build_model = build_model

    # ---- model -------------------------------------------------------------------------------------------------
    def build_model(self, config: dict, meta: dict) -> nn.Module:
        """The module for ``config`` and a card's ``meta``; core sets its ``runtime`` (``self.runtime``)."""
        raise NotImplementedError

    def runtime(self, meta: dict, config: dict) -> Runtime:
        """The run-time record (core.runtime.Runtime) of a model built from ``meta`` and ``config``: its labels (meta
        "labels", or a tagger's "tags") and its vocabularies (``self.vocab``): the input's under "vocab" (or an
        encoder-decoder's "src_vocab"), the output's under "tgt_vocab". A task that needs more overrides this."""
        def vocab(key: str) -> Vocab | None:
            return self.vocab(meta, key) if isinstance(meta.get(key), list) else None

        return Runtime(task=self.name, variant=IN_MEMORY, config=dict(config), meta=meta,
                       vocab=vocab("vocab") if "vocab" in meta else vocab("src_vocab"), target_vocab=vocab("tgt_vocab"),
                       labels=tuple(meta.get("labels") or meta.get("tags") or ()))

    def vocab(self, meta: dict, key: str = "vocab") -> Vocab:
        """The vocabulary a card's meta stores under ``key``, the standard way (core.data.Vocab.to_meta: the learnt
        tokens after the four specials). A task that stores its own form overrides this."""
        return Vocab.from_meta(meta, key)

    # ---- data --------------------------------------------------------------------------------------------------
    def load_data(self, data_dir: Path) -> Splits:
        """Read the real dataset in its real format from ``data_dir``."""
        raise NotImplementedError

    def synthetic_data(self, seed: int = 0) -> Splits:
        """A tiny dataset of the same form, made on the spot, for tests (a few dozen examples)."""
        raise NotImplementedError

    def batches(self, data: Any, batch_size: int, shuffle: bool, seed: int = 0) -> Iterable[Any]:
        """Yield batches (dicts of tensors are best: core moves them to the device)."""
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """Mean training loss on a batch (a scalar with grad)."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, data: Any) -> dict[str, float]:
        """Metrics on a split, including ``recipe.metric``. Deterministic for a given model and data."""
        raise NotImplementedError

    def class_logits(self, model: nn.Module, data: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Classifiers only: the logits (N, C) the model gives every example of a split, and the true classes (N,).
        core.calibrate fits the model's temperature on them; ``predict`` divides by that temperature
        (core.calibrate.temperature_of). Tasks that are not classifiers leave this out."""
        raise NotImplementedError

    # ---- serving -----------------------------------------------------------------------------------------------
    def demos(self) -> list[Demo]:
        raise NotImplementedError

    def predict(self, model: nn.Module, input: Any) -> dict:
        """Structured answer for one input. Raise ``BadInput`` with a clear message for input it cannot take."""
        raise NotImplementedError

    def inspect_loss(self, model: nn.Module, input: Any) -> tuple[torch.Tensor, list[str]]:
        """For the inspector: a scalar loss on this one input (target: the model's own prediction unless the input
        carries one) and a label for each step of the first recurrent layer's time axis (words, notes, rows)."""
        raise NotImplementedError

    def ensemble(self, models: list[nn.Module], weights: list[float]) -> nn.Module:
        """Optional: one module that answers with several trained variants at once (``python -m core.ensemble``
        picks the weights on validation; ``core.ensemble`` holds the shared ensemble modules). The first model is
        the served one. ``core.serving.load_served`` builds it when the card asks (through ``core.ensemble.build``,
        which gives it the served model's card, vocabularies and labels), and ``predict`` / ``evaluate`` then
        receive it as the model: they never look for an ensemble themselves. Tasks that do not ensemble leave this
        alone."""
        raise NotImplementedError(f"task {self.name!r} has no ensemble")

    # ---- helpers core provides ---------------------------------------------------------------------------------
    def batch_size_of(self, batch: Any) -> int:
        if isinstance(batch, dict):
            batch = next(v for v in batch.values() if torch.is_tensor(v))
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        return int(batch.shape[0])

    def headline_metrics(self) -> tuple[Headline, ...]:
        """The declared headlines, else the recipe's metric without a target."""
        return tuple(self.headlines) or (Headline(self.recipe.metric),)

    def weights_path(self) -> Path:
        return Path(self.weights_dir) if self.weights_dir else WEIGHTS_ROOT / self.name

    def resolve_data_dir(self, data_dir: str | Path | None = None) -> Path:
        """--data-dir, else $RNNLAB_DATA_<NAME>, else $RNNLAB_DATA_ROOT/<data_subdir> (core.paths.data_dir)."""
        return paths.data_dir(self.name, self.data_subdir, given=data_dir)

    def train_command(self) -> str:
        """The command that trains this task, as a user types it from the repository root (no host paths)."""
        if os.environ.get(paths.data_env(self.name)):
            where = "$" + paths.data_env(self.name)
        else:
            where = display_path(self.resolve_data_dir())
        return f"python -m core.train {self.name} --data-dir {where}"


class BadInput(ValueError):
    """An input the task cannot take; its message is shown to the user as it is."""


def check_task(task: Any) -> list[str]:
    """Problems with a plugin object against the contract (empty list: fine)."""
    problems = []
    if not isinstance(task, Task):
        return [f"TASK must be an instance of core.task.Task, got {type(task).__name__}"]
    for attr in ("name", "title", "summary", "page"):
        if not isinstance(getattr(task, attr, None), str) or not getattr(task, attr):
            problems.append(f"{attr!r} must be a non-empty string")
    if not (isinstance(task.name, str) and task.name.isidentifier() and task.name == task.name.lower()):
        problems.append(f"name {task.name!r} must be a lower_snake_case identifier")
    if task.shape not in SHAPES:
        problems.append(f"shape {task.shape!r} must be one of: {', '.join(SHAPES)}")
    if not isinstance(task.config, dict):
        problems.append("config must be a dict")
    if not isinstance(task.recipe, Recipe):
        problems.append("recipe must be a core.task.Recipe")
    if isinstance(task.page, str) and task.page and ":" not in task.page:
        problems.append("page must look like 'package.module:function'")
    for meth in ("build_model", "load_data", "synthetic_data", "batches", "loss", "evaluate", "demos", "predict",
                 "inspect_loss"):
        if getattr(type(task), meth, None) is getattr(Task, meth):
            problems.append(f"method {meth}() is not implemented")
    kind = task.input_type
    if not (isinstance(kind, type) or (isinstance(kind, tuple) and kind and all(isinstance(k, type) for k in kind))):
        problems.append("input_type must be a type, or a tuple of types, that predict() takes (str, dict, ...)")
    heads = getattr(task, "headlines", ())
    if not isinstance(heads, (tuple, list)) or not all(isinstance(h, Headline) for h in heads):
        problems.append("headlines must be a tuple of core.task.Headline")
    elif isinstance(task.display, Display):
        problems += [f"headline {h.key!r} has no words: add it to the task's display.metrics" for h in heads
                     if task.display.metric(h.key) is None]
    problems += display_problems(getattr(task, "display", None), _card_json(task))
    return problems


def _card_json(task: Task) -> dict | None:
    """The task's card.json parsed (None: no card yet, or one that does not parse -- core.weights reports that)."""
    import json

    try:
        path = task.weights_path() / "card.json"
        return json.loads(path.read_text()) if path.is_file() else None
    except Exception:  # noqa: BLE001 -- a broken card is the weights check's to report, not the vocabulary's
        return None
