"""Weights I/O: a folder per model, ``model.safetensors`` + ``card.json``. Never pickle, never unpickle.

The card carries everything needed to rebuild the model (config + meta), and the sha256 of the weights file, which
loading checks before reading a byte of tensor data. Every failure is a specific WeightsError with a readable
message naming the file and the command that fixes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from core.layers import param_count
from core.task import display_path

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


def save_weights(folder: Path, model: nn.Module, card: dict, extra: dict[str, nn.Module] | None = None) -> dict:
    """Write model.safetensors and card.json (adding num_params, weights_sha256, versions). Returns the card.

    ``extra`` maps variant name -> model: saved as variant-<name>.safetensors, with its sha256 recorded under
    card["comparison"][name]["weights_sha256"] (for pages that compare variants live)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_state(model, folder / WEIGHTS_FILE)
    card = dict(card)
    for name, m in (extra or {}).items():
        _write_state(m, folder / variant_file(name))
        card.setdefault("comparison", {}).setdefault(name, {})
        card["comparison"][name].update(weights_file=variant_file(name),
                                        weights_sha256=sha256_file(folder / variant_file(name)))
    card.update(num_params=param_count(model), weights_file=WEIGHTS_FILE,
                weights_sha256=sha256_file(folder / WEIGHTS_FILE),
                weights_bytes=(folder / WEIGHTS_FILE).stat().st_size, versions=library_versions(),
                created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    (folder / CARD_FILE).write_text(json.dumps(card, indent=2, sort_keys=False, default=_json_default) + "\n")
    return card


def save_variant(folder: Path, name: str, model: nn.Module) -> dict:
    """Write one more kept variant's weights beside a card's (variant-<name>.safetensors); returns the card fields
    for its comparison row (weights_file, weights_sha256)."""
    path = Path(folder) / variant_file(name)
    _write_state(model, path)
    return {"weights_file": variant_file(name), "weights_sha256": sha256_file(path)}


def _json_default(o):
    if isinstance(o, Path):
        return str(o)
    if torch.is_tensor(o):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_card(folder: Path, fix: str = "") -> dict:
    path = Path(folder) / CARD_FILE
    hint = f" Fix it with: {fix}" if fix else ""
    if not path.is_file():
        raise WeightsMissing(f"no model card at {display_path(path)}.{hint}")
    if path.stat().st_size > MAX_CARD_BYTES:
        raise WeightsCorrupted(f"model card {display_path(path)} is implausibly large.{hint}")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsCorrupted(f"model card {display_path(path)} is not valid JSON ({exc.__class__.__name__}).{hint}") from None
    if not isinstance(card, dict) or "config" not in card:
        raise WeightsCorrupted(f"model card {display_path(path)} has no 'config'.{hint}")
    return card


def load_state(folder: Path, card: dict, fix: str = "", variant: str | None = None) -> dict[str, torch.Tensor]:
    """Checksum, then read tensors with safetensors (no code runs while loading)."""
    path = Path(folder) / (variant_file(variant) if variant else WEIGHTS_FILE)
    hint = f" Fix it with: {fix}" if fix else ""
    if not path.is_file():
        raise WeightsMissing(f"no weights file at {display_path(path)}.{hint}")
    want = card.get("comparison", {}).get(variant, {}).get("weights_sha256") if variant else card.get("weights_sha256")
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
               variant: str | None = None) -> nn.Module:
    """Build a task's model from its card and load its weights. Raises a WeightsError subclass on any fault.

    ``variant`` loads one of the other trained variants kept beside the served model (Recipe.keep_variants).
    The returned module is in eval mode and carries ``.card``, ``.config`` and ``.meta``. This is one trained
    variant; the served system with the card's ensemble is ``core.serving.load_served``."""
    folder = Path(folder or task.weights_path())
    fix = task.train_command()
    card = read_card(folder, fix)
    if variant and variant == card.get("served_variant"):
        variant = None
    config = card["config"]
    if variant:
        if variant not in card.get("comparison", {}) or "weights_file" not in card["comparison"][variant]:
            raise WeightsMissing(f"model card {display_path(folder / CARD_FILE)} keeps no weights for variant {variant!r}. "
                                 f"Fix it with: {fix}")
        config = card["comparison"][variant]["config"]
    state = load_state(folder, card, fix, variant)
    try:
        model = task.build_model(config, card.get("meta", {}))
    except Exception as exc:  # a card whose config the task cannot build from
        raise WeightsMismatch(f"model card {display_path(folder / CARD_FILE)} has a config this task cannot build "
                              f"({type(exc).__name__}: {str(exc)[:200]}). Fix it with: {fix}") from None
    load_into(model, state, folder / (variant_file(variant) if variant else WEIGHTS_FILE), fix)
    model.card, model.config, model.meta = card, config, card.get("meta", {})
    model.variant = variant or card.get("served_variant")  # which of the card's trained variants this is
    model = model.to(device).eval()
    return model


def training_command(argv: list[str] | None = None) -> str:
    """The command line that is running now, as a user would type it."""
    if argv is not None:
        import shlex

        # Absolute paths are shown as the repo-relative equivalent: the same directory, without the host's layout.
        return "python -m core.train " + shlex.join(display_path(a) if os.path.isabs(a) else a for a in argv)
    args = sys.argv[:]
    if args and args[0].endswith(("core/train.py", "core\\train.py")):
        args = ["-m", "core.train"] + args[1:]
    elif args and args[0].endswith("__main__.py"):
        args = ["-m", "core.train"] + args[1:]
    return "python " + " ".join(display_path(a) if os.path.isabs(a) else a for a in args)
