"""Load models once per process (the server's own tuning is in core/ui/server.py).

A Streamlit server runs every session's script in its own thread of ONE process. Each task's served system
(``core.serving.Served``: the served model and its ensemble) and each kept variant is loaded once (``MODELS``: an LRU
bounded by count and by bytes, $RNNLAB_MAX_MODELS and $RNNLAB_MAX_MODEL_MB) and shared read-only by every session:
inference runs under ``torch.inference_mode`` and the inspector uses ``torch.autograd.grad``
(nothing is written into ``.grad``), so sharing is safe.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

import streamlit as st
import torch

from core.modelcard import ModelCard
from core.serving import Served, load_served
from core.ui.server import release_free_memory, settle_heap
from core.ui.widgets import md_escape
from core.weights import CARD_FILE, WEIGHTS_FILE, WeightsError, WeightsMissing, load_model, read_card, variant_file

log = logging.getLogger("rnnlab.ui")


def _stamp(folder: Path, variant: str | None) -> tuple:
    """Modification times of the card and weights file: retraining while the app runs loads the new model."""
    out = []
    for name in (CARD_FILE, variant_file(variant) if variant else WEIGHTS_FILE):
        try:
            out.append((folder / name).stat().st_mtime_ns)
        except OSError:
            out.append(None)
    return tuple(out)


def model_bytes(model: torch.nn.Module | Served) -> int:
    """Bytes of a model's parameters and buffers (each storage once: tied weights and shared members count once);
    for a Served, its model's and its ensemble's together."""
    modules = [model.model, model.ensemble] if isinstance(model, Served) else [model]
    seen, total = set(), 0
    for t in [t for m in modules if m is not None for t in list(m.parameters()) + list(m.buffers())]:
        if t.device.type == "meta":
            continue
        key = (t.untyped_storage().data_ptr(), t.device)
        if key not in seen:
            seen.add(key)
            total += t.untyped_storage().nbytes()
    return total


# How many models stay loaded, and how many MiB of weights they may hold together, per process: beyond either, the
# least recently used model is dropped (and loaded again, 10-120 ms plus its first answer, when a page asks for it).
# The default, 128 MiB, holds every served model and kept variant the app has (docs/performance.md has the figures)
# and bounds what more tasks or plugins would add. $RNNLAB_MAX_MODELS / $RNNLAB_MAX_MODEL_MB override.
MAX_MODELS = int(os.environ.get("RNNLAB_MAX_MODELS") or 0) or 24
MAX_MODEL_MB = float(os.environ.get("RNNLAB_MAX_MODEL_MB") or 0) or 128.0


class ModelCache:
    """A process-wide LRU of loaded models, bounded by count and by the bytes of their weights.

    Keyed by (task, variant, folder); each entry remembers the files' stamp, so a retrained model replaces the old
    one instead of sitting beside it. Two sessions asking for the same model at once load it once (a lock per key);
    loading one model never blocks pages using others. A model being dropped is only the cache's reference: a page
    still running with it finishes normally, and its memory goes when that page lets go."""

    def __init__(self, max_models: int = MAX_MODELS, max_mb: float = MAX_MODEL_MB):
        self.max_models, self.max_bytes = max(1, int(max_models)), int(max_mb * 2**20)
        self._items: OrderedDict[tuple, tuple[tuple, torch.nn.Module, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}
        self.evictions = 0

    def _hit(self, key: tuple, stamp: tuple) -> torch.nn.Module | None:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] != stamp:
                return None
            self._items.move_to_end(key)
            return item[1]

    def get(self, key: tuple, stamp: tuple, load) -> torch.nn.Module:
        """The model for ``key`` at ``stamp``; ``load()`` builds it on a miss (exceptions pass, nothing is kept)."""
        model = self._hit(key, stamp)
        if model is not None:
            return model
        with self._lock:
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            model = self._hit(key, stamp)  # another session loaded it while we waited
            if model is not None:
                return model
            model = load()
            size = model_bytes(model)
            with self._lock:
                self._items.pop(key, None)  # an older stamp of the same model goes now
                self._items[key] = (stamp, model, size)
                dropped = self._evict(keep=key)
        for k, size in dropped:
            log.info("evicted %s%s (%.1f MiB; %d models loaded)", k[0], f" ({k[1]})" if k[1] else "", size / 2**20,
                     len(self))
        return model

    def _evict(self, keep: tuple) -> list[tuple[tuple, int]]:
        """Drop least recently used entries (never ``keep``) until both bounds hold; called with the lock held."""
        out = []
        while len(self._items) > 1 and (len(self._items) > self.max_models or self.nbytes() > self.max_bytes):
            k = next(iter(self._items))
            if k == keep:
                self._items.move_to_end(k)
                continue
            _, _, size = self._items.pop(k)
            out.append((k, size))
            self.evictions += 1
        return out

    def nbytes(self) -> int:
        return sum(size for _, _, size in self._items.values())

    def peek(self, key: tuple) -> torch.nn.Module | None:
        """The model loaded under ``key`` (any stamp), without touching the order; None if none."""
        with self._lock:
            item = self._items.get(key)
            return item[1] if item is not None else None

    def keys(self) -> list[tuple]:
        """Loaded (task, variant, folder) keys, least recently used first."""
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


MODELS = ModelCache()


def _served_card(name: str, folder: str) -> ModelCard | None:
    """The card of the task's served system when it is loaded from the card file as it is now (a kept variant then
    shares it instead of holding a second copy of the vocabularies in its meta); else None."""
    with MODELS._lock:
        item = MODELS._items.get((name, None, folder))
    if item is None or not isinstance(item[1], Served) or item[0][0] != _stamp(Path(folder), None)[0]:
        return None
    return item[1].card


def _load(name: str, variant: str | None, folder: str, task) -> Served | torch.nn.Module:
    """The served system (``variant`` None) or one kept variant, from the files."""
    model = (load_served(task, Path(folder)) if variant is None
             else load_model(task, Path(folder), variant=variant, card=_served_card(name, folder)))
    log.info("loaded %s%s from %s", name, f" ({variant})" if variant else "", folder)
    settle_heap()
    release_free_memory(min_interval=0)  # what reading the file and building the model freed goes back at once
    return model


def _as_loaded(task, variant: str | None, folder: Path) -> str | None:
    """The cache's name for a variant: None for the served variant asked for by name (one copy, not two)."""
    if variant is not None:
        served = MODELS.peek((task.name, None, str(folder)))
        if isinstance(served, Served) and served.card.served_variant == variant:
            return None
    return variant


def _cached(task, variant: str | None, folder: Path, shown: bool = True) -> Served | torch.nn.Module:
    """The cached Served (``variant`` None, or the served variant by name) or kept variant, loading it once (with a
    spinner on the page when ``shown``; from a thread without a page, ``shown=False``)."""
    variant = _as_loaded(task, variant, folder)
    key, stamp = (task.name, variant, str(folder)), _stamp(folder, variant)

    def load():
        if not shown:
            return _load(task.name, variant, str(folder), task)
        with st.spinner("Loading the model ..."):
            return _load(task.name, variant, str(folder), task)

    return MODELS.get(key, stamp, load)


def prefetch(task, variant: str | None = None) -> bool:
    """Load a model into the shared cache ahead of need, from any thread and with nothing shown: the next
    ``get_model`` finds it there (or waits for this load instead of starting its own). False when it cannot be loaded
    now; the page that asks for it then says why, as usual."""
    try:
        _cached(task, variant, Path(task.weights_path()), shown=False)
        return True
    except Exception:  # noqa: BLE001 -- a prefetch never fails the caller: the page's own load reports it
        log.info("prefetching %s (%s) failed; the page will load it itself", task.name, variant or "served")
        return False


def weights_status(task) -> str:
    """'ready' | 'missing' -- from the files alone, without loading anything (for Home and the Plugins page)."""
    folder = Path(task.weights_path())
    return "ready" if (folder / CARD_FILE).is_file() and (folder / WEIGHTS_FILE).is_file() else "missing"


def card_only(task) -> ModelCard | None:
    """The task's card even when its model cannot be loaded (so the Model card still shows); else None."""
    try:
        return read_card(Path(task.weights_path()))
    except Exception:  # noqa: BLE001 -- no card, or an unreadable one: the page already said so
        return None


def get_served(task, *, quiet: bool = False) -> Served | None:
    """The task's served system (``core.serving.Served``: the served model, its card and ensemble), loaded once per
    process; or None.

    On None a message has already been shown (unless ``quiet``): missing weights say so with the command that
    trains them; a corrupted or mismatched file is an error naming the file and the fix. A card whose ensemble
    cannot be put together is served by its variant alone, under a warning that says so."""
    served = _loaded(task, None, quiet)
    if served is not None and served.ensemble_problem and not quiet:
        msg, _, fix = served.ensemble_problem.partition(" Fix it with: ")
        st.warning(f"**{md_escape(task.title)} is served as an ensemble, but one of its members cannot be used:** "
                   f"{md_escape(msg)}\n\nThe answers below come from the "
                   f"*{md_escape(str(served.model.runtime.variant))}* variant alone (its scores are in the Model card's "
                   "comparison, not its headline). Fix it with:", icon=":material/warning:")
        st.code(fix or task.train_command(), language="bash")
    return served


def get_model(task, variant: str | None = None, *, quiet: bool = False) -> torch.nn.Module | None:
    """One trained model of the task (eval mode, with ``.card``): the served variant (``variant`` None, or its
    name) or a kept variant (Inspect's model picker, the pages that compare variants); loaded once per process, or
    None after a message (unless ``quiet``), as ``get_served``."""
    if variant is None:
        served = get_served(task, quiet=quiet)
        return served.model if served is not None else None
    got = _loaded(task, variant, quiet)
    return got.model if isinstance(got, Served) else got


def _loaded(task, variant: str | None, quiet: bool) -> Served | torch.nn.Module | None:
    folder = Path(task.weights_path())
    try:
        return _cached(task, variant, folder)
    except WeightsError as exc:
        if not quiet:
            show_weights_error(task, exc)
        return None
    except Exception:  # noqa: BLE001 -- whatever a plugin's build_model does, the page must survive
        log.exception("loading weights for %s failed", task.name)
        if not quiet:
            st.error(f"The model for **{md_escape(task.title)}** could not be loaded. "
                     f"Retrain it with the command below; details are in the server log.")
            st.code(task.train_command(), language="bash")
        return None


def show_weights_error(task, exc: WeightsError) -> None:
    """Show a WeightsError: its message names the file; the fix command gets its own copyable block."""
    msg, _, fix = str(exc).partition(" Fix it with: ")
    fix, msg = fix or task.train_command(), md_escape(msg)
    if isinstance(exc, WeightsMissing):
        st.warning(f"**No trained weights for {md_escape(task.title)} yet.** {msg}\n\nTrain them with:",
                   icon=":material/hourglass_empty:")
    else:
        st.error(f"**The weights for {md_escape(task.title)} cannot be used.** {msg}\n\nRetrain them with:",
                 icon=":material/error:")
    st.code(fix, language="bash")


@st.cache_data(show_spinner=False, max_entries=32, ttl=3600)
def _predict_cached(task_name: str, model_id: str, in_key: str, _task, _model, _input):
    return _task.predict(_model, _input)


def predict_cached(task, model, input):
    """``task.predict(model, input)`` once per (task, weights, input): a page's heavier answers (a beam search over
    an image: ~0.25 s) are not computed again when the same page reruns for another tab or widget. Only for a
    predict that depends on nothing but its input (no sampling without a seed). Raises what predict raises."""
    from core.ui.inspector import input_key, model_key

    return _predict_cached(task.name, model_key(model), input_key(input), task, model, input)
