"""Your data (core.yourdata + core/ui/pages/your_data.py): hostile input to the parser (a fixed corpus and
hypothesis), the shape proposal, a tiny training run through core.train.fit, the one-at-a-time queue, the exported
weights and plugin (trained by core.train, found by the registry, served by its page), and the page in AppTest."""

from __future__ import annotations

import io
import json
import sys
import threading
import time
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from streamlit.testing.v1 import AppTest
from yd_export import export_and_discover, render_exported_page, retrain_exported

from core.paths import REPO
from core.task import check_task
from core.yourdata import parse
from core.yourdata.build import BudgetError, TrainQueue, make_task, train_run
from core.yourdata.examples import EXAMPLES
from core.yourdata.export import plugin_files
from core.yourdata.parse import DataError, read_table, write_table
from core.yourdata.propose import Choice, check_choice, propose

TIMEOUT = 120


def table_of(text: str, name: str = "data.csv", **kw) -> parse.Table:
    return read_table(text.encode("utf-8"), name, **kw)


def reviews(n: int = 40) -> str:
    words = ["good", "bad", "fine", "awful", "great", "dull"]
    return "text,label\n" + "".join(f"the film was {words[i % 6]},{'pos' if i % 6 in (0, 2, 4) else 'neg'}\n"
                                    for i in range(n))


# ---- the parser: a fixed hostile corpus ---------------------------------------------------------------------------

HOSTILE = [  # (what, file name, raw bytes, words the message must contain)
    ("empty", "a.csv", b"", ["empty"]),
    ("only whitespace", "a.csv", b"  \n\t\n", ["empty"]),
    ("binary", "a.csv", b"text,label\n\x00\x01\x02\x03binary", ["binary"]),
    ("a png named .csv", "a.csv", b"\x89PNG\r\n\x1a\n....", ["PNG"]),
    ("an xlsx", "a.csv", b"PK\x03\x04rest-of-zip", ["zip", "CSV"]),
    ("too big", "a.csv", b"a,b\n" * (parse.MAX_BYTES // 4 + 1), ["MB"]),
    ("too many rows", "a.txt", b"x\n" * (parse.MAX_ROWS + 2), ["20,000"]),
    ("not utf-8 on line 3", "a.csv", b"text,label\nfine,pos\n\xff\xfe bad,neg\n", ["Line 3", "UTF-8"]),
    ("ragged row", "a.csv", b"text,label\na b,pos\nc, d,neg\ne f,pos\n", ["line 3", "3 columns", "double quotes"]),
    ("empty label", "a.csv", b"text,label\nhello there,pos\nhi there,\nyo there,neg\n", ["line 3", "'label' is empty"]),
    ("control character", "a.csv", b"text,label\nhel\x07lo,pos\nok then,neg\n", ["line 2", "control character"]),
    ("a huge line", "a.txt", b"a" * (parse.MAX_LINE_CHARS + 1) + b"\n", ["Line 1", "characters long"]),
    ("too many columns", "a.csv", b",".join([b"x"] * 40) + b"\n" + b",".join([b"y"] * 40) + b"\n", ["at most 32"]),
]


@pytest.mark.parametrize("what,name,raw,words", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_is_a_clear_message(what, name, raw, words):
    with pytest.raises(DataError) as exc:
        read_table(raw, name)
    for w in words:
        assert w in str(exc.value), f"{what}: {exc.value}"


def test_size_is_checked_before_decoding(monkeypatch):
    calls = []
    monkeypatch.setattr(parse, "_split", lambda *a: calls.append(a) or iter(()))
    with pytest.raises(DataError, match="MB"):
        read_table(b"\xff" * (parse.MAX_BYTES + 1), "a.csv")  # not UTF-8 either: the size is what it says
    assert not calls


def test_skip_bad_rows_leaves_them_out_and_says_so():
    t = table_of("text,label\na b,pos\nc, d,neg\ne f,neg\n\n\n", skip_bad=True)
    assert t.rows == [["a b", "pos"], ["e f", "neg"]]
    assert t.skipped[0][0] == 3 and any("left out" in n for n in t.notes)


def test_formulas_are_text_and_neutralised_on_export():
    raw = "text,label\n=cmd|' /C calc'!A0,pos\n+SUM(A1:A2),neg\n@evil,pos\n-5,neg\nplain,pos\n"
    t = table_of(raw)
    assert [r[0] for r in t.rows] == ["=cmd|' /C calc'!A0", "+SUM(A1:A2)", "@evil", "-5", "plain"]
    assert any("formulas" in n for n in t.notes)
    out = write_table(t)
    assert "'=cmd" in out and "'+SUM" in out and "'@evil" in out
    assert "\n-5," in out  # a number is not a formula
    assert read_table(out.encode(), "a.csv").rows == t.rows  # the escaping is undone when read back


def test_odd_unicode_is_cleaned_or_kept():
    t = table_of("text,label\ncafe\u0301 \u200bnice,pos\n\u202eevil\u202c text,neg\n日本語 🙂,pos\n")
    assert t.rows[0][0] == "café nice"  # NFC, zero-width removed
    assert t.rows[1][0] == "evil text"  # bidi overrides removed
    assert t.rows[2][0] == "日本語 🙂"
    assert any("invisible" in n for n in t.notes)


def test_wrong_delimiter_is_detected_and_said():
    t = table_of("text;label\nthe film;pos\nthe plot;neg\nthe end;pos\n", "x.csv")
    assert t.delimiter == ";" and t.columns == ["text", "label"]
    assert "named .csv" in t.notes[0] and "semicolons" in t.notes[0]
    t = table_of("a,b\nc,d\ne,f\n", "x.tsv")
    assert t.delimiter == "," and "named .tsv" in t.notes[0]
    t = table_of("a,b\nc,d\n", "x.csv", delimiter="\t")
    assert t.delimiter == "\t" and len(t.columns) == 1 and "No row contains tabs" in t.notes[0]


def test_header_guess_and_override():
    assert table_of(reviews(12)).columns == ["text", "label"]
    assert table_of("written\tiso\n3 may 2001\t2001-05-03\n4 may 2001\t2001-05-04\n", "d.tsv").header
    no = table_of("Smith,English\nDubois,French\nRossi,Italian\n")
    assert not no.header and no.columns == ["column 1", "column 2"]
    assert table_of("Smith,English\nDubois,French\n", header=True).columns == ["Smith", "English"]


# ---- the parser: hypothesis ---------------------------------------------------------------------------------------

CELL = hs.text(alphabet=hs.sampled_from(list("ab ,;\t\"'=+-@\n\r\x00\x07\u200b\u202eé日🙂1.5")), max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=hs.one_of(hs.binary(max_size=400), CELL.map(lambda s: s.encode("utf-8", "surrogatepass"))),
       name=hs.sampled_from(["a.csv", "a.tsv", "a.txt", "pasted text"]),
       delim=hs.sampled_from(list(parse.DELIMITERS.values())), header=hs.sampled_from(["auto", True, False]),
       skip=hs.booleans())
def test_parser_never_crashes(raw, name, delim, header, skip):
    try:
        t = read_table(raw, name, delim, header, skip_bad=skip)
    except DataError as exc:
        assert str(exc)
        return
    assert t.rows and all(len(r) == len(t.columns) and all(c and c == c.strip() for c in r) for r in t.rows)
    choice = propose(t)  # never crashes on a readable table ...
    try:
        check_choice(t, choice)  # ... and the choice either fits or says why
    except DataError as exc:
        assert str(exc)


@settings(max_examples=80, deadline=None)
@given(rows=hs.lists(hs.lists(CELL, min_size=2, max_size=2), min_size=1, max_size=6),
       delim=hs.sampled_from([",", ";", "\t"]))
def test_written_tables_read_back_the_same(rows, delim):
    text = "\n".join(delim.join(r) for r in rows)
    try:
        t = read_table(text, "a.txt", delim, False, skip_bad=True)
    except DataError:
        return
    back = read_table(write_table(t).encode(), "a.txt", t.delimiter, t.header)
    assert back.rows == t.rows and back.columns == t.columns


# ---- which shape --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", list(EXAMPLES))
def test_each_example_gets_its_shape(key):
    name, raw = EXAMPLES[key].make()
    t = read_table(raw, name)
    c = propose(t)
    assert (c.kind if c.kind == "forecast" else c.shape) == EXAMPLES[key].kind and c.reason  # a forecast: a kind
    check_choice(t, c)


def test_proposals_on_small_tables():
    names = table_of("".join(f"{n},{lang}\n" for n, lang in [("Smith", "English"), ("Dubois", "French"),
                                                             ("Rossi", "Italian"), ("Jones", "English")] * 5))
    c = propose(names)
    assert (c.shape, c.tokens) == ("many_to_one", "char")
    nums = table_of("".join(f"{i * 0.5},{i % 3 * 1.5},{i % 2}\n" for i in range(30)))
    assert propose(nums).shape == "one_to_one" and propose(nums).target == "column 3"
    pairs = table_of("".join(f"the cat number {i} sat on the mat today\tle chat numero {i} etait assis la\n"
                             for i in range(20)), "t.tsv")
    c = propose(pairs)
    assert (c.shape, c.tokens) == ("encoder_decoder", "word")
    assert "no recurrence" in propose(nums).reason


def test_choices_that_do_not_fit_name_the_row():
    t = table_of("sentence\ttags\n" + "the dog runs\tD N V\na cat\tD N V\nsome bird\tD N\n" * 6, "t.tsv")
    with pytest.raises(DataError, match=r"line 3: 2 words in 'sentence' but 3 labels in 'tags'"):
        check_choice(t, Choice("many_to_many", "sentence", "tags", tokens="word"))
    fine = check_choice(t, Choice("many_to_many", "sentence", "tags", tokens="word"), skip_bad=True)
    assert len(fine.rows) == 12
    one = table_of("text,label\n" + "a film,pos\n" * 12)
    with pytest.raises(DataError, match="only one value"):
        check_choice(one, Choice("many_to_one", "text", "label"))
    with pytest.raises(DataError, match="at least 10"):
        check_choice(table_of("text,label\na,pos\nb,neg\n"), Choice("many_to_one", "text", "label"))
    nums = table_of("x,y\n" + "1,a\n2,b\n" * 5 + "oops,a\n")
    with pytest.raises(DataError, match="line 12: column 'x' is 'oops', not a number"):
        check_choice(nums, Choice("one_to_one", None, "y", ["x"]))


# ---- training -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained():
    """The reviews example, two cells, a handful of steps (seconds)."""
    name, raw = EXAMPLES["reviews"].make()
    t = read_table(raw, name)
    task = make_task(t, propose(t), cells=["GRU", "LSTM"], size="small")
    splits = task.splits_from_table(t)
    events = []
    result = train_run(task, splits, ["GRU", "LSTM"], "small", 12, 20, events.append)
    return t, raw, task, splits, result, events


def test_tiny_training_run_uses_core_train(trained):
    _t, _raw, task, _splits, result, events = trained
    assert set(result.runs) == {"GRU", "LSTM"} and result.served in result.runs
    steps = [e for e in events if e["event"] == "step"]
    assert {e["cell"] for e in steps} == {"GRU", "LSTM"} and max(e["step"] for e in steps) == 12
    assert any(e["event"] == "epoch" and "accuracy" in e["val"] for e in events)  # validation points for the curve
    for run in result.runs.values():
        assert run.stopped == "max steps" and run.model.rnn.cell == {"GRU": "gru", "LSTM": "lstm"}[run.label]
    out = task.predict(result.runs[result.served].model, "the plot was not good")
    assert out["label"] in ("positive", "negative") and 0 <= out["prob"] <= 1


def test_budget_limits(monkeypatch):
    from core.yourdata import build

    name, raw = EXAMPLES["points"].make()
    t = read_table(raw, name)
    task = make_task(t, propose(t))
    splits = task.splits_from_table(t)
    with pytest.raises(BudgetError, match="Steps"):
        train_run(task, splits, ["GRU"], "small", 10**6)
    with pytest.raises(BudgetError, match="Unknown cell"):
        train_run(task, splits, ["CNN"], "small", 10)
    with monkeypatch.context() as m:
        m.setattr(build, "MAX_PARAMS", 4000)  # the GRU (3,522) fits, the LSTM (4,674: four gates) does not
        with pytest.raises(BudgetError, match="parameters"):
            train_run(task, splits, ["LSTM", "GRU"], "small", 10)  # the largest first: every cell is checked
    t0 = time.time()
    res = train_run(task, splits, ["tanh-RNN"], "small", 3000, seconds=0.5)
    assert res.runs["tanh-RNN"].stopped == "time budget" and time.time() - t0 < 10


def test_queue_one_at_a_time_and_places():
    q = TrainQueue()
    inside, seen = threading.Event(), []
    release = threading.Event()

    def first():
        with q.turn():
            inside.set()
            release.wait(10)

    th = threading.Thread(target=first)
    th.start()
    assert inside.wait(5)

    def second():
        with q.turn(on_wait=lambda place: seen.append(place) or release.set(), poll=0.05):
            seen.append("turn")

    th2 = threading.Thread(target=second)
    th2.start()
    th.join(5)
    th2.join(5)
    assert seen[0] == 1 and seen[-1] == "turn" and not q.busy()


# ---- take it home -------------------------------------------------------------------------------------------------

def test_exported_plugin_trains_with_core_train_and_the_app_serves_it(trained, tmp_path, monkeypatch):
    from core.weights import load_model
    from core.yourdata.kinds import task_for_spec

    table, raw, task, _splits, result, _ = trained
    named = task_for_spec(task.spec, name="yd_reviews", title="Yd reviews")
    reg = export_and_discover(named, table, result, raw, tmp_path, "ydtasks", monkeypatch)
    tasks_dir = tmp_path / "ydtasks"
    assert sorted(p.name for p in (tasks_dir / "yd_reviews").iterdir()) == [
        "README.md", "__init__.py", "__main__.py", "page.py", "spec.json"]
    assert not reg.errors and check_task(reg.get("yd_reviews")) == []
    plugin = reg.get("yd_reviews")
    # the weights from the page load into the plugin and answer as the page's model did
    served = load_model(plugin, tmp_path / "weights" / "yd_reviews")
    card = served.runtime.card  # what tests/test_contract.py asks of committed weights
    assert card.name == "yd_reviews" and card.shape == plugin.shape and not card.dataset.synthetic
    assert "core.train yd_reviews" in card.training.command and plugin.recipe.metric in card.metrics
    assert card.comparison[card.served_variant].test == card.metrics and card.history[result.served]
    page_model = result.runs[result.served].model
    assert plugin.predict(served, "the film was good")["probs"] == pytest.approx(
        task.predict(page_model, "the film was good")["probs"], abs=1e-5)
    assert load_model(plugin, tmp_path / "weights" / "yd_reviews", variant=[c for c in result.runs
                                                                             if c != result.served][0])
    # core.train trains it from the person's file format
    card, out = retrain_exported("yd_reviews", tmp_path, "ydtasks")
    assert card["served_variant"] == "GRU" and card["dataset"]["files"][0]["path"] == "reviews.csv"
    assert load_model(plugin, out).runtime.labels == ("negative", "positive")


def test_plugin_source_holds_no_string_of_the_person(tmp_path):
    evil = 'te"""xt\\'
    raw = f"{evil},label\n" + "".join(f"film {i},{'a' if i % 2 else 'b'}\n" for i in range(20))
    t = read_table(raw.encode(), "../../etc/pa ss'wd.csv")
    task = make_task(t, Choice("many_to_one", evil, "label"))
    files = plugin_files(type(task)(task.spec, name="evil_names", title="Evil names"), t)
    assert "evil_names-data/pa_ss_wd.csv" in files
    init = files["evil_names/__init__.py"].decode()
    assert evil not in init and "etc" not in init
    compile(init, "x", "exec")
    assert json.loads(files["evil_names/spec.json"])["choice"]["input"] == evil


def test_plugin_page_renders_with_the_downloaded_weights(trained, tmp_path):
    from core.yourdata.kinds import task_for_spec

    table, raw, task, _splits, result, _ = trained
    named = task_for_spec(task.spec, name="yd_page", title="Yd page")
    at = render_exported_page(named, table, result, raw, tmp_path, "ydpages", TIMEOUT)
    assert not at.exception and not at.error
    assert any("%" in m.value and "**" in m.value for m in at.markdown)  # the answer to the first demo


# ---- the page in AppTest ------------------------------------------------------------------------------------------

def _page():
    from core.ui.pages.your_data import render

    render()


def _texts(at) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [w.value for w in at.warning]
                     + [i.value for i in at.info] + [s.value for s in at.success]).replace("\\", "")  # md escapes


def test_page_example_train_try_download():
    at = AppTest.from_function(_page, default_timeout=TIMEOUT)
    at.session_state["yd_steps"] = 10
    at.session_state["yd_size"] = "small"
    at.run()
    assert not at.exception and "Pick an example" in _texts(at)
    at.button(key="yd_ex_points").click().run()
    assert not at.exception and "Proposed: one-to-one" in _texts(at) and "no recurrence" in _texts(at)
    at.button(key="yd_train").click().run()
    assert not at.exception and not at.error
    assert "Best on the held-out rows" in _texts(at)
    next(t for t in at.text_input if t.label.startswith("Your input")).set_value("0.1, 0.2").run()
    assert not at.exception and any(m.value.startswith("**inside**") or m.value.startswith("**outside**")
                                    for m in at.markdown)
    assert [m.label for m in at.metric][:1] == ["loss on this input"]  # the Inspect tab ran on it
    downloads = at.get("download_button")
    assert len(downloads) == 2


def test_page_bad_paste_and_a_busy_server():
    from core.ui.pages.your_data import train_queue

    at = AppTest.from_function(_page, default_timeout=TIMEOUT)
    at.run()
    at.text_area(key="yd_paste").set_value("text,label\na b,pos\nc,d,e\nf g,neg\nh i,pos\n").run()
    assert not at.exception and "line 3: 3 columns" in _texts(at)
    at.text_area(key="yd_paste").set_value("text,label\n" + "same film,pos\n" * 12).run()
    assert not at.exception and "only one value" in _texts(at)
    holding, release = threading.Event(), threading.Event()

    def hold():
        with train_queue().turn():
            holding.set()
            release.wait(30)

    th = threading.Thread(target=hold)
    th.start()
    try:
        assert holding.wait(5)
        at.button(key="yd_ex_reviews").click().run()
        assert "someone is training right now" in _texts(at)
    finally:
        release.set()
        th.join(5)


def test_zip_files_are_valid(trained):
    from core.yourdata.export import plugin_zip, weights_zip

    table, raw, task, _s, result, _ = trained
    for blob in (plugin_zip(task, table), weights_zip(task, result, raw)):
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            assert z.testzip() is None and z.namelist()


def test_no_module_imports_streamlit():
    import subprocess

    code = ("import sys, core.yourdata.build, core.yourdata.export, core.yourdata.task; "
            "print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("key", list(EXAMPLES))
def test_every_shape_meets_the_plugin_contract_on_its_sample(key):
    """What tests/test_contract.py asks of a plugin, for each shape as exported: the synthetic data (the sample
    of rows in spec.json) trains a step, every demo answers, the inspector runs, empty input is a clear message."""
    from core.inspect import inspect_model
    from core.task import BadInput
    from core.train import to_device

    name, raw = EXAMPLES[key].make()
    t = read_table(raw, name)
    task = make_task(t, propose(t))
    assert check_task(task) == []
    splits = task.synthetic_data(0)
    torch_model = task.build_model(dict(task.config), splits.meta)
    batch = to_device(next(iter(task.batches(splits.train, 8, shuffle=True))), "cpu")
    loss = task.loss(torch_model, batch)
    loss.backward()
    assert loss.item() > 0 and task.recipe.metric in task.evaluate(torch_model.eval(), splits.val)
    for demo in task.demos():
        assert isinstance(task.predict(torch_model, demo.input), dict)
    ins = inspect_model(torch_model, lambda m: task.inspect_loss(m, task.demos()[0].input))
    assert not ins.hidden.empty
    try:
        task.predict(torch_model, "")
    except BadInput as exc:
        assert str(exc)
