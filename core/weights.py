"""Weights I/O: a folder per model, ``model.safetensors`` + ``card.json``. Never pickle, never unpickle.

The card (a core.modelcard.ModelCard) carries everything needed to rebuild the model (config + meta), and the
sha256 of the weights file, which loading checks before reading a byte of tensor data. ``read_card`` and
``write_card`` are the only code that reads or writes a card file. Every failure is a specific WeightsError with a
readable message naming the file and the command that fixes it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import platform
import time
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from core.layers import param_count
from core.modelcard import CardError, ModelCard
from core.paths import display_path

WEIGHTS_FILE, CARD_FILE = "model.safetensors", "card.json"
MAX_CARD_BYTES = 20_000_000  # a card is metadata; anything larger is not ours


class WeightsError(RuntimeError):
    """Base class: the message is complete and safe to show to a user."""


class WeightsMissing(WeightsError):
    pass


class WeightsCorrupted(WeightsError):
    pass


class WeightsMismatch(WeightsError):
    pass


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def library_versions() -> dict:
    import safetensors

    return {"python": platform.python_version(), "torch": torch.__version__, "safetensors": safetensors.__version__}


def variant_file(variant: str) -> str:
    return f"variant-{variant}.safetensors"


def _write_state(model: nn.Module, path: Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt"})
    tmp.chmod(0o644)  # safetensors writes 0600; weights are meant to be read by the serving user too
    tmp.replace(path)


def save_weights(folder: Path, model: nn.Module, card: ModelCard,
                 extra: dict[str, nn.Module] | None = None) -> ModelCard:
    """Write model.safetensors and card.json; returns the card as written (num_params, weights checksum and size,
    library versions and time filled in).

    ``extra`` maps variant name -> model: saved as variant-<name>.safetensors, its file and sha256 recorded on the
    variant's comparison row (for pages that compare variants live)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_state(model, folder / WEIGHTS_FILE)
    comparison = dict(card.comparison)
    for name, m in (extra or {}).items():
        if name not in comparison:
            raise ValueError(f"variant {name!r} has no comparison row on the card to record its weights on")
        comparison[name] = dataclasses.replace(comparison[name], **save_variant(folder, name, m))
    card = dataclasses.replace(card, comparison=comparison, num_params=param_count(model), weights_file=WEIGHTS_FILE,
                               weights_sha256=sha256_file(folder / WEIGHTS_FILE),
                               weights_bytes=(folder / WEIGHTS_FILE).stat().st_size, versions=library_versions(),
                               created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    write_card(folder, card)
    return card


def save_variant(folder: Path, name: str, model: nn.Module) -> dict:
    """Write one more kept variant's weights beside a card's (variant-<name>.safetensors); returns the fields for
    its comparison row (weights_file, weights_sha256)."""
    path = Path(folder) / variant_file(name)
    _write_state(model, path)
    return {"weights_file": variant_file(name), "weights_sha256": sha256_file(path)}


def write_card(folder: Path, card: ModelCard) -> None:
    """Write ``card`` as ``folder``/card.json (atomically: a reader sees the old card or the new one)."""
    path = Path(folder) / CARD_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(card.to_json(), encoding="utf-8")
    tmp.replace(path)


def read_card(folder: Path, fix: str = "") -> ModelCard:
    """The card in ``folder``; WeightsMissing when there is none, WeightsCorrupted when it is not a card (not
    JSON, or a field the schema does not know or needs and does not find)."""
    path = Path(folder) / CARD_FILE
    hint = f" Fix it with: {fix}" if fix else ""
    if not path.is_file():
        raise WeightsMissing(f"no model card at {display_path(path)}.{hint}")
    if path.stat().st_size > MAX_CARD_BYTES:
        raise WeightsCorrupted(f"model card {display_path(path)} is implausibly large.{hint}")
    try:
        return ModelCard.from_json(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise WeightsCorrupted(f"model card {display_path(path)} is not UTF-8 text.{hint}") from None
    except CardError as exc:
        raise WeightsCorrupted(f"model card {display_path(path)} {exc}.{hint}") from None


def load_state(folder: Path, card: ModelCard, fix: str = "", variant: str | None = None) -> dict[str, torch.Tensor]:
    """Checksum, then read tensors with safetensors (no code runs while loading)."""
    path = Path(folder) / (variant_file(variant) if variant else WEIGHTS_FILE)
    hint = f" Fix it with: {fix}" if fix else ""
    if not path.is_file():
        raise WeightsMissing(f"no weights file at {display_path(path)}.{hint}")
    want = card.comparison[variant].weights_sha256 if variant else card.weights_sha256
    if want:
        got = sha256_file(path)
        if got != want:
            raise WeightsCorrupted(f"weights file {display_path(path)} does not match its card (sha256 {got[:12]}... expected "
                                   f"{str(want)[:12]}...): truncated, corrupted or replaced.{hint}")
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsCorrupted(f"weights file {display_path(path)} cannot be read: {str(exc).splitlines()[0][:200]}.{hint}") from None


def load_into(model: nn.Module, state: dict[str, torch.Tensor], path: Path, fix: str = "") -> nn.Module:
    hint = f" Fix it with: {fix}" if fix else ""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensors (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} shape mismatches (e.g. {k}: file {tuple(state[k].shape)} vs model "
                         f"{tuple(own[k].shape)})")
        raise WeightsMismatch(f"weights file {display_path(path)} does not fit the model: {'; '.join(parts)}.{hint}")
    # assign: the module keeps the tensors just read instead of copying them into its freshly initialised ones --
    # one copy of the weights in memory, not two (~70 MB less for the app's models; requires_grad stays the module's).
    model.load_state_dict(state, strict=True, assign=True)
    return model


def load_model(task, folder: Path | None = None, device: str | torch.device = "cpu",
               variant: str | None = None, card: ModelCard | None = None) -> nn.Module:
    """Build a task's model from its card and load its weights. Raises a WeightsError subclass on any fault.

    ``variant`` loads one of the other trained variants kept beside the served model (Recipe.keep_variants).
    The returned module is in eval mode and carries its run-time record ``.runtime`` (core.runtime.Runtime: the
    card, config, meta, vocabularies and labels, and ``variant``, which of the card's trained variants it is). This is
    one trained variant; the served system with the card's ensemble is ``core.serving.load_served``. ``card``: the
    folder's card already read (an ensemble's members share it: one copy of its vocabularies in memory, not one per
    member)."""
    folder = Path(folder or task.weights_path())
    fix = task.train_command()
    card = card if card is not None else read_card(folder, fix)
    if variant and variant == card.served_variant:
        variant = None
    config = card.config
    if variant:
        if variant not in card.comparison or not card.comparison[variant].weights_file:
            raise WeightsMissing(f"model card {display_path(folder / CARD_FILE)} keeps no weights for variant {variant!r}. "
                                 f"Fix it with: {fix}")
        config = card.comparison[variant].config
    state = load_state(folder, card, fix, variant)
    try:
        model = task.build_model(config, card.meta)
    except Exception as exc:  # a card whose config the task cannot build from
        raise WeightsMismatch(f"model card {display_path(folder / CARD_FILE)} has a config this task cannot build "
                              f"({str(exc)[:200] or 'its settings do not fit'}). Fix it with: {fix}") from None
    load_into(model, state, folder / (variant_file(variant) if variant else WEIGHTS_FILE), fix)
    model.runtime = task.runtime(card.meta, config).loaded(card, variant or card.served_variant)
    model = model.to(device).eval()
    return model
