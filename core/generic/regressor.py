"""SequenceRegressor: a sequence -> one number (many-to-one regression), e.g. a review -> its rating.

The network is SequenceClassifier's (core.shapes.ManyToOne) with one output. The target is standardised with the
training part's mean and standard deviation (meta: target_mean, target_std), so the network answers "how many
standard deviations from the training mean"; the loss is Huber on that (squared near the answer, linear far from
it: a few extreme rows do not dominate).

Scores: MAE and RMSE in the target's own units, beside always answering the training mean (mean mae, mean rmse).

Raw examples: (text, number). meta: tokens, split_punct, vocab, target (its name), target_mean, target_std.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from core.generic.base import pad_steps
from core.generic.classifier import SequenceClassifier
from core.task import Recipe


def std_or_one(v: list[float]) -> float:
    """The standard deviation of ``v``; 1.0 for fewer than two values or (almost) none (a constant column)."""
    if len(v) < 2:
        return 1.0
    m = sum(v) / len(v)
    s = math.sqrt(sum((x - m) ** 2 for x in v) / len(v))
    return s if s > 1e-9 else 1.0


class SequenceRegressor(SequenceClassifier):
    """Many-to-one regression: a text -> one number. ``target_name`` names the number on the meta and the answer."""

    summary = "A sequence -> one number (regression)."
    metric_meaning = "mean absolute error of the predicted number, in the target's own units (lower is better)"
    recipe = Recipe(metric="mae", higher_is_better=False, epochs=30, batch_size=32, lr=3e-3, patience=5,
                    max_minutes=5.0, clip_norm=1.0)
    target_name: str = "value"

    def target_code(self, train: list, examples: list, meta: dict):
        """The number standardised with the training rows' mean and standard deviation (on ``meta``)."""
        ys = [float(y) for _, y in train]
        mean, std = sum(ys) / len(ys), std_or_one(ys)
        meta.update(target=self.target_name, target_mean=mean, target_std=std)
        return lambda y: (float(y) - mean) / std

    def n_outputs(self, meta: dict) -> int:
        return 1

    def loss(self, model, batch) -> torch.Tensor:
        return F.huber_loss(self.forward(model, batch)[:, 0], batch["y"].float())  # (B,) standardised

    def evaluate(self, model, data) -> dict:
        """MAE and RMSE in the target's units, beside always answering the training mean, on the same rows."""
        std = float(model.runtime.meta["target_std"])
        loss = ae = se = mean_ae = mean_se = 0.0
        n = 0
        for b in self.scored_batches(model, data):
            out = self.forward(model, b)[:, 0].float().cpu()  # (B,) standardised
            y = b["y"].float().cpu()  # (B,)
            loss += float(F.huber_loss(out, y, reduction="sum"))
            err, base = (out - y).double() * std, y.double() * std  # (B,): the training mean is 0 here
            ae += float(err.abs().sum())
            se += float((err ** 2).sum())
            mean_ae += float(base.abs().sum())
            mean_se += float((base ** 2).sum())
            n += len(y)
        if not n:
            return {"loss": math.nan, "mae": math.nan, "rmse": math.nan, "rows": 0.0}
        return {"loss": loss / n, "mae": ae / n, "rmse": math.sqrt(se / n), "mean mae": mean_ae / n,
                "mean rmse": math.sqrt(mean_se / n), "rows": float(n)}

    def number(self, model, out: torch.Tensor) -> torch.Tensor:
        """Standardised answers -> numbers in the target's units."""
        meta = model.runtime.meta
        return out * float(meta["target_std"]) + float(meta["target_mean"])

    def predict(self, model, input) -> dict:
        toks, ids, notes = self.read_text(model, input)
        x, lengths = pad_steps([ids])  # (1, T)
        with torch.inference_mode():
            value = self.number(model, model(x, lengths)[0, 0])
            after = self.number(model, model.prefix_logits(x, lengths)[0, :, 0])  # (T,): the answer after each step
        meta = model.runtime.meta
        return {"target": meta.get("target", self.target_name), "value": float(value), "mean": float(meta["target_mean"]),
                "after_each_step": [{"step": t, "token": c, "value": float(v)} for t, (c, v) in
                                    enumerate(zip(toks, after.tolist()))],
                "notes": notes}

    def inspect_loss(self, model, input) -> tuple[torch.Tensor, list[str]]:
        """The model's own answer (standardised: how far from the training mean, in standard deviations) as the
        loss. A squared distance to its own answer would have zero gradient everywhere; the answer itself has
        dL/dh_t = d(answer)/dh_t, so ||dL/dh_t|| says how much each step's state moves the number."""
        toks, ids, _ = self.read_text(model, input)
        return model(*pad_steps([ids]))[0, 0], toks
