"""YourDataTask: one core.task.Task for a person's own table, whatever its shape.

The page trains it live (core.yourdata.build) and every exported plugin subclasses it (core.yourdata.export), so
the weights the page hands out load into the plugin unchanged: the same build_model, the same vocabularies (on the
card's meta). What it learns is set by a JSON ``spec``:

    {"choice": Choice.to_dict(), "file": "reviews.csv", "delimiter": ",", "header": true, "skip_bad": false,
     "sample": [[cell, ...], ...] (a few rows: the synthetic data of an exported plugin), "demos": [...]}

Steps are characters or words (choice.tokens); words are split from their punctuation (core.yourdata.propose.
tokenize), except a tagging table's sentences, which stay split on whitespace so that each tag keeps its word. Ids
0-3 are reserved for padding, unknown, start and end.

Every score evaluate() gives comes with its baselines, computed from the training part and scored on the same
held-out rows (the majority class, chance, all-"O", copying the input, a frequency model): baseline_words() says
them in a sentence and beats_baseline() whether the model does better; trust_words() warns when a score rests on
too few rows.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from core.data import config_from_dict, seq_lengths, split_rows
from core.data import pad as pad_ids
from core.layers import recording
from core.shapes import EncoderDecoder, ManyToMany, ManyToOne, OneToMany, OneToOne
from core.task import BadInput, Demo, Display, Metric, Recipe, Splits, Task
from core.yourdata.choice import Choice, check_rows, steps, tokenize
from core.yourdata.parse import Table, _control_char, read_table

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
PAD, UNK, BOS, EOS = 0, 1, 2, 3
MAX_STEPS = {"char": 200, "word": 100}  # longer sequences are cut (and the answer says so)
MAX_VOCAB = 4000  # the most frequent tokens of the training rows; the rest read as unknown
MAX_GEN = {"char": 60, "word": 25}  # steps a one-to-many model writes
MAX_COUNT = 10  # sequences per generation request
MAX_EVAL_ROWS = 1000  # validation and test rows at most (the rest train)
MAX_EXACT_ROWS = 500  # encoder-decoder: rows decoded greedily for the exact-match score (the first ones)
EXACT_VAL_STEPS = 6000  # ... and during training, at most this many rows x output steps at each validation check
MIN_TRUSTED_ROWS = 100  # a held-out score on fewer rows than this comes with a warning and its uncertainty
EXTENSIONS = (".csv", ".tsv", ".txt", ".tab", ".dat", ".conll", ".jsonl", ".json", ".xlsx")  # read by content


@dataclass
class Config:
    """Constructor arguments of build_model (on the card, so a checkpoint rebuilds itself)."""

    cell: str = "gru"  # rnn_tanh | gru | lstm
    embed_size: int = 32  # vector per character / word (one-to-one: unused, the features are the input)
    hidden_size: int = 64  # units of the recurrent state
    num_layers: int = 1
    bidirectional: bool = False  # many-to-one and many-to-many: read both ways
    dropout: float = 0.0


METRICS = {  # shape -> (selection metric, higher is better, what it means)
    "one_to_one": ("accuracy", True, "share of rows labelled right"),
    "many_to_one": ("accuracy", True, "share of rows labelled right"),
    "many_to_many": ("accuracy", True, "share of steps tagged right"),
    "one_to_many": ("nll", False, "average surprise per step (negative log-likelihood; lower is better)"),
    "encoder_decoder": ("exact", True, "share of held-out rows whose whole output is exactly right, written by the "
                                       "model on its own"),
}
ENTITY_METRIC = ("f1", True, "how well the named things (B-/I- tags) are found whole, from 0 to 1")
BASELINES = {  # headline metric -> (key of evaluate's dict, what gets that score), the strongest first in words
    "accuracy": [("baseline_accuracy", "the majority class alone"), ("chance", "guessing at random")],
    "f1": [("baseline_f1", "tagging every word O (no entity)")],
    "exact": [("common_exact", "always writing the most common output"), ("copy_exact", "copying the input")],
    "nll": [("baseline_nll", "a model that only knows how often each step occurs")],
    "mae": [("last value mae", "the last-value forecast"), ("seasonal naive mae", "the seasonal-naive forecast"),
            ("mean mae", "always answering the training mean")],
    "rmse": [("last value rmse", "the last-value forecast"), ("seasonal naive rmse", "the seasonal-naive forecast"),
             ("mean rmse", "always answering the training mean")],
}
LOWER_IS_BETTER = {"nll", "mae", "rmse", "loss"}  # the metrics a model beats by being below its baseline
TAG_BASELINE = "tagging every word with the most common tag"  # many-to-many accuracy: its baseline_accuracy
SUMMARIES = {
    "one_to_one": "A row of numbers -> one label, in a single step (no recurrence).",
    "many_to_one": "A sequence -> one label.",
    "many_to_many": "A sequence -> one label per step.",
    "one_to_many": "A start -> a new sequence, written step by step.",
    "encoder_decoder": "A sequence -> another sequence of its own length, with attention.",
}


_NO_SPACE_BEFORE = set(".,;:!?%)]}…") | {"...", "'s", "n't"}
_NO_SPACE_AFTER = set("([{$")


def join(tokens: list[str], mode: str) -> str:
    """Steps -> text: characters run together; words get a space between them, but not before closing punctuation
    or after an opening bracket ("a mess ." -> "a mess.")."""
    if mode == "char":
        return "".join(tokens)
    out = ""
    for i, t in enumerate(tokens):
        glue = i == 0 or t in _NO_SPACE_BEFORE or set(t) <= set(".,;:!?") or tokens[i - 1] in _NO_SPACE_AFTER
        out += t if glue else " " + t
    return out


def is_entity_tags(tags) -> bool:
    """Tags in the BIO / IOB / BIOES scheme of named entities (O, B-PER, I-PER, ...): entity F1 scores them."""
    tags = set(tags)
    return any(t[:2] in ("B-", "I-", "S-", "E-") for t in tags) and all(
        t == "O" or (t[:2] in ("B-", "I-", "S-", "E-") and len(t) > 2) for t in tags)


def entity_f1(gold: list[list[str]], pred: list[list[str]]) -> float:
    """Entity F1 (seqeval, the CoNLL way): an entity counts only when its type and its whole span are right."""
    from seqeval.metrics import f1_score

    return float(f1_score(gold, pred, zero_division=0))


def baselines(metric: str, metrics: dict) -> list[tuple[str, float]]:
    """(what gets it, its score) for each baseline of ``metric`` in an evaluate() dict, the strongest first."""
    found = [(words, float(metrics[key])) for key, words in BASELINES.get(metric, []) if key in metrics]
    if metric == "accuracy" and "chance" not in metrics and found:  # a tagger: the most common tag, not a class
        found = [(TAG_BASELINE, found[0][1])]
    lower = metric in LOWER_IS_BETTER
    return sorted(found, key=lambda wv: wv[1] if lower else -wv[1])


def beats_baseline(metric: str, metrics: dict) -> bool | None:
    """Does the score beat its strongest baseline (None: no score or no baseline)?"""
    found = baselines(metric, metrics)
    score = metrics.get(metric)
    if not found or score is None or not math.isfinite(float(score)):
        return None
    best = found[0][1]
    return float(score) < best - 1e-9 if metric in LOWER_IS_BETTER else float(score) > best + 1e-9


def baseline_words(metric: str, metrics: dict, name: str) -> str:
    """The score beside its baselines in one sentence: "validation accuracy 0.830 -- the majority class alone
    gets 0.610, guessing at random 0.500." ``name``: the score's name as the page says it."""
    score = metrics.get(metric)
    head = f"{name} {score:.3f}" if isinstance(score, (int, float)) and math.isfinite(score) else f"{name} n/a"
    found = baselines(metric, metrics)
    if not found:
        return head + "."
    return head + " -- " + ", ".join(f"{w} {'gets ' if i == 0 else ''}{v:.3f}" for i, (w, v) in enumerate(found)) + "."


def not_beaten_words(metric: str, metrics: dict) -> str:
    """What it means when the model does not beat its strongest baseline, said plainly ("" when it does)."""
    if beats_baseline(metric, metrics) is not False:
        return ""
    what = baselines(metric, metrics)[0][0]
    if what == "the majority class alone":
        return "This model has learnt nothing the majority class does not already know."
    return f"This model does no better than {what}: it has learnt nothing useful yet."


def trust_words(metric: str, val: dict, test: dict) -> str:
    """A warning when the validation or test score rests on fewer than MIN_TRUSTED_ROWS rows ("" when both have
    enough): how many rows, and about how far a share could be off by chance (95%, at worst: 1.96 * sqrt(.25 / n))."""
    n_val, n_test = (int(m.get("exact_rows", m.get("rows", m.get("windows", 0)))) for m in (val, test))
    unit = "forecast windows" if "rows" not in test and "windows" in test else "rows"
    n = min(n_val, n_test)
    if n >= MIN_TRUSTED_ROWS or n <= 0:
        return ""
    rows = (f"each rest on {n} {unit}" if n_val == n_test else
            f"rest on {n_val} (validation) and {n_test} (test) {unit}")
    off = (f"a different handful of {unit} could move them a lot" if metric in LOWER_IS_BETTER else
           f"either could be off by up to ±{98 / math.sqrt(n):.0f} points by chance alone")
    more = ("" if unit != "rows" else
            f" A table of {MIN_TRUSTED_ROWS * 10:,} rows or more holds out {MIN_TRUSTED_ROWS} or more for each.")
    return f"The validation and test scores {rows}: {off}.{more}"


SCORE_WORDS = {  # evaluate()'s keys as a column or a sentence names them
    "accuracy": "accuracy", "f1": "entity F1", "exact": "exactly right", "nll": "loss per step (NLL)",
    "step_accuracy": "next step right (true previous step given)", "loss": "loss", "baseline_accuracy": "majority class",
    "chance": "chance", "baseline_f1": "all O", "copy_exact": "copying the input", "common_exact": "most common output",
    "baseline_nll": "frequency model", "rows": "rows", "exact_rows": "rows written out",
    "mae": "MAE", "rmse": "RMSE", "windows": "windows",
    "last value mae": "last-value forecast MAE", "last value rmse": "last-value forecast RMSE",
    "seasonal naive mae": "seasonal-naive forecast MAE", "seasonal naive rmse": "seasonal-naive forecast RMSE",
    "mean mae": "training-mean MAE", "mean rmse": "training-mean RMSE",
}


SHARE_SCORES = {"accuracy", "f1", "exact", "step_accuracy", "baseline_accuracy", "chance", "baseline_f1", "copy_exact",
                "common_exact"}  # fractions, shown as percentages
COUNT_SCORES = {"rows", "exact_rows", "windows"}  # counts: no better or worse


def score_columns(metric: str, val: dict, test: dict) -> dict[str, float]:
    """One cell's row of the comparison table: the headline on validation and test, the baselines on the test rows,
    then the other test scores -- each named in words ("test accuracy", "majority class (test)", "chance")."""
    def name(k: str) -> str:
        return "most common tag" if k == "baseline_accuracy" and "chance" not in test else SCORE_WORDS.get(k, k)
    row = {f"validation {name(metric)}": val.get(metric), f"test {name(metric)}": test.get(metric)}
    every_baseline = {k for pairs in BASELINES.values() for k, _ in pairs}
    base = [k for k, _ in BASELINES.get(metric, []) if k in test]
    row.update({name(k) if k == "chance" else f"{name(k)} (test)": test[k] for k in base})
    for k, v in test.items():
        if k not in base and k not in (metric, "loss", "rows", "exact_rows", "windows"):
            row[f"{name(k)} (test)" if k in every_baseline else f"test {name(k)}"] = v
    if "rows" in test:
        row["test rows"] = test["rows"]
    return row


def punct_split(seqs, share: float = 0.98) -> bool:
    """Were these whitespace tokens already split from their punctuation (a CoNLL file: "," is its own token)?
    Yes when nearly every token is one token to tokenize() and some of them are punctuation."""
    n = whole = punct = 0
    for s in seqs:
        for t in s:
            n += 1
            whole += len(tokenize(t)) == 1
            punct += not any(ch.isalnum() for ch in t)
    return n > 0 and whole >= share * n and punct > 0


def build_vocab(seqs, limit: int = MAX_VOCAB) -> list[str]:
    """Tokens by frequency (ties alphabetical), at most ``limit``: the vocabulary after the 4 special ids."""
    counts: dict[str, int] = {}
    for s in seqs:
        for t in s:
            counts[t] = counts.get(t, 0) + 1
    return [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def vocab_index(vocab: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """(token -> id, lower-cased token -> id of its most frequent form): what encode() looks tokens up in."""
    index = {t: i + len(SPECIALS) for i, t in enumerate(vocab)}
    lower: dict[str, int] = {}
    for t, i in index.items():
        lower.setdefault(t.lower(), i)
    return index, lower


def encode(tokens: list[str], vocab) -> list[int]:
    """Tokens -> ids. Case is kept, but a token the vocabulary lacks is looked up in any case ("Boring" reads as
    "boring" when only that was seen); still unknown: <unk>. ``vocab``: a list, or vocab_index() of one."""
    index, lower = vocab if isinstance(vocab, tuple) else vocab_index(vocab)
    return [index.get(t) or lower.get(t.lower(), UNK) for t in tokens]


def decode_ids(ids: list[int], vocab: list[str]) -> list[str]:
    out = []
    for i in ids:
        if i == EOS:
            break
        if i >= len(SPECIALS):
            out.append(vocab[i - len(SPECIALS)])
        elif i == UNK:
            out.append("?")
    return out


def _most_common(values):
    """The most frequent value (ties: the first seen)."""
    return Counter(values).most_common(1)[0][0]


def _upto_eos(ids: list[int]) -> list[int]:
    return ids[:ids.index(EOS)] if EOS in ids else ids


def pad(seqs: list[list[int]], value: int = PAD) -> tuple[torch.Tensor, torch.Tensor]:
    """core.data.pad plus the lengths, an empty sequence read as one <unk> (no model here reads zero steps)."""
    seqs = [s or [UNK] for s in seqs]
    return pad_ids(seqs, value), seq_lengths(seqs)  # (B, T), (B,)


class YourDataTask(Task):
    """A person's table as a task. Subclassed by exported plugins (which set name, title, page, spec)."""

    name = "your_data"
    private = True  # a visitor's own model and data: the inspector keeps its results in that session only
    title = "Your data"
    page = "core.ui.pages.your_data:render"  # the app's own page; an exported plugin has its own page.py
    data_source = "a person's own file, brought to the Your data page"
    primary_input = "text"
    spec: dict = {}
    epoch_steps: int | None = None  # the page: an "epoch" of this many batches, so validation curves move often
    display = Display(  # every score evaluate() returns, in SCORE_WORDS' words; exported plugins inherit it
        metrics={k: Metric(v, "%" if k in SHARE_SCORES else "", "lower" if k in LOWER_IS_BETTER else
                           "" if k in COUNT_SCORES else "higher") for k, v in SCORE_WORDS.items()},
        inputs="a row of the person's own table")

    def __init__(self, spec: dict | None = None, **fields):
        spec = dict(spec if spec is not None else type(self).spec)
        for k, v in fields.items():
            setattr(self, k, v)
        self.spec = spec
        self.choice = Choice(**spec["choice"])
        self.shape = self.choice.shape
        self.data_subdir = self.data_subdir or self.name
        self.summary = getattr(type(self), "summary", "") or SUMMARIES[self.shape]
        metric, higher, self.metric_meaning = METRICS[self.shape]
        if self.shape == "many_to_many" and is_entity_tags(self._sample_tags(spec)):
            metric, higher, self.metric_meaning = ENTITY_METRIC
        known = set(asdict(Config()))
        sizes = {k: v for k, v in (spec.get("config") or {}).items() if k in known}
        self.config = asdict(Config(**{"bidirectional": self.choice.bidirectional, **sizes}))
        self.recipe = Recipe(metric=metric, higher_is_better=higher, epochs=30, batch_size=32, lr=3e-3, patience=5,
                             max_minutes=5.0, clip_norm=1.0, variants=dict(spec.get("variants") or {}))

    # ---- data --------------------------------------------------------------------------------------------------
    def examples(self, table: Table) -> list:
        """Rows -> raw examples of this shape: (features, label), (text, label), (text, tags), text, (src, tgt)."""
        c, cols = self.choice, table.columns
        if self.shape == "one_to_one":
            fi = [cols.index(f) for f in c.features]
            ti = cols.index(c.target)
            return [([float(r[j]) for j in fi], r[ti]) for r in table.rows]
        ii = cols.index(c.input)
        if self.shape == "one_to_many":
            return [r[ii] for r in table.rows]
        ti = cols.index(c.target)
        return [(r[ii], r[ti]) for r in table.rows]

    def _sample_tags(self, spec: dict) -> set[str]:
        """The tags in the spec's sample rows (a tagging table): whether they name entities sets the headline."""
        cols = spec.get("columns") or []
        if self.choice.target not in cols:
            return set()
        j = cols.index(self.choice.target)
        return {g for r in spec.get("sample") or [] if j < len(r) for g in steps(r[j], self.choice.tokens)}

    def make_splits(self, examples: list, files=(), dataset: str = "", seed: int = 0) -> Splits:
        train, val, test = split_rows(examples, seed, max_eval=MAX_EVAL_ROWS)
        mode, shape = self.choice.tokens, self.shape
        cut = MAX_STEPS[mode]
        meta: dict = {"tokens": mode, "columns": {"input": self.choice.input, "target": self.choice.target}}
        if shape == "many_to_many":  # tags line up with whitespace words; typed text is split like the training rows
            split = mode == "word" and punct_split(steps(t, mode) for t, _ in train)
        else:
            split = mode == "word"
        meta["split_punct"] = split

        def cells(text: str) -> list[str]:
            return steps(text, mode, split)

        long = set()  # the rows longer than the model reads: cut to their first `cut` steps

        def first(seq: list[str], row: tuple, n: int = cut) -> list[str]:
            if len(seq) > n:
                long.add(row)
            return seq[:n]
        if shape == "one_to_one":
            cols = list(zip(*[x for x, _ in train]))  # feature-major
            mean = [sum(col) / len(col) for col in cols]
            std = [max(math.sqrt(sum((v - m) ** 2 for v in col) / len(col)), 1e-6) for col, m in zip(cols, mean)]
            labels = sorted({y for _, y in examples})
            meta.update(features=list(self.choice.features), mean=mean, std=std, labels=labels,
                        majority=labels.index(_most_common(y for _, y in train)))

            def enc(part):
                return [([(v - m) / s for v, m, s in zip(x, mean, std)], labels.index(y)) for x, y in part]
        elif shape == "one_to_many":
            vocab = build_vocab(cells(t) for t in train)
            index = vocab_index(vocab)

            meta.update(vocab=vocab)

            def enc(part):
                return [encode(first(cells(t), (id(part), k)), index) for k, t in enumerate(part)]
        elif shape == "encoder_decoder":
            src_vocab = build_vocab(cells(s) for s, _ in train)
            tgt_vocab = build_vocab(cells(t) for _, t in train)
            src_index, tgt_index = vocab_index(src_vocab), vocab_index(tgt_vocab)

            meta.update(src_vocab=src_vocab, tgt_vocab=tgt_vocab)

            def enc(part):
                return [(encode(first(cells(s), (id(part), k)), src_index),
                         encode(first(cells(t), (id(part), k), cut - 1), tgt_index) + [EOS])
                        for k, (s, t) in enumerate(part)]
        else:
            vocab = build_vocab(cells(t) for t, _ in train)
            index = vocab_index(vocab)
            meta.update(vocab=vocab)
            if shape == "many_to_one":
                code = self.target_code(train, examples, meta)

                def enc(part):
                    return [(encode(first(cells(t), (id(part), k)), index), code(y))
                            for k, (t, y) in enumerate(part)]
            else:
                tags = sorted({g for _, y in examples for g in steps(y, mode)})
                meta.update(tags=tags, majority=tags.index(_most_common(g for _, y in train for g in steps(y, mode))),
                            entities=is_entity_tags(tags))

                def enc(part):
                    return [(encode(first(steps(t, mode), (id(part), k)), index),
                             [tags.index(g) for g in steps(y, mode)[:cut]]) for k, (t, y) in enumerate(part)]
        train_ids, val_ids, test_ids = enc(train), enc(val), enc(test)
        if shape == "one_to_many":  # the frequency model: each step's share of the training steps (add-one)
            counts = Counter(i for seq in train_ids for i in seq + [EOS])
            total = sum(counts.values()) + len(meta["vocab"]) + len(SPECIALS)
            meta["unigram"] = [round(math.log((counts[i] + 1) / total), 6)
                               for i in range(len(meta["vocab"]) + len(SPECIALS))]
        elif shape == "encoder_decoder":
            meta["common_output"] = list(_most_common(tuple(t) for _, t in train_ids))
            self._val_rows = val_ids  # evaluate() decodes a bounded sample of these at each check while training
        meta["cut_rows"] = len(long)
        unit = "characters" if mode == "char" else "words"
        note = f"; {len(long):,} rows longer than {cut} {unit}: the model reads their first {cut}" if long else ""
        return Splits(train_ids, val_ids, test_ids, meta, files=list(files),
                      dataset=(dataset or f"{len(examples)} rows, {len(train)}/{len(val)}/{len(test)} "
                                          "train/validation/test (shuffled, seed 0)") + note)

    def target_code(self, train: list, examples: list, meta: dict):
        """Many-to-one: what each row's answer becomes for the network (here a label's index; the labels and the
        majority class go on ``meta``). core.yourdata.regression answers a standardised number instead."""
        labels = sorted({y for _, y in examples})
        meta.update(labels=labels, majority=labels.index(_most_common(y for _, y in train)))
        return labels.index

    def splits_from_table(self, table: Table, files=(), dataset: str = "") -> Splits:
        table = check_rows(table, self.choice, skip_bad=bool(self.spec.get("skip_bad")))
        return self.make_splits(self.examples(table), files, dataset)

    def load_data(self, data_dir: Path) -> Splits:
        """The person's file, read exactly as the page read it (same readers, delimiter, header and checks). The
        file the page wrote is read as the spec says; another one (the person's own .conll, .jsonl, .xlsx ...) is
        read by its content, as the page read it."""
        data_dir = Path(data_dir)
        path = data_dir / self.spec.get("file", "")
        delimiter, header = self.spec.get("delimiter"), bool(self.spec.get("header"))
        if not path.is_file():
            found = sorted(p for p in data_dir.iterdir() if p.suffix.lower() in EXTENSIONS) if data_dir.is_dir() else []
            if len(found) != 1:
                raise FileNotFoundError(f"{self.name} reads {self.spec.get('file')!r} (or the only data file: "
                                        f"{', '.join(EXTENSIONS)}) in {data_dir}")
            path, delimiter, header = found[0], "auto", "auto"
        table = read_table(path.read_bytes(), path.name, delimiter, header, skip_bad=bool(self.spec.get("skip_bad")))
        return self.splits_from_table(table, [path])

    def synthetic_data(self, seed: int = 0) -> Splits:
        """The few rows of the person's data kept in the spec: a tiny dataset of the same form."""
        sample = self.spec.get("sample") or []
        cols = self.spec.get("columns") or []
        table = Table(cols, [list(r) for r in sample], list(range(1, len(sample) + 1)), self.spec.get("delimiter"),
                      bool(self.spec.get("header")))
        return self.make_splits(self.examples(table), [], "a sample of the person's rows", seed)

    def batches(self, data, batch_size: int, shuffle: bool, seed: int = 0):
        order = list(range(len(data)))
        rng = random.Random(seed)
        if shuffle:
            rng.shuffle(order)
        if shuffle and self.epoch_steps:  # exactly epoch_steps batches, cycling through shuffled passes
            need = self.epoch_steps * batch_size
            while len(order) < need:
                more = list(range(len(data)))
                rng.shuffle(more)
                order += more
            order = order[:need]
        for i in range(0, len(order), batch_size):
            yield self.collate([data[j] for j in order[i:i + batch_size]])

    def collate(self, part: list) -> dict:
        shape = self.shape
        if shape == "one_to_one":
            return {"x": torch.tensor([x for x, _ in part], dtype=torch.float32),  # (B, F)
                    "y": torch.tensor([y for _, y in part])}
        if shape == "one_to_many":
            x, lengths = pad([[BOS] + s for s in part])  # (B, T)
            y, _ = pad([s + [EOS] for s in part], value=-100)  # (B, T): the next step at every step
            return {"x": x, "lengths": lengths, "y": y}
        if shape == "encoder_decoder":
            src, src_len = pad([s for s, _ in part])  # (B, S)
            tgt_in, _ = pad([[BOS] + t[:-1] for _, t in part])  # (B, T)
            tgt_out, _ = pad([t for _, t in part], value=-100)  # (B, T)
            return {"src": src, "src_lengths": src_len, "tgt_in": tgt_in, "tgt_out": tgt_out}
        x, lengths = pad([ids for ids, _ in part])  # (B, T)
        if shape == "many_to_one":
            return {"x": x, "lengths": lengths, "y": torch.tensor([y for _, y in part])}
        y, _ = pad([tags for _, tags in part], value=-100)  # (B, T)
        return {"x": x, "lengths": lengths, "y": y}

    # ---- model -------------------------------------------------------------------------------------------------
    def build_model(self, config: dict, meta: dict):
        cfg = config_from_dict(Config, config)
        shape = self.shape
        if shape == "one_to_one":
            model = OneToOne(len(meta["features"]), cfg.hidden_size, len(meta["labels"]), cfg.cell,
                             dropout=cfg.dropout)
        elif shape == "many_to_one":
            model = ManyToOne(cfg.embed_size, cfg.hidden_size, len(meta["labels"]), cfg.cell, cfg.num_layers,
                              cfg.bidirectional, cfg.dropout, vocab_size=len(meta["vocab"]) + len(SPECIALS), pad_id=PAD)
        elif shape == "many_to_many":
            model = ManyToMany(cfg.embed_size, cfg.hidden_size, len(meta["tags"]), cfg.cell, cfg.num_layers,
                               cfg.bidirectional, cfg.dropout, vocab_size=len(meta["vocab"]) + len(SPECIALS), pad_id=PAD)
        elif shape == "one_to_many":
            model = OneToMany(len(meta["vocab"]) + len(SPECIALS), cfg.embed_size, cfg.hidden_size, cfg.cell,
                              cfg.num_layers, cfg.dropout)
        else:
            model = EncoderDecoder(len(meta["src_vocab"]) + len(SPECIALS), len(meta["tgt_vocab"]) + len(SPECIALS),
                                   cfg.embed_size, cfg.hidden_size, cfg.cell, cfg.num_layers, cfg.dropout,
                                   attention=True, bidirectional_encoder=True, pad_id=PAD, bos_id=BOS, eos_id=EOS)
        model.meta = meta
        return model

    def loss(self, model, batch) -> torch.Tensor:
        shape = self.shape
        if shape == "one_to_one":
            return F.cross_entropy(model(batch["x"]), batch["y"])  # (B, C)
        if shape == "many_to_one":
            return F.cross_entropy(model(batch["x"], batch["lengths"]), batch["y"])  # (B, C)
        if shape == "encoder_decoder":
            logits, _ = model(batch["src"], batch["src_lengths"], batch["tgt_in"])  # (B, T, V)
            return F.cross_entropy(logits.flatten(0, 1), batch["tgt_out"].flatten(), ignore_index=-100)
        logits = model(batch["x"], batch["lengths"])  # (B, T, C)
        return F.cross_entropy(logits.flatten(0, 1), batch["y"].flatten(), ignore_index=-100)

    def evaluate(self, model, data) -> dict:
        """The held-out scores with their baselines (BASELINES: what each one means) and "rows", how many rows."""
        model.eval()
        meta = model.meta
        dev = next(model.parameters()).device
        shape = self.shape
        loss_sum = right = total = base_right = base_nll = 0.0
        gold_tags: list[list[str]] = []
        pred_tags: list[list[str]] = []
        with torch.no_grad():
            for b in self.batches(data, 256, shuffle=False):
                b = {k: v.to(dev) for k, v in b.items()}
                if shape in ("one_to_one", "many_to_one"):
                    logits = model(b["x"]) if shape == "one_to_one" else model(b["x"], b["lengths"])  # (B, C)
                    loss_sum += float(F.cross_entropy(logits, b["y"], reduction="sum"))
                    right += float((logits.argmax(-1) == b["y"]).sum())
                    base_right += float((b["y"] == meta.get("majority", -1)).sum())
                    total += len(b["y"])
                    continue
                if shape == "encoder_decoder":
                    logits, _ = model(b["src"], b["src_lengths"], b["tgt_in"])  # (B, T, V)
                    y = b["tgt_out"]
                else:
                    logits, y = model(b["x"], b["lengths"]), b["y"]  # (B, T, V), (B, T)
                mask = y != -100  # (B, T)
                loss_sum += float(F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100,
                                                  reduction="sum"))
                pred = logits.argmax(-1)  # (B, T)
                right += float(((pred == y) & mask).sum())
                total += float(mask.sum())
                if shape == "many_to_many":
                    base_right += float(((y == meta.get("majority", -1)) & mask).sum())
                    if meta.get("entities") or self.recipe.metric == "f1":
                        tags = meta["tags"]
                        for p_row, y_row, m_row in zip(pred.tolist(), y.tolist(), mask.tolist()):
                            gold_tags.append([tags[t] for t, m in zip(y_row, m_row) if m])
                            pred_tags.append([tags[t] for t, m in zip(p_row, m_row) if m])
                elif shape == "one_to_many" and meta.get("unigram"):
                    logp = torch.tensor(meta["unigram"], device=dev)  # (V,)
                    base_nll -= float(logp[y.clamp(min=0)][mask].sum())
        total = max(total, 1.0)
        out = {"loss": loss_sum / total, "rows": float(len(data))}
        if shape == "one_to_many":
            out["nll"] = out["loss"]
            out["accuracy"] = right / total  # the next step guessed right (information)
            if meta.get("unigram"):
                out["baseline_nll"] = base_nll / total
            return out
        if shape == "encoder_decoder":
            out["step_accuracy"] = right / total  # each next step, the true previous step given (information)
            if data:
                n = MAX_EXACT_ROWS
                if data is getattr(self, "_val_rows", None):  # a check while training: a sample, to stay quick
                    n = min(n, max(20, EXACT_VAL_STEPS // (max(len(t) for _, t in data) + 2)))
                out.update(self.exact_scores(model, data[:n]))
            return out
        out["accuracy"] = right / total
        if "majority" in meta:
            out["baseline_accuracy"] = base_right / total
        if shape != "many_to_many":
            out["chance"] = 1 / len(meta["labels"])
        elif gold_tags:
            out["f1"] = entity_f1(gold_tags, pred_tags)
            out["baseline_f1"] = entity_f1(gold_tags, [["O"] * len(g) for g in gold_tags])
        return out

    def exact_scores(self, model, rows) -> dict:
        """Encoder-decoder: the share of rows whose whole output is right, decoded greedily in batches -- the
        model's, copying the input's and always writing the training part's most common output's."""
        meta = model.meta
        dev = next(model.parameters()).device
        hits = copies = commons = 0
        common = _upto_eos(list(meta.get("common_output") or []))
        for i in range(0, len(rows), 256):
            part = rows[i:i + 256]
            b = self.collate(part)
            pred = self.greedy(model, b["src"].to(dev), b["src_lengths"],
                               max(len(t) for _, t in part) + 2).cpu()  # (B, T)
            for p, (src, tgt) in zip(pred.tolist(), part):
                want = _upto_eos(tgt)
                hits += _upto_eos(p) == want
                commons += want == common
                words = decode_ids(want, meta["tgt_vocab"])
                copies += UNK not in src and UNK not in want and decode_ids(src, meta["src_vocab"]) == words
        n = max(len(rows), 1)
        return {"exact": hits / n, "copy_exact": copies / n, "common_exact": commons / n, "exact_rows": float(n)}

    def greedy(self, model, src, lengths, max_len: int) -> torch.Tensor:
        """Batched greedy decoding: (B, S) -> (B, <= max_len) ids (EOS and after it: ignored by decode_ids)."""
        enc, state, mask = model.encode(src, lengths)
        tok = torch.full((src.shape[0],), BOS, dtype=torch.long, device=src.device)
        out, done = [], torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            logp, state, _ = model.decode_step(tok, state, enc, mask)  # (B, V)
            tok = logp.argmax(-1)
            out.append(tok)
            done |= tok == EOS
            if bool(done.all()):
                break
        return torch.stack(out, dim=1)  # (B, T)

    # ---- serving -----------------------------------------------------------------------------------------------
    def demos(self) -> list[Demo]:
        out = [Demo(d["label"], d["input"], d.get("note", "")) for d in self.spec.get("demos") or []]
        if out:
            return out
        if self.shape == "one_to_many":
            return [Demo("From the start", {"start": "", "temperature": 0.8, "seed": 0, "count": 5}, "a new sequence")]
        return [Demo("First sample row", self.example_input(self.spec.get("sample", [[]])[0]), "")]

    def example_input(self, row: list[str]):
        """What predict() takes for a row of the table (the input column, or the features joined)."""
        cols = self.spec.get("columns") or []
        if self.shape == "one_to_one":
            return ", ".join(row[cols.index(f)] for f in self.choice.features)
        return row[cols.index(self.choice.input)]

    def _tokens(self, model, text, vocab_key: str = "vocab") -> tuple[list[str], list[int], list[str]]:
        if isinstance(text, dict):
            text = text.get("text", "")
        if not isinstance(text, str) or not text.strip():
            raise BadInput("Type some text.")
        if _control_char(text.replace("\n", " ")):
            raise BadInput("The text contains a control character; type plain text.")
        mode = model.meta["tokens"]
        toks = steps(" ".join(text.split()), mode, bool(model.meta.get("split_punct")))
        notes = []
        if len(toks) > MAX_STEPS[mode]:
            toks = toks[:MAX_STEPS[mode]]
            notes.append(f"Only the first {MAX_STEPS[mode]} {'characters' if mode == 'char' else 'words'} were read.")
        ids = encode(toks, model.meta[vocab_key])
        unknown = sorted({t for t, i in zip(toks, ids) if i == UNK})
        if unknown:
            notes.append(f"Never seen in training, read as unknown: {' '.join(unknown[:10])}"
                         + (" ..." if len(unknown) > 10 else ""))
        return toks, ids, notes

    def _features(self, model, input) -> torch.Tensor:
        meta = model.meta
        n = len(meta["features"])
        if isinstance(input, str):
            parts = [p for p in input.replace(";", ",").replace(",", " ").split() if p]
            try:
                input = [float(p) for p in parts]
            except ValueError:
                raise BadInput(f"Type {n} numbers separated by commas ({', '.join(meta['features'])}).") from None
        if not isinstance(input, (list, tuple)) or len(input) != n:
            raise BadInput(f"Expected {n} numbers ({', '.join(meta['features'])}).")
        try:
            values = [float(v) for v in input]
        except (TypeError, ValueError, OverflowError):
            raise BadInput(f"Expected {n} numbers ({', '.join(meta['features'])}).") from None
        if not all(math.isfinite(v) and abs(v) < 1e9 for v in values):
            raise BadInput("The numbers must be finite and below a billion in size.")
        scaled = [(v - m) / s for v, m, s in zip(values, meta["mean"], meta["std"])]
        return torch.tensor([scaled], dtype=torch.float32)  # (1, F)

    def _settings(self, model, input) -> dict:
        if isinstance(input, str):
            input = {"start": input}
        if not isinstance(input, dict):
            raise BadInput("Give a start (it may be empty), a temperature, a seed and how many to write.")
        start = str(input.get("start", "") or "")
        if _control_char(start):
            raise BadInput("The start contains a control character; type plain text.")
        mode = model.meta["tokens"]
        toks = steps(" ".join(start.split()) if mode == "word" else start.lstrip(), mode,
                     bool(model.meta.get("split_punct")))[:MAX_GEN[mode] - 1]
        try:
            temperature = float(input.get("temperature", 0.8))
            seed, count = int(input.get("seed", 0)), int(input.get("count", 5))
        except (TypeError, ValueError, OverflowError):
            raise BadInput("The temperature must be a number; seed and count whole numbers.") from None
        if not (math.isfinite(temperature) and 0.05 <= temperature <= 3.0):
            raise BadInput("The temperature must be between 0.05 and 3.")
        if not 0 <= seed < 2**63:
            raise BadInput("The random seed must be a whole number from 0 to 2**63 - 1.")
        if not 1 <= count <= MAX_COUNT:
            raise BadInput(f"Ask for 1 to {MAX_COUNT} sequences.")
        ids = encode(toks, model.meta["vocab"])
        notes = []
        unknown = sorted({t for t, i in zip(toks, ids) if i == UNK})
        if unknown:
            notes.append(f"Never seen in training, read as unknown: {' '.join(unknown[:10])}")
        return {"start": join(toks, mode), "tokens": toks, "ids": [BOS] + ids, "temperature": temperature,
                "seed": seed, "count": count, "notes": notes}

    def predict(self, model, input) -> dict:
        shape, meta = self.shape, model.meta
        if shape == "one_to_one":
            with torch.inference_mode():
                probs = model(self._features(model, input)).softmax(-1)[0]  # (C,)
            best = int(probs.argmax())
            return {"label": meta["labels"][best], "prob": float(probs[best]),
                    "probs": {lab: float(p) for lab, p in zip(meta["labels"], probs)}, "notes": []}
        if shape == "one_to_many":
            s = self._settings(model, input)
            mode = meta["tokens"]
            primer = torch.tensor([s["ids"]] * s["count"])  # (N, T0)
            with torch.inference_mode():
                out = model.generate(primer, MAX_GEN[mode] - len(s["tokens"]), temperature=s["temperature"],
                                     seed=s["seed"])
            new = out["sequence"][:, primer.shape[1]:]  # (N, steps)
            seqs = [join(s["tokens"] + decode_ids(row.tolist(), meta["vocab"]), mode) for row in new]
            return {"start": s["start"], "sequences": seqs, "temperature": s["temperature"], "seed": s["seed"],
                    "notes": s["notes"]}
        if shape == "encoder_decoder":
            toks, ids, notes = self._tokens(model, input, "src_vocab")
            mode = meta["tokens"]
            with torch.inference_mode():
                cands = model.beam_search(torch.tensor([ids]), torch.tensor([len(ids)]), beam=3,
                                          max_len=min(len(ids) * 2 + 10, MAX_STEPS[mode]))
            best = cands[0]
            out_toks = [SPECIALS[i] if i < len(SPECIALS) else meta["tgt_vocab"][i - len(SPECIALS)] for i in best.tokens]
            return {"input": join(toks, mode),
                    "output": join(decode_ids(best.tokens, meta["tgt_vocab"]), mode),
                    "candidates": [{"output": join(decode_ids(c.tokens, meta["tgt_vocab"]), mode), "score": c.score}
                                   for c in cands],
                    "attention": {"source": toks, "output": out_toks,  # (T_out, S) weights, one row per output step
                                  "weights": best.attention.tolist() if best.attention is not None else None},
                    "notes": notes}
        toks, ids, notes = self._tokens(model, input)
        x, lengths = pad([ids])  # (1, T)
        if shape == "many_to_one":
            with torch.inference_mode():
                probs = model(x, lengths).softmax(-1)[0]  # (C,)
                after = model.prefix_logits(x, lengths).softmax(-1)[0]  # (T, C): the answer after each step
            best = int(probs.argmax())
            return {"label": meta["labels"][best], "prob": float(probs[best]),
                    "probs": {lab: float(p) for lab, p in zip(meta["labels"], probs)},
                    "after_each_char": [{"step": t, "char": c, "prob": float(after[t, best])}
                                        for t, c in enumerate(toks)],
                    "notes": notes}
        with torch.inference_mode():
            probs = model(x, lengths).softmax(-1)[0]  # (T, C)
        p, idx = probs.max(-1)
        return {"tokens": [{"word": w, "tag": meta["tags"][int(i)], "prob": float(q)} for w, i, q in zip(toks, idx, p)],
                "notes": notes}

    def inspect_loss(self, model, input) -> tuple[torch.Tensor, list[str]]:
        shape, meta = self.shape, model.meta
        if shape == "one_to_one":
            logits = model(self._features(model, input))  # (1, C)
            return F.cross_entropy(logits, logits.argmax(-1).detach()), ["input"]
        if shape == "one_to_many":
            s = self._settings(model, input)
            with recording():  # a side computation: its steps stay out of the inspector's trace
                text = self.predict(model, {**s, "start": s["start"], "count": 1})["sequences"][0]
            toks = steps(text, meta["tokens"], bool(meta.get("split_punct")))[:MAX_GEN[meta["tokens"]]]
            seq = [BOS] + encode(toks, meta["vocab"]) + [EOS]
            x, y = torch.tensor([seq[:-1]]), torch.tensor([seq[1:]])  # (1, T)
            return F.cross_entropy(model(x)[0], y[0]), ["<s>"] + toks
        if shape == "encoder_decoder":
            toks, ids, _ = self._tokens(model, input, "src_vocab")
            src, lengths = torch.tensor([ids]), torch.tensor([len(ids)])
            with recording():
                target = self.greedy(model, src, lengths, min(len(ids) * 2 + 10, MAX_STEPS[meta["tokens"]]))[0].tolist()
            target = target[:target.index(EOS) + 1] if EOS in target else target
            tgt_in, tgt_out = torch.tensor([[BOS] + target[:-1]]), torch.tensor([target])  # (1, T)
            logits, _ = model(src, lengths, tgt_in)  # (1, T, V)
            return F.cross_entropy(logits[0], tgt_out[0]), toks
        toks, ids, _ = self._tokens(model, input)
        x, lengths = pad([ids])
        logits = model(x, lengths)  # (1, C) or (1, T, C)
        if shape == "many_to_one":
            return F.cross_entropy(logits, logits.argmax(-1).detach()), toks
        return F.cross_entropy(logits[0], logits[0].argmax(-1).detach()), toks

    def train_command(self) -> str:
        return f"python -m core.train {self.name} --data-dir {self.name}-data"
