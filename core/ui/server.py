"""The server process, tuned for a small shared host: torch threads, heap hand-back, page slots, background imports.

A Streamlit server runs every session's script in its own thread of ONE process, so what is tuned here is shared by
every visitor: torch gets one intra-op thread per script run (``configure_torch``: $RNNLAB_TORCH_THREADS), glibc at
most two malloc arenas, a fixed mmap threshold and a ``malloc_trim`` at most every 30 s (``release_free_memory``:
freed heap goes back to the OS instead of staying in the process), at most ``PAGE_SLOTS`` pages compute at once (``page_slot``:
$RNNLAB_PAGE_SLOTS; the others wait their turn instead of sharing two cores twenty ways), and the start-up heap is
frozen out of the garbage collector's full passes (``settle_heap``). ``core.ui.load`` loads the models; the router
(streamlit_app.py) calls these. Nothing here imports Streamlit.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import threading
import time

import torch

log = logging.getLogger("rnnlab.ui")

_CONFIGURED = False
_LOCK = threading.Lock()


def configure_torch(threads: int | None = None) -> int:
    """Give each inference one intra-op thread (once per process; later calls are no-ops).

    Our models are small: a single request gains little from many threads, while N sessions each asking torch
    for every core oversubscribe a 2-core host and everyone waits. One thread per request lets concurrent
    sessions run side by side instead. $RNNLAB_TORCH_THREADS overrides (e.g. on a big dedicated server)."""
    global _CONFIGURED
    with _LOCK:
        if _CONFIGURED:
            return torch.get_num_threads()
        n = threads or int(os.environ.get("RNNLAB_TORCH_THREADS", "1") or 1)
        torch.set_num_threads(max(1, n))
        try:  # only allowed before any inter-op work has started; harmless to skip when it has
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
        _limit_malloc_arenas()
        _fix_mmap_threshold()
        _CONFIGURED = True
        return torch.get_num_threads()


def _mallopt(param: int, value: int, env: str) -> bool:
    """glibc's ``mallopt(param, value)`` from inside the process, unless the operator set ``env`` already. False
    where there is no glibc (macOS, musl), it refuses, or the operator chose."""
    if os.environ.get(env):
        return False
    libc = _glibc()
    try:
        return bool(libc and libc.mallopt(int(param), int(value)))
    except (OSError, AttributeError):
        return False


def _limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (like MALLOC_ARENA_MAX=2, but from inside the process, so it also holds where the
    host starts the server for us). Streamlit runs every session's script in its own thread; by default glibc
    gives busy threads arenas of their own (up to 8 per core) and rarely returns their memory, so a server under many
    sessions keeps growing."""
    return _mallopt(-8, arenas, "MALLOC_ARENA_MAX")  # M_ARENA_MAX = -8 in glibc's malloc.h


MMAP_THRESHOLD = 1 << 20  # bytes: a block this big or bigger gets its own mapping, handed back when freed


def _fix_mmap_threshold(threshold: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold (like MALLOC_MMAP_THRESHOLD_=1048576, from inside the process). By default glibc
    raises it up to 32 MiB each time a big block is freed, after which an activation, an image or a chart's data of
    a few MiB is carved from the heap, and what is freed around the blocks that stay is kept by the process. Fixed at
    1 MiB, every bigger block is mapped on its own and goes back to the system when freed: the server after every
    page held ~55 MiB less (bench/memory.py)."""
    return _mallopt(-3, threshold, "MALLOC_MMAP_THRESHOLD_")  # M_MMAP_THRESHOLD = -3 in glibc's malloc.h


@functools.lru_cache(maxsize=1)
def _glibc():
    """The C library through ctypes where it is glibc (has malloc_trim and mallopt); else None."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


_LAST_TRIM = [0.0]  # time.monotonic() of the last malloc_trim


def release_free_memory(min_interval: float = 30.0) -> bool:
    """Give the heap's free pages back to the operating system (glibc's malloc_trim), at most once per
    ``min_interval`` seconds per process; True when it ran.

    Every rerun allocates and frees (activations, charts, messages); glibc keeps what was freed for reuse, so the
    resident size of a long-running server drifts up to its busiest moment and stays there. The router calls this
    after each page; it costs a few ms, at most twice a minute. A no-op without glibc."""
    now = time.monotonic()
    if now - _LAST_TRIM[0] < min_interval:  # every other rerun: no lock, no call
        return False
    with _LOCK:
        if now - _LAST_TRIM[0] < min_interval:
            return False
        _LAST_TRIM[0] = now
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (a container's share), not the host's
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class ServerBusy(Exception):
    """No page slot came free in time: every slot has been busy for the whole wait."""


# At most this many page scripts run their page at once; the rest wait their turn (first come, first served).
# Scripts are Python holding one GIL and each inference uses one torch thread, so running twenty at once is not
# faster than a few at a time -- but twenty models' activations in memory at once grow the peak heap, which glibc
# keeps: by ~16% when 20 sessions click together (bench/latency.py). A few slots per
# core keep a long job (the Gradient Lab's live training, ~10 s) from blocking everyone. $RNNLAB_PAGE_SLOTS overrides.
PAGE_SLOTS = int(os.environ.get("RNNLAB_PAGE_SLOTS") or 0) or max(4, 2 * _cores())
_SLOTS = threading.BoundedSemaphore(PAGE_SLOTS)


@contextlib.contextmanager
def page_slot(timeout: float = 120.0):
    """Hold one of PAGE_SLOTS while the page runs; ServerBusy when none came free within ``timeout`` seconds."""
    if not _SLOTS.acquire(timeout=timeout):
        raise ServerBusy(f"all {PAGE_SLOTS} page slots stayed busy for {timeout:.0f} s")
    try:
        yield
    finally:
        _SLOTS.release()


_PRELOADED = threading.Event()


def preload_in_background(modules: tuple[str, ...] = ()) -> bool:
    """Import heavy modules that only some pages need in a daemon thread, once per process; False if already begun
    (or nothing to import). A page calls it when it opens, for what its next step will import (Your data:
    torch._dynamo, which the optimizer pulls in at the first training step); code that needs a module sooner simply
    waits for the import in progress (Python's import lock)."""
    if not modules:
        return False
    if _PRELOADED.is_set():  # every rerun after the first: no lock taken
        return False
    with _LOCK:
        if _PRELOADED.is_set():
            return False
        _PRELOADED.set()

    def run():
        import importlib

        for name in modules:
            t0 = time.perf_counter()
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 -- the page that needs it will say what is wrong
                log.warning("preloading %s failed", name, exc_info=True)
            else:  # bench/latency.py reads this line: a page opened before it waited for the import
                log.info("preloaded %s in %.2f s", name, time.perf_counter() - t0)
        settle_heap()

    threading.Thread(target=run, name="rnnlab-preload", daemon=True).start()
    return True


def settle_heap() -> None:
    """Collect once, then move everything alive into the garbage collector's permanent generation (gc.freeze).

    Called after start-up work and after each model load -- rare, per process. Modules, models and caches live as
    long as the server does; without this every full collection walks all of them again (~200 ms here with every
    model loaded), and Streamlit runs one after every script run (runner.postScriptGC): the server paid that on each
    rerun of every session, holding the GIL. Frozen objects are still freed by reference counting; only cycles that
    were already garbage at this moment stay (a one-off, small: the young generations are collected first)."""
    gc.collect(1)  # the young generations only: the full walk is what this avoids (~0.2 s with torch imported)
    gc.freeze()
