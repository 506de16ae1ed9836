"""Hostile input to the Your data readers of issue 33 (.xlsx, JSON, CoNLL, UTF-16 / Windows-1252 text): a fixed
corpus made here, and hypothesis over random bytes, random JSON lines and random CoNLL text. Whatever arrives,
read_table either returns a table within the limits or raises a DataError with words in it -- never another
exception -- and a workbook is never opened before its sizes are checked.
"""

from __future__ import annotations

import functools
import io
import json
import unicodedata
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs

from core.yourdata import formats, parse
from core.yourdata.parse import DataError, read_table

MINIMAL_TYPES = ('<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                 '<Default Extension="xml" ContentType="application/xml"/></Types>')


def workbook(rows=None, cells_xml: str | None = None) -> bytes:
    """A real .xlsx from openpyxl, or one whose first sheet's XML is replaced by ``cells_xml``."""
    import openpyxl

    wb = openpyxl.Workbook()
    for r in [["a", "b"], ["x", "1"], ["y", "2"]] if rows is None else rows:
        wb.active.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    if cells_xml is None:
        return buf.getvalue()
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = cells_xml.encode()
            z.writestr(info.filename, data)
    return out.getvalue()


def zip_of(files: dict[str, bytes], method=zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def sheet(rows_xml: str) -> str:
    return ('<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            f"<sheetData>{rows_xml}</sheetData></worksheet>")


def encrypted_flag(raw: bytes) -> bytes:
    """The same zip with the 'encrypted' bit set on every entry (local headers and central directory)."""
    b = bytearray(raw)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        i = b.find(sig)
        while i >= 0:
            b[i + off] |= 1
            i = b.find(sig, i + 4)
    return bytes(b)


@functools.cache
def bomb() -> bytes:
    """~60 kB that unpacks to more than a sheet may (made once)."""
    return zip_of({"xl/workbook.xml": b"<w/>",
                   "xl/worksheets/sheet1.xml": b"<" + b" " * (formats.MAX_SHEET_XML + 10) + b"/>"})


CORPUS = [  # (what, make bytes, words the message must contain; None: a table is fine too)
    ("xlsx zip bomb", bomb, ["unpacks"]),
    ("xlsx many parts", lambda: zip_of({"xl/workbook.xml": b"<w/>", **{f"p{i}": b"" for i in range(2100)}}),
     ["files inside"]),
    ("xlsx bzip2 part", lambda: zip_of({"xl/workbook.xml": b"<w/>"}, zipfile.ZIP_BZIP2), ["unusual"]),
    ("xlsx encrypted", lambda: encrypted_flag(workbook()), ["encrypted"]),
    ("xlsx entity declared", lambda: workbook(cells_xml='<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
                                                        + sheet("")), ["entities"]),
    ("xlsx truncated", lambda: workbook()[:600], ["cannot"]),
    ("xlsx garbage sheet", lambda: workbook(cells_xml="<<<not xml"), ["cannot be read"]),
    ("xlsx 40 columns", lambda: workbook([[f"c{j}" for j in range(40)]] * 3), ["more than 32 columns"]),
    ("xlsx a cell far away", lambda: workbook(cells_xml=sheet('<row r="1"><c r="XFD1" t="inlineStr"><is><t>x</t>'
                                                              "</is></c></row>")), ["empty"]),  # never read
    ("xlsx rows far apart", lambda: workbook(cells_xml=sheet('<row r="1"><c r="A1"><v>1</v></c></row>'
                                                             '<row r="1000000"><c r="A1000000"><v>2</v></c></row>')),
     None),
    ("xlsx empty", lambda: workbook([]), ["empty"]),
    ("ods", lambda: zip_of({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet", "content.xml": b"<x/>"}),
     [".ods"]),
    ("xlsx over the size", lambda: b"PK\x03\x04" + b"\0" * parse.MAX_BYTES, ["MB"]),
    ("json nested deeply", lambda: b"[" * 200_000 + b"]" * 200_000, None),
    ("jsonl nested deeply", lambda: b'{"a": "x"}\n' + b'{"a": ' + b"[" * 40_000 + b"]" * 40_000 + b"}\n",
     ["nested"]),
    ("json huge number", lambda: b'{"a": ' + b"9" * 50_000 + b', "b": "x"}\n' * 2, None),
    ("json constants", lambda: b'{"a": NaN, "b": Infinity}\n{"a": -Infinity, "b": 1e999}\n', None),
    ("jsonl too many rows", lambda: b'{"a": "x"}\n' * (parse.MAX_ROWS + 1), ["20,000"]),
    ("jsonl too many fields", lambda: (json.dumps({f"f{j}": "x" for j in range(40)}) + "\n").encode() * 2,
     ["at most 32"]),
    ("json scalars", lambda: b'["a", "b", 3]', ["object"]),
    ("json empty array", lambda: b"[]", ["no rows"]),
    ("jsonl control characters", lambda: b'{"a": "x\\u0007y"}\n{"a": "z"}\n', ["control character"]),
    ("conll too many sentences", lambda: b"a O\nb O\n\n" * (parse.MAX_ROWS + 1), ["sentences"]),
    ("conll control characters", lambda: b"a\x07b O\nc O\n\nd O\ne B\n", ["control character"]),
    ("conll only docstarts", lambda: b"-DOCSTART- O\n\n-DOCSTART- O\n", None),
    ("utf-16 odd length", lambda: b"\xff\xfea\x00b", ["UTF-16"]),
    ("utf-16 broken surrogate", lambda: b"\xff\xfe\x00\xd8a\x00", ["UTF-16"]),
    ("utf-16 without a mark", lambda: "a\tb\nc\td\ne\tf\n".encode("utf-16-le"), None),
    ("cp1252 undefined bytes", lambda: b"text,label\n\x81\x8d\x8f,x\n", ["UTF-8"]),
    ("utf-8 read as cp1252 twice", lambda: "na\u00efve caf\u00e9".encode().decode("cp1252").encode("cp1252"), None),
]


@pytest.mark.parametrize("what,make,words", CORPUS, ids=[c[0] for c in CORPUS])
def test_hostile_formats_corpus(what, make, words):
    raw = make()
    try:
        t = read_table(raw, "upload.xlsx")
    except DataError as exc:
        msg = str(exc)
        assert msg and "Traceback" not in msg and "Error" not in msg.split(" ")[0]
        if words:
            assert any(w in msg for w in words), f"{what}: {msg}"
        return
    assert words is None, f"{what}: read as a table {t.columns} {t.rows[:2]}"
    within_limits(t)


def test_a_workbook_over_its_limits_is_never_opened(monkeypatch):
    import openpyxl

    monkeypatch.setattr(openpyxl, "load_workbook", lambda *a, **k: pytest.fail("opened a workbook over its limits"))
    for _what, make, _words in CORPUS[:5]:
        with pytest.raises(DataError):
            read_table(make(), "x.xlsx")


def within_limits(t: parse.Table) -> None:
    assert 0 < len(t.rows) <= parse.MAX_ROWS and 0 < len(t.columns) <= parse.MAX_COLUMNS
    assert t.format in parse.FORMATS and len(t.lines) == len(t.rows)
    for r in t.rows:
        assert len(r) == len(t.columns)
        for c in r:
            assert c and c == c.strip() and len(c) <= parse.MAX_CELL_CHARS
            assert not any(unicodedata.category(ch) == "Cc" and ch not in "\t\n" for ch in c)


def check(raw: bytes, name: str, delimiter, header, skip: bool) -> None:
    try:
        t = read_table(raw, name, delimiter, header, skip_bad=skip)
    except DataError as exc:
        assert str(exc)
        return
    within_limits(t)
    if t.format in ("conll", "jsonl", "xlsx"):  # written back as CSV, read back the same (the exported plugin)
        back = read_table(parse.write_table(t).encode(), "back.csv", t.delimiter, t.header)
        assert back.rows == t.rows and back.columns == t.columns


DELIMS = hs.sampled_from(list(parse.DELIMITERS.values()))
HEADERS = hs.sampled_from(["auto", True, False])
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TEXT = hs.text(alphabet=hs.sampled_from(list("ab \t\n\r,;|\"'{}[]:=-@é日\x00\x07\u200b\ufeff1.5")), max_size=40)
SCALAR = hs.one_of(hs.none(), hs.booleans(), hs.integers(-10**30, 10**30),
                   hs.floats(allow_nan=True, allow_infinity=True), TEXT)
VALUE = hs.recursive(SCALAR, lambda inner: hs.one_of(hs.lists(inner, max_size=4),
                                                     hs.dictionaries(TEXT, inner, max_size=3)), max_leaves=8)


@FUZZ
@given(raw=hs.binary(max_size=600), prefix=hs.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff",
                                                             b"PK\x03\x04", b"{", b"["]),
       name=hs.sampled_from(["a.csv", "a.xlsx", "a.jsonl", "a.conll", "pasted text"]), delimiter=DELIMS,
       header=HEADERS, skip=hs.booleans())
def test_random_bytes_never_crash(raw, prefix, name, delimiter, header, skip):
    check(prefix + raw, name, delimiter, header, skip)


@FUZZ
@given(rows=hs.lists(hs.dictionaries(hs.sampled_from(["text", "label", "tokens", "tags", "x"]), VALUE, max_size=4),
                     min_size=1, max_size=12),
       broken=hs.sampled_from(["", "{", "not json", "[1, 2]", '"a string"']), array=hs.booleans(),
       delimiter=DELIMS, skip=hs.booleans())
def test_random_json_never_crashes(rows, broken, array, delimiter, skip):
    if array:
        text = json.dumps(rows, indent=1)
    else:
        lines = [json.dumps(r) for r in rows]
        lines.insert(len(lines) // 2, broken)
        text = "\n".join(lines)
    check(text.encode("utf-8", "surrogatepass"), "data.jsonl", delimiter, "auto", skip)


TOKEN = hs.text(alphabet=hs.sampled_from(list("abcXYZ.,!@#1é日\x07\u200b")), min_size=0, max_size=6)
TAG = hs.sampled_from(["O", "B-PER", "I-PER", "B-LOC", "", "B-MISC I-MISC"])


@FUZZ
@given(sentences=hs.lists(hs.lists(hs.tuples(TOKEN, hs.lists(TOKEN, max_size=2), TAG), min_size=1, max_size=8),
                          min_size=1, max_size=10),
       tab=hs.booleans(), docstart=hs.booleans(), delimiter=hs.sampled_from(["auto", parse.CONLL, " ", "\t"]),
       skip=hs.booleans())
def test_random_conll_never_crashes(sentences, tab, docstart, delimiter, skip):
    sep = "\t" if tab else " "
    blocks = ["".join(sep.join([tok, *mid, tag]) + "\n" for tok, mid, tag in s) for s in sentences]
    text = ("-DOCSTART- -X- O\n\n" if docstart else "") + "\n".join(blocks)
    check(text.encode(), "train.conll", delimiter, "auto", skip)
