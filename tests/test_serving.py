"""core.serving (Served, load_served), core.ensemble.build and the page frame's ensemble toggle and caption, on the
tiny fake task of test_ui_shell with a two-member ensemble on its card (no real weights, no training)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn
from streamlit.testing.v1 import AppTest

from core.serving import EnsembleWords, load_served
from core.weights import CARD_FILE, variant_file


class MeanOfProbs(nn.Module):
    """A test ensemble: the weighted mean of the members' probabilities, as log-probabilities."""

    def __init__(self, members, weights):
        super().__init__()
        from core.ensemble import ensemble_weights

        self.weights = ensemble_weights(members, weights)
        self.members = nn.ModuleList(members)
        self.own = "mine"  # an attribute of its own: build leaves it alone

    def forward(self, x):
        return sum(w * torch.softmax(m(x), -1) for m, w in zip(self.members, self.weights)).log()  # (B, C)


def _ensemble_task(tmp_path, weights=(0.7, 0.3), words=True):
    from test_ui_shell import make_task

    task = make_task(tmp_path / "w")
    task.ensemble = lambda models, ws: MeanOfProbs(models, ws)
    if words:
        task.ensemble_words = EnsembleWords(alone="the fake LSTM", verb="Counted", help="Mixed: LSTM and GRU.",
                                            how="their probabilities are averaged.")
    card = json.loads((task.weights_path() / CARD_FILE).read_text())
    val = {"accuracy": 0.8}
    card["ensemble"] = {"members": ["lstm", "gru"], "weights": list(weights), "metric": "accuracy",
                        "selected_on": "validation", "sweep": [{"weights": list(weights), "val": val}], "val": val,
                        "test": card["metrics"], "single_val": val, "command": "python -m core.ensemble fake_ab",
                        "seconds": 1.0, "created": "2026-12-01T00:00:00Z"}
    (task.weights_path() / CARD_FILE).write_text(json.dumps(card))
    return task


def test_served_without_an_ensemble_answers_with_its_model(tmp_path):
    from test_ui_shell import make_task

    served = load_served(make_task(tmp_path / "w"))
    assert not served.has_ensemble and served.ensemble is None and served.ensemble_problem is None
    assert served.answering() is served.model and served.answering(alone=True) is served.model
    assert served.members is None and served.kept_variants == ("gru",)
    assert served.card is served.model.runtime.card and served.model.runtime.variant == "lstm"


def test_load_served_builds_the_cards_ensemble(tmp_path):
    task = _ensemble_task(tmp_path)
    served = load_served(task)
    ens = served.answering()
    assert isinstance(ens, MeanOfProbs) and ens is served.ensemble and not ens.training
    assert served.answering(alone=True) is served.model and ens.members[0] is served.model  # one copy of the served
    assert served.members.names == ("lstm", "gru") and served.members.weights == pytest.approx((0.7, 0.3))
    x = task.encode("aab")
    with torch.no_grad():  # the ensemble really mixes: it is neither member
        assert not torch.allclose(ens(x).exp(), torch.softmax(served.model(x), -1))
        want = 0.7 * torch.softmax(served.model(x), -1) + 0.3 * torch.softmax(ens.members[1](x), -1)
        assert torch.allclose(ens(x).exp(), want, atol=1e-6)


def test_the_ensembles_record_is_its_first_members_but_for_the_variant(tmp_path):
    """core.ensemble.build: the run-time record predict reads (card, meta, vocabularies, labels) is the first
    member's; its variant names the mixture, so caches keyed by (weights, variant) tell the two apart. Nothing else
    of the first member is copied onto the ensemble."""
    from dataclasses import replace

    from core.ensemble import build
    from core.ui.inspector import model_key
    from core.weights import load_model

    task = _ensemble_task(tmp_path)
    first = load_model(task)
    first.own = "first's"
    ens = build(task, [first, load_model(task, variant="gru")], [3.0, 1.0])
    assert ens.runtime.variant == "ensemble 0.75/0.25" and first.runtime.variant == "lstm"
    assert ens.runtime == replace(first.runtime, variant="ensemble 0.75/0.25")
    assert ens.runtime.card is first.runtime.card and ens.runtime.meta is first.runtime.meta
    assert ens.own == "mine" and ens.weights == [0.75, 0.25] and not ens.training
    assert model_key(ens) != model_key(first)


@pytest.mark.parametrize("fault", ["member_missing", "members_out_of_order", "task_cannot"])
def test_a_broken_ensemble_leaves_the_served_variant_answering(tmp_path, fault):
    task = _ensemble_task(tmp_path)
    folder = task.weights_path()
    if fault == "member_missing":
        (folder / variant_file("gru")).unlink()
    elif fault == "members_out_of_order":
        card = json.loads((folder / CARD_FILE).read_text())
        card["ensemble"]["members"] = ["gru", "lstm"]
        (folder / CARD_FILE).write_text(json.dumps(card))
    else:
        def cannot(models, weights):
            raise ValueError("members must share their vocabulary")
        task.ensemble = cannot
    served = load_served(task)
    assert not served.has_ensemble and served.answering() is served.model
    assert served.ensemble_problem and "Fix it with: " in served.ensemble_problem
    assert task.predict(served.answering(), "aab")["more_a"] > 0


def _page(task):
    """The shared frame with a Try it that writes down which module it was handed, and the caption under it."""
    import streamlit as st

    from core.ui.page import answer_caption, task_page

    def try_it(model):
        st.markdown(f"handed: {type(model).__name__}")
        answer_caption(task)
        return "aab"

    task_page(task, try_it=try_it)


def test_the_page_frame_draws_the_toggle_and_hands_try_it_the_answering_module(tmp_path):
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    task = _ensemble_task(tmp_path)
    at = AppTest.from_function(_page, args=(task,), default_timeout=30).run()
    assert not at.exception, [e.message for e in at.exception]
    toggle = at.toggle(key="fake_ab_single")
    assert toggle.label == "The fake LSTM alone (switch the ensemble off)" and toggle.value is False
    shown = lambda kind: " ".join(str(e.value) for e in getattr(at, kind))  # noqa: E731
    assert "handed: MeanOfProbs" in shown("markdown")
    assert "Counted by an **ensemble**: LSTM × 0.70 + GRU × 0.30 -- their probabilities are averaged." in shown("caption")
    toggle.set_value(True).run()
    assert not at.exception, [e.message for e in at.exception]
    assert "handed: ManyToOne" in shown("markdown")
    assert "Counted by the fake LSTM alone (the ensemble is switched off above)." in shown("caption")


def test_no_toggle_without_the_tasks_words_or_an_ensemble(tmp_path):
    """A page that shows its ensemble its own way (no ensemble_words) gets no toggle, and the ensemble answers; a
    card without an ensemble gets neither toggle nor caption."""
    import streamlit as st
    from test_ui_shell import make_task

    st.cache_resource.clear()
    task = _ensemble_task(tmp_path / "a", words=False)
    at = AppTest.from_function(_page, args=(task,), default_timeout=30).run()
    assert not at.exception and not at.toggle
    assert "handed: MeanOfProbs" in " ".join(str(m.value) for m in at.markdown)
    plain = AppTest.from_function(_page, args=(make_task(tmp_path / "b" / "w"),), default_timeout=30).run()
    assert not plain.exception and not plain.toggle
    assert "handed: ManyToOne" in " ".join(str(m.value) for m in plain.markdown)
    assert not any("ensemble" in str(c.value) for c in plain.caption)



@pytest.mark.parametrize("broken", [False, True])
def test_core_evaluate_scores_what_is_served(tmp_path, monkeypatch, capsys, broken):
    """core.evaluate recomputes the metrics of the card's ensemble (the served system); with a member missing it
    says so and scores the served variant alone."""
    import core.cli.common as C
    import core.cli.evaluate as R
    from core.cli.evaluate import main

    task = _ensemble_task(tmp_path)
    if broken:
        (task.weights_path() / variant_file("gru")).unlink()
    splits = task.synthetic_data(0)
    served = load_served(task)
    want = task.evaluate(served.answering(), splits.test)["accuracy"]
    card = json.loads((task.weights_path() / CARD_FILE).read_text())
    card["metrics"] = {"accuracy": want}
    (task.weights_path() / CARD_FILE).write_text(json.dumps(card))
    monkeypatch.setattr(C, "cli_task", lambda name: task)  # cli_served looks the task up through core.cli.common
    monkeypatch.setattr(R, "cli_data", lambda t, d: (splits, tmp_path))
    assert main(["fake_ab"]) == 0
    out, err = capsys.readouterr()
    assert "reproduced" in out
    assert ("cannot be put together" in err) == broken
    if not broken:  # the ensemble's score is not the served variant's own
        alone = task.evaluate(served.model, splits.test)["accuracy"]
        assert want != alone or torch.equal(*(m(splits.test["x"]).argmax(-1) for m in served.ensemble.members))
