"""What every reader of a person's data shares: the limits, the error a person is shown, and small helpers.
core.yourdata.parse reads tables with them; core.yourdata.formats reads CoNLL, JSON and .xlsx files with them."""

from __future__ import annotations

import math

from core.task import BadInput

MAX_MB = 10  # the whole file or paste, in MB of 2**20 bytes: the Your data page's uploader has the same limit
MAX_BYTES = MAX_MB * 2**20
MAX_ROWS = 20_000  # data rows (a header does not count; a CoNLL file: sentences)
MAX_COLUMNS = 32
MAX_LINE_CHARS = 100_000  # one physical line: a sanity limit (a long review is ~14,000), below csv's field limit
MAX_CELL_CHARS = 20_000  # a longer cell is cut to this many characters, with a note
MAGIC = {b"PK\x03\x04": "a zip archive", b"%PDF": "a PDF document", b"\x89PNG": "a PNG picture",
         b"\xff\xd8\xff": "a JPEG picture",
         b"GIF8": "a GIF picture", b"\x1f\x8b": "a gzip archive", b"\xd0\xcf\x11\xe0": "an old Excel/Word file",
         b"SQLite format": "a database file", b"\x7fELF": "a program"}
UPLOAD_WORDS = "CSV, TSV, space-separated text, CoNLL, JSON lines or .xlsx"  # what a refused file is told to be



class DataError(BadInput):
    """What is wrong with a person's data, in words they can act on (names the line where there is one)."""


def is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except (TypeError, ValueError, OverflowError):
        return False


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


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
