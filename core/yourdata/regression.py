"""A number from a sequence: many-to-one regression (a review -> its rating, a name -> a number).

    numeric_target(profile, n_rows) -> bool        is a column of numbers a quantity to predict (not a label)?
    propose_regression(table, source, target, ...) -> Choice   the proposal, with its one-sentence reason
    RegressionTask                                 the Task (a YourDataTask whose spec.choice.kind is "regression")

The network is core.shapes.ManyToOne over the sequence's characters or words (read as the classifier reads them)
with one output. The target is standardised with the mean and standard deviation of the training rows only (on the
card's meta: target_mean, target_std); the loss is Huber on the standardised number. evaluate() gives the MAE and
RMSE in the target's own units beside always answering the training mean.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from core.data import config_from_dict
from core.shapes import ManyToOne
from core.yourdata.choice import MAX_LABELS, Choice, Profile
from core.yourdata.forecast import _std
from core.yourdata.task import SPECIALS, Config, YourDataTask, pad

METRIC_MEANING = "mean absolute error of the predicted number, in the target's own units (lower is better)"


def numeric_target(p: Profile, n_rows: int) -> bool:
    """A column of numbers to predict as a quantity: numbers with a fraction, or too many different whole numbers
    for a label (0/1, 1-5 stars: few whole numbers stay labels)."""
    few = p.distinct <= min(MAX_LABELS, max(2, n_rows // 3), 20)
    return p.numeric and p.distinct >= 3 and not (p.integer and few)


def propose_regression(source: str, target: Profile, tokens: str, example: str) -> Choice:
    """Many-to-one regression of ``target`` from the sequences of ``source``."""
    kind = "numbers with fractions" if not target.integer else f"{target.distinct} different numbers"
    return Choice("many_to_one", source, target.name, [], tokens, False,
                  f"'{source}' holds sequences and '{target.name}' a quantity ({kind}, e.g. '{example}'), so a "
                  "many-to-one network reads each sequence and answers one number (regression).",
                  kind="regression")


class RegressionTask(YourDataTask):
    """A sequence -> one number. ``core.yourdata.kinds.task_for_spec(spec)`` of a spec whose choice.kind is
    "regression" is one of these."""

    def __init__(self, spec: dict | None = None, **fields):
        super().__init__(spec, **fields)
        self.summary = getattr(type(self), "summary", "") or "A sequence -> one number (regression)."
        self.metric_meaning = METRIC_MEANING
        self.recipe.metric, self.recipe.higher_is_better = "mae", False

    # ---- data --------------------------------------------------------------------------------------------------
    def target_code(self, train: list, examples: list, meta: dict):
        """The number standardised with the training rows' mean and standard deviation (on ``meta``)."""
        ys = [float(y) for _, y in train]
        mean, std = sum(ys) / len(ys), _std(ys)
        meta.update(target=self.choice.target, target_mean=mean, target_std=std)
        return lambda y: (float(y) - mean) / std

    # ---- model -------------------------------------------------------------------------------------------------
    def build_model(self, config: dict, meta: dict):
        cfg = config_from_dict(Config, config)
        model = ManyToOne(cfg.embed_size, cfg.hidden_size, 1, cfg.cell, cfg.num_layers, cfg.bidirectional,
                          cfg.dropout, vocab_size=len(meta["vocab"]) + len(SPECIALS), pad_id=0)
        model.meta = meta
        return model

    def loss(self, model, batch) -> torch.Tensor:
        return F.huber_loss(model(batch["x"], batch["lengths"])[:, 0], batch["y"].float())  # (B,) standardised

    def evaluate(self, model, data) -> dict:
        """MAE and RMSE in the target's units, beside always answering the training mean, on the same rows."""
        model.eval()
        meta = model.meta
        dev = next(model.parameters()).device
        std = float(meta["target_std"])
        loss = ae = se = mean_ae = mean_se = 0.0
        n = 0
        with torch.no_grad():
            for b in self.batches(data, 256, shuffle=False):
                out = model(b["x"].to(dev), b["lengths"])[:, 0].float().cpu()  # (B,) standardised
                y = b["y"].float()  # (B,)
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

    # ---- serving -----------------------------------------------------------------------------------------------
    def _number(self, model, out: torch.Tensor) -> torch.Tensor:
        meta = model.meta
        return out * float(meta["target_std"]) + float(meta["target_mean"])

    def predict(self, model, input) -> dict:
        toks, ids, notes = self._tokens(model, input)
        x, lengths = pad([ids])  # (1, T)
        with torch.inference_mode():
            value = self._number(model, model(x, lengths)[0, 0])
            after = self._number(model, model.prefix_logits(x, lengths)[0, :, 0])  # (T,): the answer after each step
        return {"target": model.meta.get("target", self.choice.target), "value": float(value),
                "mean": float(model.meta["target_mean"]),
                "after_each_step": [{"step": t, "token": c, "value": float(v)} for t, (c, v) in
                                    enumerate(zip(toks, after.tolist()))],
                "notes": notes}

    def inspect_loss(self, model, input) -> tuple[torch.Tensor, list[str]]:
        """The model's own answer (standardised: how far from the training mean, in standard deviations) as the
        loss. A squared distance to its own answer would have zero gradient everywhere; the answer itself has
        dL/dh_t = d(answer)/dh_t, so ||dL/dh_t|| says how much each step's state moves the number."""
        toks, ids, _ = self._tokens(model, input)
        x, lengths = pad([ids])  # (1, T)
        return model(x, lengths)[0, 0], toks
