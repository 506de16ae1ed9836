"""Reading a person's table safely: limits checked before any parsing, then format, delimiter, header and rows.

    read_table(raw, name, delimiter="auto", header="auto", skip_bad=False) -> Table

``raw`` is the uploaded bytes (or pasted text). The content decides how it is read, never the file name:

    an .xlsx workbook (zip)          its first sheet (core.yourdata.formats.xlsx_rows, openpyxl, zip bombs refused)
    JSON lines / a JSON array        one object per row, its fields the columns (formats.json_rows)
    CoNLL-style token-per-line text  one sentence per row: 'tokens' and 'tags' (formats.conll_rows)
    delimited text                   tabs, commas, semicolons, vertical bars, runs of spaces, or one column

Text is UTF-8 (with or without a byte-order mark), UTF-16 (with a mark, as Excel's "Unicode text") or Windows-1252
(with a note). Everything that is wrong becomes a ``DataError`` (a ``core.task.BadInput``) whose message names the
line and the problem -- never a traceback. Cells are plain text: nothing is ever evaluated, and a cell that a
spreadsheet would run as a formula (``=cmd|...``) is read as the text it is and written back escaped
(``write_table``). A cell longer than MAX_CELL_CHARS is cut, with a note, never dropped.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from core.generic.text import CONTROL  # noqa: F401 -- Unicode's control characters but tab and newline
from core.generic.text import control_char as _control_char
from core.yourdata import formats
from core.yourdata.basics import (
    MAX_BYTES,
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_LINE_CHARS,
    MAX_MB,
    MAX_ROWS,
    DataError,
    _column_names,
    _plural,
    is_number,
)
from core.yourdata.formats import text_from_bytes

MAX_SHOWN_PROBLEMS = 5  # a message lists this many problem rows, then says how many more

CONLL = "conll"  # the 'delimiter' that reads one token and its tag per line, sentences between blank lines
DELIMITERS = {"auto": "auto", "tab": "\t", "comma": ",", "semicolon": ";", "vertical bar": "|", "space": " ",
              "token per line (CoNLL)": CONLL, "none": None}
DELIMITER_WORDS = {"\t": "tabs", ",": "commas", ";": "semicolons", "|": "vertical bars", " ": "spaces",
                   CONLL: "one token per line", None: "nothing (one column)"}
FORMATS = {"csv": "delimited text", "tsv": "tab-separated text", "space": "space-separated text",
           "lines": "one sequence per line", "conll": "CoNLL, one token and its tag per line",
           "jsonl": "JSON", "xlsx": "an Excel workbook"}  # Table.format -> words
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would take for the start of a formula
INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")  # zero-width, bidi marks
KNOWN_HEADERS = {"text", "texts", "label", "labels", "tag", "tags", "sentence", "sentences", "source", "target",
                 "input", "output", "x", "y", "class", "category", "sentiment", "review", "word", "words",
                 "token", "tokens", "sequence", "src", "tgt", "name", "names", "question", "answer", "line",
                 "date", "feature", "features", "value", "target_text", "input_text"}
NAME_LIKE = re.compile(r"[^\W\d]\w{0,24}")  # one word of letters (digits and _ after the first), like a column name


@dataclass
class Table:
    """A checked table: every row has ``len(columns)`` non-empty, stripped cells."""

    columns: list[str]
    rows: list[list[str]]
    lines: list[int]  # the file line each row starts on (1-based, counting a header), for messages
    delimiter: str | None  # how write_table writes the rows and read_table reads them back (None: one column);
    #                        a CoNLL, JSON or .xlsx file is written as CSV with a header: delimiter ","
    header: bool
    name: str = "your data"
    notes: list[str] = field(default_factory=list)  # what was done silently: delimiter guessed, rows left out ...
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, problem) left out with skip_bad
    format: str = "csv"  # what the file was: csv | tsv | space | lines | conll | jsonl | xlsx (FORMATS)

    def column(self, name: str) -> list[str]:
        j = self.columns.index(name)
        return [r[j] for r in self.rows]


# ---- bytes -> text ---------------------------------------------------------------------------------------------------

def check_size(n_bytes: int, what: str = "file") -> None:
    """The one size limit, before a byte is read (the page's uploader checks the same MAX_MB)."""
    if n_bytes > MAX_BYTES:
        raise DataError(f"The {what} is {n_bytes / 2**20:.1f} MB; at most {MAX_MB} MB can be read (keep a sample "
                        "of the rows).")


def decode(raw: bytes | str) -> str:
    """Checked text from raw bytes: size, binary files and encoding first, then newlines and Unicode tidied (NFC)."""
    return decode_with_notes(raw)[0]


def decode_with_notes(raw: bytes | str) -> tuple[str, list[str]]:
    """(text, notes): decode(), plus a note naming the encoding where it was not UTF-8."""
    notes: list[str] = []
    if isinstance(raw, str):
        if len(raw) > MAX_BYTES:
            raise DataError(f"The text is {len(raw):,} characters long; at most {MAX_BYTES:,} can be read.")
        text = raw
    else:
        check_size(len(raw))
        text, note = text_from_bytes(raw)
        if note:
            notes.append(note)
    if not text.strip():
        raise DataError("The data is empty (nothing but blank lines): paste some rows or upload another file.")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", text), notes


def _clean_cell(cell: str) -> str:
    cell = INVISIBLE.sub("", cell).strip()
    if len(cell) >= 2 and cell[0] == "'" and cell[1] in "=+-@":  # our own escaping (write_table) undone
        cell = cell[1:]
    return cell


# ---- delimiter and header ------------------------------------------------------------------------------------------

def _split(text: str, delimiter: str | None):
    """(line number, cells) per non-blank row; csv quoting for commas, semicolons and bars; TSV is unquoted."""
    if delimiter is None:
        for n, line in enumerate(text.split("\n"), 1):
            if line.strip():
                yield n, [line]
        return
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    if delimiter == " ":  # runs of spaces are one delimiter; spaces at the ends of a line are not
        text = "\n".join(line.strip(" ") for line in text.split("\n"))
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quoting=quoting, strict=False,
                        skipinitialspace=delimiter == " ")
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"Line {start}: {exc} -- a quote that is never closed? Put each text that holds a "
                            f"delimiter or a quote in double quotes, and double the quotes inside it.") from None
        if any(c.strip() for c in cells):
            yield start, cells
        start = reader.line_num + 1


def guess_delimiter(text: str, name: str = "") -> tuple[str | None, str]:
    """(delimiter, why) from the first 200 rows: the one that splits most rows into the same number (> 1) of
    columns (three rows in four at least; half for the extension's own); the extension wins ties. A file named .txt
    needs nineteen rows in twenty for a comma, semicolon or bar (prose has commas); runs of spaces are a delimiter
    only where nineteen rows in twenty split evenly and a column is numbers (a list of names is one column)."""
    ext = name.lower().rsplit(".", 1)[-1] if "." in name else ""
    order = {"tsv": ["\t", ",", ";", "|"], "csv": [",", ";", "\t", "|"]}.get(ext, ["\t", ",", ";", "|"])
    sample = "\n".join(text.split("\n")[:200])
    expected = {"tsv": "\t", "csv": ","}.get(ext)
    best, best_frac = None, 0.0
    for d in order + [" "]:
        if d == " " and best is not None:
            break
        try:
            rows = [cells for _, cells in _split(sample, d)]
        except DataError:
            continue
        if not rows:
            continue
        mode, hits = Counter(map(len, rows)).most_common(1)[0]
        frac = hits / len(rows)
        enough = 0.5 if d == expected else 0.95 if d == " " or (ext == "txt" and d != "\t") else 0.75
        if d == " " and not _numeric_column([r for r in rows[1:] if len(r) == mode], mode):  # [0]: a header?
            continue
        if mode > 1 and frac >= enough and frac > best_frac + 1e-9:
            best, best_frac = d, frac
    if best is None:
        why = "No delimiter splits the rows evenly, so each line is one sequence."
        if expected:
            why = f"The file is named .{ext} but its rows do not split evenly on {DELIMITER_WORDS[expected]}: " \
                  "each line is read as one sequence. Pick the delimiter if that is wrong."
        return None, why
    why = f"Columns are separated by {DELIMITER_WORDS[best]}."
    if expected and best != expected:
        why = f"The file is named .{ext} but its columns are separated by {DELIMITER_WORDS[best]}: read that way."
    return best, why


def _numeric_column(rows: list[list[str]], width: int) -> bool:
    """Some column is numbers in nine rows in ten."""
    return bool(rows) and any(sum(is_number(r[j]) for r in rows) >= 0.9 * len(rows) for j in range(width))


def looks_like_header(first: list[str], rest: list[list[str]]) -> bool:
    """A first row of short names (known ones like 'text', 'label'), or non-numbers above numeric columns."""
    if not rest or any(not c or len(c) > 40 for c in first):
        return False
    if {c.lower() for c in first} & KNOWN_HEADERS:
        return True
    for j, head in enumerate(first):
        col = [r[j] for r in rest[:200] if j < len(r)]
        if col and not is_number(head) and sum(map(is_number, col)) >= 0.9 * len(col):
            return True
    if len(first) > 1 and all(NAME_LIKE.fullmatch(c) for c in first):  # names above a column of other things
        for j in range(len(first)):
            col = [r[j] for r in rest[:200] if j < len(r)]
            if col and sum(1 for c in col if not NAME_LIKE.fullmatch(c)) >= 0.8 * len(col):
                return True
    return False


# ---- the table -----------------------------------------------------------------------------------------------------

def problem_list(problems: list[tuple[int, str]], unit: str = "line") -> str:
    """'line 3: ...; line 9: ... (and 4 more rows)': the first few problems of a message, each naming its line."""
    shown = "; ".join(f"{unit} {n}: {p}" for n, p in problems[:MAX_SHOWN_PROBLEMS])
    more = f" (and {_plural(len(problems) - MAX_SHOWN_PROBLEMS, 'more row')})" if len(problems) > MAX_SHOWN_PROBLEMS else ""
    return shown + more


def _problem_message(problems: list[tuple[int, str]], unit: str = "line") -> str:
    return (f"{_plural(len(problems), 'row')} cannot be read -- {problem_list(problems, unit)}. Fix them, or tick "
            "'leave out the rows with problems'.")


def read_table(raw: bytes | str, name: str = "your data", delimiter: str | None = "auto", header: bool | str = "auto",
               skip_bad: bool = False) -> Table:
    """A checked Table from raw bytes or text. Raises DataError with a message naming the line and the problem."""
    if isinstance(raw, bytes) and raw.startswith(b"PK\x03\x04"):  # a zip: an .xlsx workbook, or a clear message
        check_size(len(raw))
        rows, notes = formats.xlsx_rows(raw)
        return _table(rows, name=name, header=header, delimiter=",", fmt="xlsx", notes=notes, skip_bad=skip_bad,
                      unit="row", pad=True)
    text, notes = decode_with_notes(raw)
    lines = text.split("\n")
    long = None
    if max(map(len, lines)) > MAX_LINE_CHARS:
        long = next(n for n, line in enumerate(lines, 1) if len(line) > MAX_LINE_CHARS)
    if long is not None:
        raise DataError(f"Line {long} is {len(lines[long - 1]):,} characters long; at most {MAX_LINE_CHARS:,} per "
                        "line (is this really a table of sequences?).")
    invisible = len(INVISIBLE.findall(text))
    if invisible:
        notes.append(f"{_plural(invisible, 'invisible character')} (zero-width or text-direction marks) removed.")
    if delimiter == CONLL or (delimiter == "auto" and formats.looks_like_conll(lines)):
        rows, problems, more = formats.conll_rows(lines)
        return _table(rows, name=name, columns=["tokens", "tags"], delimiter=",", fmt="conll", notes=more + notes,
                      skip_bad=skip_bad, problems=problems)
    json = formats.json_rows(text) if formats.looks_like_json(text) else None
    if json is not None:
        columns, rows, problems, more, unit = json
        return _table(rows, name=name, columns=columns, delimiter=",", fmt="jsonl", notes=more + notes,
                      skip_bad=skip_bad, problems=problems, unit=unit)
    n_lines = sum(1 for line in lines if line.strip())
    if n_lines > MAX_ROWS + 1:
        raise DataError(f"The data has {n_lines:,} rows; at most {MAX_ROWS:,} can be used. Keep a sample of them.")
    if delimiter == "auto":
        delimiter, why = guess_delimiter(text, name)
        notes.insert(0, why)
    elif delimiter is not None and delimiter not in text:
        notes.insert(0, f"No row contains {DELIMITER_WORDS.get(delimiter, repr(delimiter))}: each line is one "
                        "column. Try another delimiter (or 'auto').")
    fmt = {"\t": "tsv", " ": "space", None: "lines"}.get(delimiter, "csv")
    return _table(list(_split(text, delimiter)), name=name, header=header, delimiter=delimiter, fmt=fmt, notes=notes,
                  skip_bad=skip_bad)


def cut_cell(cell: str, limit: int = MAX_CELL_CHARS) -> str:
    """The first ``limit`` characters of a cell, ending at a whole word where one ends in its last 200."""
    if len(cell) <= limit:
        return cell
    cut = cell[:limit]
    space = cut.rfind(" ", limit - 200)
    if not cell[limit].isspace() and space > 0:
        cut = cut[:space]
    return cut.rstrip()


def _table(raw_rows: list[tuple[int, list[str]]], *, name: str, delimiter: str | None, fmt: str, notes: list[str],
           skip_bad: bool, header: bool | str = True, columns: list[str] | None = None,
           problems: list[tuple[int, str]] | None = None, unit: str = "line", pad: bool = False) -> Table:
    """The rows every format ends in, checked the same way: width, header, empty cells, control characters, long
    cells cut. ``columns`` given (JSON fields, CoNLL): no header row among the rows. ``pad``: a row shorter than
    the others has empty cells at its end (a spreadsheet)."""
    problems = list(problems or [])
    if not raw_rows and not problems:
        raise DataError("The data has no rows.")
    cleaned = [(n, [_clean_cell(c) for c in cells]) for n, cells in raw_rows]
    if columns is None:
        width = Counter(len(cells) for _, cells in cleaned).most_common(1)[0][0] if cleaned else 1
        if width > MAX_COLUMNS:
            raise DataError(f"The rows have {width} columns; at most {MAX_COLUMNS}. Is the delimiter right "
                            f"(now: {DELIMITER_WORDS.get(delimiter, repr(delimiter))})?")
        if pad:
            cleaned = [(n, cells + [""] * (width - len(cells))) for n, cells in cleaned]
        if header == "auto":
            header = bool(cleaned) and looks_like_header(cleaned[0][1], [c for _, c in cleaned[1:]]) \
                and len(cleaned[0][1]) == width
        if header and cleaned:
            n0, first = cleaned[0]
            cleaned = cleaned[1:]
            if len(first) != width:
                raise DataError(f"{unit.capitalize()} {n0} (the header) has {len(first)} columns, the rows have "
                                f"{width}.")
            columns = _column_names(first)
        else:
            header = False
            columns = [f"column {j + 1}" for j in range(width)] if width > 1 else ["text"]
    else:
        header, width = True, len(columns)
    rows, row_lines, cut = [], [], 0
    hint = " (a comma inside a text? put that text in double quotes)" if delimiter == "," and fmt == "csv" else ""
    for n, cells in cleaned:
        problem = None
        if len(cells) != width:
            problem = f"{len(cells)} columns, the other rows have {width}{hint}"
        elif (bad := next((j for j, c in enumerate(cells) if not c), None)) is not None:
            problem = f"column '{columns[bad]}' is empty"
        elif (ctl := _control_char("".join(cells))) is not None:
            problem = f"contains a control character ({ctl})"
        if problem:
            problems.append((n, problem))
            continue
        if any(len(c) > MAX_CELL_CHARS for c in cells):
            cut += sum(len(c) > MAX_CELL_CHARS for c in cells)
            cells = [cut_cell(c) for c in cells]
        rows.append(cells)
        row_lines.append(n)
    problems.sort()
    if problems and not skip_bad:
        raise DataError(_problem_message(problems, unit))
    if problems:
        notes.append(f"{_plural(len(problems), 'row')} with problems left out (first: {unit} {problems[0][0]}, "
                     f"{problems[0][1]}).")
    if not rows:
        raise DataError("No row is left to learn from.")
    if cut:
        notes.append(f"{_plural(cut, 'cell')} longer than {MAX_CELL_CHARS:,} characters "
                     f"{'was' if cut == 1 else 'were'} cut to {MAX_CELL_CHARS:,} (at a whole word).")
    formulas = sum(1 for r in rows for c in r if c.startswith(FORMULA_START) and not is_number(c))
    if formulas:
        notes.append(f"{_plural(formulas, 'cell')} start with = + - or @ (a spreadsheet would run them as "
                     "formulas): read as plain text, never evaluated, and escaped with a leading ' in what you "
                     "download.")
    return Table(columns, rows, row_lines, delimiter, bool(header), name, notes, problems if skip_bad else [], fmt)


def safe_file_name(name: str) -> str:
    """A file name made of [A-Za-z0-9._-] ending in .csv, .tsv or .txt (default data.csv)."""
    stem, _, ext = Path(str(name)).name.rpartition(".")
    ext = ext.lower() if f".{ext.lower()}" in (".csv", ".tsv", ".txt") else "csv"
    stem = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in (stem or "data"))[:60].strip("._")
    return f"{stem or 'data'}.{ext}"


# ---- writing it back -----------------------------------------------------------------------------------------------

def neutralise(cell: str) -> str:
    """A cell a spreadsheet would run as a formula gets a leading apostrophe (read_table takes it off again)."""
    return "'" + cell if cell.startswith(FORMULA_START) and not is_number(cell) else cell


def write_table(table: Table) -> str:
    """The table as text in its own format (same delimiter and header), every formula-like cell neutralised."""
    rows = ([table.columns] if table.header else []) + table.rows
    rows = [[neutralise(c) for c in r] for r in rows]
    if table.delimiter is None:
        return "".join(r[0] + "\n" for r in rows)
    if table.delimiter == "\t":  # read unquoted, so written unquoted: a cell never holds a tab or a newline
        return "".join("\t".join(r) + "\n" for r in rows)
    out = io.StringIO()
    csv.writer(out, delimiter=table.delimiter, lineterminator="\n").writerows(rows)
    return out.getvalue()
