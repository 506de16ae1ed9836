"""core.generic's shape classes and core.data.Vocab.

Each shape class is subclassed the way a plugin does (config, rows -> make_splits, demos), trained briefly on tiny
made-up data that a network learns in a few hundred steps, and checked where it can be wrong: its baseline is the
one computed by hand from the same rows, the trained model beats it, predict answers in the shape's form, and the
inspector's loss has a gradient and one label per step. Vocab: round trips, specials, size limits and the meta
stored on today's cards (Your data's and rnnlab-names' learnt-token lists, captioning's list with its specials)."""

from __future__ import annotations

import copy
import math
import random
from collections import Counter
from dataclasses import asdict, dataclass

import pytest
import torch

from core.data import BOS, EOS, PAD, SPECIALS, UNK, Vocab
from core.generic import (
    SHAPE_CLASSES,
    FeatureClassifier,
    Seq2SeqTask,
    SequenceClassifier,
    SequenceConfig,
    SequenceGenerator,
    SequenceRegressor,
    SequenceTagger,
)
from core.generic.base import read_pairs, write_pairs
from core.generic.features import read_csv, write_csv
from core.generic.generator import read_lines, write_lines
from core.inspect import inspect_model
from core.task import BadInput, Demo, Recipe, check_task
from core.train import fit

# ---- Vocab ----------------------------------------------------------------------------------------------------------


def test_vocab_round_trip_and_specials():
    v = Vocab.build([["b", "a", "b"], ["c", "b", "a"]])
    assert v.itos[:4] == list(SPECIALS) == ["<pad>", "<unk>", "<s>", "</s>"]
    assert (PAD, UNK, BOS, EOS) == (0, 1, 2, 3)
    assert v.words == ["b", "a", "c"]  # by count, ties alphabetical
    ids = v.encode(["a", "c", "zzz"])
    assert ids == [5, 6, UNK]
    assert v.decode(ids + [EOS, 4]) == ["a", "c"]  # stops at </s>, drops <unk>
    assert v.decode(ids, unk_as="?") == ["a", "c", "?"]
    assert v.decode([BOS, PAD, 4]) == ["b"]  # specials never come back as text
    assert v.unknown(["a", "zzz", "q", "zzz"]) == ["q", "zzz"]
    assert len(v) == 7 and Vocab.from_meta(v.to_meta()) == v


def test_vocab_limits_order_and_case():
    lists = [["x"] * 5 + ["y"] * 3 + ["z"]]
    assert Vocab.build(lists, max_size=2).words == ["x", "y"]
    assert Vocab.build(lists, min_count=3).words == ["x", "y"]
    assert Vocab.build(lists, first="qz", order="alpha").words == ["q", "z", "x", "y"]
    folded = Vocab(["boring", "The", "the"], fold_case=True)
    assert folded.encode(["Boring", "THE", "the", "dull"]) == [4, 5, 6, UNK]  # any case: its most frequent form
    assert Vocab(["boring"]).encode(["Boring"]) == [UNK]
    assert Vocab(["a"], specials=("<pad>",), unk=None).encode(["a", "b"]) == [1]  # no <unk>: dropped


def test_vocab_reads_the_meta_cards_store_today():
    your_data = {"vocab": ["the", "film", "."], "src_vocab": ["a"], "tgt_vocab": ["b", "c"]}
    assert Vocab.from_meta(your_data).itos == list(SPECIALS) + ["the", "film", "."]
    assert len(Vocab.from_meta(your_data, "tgt_vocab")) == 6
    names = {"chars": list("ABab '-") + ["é"]}
    assert Vocab.from_meta(names, "chars").encode(list("Abé")) == [4, 7, 11]
    caption_specials = ("<pad>", "<bos>", "<eos>", "<unk>")
    captioning = {"vocab": list(caption_specials) + ["a", "dog"]}
    v = Vocab.from_meta(captioning, specials=caption_specials, with_specials=True)
    assert v.encode(["a", "cat"]) == [4, 3] and v.unk_id == 3
    assert v.to_meta(with_specials=True) == captioning
    with pytest.raises(ValueError, match="specials"):
        Vocab.from_meta({"vocab": ["a", "dog"]}, specials=caption_specials, with_specials=True)


# ---- the shape classes, as plugins use them -------------------------------------------------------------------------

FAST = Recipe(metric="accuracy", epochs=40, batch_size=16, lr=1e-2, patience=40, clip_norm=1.0)


@dataclass
class Small(SequenceConfig):
    """A network small enough to learn the toys below in seconds."""

    embed_size: int = 12  # ~10 tokens
    hidden_size: int = 24  # one fact to carry per row


def with_recipe(metric: str, higher: bool) -> Recipe:
    return Recipe(**{**asdict(FAST), "metric": metric, "higher_is_better": higher})


def classifier_rows(seed: int = 0, n: int = 160) -> list[tuple[str, str]]:
    """The label is the first letter (a: yes, b: no); 3 of 4 rows say no, so the majority class scores 0.75."""
    rng = random.Random(seed)
    return [(("a" if k % 4 == 0 else "b") + "".join(rng.choice("cde") for _ in range(rng.randint(1, 4))),
             "yes" if k % 4 == 0 else "no") for k in range(n)]


class Polar(SequenceClassifier):
    name, title, page = "polar", "Polar", "x:y"
    Config, config, recipe, tokens = Small, asdict(Small()), FAST, "char"

    def synthetic_data(self, seed=0):
        return self.make_splits(classifier_rows(seed), [], "toy", seed)

    def demos(self):
        return [Demo("a row", "acde")]


class Tags(SequenceTagger):
    """Names (ann, bob) are B-PER entities, every other word O."""

    name, title, page = "tags", "Tags", "x:y"
    Config, config, recipe = Small, asdict(Small(bidirectional=True)), with_recipe("f1", True)

    def synthetic_data(self, seed=0):
        rng = random.Random(seed)
        rows = []
        for _ in range(160):
            words = [rng.choice(["ann", "bob", "the", "saw", "x"]) for _ in range(rng.randint(2, 6))]
            tags = ["B-PER" if w in ("ann", "bob") else "O" for w in words]
            rows.append((" ".join(words), " ".join(tags)))
        return self.make_splits(rows, [], "toy", seed)

    def demos(self):
        return [Demo("names", "ann saw bob")]


class Runs(SequenceGenerator):
    name, title, page = "runs", "Runs", "x:y"
    Config, config, recipe, tokens = Small, asdict(Small()), with_recipe("nll", False), "char"

    def synthetic_data(self, seed=0):
        rng = random.Random(seed)
        return self.make_splits(["abcdefgh"[s:s + rng.randint(2, 5)] for s in (rng.randrange(4) for _ in range(160))],
                                [], "toy", seed)


class Upper(Seq2SeqTask):
    """Each letter -> its capital: copying the input is never right, the model has to learn the map."""

    name, title, page = "upper", "Upper", "x:y"
    Config, config, recipe, tokens = Small, asdict(Small()), with_recipe("exact", True), "char"

    def synthetic_data(self, seed=0):
        rng = random.Random(seed)
        words = ["".join(rng.choice("abc") for _ in range(rng.randint(1, 3))) for _ in range(200)]
        return self.make_splits([(w, w.upper()) for w in words], [], "toy", seed)

    def demos(self):
        return [Demo("abc", "abc")]


class Circle(FeatureClassifier):
    name, title, page = "circle", "Circle", "x:y"
    Config, config, recipe, features = Small, asdict(Small(cell="rnn_tanh")), FAST, ["x", "y"]

    def synthetic_data(self, seed=0):
        rng = random.Random(seed)
        pts = [(rng.uniform(-2, 2), rng.uniform(-2, 2)) for _ in range(200)]
        return self.make_splits([([x, y], "right" if x > 0.5 else "left") for x, y in pts], [], "toy", seed)

    def demos(self):
        return [Demo("a point", "1.5, 0")]


class Length(SequenceRegressor):
    name, title, page = "length", "Length", "x:y"
    Config, config, recipe, tokens = Small, asdict(Small()), with_recipe("mae", False), "char"
    target_name = "letters"

    def synthetic_data(self, seed=0):
        rng = random.Random(seed)
        texts = ["".join(rng.choice("ab") for _ in range(rng.randint(1, 9))) for _ in range(160)]
        return self.make_splits([(t, str(len(t))) for t in texts], [], "toy", seed)

    def demos(self):
        return [Demo("five", "aabab")]


def trained(task):
    splits = task.synthetic_data(0)
    torch.manual_seed(0)
    model = task.build_model(copy.deepcopy(task.config), splits.meta)
    res = fit(model, task, splits, task.recipe, torch.device("cpu"), progress=False, max_steps=300)
    return splits, model, res


def check_inspect(task, model, n_steps: int):
    ins = inspect_model(model, lambda m: task.inspect_loss(m, task.demos()[0].input))
    assert (ins.params.grad_norm > 0).any() and len(ins.saliency) == len(ins.labels) == n_steps


def test_every_shape_has_its_class_and_a_subclass_owes_only_its_data():
    assert set(SHAPE_CLASSES) == {"one_to_one", "many_to_one", "many_to_many", "one_to_many", "encoder_decoder"}
    for task in (Polar(), Tags(), Runs(), Upper(), Circle(), Length()):
        assert task.shape == SHAPE_CLASSES[task.shape].shape
        assert check_task(task) == [], type(task).__name__  # load_data: the class reads its data_file


def test_classifier_learns_beats_the_majority_class_and_answers():
    task = Polar()
    splits, model, res = trained(task)
    m = task.evaluate(model, splits.test)
    labels = splits.meta["labels"]
    majority = Counter(y for _, y in splits.train).most_common(1)[0][0]
    assert labels[splits.meta["majority"]] == "no" and majority == labels.index("no")
    want = sum(y == majority for _, y in splits.test) / len(splits.test)
    assert m["baseline_accuracy"] == pytest.approx(want) and m["chance"] == 0.5 and m["rows"] == len(splits.test)
    assert m["accuracy"] > m["baseline_accuracy"] and res.history[-1].train_loss < res.history[0].train_loss
    out = task.predict(model, "acdd")
    assert out["label"] == "yes" and set(out["probs"]) == {"yes", "no"}
    assert [s["char"] for s in out["after_each_char"]] == list("acdd")
    with pytest.raises(BadInput):
        task.predict(model, "   ")
    check_inspect(task, model, 4)


def test_tagger_scores_entities_against_all_o_and_tags_each_word():
    task = Tags()
    splits, model, _ = trained(task)
    assert splits.meta["entities"] is True and splits.meta["split_punct"] is False
    m = task.evaluate(model, splits.test)
    assert m["baseline_f1"] == 0.0  # tagging everything O finds no entity
    tags = splits.meta["tags"]
    words = [t for _, ts in splits.test for t in ts]
    assert m["baseline_accuracy"] == pytest.approx(sum(t == splits.meta["majority"] for t in words) / len(words))
    assert tags[splits.meta["majority"]] == "O"
    assert m["f1"] > 0.9 and m["accuracy"] > m["baseline_accuracy"]
    out = task.predict(model, "bob saw the x")
    assert [t["word"] for t in out["tokens"]] == ["bob", "saw", "the", "x"]
    assert [t["tag"] for t in out["tokens"]] == ["B-PER", "O", "O", "O"]
    check_inspect(task, model, 3)


def test_generator_beats_the_unigram_model_and_writes_from_a_start():
    task = Runs()
    splits, model, _ = trained(task)
    ids = [i for seq in splits.train for i in seq + [EOS]]
    counts, n = Counter(ids), len(splits.meta["vocab"]) + len(SPECIALS)
    logp = {i: math.log((counts[i] + 1) / (len(ids) + n)) for i in range(n)}
    test_ids = [i for seq in splits.test for i in seq + [EOS]]
    m = task.evaluate(model, splits.test)
    assert m["baseline_nll"] == pytest.approx(-sum(logp[i] for i in test_ids) / len(test_ids), abs=1e-4)
    assert m["nll"] < m["baseline_nll"]
    out = task.predict(model, {"start": "b", "temperature": 0.3, "seed": 1, "count": 3})
    assert len(out["sequences"]) == 3 and all(s.startswith("bc") for s in out["sequences"])
    assert out == task.predict(model, {"start": "b", "temperature": 0.3, "seed": 1, "count": 3})  # seeded
    with pytest.raises(BadInput):
        task.predict(model, {"start": "b", "temperature": 9})
    ins = inspect_model(model, lambda mm: task.inspect_loss(mm, task.demos()[0].input))
    assert ins.labels[0] == "<s>" and (ins.params.grad_norm > 0).any()


def test_seq2seq_beats_copying_and_the_common_output():
    task = Upper()
    splits, model, _ = trained(task)
    m = task.evaluate(model, splits.test)
    assert m["copy_exact"] == 0.0  # lower case in, upper case out: a copy is never right
    common = Counter(tuple(t) for _, t in splits.train).most_common(1)[0][0]
    assert m["common_exact"] == pytest.approx(sum(tuple(t) == common for _, t in splits.test) / len(splits.test))
    assert m["exact"] > max(m["copy_exact"], m["common_exact"]) and m["exact_rows"] == len(splits.test)
    out = task.predict(model, "cab")
    assert out["output"] == "CAB" and out["input"] == "cab"
    assert len(out["attention"]["weights"]) == len(out["attention"]["output"])
    check_inspect(task, model, 3)


def test_feature_classifier_scales_with_the_training_part_and_answers():
    task = Circle()
    splits, model, _ = trained(task)
    xs = [x for x, _ in splits.train]
    assert splits.meta["features"] == ["x", "y"]
    m = task.evaluate(model, splits.test)
    assert m["accuracy"] > max(m["baseline_accuracy"], 0.9)
    assert task.predict(model, "1.5, 0")["label"] == "right" and task.predict(model, [-1.5, 0])["label"] == "left"
    assert sum(x[0] for x in xs) / len(xs) == pytest.approx(0.0, abs=1e-6)  # standardised with the train part
    for bad in ("1", "a, b", "1e20, 0"):
        with pytest.raises(BadInput):
            task.predict(model, bad)
    check_inspect(task, model, 1)


def test_regressor_answers_in_the_targets_units_and_beats_the_mean():
    task = Length()
    splits, model, _ = trained(task)
    m = task.evaluate(model, splits.test)
    assert splits.meta["target"] == "letters" and m["mae"] < m["mean mae"]
    out = task.predict(model, "aabab")
    assert abs(out["value"] - 5) < 1.5 and len(out["after_each_step"]) == 5
    ins = inspect_model(model, lambda mm: task.inspect_loss(mm, "aabab"))
    assert len(ins.labels) == 5


def test_readers_and_writers_round_trip(tmp_path):
    pairs = [("a b", "x y"), ("c", "z")]
    assert read_pairs(write_pairs(tmp_path / "d" / "p.tsv", pairs)) == pairs
    assert read_lines(write_lines(tmp_path / "l.txt", ["ab", "c"])) == ["ab", "c"]
    rows = [([0.5, -1.25], "in"), ([2.0, 3.0], "out")]
    assert read_csv(write_csv(tmp_path / "f.csv", ["x", "y"], rows)) == (["x", "y"], rows)
    (tmp_path / "bad.tsv").write_text("no tab here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="tab"):
        read_pairs(tmp_path / "bad.tsv")
