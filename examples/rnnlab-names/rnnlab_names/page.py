"""The pages of the two names tasks. Imported only by the app (``Task.page``); core.ui is imported lazily.

  render_origin    type a surname -> top-3 languages, how the guess changes letter by letter, and where the model
                   goes wrong on the test split (the confusion matrix on its card)
  render_generate  pick a language, a first letter, a temperature and a seed -> new surnames, and for the first
                   one, what the model could have written at every step
"""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st


# ---- names_origin ---------------------------------------------------------------------------------------------
def render_origin(task):
    from core.ui.page import task_page

    task_page(task, try_it=lambda model: _try_origin(task, model))


def letters_chart(prefix: list[dict], languages: list[str], height: int = 220):
    """The guess after each letter: one straight-segment line per language over the letters of the name (the x
    axis shows the letter read at each step), on a fixed 0..1 axis -- a probability, never smoothed past 0 or 1."""
    import json

    import altair as alt

    letters = [p["prefix"][-1:] or " " for p in prefix]
    rows = [{"step": t + 1, "letter": letters[t], "prefix": p["prefix"], "language": lang,
             "probability": min(max(float(p[lang]), 0.0), 1.0)} for t, p in enumerate(prefix) for lang in languages]
    axis = alt.Axis(labelExpr=f"{json.dumps(letters)}[datum.value - 1]", labelAngle=0, labelFontSize=13,
                    title="letter read (the guess after reading the name up to here)")
    base = alt.Chart(pd.DataFrame(rows)).encode(
        x=alt.X("step:O", axis=axis),
        y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1], clamp=True), axis=alt.Axis(format="%"),
                title="probability"),
        color=alt.Color("language:N", sort=languages, title="language"),
        tooltip=["prefix", "language", alt.Tooltip("probability:Q", format=".1%")])
    return alt.layer(base.mark_line(interpolate="linear", strokeWidth=2), base.mark_point(filled=True, size=40)
                     ).properties(height=height)


def _try_origin(task, model):
    from core.ui.charts import bar_chart
    from core.ui.widgets import md_escape, show_error, text_input_with_demos

    name = text_input_with_demos(task, key=f"{task.name}_q", label="A surname", max_chars=100)  # the URL shares it
    if not name.strip():
        st.info("Type a surname or pick a demo.")
        _confusion(model)
        return None
    try:
        out = task.predict(model, name)
    except Exception as exc:  # noqa: BLE001 -- BadInput becomes a friendly warning
        show_error(exc, "classifying")
        _confusion(model)
        return None
    for note in out["notes"]:
        st.caption(md_escape(note))
    cols = st.columns(3)
    for col, row in zip(cols, out["top3"]):
        col.metric(row["language"], f"{row['prob']:.1%}")
    if out.get("guess"):
        st.warning(md_escape(out["guess"]), icon=":material/help:")
    probs = pd.DataFrame({"language": list(out["probs"]), "probability": list(out["probs"].values())})
    st.altair_chart(bar_chart(probs, "language", "probability", horizontal=True, sort="-x",
                              title="All 18 languages"), width="stretch")
    top = [r["language"] for r in out["top3"]]
    if out["prefix"] and top:
        st.caption("The guess after each letter (the same model reading only the name up to that letter): where "
                   "does the name give itself away?")
        st.altair_chart(letters_chart(out["prefix"], top), width="stretch")
    _confusion(model)
    return out["name"]


def _confusion(model) -> None:
    """The test split's confusion matrix, from the card (core.train stored it in meta after training)."""
    from core.ui.charts import heatmap

    card = model.runtime.card
    conf = card.meta.get("test_confusion") if card is not None else None
    if not conf:
        return
    labels, matrix = conf["labels"], conf["matrix"]
    with st.expander("Where it goes wrong: the confusion matrix on the held-out test names", expanded=False):
        rows = []
        for i, true in enumerate(labels):
            n = max(sum(matrix[i]), 1)
            for j, pred in enumerate(labels):
                rows.append({"true": true, "predicted": pred, "count": matrix[i][j], "share of row": matrix[i][j] / n})
        st.altair_chart(heatmap(pd.DataFrame(rows), "predicted", "true", "share of row", x_type="nominal",
                                tooltip=["true", "predicted", "count", "share of row"], domain=(0, 1),
                                height=28 * len(labels)),
                        width="stretch")
        recall = pd.DataFrame([{"language": lab, "test names": sum(matrix[i]),
                                "recall": matrix[i][i] / max(sum(matrix[i]), 1)} for i, lab in enumerate(labels)])
        st.caption("Rows are the true language, columns the model's answer; each row sums to 1. The classes are "
                   "very unbalanced (Russian has more test names than the twelve smallest languages together), "
                   "which is why the card reports macro-F1 beside accuracy.")
        st.dataframe(recall.sort_values("test names", ascending=False), hide_index=True, width="stretch")


# ---- names_generate -------------------------------------------------------------------------------------------
# Widget keys (and URL parameters) start with the task's name: a page owns its parameters.
GEN_KEYS = {"language": "names_generate_lang", "start": "names_generate_start", "temperature": "names_generate_temp",
            "seed": "names_generate_seed", "count": "names_generate_n"}
GEN_DEFAULTS = {"language": "Russian", "start": "K", "temperature": 0.8, "seed": 0, "count": 6}
URL_INTS = {GEN_KEYS["seed"]: (0, 2**31 - 1), GEN_KEYS["count"]: (1, 20)}  # number boxes, kept in the URL by hand


def url_int(key: str, default: int) -> int:
    """The whole number a shared link carries for ``key``, if it is one in range, else ``default``.

    The number boxes are not bound to the URL by Streamlit: a hand-made link (?seed=-1e999) would make its
    conversion fail before any of our code runs. So they are read here and written back after each run."""
    low, high = URL_INTS[key]
    try:
        v = float(st.query_params.get(key, ""))
        return int(v) if math.isfinite(v) and v == int(v) and low <= v <= high else default
    except (TypeError, ValueError, OverflowError):
        return default


def render_generate(task):
    from core.ui.page import task_page

    task_page(task, try_it=lambda model: _try_generate(task, model))


def _try_generate(task, model):
    from core.ui.widgets import demo_buttons, md_escape, show_error

    labels = list(model.runtime.labels)
    demo = demo_buttons(task, f"{task.name}_try")
    if demo is not None:  # a demo fills the widgets before they are drawn
        for k, v in demo.input.items():
            if k in GEN_KEYS:
                st.session_state[GEN_KEYS[k]] = v
        st.caption(md_escape(demo.note))
    for k, v in GEN_DEFAULTS.items():
        key = GEN_KEYS[k]
        if key in URL_INTS:
            st.session_state.setdefault(key, url_int(key, v))
        elif key not in st.query_params:
            st.session_state.setdefault(key, v)
    if st.session_state.get(GEN_KEYS["language"]) not in labels:  # e.g. a hand-edited URL
        st.session_state[GEN_KEYS["language"]] = labels[0]
    c = st.columns([2, 1, 2, 1, 1])
    settings = {
        "language": c[0].selectbox("language", labels, key=GEN_KEYS["language"], bind="query-params"),
        "start": c[1].text_input("first letter(s)", key=GEN_KEYS["start"], max_chars=10, bind="query-params",
                                 help="empty: the model picks the first letter too"),
        "temperature": c[2].slider("temperature", 0.1, 2.0, step=0.05, key=GEN_KEYS["temperature"],
                                   bind="query-params", help="below 1: safer, more typical; above 1: stranger"),
        "seed": c[3].number_input("seed", 0, 2**31 - 1, step=1, key=GEN_KEYS["seed"],
                                  help="the same settings and seed give the same names"),
        "count": c[4].number_input("how many", 1, 20, step=1, key=GEN_KEYS["count"]),
    }
    for k in ("seed", "count"):  # the URL shares them too (see url_int)
        st.query_params[GEN_KEYS[k]] = str(settings[k])
    try:
        out = task.predict(model, settings)
    except Exception as exc:  # noqa: BLE001 -- BadInput becomes a friendly warning
        show_error(exc, "generating")
        return None
    for note in out.get("notes") or []:
        st.caption(md_escape(note))
    firsts = model.runtime.meta.get("first_letters", {}).get(out["language"], [])
    if out["start"] and firsts and out["start"][0] not in firsts:
        st.caption(f"No {md_escape(out['language'])} name in the training data starts with "
                   f"'{md_escape(out['start'][0])}': expect the model to improvise.")
    st.markdown("  \n".join(f"**{md_escape(n) or '(empty)'}**" for n in out["names"]))
    steps = out["first_name_steps"]
    if steps:
        st.caption(f"How the first name was written, one character at a time (temperature {out['temperature']:g}):")
        st.dataframe(pd.DataFrame([{"step": s["step"], "chose": s["chose"], "probability": round(s["prob"], 3),
                                    "the top 3 it could have chosen": ", ".join(f"{t} {p:.2f}" for t, p in s["top3"])}
                                   for s in steps]), hide_index=True, width="stretch")
    # Inspect explains the first name shown here (teacher-forced as the loss's target).
    return {**settings, "name": out["names"][0]} if out["names"] else settings
