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

from core.yourdata.choice import MAX_LABELS, MIN_ROWS, Choice, Profile, check_rows, steps, tokenize, words
from core.yourdata.forecast import WEAK_TIME, check_forecast, detect, propose_forecast
from core.yourdata.parse import Table, _plural, is_number
from core.yourdata.regression import numeric_target, propose_regression

__all__ = ["Choice", "Profile", "MIN_ROWS", "MAX_LABELS", "check_choice", "profile", "propose", "steps", "tokenize",
           "words"]

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
        return check_forecast(table, choice, skip_bad)
    return check_rows(table, choice, skip_bad)
