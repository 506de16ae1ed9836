"""The music page: pick a first note or chord (or upload a MIDI file), and the network writes the rest.

Imported only by the app. core.ui is imported inside the functions so importing this module stays cheap.
"""

from __future__ import annotations

import html

import altair as alt
import pandas as pd
import streamlit as st

from core.layers import cell_label
from tasks.music import data as D
from tasks.music import model as M

OCTAVES = (5, 4, 3, 2)  # the chorales' range is G2..C7; the picker shows C2..B5, high notes on top like a score
DEFAULTS = {"steps": 64, "temperature": 1.0, "top_k": 4, "seed": 0}
K = "music_"  # the page's key prefix: every input below is bound to the URL under its key (?music_temperature=...)
URL = "query-params"
LEGACY_CHORD = "q"  # links made before every page owned its parameters: ?q=C4+E4+G4


def render(task):
    from core.ui.page import task_page

    task_page(task, try_it=lambda model: _try_it(task, model),
              inspect_extra=lambda model, input: _inspect_extra(task, model, input))


# ---- inputs -------------------------------------------------------------------------------------------------------


def _set_chord(pitches: list[int]) -> None:
    for o in OCTAVES:
        st.session_state[f"{K}oct{o}"] = [D.pitch_name(p) for p in pitches if p // 12 - 1 == o]


def _first_visit_chord() -> None:
    """Before the keys are drawn the first time: the link's own keys (?music_oct4=C4&music_oct4=E4) are left to the
    widgets; an old ?q=C4+E4+G4 link is read (and removed); else a C major triad."""
    if any(f"{K}oct{o}" in st.query_params for o in OCTAVES):
        return
    q = st.query_params.get(LEGACY_CHORD, "")
    if LEGACY_CHORD in st.query_params:
        del st.query_params[LEGACY_CHORD]
    try:
        first = [D.parse_pitch(t) for t in q.replace(",", " ").split()][:12] if q else [60, 64, 67]
    except ValueError:
        first = [60, 64, 67]
    _set_chord([p for p in first if D.LOW <= p <= D.HIGH])


def _chord_picker() -> list[int]:
    """One row of pills per octave: a keyboard laid on its side. Returns the chosen MIDI pitches."""
    if f"{K}oct4" not in st.session_state:
        _first_visit_chord()
    chosen = []
    st.markdown("**First note or chord** (click keys; several keys make a chord)")
    for o in OCTAVES:
        names = [f"{n}{o}" for n in D.NOTE_NAMES]
        picked = st.pills(f"octave {o}", names, selection_mode="multi", key=f"{K}oct{o}", bind=URL,
                          format_func=lambda s: s.replace("#", "\u266f"), label_visibility="collapsed")
        chosen += [D.parse_pitch(s) for s in picked or []]
    return sorted(set(chosen))


def _settings() -> dict:
    d = DEFAULTS  # the widgets' defaults (value=): a default is left out of the URL, a link restores the rest
    c = st.columns(4)
    steps = c[0].slider("length (quarter notes)", 8, 256, value=d["steps"], step=8, key=K + "steps", bind=URL,
                        help="how many steps the network writes after the first chord or the primer")
    temp = c[1].slider("temperature", 0.1, 2.0, value=d["temperature"], step=0.05, key=K + "temperature", bind=URL,
                       help="divides the logits: < 1 sharpens (safer, repetitive), > 1 flattens (surprising)")
    top_k = c[2].slider("top-k (0 = off)", 0, 8, value=d["top_k"], step=1, key=K + "top_k", bind=URL,
                        help="at most k keys can sound at once: only the k most likely keys may be drawn")
    seed = c[3].number_input("random seed", 0, 2**31 - 1, value=d["seed"], step=1, key=K + "seed", bind=URL,
                             help="the same settings and seed always give the same piece")
    return {"steps": int(steps), "temperature": float(temp), "top_k": int(top_k), "seed": int(seed)}


def _new_seed() -> None:
    import random

    st.session_state[K + "seed"] = random.randrange(2**31 - 1)


def _apply_demo(demo) -> None:
    inp = demo.input
    _set_chord(list(inp.get("first", [])))
    for k in DEFAULTS:
        if k in inp:
            st.session_state[K + k] = type(DEFAULTS[k])(inp[k])
    st.session_state[K + "source"] = "first note or chord"


def _upload() -> bytes | None | bool:
    """The uploaded file's bytes; None when nothing is uploaded; False when it was refused (message shown)."""
    up = st.file_uploader(f"A MIDI file to continue (up to {M.MAX_MIDI_BYTES // 1_000_000} MB; its last "
                          f"{M.MAX_PRIMER_STEPS} beats are the primer)", type=["mid", "midi"], key=K + "upload")
    if up is None:
        return None
    if up.size > M.MAX_MIDI_BYTES:  # before reading it: a huge upload never reaches the MIDI parser
        st.warning(f"This file is {up.size / 1e6:.1f} MB; a primer may be at most "
                   f"{M.MAX_MIDI_BYTES / 1e6:.0f} MB. Try a shorter MIDI file.")
        return False
    return up.getvalue()


# ---- output -------------------------------------------------------------------------------------------------------


def roll_frame(out: dict) -> pd.DataFrame:
    """One row per sounding note per step (steps numbered from 1; t0 is the silent start frame)."""
    rows = []
    n0 = out["primer_steps"]
    for t, pitches in enumerate(out["roll"]):
        probs = out["probs"][t]
        for i, p in enumerate(pitches):
            rows.append({"step": t + 1, "end": t + 2, "pitch": p, "note": D.pitch_name(p),
                         "part": "given" if t < n0 else "generated",
                         "probability": None if probs is None else float(probs[i])})
    return pd.DataFrame(rows, columns=["step", "end", "pitch", "note", "part", "probability"])


def piano_roll_chart(out: dict, title: str | None = None) -> alt.Chart:
    """Notes as bars over time (one quarter note wide, one semitone high); hover shows the pitch name and how
    likely the sampled note was."""
    df = roll_frame(out)
    df["top"] = df["pitch"] + 1
    # Given notes fully opaque; drawn notes paler the less likely they were (computed here: Vega's null tests
    # on a mixed column are unreliable).
    df["alpha"] = [0.95 if p is None or p != p else 0.3 + 0.7 * float(p) for p in df["probability"]]
    lo, hi = _pitch_range(df)
    ticks = [p for p in range(lo, hi + 1) if p % 12 == 0] or [lo]  # label the Cs, like the keys of a keyboard
    label = "datum.value % 12 == 0 ? 'C' + (floor(datum.value / 12) - 1) : ''"
    chart = alt.Chart(df).mark_rect(cornerRadius=1, stroke="white", strokeWidth=0.5).encode(
        x=alt.X("step:Q", title="quarter note", scale=alt.Scale(domain=[1, len(out["roll"]) + 1], nice=False)),
        x2="end:Q",
        y=alt.Y("pitch:Q", title="pitch", scale=alt.Scale(domain=[lo, hi], nice=False),
                axis=alt.Axis(values=ticks, labelExpr=label, grid=True)),
        y2="top:Q",
        color=alt.Color("part:N", scale=alt.Scale(domain=["given", "generated"], range=["#8c8c8c", "#1f77b4"]),
                        legend=alt.Legend(orient="top", title=None)),
        opacity=alt.Opacity("alpha:Q", scale=None, legend=None),
        tooltip=[alt.Tooltip("note:N"), alt.Tooltip("pitch:Q", title="MIDI"), alt.Tooltip("step:Q"),
                 alt.Tooltip("part:N"), alt.Tooltip("probability:Q", format=".2f")],
    )
    return chart.properties(title=title) if title else chart


def _pitch_range(df: pd.DataFrame) -> tuple[int, int]:
    if not len(df):
        return 55, 80
    return int(df.pitch.min()) - 2, int(df.pitch.max()) + 3


def show_roll(out: dict, key: str, px_per_semitone: int = 10, title: str | None = None) -> None:
    lo, hi = _pitch_range(roll_frame(out))
    height = int(min(600, max(220, px_per_semitone * (hi - lo) + 110)))  # + axes and legend
    st.altair_chart(piano_roll_chart(out, title), width="stretch", height=height, key=key)


def predict(task, model, input: dict) -> dict:
    """The piece for these settings, once per (weights, settings): a rerun that only moves another widget (or the
    cell comparison's three models) costs nothing (core.ui.load.predict_cached; generation is seeded)."""
    from core.ui.load import predict_cached

    with st.spinner("Writing music ..."):
        return predict_cached(task, model, input)


# A rendered chorale is ~1-2 MB of WAV: a few entries serve the reruns of the sessions listening right now.
@st.cache_data(max_entries=8, show_spinner="Rendering audio ...")
def _wav(midi: bytes) -> tuple[bytes | None, str]:
    return M.render_wav(midi)


def _play(out: dict, key: str, download: bool = True, caption: bool = True) -> None:
    wav, how = _wav(out["midi"])
    if wav is None:
        st.info(f"Nothing to play: {how}.")
    else:
        st.audio(wav, format="audio/wav")
        if caption:
            st.caption(f"Audio: {how}, one quarter note = {out['step_seconds']:.1f} s.")
    if download:
        st.download_button("Download MIDI", data=out["midi"], file_name="rnnlab-chorale.mid", mime="audio/midi",
                           key=f"{key}_dl", icon=":material/download:")


def _summary(out: dict) -> str:
    gen = [p for ps in out["probs"] if ps is not None for p in ps]
    rests = sum(1 for t, ps in enumerate(out["roll"]) if t >= out["primer_steps"] and not ps)
    mean_p = sum(gen) / len(gen) if gen else float("nan")
    return (f"{len(out['roll']) - out['primer_steps']} steps written after {out['primer_steps']} given; "
            f"{len(gen)} notes sampled (mean probability {mean_p:.2f}), {rests} silent steps. The model's own "
            f"surprise at the piece: {out['nll']:.2f} nats per step (the test set's is on the Model card).")


# ---- the tab --------------------------------------------------------------------------------------------------------


def _try_it(task, model):
    from core.ui.widgets import demo_buttons, note_unlinked, show_error

    st.markdown(
        "The network read 229 Bach chorales as **piano rolls**: at every quarter note, which of the 88 keys sound. "
        "Here it starts from your chord and writes on, one quarter note at a time; each step's 88 key "
        "probabilities are sampled and fed back in as the next input (one-to-many).")
    demo = demo_buttons(task, K + "demo")
    if demo is not None:
        _apply_demo(demo)
        st.caption(html.escape(demo.note))
    source = st.radio("start from", ["first note or chord", "continue a MIDI file"], horizontal=True,
                      key=K + "source", bind=URL, label_visibility="collapsed")
    note_unlinked(K + "upload", None if source == "first note or chord" else
                  "An uploaded MIDI file is not part of the link: it opens with the upload box ready for one.")
    if source == "first note or chord":
        first = _chord_picker()
        if not first:
            st.caption("No key chosen: the network starts from silence and picks its own opening chord.")
        base = {"first": first}
        settings = _settings()
    else:
        primer = _upload()
        settings = _settings()  # drawn on every run, a bad file included: the settings keep their values
        if primer is False:
            return None
        if primer is None:
            st.info("Upload a MIDI file to continue it, or switch back to *first note or chord*. (A link to this "
                    "view cannot carry the file: it opens with this box ready for one.)")
            return None
        base = {"primer_midi": primer}
    input = {**base, **settings}
    st.button("Generate a new piece", type="primary", key=K + "generate", icon=":material/music_note:",
              on_click=_new_seed, help="draws a new seed; every setting above already rewrites the piece live "
                                       "(the same settings and seed always give the same piece)")
    active = input
    try:
        out = predict(task, model, active)
    except Exception as exc:  # noqa: BLE001 -- BadInput is a friendly warning (bad MIDI ...), the rest an error
        show_error(exc, "generating")
        return None
    for note in out["notes"]:
        st.info(note)
    show_roll(out, K + "roll")
    st.caption("Grey: the notes you gave; blue: the network's. Paler bars were less likely draws. " + _summary(out)
               + " Each key is drawn on its own (88 independent coin flips per step), so chords come out thinner "
               "than Bach's four voices: models of the whole chord at once (RNN-RBM, RNN-NADE) fix exactly that.")
    _play(out, K + "main")
    _compare_cells(task, model, active)
    # The inspector reads exactly this piece (its "roll"), so the served model and a variant can be compared on it;
    # "probs" are the probabilities the served model drew its notes with.
    return {**{k: v for k, v in active.items() if k != "primer_midi"}, "roll": out["roll"], "probs": out["probs"],
            "primer_steps": out["primer_steps"]}


def _compare_cells(task, model, input: dict) -> None:
    from core.ui.load import get_model

    st.subheader("Same random seed, three cells", anchor=False)
    card = model.runtime.card
    comp = card.comparison if card is not None else {}
    if not st.toggle("Generate with the tanh RNN, the GRU and the LSTM", key=K + "compare", bind=URL,
                     help="each cell trained with the same budget; the same chord, settings and seed"):
        return
    cols = st.columns(max(len(comp), 1))
    for col, (variant, row) in zip(cols, comp.items()):
        with col:
            name = cell_label(variant)
            m = model if variant == card.served_variant else get_model(task, variant=variant, quiet=True)
            nll = row.test.get(card.metric)
            st.markdown(f"**{name}**" + (f" -- test NLL {nll:.2f}" if isinstance(nll, (int, float)) else "")
                        + (" (served)" if variant == card.served_variant else ""))
            if m is None:
                st.info(f"No weights for this cell. Retrain: `{task.train_command()}`")
                continue
            try:
                out = predict(task, m, input)
            except Exception as exc:  # noqa: BLE001
                from core.ui.widgets import show_error

                show_error(exc, f"generating with the {name}")
                continue
            show_roll(out, f"{K}cmp_roll_{variant}", px_per_semitone=6)
            st.caption(f"its surprise at its own piece: {out['nll']:.2f} nats/step")
            _play(out, f"{K}cmp_{variant}", download=False, caption=False)
    if not comp:
        st.info("The card lists no cell comparison: retrain to compare the tanh RNN, GRU and LSTM.")


# ---- inspect extra -------------------------------------------------------------------------------------------------


def _inspect_extra(task, model, input) -> None:
    """The probability with which each generated note was drawn (or, for another cell, its probability of it)."""
    if not isinstance(input, dict):
        return
    st.subheader("Probability of each chosen note", anchor=False)
    card = model.runtime.card
    served = card is not None and model.runtime.config == card.config
    roll = input.get("roll")
    if roll is None:  # a bare settings dict: generate the piece here
        out = task.predict(model, {k: v for k, v in input.items() if k not in ("roll", "probs", "primer_steps")})
        roll, probs, n0 = out["roll"], out["probs"], out["primer_steps"]
        what = "the probability it was drawn with (after temperature and top-k)"
    elif served and input.get("probs") is not None and len(input["probs"]) == len(roll):
        probs, n0 = input["probs"], int(input.get("primer_steps", 0))
        what = "the probability it was drawn with (after temperature and top-k)"
    else:  # another cell: how likely IT finds the same piece
        st.caption("This is not the cell that wrote the piece: below, the probability this cell gives each note of "
                   "the same piece (teacher-forced, temperature 1).")
        probs, n0, what = _teacher_forced_probs(task, model, roll), 0, "this cell's probability of it"
    rows = []
    for t, ps in enumerate(roll):
        if probs[t] is None:
            continue
        for p, pr in zip(ps, probs[t]):
            rows.append({"step": t + 1, "note": D.pitch_name(p), "pitch": p, "probability": float(pr)})
    if not rows:
        st.info("The piece has no generated notes.")
        return
    df = pd.DataFrame(rows)
    chart = alt.Chart(df).mark_circle(size=60).encode(
        x=alt.X("step:Q", title="quarter note"), y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("pitch:Q", scale=alt.Scale(scheme="viridis"), title="pitch"),
        tooltip=["step", "note", alt.Tooltip("probability:Q", format=".3f")])
    mean = df.groupby("step", as_index=False)["probability"].mean()
    line = alt.Chart(mean).mark_line(color="#444", strokeDash=[4, 3]).encode(x="step:Q", y="probability:Q")
    st.altair_chart(alt.layer(chart, line).properties(height=260), width="stretch")
    given = "" if n0 == 0 else (" Step 1 was given, not drawn." if n0 == 1 else f" Steps 1-{n0} were given, not drawn.")
    st.caption(f"Each dot is one sounding note at one step: {what}; the dashed line is the step's mean.{given} Low "
               "dots are the surprising choices: compare them with the gradient views above.")


def _teacher_forced_probs(task, model, roll: list[list[int]]) -> list[list[float]]:
    import torch

    seq = D.steps_to_roll(roll)  # (T, 88)
    x = torch.cat([torch.zeros(1, D.KEYS), seq[:-1]])[None]  # (1, T, 88)
    with torch.inference_mode():
        p = torch.sigmoid(model(x))[0]  # (T, 88)
    return [[float(p[t, q - D.LOW]) for q in ps] for t, ps in enumerate(roll)]
