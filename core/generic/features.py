"""FeatureClassifier: a row of numbers -> one label, in a single recurrent step (one-to-one).

A one-to-one "RNN" runs its recurrence once from a zero state: h = f(W x + b), p(y | x) = softmax(V h + c). The
recurrent weight never acts, so it is a feed-forward network in disguise -- the lesson's point, and what the
inspector shows. Each feature is standardised with the training part's mean and standard deviation (on the meta,
so typed numbers are scaled the same way).

Scores: accuracy beside the majority class and chance, as SequenceClassifier's.

Raw examples: ([x_1, ..., x_F], label). meta: features (their names), mean, std, labels, majority.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from core.generic.base import Cut
from core.generic.classifier import SequenceClassifier
from core.shapes import OneToOne
from core.task import BadInput


def read_csv(path: Path) -> tuple[list[str], list[tuple[list[float], str]]]:
    """A CSV file with a header row, numeric feature columns and the label in the last one -> (names, rows)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header or len(header) < 2:
            raise ValueError(f"{path}: expected a header row 'feature,...,label'")
        rows = []
        for n, rec in enumerate(reader, 2):
            if not rec:
                continue
            if len(rec) != len(header):
                raise ValueError(f"{path}:{n}: expected {len(header)} columns, got {len(rec)}")
            try:
                rows.append(([float(v) for v in rec[:-1]], rec[-1].strip()))
            except ValueError:
                raise ValueError(f"{path}:{n}: the feature columns must be numbers") from None
    return header[:-1], rows


def write_csv(path: Path, features: list[str], rows: list[tuple[list[float], str]], label: str = "label") -> Path:
    """Write ``rows`` in the format the reader above reads (the folder is made when missing)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(list(features) + [label])
        w.writerows([*x, y] for x, y in rows)
    return Path(path)


class FeatureClassifier(SequenceClassifier):
    """One-to-one: numbers -> one label. ``features`` names the inputs (on the meta and in messages)."""

    shape = "one_to_one"
    summary = "A row of numbers -> one label, in a single step (no recurrence)."
    primary_input = "text"
    features: list[str] = []  # the input columns' names, in order
    data_file = "data.csv"  # a header row, the feature columns, the label last

    def read_rows(self, path: Path) -> list:
        """The CSV's rows; its header names ``features``."""
        self.features, rows = read_csv(path)
        return rows

    def write_rows(self, path: Path, rows: list) -> Path:
        return write_csv(path, list(self.features), rows)

    def encoder(self, train: list, examples: list, meta: dict, cut: Cut):
        cols = list(zip(*[x for x, _ in train]))  # feature-major
        mean = [sum(col) / len(col) for col in cols]  # standardise with the TRAINING statistics only
        std = [max(math.sqrt(sum((v - m) ** 2 for v in col) / len(col)), 1e-6) for col, m in zip(cols, mean)]
        meta.update(features=list(self.features), mean=mean, std=std)
        code = self.target_code(train, examples, meta)

        def enc(part):
            return [([(v - m) / s for v, m, s in zip(x, mean, std)], code(y)) for x, y in part]
        return enc

    def collate(self, part: list) -> dict:
        return {"x": torch.tensor([x for x, _ in part], dtype=torch.float32),  # (B, F)
                "y": torch.tensor([y for _, y in part])}  # (B,)

    def build_model(self, config: dict, meta: dict):
        cfg = self.model_config(config)
        return OneToOne(len(meta["features"]), cfg.hidden_size, self.n_outputs(meta), cfg.cell, dropout=cfg.dropout)

    def forward(self, model, batch: dict) -> torch.Tensor:
        return model(batch["x"])  # (B, C)

    def read_numbers(self, model, input) -> torch.Tensor:
        """Typed numbers ("0.5, 1.2" or a list) -> the scaled (1, F) input. BadInput when they do not fit."""
        meta = model.runtime.meta
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
        if not all(math.isfinite(v) and abs(v) < 1e9 for v in values):  # larger ones would swamp the scaled inputs
            raise BadInput("The numbers must be finite and below a billion in size.")
        scaled = [(v - m) / s for v, m, s in zip(values, meta["mean"], meta["std"])]
        return torch.tensor([scaled], dtype=torch.float32)  # (1, F)

    def predict(self, model, input) -> dict:
        with torch.inference_mode():
            probs = model(self.read_numbers(model, input)).softmax(-1)[0]  # (C,)
        labels = model.runtime.labels
        best = int(probs.argmax())
        return {"label": labels[best], "prob": float(probs[best]),
                "probs": {lab: float(p) for lab, p in zip(labels, probs)}, "notes": []}

    def inspect_loss(self, model, input) -> tuple[torch.Tensor, list[str]]:
        logits = model(self.read_numbers(model, input))  # (1, C)
        return F.cross_entropy(logits, logits.argmax(-1).detach()), ["input"]  # one step: one label
