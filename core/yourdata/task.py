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
from dataclasses import asdict, replace
from pathlib import Path

from core.data import BOS, EOS, PAD, SPECIALS, UNK, Vocab  # noqa: F401 -- Your data's ids are core.data's
from core.generic import SHAPE_CLASSES, SequenceTask
from core.generic.base import (  # SCORE_WORDS: the page reads it here  # noqa: F401
    LOWER_IS_BETTER,
    MAX_EVAL_ROWS,
    MAX_STEPS,
    MAX_VOCAB,
    SCORE_WORDS,
    SCORES_DISPLAY,
    most_common,
    pad_steps,
)
from core.generic.base import SequenceConfig as Config
from core.generic.generator import MAX_COUNT, MAX_GEN  # noqa: F401
from core.generic.seq2seq import EXACT_VAL_STEPS, MAX_EXACT_ROWS  # noqa: F401
from core.generic.tagger import ENTITY_METRIC, entity_f1, is_entity_tags, punct_split  # noqa: F401
from core.generic.text import join  # noqa: F401
from core.task import Demo, Recipe, Splits, Task
from core.yourdata.choice import Choice, check_rows, steps
from core.yourdata.parse import Table, read_table

EXTENSIONS = (".csv", ".tsv", ".txt", ".tab", ".dat", ".conll", ".jsonl", ".json", ".xlsx")  # read by content
MIN_TRUSTED_ROWS = 100  # a held-out score on fewer rows than this comes with a warning and its uncertainty
METRICS = {shape: (cls.recipe.metric, cls.recipe.higher_is_better, cls.metric_meaning)  # headline, higher better?,
           for shape, cls in SHAPE_CLASSES.items()}  # what it means -- by shape, from core.generic's classes
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
TAG_BASELINE = "tagging every word with the most common tag"  # many-to-many accuracy: its baseline_accuracy
SUMMARIES = {shape: cls.summary for shape, cls in SHAPE_CLASSES.items()}


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


def encode(tokens: list[str], vocab: list[str]) -> list[int]:
    """Tokens -> ids with a learnt-token list as a card stores it; a token it lacks is looked up in any case
    ("Boring" reads as "boring" when only that was seen), else <unk> (core.data.Vocab with fold_case)."""
    return Vocab(vocab, fold_case=True).encode(tokens)


class YourDataTask(Task):
    """A person's table as a task. Subclassed by exported plugins (which set name, title, page, spec).

    It reads the table and the spec into raw examples of the chosen shape; ``head``, an instance of that shape's
    core.generic class, does the rest (vocabularies, batches, model, loss, scores with baselines, answers)."""

    name = "your_data"
    private = True  # a visitor's own model and data: the inspector keeps its results in that session only
    title = "Your data"
    page = "core.ui.pages.your_data:render"  # the app's own page; an exported plugin has its own page.py
    data_source = "a person's own file, brought to the Your data page"
    primary_input = "text"
    spec: dict = {}
    display = replace(SCORES_DISPLAY, inputs="a row of the person's own table")  # exported plugins inherit it
    head_class: type[SequenceTask] | None = None  # the shape class (None: by the choice's shape)

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
        self.head = self.make_head()
        self.input_type = self.head.input_type

    def make_head(self) -> SequenceTask:
        """The shape class that trains and serves this table, set up with its choice (tokens, features, target)."""
        c = self.choice
        head = (self.head_class or SHAPE_CLASSES[self.shape])()
        head.name, head.recipe, head.tokens = self.name, self.recipe, c.tokens
        head.features, head.target_name = list(c.features), c.target
        head.meta_extra = {"columns": {"input": c.input, "target": c.target}}
        return head

    @property
    def epoch_steps(self) -> int | None:
        """The page: an "epoch" of this many batches, so validation curves move often (None: a pass)."""
        return self.head.epoch_steps

    @epoch_steps.setter
    def epoch_steps(self, n: int | None) -> None:
        self.head.epoch_steps = n

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
        return self.head.make_splits(examples, files, dataset, seed)

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

    # ---- the shape class's ---------------------------------------------------------------------------------------
    def batches(self, data, batch_size: int, shuffle: bool, seed: int = 0):
        return self.head.batches(data, batch_size, shuffle, seed)

    def collate(self, part: list) -> dict:
        return self.head.collate(part)

    def build_model(self, config: dict, meta: dict):
        return self.head.build_model(config, meta)

    def runtime(self, meta: dict, config: dict):
        return self.head.runtime(meta, config)

    def loss(self, model, batch):
        return self.head.loss(model, batch)

    def evaluate(self, model, data) -> dict:
        """The held-out scores with their baselines (BASELINES: what each one means) and "rows", how many rows."""
        return self.head.evaluate(model, data)

    def exact_scores(self, model, rows) -> dict:
        return self.head.exact_scores(model, rows, self.greedy)

    def greedy(self, model, src, lengths, max_len: int):
        return self.head.greedy(model, src, lengths, max_len)

    def predict(self, model, input) -> dict:
        return self.head.predict(model, input)

    def inspect_loss(self, model, input):
        return self.head.inspect_loss(model, input)

    # ---- serving -----------------------------------------------------------------------------------------------
    def demos(self) -> list[Demo]:
        out = [Demo(d["label"], d["input"], d.get("note", "")) for d in self.spec.get("demos") or []]
        if out:
            return out
        if self.shape == "one_to_many":
            return self.head.demos()
        return [Demo("First sample row", self.example_input(self.spec.get("sample", [[]])[0]), "")]

    def example_input(self, row: list[str]):
        """What predict() takes for a row of the table (the input column, or the features joined)."""
        cols = self.spec.get("columns") or []
        if self.shape == "one_to_one":
            return ", ".join(row[cols.index(f)] for f in self.choice.features)
        return row[cols.index(self.choice.input)]

    def train_command(self) -> str:
        return f"python -m core.train {self.name} --data-dir {self.name}-data"
