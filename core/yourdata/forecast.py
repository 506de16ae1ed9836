"""Forecasting a person's time series: a window of the last W steps -> the next H values of one column.

A forecast is many-to-one over time windows: each step of the window is a vector of the numeric columns, the
network reads the W steps and answers once with H numbers (core.shapes.ManyToOne on continuous inputs).

    detect(table) -> Detected | None               is this table a time series? (time columns, wide layout, period)
    read_series(table, choice) -> Series           the numbers in time order (a wide table melted into one series)
    detect_period(values) -> int | None            the season, from the autocorrelation of the step changes
    default_window_horizon(n, period) -> (W, H)
    time_split(n, W, H) -> Parts                   time-ordered windows: train, then validation, then test
    ForecastTask                                   the Task (a YourDataTask whose spec.choice.kind is "forecast")
    chart_rows(task, model, series) -> list[dict]  the held-out part, the forecasts over it, the next H steps

Each window is read relative to its own last value (every column minus its value at the window's last step),
in units of that column's typical step-to-step change on the training part; the network answers the next H
changes of the target in the same units. So a trend that takes the series beyond the training range does not take
the inputs beyond what the network saw, and "no change" -- the last-value forecast -- is the answer 0.
"""

from __future__ import annotations

import math
import random
import re
import warnings
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from core.data import config_from_dict
from core.generic.regressor import std_or_one
from core.shapes import ManyToOne
from core.task import BadInput, Demo, Splits
from core.yourdata.choice import MIN_ROWS, Choice
from core.yourdata.parse import DataError, Table, _plural, is_number, problem_list
from core.yourdata.task import Config, YourDataTask

MAX_WINDOW = 200  # steps one window reads
MAX_HORIZON = 60  # steps one forecast answers
MIN_TRAIN_WINDOWS = 8  # fewer training windows cannot teach anything
HELD_OUT = 0.15  # share of the series held out for validation, and the same again for the test (the last part)
MIN_SERIES = 20  # steps: fewer is not a series to forecast
MAX_PERIOD_STEPS = 5000  # the season is looked for in the last this many steps
TIME_NAMES = {"date", "time", "datetime", "timestamp", "ds", "day", "week", "month", "year", "yr", "quarter", "qtr",
              "period", "hour", "minute", "t", "step", "index", "obs", "observation_date"}
WEAK_TIME = {"t", "step", "index", "obs"}  # a row number: time only when strictly increasing, and a label beside it wins
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
TARGET_NAMES = ("value", "values", "target", "y", "close", "sales", "count", "demand", "load", "price", "total")
WIDE_NAME = "value"  # the one series of a wide table (a row per year, a column per month)
METRIC_MEANING = "how far the forecast is from the truth on average, in the data's own units (lower is better)"


def _norm(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


def _month_index(name: str) -> int | None:
    n = _norm(name)
    for i, m in enumerate(MONTHS):
        if n == m or (len(n) > 3 and n.startswith(m) and n in _FULL_MONTHS):
            return i
    return None


_FULL_MONTHS = {"january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
                "november", "december", "sept"}


def _is_time_name(name: str) -> bool:
    n = name.lower().strip()
    return n in TIME_NAMES or _norm(n) in {"date", "datetime", "timestamp", "yearmonth", "month", "time"}


def _dates(values: list[str]):
    """A pandas DatetimeIndex when every value reads as a date (and none is a plain number), else None."""
    if not values or any(is_number(v) for v in values[:50]) or max(len(v) for v in values[:50]) > 40:
        return None
    if len(values) > 50 and _dates(values[:50]) is None:  # a quick look first: most text is no date
        return None
    if any(is_number(v) for v in values):
        return None
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            d = pd.to_datetime(pd.Series(values), errors="coerce")
        except (ValueError, TypeError, OverflowError):
            return None
    if d.isna().any():
        return None
    return pd.DatetimeIndex(d)


@dataclass
class Detected:
    """What makes a table a time series."""

    time: list[str]  # the time columns (a date column, or year + quarter/month), may be empty
    layout: str  # "long": a row per step; "wide": a row per year, a column per month
    features: list[str]  # numeric columns read at each step (wide: the month columns)
    target: str  # the column to forecast (wide: WIDE_NAME)
    why: str  # what was recognised, in words


def _time_columns(table: Table, numeric: set[str]) -> list[str]:
    """Columns that say when each row is: named like time (year, quarter, date ...) with whole numbers or dates,
    or text that reads as dates. ``numeric``: the columns whose every cell is a number."""
    out = []
    for j, name in enumerate(table.columns):
        col = [r[j] for r in table.rows]
        if name in numeric:
            if _is_time_name(name) and all(float(v) == int(float(v)) for v in col) and (
                    name.lower().strip() not in WEAK_TIME or all(float(a) < float(b) for a, b in zip(col, col[1:]))):
                out.append(name)
        elif _dates(col) is not None:
            out.append(name)
    return out


def _wide_months(table: Table) -> list[str] | None:
    """The 12 month columns of a wide table (a row per year), in calendar order, or None."""
    months = [c for c in table.columns if _month_index(c) is not None]
    if len(months) != 12 or sorted(_month_index(c) for c in months) != list(range(12)):
        return None
    rest = [c for c in table.columns if c not in months]
    if len(rest) > 1 or not all(is_number(v) for c in months for v in table.column(c)):
        return None
    return sorted(months, key=_month_index)


def detect(table: Table, numeric: list[str] | None = None) -> Detected | None:
    """The time-series reading of a table, or None when it is not numbers in time order. ``numeric``: the columns
    whose every cell is a number, when the caller knows them."""
    n = len(table.rows)
    if numeric is None:
        numeric = [c for c in table.columns if all(is_number(v) for v in table.column(c))]
    months = _wide_months(table)
    if months is not None:
        time = [c for c in table.columns if c not in months]
        return Detected(time, "wide", months, WIDE_NAME,
                        f"one row per {time[0] if time else 'year'} and a column per month ({months[0]} to "
                        f"{months[-1]}): read row by row, that is one monthly series of {n * 12:,} steps")
    if n < MIN_SERIES:
        return None
    time = _time_columns(table, set(numeric))
    rest = [c for c in table.columns if c not in time]
    numeric = [c for c in rest if c in numeric]
    if not numeric or len(numeric) != len(rest):
        return None
    target = next((c for c in numeric if _norm(c) in TARGET_NAMES), numeric[0])
    if time:
        why = f"'{time[0]}' says when each row is" if len(time) == 1 else \
            f"{' and '.join(repr(t) for t in time)} say when each row is"
        why += " and a column of numbers changes with it" if len(numeric) == 1 else \
            f" and {len(numeric)} columns of numbers change with it"
    else:
        why = (f"there is one column of numbers, one per line ({n:,} of them)" if len(numeric) == 1 else
               f"every column holds numbers ({len(numeric)} columns, {n:,} rows) and no label: read as steps in "
               "row order")
    return Detected(time, "long", numeric, target, why)


def propose_forecast(table: Table, det: Detected) -> Choice:
    """The forecasting proposal for a detected series: the window and horizon from its length and season."""
    choice = Choice("many_to_one", None, det.target if det.layout == "long" else None, list(det.features),
                    kind="forecast", time=list(det.time), layout=det.layout)
    series = read_series(table, choice)
    n = len(series.values)
    period = detect_period(series.y)
    choice.window, choice.horizon = default_window_horizon(n, period)
    choice.period = period
    what = f"'{det.target}'" if det.layout == "long" else "the monthly values"
    others = f" from all {len(det.features)} number columns" if det.layout == "long" and len(det.features) > 1 else ""
    season = f", with a season of {period} steps found in it" if period else ""
    why = det.why or "the rows' order is read as the time"
    choice.reason = (f"{why[:1].upper()}{why[1:]}{season}: a time series, so the app proposes to forecast "
                     f"{what}{others} -- a many-to-one network reads a window of the last {choice.window} steps and "
                     f"answers the next {choice.horizon}.")
    return choice


# ---- the series -------------------------------------------------------------------------------------------------------

@dataclass
class Series:
    """The numbers in time order: values[t][f] for step t and column f."""

    names: list[str]  # the columns read at each step
    target: int  # which of them is forecast
    values: list[list[float]]
    labels: list[str]  # when each step is, in words ("1995-01", "1959 Q1", "step 12")
    dates: list[str] | None = None  # ISO dates when the time reads as dates (for the chart's time axis)
    freq: str | None = None  # pandas frequency of the dates, to name the steps past the end
    notes: list[str] = field(default_factory=list)

    @property
    def y(self) -> list[float]:
        return [row[self.target] for row in self.values]


def _time_index(table: Table, time: list[str]):
    """(labels, pandas DatetimeIndex or None) for the rows, from the time columns."""
    import pandas as pd

    n = len(table.rows)
    if not time:
        return [f"step {t + 1}" for t in range(n)], None
    cols = {c: table.column(c) for c in time}
    first = time[0]
    d = _dates(cols[first])
    if d is not None:
        return [_iso(x) for x in d], d
    nums = {c: [int(float(v)) for v in cols[c]] for c in time}
    parts = {_norm(c): c for c in time}
    years = nums.get(parts.get("year") or parts.get("yr") or "", None)
    if years is not None and all(1 <= y <= 9999 for y in years):
        q = parts.get("quarter") or parts.get("qtr")
        m = parts.get("month")
        if q and all(1 <= v <= 4 for v in nums[q]):
            return [f"{y} Q{v}" for y, v in zip(years, nums[q])], \
                pd.DatetimeIndex([pd.Timestamp(y, 3 * v - 2, 1) for y, v in zip(years, nums[q])])
        if m and all(1 <= v <= 12 for v in nums[m]):
            return [f"{y}-{v:02d}" for y, v in zip(years, nums[m])], \
                pd.DatetimeIndex([pd.Timestamp(y, v, 1) for y, v in zip(years, nums[m])])
        if len(time) == 1:
            return [str(y) for y in years], pd.DatetimeIndex([pd.Timestamp(y, 1, 1) for y in years])
    return [" ".join(str(nums[c][t]) for c in time) for t in range(n)], None


def _iso(x) -> str:
    """A pandas Timestamp as ISO text: the date alone at midnight, else with the time."""
    return str(x.date()) if x == x.normalize() else x.isoformat()


def _freq(d) -> str | None:
    import pandas as pd

    if d is None or len(d) < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            f = pd.infer_freq(d)
        except (ValueError, TypeError):
            return None
    return getattr(f, "freqstr", f)


def read_series(table: Table, choice: Choice) -> Series:
    """The table's numbers in time order for ``choice`` (rows sorted by time if they were not, with a note)."""
    notes: list[str] = []
    if choice.layout == "wide":
        months = list(choice.features)
        idx = [table.columns.index(c) for c in months]
        years = table.column(choice.time[0]) if choice.time else [str(i + 1) for i in range(len(table.rows))]
        values = [[float(r[j])] for r in table.rows for j in idx]
        labels = [f"{y} {m}" for y in years for m in months]
        dates = None
        if choice.time and all(is_number(y) and float(y) == int(float(y)) and 1 <= float(y) <= 9999 for y in years):
            dates = [f"{int(float(y)):04d}-{k + 1:02d}-01" for y in years for k in range(12)]
        notes.append(f"Read row by row: {len(table.rows)} rows of {len(months)} months are one series of "
                     f"{len(values):,} monthly steps.")
        return Series([WIDE_NAME], 0, values, labels, dates, "MS" if dates else None, notes)
    names = list(choice.features)
    if choice.target not in names:
        names.append(choice.target)
    idx = [table.columns.index(c) for c in names]
    rows = [[float(r[j]) for j in idx] for r in table.rows]
    labels, d = _time_index(table, list(choice.time))
    order = list(range(len(rows)))
    if d is not None:
        keys = list(d.asi8)
        if keys != sorted(keys):
            order = sorted(order, key=lambda t: keys[t])
            if order == list(range(len(rows)))[::-1]:
                notes.append("The rows run from newest to oldest; they were turned around to read forward in time.")
            else:
                notes.append("The rows were not in time order; they were sorted by "
                             f"{' and '.join(repr(c) for c in choice.time)}.")
            d = d[order]
        if len(set(keys)) < len(keys):
            notes.append(f"{_plural(len(keys) - len(set(keys)), 'time')} appear more than once; each row is read as "
                         "its own step.")
    values = [rows[t] for t in order]
    labels = [labels[t] for t in order]
    dates = [_iso(x) for x in d] if d is not None else None
    return Series(names, names.index(choice.target), values, labels, dates, _freq(d), notes)


def detect_period(y: list[float], max_lag: int | None = None) -> int | None:
    """The season (in steps) from the autocorrelation of the step-to-step changes (the last MAX_PERIOD_STEPS of
    them): the lag of its highest local peak, when that peak is clearly above noise; None when there is no season."""
    import numpy as np

    d = np.diff(np.asarray(y[-MAX_PERIOD_STEPS:], dtype=np.float64))
    n = len(d)
    max_lag = min(max_lag or n // 3, n // 3, 400)
    if max_lag < 3:
        return None
    c = d - d.mean()
    var = float(c @ c)
    if var <= 0:
        return None
    acf = [float(c[:n - k] @ c[k:]) / var for k in range(max_lag + 1)]
    noise = max(0.3, 2.5 / math.sqrt(n))
    peaks = [k for k in range(2, max_lag) if acf[k] > acf[k - 1] and acf[k] >= acf[k + 1] and acf[k] > noise]
    if not peaks:
        return None
    best = max(peaks, key=lambda k: acf[k])
    # the shortest lag of which the best is a multiple and which is nearly as strong (12, not 24)
    return next((k for k in sorted(peaks) if best % k == 0 and acf[k] >= 0.8 * acf[best]), best)


def default_window_horizon(n: int, period: int | None) -> tuple[int, int]:
    """(W, H) for a series of n steps: two seasons read, one season answered (at most 12 steps); without a season
    a short window and a few steps ahead. Both shrink to fit the series."""
    if period:
        w, h = 2 * period, min(period, 12)
    else:
        w, h = max(8, min(24, n // 10)), max(1, min(4, n // 50))
    w = max(2, min(w, MAX_WINDOW, n // 5))
    h = max(1, min(h, MAX_HORIZON, n // 10))
    return w, h


@dataclass
class Parts:
    """Window origins (the index of each window's last step) of the three time-ordered parts."""

    train: list[int]
    val: list[int]
    test: list[int]
    val_start: int  # first step of the validation part
    test_start: int  # first step of the test part (the last part of the series)


def held_out_steps(n: int, horizon: int) -> int:
    return max(horizon, round(HELD_OUT * n))


def time_split(n: int, window: int, horizon: int) -> Parts:
    """The last part of the series is the test, the part before it validation, the rest training; a window's
    answer (its next H steps) lies wholly inside one part, so no training answer is ever seen in validation or
    test. A window may read steps of an earlier part (they are the past at that time)."""
    k = held_out_steps(n, horizon)
    test_start, val_start = n - k, n - 2 * k

    def origins(lo: int, hi: int) -> list[int]:  # answers in [lo, hi)
        return [t for t in range(max(window - 1, lo - 1), hi - horizon) if t + 1 >= lo]

    return Parts(origins(0, val_start), origins(val_start, test_start), origins(test_start, n), val_start, test_start)


def need_steps(window: int, horizon: int) -> int:
    """The shortest series that gives MIN_TRAIN_WINDOWS training windows and a full validation and test window."""
    n = window + horizon + MIN_TRAIN_WINDOWS
    while True:
        p = time_split(n, window, horizon)
        if len(p.train) >= MIN_TRAIN_WINDOWS and p.val and p.test:
            return n
        n += 1


def check_forecast(table: Table, choice: Choice, skip_bad: bool = False) -> Table:
    """The rows that fit a forecasting choice (a copy), or a DataError saying what does not."""
    cols = set(table.columns)
    need = [*choice.time, *choice.features] + ([choice.target] if choice.layout != "wide" and choice.target else [])
    missing = [c for c in need if c not in cols]
    if missing:
        raise DataError(f"There is no column '{missing[0]}'. Columns: " + ", ".join(f"'{c}'" for c in table.columns))
    if choice.layout != "wide":
        if not choice.target:
            raise DataError("Pick the column to forecast.")
        if choice.target in choice.time or any(f in choice.time for f in choice.features):
            raise DataError("A time column says when each row is; it cannot also be a column of the forecast.")
    if not 2 <= int(choice.window) <= MAX_WINDOW:
        raise DataError(f"The window must be 2 to {MAX_WINDOW} steps.")
    if not 1 <= int(choice.horizon) <= MAX_HORIZON:
        raise DataError(f"The horizon must be 1 to {MAX_HORIZON} steps.")
    numbers = list(dict.fromkeys([*choice.features] + ([choice.target] if choice.layout != "wide" else [])))
    idx = {c: table.columns.index(c) for c in numbers}
    keep, lines, problems = [], [], []
    for row, line in zip(table.rows, table.lines):
        bad = next((c for c in numbers if not is_number(row[idx[c]])), None)
        if bad is None:
            keep.append(row)
            lines.append(line)
        else:
            problems.append((line, f"column '{bad}' is '{row[idx[bad]][:30]}', not a number"))
    notes = []
    if problems and not skip_bad:
        raise DataError(f"{_plural(len(problems), 'row')} cannot be read as numbers -- {problem_list(problems)}. A forecast "
                        "needs a number at every step: fix them, or tick 'leave out the rows with problems'.")
    if problems:
        notes.append(f"{_plural(len(problems), 'row')} without a number left out (first: line {problems[0][0]}, "
                     f"{problems[0][1]}); the series steps over them.")
    steps_per_row = len(choice.features) if choice.layout == "wide" else 1
    n = len(keep) * steps_per_row
    need = need_steps(int(choice.window), int(choice.horizon))
    if len(keep) < MIN_ROWS or n < need:
        raise DataError(f"A series of {_plural(n, 'step')} is too short for a window of {choice.window} and a horizon "
                        f"of {choice.horizon}: at least {need} steps are needed (training windows, then a held-out "
                        "validation and test part). Shorten the window or the horizon.")
    return Table(table.columns, keep, lines, table.delimiter, table.header, table.name, table.notes + notes,
                 table.skipped + problems)


# ---- windows ----------------------------------------------------------------------------------------------------------

_std = std_or_one  # the standard deviation, 1.0 for a constant column


def step_scales(values: list[list[float]], upto: int) -> list[float]:
    """Each column's typical step-to-step change (std of the changes) on steps [0, upto): the training part."""
    cols = list(zip(*values[:upto]))
    return [_std([b - a for a, b in zip(c, c[1:])]) for c in cols]


def seasonal_naive(y: list[float], t: int, horizon: int, period: int) -> list[float]:
    """The value one season earlier, for each of the H steps after step t."""
    return [y[t + h - period * math.ceil(h / period)] for h in range(1, horizon + 1)]


class Windows:
    """The windows of one part of a series, made batch by batch from the series itself (a long series with many
    columns never holds all its windows at once). ``windows[i]`` is one window as plain lists."""

    def __init__(self, values: list[list[float]], target: int, origins: list[int], window: int, horizon: int,
                 scales: list[float], period: int | None):
        self.values = torch.tensor(values, dtype=torch.float64)  # (n, F)
        self.target, self.window, self.horizon, self.period = target, window, horizon, period
        self.origins = torch.tensor(origins, dtype=torch.long)  # (N,): each window's last step
        self.scales = torch.tensor(scales, dtype=torch.float64)  # (F,)

    def __len__(self) -> int:
        return len(self.origins)

    def __getitem__(self, i: int) -> dict:
        b = self.batch([i])
        return {k: v[0].tolist() for k, v in b.items()}

    def batch(self, idx) -> dict:
        """The windows at positions ``idx``: inputs relative to each window's last step and scaled; the answer (the
        next H values' scaled changes from the last value); the raw truth and the naive forecasts, for scoring."""
        t = self.origins[torch.as_tensor(idx, dtype=torch.long)]  # (B,)
        W, H, ti = self.window, self.horizon, self.target
        last = self.values[t]  # (B, F)
        win = self.values[t[:, None] + torch.arange(-W + 1, 1)]  # (B, W, F)
        x = ((win - last[:, None, :]) / self.scales).float()  # (B, W, F)
        h = torch.arange(1, H + 1)  # (H,)
        truth = self.values[t[:, None] + h, ti]  # (B, H)
        y = ((truth - last[:, ti, None]) / self.scales[ti]).float()  # (B, H)
        if self.period:
            back = t[:, None] + h - self.period * torch.ceil(h / self.period).long()  # (B, H): one season earlier
            seasonal, has = self.values[back.clamp(min=0), ti], t + 1 - self.period >= 0  # (B, H), (B,)
        else:
            seasonal, has = truth, torch.zeros(len(t), dtype=torch.bool)
        return {"x": x, "y": y, "last": last[:, ti], "truth": truth, "seasonal": seasonal, "has_seasonal": has,
                "t": t}


class ForecastTask(YourDataTask):
    """A person's time series as a task: windows of W steps -> the next H values of the target, many-to-one.

    ``core.yourdata.kinds.task_for_spec(spec)`` of a spec whose choice.kind is "forecast" is one of these."""

    def __init__(self, spec: dict | None = None, **fields):
        super().__init__(spec, **fields)
        self.summary = getattr(type(self), "summary", "") or \
            f"The last {self.choice.window} steps -> the next {self.choice.horizon} values of a time series."
        self.metric_meaning = METRIC_MEANING
        self.recipe.metric, self.recipe.higher_is_better = "mae", False
        self.primary_input = "text"

    # ---- data --------------------------------------------------------------------------------------------------
    def series(self, table: Table) -> Series:
        return read_series(table, self.choice)

    def splits_from_series(self, series: Series, files=(), dataset: str = "") -> Splits:
        c = self.choice
        W, H, n = int(c.window), int(c.horizon), len(series.values)
        parts = time_split(n, W, H)
        period = c.period or None
        scales = step_scales(series.values, parts.val_start)

        def part(origins):
            return Windows(series.values, series.target, origins, W, H, scales, period)

        tail = series.values[-W:]
        meta = {"kind": "forecast", "features": list(series.names), "target": series.names[series.target],
                "target_index": series.target, "window": W, "horizon": H, "period": period, "scales": scales,
                "tail": tail, "tail_labels": series.labels[-W:], "last_date": (series.dates or [None])[-1],
                "freq": series.freq, "steps": n, "val_start": parts.val_start, "test_start": parts.test_start}
        return Splits(part(parts.train), part(parts.val), part(parts.test), meta, files=list(files),
                      dataset=dataset or f"{n:,} time steps in order: windows of {W} -> the next {H}; "
                                         f"{len(parts.train)}/{len(parts.val)}/{len(parts.test)} train/validation/test "
                                         "windows (time-ordered, the last part held out, never shuffled)")

    def splits_from_table(self, table: Table, files=(), dataset: str = "") -> Splits:
        table = check_forecast(table, self.choice, skip_bad=bool(self.spec.get("skip_bad")))
        return self.splits_from_series(self.series(table), files, dataset)

    def synthetic_data(self, seed: int = 0) -> Splits:
        sample = self.spec.get("sample") or []
        table = Table(self.spec.get("columns") or [], [list(r) for r in sample], list(range(1, len(sample) + 1)),
                      self.spec.get("delimiter"), bool(self.spec.get("header")))
        return self.splits_from_table(table, [], "a sample of the person's series")

    def batches(self, data: Windows, batch_size: int, shuffle: bool, seed: int = 0):
        """Batches of windows; shuffled for training (the windows, not the time order inside them), and with the
        page's epoch_steps exactly that many batches, cycling through shuffled passes."""
        rng = random.Random(seed)
        order = list(range(len(data)))
        if shuffle:
            rng.shuffle(order)
        if shuffle and self.epoch_steps:
            while len(order) < self.epoch_steps * batch_size:
                more = list(range(len(data)))
                rng.shuffle(more)
                order += more
            order = order[:self.epoch_steps * batch_size]
        for i in range(0, len(order), batch_size):
            yield data.batch(order[i:i + batch_size])

    # ---- model -------------------------------------------------------------------------------------------------
    def build_model(self, config: dict, meta: dict):
        cfg = config_from_dict(Config, config)
        model = ManyToOne(len(meta["features"]), cfg.hidden_size, int(meta["horizon"]), cfg.cell, cfg.num_layers,
                          cfg.bidirectional, cfg.dropout, vocab_size=None)
        return model

    def loss(self, model, batch) -> torch.Tensor:
        return F.huber_loss(model(batch["x"]), batch["y"])  # (B, H): the scaled changes

    def evaluate(self, model, data) -> dict:
        """MAE and RMSE in the data's units, beside the last-value and (with a season) seasonal-naive forecasts on
        the same windows."""
        model.eval()
        dev = next(model.parameters()).device
        scale = model.runtime.meta["scales"][model.runtime.meta["target_index"]]
        sums = {"loss": 0.0, "ae": 0.0, "se": 0.0, "n_ae": 0.0, "n_se": 0.0, "s_ae": 0.0, "s_se": 0.0}
        count = seasonal_count = windows = 0
        with torch.no_grad():
            for b in self.batches(data, 256, shuffle=False):
                out = model(b["x"].to(dev)).float().cpu()  # (B, H)
                sums["loss"] += float(F.huber_loss(out, b["y"], reduction="sum"))
                pred = b["last"][:, None] + out.double() * scale  # (B, H)
                err, naive = pred - b["truth"], b["last"][:, None] - b["truth"]
                sums["ae"] += float(err.abs().sum())
                sums["se"] += float((err ** 2).sum())
                sums["n_ae"] += float(naive.abs().sum())
                sums["n_se"] += float((naive ** 2).sum())
                m = b["has_seasonal"]
                s = (b["seasonal"] - b["truth"])[m]
                sums["s_ae"] += float(s.abs().sum())
                sums["s_se"] += float((s ** 2).sum())
                count += b["truth"].numel()
                seasonal_count += s.numel()
                windows += len(b["last"])
        if not count:
            return {"loss": math.nan, "mae": math.nan, "rmse": math.nan}
        out = {"loss": sums["loss"] / count, "mae": sums["ae"] / count, "rmse": math.sqrt(sums["se"] / count),
               "last value mae": sums["n_ae"] / count, "last value rmse": math.sqrt(sums["n_se"] / count),
               "windows": float(windows)}
        if seasonal_count == count:
            out["seasonal naive mae"] = sums["s_ae"] / count
            out["seasonal naive rmse"] = math.sqrt(sums["s_se"] / count)
        return out

    # ---- serving -----------------------------------------------------------------------------------------------
    def _recent(self, model, input) -> tuple[list[list[float]], list[str]]:
        """The window to forecast from: (W rows of every column, notes). Text: the target's recent values (the
        other columns: the series' last W steps); a dict: {"values": [...]} or {column: [...]}; empty: the end of
        the series."""
        meta = model.runtime.meta
        W, names, ti = int(meta["window"]), list(meta["features"]), int(meta["target_index"])
        tail = [list(r) for r in meta["tail"]]
        notes: list[str] = []
        if isinstance(input, dict):
            cols = dict(input.get("columns") or {})
            if "values" in input:
                cols[names[ti]] = input["values"]
        elif isinstance(input, str):
            parts = [p for p in re.split(r"[,;\s]+", input.strip()) if p]
            cols = {names[ti]: parts} if parts else {}
        elif isinstance(input, (list, tuple)):
            cols = {names[ti]: list(input)}
        else:
            raise BadInput(f"Type the last {W} values of '{names[ti]}', separated by commas or spaces.")
        if not cols:
            return tail, [f"The last {W} steps of the series ({meta['tail_labels'][0]} to {meta['tail_labels'][-1]})."]
        for name, vals in cols.items():
            if name not in names:
                raise BadInput(f"There is no column '{str(name)[:30]}' in this forecast; the columns are "
                               + ", ".join(f"'{n}'" for n in names) + ".")
            try:
                nums = [float(v) for v in vals]
            except (TypeError, ValueError, OverflowError):
                bad = next((str(v) for v in vals if not is_number(str(v))), "")
                raise BadInput(f"'{bad[:20]}' is not a number. Type the last {W} values of '{name}', separated by "
                               "commas or spaces.") from None
            if len(nums) != W:
                raise BadInput(f"The model reads a window of {W} steps: type {W} values of '{name}' (you typed "
                               f"{len(nums)}).")
            if not all(math.isfinite(v) and abs(v) < 1e12 for v in nums):
                raise BadInput("The values must be finite numbers below 10^12 in size.")
            j = names.index(name)
            for r, v in zip(tail, nums):
                r[j] = v
        others = [n for n in names if n not in cols]
        if others:
            notes.append("The other columns the model reads (" + ", ".join(f"'{n}'" for n in others[:5])
                         + (" ..." if len(others) > 5 else "") + f") are the series' last {W} steps.")
        return tail, notes

    def _window_tensor(self, model, rows: list[list[float]]) -> torch.Tensor:
        scales = model.runtime.meta["scales"]
        last = rows[-1]
        return torch.tensor([[[(v - lv) / s for v, lv, s in zip(r, last, scales)] for r in rows]],
                            dtype=torch.float32)  # (1, W, F)

    def forecast(self, model, rows: list[list[float]]) -> list[float]:
        """The next H values after a window of W rows (every column, in the data's units)."""
        meta = model.runtime.meta
        ti = int(meta["target_index"])
        with torch.inference_mode():
            out = model(self._window_tensor(model, rows))[0]  # (H,)
        return [rows[-1][ti] + float(v) * meta["scales"][ti] for v in out]

    def predict(self, model, input) -> dict:
        meta = model.runtime.meta
        rows, notes = self._recent(model, input)
        ti, H = int(meta["target_index"]), int(meta["horizon"])
        values = self.forecast(model, rows)
        past = [r[ti] for r in rows]
        out = {"target": meta["target"], "window": past, "forecast": values,
               "last_value": [past[-1]] * H, "steps": future_labels(meta, H), "notes": notes}
        p = meta.get("period")
        if p and p <= len(past):
            out["seasonal_naive"] = seasonal_naive(past, len(past) - 1, H, int(p))
        return out

    def inspect_loss(self, model, input) -> tuple[torch.Tensor, list[str]]:
        """The Huber loss of the forecast against the truth when the input carries it ({"truth": [...]}), else
        against the last-value forecast: what pulls the network's answer away from "no change", step by step."""
        meta = model.runtime.meta
        rows, _ = self._recent(model, input)
        ti = int(meta["target_index"])
        out = model(self._window_tensor(model, rows))  # (1, H)
        truth = input.get("truth") if isinstance(input, dict) else None
        if truth is not None and len(truth) == out.shape[1]:
            target = torch.tensor([[(float(v) - rows[-1][ti]) / meta["scales"][ti] for v in truth]])  # (1, H)
        else:
            target = torch.zeros_like(out)  # the last value, H times
        W = len(rows)
        labels = list(meta["tail_labels"]) if rows == [list(r) for r in meta["tail"]] else \
            [f"t-{W - 1 - k}" if k < W - 1 else "t" for k in range(W)]
        return F.huber_loss(out, target), labels

    def demos(self) -> list[Demo]:
        out = [Demo(d["label"], d["input"], d.get("note", "")) for d in self.spec.get("demos") or []]
        if out:
            return out
        return [Demo("The end of the series", "", "forecast the steps after the last one")]

    def example_input(self, row: list[str]):
        return ""


def future_labels(meta: dict, horizon: int) -> list[str]:
    """Names of the H steps after the series' end: dates when its dates have a regular frequency, else +1, +2 ..."""
    if meta.get("last_date") and meta.get("freq"):
        import pandas as pd

        try:
            d = pd.date_range(pd.Timestamp(meta["last_date"]), periods=horizon + 1, freq=meta["freq"])[1:]
            return [_iso(x) for x in d]
        except (ValueError, TypeError):
            pass
    return [f"+{h}" for h in range(1, horizon + 1)]


def values_text(values: list[float]) -> str:
    """Numbers as a person types them (as short as they allow, comma separated)."""
    return ", ".join(f"{v:.6g}" for v in values)


def chart_rows(task: ForecastTask, model, series: Series) -> dict:
    """What the forecast chart shows, as plain rows {"step", "when", "value", "line"}:

    the held-out (test) part's truth; over it the network's forecast, the last-value forecast and (with a season)
    the seasonal-naive forecast, each made in blocks of H steps from the W steps before the block; the W steps
    before the end and the network's next H steps past the end. Also the network's and the naive forecasts' MAE
    on those blocks."""
    meta = model.runtime.meta
    W, H = int(meta["window"]), int(meta["horizon"])
    values, y, n = series.values, series.y, len(series.values)
    start = int(meta.get("test_start", n - held_out_steps(n, H)))
    when = series.dates or series.labels
    rows: list[dict] = []
    for t in range(max(0, start - W), n):
        rows.append({"step": t, "when": when[t], "value": y[t], "line": "truth"})
    period = meta.get("period")
    err = {"network": [], "last value": [], "seasonal naive": []}
    for t in range(start - 1, n - 1, H):  # blocks of H steps, each forecast from the W steps before it
        if t - W + 1 < 0:
            continue
        fc = task.forecast(model, values[t - W + 1:t + 1])
        preds = {"network": fc, "last value": [y[t]] * H}
        if period and t + 1 - period >= 0:
            preds["seasonal naive"] = seasonal_naive(y, t, H, period)
        for line, p in preds.items():
            for h, v in enumerate(p, start=1):
                if t + h < n:
                    rows.append({"step": t + h, "when": when[t + h], "value": v, "line": line})
                    err[line].append(abs(v - y[t + h]))
    labels = future_labels(meta, H)
    future_when = labels if series.dates and meta.get("freq") and not labels[0].startswith("+") else \
        [f"after the end {lab}" for lab in labels]
    fc = task.forecast(model, values[-W:])
    rows.append({"step": n - 1, "when": when[-1], "value": y[-1], "line": "next steps"})
    for h, v in enumerate(fc, start=1):
        rows.append({"step": n - 1 + h, "when": future_when[h - 1], "value": v, "line": "next steps"})
    mae = {k: sum(v) / len(v) for k, v in err.items() if v}
    return {"rows": rows, "mae": mae, "dates": bool(series.dates and meta.get("freq")), "target": meta["target"],
            "next": list(zip(labels, fc))}


def forecast_rows(out: dict) -> list[dict]:
    """``ForecastTask.predict``'s answer as chart rows (step, value, line): the window read (steps up to 0), then
    the network's and the naive forecasts (steps 1..H)."""
    rows = [{"step": k - len(out["window"]) + 1, "value": v, "line": "the window"} for k, v in enumerate(out["window"])]
    for name, key in (("network", "forecast"), ("last value", "last_value"), ("seasonal naive", "seasonal_naive")):
        rows += [{"step": h, "value": v, "line": name} for h, v in enumerate(out.get(key) or [], start=1)]
    return rows
