"""Your data: the formats people bring (core.yourdata.parse.read_table with core.yourdata.formats), each made here.

CoNLL-2003-like (space-separated, 4 columns, -DOCSTART-) and WNUT-like (tab-separated) token-per-line files, JSON
lines of reviews and of token lists, a JSON array, an .xlsx written with openpyxl, UTF-16 and Windows-1252 text,
space-separated numbers, a file of a byte-order mark and blank lines, a zip-bomb workbook and renamed files; long
cells are cut (never dropped); what the page proposes for them; an exported table reads back the same.
"""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from core.yourdata import formats, parse
from core.yourdata.parse import DataError, read_table, write_table
from core.yourdata.propose import propose

CONLL2003 = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
to TO B-VP O
boycott VB I-VP O
British JJ B-NP B-MISC
lamb NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

"""

PEOPLE = ["Anna", "Ben", "Carla", "Dev", "Ema", "Femi"]
PLACES = ["Lagos", "Oslo", "Quito", "Perth"]


def wnut_like(n: int = 30) -> str:
    """Tab-separated tokens and tags, a blank line between tweets (made here: names and places from two lists)."""
    out = []
    for i in range(n):
        who, where = PEOPLE[i % len(PEOPLE)], PLACES[i % len(PLACES)]
        words = [("@user", "O"), ("guess", "O"), ("who", "O"), ("is", "O"), ("back", "O"), ("in", "O"),
                 (where, "B-location")]
        if i % 3 == 0:
            words += [("with", "O"), (who, "B-person"), ("today", "O"), ("!", "O")]
        out.append("".join(f"{w}\t{t}\n" for w, t in words))
    return "\n".join(out)


def review_lines(n: int = 40) -> str:
    good, bad = ["a lovely film", "great acting", "what a joy"], ["so dull", "a boring mess", "awful plot"]
    rows = [{"text": f"{(good if i % 2 else bad)[i % 3]} number {i}", "label": "pos" if i % 2 else "neg",
             "stars": i % 2 * 4 + 1, "meta": {"id": i}} for i in range(n)]
    return "\n".join(json.dumps(r) for r in rows) + "\n"


def token_lines(n: int = 30) -> str:
    rows = [{"tokens": ["I", "met", PEOPLE[i % 6], "in", PLACES[i % 4]], "ner_tags": [0, 0, 1, 0, 2]} for i in range(n)]
    return "\n".join(json.dumps(r) for r in rows)


def xlsx_bytes(rows: list[list], sheets: int = 1) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Data"
    for r in rows:
        ws.append(r)
    for k in range(1, sheets):
        wb.create_sheet(f"Other {k}").append(["ignored"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# ---- CoNLL -----------------------------------------------------------------------------------------------------

def test_conll2003_is_one_sentence_per_row_with_the_last_column_as_tags():
    t = read_table(CONLL2003.encode(), "eng.train")
    assert t.format == "conll" and t.columns == ["tokens", "tags"] and t.header and t.delimiter == ","
    assert t.rows == [["EU rejects German call to boycott British lamb .", "B-ORG O B-MISC O O O B-MISC O O"],
                      ["Peter Blackburn", "B-PER I-PER"]]
    assert t.lines == [3, 13]  # the line each sentence starts on
    notes = " ".join(t.notes)
    assert "-DOCSTART-" in notes and "last of 4 columns" in notes and "2 sentences" in notes


def test_wnut_like_tab_separated_conll_proposes_a_word_tagger():
    t = read_table(wnut_like().encode(), "wnut17train.conll")
    assert t.format == "conll" and len(t.rows) == 30
    assert t.rows[0] == ["@user guess who is back in Lagos with Anna today !",
                         "O O O O O O B-location O B-person O O"]
    assert "tabs" in t.notes[0]
    choice = propose(t)
    assert (choice.shape, choice.input, choice.target, choice.tokens) == ("many_to_many", "tokens", "tags", "word")


def test_entity_dense_conll_with_long_tag_names_is_still_proposed_as_a_tagger():
    text = "\n".join(f"w{i}a\tB-location\nv{i}b\tI-location\nis\tO\n" for i in range(60))
    choice = propose(read_table(text.encode(), "dense.conll"))
    assert (choice.shape, choice.input, choice.target) == ("many_to_many", "tokens", "tags")


def test_conll_renamed_or_pasted_is_still_conll_and_a_bad_line_names_itself():
    for name in ("data.csv", "notes.txt", "pasted text"):
        assert read_table(wnut_like(12).encode(), name).format == "conll"
    broken = wnut_like(12).replace("is\tO\n", "is\tO\textra\n", 1)
    with pytest.raises(DataError, match=r"line 4: 3 fields, the other lines have 2"):
        read_table(broken.encode(), "w.conll")
    t = read_table(broken.encode(), "w.conll", skip_bad=True)
    assert len(t.rows) == 11 and t.skipped == [(4, "3 fields, the other lines have 2")]  # its sentence left out


def test_conll_can_be_picked_and_a_table_with_blank_lines_is_not_conll():
    one = "EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n"  # one sentence: not guessed, but readable when picked
    assert read_table(one.encode(), "x.txt").format != "conll"
    assert read_table(one.encode(), "x.txt", delimiter=parse.CONLL).rows == [["EU rejects German call",
                                                                              "B-ORG O B-MISC O"]]
    numbers = "1 2 3\n4 5 6\n\n7 8 9\n1 2 3\n"  # numbers with a blank line: a space-separated table
    assert read_table(numbers.encode(), "n.txt").format == "space"


def test_a_long_conll_sentence_is_cut_at_a_whole_token_the_same_in_both_columns():
    words = "".join(f"word{i} O\n" for i in range(parse.MAX_CELL_CHARS // 5))
    t = read_table((words + "\nshort O\none B-X\n").encode(), "long.conll")
    tokens, tags = t.rows[0]
    assert len(tokens) <= parse.MAX_CELL_CHARS and len(tokens.split()) == len(tags.split())
    assert any("cut at a whole token" in n for n in t.notes)


# ---- JSON --------------------------------------------------------------------------------------------------------

def test_json_lines_of_reviews_propose_many_to_one_and_nested_fields_are_left_out():
    t = read_table(review_lines().encode(), "reviews.jsonl")
    assert t.format == "jsonl" and t.columns == ["text", "label", "stars"]
    assert t.rows[1] == ["great acting number 1", "pos", "5"]
    assert any("'meta'" in n for n in t.notes)
    choice = propose(t)
    assert (choice.shape, choice.input, choice.target) == ("many_to_one", "text", "label")


def test_json_lines_of_token_lists_become_a_tagging_table():
    t = read_table(token_lines().encode(), "ner.jsonl")
    assert t.columns == ["tokens", "ner_tags"] and t.rows[0] == ["I met Anna in Lagos", "0 0 1 0 2"]
    assert propose(t).shape == "many_to_many"


def test_json_array_and_rows_with_problems():
    arr = '[\n {"a": "x y", "b": 1.50},\n {"a": "z", "b": true},\n {"a": "w"}\n]'
    with pytest.raises(DataError, match=r"item 3: no field 'b'"):
        read_table(arr.encode(), "a.json")
    t = read_table(arr.encode(), "a.json", skip_bad=True)
    assert t.rows == [["x y", "1.50"], ["z", "true"]]  # numbers keep their own text
    lines = '{"a": "x", "b": "1"}\n{"a": "y", "b": \n{"a": "z", "b": "2"}\n["not", "an object"]\n'
    with pytest.raises(DataError) as exc:
        read_table(lines.encode(), "a.jsonl")
    assert "line 2: not valid JSON" in str(exc.value) and "line 4: a JSON list" in str(exc.value)
    spaced = '{"t": ["New York", "is", "big"], "g": ["B", "O", "O"]}\n' * 3
    assert read_table(spaced.encode(), "s.jsonl").rows[0][0] == "New_York is big"
    with pytest.raises(DataError, match="nested"):
        read_table(b'{"a": {"b": 1}}\n{"a": {"b": 2}}\n', "n.jsonl")
    with pytest.raises(DataError, match="one JSON object"):
        read_table(b'{"a": 1,\n "b": 2}\n', "n.json")
    assert read_table(b"[citation needed],label\n[x] y,z\n", "c.csv").format == "csv"  # only starts like JSON


# ---- .xlsx -------------------------------------------------------------------------------------------------------

def test_xlsx_first_sheet_values_as_text_header_guessed():
    rows = [["text", "label", "score"]] + [[f"row {i}", "yes" if i % 2 else "no", float(i)] for i in range(12)]
    rows.append(["last", "no", 2.5])
    t = read_table(xlsx_bytes(rows, sheets=2), "sheet.csv")  # the name says CSV: the content decides
    assert t.format == "xlsx" and t.columns == ["text", "label", "score"] and t.delimiter == ","
    assert t.rows[3] == ["row 3", "yes", "3"] and t.rows[-1] == ["last", "no", "2.5"]
    assert any("first sheet ('Data')" in n for n in t.notes)
    assert read_table(write_table(t).encode(), "sheet.csv", ",", True).rows == t.rows  # what the plugin reads


def test_xlsx_short_rows_are_empty_cells_named_by_row():
    rows = [["a", "b"], ["x", "1"], ["y"], ["z", "3"]]
    with pytest.raises(DataError, match=r"row 3: column 'b' is empty"):
        read_table(xlsx_bytes(rows), "s.xlsx")


def test_xlsx_cells_are_counted_while_reading(monkeypatch):
    monkeypatch.setattr(formats, "MAX_SHEET_CELLS", 30)  # 3 columns: the 11th row is one too many
    rows = [["a", "b", "c"]] + [[f"x{i}", i, "y"] for i in range(12)]
    with pytest.raises(DataError, match=r"more than 30 cells \(10 rows of 3 columns read\)"):
        read_table(xlsx_bytes(rows), "wide.xlsx")
    assert len(read_table(xlsx_bytes(rows[:10]), "ok.xlsx").rows) == 9


def test_xlsx_zip_bomb_is_refused_before_opening(monkeypatch):
    import openpyxl

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b"<" + b" " * (formats.MAX_SHEET_XML + 1) + b"/>")
    raw = buf.getvalue()
    assert len(raw) < parse.MAX_BYTES
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *a, **k: pytest.fail("opened a zip bomb"))
    with pytest.raises(DataError, match="unpacks to"):
        read_table(raw, "bomb.xlsx")


def test_other_zips_and_binaries_get_clear_messages():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("content.xml", "<x/>")
    with pytest.raises(DataError, match=r"\.ods"):
        read_table(buf.getvalue(), "a.ods")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("data.csv", "a,b\n")
    with pytest.raises(DataError, match="unzip it"):
        read_table(buf.getvalue(), "a.zip")
    with pytest.raises(DataError, match="cannot be opened"):
        read_table(b"PK\x03\x04truncated", "a.xlsx")
    with pytest.raises(DataError, match="PDF"):
        read_table(b"%PDF-1.4\n", "a.csv")


# ---- encodings ---------------------------------------------------------------------------------------------------

def test_utf16_and_cp1252_are_read_with_a_note():
    text = "text\tlabel\ncafé crème\tpos\nnaïve — “quoted”\tneg\n"
    for encoding in ("utf-16", "utf-16-be"):
        raw = text.encode(encoding) if encoding == "utf-16" else b"\xfe\xff" + text.encode(encoding)
        t = read_table(raw, "excel.txt")
        assert t.rows == [["café crème", "pos"], ["naïve — “quoted”", "neg"]], encoding
        assert any("UTF-16" in n for n in t.notes)
    t = read_table(text.encode("cp1252"), "excel.txt")
    assert t.rows[1] == ["naïve — “quoted”", "neg"] and any("Windows-1252" in n for n in t.notes)
    assert not any("UTF" in n or "Windows" in n for n in read_table(text.encode("utf-8-sig"), "a.txt").notes)
    with pytest.raises(DataError, match="Line 2 is not UTF-8"):  # Cyrillic in cp1251 is not Western text
        read_table("name,lang\nДмитрий Иванов,ru\nИван,ru\n".encode("cp1251"), "a.csv")


@pytest.mark.parametrize("raw", [b"\xef\xbb\xbf", b"\xef\xbb\xbf\n\n\r\n", b"\xff\xfe\n\x00\n\x00",
                                 b"\xef\xbb\xbf  \n"])
def test_a_byte_order_mark_and_blank_lines_is_empty_not_stuck(raw):
    with pytest.raises(DataError, match="empty"):
        read_table(raw, "blank.csv")


# ---- delimited text and limits ---------------------------------------------------------------------------------------

def test_space_separated_numbers_and_a_names_list():
    t = read_table(b"year  value\n1700 5.0\n1701   11\n1702 16.0\n", "sunspots.dat")
    assert t.format == "space" and t.columns == ["year", "value"] and t.rows[1] == ["1701", "11"]
    assert read_table(write_table(t).encode(), "s.dat", " ", True).rows == t.rows
    names = read_table(b"Anna Smith\nBen Jones\nCarla Diaz\n", "names.txt")
    assert names.columns == ["text"] and names.rows[0] == ["Anna Smith"]  # words, not columns


def test_long_cells_are_cut_with_a_note_never_dropped():
    long = "word " * 3000  # 15,000 characters: a long review is kept whole
    huge = "word " * 5000  # 25,000: cut
    raw = f"text,label\n{long},pos\n{huge},neg\nshort one,pos\n".encode()
    t = read_table(raw, "reviews.csv")
    assert len(t.rows) == 3 and t.rows[0][0] == long.strip()
    assert len(t.rows[1][0]) <= parse.MAX_CELL_CHARS and t.rows[1][0].endswith("word")
    assert any("1 cell longer than 20,000 characters was cut" in n for n in t.notes)


def test_one_size_limit_checked_before_anything_is_read(monkeypatch):
    monkeypatch.setattr(formats, "text_from_bytes", lambda raw: pytest.fail("decoded a file over the limit"))
    monkeypatch.setattr(formats, "xlsx_rows", lambda raw: pytest.fail("opened a workbook over the limit"))
    for raw in (b"a" * (parse.MAX_BYTES + 1), b"PK\x03\x04" + b"\0" * parse.MAX_BYTES):
        with pytest.raises(DataError, match=f"at most {parse.MAX_MB} MB"):
            read_table(raw, "big.csv")


def test_the_page_and_the_uploader_say_the_same_limit():
    from core.paths import REPO

    page = (REPO / "core/ui/pages/your_data.py").read_text(encoding="utf-8")
    assert "max_upload_size=parse.MAX_MB" in page and "type=[" not in page.split("def _bring_data")[1][:2500]
    assert parse.MAX_BYTES == parse.MAX_MB * 2**20  # Streamlit's MB


def test_the_exported_plugin_reads_the_persons_own_conll_file(tmp_path):
    from core.yourdata.build import make_task

    t = read_table(wnut_like(30).encode(), "wnut.conll")
    task = make_task(t, propose(t))
    (tmp_path / "wnut.conll").write_text(wnut_like(30), encoding="utf-8")  # not the file the page wrote
    splits = task.load_data(tmp_path)
    assert sum(len(x) for x in (splits.train, splits.val, splits.test)) == 30


@pytest.mark.parametrize("kind", ["conll", "jsonl", "xlsx"])
def test_the_exported_plugins_data_file_reads_back_as_the_same_table(tmp_path, kind):
    from core.yourdata.build import make_task
    from core.yourdata.export import plugin_files

    raw = {"conll": wnut_like(30).encode(), "jsonl": review_lines(30).encode(),
           "xlsx": xlsx_bytes([["text", "label"]] + [[f"row {i} of text", "ab"[i % 2]] for i in range(30)])}[kind]
    t = read_table(raw, f"mine.{kind}")
    task = make_task(t, propose(t), name="mine")
    files = plugin_files(task, t)
    data = {k: v for k, v in files.items() if k.startswith("mine-data/")}
    assert list(data) == ["mine-data/mine.csv"]  # written as CSV with a header, whatever came in
    (tmp_path / "mine.csv").write_bytes(data["mine-data/mine.csv"])
    back = read_table((tmp_path / "mine.csv").read_bytes(), "mine.csv", task.spec["delimiter"], task.spec["header"])
    assert back.rows == t.rows and back.columns == t.columns
    splits = task.load_data(tmp_path)
    assert sum(len(x) for x in (splits.train, splits.val, splits.test)) == 30
