"""Speed, made visible: how long one training step (forward + backward) of each cell takes as the sequence grows.

A loop (the plain RNN, GRU and LSTM -- even in torch's fused kernel -- and any cell run step by step) must finish
step t before it can start step t+1: T steps in a row. minGRU and minLSTM compute their gates from the input alone,
so every step's gate is known at once and the recurrence h_t = a_t * h_{t-1} + b_t is a prefix scan: about log2 T
rounds of work that can each run in parallel. ``speed_table`` times both kinds at lengths 64 ... 4096 within a
bounded total time; a length whose estimated time would overrun the budget is estimated from the longest measured
one (time grows in proportion to T) and marked as estimated, never left out silently.

Pure PyTorch + pandas (no Streamlit).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import torch

from core.layers import CELLS, MIN_CELLS, Recurrent, cell_label

SPEED_LENGTHS = (64, 128, 256, 512, 1024, 2048, 4096)
PATH_LOOP, PATH_SCAN, PATH_STEPWISE = "loop (torch's fused kernel)", "parallel scan", "loop, one step at a time"


@dataclass(frozen=True)
class SpeedConfig:
    """One speed measurement: the same batch, width and lengths for every cell."""

    batch: int = 8  # sequences per step: small, so the time is about the length, not about the batch
    hidden: int = 128  # state size H (input size too): big enough that a step is real work
    lengths: tuple[int, ...] = SPEED_LENGTHS  # sequence lengths T to time
    budget_s: float = 40.0  # total seconds for every timing together; past it, lengths are estimated
    repeats: int = 2  # timed runs per length after one warm-up; the fastest counts (the least disturbed)


def speed_series() -> list[tuple[str, str]]:
    """(cell, path) in the order the panel shows them: the three classic cells on their fused loop, the linear
    recurrences on their scan, and minGRU once more one step at a time (the same weights, as a loop)."""
    out = [(c, PATH_LOOP) for c in ("rnn_tanh", "gru", "lstm") if c in CELLS]
    scans = [c for c in CELLS if c in MIN_CELLS]
    out += [(c, PATH_SCAN) for c in scans]
    if scans:
        out.append((scans[0], PATH_STEPWISE))
    return out


def sequential_rounds(length: int, path: str) -> int:
    """How many rounds of work must wait for the one before: T for a loop, about log2 T for a scan."""
    return max(1, math.ceil(math.log2(length))) if path == PATH_SCAN else int(length)


def time_training_step(module: Recurrent, x: torch.Tensor, stepwise: bool = False, repeats: int = 2,
                       clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds for one forward + backward pass of ``module`` on ``x`` (B, T, H): the fastest of ``repeats`` timed
    runs after one untimed warm-up."""
    def once() -> float:
        module.zero_grad(set_to_none=True)
        t0 = clock()
        out = module.forward_stepwise(x)[0] if stepwise else module(x)[0]  # (B, T, H)
        out.pow(2).mean().backward()
        return clock() - t0

    with torch.enable_grad():
        once()
        return min(once() for _ in range(max(1, int(repeats))))


SPEED_COLUMNS = ["cell", "label", "path", "series", "length", "seconds", "measured", "rounds"]


def speed_table(config: SpeedConfig = SpeedConfig(), series: list[tuple[str, str]] | None = None,
                callback: Callable[[dict], None] | None = None, seed: int = 0) -> pd.DataFrame:
    """One row per (cell, path) x length, columns SPEED_COLUMNS: seconds for one training step, measured (False:
    estimated from the longest measured length, because measuring it would have overrun the budget), rounds
    (sequential_rounds). The budget is shared out as the run goes: each series may use what is left divided by
    the series still to come, so a fast series leaves more time to a slow one. ``callback`` gets every row.
    ``df.attrs``: threads, batch, hidden, budget_s, spent_s."""
    cfg = config
    series = speed_series() if series is None else series
    rows, t_start = [], time.perf_counter()
    for i, (cell, path) in enumerate(series):
        allowed = (cfg.budget_s - (time.perf_counter() - t_start)) / (len(series) - i)
        torch.manual_seed(seed)
        module = Recurrent(cell, cfg.hidden, cfg.hidden)
        spent, last = 0.0, None  # last: (length, seconds) of the longest measured length
        for length in cfg.lengths:
            estimate = last[1] * length / last[0] if last else None
            # one warm-up + repeats runs, each about `estimate`
            if estimate is not None and spent + estimate * (cfg.repeats + 1) > allowed:
                seconds, measured = estimate, False
            else:
                x = torch.randn(cfg.batch, int(length), cfg.hidden, generator=torch.Generator().manual_seed(seed))
                t0 = time.perf_counter()
                seconds = time_training_step(module, x, stepwise=path == PATH_STEPWISE, repeats=cfg.repeats)
                spent += time.perf_counter() - t0
                measured, last = True, (int(length), seconds)
            label = cell_label(cell)
            row = dict(cell=cell, label=label, path=path, series=f"{label}, {path}", length=int(length),
                       seconds=float(seconds), measured=measured, rounds=sequential_rounds(int(length), path))
            rows.append(row)
            if callback is not None:
                callback(dict(row, index=len(rows), total=len(series) * len(cfg.lengths)))
    df = pd.DataFrame(rows, columns=SPEED_COLUMNS)
    df.attrs.update(threads=torch.get_num_threads(), batch=cfg.batch, hidden=cfg.hidden, budget_s=cfg.budget_s,
                    spent_s=time.perf_counter() - t_start)
    return df


def speed_ratio(table: pd.DataFrame, length: int, slow: tuple[str, str], fast: tuple[str, str]) -> float:
    """seconds of ``slow`` / seconds of ``fast`` (each a (cell, path)) at ``length``; NaN when either is missing."""
    def at(cell_path):
        r = table[(table["cell"] == cell_path[0]) & (table["path"] == cell_path[1]) & (table["length"] == length)]
        return float(r["seconds"].iloc[0]) if len(r) else float("nan")

    a, b = at(slow), at(fast)
    return a / b if b > 0 else float("nan")


__all__ = ["SpeedConfig", "SPEED_LENGTHS", "SPEED_COLUMNS", "PATH_LOOP", "PATH_SCAN", "PATH_STEPWISE", "speed_series",
           "sequential_rounds", "time_training_step", "speed_table", "speed_ratio"]
