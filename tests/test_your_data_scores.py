"""Your data's scores beside their baselines (core.yourdata.task): each baseline on tiny hand-made held-out rows
with a known answer, the too-few-rows warning, a model that only knows the majority class reported as such, and
the word tokeniser (core.yourdata.propose.tokenize) on a table of cases."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from core.generic.base import SequenceTask
from core.yourdata.propose import Choice, steps, tokenize
from core.yourdata.task import (
    EOS,
    MIN_TRUSTED_ROWS,
    SPECIALS,
    UNK,
    YourDataTask,
    baseline_words,
    beats_baseline,
    encode,
    entity_f1,
    is_entity_tags,
    join,
    not_beaten_words,
    punct_split,
    score_columns,
    trust_words,
)

N = len(SPECIALS)  # the first id of a real token


def task_of(shape: str, tokens: str = "word", sample=None, columns=("text", "label")) -> YourDataTask:
    choice = Choice(shape, "text" if shape != "one_to_one" else None, None if shape == "one_to_many" else "label",
                    ["x"] if shape == "one_to_one" else [], tokens)
    return YourDataTask({"choice": choice.to_dict(), "columns": list(columns), "sample": sample or []})


class Echo(nn.Module):
    """A stand-in network whose answer is written in its input: token id N + k -> class (or tag) k, with
    certainty. ``per_step``: one answer per step (a tagger), else one per row, read from the first step."""

    def __init__(self, meta: dict, n_out: int, per_step: bool):
        super().__init__()
        self.runtime = SequenceTask().runtime(meta, {})  # the record a shape class's evaluate reads
        self.n_out, self.per_step = n_out, per_step
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x, lengths=None):
        logits = nn.functional.one_hot((x - N).clamp(0, self.n_out - 1), self.n_out).float() * 10  # (B, T, C)
        return logits if self.per_step else logits[:, 0]  # (B, T, C) or (B, C)


# ---- labels: majority class and chance ----------------------------------------------------------------------------

def test_majority_and_chance_and_a_model_that_knows_only_the_majority():
    task = task_of("many_to_one")
    meta = {"labels": ["a", "b", "c"], "majority": 1, "vocab": ["w0", "w1", "w2"]}
    rows = [([N + 1, N], 0), ([N + 1], 0), ([N + 1, N + 2], 1), ([N + 1], 1), ([N + 1], 1)]  # the model says b
    m = task.evaluate(Echo(meta, 3, per_step=False), rows)
    assert m["accuracy"] == pytest.approx(0.6) and m["baseline_accuracy"] == pytest.approx(0.6)
    assert m["chance"] == pytest.approx(1 / 3) and m["rows"] == 5
    assert beats_baseline("accuracy", m) is False
    assert "learnt nothing the majority class does not already know" in not_beaten_words("accuracy", m)
    assert baseline_words("accuracy", m, "validation accuracy") == (
        "validation accuracy 0.600 -- the majority class alone gets 0.600, guessing at random 0.333.")
    right = [([N + y], y) for _, y in rows]  # now the input says the true label
    m = task.evaluate(Echo(meta, 3, per_step=False), right)
    assert m["accuracy"] == 1.0 and beats_baseline("accuracy", m) is True and not_beaten_words("accuracy", m) == ""


def test_the_majority_comes_from_the_training_part():
    task = task_of("many_to_one")
    examples = [(f"row {i}", "pos" if i < 60 else "neg") for i in range(100)]  # 60 pos, 40 neg
    splits = task.make_splits(examples)
    train_labels = [y for _, y in splits.train]
    majority = max(set(train_labels), key=train_labels.count)
    assert splits.meta["majority"] == majority == splits.meta["labels"].index("pos")
    model = Echo(splits.meta, 2, per_step=False)
    m = task.evaluate(model, splits.test)
    assert m["baseline_accuracy"] == pytest.approx(sum(y == majority for _, y in splits.test) / len(splits.test))


def test_one_to_one_baselines():
    task = task_of("one_to_one", columns=("x", "label"))
    examples = [([float(i)], "big" if i % 4 == 0 else "small") for i in range(40)]
    splits = task.make_splits(examples)
    assert splits.meta["labels"][splits.meta["majority"]] == "small"
    model = task.build_model(dict(task.config), splits.meta)
    m = task.evaluate(model, splits.val)
    assert m["chance"] == 0.5 and 0 <= m["baseline_accuracy"] <= 1 and "accuracy" in m


# ---- tags: all-majority and entity F1 -----------------------------------------------------------------------------

TAGS = ["B-LOC", "B-PER", "I-PER", "O"]


def test_entity_f1_known_answer():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    assert entity_f1(gold, gold) == 1.0
    assert entity_f1(gold, [["O"] * 4]) == 0.0
    # one of two entities found, and one wrong one: precision 1/2, recall 1/2
    assert entity_f1(gold, [["B-PER", "I-PER", "B-LOC", "O"]]) == pytest.approx(0.5)
    assert entity_f1(gold, [["B-PER", "O", "O", "B-LOC"]]) == pytest.approx(0.5)  # half a name is no name


def test_tagger_baselines_all_o_accuracy_and_f1():
    sample = [["Anna lives in Oslo", "B-PER O O B-LOC"]]
    task = task_of("many_to_many", sample=sample)
    assert task.recipe.metric == "f1" and "named things" in task.metric_meaning
    meta = {"tags": TAGS, "majority": TAGS.index("O"), "entities": True, "vocab": []}
    gold = [[1, 2, 3, 0], [3, 3, 3, 3]]  # B-PER I-PER O B-LOC ; O O O O
    said = [[1, 2, 0, 3], [3, 3, 3, 3]]  # the input ids carry the model's answer
    rows = [([N + t for t in s], g) for s, g in zip(said, gold)]
    m = task.evaluate(Echo(meta, 4, per_step=True), rows)
    assert m["accuracy"] == pytest.approx(6 / 8) and m["baseline_accuracy"] == pytest.approx(5 / 8)
    assert m["f1"] == pytest.approx(0.5) and m["baseline_f1"] == 0.0
    assert beats_baseline("f1", m) is True
    all_o = [([N + 3] * 4, g) for g in gold]
    m = task.evaluate(Echo(meta, 4, per_step=True), all_o)
    assert m["accuracy"] == m["baseline_accuracy"] == pytest.approx(5 / 8) and m["f1"] == 0.0
    assert beats_baseline("f1", m) is False and "learnt nothing useful" in not_beaten_words("f1", m)


def test_plain_tags_keep_accuracy_and_say_most_common_tag():
    task = task_of("many_to_many", sample=[["the dog runs", "DET NOUN VERB"]])
    assert task.recipe.metric == "accuracy"
    meta = {"tags": ["DET", "NOUN", "VERB"], "majority": 1, "entities": False, "vocab": []}
    m = task.evaluate(Echo(meta, 3, per_step=True), [([N + 1] * 3, [0, 1, 2])])
    assert m["accuracy"] == m["baseline_accuracy"] == pytest.approx(1 / 3) and "f1" not in m
    assert "most common tag" in baseline_words("accuracy", m, "accuracy")
    assert "most common tag (test)" in score_columns("accuracy", m, m)


@pytest.mark.parametrize("tags,yes", [(["O", "B-PER", "I-PER"], True), (["O", "S-LOC", "E-LOC", "B-LOC"], True),
                                      (["O", "I-ORG"], True), (["DET", "NOUN"], False), (["O"], False),
                                      (["O", "B-"], False), (["B-X", "VERB"], False)])
def test_entity_tags_are_recognised(tags, yes):
    assert is_entity_tags(tags) is yes


# ---- sequences: exact match and a frequency model -----------------------------------------------------------------

def test_exact_match_and_its_baselines(monkeypatch):
    task = task_of("encoder_decoder")
    assert task.recipe.metric == "exact"
    meta = {"src_vocab": ["a", "b"], "tgt_vocab": ["a", "b", "x"], "common_output": [N + 2, EOS]}
    # tokens: a=N, b=N+1 (source); a=N, b=N+1, x=N+2 (target)
    rows = [([N, N + 1], [N, N + 1, EOS]),  # "a b" -> "a b": copying is right; the model is right
            ([N + 1], [N + 2, EOS]),  # "b" -> "x": the most common output is right; the model is right
            ([N], [N + 2, EOS]),  # "a" -> "x": the most common output is right; the model is wrong
            ([N, UNK], [N, EOS])]  # an unknown source token: copying cannot be checked; the model is wrong
    written = torch.tensor([[N, N + 1, EOS], [N + 2, EOS, EOS], [N + 1, EOS, EOS], [EOS, EOS, EOS]])
    monkeypatch.setattr(task, "greedy", lambda model, src, lengths, max_len: written[:src.shape[0]])
    m = task.exact_scores(Echo(meta, 1, per_step=True), rows)
    assert m == {"exact": 0.5, "copy_exact": 0.25, "common_exact": 0.5, "exact_rows": 4.0}
    assert baseline_words("exact", m, "validation exactly right") == (
        "validation exactly right 0.500 -- always writing the most common output gets 0.500, copying the input 0.250.")
    assert beats_baseline("exact", m) is False


def test_exact_match_on_a_real_model_is_greedy_over_every_row():
    task = task_of("encoder_decoder", tokens="char")
    examples = [(f"{i:03d}", f"{i:03d}"[::-1]) for i in range(60)]
    splits = task.make_splits(examples)
    model = task.build_model(dict(task.config), splits.meta)
    m = task.evaluate(model, splits.val)
    assert {"exact", "copy_exact", "common_exact", "step_accuracy", "rows"} <= set(m)
    assert m["rows"] == m["exact_rows"] == len(splits.val)
    want = [int(task.greedy(model, *[v for k, v in task.collate([r]).items() if k.startswith("src")], 8)[0].tolist()[:4]
                == r[1]) for r in splits.val]
    assert m["exact"] == pytest.approx(sum(want) / len(want))


def test_one_to_many_frequency_model_nll():
    task = task_of("one_to_many", tokens="char", columns=("text",))
    splits = task.make_splits(["ab", "ab", "aab", "b"] * 10)
    meta = splits.meta
    counts = {"a": 0, "b": 0}
    for s in [e for e in splits.train]:
        for i in s:
            counts[meta["vocab"][i - N]] += 1
    eos = len(splits.train)
    total = counts["a"] + counts["b"] + eos + len(meta["vocab"]) + N
    logp = {meta["vocab"].index(c) + N: math.log((k + 1) / total) for c, k in counts.items()}
    logp[EOS] = math.log((eos + 1) / total)
    steps_ = [i for s in splits.val for i in s + [EOS]]
    model = task.build_model(dict(task.config), meta)
    m = task.evaluate(model, splits.val)
    assert m["baseline_nll"] == pytest.approx(-sum(logp[i] for i in steps_) / len(steps_), rel=1e-4)
    assert beats_baseline("nll", {"nll": m["baseline_nll"] - 0.1, "baseline_nll": m["baseline_nll"]}) is True
    assert beats_baseline("nll", {"nll": m["baseline_nll"] + 0.1, "baseline_nll": m["baseline_nll"]}) is False


# ---- how far a score can be trusted -------------------------------------------------------------------------------

def test_too_few_held_out_rows_are_said():
    words = trust_words("accuracy", {"rows": 32.0}, {"rows": 32.0})
    assert "32 rows" in words and "±17 points" in words
    assert "40 (validation) and 32 (test)" in trust_words("accuracy", {"rows": 40.0}, {"rows": 32.0})
    assert trust_words("accuracy", {"rows": 150.0}, {"rows": 100.0}) == ""
    assert "points" not in trust_words("nll", {"rows": 20.0}, {"rows": 20.0})
    assert "500" not in trust_words("exact", {"rows": 800.0, "exact_rows": 500.0}, {"rows": 800.0})


def test_comparison_columns_are_words():
    val = {"accuracy": 0.8, "baseline_accuracy": 0.6, "chance": 0.5, "loss": 0.4, "rows": 100.0}
    cols = score_columns("accuracy", val, val)
    assert list(cols) == ["validation accuracy", "test accuracy", "majority class (test)", "chance", "test rows"]
    assert all("_" not in c for c in cols)


# ---- words people wrote -------------------------------------------------------------------------------------------

TOKENS = [
    ("What a mess.", ["What", "a", "mess", "."]),
    ("so boring, really", ["so", "boring", ",", "really"]),
    ("I don't know", ["I", "don't", "know"]),
    ("it isn’t", ["it", "isn’t"]),
    ("it cost $37.5 today", ["it", "cost", "$37.5", "today"]),
    ("an e-mail to bob@example.org.", ["an", "e-mail", "to", "bob@example.org", "."]),
    ("see https://example.com/a?b=1.", ["see", "https://example.com/a?b=1", "."]),
    ("(see www.example.com)", ["(", "see", "www.example.com", ")"]),
    ("Zürich, Москва и 東京", ["Zürich", ",", "Москва", "и", "東京"]),
    ("हिन्दी भाषा।", ["हिन्दी", "भाषा", "।"]),
    ("U.S. and e.g. stuff", ["U.S.", "and", "e.g.", "stuff"]),
    ("wait... what?!", ["wait", "...", "what", "?", "!"]),
    ("50% off!!!", ["50%", "off", "!!!"]),
    ("1,000 people at 12:30 on the 3rd", ["1,000", "people", "at", "12:30", "on", "the", "3rd"]),
    ("#happy @anna", ["#happy", "@anna"]),
    ('"quoted"', ['"', "quoted", '"']),
    ("well-known -- really", ["well-known", "--", "really"]),
    ("", []),
]


@pytest.mark.parametrize("text,want", TOKENS, ids=[t for t, _ in TOKENS])
def test_tokenize(text, want):
    assert tokenize(text) == want


def test_steps_split_punctuation_only_when_asked():
    assert steps("a mess.", "word") == ["a", "mess."]  # a tagging row: one tag per whitespace word
    assert steps("a mess.", "word", True) == ["a", "mess", "."]
    assert steps("a b", "char", True) == ["a", " ", "b"]


def test_unknown_case_is_looked_up_in_any_case():
    vocab = ["boring", "The", "the"]
    assert encode(["Boring", "boring", "THE", "the", "The", "dull"], vocab) == [N, N, N + 1, N + 2, N + 1, UNK]


def test_join_puts_punctuation_back():
    assert join(["What", "a", "mess", ".", "(", "no", ")", "Yes", ",", "really", "!"], "word") == \
        "What a mess. (no) Yes, really!"
    assert join(list("ab c"), "char") == "ab c"


def test_punctuation_split_training_rows_are_recognised():
    assert punct_split([["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn", ","]])
    assert not punct_split([["What", "a", "mess."], ["so", "boring,", "really"]])
    assert not punct_split([["the", "dog", "runs"]])  # no punctuation at all: nothing says how it would be cut


def test_words_people_wrote_reach_the_model():
    """A review typed with punctuation reads its words (not 'mess.' as unknown); a tagger trained on
    whitespace-aligned rows keeps them aligned; one trained on CoNLL-like tokens splits typed text the same way."""
    reviews = [("What a mess.", "neg"), ("So boring, really!", "neg"), ("A lovely film.", "pos"),
               ("Great fun, truly.", "pos")] * 10
    task = task_of("many_to_one")
    splits = task.make_splits(reviews)
    assert splits.meta["split_punct"] is True and "mess" in splits.meta["vocab"] and "." in splits.meta["vocab"]
    model = task.build_model(dict(task.config), splits.meta)
    out = task.predict(model, "what a MESS, so boring.")
    assert not any("unknown" in n for n in out["notes"])
    tagged = [("Anna lives in Oslo .", "B-PER O O B-LOC O"), ("Omar saw Paul , too .", "B-PER O B-PER O O O")] * 10
    task = task_of("many_to_many", sample=[list(r) for r in tagged])
    splits = task.make_splits(tagged)
    assert splits.meta["split_punct"] is True and task.recipe.metric == "f1"
    model = task.build_model(dict(task.config), splits.meta)
    assert [t["word"] for t in task.predict(model, "Anna saw Oslo.")["tokens"]] == ["Anna", "saw", "Oslo", "."]
    aligned = [("Hello, world", "X Y"), ("Good morning, all", "X Y Z")] * 10
    task = task_of("many_to_many", sample=[list(r) for r in aligned])
    splits = task.make_splits(aligned)
    assert splits.meta["split_punct"] is False and all(len(x) == len(y) for x, y in splits.train)
    model = task.build_model(dict(task.config), splits.meta)
    assert [t["word"] for t in task.predict(model, "Hello, world")["tokens"]] == ["Hello,", "world"]


def test_long_rows_are_cut_with_a_note_not_dropped():
    from core.yourdata.task import MAX_STEPS

    rows = [(" ".join(["word"] * (MAX_STEPS["word"] + 20)), "long"), ("short one", "short")] * 10
    task = task_of("many_to_one")
    splits = task.make_splits(rows)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 20
    assert splits.meta["cut_rows"] == 10 and "10 rows longer than" in splits.dataset
    assert max(len(x) for x, _ in splits.train) == MAX_STEPS["word"]


# ---- the page ------------------------------------------------------------------------------------------------------

def _page():
    from core.ui.pages.your_data import render

    render()


def test_page_shows_the_score_beside_its_baseline_and_says_when_it_is_not_beaten():
    """A tanh-RNN trained for 10 steps on the points: the best line names the majority class's score, the
    comparison has baseline columns in words, and the warning appears exactly when the model does not beat it (on
    the validation or the test rows)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_page, default_timeout=180)
    at.session_state["yd_steps"] = 10
    at.session_state["yd_size"] = "small"
    at.session_state["yd_cells"] = ["tanh-RNN"]
    at.run()
    at.button(key="yd_ex_points").click().run()
    at.button(key="yd_train").click().run()
    assert not at.exception and not at.error
    best = next(m.value for m in at.markdown if "Best on the held-out rows" in m.value)
    assert "validation accuracy" in best and "the majority class alone gets" in best and "guessing at random" in best
    run = at.session_state["yd_run"]["result"].runs["tanh-RNN"]
    warned = any("learnt nothing the majority class" in w.value for w in at.warning)
    assert warned == (beats_baseline("accuracy", run.fit.best_val) is False
                      or beats_baseline("accuracy", run.test) is False)
    table = at.dataframe[-1].value
    assert {"validation accuracy", "test accuracy", "majority class (test)", "chance"} <= set(table.columns)


def test_forecast_scores_are_beside_the_naive_forecasts():
    m = {"mae": 7.5, "rmse": 10.5, "last value mae": 18.9, "last value rmse": 22.6, "seasonal naive mae": 13.0,
         "seasonal naive rmse": 14.5, "windows": 24.0}
    assert baseline_words("mae", m, "test MAE") == (
        "test MAE 7.500 -- the seasonal-naive forecast gets 13.000, the last-value forecast 18.900.")
    assert beats_baseline("mae", m) is True
    assert beats_baseline("mae", {**m, "mae": 14.0}) is False
    assert "no better than the seasonal-naive forecast" in not_beaten_words("mae", {**m, "mae": 14.0})
    assert "24 forecast windows" in trust_words("mae", m, m) and "points" not in trust_words("mae", m, m)
    cols = score_columns("mae", m, m)
    assert "seasonal-naive forecast MAE (test)" in cols and all("_" not in c for c in cols)


# ---- the examples teach -------------------------------------------------------------------------------------------

def test_examples_hold_out_enough_rows_and_are_written_here():
    from core.yourdata.examples import EXAMPLES
    from core.yourdata.parse import read_table

    for key, ex in EXAMPLES.items():
        name, raw = ex.make()
        assert ex.make() == (name, raw)  # fixed seeds
        rows = read_table(raw, name).rows
        assert len(rows) // 10 >= MIN_TRUSTED_ROWS or ex.kind == "forecast", key
        assert "should propose" not in ex.note and ex.note


def test_memory_example_answer_is_the_first_word_among_decoys():
    from core.yourdata.examples import _KEYS, memory
    from core.yourdata.parse import read_table

    rows = read_table(memory()[1], "memory.csv").rows
    assert all(text.split()[0] == label for text, label in rows)
    assert {label for _, label in rows} == set(_KEYS)
    assert sum(any(w in _KEYS and w != label for w in text.split()[1:]) for text, label in rows) > len(rows) // 2
    assert max(len(text.split()) for text, _ in rows) == 60


def test_tags_example_must_be_read_word_by_word():
    """Not a fixed pattern of positions: the first word's tag varies, 'fly' is a noun and a verb, punctuation is
    its own token (so typed sentences are split the same way)."""
    from collections import Counter

    from core.yourdata.examples import tags
    from core.yourdata.parse import read_table

    rows = read_table(tags()[1], "tags.tsv").rows
    assert all(len(s.split()) == len(t.split()) for s, t in rows)
    first = Counter(t.split()[0] for _, t in rows)
    assert first.most_common(1)[0][1] < 0.8 * len(rows) and len(first) >= 4
    fly = {t for s, tt in rows for w, t in zip(s.split(), tt.split()) if w.lower() in ("fly", "watch", "light")}
    assert {"NOUN", "VERB"} <= fly
    assert punct_split([s.split() for s, _ in rows])


def test_monthly_sales_is_a_seasonal_series():
    from core.yourdata.examples import monthly_sales
    from core.yourdata.parse import read_table

    t = read_table(monthly_sales()[1], "monthly_sales.csv")
    assert t.columns == ["date", "sales"] and len(t.rows) == 240
    values = [float(v) for _, v in t.rows]
    dec = [v for (d, _), v in zip(t.rows, values) if d[5:7] == "12"]
    nov = [v for (d, _), v in zip(t.rows, values) if d[5:7] == "11"]
    assert sum(dec) > sum(nov)  # the December peak
    assert sum(values[-12:]) > sum(values[:12]) + 12 * 100  # the trend: about 0.9 a month over 19 years
