"""Reading a person's table safely: limits checked before any parsing, then delimiter, header and row checks.

    read_table(raw, name, delimiter="auto", header="auto", skip_bad=False) -> Table

``raw`` is the uploaded bytes (or pasted text). Everything that is wrong with it becomes a ``DataError`` (a
``core.task.BadInput``) whose message names the line and the problem -- never a traceback. Cells are plain text:
nothing is ever evaluated, and a cell that a spreadsheet would run as a formula (``=cmd|...``) is read as the text
it is and written back escaped (``write_table``).
"""

from __future__ import annotations

import csv
import io
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from core.task import BadInput

MAX_BYTES = 2_000_000  # the whole file or paste
MAX_ROWS = 20_000  # data rows (a header does not count)
MAX_COLUMNS = 32
MAX_LINE_CHARS = 10_000  # one physical line
MAX_CELL_CHARS = 2_000  # one cell, after quotes are removed
MAX_SHOWN_PROBLEMS = 5  # a message lists this many problem rows, then says how many more

DELIMITERS = {"auto": "auto", "tab": "\t", "comma": ",", "semicolon": ";", "vertical bar": "|", "none": None}
DELIMITER_WORDS = {"\t": "tabs", ",": "commas", ";": "semicolons", "|": "vertical bars", None: "nothing (one column)"}
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would take for the start of a formula
INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")  # zero-width, bidi marks
KNOWN_HEADERS = {"text", "texts", "label", "labels", "tag", "tags", "sentence", "sentences", "source", "target",
                 "input", "output", "x", "y", "class", "category", "sentiment", "review", "word", "words",
                 "token", "tokens", "sequence", "src", "tgt", "name", "names", "question", "answer", "line",
                 "date", "feature", "features", "value", "target_text", "input_text"}
NAME_LIKE = re.compile(r"[^\W\d]\w{0,24}")  # one word of letters (digits and _ after the first), like a column name
MAGIC = {b"PK\x03\x04": "a zip archive (an .xlsx or .ods spreadsheet is one: save it as CSV instead)",
         b"%PDF": "a PDF document", b"\x89PNG": "a PNG picture", b"\xff\xd8\xff": "a JPEG picture",
         b"GIF8": "a GIF picture", b"\x1f\x8b": "a gzip archive", b"\xd0\xcf\x11\xe0": "an old Excel/Word file",
         b"SQLite format": "a database file", b"\x7fELF": "a program"}


class DataError(BadInput):
    """What is wrong with a person's data, in words they can act on (names the line where there is one)."""


@dataclass
class Table:
    """A checked table: every row has ``len(columns)`` non-empty, stripped cells."""

    columns: list[str]
    rows: list[list[str]]
    lines: list[int]  # the file line each row starts on (1-based, counting a header), for messages
    delimiter: str | None  # None: one column, one row per line
    header: bool
    name: str = "your data"
    notes: list[str] = field(default_factory=list)  # what was done silently: delimiter guessed, rows left out ...
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, problem) left out with skip_bad

    def column(self, name: str) -> list[str]:
        j = self.columns.index(name)
        return [r[j] for r in self.rows]


def is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except (TypeError, ValueError, OverflowError):
        return False


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


# ---- bytes -> text ---------------------------------------------------------------------------------------------------

def decode(raw: bytes | str) -> str:
    """Checked text from raw bytes: size, binary files and encoding first, then newlines and Unicode tidied (NFC)."""
    if isinstance(raw, str):
        if len(raw) > MAX_BYTES:
            raise DataError(f"The text is {len(raw):,} characters long; at most {MAX_BYTES:,} can be read.")
        text = raw
    else:
        if len(raw) > MAX_BYTES:
            raise DataError(f"The file is {len(raw) / 1e6:.1f} MB; at most {MAX_BYTES / 1e6:.0f} MB can be read "
                            "(keep a sample of the rows).")
        for magic, what in MAGIC.items():
            if raw.startswith(magic):
                raise DataError(f"This is {what}, not a text table. Upload CSV, TSV or TXT.")
        if b"\x00" in raw[:65536]:
            raise DataError("This is a binary file (it contains zero bytes), not a text table. Upload CSV, TSV or "
                            "TXT saved as UTF-8.")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            line = raw[:exc.start].count(b"\n") + 1
            raise DataError(f"Line {line} is not UTF-8 text (byte 0x{raw[exc.start]:02x}). Save the file as UTF-8 "
                            "(in a spreadsheet: 'CSV UTF-8').") from None
    if not text.strip():
        raise DataError("The data is empty: paste some rows or upload a file.")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", text)


def _clean_cell(cell: str) -> str:
    cell = INVISIBLE.sub("", cell).strip()
    if len(cell) >= 2 and cell[0] == "'" and cell[1] in "=+-@":  # our own escaping (write_table) undone
        cell = cell[1:]
    return cell


def _control_char(text: str) -> str | None:
    for ch in text:
        if unicodedata.category(ch) == "Cc" and ch not in "\t\n":
            return f"U+{ord(ch):04X}"
    return None


# ---- delimiter and header ------------------------------------------------------------------------------------------

def _split(text: str, delimiter: str | None):
    """(line number, cells) per non-blank row; csv quoting for commas, semicolons and bars; TSV is unquoted."""
    if delimiter is None:
        for n, line in enumerate(text.split("\n"), 1):
            if line.strip():
                yield n, [line]
        return
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quoting=quoting, strict=False)
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
    columns (three rows in four at least; half for the extension's own); the extension wins ties, .txt only
    considers tabs."""
    ext = name.lower().rsplit(".", 1)[-1] if "." in name else ""
    order = {"tsv": ["\t", ",", ";", "|"], "csv": [",", ";", "\t", "|"], "txt": ["\t"]}.get(ext, ["\t", ",", ";", "|"])
    sample = "\n".join(text.split("\n")[:200])
    expected = {"tsv": "\t", "csv": ","}.get(ext)
    best, best_frac = None, 0.0
    for d in order:
        try:
            counts = [len(cells) for _, cells in _split(sample, d)]
        except DataError:
            continue
        if not counts:
            continue
        mode, hits = Counter(counts).most_common(1)[0]
        frac = hits / len(counts)
        enough = 0.5 if d == expected else 0.75  # the extension's own delimiter, with a few ragged rows, still wins
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

def _problem_message(problems: list[tuple[int, str]]) -> str:
    shown = "; ".join(f"line {n}: {p}" for n, p in problems[:MAX_SHOWN_PROBLEMS])
    more = f" (and {_plural(len(problems) - MAX_SHOWN_PROBLEMS, 'more row')})" if len(problems) > MAX_SHOWN_PROBLEMS else ""
    return (f"{_plural(len(problems), 'row')} cannot be read -- {shown}{more}. Fix them, or tick 'leave out the rows "
            "with problems'.")


def read_table(raw: bytes | str, name: str = "your data", delimiter: str | None = "auto", header: bool | str = "auto",
               skip_bad: bool = False) -> Table:
    """A checked Table from raw bytes or text. Raises DataError with a message naming the line and the problem."""
    text = decode(raw)
    notes = []
    lines = text.split("\n")
    long = next((n for n, line in enumerate(lines, 1) if len(line) > MAX_LINE_CHARS), None)
    if long is not None:
        raise DataError(f"Line {long} is {len(lines[long - 1]):,} characters long; at most {MAX_LINE_CHARS:,} per "
                        "line (is this really a table of sequences?).")
    n_lines = sum(1 for line in lines if line.strip())
    if n_lines > MAX_ROWS + 1:
        raise DataError(f"The data has {n_lines:,} rows; at most {MAX_ROWS:,} can be used. Keep a sample of them.")
    invisible = len(INVISIBLE.findall(text))
    if invisible:
        notes.append(f"{_plural(invisible, 'invisible character')} (zero-width or text-direction marks) removed.")
    if delimiter == "auto":
        delimiter, why = guess_delimiter(text, name)
        notes.insert(0, why)
    elif delimiter is not None and delimiter not in text:
        notes.insert(0, f"No row contains {DELIMITER_WORDS.get(delimiter, repr(delimiter))}: each line is one "
                        "column. Try another delimiter (or 'auto').")
    raw_rows = list(_split(text, delimiter))
    if not raw_rows:
        raise DataError("The data has no rows.")
    widths = Counter(len(cells) for _, cells in raw_rows)
    width = widths.most_common(1)[0][0]
    if width > MAX_COLUMNS:
        raise DataError(f"The rows have {width} columns; at most {MAX_COLUMNS}. Is the delimiter right "
                        f"(now: {DELIMITER_WORDS.get(delimiter, repr(delimiter))})?")
    cleaned = [(n, [_clean_cell(c) for c in cells]) for n, cells in raw_rows]
    if header == "auto":
        header = looks_like_header(cleaned[0][1], [c for _, c in cleaned[1:]]) and len(cleaned[0][1]) == width
    if header:
        n0, first = cleaned[0]
        cleaned = cleaned[1:]
        if len(first) != width:
            raise DataError(f"Line {n0} (the header) has {len(first)} columns, the rows have {width}.")
        columns = _column_names(first)
    else:
        columns = [f"column {j + 1}" for j in range(width)] if width > 1 else ["text"]
    rows, row_lines, problems = [], [], []
    hint = " (a comma inside a text? put that text in double quotes)" if delimiter == "," else ""
    for n, cells in cleaned:
        problem = None
        if len(cells) != width:
            problem = f"{len(cells)} columns, the other rows have {width}{hint}"
        elif (bad := next((c for c in cells if not c), None)) is not None:
            j = cells.index(bad)
            problem = f"column '{columns[j]}' is empty"
        elif (ctl := _control_char("".join(cells))) is not None:
            problem = f"contains a control character ({ctl})"
        elif (big := next((c for c in cells if len(c) > MAX_CELL_CHARS), None)) is not None:
            problem = f"a cell of {len(big):,} characters (at most {MAX_CELL_CHARS:,})"
        if problem:
            problems.append((n, problem))
            continue
        rows.append(cells)
        row_lines.append(n)
    if problems and not skip_bad:
        raise DataError(_problem_message(problems))
    if problems:
        notes.append(f"{_plural(len(problems), 'row')} with problems left out (first: line {problems[0][0]}, "
                     f"{problems[0][1]}).")
    if not rows:
        raise DataError("No row is left to learn from.")
    formulas = sum(1 for r in rows for c in r if c.startswith(FORMULA_START) and not is_number(c))
    if formulas:
        notes.append(f"{_plural(formulas, 'cell')} start with = + - or @ (a spreadsheet would run them as "
                     "formulas): read as plain text, never evaluated, and escaped with a leading ' in what you "
                     "download.")
    return Table(columns, rows, row_lines, delimiter, bool(header), name, notes, problems if skip_bad else [])


def _column_names(first: list[str]) -> list[str]:
    names, seen = [], set()
    for j, c in enumerate(first):
        c = "".join(ch for ch in c if ch.isprintable())[:40] or f"column {j + 1}"
        base, k = c, 2
        while c in seen:
            c, k = f"{base} ({k})", k + 1
        seen.add(c)
        names.append(c)
    return names


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
