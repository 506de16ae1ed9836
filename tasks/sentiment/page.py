"""The sentiment page: type a review, read the answer, watch it form word by word, see which words pushed it."""

from __future__ import annotations

import json

import altair as alt
import pandas as pd
import streamlit as st

MAX_CHART_WORDS = 60  # beyond this the x axis shows step numbers (words stay in the tooltip)


def render(task):
    from core.ui.page import task_page

    task_page(task, try_it=lambda model: _try_it(task, model), inspect_extra=lambda m, x: _inspect_extra(task, m, x))


# ---- Try it ----------------------------------------------------------------------------------------------------
def _try_it(task, model):
    from core.ui.widgets import md_escape, show_error, text_input_with_demos

    text = text_input_with_demos(task, key="q", label="A movie review", area=True, max_chars=100_000,
                                 placeholder="Type a review, e.g. The movie was not at all good.")
    if not text or not text.strip():
        st.info("Type a review (a sentence or more) or pick a demo.")
        _negation_table(task, model)
        return None
    try:
        out = task.predict(model, text)
    except Exception as exc:  # noqa: BLE001 -- BadInput becomes a friendly warning, anything else a short error
        show_error(exc, "classifying this review")
        _negation_table(task, model)
        return None

    p = out["p_positive"]
    c = st.columns([1, 1, 2])
    c[0].metric("The model says", out["label"])
    c[1].metric("P(positive)", f"{p:.1%}")
    c[2].progress(p, text=f"negative ← {p:.2f} → positive")
    if out.get("guess"):
        st.warning(md_escape(out["guess"]), icon=":material/help:")
    if out["note"]:
        st.info(md_escape(out["note"]))
    if out["unknown"]:
        shown = ", ".join(out["unknown"][:20]) + (" ..." if len(out["unknown"]) > 20 else "")
        st.caption(f"Words the model never saw in training (read as one shared *unknown word*): {md_escape(shown)}")

    st.subheader("Reading word by word", anchor=False)
    st.caption("Many to one: the network reads one word at a time and only its last state gives the answer. This is "
               "the answer it *would* give if the review stopped after each word -- watch it turn at 'not', 'but' "
               "or the last word." + (" (A bidirectional model re-reads each prefix on its own; for long reviews "
                                      "only some prefixes are shown.)" if model.rnn.bidirectional else ""))
    st.altair_chart(_prefix_chart(out), width="stretch")

    _contributions(task, model, text, out)
    _negation_table(task, model)
    return text


def _prefix_chart(out: dict) -> alt.Chart:
    toks = out["tokens"]
    df = pd.DataFrame({"step": [e - 1 for e in out["prefix_ends"]], "P(positive)": out["prefix_p"]})
    df["word"] = [toks[s] for s in df["step"]]
    df["read so far"] = [" ".join(toks[max(0, s - 7):s + 1]) for s in df["step"]]
    if len(toks) <= MAX_CHART_WORDS:
        # The words themselves label the axis (a JSON array literal, so no word can break the expression).
        axis = alt.Axis(labelExpr=f"{json.dumps(toks)}[datum.value]", labelAngle=-45, values=list(range(len(toks))),
                        title="word")
        x = alt.X("step:Q", axis=axis, scale=alt.Scale(domain=[0, max(0, len(toks) - 1)]))
    else:
        x = alt.X("step:Q", title="word number")
    y = alt.Y("P(positive):Q", scale=alt.Scale(domain=[0, 1]), title="P(positive) after this word")
    tip = [alt.Tooltip("step:Q"), alt.Tooltip("word:N"), alt.Tooltip("P(positive):Q", format=".3f"),
           alt.Tooltip("read so far:N")]
    base = alt.Chart(df).encode(x=x, y=y, tooltip=tip)
    line = base.mark_line(point=True, strokeWidth=2)
    half = alt.Chart(pd.DataFrame({"y": [0.5]})).mark_rule(strokeDash=[4, 4], color="gray").encode(y="y:Q")
    return alt.layer(half, line).properties(height=260)


@st.cache_data(show_spinner=False, max_entries=64)
def _pushes(task_name: str, model_id: str, text: str, _task, _model) -> dict:
    return _task.word_pushes(_model, text)


def _contributions(task, model, text, out) -> None:
    from core.ui.inspector import model_key
    from core.ui.widgets import show_error, show_tokens

    st.subheader("Which words pushed the answer", anchor=False)
    try:
        push = _pushes(task.name, model_key(model), text, task, model)
    except Exception as exc:  # noqa: BLE001
        show_error(exc, "computing word contributions")
        return
    if not push["tokens"]:
        st.info("No word contributions for this input.")
        return
    show_tokens(push["tokens"], push["values"], signed=True, name="push towards positive (log-odds)", fmt="{:.3g}")
    st.caption(push_caption(push))


def push_caption(push: dict) -> str:
    """What the colours mean, with this review's numbers, stated so that they add up: the log-odds move from the
    baseline's to this review's, and the pushes share that change (or, when the estimate is rough, say by how much
    they miss it)."""
    m, b, total = push["margin"], push["baseline"], sum(push["values"])
    change = m - b
    text = (f"Orange words push towards *positive*, blue words towards *negative*; hover a word for its value. The "
            f"answer's log-odds ln(P / (1 − P)) go from {b:+.2f} for a review of as many unknown words (nearly "
            f"neutral) to {m:+.2f} for this one: a change of {change:+.2f}, which the pushes share out word by "
            "word. They come from *integrated gradients*: the gradient of the log-odds with respect to each word's "
            "vector, averaged along a straight path from the unknown words to this review.")
    if push["gap"] > 0.1 * max(1.0, abs(change)):
        text += (f" On this review the estimate is rough: the pushes add up to {total:+.2f}, not {change:+.2f} (the "
                 f"network's answer jumps along the path, which {push['steps']} points on it do not capture).")
    elif f"{total:+.2f}" == f"{change:+.2f}":
        text += " They add up to exactly that."
    else:
        text += (f" They add up to {total:+.2f}, {abs(total - change):.2f} away from it: integrated gradients on "
                 f"{push['steps']} points of the path is an estimate.")
    return text


@st.cache_data(show_spinner=False, max_entries=8)
def _negation_rows(task_name: str, model_id: str, _task, _model) -> list[dict]:
    return _task.negation_report(_model)


def _negation_table(task, model) -> None:
    from core.ui.inspector import model_key

    st.subheader("The negation test", anchor=False)
    rows = _negation_rows(task.name, model_key(model), task, model)
    right = sum(r["right"] for r in rows)
    st.markdown(f"Sentences written for this project where the answer hangs on a negation or a *but*. "
                f"The model gets **{right} of {len(rows)}** right ({right / max(1, len(rows)):.0%}).")
    st.caption("Not a blind test: these sentences guided two choices of the training recipe (no word dropout; "
               "256 units per direction for the BiLSTM, after trying 100, 160 and two layers of 100), though "
               "never which epoch is served -- validation accuracy alone picks it. The model card's history shows "
               "the score after every epoch, for every cell.")
    df = pd.DataFrame(rows)[["right", "sentence", "expected", "model", "p_positive", "kind"]]
    st.dataframe(df, hide_index=True, width="stretch", height=35 * (len(df) + 1) + 3,
                 column_config={"right": st.column_config.CheckboxColumn("right?", width="small"),
                                "sentence": st.column_config.TextColumn("sentence", width="large"),
                                "p_positive": st.column_config.ProgressColumn("P(positive)", min_value=0.0,
                                                                               max_value=1.0, format="%.2f")})


# ---- Inspect tab extra -----------------------------------------------------------------------------------------
def _inspect_extra(task, model, text) -> None:
    from core.ui.inspector import run_inspection

    st.subheader("‖dL/dh_t‖ over the words", anchor=False)
    try:
        ins = run_inspection(task, model, text)
    except Exception:  # noqa: BLE001 -- the inspector above already showed the message
        return
    h = ins.hidden
    h = h[h.layer == 0].sort_values(["direction", "step"])
    fwd = h[h.direction == "forward"]
    n = len(fwd)
    st.caption("The same gradient as **Gradient through time** above, with the review's words on the x axis. The "
               "loss is computed from the answer after the last word, so ‖dL/dh_t‖ says how much the state after "
               "each word can still change that answer: the first words of a long review reach it only through "
               "every later step, and their gradient is the smallest.")
    if n == 0:
        return
    df = h[["step", "direction", "grad_norm"]].copy()
    df = df[df.grad_norm > 0]
    df["word"] = [ins.labels[t] if t < len(ins.labels) else "" for t in df.step]
    if n <= MAX_CHART_WORDS:
        axis = alt.Axis(labelExpr=f"{json.dumps(list(ins.labels[:n]))}[datum.value]", labelAngle=-45,
                        values=list(range(n)), title="word")
    else:
        axis = alt.Axis(title="word number")
    chart = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("step:Q", axis=axis, scale=alt.Scale(domain=[0, max(0, n - 1)])),
        y=alt.Y("grad_norm:Q", scale=alt.Scale(type="log"), title="‖dL/dh_t‖ (log scale)"),
        color=alt.Color("direction:N", legend=alt.Legend(orient="top") if model.rnn.bidirectional else None),
        tooltip=[alt.Tooltip("step:Q"), alt.Tooltip("word:N"), alt.Tooltip("direction:N"),
                 alt.Tooltip("grad_norm:Q", format=".3e", title="‖dL/dh_t‖")]).properties(height=260)
    st.altair_chart(chart, width="stretch")
    msg = ""
    if n >= 10 and float(fwd.grad_norm.iloc[-1]) > 0:
        k = min(5, n // 2)
        first = float(fwd.grad_norm.iloc[:k].mean())
        last = float(fwd.grad_norm.iloc[-k:].mean())
        msg = (f"On this review ({n} words) the first {k} words get on average **{first / last:.2g}×** the gradient "
               f"of the last {k}.")
    else:
        msg = "This input is short; try the demo **a long review** to see the gradient fade over many words."
    if model.rnn.bidirectional:
        msg += (" This model is bidirectional: its backward half reads from the end, so for that half the *last* "
                "words are the far ones.")
    st.markdown(msg)
