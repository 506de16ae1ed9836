"""Training a person's data live, with core's pieces and within a budget.

    task = make_task(table, choice, ...)          a YourDataTask for the table
    result = train_run(task, splits, cells, size, steps, seconds, on_event)   every cell through core.train.fit
    with QUEUE.turn(on_wait): ...                 one training at a time per server, the others told their place

The budget keeps a shared server safe: at most MAX_SECONDS for a whole run (the cells share it), MAX_TRAIN_STEPS
optimizer steps per cell and models of at most MAX_PARAMS parameters.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from core.task import BadInput, Splits
from core.train import FitResult, fit, seed_everything
from core.yourdata.choice import Choice
from core.yourdata.kinds import task_for_spec
from core.yourdata.parse import Table, safe_file_name
from core.yourdata.task import YourDataTask

CELLS = {"tanh-RNN": "rnn_tanh", "GRU": "gru", "LSTM": "lstm", "minGRU": "mingru", "minLSTM": "minlstm"}  # shown -> core.layers' name
SIZES = {"small": (16, 32), "medium": (32, 64), "large": (64, 128)}  # (embed_size, hidden_size)
MAX_SECONDS = 60.0  # one run, all its cells together
MAX_TRAIN_STEPS = 3000  # optimizer steps per cell
MAX_PARAMS = 2_000_000
SAMPLE_ROWS = 120  # rows of the person's data kept in an exported plugin's spec (its synthetic data)


class BudgetError(BadInput):
    """A request beyond the server's budget (the message says which limit)."""


class QueueTimeout(BadInput):
    """Waited too long for the one training slot."""


def make_task(table: Table, choice: Choice, name: str = "your_data", title: str = "Your data",
              skip_bad: bool = False, size: str = "medium", cells: list[str] | None = None, demos=None) -> YourDataTask:
    """A YourDataTask for ``table``: the spec records how the file was read, so an exported plugin reads it again
    the same way."""
    embed, hidden = SIZES.get(size, SIZES["medium"])
    cells = cells or ["GRU"]
    spec = {"choice": choice.to_dict(), "file": safe_file_name(table.name), "delimiter": table.delimiter, "header": table.header,
            "skip_bad": bool(skip_bad), "columns": list(table.columns),
            "sample": [list(r) for r in table.rows[:sample_rows(choice)]],
            "config": {"embed_size": embed, "hidden_size": hidden},
            "variants": {c: {"cell": CELLS[c]} for c in cells if c in CELLS},
            "demos": demos or []}
    return task_for_spec(spec, name=name, title=title)


def sample_rows(choice: Choice) -> int:
    """Rows of the person's data kept in the spec: SAMPLE_ROWS, or for a forecast enough for its windows."""
    if choice.kind != "forecast":
        return SAMPLE_ROWS
    from core.yourdata.forecast import need_steps

    need = need_steps(int(choice.window), int(choice.horizon))
    return max(SAMPLE_ROWS, -(-need // len(choice.features)) if choice.layout == "wide" else need)


@dataclass
class CellRun:
    label: str  # "GRU"
    model: torch.nn.Module
    config: dict
    fit: FitResult
    test: dict
    seconds: float
    num_params: int
    stopped: str


@dataclass
class RunResult:
    runs: dict[str, CellRun] = field(default_factory=dict)
    served: str = ""  # the cell with the best validation score
    seconds: float = 0.0
    steps: int = 0
    per_cell_seconds: float = 0.0


def check_budget(task: YourDataTask, splits: Splits, cells: list[str], size: str, steps: int) -> None:
    if not cells:
        raise BudgetError("Pick at least one cell to train.")
    bad = [c for c in cells if c not in CELLS]
    if bad:
        raise BudgetError(f"Unknown cell {bad[0]!r}; the cells are: {', '.join(CELLS)}.")
    if size not in SIZES:
        raise BudgetError(f"Unknown size {size!r}; sizes: {', '.join(SIZES)}.")
    if not 1 <= int(steps) <= MAX_TRAIN_STEPS:
        raise BudgetError(f"Steps must be from 1 to {MAX_TRAIN_STEPS}.")
    n = max(sum(p.numel() for p in task.build_model({**task.config, **cell_config(c, size)}, splits.meta).parameters())
            for c in cells)
    if n > MAX_PARAMS:
        raise BudgetError(f"This model would have {n:,} parameters; at most {MAX_PARAMS:,} train here (a large "
                          "vocabulary? try characters instead of words, or a smaller size).")


def cell_config(cell: str, size: str) -> dict:
    embed, hidden = SIZES[size]
    return {"cell": CELLS[cell], "embed_size": embed, "hidden_size": hidden}


def train_run(task: YourDataTask, splits: Splits, cells: list[str], size: str = "medium", steps: int = 300,
              seconds: float = MAX_SECONDS, on_event: Callable[[dict], None] | None = None, seed: int = 0,
              clip_norm: float | None = 1.0, lr: float = 3e-3) -> RunResult:
    """Train each cell in turn on splits.train with core.train.fit (validation on splits.val), within the budget.

    ``on_event`` gets fit's callback dicts plus "cell", "index" (0-based) and "cells" (how many)."""
    check_budget(task, splits, cells, size, steps)
    seconds = min(float(seconds), MAX_SECONDS)
    per_cell = seconds / len(cells)
    task.epoch_steps = max(5, min(50, int(steps) // 10))  # a validation point every epoch_steps steps
    result = RunResult(per_cell_seconds=per_cell, steps=int(steps))
    t_run = time.time()
    for i, label in enumerate(cells):
        config = {**task.config, **cell_config(label, size)}
        seed_everything(seed)
        model = task.build_model(config, splits.meta)
        recipe = copy.deepcopy(task.recipe)
        recipe.epochs, recipe.patience, recipe.max_minutes = 10**6, 10**6, per_cell / 60
        recipe.clip_norm, recipe.lr = clip_norm, lr

        def cb(event, i=i, label=label):
            if on_event is not None:
                on_event({**event, "cell": label, "index": i, "cells": len(cells), "steps": int(steps)})

        t0 = time.time()
        res = fit(model, task, splits, recipe, torch.device("cpu"), seed=seed, callbacks=[cb], progress=False,
                  max_steps=int(steps))
        with torch.no_grad():
            test = task.evaluate(model, splits.test)
        result.runs[label] = CellRun(label, model, config, res, test, time.time() - t0,
                                     sum(p.numel() for p in model.parameters()), res.stopped)
    metric, higher = task.recipe.metric, task.recipe.higher_is_better
    result.served = (max if higher else min)(result.runs, key=lambda k: result.runs[k].fit.best_val[metric])
    result.seconds = time.time() - t_run
    task.epoch_steps = None
    return result


class TrainQueue:
    """One training at a time per server process; the others wait in line and are told their place."""

    def __init__(self):
        self._cond = threading.Condition()
        self._line: list[object] = []

    def place(self, ticket: object) -> int:
        """0: training now; n: n-th waiting; -1: not in line."""
        with self._cond:
            return self._line.index(ticket) if ticket in self._line else -1

    def waiting(self) -> int:
        with self._cond:
            return max(len(self._line) - 1, 0)

    def busy(self) -> bool:
        with self._cond:
            return bool(self._line)

    @contextlib.contextmanager
    def turn(self, on_wait: Callable[[int], None] | None = None, timeout: float = 300.0, poll: float = 0.5):
        """Wait for the slot (``on_wait(place)`` while waiting), hold it for the ``with`` block, always give it back."""
        ticket = object()
        with self._cond:
            self._line.append(ticket)
        try:
            t0 = time.monotonic()
            while True:
                place = self.place(ticket)
                if place == 0:
                    break
                if on_wait is not None:
                    on_wait(place)
                if time.monotonic() - t0 > timeout:
                    raise QueueTimeout(f"Waited {timeout:.0f} s for the trainer; the server is busy. Try again soon.")
                with self._cond:
                    self._cond.wait(poll)
            yield
        finally:
            with self._cond:
                if ticket in self._line:
                    self._line.remove(ticket)
                self._cond.notify_all()
