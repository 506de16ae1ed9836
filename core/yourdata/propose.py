"""Which recurrent shape fits a table, and why, in one sentence -- and whether a shape the person picked fits it.

    propose(table) -> Choice          the app's proposal (shape, columns, tokens, the reason)
    check_choice(table, choice, skip_bad) -> Table   the rows that fit the choice, or a DataError naming the row

The rules, in order:
  numbers in time order (a date/year column, or a wide table: a row per year, a column per month)
                                           -> forecast: many_to_one over windows of the series (core.yourdata.forecast)
  numeric feature columns + a label        -> one_to_one (no sequence: no recurrence needed)
  numbers only (no label)                  -> forecast, the rows' order as the time
  one column of sequences                  -> one_to_many (a character or word language model)
  a sequence + a label per token, same count -> many_to_many (aligned; bidirectional offered)
  a sequence + a label from a small set    -> many_to_one
  a sequence + a column of numbers (fractions, or many different ones)
                                           -> many_to_one regression: one number (core.yourdata.regression)
  a sequence + another sequence            -> encoder_decoder (with attention)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import regex

from core.shapes import shape_spec
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


def words(text: str) -> list[str]:
    """Whitespace-separated words: how a row of tags lines up with its sentence (one tag per word)."""
    return text.split()


_WORD_RE = regex.compile(
    r"(?:https?://|www\.)\S+?(?=[.,;:!?)\]}'\"]*(?:\s|$))"  # a URL, without the punctuation after it
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # an e-mail address
    r"|(?:\p{L}\.){2,}"  # U.S.  e.g.  i.e.
    r"|[$€£¥]?\d+(?:[.,:]\d+)*%?(?![\p{L}\p{N}_])"  # 37  $37.5  1,000  12:30  50% (3rd and 1990s are words)
    r"|[#@]?[\p{L}\p{M}\p{N}_]+(?:[-'’][\p{L}\p{M}\p{N}_]+)*"  # don't  e-mail  Saint-Étienne  हिन्दी  #tag  @name
    r"|(\p{P}|\p{S})\1*"  # punctuation or a symbol, a run of the same one kept whole: .  ,  ...  !!!  --
    r"|\S",  # anything else, one character at a time
)


def tokenize(text: str) -> list[str]:
    """Text as people write it -> words and punctuation: "a mess." -> a, mess, . ; "boring," -> boring, , ;
    "don't", "$37.5", "e-mail", a URL and a word of any script stay whole. Case is kept."""
    return [m.group() for m in _WORD_RE.finditer(text)]


def steps(text: str, tokens: str, split_punct: bool = False) -> list[str]:
    """A cell cut into the steps the network reads: characters, or words -- whitespace-separated (the default: a
    row of tags lines up with them), or with punctuation split from the words (``split_punct``: text people wrote)."""
    if tokens == "char":
        return list(text)
    return tokenize(text) if split_punct else text.split()


@dataclass
class Profile:
    name: str
    numeric: bool
    distinct: int
    mean_words: float
    mean_chars: float
    integer: bool


def profile(table: Table) -> list[Profile]:
    out = []
    n = max(len(table.rows), 1)
    for j, name in enumerate(table.columns):
        col = [r[j] for r in table.rows]
        numeric = all(is_number(c) for c in col)
        integer = numeric and all(float(c) == int(float(c)) for c in col)
        out.append(Profile(name, numeric, len(set(col)), sum(len(words(c)) for c in col) / n,
                           sum(len(c) for c in col) / n, integer))
    return out


def _label_like(p: Profile, n_rows: int) -> bool:
    return p.distinct <= min(MAX_LABELS, max(2, n_rows // 3)) and p.mean_words <= 3


def _example(table: Table, col: str) -> str:
    v = table.column(col)[0]
    return v if len(v) <= 30 else v[:27] + "..."


def _tag_pair(table: Table, cols: list[str], prof: dict[str, Profile]) -> tuple[str, str] | None:
    """(sentence column, tags column) when one column holds one label per word of another in every row; of such a
    pair, the tags are the column with fewer different words (tag names may be longer than the words they tag)."""
    counts = {c: [len(words(v)) for v in table.column(c)] for c in table.columns}
    vocab = {c: {t for v in table.column(c) for t in words(v)} for c in table.columns}
    best = None
    for a in cols:
        for b in table.columns:
            if a == b or counts[a] != counts[b] or prof[a].mean_words <= 1.5 or len(vocab[b]) > MAX_LABELS:
                continue
            if len(vocab[b]) < len(vocab[a]) and (best is None or len(vocab[b]) < len(vocab[best[1]])):
                best = (a, b)
    return best


def propose(table: Table) -> Choice:
    """The proposed shape for a table, with a one-sentence reason."""
    prof = {p.name: p for p in profile(table)}
    n = len(table.rows)
    numeric = [p.name for p in prof.values() if p.numeric]
    text_cols = [p.name for p in prof.values() if not p.numeric]
    from core.yourdata.forecast import WEAK_TIME, detect, propose_forecast

    series = detect(table, numeric)  # numbers in time order: a forecast, unless a plain row index stands beside a label
    if series is not None and (series.layout == "wide" or any(t.lower() not in WEAK_TIME for t in series.time)):
        return propose_forecast(table, series)
    # one_to_one: numeric features and one label (a text label, or a last numeric column of a few whole numbers)
    label = None
    if len(text_cols) == 1 and numeric and _label_like(prof[text_cols[0]], n):
        label = text_cols[0]
    elif not text_cols and len(numeric) >= 2:
        last = prof[table.columns[-1]]
        if last.integer and last.distinct <= 20:
            label = last.name
    if label is not None:
        feats = [c for c in numeric if c != label]
        return Choice("one_to_one", None, label, feats, "char", False,
                      f"{_plural(len(feats), 'numeric column')} describe each row and '{label}' is its label "
                      f"({prof[label].distinct} values): a one-to-one network answers in one step -- there is no "
                      "sequence, so no recurrence is needed (it is a plain feed-forward network).")
    if series is not None:
        return propose_forecast(table, series)
    cols = text_cols or list(table.columns)
    source = max(cols, key=lambda c: prof[c].mean_chars)
    others = [c for c in table.columns if c != source]
    if not others:
        tokens = "word" if prof[source].mean_words >= 6 else "char"
        unit = "words" if tokens == "word" else "characters"
        return Choice("one_to_many", source, None, [], tokens, False,
                      f"There is one column of sequences ('{source}') and nothing to predict from them, so a "
                      f"one-to-many network learns to write more like them: a language model over {unit}, "
                      "sampled with a temperature.")
    tagged = _tag_pair(table, cols, prof)
    if tagged is not None:
        source, c = tagged
        return Choice("many_to_many", source, c, [], "word", True,
                      f"'{c}' has exactly one label per word of '{source}' in every row, so a many-to-many "
                      "network tags each word; reading both ways (bidirectional) lets each tag see the whole "
                      "sentence.")
    from core.yourdata.regression import numeric_target, propose_regression

    quantities = [c for c in others if numeric_target(prof[c], n)]
    labels = [c for c in others if _label_like(prof[c], n) and c not in quantities]
    if quantities and not labels:
        c = max(quantities, key=lambda c: prof[c].distinct)
        return propose_regression(source, prof[c], "word" if prof[source].mean_words >= 4 else "char",
                                  _example(table, c))
    if labels:
        c = min(labels, key=lambda c: prof[c].distinct)
        tokens = "word" if prof[source].mean_words >= 4 else "char"
        return Choice("many_to_one", source, c, [], tokens, False,
                      f"'{source}' holds sequences and '{c}' one of {prof[c].distinct} values per row (e.g. "
                      f"'{_example(table, c)}'), so a many-to-one network reads each sequence and answers once.")
    c = max(others, key=lambda c: prof[c].mean_chars)
    tokens = "word" if prof[source].mean_words >= 5 and prof[c].mean_words >= 3 else "char"
    return Choice("encoder_decoder", source, c, [], tokens, False,
                  f"'{source}' and '{c}' are both sequences, of different lengths (e.g. '{_example(table, source)}' "
                  f"-> '{_example(table, c)}'), so an encoder-decoder reads one and writes the other, with attention "
                  "to look back at the input.")


def check_choice(table: Table, choice: Choice, skip_bad: bool = False) -> Table:
    """The table's rows that fit ``choice`` (a copy), or a DataError naming the rows that do not."""
    if choice.kind == "forecast":
        from core.yourdata.forecast import check_forecast

        return check_forecast(table, choice, skip_bad)
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
        raise DataError(f"{shape_spec(choice.shape).words} needs a column to predict.")
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
        raise DataError(f"{_plural(len(problems), 'row')} do not fit {shape_spec(choice.shape).words} -- "
                        f"{problem_list(problems)}. "
                        "Fix them, pick another shape, or tick 'leave out the rows with problems'.")
    if problems:
        notes.append(f"{_plural(len(problems), 'row')} that do not fit {shape_spec(choice.shape).words} left out (first: "
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
