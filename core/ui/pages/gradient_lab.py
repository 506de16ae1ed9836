"""The Gradient Lab: watch backpropagation through time vanish or explode, and clipping tame it. Needs no trained
weights -- every model here is built on the spot from a fixed random seed (core.toys).

Two parts:
  1. ||dL/dh_t|| against distance back in time, at initialisation, one line per cell, beside the linear theory
     rho**k from the spectral radius of w' (cached: a rerun with the same settings draws instantly);
  2. "Train live": the plain RNN, the GRU and the LSTM learn the recall toy in turn, for a bounded number of steps,
     with a progress bar, a live loss chart and a verdict per cell.
"""

from __future__ import annotations

import math
import time

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from core import toys
from core.layers import cell_label

CELL_CHOICES = ("rnn", "gru", "lstm")  # "rnn" takes the activation control
CLIP_LABELS = {"none": "no clipping", "norm": "clip by norm", "value": "clip by value"}
THRESHOLDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 100.0)
LRS = (0.01, 0.03, 0.1, 0.3, 1.0)
SAFETY_SECONDS_PER_CELL = 90.0  # only a machine far slower than a 2-core laptop reaches this; the page says so
REDRAW_S = 0.4  # seconds between redraws of the live chart
_COMMON = dict(gl_chrono=True, gl_thr=1.0, gl_lr=0.3)
PRESETS = {  # the page opens on "vanish" (DEFAULTS); it says which preset the controls show
    "vanish": dict(label="Vanishing", help="Length 60, tanh, ρ = 1, clip by norm at 1: the plain RNN cannot learn "
                   "the recall task, GRU and LSTM can.",
                   values=dict(gl_length=60, gl_scale=1.0, gl_clip="norm", gl_act="tanh", **_COMMON)),
    "explode": dict(label="Exploding", help="A ReLU RNN with a large recurrent weight (ρ = 1.5) and no clipping: "
                    "the gradient grows going back in time and one SGD step throws the weights so far that the loss "
                    "becomes NaN.",
                    values=dict(gl_length=60, gl_scale=1.5, gl_clip="none", gl_act="relu", **_COMMON)),
    "tamed": dict(label="Exploding, clipped", help="The same ReLU RNN and recurrent weight, but each update's "
                  "gradient is rescaled to norm ≤ 1 (clip by norm): the run stays finite.",
                  values=dict(gl_length=60, gl_scale=1.5, gl_clip="norm", gl_act="relu", **_COMMON)),
    "short": dict(label="Short sequence", help="Length 10, tanh, ρ = 1: short enough that the plain RNN learns it "
                  "too.",
                  values=dict(gl_length=10, gl_scale=1.0, gl_clip="norm", gl_act="tanh", **_COMMON)),
}
DEFAULTS = dict(PRESETS["vanish"]["values"], gl_cells=list(CELL_CHOICES), gl_steps=300)
URL = "query-params"  # every control is bound to the URL under its gl_ key: a link restores the settings


# Fixed colours, so a cell keeps its colour across charts and runs (red: the plain RNN that forgets).
CELL_COLOURS = {"RNN (tanh)": "#dc2626", "RNN (ReLU)": "#ea580c", "GRU": "#16a34a", "LSTM": "#2563eb"}


def _colour(cells) -> alt.Color:
    """The cell colour scale, listing only the cells present (so the legend has no empty entries)."""
    present = [c for c in CELL_COLOURS if c in set(cells)] or list(CELL_COLOURS)
    return alt.Color("cell:N", title="cell",
                     scale=alt.Scale(domain=present, range=[CELL_COLOURS[c] for c in present]))


def _cell_label(cell: str, activation: str) -> str:
    return cell_label(toys.resolve_cell(cell, activation))


# ---- cached pure results -----------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=512)
def _curve(cell: str, length: int, activation: str, scale: float, gate_init: str, seed: int = 0):
    df = toys.gradient_vs_distance(cell, length, activation, scale, hidden=32, seed=seed, gate_init=gate_init)
    return df, dict(df.attrs)


# ---- charts ------------------------------------------------------------------------------------------------------
def _distance_chart(curves: pd.DataFrame, theory: pd.DataFrame, height: int = 340) -> alt.Chart:
    """Measured ||dL/dh_{T-k}|| per cell (solid) and rho**k (grey, dashed) on a log axis; hovering a distance
    shows every line's value there."""
    hover = alt.selection_point(name="k_hover", fields=["distance"], on="pointerover", nearest=True, empty=False,
                                clear="pointerout")
    x = alt.X("distance:Q", title="k = steps back in time from the answer",
              axis=alt.Axis(tickMinStep=1, format="d"))  # whole steps: no half-step ticks on a short sequence
    y = alt.Y("grad_norm:Q", title="‖dL/dh‖ at k steps back (log scale)", scale=alt.Scale(type="log"),
              axis=alt.Axis(format=".0e"))
    color = _colour(curves["cell"].unique())
    lines = alt.Chart(curves).mark_line(strokeWidth=2.5).encode(x=x, y=y, color=color)
    points = alt.Chart(curves).mark_point(filled=True, size=60).encode(
        x=x, y=y, color=color, opacity=alt.condition(hover, alt.value(1.0), alt.value(0.0)),
        tooltip=[alt.Tooltip("cell:N"), alt.Tooltip("distance:Q", title="k"),
                 alt.Tooltip("grad_norm:Q", title="‖dL/dh‖", format=".3e"),
                 alt.Tooltip("spectral_radius:Q", title="ρ(w')", format=".3f")]).add_params(hover)
    rule = alt.Chart(curves).mark_rule(color="#888").encode(x="distance:Q").transform_filter(hover)
    layers = [lines, points, rule]
    if not theory.empty:
        ty = alt.Y("grad_norm:Q", scale=alt.Scale(type="log"))
        layers.insert(0, alt.Chart(theory).mark_line(strokeDash=[6, 4], color="#888", strokeWidth=2).encode(
            x=x, y=ty, detail="series:N",
            tooltip=[alt.Tooltip("series:N", title="line"), alt.Tooltip("distance:Q", title="k"),
                     alt.Tooltip("grad_norm:Q", title="ρᵏ · ‖dL/dh‖ at k=0", format=".3e")]))
        end = theory.iloc[[-1]]  # name the dashed line where it ends, instead of a legend entry
        layers.append(alt.Chart(end).mark_text(align="right", dx=-4, dy=-9, color="#666", fontSize=12).encode(
            x=x, y=ty, text="series:N"))
    return alt.layer(*layers).properties(height=height)


def _training_chart(hist: pd.DataFrame, height: int = 240) -> alt.Chart:
    """Loss (log) and accuracy per step, one line per cell."""
    df = hist.copy()
    df.loc[~(np.isfinite(df["loss"]) & (df["loss"] > 0)), "loss"] = np.nan  # log axis: no 0 / inf / NaN
    df["accuracy (last 20 steps)"] = df.groupby("cell")["accuracy"].transform(
        lambda s: s.rolling(20, min_periods=1).mean())
    color = _colour(df["cell"].unique())
    tip = [alt.Tooltip("cell:N"), alt.Tooltip("step:Q"), alt.Tooltip("loss:Q", format=".4g"),
           alt.Tooltip("accuracy (last 20 steps):Q", format=".0%")]
    loss = alt.Chart(df).mark_line().encode(
        x=alt.X("step:Q"), y=alt.Y("loss:Q", scale=alt.Scale(type="log"), title="training loss (log scale)"),
        color=color, tooltip=tip).properties(height=height, width=330)
    acc_title = "accuracy, mean of the last 20 steps (dashed: chance)"
    acc = alt.Chart(df).mark_line().encode(
        x=alt.X("step:Q"), y=alt.Y("accuracy (last 20 steps):Q", scale=alt.Scale(domain=[0, 1]),
                                   axis=alt.Axis(format="%"), title=acc_title),
        color=color, tooltip=tip).properties(height=height, width=330)
    chance = alt.Chart(pd.DataFrame({"chance": [toys.chance_accuracy("recall")]})).mark_rule(
        strokeDash=[4, 4], color="#999").encode(y=alt.Y("chance:Q", title=acc_title),
                                                tooltip=[alt.Tooltip("chance:Q", format=".0%")])
    blown = _blow_ups(hist)
    if not blown.empty:  # a run that blew up has no finite loss to draw at its last step: mark where it ended
        marks = alt.Chart(blown).mark_point(shape="cross", size=220, strokeWidth=3, filled=True).encode(
            x="step:Q", y=alt.Y("loss:Q", scale=alt.Scale(type="log")), color=color,
            tooltip=[alt.Tooltip("cell:N"), alt.Tooltip("step:Q", title="blew up at step"),
                     alt.Tooltip("what:N", title="loss")])
        loss = alt.layer(loss, marks)
    return alt.hconcat(loss, alt.layer(acc, chance))


def _blow_ups(hist: pd.DataFrame) -> pd.DataFrame:
    """One row per diverged cell: the step, and the last finite loss before it (where the cross is drawn)."""
    rows = []
    for cell, part in hist.groupby("cell", sort=False):
        if not part["diverged"].any():
            continue
        step = int(part.loc[part["diverged"], "step"].iloc[0])
        finite = part["loss"][np.isfinite(part["loss"]) & (part["loss"] > 0)]
        raw = part.loc[part["diverged"], "loss"].iloc[0]
        y = float(raw) if np.isfinite(raw) and raw > 0 else (float(finite.max()) if len(finite) else 1.0)
        rows.append({"cell": cell, "step": step, "loss": y, "what": f"{raw:.3g}"})
    return pd.DataFrame(rows, columns=["cell", "step", "loss", "what"])


def _clip_chart(hist: pd.DataFrame, threshold: float | None, height: int = 240) -> alt.Chart:
    """Total gradient norm before and after clipping, per step (log scale)."""
    y_title = "total gradient norm (log scale)"
    long = hist.melt(id_vars=["cell", "step"], value_vars=["grad_norm_before_clip", "grad_norm_after_clip"],
                     var_name="when", value_name="gradient norm")
    when = ["before clipping", "after clipping"]
    long["when"] = long["when"].map(dict(zip(["grad_norm_before_clip", "grad_norm_after_clip"], when)))
    long.loc[~(np.isfinite(long["gradient norm"]) & (long["gradient norm"] > 0)), "gradient norm"] = np.nan
    chart = alt.Chart(long).mark_line(opacity=0.85).encode(
        x=alt.X("step:Q"), y=alt.Y("gradient norm:Q", scale=alt.Scale(type="log"), title=y_title),
        color=_colour(long["cell"].unique()),
        strokeDash=alt.StrokeDash("when:N", title=None, scale=alt.Scale(domain=when, range=[[1, 0], [5, 3]])),
        tooltip=["cell", "step", "when", alt.Tooltip("gradient norm:Q", format=".3e")])
    chart = chart.properties(height=height)
    if threshold:
        rule = alt.Chart(pd.DataFrame({"threshold": [threshold]})).mark_rule(color="red", strokeDash=[2, 2]).encode(
            y=alt.Y("threshold:Q", title=y_title), tooltip=["threshold"])
        chart = alt.layer(chart, rule)
    return chart


# ---- controls ----------------------------------------------------------------------------------------------------
def _apply_preset(name: str) -> None:
    st.session_state.update(PRESETS[name]["values"])
    st.session_state["gl_cells"] = list(CELL_CHOICES)


def active_preset(state) -> str | None:
    """The preset whose values the controls show now (all three cells picked), else None."""
    if list(state.get("gl_cells") or []) != list(CELL_CHOICES):
        return None
    for name, p in PRESETS.items():
        if all(state.get(k, DEFAULTS.get(k)) == v for k, v in p["values"].items()):
            return name
    return None


def _presets(active: str | None) -> None:
    st.markdown("**Presets** — each sets the controls below to show one effect.")
    with st.container(horizontal=True, gap="small"):
        for name, p in PRESETS.items():
            st.button(p["label"], help=p["help"], on_click=_apply_preset, args=(name,), key=f"gl_preset_{name}",
                      type="primary" if name == active else "secondary", width="content",
                      icon=":material/check:" if name == active else None)
    if active is None:
        st.caption("Now: your own settings (no preset). A preset sets the controls back to one of the four lessons.")
    else:
        st.caption(f"Now: the preset **{PRESETS[active]['label']}** — {PRESETS[active]['help']}")


def _controls() -> dict:
    preset_box = st.container()  # drawn after the controls, so it can say which preset they show
    c1, c2, c3 = st.columns(3)
    d = DEFAULTS
    with c1:
        length = st.slider("Sequence length T", 5, 200, value=d["gl_length"], key="gl_length", bind=URL,
                           help="The symbol to recall is the first of T steps, so the gradient from the answer must "
                                "travel T-1 steps back to reach it.")
        cells = st.multiselect("Cells to compare", CELL_CHOICES, default=d["gl_cells"], key="gl_cells", bind=URL,
                               format_func=lambda c: {"rnn": "plain RNN", "gru": "GRU", "lstm": "LSTM"}[c])
        act = st.radio("Plain-RNN activation f", ("tanh", "relu"), key="gl_act", horizontal=True, bind=URL,
                       index=("tanh", "relu").index(d["gl_act"]),
                       help="Only the plain RNN: GRU and LSTM have fixed sigmoid/tanh gates.")
    with c2:
        scale = st.slider("Recurrent weight scale ρ", 0.1, 4.0, value=d["gl_scale"], step=0.05, key="gl_scale",
                          bind=URL, help="w' is rescaled so that its spectral radius (largest |eigenvalue|) is ρ. "
                                         "torch's default initialisation gives about 0.58 at this size.")
        chrono = st.toggle("Gates start open (chrono init)", value=d["gl_chrono"], key="gl_chrono",
                           bind=URL,
                           help="Sets the LSTM forget-gate and GRU update-gate biases to log T (and the LSTM "
                                "input-gate bias to -log T), so they keep about 1-1/T of their memory per step "
                                "(Tallec & Ollivier, 2018). Off: torch's default, gates near 0.5 — memory halves "
                                "every step. The plain RNN has no gate, so nothing changes for it.")
    with c3:
        clip = st.radio("Gradient clipping (training)", toys.CLIP_MODES, key="gl_clip", bind=URL,
                        index=toys.CLIP_MODES.index(d["gl_clip"]), format_func=CLIP_LABELS.get, horizontal=True)
        thr = st.select_slider("Clipping threshold", THRESHOLDS, value=d["gl_thr"], key="gl_thr", bind=URL,
                               disabled=clip == "none",
                               help="By norm: if the total gradient norm exceeds this, scale every gradient down "
                                    "so it equals this (the direction is kept). By value: clamp every entry to "
                                    "[-threshold, threshold] (the direction can change).")
    with preset_box:
        _presets(active_preset(st.session_state))
    return dict(length=int(length), cells=list(cells), activation=act, scale=float(scale),
                gate_init="chrono" if chrono else "torch", clip=clip, threshold=float(thr))


# ---- part 1: gradient against distance ---------------------------------------------------------------------------
def _distance_section(s: dict) -> None:
    st.subheader("1 · How far back does the gradient reach?", anchor=False)
    if not s["cells"]:
        st.info("Pick at least one cell to compare.")
        return
    frames, rows = [], []
    for cell in s["cells"]:
        df, attrs = _curve(cell, s["length"], s["activation"], s["scale"], s["gate_init"])
        df = df.copy()
        df["cell"] = df["label"]
        frames.append(df)
        g = df["grad_norm_raw"].to_numpy(float)  # as measured: 0 = underflowed, inf = overflowed
        near, far = g[0], g[-1]
        ratio = far / near if np.isfinite(far) and np.isfinite(near) and near > 0 else float("nan")
        rows.append({"cell": df["label"].iloc[0], "ρ(w') measured": attrs["spectral_radius"],
                     "fitted factor per step": attrs["decay_rate"], "‖dL/dh‖ at k=0": near,
                     f"‖dL/dh‖ at k={s['length'] - 1}": far, "far / near": ratio})
    curves = pd.concat(frames, ignore_index=True)
    # One theory line rho**k, anchored on the plain RNN if shown (it is the cell the theory is about).
    anchor = next((f for f in frames if f["cell"].iloc[0].startswith("RNN")), frames[0])
    theory = anchor[["distance", "theory"]].rename(columns={"theory": "grad_norm"}).copy()
    rho = float(anchor["spectral_radius"].iloc[0])
    theory["series"] = f"theory ρᵏ, ρ = {rho:.2f}"
    finite = curves["grad_norm"][np.isfinite(curves["grad_norm"])]
    if len(finite):  # keep the theory inside the measured range (x 100 either way) so it cannot flatten the curves
        lo, hi = float(finite.min()) / 100, float(finite.max()) * 100
        theory = theory[(theory["grad_norm"] >= lo) & (theory["grad_norm"] <= hi)]
    st.altair_chart(_distance_chart(curves, theory.dropna()), width="stretch")
    lstm = (" The LSTM's line drops at k = 1 and then stays level: it shows dL/dh, while the LSTM carries its "
            "memory — and the gradient — in its cell state c, which this chart does not draw; the drop is not "
            "vanishing.") if "lstm" in s["cells"] else ""
    st.caption("Solid lines: the gradient of the loss at the last step with respect to the hidden state k steps "
               "earlier, measured at initialisation on a batch of the recall toy (backpropagation through time, "
               "made visible). Grey dashed: the linear theory ρᵏ from the spectral radius of w' — cut where it "
               "leaves the chart. Gaps mean the value under- or overflowed float32 (the table says which). Hover to "
               "read values." + lstm)
    table = pd.DataFrame(rows)
    for c in table.columns[1:]:
        table[c] = table[c].map(grad_text)
    st.dataframe(table, hide_index=True, width="stretch")
    _explain_distance(s, rows)


def grad_text(v: float) -> str:
    """A measured number as the table shows it: 0 from an underflow says so, never "None" or "nan"."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if math.isinf(v):
        return "overflow (∞)"
    if v == 0:
        return "0 (< 1e-38, underflow)"
    return f"{v:.3g}"


def _explain_distance(s: dict, rows: list[dict]) -> None:
    rho = s["scale"]
    with st.expander("What am I looking at? (vanishing and exploding gradients, BPTT)", expanded=False):
        st.markdown("A recurrent network is one cell applied at every step. To learn, the error at the answer is "
                    "sent backwards through every step it came from — **backpropagation through time (BPTT)**. "
                    "For the plain RNN  o_t = f(x_t·w + o_{t-1}·w' + b_o)  each step back multiplies the gradient "
                    "by the same matrix and by the slope of f, so over k steps it grows or shrinks roughly like "
                    "ρᵏ, ρ being the spectral radius of w' (its largest |eigenvalue|):")
        st.latex(r"\frac{\partial L}{\partial o_{t-1}} = \frac{\partial L}{\partial o_t}\,"
                 r"\operatorname{diag}\!\big(f'(a_t)\big)\,w'^{\top}"
                 r"\quad\Rightarrow\quad \Big\|\frac{\partial L}{\partial o_{T-k}}\Big\| \approx "
                 r"\Big\|\frac{\partial L}{\partial o_T}\Big\|\,\rho(w')^{k}\,\max|f'|^{k}")
        st.markdown(
            "- **ρ < 1 — vanishing.** The gradient shrinks geometrically (tanh' ≤ 1 makes it shrink even faster "
            "than the dashed line). After a few dozen steps nothing is left to tell the first step what it did "
            "wrong, so the plain RNN cannot learn long-range dependencies.\n"
            "- **ρ > 1 — exploding.** With a non-saturating activation (ReLU) or a chaotic tanh network, the "
            "gradient grows going back in time; one update can then throw the weights far away (loss jumps, "
            "or becomes NaN/inf).\n"
            "- **GRU and LSTM** add a path where the state is *copied* from step to step, scaled by a gate (the "
            "GRU update gate z, the LSTM forget gate f) rather than multiplied by w'. With the gates open "
            "(near 1), the gradient crosses many steps almost unchanged — the nearly flat lines. For the LSTM "
            "the long path runs through the cell state c, so ‖dL/dh‖ drops at the first step back and then stays "
            "level.\n"
            "- **Gates must start open.** The GRU and LSTM here start with their gates set to remember (the "
            "*chrono* toggle above). Switch it off and, with torch's default gates near 0.5, their gradient fades "
            "as fast as the plain RNN's — and in part 2 they fail too.\n"
            "- **Clipping** does not change this picture: it acts on the update, not on the forward pass. It "
            "caps the size of an exploding gradient so one step cannot wreck the model (see part 2).")
        rnn = next((r for r in rows if r["cell"].startswith("RNN")), None)
        if rnn is not None and np.isfinite(rnn["far / near"]):
            st.markdown(f"Here, with ρ = {rho:.2f} and T = {s['length']}, the plain RNN's gradient at the first "
                        f"step is **{rnn['far / near']:.2g}×** its size at the last step.")


# ---- part 2: train live ------------------------------------------------------------------------------------------
def _run_key(s: dict, steps: int, lr: float) -> tuple:
    return (s["length"], tuple(s["cells"]), s["activation"], s["scale"], s["gate_init"], s["clip"], s["threshold"],
            steps, lr)


def _train_section(s: dict) -> None:
    st.subheader("2 · Train live", anchor=False)
    st.markdown(f"Each cell learns the **recall** toy: the first of {s['length']} tokens is one of "
                f"{toys.NUM_SYMBOLS} symbols, the other {s['length'] - 1} are random distractors, and after the "
                f"last step the model must name the first symbol (chance: {1 / toys.NUM_SYMBOLS:.0%}). "
                "Optimiser: SGD with momentum 0.9 — the setting where clipping matters (Adam divides each gradient "
                "by its own running size, which hides an explosion). Same random seed, data and budget for every cell.")
    c1, c2, c3 = st.columns([2, 2, 1.4])
    asked = c1.slider("Training steps per cell", 20, 600, value=DEFAULTS["gl_steps"], step=10, key="gl_steps",
                      bind=URL, help=f"Batches of 32 sequences, the same number for every cell. A live run does at "
                                     f"most {toys.WORK_BUDGET:,} steps × sequence length per cell, so a long "
                                     "sequence gets fewer steps (the page says how many).")
    lr = c2.select_slider("Learning rate", LRS, value=DEFAULTS["gl_lr"], key="gl_lr", bind=URL)
    c3.write("")
    go = c3.button("Train live", type="primary", icon=":material/play_arrow:", key="gl_train", width="stretch",
                   disabled=not s["cells"])
    steps = toys.steps_within_budget(int(asked), s["length"])
    if steps < int(asked):
        st.caption(f"At T = {s['length']} every cell trains for **{steps} steps**, not {int(asked)}: a live run "
                   f"does at most {toys.WORK_BUDGET:,} steps × sequence length per cell, so that it takes well "
                   "under a minute. All cells get the same steps, on any machine.")
    key = _run_key(s, int(steps), float(lr))
    if go:
        from core.ui.widgets import guarded

        result = guarded(_train_live, s, int(steps), float(lr), what="training the toy models")
        if result is not None:
            st.session_state["gl_last_run"] = (key, result)
            _show_results(*result, s)
        return
    last = st.session_state.get("gl_last_run")
    if last is not None:
        old_key, (hist, verdicts) = last
        if old_key != key:
            st.caption("Results of the last run, with the settings it had (press Train live to run these).")
        _show_results(hist, verdicts, s)
    else:
        st.caption("Press **Train live**: the cells train one after another (a few seconds each) while the charts "
                   "follow.")


def _train_live(s: dict, steps: int, lr: float):
    cells = s["cells"]
    progress = st.progress(0.0, text="starting…")
    live = st.empty()
    rows: list[dict] = []
    last_draw = [0.0]  # redraw at most every REDRAW_S: smooth to watch, and the drawing never slows training much
    verdicts = []
    for i, cell in enumerate(cells):
        label = _cell_label(cell, s["activation"])

        def on_step(r, i=i, label=label):
            rows.append({"cell": label, **{k: r[k] for k in ("step", "loss", "accuracy", "grad_norm_before_clip",
                                                              "grad_norm_after_clip", "diverged")}})
            frac = (i + r["step"] / r["steps"]) / len(cells)
            now = time.monotonic()
            if now - last_draw[0] >= REDRAW_S or r["diverged"] or r["step"] == r["steps"]:
                last_draw[0] = now
                loss = f"{r['loss']:.3g}" if math.isfinite(r["loss"]) else str(r["loss"])
                progress.progress(min(1.0, frac), text=f"{label}: step {r['step']}/{r['steps']} · loss {loss}")
                live.altair_chart(_training_chart(pd.DataFrame(rows)), width="stretch")

        hist = toys.train_toy(cell, s["length"], steps, s["clip"], s["threshold"], lr, seed=0, callback=on_step,
                              activation=s["activation"], recurrent_scale=s["scale"], gate_init=s["gate_init"],
                              max_seconds=SAFETY_SECONDS_PER_CELL)
        cut = len(hist) < steps and not hist.attrs["diverged"]
        verdicts.append((label, toys.verdict(hist), bool(hist.attrs["diverged"]), hist.attrs["final_accuracy"],
                         (len(hist), steps) if cut else None, toys.learning_trend(hist)["rising"]))
    progress.progress(1.0, text="done")
    live.empty()
    progress.empty()
    return pd.DataFrame(rows), verdicts


def _show_results(hist: pd.DataFrame, verdicts: list, s: dict) -> None:
    if hist.empty:
        st.info("No steps were run.")
        return
    st.altair_chart(_training_chart(hist), width="stretch")
    for _label, text, diverged, acc, cut, rising in verdicts:
        icon = (":red[:material/error:]" if diverged else ":green[:material/check_circle:]" if acc >= 0.9 else
                ":orange[:material/trending_up:]" if rising else ":orange[:material/cancel:]")
        extra = (f" **Stopped early at step {cut[0]} of {cut[1]}**: this machine was too busy to finish within "
                 f"{SAFETY_SECONDS_PER_CELL:.0f} s, so this cell had fewer steps than the others." if cut else "")
        st.markdown(f"{icon} {text}{extra}")
    with st.expander("Gradient norm before and after clipping, per step"):
        thr = s["threshold"] if s["clip"] == "norm" else None
        st.altair_chart(_clip_chart(hist, thr), width="stretch")
        st.caption("Solid: the total gradient norm BPTT produced; dashed: what the update used after clipping "
                   "(equal when clipping is off or the norm is under the threshold). Red dotted line: the "
                   "clip-by-norm threshold. A run that blew up ends where its loss or gradient became huge or "
                   "not a number — the step is skipped and the run stopped, instead of crashing.")
    if any(v[2] for v in verdicts) and s["clip"] == "none":
        st.info("A run blew up. Try the same settings with **clip by norm** — or the preset "
                f"“{PRESETS['tamed']['label']}”.", icon=":material/lightbulb:")


# ---- page --------------------------------------------------------------------------------------------------------
def render() -> None:
    from core.ui.widgets import guarded, link_popover

    st.title("Gradient Lab", anchor=False)
    st.markdown("Why does a plain RNN forget, and why do GRUs and LSTMs not? Set a sequence length and a recurrent "
                "weight scale, see how the gradient fades (or blows up) as it travels back in time, then train all "
                "three cells live and watch which one learns. Nothing here needs trained weights: every model is "
                "built on the spot from a fixed random seed.")
    link_slot = st.empty()  # filled last, once every control has put its value in the URL
    s = _controls()
    st.divider()
    guarded(_distance_section, s, what="measuring the gradients")
    st.divider()
    _train_section(s)
    with link_slot:
        guarded(link_popover, "gl", what="making the link to this view")
