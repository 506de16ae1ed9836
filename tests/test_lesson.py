"""The Lesson (core.lesson): every question's answer is computed by a model when it is revealed (change the model
and the answer changes), the step-through's numbers are the layer's own stepwise path, and progress survives a
link."""

from __future__ import annotations

import copy
import os
import re
import time

import pytest
import torch

from core import lesson as L
from core.registry import discover
from core.ui.widgets import GLOSSARY


@pytest.fixture(scope="module")
def reg():
    return discover()


@pytest.fixture(scope="module")
def loaded(reg):
    from core.weights import load_model

    out = {}
    for name, variant in (("sentiment", None), ("ner", None), ("ner", "lstm")):
        task = reg.tasks[name]
        if not (task.weights_path() / "card.json").exists():
            pytest.skip(f"no trained weights for {name}")
        out[(name, variant)] = load_model(task, variant=variant)
    return out


@pytest.fixture(scope="module")
def tiny():
    return L.train_tiny()


def models_with(reg, loaded, base_tiny, **swap) -> L.Models:
    """The lesson's models, with some replaced: swap[(name, variant) as "name:variant"] = model, tiny=..."""
    table = dict(loaded)
    for k, v in swap.items():
        if k != "tiny":
            name, _, variant = k.partition(":")
            table[(name, variant or None)] = v
    return L.Models(task=lambda n: reg.tasks[n], model=lambda n, v: table[(n, v)],
                    tiny=lambda: swap.get("tiny", base_tiny))


def test_steps_follow_the_lesson():
    assert L.STEP_KEYS == ("memory", "recurrence", "shapes", "bptt", "clipping", "bidirectional", "gates")
    for s in L.STEPS:
        assert s.question and len(s.choices) >= 2 and callable(s.reveal), s.key


def test_each_step_lists_the_models_its_reveal_runs(reg, loaded, tiny):
    """Step.uses is what the page loads while the student answers: exactly what the reveal then asks for."""
    for step in L.STEPS:
        asked = []

        def model(name, variant, asked=asked):
            asked.append(f"{name}:{variant}" if variant else name)
            return loaded[(name, variant)]

        def tiny_model(asked=asked):
            asked.append("tiny")
            return tiny

        if step.key == "gates":
            continue  # the race trains its own toys (no trained model; its own test below): it lists none
        step.reveal(L.Models(task=lambda n: reg.tasks[n], model=model, tiny=tiny_model))
        assert sorted(set(asked)) == sorted(step.uses), step.key
    assert L.STEPS[L.STEP_KEYS.index("gates")].uses == ()


def test_prefetch_loads_into_the_shared_cache_without_a_page(reg):
    from core.ui import load

    task = reg.tasks["sentiment"]
    if not (task.weights_path() / "card.json").exists():
        pytest.skip("no trained weights for sentiment")
    folder = str(task.weights_path())
    load.MODELS.clear()
    assert load.prefetch(task) is True
    assert load.MODELS.peek(("sentiment", None, folder)) is not None
    assert L.shared_tiny() is L.shared_tiny()


def test_memory_reveal_comes_from_the_sentiment_model(reg, loaded, tiny):
    r = L.reveal_memory(models_with(reg, loaded, tiny))
    assert len(r.right) == 1 and r.table is not None and len(r.table) >= 6
    # the table's probabilities are the model's, and the answer is where they cross 0.5 for the last time
    p = r.table["P(positive)"].tolist()
    crossings = [i for i in range(1, len(p)) if (p[i] >= 0.5) != (p[i - 1] >= 0.5)]
    if crossings:
        assert L.STEPS[0].choices[r.right[0]].lower() == r.table["after the word"][crossings[-1]]
    sure = copy.deepcopy(loaded[("sentiment", None)])
    with torch.no_grad():
        sure.head.bias.copy_(torch.tensor([-50.0, 50.0]))  # a model that says "positive" whatever it reads
    r2 = L.reveal_memory(models_with(reg, loaded, tiny, sentiment=sure))
    assert r2.right == (L.STEPS[0].choices.index(L.NO_FLIP),) and r2.right != r.right


def test_latch_reveal_comes_from_the_tiny_network(reg, loaded, tiny):
    r = L.reveal_latch(models_with(reg, loaded, tiny))
    assert r.right == (0,), "the trained one-unit network should still remember the 1"
    forgetful = copy.deepcopy(tiny)
    with torch.no_grad():
        forgetful.rnn.weights(0, 0)[1].zero_()  # w' = 0: nothing is carried from one step to the next
    r2 = L.reveal_latch(models_with(reg, loaded, tiny, tiny=forgetful))
    assert r2.right == (1,)


def test_shapes_reveal_counts_the_models_answers(reg, loaded, tiny):
    r = L.reveal_shapes(models_with(reg, loaded, tiny))
    assert r.right == (1,) and len(r.table) == len(r.table["word"])

    class OneTag:  # a stand-in tagger task that gives one tag for the whole sentence
        def predict(self, model, text):
            return {"tokens": ["all"], "tags": ["O"]}

    m = models_with(reg, loaded, tiny)
    m2 = L.Models(task=lambda n: OneTag() if n == "ner" else reg.tasks[n], model=m.model, tiny=m.tiny)
    assert L.reveal_shapes(m2).right == (0,)


def test_bptt_reveal_is_measured(reg, loaded, tiny):
    m = models_with(reg, loaded, tiny)
    r = L.reveal_bptt(m)
    assert r.right == (0,) and r.chart is not None
    g = r.chart["‖dL/dh_t‖"].to_numpy()
    assert g[0] < g[-1] / 100  # vanished by the first step
    grown = L.reveal_bptt(m, activation="relu", scale=1.5)  # a recurrent weight that makes it explode instead
    assert grown.right != r.right


def test_clipping_reveal_trains_both_runs(reg, loaded, tiny):
    m = models_with(reg, loaded, tiny)
    r = L.reveal_clipping(m)
    assert r.right == (0,)
    assert list(r.table["blew up"]) == [True, False]
    # a recurrent weight so large that the forward pass overflows: clipping (which acts on updates) cannot help
    r2 = L.reveal_clipping(m, recurrent_scale=60.0)
    assert r2.right == (1,) and bool(r2.table["blew up"].all())


def test_paris_reveal_runs_the_one_way_tagger(reg, loaded, tiny):
    r = L.reveal_paris(models_with(reg, loaded, tiny))
    one_way = r.table["one-way tagger"][0]
    assert r.right == ((0,) if one_way.endswith("PER") else (1,))
    person = copy.deepcopy(loaded[("ner", "lstm")])
    with torch.no_grad():
        person.crf.start[list(person.labels).index("B-PER")] += 100.0  # every sentence now starts with a person
    r2 = L.reveal_paris(models_with(reg, loaded, tiny, **{"ner:lstm": person}))
    assert r2.right == (0,) and r2.table["one-way tagger"][0] == "B-PER"


def test_cells_reveal_trains_each_cell():
    r = L.reveal_cells(None)
    assert set(r.right) >= {1}, "the GRU should learn 100-step recall in the lesson's budget"
    assert 0 not in r.right, "the plain RNN should not"
    untrained = L.reveal_cells(None, race=lambda: L.recall_race(steps=1))  # one step: nobody learns it
    assert untrained.right == ()


def test_race_in_a_background_process_matches_the_race_here():
    """The Lesson starts the race in a low-priority process; its table is the one recall_race computes here."""
    key = dict(length=12, cells=("rnn_tanh", "gru"), steps=3, seed=5)
    assert L.race_in_background(**key) is True
    assert L.race_in_background(**key) is False  # under way: not started twice
    k = L._race_key(**key)
    L._RACE_PENDING[k].wait(120)
    assert k in L._RACE_CACHE, "the background process gave no table"
    there = L.recall_race(**key)
    assert not L._RACE_PENDING
    L._RACE_CACHE.clear()
    here = L.recall_race(**key)
    assert list(there["cell"]) == list(here["cell"]) == ["rnn_tanh", "gru"]
    assert list(there["solved"]) == list(here["solved"])
    assert abs(there["accuracy"] - here["accuracy"]).max() < 0.05


def test_race_falls_back_to_this_process_when_the_background_one_fails(monkeypatch):
    monkeypatch.setattr(L.sys, "executable", "/nonexistent/python")
    key = dict(length=10, cells=("gru",), steps=1, seed=6)
    L.race_in_background(**key)
    df = L.recall_race(**key)
    assert list(df["cell"]) == ["gru"] and not L._RACE_PENDING


def test_a_reveal_waiting_for_the_background_race_gives_it_full_priority(monkeypatch):
    key = dict(length=40, cells=("gru", "lstm"), steps=30, seed=7)
    k = L._race_key(**key)
    L.race_in_background(**key)
    t0 = time.time()
    while k not in L._RACE_PROCS and time.time() - t0 < 10:
        time.sleep(0.01)
    proc = L._RACE_PROCS[k]
    assert os.getpriority(os.PRIO_PROCESS, proc.pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + L.RACE_PRIORITY)
    assert L._hurry(proc)
    assert os.getpriority(os.PRIO_PROCESS, proc.pid) == os.getpriority(os.PRIO_PROCESS, 0)
    L._RACE_PENDING[k].wait(120)
    assert k in L._RACE_CACHE


def test_a_race_that_may_not_be_hurried_is_computed_here(monkeypatch):
    def refuse(*a):
        raise PermissionError("not allowed")

    monkeypatch.setattr(L.os, "setpriority", refuse)
    key = dict(length=40, cells=("gru",), steps=30, seed=8)
    k = L._race_key(**key)
    L.race_in_background(**key)
    t0 = time.time()
    while k not in L._RACE_PROCS and time.time() - t0 < 10:
        time.sleep(0.01)
    df = L.recall_race(**key)
    assert list(df["cell"]) == ["gru"] and not L._RACE_PENDING and not L._RACE_PROCS


def test_step_through_matches_the_stepwise_path(tiny):
    gen = torch.Generator().manual_seed(3)
    for model in (tiny, L.TinyRNN()):
        for _ in range(5):
            bits = torch.randint(0, 2, (int(torch.randint(1, 13, (1,), generator=gen)),), generator=gen).tolist()
            steps = L.recurrence_steps(model, bits)
            o, y = L.stepwise_path(model, bits)
            assert [s.t for s in steps] == list(range(1, len(bits) + 1))
            for s, o_t, y_t in zip(steps, o, y):
                assert abs(s.o - o_t) < 1e-5 and abs(s.y - y_t) < 1e-5
                assert abs(s.o - torch.tanh(torch.tensor(s.x * s.w + s.o_prev * s.w_rec + s.b_o)).item()) < 1e-5
            assert all(a.o == b.o_prev for a, b in zip(steps, steps[1:]))


def test_tiny_network_learned_its_task(tiny):
    assert L.tiny_accuracy(tiny) >= 0.95


@pytest.mark.parametrize("text,bits", [("0 1 0", [0, 1, 0]), ("1,1,0", [1, 1, 0]), ("0110", [0, 1, 1, 0])])
def test_parse_bits(text, bits):
    assert L.parse_bits(text) == bits


@pytest.mark.parametrize("text", ["", "  ", "0 2", "abc", "1" * 13])
def test_parse_bits_refuses_with_a_message(text):
    with pytest.raises(ValueError, match=r"\w"):
        L.parse_bits(text)


def test_progress_round_trip():
    progress = {"memory": L.Answer((5,), True), "shapes": L.Answer((1,), False), "gates": L.Answer((1, 2), None)}
    code = L.encode_progress(progress)
    assert code == "5y..1n....1-2?"
    assert L.decode_progress(code) == progress
    assert L.score(progress) == (3, 1)


@pytest.mark.parametrize("bad", ["zzz", "9y", "0-1y", "5x", "....-y", "5y." * 50, "0-99y......"])
def test_bad_progress_in_a_link_is_dropped(bad):
    out = L.decode_progress(bad)
    for key, a in out.items():
        step = L.STEPS[L.STEP_KEYS.index(key)]
        assert all(0 <= k < len(step.choices) for k in a.picked)


def test_teacher_link_step_number():
    assert L.step_index("3") == 2
    assert L.step_index("0") == 0 and L.step_index("99") == len(L.STEPS) - 1 and L.step_index("x") == 0


def test_every_term_link_has_its_glossary_entry():
    anchors = {L.term_anchor(t) for s in L.STEPS for t in s.terms if t in GLOSSARY or t in L.LESSON_TERMS}
    for s in L.STEPS:
        assert all(t in GLOSSARY or t in L.LESSON_TERMS for t in s.terms), s.key
        for target in re.findall(r"\]\(#([^)]+)\)", s.idea):
            assert target in anchors, f"step {s.key}: link #{target} has no glossary entry on the page"
