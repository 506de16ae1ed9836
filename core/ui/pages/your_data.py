"""Your data: bring a table, be told which recurrent shape fits it, train it live, look inside, take it home.

  1. Bring data     upload CSV/TSV/TXT or paste (core.yourdata.parse: limits before parsing), or one of the examples
  2. Which shape    core.yourdata.propose: the proposal and its reason; every part can be changed
  3. Train live     core.yourdata.build.train_run (core.train.fit per cell), one run at a time per server
  4. Try / Inspect / Compare   the model just trained; the shared inspector (core.ui.inspector.render_inspector)
  5. Take it home   core.yourdata.export: weights (model.safetensors + card.json) and a plugin folder, as zips

Everything lives in this visitor's session state; nothing is written on the server.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from dataclasses import replace

import altair as alt
import pandas as pd
import streamlit as st

from core.data import split_rows
from core.shapes import SHAPES
from core.task import BadInput
from core.ui.charts import forecast_lines
from core.ui.shapes import shape_spec
from core.ui.widgets import answer, md_escape, regression_answer, show_error
from core.yourdata import parse
from core.yourdata.build import CELLS, MAX_SECONDS, MAX_TRAIN_STEPS, SIZES, TrainQueue, make_task, train_run
from core.yourdata.examples import EXAMPLES
from core.yourdata.forecast import forecast_rows
from core.yourdata.propose import Choice, check_choice, profile, propose, steps
from core.yourdata.task import MAX_COUNT, MAX_EVAL_ROWS

REDRAW_S = 0.4  # seconds between redraws of the live charts
HEADER_OPTIONS = {"auto": "guess", True: "yes", False: "no"}
CELL_COLOURS = {"tanh-RNN": "#dc2626", "GRU": "#16a34a", "LSTM": "#2563eb", "minGRU": "#9333ea", "minLSTM": "#0891b2"}  # the Lab's
DEFAULTS = {"yd_cells": ["GRU"], "yd_size": "medium", "yd_steps": 300, "yd_clip": True, "yd_g_start": "",
            "yd_g_temp": 0.8, "yd_g_seed": 0, "yd_g_count": 5, "yd_delim": "auto", "yd_header": "auto",
            "yd_skip": False}  # set once per session; the widgets then read their key (a test may set them first)
FORECAST = "forecast"  # the shape selectbox's value for forecasting (many-to-one over time windows)
REGRESSION = "regression"  # ... and for many-to-one regression (a sequence -> one number)
METRIC_WORDS = {"accuracy": "accuracy", "nll": "loss per step (NLL)", "exact": "exactly right", "loss": "loss"}


@st.cache_resource
def train_queue() -> TrainQueue:
    """One per server process: one training at a time, the others wait in line."""
    return TrainQueue()


# ---- 1 · bring data --------------------------------------------------------------------------------------------------

def _set_source(src: str) -> None:
    st.session_state["yd_src"] = src


def _pick_example(key: str) -> None:
    name, raw = EXAMPLES[key].make()
    st.session_state["yd_src"] = "example"
    st.session_state["yd_example"] = (name, raw)


def _raw_data() -> tuple[str, bytes] | None:
    """(file name, bytes) of what the visitor brought last, or None."""
    src = st.session_state.get("yd_src")
    if src == "example":
        return st.session_state.get("yd_example")
    if src == "upload":
        f = st.session_state.get("yd_file")
        if f is None:
            return None
        parse.check_size(f.size)  # before reading a byte of it (the uploader refuses bigger files itself)
        return f.name, f.getvalue()
    if src == "paste":
        text = st.session_state.get("yd_paste", "")
        return ("pasted text", text.encode("utf-8")) if text.strip() else None
    return None


# The uploader refuses a file over its limit in the browser (Python never sees it) and keeps the reason in a hidden
# alert behind a hover tooltip: shown here in words under the file's name (scoped by the widget's key).
_REFUSED_CSS = """<style>
.st-key-yd_file [data-testid="stFileChip"] { flex-wrap: wrap; height: auto; }
.st-key-yd_file [data-testid="stFileChip"] span[role="alert"] {
  position: static !important; clip: auto !important; clip-path: none !important; width: auto !important;
  height: auto !important; margin: 0.2rem 0 0 0 !important; overflow: visible !important; white-space: normal;
  flex-basis: 100%; font-size: 0.85rem; font-weight: 600; color: #b91c1c;
}
</style>"""


def _bring_data() -> tuple[parse.Table, bytes] | None:
    st.subheader("1 · Bring data", anchor=False)
    st.html(_REFUSED_CSS)
    st.markdown(f"Upload a table -- CSV, TSV or space-separated text, a CoNLL file (one token and its tag per line, "
                f"a blank line between sentences), JSON lines or an Excel .xlsx sheet; at most {parse.MAX_MB} MB and "
                f"{parse.MAX_ROWS:,} rows -- or paste one, or start from an example we wrote for this page:")
    per_row = (len(EXAMPLES) + 1) // 2  # two rows: each label stays readable
    cols = [c for _ in range(2) for c in st.columns(per_row)]
    for col, (key, ex) in zip(cols, EXAMPLES.items()):
        col.button(ex.label, key=f"yd_ex_{key}", on_click=_pick_example, args=(key,), width="stretch",
                   help=f"{ex.note} -- the page proposes "
                        f"{shape_spec(ex.kind).words if ex.kind in SHAPES else 'forecasting'}.")
    up, paste = st.columns(2)
    up.file_uploader("Upload a file", key="yd_file", on_change=_set_source, args=("upload",),
                     max_upload_size=parse.MAX_MB,  # the same limit as parse.check_size and the words above
                     help="Any file name: what is inside decides how it is read. One example per row (in a CoNLL "
                          "file, one sentence per block of lines). Text, labels, tags or numbers in columns.")
    paste.text_area("... or paste rows", key="yd_paste", height=110, max_chars=parse.MAX_BYTES,
                    on_change=_set_source, args=("paste",),
                    placeholder="text,label\nwhat a lovely film,positive\nso dull,negative\n...")
    with st.expander("How the file is read"):
        c = st.columns(3)
        c[0].selectbox("Columns separated by", list(parse.DELIMITERS), key="yd_delim",
                       format_func=lambda k: "guess" if k == "auto" else k)
        c[1].selectbox("First row is a header", list(HEADER_OPTIONS), key="yd_header",
                       format_func=lambda k: HEADER_OPTIONS[k])
        c[2].checkbox("Leave out the rows with problems", key="yd_skip",
                      help="Otherwise a row that cannot be read stops here, with its line number.")
    try:
        got = _raw_data()
    except parse.DataError as exc:
        show_error(exc)
        return None
    if got is None:
        st.info(f"Pick an example above, upload a file or paste some rows to begin. A file over {parse.MAX_MB} MB "
                "is refused by the upload box itself (the reason in red under its name): keep a sample of its rows.",
                icon=":material/upload_file:")
        return None
    name, raw = got
    delim = parse.DELIMITERS[st.session_state.get("yd_delim", "auto")]
    header = st.session_state.get("yd_header", "auto")
    skip = bool(st.session_state.get("yd_skip", False))
    try:
        table = _parse(name, raw, delim, header, skip)
    except parse.DataError as exc:
        st.warning(f"**{md_escape(name)}**: {md_escape(exc)}", icon=":material/edit_note:")
        return None
    st.success(f"**{md_escape(name)}** ({parse.FORMATS.get(table.format, table.format)}): {len(table.rows):,} rows, "
               "columns "
               + ", ".join(f"'{md_escape(c)}'" for c in table.columns) + ".", icon=":material/table:")
    for note in table.notes:
        st.caption(md_escape(note))
    preview = pd.DataFrame(table.rows[:6], columns=table.columns)
    st.dataframe(preview, hide_index=True, width="stretch")  # a dataframe shows cells as text, never as markup
    return table, raw


def _parse(name: str, raw: bytes, delim, header, skip: bool) -> parse.Table:
    """read_table, kept for this session's last input (a rerun does not parse again)."""
    key = hashlib.sha256(raw).hexdigest() + repr((name, delim, header, skip))
    cached = st.session_state.get("yd_parsed")
    if cached and cached[0] == key:
        if isinstance(cached[1], parse.DataError):
            raise cached[1]
        return cached[1]
    try:
        table = parse.read_table(raw, name, delim, header, skip_bad=skip)
    except parse.DataError as exc:
        st.session_state["yd_parsed"] = (key, exc)
        raise
    st.session_state["yd_parsed"] = (key, table)
    return table


# ---- 2 · which shape -------------------------------------------------------------------------------------------------

def _which_shape(table: parse.Table, dkey: str) -> tuple[Choice, parse.Table] | None:
    st.subheader("2 · Which shape", anchor=False)
    proposal = propose(table)
    proposed = {"forecast": FORECAST, "regression": REGRESSION}.get(proposal.kind, proposal.shape)
    st.markdown(f"**Proposed: {_shape_words(proposed)}.** {md_escape(proposal.reason)}")
    st.caption("Change any of it below if you know better; the app checks that the data fits what you pick.")
    cols = table.columns
    numeric = [p.name for p in profile(table) if p.numeric]
    c = st.columns([1.3, 1, 1, 1])
    options = [FORECAST, REGRESSION, *SHAPES]
    shape = c[0].selectbox("Shape", options, index=options.index(proposed), key=f"yd_shape_{dkey}",
                           format_func=_shape_words)
    if shape == FORECAST:
        return _forecast_controls(table, proposal, dkey, c)
    features: list[str] = []
    inp = target = None
    if shape == "one_to_one":
        default = proposal.features or [n for n in numeric if n != proposal.target]
        features = c[1].multiselect("Number columns (the features)", cols, default=default, key=f"yd_feat_{dkey}")
        rest = [x for x in cols if x not in features] or cols
        tdef = proposal.target if proposal.target in rest else rest[-1]
        target = c[2].selectbox("Label column", rest, index=rest.index(tdef), key=f"yd_tgt_{dkey}")
    else:
        idef = proposal.input if proposal.input in cols else cols[0]
        inp = c[1].selectbox("Sequence column", cols, index=cols.index(idef), key=f"yd_in_{dkey}")
        if shape != "one_to_many":
            rest = [x for x in cols if x != inp and (shape != REGRESSION or x in numeric)]
            if not rest and shape == REGRESSION:
                st.warning("Regression needs a column of numbers to predict; this data has none besides the "
                           "sequences. Pick many-to-one to predict a label.", icon=":material/edit_note:")
                return None
            if not rest:
                st.warning(f"{shape_spec(shape).words.capitalize()} needs a second column to predict; this data has one. "
                           "Pick one-to-many, or bring a table with two columns.", icon=":material/edit_note:")
                return None
            tdef = proposal.target if proposal.target in rest else rest[-1]
            label = {REGRESSION: "Number column to predict", "many_to_one": "Label column",
                     "many_to_many": "Tags column (one per step)",
                     "encoder_decoder": "Output column"}[shape]
            target = c[2].selectbox(label, rest, index=rest.index(tdef),
                                    key=f"yd_tgt_{dkey}" + ("_number" if shape == REGRESSION else ""))
    tokens, bidir = "char", False
    if shape != "one_to_one":
        tokens = c[3].radio("Steps are", ["char", "word"], index=["char", "word"].index(proposal.tokens),
                            key=f"yd_tok_{dkey}", format_func=lambda t: "characters" if t == "char" else "words",
                            horizontal=True, help="How a sequence is cut into the steps the network reads.")
    if shape in ("many_to_many", "many_to_one", REGRESSION):
        bidir = st.toggle("Read both ways (bidirectional)", value=shape == "many_to_many", key=f"yd_bi_{dkey}_{shape}",
                          help="A second layer reads from the end, so each answer sees the whole sequence.")
    elif shape == "one_to_one":
        st.caption("One step from a zero state: the recurrent weight never acts, so this is a feed-forward network "
                   "in disguise -- no recurrence is needed for fixed features.")
    reason = proposal.reason if shape == proposed else ""
    if shape == REGRESSION:
        choice = Choice("many_to_one", inp, target, [], tokens, bidir, reason, kind="regression")
    else:
        choice = Choice(shape, inp, target, features, tokens, bidir, reason)
    try:
        checked = check_choice(table, choice, skip_bad=bool(st.session_state.get("yd_skip", False)))
    except parse.DataError as exc:
        st.warning(md_escape(exc), icon=":material/edit_note:")
        return None
    for note in checked.notes[len(table.notes):]:
        st.caption(md_escape(note))
    _shape_summary(checked, choice)
    return choice, checked


def _shape_summary(table: parse.Table, choice: Choice) -> None:
    if choice.kind == "forecast":
        return _forecast_summary(table, choice)
    if choice.shape == "one_to_one":
        return
    lens = [len(steps(r[table.columns.index(choice.input)], choice.tokens)) for r in table.rows]
    unit = "characters" if choice.tokens == "char" else "words"
    st.caption(f"Sequences of {min(lens)}-{max(lens)} {unit} (median {sorted(lens)[len(lens) // 2]}).")


# ---- 3 · train live --------------------------------------------------------------------------------------------------

def _demos(task, table: parse.Table) -> list[dict]:
    """A few held-out rows (the validation split) as one-click inputs."""
    if task.choice.kind == "forecast":
        return _forecast_demos(task, table)
    _, val, _ = split_rows(list(range(len(table.rows))), max_eval=MAX_EVAL_ROWS)
    if task.shape == "one_to_many":
        first = table.rows[val[0]][table.columns.index(task.choice.input)]
        start = "".join(steps(first, "char")[:1]) if task.choice.tokens == "char" else first.split()[0]
        return [{"label": "From the start", "input": {"start": "", "temperature": 0.8, "seed": 0, "count": 5},
                 "note": "a new sequence from nothing"},
                {"label": f"Starting with '{start}'", "input": {"start": start, "temperature": 0.8, "seed": 0,
                                                                 "count": 5}, "note": "the start of a held-out row"},
                {"label": "Hot (temperature 1.5)", "input": {"start": "", "temperature": 1.5, "seed": 0, "count": 5},
                 "note": "more surprising, more mistakes"}]
    return [{"label": f"Held-out row (line {table.lines[i]})", "input": task.example_input(table.rows[i]),
             "note": "a validation row: the model never trained on it"} for i in val[:3]]


def _curve_chart(rows: list[dict], y: str, title: str, log: bool = False) -> alt.Chart:
    df = pd.DataFrame(rows)
    if log:
        df = df[df[y] > 0]
    present = [c for c in CELL_COLOURS if c in set(df.cell)]
    scale = alt.Scale(domain=present, range=[CELL_COLOURS[c] for c in present])
    return (alt.Chart(df).mark_line(point=len(df) < 80).encode(
        x=alt.X("step:Q", title="training step", axis=alt.Axis(format="d", tickMinStep=1)),
        y=alt.Y(f"{y}:Q", title=title, scale=alt.Scale(type="log") if log else alt.Scale(zero=False),
                axis=alt.Axis(format=".3~g")),
        color=alt.Color("cell:N", scale=scale, title="cell"),
        tooltip=["cell", "step", alt.Tooltip(f"{y}:Q", format=".4g")])
        .properties(height=240, title=title))


def _curves(step_rows: list[dict], val_rows: list[dict], metric_title: str, slot) -> None:
    with slot.container():
        left, right = st.columns(2)
        if step_rows:
            left.altair_chart(_curve_chart(step_rows, "loss", "training loss (per batch)", log=True), width="stretch")
        if val_rows:
            right.altair_chart(_curve_chart(val_rows, "value", metric_title), width="stretch")
        else:
            right.caption("The validation curve appears after the first check on held-out rows.")


def _metric_title(task) -> str:
    from core.yourdata.task import SCORE_WORDS

    metric = task.recipe.metric
    return f"validation {SCORE_WORDS.get(metric, METRIC_WORDS.get(metric, metric))}"


def _train_live(choice: Choice, table: parse.Table, raw: bytes, dkey: str) -> None:
    st.subheader("3 · Train live", anchor=False)
    from core.ui.server import preload_in_background

    # torch's optimisers import torch._dynamo on first use (~150-190 MiB, 1-2 s, once per process): import it in the
    # background once a visitor has data to train on -- not for every visit -- so that their first Train does not
    # wait for it
    preload_in_background(("torch._dynamo",))
    held_out = ("The last part of the series is held out for a final test and the part before it for validation "
                "(in time order, never shuffled)" if choice.kind == "forecast" else
                "A tenth of the rows is held out for validation and a tenth for a final test")
    st.markdown("Pick the cell (several to compare them under the same budget), the size and the number of steps. "
                f"{held_out}; gradient clipping (norm 1) is on unless you switch it off.")
    c = st.columns([2, 1.2, 2, 1.2])
    cells = c[0].multiselect("Cells", list(CELLS), key="yd_cells",
                             help="tanh-RNN: the plain recurrent cell; GRU and LSTM add gates that keep memory.")
    size = c[1].selectbox("Size", list(SIZES), key="yd_size",
                          format_func=lambda s: f"{s} ({SIZES[s][1]} units)")
    n_steps = c[2].slider("Training steps per cell", 10, min(MAX_TRAIN_STEPS, 1500), step=10,
                          key="yd_steps", help="Batches of 32 rows.")
    clip = c[3].toggle("Clip gradients", key="yd_clip",
                       help="Rescale each update's gradient to norm at most 1: tames exploding gradients.")
    queue = train_queue()
    busy = queue.busy()
    st.caption(f"Budget: at most {MAX_SECONDS:.0f} s per run (the cells share it), one training at a time on this "
               "server"
               + (f" -- **someone is training right now** ({queue.waiting()} waiting): you would join the line."
                  if busy else ".")
               + " Stay on this page while it trains: a click elsewhere stops the run.")
    go = st.button("Train", type="primary", icon=":material/play_arrow:", key="yd_train", disabled=not cells)
    if go:
        try:
            _run(choice, table, raw, dkey, cells, size, int(n_steps), clip, queue)
        except BadInput as exc:
            show_error(exc)
        except Exception as exc:  # noqa: BLE001 -- a failed run must leave the page usable
            show_error(exc, "training the model")
    elif "yd_run" not in st.session_state:
        st.caption("Press **Train**: the curves appear while it learns.")


def _run(choice, table, raw, dkey, cells, size, n_steps, clip, queue) -> None:
    task = make_task(table, choice, cells=cells, size=size)
    task.spec["demos"] = _demos(task, table)
    splits = task.splits_from_table(table)
    wait = st.empty()
    progress = st.progress(0.0, text="waiting for the trainer ...")
    live = st.empty()
    step_rows: list[dict] = []
    val_rows: list[dict] = []
    metric = task.recipe.metric
    last = [0.0]
    t_start = [0.0]

    def on_wait(place: int) -> None:
        wait.info(f"Another visitor's model is training on this server: you are number {place} in line. Yours starts "
                  "by itself when it is your turn.", icon=":material/hourglass_top:")

    def on_event(ev: dict) -> None:
        if ev["event"] == "step":
            step_rows.append({"cell": ev["cell"], "step": ev["step"], "loss": ev["loss"]})
        else:
            step = step_rows[-1]["step"] if step_rows else 0
            val_rows.append({"cell": ev["cell"], "step": step, "value": float(ev["val"].get(metric, math.nan))})
        now = time.monotonic()
        per_cell = MAX_SECONDS / ev["cells"]
        done_cell = min(1.0, max(step_rows[-1]["step"] / ev["steps"] if step_rows else 0.0,
                                 (time.time() - t_start[0]) / max(per_cell, 1e-9) - ev["index"]))
        if now - last[0] >= REDRAW_S or ev["event"] == "epoch":
            last[0] = now
            loss = step_rows[-1]["loss"] if step_rows else math.nan
            progress.progress(min(1.0, (ev["index"] + max(done_cell, 0.0)) / ev["cells"]),
                              text=f"{ev['cell']}: step {ev.get('step', '')} of at most {ev['steps']} · loss {loss:.3g}")
            _curves(step_rows, val_rows, _metric_title(task), live)

    with queue.turn(on_wait=on_wait):
        wait.empty()
        t_start[0] = time.time()
        result = train_run(task, splits, cells, size, n_steps, MAX_SECONDS, on_event,
                           clip_norm=1.0 if clip else None)
    progress.empty()
    live.empty()
    for run in result.runs.values():  # an id of its own: the inspector's cache tells models apart by it
        run.model.cache_id = f"your-data-{uuid.uuid4().hex}"
        run.model.runtime = replace(run.model.runtime, variant=run.label)
    st.session_state["yd_run"] = {"dkey": dkey, "choice": choice, "task": task, "result": result, "table": table,
                                  "raw": raw, "steps": step_rows, "val": val_rows, "exports": {}}


# ---- 4 · try it, inspect, compare ------------------------------------------------------------------------------------

def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) and math.isfinite(v) else "n/a"


STOPPED = {"max steps": "all its steps", "time budget": "the time budget ran out", "patience": "stopped improving",
           "epochs": "all its steps"}


def _results(run: dict) -> None:
    task, result = run["task"], run["result"]
    metric = task.recipe.metric
    _curves(run["steps"], run["val"], _metric_title(task), st.empty())
    best = result.runs[result.served]
    from core.yourdata.task import SCORE_WORDS, baseline_words, not_beaten_words, trust_words

    word, val, test = SCORE_WORDS.get(metric, metric), best.fit.best_val, best.test
    st.markdown(f"**Best on the held-out rows: {md_escape(best.label)}** · "
                + baseline_words(metric, val, f"validation {word}"))
    more = {"f1": baseline_words("accuracy", val, " Per-word accuracy (high whenever most words are O)"),
            "exact": f" With the true previous step given, the next step is right {_fmt(val.get('step_accuracy'))} of "
                     "the time (information only: on its own the model must write every step itself)."}
    st.caption(f"{word[:1].upper() + word[1:]}: {task.metric_meaning}. On the test rows (never used to choose): "
               + baseline_words(metric, test, f"test {word}") + more.get(metric, ""))
    flat = not_beaten_words(metric, val) or not_beaten_words(metric, test)
    if flat:
        where = "" if not_beaten_words(metric, val) else "On the test rows (never used to choose): "
        st.warning(where + (flat[:1].lower() + flat[1:] if where else flat), icon=":material/trending_flat:")
    if trust_words(metric, val, test):
        st.warning(trust_words(metric, val, test), icon=":material/straighten:")
    cut = best.model.runtime.meta.get("cut_rows", 0)
    if cut:
        unit = "characters" if task.choice.tokens == "char" else "words"
        from core.yourdata.task import MAX_STEPS

        st.caption(f"{cut:,} rows were longer than {MAX_STEPS[task.choice.tokens]} {unit}: the model read their "
                   f"first {MAX_STEPS[task.choice.tokens]}.")
    st.caption(" · ".join(f"{label}: {run_steps(run, label)} steps in {r.seconds:.0f} s"
                          + (" (the time budget ran out)" if r.stopped == "time budget" else "")
                          for label, r in result.runs.items()))
    if task.choice.kind == "forecast":
        _forecast_chart(run)
    tabs = st.tabs(["Try it", "Inspect", "Cells side by side"])
    with tabs[0]:
        current = _try_it(run)
    with tabs[1]:
        from core.ui.inspector import render_inspector

        label = st.session_state.get("yd_try_cell") or result.served
        model = result.runs.get(label, best).model
        st.caption(f"Inside the {md_escape(label)} model on the input of the Try-it tab: how the gradient of the "
                   "loss travels back through the steps (||dL/dh_t||), and what clipping would do to it.")
        render_inspector(task, model, current, key="yd_insp")
    with tabs[2]:
        _compare(run)


def _try_it(run: dict):
    task, result = run["task"], run["result"]
    labels = list(result.runs)
    label = st.radio("Model", labels, index=labels.index(result.served), key="yd_try_cell", horizontal=True) \
        if len(labels) > 1 else labels[0]
    model = result.runs[label].model
    demos = task.demos()
    if task.choice.kind == "forecast":
        return _try_forecast(task, model, demos, run["dkey"])
    if task.shape == "one_to_many":
        return _try_generate(task, model, demos)
    key = f"yd_q_{run['dkey']}"
    _demo_row(demos, key)
    what = "numbers, separated by commas" if task.shape == "one_to_one" else "a sequence"
    text = st.text_input(f"Your input ({what})", key=key, max_chars=2000)
    if not text.strip():
        st.info("Type an input or pick a held-out row.")
        return None
    out = answer(task, model, text)  # a bad input: its message and None; the answer's notes as captions
    if out is None:
        return None
    if task.choice.kind == "regression":
        regression_answer(out)
    elif task.shape in ("one_to_one", "many_to_one"):
        st.markdown(f"**{md_escape(out['label'])}** ({out['prob']:.0%})")
        probs = pd.DataFrame({"label": list(out["probs"]), "probability": list(out["probs"].values())})
        st.dataframe(probs.sort_values("probability", ascending=False), hide_index=True)
    elif task.shape == "many_to_many":
        from core.ui.widgets import show_tokens

        show_tokens([f"{r['word']} /{r['tag']}" for r in out["tokens"]], [r["prob"] for r in out["tokens"]],
                    name="confidence")
    else:
        st.markdown(f"**Output:** {md_escape(out['output']) or '(empty)'}")
        st.dataframe(pd.DataFrame(out["candidates"]), hide_index=True)
    return text


def _try_generate(task, model, demos):
    b = st.columns(len(demos))
    for i, (col, d) in enumerate(zip(b, demos)):
        if col.button(d.label, key=f"yd_demo_{i}", help=d.note, width="stretch"):
            st.session_state["yd_g_start"] = d.input["start"]
            st.session_state["yd_g_temp"] = d.input["temperature"]
    c = st.columns(4)
    settings = {"start": c[0].text_input("Start with", key="yd_g_start", max_chars=40),
                "temperature": c[1].slider("Temperature", 0.1, 3.0, step=0.1, key="yd_g_temp",
                                           help="below 1: safer, more alike; above 1: more surprising"),
                "seed": int(c[2].number_input("Seed", 0, 2**31 - 1, step=1, key="yd_g_seed")),
                "count": int(c[3].number_input("How many", 1, MAX_COUNT, step=1, key="yd_g_count"))}
    out = answer(task, model, settings)  # a bad input: its message and None; the answer's notes as captions
    if out is None:
        return None
    for seq in out["sequences"]:
        st.markdown("- " + (md_escape(seq) or "(empty)"))
    return settings


def _compare(run: dict) -> None:
    from core.yourdata.task import SCORE_WORDS, score_columns

    task, result = run["task"], run["result"]
    metric = task.recipe.metric
    rows = []
    for label, r in result.runs.items():
        row = {"cell": label, **score_columns(metric, r.fit.best_val, r.test),
               "parameters": r.num_params, "steps": run_steps(run, label), "seconds": round(r.seconds, 1),
               "ended": STOPPED.get(r.stopped, r.stopped)}
        rows.append(row)
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(f"Each cell trained with the same data, steps, size and seed; the validation {SCORE_WORDS.get(metric)}"
               " is its best over the run (that model is kept). Test rows were never used to choose anything. The "
               "columns after the test score are its baselines: what a rule with no learning scores on the same rows.")


def run_steps(run: dict, label: str) -> int:
    return max((r["step"] for r in run["steps"] if r["cell"] == label), default=0)


# ---- forecasting ----------------------------------------------------------------------------------------------------

def _shape_words(shape: str) -> str:
    return {FORECAST: "forecasting (many-to-one over time windows)",
            REGRESSION: "many-to-one regression (a sequence -> one number)"}.get(shape) or shape_spec(shape).words


def _series(table: parse.Table, choice: Choice):
    """core.yourdata.forecast.read_series, kept for this session's last table and choice (a rerun -- typing in Try
    it -- does not read a long series again)."""
    from core.yourdata import forecast as fc

    key = (hash(tuple(map(tuple, table.rows))), tuple(table.columns), repr(choice.to_dict()))
    cached = st.session_state.get("yd_fc_series")
    if cached and cached[0] == key:
        return cached[1]
    series = fc.read_series(table, choice)
    st.session_state["yd_fc_series"] = (key, series)
    return series


def _forecast_default(table: parse.Table) -> Choice | None:
    """A forecasting choice for a table the app did not propose it for (None: no column of numbers)."""
    from core.yourdata import forecast as fc

    det = fc.detect(table)
    if det is None:
        numbers = [p.name for p in profile(table) if p.numeric]
        if not numbers:
            return None
        det = fc.Detected([], "long", numbers, numbers[-1], "")
    try:
        return fc.propose_forecast(table, det)
    except (ValueError, parse.DataError):
        return None


def _forecast_controls(table: parse.Table, proposal: Choice, dkey: str, c) -> tuple[Choice, parse.Table] | None:
    """The column to forecast, the columns read, the time columns, the window and the horizon; the checked choice."""
    from core.yourdata import forecast as fc

    base = proposal if proposal.kind == "forecast" else _forecast_default(table)
    if base is None:
        st.warning("Forecasting needs a column of numbers, one per time step; this table has none. Pick another "
                   "shape.", icon=":material/edit_note:")
        return None
    if base.layout == "wide":
        target, features, time = None, list(base.features), list(base.time)
        c[1].markdown(f"**Forecast:** the month columns '{md_escape(features[0])}' to '{md_escape(features[-1])}', "
                      "read row by row as one monthly series.")
    else:
        numbers = [p.name for p in profile(table) if p.numeric]
        target = c[1].selectbox("Column to forecast", numbers, key=f"yd_fc_tgt_{dkey}",
                                index=numbers.index(base.target) if base.target in numbers else 0)
        features = c[2].multiselect("Columns read at each step", numbers, key=f"yd_fc_in_{dkey}",
                                    default=[f for f in base.features if f in numbers],
                                    help="Each step of the window is these numbers; the column to forecast is "
                                         "always read too.")
        time = c[3].multiselect("Time columns", table.columns, default=base.time, key=f"yd_fc_time_{dkey}",
                                help="The columns that say when each row is (a date, or a year and a quarter). "
                                     "None: the rows' order is the time.")
        features = [f for f in features if f not in time]
    d = st.columns(4)
    window = d[0].number_input("Window (steps read)", 2, fc.MAX_WINDOW, value=int(base.window), key=f"yd_fc_w_{dkey}",
                               help="How many past steps the network reads before it answers.")
    horizon = d[1].number_input("Horizon (steps forecast)", 1, fc.MAX_HORIZON, value=int(base.horizon),
                                key=f"yd_fc_h_{dkey}", help="How many steps after the window it forecasts at once.")
    reason = proposal.reason if proposal.kind == "forecast" else ""
    choice = Choice("many_to_one", None, target, features, "char", False, "", kind="forecast", time=time,
                    window=int(window), horizon=int(horizon), layout=base.layout)
    try:
        checked = check_choice(table, choice, skip_bad=bool(st.session_state.get("yd_skip", False)))
        series = _series(checked, choice)
    except parse.DataError as exc:
        st.warning(md_escape(exc), icon=":material/edit_note:")
        return None
    choice.period = fc.detect_period(series.y)
    choice.reason = reason
    d[2].markdown(f"**Season:** {choice.period} steps" if choice.period else "**Season:** none found")
    d[2].caption("found in the data's autocorrelation; the seasonal-naive forecast repeats the last season"
                 if choice.period else "so the naive forecast to beat is the last value")
    for note in checked.notes[len(table.notes):]:
        st.caption(md_escape(note))
    _shape_summary(checked, choice)
    return choice, checked


def _forecast_summary(table: parse.Table, choice: Choice) -> None:
    from core.yourdata import forecast as fc

    series = _series(table, Choice(**{**choice.to_dict(), "period": None, "reason": ""}))
    n, W, H = len(series.values), choice.window, choice.horizon
    parts = fc.time_split(n, W, H)
    for note in series.notes:
        st.caption(md_escape(note))
    st.caption(f"A series of {n:,} steps ({md_escape(series.labels[0])} to {md_escape(series.labels[-1])}). In time "
               f"order, never shuffled: {len(parts.train):,} training windows, then {len(parts.val):,} validation and "
               f"{len(parts.test):,} test windows whose answers lie in the last {n - parts.val_start:,} steps. Each "
               "window is read relative to its last value, scaled by the training part's typical step change.")
    df = pd.DataFrame({"step": range(n), "value": series.y, "when": series.dates or series.labels,
                       "part": ["training" if t < parts.val_start else "validation" if t < parts.test_start else "test"
                                for t in range(n)]})
    x = _time_axis(df["when"]) if series.dates else alt.X("step:Q", title="step")
    chart = alt.Chart(df).mark_line().encode(
        x=x, y=alt.Y("value:Q", title=series.names[series.target], scale=alt.Scale(zero=False)),
        color=alt.Color("part:N", scale=alt.Scale(domain=["training", "validation", "test"],
                                                  range=["#6b7280", "#f59e0b", "#dc2626"]), title=None),
        tooltip=["when", alt.Tooltip("value:Q", format=".4g"), "part"])
    st.altair_chart(chart.properties(height=170), width="stretch")


def _forecast_demos(task, table: parse.Table) -> list[dict]:
    """The series' last W values (what comes after them is unknown), and for a one-column series two windows of
    the held-out part."""
    from core.yourdata import forecast as fc

    c = task.choice
    series = fc.read_series(table, c)
    y, W = series.y, int(c.window)
    out = [{"label": "The end of the series", "input": fc.values_text(y[-W:]),
            "note": f"its last {W} values: forecast the steps after them"}]
    if len(series.names) == 1:
        parts = fc.time_split(len(y), W, int(c.horizon))
        for t in parts.val[:1] + parts.test[:1]:
            out.append({"label": f"Held out: before {series.labels[t + 1]}", "input": fc.values_text(y[t - W + 1:t + 1]),
                        "note": "a window of the held-out part: the model never trained on what came next"})
    return out


def _time_axis(when: pd.Series) -> alt.X:
    """A time axis whose labels fit the span: month and year, day and month, or the hour too."""
    t = pd.to_datetime(when, format="ISO8601")
    span = t.max() - t.min()
    fmt = "%b %Y" if span > pd.Timedelta(days=400) else "%d %b" if span > pd.Timedelta(days=4) else "%d %b %H:%M"
    return alt.X("when:T", title=None, axis=alt.Axis(format=fmt))


def _forecast_verdict(test: dict) -> str:
    """The network's test MAE beside the naive forecasts', and plainly whether it beats them."""
    mae, last, season = test.get("mae"), test.get("last value mae"), test.get("seasonal naive mae")
    naive = [("the last-value forecast", last)] + ([("the seasonal-naive forecast", season)] if season is not None
                                                   else [])
    beaten = [w for w, v in naive if mae < v]
    if len(beaten) == len(naive):
        return "The network beats " + (" and ".join(w for w, _ in naive)) + "."
    if beaten:
        return f"The network beats {beaten[0]}, but not {[w for w, _ in naive if w not in beaten][0]}."
    return ("The network does not beat " + " or ".join(w for w, _ in naive) + ": a rule with no learning forecasts "
            "better. Try a longer window, more steps, or another cell.")


def _forecast_chart(run: dict) -> None:
    """The held-out part with the forecasts over it, the next H steps past the end, and the scores beside the naive
    forecasts'."""
    from core.yourdata import forecast as fc

    task, result = run["task"], run["result"]
    label = st.session_state.get("yd_try_cell") or result.served
    r = result.runs.get(label, result.runs[result.served])
    test = r.test
    season = test.get("seasonal naive mae")
    st.markdown(f"**{md_escape(r.label)} on the test part** (the last steps, never used to choose anything), in "
                f"the data's own units: MAE **{_fmt(test.get('mae'))}** (RMSE {_fmt(test.get('rmse'))}) -- the "
                f"last-value forecast {_fmt(test.get('last value mae'))} (RMSE {_fmt(test.get('last value rmse'))})"
                + (f", the seasonal-naive forecast {_fmt(season)} (RMSE {_fmt(test.get('seasonal naive rmse'))})"
                   if season is not None else "")
                + f". {_forecast_verdict(test)}")
    cache = run.setdefault("forecast_chart", {})
    if r.label not in cache:
        cache[r.label] = fc.chart_rows(task, r.model, fc.read_series(run["table"], task.choice))
    data = cache[r.label]
    df = pd.DataFrame(data["rows"])
    x = _time_axis(df["when"]) if data["dates"] else alt.X("step:Q", title="step")
    if not data["dates"]:
        df = df.assign(when=df["when"].astype(str))
    st.altair_chart(forecast_lines(df, x).properties(
        title=f"{data['target']}: the test part and the next {task.choice.horizon} steps"), width="stretch")
    st.caption(f"Over the test part each forecast is made in blocks of {task.choice.horizon} steps, each from the "
               f"{task.choice.window} steps before it (MAE on these blocks: "
               + ", ".join(f"{k} {_fmt(v)}" for k, v in data["mae"].items()) + "). In blue, after the last step: "
               "the forecast of the steps that come next.")
    nxt = pd.DataFrame([{"step": lab, data["target"]: round(v, 6)} for lab, v in data["next"]])
    st.dataframe(nxt.set_index("step").T, width="stretch")


def _demo_row(demos, key: str) -> None:
    """One-click held-out inputs above the box whose session key is ``key`` (a click fills it; the first by default)."""
    b = st.columns(len(demos) or 1)
    for i, (col, d) in enumerate(zip(b, demos)):
        if col.button(d.label, key=f"yd_demo_{i}", help=d.note, width="stretch"):
            st.session_state[key] = d.input
    st.session_state.setdefault(key, demos[0].input if demos else "")


def _try_forecast(task, model, demos, dkey: str):
    """Try it for a forecast: the last W values (prefilled with the series' end), the next H values out."""
    key = f"yd_fq_{dkey}"
    _demo_row(demos, key)
    meta = model.runtime.meta
    W, H, target = meta["window"], meta["horizon"], meta["target"]
    text = st.text_input(f"The last {W} values of '{target}' (commas or spaces; empty: the end of the series)",
                         key=key, max_chars=8000)
    out = answer(task, model, text)  # a bad input: its message and None; the answer's notes as captions
    if out is None:
        return None
    st.markdown(f"**The next {H} values:** " + ", ".join(f"{v:.5g}" for v in out["forecast"]))
    st.altair_chart(forecast_lines(pd.DataFrame(forecast_rows(out)), alt.X("step:Q", title="steps from now"), 220),
                    width="stretch")
    return text


# ---- 5 · take it home ------------------------------------------------------------------------------------------------

def _take_home(run: dict) -> None:
    from core.yourdata.export import check_name, check_title, plugin_zip, suggest_name, weights_zip
    from core.yourdata.kinds import task_for_spec

    st.subheader("5 · Take it home", anchor=False)
    table, task = run["table"], run["task"]
    c = st.columns(2)
    name = c[0].text_input("Task name (a folder and a URL)", value=suggest_name(table.name), key="yd_name",
                           max_chars=40, help="lower_snake_case, e.g. my_reviews")
    title = c[1].text_input("Title (in the navigation)", value=name.replace("_", " ").capitalize(), key="yd_title",
                            max_chars=60)
    try:
        check_name(name)
        check_title(" ".join(title.split()))
    except BadInput as exc:
        show_error(exc)
        return
    title = " ".join(title.split())
    key = (name, title)
    if key not in run["exports"]:
        named = task_for_spec(task.spec, name=name, title=title)
        run["exports"] = {key: (weights_zip(named, run["result"], run["raw"]), plugin_zip(named, table))}
    weights, plugin = run["exports"][key]
    d = st.columns(2)
    d[0].download_button("Download the weights", weights, file_name=f"{name}-weights.zip", mime="application/zip",
                         icon=":material/download:", key="yd_dl_weights", width="stretch",
                         help="model.safetensors + card.json, the format of the app's weights/ folder (every cell "
                              "trained, the best one served).")
    d[1].download_button("Download the plugin", plugin, file_name=f"{name}-plugin.zip", mime="application/zip",
                         icon=":material/extension:", key="yd_dl_plugin", width="stretch",
                         help="A task folder for tasks/ (what core.new_task writes for this shape, reading your file) "
                              "and your data in its own folder.")
    st.markdown("In an RNN Lab checkout: unzip the plugin, move its `" + name + "/` folder into `tasks/` and its `"
                + name + "-data/` folder beside it, then train it and open the app:")
    st.code(f"python -m core.train {name} --data-dir {name}-data\nstreamlit run streamlit_app.py", language="bash")
    st.caption(f"Or skip the training: unzip the weights into `weights/` (it makes `weights/{name}/`) and the app "
               "serves the model you trained here.")


# ---- the page ---------------------------------------------------------------------------------------------------------

def render() -> None:
    for k, v in DEFAULTS.items():
        st.session_state.setdefault(k, v)
    st.title("Your data", anchor=False)
    st.markdown("Bring your own table and RNN Lab tells you which recurrent shape fits it and why, trains it while "
                "you watch, lets you try it and look inside, and hands you the model and a ready plugin. Nothing "
                "you bring is kept after you leave.")
    got = _bring_data()
    if got is None:
        return
    table, raw = got
    dkey = hashlib.sha256(raw + repr((table.delimiter, table.header, table.columns)).encode()).hexdigest()[:12]
    st.divider()
    picked = _which_shape(table, dkey)
    if picked is None:
        return
    choice, checked = picked
    st.divider()
    _train_live(choice, checked, raw, dkey)
    run = st.session_state.get("yd_run")
    if run is None:
        return
    if run["dkey"] != dkey or run["choice"] != choice:
        st.caption("The results below are from the last run, on the data and shape it had (press **Train** for "
                   "these).")
    st.divider()
    st.subheader("4 · Try it and look inside", anchor=False)
    _results(run)
    st.divider()
    _take_home(run)
