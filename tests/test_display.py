"""The words on screen: Display labels held against the cards, lesson names for parameters, markdown that renders.

Pure checks (no browser): every discovered task's card is named in words by its Display; a task whose card has a
metric or variant without a label breaks check_task with a message naming the missing label; parameter names map to
the lesson's notation; the glossary's and captions' markdown has no stray **, _{ or $.
"""

from __future__ import annotations

import json
import re

import pytest
import torch.nn as nn

from core.inspect import lesson_name, parameter_cells, parameter_labels
from core.registry import discover
from core.task import COMMON_METRICS, Display, Metric, card_vocabulary, check_task, display_problems

REG = discover()


@pytest.mark.parametrize("name", sorted(REG.tasks))
def test_every_card_metric_and_variant_has_words(name):
    task = REG.tasks[name]
    path = task.weights_path() / "card.json"
    if not path.is_file():
        pytest.skip("no card")
    card = json.loads(path.read_text())
    metrics, variants = card_vocabulary(card)
    for key in metrics:
        m = task.display.metric(key)
        assert m is not None and m.label and "_" not in m.label, (name, key)
        assert m.better in ("higher", "lower", ""), (name, key)
    for key in variants:
        words = task.display.variant(key)
        assert words and not re.fullmatch(r"[a-z0-9_]+", words) or words in ("GRU", "LSTM"), (name, key, words)


def test_a_missing_label_breaks_the_contract_and_names_it():
    card = {"metric": "accuracy", "metrics": {"accuracy": 0.9, "f1_lower": 0.5},
            "comparison": {"lstm": {"test": {}, "val": {}}, "tiny": {"test": {}, "val": {}}}}
    problems = display_problems(Display(), card)
    assert any("'f1_lower'" in p and "display.metrics" in p for p in problems), problems
    assert any("'tiny'" in p and "display.variants" in p for p in problems), problems
    assert not any("'accuracy'" in p or "'lstm'" in p for p in problems), problems  # shared words, cell names
    fixed = Display(metrics={"f1_lower": Metric("F1 on lower-case text", "%")}, variants={"tiny": "a tiny GRU"})
    assert display_problems(fixed, card) == []


def test_check_task_reads_the_card(tmp_path, fixture_task):
    import copy

    task = copy.copy(fixture_task)
    task.weights_dir = tmp_path
    assert check_task(task) == []
    (tmp_path / "card.json").write_text(json.dumps({"metric": "accuracy", "metrics": {"accuracy": 1.0, "odd_one": 2}}))
    problems = check_task(task)
    assert len(problems) == 1 and "'odd_one'" in problems[0]


def test_display_labels_and_series():
    d = Display(metrics={"nll": Metric("negative log-likelihood per note", "nats", "lower")})
    assert d.metric_label("nll", with_unit=True) == "negative log-likelihood per note (nats)"
    assert d.metric_label("accuracy") == COMMON_METRICS["accuracy"].label
    assert d.series_label("train_loss") == "training loss"
    assert d.series_label("val nll") == "negative log-likelihood per note (validation)"
    assert d.variant("rnn_tanh") == "plain RNN (tanh)"


def test_lesson_names_of_parameters():
    assert lesson_name("rnn.weight_hh_l0") == "w' (recurrent weight, layer 0)"
    assert lesson_name("rnn.weight_ih_l1_reverse", "gru") == \
        "w (input weights of gates r, z, n; layer 1, backward)"
    assert lesson_name("encoder.rnn.bias_hh_l0", "lstm").startswith("b_o (biases of gates i, f, g, o, recurrent half")
    assert lesson_name("head.weight") == "w1 (output weight)"
    assert lesson_name("head.bias") == "b_y (output bias)"
    names = ["encoder.net.1.0.weight", "encoder.net.1.0.bias", "encoder.net.4.0.weight", "rnn.weight_ih_l0",
             "head.weight", "x.head.weight"]
    words = parameter_labels(names)
    assert words["encoder.net.1.0.weight"] == "encoder, weights 1 of 2"
    assert words["encoder.net.1.0.bias"] == "encoder, biases"
    assert len(set(words.values())) == len(names), words  # unique: they label bars
    for w in words.values():
        assert not re.search(r"\w\.\w+\.\d", w) and "weight_" not in w, w


def test_parameter_cells_reads_the_recurrent_layers():
    from core.layers import Recurrent

    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = Recurrent("lstm", 3, 4)
            self.head = nn.Linear(4, 2)

    cells = parameter_cells(M())
    assert cells and set(cells.values()) == {"lstm"} and all(k.startswith("rnn.") for k in cells)


def test_numbers_a_sentence_adds_up_do_add_up():
    from core.ui.inspector import percent_of
    from tasks.sentiment.page import push_caption

    for margin, baseline, values, gap in ((-13.35, 0.74, [-11.98], 2.11), (-3.35, 0.74, [-4.0, -0.05], 0.04),
                                          (2.5, 0.5, [1.5, 0.5], 0.0)):
        text = push_caption({"margin": margin, "baseline": baseline, "values": values, "gap": gap, "steps": 32})
        b, m, change = (float(x) for x in re.search(r"go from ([-+][\d.]+) .* to ([-+][\d.]+) for this one: a change "
                                                    r"of ([-+][\d.]+)", text).groups())
        assert change == pytest.approx(m - b, abs=0.011), text
        said = re.search(r"add up to ([-+][\d.]+)", text)
        if said:
            assert float(said.group(1)) == pytest.approx(sum(values), abs=0.006), text
        else:
            assert "exactly that" in text and f"{sum(values):+.2f}" == f"{change:+.2f}", text
    assert percent_of(69, 1_000_000) == "0.0069 %" and percent_of(0, 10) == "0 %" and percent_of(1, 4) == "25.0 %"


def test_glossary_markdown_has_no_delimiter_that_cannot_close():
    """CommonMark leaves ** literal where it cannot open or close (e.g. **B-**PER: a closing ** after '-' and
    before a letter). Every glossary entry's ** pairs must wrap text that starts and ends with a word character."""
    from core.ui.widgets import GLOSSARY

    for term, text in GLOSSARY.items():
        assert text.count("**") % 2 == 0, term
        for inner in re.findall(r"\*\*(.+?)\*\*", text):
            assert re.match(r"\w", inner) and re.search(r"[\w)]$", inner), (term, inner)
        assert "_{" not in text and "$" not in text, term
