"""What to learn from a table (Choice), how a text becomes steps (characters or words), a column's profile, and
whether a table's rows fit a choice whose rows are examples. core.yourdata.propose picks the choice;
core.yourdata.task, forecast and regression read it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from core.generic.text import steps, tokenize, words  # noqa: F401 -- Your data's names for them
from core.shape_words import shape_words
from core.yourdata.parse import DataError, Table, _plural, is_number, problem_list

MIN_ROWS = 10  # fewer cannot be split into training and validation rows
MAX_LABELS = 100  # a label column with more values than this is a sequence, not a label


@dataclass
class Choice:
    """What to learn from a table: JSON-able (it travels into the exported plugin's spec.json)."""

    shape: str
    input: str | None = None  # the sequence column (None for one_to_one)
    target: str | None = None  # label / tags / output column (None for one_to_many)
    features: list[str] = field(default_factory=list)  # one_to_one: the numeric columns
    tokens: str = "char"  # "char" | "word": how a sequence is cut into steps
    bidirectional: bool = False  # many_to_many: read both ways
    reason: str = ""
    kind: str = "sequence"  # "sequence": rows are examples; "forecast": the rows are steps of a time series
    time: list[str] = field(default_factory=list)  # forecast: the columns saying when each row is (may be none)
    window: int = 0  # forecast: steps the network reads (W)
    horizon: int = 0  # forecast: steps it answers (H)
    period: int | None = None  # forecast: the season in steps, when there is one (the seasonal-naive forecast)
    layout: str = "long"  # forecast: "long" (a row per step) or "wide" (a row per year, a column per month)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Profile:
    name: str
    numeric: bool
    distinct: int
    mean_words: float
    mean_chars: float
    integer: bool


def check_rows(table: Table, choice: Choice, skip_bad: bool = False) -> Table:
    """The table's rows that fit ``choice`` (a copy), or a DataError naming the rows that do not: every choice whose
    rows are examples (core.yourdata.forecast checks a time series, core.yourdata.propose.check_choice picks)."""
    cols = set(table.columns)
    need = [c for c in (choice.input, choice.target, *choice.features) if c is not None]
    missing = [c for c in need if c not in cols]
    if missing:
        raise DataError(f"There is no column '{missing[0]}'. Columns: " + ", ".join(f"'{c}'" for c in table.columns))
    if choice.kind == "regression" and choice.shape != "many_to_one":
        raise DataError("Regression reads a sequence and answers one number: it is many-to-one.")
    if choice.shape == "one_to_one":
        if not choice.features:
            raise DataError("One-to-one needs at least one numeric feature column.")
        if choice.target in choice.features:
            raise DataError(f"'{choice.target}' cannot be both a feature and the label.")
    elif choice.input is None:
        raise DataError("Pick the column that holds the sequences.")
    if choice.shape != "one_to_many" and choice.target is None:
        raise DataError(f"{shape_words(choice.shape)} needs a column to predict.")
    if choice.input is not None and choice.input == choice.target:
        raise DataError("The input column and the column to predict must differ.")
    if choice.tokens not in ("char", "word"):
        raise DataError("Tokens are characters or words.")
    idx = {c: table.columns.index(c) for c in need}
    keep, lines, problems = [], [], []
    for row, line in zip(table.rows, table.lines):
        problem = None
        if choice.shape == "one_to_one":
            bad = next((f for f in choice.features if not is_number(row[idx[f]])), None)
            if bad is not None:
                problem = f"column '{bad}' is '{row[idx[bad]][:30]}', not a number"
        elif choice.kind == "regression" and not is_number(row[idx[choice.target]]):
            problem = f"column '{choice.target}' is '{row[idx[choice.target]][:30]}', not a number"
        elif choice.shape == "many_to_many":
            a, b = steps(row[idx[choice.input]], choice.tokens), steps(row[idx[choice.target]], choice.tokens)
            if len(a) != len(b):
                unit = "words" if choice.tokens == "word" else "characters"
                problem = f"{len(a)} {unit} in '{choice.input}' but {len(b)} labels in '{choice.target}'"
        if problem:
            problems.append((line, problem))
        else:
            keep.append(row)
            lines.append(line)
    notes = []
    if problems and not skip_bad:
        raise DataError(f"{_plural(len(problems), 'row')} do not fit {shape_words(choice.shape)} -- "
                        f"{problem_list(problems)}. "
                        "Fix them, pick another shape, or tick 'leave out the rows with problems'.")
    if problems:
        notes.append(f"{_plural(len(problems), 'row')} that do not fit {shape_words(choice.shape)} left out (first: "
                     f"line {problems[0][0]}, {problems[0][1]}).")
    if len(keep) < MIN_ROWS:
        raise DataError(f"Only {_plural(len(keep), 'row')} to learn from; at least {MIN_ROWS} are needed (some are "
                        "held out to check the model).")
    if choice.kind == "regression":
        j = table.columns.index(choice.target)
        if len({float(r[j]) for r in keep}) < 2:
            raise DataError(f"Column '{choice.target}' holds one number only ('{keep[0][j][:30]}'): there is nothing "
                            "to predict.")
    elif choice.target is not None and choice.shape in ("many_to_one", "one_to_one", "many_to_many"):
        j = table.columns.index(choice.target)
        values = {v for r in keep for v in (r[j].split() if choice.shape == "many_to_many" and choice.tokens == "word"
                                           else list(r[j]) if choice.shape == "many_to_many" else [r[j]])}
        if len(values) < 2:
            raise DataError(f"Column '{choice.target}' has only one value ('{next(iter(values))[:30]}'): there is "
                            "nothing to tell apart. A label needs at least two values.")
        if len(values) > MAX_LABELS:
            raise DataError(f"Column '{choice.target}' has {len(values):,} different values; a label can have at most "
                            f"{MAX_LABELS}. If it is a sequence, pick encoder-decoder.")
    return Table(table.columns, keep, lines, table.delimiter, table.header, table.name, table.notes + notes,
                 table.skipped + problems)
