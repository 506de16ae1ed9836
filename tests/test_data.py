"""core.data: padding, length-bucketed batches, row splits, multi-reference BLEU and strict configs."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass

import pytest
import torch

from core.data import (
    bucket_batches,
    config_from_dict,
    corpus_bleu,
    corpus_chrf,
    pad,
    reference_streams,
    seq_lengths,
    shuffled_batches,
    split_rows,
)


# ---- pad ------------------------------------------------------------------------------------------------------------
def test_pad_fills_after_each_end_and_keeps_lengths():
    seqs = [[5, 6, 7], [8], []]
    x = pad(seqs, value=-1)
    assert x.dtype == torch.long and x.tolist() == [[5, 6, 7], [8, -1, -1], [-1, -1, -1]]
    assert seq_lengths(seqs).tolist() == [3, 1, 0]
    assert pad([], 0).shape == (0, 0)
    assert pad([[1, 2]]).tolist() == [[1, 2]]  # default value 0, nothing to fill


# ---- bucket_batches -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shuffle", [False, True])
def test_bucket_batches_partition_by_length(shuffle):
    rng = random.Random(0)
    lengths = [rng.randint(1, 30) for _ in range(203)]
    chunks = bucket_batches(lengths, 16, shuffle, seed=4)
    assert sorted(i for c in chunks for i in c) == list(range(len(lengths)))  # every index exactly once
    assert sorted(len(c) for c in chunks)[1:] == [16] * (len(chunks) - 1)  # only one batch may be short
    # sorted by length: batches never overlap in length (a batch's longest <= the next batch's shortest)
    spans = sorted((min(lengths[i] for i in c), max(lengths[i] for i in c)) for c in chunks)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    assert chunks == bucket_batches(lengths, 16, shuffle, seed=4)  # same seed, same batches


def test_bucket_batches_are_the_ones_sentiment_and_translation_made():
    """Written down from the batching sentiment and translation each carried before core.data (same seed, same
    batches, so their training order did not change when they started to share this one)."""
    lengths = [4, 2, 4, 1, 2, 4, 3, 1, 2, 3]
    assert bucket_batches(lengths, 3, True, seed=7) == [[3, 7, 8], [9, 0, 5], [2], [1, 4, 6]]
    assert bucket_batches(lengths, 3, False, seed=7) == [[3, 7, 1], [4, 8, 6], [9, 0, 2], [5]]


def test_bucket_batches_shuffle_changes_with_the_seed_and_plain_order_does_not():
    lengths = [3] * 40 + [5] * 40
    a, b = bucket_batches(lengths, 8, True, seed=0), bucket_batches(lengths, 8, True, seed=1)
    assert a != b
    assert bucket_batches(lengths, 8, False, seed=0) == bucket_batches(lengths, 8, False, seed=1)
    assert bucket_batches(lengths, 8, False)[0] == list(range(8))  # ties in index order
    with pytest.raises(ValueError, match="batch_size"):
        bucket_batches(lengths, 0, False)


# ---- split_rows -----------------------------------------------------------------------------------------------------
def _old_template_split(rows, seed=0):
    """The split every core/templates/*.py.tmpl carried before core.data."""
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    n_test = n_val = max(1, len(rows) // 10)
    return rows[n_test + n_val:], rows[n_test:n_test + n_val], rows[:n_test]


def test_shuffled_batches_partition_in_seeded_order():
    plain = shuffled_batches(10, 4, shuffle=False)
    assert plain == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    order = list(range(10))
    random.Random(3).shuffle(order)  # the order the templates and the names plugin drew before
    assert shuffled_batches(10, 4, shuffle=True, seed=3) == [order[:4], order[4:8], order[8:]]
    assert shuffled_batches(10, 4, shuffle=True, seed=4) != shuffled_batches(10, 4, shuffle=True, seed=3)
    assert shuffled_batches(0, 4, shuffle=True) == []
    with pytest.raises(ValueError):
        shuffled_batches(10, 0, shuffle=False)


@pytest.mark.parametrize("n", [3, 10, 57, 400])
def test_split_rows_is_the_templates_split(n):
    train, val, test = split_rows(range(n), seed=3)
    assert (train, val, test) == _old_template_split(range(n), 3)
    assert sorted(train + val + test) == list(range(n)) and len(val) == len(test) == max(1, n // 10)


def test_split_rows_caps_the_evaluation_rows():
    train, val, test = split_rows(range(50_000), seed=0, max_eval=1000)
    assert len(val) == len(test) == 1000 and len(train) == 48_000
    assert split_rows(range(50), seed=0) != split_rows(range(50), seed=1)


# ---- BLEU -----------------------------------------------------------------------------------------------------------
def test_reference_streams_leave_missing_references_absent():
    streams = reference_streams([["a b", "a c"], ["d e"]])
    assert streams == [["a b", "d e"], ["a c", None]]  # never a copy of reference 0
    with pytest.raises(ValueError, match="no reference"):
        reference_streams([["a"], []])
    with pytest.raises(ValueError, match="empty"):
        reference_streams([["a", ""]])


def test_bleu_uses_every_reference_and_any_number_of_them():
    hyps = ["Je suis fatigué .", "Il pleut ."]
    many = [["Je suis épuisé .", "Je suis fatigué ."], ["Il pleut ."]]
    one = [["Je suis épuisé ."], ["Il pleut ."]]
    assert corpus_bleu(hyps, many) == pytest.approx(100.0)
    assert corpus_bleu(hyps, one) < 80.0
    assert corpus_chrf(hyps, many) == pytest.approx(100.0) and corpus_chrf(hyps, one) < 100.0
    assert corpus_bleu([], []) == 0.0
    with pytest.raises(ValueError, match="hypotheses"):
        corpus_bleu(["a"], [])


def test_bleu_order_and_case():
    refs = [["The dog runs on the grass"]]
    assert corpus_bleu(["the dog runs on the grass"], refs) < 100.0  # case-sensitive by default
    assert corpus_bleu(["the dog runs on the grass"], refs, lowercase=True) == pytest.approx(100.0)
    r1 = corpus_bleu(["a cat sits in the house"], [["a dog runs on the grass"]], max_order=1, lowercase=True)
    assert r1 == pytest.approx(100 * 2 / 6)  # "a", "the": 2 of 6 unigrams match


def _old_caption_bleu(hyps, refs, n):
    """captioning's old rule: a missing reference was filled with the sentence's reference 0."""
    from sacrebleu.metrics import BLEU

    k = max(len(r) for r in refs)
    streams = [[r[j] if j < len(r) else r[0] for r in refs] for j in range(k)]
    return BLEU(max_ngram_order=n, lowercase=True).corpus_score(hyps, streams).score


def test_the_two_old_missing_reference_rules_give_the_same_bleu():
    """Why no card number moved when captioning and translation started to share one BLEU: filling a gap with a
    copy of reference 0 adds no n-gram and no reference length that was not there, so BLEU is unchanged."""
    hyps = ["a dog runs on grass", "two children play in the snow", "a man rides a red bike", "a cat"]
    refs = [["a dog is running on the grass", "the brown dog runs", "dog on grass"],
            ["two kids play in snow"],
            ["a man on a bicycle", "a man rides a bike down the road", "someone cycling", "a red bike", "a man"],
            ["a small cat sleeps", "the cat"]]
    for n in range(1, 5):
        assert corpus_bleu(hyps, refs, max_order=n, lowercase=True) == pytest.approx(_old_caption_bleu(hyps, refs, n))


# ---- config_from_dict -----------------------------------------------------------------------------------------------
@dataclass
class _Cfg:
    cell: str = "gru"  # a test config
    hidden_size: int = 8  # a test config


def test_config_from_dict_builds_and_is_strict():
    assert config_from_dict(_Cfg, {"cell": "lstm", "hidden_size": 4}) == _Cfg("lstm", 4)
    assert config_from_dict(_Cfg, asdict(_Cfg())) == _Cfg()
    with pytest.raises(ValueError, match=r"unknown keys \['hiden_size'\]"):
        config_from_dict(_Cfg, {"cell": "lstm", "hidden_size": 4, "hiden_size": 4})
    with pytest.raises(ValueError, match=r"missing keys \['hidden_size'\]"):
        config_from_dict(_Cfg, {"cell": "lstm"})
    with pytest.raises(TypeError):
        config_from_dict(dict, {})


def test_every_task_config_is_built_strictly():
    """The tasks that build a config dataclass reject a card config with a typo instead of ignoring it."""
    from core.registry import discover

    reg = discover()
    for name in ("sentiment", "ner", "video", "image_classification", "music"):
        task = reg.tasks[name]
        meta = task.synthetic_data(0).meta
        with pytest.raises(ValueError, match="unknown keys"):
            task.build_model({**task.config, "not_a_setting": 1}, meta)


def test_restore_apostrophes_gives_contractions_back_in_the_case_typed():
    from core.data import restore_apostrophes

    assert restore_apostrophes("i dont know, im tired and thats that") == "i don't know, I'm tired and that's that"
    assert restore_apostrophes("Dont go. YOU CANT.") == "Don't go. YOU CAN'T."
    assert restore_apostrophes("whats wrong? doesnt matter") == "what's wrong? doesn't matter"
    # words of their own are left as typed: only the sentence could tell "its" from "it's" or "were" from "we're"
    for text in ("its fine", "were going", "i feel ill", "well done", "id card", "he lets me", "I don't know"):
        assert restore_apostrophes(text) == text
    assert restore_apostrophes("dontcare undone") == "dontcare undone"  # whole words only


def test_spell_out_chat_writes_short_forms_out_unless_the_model_knows_them():
    from core.data import spell_out_chat

    assert spell_out_chat("how r u") == "how are you"
    assert spell_out_chat("thx, see u tmrw") == "thanks, see you tomorrow"
    assert spell_out_chat("idk") == "I don't know" and spell_out_chat("HOW R U") == "HOW ARE YOU"
    assert spell_out_chat("i wanna go", known={"wanna"}.__contains__) == "i wanna go"  # a word the model learnt
    # in capitals "U" is the chat "u", even for a model that knows the letter U (of "U.S.", "U-boat")
    assert spell_out_chat("HEY HOW R U", known={"U", "R", "HEY"}.__contains__) == "HEY HOW ARE YOU"
    # not a chat form here: inside other words, abbreviations, initials, a single capital letter in ordinary text
    for text in ("the u.s. army", "a u-turn", "R2-D2", "Dr. R. Smith", "Plan U", "ur welcome", "you are"):
        assert spell_out_chat(text) == text, text
