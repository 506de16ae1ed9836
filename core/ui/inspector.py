"""The shared inspector: what backpropagation through time does on *this* input, in six views -- the ones a student
reads first at the top (gradient through time, saliency, gates), the raw per-parameter numbers last, in one
expander; a short table of contents above them. minGRU / minLSTM models get a seventh, how far back each step
still reaches (the product of the kept fractions), and no recurrent matrix to show. What BPTT is is said once, in
the glossary (core.ui.widgets).

The numbers come from ``core.inspect.inspect_model`` (pure data, cached per task, model and input so that a rerun
-- moving the clipping slider, clicking a step -- costs nothing). Every chart has a short caption in plain words,
and where it helps a sentence computed from the numbers ("the gradient reaching step 0 is 1e-6 of ...").
"""

from __future__ import annotations

import hashlib
import logging
import math
import pickle
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.inspect import Inspection, clip_report, clip_reports, decay_rate, inspect_model, reach_summary, recurrent_spectra
from core.task import BadInput
from core.ui import charts
from core.ui.shapes import shape_spec
from core.ui.widgets import VISIBLE, lazy_expander, md_code, md_escape, show_error, show_tokens

SECTIONS = {  # anchor -> title, in the order the page shows them
    "inspect-through-time": "Gradient through time",
    "inspect-saliency": "Which inputs mattered",
    "inspect-gates": "Gate activations",
    "inspect-reach": "How far back each step reaches",
    "inspect-clipping": "Gradient clipping",
    "inspect-matrix": "The recurrent matrix w'",
    "inspect-parameters": "Gradient per parameter",
}


def _reach(ins: Inspection) -> pd.DataFrame:
    """The minGRU / minLSTM reach table (empty for the other cells, and for inspections kept from before it)."""
    return getattr(ins, "reach", None) if getattr(ins, "reach", None) is not None else pd.DataFrame()


def _shown(ins: Inspection) -> list[str]:
    """The sections this inspection has (a plain RNN has no gates; only minGRU / minLSTM have the reach)."""
    return [a for a in SECTIONS if not (a == "inspect-gates" and ins.gates.empty)
            and not (a == "inspect-reach" and _reach(ins).empty)]


def _min_cells_only(ins: Inspection) -> bool:
    """Every recurrent layer of this model is a minGRU / minLSTM: there is no recurrent matrix w' at all."""
    return ins.spectra.empty and not _reach(ins).empty


def _heading(anchor: str, ins: Inspection, data=None, empty: str = "") -> bool:
    """The section's numbered title; with ``data``, False (after saying ``empty``) when that frame is empty."""
    shown = _shown(ins)
    n = shown.index(anchor) + 1 if anchor in shown else len(shown)
    st.subheader(f"{n} · {SECTIONS[anchor]}", anchor=anchor)
    if data is not None and data.empty:
        st.info(empty)
        return False
    return True


def _contents(ins: Inspection) -> None:
    """A one-line table of contents (links to the sections that have something to show)."""
    links = [f"[{SECTIONS[a]}](#{a})" for a in _shown(ins)]
    st.markdown("**On this tab:** " + " · ".join(links))
    st.caption("New to these words? The **Glossary** in the sidebar explains backpropagation through time (BPTT), "
               "saliency, gates, the spectral radius and gradient clipping in plain words.")

log = logging.getLogger("rnnlab.ui")

WHERE_THE_LOSS_IS = {  # ShapeSpec.loss_at -> where the gradient through time starts, said under its chart
    "last": "The loss is read at the last step, so the gradient starts there and flows left.",
    "decoder": "The decoder's loss reaches the encoder through the bridge (and the attention, if any).",
    "every": ("Here every step has its own loss term, so each point sums many paths of different length; "
              "the decay is less clean than for a single answer at the end."),
}
CLIP_OPTIONS = [float(f"{10 ** e:.3g}") for e in np.arange(-4, 3.001, 0.25)]  # 1e-4 ... 1e3, log-spaced


def input_key(x: Any) -> str:
    """A stable digest of any input (text, dict of settings, array) for caching."""
    try:
        raw = pickle.dumps(x, protocol=4)
    except Exception:  # noqa: BLE001 -- unpicklable inputs still get a (less precise) key
        raw = repr(x).encode("utf-8", "replace")
    return hashlib.sha256(raw).hexdigest()


def model_key(model) -> str:
    # A loaded model is named by its weights' checksum; one trained live (the Your data page) by its cache_id.
    sha = getattr(model.runtime.card, "weights_sha256", None) or getattr(model, "cache_id", None)
    # Variants kept beside the served model share one card: the variant name tells them apart.
    return f"{sha or id(model)}:{model.runtime.variant}"


# Shared by all sessions. An entry keeps the clipping tables for every threshold the slider offers instead of the
# model-sized gradients (a few KB instead of up to tens of MB, and st.cache_data unpickles an entry on every hit).
@st.cache_data(show_spinner="Running the model forwards, then backwards through time ...", max_entries=16,
               ttl=3600)
def _inspect_cached(task_name: str, model_id: str, in_key: str, _task, _model, _input) -> Inspection:
    # Keyed by (task, model weights, input digest); the underscored arguments are not hashed.
    ins = inspect_model(_model, lambda m: _task.inspect_loss(m, _input))
    ins.clip, ins.grads = clip_reports(ins.grads, CLIP_OPTIONS, dict(zip(ins.params.name, ins.params.lesson_name))), {}
    return ins


PRIVATE_KEEP = 4  # inspections a session keeps of a private task's models (Task.private: the Your data page)


def run_inspection(task, model, input) -> Inspection:
    """inspect_model on ``task.inspect_loss(model, input)``, cached. Raises what the task raises (BadInput ...).

    A private task (``task.private``, e.g. a visitor's own data) is never put in the cache that all sessions
    share: its last few inspections live in that visitor's session state and go with the session."""
    if not getattr(task, "private", False):
        return _inspect_cached(task.name, model_key(model), input_key(input), task, model, input)
    kept = st.session_state.setdefault("_rnnlab_private_inspections", {})
    key = (task.name, model_key(model), input_key(input))
    if key not in kept:
        ins = inspect_model(model, lambda m: task.inspect_loss(m, input))
        ins.clip, ins.grads = clip_reports(ins.grads, CLIP_OPTIONS, dict(zip(ins.params.name, ins.params.lesson_name))), {}
        kept[key] = ins
        while len(kept) > PRIVATE_KEEP:
            kept.pop(next(iter(kept)))
    return kept[key]


# ---- helpers ---------------------------------------------------------------------------------------------------

def _sci(v: float) -> str:
    if v is None or not math.isfinite(v):
        return "n/a"
    return f"{v:.3g}" if 1e-3 <= abs(v) < 1e4 or v == 0 else f"{v:.2e}"


def _visible(label: str) -> str:
    return VISIBLE.get(label, label) if str(label).strip() == "" else str(label)


def _code(label: str) -> str:
    return md_code(_visible(label), 80)


def _main_series(hidden: pd.DataFrame) -> pd.DataFrame:
    """The first module's layer 0, forward direction: the path the story is told on."""
    if hidden.empty:
        return hidden
    first = hidden.module.iloc[0]
    return hidden[(hidden.module == first) & (hidden.layer == 0) & (hidden.direction == "forward")]


def _with_labels(hidden: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    df = hidden.copy()
    first = df.module.iloc[0] if not df.empty else None
    df["label"] = [labels[t] if m == first and t < len(labels) else "" for m, t in zip(df.module, df.step)]
    return df


def _selected(state, name: str, field: str):
    try:
        pts = state.selection[name]
    except (AttributeError, KeyError, TypeError):
        return None
    if isinstance(pts, list) and pts and isinstance(pts[0], dict) and field in pts[0]:
        return pts[0][field]
    return None


# ---- sections ----------------------------------------------------------------------------------------------------

def percent_of(part: int, whole: int) -> str:
    """part / whole as a percentage that is never "0.0 %" for a part above zero (69 of a million: "0.0069 %")."""
    if part <= 0 or whole <= 0:
        return "0 %"
    pct = 100 * part / whole
    return f"{pct:.1f} %" if pct >= 0.1 else f"{pct:.2g} %"


def _through_time(task, ins: Inspection, key: str) -> None:
    _heading("inspect-through-time", ins)
    st.caption(
        "‖dL/dh_t‖: how much the loss would change if the hidden state at step t changed -- the gradient that "
        "backpropagation through time carries back to that step. Falling to the left: it **vanishes**; rising: it "
        "**explodes**. The y axis is logarithmic, so a straight downward slope is exponential decay. Click a point "
        "to see that step.")
    hidden = _with_labels(ins.hidden, ins.labels)
    if hidden.empty:
        st.info("No recurrent steps were recorded for this input.")
        return
    spec = charts.grad_through_time_chart(hidden, select="step_pick")
    state = st.vega_lite_chart(spec, on_select="rerun", key=f"{key}_gtt", width="stretch")

    main = _main_series(hidden)
    g = main.sort_values("step").grad_norm.to_numpy()
    if len(g) >= 2 and g[-1] > 0 and g[0] > 0:
        r = decay_rate(main, 0, "forward")
        ratio = g[0] / g[-1]
        peak = int(main.sort_values("step").grad_norm.to_numpy().argmax())
        loss_at = shape_spec(task.shape).loss_at
        where = WHERE_THE_LOSS_IS[loss_at]
        trend = ("shrinks" if r < 0.98 else "grows" if r > 1.02 else "stays about level") if math.isfinite(r) else ""
        if loss_at == "every":
            trend = ""  # with a loss at every step the fit mixes path lengths: a per-step factor would mislead
        msg = (f"{where} On the first layer (forward), ‖dL/dh_0‖ is **{_sci(ratio)}×** the gradient at the last "
               f"step (t = {len(g) - 1}); the largest gradient is at step {peak}.")
        if trend:
            msg += f" Fitted over all steps, it {trend} by a factor of about **{r:.3g} per step back in time**"
            if math.isfinite(r) and r < 1:
                msg += f" -- after 50 steps that is {_sci(r ** 50)}"
            msg += "."
        st.markdown(msg)

    step = _selected(state, "step_pick", "step")
    if step is None:
        st.caption("Tip: click a point on the chart to see what happened at that step.")
        return
    step = int(step)
    with st.container(border=True):
        lab = ins.labels[step] if step < len(ins.labels) else ""
        st.markdown(f"**Step {step}**" + (f" -- input {_code(lab)}" if lab else ""))
        at = charts.label_series(hidden)
        at = at[at.step == step][["series", "grad_norm", "h_norm", "distance"]]
        at = at.rename(columns={"grad_norm": "‖dL/dh_t‖", "h_norm": "‖h_t‖", "distance": "steps from the end"})
        cols = st.columns([3, 2])
        cols[0].dataframe(at, hide_index=True, width="stretch")
        sal = ins.saliency[ins.saliency.step == step]
        if not sal.empty:
            cols[1].metric("‖dL/dx_t‖ (saliency)", _sci(float(sal.grad_norm.iloc[0])))
        gates = ins.gates[ins.gates.step == step]
        if not gates.empty:
            gsum = gates.groupby("gate")["mean"].mean()
            cols[1].markdown("Mean gate values: " + ", ".join(
                f"{charts.GATE_NAMES.get(k, k)} **{v:.2f}**" for k, v in gsum.items()))


# The sections with a control of their own (the saliency's colouring, the clipping threshold) are fragments: moving
# the control reruns that section alone, not the page, its Try-it tab and every other chart of the inspector.
@st.fragment
def _saliency(ins: Inspection, key: str) -> None:
    sal = ins.saliency
    if not _heading("inspect-saliency", ins, sal,
                    "No input gradient for this model (its first recurrent layer reads no differentiable input)."):
        return
    mode = st.radio("Colour by", ["sensitivity ‖dL/dx_t‖", "gradient × input (signed)"], horizontal=True,
                    key=f"{key}_salmode", label_visibility="collapsed")
    signed = mode.startswith("gradient ×")
    col = "grad_x_input" if signed else "grad_norm"
    if signed:
        more = ("Signed view (gradient × input): orange steps raise the loss if made stronger, blue ones lower it "
                "-- a first-order estimate of each step's push.")
    else:
        more = "Pale early steps are the vanishing gradient seen from the input side."
    st.caption("Saliency: how much the loss would change if this input step changed; the deeper the colour, the "
               "more the answer depends on it. " + more)
    labels = sal.label.tolist()
    words = {"grad_norm": "sensitivity", "grad_x_input": "gradient × input", "label": "input"}
    show_tokens(labels, sal[col].tolist(), signed=signed, name=words[col])
    df = sal.rename(columns=words)
    chart = charts.bar_chart(df, "step", words[col], tooltip=["step", "input", "sensitivity", "gradient × input"],
                             x_title="input step", y_title=words[col], height=180, fmt=".3e")
    chart = chart.encode(x=charts.alt.X(field="step", type="ordinal", title="input step",
                                        axis=charts.alt.Axis(labelOverlap=True, labelAngle=0)))
    st.altair_chart(chart, width="stretch", key=f"{key}_sal")
    top = sal.nlargest(min(3, len(sal)), "grad_norm")
    st.caption("Most influential steps: " + ", ".join(
        f"{int(r.step)} ({_code(r.label)})" for r in top.itertuples()))


def _parameters(ins: Inspection, key: str) -> None:
    p = ins.params
    if not _heading("inspect-parameters", ins, p, "No parameter received a gradient."):
        return
    ranked = p.sort_values("grad_norm", ascending=False)
    top, low = ranked.iloc[0], ranked.iloc[-1]

    def who(r) -> str:
        return f"**{md_escape(r['lesson_name'] or r['name'])}**"

    st.markdown(f"How hard this input pulls on each of the {len(p)} weight tensors (‖dL/dθ‖). The strongest pull is "
                f"on {who(top)} ({_sci(float(top['grad_norm']))}), the weakest on {who(low)} "
                f"({_sci(float(low['grad_norm']))}).")
    with st.expander(f"All {len(p)} weight tensors, largest gradient first"):
        min_words = (" minGRU / minLSTM have no w': one input weight per layer stacks the paper's W_z, W_h "
                     "(minGRU) or W_f, W_i, W_h (minLSTM), and one bias." if not _reach(ins).empty else "")
        st.caption("Named in the lesson's notation: oₜ = f(xₜ·w + oₜ₋₁·w' + b_o), yₜ = f(w1·oₜ + b_y); a GRU or "
                   "LSTM stacks its gates' weights in one tensor, named with the gates it holds (GRU: r reset, z update, "
                   "n candidate; LSTM: i input, f forget, g candidate, o output). PyTorch keeps two "
                   "biases where the lesson has one b_o; only their sum matters. PyTorch's own name of each "
                   "parameter is in the tooltip of the clipping chart's bars." + min_words)
        t = ranked[["lesson_name", "shape", "numel", "grad_norm", "param_norm"]].copy()
        t["shape"] = t["shape"].astype(str)
        t.columns = ["parameter", "shape", "entries", "‖gradient‖", "‖weights‖"]
        st.dataframe(t, hide_index=True, width="stretch", key=f"{key}_params",
                     column_config={c: st.column_config.NumberColumn(format="%.3e") for c in ("‖gradient‖",
                                                                                              "‖weights‖")})


@st.fragment
def _clipping(task, ins: Inspection, key: str) -> None:
    _heading("inspect-clipping", ins)
    st.caption(
        "The standard cure for exploding gradients. **Clip-by-norm** rescales *all* gradients by one factor when "
        "their total norm exceeds the threshold: the direction of the update is kept, only the step shrinks. "
        "**Clip-by-value** clamps each entry to [-threshold, threshold]: big entries are cut, small ones kept, so "
        "the direction changes (the cosine in the tooltip says how much). Move the threshold and watch the bars.")
    if not ins.grads and not ins.clip:
        st.info("No gradients to clip.")
        return
    default = task.recipe.clip_norm or 1.0
    default = min(CLIP_OPTIONS, key=lambda v: abs(math.log10(v) - math.log10(default)))
    thr = st.select_slider("Threshold (log scale)", options=CLIP_OPTIONS, value=default, key=f"{key}_clip",
                           format_func=lambda v: f"{v:g}")
    df, summary = ins.clip[float(thr)] if float(thr) in ins.clip else clip_report(ins.grads, float(thr))
    c = st.columns(4)
    c[0].metric("total norm before", _sci(summary["total_before"]))
    c[1].metric("after clip-by-norm", _sci(summary["total_after_clip_norm"]),
                help="total norm after rescaling; equals the threshold when clipping is active")
    c[2].metric("after clip-by-value", _sci(summary["total_after_clip_value"]))
    c[3].metric("entries clamped by value", percent_of(summary["entries_clamped"], summary["entries"]),
                help=f"{summary['entries_clamped']:,} of {summary['entries']:,} gradient entries")
    if summary["norm_scale"] >= 1.0:
        by_norm = (f"The total gradient norm ({_sci(summary['total_before'])}) is **below** the threshold: "
                   "clip-by-norm leaves it untouched.")
    else:
        by_norm = f"Clip-by-norm multiplies every gradient by **{summary['norm_scale']:.3g}**, keeping its direction."
    if summary["entries_clamped"] == 0:
        by_value = "No single entry exceeds the threshold, so clip-by-value changes nothing."
    else:
        angle = math.degrees(math.acos(max(-1.0, min(1.0, float(df.value_clip_cosine.min())))))
        by_value = (f"Clip-by-value cut {summary['entries_clamped']:,} of {summary['entries']:,} entries; the most "
                    f"bent parameter's gradient now points **{angle:.0f}°** away from the true one.")
    st.markdown(by_norm + " " + by_value)
    st.vega_lite_chart(charts.clip_chart(df, thr), width="stretch", key=f"{key}_clipchart")


def _spectra(ins: Inspection, key: str, model) -> None:
    sp = ins.spectra
    if not _heading("inspect-matrix", ins, sp,
                    "minGRU and minLSTM have no recurrent matrix w': their gates read only the input x_t, so nothing "
                    "multiplies h_{t−1} but the fraction each unit keeps (see *How far back each step reaches*)."
                    if _min_cells_only(ins) else "No recurrent matrix found."):
        return
    st.caption(
        "Going one step back in time multiplies the gradient by w' (times the activation's slope). The spectral "
        "radius ρ -- the largest |eigenvalue| -- is the long-run growth factor of that product: ρ < 1 shrinks "
        "gradients step after step, ρ > 1 can blow them up (red line = 1). Gated cells have one block per gate; "
        "their gates, not ρ alone, decide how much flows through.")
    st.vega_lite_chart(charts.spectra_chart(sp), width="stretch", key=f"{key}_spec")
    rho = float(sp.spectral_radius.max())
    st.markdown(f"Largest spectral radius: **{rho:.3g}** "
                + ("(< 1: on its own, w' makes gradients vanish)." if rho < 1 else
                   "(≥ 1: w' can amplify; a saturating tanh usually tames it, clipping catches the rest)."))
    box = lazy_expander("All singular values", key=f"{key}_sv_open")
    with box:
        if box.open:
            st.caption("Singular values bound how much w' can stretch a vector in any direction; the largest one "
                       "bounds the growth per step.")
            # computed here, on first opening (the inspection computed the spectral radius alone), then remembered
            full = recurrent_spectra(model) if sp.singular_values.isna().any() else sp
            st.altair_chart(charts.singular_values_chart(full), width="stretch", key=f"{key}_sv")


GATE_WORDS = {  # cell -> how to read its gates, said under the heatmap for the cells on this model
    "lstm": ("LSTM: a **forget gate** f near 1 keeps the cell state -- and lets its gradient flow back undamped, the "
             "reason LSTMs remember long."),
    "gru": "GRU: an **update gate** z near 1 keeps the old state.",
    "mingru": ("minGRU: its **update gate** z works the other way round -- near 1 it writes the new candidate, near 0 "
               "it keeps the old state -- and it reads only the input, never the state."),
    "minlstm": ("minLSTM: f and i are the forget and input gates divided by their sum (so f + i = 1 at every unit): f "
                "near 1 keeps the old state. Both read only the input, never the state."),
}


def _layer_pick(df: pd.DataFrame, key: str, label: str = "Recurrent layer") -> pd.DataFrame:
    """The rows of one module / layer / direction of ``df`` (a select box when there are several)."""
    combos = df[["module", "layer", "direction"]].drop_duplicates().to_dict("records")
    pick = 0
    if len(combos) > 1:
        names = [f"{c['module']} / layer {c['layer']} / {c['direction']}" for c in combos]
        pick = st.selectbox(label, range(len(combos)), format_func=lambda i: names[i], key=key)
    c = combos[pick]
    return df[(df.module == c["module"]) & (df.layer == c["layer"]) & (df.direction == c["direction"])]


def _gates(ins: Inspection, key: str) -> None:
    gates = ins.gates
    if gates.empty:
        return
    _heading("inspect-gates", ins)
    cells = list(dict.fromkeys(gates["cell"])) if "cell" in gates else ["lstm", "gru"]
    st.caption("What the gates did at each step (mean over hidden units, 0 = closed, 1 = open). "
               + " ".join(GATE_WORDS[c] for c in cells if c in GATE_WORDS)
               + " Hover for the share of saturated units.")
    part = _layer_pick(gates, f"{key}_gatesel")
    labels = ins.labels if part.module.iloc[0] == ins.hidden.module.iloc[0] else None
    st.altair_chart(charts.gates_heatmap(part, labels), width="stretch", key=f"{key}_gates")
    means = part.groupby("gate")["mean"].mean()
    cell = part["cell"].iloc[0] if "cell" in part else None
    if "f" in means:
        st.markdown(f"Average forget gate: **{means['f']:.2f}** -- "
                    f"{'mostly keeping its memory' if means['f'] > 0.6 else 'forgetting a lot at each step'}.")
    elif "z" in means and cell == "mingru":
        z = float(means["z"])
        st.markdown(f"Average update gate: **{z:.2f}** -- " + ("mostly carrying the old state forward" if z < 0.4 else
                                                               "mostly rewriting its state" if z > 0.6 else
                                                               "keeping about as much as it writes") + ".")
    elif "z" in means:
        st.markdown(f"Average update gate: **{means['z']:.2f}** -- "
                    f"{'mostly carrying the old state forward' if means['z'] > 0.6 else 'mostly rewriting its state'}.")


def reach_chart(reach: pd.DataFrame, labels: list[str] | None = None):
    """Reach and share of one layer and direction (``core.inspect.reach_table``'s rows) per step, log scale."""
    df = reach[["step", "reach", "share"]].rename(columns={"reach": "still in the last state",
                                                           "share": "share of the last state written here"})
    long = df.melt(id_vars="step", var_name="measure", value_name="fraction")
    long["label"] = [labels[t] if labels is not None and t < len(labels) else "" for t in long["step"]]
    return charts.line_chart(long, "step", "fraction", "measure", log=True, points=False, fmt=".3g",
                             tooltip=["step", "label", "measure", "fraction"], x_title="time step t",
                             y_title="fraction (log scale)", integer_x=True, height=240)


def reach_words(summary: dict, cell: str, backward: bool, labels: list[str] | None = None) -> str:
    """The sentences under the reach chart, from ``core.inspect.reach_summary``'s numbers."""
    n = summary["steps"]
    if not n:
        return "No steps were read."
    end = 0 if backward else n - 1
    gate = "1 − z" if cell == "mingru" else "f (normalised)"
    out = [f"Read to the last step this pass reads (step {end}), over {n} steps."]
    def steps(k: int) -> str:
        return f"**{k} step{'' if k == 1 else 's'}**"

    if summary["back_half"] is None:
        out.append("Even the first step still keeps more than half of what it wrote: this input is short for the "
                   "memory these gates keep.")
    else:
        out.append(f"Of what was written {steps(summary['back_half'])} before the end, less than half is left")
        out[-1] += (f"; of what was written {steps(summary['back_1pct'])} before it, less than 1 %."
                    if summary["back_1pct"] is not None else "; even the first step keeps more than 1 %.")
    top = summary["top_step"]
    lab = labels[top] if labels is not None and top is not None and top < len(labels) else ""
    out.append(f"The step that wrote the most of the last state is step {top}" + (f" ({_code(lab)})." if lab else "."))
    if summary["start_share"] >= 0.01:
        out.append(f"About {100 * summary['start_share']:.0f} % of it is still the state this pass started from.")
    out.append(f"There is no w' in these cells: one step back in time multiplies the gradient by the kept fraction "
               f"{gate} alone, so when the loss reads only the last step this curve is also how its gradient fades.")
    return " ".join(out)


def _reach_section(ins: Inspection, key: str) -> None:
    reach = _reach(ins)
    if reach.empty:
        return
    _heading("inspect-reach", ins)
    st.caption(
        "minGRU and minLSTM keep a fraction a_t of their state at each step and write the rest from the input: "
        "h_t = a_t·h_{t−1} + (1 − a_t)·h~_t, with a_t = 1 − z_t (minGRU) or the normalised forget gate f_t "
        "(minLSTM). What step s wrote is still in the last state times a_{s+1}·…·a_T: its **reach**, 1 at the last "
        "step and shrinking going back. The **share** is how much of the last state step s wrote. Means over the "
        "hidden units, of the first sequence in the batch.")
    part = _layer_pick(reach, f"{key}_reachsel", "Recurrent layer (reach)").sort_values("step")
    labels = ins.labels if part.module.iloc[0] == ins.hidden.module.iloc[0] else None
    st.altair_chart(reach_chart(part, labels), width="stretch", key=f"{key}_reach")
    backward = part.direction.iloc[0] == "backward"
    st.markdown(reach_words(reach_summary(part), str(part.cell.iloc[0]), backward, labels))
    st.caption("Every kept fraction is between 0 and 1, so the product can only shrink, and nothing can flip a "
               "sign: Grazzi et al. (2025) show that such cells cannot keep track of parity (is the count of 1s "
               "odd?) beyond the lengths they were trained on, where a tanh-RNN or an LSTM can. In exchange, every "
               "step's gates are known before the first state is, so the whole sequence is computed at once.")


def _hidden_states(ins: Inspection, key: str) -> None:
    if not ins.hidden_states:
        return
    box = lazy_expander("Hidden state h_t, unit by unit", key=f"{key}_hid_open")
    with box:
        if not box.open:
            return
        st.caption("Each row is one hidden unit (the busiest first), each column a step; red positive, blue "
                   "negative. This is the memory the network carries from step to step.")
        names = list(ins.hidden_states)
        name = names[0] if len(names) == 1 else st.selectbox("Layer", names, key=f"{key}_hsel")
        first = ins.hidden.module.iloc[0] if not ins.hidden.empty else None
        labels = ins.labels if name.split(" / ")[0] == first else None
        st.altair_chart(charts.hidden_heatmap(ins.hidden_states[name], labels), width="stretch", key=f"{key}_hid")


# ---- entry point -------------------------------------------------------------------------------------------------

def render_inspector(task, model, input, key: str | None = None) -> Inspection | None:
    """Draw the six inspector views for ``input`` (None: ask for one). Returns the Inspection (or None)."""
    key = key or f"insp_{task.name}"
    if model is None:
        st.info("The inspector needs the trained model. Train it with the command above, or open the Gradient Lab, "
                "which needs no weights.")
        return None
    if input is None:
        st.info("Choose a demo or give an input in the **Try it** tab: the inspector looks inside the model on it.")
        return None
    try:
        ins = run_inspection(task, model, input)
    except BadInput as exc:
        show_error(exc)
        return None
    except Exception as exc:  # noqa: BLE001
        show_error(exc, "inspecting the model on this input")
        return None
    c = st.columns(4)
    c[0].metric("loss on this input", _sci(ins.loss), help="target: the model's own answer unless the input has one")
    c[1].metric("total gradient norm", _sci(ins.total_grad_norm))
    c[2].metric("time steps", int(ins.hidden.step.max() + 1) if not ins.hidden.empty else 0)
    rho = float(ins.spectra.spectral_radius.max()) if not ins.spectra.empty else float("nan")
    if _min_cells_only(ins):
        c[3].metric("largest spectral radius of w'", "none", help="minGRU / minLSTM have no recurrent matrix w'")
    else:
        c[3].metric("largest spectral radius of w'", _sci(rho))
    _contents(ins)
    for section in (lambda: _through_time(task, ins, key), lambda: _saliency(ins, key), lambda: _gates(ins, key),
                    lambda: _reach_section(ins, key),
                    lambda: _clipping(task, ins, key), lambda: _spectra(ins, key, model), lambda: _parameters(ins, key),
                    lambda: _hidden_states(ins, key)):
        try:
            section()
        except Exception as exc:  # noqa: BLE001 -- one broken view must not hide the others
            show_error(exc, "drawing an inspector chart")
    return ins
