"""core.ui.load.MODELS: a process-wide LRU of loaded models, bounded by count and bytes (issue 25: neither the
number of tasks nor a session's length sets the server's memory)."""

from __future__ import annotations

import gc
import threading
import time
import weakref

import pytest
import torch

from core.runtime import IN_MEMORY, Runtime
from core.ui import load as L
from core.weights import save_weights


def linear(n: int) -> torch.nn.Module:
    return torch.nn.Linear(n, n, bias=False)  # n*n*4 bytes


def test_model_bytes_counts_each_storage_once():
    m = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 8))
    m[1].weight = m[0].weight  # tied
    assert L.model_bytes(m) == (8 * 8 + 8 + 8) * 4
    bn = torch.nn.BatchNorm1d(4)  # buffers count too
    assert L.model_bytes(bn) == (4 + 4 + 4 + 4) * 4 + 8  # weight, bias, running mean/var, num_batches_tracked


def test_least_recently_used_goes_beyond_the_count():
    cache = L.ModelCache(max_models=2, max_mb=1000)
    a = cache.get(("a", None, "/w"), (1,), lambda: linear(2))
    cache.get(("b", None, "/w"), (1,), lambda: linear(2))
    assert cache.get(("a", None, "/w"), (1,), lambda: pytest.fail("a is loaded")) is a  # a is now the most recent
    cache.get(("c", None, "/w"), (1,), lambda: linear(2))
    assert [k[0] for k in cache.keys()] == ["a", "c"] and cache.evictions == 1  # b went, not a


def test_bytes_bound_and_the_new_model_always_stays():
    mib = 512  # a 512x512 float32 matrix is exactly 1 MiB
    cache = L.ModelCache(max_models=100, max_mb=2.5)
    for name in "abc":
        cache.get((name, None, "/w"), (1,), lambda: linear(mib))
    assert [k[0] for k in cache.keys()] == ["b", "c"] and cache.nbytes() == 2 * 2**20
    cache.get(("big", None, "/w"), (1,), lambda: linear(2 * mib))  # 4 MiB alone: over the bound, yet it is served
    assert [k[0] for k in cache.keys()] == ["big"]


def test_an_evicted_model_is_freed():
    cache = L.ModelCache(max_models=1, max_mb=1000)
    ref = weakref.ref(cache.get(("a", None, "/w"), (1,), lambda: linear(64)))
    L.settle_heap()  # as after every real load: the heap is frozen; the model must still go by reference counting
    cache.get(("b", None, "/w"), (1,), lambda: linear(64))
    assert ref() is None


def test_a_new_stamp_replaces_the_old_model():
    cache = L.ModelCache(max_models=10, max_mb=1000)
    old = weakref.ref(cache.get(("a", None, "/w"), ("t1",), lambda: linear(4)))
    new = cache.get(("a", None, "/w"), ("t2",), lambda: linear(4))  # retrained while the app runs
    assert old() is None and len(cache) == 1 and cache.get(("a", None, "/w"), ("t2",), lambda: None) is new


def test_sessions_asking_at_once_load_once_and_failures_are_not_kept():
    cache = L.ModelCache()
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return linear(4)

    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get(("a", None, "/w"), (1,), slow))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(m) for m in got}) == 1

    def broken():
        raise OSError("unreadable")

    with pytest.raises(OSError):
        cache.get(("b", None, "/w"), (1,), broken)
    assert [k[0] for k in cache.keys()] == ["a"]


def _task(tmp_path, name: str):
    """A tiny real task (tests/test_ui_shell.py's) with trained-looking weights and one kept variant in its folder."""
    from test_ui_shell import make_task

    return make_task(tmp_path / name)


def test_get_model_keeps_at_most_the_bound(tmp_path, monkeypatch):
    """Through get_model, as every page loads: three models into a bound of two drops the least recently used one;
    asking for it again loads it again (same weights, new object)."""
    monkeypatch.setattr(L, "MODELS", L.ModelCache(max_models=2, max_mb=1000))
    a, b = _task(tmp_path, "a"), _task(tmp_path, "b")
    first = L.get_model(a, quiet=True)
    assert first is not None and L.get_model(a, quiet=True) is first  # loaded once
    ref = weakref.ref(first)
    L.get_model(a, "gru", quiet=True)
    L.get_model(b, quiet=True)
    assert len(L.MODELS) == 2 and L.MODELS.evictions == 1
    del first
    gc.collect()
    assert ref() is None  # nothing else in the app kept the dropped model alive
    again = L.get_model(a, quiet=True)
    assert again is not None and [k[1] for k in L.MODELS.keys()][-1] is None
    b_model = L.get_model(b, quiet=True)
    assert torch.equal(next(again.parameters()), next(L._load(a.name, None, str(a.weights_path()), a).model.parameters()))

    # retraining b while the app runs: the new files' model replaces the old one instead of sitting beside it
    time.sleep(0.01)
    save_weights(b.weights_path(), b_model, b_model.runtime.card)
    assert L.get_model(b, quiet=True) is not b_model and len(L.MODELS) == 2


def test_defaults_fit_every_model_the_app_serves():
    """The default bound holds every served model and kept variant of the installed tasks (2026-12-02: 21 weight
    files, 106 MiB), so a visit of every page never reloads one: the bound only stops what MORE would add (a tighter
    one reloads under many sessions: see core.ui.load)."""
    from core.registry import discover

    files = [f for t in discover().tasks.values() for f in sorted(t.weights_path().glob("*.safetensors"))]
    assert files, "no trained weights found"
    assert len(files) <= L.MAX_MODELS
    assert sum(f.stat().st_size for f in files) <= L.MAX_MODEL_MB * 2**20
    assert (L.MODELS.max_models, L.MODELS.max_bytes) == (L.MAX_MODELS, int(L.MAX_MODEL_MB * 2**20))


def test_the_served_variant_by_name_is_the_served_model(tmp_path, monkeypatch):
    """A page that lists every variant (video: bigru, gru, frame) asks for the served one by name too: it gets the
    model already loaded, not a second copy of the same file."""
    monkeypatch.setattr(L, "MODELS", L.ModelCache())
    task = _task(tmp_path, "a")
    served = L.get_model(task, quiet=True)
    assert served.runtime.card.served_variant == "lstm"
    assert L.get_model(task, "lstm", quiet=True) is served and len(L.MODELS) == 1
    assert L.get_model(task, "gru", quiet=True) is not served and len(L.MODELS) == 2


def test_predict_cached_answers_each_input_once():
    """core.ui.load.predict_cached: the same (task, weights, input) is predicted once; another input is new."""
    import streamlit as st

    from core.ui.load import predict_cached

    calls = []

    class Task:
        name = "count_calls"

        def predict(self, model, input):
            calls.append(input)
            return {"echo": input}

    st.cache_data.clear()
    model = torch.nn.Linear(2, 2)
    model.runtime = Runtime(task="count_calls", variant=IN_MEMORY, config={}, meta={})
    assert predict_cached(Task(), model, {"x": 1}) == {"echo": {"x": 1}}
    assert predict_cached(Task(), model, {"x": 1}) == {"echo": {"x": 1}}
    assert predict_cached(Task(), model, {"x": 2}) == {"echo": {"x": 2}}
    assert calls == [{"x": 1}, {"x": 2}]


def test_a_kept_variant_shares_the_served_models_card(tmp_path, monkeypatch):
    """A card's meta holds the task's vocabularies (NER: 0.7 MB of JSON, ~4 MiB as Python objects): a kept variant
    loaded beside the served model reads the same card file, and keeps the served model's copy instead of its own.
    After the card file changes, the variant reads the new one."""
    monkeypatch.setattr(L, "MODELS", L.ModelCache())
    task = _task(tmp_path, "a")
    served = L.get_model(task, quiet=True)
    gru = L.get_model(task, "gru", quiet=True)
    assert gru is not served and gru.runtime.variant == "gru"
    assert gru.runtime.card is served.runtime.card and gru.runtime.meta is served.runtime.meta

    time.sleep(0.01)
    card = task.weights_path() / "card.json"
    card.write_text(card.read_text())  # the same card written again (a retraining would): a new stamp
    assert L._served_card(task.name, str(task.weights_path())) is None
    again = L.get_model(task, "gru", quiet=True)
    assert again is not gru and again.runtime.card is not served.runtime.card
    assert again.runtime.card.served_variant == "lstm"

