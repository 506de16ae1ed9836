"""The Lesson: the lesson's ideas in order, one step each; at every step the student answers a question about a live
model, then the app runs that model and shows its answer beside the guess, with why (core.lesson has the steps, the
reveals and the step-through's numbers).

The step and the student's answers live in the URL (``?lesson_step=3&lesson_p=5y.0y``), so a link opens the same
step with the same answers, and a teacher's ``?lesson_step=N`` opens step N for a class. The reveal of the cell
comparison trains four networks (a few seconds on a busy server): it starts in the background the first time any
visitor opens the lesson, so it is ready long before a student reaches that step.
"""

from __future__ import annotations

import threading

import altair as alt
import pandas as pd
import streamlit as st

from core import lesson as L
from core.ui.load import get_model, prefetch
from core.ui.widgets import GLOSSARY, md_escape, show_error

STEP_PARAM, PROGRESS_PARAM = "lesson_step", "lesson_p"  # the page's query parameters
SS_STEP, SS_PROGRESS, SS_REVEALS = "lesson_step_i", "lesson_progress", "lesson_reveals"  # session state
class ModelMissing(Exception):
    """A model a reveal needs cannot be loaded here (the loader has shown why)."""


def tiny_network() -> L.TinyRNN:
    """The step-through's network, trained once per process from a fixed seed (core.lesson.shared_tiny)."""
    return L.shared_tiny()


def _warm_step(reg, step: L.Step) -> None:
    """Load the models this step's reveal runs in a background thread while the student reads and answers, so the
    reveal does not wait for a model to load (it waits for this load if it is still under way)."""
    def warm() -> None:
        for use in step.uses:
            if use == "tiny":
                L.shared_tiny()
                continue
            name, _, variant = use.partition(":")
            if name in reg.tasks:
                prefetch(reg.tasks[name], variant or None)

    if step.uses:
        threading.Thread(target=warm, name=f"lesson-warm-{step.key}", daemon=True).start()


def _warm_race() -> None:
    """Start the cell comparison in a background process, once per server process (it is ready by step 7)."""
    L.race_in_background()


def _models(reg) -> L.Models:
    def model(name: str, variant: str | None):
        task = reg.tasks.get(name)
        if task is None:
            raise ModelMissing(name)
        got = get_model(task, variant)
        if got is None:
            raise ModelMissing(name)
        return got

    return L.Models(task=lambda name: reg.tasks[name], model=model, tiny=tiny_network)


# ---- state: the step shown and the answers, in the session and in the URL ------------------------------------------

def _progress() -> dict[str, L.Answer]:
    if SS_PROGRESS not in st.session_state:
        st.session_state[SS_PROGRESS] = L.decode_progress(st.query_params.get(PROGRESS_PARAM))
    return st.session_state[SS_PROGRESS]


def _current() -> int:
    """The step shown: the link's ``?lesson_step=N`` on the session's first run here, then the session's own."""
    if SS_STEP not in st.session_state:
        st.session_state[SS_STEP] = L.step_index(st.query_params.get(STEP_PARAM, 1))
    return st.session_state[SS_STEP]


def _go(i: int) -> None:
    st.session_state[SS_STEP] = max(0, min(len(L.STEPS) - 1, int(i)))


def _write_url(i: int, progress: dict[str, L.Answer]) -> None:
    step = str(i + 1)
    if st.query_params.get(STEP_PARAM) != step:
        st.query_params[STEP_PARAM] = step
    code = L.encode_progress(progress)
    if code and st.query_params.get(PROGRESS_PARAM) != code:
        st.query_params[PROGRESS_PARAM] = code
    elif not code and PROGRESS_PARAM in st.query_params:
        del st.query_params[PROGRESS_PARAM]


def _base_url() -> str:
    try:
        return (st.context.url or "").split("?")[0]
    except Exception:  # noqa: BLE001 -- no browser context (tests): a relative link
        return ""


# ---- drawing ----------------------------------------------------------------------------------------------------------

def _pick_step() -> None:
    """The step list's choice (a step key) -> the step shown."""
    key = st.session_state.get("lesson_pick_step")
    if key in L.STEP_KEYS:
        _go(L.STEP_KEYS.index(key))


def _navigation(i: int, progress: dict[str, L.Answer]) -> None:
    answered, right = L.score(progress)
    st.progress(answered / len(L.STEPS),
                text=f"Answered {answered} of {len(L.STEPS)} questions; the model agreed with {right}.")
    st.session_state["lesson_pick_step"] = L.STEP_KEYS[i]
    st.selectbox("Step", L.STEP_KEYS, key="lesson_pick_step", on_change=_pick_step,
                 format_func=lambda k: f"{L.STEP_KEYS.index(k) + 1}. {L.STEPS[L.STEP_KEYS.index(k)].title}")


def _link_box(i: int, progress: dict[str, L.Answer]) -> None:
    base = _base_url()
    with st.popover("Link to this step", icon=":material/link:"):
        st.caption("For a class: this link opens the lesson at this step, with no answers.")
        st.code(f"{base}?{STEP_PARAM}={i + 1}", language=None, wrap_lines=True)
        code = L.encode_progress(progress)
        if code:
            st.caption("With your answers so far (the model's answers are computed again when the link is opened):")
            st.code(f"{base}?{STEP_PARAM}={i + 1}&{PROGRESS_PARAM}={code}", language=None, wrap_lines=True)


def _num(v: float, digits: int = 3) -> str:
    """A factor in a product: negative numbers in brackets, with a real minus sign."""
    return f"(−{abs(v):.{digits}f})" if v < 0 else f"{v:.{digits}f}"


def _plus(v: float, digits: int = 3) -> str:
    """A term added at the end: "+ 0.977" or "− 0.302"."""
    return f"{'−' if v < 0 else '+'} {abs(v):.{digits}f}"


def _step_through() -> None:
    """The recurrence with the one-unit network's numbers, one step at a time."""
    model = tiny_network()
    st.markdown("#### Step through it yourself")
    st.caption(f"The network: one tanh unit (w, w', b_o) and one sigmoid output (w1, b_y), trained on this server "
               f"({L.TINY_STEPS} Adam steps on random bits, seed {L.TINY_SEED}). On fresh sequences of 12 "
               f"bits it answers {L.tiny_accuracy(model):.0%} of the steps right. Type other bits to see "
               "what it does with them.")
    text = st.text_input("Bits the network reads", value="0 1 0 0 0", key="lesson_bits", max_chars=40)
    try:
        bits = L.parse_bits(text)
    except ValueError as exc:
        st.warning(md_escape(str(exc)), icon=":material/edit_note:")
        return
    steps = L.recurrence_steps(model, bits)
    t = st.slider("Step t", 1, len(steps), 1, key=f"lesson_t_{len(steps)}") if len(steps) > 1 else 1
    s = steps[t - 1]
    st.markdown(f"**t = {s.t}**: reads x_{s.t} = {s.x:g}, starts from o_{s.t - 1} = {s.o_prev:.4f}")
    st.markdown(
        f"o_{s.t} = tanh(x_{s.t}·w + o_{s.t - 1}·w' + b_o) = tanh({s.x:g} × {_num(s.w)} + {_num(s.o_prev, 4)} × "
        f"{_num(s.w_rec)} {_plus(s.b_o)}) = tanh({s.pre:.4f}) = **{s.o:.4f}**")
    st.markdown(f"y_{s.t} = sigmoid(w1·o_{s.t} + b_y) = sigmoid({_num(s.w1)} × {_num(s.o, 4)} {_plus(s.b_y)}) = "
                f"**{s.y:.4f}**: {'a 1 has come' if s.y >= 0.5 else 'no 1 yet'}")
    rows = pd.DataFrame([{"t": r.t, "x_t": r.x, "o_(t-1)": r.o_prev, "x_t·w + o_(t-1)·w' + b_o": r.pre,
                          "o_t": r.o, "y_t": r.y} for r in steps[:t]])
    st.dataframe(rows, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%.4f") for c in rows.columns if c != "t"})


def _chart(df: pd.DataFrame) -> None:
    x, y = df.attrs["x"], df.attrs["y"]
    scale = alt.Scale(type="log") if df.attrs.get("log") else alt.Scale()
    chart = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X(f"{x}:Q", title=x), y=alt.Y(f"{y}:Q", title=y, scale=scale),
        tooltip=[alt.Tooltip(f"{x}:Q"), alt.Tooltip(f"{y}:Q", format=".2e")]).properties(height=240)
    st.altair_chart(chart, width="stretch")


def _show_reveal(step: L.Step, answer: L.Answer, reveal: L.Reveal) -> None:
    right = L.is_right(step, answer.picked, reveal)
    mine = ", ".join(step.choices[k] for k in answer.picked)
    left, rightcol = st.columns(2)
    with left:
        with st.container(border=True, key=f"lesson_guess_{step.key}"):
            st.markdown("**Your answer**")
            st.markdown(md_escape(mine))
            if right:
                st.success("The model agrees.", icon=":material/check_circle:")
            else:
                st.warning("The model says otherwise.", icon=":material/cancel:")
    with rightcol:
        with st.container(border=True, key=f"lesson_model_{step.key}"):
            st.markdown("**The model, run just now**")
            st.markdown(md_escape(reveal.said))
    st.markdown(reveal.why)
    if reveal.chart is not None:
        _chart(reveal.chart)
    if reveal.table is not None:
        st.dataframe(reveal.table, hide_index=True, width="stretch")


def _more_link(step: L.Step, pages: dict) -> None:
    label, path, params = step.more
    page = pages.get(path) if path else None
    if page is None:
        return
    try:
        st.page_link(page, label=label, icon=":material/open_in_new:", query_params=params or None)
    except Exception:  # noqa: BLE001 -- a page that is not registered (a test without navigation): no link
        pass


def _question(step: L.Step, reveal_fn, progress: dict[str, L.Answer]) -> None:
    st.markdown(f"##### {md_escape(step.question)}")
    saved = progress.get(step.key)
    key = f"lesson_ans_{step.key}"
    if key not in st.session_state and saved is not None:
        st.session_state[key] = ([step.choices[k] for k in saved.picked] if step.multi else step.choices[saved.picked[0]])
    if step.multi:
        pick = st.pills("Your answer", step.choices, selection_mode="multi", key=key, label_visibility="collapsed")
        picked = tuple(sorted(step.choices.index(p) for p in (pick or [])))
    else:
        pick = st.radio("Your answer", step.choices, index=None, key=key, label_visibility="collapsed")
        picked = (step.choices.index(pick),) if pick is not None else ()
    reveals = st.session_state.setdefault(SS_REVEALS, {})
    clicked = st.button("Show the model's answer", key=f"lesson_reveal_{step.key}", type="primary",
                        icon=":material/play_arrow:")
    if not picked and saved is None:
        if clicked:
            st.info("Pick your answer first: the model's answer is shown once you have committed to yours.",
                    icon=":material/touch_app:")
        else:
            st.caption("Answer first: the model's answer appears once you have committed to yours.")
        return
    if clicked and not picked:
        clicked = False  # the answer was cleared: the saved one stands
    if clicked or (saved is not None and step.key not in reveals):
        if clicked:
            saved = L.Answer(picked, None)
        try:
            with st.spinner("Running the model ..."):
                reveals[step.key] = reveal_fn(step)
        except ModelMissing:
            st.info("This question's model is not available on this server, so its answer cannot be shown.")
            return
        progress[step.key] = L.Answer(saved.picked, L.is_right(step, saved.picked, reveals[step.key]))
    if step.key in reveals and saved is not None:
        _show_reveal(step, progress[step.key], reveals[step.key])


def _glossary(steps) -> None:
    st.divider()
    st.markdown("#### Words used in this lesson")
    terms = {**{t: GLOSSARY[t] for s in steps for t in s.terms if t in GLOSSARY},
             **{t: L.LESSON_TERMS[t] for s in steps for t in s.terms if t in L.LESSON_TERMS}}
    for term, text in terms.items():
        st.markdown(f'<span id="{L.term_anchor(term)}"></span>**{md_escape(term)}**: {text}',
                    unsafe_allow_html=True)


def render(reg, pages: dict | None = None) -> None:
    """The Lesson page. ``pages``: url path -> st.Page, for the links to the full pages."""
    pages = pages or {}
    _warm_race()
    st.title("Lesson", anchor=False)
    st.markdown("The lesson's ideas, one step each. At every step, answer the question first; then the app runs the "
                "real model and shows its answer beside yours.")
    progress = _progress()
    i = _current()
    nav = st.container()  # filled last: the count includes an answer revealed in this run
    step = L.STEPS[i]
    st.subheader(f"Step {i + 1} of {len(L.STEPS)}: {step.title}", anchor=False)
    st.markdown(step.idea)
    _warm_step(reg, step)
    models = _models(reg)

    def reveal_fn(s: L.Step) -> L.Reveal:
        return s.reveal(models)

    try:
        _question(step, reveal_fn, progress)
    except Exception as exc:  # noqa: BLE001 -- one step's failure must leave the navigation usable
        show_error(exc, f"running the model of step {i + 1}")
    if step.key == "recurrence" and step.key in st.session_state.get(SS_REVEALS, {}):
        _step_through()
    _more_link(step, pages)
    with st.container(horizontal=True, gap="small"):
        st.button("Previous step", key="lesson_prev", disabled=i == 0, on_click=_go, args=(i - 1,),
                  icon=":material/arrow_back:")
        st.button("Next step", key="lesson_next", disabled=i == len(L.STEPS) - 1, on_click=_go, args=(i + 1,),
                  icon=":material/arrow_forward:", type="secondary")
        _link_box(i, progress)
    with nav:
        _navigation(i, progress)
    _write_url(i, progress)
    _glossary(L.STEPS)
