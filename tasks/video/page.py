"""The video task's page: generate (or upload) a clip, play it, and see every frame labelled by three models.

Imported only by the app. Heavy pieces (core.ui) are imported inside render() so that importing the task never
imports Streamlit.
"""

from __future__ import annotations

import html
import io

import numpy as np
import pandas as pd
import streamlit as st

MODELS = [("frame", "frame-only CNN"), ("gru", "one-way GRU"), ("bigru", "two-way GRU")]
DEFAULTS = {"seed": 7.0, "speed": 3.0, "occlusion": 0.25, "noise": 0.1, "digits": 1}
KEYS = {k: f"video_{k}" for k in DEFAULTS}
LABEL_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
                "#7f7f7f", "#e8e8e8"]  # 0..9, then "empty" in pale grey
MAX_UPLOAD_MB = 2


def render(task):
    from core.ui.page import task_page

    task_page(task, try_it=lambda model: _try_it(task, model),
              inspect_extra=lambda model, input: _inspect_extra(task, model, input))


# ---- models ---------------------------------------------------------------------------------------------------------
def _models(task) -> dict:
    """variant -> model for the three variants (cached per process; None where weights are absent)."""
    from core.ui.load import get_model

    return {v: get_model(task, variant=v, quiet=True) for v, _ in MODELS}


# ---- try it -----------------------------------------------------------------------------------------------------
def _clip_controls(task) -> dict:
    from core.ui.widgets import demo_buttons

    demo = demo_buttons(task, "video")
    if demo is not None:
        for k, v in demo.input.items():
            if k in KEYS:
                st.session_state[KEYS[k]] = type(DEFAULTS[k])(v)
        st.caption(html.escape(demo.note))
    for k, v in DEFAULTS.items():
        st.session_state.setdefault(KEYS[k], v)
    c = st.columns(5)
    # A float input on purpose: Streamlit's int number_input crashes (OverflowError) on ?video_seed=-1e999 in the
    # URL, while the float one resets any non-finite or out-of-range URL value to the default.
    seed = c[0].number_input("seed", 0.0, float(2**31 - 1), step=1.0, format="%.0f", key=KEYS["seed"],
                             bind="query-params", help="the same settings and seed always make the same clip")
    speed = c[1].slider("speed (px/frame)", 0.0, 8.0, step=0.5, key=KEYS["speed"], bind="query-params")
    occ = c[2].slider("occlusion", 0.0, 0.6, step=0.05, key=KEYS["occlusion"], bind="query-params",
                      help="chance that a frame is covered by a grey block")
    noise = c[3].slider("noise", 0.0, 0.6, step=0.05, key=KEYS["noise"], bind="query-params",
                        help="chance that a frame is lost to static")
    digits = c[4].slider("digits", 1, 3, step=1, key=KEYS["digits"], bind="query-params",
                         help="digits that pass through the clip one after another")
    return {"seed": int(seed), "speed": float(speed), "occlusion": float(occ), "noise": float(noise),
            "digits": int(digits)}


def _try_it(task, model):
    from core.ui.widgets import show_error

    st.markdown(
        "The models were trained on clips made from **MNIST handwritten digits** (real handwriting) moving over a "
        "64x64 canvas. The clips below use **digits this app draws itself** with a virtual pen (no MNIST image "
        "ships with the app), so they look a little different from what the models saw in training. Grey blocks and "
        "static hide some frames: the digit cannot be read from those frames alone, only from their neighbours.")
    _card_comparison(model)
    with st.expander("How the clips are made"):
        st.markdown(
            "- A digit appears at a random spot and moves in a straight line, bouncing off the edges; with "
            "*digits* > 1 the next one appears after it leaves (sometimes after a few empty frames).\n"
            "- Each frame's label is the digit in the scene, or *empty*.\n"
            "- A frame can be **occluded** (a grey block covers the digit's whole 28x28 patch; blocks also fall on "
            "empty frames, so a block tells nothing) or lost to **static** (not one pixel of the scene survives). "
            "Those frames are *unreadable*: their label can only come from the frames around them.\n"
            "- The first and last frame of every digit's stay are readable, so context always decides -- except "
            "that a clip may *open* with unreadable frames, which only a model that reads the future (two-way) "
            "can label.\n"
            "- Training used 8,000 MNIST images; the test clips use 1,000 other MNIST images (no image in both).")
    source = st.radio("clip", ["generate", "upload a GIF"], horizontal=True, key="video_source",
                      label_visibility="collapsed")
    if source == "generate":
        input = _clip_controls(task)
    else:
        up = st.file_uploader("A short animated GIF (white digit on black works best; up to 60 frames, 512x512, "
                              f"{MAX_UPLOAD_MB} MB)", type=["gif"], key="video_gif", max_upload_size=MAX_UPLOAD_MB)
        if up is None:
            st.info("Upload a GIF to label its frames, or switch back to *generate*.")
            return None
        input = {"gif": up.getvalue()}
    models = _models(task)
    if all(m is None for m in models.values()):
        models = {"bigru": model}
    try:
        outs = {v: task.predict(m, input) for v, m in models.items() if m is not None}
    except Exception as exc:  # noqa: BLE001 -- BadInput shows as a warning; anything else as a friendly error
        show_error(exc, "labelling the clip")
        return None
    main = outs.get("bigru") or next(iter(outs.values()))
    frames = main["frames"]
    T = len(frames)
    left, right = st.columns([1, 2])
    with left:
        st.image(_gif_bytes(frames), caption="the clip (animated)", width=256)
    with right:
        t = _frame_picker(T)
        c1, c2 = st.columns([1, 1])
        c1.image(_upscale(frames[t]), caption=f"frame {t}", width=192)
        with c2:
            if "truth" in main:
                st.markdown(f"**truth**: {html.escape(main['truth'][t])} "
                            f"({'unreadable: ' + main['kind'][t] if main['unreadable'][t] else 'readable'})")
            for v, name in MODELS:
                if v in outs:
                    o = outs[v]
                    st.markdown(f"**{name}**: {html.escape(o['labels'][t])} ({o['confidence'][t]:.0%})")
    st.altair_chart(_timeline(outs, main, t), width="stretch")
    hidden_note = ("Frames marked with a diamond in the *hidden* row were covered or lost: the frame-only model can "
                   "only guess there, the one-way GRU can carry the digit forward from earlier frames, the two-way "
                   "GRU can also look ahead (for frames hidden at the very start of a clip)." if "kind" in main
                   else "An uploaded clip has no known labels, so only the models' answers are shown.")
    st.caption("Each row is one model's label for every frame (· = empty); paler = less confident. " + hidden_note)
    if "truth" in main:
        rows = []
        for v, name in MODELS:
            if v in outs:
                ok = np.array(outs[v]["labels"]) == np.array(main["truth"])
                un = np.array(main["unreadable"])
                rows.append({"model": name, "frames right": f"{ok.sum()}/{len(ok)}",
                             "hidden frames right": f"{ok[un].sum()}/{un.sum()}" if un.any() else "none hidden"})
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    missing = [name for v, name in MODELS if v not in outs]
    if missing:
        st.info(f"No weights for {', '.join(missing)}: retrain with `{task.train_command()}` to compare all three.")
    return {**input, "frame": int(t)}


def _frame_picker(T: int) -> int:
    """The frame to look at: a slider over the clip's T frames; a one-frame clip has nothing to slide over (a slider
    needs min < max), so it gets a note instead."""
    if T <= 1:
        st.caption("This clip has **one frame**: there is no frame before or after it, so the GRUs have no context "
                   "to use and can only read that frame, like the frame-only model. Upload a GIF with more frames "
                   "to see what reading in time adds.")
        return 0
    # The clip may be shorter than the last one, and a link may name any frame: keep the chosen frame inside the
    # clip (in the session and in the link) before the slider is drawn.
    if int(st.session_state.get("video_frame", 0)) > T - 1:
        st.session_state["video_frame"] = T - 1
    linked = st.query_params.get("video_frame")
    if linked is not None:
        try:
            frame = min(max(int(float(linked)), 0), T - 1)
        except (TypeError, ValueError, OverflowError):
            frame = 0
        if str(frame) != linked:
            st.query_params["video_frame"] = str(frame)
    return int(st.slider("frame", 0, T - 1, key="video_frame", bind="query-params"))


def _card_comparison(model) -> None:
    """The three variants' held-out numbers from the model card: the measured case for a (two-way) RNN here."""
    card = model.runtime.card
    comp = card.comparison if card is not None else {}
    rows = []
    for v, name in MODELS:
        test = comp[v].test if v in comp else {}
        if "accuracy" in test:
            rows.append({"model": name, "all frames": test.get("accuracy"),
                         "unreadable frames": test.get("unreadable_accuracy"),
                         "unreadable frames that open a clip": test.get("opening_accuracy")})
    if rows:
        st.caption("Held-out test accuracy (1,000 clips of MNIST digits no model trained on, from the model card):")
        st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
            c: st.column_config.NumberColumn(format="percent") for c in rows[0] if c != "model"})


def _upscale(frame: np.ndarray, k: int = 3) -> np.ndarray:
    img = (np.clip(frame, 0, 1) * 255).astype(np.uint8)
    return np.kron(img, np.ones((k, k), dtype=np.uint8))


@st.cache_data(max_entries=64, show_spinner=False)
def _gif_bytes_cached(raw: bytes, shape: tuple) -> bytes:
    from PIL import Image

    frames = np.frombuffer(raw, dtype=np.float32).reshape(shape)
    imgs = [Image.fromarray(_upscale(f, 4)) for f in frames]
    buf = io.BytesIO()
    imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:], duration=250, loop=0)
    return buf.getvalue()


def _gif_bytes(frames: np.ndarray) -> bytes:
    f = np.ascontiguousarray(frames, dtype=np.float32)
    return _gif_bytes_cached(f.tobytes(), f.shape)


def _timeline(outs: dict, main: dict, selected: int):
    import altair as alt

    from .data import LABELS

    rows = []
    order = []
    if "truth" in main:
        order.append("truth")
        for t, lab in enumerate(main["truth"]):
            rows.append({"row": "truth", "frame": t, "label": lab, "confidence": 1.0,
                         "hidden": main["kind"][t] if main["unreadable"][t] else "no"})
    for v, name in MODELS:
        if v in outs:
            order.append(name)
            for t, (lab, c) in enumerate(zip(outs[v]["labels"], outs[v]["confidence"])):
                rows.append({"row": name, "frame": t, "label": lab, "confidence": float(c),
                             "hidden": main["kind"][t] if "kind" in main and main["unreadable"][t] else
                             ("?" if "kind" not in main else "no")})
    df = pd.DataFrame(rows)
    df["text"] = df["label"].where(df["label"] != "empty", "·")  # a full word does not fit in a cell
    color = alt.Color("label:N", scale=alt.Scale(domain=LABELS, range=LABEL_COLORS), legend=None)
    base = alt.Chart(df).encode(x=alt.X("frame:O", title="frame"), y=alt.Y("row:N", sort=order, title=None))
    cells = base.mark_rect(stroke="white", strokeWidth=1).encode(
        color=color, opacity=alt.Opacity("confidence:Q", scale=alt.Scale(domain=[0, 1], range=[0.15, 1]),
                                         legend=None),
        tooltip=["row", "frame", "label", alt.Tooltip("confidence:Q", format=".0%"), "hidden"])
    text = base.mark_text(fontSize=12, fontWeight="bold").encode(text="text:N", color=alt.value("black"))
    layers = [cells, text]
    if "kind" in main:
        hid = pd.DataFrame({"frame": [t for t, u in enumerate(main["unreadable"]) if u],
                            "kind": [main["kind"][t] for t, u in enumerate(main["unreadable"]) if u]})
        hid["row"] = "hidden"
        order.append("hidden")
        layers.append(alt.Chart(hid).mark_point(shape="diamond", size=90, filled=True, color="#444").encode(
            x="frame:O", y=alt.Y("row:N", sort=order), tooltip=["frame", "kind"]))
    sel = alt.Chart(pd.DataFrame({"frame": [selected]})).mark_rule(color="red", strokeWidth=2).encode(x="frame:O")
    return alt.layer(*layers, sel).properties(height=40 * len(order) + 40)


# ---- inspect extra ------------------------------------------------------------------------------------------------
def _inspect_extra(task, model, input):
    from core.ui import charts
    from core.ui.widgets import show_error

    if not isinstance(input, dict):
        return
    st.subheader("Which frames did this frame's label come from?")
    st.caption("The gradient of the chosen frame's label (each model's own answer) with respect to the pixels of "
               "every frame: one norm per frame, as a share of the model's total. A frame-only model can only use "
               "its own frame; a one-way GRU also earlier ones; a two-way GRU frames on both sides. Pick the frame "
               "with the slider on the Try it tab.")
    models = _models(task)
    rows = []
    try:
        for v, name in MODELS:
            m = models.get(v)
            if m is None:
                continue
            sal = task.frame_saliency(m, input)
            total = sum(sal["grad_norm"]) or 1.0
            for t, g in enumerate(sal["grad_norm"]):
                rows.append({"model": name, "frame": f"{t:02d}", "share": g / total, "grad norm": g,
                             "label": sal["label"]})
    except Exception as exc:  # noqa: BLE001
        show_error(exc, "computing the per-frame gradients")
        return
    if not rows:
        return
    df = pd.DataFrame(rows)
    st.altair_chart(charts.bar_chart(df, "frame", "share", "model", offset="model", fmt=".3g",
                                     x_title="frame", y_title="share of ‖d loss / d pixels‖",
                                     tooltip=["model", "frame", "label", "share", "grad norm"]), width="stretch")
    chosen = int(input.get("frame", 0))
    for name in dict.fromkeys(df["model"]):
        part = df[df["model"] == name]
        own = float(part["share"].iloc[chosen]) if chosen < len(part) else float("nan")
        st.markdown(f"- **{name}** (answer *{html.escape(str(part['label'].iloc[0]))}*): {own:.0%} of the "
                    f"gradient is on frame {chosen} itself, {1 - own:.0%} on the other frames.")
