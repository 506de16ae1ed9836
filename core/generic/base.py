"""What every generic sequence task shares: the model config, text -> steps -> ids, padding, splits and batches.

A shape class (``core.generic``'s SequenceClassifier, SequenceTagger, SequenceGenerator, Seq2SeqTask,
FeatureClassifier, SequenceRegressor) is a ``SequenceTask`` that adds what its output shape needs: how raw examples
become ids (``encoder``), how a list of them becomes one padded batch (``collate``), the loss, the scores beside a
baseline (``evaluate``), the answer for one input (``predict``) and the inspector's loss. A task that reads its own
files subclasses one and writes ``load_data`` (its files -> raw examples -> ``make_splits``), ``demos`` and its
config; everything else is inherited.

Steps are characters or words (``tokens``: "char" | "word"). Ids 0-3 of every vocabulary are padding, unknown,
start and end (core.data.Vocab); the learnt tokens follow, most frequent first. A card's meta keeps what the model
needs to read new text again: the tokens mode, the vocabularies (the learnt tokens, as lists) and the labels.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from core.data import EOS, PAD, UNK, Vocab, config_from_dict, seq_lengths, split_rows
from core.data import pad as pad_ids
from core.generic.text import control_char, steps
from core.task import BadInput, Display, Metric, Recipe, Splits, Task

MAX_STEPS = {"char": 200, "word": 100}  # longer sequences are cut (and the answer says so)
MAX_VOCAB = 4000  # the most frequent tokens of the training rows; the rest read as unknown
MAX_EVAL_ROWS = 1000  # validation and test rows at most (the rest train)
IGNORE = -100  # target id at padded steps: cross_entropy skips it

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
LOWER_IS_BETTER = {"nll", "mae", "rmse", "loss"}  # the metrics a model beats by being below its baseline
SCORES_DISPLAY = Display(  # every score the shape classes' evaluate() returns, in SCORE_WORDS' words
    metrics={k: Metric(v, "%" if k in SHARE_SCORES else "", "lower" if k in LOWER_IS_BETTER else
                       "" if k in COUNT_SCORES else "higher") for k, v in SCORE_WORDS.items()})


@dataclass
class SequenceConfig:
    """Constructor arguments of build_model (on the card, so a checkpoint rebuilds itself)."""

    cell: str = "gru"  # rnn_tanh | gru | lstm: gated cells carry a signal across many steps
    embed_size: int = 32  # vector per character / word (one-to-one: unused, the features are the input)
    hidden_size: int = 64  # units of the recurrent state: small enough to train in minutes on a CPU
    num_layers: int = 1  # one layer fits most small tables; a second wants more data (and dropout)
    bidirectional: bool = False  # many-to-one and many-to-many: read both ways (the answer after each step is lost)
    dropout: float = 0.0  # between layers and before the head; 0.2-0.5 when a model learns its training rows by heart


def most_common(values):
    """The most frequent value (ties: the first seen)."""
    return Counter(values).most_common(1)[0][0]


def pad_steps(seqs: list[list[int]], value: int = PAD) -> tuple[torch.Tensor, torch.Tensor]:
    """core.data.pad plus the lengths, an empty sequence read as one <unk> (no model here reads zero steps)."""
    seqs = [s or [UNK] for s in seqs]
    return pad_ids(seqs, value), seq_lengths(seqs)  # (B, T), (B,)


def upto_eos(ids: list[int]) -> list[int]:
    return ids[:ids.index(EOS)] if EOS in ids else ids


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """``left<TAB>right`` per line -> (left, right) rows (blank lines skipped); text<TAB>label, source<TAB>target, words<TAB>tags."""
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        left, sep, right = line.rpartition("\t")
        if not sep or not left.strip() or not right.strip():
            raise ValueError(f"{path}:{n}: expected two columns separated by a tab")
        rows.append((left.strip(), right.strip()))
    return rows


def write_pairs(path: Path, rows: list[tuple[str, str]]) -> Path:
    """Write ``rows`` in the format the reader above reads (the folder is made when missing)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("".join(f"{a}\t{b}\n" for a, b in rows), encoding="utf-8")
    return Path(path)


class Cut:
    """Cuts sequences to their first ``n`` steps and counts the rows it cut (the dataset line says how many)."""

    def __init__(self, n: int):
        self.n = n  # steps the model reads
        self.rows: set = set()  # (part, row) keys of the rows that were longer

    def __call__(self, seq: list, key: tuple, n: int | None = None) -> list:
        n = self.n if n is None else n
        if len(seq) > n:
            self.rows.add(key)
        return seq[:n]


class SequenceTask(Task):
    """The shared part of the shape classes. Not a task by itself: use one of its subclasses."""

    Config: type = SequenceConfig  # the dataclass build_model reads ``config`` through
    config = asdict(SequenceConfig())
    recipe = Recipe(metric="accuracy", higher_is_better=True, epochs=30, batch_size=32, lr=3e-3, patience=5,
                    max_minutes=5.0, clip_norm=1.0)
    tokens: str = "char"  # what a step is: "char" (each character) or "word" (split from its punctuation)
    max_steps: dict = MAX_STEPS  # tokens mode -> the most steps a sequence keeps
    max_vocab: int = MAX_VOCAB  # learnt tokens per vocabulary at most
    max_eval_rows: int = MAX_EVAL_ROWS  # validation and test rows at most
    epoch_steps: int | None = None  # an "epoch" of exactly this many batches (None: one pass over the data)
    metric_meaning: str = ""  # the headline metric in words, for a page
    display = SCORES_DISPLAY  # the scores in words (a subclass sets its own ``inputs``: dataclasses.replace)
    meta_extra: dict = {}  # copied onto every split's meta (Your data: the columns read)
    data_file: str = "data.tsv"  # the file in the data folder that load_data reads, in read_rows' format
    toy_data: str = "toy rows made up by the scaffold"  # synthetic_data's dataset line on the card

    # ---- files -------------------------------------------------------------------------------------------------
    def read_rows(self, path: Path) -> list:
        """The data file -> raw examples: ``left<TAB>right`` pairs here (a class with another format overrides)."""
        return read_pairs(path)

    def write_rows(self, path: Path, rows: list) -> Path:
        """``rows`` written in the format read_rows reads."""
        return write_pairs(path, rows)

    def toy_rows(self, seed: int = 0) -> list:
        """Made-up raw examples of this shape, for tests and ``core.train --synthetic`` (a scaffold writes its own)."""
        raise NotImplementedError

    def load_data(self, data_dir: Path) -> Splits:
        """``data_dir``/``data_file`` (read_rows), split 80/10/10 with a fixed seed. A missing file: FileNotFoundError."""
        path = Path(data_dir) / self.data_file
        rows = self.read_rows(path)
        return self.make_splits(rows, [path], f"{len(rows)} rows from {self.data_file}, 80/10/10 split (seed 0)")

    def synthetic_data(self, seed: int = 0) -> Splits:
        return self.make_splits(self.toy_rows(seed), [], self.toy_data, seed)

    def write_example_data(self, data_dir: Path, seed: int = 0) -> Path:
        """The toy rows in the real format (``python -m <plugin> DIR``), to try ``--data-dir`` on them."""
        return self.write_rows(Path(data_dir) / self.data_file, self.toy_rows(seed))

    # ---- data --------------------------------------------------------------------------------------------------
    def split_punct(self, train: list) -> bool:
        """Words are split from their punctuation (text people wrote); a tagger may keep whitespace words."""
        return self.tokens == "word"

    def cells(self, text: str, meta: dict) -> list[str]:
        """A training cell -> its steps, as the meta says."""
        return steps(text, meta["tokens"], bool(meta.get("split_punct")))

    def build_vocab(self, token_lists) -> Vocab:
        """The training tokens by frequency (ties alphabetical), at most ``max_vocab``, after the four specials."""
        return Vocab.build(token_lists, max_size=self.max_vocab, fold_case=True)

    def vocab(self, meta: dict, key: str = "vocab") -> Vocab:
        """The vocabulary a card's meta stores under ``key`` (a list of the learnt tokens), read case-folding."""
        return Vocab.from_meta(meta, key, fold_case=True)

    def encoder(self, train: list, examples: list, meta: dict, cut: Cut):
        """Shape-specific: put the vocabularies / labels on ``meta`` and return part -> encoded examples."""
        raise NotImplementedError

    def after_encoding(self, train_ids: list, val_ids: list, meta: dict) -> None:
        """Shape-specific: what the baselines need from the encoded training rows (on ``meta``)."""

    def make_splits(self, examples: list, files=(), dataset: str = "", seed: int = 0) -> Splits:
        """Raw examples of this shape -> train / validation / test (one seeded shuffle, core.data.split_rows), each
        encoded to ids with vocabularies and labels learnt from the training part only."""
        train, val, test = split_rows(examples, seed, max_eval=self.max_eval_rows)
        meta: dict = {"tokens": self.tokens, **self.meta_extra, "split_punct": self.split_punct(train)}
        cut = Cut(self.max_steps[self.tokens])
        enc = self.encoder(train, examples, meta, cut)
        train_ids, val_ids, test_ids = enc(train), enc(val), enc(test)
        self.after_encoding(train_ids, val_ids, meta)
        meta["cut_rows"] = len(cut.rows)
        unit = "characters" if self.tokens == "char" else "words"
        note = (f"; {len(cut.rows):,} rows longer than {cut.n} {unit}: the model reads their first {cut.n}"
                if cut.rows else "")
        return Splits(train_ids, val_ids, test_ids, meta, files=list(files),
                      dataset=(dataset or f"{len(examples)} rows, {len(train)}/{len(val)}/{len(test)} "
                                          "train/validation/test (shuffled, seed 0)") + note)

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
        """Encoded examples -> one batch of padded tensors."""
        raise NotImplementedError

    def model_config(self, config: dict):
        return config_from_dict(self.Config, config)

    # ---- scoring -----------------------------------------------------------------------------------------------
    def scored_batches(self, model, data, batch_size: int = 256):
        """(batch on the model's device) for every batch of ``data``, in order, the model in eval mode, no grad."""
        model.eval()
        dev = next(model.parameters()).device
        with torch.no_grad():
            for b in self.batches(data, batch_size, shuffle=False):
                yield {k: v.to(dev) for k, v in b.items()}

    @staticmethod
    def step_loss(logits: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Cross-entropy over every real step: logits (B, T, V), targets (B, T) with IGNORE at padding."""
        return F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE, reduction=reduction)

    # ---- serving -----------------------------------------------------------------------------------------------
    def read_text(self, model, text) -> tuple[list[str], list[int], list[str]]:
        """Typed text -> (its steps, their ids, notes for the person: cut, unknown tokens). BadInput for no text."""
        if isinstance(text, dict):
            text = text.get("text", "")
        if not isinstance(text, str) or not text.strip():
            raise BadInput("Type some text.")
        if control_char(text.replace("\n", " ")):
            raise BadInput("The text contains a control character; type plain text.")
        rt = model.runtime
        mode = rt.meta["tokens"]
        toks = steps(" ".join(text.split()), mode, bool(rt.meta.get("split_punct")))
        notes = []
        limit = self.max_steps[mode]
        if len(toks) > limit:
            toks = toks[:limit]
            notes.append(f"Only the first {limit} {'characters' if mode == 'char' else 'words'} were read.")
        ids = rt.vocab.encode(toks)
        unknown = rt.vocab.unknown(toks)
        if unknown:
            notes.append(f"Never seen in training, read as unknown: {' '.join(unknown[:10])}"
                         + (" ..." if len(unknown) > 10 else ""))
        return toks, ids, notes

    def train_command(self) -> str:
        """How to train it: on its real data once that is there, else on its synthetic data."""
        if self.resolve_data_dir().exists():
            return super().train_command()
        return f"python -m core.train {self.name} --synthetic"
