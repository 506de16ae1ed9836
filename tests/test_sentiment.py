"""Sentiment task: the PTB tree reader, SST-2 filtering, the treebank tokenizer, bad inputs, the negation set.

Everything runs on trees written here (never the dataset) and on a tiny untrained model: each test takes well under
a second."""

from __future__ import annotations

import time
import zipfile

import pytest
import torch

from core.task import BadInput, check_task
from tasks.sentiment import MAX_TOKENS, NEGATION_SET, TASK, collate
from tasks.sentiment import data as D

TREES = "\n".join([
    "(3 (2 (2 The) (2 film)) (3 (2 is) (4 (4 wonderful) (2 .))))",
    "(1 (2 It) (1 (2 is) (1 (2 not) (3 good))))",
    "(2 (2 Contempt) (2 (2 and) (2 8 1\\/2)))",  # a leaf with a space, as on train line 4342
    "(1 (2 It) (1 (2 is) (1 (2 not) (3 good))))",  # a duplicate sentence: its phrases count once
    "(4 (2 -LRB-) (4 (4 great) (2 -RRB-)))",
])


# ---- trees -------------------------------------------------------------------------------------------------------
def test_parse_tree_structure_and_labels():
    t = D.parse_tree("(3 (2 (2 The) (2 film)) (3 (2 is) (4 (4 wonderful) (2 .))))")
    assert t.label == 3 and t.word is None and len(t.children) == 2
    assert t.leaves() == ["The", "film", "is", "wonderful", "."]
    assert [n.label for n in t.nodes()] == [3, 2, 2, 2, 3, 2, 4, 4, 2]


def test_leaf_with_space_is_one_leaf():
    for space in (" ", "\u00a0"):  # plain and non-breaking (the real file has the latter)
        t = D.parse_tree(f"(1 (0 Contempt) (2 8{space}1\\/2))")
        assert t.leaves() == ["Contempt", f"8{space}1\\/2"]
        assert D.normalise_leaves(t.leaves()) == ["contempt", "8", "1/2"]


def test_malformed_trees_raise():
    for bad in ("(3 (2 a) (2 b)", "3 a)", "(x a)", "(2 a))", "(2 (2 a) (2 b)) (2 c)", ""):
        with pytest.raises(D.TreeError):
            D.parse_tree(bad)


def test_ptb_escapes_are_undone():
    assert D.normalise_leaves(["-LRB-", "``", "Writer\\/director", "''", "\\*\\*\\*", "Clichés"]) == \
        ["(", '"', "writer/director", '"', "***", "cliches"]


# ---- SST-2 -------------------------------------------------------------------------------------------------------
def test_sst2_sentences_drop_neutral_roots():
    trees = D.read_trees(TREES)
    assert len(trees) == 5
    sents = D.sst2_sentences(trees)
    assert [y for _, y in sents] == [1, 0, 0, 1]  # the neutral "Contempt and 8 1/2" is gone
    assert sents[0][0] == ["the", "film", "is", "wonderful", "."]


def test_sst2_phrases_every_nonneutral_node_once():
    phrases = dict((tuple(t), y) for t, y in D.sst2_phrases(D.read_trees(TREES)))
    assert len(phrases) == len(D.sst2_phrases(D.read_trees(TREES)))  # deduplicated
    assert phrases[("good",)] == 1
    assert phrases[("not", "good")] == 0
    assert phrases[("it", "is", "not", "good")] == 0
    assert phrases[("wonderful", ".")] == 1
    assert ("the", "film") not in phrases  # neutral
    assert ("8", "1/2") not in phrases
    assert phrases[("(", "great", ")")] == 1


def test_binary_label():
    assert [D.binary_label(k) for k in range(5)] == [0, 0, None, 1, 1]


def _write_split_files(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for s in D.SPLITS:
        (folder / f"{s}.txt").write_text(TREES + "\n", encoding="utf-8")


def test_load_data_reads_txt_folder_and_zip(tmp_path):
    _write_split_files(tmp_path / "a" / "trees")
    s = TASK.load_data(tmp_path / "a")
    assert len(s.val) == 4 and len(s.test) == 4 and len(s.train) == len(D.sst2_phrases(D.read_trees(TREES)))
    assert s.meta["vocab"][:2] == [D.PAD, D.UNK]
    assert [p.name for p in s.files] == ["train.txt", "dev.txt", "test.txt"]
    zdir = tmp_path / "b"
    zdir.mkdir()
    with zipfile.ZipFile(zdir / "trainDevTestTrees_PTB.zip", "w") as z:
        for sp in D.SPLITS:
            z.writestr(f"trees/{sp}.txt", TREES + "\n")
    s2 = TASK.load_data(zdir)
    assert s2.test.labels == s.test.labels and s2.files[0].suffix == ".zip"
    with pytest.raises(FileNotFoundError):
        TASK.load_data(tmp_path / "nothing")


def test_batches_cover_every_example_once_bucketed():
    s = TASK.synthetic_data(0)
    seen = 0
    for b in TASK.batches(s.train, 8, shuffle=True, seed=3):
        assert b["x"].shape[0] == b["lengths"].shape[0] == b["y"].shape[0]
        assert int(b["lengths"].max()) == b["x"].shape[1]
        seen += b["x"].shape[0]
    assert seen == len(s.train)
    b = collate([[5, 6, 7], [8]], [1, 0])
    assert b["x"].tolist() == [[5, 6, 7], [8, 0, 0]] and b["lengths"].tolist() == [3, 1]


# ---- tokenizer ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, tokens", [
    ("I didn't like it.", ["i", "did", "n't", "like", "it", "."]),
    ("I can't, and I won't!", ["i", "ca", "n't", ",", "and", "i", "wo", "n't", "!"]),
    ("It's what you're after", ["it", "'s", "what", "you", "'re", "after"]),
    ("It\u2019s great \u2014 really", ["it", "'s", "great", "--", "really"]),
    ("dont do it", ["do", "n't", "do", "it"]),
    ("im not impressed thats all", ["i", "'m", "not", "impressed", "that", "'s", "all"]),
    ("CANT WAIT", ["ca", "n't", "wait"]),
    ("I cannot say", ["i", "can", "not", "say"]),
    ("A clich\u00e9d (but fun) movie...", ["a", "cliched", "(", "but", "fun", ")", "movie", "..."]),
    ('Mr. Smith said "wow".', ["mr.", "smith", "said", '"', "wow", '"', "."]),
    ("<b>Great</b> &amp; fun", ["great", "&", "fun"]),
    ("tab\tand\x00null", ["tab", "and", "null"]),
])
def test_tokenize_like_the_treebank(text, tokens):
    assert D.tokenize(text) == tokens


# ---- serving -----------------------------------------------------------------------------------------------------
def test_contract_and_demos(model):
    assert check_task(TASK) == []
    for demo in TASK.demos():
        out = TASK.predict(model, demo.input)
        assert out["label"] in D.LABELS


@pytest.mark.parametrize("bad", ["", "   \n\t ", None, 123, "<p></p>", "\x00\x01\x02"])
def test_bad_inputs_give_a_clear_message(model, bad):
    with pytest.raises(BadInput) as e:
        TASK.predict(model, bad)
    assert str(e.value)


@pytest.mark.parametrize("odd", ["\U0001F600\U0001F44D great", "\u8fd9\u90e8\u7535\u5f71\u5f88\u597d",
                                 "<script>alert(1)</script> bad film", "\u202eevil\u200b text", "a"])
def test_odd_inputs_get_an_answer(model, odd):
    out = TASK.predict(model, odd)
    assert 0.0 <= out["p_positive"] <= 1.0
    assert len(out["prefix_p"]) == len(out["tokens"]) > 0


def test_predict_fields_and_prefixes(model):
    out = TASK.predict(model, "I expected to hate it and I didn't.")
    assert set(out) >= {"label", "p_positive", "tokens", "prefix_p", "unknown", "truncated"}
    assert out["tokens"][-3:] == ["did", "n't", "."]
    assert abs(out["prefix_p"][-1] - out["p_positive"]) < 1e-5  # the last prefix is the whole review
    assert out["truncated"] is False and "hate" in out["unknown"]


def test_huge_input_is_truncated_and_fast(model):
    text = "a good film , " * 8000  # 112,000 characters
    t0 = time.time()
    out = TASK.predict(model, text)
    assert time.time() - t0 < 2.0
    assert out["truncated"] and len(out["tokens"]) == MAX_TOKENS and "first" in out["note"]


def test_bidirectional_prefixes_are_sampled_and_exact_at_the_end():
    splits = TASK.synthetic_data(0)
    m = TASK.build_model({**TASK.config, "bidirectional": True, "hidden_size": 8, "embed_size": 8}, splits.meta)
    m.eval()
    out = TASK.predict(m, "the film is good " * 40)
    assert len(out["prefix_p"]) == len(out["prefix_ends"]) <= 48
    assert out["prefix_ends"][-1] == len(out["tokens"])
    assert abs(out["prefix_p"][-1] - out["p_positive"]) < 1e-5
    short = TASK.predict(m, "not good")
    x = torch.tensor([[m.runtime.vocab.stoi.get(t, 1) for t in short["tokens"]]])
    exact = torch.softmax(m.prefix_logits(x)[0], -1)[:, 1]
    assert torch.allclose(exact, torch.tensor(short["prefix_p"]), atol=1e-5)


def test_inspect_loss_labels_are_the_words(model):
    loss, labels = TASK.inspect_loss(model, "Not bad at all.")
    assert labels == ["not", "bad", "at", "all", "."] and loss.dim() == 0 and loss.requires_grad


# ---- negation set ------------------------------------------------------------------------------------------------
def test_negation_set_format(model):
    assert 12 <= len(NEGATION_SET) <= 20
    texts = [t for t, _, _ in NEGATION_SET]
    assert len(set(texts)) == len(texts)
    for text, label, kind in NEGATION_SET:
        assert text.strip() and kind and label in D.LABELS
    for must in ("not at all good", "not bad at all", "beautiful but not intelligent", "and i didn't"):
        assert any(must in t.lower() for t in texts), must
    rows = TASK.negation_report(model)
    assert len(rows) == len(NEGATION_SET) and all(isinstance(r["right"], bool) for r in rows)


def test_evaluate_carries_the_negation_set(model):
    """Every evaluation reports the negation set's score (so the card and the history show it): the same number
    negation_report gives."""
    splits = TASK.synthetic_data(0)
    res = TASK.evaluate(model, splits.test)
    rows = TASK.negation_report(model)
    assert res["negation_accuracy"] == sum(r["right"] for r in rows) / len(rows)


def test_committed_card_negation_score_is_real():
    """The served weights' card: its negation score is what the committed model gets now."""
    from core.weights import load_model

    if not (TASK.weights_path() / "card.json").exists():
        pytest.skip("no trained sentiment weights")
    served = load_model(TASK)
    if "negation_accuracy" not in served.runtime.card.metrics:
        pytest.skip("this card predates the negation score")
    rows = TASK.negation_report(served)
    assert served.runtime.card.metrics["negation_accuracy"] == pytest.approx(sum(r["right"] for r in rows) / len(rows))


def test_model_card_says_the_negation_score_is_not_blind(monkeypatch):
    """The card's metrics table is captioned "test split never seen"; the negation row gets its caveat beside it."""
    from streamlit.testing.v1 import AppTest

    def script():
        import dataclasses

        from bench._common import untrained_card
        from core.ui.card import render_model_card
        from tasks.sentiment import TASK

        card = untrained_card(TASK, {}, {}, None)
        render_model_card(TASK, dataclasses.replace(card, metrics={"accuracy": 0.9, "negation_accuracy": 0.5}))

    at = AppTest.from_function(script, default_timeout=60).run()
    assert not at.exception, [e.message for e in at.exception]
    assert any("negation" in str(c.value) and "not a blind test" in str(c.value) for c in at.caption)


# ---- which words pushed the answer ---------------------------------------------------------------------------------
def test_integrated_gradients_add_up_to_the_change():
    """Completeness: the steps' values add up to f(x) - f(baseline); for a linear f they are exactly w . (x - b)."""
    from core.inspect import integrated_gradients

    torch.manual_seed(0)
    x, b, w = torch.randn(6, 4), torch.randn(6, 4), torch.randn(6, 4)
    lin = integrated_gradients(lambda p: (p * w).sum((1, 2)), x, b, steps=4)  # (K, T, E) -> (K,)
    assert torch.allclose(torch.from_numpy(lin.values).float(), ((x - b) * w).sum(-1), atol=1e-5)
    smooth = integrated_gradients(lambda p: torch.tanh(p @ w.T).sum((1, 2)), x, None, steps=16, max_steps=256)
    assert smooth.f_baseline == pytest.approx(0.0)
    assert smooth.values.sum() == pytest.approx(smooth.f_input, abs=0.05 * max(1.0, abs(smooth.f_input)))
    assert smooth.gap <= 0.05 * max(1.0, abs(smooth.f_input)) and smooth.steps >= 16
    with pytest.raises(ValueError):
        integrated_gradients(lambda p: p.sum((1, 2)), x, torch.zeros(3, 4))


def test_word_pushes_do_not_vanish_when_the_model_is_sure(model):
    """A model that is very sure (P = 0.0...%): the loss gradient against its own answer is ~0 for every word, the
    pushes (integrated gradients of the log-odds) are not, and they add up to the log-odds' change."""
    import copy

    from core.inspect import inspect_model

    text = "The movie was not at all good."
    sure = copy.deepcopy(model)
    with torch.no_grad():
        sure.head.bias.zero_()
        m0 = TASK.word_pushes(sure, text)["margin"]
        sure.head.weight.mul_(12.0 / abs(m0))  # log-odds -12 or +12: P(positive) = 6e-6 or 1 - 6e-6
    p = TASK.predict(sure, text)["p_positive"]
    assert min(p, 1 - p) < 1e-3  # saturated
    old = inspect_model(sure, lambda m: TASK.inspect_loss(m, text)).saliency["grad_x_input"].abs().max()
    push = TASK.word_pushes(sure, text)
    assert len(push["values"]) == len(push["tokens"]) == 8
    assert max(abs(v) for v in push["values"]) > 1000 * max(float(old), 1e-12)
    assert max(abs(v) for v in push["values"]) > 0.5
    assert sum(push["values"]) == pytest.approx(push["margin"] - push["baseline"], abs=push["gap"] + 1e-6)
    assert abs(push["margin"]) == pytest.approx(12.0, rel=1e-3)
    assert push["margin"] == pytest.approx(float(torch.logit(torch.tensor(p, dtype=torch.float64))), rel=1e-3)


def _page(text: str | None = None):
    from test_contract import typed_page

    return typed_page("sentiment", "A movie review", text)


def _pushes_shown(at) -> tuple[dict[str, float], float]:
    """(word -> value from each word's hover text, the legend's upper number) of "Which words pushed the answer"."""
    import re

    html = next(h.proto.body for h in at.get("html") if "push towards positive" in h.proto.body)
    words = {m.group(1): float(m.group(2)) for m in re.finditer(r"title=\"&#x27;(.*?)&#x27;: [^=\"]* = ([-+0-9.e]+)\"",
                                                                  html)}
    hi = float(re.findall(r"</span>([-+0-9.e]+)</div>", html)[-1])
    return words, hi


def test_page_pushes_have_a_legend_that_matches_the_colours():
    """The lesson's example on the served model (P(positive) = 0.1%): answered negative, and the legend's numbers are
    the largest push shown (not "-0.00 ... 0.00" while the words are strongly coloured); "not" pushes negative."""
    from core.weights import load_model

    if not (TASK.weights_path() / "card.json").exists():
        pytest.skip("no trained sentiment weights")
    at = _page("The movie was not at all good.")
    assert next(m for m in at.metric if m.label == "The model says").value == "negative"
    words, hi = _pushes_shown(at)
    assert set(words) >= {"the", "movie", "not", "good"}, words
    assert hi >= 0.5 and hi == pytest.approx(max(abs(v) for v in words.values()), rel=0.01)
    assert words["not"] < 0
    push = TASK.word_pushes(load_model(TASK), "The movie was not at all good.")
    caption = next(str(c.value) for c in at.caption if "integrated gradients" in str(c.value))
    assert f"{push['margin']:+.2f}" in caption and f"{sum(push['values']):+.2f}" in caption


def test_unfamiliar_input_is_called_a_guess_and_english_is_not():
    """The served model on another language, emoji and an English review: a guess note only for the first two."""
    from core.serving import load_served

    served = load_served(TASK).answering(False)
    for text in ["Der Film war schrecklich", "La película fue terrible", "这部电影很好看", "😀😀😀😀"]:
        assert "guess" in (TASK.predict(served, text)["guess"] or ""), text
    for text in ["the movie was not at all good", "what a waste of time", "i loved every minute of it"]:
        assert TASK.predict(served, text)["guess"] is None, text


def test_guess_note_counts_words_not_punctuation():
    from core.data import guess_note

    assert guess_note(["fue", ".", "."], [True, False, False]) is not None  # known punctuation does not dilute it
    assert guess_note(["fue", "terrible"], [True, False]) is not None  # half of the words: a guess
    assert guess_note(["a", "b", "c"], [True, False, False]) is None
    assert "one word" in guess_note(["🙂"], [True])
