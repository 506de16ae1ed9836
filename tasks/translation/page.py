"""The translation page: English in, French out; where each French word looked (attention), what the decoder
considered at every step, the beam's candidates, and "force a word" to steer the rest of the sentence."""

from __future__ import annotations

import html

import altair as alt
import pandas as pd
import streamlit as st

ATTRIBUTION = ("Data: Tatoeba sentence pairs (tatoeba.org) as exported by ManyThings.org (www.manythings.org/anki), "
               "CC-BY 2.0 (France).")


def render(task):
    from core.ui.page import task_page

    task_page(task, try_it=lambda model: _try_it(task, model), inspect_extra=lambda m, x: _inspect_extra(task, m, x))


def _label(tokens: list[str]) -> list[str]:
    """Unique axis labels in order ("3 · le"): the same word twice stays two cells."""
    return [f"{i + 1} · {t.replace('▁', '') or '␣'}" for i, t in enumerate(tokens)]


# ---- Try it ----------------------------------------------------------------------------------------------------
def _try_it(task, model):
    """``model``: the module that answers (the ensemble, or the attention model alone: the frame's toggle)."""
    from core.ui.page import answer_caption, answered_by_ensemble
    from core.ui.widgets import md_escape, show_error, text_input_with_demos

    # The box takes far more than the task reads (MAX_CHARS), so a long paste is not cut silently by the browser:
    # prepare() says how much was read.
    text = text_input_with_demos(task, key="q", label="English sentence", max_chars=100_000,
                                 placeholder="Type an English sentence, e.g. How are you doing?")
    c = st.columns(2)
    beam = c[0].slider("Beam width", 1, 10, 5, key=f"{task.name}_beam", bind="query-params",
                       help="How many partial translations are kept at every step (1 = greedy decoding).")
    max_len = c[1].slider("Maximum output length (tokens)", 5, 60, 30, key=f"{task.name}_maxlen",
                         bind="query-params")
    st.caption(ATTRIBUTION)
    if not text or not text.strip():
        st.info("Type an English sentence or pick a demo.")
        return None
    try:
        out = task.predict(model, {"text": text, "beam": beam, "max_len": max_len})
    except Exception as exc:  # noqa: BLE001 -- BadInput becomes a friendly warning
        show_error(exc, "translating")
        return None

    st.markdown(f"### {md_escape(out['translation']) or '*(empty)*'}")
    if out.get("guess"):
        st.warning(md_escape(out["guess"]), icon=":material/help:")
    m = st.columns(3)
    m[0].metric("English tokens (n)", out["n_source"])
    m[1].metric("French tokens (m)", out["n_output"])
    m[2].metric("Best score (log-prob / length)", f"{out['candidates'][0]['score']:.3f}")
    n, m_ = out["n_source"], out["n_output"]
    rel = f"n = {n}, m = {m_}: equal this time, by chance" if n == m_ else f"n = {n} ≠ m = {m_}"
    st.caption(f"{rel}. The encoder reads all n English tokens, then the decoder writes until it emits the "
               "end-of-sentence token -- the two lengths are independent.")
    answer_caption(task)  # who wrote it: the ensemble, or the attention model alone
    if out["note"]:
        st.info(md_escape(out["note"]))
    unknown = [t.replace("▁", "") for t, u in zip(out["source_tokens"], out["source_unknown"]) if u]
    if unknown:
        st.caption("Not in the English vocabulary, read as *unknown* and copied into the French as typed (the "
                   "translation may not end before each has its place, where the decoder writes *unknown*): "
                   f"{md_escape(', '.join(unknown[:20]))}")

    _attention(out, answered_by_ensemble(task))
    _steps_and_beam(out)
    _force(task, model, text, out, beam, max_len)
    return text


def _attention(out: dict, by_ensemble: bool) -> None:
    st.subheader("Attention: where each French word looked", anchor=False)
    if out["attention"] is None:
        st.info("This model has no attention: the decoder only sees the encoder's final summary.")
        return
    src, tgt = _label(out["source_tokens"]), _label(out["step_tokens"])
    rows = [{"source": src[j], "output": tgt[i], "weight": float(w), "src_pos": j, "out_pos": i}
            for i, row in enumerate(out["attention"]) for j, w in enumerate(row[:len(src)])]
    df = pd.DataFrame(rows)
    chart = alt.Chart(df).mark_rect().encode(
        x=alt.X("source:N", sort=src, title="English (source)", axis=alt.Axis(labelAngle=-40)),
        y=alt.Y("output:N", sort=tgt, title="French (output step)"),
        color=alt.Color("weight:Q", scale=alt.Scale(scheme="blues", domain=[0, 1]), title="attention"),
        tooltip=[alt.Tooltip("output:N", title="output"), alt.Tooltip("source:N", title="source"),
                 alt.Tooltip("weight:Q", format=".3f")],
    ).properties(height=alt.Step(30))
    st.altair_chart(chart, width="stretch")
    st.caption("Each row is one decoder step and sums to 1 over the English words. Word-order changes (adjectives "
               "after nouns, ne ... pas) show up as off-diagonal cells."
               + (" Inside the ensemble this is the attention model's attention (the plain model has none)."
                  if by_ensemble else ""))


def _steps_and_beam(out: dict) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("Step by step: top candidates", anchor=False)
        rows = []
        for s in out["steps"]:
            for rank, (tok, p) in enumerate(s["topk"]):
                rows.append({"step": s["step"] + 1, "rank": rank + 1, "word": tok.replace("▁", ""),
                             "probability": p, "chosen": tok == s["token"]})
        df = pd.DataFrame(rows)
        if not df.empty:
            wide = df.pivot(index="step", columns="rank", values="word")
            probs = df.pivot(index="step", columns="rank", values="probability")
            shown = wide.copy().astype(str)
            for col in shown.columns:
                shown[col] = [f"{w} ({p:.0%})" for w, p in zip(wide[col], probs[col])]
            chosen = [s["token"].replace("▁", "") for s in out["steps"]]
            shown.columns = [f"#{c}" for c in shown.columns]
            shown.insert(0, "chosen", chosen)
            st.dataframe(shown, width="stretch")
            st.caption("What the decoder considered at each step of the best translation (probability of each "
                       "word given everything before it). </s> ends the sentence.")
    with right:
        st.subheader(f"The beam's candidates (width {out['beam']})", anchor=False)
        st.dataframe(pd.DataFrame([{"translation": c["translation"], "score": round(c["score"], 4),
                                    "log-prob": round(c["logprob"], 3), "steps": c["length"]}
                                   for c in out["candidates"]]), width="stretch", hide_index=True)
        st.caption("Score = total log-probability / length, so longer sentences are not punished for every word.")


def _force(task, model, text: str, out: dict, beam: int, max_len: int) -> None:
    from core.ui.widgets import md_escape, show_error

    st.subheader("Force a word", anchor=False)
    st.caption("Pick a different word at some step: the decoder is made to write it, then decodes the rest from "
               "there (beam search with a forced prefix).")
    steps = out["steps"]
    if not steps:
        return
    c = st.columns([1, 2, 2])
    k = c[0].number_input("At step", 1, len(steps), min(2, len(steps)), key="tr_force_step") - 1
    chosen = steps[k]["token"]
    alts = [t for t, _ in steps[k]["topk"] if t != chosen]
    options = [t.replace("▁", "") for t in alts] + ["(type another word)"]
    pick = c[1].selectbox(f"Write this word instead of '{chosen.replace('▁', '')}'", options, index=0,
                          key="tr_force_pick")
    other = c[2].text_input("Other word", key="tr_force_other", max_chars=40,
                            disabled=pick != "(type another word)")
    word = other if pick == "(type another word)" else pick
    raw = next((t for t, _ in steps[k]["topk"] if t.replace("▁", "") == word), word)
    if not word or not word.strip():
        return
    try:
        forced = task.predict(model, {"text": text, "beam": beam, "max_len": max_len,
                                      "force": {"step": int(k), "token": raw}})
    except Exception as exc:  # noqa: BLE001
        show_error(exc, "decoding with a forced word")
        return
    st.markdown(f"Original: {md_escape(out['translation'])}  \nForced *{md_escape(word)}* at step {k + 1}: "
                f"**{md_escape(forced['translation'])}**")


# ---- Inspect extras --------------------------------------------------------------------------------------------
def _inspect_extra(task, model, text) -> None:
    st.subheader("How far back does one output word's gradient reach?", anchor=False)
    st.caption("Pick an output word: the bars are ||∂ log p(word) / ∂ h_t|| for every encoder step t. With "
               "attention the gradient jumps straight to the words it looked at; without attention it has to travel "
               "back through the encoder's final state, and fades for the first words.")
    from core.ui.load import get_served

    served = get_served(task, quiet=True)
    if served is not None and served.has_ensemble:
        st.caption("Gradients are taken through the attention model alone (the ensemble's first member), so the "
                   "output inspected here is that model's own greedy translation, which can differ from the "
                   "ensemble's on the Try it tab.")
    _, _, out_tokens = task.output_grad_norms(model, text, 0)
    labels = _label(out_tokens)
    k = st.selectbox("Output word", list(range(len(labels))), format_func=lambda i: labels[i], key="tr_grad_word")
    words, norms, _ = task.output_grad_norms(model, text, int(k))
    df = pd.DataFrame({"source": _label(words), "grad_norm": norms})
    chart = alt.Chart(df).mark_bar().encode(
        x=alt.X("source:N", sort=list(df["source"]), title="English step"),
        y=alt.Y("grad_norm:Q", title="gradient norm"),
        tooltip=["source", alt.Tooltip("grad_norm:Q", format=".3g")],
    ).properties(height=240)
    st.altair_chart(chart, width="stretch")
    st.caption(html.escape(f"Output word {labels[int(k)]}; the shared inspector above uses the loss of the whole "
                           "greedy output with the encoder as the recurrent module."))
