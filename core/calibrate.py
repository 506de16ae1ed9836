"""Calibrated confidence: when a classifier says 90%, it should be right about 90% of the time.

Networks trained with cross-entropy are often over-confident. Temperature scaling (Guo, Pleiss, Sun & Weinberger,
"On Calibration of Modern Neural Networks", ICML 2017) divides every logit by one number T > 0 fitted on the
validation split (the NLL of the true classes, minimised over log T): the answer (the argmax) never changes, only
how sure it sounds. The card keeps T and the expected calibration error (ECE) on the test split before and after;
``load_served`` hands T to the answering model and the tasks' ``predict`` divides by it.

    python -m core.calibrate <task> [--data-dir DIR] [--weights DIR]

refits T on validation for the committed weights and writes it into their card (no retraining);
``python -m core.train`` does the same at the end of training for every task that can give its logits.
``python -m core.evaluate <task>`` recomputes the card's calibration numbers.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable
from datetime import datetime, timezone

import torch
import torch.nn.functional as F

from core.modelcard import Calibration
from core.task import Task

BINS = 15  # confidence bins of the ECE, as in Guo et al. 2017


def split_logits(model: torch.nn.Module, batches: Iterable[dict], forward: Callable[[torch.nn.Module, dict], torch.Tensor],
                 label_key: str = "y") -> tuple[torch.Tensor, torch.Tensor]:
    """The logits (N, C) ``forward(model, batch)`` gives over every batch, and the labels (N,) under ``label_key``:
    what a classifier's ``Task.class_logits`` returns. Eval mode, no gradients; the model's mode is restored."""
    was = model.training
    model.eval()
    dev = next(model.parameters()).device
    logits, labels = [], []
    with torch.no_grad():
        for batch in batches:
            on_dev = {k: v.to(dev) if torch.is_tensor(v) else v for k, v in batch.items()}
            logits.append(forward(model, on_dev).float().cpu())  # (B, C)
            labels.append(batch[label_key])  # (B,)
    model.train(was)
    return torch.cat(logits), torch.cat(labels)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, steps: int = 100) -> float:
    """The T > 0 minimising the mean NLL of softmax(logits / T) at ``labels``: logits (N, C), labels (N,) long.
    LBFGS on log T (so T stays positive), starting from T = 1."""
    logits, labels = logits.detach().float(), labels.detach().long()
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.detach().exp())
    return t if math.isfinite(t) and t > 0 else 1.0


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = BINS) -> float:
    """ECE: the answers sorted into ``bins`` equal-width bins by their confidence (the top probability); per bin,
    |accuracy - mean confidence|, weighted by the bin's share of the answers. probs (N, C), labels (N,)."""
    probs, labels = probs.detach().float(), labels.detach().long()
    if len(labels) == 0:
        return 0.0
    conf, pred = probs.max(dim=-1)  # (N,), (N,)
    right = (pred == labels).float()  # (N,)
    edges = torch.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)  # (N,)
        if inside.any():
            ece += float(inside.float().mean()) * abs(float(right[inside].mean()) - float(conf[inside].mean()))
    return ece


def temperature_of(model) -> float:
    """The temperature ``load_served`` gave this model (1.0: none, the raw softmax)."""
    return float(model.runtime.temperature)


def scores(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> dict[str, float]:
    """ECE, NLL and accuracy of softmax(logits / T): logits (N, C), labels (N,)."""
    z = logits.detach().float() / temperature  # (N, C)
    return {"ece": expected_calibration_error(z.softmax(-1), labels), "nll": float(F.cross_entropy(z, labels.long())),
            "accuracy": float((z.argmax(-1) == labels).float().mean())}


def calibration_record(task, model, splits, command: str, answering: str) -> Calibration:
    """Fit T on ``splits.val`` with ``task.class_logits`` and score the test split before and after."""
    val_logits, val_labels = task.class_logits(model, splits.val)
    test_logits, test_labels = task.class_logits(model, splits.test)
    t = fit_temperature(val_logits, val_labels)
    return Calibration(
        temperature=t, answering=answering, fit_on="validation", bins=BINS,
        val_before=scores(val_logits, val_labels), val_after=scores(val_logits, val_labels, t),
        test_before=scores(test_logits, test_labels), test_after=scores(test_logits, test_labels, t),
        command=command, created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))


def recompute(task, served, test) -> dict[str, float]:
    """The card's test calibration scores recomputed: "before ece", "after nll", ... (core.evaluate compares them).
    ``served``: core.serving.Served whose card holds a calibration."""
    cal = served.card.calibration
    model = served.ensemble if cal.answering == "ensemble" and served.ensemble is not None else served.model
    logits, labels = task.class_logits(model, test)
    return {f"{when} {k}": v for when, t in (("before", 1.0), ("after", cal.temperature))
            for k, v in scores(logits, labels, t).items()}


def can_calibrate(task) -> bool:
    """True for a task that gives class logits per example (it overrides Task.class_logits)."""
    return type(task).class_logits is not Task.class_logits


if __name__ == "__main__":  # python -m core.calibrate: the command, kept in core.cli
    from core.cli.calibrate import main

    sys.exit(main())
