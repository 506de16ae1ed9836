"""Hostile input, broken weights and misbehaving plugins: the app answers clearly and keeps serving (issue 13).

Every discovered task (tasks/ and the ``rnnlab.tasks`` entry points), parametrized by name:

  predict        each item of the fixed hostile corpus (tests/hostile_corpus.py) and a hypothesis property test
                 -> a dict, or core.task.BadInput with a non-empty message; never another exception, never a hang
                 (each call runs in a thread: CPU seconds of that thread are bounded, so a loaded machine does not
                 make the test flaky, and a wall-clock limit catches real hangs)
  settings       odd Python values (inf, 10**400, bytes, nested lists ...) in every field of a demo's settings dict
  uploads        every page with an uploader: wrong type with the right extension, truncated, zero bytes,
                 decompression bombs, malformed MIDI headers, 100,000 notes or none, 50 MB -- size limits checked
                 before any decoder runs (the decoders are replaced by spies that fail the test if called), and
                 each call adds at most RNNLAB_HOSTILE_MEM_MB (200) MB of peak memory (the hosted app has ~690 MB)
  pages          AppTest: each task page with hostile URL query parameters (q, tab, the bound widget keys) and a
                 hostile upload shows no exception, no guarded crash, and no live HTML/markdown from the input
  weights        missing / truncated / bit-flipped / lying checksum / mismatched / unreadable card: that page shows
                 an error naming the file and the command that fixes it; the other pages still render
  plugins        a plugin whose predict raises, returns the wrong type, whose demos() or inspect_loss raise: the
                 failure stays on its own page and no exception text (nor a host path in it) reaches the user

Models: the trained weights where they load, else an untrained model of the same form (hostile_corpus.make_weights)
-- the code paths are the same. Environment: RNNLAB_HOSTILE_CPU_S (default 5) CPU seconds per predict call,
RNNLAB_HOSTILE_WALL_S (default 60) wall seconds before a call counts as hung.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import copy
import functools
import importlib
import importlib.util
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import hostile_corpus as H
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.registry import Registry, discover
from core.task import BadInput, Demo, Recipe, Splits, Task
from core.weights import CARD_FILE, WEIGHTS_FILE, WeightsError, load_model, sha256_file

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "streamlit_app.py"
REGISTRY = discover()
TASKS: dict[str, Task] = dict(REGISTRY.tasks)
NAMES = sorted(TASKS)
TEXT_TASKS = [n for n in NAMES if TASKS[n].primary_input == "text"]
# How each task takes an uploaded file, read off its predict() input format (checked against the page sources).
UPLOADS = {"music": "primer_midi", "video": "gif", "image_classification": "image", "captioning": "image"}
VALID_UPLOAD = {"music": "valid_midi", "video": "valid_gif", "image_classification": "valid_png",
                "captioning": "valid_png"}
UPLOAD_TASKS = [n for n in NAMES if n in UPLOADS]
CPU_LIMIT = float(os.environ.get("RNNLAB_HOSTILE_CPU_S", "5"))
MEM_LIMIT_MB = float(os.environ.get("RNNLAB_HOSTILE_MEM_MB", "200"))  # peak RSS one request may add
WALL_LIMIT = float(os.environ.get("RNNLAB_HOSTILE_WALL_S", "60"))
CRASH = "Something went wrong"  # what core.ui's guards show for an unexpected exception (a bug behind it)
HOST_PATHS = ("/work/", "/root/", "/home/", "/tmp/", "site-packages", str(REPO))


# ---- helpers ----------------------------------------------------------------------------------------------------

@functools.cache
def model_for(name: str):
    """The task's trained model where it loads, else an untrained one built from its synthetic data's meta."""
    task = TASKS[name]
    try:
        return load_model(task)
    except WeightsError:
        torch.manual_seed(0)
        splits = task.synthetic_data(0)
        return task.build_model(copy.deepcopy(task.config), splits.meta).eval()


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for ln in f:
                if ln.startswith(field + ":"):
                    return int(ln.split()[1]) / 1024
    except OSError:
        pass
    return None


def _reset_peak() -> float | None:
    """Reset the process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0); returns that RSS in MiB."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    return _status_mb("VmRSS")


_WORKER: list = []  # one long-lived worker thread: a new thread per call would build a new OpenMP pool each time


def _worker() -> concurrent.futures.ThreadPoolExecutor:
    if not _WORKER:
        _WORKER.append(concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hostile"))
    return _WORKER[0]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """As the server runs (core.ui.server.configure_torch): one intra-op thread per request."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def bounded(fn, *args, cpu_limit: float = CPU_LIMIT, wall_limit: float = WALL_LIMIT) -> dict:
    """Run fn(*args) on the worker thread. Returns {"value" | "error", "cpu", "wall", "mem"} (mem: MiB of peak RSS
    the call added, None where it cannot be read); fails the test if it hangs (the stuck worker is abandoned)."""
    box: dict[str, Any] = {}
    rss0 = _reset_peak()

    def work():
        t0 = time.thread_time()
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 -- judged by the caller
            box["error"] = exc
        box["cpu"] = time.thread_time() - t0

    w0 = time.perf_counter()
    future = _worker().submit(work)
    try:
        future.result(timeout=wall_limit)
    except concurrent.futures.TimeoutError:
        _WORKER.clear()  # the hung call keeps its thread; later calls get a fresh one
        pytest.fail(f"still running after {wall_limit:.0f} s: a hang")
    box["wall"] = time.perf_counter() - w0
    peak = _status_mb("VmHWM") if rss0 is not None else None
    box["mem"] = None if peak is None else peak - rss0
    return box


def judge(box: dict, what: str, cpu_limit: float = CPU_LIMIT) -> str | None:
    """None if the call answered properly (a dict, or BadInput with a message, within the CPU bound)."""
    if "error" in box:
        exc = box["error"]
        if not isinstance(exc, BadInput):
            return f"{what}: raised {type(exc).__name__}: {str(exc)[:160]}"
        if not str(exc).strip():
            return f"{what}: BadInput with an empty message"
    elif not isinstance(box.get("value"), dict):
        return f"{what}: returned {type(box.get('value')).__name__}, not a dict"
    if box["cpu"] > cpu_limit:
        return f"{what}: took {box['cpu']:.1f} s of CPU (limit {cpu_limit:g} s)"
    if box.get("mem") is not None and box["mem"] > MEM_LIMIT_MB:
        return f"{what}: added {box['mem']:.0f} MB of peak memory (limit {MEM_LIMIT_MB:g} MB per request)"
    return None


def check_predict(name: str, inputs, cpu_limit: float = CPU_LIMIT) -> list[str]:
    task, model = TASKS[name], model_for(name)
    problems = []
    for label, x in inputs:
        p = judge(bounded(task.predict, model, x), f"predict({label})", cpu_limit)
        if p:
            problems.append(p)
    return problems


def demo_dicts(name: str) -> list[dict]:
    return [d.input for d in TASKS[name].demos() if isinstance(d.input, dict)]


def upload_input(name: str, data: bytes) -> dict:
    """What the page passes to predict for an upload: the demo's settings (if any) with the file under its key."""
    base = demo_dicts(name)
    return {**(base[0] if base else {}), UPLOADS[name]: data}


# ---- predict: the text corpus -----------------------------------------------------------------------------------

# Non-text tasks get a cross-section of the corpus (a string is not their input, but predict must still answer).
SHORT_CORPUS = ["empty", "whitespace", "one_mb_words", "long_token_100k", "control_chars", "nul_bytes",
                "zero_width_only", "rtl_override", "emoji_only", "combining_zalgo", "lone_surrogate", "format_strings",
                "numbers_as_text", "note_names", "many_notes", "language_and_start", "json_like", "xss_0", "xss_1",
                "md_0", "md_11", "unicode_Cc", "unicode_Cf", "unicode_Co", "unicode_Nd", "unicode_Zs"]


@pytest.mark.parametrize("name", NAMES)
def test_text_corpus_predict(name):
    """Every task's predict takes any string: a dict or a BadInput (text tasks read it; the others must refuse or
    parse it, e.g. music reads 'C4 E4 G4' and names_generate 'Russian K')."""
    corpus = H.TEXTS if name in TEXT_TASKS else [(i, H.TEXT_BY_ID[i]) for i in SHORT_CORPUS if i in H.TEXT_BY_ID]
    problems = check_predict(name, corpus)
    assert not problems, "\n".join(problems)


INSPECT_IDS = ["empty", "whitespace", "one_mb_words", "one_mb_single_char", "long_token_100k", "control_chars",
               "zero_width_only", "bidi_marks", "emoji_only", "combining_zalgo", "xss_1", "md_0", "unicode_Mn",
               "unicode_Cf", "unicode_Zl"]


@pytest.mark.parametrize("name", TEXT_TASKS)
def test_text_corpus_inspect(name):
    """The Inspect tab runs inspect_model(task.inspect_loss) on what the user typed: an Inspection or BadInput."""
    from core.inspect import Inspection, inspect_model

    task, model = TASKS[name], model_for(name)
    problems = []
    for tid in INSPECT_IDS:
        text = H.TEXT_BY_ID[tid]
        box = bounded(lambda t=text: inspect_model(model, lambda m: task.inspect_loss(m, t)))
        if "error" not in box and not isinstance(box["value"], Inspection):
            problems.append(f"inspect({tid}): returned {type(box['value']).__name__}")
        elif p := judge(box if "error" in box else {**box, "value": {}}, f"inspect({tid})"):
            problems.append(p)
    assert all(p.grad is None for p in model.parameters()), "the inspector left .grad on the shared model"
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", TEXT_TASKS)
def test_inspect_lone_surrogate(name):
    """A lone surrogate (only a Python caller can send one; a browser sends valid UTF-8) in the inspector's step
    labels: pyarrow cannot encode it, so core.inspect must replace it before building its DataFrames."""
    from core.inspect import inspect_model

    task, model = TASKS[name], model_for(name)
    box = bounded(lambda: inspect_model(model, lambda m: task.inspect_loss(m, H.TEXT_BY_ID["lone_surrogate"])))
    assert "error" not in box or isinstance(box["error"], BadInput), repr(box.get("error"))


@pytest.mark.parametrize("name", TEXT_TASKS)
@settings(max_examples=25, deadline=2000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(text=st.text())
def test_text_property(name, text):
    task, model = TASKS[name], model_for(name)
    try:
        out = task.predict(model, text)
    except BadInput as exc:
        assert str(exc).strip(), "BadInput needs a message for the user"
        return
    assert isinstance(out, dict)


# ---- predict: odd Python values and hostile settings ----------------------------------------------------------

ODD_VALUES: list[tuple[str, Any]] = [
    ("None", None), ("0", 0), ("-1", -1), ("True", True), ("1.5", 1.5), ("nan", float("nan")),
    ("inf", float("inf")), ("-inf", float("-inf")), ("1e308", 1e308), ("10**400", 10 ** 400),
    ("-10**400", -(10 ** 400)), ("2**63", 2 ** 63), ("-2**63-1", -(2 ** 63) - 1), ("complex", 1j),
    ("'nan'", "nan"), ("'1e999'", "1e999"), ("' 5 '", " 5 "), ("''", ""), ("'<script>'", H.XSS[0]),
    ("bytes", b"\x00\xff"), ("[]", []), ("[1, 2]", [1, 2]), ("[[60]]", [[60]]), ("{}", {}), ("{'a': 1}", {"a": 1}),
    ("object", object()), ("list of 100k", list(range(100_000))), ("str 1 MB", "C4 " * 350_000),
]
TOP_LEVEL: list[tuple[str, Any]] = ODD_VALUES + [
    ("{'text': None}", {"text": None}), ("{'text': 5}", {"text": 5}), ("{'text': 'Adam', 'word': -1}",
                                                                      {"text": "Adam", "word": -1}),
    ("{'text': 'Adam', 'word': 10**9}", {"text": "Adam", "word": 10 ** 9}), ("{'name': ['x']}", {"name": ["x"]}),
    ("{'gif': None}", {"gif": None}), ("{'gif': 'text'}", {"gif": "text"}), ("{'primer_midi': 5}", {"primer_midi": 5}),
    ("{'primer_midi': 'MThd'}", {"primer_midi": "MThd"}), ("{1: 2}", {1: 2}), ("tuple", ("a", "b")),
    ("bytearray", bytearray(b"GIF89a")), ("memoryview", memoryview(b"MThd")),
]


@pytest.mark.parametrize("name", NAMES)
def test_odd_python_values(name):
    """predict(None), predict(10**400), predict({"gif": "text"}) ...: a dict or a BadInput, nothing else."""
    problems = check_predict(name, TOP_LEVEL)
    assert not problems, "\n".join(problems)


SETTINGS_TASKS = [n for n in NAMES if demo_dicts(n)]


@pytest.mark.parametrize("name", SETTINGS_TASKS)
def test_hostile_settings(name):
    """Each field of each demo's settings dict replaced by each odd value (and the field removed)."""
    inputs = []
    for base in demo_dicts(name)[:1]:
        if isinstance(base.get("steps"), int):
            base = {**base, "steps": min(base["steps"], 8)}  # generation length drives the cost, not the checks
        for key in base:
            inputs.append((f"{key} removed", {k: v for k, v in base.items() if k != key}))
            for label, v in ODD_VALUES:
                inputs.append((f"{key}={label}", {**base, key: v}))
    problems = check_predict(name, inputs)
    assert not problems, "\n".join(problems)


JSONISH = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=40),
                    st.lists(st.integers(min_value=-10, max_value=200), max_size=12), st.binary(max_size=40))


@pytest.mark.parametrize("name", SETTINGS_TASKS)
@settings(max_examples=25, deadline=2000, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(data=st.data())
def test_settings_property(name, data):
    task, model = TASKS[name], model_for(name)
    base = demo_dicts(name)[0]
    if isinstance(base.get("steps"), int):
        base = {**base, "steps": min(base["steps"], 8)}
    changes = data.draw(st.dictionaries(st.sampled_from(sorted(base)), JSONISH, max_size=3))
    try:
        out = task.predict(model, {**base, **changes})
    except BadInput as exc:
        assert str(exc).strip()
        return
    assert isinstance(out, dict)


# ---- uploads ----------------------------------------------------------------------------------------------------

def _page_source(task) -> str:
    spec = importlib.util.find_spec(task.page.partition(":")[0])
    return Path(spec.origin).read_text(encoding="utf-8") if spec and spec.origin else ""


@pytest.mark.parametrize("name", NAMES)
def test_every_uploader_is_covered(name):
    """A page with st.file_uploader must be listed in UPLOADS (the key its predict reads), so it gets the bytes."""
    if "file_uploader" in _page_source(TASKS[name]):
        assert name in UPLOADS, f"{name}'s page takes uploads: add the predict key it reads to UPLOADS"


FILE_CASES = [(n, f) for n in UPLOAD_TASKS for f in H.FILES if f not in H.BIG_FILES]


@functools.cache
def file_bytes(fid: str) -> bytes:
    assert fid not in H.BIG_FILES, "50 MB blobs are made per test and dropped, never cached"
    return H.FILES[fid].make()


@pytest.mark.parametrize("name,fid", FILE_CASES, ids=[f"{n}-{f}" for n, f in FILE_CASES])
def test_hostile_upload(name, fid):
    """A dict or a clear BadInput; a small file costs little (a 44-byte MIDI must not take seconds)."""
    data = file_bytes(fid)
    limit = 1.0 if len(data) < 64_000 else 3.0
    box = bounded(TASKS[name].predict, model_for(name), upload_input(name, data))
    problem = judge(box, f"{fid} ({len(data):,} bytes: {H.FILES[fid].what})", cpu_limit=limit)
    assert problem is None, problem


@pytest.mark.parametrize("name", UPLOAD_TASKS)
def test_valid_upload_works(name):
    """The control: a small valid file of the right type gives an answer (a suite that refuses all proves nothing)."""
    fid = VALID_UPLOAD.get(name)
    if fid is None:
        pytest.skip("no valid control file for this task")
    out = TASKS[name].predict(model_for(name), upload_input(name, H.VALID_FILES[fid].make()))
    assert isinstance(out, dict)


@pytest.mark.parametrize("name", UPLOAD_TASKS)
def test_size_limit_before_decoding(name, monkeypatch):
    """50 MB with a valid signature: refused with a message naming the size, and no decoder ever sees it."""
    import mido
    import PIL.Image
    import pretty_midi

    def spy(*a, **k):
        raise AssertionError("a decoder was called on a 50 MB upload: check the size before decoding")

    monkeypatch.setattr(PIL.Image, "open", spy)
    monkeypatch.setattr(mido, "MidiFile", spy)
    monkeypatch.setattr(pretty_midi, "PrettyMIDI", spy)
    for fid in sorted(H.BIG_FILES):
        data = H.FILES[fid].make()
        box = bounded(TASKS[name].predict, model_for(name), upload_input(name, data), cpu_limit=1.0)
        del data
        assert isinstance(box.get("error"), BadInput), f"{fid}: {box.get('error') or 'accepted'}"
        assert "MB" in str(box["error"]), f"{fid}: the message should name the limit: {box['error']}"
        assert box["cpu"] < 1.0, f"{fid}: refusing 50 MB took {box['cpu']:.1f} s of CPU"


@pytest.mark.parametrize("name", UPLOAD_TASKS)
def test_no_external_interpreter_runs_on_an_upload(name, monkeypatch):
    """PostScript named .png: Pillow renders EPS by running Ghostscript. An upload must never start an external
    interpreter (a long history of remote code execution); only the formats the page offers may be decoded."""
    import PIL.EpsImagePlugin

    def spy(*a, **k):
        raise AssertionError("Ghostscript was started on an upload: restrict Image.open(formats=[...])")

    monkeypatch.setattr(PIL.EpsImagePlugin, "Ghostscript", spy)
    monkeypatch.setattr(PIL.EpsImagePlugin, "has_ghostscript", lambda: True)
    box = bounded(TASKS[name].predict, model_for(name), upload_input(name, H.FILES["eps_as_png"].make()))
    assert judge(box, "EPS upload") is None, judge(box, "EPS upload")


# ---- pages (AppTest) -----------------------------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _fresh_caches():
    import streamlit as st_

    st_.cache_resource.clear()
    st_.cache_data.clear()
    yield


@functools.cache
def _weights_dir(name: str) -> Path:
    """A folder with loadable weights for the task: its own if they load, else fresh untrained ones (tmp)."""
    task = TASKS[name]
    try:
        load_model(task)
        return Path(task.weights_path())
    except WeightsError:
        import tempfile

        root = tempfile.mkdtemp(prefix=f"rnnlab-hostile-{name}-")
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        folder = Path(root) / name
        H.make_weights(task, folder)
        return folder


def task_copy(name: str, folder: Path | None = None) -> Task:
    """A shallow copy of the registered task whose weights live in ``folder`` (the registry's object is untouched)."""
    t = copy.copy(TASKS[name])
    t.weights_dir = folder if folder is not None else _weights_dir(name)
    return t


def page_script(task):
    import importlib as il

    mod, _, fn = task.page.partition(":")
    getattr(il.import_module(mod), fn)(task)


def render(task, query: dict | None = None, state: dict | None = None, timeout: float = 180):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(page_script, args=(task,), default_timeout=timeout)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    for k, v in (state or {}).items():
        at.session_state[k] = v
    return at.run()


def walk(node):
    yield node
    for child in (getattr(node, "children", None) or {}).values():
        yield from walk(child)


MARKDOWN_TYPES = {"markdown", "caption", "error", "warning", "info", "success", "title", "header", "subheader",
                  "metric", "button", "expander", "tab", "toast"}


def elements(at) -> list:
    return [n for n in walk(at._tree) if hasattr(n, "proto")]


def all_text(at) -> str:
    """Every string the page sends to the browser (protobuf text of every element: labels, bodies, table cells)."""
    return "\n".join(str(n.proto) for n in elements(at))


def page_problems(at, payloads: list[str] = ()) -> list[str]:
    out = [f"exception element: {e.value[:300]}" for e in at.exception]
    for e in list(at.error) + list(at.warning):
        if CRASH in e.value:
            out.append(f"a guarded crash (a bug behind it): {e.value[:200]}")
    for n in elements(at):
        kind = getattr(n, "type", "")
        body = str(n.proto)
        live_html = kind == "html" or (kind in ("markdown", "caption") and getattr(n.proto, "allow_html", False))
        for p in payloads:
            for piece in ("<img src=x", "<script>", "<svg onload", "<style>", "<iframe"):
                if piece in p and piece in (n.proto.body if live_html else ""):
                    out.append(f"raw HTML from the input in st.{kind}: {piece!r}")
            if kind in MARKDOWN_TYPES and "](javascript:" in p and "](javascript:" in body:
                out.append(f"a live javascript: link from the input in st.{kind}")
    return out


HOSTILE_QUERIES = [
    {"q": H.QUERY_VALUES[0] + " " + H.QUERY_VALUES[1]},
    {"q": H.QUERY_VALUES[2], "tab": "Inspect"},
    {"q": H.QUERY_VALUES[3], "tab": "<script>alert(1)</script>"},
]


@pytest.mark.parametrize("name", NAMES)
def test_page_with_hostile_query(name):
    """The URL is attacker-controlled: ?q=<html/markdown/odd unicode/5000 chars>&tab=... on every task page."""
    task = task_copy(name)
    problems = []
    for query in HOSTILE_QUERIES:
        at = render(task, query)
        problems += [f"{query!r:.80}: {p}" for p in page_problems(at, [query["q"]])]
    assert not problems, "\n".join(problems)


BOUND_KEYS = ["video_seed", "video_speed", "video_occlusion", "video_noise", "video_digits"] + \
    [f"names_generate_{k}" for k in ("lang", "start", "temp", "seed", "n")]


@pytest.mark.parametrize("name", NAMES)
def test_page_with_hostile_widget_params(name):
    """Widgets bound to the URL (?video_seed=..., ?temp=..., ?lang=...) given values no widget would produce."""
    task = task_copy(name)
    problems = []
    for value in ("-1e999", "99999999999999999999999", H.XSS[1], "\u202e\x00"):
        at = render(task, {k: value for k in BOUND_KEYS} | {"q": value})
        problems += [f"{value!r}: {p}" for p in page_problems(at, [value])]
    assert not problems, "\n".join(problems)


UPLOAD_PAGE = {"music": ("music_source", "continue a MIDI file"), "video": ("video_source", "upload a GIF"),
               "image_classification": ("image_classification_source", "upload"), "captioning": ("captioning_source", "upload")}
PAGE_FILES = ["zero_bytes", "png_as_gif", "truncated_gif", "truncated_midi", "midi_bad_header", "midi_no_notes",
              "gif_pixel_bomb", "png_bomb_as_gif", "eps_as_png", "blob_50mb_gif"]


@pytest.mark.parametrize("name", [n for n in UPLOAD_TASKS if n in UPLOAD_PAGE])
def test_page_with_hostile_upload(name):
    """Through the page's own file uploader: a clear warning each time, never a crash."""
    key, option = UPLOAD_PAGE[name]
    task = task_copy(name)
    problems = []
    for fid in PAGE_FILES:
        hf = H.FILES[fid]
        at = render(task, state={key: option})
        if not at.file_uploader:
            problems.append(f"{fid}: no file uploader after choosing {option!r}")
            continue
        up = at.file_uploader[0]
        ext = (up.allowed_type or [".bin"])[0]  # wrong content, right extension: the browser checks only names
        up.set_value((f"upload{ext}", hf.make(), "application/octet-stream"))
        at.run()
        problems += [f"{fid}: {p}" for p in page_problems(at)]
        refused = "error" in bounded(task.predict, model_for(name), upload_input(name, file_bytes(fid)
                                                                               if fid not in H.BIG_FILES else b""))
        if refused and not at.warning and not at.error:
            problems.append(f"{fid}: predict refuses {hf.what}, but the page shows no warning or error")
    assert not problems, "\n".join(problems)


# ---- weights faults -------------------------------------------------------------------------------------------------

def _flip(path: Path) -> None:
    b = bytearray(path.read_bytes())
    mid = len(b) // 2
    b[mid:mid + 64] = bytes(x ^ 0xFF for x in b[mid:mid + 64])
    path.write_bytes(bytes(b))


def _edit_card(folder: Path, fn) -> None:
    card = json.loads((folder / CARD_FILE).read_text())
    fn(card)
    (folder / CARD_FILE).write_text(json.dumps(card))


def _mismatch(folder: Path, name: str) -> None:
    """Weights of a differently shaped model, with a card that tells the truth about their checksum."""
    from core.weights import sha256_file

    task = TASKS[name]
    cfg = copy.deepcopy(task.config)
    for k in ("hidden_size", "hidden", "embed_size"):
        if isinstance(cfg.get(k), int):
            cfg[k] = cfg[k] + 3
            break
    other = folder.parent / "other"
    H.make_weights(task, other, config=cfg)
    shutil.copy(other / WEIGHTS_FILE, folder / WEIGHTS_FILE)
    _edit_card(folder, lambda c: c.update(weights_sha256=sha256_file(folder / WEIGHTS_FILE)))


FAULTS = {
    "weights_missing": lambda f, n: (f / WEIGHTS_FILE).unlink(),
    "card_missing": lambda f, n: (f / CARD_FILE).unlink(),
    "folder_missing": lambda f, n: shutil.rmtree(f),
    "weights_truncated": lambda f, n: (f / WEIGHTS_FILE).write_bytes((f / WEIGHTS_FILE).read_bytes()[:1000]),
    "weights_empty": lambda f, n: (f / WEIGHTS_FILE).write_bytes(b""),
    "weights_bitflip": lambda f, n: _flip(f / WEIGHTS_FILE),
    "card_lies_about_checksum": lambda f, n: _edit_card(f, lambda c: c.update(weights_sha256="0" * 64)),
    "weights_mismatched": _mismatch,
    "weights_not_safetensors_checksum_matches": lambda f, n: (  # a pickle whose checksum is on the card: still refused
        (f / WEIGHTS_FILE).write_bytes(b"\x80\x04K\x01." * 100),
        _edit_card(f, lambda c: c.update(weights_sha256=sha256_file(f / WEIGHTS_FILE)))),
    "card_not_json": lambda f, n: (f / CARD_FILE).write_text("{not json"),
    "card_not_utf8": lambda f, n: (f / CARD_FILE).write_bytes(b"\xff\xfe\x00garbage"),
    "card_without_config": lambda f, n: _edit_card(f, lambda c: c.pop("config")),
    "card_config_unbuildable": lambda f, n: _edit_card(f, lambda c: c.update(config={"no_such_field": 1})),
    "card_is_a_list": lambda f, n: (f / CARD_FILE).write_text("[1, 2, 3]"),
}
MISSING = {"weights_missing", "card_missing", "folder_missing"}
FAULT_TASK = "sentiment" if "sentiment" in TASKS else (TEXT_TASKS or NAMES)[0]


def faulty_copy(name: str, fault: str, tmp: Path) -> Task:
    folder = tmp / name
    H.make_weights(TASKS[name], folder)
    FAULTS[fault](folder, name)
    return task_copy(name, folder)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_weights_fault_is_a_clear_message(fault, tmp_path):
    task = faulty_copy(FAULT_TASK, fault, tmp_path)
    at = render(task)
    assert not at.exception, [e.value for e in at.exception]
    shown = " ".join(e.value for e in list(at.error) + list(at.warning))
    want = WEIGHTS_FILE if fault.startswith("weights") or fault == "card_lies_about_checksum" else CARD_FILE
    assert want in shown, f"the message should name {want}: {shown[:300]!r}"
    assert any(c.value == task.train_command() for c in at.code), "the command that fixes it is not shown"
    assert CRASH not in shown
    if fault not in MISSING:
        assert at.error, "a broken weights file is an error, not a hint"


@pytest.fixture
def router(monkeypatch):
    """Point the app's discovery at a registry the test builds; returns the registry to fill."""
    import core.registry

    reg = Registry()
    monkeypatch.setattr(core.registry, "discover", lambda *a, **k: reg)
    return reg


def goto(url_path: str, state: dict | None = None, timeout: float = 180):
    from streamlit.testing.v1 import AppTest
    from streamlit.util import calc_hash

    at = AppTest.from_file(str(APP), default_timeout=timeout).run()
    at._page_hash = calc_hash(url_path)  # st.Page's script hash is the hash of its url_path
    for k, v in (state or {}).items():
        at.session_state[k] = v
    return at.run()


def test_broken_weights_stay_on_their_page(router, tmp_path):
    """Two tasks with broken weights and one healthy: each broken page names its file and the fix; the healthy page
    and Home render normally."""
    from core.ui.pages import task_url_path

    healthy = next(n for n in TEXT_TASKS if n != FAULT_TASK) if len(TEXT_TASKS) > 1 else None
    other_broken = next((n for n in NAMES if n not in (FAULT_TASK, healthy)), None)
    broken = {FAULT_TASK: faulty_copy(FAULT_TASK, "weights_truncated", tmp_path / "a")}
    if other_broken:
        broken[other_broken] = faulty_copy(other_broken, "card_lies_about_checksum", tmp_path / "b")
    for name, t in broken.items():
        router.add(t, f"tests/{name}")
    if healthy:
        router.add(task_copy(healthy), f"tests/{healthy}")
    for name, t in broken.items():
        at = goto(task_url_path(name))
        assert not at.exception, [e.value for e in at.exception]
        shown = " ".join(e.value for e in at.error)
        assert WEIGHTS_FILE in shown and "cannot be used" in shown, shown[:300]
        assert any(c.value == t.train_command() for c in at.code)
    if healthy:
        at = goto(task_url_path(healthy))
        assert not at.exception and not at.error, [e.value for e in list(at.exception) + list(at.error)]
        assert at.title[0].value == TASKS[healthy].title
    at = goto("home")
    assert not at.exception


# ---- misbehaving plugins ----------------------------------------------------------------------------------------

SECRET = "/work/main/secret/token=hunter2"  # an exception message with a host path and a secret in it


class Plugin(Task):
    """A tiny many-to-one task (more 'a' than 'b'?) whose behaviour each test picks with ``mode``."""

    shape = "many_to_one"
    summary = "A test double."
    config = {"hidden_size": 8}
    recipe = Recipe(metric="accuracy", epochs=1)
    page = "core.ui.page:task_page"
    data_source = "made in the test"

    def __init__(self, name: str, mode: str):
        self.name, self.title, self.mode = name, f"Plugin {name}", mode

    def build_model(self, config, meta):
        from core.shapes import ManyToOne

        return ManyToOne(4, config["hidden_size"], 2, cell="gru", vocab_size=4)

    def synthetic_data(self, seed=0):
        x = torch.randint(1, 4, (8, 5))
        d = {"x": x, "y": (x == 1).sum(1).gt((x == 2).sum(1)).long()}
        return Splits(d, d, d, meta={})

    def load_data(self, data_dir):
        return self.synthetic_data()

    def batches(self, data, batch_size, shuffle, seed=0):
        yield data

    def loss(self, model, batch):
        return torch.nn.functional.cross_entropy(model(batch["x"]), batch["y"])

    def evaluate(self, model, data):
        return {"accuracy": 0.5}

    def demos(self):
        if self.mode == "demos_raise":
            raise RuntimeError(f"demos exploded at {SECRET}")
        return [Demo("abba", "abba"), Demo("aaab", "aaab")]

    def _x(self, text):
        ids = [" abc".index(c) for c in str(text)[:50] if c in "abc"]
        if not ids:
            raise BadInput("Type some of the letters a, b and c.")
        return torch.tensor([ids])

    def predict(self, model, input):
        if self.mode == "predict_raises":
            raise RuntimeError(f"predict exploded reading {SECRET}")
        if self.mode == "predict_keyerror":
            raise KeyError(SECRET)
        wrong = {"returns_list": [1, 2, 3], "returns_none": None, "returns_str": "<img src=x onerror=alert(1)>",
                 "returns_unjsonable": {"x": object(), "nan": math.nan, "inf": math.inf, "bytes": b"\x00\xff",
                                        "set": {1, 2}, "path": Path("weights")},
                 "returns_tensor": torch.ones(3)}
        if self.mode in wrong:
            return wrong[self.mode]
        with torch.inference_mode():
            return {"more_a": float(torch.softmax(model(self._x(input)), -1)[0, 1])}

    def inspect_loss(self, model, input):
        if self.mode == "inspect_raises":
            raise RuntimeError(f"inspect exploded at {SECRET}")
        logits = model(self._x(input))
        return torch.nn.functional.cross_entropy(logits, logits.argmax(-1).detach()), list(str(input))


MODES = ["predict_raises", "predict_keyerror", "returns_list", "returns_none", "returns_str", "returns_unjsonable",
         "returns_tensor", "demos_raise", "inspect_raises"]


@pytest.fixture(scope="module")
def plugin_weights(tmp_path_factory):
    from bench._common import untrained_card
    from core.weights import save_weights

    folder = tmp_path_factory.mktemp("plugin") / "w"
    p = Plugin("healthy", "ok")
    torch.manual_seed(0)
    model = p.build_model(p.config, {})
    save_weights(folder, model, untrained_card(p, p.config, {}, model))
    return folder


@pytest.mark.parametrize("mode", MODES)
def test_misbehaving_plugin_is_contained(mode, router, plugin_weights):
    bad, good = Plugin(f"bad_{mode}", mode), Plugin("healthy", "ok")
    bad.weights_dir = good.weights_dir = plugin_weights
    router.add(bad, "tests/bad")
    router.add(good, "tests/good")
    for tab in ("Try it", "Inspect"):
        at = goto(bad.name, {"tab": tab})
        assert not at.exception, [e.value for e in at.exception]
        assert at.title[0].value == bad.title
        raising = {"Try it": ("predict_raises", "predict_keyerror", "demos_raise"), "Inspect": ("inspect_raises",)}
        if mode in raising[tab]:  # the failing code did run (the test is not vacuous), and the page said so
            assert at.error or at.warning, f"{mode} ({tab}): nothing tells the user that this task failed"
        text = all_text(at)
        for leak in ("exploded", "hunter2", "/work/main/secret", "Traceback"):
            assert leak not in text, f"{mode} ({tab}): {leak!r} reached the page"
        assert not [e for e in elements(at) if getattr(e, "type", "") == "html" and "onerror" in e.proto.body]
    at = goto(good.name)
    assert not at.exception and not at.error, [e.value for e in list(at.exception) + list(at.error)]
    assert at.json, "the healthy plugin's page should show its answer"


# ---- host paths -----------------------------------------------------------------------------------------------------

def _paths_in(at) -> list[str]:
    text = all_text(at)
    return [p for p in HOST_PATHS if p in text]


@pytest.mark.parametrize("name", NAMES)
def test_no_host_paths_on_working_pages(name):
    """Try it and Inspect tabs of a working page (first demo) show no path of the host."""
    task = task_copy(name)
    found = []
    for tab in ("Try it", "Inspect"):
        found += [f"{tab}: {p}" for p in _paths_in(render(task, {"tab": tab}))]
    assert not found, found


def test_no_host_paths_when_weights_are_missing_or_broken(tmp_path):
    found = []
    for fault in ("folder_missing", "weights_truncated", "card_not_json"):
        at = render(faulty_copy(FAULT_TASK, fault, tmp_path / fault))
        found += [f"{fault}: {p}" for p in _paths_in(at)]
    assert not found, found


@pytest.mark.parametrize("name", NAMES)
def test_no_host_paths_on_model_cards(name):
    """The Model card of every task as trained (its own card where there is one, written by core.train). Older cards
    hold the absolute --data-dir of the training host in training.command: the card shows it repo-relative."""
    task = TASKS[name] if (Path(TASKS[name].weights_path()) / CARD_FILE).is_file() else task_copy(name)
    found = _paths_in(render(task, {"tab": "Model card"}))
    assert not found, found


@pytest.mark.parametrize("fault", ["member_missing", "member_corrupted", "member_unknown"])
def test_broken_ensemble_member_leaves_the_served_variant_answering(fault, tmp_path):
    """Translation is served as an ensemble (core.ensemble). A missing or broken member file must not take the page
    down: the served variant answers alone, and the page says so with the fix."""
    import json

    from core.serving import load_served
    from core.weights import read_card, variant_file

    name = "translation"
    if name not in TASKS or read_card(TASKS[name].weights_path()).ensemble is None:
        pytest.skip("the committed translator is not an ensemble")
    folder = tmp_path / name
    shutil.copytree(TASKS[name].weights_path(), folder)
    card = json.loads((folder / CARD_FILE).read_text())
    member = card["ensemble"]["members"][1]
    if fault == "member_missing":
        (folder / variant_file(member)).unlink()
    elif fault == "member_corrupted":
        (folder / variant_file(member)).write_bytes(b"\x00" * 100)
    else:
        _edit_card(folder, lambda c: c["ensemble"].update(members=[c["served_variant"], "nosuch"]))
    task = task_copy(name, folder)
    served = load_served(task, folder)
    assert not served.has_ensemble and served.ensemble_problem and served.answering() is served.model
    assert task.predict(served.answering(), {"text": "How are you doing?"})["translation"]
    at = render(task)
    assert not at.exception, [e.value for e in at.exception]
    warned = " ".join(w.value for w in at.warning)
    assert "one of its members cannot be used" in warned and CRASH not in warned
    assert any(str(m.value).startswith("### ") for m in at.markdown), "the served variant still translates"
