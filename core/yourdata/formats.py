"""The readers behind core.yourdata.parse.read_table for what is not plain delimited UTF-8 text.

    text_from_bytes(raw) -> (text, note)           UTF-8 (with or without a byte-order mark), UTF-16 with a mark
                                                   (Excel's "Unicode text"), else Windows-1252 where it reads as
                                                   words; a note names the encoding when it was not UTF-8
    xlsx_rows(raw) -> (rows, notes)                the first sheet of an .xlsx workbook (openpyxl, read-only),
                                                   sizes inside the zip checked before it is opened
    looks_like_json(text) / json_rows(text)        JSON lines, or a JSON array of objects: the fields are columns
    looks_like_conll(lines) / conll_rows(lines)    one token and its tag per line (the tag last), a blank line
                                                   between sentences -> one row per sentence, 'tokens' and 'tags'

Each returns rows as (line, cells) for parse._table, which checks them all the same way; every problem is a
parse.DataError in words (naming the line, the row or the item), never another exception.
"""

from __future__ import annotations

import datetime
import io
import json
import math
import re
import warnings
import zipfile
from collections import Counter

from core.yourdata.basics import (
    MAGIC,
    MAX_CELL_CHARS,
    MAX_COLUMNS,
    MAX_ROWS,
    UPLOAD_WORDS,
    DataError,
    _column_names,
    _plural,
    is_number,
)

MAX_UNZIPPED = 100 * 2**20  # bytes the parts of an .xlsx may unpack to, all together (the sheets are XML)
MAX_SHEET_XML = 60 * 2**20  # bytes one part may unpack to (a sheet of 20,000 rows x 32 columns is ~40 MB at most)
MAX_ZIP_PARTS = 2_000  # files inside the workbook's zip
MAX_BLANK_ROWS = 5 * MAX_ROWS  # empty sheet rows read past before giving up (a stray cell far down the sheet)
MAX_SHEET_CELLS = 250_000  # cells read from a sheet (rows x its width): openpyxl takes ~20-50 us a cell
MAX_TAGS = 100  # the last column of a CoNLL file has at most this many different tags (propose.MAX_LABELS)
CONLL_SAMPLE = 2_000  # lines looked at to tell a CoNLL file from a table
DOCSTART = "-DOCSTART-"
TYPOGRAPHIC = set("\u2018\u2019\u201a\u201c\u201d\u201e\u2013\u2014\u2026\u20ac\u00a3\u00b0\u00a9\u00ae\u2122"
                  "\u2022\u00b7\u00a7\u00a0\u00d7\u00bd\u00bc\u00be\u00b1\u00b5")


# ---- encodings ---------------------------------------------------------------------------------------------------

def _first_bad_line(raw: bytes, encoding: str) -> tuple[int, int]:
    try:
        raw.decode(encoding)
    except UnicodeDecodeError as exc:
        return raw[:exc.start].count(b"\n") + 1, raw[exc.start]
    return 0, 0


def _reads_as_words(text: str) -> bool:
    """Windows-1252 text reads as words: its accented letters sit beside plain ones ('café', 'naïve', 'à'), or
    are typographic marks. Runs of them with no plain letter near ('Ð¿Ñ€Ð¸' from UTF-8, Cyrillic from cp1251,
    'ÿþ' from UTF-16) say it is something else."""
    letters = odd = 0
    for m in re.finditer(r"[^\x00-\x7f]", text):
        ch, i = m.group(), m.start()
        if ch in TYPOGRAPHIC or not ch.isalpha():
            continue
        letters += 1
        near = text[max(i - 1, 0):i] + text[i + 1:i + 2]
        plain = any(c.isascii() and c.isalpha() for c in near)
        if not plain and any(not c.isascii() and c.isalpha() for c in near):
            odd += 1
    return odd <= 0.1 * letters


def text_from_bytes(raw: bytes) -> tuple[str, str | None]:
    """(text, note) from bytes whose size was checked; a DataError for binary files and unknown encodings."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), "Read as UTF-16 text (what Excel saves as 'Unicode text'), not UTF-8."
        except UnicodeDecodeError:
            raise DataError("The file starts like UTF-16 text but is not: save it as UTF-8 (in a spreadsheet: 'CSV "
                            "UTF-8').") from None
    for magic, what in MAGIC.items():
        if raw.startswith(magic):
            raise DataError(f"This is {what}, not a table. Upload {UPLOAD_WORDS}.")
    if b"\x00" in raw[:65536]:
        utf16 = _utf16_without_mark(raw)
        if utf16 is not None:
            return utf16, "Read as UTF-16 text (it has no byte-order mark), not UTF-8."
        raise DataError(f"This is a binary file (it contains zero bytes), not a text table. Upload {UPLOAD_WORDS} "
                        "saved as UTF-8.")
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError:
        text = None
    if text is not None and _reads_as_words(text):
        return text, "Read as Windows-1252 (Western European) text, not UTF-8: check the accented letters."
    line, byte = _first_bad_line(raw, "utf-8")
    raise DataError(f"Line {line} is not UTF-8 text (byte 0x{byte:02x}). Save the file as UTF-8 (in a spreadsheet: "
                    "'CSV UTF-8').")


def _utf16_without_mark(raw: bytes) -> str | None:
    """UTF-16 text with no byte-order mark: one byte of each pair is zero for Latin text."""
    if len(raw) % 2:
        return None
    head = raw[:4096]
    even, odd = head[0::2].count(0), head[1::2].count(0)
    half = len(head) // 2
    for encoding, zeros, other in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if zeros >= 0.6 * half and other == 0:
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError:
                return None
            return None if "\x00" in text else text
    return None


# ---- .xlsx ---------------------------------------------------------------------------------------------------------

def _check_zip(raw: bytes) -> zipfile.ZipFile:
    """The workbook's zip, its declared sizes checked (zipfile never unpacks more than a part declares)."""
    try:
        z = zipfile.ZipFile(io.BytesIO(raw))
        infos = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise DataError(f"This is a zip archive that cannot be opened (damaged or cut short), not a table. Upload "
                        f"{UPLOAD_WORDS}.") from None
    names = {i.filename for i in infos}
    if "xl/workbook.xml" not in names:
        if "content.xml" in names and any(n == "mimetype" for n in names):
            raise DataError("This is an OpenDocument (.ods) spreadsheet: save it as .xlsx or CSV and upload that.")
        raise DataError(f"This is a zip archive, not a table: unzip it and upload the file inside ({UPLOAD_WORDS}).")
    if len(infos) > MAX_ZIP_PARTS:
        raise DataError(f"This workbook holds {len(infos):,} files inside; at most {MAX_ZIP_PARTS:,}.")
    total = sum(i.file_size for i in infos)
    big = max(infos, key=lambda i: i.file_size)
    if total > MAX_UNZIPPED or big.file_size > MAX_SHEET_XML:
        raise DataError(f"This workbook unpacks to {total / 2**20:,.0f} MB (one part, {big.filename}, to "
                        f"{big.file_size / 2**20:,.0f} MB); at most {MAX_UNZIPPED // 2**20} MB, "
                        f"{MAX_SHEET_XML // 2**20} MB a part. Keep a sample of the rows, or save it as CSV.")
    if any(i.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) for i in infos):
        raise DataError("This workbook is packed in an unusual way; save it again from a spreadsheet as .xlsx or CSV.")
    if any(i.flag_bits & 0x1 for i in infos):
        raise DataError("This workbook is encrypted: save it without a password.")
    for i in infos:  # a workbook's XML never declares entities: refuse one that does (entity expansion bombs)
        if i.filename.endswith((".xml", ".rels")):
            with z.open(i) as f:
                head = f.read(4096).upper()
                if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
                    raise DataError("This workbook declares XML entities, which a spreadsheet never writes: save "
                                    "it again as .xlsx or CSV.")
    return z


def _cell_text(v) -> str:
    """A cell's value as the text a spreadsheet shows: 3 not 3.0, dates as 2024-01-31, TRUE/FALSE."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format(v, ".15g") if math.isfinite(v) else str(v)  # 15 significant digits, as Excel shows
    if isinstance(v, datetime.datetime):
        return v.date().isoformat() if v.time() == datetime.time() else v.isoformat(sep=" ")
    if isinstance(v, (datetime.date, datetime.time)):
        return v.isoformat()
    return str(v).replace("\r\n", "\n").replace("\r", "\n")


def xlsx_rows(raw: bytes) -> tuple[list[tuple[int, list[str]]], list[str]]:
    """(sheet row number, cells) of the first sheet's non-empty rows (trailing empty cells dropped), and notes."""
    z = _check_zip(raw)
    z.close()
    try:
        import openpyxl
    except ImportError:  # a server without it still says what to do
        raise DataError("Excel workbooks cannot be read on this server: save the sheet as CSV.") from None
    rows: list[tuple[int, list[str]]] = []
    notes = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about styles and extensions it does not read
            wb = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True, keep_links=False)
            try:
                sheets = wb.worksheets
                if not sheets:
                    raise DataError("This workbook has no sheet with cells.")
                ws = sheets[0]
                if len(sheets) > 1:
                    notes.append(f"Read the first sheet ('{ws.title[:40]}'); the other {len(sheets) - 1} left out.")
                blank = 0
                dim = ws.max_column if isinstance(ws.max_column, int) and ws.max_column > 0 else MAX_COLUMNS + 1
                width = min(dim, MAX_COLUMNS + 1)  # each row is read this wide: a far-away cell is never reached
                for r, values in enumerate(ws.iter_rows(max_col=width, values_only=True), 1):
                    if r * width > MAX_SHEET_CELLS:
                        raise DataError(f"The sheet is more than {MAX_SHEET_CELLS:,} cells ({r - 1:,} rows of "
                                        f"{width} columns read); a workbook is slow to read, so at most that many. "
                                        f"Save the sheet as CSV (up to {MAX_ROWS:,} rows), or keep a sample.")
                    cells = [_cell_text(v).strip() for v in values]
                    while cells and not cells[-1]:
                        cells.pop()
                    if not cells:
                        blank += 1
                        if blank > MAX_BLANK_ROWS:
                            break
                        continue
                    if len(cells) > MAX_COLUMNS:
                        raise DataError(f"Row {r} of the sheet has more than {MAX_COLUMNS} columns; at most "
                                        f"{MAX_COLUMNS}.")
                    rows.append((r, cells))
                    if len(rows) > MAX_ROWS + 1:
                        raise DataError(f"The sheet has more than {MAX_ROWS:,} rows; at most {MAX_ROWS:,} can be "
                                        "used. Keep a sample of them.")
            finally:
                wb.close()
    except DataError:
        raise
    except Exception:  # noqa: BLE001 -- openpyxl raises many kinds on a damaged file; the person needs one sentence
        raise DataError("This workbook cannot be read (damaged, or not really .xlsx): open it in a spreadsheet and "
                        "save it again as .xlsx or CSV.") from None
    if not rows:
        raise DataError("The data is empty: the first sheet of this workbook has no cells.")
    notes.insert(0, "Read as an Excel workbook: values as the sheet shows them (formulas as their last result).")
    return rows, notes


# ---- JSON ----------------------------------------------------------------------------------------------------------

_DECODER = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=str)  # numbers keep their own text


def looks_like_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.split("\n", 50) if line.strip()), "")


def _decode_one(line: str):
    """One JSON value that fills the line, or a problem in words."""
    try:
        value, end = _DECODER.raw_decode(line)
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at character {exc.pos + 1})"
    except (RecursionError, ValueError):
        return None, "not valid JSON (nested too deeply, or a number too long)"
    if line[end:].strip():
        return None, f"more than one JSON value (something after character {end})"
    return value, None


def json_rows(text: str):
    """(columns, rows, problems, notes, unit) for JSON lines or a JSON array of objects; None when the text only
    starts like JSON (a table whose first cell begins with '[' or '{')."""
    first = _first_line(text)
    heads = [_decode_one(line.strip())[0] for line in text.split("\n", 50)[:50] if line.strip()][:5]
    if first[:1] == "{" and any(isinstance(v, dict) for v in heads):  # JSON lines; a broken line: a row problem
        items = []
        for n, line in enumerate(text.split("\n"), 1):
            if line.strip():
                items.append((n,) + _decode_one(line.strip()))
        if len(items) > MAX_ROWS:
            raise DataError(f"The data has {len(items):,} rows; at most {MAX_ROWS:,} can be used. Keep a sample of "
                            "them.")
        return _records(items, "line", "Read as JSON lines (one object per line): its fields are the columns.")
    whole, problem = _decode_one(text.strip())
    if problem is not None:
        if first in ("[", "{") or first.startswith(('{"', '[{', '[ {')):  # it really is JSON, broken somewhere
            try:
                json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"Line {exc.lineno}: this JSON is not valid ({exc.msg}, column {exc.colno}).") \
                    from None
            except (RecursionError, ValueError):
                pass
            raise DataError(f"This JSON cannot be read ({problem}).")
        return None
    where = ""
    if isinstance(whole, dict):  # {"data": [{...}, ...], "version": ...}: the one list of objects in it
        lists = [k for k, v in whole.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v)]
        if len(lists) != 1:
            raise DataError("This is one JSON object, not rows: upload JSON lines (one object per line) or a JSON "
                            "array of objects.")
        where, whole = f" (its field '{lists[0][:40]}')", whole[lists[0]]
    if not isinstance(whole, list):
        return None
    if len(whole) > MAX_ROWS:
        raise DataError(f"The array has {len(whole):,} items; at most {MAX_ROWS:,} can be used. Keep a sample.")
    items = [(i, x, None) for i, x in enumerate(whole, 1)]
    return _records(items, "item", f"Read as a JSON array of objects{where}: their fields are the columns, rows "
                                   "are numbered by item.")


def _scalar(v) -> bool:
    return isinstance(v, (str, bool))  # numbers arrive as their text (parse_int/parse_float=str)


def _value_text(v) -> tuple[str | None, int]:
    """(text, items that held spaces) of a field's value; None for a nested object (the field is left out)."""
    if v is None:
        return "", 0
    if isinstance(v, bool):
        return ("true" if v else "false"), 0
    if isinstance(v, str):
        return v.replace("\r\n", "\n").replace("\r", "\n"), 0
    if isinstance(v, list) and all(_scalar(x) for x in v):
        parts = [("true" if x else "false") if isinstance(x, bool) else x.strip() for x in v]
        spaced = sum(1 for x in parts if re.search(r"\s", x))
        if any(not x for x in parts):
            return "", 0  # an empty item would shift every later one: the row says so
        return " ".join(re.sub(r"\s+", "_", x) for x in parts), spaced
    return None, 0


def _records(items, unit: str, how: str):
    """(columns, rows, problems, notes, unit) from (number, value, problem) items."""
    fields: dict[str, None] = {}
    nested: dict[str, None] = {}
    problems: list[tuple[int, str]] = []
    good = []
    for n, value, problem in items:
        if problem is not None:
            problems.append((n, problem))
        elif not isinstance(value, dict):
            problems.append((n, f"a JSON {type(value).__name__.replace('str', 'text')} where an object was expected"))
        else:
            good.append((n, value))
            for k, v in value.items():
                if k not in nested and _value_text(v)[0] is None:
                    nested[k] = None
                fields.setdefault(k, None)
    keep = [k for k in fields if k not in nested]
    if not items:
        raise DataError("The data has no rows (an empty JSON array).")
    if not keep:
        if not good:
            raise DataError(_json_problems(problems, unit))
        raise DataError("No field holds text, numbers or lists of them (the fields hold nested objects): pick the "
                        'fields to learn from and write them as JSON lines like {"text": "...", "label": "..."}.')
    if len(keep) > MAX_COLUMNS:
        raise DataError(f"The objects have {len(keep)} fields; at most {MAX_COLUMNS}. Keep the fields to learn from.")
    notes = [how]
    if nested:
        notes.append(f"{_plural(len(nested), 'field')} holding nested objects left out: "
                     + ", ".join(f"'{k[:40]}'" for k in list(nested)[:5]) + ".")
    columns = _column_names(keep)
    rows, spaced = [], 0
    for n, value in good:
        missing = next((k for k in keep if k not in value), None)
        if missing is not None:
            problems.append((n, f"no field '{missing[:40]}'"))
            continue
        texts = [_value_text(value[k]) for k in keep]
        rows.append((n, [t for t, _ in texts]))
        spaced += sum(s for _, s in texts)
    if spaced:
        notes.append(f"{_plural(spaced, 'list item')} held spaces: written with _ in their place, so that a list "
                     "stays one word per item.")
    return columns, rows, problems, notes, unit


def _json_problems(problems: list[tuple[int, str]], unit: str) -> str:
    shown = "; ".join(f"{unit} {n}: {p}" for n, p in problems[:5])
    return f"No {unit} holds a JSON object with fields -- {shown}."


# ---- CoNLL ---------------------------------------------------------------------------------------------------------

def _fields(line: str, tabs: bool) -> list[str]:
    return [f.strip() for f in line.split("\t")] if tabs else line.split()


def looks_like_conll(lines: list[str]) -> bool:
    """One token and its tag per line, the tag last, sentences between blank lines (or -DOCSTART- lines): most
    lines split into the same 2-10 fields, no field holds a space, the tags are few, the tokens are not numbers."""
    sample = lines[:CONLL_SAMPLE]
    content = [line for line in sample if line.strip() and not line.startswith(DOCSTART)]
    if len(content) < 4:
        return False
    docstart = any(line.startswith(DOCSTART) for line in sample)
    if not docstart and not any(not a.strip() and b.strip() for a, b in zip(lines, lines[1:])):
        return False  # one sentence (no blank line before a token line)
    sample_breaks = sum(1 for a, b in zip(sample, sample[1:]) if not a.strip() and b.strip())
    if len(content) / (sample_breaks + 1) < 2:  # sentences of one token: a table with blank lines, not CoNLL
        return False
    tabs = sum("\t" in line for line in content) >= 0.9 * len(content)
    split = [_fields(line, tabs) for line in content]
    if tabs and any(" " in f for fs in split for f in fs):
        return False
    width, hits = Counter(map(len, split)).most_common(1)[0]
    if not 2 <= width <= 10 or hits < 0.95 * len(split):
        return False
    tags = {fs[-1] for fs in split if len(fs) == width}
    tokens = [fs[0] for fs in split if len(fs) == width]
    few = docstart or len(tags) <= max(3, 0.5 * len(tokens))  # a tag set is small next to the tokens
    return len(tags) <= MAX_TAGS and few and sum(map(is_number, tokens)) < 0.5 * len(tokens)


def conll_rows(lines: list[str]):
    """(rows, problems, notes): one row per sentence -- tokens joined by spaces, their tags likewise. A line that
    does not fit spoils its sentence (a problem naming that line); a sentence too long is cut at a whole token."""
    tabs = sum("\t" in line for line in lines[:CONLL_SAMPLE] if line.strip()) \
        >= 0.9 * max(1, sum(1 for line in lines[:CONLL_SAMPLE] if line.strip() and not line.startswith(DOCSTART)))
    widths = Counter(len(_fields(line, tabs)) for line in lines[:CONLL_SAMPLE]
                     if line.strip() and not line.startswith(DOCSTART))
    width = widths.most_common(1)[0][0] if widths else 2
    rows, problems = [], []
    docstarts = cut = 0
    tokens: list[str] = []
    tags: list[str] = []
    start, bad = 0, None

    def end_sentence():
        nonlocal tokens, tags, bad, cut
        if bad is not None:
            problems.append(bad)
        elif tokens:
            a, b = " ".join(tokens), " ".join(tags)
            if len(a) > MAX_CELL_CHARS or len(b) > MAX_CELL_CHARS:
                cut += 1
                k = len(tokens)
                while k > 1 and max(len(" ".join(tokens[:k])), len(" ".join(tags[:k]))) > MAX_CELL_CHARS:
                    k = k * 9 // 10
                a, b = " ".join(tokens[:k]), " ".join(tags[:k])
            rows.append((start, [a, b]))
            if len(rows) > MAX_ROWS:
                raise DataError(f"The file has more than {MAX_ROWS:,} sentences; at most {MAX_ROWS:,} can be used. "
                                "Keep a sample of them.")
        tokens, tags, bad = [], [], None

    for n, line in enumerate(lines, 1):
        if not line.strip():
            end_sentence()
            continue
        if line.startswith(DOCSTART):
            end_sentence()
            docstarts += 1
            continue
        if not tokens and bad is None:
            start = n
        fields = _fields(line, tabs)
        if bad is None:
            if len(fields) < 2:
                bad = (n, "one field; a token and its tag are needed (is a blank line missing, or a tag?)")
            elif len(fields) != width:
                bad = (n, f"{len(fields)} fields, the other lines have {width}")
            elif tabs and any(" " in f for f in fields):
                bad = (n, "a token with a space in it")
            elif not fields[0] or not fields[-1]:
                bad = (n, "an empty token or tag")
        tokens.append(fields[0] if fields else "")
        tags.append(fields[-1] if fields else "")
    end_sentence()
    sep = "tabs" if tabs else "spaces"
    notes = [f"Read as CoNLL: one token and its tag per line (separated by {sep}), a blank line between sentences "
             f"-> {_plural(len(rows), 'sentence')}, one per row, tokens and tags joined by spaces."]
    if width > 2:
        notes.append(f"The tag is the last of {width} columns; the {width - 2} in between (e.g. part of speech) "
                     "are left out.")
    if docstarts:
        notes.append(f"{_plural(docstarts, DOCSTART + ' line')} skipped.")
    if cut:
        notes.append(f"{_plural(cut, 'sentence')} longer than {MAX_CELL_CHARS:,} characters cut at a whole token.")
    if not rows and not problems:
        raise DataError("The data has no sentences.")
    return rows, problems, notes
