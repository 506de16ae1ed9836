"""AppTest tests for the Home page and the Gradient Lab (core/ui/pages/home.py, gradient_lab.py).

Home is rendered with an empty registry (no navigation at all) and with two tiny fake tasks -- one with a weights
card, one without -- inside a real st.navigation so that its page links resolve. The Gradient Lab is rendered with
its defaults, a preset is applied, and "Train live" is pressed with tiny settings.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.registry import Registry
from core.task import Task

TIMEOUT = 120  # generous: the test machine's 2 cores are shared


class _FakeTask(Task):
    """Only the fields Home reads; Home never builds or loads a model."""

    page = "tests.fake:render"

    def __init__(self, name, shape, weights_dir: Path):
        self.name, self.shape, self.weights_dir = name, shape, weights_dir
        self.title = f"Fake {name} <b>not bold</b>"  # HTML in a title must show as text
        self.summary = "A test double."
        self.data_subdir = name


@pytest.fixture
def fake_registry(tmp_path):
    trained = tmp_path / "fake_trained"
    trained.mkdir()
    (trained / "card.json").write_text(json.dumps({"task": "fake_trained"}))
    reg = Registry()
    reg.tasks["fake_trained"] = _FakeTask("fake_trained", "many_to_one", trained)
    reg.tasks["fake_untrained"] = _FakeTask("fake_untrained", "encoder_decoder", tmp_path / "fake_untrained")
    return reg


def _home_alone(registry):
    from core.ui.pages import home

    home.render(registry, {})


def _home_in_navigation(registry):
    import streamlit as st

    from core.ui.pages import home

    def lab():
        st.write("lab")

    def task_a():
        st.write("a")

    def task_b():
        st.write("b")

    pages = {"fake_trained": st.Page(task_a, title="Fake trained", url_path="fake_trained"),
             "fake_untrained": st.Page(task_b, title="Fake untrained", url_path="fake_untrained")}

    def home_page():
        home.render(registry, pages)

    nav = st.navigation([st.Page(home_page, title="Home", url_path="home", default=True),
                         st.Page(lab, title="Gradient Lab", url_path="gradient-lab"), *pages.values()])
    nav.run()


def _lab():
    from core.ui.pages import gradient_lab

    gradient_lab.render()


def _texts(at) -> str:
    return "\n".join(str(m.value) for m in at.markdown) + "\n" + "\n".join(str(c.value) for c in at.caption)


def test_home_with_empty_registry_renders():
    at = AppTest.from_function(_home_alone, args=(Registry(),), default_timeout=TIMEOUT).run()
    assert not at.exception
    text = _texts(at)
    for name in ("One to one", "One to many", "Many to one", "Many to many", "Encoder–decoder", "When to use what"):
        assert name in text or any(name in s.value for s in at.subheader)
    assert len(at.get("latex")) >= 2
    assert sum(str(m.value).startswith("<svg") for m in at.markdown) == 5  # one diagram per shape
    assert "No task of this shape" in text


def test_home_lists_tasks_links_and_missing_weights(fake_registry):
    at = AppTest.from_function(_home_in_navigation, args=(fake_registry,), default_timeout=TIMEOUT).run()
    assert not at.exception
    links = at.get("page_link")
    targets = {link.proto.page for link in links}
    assert {"gradient-lab", "fake_trained", "fake_untrained"} <= targets
    text = _texts(at)
    assert "no trained weights yet" in text
    codes = [c.value for c in at.code]
    assert any("python -m core.train fake_untrained" in c for c in codes)
    assert not any("fake_trained --data-dir" in c for c in codes)  # the trained one is not marked
    assert all("<b>" not in link.proto.label for link in links)  # escaped title


def test_home_diagrams_are_plain_svg():
    from core.ui.pages.home import SHAPES, shape_svg

    for shape in SHAPES:
        svg = shape_svg(shape)
        assert svg.startswith("<svg") and svg.endswith("</svg>") and "<script" not in svg and "http" not in \
            svg.replace("http://www.w3.org/2000/svg", "")


def test_gradient_lab_renders_and_presets_apply():
    at = AppTest.from_function(_lab, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) >= 1
    assert not at.error
    at.button(key="gl_preset_explode").click().run()
    assert not at.exception
    assert at.slider(key="gl_scale").value == pytest.approx(1.5)
    assert at.radio(key="gl_act").value == "relu" and at.radio(key="gl_clip").value == "none"
    at.slider(key="gl_length").set_value(12).run()
    assert not at.exception and not at.error


def test_gradient_lab_train_live_with_tiny_settings():
    at = AppTest.from_function(_lab, default_timeout=TIMEOUT)
    at.session_state["gl_length"] = 6  # tiny from the first run on: the page keeps values already set
    at.session_state["gl_steps"] = 20
    at.run()
    assert at.slider(key="gl_length").value == 6
    at.button(key="gl_train").click().run()
    assert not at.exception and not at.error
    text = _texts(at)
    for label in ("RNN (tanh):", "GRU:", "LSTM:"):
        assert label in text
    # a later rerun (another control moved) keeps the results on screen
    at.radio(key="gl_act").set_value("relu").run()
    assert not at.exception
    assert "GRU:" in _texts(at)


def test_gradient_lab_exploding_run_is_reported():
    at = AppTest.from_function(_lab, default_timeout=TIMEOUT)
    at.session_state["gl_length"] = 6
    at.run()
    at.button(key="gl_preset_explode").click().run()
    at.multiselect(key="gl_cells").set_value(["rnn"])
    at.slider(key="gl_length").set_value(40)
    at.slider(key="gl_steps").set_value(20)
    at.run()
    at.button(key="gl_train").click().run()
    assert not at.exception and not at.error
    assert "blew up" in _texts(at)


# ---- issue 22: what a visitor meets in the Gradient Lab ------------------------------------------------------------

def test_gradient_lab_says_which_preset_is_active():
    """The page opens on the Vanishing preset's settings, so pressing it seemed to do nothing: the active preset
    is highlighted and named, and another preset or a moved control changes what the page says."""
    at = AppTest.from_function(_lab, default_timeout=TIMEOUT).run()
    assert "Now: the preset **Vanishing**" in _texts(at)
    at.button(key="gl_preset_explode").click().run()
    assert "Now: the preset **Exploding**" in _texts(at)
    at.slider(key="gl_scale").set_value(2.0).run()
    assert "your own settings" in _texts(at)


def test_gradient_lab_settings_live_in_the_url_and_bad_values_fall_back():
    at = AppTest.from_function(_lab, default_timeout=TIMEOUT)
    at.query_params.update({"gl_length": "12", "gl_act": "relu", "gl_scale": "not-a-number", "gl_steps": "99999",
                            "gl_clip": "<b>x</b>"})
    at.run()
    assert not at.exception and not at.error
    assert at.slider(key="gl_length").value == 12 and at.radio(key="gl_act").value == "relu"
    assert at.slider(key="gl_scale").value == pytest.approx(1.0)  # not a number: the default
    assert 20 <= at.slider(key="gl_steps").value <= 600
    assert at.radio(key="gl_clip").value == "norm"
    links = [c.value for c in at.code if "gl_length=12" in c.value]
    assert links and "gl_act=relu" in links[0]  # the "Link to this view" button carries the settings


def test_gradient_lab_caps_steps_not_seconds_and_says_so():
    at = AppTest.from_function(_lab, default_timeout=TIMEOUT)
    at.query_params.update({"gl_length": "200", "gl_steps": "600"})
    at.run()
    from core import toys

    n = toys.steps_within_budget(600, 200)
    assert n < 600 and f"every cell trains for **{n} steps**, not 600" in _texts(at)


def test_gradient_lab_table_never_shows_none_for_an_underflow():
    at = AppTest.from_function(_lab, default_timeout=TIMEOUT)
    at.query_params.update({"gl_length": "200", "gl_scale": "0.1", "gl_cells": "rnn"})
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    cells = [str(v) for v in table.to_numpy().ravel()]
    assert not any(v in ("None", "nan", "<NA>") for v in cells), cells
    assert any("underflow" in v for v in cells), cells


def test_gradient_lab_distance_axis_has_whole_steps_and_lstm_note():
    at = AppTest.from_function(_lab, default_timeout=TIMEOUT).run()
    at.button(key="gl_preset_short").click().run()
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    axes = json.dumps(spec)
    assert '"tickMinStep": 1' in axes and '"format": "d"' in axes
    assert "drops at k = 1" in _texts(at)


# ---- issue 36: parity, speed and the linear recurrences on Home ----------------------------------------------------

def _lab_small_speed():
    from core import speed
    from core.ui.pages import gradient_lab

    gradient_lab.SPEED_CONFIG = speed.SpeedConfig(batch=2, hidden=8, lengths=(16, 64), budget_s=20, repeats=1)
    gradient_lab.render()


def test_gradient_lab_parity_task_trains_and_explains_what_it_measured():
    from core import toys

    cells = [c for c in ("rnn_tanh", "mingru") if c in toys.PARITY_CELLS]
    at = AppTest.from_function(_lab, default_timeout=TIMEOUT)
    at.session_state["gl_par_cells"] = cells
    at.session_state["gl_par_len"] = 10
    at.session_state["gl_par_steps"] = 100
    at.run()
    assert not at.exception and not at.error
    assert "odd number of 1s" in _texts(at)
    at.button(key="gl_par_train").click().run()
    assert not at.exception and not at.error
    text = _texts(at)
    for c in cells:
        assert f"{toys.cell_label(c)}:" in text  # one verdict per cell
    assert "What this run measured" in text and "Grazzi" in text
    table = next(d.value for d in at.dataframe if "chance" in d.value.columns)
    assert len(table) == len(cells)
    assert {"10 bits (trained)", "20 bits", "40 bits", "80 bits"} <= set(table.columns)
    assert any("hconcat" in json.loads(c.proto.spec) and "test length" in c.proto.spec
               for c in at.get("vega_lite_chart"))  # one accuracy panel per cell
    at.slider(key="gl_par_steps").set_value(150).run()  # a moved control keeps the last results, and says so
    assert "Results of the last run" in _texts(at) and "What this run measured" in _texts(at)


def test_gradient_lab_speed_panel_measures_once_per_server():
    from core.ui.pages import gradient_lab

    gradient_lab._speed_store.clear()
    at = AppTest.from_function(_lab_small_speed, default_timeout=TIMEOUT).run()
    assert not at.exception and "Measure on this server" in [b.label for b in at.button]
    at.button(key="gl_speed_go").click().run()
    assert not at.exception and not at.error
    tables = [d.value for d in at.dataframe]
    speed_table = next(t for t in tables if "cell, how it runs" in t.columns)
    assert {"T = 16", "T = 64"} <= set(speed_table.columns) and len(speed_table) >= 3
    rounds = next(t for t in tables if "rounds that must wait for the one before" in t.columns)
    assert rounds["T = 64"].tolist() == [64, 6]  # a loop: T; a scan: about log2 T
    assert "Milliseconds per training step" in _texts(at) and "Measure again" in [b.label for b in at.button]
    fresh = AppTest.from_function(_lab_small_speed, default_timeout=TIMEOUT).run()  # another visitor, same server
    assert any("cell, how it runs" in d.value.columns for d in fresh.dataframe)
    assert "Measure again" in [b.label for b in fresh.button]


def test_home_when_to_use_what_has_the_linear_recurrences_row(tmp_path):
    from core.layers import MIN_CELLS, cell_label

    card_dir = tmp_path / "fake_min"
    card_dir.mkdir()
    (card_dir / "card.json").write_text(json.dumps({"config": {"cell": "lstm"}, "comparison": {
        MIN_CELLS[0]: {"config": {"cell": MIN_CELLS[0]}}}}))
    reg = Registry()
    reg.tasks["fake_min"] = _FakeTask("fake_min", "many_to_one", card_dir)
    reg.tasks["fake_plain"] = _FakeTask("fake_plain", "many_to_one", tmp_path / "none")
    at = AppTest.from_function(_home_alone, args=(reg,), default_timeout=TIMEOUT).run()
    assert not at.exception
    table = next(m.value for m in at.markdown if m.value.startswith("| shape |"))
    row = next(line for line in table.splitlines() if cell_label(MIN_CELLS[0]) in line)
    assert "parallel scan" in row and "parity" in row and row.rstrip().endswith("| 1 |")


def test_gradient_lab_parts_one_and_two_take_the_linear_recurrences():
    from core.layers import MIN_CELLS

    at = AppTest.from_function(_lab, default_timeout=TIMEOUT)
    at.session_state["gl_length"] = 8
    at.session_state["gl_steps"] = 20
    at.run()
    at.multiselect(key="gl_cells").set_value(["rnn", *MIN_CELLS]).run()
    assert not at.exception and not at.error
    table = at.dataframe[0].value
    assert len(table) == 1 + len(MIN_CELLS)
    row = table[table["cell"] == "minGRU"].iloc[0]
    assert row["ρ(w') measured"] == "n/a"  # no recurrent matrix, so no spectral radius
    assert "have no w' at all" in _texts(at)
    at.button(key="gl_train").click().run()
    assert not at.exception and not at.error
    assert "minGRU:" in _texts(at) and "minLSTM:" in _texts(at)
