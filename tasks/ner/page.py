"""The NER page: tagged text inline, a table of spans, and the bidirectional view (forward vs backward halves,
and the one-way model's tags beside the served one's). Everything from the user is escaped before it is drawn."""

from __future__ import annotations

import html

import pandas as pd
import streamlit as st

from tasks.ner import case_note, unfamiliar_note

COLORS = {"PER": "rgba(31,119,180,0.28)", "ORG": "rgba(255,127,14,0.30)", "LOC": "rgba(44,160,44,0.30)",
          "MISC": "rgba(148,103,189,0.30)"}
BORDER = {"PER": "rgb(31,119,180)", "ORG": "rgb(255,127,14)", "LOC": "rgb(44,160,44)", "MISC": "rgb(148,103,189)"}
NAMES = {"PER": "person", "ORG": "organisation", "LOC": "location", "MISC": "other name"}
WORD_KEY, WORD_KEY_INSPECT, WORD_TEXT = "ner_word", "ner_word_insp", "ner_word_text"

LABEL_HELP = """\
**The tags.** The training data (CoNLL-2003: Reuters news stories from 1996-97, tagged by hand) marks four kinds
of name: **PER** (a person: "Angela Merkel"), **ORG** (an organisation: a company, a club, a ministry, a newspaper),
**LOC** (a location: a country, a city, a river; also a country's national team in sport, as the news data writes
it) and **MISC** (any other name: nationalities and languages such as "German", events such as "World Cup",
titles of works, products). Each word gets **B-X** (first word of a name of type X), **I-X** (inside that name) or
**O** (outside any name). Titles ("President", "Dr.") stay outside the name. There is **no** type for money, dates
or numbers: "$37.5 million" stays untagged by design, not by mistake. Confidence is the model's probability for
the word's tag (a span shows the mean over its words)."""

HOW_HELP = """\
**How the tagger reads.** Each word becomes one vector: a learned embedding of the lowercased word (words seen at
least twice in training), its capitalisation pattern, a character CNN over its letters (so "Okonkwo" or
"Brightwater" look like names although they were never seen), and the word's tag counts in the training data (a
list of names learnt from the 14,041 training sentences; while training, each word's own occurrence is left out of
its counts so that the model cannot just copy them), and how often it was part of a person, organisation or place
name in 20,000 Wikipedia sentences (WikiANN: a list of real names, so "olumide" or "manhattan" reads as a name
even in lower case and never seen in the news). A recurrent layer reads these vectors -- in both directions
for the served BiLSTM -- and a CRF (a layer that scores whole tag sequences) picks the best *sequence* of tags, so
I-ORG never follows O. Trained from scratch on CoNLL-2003 news: no pretrained word vectors or language model, so
text far from 1990s news (chat, all lowercase) is harder for it."""


def highlight_html(text: str, spans: list[dict]) -> str:
    """The original text with each span marked by its type and confidence. Every piece of text is escaped."""
    out, pos = [], 0
    for sp in sorted(spans, key=lambda s: s["start"]):
        s, e, typ = int(sp["start"]), int(sp["end"]), str(sp["type"])
        if s < pos:  # overlapping spans cannot come from BIO, but never draw text twice
            continue
        out.append(html.escape(text[pos:s]))
        tip = html.escape(f"{NAMES.get(typ, typ)}, {sp['confidence']:.0%} sure", quote=True)
        out.append(
            f'<mark title="{tip}" style="background:{COLORS.get(typ, "rgba(128,128,128,.25)")};'
            f'border-bottom:2px solid {BORDER.get(typ, "gray")};border-radius:4px;padding:1px 3px;color:inherit">'
            f'{html.escape(text[s:e])}<sup style="font-size:0.65em;font-weight:600;margin-left:3px;opacity:.85">'
            f'{html.escape(typ)} {sp["confidence"]:.0%}</sup></mark>')
        pos = e
    out.append(html.escape(text[pos:]))
    body = "".join(out).replace("\n", "<br>")
    return f'<div style="font-size:1.15em;line-height:2.1;white-space:pre-wrap">{body}</div>'


def legend_html() -> str:
    return " ".join(
        f'<span style="background:{COLORS[t]};border-bottom:2px solid {BORDER[t]};border-radius:4px;padding:1px 5px;'
        f'font-size:.85em">{t} = {NAMES[t]}</span>' for t in ("PER", "ORG", "LOC", "MISC"))


def spans_frame(out: dict) -> pd.DataFrame:
    rows = [{"entity": sp["text"], "type": sp["type"], "meaning": NAMES.get(sp["type"], sp["type"]),
             "confidence": round(sp["confidence"], 3), "words": f"{sp['first_word'] + 1}-{sp['last_word'] + 1}",
             "chars": f"{sp['start']}-{sp['end']}"} for sp in out["spans"]]
    return pd.DataFrame(rows, columns=["entity", "type", "meaning", "confidence", "words", "chars"])


def _default_word(out: dict) -> int:
    return out["spans"][0]["first_word"] if out["spans"] else 0


def _sync(src: str, dst: str) -> None:
    st.session_state[dst] = st.session_state[src]


def word_picker(tokens: list[str], key: str, other: str, label: str) -> int:
    """A select box of the sentence's words; two of them (Try it / Inspect) stay in step through session state."""
    opts = list(range(len(tokens)))
    if st.session_state.get(key) not in opts:
        st.session_state[key] = 0
    return st.selectbox(label, opts, key=key, format_func=lambda i: f"{i + 1}. {tokens[i]}",
                        on_change=_sync, args=(key, other))


def direction_frames(parts: dict, tags: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per word, each half's push towards its tag against the runner-up tag (the margins add up to the logit
    margin with the bias), and per tag, each half's raw contribution for every word."""
    from tasks.ner.model import bio_allowed

    labels, T = parts["labels"], len(parts["tokens"])
    ok = bio_allowed(labels).tolist()
    halves = [h for h in ("forward", "backward") if h in parts]
    margin_rows, tag_rows = [], []
    for t in range(T):
        total = [sum(parts[h][t][c] for h in halves + ["bias"]) for c in range(len(labels))]
        k = labels.index(tags[t])
        # The runner-up among the tags that could stand here between the chosen neighbours (BIO rules).
        prev = labels.index(tags[t - 1]) if t > 0 else None
        nxt = labels.index(tags[t + 1]) if t + 1 < T else None
        others = [c for c in range(len(labels)) if c != k]
        after_prev = [c for c in others if (ok[prev][c] if prev is not None else not labels[c].startswith("I-"))]
        cands = [c for c in after_prev if nxt is None or ok[c][nxt]] or after_prev or others
        rival = max(cands, key=lambda c: total[c])
        for h in halves + ["bias"]:
            margin_rows.append({"step": t, "word": f"{t + 1}. {parts['tokens'][t]}", "part": h,
                                "tag": tags[t], "vs": labels[rival],
                                "push": parts[h][t][k] - parts[h][t][rival]})
        for c, lab in enumerate(labels):
            for h in halves + ["bias"]:
                tag_rows.append({"step": t, "tag": lab, "part": h, "score": parts[h][t][c]})
    return pd.DataFrame(margin_rows), pd.DataFrame(tag_rows)


def direction_sentence(fwd: float, bwd: float) -> str:
    """Plain words for two pushes (positive = towards the chosen tag)."""
    head = f"the forward half pushes {fwd:+.2f}, the backward half (it has read the words *after* it) {bwd:+.2f}. "
    if fwd > 0 and bwd > 0:
        return head + f"Both agree; the backward half gives **{bwd / (fwd + bwd):.0%}** of the push."
    if bwd > 0 >= fwd:
        return head + "Reading left to right alone points elsewhere: **the words after it decide this tag**."
    if fwd > 0 >= bwd:
        return head + "**The words before it decide this tag**; the words after it pull the other way."
    return head + "Both halves lean to the other tag; the bias and the neighbouring tags (CRF) tip it."


def _bidirectional_view(task, model, text: str, out: dict, word: int) -> None:
    from core.ui import charts

    st.subheader("Which direction decided each tag", anchor=False)
    parts = task.direction_parts(model, text)
    if "backward" not in parts:
        st.info("The served model reads one way only: every tag comes from the forward half.")
        return
    st.caption("The tagger's score for a tag is the sum of what the **forward** half (it has read the words up to "
               "this one) and the **backward** half (it has read the words from the end back to this one) "
               "contribute, plus a bias. Each bar is a half's push towards the word's tag and away from the "
               "runner-up tag.")
    margins, per_tag = direction_frames(parts, out["tags"])
    chart = charts.bar_chart(margins[margins.part != "bias"], "word", "push", color="part", offset="part",
                             tooltip=["word", "tag", "vs", "part", "push"], x_title="word",
                             y_title="push", sort=None, height=230)
    chart = chart.encode(x=charts.alt.X("word:N", sort=list(dict.fromkeys(margins.word)), title="word",
                                        axis=charts.alt.Axis(labelAngle=-40)))
    st.altair_chart(chart, width="stretch", key="ner_dir_all")
    row = margins[margins.step == word].set_index("part")["push"]
    tag, vs = out["tags"][word], margins[margins.step == word].vs.iloc[0]
    fwd, bwd = float(row["forward"]), float(row["backward"])
    from core.ui.widgets import md_escape

    tok = md_escape(out["tokens"][word])
    st.markdown(f"Word **{word + 1}** «{tok}» is tagged **{md_escape(tag)}** rather than {md_escape(vs)}: "
                f"{direction_sentence(fwd, bwd)}")
    detail = per_tag[(per_tag.step == word) & (per_tag.part != "bias")]
    chart = charts.bar_chart(detail, "tag", "score", color="part", offset="part", tooltip=["tag", "part", "score"],
                             x_title="tag", y_title="score part", height=200,
                             sort=list(parts["labels"]))
    st.altair_chart(chart, width="stretch", key="ner_dir_word")


def _forward_only(task, out: dict, text: str) -> None:
    from core.ui.load import get_model

    uni = get_model(task, variant="lstm")
    if uni is None:
        return
    one = task.predict(uni, text)
    st.markdown("**One-way LSTM** (reads left to right only; same data and training budget):")
    st.html(highlight_html(text, one["spans"]))
    diff = [i for i, (a, b) in enumerate(zip(out["tags"], one["tags"])) if a != b]
    df = pd.DataFrame({"word": out["tokens"], "bidirectional": out["tags"], "forward only": one["tags"],
                       "forward-only confidence": [round(c, 3) for c in one["confidences"]]})
    df["differs"] = ["yes" if i in diff else "" for i in range(len(df))]
    st.caption(f"{len(diff)} of {len(df)} words get a different tag without the backward half. A one-way tagger "
               "must commit at each word before seeing what follows (\"Paris\" before \"Hilton\").")
    st.dataframe(df, hide_index=True, width="stretch")


@st.cache_data(show_spinner=False, max_entries=4)
def _probe_rows(task_name: str, model_id: str, _task, _model) -> list[dict]:
    return _task.probe_report(_model)


def probe_table(task, model) -> None:
    """The project's everyday sentences (tasks.ner.PROBE_SET) with the model's spans: how it does off the news."""
    from core.ui.inspector import model_key
    from tasks.ner import PROBE_SET

    rows = _probe_rows(task.name, model_key(model), task, model)
    right = sum(r["right"] for r in rows)
    st.subheader("Everyday sentences", anchor=False)
    st.markdown(f"{len(PROBE_SET)} sentences written for this project, not taken from the news data: chat, "
                "lowercase names, names from many languages, clubs named after cities, people named after places. "
                f"The tagger gets **{right} of {len(rows)}** exactly right ({right / max(1, len(rows)):.0%}): the "
                "same names with the same types, and nothing else tagged.")
    st.caption("Written before the first model was trained. Not a blind test: the first run tagged the classic "
               "example's Manhattan as an organisation, which led to one change of the training recipe (the "
               "tagger now sometimes trains without its list of names, so the context must decide); the run "
               "served was picked on the news validation set. The expected tags follow the news data's conventions "
               "(a country's team is a location, a football club an organisation, a language other (MISC)).")
    df = pd.DataFrame(rows)[["right", "sentence", "expected", "model", "kind"]]
    st.dataframe(df, hide_index=True, width="stretch", height=35 * (len(df) + 1) + 3,
                 column_config={"right": st.column_config.CheckboxColumn("right?", width=60),
                                "sentence": st.column_config.TextColumn("sentence", width=330),
                                "expected": st.column_config.TextColumn("expected", width=270),
                                "model": st.column_config.TextColumn("the model's tags", width=270),
                                "kind": st.column_config.TextColumn("kind", width=150)})


def _try_it(task, model):
    """``model``: the module that answers (the ensemble, or the BiLSTM alone: the frame's toggle). The views below
    the tags take the served BiLSTM itself apart."""
    from core.ui.card import variant_name
    from core.ui.load import get_served
    from core.ui.page import answer_caption, answered_by_ensemble
    from core.ui.widgets import md_escape, show_error, text_input_with_demos

    cols = st.columns(2)
    with cols[0].expander("What the tags mean (and why money is never tagged)", expanded=False):
        st.markdown(LABEL_HELP)
    with cols[1].expander("How the tagger reads a sentence", expanded=False):
        st.markdown(HOW_HELP)
    text = text_input_with_demos(task, key="q", label="Text to tag", area=True, max_chars=20000,
                                 placeholder="Type or paste a sentence ...")
    if not text or not text.strip():
        st.info("Type a sentence or pick a demo: the tagger marks people, organisations, places and other names.")
        return None
    try:
        out = task.predict(model, {"text": text})
    except Exception as exc:  # noqa: BLE001 -- BadInput is a friendly warning; anything else a generic error
        show_error(exc, "tagging the text")
        return None
    if out["note"]:
        st.info(out["note"], icon=":material/content_cut:")
    shown = text if not out["note"] else text[:out["offsets"][-1][1]]
    st.html(legend_html())
    st.html(highlight_html(shown, out["spans"]))
    if not out["spans"]:
        st.caption("No person, organisation, location or other name found.")
    served = get_served(task, quiet=True)
    scores = None  # the answering model's test scores: lower case and capitals beside as written, when measured
    if served is not None:
        card = served.card
        alone = card.comparison.get(card.served_variant) if card.comparison else None
        scores = card.metrics if answered_by_ensemble(task) or alone is None else alone.test
    guess = unfamiliar_note(out) or case_note(out["tokens"], scores)
    if guess:
        st.warning(guess, icon=":material/help:")
    if out["unknown_words"]:
        unk = ", ".join(dict.fromkeys(out["unknown_words"]))
        st.caption(f"Not in the vocabulary (read by spelling only, through the character CNN): {md_escape(unk[:400])}")

    answer_caption(task)
    if out["spans"]:
        st.dataframe(spans_frame(out), hide_index=True, width="stretch")
    with st.expander("Every word's tag"):
        st.dataframe(pd.DataFrame({"word": out["tokens"], "tag": out["tags"],
                                   "confidence": [round(c, 3) for c in out["confidences"]]}),
                     hide_index=True, width="stretch")

    if st.session_state.get(WORD_TEXT) != text:  # a new text: look at its first entity
        st.session_state[WORD_KEY] = st.session_state[WORD_KEY_INSPECT] = _default_word(out)
        st.session_state[WORD_TEXT] = text
    st.divider()
    st.subheader("Both directions", anchor=False)
    cols = st.columns([2, 3])
    with cols[0]:
        word = word_picker(out["tokens"], WORD_KEY, WORD_KEY_INSPECT, "Word to look at (here and in Inspect)")
    with cols[1]:
        fwd_only = st.toggle("Forward only: show the tags a one-way model gives", key="ner_fwd_only",
                             help="The unidirectional LSTM trained beside the served BiLSTM with the same budget.")
    served = get_served(task, quiet=True)
    tagger = served.model if served is not None else model  # the served BiLSTM, never the ensemble
    if answered_by_ensemble(task):  # the views below take the BiLSTM apart: its own tags, not the ensemble's
        out = task.predict(tagger, {"text": text})
        alone = md_escape(variant_name(task, tagger.runtime.variant))
        st.caption(f"Below: the served **{alone}** alone (the views take its two halves apart), so a tag may differ "
                   "from the ensemble's above.")
    if fwd_only:
        _forward_only(task, out, shown)
    _bidirectional_view(task, tagger, text, out, word)
    st.divider()
    probe_table(task, served.answering() if served is not None else model)  # the served system's tags
    return {"text": text, "word": int(word)}


def _inspect_extra(task, model, current) -> None:
    from core.ui.inspector import run_inspection
    from core.ui.load import get_served
    from core.ui.widgets import md_escape, show_tokens

    word = current.get("word") or 0
    st.subheader("Which words this tag used", anchor=False)
    served = get_served(task, quiet=True)
    if served is not None and served.has_ensemble:
        st.caption("Gradients are taken through the BiLSTM alone (the ensemble's first member): the tag inspected "
                   "is its own, which can differ from the ensemble's on the Try it tab.")
    ins = run_inspection(task, model, current)
    sal = ins.saliency
    toks = sal.label.tolist()
    if not toks:
        return
    word = min(int(word), len(toks) - 1)
    st.caption(f"The loss above is -log p(tag of word {word + 1} «{md_escape(toks[word])}»), with the model's own "
               "tag as the target; the colours are the size of its gradient at every input word. Change the word:")
    word_picker(toks, WORD_KEY_INSPECT, WORD_KEY, "Word whose tag is inspected")
    show_tokens(toks, sal.grad_norm.tolist(), name="‖d loss / d word‖")
    g = sal.grad_norm.to_numpy()
    total = float(g.sum()) or 1.0
    before, here, after = g[:word].sum() / total, g[word] / total, g[word + 1:].sum() / total
    one_way = not getattr(getattr(model, "rnn", None), "bidirectional", True)
    st.markdown(f"Of the gradient reaching the input: **{before:.0%}** on the words before, **{here:.0%}** on the "
                f"word itself, **{after:.0%}** on the words after." + (
                    " This is the one-way model: the words after a word cannot change its tag, so their gradient is "
                    "exactly zero." if one_way else ""))


def render(task) -> None:
    from core.ui.page import task_page

    task_page(task, try_it=lambda model: _try_it(task, model),
              inspect_extra=lambda model, current: _inspect_extra(task, model, current))
