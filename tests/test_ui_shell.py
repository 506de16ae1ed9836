"""AppTest tests for the app shell: the router, the Plugins page and the shared task page (core.ui.page).

A tiny fake many-to-one task (count the letter 'a' > count of 'b'?) is defined here, its weights saved to a tmp
dir with core.weights.save_weights, so every test runs in a second without real data or trained models.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from streamlit.testing.v1 import AppTest

from core.modelcard import ModelCard
from core.registry import PluginError, Registry, discover
from core.shapes import ManyToOne
from core.task import BadInput, Demo, Recipe, Splits, Task
from core.weights import save_weights

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "streamlit_app.py"
VOCAB = "_abc "  # id 0 = padding


class FakeTask(Task):
    name = "fake_ab"
    title = "More a than b? (fake)"
    shape = "many_to_one"
    summary = "Letters in, 'more a than b?' out: a test double."
    config = {"cell": "lstm", "hidden_size": 8, "embed": 6}
    recipe = Recipe(metric="accuracy", epochs=1, clip_norm=1.0,
                    anchors={"chance": "50% accuracy (two balanced classes)"})
    page = "core.ui.page:task_page"  # task_page(task) with the default Try-it tab
    data_source = "generated in the test (public domain)"

    def build_model(self, config, meta):
        return ManyToOne(config["embed"], config["hidden_size"], 2, cell=config["cell"], vocab_size=len(VOCAB))

    def synthetic_data(self, seed=0):
        g = torch.Generator().manual_seed(seed)
        x = torch.randint(1, len(VOCAB), (32, 10), generator=g)
        y = ((x == 1).sum(1) > (x == 2).sum(1)).long()
        d = {"x": x, "y": y}
        return Splits(d, d, d, meta={"vocab": VOCAB})

    def load_data(self, data_dir):
        return self.synthetic_data()

    def batches(self, data, batch_size, shuffle, seed=0):
        yield data

    def loss(self, model, batch):
        return F.cross_entropy(model(batch["x"]), batch["y"])

    def evaluate(self, model, data):
        with torch.no_grad():
            return {"accuracy": float((model(data["x"]).argmax(-1) == data["y"]).float().mean())}

    def demos(self):
        return [Demo("mostly a", "aab a", note="three a, one b"), Demo("mostly b", "bbab")]

    def encode(self, text):
        ids = [VOCAB.index(c) for c in str(text)[:200] if c in VOCAB[1:]]
        if not ids:
            raise BadInput("Type some of the letters a, b and c.")
        return torch.tensor([ids])  # (1, T)

    def predict(self, model, input):
        x = self.encode(input)
        with torch.inference_mode():
            p = torch.softmax(model(x), -1)[0]
        return {"more_a": float(p[1])}

    def inspect_loss(self, model, input):
        x = self.encode(input)
        logits = model(x)
        return F.cross_entropy(logits, logits.argmax(-1).detach()), [VOCAB[i] for i in x[0].tolist()]


def make_task(weights_dir: Path, train: bool = True, variants: bool = True) -> FakeTask:
    task = FakeTask()
    task.weights_dir = weights_dir
    if train:
        torch.manual_seed(0)
        model = task.build_model(task.config, {"vocab": VOCAB})
        gru_cfg = dict(task.config, cell="gru")
        extra = {"gru": task.build_model(gru_cfg, {})} if variants else {}
        hist = [{"epoch": e, "train_loss": 0.7 - 0.1 * e, "val": {"accuracy": 0.5 + 0.1 * e}, "grad_norm": 1.0,
                 "seconds": 1.0, "samples_per_s": 100.0, "lr": 1e-3} for e in range(3)]
        run = {"num_params": 1, "epochs": 3, "best_epoch": 2, "train_seconds": 3.0, "stopped": "epochs"}
        card = {"name": task.name, "title": task.title, "shape": task.shape, "summary": task.summary,
                "config": task.config, "meta": {"vocab": VOCAB}, "metric": "accuracy", "higher_is_better": True,
                "metrics": {"accuracy": 0.75}, "val_metrics": {"accuracy": 0.8}, "served_variant": "lstm",
                "anchors": task.recipe.anchors,
                "comparison": {"lstm": {"config": task.config, "val": {"accuracy": 0.8}, "test": {"accuracy": 0.75},
                                        **run},
                               "gru": {"config": gru_cfg, "val": {"accuracy": 0.7}, "test": {"accuracy": 0.7}, **run}},
                "history": {"lstm": hist, "gru": hist},
                "dataset": {"description": "synthetic letters", "source": task.data_source, "synthetic": True,
                            "files": []},
                "training": {"command": "python -m core.train fake_ab --synthetic", "seed": 0, "device": "cpu",
                             "world_size": 1, "recipe": {}, "wall_seconds": 3.0},
                # what save_weights fills in (a card read from a file must hold every field)
                "num_params": 0, "weights_file": "", "weights_sha256": "", "weights_bytes": 0, "versions": {},
                "created": ""}
        save_weights(weights_dir, model, ModelCard.from_dict(card), extra)
    return task


def page_script(task, mode="default"):
    """An AppTest script: draw the shared task page for ``task`` (its source runs on its own in AppTest)."""
    from core.ui.page import task_page

    if mode == "bad_input":
        def try_it(model):
            task.predict(model, "")  # raises BadInput
            return "never"
        task_page(task, try_it=try_it)
    elif mode == "crash":
        def try_it(model):
            raise RuntimeError("boom")
        task_page(task, try_it=try_it)
    else:
        task_page(task)


def run_page(task, mode="default", tab: str | None = None) -> AppTest:
    at = AppTest.from_function(page_script, args=(task, mode), default_timeout=30)
    if tab:
        at.session_state["tab"] = tab
    return at.run()


def texts(at: AppTest) -> str:
    parts = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "code", "title", "subheader"):
        parts += [str(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


@pytest.fixture(autouse=True)
def _fresh_caches():
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    yield


# ---- task page ----------------------------------------------------------------------------------------------------

def test_task_page_renders_and_predicts(tmp_path):
    at = run_page(make_task(tmp_path))
    assert not at.exception
    assert [t.label for t in at.tabs] == ["Try it", "Inspect", "Model card"]
    assert at.title[0].value == FakeTask.title
    assert len(at.json) == 1  # the default Try-it tab shows predict()'s output for the first demo
    at.button[1].click().run()  # the second demo
    assert not at.exception
    assert at.text_input(key="fake_ab_q").value == "bbab"


def test_text_parameter_belongs_to_its_page(tmp_path):
    """?q= was shared by every page, so a review typed on one page became the input of the next (issue 22): the
    text box's key and query parameter carry the task's name; an old ?q= link still opens on its page, once."""
    task = make_task(tmp_path)
    at = AppTest.from_function(page_script, args=(task, "default"), default_timeout=30)
    at.query_params["fake_ab_q"] = "abc abc"
    at.run()
    assert not at.exception
    assert [w.key for w in at.text_input] == ["fake_ab_q"]
    assert at.text_input(key="fake_ab_q").value == "abc abc"
    at.text_input(key="fake_ab_q").set_value("cab").run()
    assert at.query_params["fake_ab_q"] == "cab" and "q" not in at.query_params
    old = AppTest.from_function(page_script, args=(task, "default"), default_timeout=30)
    old.query_params["q"] = "bab"
    old.run()
    assert old.text_input(key="fake_ab_q").value == "bab"
    assert "q" not in old.query_params and old.query_params["fake_ab_q"] == "bab"


def test_link_to_this_view_carries_the_page_parameters_only(tmp_path):
    task = make_task(tmp_path)
    at = AppTest.from_function(page_script, args=(task, "default"), default_timeout=30)
    at.query_params.update({"fake_ab_q": "abc", "tab": "Model card", "other_page_q": "leak"})
    at.run()
    assert not at.exception
    links = [c.value for c in at.code if "fake_ab_q=" in c.value]
    assert len(links) == 1, [c.value for c in at.code]
    assert "tab=Model+card" in links[0] and "leak" not in links[0]


def test_a_very_long_text_stays_out_of_the_link(tmp_path):
    from core.ui.widgets import URL_TEXT_MAX

    task = make_task(tmp_path)
    at = run_page(task)
    long = "ab " * (URL_TEXT_MAX // 3 + 10)
    at.text_input(key="fake_ab_q").set_value(long[:2000]).run()
    assert not at.exception
    assert "fake_ab_q" not in at.query_params
    assert "too long for a link" in texts(at)
    assert not any("fake_ab_q=" in c.value for c in at.code)  # nor in the link to this view


def test_missing_weights_shows_train_command(tmp_path):
    task = make_task(tmp_path / "nothing", train=False)
    at = run_page(task)
    assert not at.exception
    assert any("No trained weights" in w.value for w in at.warning)
    assert any(c.value == task.train_command() for c in at.code)
    assert "mostly a" in texts(at)  # demos are still listed
    at = run_page(task, tab="Model card")  # the card draws what it can without weights
    assert not at.exception
    assert len(at.get("graphviz_chart")) == 1


def test_corrupted_weights_is_a_clear_error(tmp_path):
    task = make_task(tmp_path)
    f = tmp_path / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    at = run_page(task)
    assert not at.exception
    msg = " ".join(e.value for e in at.error)
    assert "cannot be used" in msg and "model.safetensors" in msg
    assert any(c.value == task.train_command() for c in at.code)
    at = run_page(task, tab="Model card")  # the card itself is still readable and shown
    assert not at.exception
    assert "could not be loaded" in texts(at) and "50% accuracy" in texts(at)


def test_bad_input_is_a_warning_not_an_exception(tmp_path):
    at = run_page(make_task(tmp_path), mode="bad_input")
    assert not at.exception
    assert any("letters a, b and c" in w.value for w in at.warning)


def test_crashing_try_it_is_a_friendly_error(tmp_path):
    at = run_page(make_task(tmp_path), mode="crash")
    assert not at.exception
    assert any("Something went wrong" in e.value for e in at.error)
    assert "boom" not in texts(at)  # no exception text or traceback reaches the user


def test_cached_inspection_keeps_clip_tables_not_gradients(tmp_path):
    """What st.cache_data holds per input (shared by every session) is small: the clipping tables for every
    threshold the slider offers, never the model-sized gradients; the tables equal clip_report on the gradients."""
    from core.inspect import clip_report, inspect_model
    from core.ui.inspector import CLIP_OPTIONS, run_inspection
    from core.ui.load import get_model

    task = make_task(tmp_path)
    model = get_model(task, quiet=True)
    text = task.demos()[0].input
    ins = run_inspection(task, model, text)
    assert ins.grads == {} and sorted(ins.clip) == sorted(CLIP_OPTIONS)
    full = inspect_model(model, lambda m: task.inspect_loss(m, text))
    for t in (CLIP_OPTIONS[0], 1.0, CLIP_OPTIONS[-1]):
        want_df, want = clip_report(full.grads, t, dict(zip(full.params.name, full.params.lesson_name)))
        got_df, got = ins.clip[t]
        # the same sums, grouped by the thresholds asked together: equal to the last bits of a double
        assert got == pytest.approx(want, rel=1e-12) and got["entries_clamped"] == want["entries_clamped"]
        pd.testing.assert_frame_equal(got_df, want_df, rtol=1e-12)


def test_inspect_tab_renders(tmp_path):
    at = run_page(make_task(tmp_path), tab="Inspect")
    assert not at.exception, [e.value for e in at.exception]
    body = texts(at)
    for section in ("Gradient through time", "Which inputs mattered", "Gradient per parameter", "Gradient clipping",
                    "The recurrent matrix", "Gate activations"):
        assert section in body
    assert not at.error
    # the clipping slider moves and the page redraws from the cached inspection
    at.select_slider(key="insp_fake_ab_clip").set_value(0.001).run()
    assert not at.exception and not at.error
    assert "multiplies every gradient" in texts(at)
    # a kept variant (the GRU) can be inspected on the same input
    picker = at.segmented_control(key="fake_ab_insp_variant")
    assert list(picker.options) == ["LSTM", "GRU"]  # the cells by name, never their ids
    picker.set_value("gru").run()
    assert not at.exception and not at.error
    assert "update gate" in texts(at)


def test_inspect_expanders_draw_their_charts_only_when_open(tmp_path):
    """"All singular values" and "Hidden state h_t, unit by unit" are computed only while open (core.ui.widgets.
    lazy_expander): closed, the tab draws neither chart; opened, both are drawn and valid."""
    import json

    import altair as alt
    from altair.utils.schemapi import validate_jsonschema

    def charts_drawn(at):
        return [json.loads(el.proto.spec) for el in at.get("vega_lite_chart")]

    task = make_task(tmp_path)
    at = run_page(task, tab="Inspect")
    assert not at.exception, [e.value for e in at.exception]
    closed = charts_drawn(at)
    assert [e.label for e in at.expander if e.label in ("All singular values", "Hidden state h_t, unit by unit")] == [
        "All singular values", "Hidden state h_t, unit by unit"]
    assert "Singular values bound" not in texts(at) and "Each row is one hidden unit" not in texts(at)
    at.session_state["insp_fake_ab_sv_open"] = True
    at.session_state["insp_fake_ab_hid_open"] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    opened = charts_drawn(at)
    assert len(opened) == len(closed) + 2
    assert "Singular values bound" in texts(at) and "Each row is one hidden unit" in texts(at)
    for spec in opened:
        validate_jsonschema(spec, alt.Chart._rootschema)


def test_the_open_tab_stays_on_its_page(tmp_path):
    """Model card left open on one task page does not open on the next one; the same page, or a link naming the
    tab, keeps it."""
    task = make_task(tmp_path)

    def arrive(owner, url_tab=None):
        at = AppTest.from_function(page_script, args=(task, "default"), default_timeout=30)
        at.session_state["tab"] = "Model card"
        at.session_state["_rnnlab_tab_page"] = owner
        if url_tab:
            at.query_params["tab"] = url_tab
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at.session_state["tab"]

    assert arrive("another_task") == "Try it"
    assert arrive(task.name) == "Model card"
    assert arrive("another_task", url_tab="Inspect") == "Inspect"


def test_inspect_tab_reads_in_a_minute(tmp_path):
    """Issue 22: the useful views first, a table of contents, the raw parameter rows once, behind one expander,
    and no builders' words ("the seed's name")."""
    at = run_page(make_task(tmp_path), tab="Inspect")
    assert not at.exception
    heads = [h.value for h in at.subheader]
    order = [next(i for i, h in enumerate(heads) if name in h) for name in
             ("Gradient through time", "Which inputs mattered", "Gate activations", "Gradient per parameter")]
    assert order == sorted(order)
    assert any("#inspect-saliency" in m.value and "#inspect-parameters" in m.value for m in at.markdown)
    tables = [d for d in at.dataframe if "parameter" in d.value.columns and "entries" in d.value.columns]
    assert len(tables) == 1 and any("weight tensors" in e.label for e in at.expander)
    assert "seed" not in texts(at).lower()
    assert "Backpropagation through time (BPTT) carries it backwards" not in texts(at)  # said once, in the glossary


def test_model_card_tab_renders(tmp_path):
    at = run_page(make_task(tmp_path), tab="Model card")
    assert not at.exception
    body = texts(at)
    assert "synthetic" in body and "50% accuracy" in body
    assert len(at.dataframe) >= 2  # metrics + comparison
    assert len(at.get("graphviz_chart")) == 1


def test_model_card_shows_earlier_training_stages(tmp_path):
    """A card written by --init-from names the earlier run it continued, and the training time adds the stages."""
    import json

    task = make_task(tmp_path)
    card_path = tmp_path / "card.json"
    card = json.loads(card_path.read_text())
    card["training"]["stages"] = [{"command": "python -m core.train fake_ab --device cuda --profile gpu",
                                   "seed": 0, "device": "cuda", "profile": "gpu", "world_size": 1, "recipe": {},
                                   "wall_seconds": 332.0}]
    card_path.write_text(json.dumps(card))
    at = run_page(task, tab="Model card")
    assert not at.exception
    code = "\n".join(str(c.value) for c in at.code)
    assert "--profile gpu" in code and "# cuda, 5.5 min" in code
    assert "It continued from weights trained earlier" in texts(at)
    assert "5.6 min" in [m.value for m in at.metric]  # 332 s + 3 s
    card["training"]["stages"] = [{"command": "python -m core.train fake_ab", "wall_seconds": "lots"}, "junk"]
    card_path.write_text(json.dumps(card))
    at = run_page(task, tab="Model card")  # a card that does not fit the schema: a clear error, never a crash
    assert not at.exception
    shown = " ".join(e.value for e in at.error)
    assert "card.json" in shown and "training.stages" in shown and "seed" in shown  # the field it lacks


def test_token_html_escapes():
    from core.ui.widgets import token_html

    out = token_html(["<script>alert(1)</script>", "a&b", " "], [0.1, -0.5, float("nan")])
    assert "<script>" not in out and "&lt;script&gt;" in out and "a&amp;b" in out


# ---- router and Plugins page ------------------------------------------------------------------------------------

def fake_registry(task) -> Registry:
    reg = Registry()
    reg.add(task, "tests/fake")
    broken = FakeTask()
    broken.name, broken.page = "broken_page", "no_such_module.page:render"
    reg.add(broken, "tests/broken_page")
    reg.errors.append(PluginError("tasks/kaputt", "failed to import: ImportError: nope", "Traceback ...\nImportError"))
    reg.add(FakeTask(), "entry point fake_ab = other:TASK")  # duplicate name
    return reg


@pytest.fixture
def router(tmp_path, monkeypatch):
    import core.registry

    reg = fake_registry(make_task(tmp_path))
    monkeypatch.setattr(core.registry, "discover", lambda *a, **k: reg)
    return reg


def goto(at: AppTest, url_path: str) -> AppTest:
    from streamlit.util import calc_hash

    at._page_hash = calc_hash(url_path)  # st.Page's script hash is the hash of its url_path
    return at.run()


def test_router_home_and_warning(router):
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception
    side = " ".join(w.value for w in at.sidebar.warning)
    assert "2 plugin problems" in side and "duplicate" in side
    glossary = [e for e in at.sidebar.expander if "Glossary" in e.label]  # plain words, on every page
    assert len(glossary) == 1
    words = " ".join(m.value for m in glossary[0].markdown)
    for term in ("NLL", "nats", "log-prob", "</s>", "<unk>", "CRF", "B-", "spectral radius", "chrono", "ensemble",
                 "BPTT", "saliency"):
        assert term in words, term


def test_router_plugins_page(router):
    at = goto(AppTest.from_file(str(APP), default_timeout=30).run(), "plugins")
    assert not at.exception
    assert at.title[0].value == "Plugins"
    errs = " ".join(e.value for e in at.error)
    assert "kaputt" in errs and "duplicate task name" in errs
    assert len(at.expander) >= 1


def test_router_task_pages_and_broken_page(router):
    at = goto(AppTest.from_file(str(APP), default_timeout=30).run(), "fake_ab")
    assert not at.exception
    assert at.title[0].value == FakeTask.title
    at = goto(AppTest.from_file(str(APP), default_timeout=30).run(), "broken_page")
    assert not at.exception
    assert any("could not be loaded" in e.value for e in at.error)


def test_router_pages_wait_for_a_slot_and_say_when_busy(router, monkeypatch):
    """Every page runs inside core.ui.server.page_slot; when none comes free the page says so (no traceback) and the
    sidebar still works."""
    import threading

    import core.ui.server as server

    monkeypatch.setattr(server, "_SLOTS", threading.BoundedSemaphore(1))
    held = []
    real = server.page_slot

    def tracking_slot(timeout: float = 120.0):
        held.append(server._SLOTS._value)  # slots left when the page asks
        return real(timeout=0.2)

    monkeypatch.setattr(server, "page_slot", tracking_slot)
    at = goto(AppTest.from_file(str(APP), default_timeout=30).run(), "fake_ab")
    assert not at.exception and at.title[0].value == FakeTask.title
    assert held and held[-1] == 1 and server._SLOTS._value == 1, "the slot is given back after the page ran"
    assert server._SLOTS.acquire(timeout=1)  # another session's long page holds the only slot
    try:
        at = goto(AppTest.from_file(str(APP), default_timeout=30).run(), "fake_ab")
    finally:
        server._SLOTS.release()
    assert not at.exception
    assert any("very busy" in w.value for w in at.warning), [w.value for w in at.warning]
    assert not at.title, "the page itself did not run"
    assert "2 plugin problems" in " ".join(w.value for w in at.sidebar.warning)


def test_page_slot_limits_and_releases(monkeypatch):
    import threading

    import core.ui.server as server

    monkeypatch.setattr(server, "_SLOTS", threading.BoundedSemaphore(2))
    with server.page_slot(), server.page_slot():
        with pytest.raises(server.ServerBusy):
            with server.page_slot(timeout=0.05):
                pass
    with pytest.raises(ValueError), server.page_slot():  # a page that raises gives its slot back too
        raise ValueError("boom")
    with server.page_slot(timeout=0.05), server.page_slot(timeout=0.05):
        pass
    assert server.PAGE_SLOTS >= 4


def test_settle_heap_freezes_the_long_lived_heap():
    import gc

    from core.ui.server import settle_heap

    before = gc.get_freeze_count()
    try:
        settle_heap()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_release_free_memory_returns_freed_heap_pages(monkeypatch):
    """Freed memory that glibc keeps (a freed block below a live one) goes back to the OS; at most once per
    interval."""
    import core.ui.server as server

    if server._glibc() is None:
        pytest.skip("not glibc")
    monkeypatch.setattr(server, "_LAST_TRIM", [0.0])
    blocks = [bytearray(64 * 1024) for _ in range(3000)]  # ~190 MB through malloc (below the mmap threshold)
    for b in blocks:
        b[::4096] = b"x" * len(b[::4096])  # touch every page: resident
    keep = blocks[-1]  # the top of the heap stays in use, so freeing the rest cannot simply shrink the heap
    del blocks
    before = _rss_mb()
    assert server.release_free_memory(min_interval=30) is True
    after = _rss_mb()
    assert before - after > 100, (before, after)
    assert server.release_free_memory(min_interval=30) is False  # within the interval: nothing done
    del keep


def test_plugins_page_alone(tmp_path):
    def script(reg):
        from core.ui.pages.plugins import render

        render(reg)

    at = AppTest.from_function(script, args=(fake_registry(make_task(tmp_path)),), default_timeout=30).run()
    assert not at.exception
    df = at.dataframe[0].value
    assert set(df.task) == {"fake_ab", "broken_page"}
    assert set(df.weights) == {"ready", "missing"}


@pytest.mark.parametrize("setting, env, operators", [
    ("_limit_malloc_arenas", "MALLOC_ARENA_MAX", "4"),  # memory stays flat under many session threads
    ("_fix_mmap_threshold", "MALLOC_MMAP_THRESHOLD_", "65536"),  # big blocks go back to the system when freed
])
def test_malloc_settings_from_inside_the_server(monkeypatch, setting, env, operators):
    """The server sets glibc's malloc arenas and mmap threshold from inside; an operator's own variable wins."""
    import platform

    import core.ui.server as server

    monkeypatch.setenv(env, operators)
    assert getattr(server, setting)() is False
    monkeypatch.delenv(env)
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert getattr(server, setting)() is True


def test_preload_in_background_runs_once_and_survives_a_bad_module(monkeypatch):
    import sys
    import threading

    import core.ui.server as server

    monkeypatch.setattr(server, "_PRELOADED", threading.Event())
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    assert server.preload_in_background(("no_such_module_rnnlab", "colorsys")) is True
    for t in threading.enumerate():
        if t.name == "rnnlab-preload":
            t.join(30)
    assert "colorsys" in sys.modules, "the module after a failing one is still imported"
    assert server.preload_in_background(("colorsys",)) is False, "once per process"


def test_recorded_commands_hide_the_host_layout():
    """A card's command may hold absolute paths of the host that trained it (a scratch --out folder, a data
    folder): the Model card shows them without the host's directories."""
    from core.paths import shown_command as _shown_command

    shown = _shown_command("python -m core.train ner --data-dir /srv/data/ner/wikiann_en --out /tmp/runs/ner")
    assert "/tmp/" not in shown and "/srv/" not in shown
    args = shown.split()
    assert args[args.index("--out") + 1].endswith("/ner") and args[args.index("--data-dir") + 1].endswith("wikiann_en")
    short = _shown_command("python -m core.train ner --out /tmp/w")  # a short absolute path, too
    assert "/tmp/" not in short and short.endswith("/w") and not short.split()[-1].startswith("/")
    inside = str(Path(__file__).resolve().parent.parent / "weights" / "ner")
    assert _shown_command(f"python -m core.train ner --out {inside}").endswith("--out weights/ner")


def test_card_commands_hide_far_paths_in_every_form():
    """Recorded commands as the Model card shows them: absolute, already-shortened (.../a/b/c) and NAME=PATH
    arguments (core.ensemble --add) keep only the folder's name."""
    from core.paths import shown_command as _shown_command

    far = "/srv/host-a/someone/scratch/runs/cap_small"  # two or more levels away from wherever the repository lies
    assert _shown_command(f"python -m core.train x --out {far}") == "python -m core.train x --out .../cap_small"
    assert _shown_command("python -m core.train x --out .../tmp/runs/cap_small") == \
        "python -m core.train x --out .../cap_small"
    assert _shown_command(f"python -m core.ensemble x --add small={far}") == \
        "python -m core.ensemble x --add small=.../cap_small"
    assert _shown_command("python -m core.ensemble x --add small=.../tmp/runs/cap_small --grid 0.5") == \
        "python -m core.ensemble x --add small=.../cap_small --grid 0.5"
    assert _shown_command("python -m core.train x --data-dir ../shared/data/x") == \
        "python -m core.train x --data-dir ../shared/data/x"


def test_image_source_and_sample_live_in_the_url(tmp_path):
    """core.ui.widgets.image_input: the picture's source and the chosen sample are in the link; a label that
    names no sample, or a source that is not offered, falls back to the first sample."""
    class Pictures(FakeTask):
        name = "fake_pics"

        def demos(self):
            return [Demo("red square", b"red"), Demo("blue disc", b"blue")]

    def script(task):
        import streamlit as st

        from core.ui.widgets import image_input

        st.write(f"input={image_input(task, task.name, 'drawings', 'cartoons', 'upload one')!r}")

    def page(query):
        at = AppTest.from_function(script, args=(Pictures(),), default_timeout=30)
        at.query_params.update(query)
        return at.run()

    at = page({"fake_pics_sample": "blue disc"})
    assert not at.exception and "input=b'blue'" in texts(at)
    at.button[0].click().run()  # "red square"
    assert at.query_params["fake_pics_sample"] == "red square" and "input=b'red'" in texts(at)
    at = page({"fake_pics_source": "upload"})
    assert at.radio(key="fake_pics_source").value == "upload"
    at = page({"fake_pics_source": "<b>x</b>", "fake_pics_sample": "no such picture"})
    assert not at.exception and at.radio(key="fake_pics_source").value == "drawings" and "input=b'red'" in texts(at)


def test_the_inspected_variant_is_in_the_link(tmp_path):
    task = make_task(tmp_path)
    at = AppTest.from_function(page_script, args=(task, "default"), default_timeout=30)
    # the link names the variant as the picker shows it (Streamlit writes the formatted option into the URL)
    at.query_params.update({"tab": "Inspect", "fake_ab_insp_variant": "GRU"})
    at.run()
    assert not at.exception and at.segmented_control(key="fake_ab_insp_variant").value == "gru"
    assert "update gate" in texts(at)
    assert any("fake_ab_insp_variant=GRU" in c.value for c in at.code)


def test_chart_specs_are_valid(tmp_path):
    """The app skips Vega-Lite schema validation on every rerun (core.ui.charts.skip_spec_validation); here every
    chart the Try it, Inspect and Model card tabs draw is validated against the schema instead."""

    import altair as alt

    from core.ui import charts

    assert getattr(alt.Chart.to_dict, "_rnnlab_fast", False)
    bad = alt.Chart(charts.pd.DataFrame({"a": [1]})).mark_bar().encode(x="a:Q")
    bad.mark = "not-a-mark"
    bad.to_dict()  # the app's default: not validated
    with pytest.raises(Exception):  # noqa: B017 -- jsonschema's ValidationError, whatever its module
        bad.to_dict(validate=True)
    seen = _valid_charts_on_every_tab(lambda tab: run_page(make_task(tmp_path), tab=tab))
    assert seen >= 5, f"only {seen} charts drawn"


def _valid_charts_on_every_tab(run) -> int:
    """``run(tab)`` -> the AppTest of a task page run on that tab; on the Try it, Inspect and Model card tabs: no
    exception and every chart valid Vega-Lite. Returns how many charts were validated."""
    import json

    import altair as alt
    from altair.utils.schemapi import validate_jsonschema

    seen = 0
    for tab in ("Try it", "Inspect", "Model card"):
        at = run(tab)
        assert not at.exception, [e.value for e in at.exception]
        for el in at.get("vega_lite_chart"):
            validate_jsonschema(json.loads(el.proto.spec), alt.Chart._rootschema)
            seen += 1
    return seen


def test_model_card_draws_every_training_curve(tmp_path):
    """The Model card's training curves come from one cached spec per card: every series a chart, every variant a
    line, the data sent once; opening the tab again draws the same charts."""
    import json

    task = make_task(tmp_path)
    for _ in range(2):
        at = run_page(task, tab="Model card")
        assert not at.exception, [e.value for e in at.exception]
        specs = [json.loads(el.proto.spec) for el in at.get("vega_lite_chart")]
        curves = [s for s in specs if "concat" in s]
        assert len(curves) == 1, f"{len(curves)} training-curve charts"
        titles = [c["title"] for c in curves[0]["concat"]]
        assert len(titles) == 3 and all(t and "_" not in t for t in titles), titles
        el = next(el for el in at.get("vega_lite_chart") if "concat" in json.loads(el.proto.spec))
        assert [d.name for d in el.proto.datasets] == ["curves"]


def test_long_training_histories_are_thinned_evenly():
    from core.ui import charts

    assert charts.thin(list(range(10))) == list(range(10))
    kept = charts.thin(list(range(1000)), limit=150)
    assert len(kept) <= 150 and kept[0] == 0 and kept[-1] == 999
    gaps = {b - a for a, b in zip(kept, kept[1:])}
    assert max(gaps) - min(gaps) <= 1, "evenly spaced"
    hist = {"long": [{"epoch": e, "train_loss": 1.0 / (e + 1), "val": {"accuracy": e / 1000}, "grad_norm": 1.0}
                     for e in range(1000)], "short": [{"epoch": 0, "train_loss": 1.0, "val": {"accuracy": 0.1}}]}
    spec = charts.training_curves(hist, ["train_loss", "val accuracy"])
    rows = spec["datasets"]["curves"]
    long_loss = [r["epoch"] for r in rows if r["variant"] == "long" and r["series"] == "train_loss"]
    assert len(long_loss) <= charts.CURVE_POINTS and long_loss[0] == 0 and long_loss[-1] == 999
    assert any(r["variant"] == "short" for r in rows), "a short history is kept whole"
    assert spec["concat"][0]["encoding"]["y"]["scale"] == {"type": "log"}


def test_reused_schema_lookup_gives_the_same_specs(monkeypatch):
    """core.ui.charts.reuse_schema_lookup keeps Altair's schema lookup table instead of rebuilding it on every
    from_dict: the charts the inspector draws (a click selection, conditions, a log-axis datum, layers, heatmaps)
    come out exactly as with Altair's own from_dict."""
    import numpy as np
    from altair.utils import schemapi

    from core.ui import charts

    fast = schemapi.SchemaBase.__dict__["from_dict"].__func__
    assert getattr(fast, "_rnnlab_fast", False)
    df = charts.pd.DataFrame({"step": [0, 1, 2, 3], "grad_norm": [1e-3, 1e-2, 0.5, 2.0], "h_norm": [1.0] * 4,
                              "series": ["layer 0"] * 4, "label": list("abcd"), "distance": [3, 2, 1, 0]})
    bars = charts.pd.DataFrame({"name": ["w", "b"], "v": [0.5, 3.0]})
    grid = charts.pd.DataFrame({"t": [0, 0, 1, 1], "g": ["f", "i", "f", "i"], "m": [0.1, 0.9, 0.4, 0.6]})
    builders = [
        lambda: charts.line_chart(df, "step", "grad_norm", "series", log=True, select="pick"),
        lambda: charts.bar_chart(bars, "name", "v", horizontal=True, log=True, rule=1.0),
        lambda: charts.heatmap(grid, "t", "g", "m", select="cell", domain=(0.0, 1.0)),
        lambda: charts.hidden_heatmap(np.arange(12.0).reshape(4, 3) - 5, list("abcd")),
    ]
    with_table = [b().to_dict() for b in builders]
    monkeypatch.setattr(schemapi.SchemaBase, "from_dict", classmethod(fast._rnnlab_original))
    assert [b().to_dict() for b in builders] == with_table


def test_chart_field_types_are_the_ones_altair_infers():
    """The builders give every field its type (core.ui.charts.vl_type) instead of letting Altair infer it from the
    data on every rerun: the same type Altair would infer, for every kind of column the pages draw."""
    from altair.utils import parse_shorthand

    from core.ui import charts

    df = charts.pd.DataFrame({"i": [1, 2], "f": [0.5, 1.5], "s": ["a", "b"], "b": [True, False],
                              "o": charts.pd.Series(["x", None], dtype=object), "n": [1e-3, float("nan")],
                              "u": charts.np.array([1, 2], dtype=charts.np.uint8),
                              "t": charts.pd.to_datetime(["2026-01-01", "2026-01-02"]),
                              "c": charts.pd.Categorical(["a", "b"])})
    for col in df.columns:
        assert charts.vl_type(df[col]) == parse_shorthand(col, data=df)["type"], col


def _task_page(task):
    import importlib

    mod, _, fn = task.page.partition(":")
    getattr(importlib.import_module(mod), fn)(task)


@pytest.mark.parametrize("name", sorted(discover().tasks))
def test_every_chart_of_every_task_page_is_valid_vega_lite(name):
    """The app builds its charts without Altair's validation (above); every chart every registered task draws on
    its Try it, Inspect and Model card tabs (first demo, the trained weights) is valid Vega-Lite all the same."""
    task = discover().tasks[name]

    def run(tab: str) -> AppTest:
        at = AppTest.from_function(_task_page, args=(task,), default_timeout=240)
        at.query_params["tab"] = tab
        for part in ("sv", "hid"):  # the inspector's lazy expanders, open
            at.session_state[f"insp_{name}_{part}_open"] = True
        return at.run()

    seen = _valid_charts_on_every_tab(run)
    assert seen >= 1, f"{name}: no chart drawn on any tab"


def _private_page(task):
    from core.ui import inspector
    from core.ui.page import task_page

    def shared_cache(*args):
        raise AssertionError("a private task's inspection went into the cache every session shares")

    inspector._inspect_cached = shared_cache  # AppTest runs the script in this process: restored by the test
    task_page(task)


def test_private_task_inspections_stay_in_the_session(tmp_path, monkeypatch):
    """Task.private (the Your data page): the inspector keeps results in the visitor's session only."""
    from core.ui import inspector

    monkeypatch.setattr(inspector, "_inspect_cached", inspector._inspect_cached)  # undone after the test
    task = make_task(tmp_path)
    task.private = True
    at = AppTest.from_function(_private_page, args=(task,), default_timeout=30)
    at.session_state["tab"] = "Inspect"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Gradient through time" in texts(at)
    kept = at.session_state["_rnnlab_private_inspections"]
    assert len(kept) == 1
    at.select_slider(key="insp_fake_ab_clip").set_value(0.001).run()  # a rerun is served from the session
    assert not at.exception and len(at.session_state["_rnnlab_private_inspections"]) == 1
