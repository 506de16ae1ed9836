"""The Gradient Lab: watch backpropagation through time vanish or explode, and clipping tame it. Needs no trained
weights -- every model here is built on the spot from a fixed random seed (core.toys).

Four parts:
  1. ||dL/dh_t|| against distance back in time, at initialisation, one line per cell, beside the linear theory
     rho**k from the spectral radius of w' (cached: a rerun with the same settings draws instantly);
  2. "Train live": the plain RNN, the GRU and the LSTM learn the recall toy in turn, for a bounded number of steps,
     with a progress bar, a live loss chart and a verdict per cell.
  3. Parity: every cell (the 2024 linear recurrences minGRU and minLSTM too) learns parity at short lengths and is
     tested at 2x, 4x, 8x that length; what each cell did, with the theory beside it.
  4. Speed: one training step of each cell timed at T = 64 ... 4096 on this server (loop against parallel scan),
     measured on a button press and kept for every visitor of this server.
"""

from __future__ import annotations

import math
import threading
import time

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from core import speed, toys
from core.layers import CELLS, MIN_CELLS, cell_label

CLASSIC_CELLS = ("rnn", "gru", "lstm")  # "rnn" takes the activation control; the presets compare these three
CELL_CHOICES = CLASSIC_CELLS + tuple(c for c in CELLS if c in MIN_CELLS)  # minGRU / minLSTM can be added
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
DEFAULTS = dict(PRESETS["vanish"]["values"], gl_cells=list(CLASSIC_CELLS), gl_steps=300)
URL = "query-params"  # every control is bound to the URL under its gl_ key: a link restores the settings


# Fixed colours, so a cell keeps its colour across charts and runs (red: the plain RNN that forgets).
CELL_COLOURS = {"RNN (tanh)": "#dc2626", "RNN (ReLU)": "#ea580c", "GRU": "#16a34a", "LSTM": "#2563eb",
                cell_label("mingru"): "#9333ea", cell_label("minlstm"): "#0891b2"}


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


def _training_chart(hist: pd.DataFrame, height: int = 240, chance: float | None = None) -> alt.Chart:
    """Loss (log) and accuracy per step, one line per cell; the dashed rule is ``chance`` (recall's by default)."""
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
    chance = toys.chance_accuracy("recall") if chance is None else chance
    chance = alt.Chart(pd.DataFrame({"chance": [chance]})).mark_rule(
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
    st.session_state["gl_cells"] = list(CLASSIC_CELLS)


def active_preset(state) -> str | None:
    """The preset whose values the controls show now (all three cells picked), else None."""
    if list(state.get("gl_cells") or []) != list(CLASSIC_CELLS):
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
                               format_func=lambda c: "plain RNN" if c == "rnn" else cell_label(c))
        act = st.radio("Plain-RNN activation f", ("tanh", "relu"), key="gl_act", horizontal=True, bind=URL,
                       index=("tanh", "relu").index(d["gl_act"]),
                       help="Only the plain RNN: GRU and LSTM have fixed sigmoid/tanh gates.")
    with c2:
        scale = st.slider("Recurrent weight scale ρ", 0.1, 4.0, value=d["gl_scale"], step=0.05, key="gl_scale",
                          bind=URL, help="w' is rescaled so that its spectral radius (largest |eigenvalue|) is ρ. "
                                         "torch's default initialisation gives about 0.58 at this size. minGRU "
                                         "and minLSTM have no w' (their gates read only the input): nothing to "
                                         "rescale.")
        chrono = st.toggle("Gates start open (chrono init)", value=d["gl_chrono"], key="gl_chrono",
                           bind=URL,
                           help="Sets the LSTM forget-gate and GRU update-gate biases to log T (and the LSTM "
                                "input-gate bias to -log T), so they keep about 1-1/T of their memory per step "
                                "(Tallec & Ollivier, 2018). Off: torch's default, gates near 0.5 — memory halves "
                                "every step. minGRU and minLSTM get the same start (their update gate near 1/T). "
                                "The plain RNN has no gate, so nothing changes for it.")
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
                    "For the plain RNN $o_t = f(x_t \\cdot w + o_{t-1} \\cdot w' + b_o)$ each step back multiplies the gradient "
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
            "caps the size of an exploding gradient so one step cannot wreck the model (see part 2)."
            + ("\n- **minGRU and minLSTM** have no w' at all: h_t = (1 − z_t)·h_{t−1} + z_t·h̃_t with z_t read "
               "from the input alone, so each step back multiplies the gradient by (1 − z_t) only — no w', no "
               "slope of f. With z started near 1/T (the chrono toggle) it fades slowly, like the GRU's; ρ does "
               "not apply to them." if any(c in MIN_CELLS for c in s["cells"]) else ""))
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


# ---- part 3: parity and length generalisation -------------------------------------------------------------------
PARITY_LENGTHS = (10, 20, 30, 40)  # the longest training sequence a visitor may pick
PARITY_DEFAULTS = dict(gl_par_cells=list(toys.PARITY_CELLS), gl_par_len=20, gl_par_steps=600, gl_par_runs=1)


def _parity_controls() -> dict:
    d = PARITY_DEFAULTS
    c1, c2, c3 = st.columns([2.2, 2, 1.4])
    cells = c1.multiselect("Cells to compare", toys.PARITY_CELLS, default=d["gl_par_cells"], key="gl_par_cells",
                           bind=URL, format_func=cell_label)
    length = c1.select_slider("Longest training sequence T", PARITY_LENGTHS, value=d["gl_par_len"],
                              key="gl_par_len", bind=URL,
                              help="Training sequences are 1 to T bits long; the test is at exactly T, 2T, 4T "
                                   "and 8T bits.")
    steps = c2.slider("Training steps per run", 100, 1000, value=d["gl_par_steps"], step=50, key="gl_par_steps",
                      bind=URL, help="Batches of 64 sequences, the same for every cell.")
    runs = c2.slider("Runs per cell (different random starts)", 1, 3, value=d["gl_par_runs"], key="gl_par_runs",
                     bind=URL, help="Whether a cell finds the rule can depend on its random start: more runs show "
                                    "how often it does. Each run costs the same time again.")
    c3.write("")
    go = c3.button("Train on parity", type="primary", icon=":material/play_arrow:", key="gl_par_train",
                   width="stretch", disabled=not cells)
    return dict(cells=[c for c in toys.PARITY_CELLS if c in cells], length=int(length), asked=int(steps),
                runs=int(runs), go=go)


def _intro(title: str, text: str) -> None:
    """A section's title and its opening paragraph (``text`` may be indented and wrapped: lines are joined)."""
    st.subheader(title, anchor=False)
    st.markdown(" ".join(text.split()))


def _parity_section() -> None:
    _intro("3 · Parity: does what a cell learned hold at longer lengths?", """
        Each sequence is a string of random bits; the answer is whether it holds an **odd number of 1s** (chance:
        50%). Every bit matters, and each 1 flips the answer — so the state must flip too. Each cell trains on
        sequences of 1 to T bits, then is tested on fresh sequences of exactly T, 2T, 4T and 8T bits: **length
        generalisation**. Same seed, data, optimiser (Adam) and budget for every cell; the answer is read from the
        last state by the same small two-layer network.""")
    p = _parity_controls()
    steps = toys.parity_steps(p["asked"], p["length"], p["runs"])
    if steps < p["asked"]:
        st.caption(f"Every run trains for **{steps} steps**, not {p['asked']}: a live run does at most "
                   f"{toys.WORK_BUDGET:,} steps × sequence length per cell (all its runs together).")
    cfg = toys.ParityConfig(train_length=p["length"], steps=steps)
    key = (tuple(p["cells"]), p["length"], steps, p["runs"])
    if p["go"]:
        from core.ui.widgets import guarded

        result = guarded(_parity_live, p["cells"], cfg, p["runs"], what="training on parity")
        if result is not None:
            st.session_state["gl_par_last"] = (key, result)
            _parity_results(*result)
        return
    last = st.session_state.get("gl_par_last")
    if last is not None:
        if last[0] != key:
            st.caption("Results of the last run, with the settings it had (press Train on parity to run these).")
        _parity_results(*last[1])
    else:
        st.caption("Press **Train on parity**: the cells train one after another while the chart follows.")


def _parity_live(cells: list[str], cfg: toys.ParityConfig, runs: int):
    progress = st.progress(0.0, text="starting…")
    live = st.empty()
    rows: list[dict] = []
    last_draw = [0.0]
    order = {c: i for i, c in enumerate(cells)}

    def on_step(r):
        name = r["label"] + (f" · run {r['seed'] + 1}" if runs > 1 else "")
        rows.append({"cell": name, **{k: r[k] for k in ("step", "loss", "accuracy", "grad_norm_before_clip",
                                                         "grad_norm_after_clip", "diverged")}})
        frac = ((order[r["cell"]] * runs + r["seed"]) + r["step"] / r["steps"]) / (len(cells) * runs)
        now = time.monotonic()
        if now - last_draw[0] >= REDRAW_S or r["step"] == r["steps"]:
            last_draw[0] = now
            recent = pd.DataFrame(rows[-20:])
            acc = recent.loc[recent["cell"] == name, "accuracy"].mean()
            progress.progress(min(1.0, frac), text=f"{name}: step {r['step']}/{r['steps']} · training accuracy "
                                                   f"{acc:.0%} (last 20 steps)")
            live.altair_chart(_training_chart(pd.DataFrame(rows), chance=toys.chance_accuracy("parity")),
                              width="stretch")

    results = toys.parity_lab(cells, cfg, seeds=tuple(range(runs)), callback=on_step,
                              max_seconds=SAFETY_SECONDS_PER_CELL)
    progress.empty()
    live.empty()
    return results, pd.DataFrame(rows)


def _parity_chart(results: pd.DataFrame, height: int = 220) -> alt.Chart:
    """One small panel per cell (cells that did the same would hide each other on one chart): test accuracy
    against test length (log axis), the mean over runs as a line and each run as a faint point; dashed: chance;
    grey rule: the longest training length."""
    df = results.drop(columns="cell").rename(columns={"label": "cell"})
    lengths = sorted(df["length"].unique().tolist())
    t = int(df.loc[df["trained"], "length"].iloc[0])
    x = alt.X("length:Q", title="test length (bits)", axis=alt.Axis(values=lengths, format="d"),
              scale=alt.Scale(type="log", base=2, domain=[lengths[0] / 1.3, lengths[-1] * 1.3]))
    y = alt.Y("accuracy:Q", title="test accuracy", scale=alt.Scale(domain=[0.0, 1.0]), axis=alt.Axis(format="%"))
    y_bare = alt.Y("accuracy:Q", title=None, scale=alt.Scale(domain=[0.0, 1.0]), axis=alt.Axis(format="%"))
    tip = [alt.Tooltip("cell:N"), alt.Tooltip("length:Q", title="length"), alt.Tooltip("accuracy:Q", format=".0%")]
    chance = alt.Chart(pd.DataFrame({"accuracy": [toys.chance_accuracy("parity")], "text": ["chance"]}))
    trained = alt.Chart(pd.DataFrame({"length": [t], "text": ["trained up to here"]}))
    panels = []
    cells = list(dict.fromkeys(df["cell"]))
    for i, cell in enumerate(cells):
        part = df[df["cell"] == cell]
        mean = part.groupby("length", as_index=False)["accuracy"].mean().assign(cell=cell)
        colour = CELL_COLOURS.get(cell, "#555")
        layers = [chance.mark_rule(strokeDash=[4, 4], color="#999").encode(y="accuracy:Q"),
                  trained.mark_rule(color="#bbb").encode(x="length:Q"),
                  alt.Chart(part).mark_point(size=35, opacity=0.45, color=colour).encode(
                      x=x, y=y if i == 0 else y_bare, tooltip=tip + [alt.Tooltip("seed:Q", title="run (seed)")]),
                  alt.Chart(mean).mark_line(strokeWidth=2.5, color=colour,
                                            point=alt.OverlayMarkDef(color=colour)).encode(
                      x=x, y=y if i == 0 else y_bare, tooltip=tip)]
        if i == 0:  # name the two guides once
            layers += [trained.mark_text(align="left", dx=3, dy=8, color="#888", fontSize=10).encode(
                           x="length:Q", y=alt.value(0), text="text:N"),
                       chance.mark_text(align="right", dx=0, dy=-6, color="#888", fontSize=10).encode(
                           x=alt.value(118), y="accuracy:Q", text="text:N")]
        panels.append(alt.layer(*layers).properties(
            width=118, height=height, title=alt.TitleParams(cell, color=colour, fontSize=14)))
    return alt.hconcat(*panels, spacing=12).resolve_scale(y="shared")


def _parity_results(results: pd.DataFrame, hist: pd.DataFrame) -> None:
    if results.empty:
        st.info("No run finished.")
        return
    st.altair_chart(_parity_chart(results), width="stretch")
    table = results.groupby(["label", "length"], sort=False)["accuracy"].mean().unstack("length")
    table.columns = [f"{c} bits" + (" (trained)" if c == results.attrs.get("train_length") else "")
                     for c in table.columns]
    table = table.map(lambda v: f"{v:.0%}").reset_index().rename(columns={"label": "cell"})
    table.insert(1, "chance", f"{toys.chance_accuracy('parity'):.0%}")
    st.dataframe(table, hide_index=True, width="stretch")
    runs = results["seed"].nunique()
    st.caption(f"Test accuracy on {int(toys.ParityConfig().eval_size)} fresh sequences of each length"
               + (f", the mean over {runs} runs (the faint points are the single runs)" if runs > 1 else "")
               + ". Each cell trained on sequences of 1 to "
               f"{results.attrs.get('train_length')} bits for {int(results['steps_run'].max())} steps.")
    for cell in results["cell"].unique():
        part = results[results["cell"] == cell]
        outcomes = {toys.parity_outcome(r) for _, r in part.groupby("seed")}
        icon = (":green[:material/check_circle:]" if outcomes == {"generalised"} else
                ":red[:material/cancel:]" if outcomes == {"not learned"} else ":orange[:material/error:]")
        st.markdown(f"{icon} {toys.parity_verdict(results, cell)}")
    st.markdown(_parity_measured(results))
    if not hist.empty:
        with st.expander("Training curves"):
            st.altair_chart(_training_chart(hist, chance=toys.chance_accuracy("parity")), width="stretch")
    _parity_theory()


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _parity_measured(results: pd.DataFrame) -> str:
    """What this run showed, in one paragraph built from the measured outcomes."""
    s = toys.parity_summary(results)
    parts = []
    if s["generalised"]:
        parts.append(f"**{_join(s['generalised'])}** learned a rule that held at every longer length tested")
    if s["fits only"]:
        parts.append(f"**{_join(s['fits only'])}** got the training lengths right but not the longer ones")
    if s["partly"]:
        parts.append(f"**{_join(s['partly'])}** learned it only in part, within the budget")
    if s["not learned"]:
        parts.append(f"**{_join(s['not learned'])}** did not learn it even at the training lengths")
    if s["mixed"]:
        parts.append(f"**{_join(s['mixed'])}** did differently from one random start to the next")
    return "**What this run measured:** " + "; ".join(parts) + "."


def _parity_theory() -> None:
    with st.expander("Why? A state that can flip, and one that can only fade", expanded=True):
        st.markdown(
            "To track parity a network must keep one bit of state and **flip** it at every 1: "
            "even → odd → even.\n\n"
            "- A **tanh-RNN, GRU or LSTM** computes its next state through a nonlinearity of the previous state "
            "(o_t = tanh(x_t·w + o_{t−1}·w' + b)). Such a network *can* build a flip-flop, and a flip-flop works "
            "at any length — if training finds it. Whether it does can depend on the random start: try more runs.\n"
            "- **minGRU and minLSTM** (Feng et al., 2024) compute their gates from the input alone, so each step "
            "is h_t = a_t ⊙ h_{t−1} + b_t with a factor a_t between 0 and 1 (minGRU: a_t = 1 − z_t). That is "
            "what makes them fast — the whole sequence is one parallel scan (part 4) — and it is also the catch: "
            "with a_t > 0, reading a 1 maps every state the same increasing way — a state that was higher stays "
            "higher — so the two states *even* and *odd* can never swap places, which is what a 1 must do. The "
            "most such a cell can do is *count* the 1s, and a readout that turns a count into odd or even knows "
            "only the counts it met in training. Grazzi et al. (ICLR 2025, *Unlocking "
            "State-Tracking in Linear RNNs Through Negative Eigenvalues*) prove that linear recurrences whose "
            "factors stay in [0, 1] — minGRU's, Mamba's — cannot solve parity for every length, and find them "
            "near chance in practice; letting the factors reach down to −1 fixes it.\n"
            "- So: the linear recurrences buy speed on long sequences with the ability to *track a state* "
            "(parity, counting modulo n, following moves in a game). For most tasks — sentiment, names, tagging — "
            "that ability is not what matters; for state tracking, use a GRU or LSTM.")


# ---- part 4: speed -----------------------------------------------------------------------------------------------
SPEED_CONFIG = speed.SpeedConfig()  # batch 8, 128 units, T = 64 ... 4096, at most about 40 s on this server
@st.cache_resource(show_spinner=False)
def _speed_store() -> dict:
    """The speed measurements of this server process, shared by every visitor: {"table": DataFrame | None,
    "when": str, "lock": Lock}. The lock keeps two visitors from measuring at once (each would slow the other
    and both numbers would be wrong)."""
    return {"table": None, "when": "", "lock": threading.Lock()}


def _speed_section() -> None:
    _intro("4 · Speed: one step after another, or all at once?", f"""
        A plain RNN, a GRU and an LSTM must finish step t before step t+1 can start — each state needs the previous
        one — so a sequence of T steps is T rounds of work in a row, even in torch's fused kernel. minGRU and minLSTM
        compute their gates from the input alone: every step's gate is known at once, and the recurrence becomes a
        **parallel scan**, about log₂ T rounds that each run many steps side by side. Here each cell's **training
        step** (forward and backward, a batch of {SPEED_CONFIG.batch} sequences, {SPEED_CONFIG.hidden} units) is
        timed on this server at lengths 64 to 4,096.""")
    store = _speed_store()
    with st.container(horizontal=True, gap="small"):
        go = st.button("Measure on this server" if store["table"] is None else "Measure again",
                       icon=":material/timer:", key="gl_speed_go", width="content")
    if go:
        from core.ui.widgets import guarded

        if not store["lock"].acquire(blocking=False):
            st.info("Another visitor is measuring right now (two at once would slow each other down). The results "
                    "appear here for everyone: press the button again in a minute.", icon=":material/hourglass_top:")
        else:
            try:
                table = guarded(_measure_speed, what="timing the cells")
                if table is not None:
                    store.update(table=table, when=time.strftime("%H:%M UTC", time.gmtime()))
            finally:
                store["lock"].release()
            if table is not None:
                st.rerun()  # draw the page again, so the button is labelled "Measure again"
    if store["table"] is None:
        st.caption(f"Press **Measure on this server**: it takes up to about {SPEED_CONFIG.budget_s:.0f} s "
                   "(longer lengths are estimated when timing them would take longer), and the result is kept for "
                   "every visitor of this server.")
        return
    _speed_results(store["table"], store["when"])


def _measure_speed() -> pd.DataFrame:
    progress = st.progress(0.0, text="starting…")

    def on_row(r):
        progress.progress(r["index"] / r["total"], text=f"{r['series']}: T = {r['length']:,}")

    table = speed.speed_table(SPEED_CONFIG, callback=on_row)
    progress.empty()
    return table


def _speed_chart(table: pd.DataFrame, height: int = 340) -> alt.Chart:
    df = table.drop(columns="cell").rename(columns={"label": "cell"})
    df["ms"] = df["seconds"] * 1000
    df["how"] = np.where(df["measured"], "measured", "estimated")
    x = alt.X("length:Q", title="sequence length T (log scale)", scale=alt.Scale(type="log", base=2),
              axis=alt.Axis(values=sorted(df["length"].unique().tolist()), format=",d"))
    y = alt.Y("ms:Q", title="one training step, ms (log scale)", scale=alt.Scale(type="log"))
    paths = [speed.PATH_LOOP, speed.PATH_SCAN, speed.PATH_STEPWISE]
    dash = alt.StrokeDash("path:N", title="how it runs",
                          scale=alt.Scale(domain=paths, range=[[1, 0], [8, 3], [2, 2]]))
    tip = [alt.Tooltip("cell:N"), alt.Tooltip("path:N", title="how it runs"), alt.Tooltip("length:Q", format=",d"),
           alt.Tooltip("ms:Q", title="ms per step", format=",.1f"), alt.Tooltip("how:N"),
           alt.Tooltip("rounds:Q", title="rounds in a row", format=",d")]
    color = _colour(df["cell"].unique())
    lines = alt.Chart(df).mark_line(strokeWidth=2.2).encode(x=x, y=y, color=color, strokeDash=dash, detail="series:N")
    measured = alt.Chart(df[df["measured"]]).mark_point(size=55, filled=True).encode(
        x=x, y=y, color=color, detail="series:N", tooltip=tip)
    estimated = alt.Chart(df[~df["measured"]]).mark_point(size=70, filled=False, strokeWidth=2).encode(
        x=x, y=y, color=color, detail="series:N", tooltip=tip)
    return alt.layer(lines, measured, estimated).properties(height=height)


def _ms(v: float, measured: bool) -> str:
    text = f"{v * 1000:,.1f}" if v < 10 else f"{v * 1000:,.0f}"
    return text if measured else f"≈ {text}"


def _speed_results(table: pd.DataFrame, when: str) -> None:
    a = table.attrs
    st.altair_chart(_speed_chart(table), width="stretch")
    wide = table.assign(text=[_ms(v, m) for v, m in zip(table["seconds"], table["measured"])])
    wide = wide.pivot_table(index="series", columns="length", values="text", aggfunc="first", sort=False)
    wide.columns = [f"T = {c:,}" for c in wide.columns]
    st.dataframe(wide.reset_index().rename(columns={"series": "cell, how it runs"}), hide_index=True,
                 width="stretch")
    rounds = pd.DataFrame({f"T = {t:,}": [speed.sequential_rounds(t, speed.PATH_LOOP),
                                          speed.sequential_rounds(t, speed.PATH_SCAN)]
                           for t in sorted(table["length"].unique())})
    rounds.insert(0, "rounds that must wait for the one before", ["a loop: T", "a parallel scan: about log₂ T"])
    st.dataframe(rounds, hide_index=True, width="stretch")
    estimated = int((~table["measured"]).sum())
    st.caption(f"Milliseconds per training step (forward + backward), the fastest of {SPEED_CONFIG.repeats} "
               f"runs, measured at {when} on this server with {a.get('threads', '?')} CPU thread(s), batch "
               f"{a.get('batch')}, {a.get('hidden')} units"
               + (f"; **≈ marks {estimated} estimate{'s' if estimated != 1 else ''}**: timing those lengths would "
                  f"have taken the measurement past its {a.get('budget_s', 0):.0f} s budget, so the time was "
                  "scaled up from the longest length measured (a loop's time grows in proportion to T)"
                  if estimated else "") + ". Other visitors using the server at the same time slow every number "
               "down: compare the lines with each other, not with another day's.")
    st.markdown(_speed_words(table))


def _speed_words(table: pd.DataFrame) -> str:
    """The panel's reading of its own numbers: scan against its own loop and against the fused GRU, at the
    longest length both were measured (not estimated)."""
    scans = table[table["path"] == speed.PATH_SCAN]
    if scans.empty:
        return "No parallel-scan cell is installed here, so there is nothing to compare the loops with."
    cell = scans["cell"].iloc[0]
    label = cell_label(cell)
    ok = table[table["measured"]]
    pairs = [((cell, speed.PATH_STEPWISE), "its own weights run one step at a time"),
             (("gru", speed.PATH_LOOP), "the GRU in torch's fused kernel")]
    out, ratios = [], []
    for other, words in pairs:
        both = set(ok.loc[(ok["cell"] == cell) & (ok["path"] == speed.PATH_SCAN), "length"]) & set(
            ok.loc[(ok["cell"] == other[0]) & (ok["path"] == other[1]), "length"])
        if not both:
            continue
        t = max(both)
        r = speed.speed_ratio(table, t, other, (cell, speed.PATH_SCAN))
        if math.isfinite(r):
            faster = f"**{r:.1f}× faster**" if r >= 1 else f"**{1 / r:.1f}× slower**"
            out.append(f"at T = {t:,} the scan was {faster} than {words}")
            ratios.append((other[1], r))
    if not out:
        return ""
    why = ("A loop's time grows with T because its T steps run one after another; the scan does about the same "
           "total work in about log₂ T rounds, and on hardware with many parallel units (a GPU) its lead grows "
           "further.")
    if any(path == speed.PATH_STEPWISE and r < 1.5 for path, r in ratios):
        why = ("Here the scan did not pull clearly ahead of its own loop: on a CPU with few cores — and more so "
               "while other work shares them — the scan's extra passes over the data cost about as much as the "
               "loop's waiting. Its lead shows where many parallel units are free (a GPU), and grows with T.")
    return f"**On this server, {label}:** " + "; ".join(out) + ". " + why


# ---- page --------------------------------------------------------------------------------------------------------
def render() -> None:
    from core.ui.widgets import guarded, link_popover

    st.title("Gradient Lab", anchor=False)
    st.markdown("Why does a plain RNN forget, and why do GRUs and LSTMs not? Set a sequence length and a recurrent "
                "weight scale, see how the gradient fades (or blows up) as it travels back in time, then train all "
                "three cells live and watch which one learns. Then meet the 2024 linear recurrences, minGRU and "
                "minLSTM: see what they cannot learn (parity) and how much faster they train on long sequences. "
                "Nothing here needs trained weights: every model is built on the spot from a fixed random seed.")
    link_slot = st.empty()  # filled last, once every control has put its value in the URL
    s = _controls()
    st.divider()
    guarded(_distance_section, s, what="measuring the gradients")
    st.divider()
    _train_section(s)
    st.divider()
    guarded(_parity_section, what="running the parity experiment")
    st.divider()
    guarded(_speed_section, what="drawing the speed panel")
    with link_slot:
        guarded(link_popover, "gl", what="making the link to this view")
