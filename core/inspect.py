"""Gradient inspection as plain data: pure functions returning DataFrames and dataclasses, no plotting.

``inspect_model(model, loss_fn)`` runs the model once through the stepwise path (never cuDNN, so it works in eval
mode on CUDA too), takes dL/d(everything) with torch.autograd.grad -- nothing is accumulated into ``.grad``, so a
model shared by many sessions can be inspected from several threads at once -- and returns:

  hidden    ||dL/dh_t|| per step, layer and direction (backpropagation through time, made visible)
  params    gradient norm per parameter, with the lesson's names beside torch's
  saliency  ||dL/dx_t|| and gradient x input per input step of the first recurrent layer
  gates     mean gate activation per step (and the fraction of saturated units) of the gated cells
  spectra   singular values and spectral radius of every recurrent matrix (per gate block); none for minGRU /
            minLSTM, which have no recurrent matrix
  reach     minGRU / minLSTM only: how much of what each step wrote still reaches the last step (``reach_table``)
and the raw per-parameter gradients for ``clip_report`` / ``clip_reports`` (clipping at one or many thresholds).

``integrated_gradients(f, x, baseline)`` attributes one scalar (e.g. a logit margin) to the steps of one input:
values that add up to f(x) - f(baseline) and, unlike the loss gradient, do not vanish when the softmax saturates.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from core.layers import GATES, MIN_CELLS, Recurrent, recording

DIRECTIONS = ("forward", "backward")
REACH_COLUMNS = ["module", "layer", "direction", "cell", "step", "keep", "reach", "share"]  # Inspection.reach


MIN_PARAM_NAMES = {  # core.layers.MinCellWeights' tag -> (weights, what they compute): the paper's notation
    "zh": ("W_z, W_h", "the update gate and the candidate"),
    "fih": ("W_f, W_i, W_h", "the forget gate, the input gate and the candidate"),
}


GATE_PARTS = {  # cell -> what torch stacks inside one weight_ih / weight_hh / bias tensor, in its order (core.layers.GATES):
    "gru": "gates r, z, n",  # reset gate r, update gate z, candidate n (the glossary's words; short: chart labels)
    "lstm": "gates i, f, g, o",  # input gate i, forget gate f, candidate g, output gate o
}
PART_WORDS = {  # a model's top-level part (the first component of torch's name) -> the lesson's words for it
    "embed": "input embedding", "embedding": "input embedding", "src_embed": "source embedding",
    "tgt_embed": "target embedding", "encoder": "encoder", "decoder": "decoder", "bridge": "bridge",
    "attn": "attention", "attention": "attention", "head": "output layer", "rnn": "recurrent layer",
    "proj": "projection", "net": "network",
}


def lesson_name(param_name: str, cell: str | None = None) -> str:
    """Map torch's parameter names to the lesson's: o_t = f(x_t w + o_{t-1} w' + b_o), y_t = f(w1 o_t + b_y); the
    minGRU / minLSTM weights to the paper's W_z, W_h (W_f, W_i, W_h) and their biases b_z, b_h (b_f, b_i, b_h).
    With the layer's ``cell`` (GRU, LSTM) the gates stacked in the tensor are named too ("" when not a lesson
    name: ``parameter_labels`` gives those words)."""
    m = re.search(r"(weight|bias)_(zh|fih)_l(\d+)(_reverse)?$", param_name)
    if m:
        kind, tag, layer, rev = m.groups()
        names, what = MIN_PARAM_NAMES[tag]
        where = f"layer {layer}" + (", backward" if rev else "")
        if kind == "bias":
            return f"{names.replace('W_', 'b_')} (biases of {what}, {where})"
        return f"{names} (input weights of {what}, {where})"
    m = re.search(r"(weight|bias)_(ih|hh)_l(\d+)(_reverse)?$", param_name)
    if m:
        kind, part, layer, rev = m.groups()
        where = f"layer {layer}" + (", backward" if rev else "")
        gates = GATE_PARTS.get(cell or "")
        if kind == "weight":
            base = "w (input weights" if part == "ih" else "w' (recurrent weights"
            return f"{base} of {gates}; {where})" if gates else f"{base[:-1]}, {where})"
        half = "input" if part == "ih" else "recurrent"
        return f"b_o (biases of {gates}, {half} half; {where})" if gates else \
            f"b_o (hidden bias, {half} half, {where})"
    if re.search(r"(^|\.)head\.weight$", param_name):
        return "w1 (output weight)"
    if re.search(r"(^|\.)head\.bias$", param_name):
        return "b_y (output bias)"
    if "embed" in param_name:
        return "input embedding"
    return ""


def parameter_labels(names: list[str], cells: dict[str, str] | None = None) -> dict[str, str]:
    """Every parameter's name in words, unique: the lesson's notation where it has one (``lesson_name``), else the
    model part it belongs to ("encoder, weights 3 of 8"). ``cells``: parameter name -> its layer's cell. Pure."""
    cells = cells or {}
    out: dict[str, str] = {}
    rest: dict[tuple[str, str], list[str]] = {}
    for n in names:
        words = lesson_name(n, cells.get(n))
        if words:
            out[n] = words
        else:
            top = n.split(".")[0] if "." in n else "model"
            kind = "biases" if n.endswith("bias") else "weights"
            rest.setdefault((top, kind), []).append(n)
    for (top, kind), group in rest.items():
        part = PART_WORDS.get(top, top.replace("_", " "))
        for i, n in enumerate(group):
            out[n] = f"{part}, {kind}" + (f" {i + 1} of {len(group)}" if len(group) > 1 else "")
    seen: dict[str, int] = {}
    for n in names:  # two tensors with the same words (e.g. two output layers) get a number each
        seen[out[n]] = seen.get(out[n], 0) + 1
        if seen[out[n]] > 1:
            out[n] = f"{out[n]} ({seen[out[n]]})"
    return out


def parameter_cells(model: nn.Module) -> dict[str, str]:
    """Parameter name -> the cell of the Recurrent layer that owns it (for ``parameter_labels``)."""
    out = {}
    for mname, m in model.named_modules():
        if isinstance(m, Recurrent):
            for pname, _ in m.named_parameters():
                out[f"{mname}.{pname}" if mname else pname] = m.cell
    return out


@dataclass
class Inspection:
    loss: float
    hidden: pd.DataFrame  # module, layer, direction, step, distance, grad_norm, h_norm
    params: pd.DataFrame  # name, lesson_name, shape, numel, grad_norm, param_norm
    saliency: pd.DataFrame  # step, label, grad_norm, grad_x_input
    gates: pd.DataFrame  # module, layer, direction, step, gate, mean, saturated, cell
    spectra: pd.DataFrame  # module, layer, direction, gate, spectral_radius, max_singular, singular_values (None
    # until asked for: recurrent_spectra(model) gives them)
    total_grad_norm: float
    grads: dict[str, torch.Tensor] = field(repr=False, default_factory=dict)  # name -> gradient (CPU copy)
    # threshold -> clip_report(grads, threshold): the app keeps these and drops the model-sized grads
    clip: Mapping[float, tuple[pd.DataFrame, dict]] = field(repr=False, default_factory=dict)
    # "module / layer l / direction" -> (T, H), the first item of the batch
    hidden_states: dict[str, np.ndarray] = field(repr=False, default_factory=dict)
    labels: list[str] = field(default_factory=list)
    # minGRU / minLSTM only (else empty): module, layer, direction, cell, step, keep, reach, share (``reach_table``)
    reach: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=REACH_COLUMNS))


def _module_names(model: nn.Module) -> dict[int, str]:
    return {id(m): (n or "rnn") for n, m in model.named_modules() if isinstance(m, Recurrent)}


def module_words(path: str) -> str:
    """A recurrent module's torch path in words, as the inspector shows it: "encoder" -> "encoder",
    "members.1.decoder" -> "decoder, ensemble member 2", "" or "rnn" -> "recurrent layer". Pure."""
    parts = [p for p in path.split(".") if p]
    member = None
    if len(parts) >= 2 and parts[0] == "members" and parts[1].isdigit():
        member, parts = int(parts[1]) + 1, parts[2:]
    words = [PART_WORDS.get(p, p.replace("_", " ")) for p in parts if not p.isdigit()]
    words = [w for w in words if w != "network"] or words[:1] or ["recurrent layer"]
    return " ".join(dict.fromkeys(words)) + (f", ensemble member {member}" if member else "")


def _trace_words(traces, names: dict[int, str]) -> list[str]:
    """Each recorded run's module in words (``module_words``); a module run more than once gets "(run k)"."""
    words = [module_words(names.get(id(mod), "rnn")) for mod, _ in traces]
    seen: dict[str, int] = {}
    out = []
    for w in words:
        seen[w] = seen.get(w, 0) + 1
        out.append(f"{w} (run {seen[w]})" if words.count(w) > 1 else w)
    return out


def inspect_model(model: nn.Module, loss_fn: Callable[[nn.Module], torch.Tensor | tuple]) -> Inspection:
    """Run ``loss_fn(model)`` (a scalar loss, or (loss, step labels)) through the stepwise path and read every
    gradient. The model is left exactly as it was (mode, parameters, .grad untouched)."""
    names = _module_names(model)
    with torch.inference_mode(False), torch.enable_grad(), recording() as traces:
        out = loss_fn(model)
        loss, labels = (out if isinstance(out, tuple) else (out, []))
        if not traces:
            raise ValueError("the model ran no core.layers.Recurrent module: nothing recurrent to inspect")
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        hs, index = [], []
        for mi, (_, tr) in enumerate(traces):
            for layer, dirs in enumerate(tr.hidden):
                for d, steps in enumerate(dirs):
                    for k, h in enumerate(steps):
                        hs.append(h)
                        index.append((mi, layer, d, k))
        x0 = traces[0][1].inputs[0]
        wrt = [p for _, p in params] + hs + [x0]
        grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    g_params = grads[:len(params)]
    g_hs = grads[len(params):len(params) + len(hs)]
    g_x = grads[-1]

    # ---- dL/dh_t per step, layer, direction ---------------------------------------------------------------------
    trace_words = _trace_words(traces, names)
    rows = []
    per_key: dict[tuple, list] = {}
    for (mi, layer, d, _), h, g in zip(index, hs, g_hs):
        per_key.setdefault((mi, layer, d), []).append((h.detach(), g))
    hidden_states = {}
    for (mi, layer, d), items in per_key.items():
        mod, tr = traces[mi]
        H = torch.stack([h for h, _ in items], 1)  # (B, T, H) reading order
        G = torch.stack([g if g is not None else torch.zeros_like(h) for h, g in items], 1)  # (B, T, H)
        H, G = tr.reading_to_time(H, d), tr.reading_to_time(G, d)
        T = H.shape[1]
        gn = G.norm(dim=-1).norm(dim=0)  # (T,) norm over units, then over the batch
        hn = H.norm(dim=-1).mean(dim=0)  # (T,)
        mname = trace_words[mi]
        hidden_states[f"{mname} / layer {layer} / {DIRECTIONS[d]}"] = H[0].cpu().numpy()
        for t in range(T):
            rows.append((mname, layer, DIRECTIONS[d], t, T - 1 - t, float(gn[t]), float(hn[t])))
    hidden = pd.DataFrame(rows, columns=["module", "layer", "direction", "step", "distance", "grad_norm", "h_norm"])

    # ---- parameters ----------------------------------------------------------------------------------------------
    prow, gdict = [], {}
    for (n, p), g in zip(params, g_params):
        if g is None:
            continue
        gdict[n] = g.detach().cpu()
        prow.append((n, "", tuple(p.shape), p.numel(), float(g.norm()), float(p.detach().norm())))
    pdf = pd.DataFrame(prow, columns=["name", "lesson_name", "shape", "numel", "grad_norm", "param_norm"])
    words = parameter_labels(list(pdf["name"]), parameter_cells(model))
    pdf["lesson_name"] = [words[n] for n in pdf["name"]]
    total = float(torch.norm(torch.stack([g.norm() for g in gdict.values()]))) if gdict else 0.0

    # ---- saliency over the first recurrent layer's input steps ---------------------------------------------------
    srow = []
    if g_x is not None:
        xs = x0.detach()
        gx = g_x.norm(dim=-1)[0]  # (T,) first item of the batch
        gxi = (g_x * xs).sum(dim=-1)[0]  # (T,)
        for t in range(xs.shape[1]):
            lab = _clean(labels[t]) if t < len(labels) else str(t)
            srow.append((t, lab, float(gx[t]), float(gxi[t])))
    sal = pd.DataFrame(srow, columns=["step", "label", "grad_norm", "grad_x_input"])

    # ---- gates ---------------------------------------------------------------------------------------------------
    grow, reach = [], []
    for mi, (_mod, tr) in enumerate(traces):
        if tr.cell not in ("gru", "lstm") + MIN_CELLS:
            continue
        mname = trace_words[mi]
        for layer, dirs in enumerate(tr.gates):
            for d, gates in enumerate(dirs):
                for gname, val in gates.items():
                    if tr.cell in MIN_CELLS and gname == "h":
                        continue  # the candidate h~ = W_h x_t + b_h: a value, not a fraction between 0 and 1
                    v = tr.reading_to_time(val.detach(), d)[0]  # (T, H), first item
                    sat = ((v > 0.95) | (v < 0.05)).float().mean(-1) if gname != "g" and gname != "n" else \
                        (v.abs() > 0.95).float().mean(-1)
                    for t in range(v.shape[0]):
                        grow.append((mname, layer, DIRECTIONS[d], t, gname, float(v[t].mean()), float(sat[t]),
                                     tr.cell))
                if tr.cell in MIN_CELLS:
                    reach.append(_reach_of(tr, gates, d).assign(module=mname, layer=layer, direction=DIRECTIONS[d],
                                                                cell=tr.cell))
    gates = pd.DataFrame(grow, columns=["module", "layer", "direction", "step", "gate", "mean", "saturated", "cell"])
    reach_df = pd.concat(reach, ignore_index=True)[REACH_COLUMNS] if reach else pd.DataFrame(columns=REACH_COLUMNS)

    return Inspection(loss=float(loss.detach()), hidden=hidden, params=pdf, saliency=sal, gates=gates,
                      spectra=recurrent_spectra(model, singular=False), total_grad_norm=total, grads=gdict,
                      hidden_states=hidden_states, labels=[_clean(x) for x in labels], reach=reach_df)



def reach_table(keep: np.ndarray) -> pd.DataFrame:
    """How far back each step still reaches, for h_t = a_t * h_{t-1} + (1 - a_t) * h~_t read to its last step.

    ``keep`` (T, H): the kept fraction a_t of each unit at each step, in reading order (minGRU: 1 - z_t; minLSTM:
    the normalised forget gate f'_t). Unrolled to the last step e = T - 1,

        h_e = (a_1 ... a_e) h_0 + sum_s (1 - a_s) * reach_s * h~_s,   reach_s = a_{s+1} * a_{s+2} * ... * a_e,

    so reach_s (1 at the last step, then shrinking going back) is the fraction of h_s that is still in h_e, and
    share_s = (1 - a_s) * reach_s is how much of h_e is what step s wrote (the shares and the initial state's
    a_1 ... a_e add up to 1). The same product is what dL/dh_s is made of when the loss reads h_e: there is no w'.
    Returns one row per step: step, keep, reach, share -- each the mean over the H units. Products are taken as sums
    of logs in float64 (4096 steps of 0.5 underflow to 0 honestly, never to a wrong number)."""
    a = np.clip(np.asarray(keep, dtype=np.float64), 0.0, 1.0)  # (T, H)
    if a.ndim != 2 or a.shape[0] == 0:
        return pd.DataFrame(columns=["step", "keep", "reach", "share"])
    with np.errstate(divide="ignore"):
        log_a = np.log(a)  # (T, H); -inf where a unit forgot everything
    after = np.cumsum(log_a[::-1], axis=0)[::-1]  # (T, H) log(a_s ... a_e)
    log_reach = np.vstack([after[1:], np.zeros((1, a.shape[1]))])  # (T, H) log(a_{s+1} ... a_e)
    r = np.exp(log_reach)  # (T, H)
    return pd.DataFrame({"step": np.arange(a.shape[0]), "keep": a.mean(1), "reach": r.mean(1),
                         "share": ((1.0 - a) * r).mean(1)})


def _reach_of(tr, gates: dict[str, torch.Tensor], d: int) -> pd.DataFrame:
    """``reach_table`` of one minGRU / minLSTM layer and direction, on the first item's real steps, read to the
    last step that direction read (the backward direction ends at step 0); ``step`` in time order."""
    frac = (1.0 - gates["z"].detach().double()) if tr.cell == "mingru" else gates["f"].detach().double()  # (B, T, H)
    n = int(tr.lengths[0]) if tr.lengths is not None else frac.shape[1]
    df = reach_table(frac[0, :n].cpu().numpy())  # reading order: step 0 is the first read
    if d == 1:
        df["step"] = n - 1 - df["step"]
    return df


def reach_summary(reach: pd.DataFrame) -> dict:
    """Plain numbers for the words under the reach chart, from one layer and direction of ``Inspection.reach``:
    steps: how many steps were read; back_half / back_1pct: how many steps back from the end the mean reach first
    falls below 1/2 and below 1/100 (None: never, within this input); top_step: the step that wrote the largest share;
    start_share: what is left of the initial state."""
    df = reach.sort_values("step")
    if df.empty:
        return {"steps": 0, "back_half": None, "back_1pct": None, "top_step": None, "start_share": float("nan")}
    n = len(df)
    # distance back from the step read last (the highest step going forwards, step 0 going backwards)
    backward = "direction" in df and (df["direction"] == DIRECTIONS[1]).all()
    dist = df["step"].to_numpy() if backward else (n - 1 - df["step"].to_numpy())
    order = np.argsort(dist)
    r = df["reach"].to_numpy()[order]

    def first_below(x: float):
        idx = np.nonzero(r < x)[0]
        return int(dist[order][idx[0]]) if idx.size else None

    share = df["share"].to_numpy()
    return {"steps": n, "back_half": first_below(0.5), "back_1pct": first_below(0.01),
            "top_step": int(df["step"].to_numpy()[int(np.argmax(share))]),
            "start_share": float(max(0.0, 1.0 - share.sum()))}


def _clean(label) -> str:
    """A step label as valid UTF-8 text (lone surrogates and the like become U+FFFD, never an encoding error)."""
    return str(label).encode("utf-8", "replace").decode("utf-8")


SPECTRA_KEEP = 512  # matrices whose spectrum is remembered (a few KB each): every block of every model served
_spectra: OrderedDict[str, tuple[float, float | None, list[float] | None]] = OrderedDict()
_spectra_lock = threading.Lock()


def matrix_spectrum(block: torch.Tensor, singular: bool = True) -> tuple[float, float | None, list[float] | None]:
    """(spectral radius, largest singular value, all singular values largest first to 5 decimals) of a square
    matrix, remembered by its content. ``singular=False``: the spectral radius alone, (rho, None, None), unless the
    singular values are remembered already (the inspection's first view shows rho; its singular values are shown
    only when a visitor opens them, ~0.05 s more per 512x512 block).

    They depend on the weights alone, not on the input, and an eigen-decomposition is the slowest part of an
    inspection (~0.14 s for a 512x512 block on one CPU core; captioning's LSTM has four): every later inspection of
    the same weights, for any input and any session, reads them back. Keyed by a digest of the matrix's bytes, so
    weights changed in place (the Gradient Lab, a visitor's own training) get their own entry."""
    m = block.detach().float().cpu().contiguous()  # (H, H)
    key = hashlib.blake2b(m.numpy().tobytes(), digest_size=16, person=str(tuple(m.shape)).encode()[:16]).hexdigest()
    with _spectra_lock:
        hit = _spectra.get(key)
        if hit is not None:
            _spectra.move_to_end(key)
            if hit[1] is not None or not singular:
                return hit
    rho = hit[0] if hit is not None else float(torch.linalg.eigvals(m).abs().max())
    if singular:
        sv = torch.linalg.svdvals(m)  # (H,) largest first
        out = (rho, float(sv[0]), [round(float(v), 5) for v in sv])
    else:
        out = (rho, None, None)
    with _spectra_lock:
        _spectra[key] = out
        while len(_spectra) > SPECTRA_KEEP:
            _spectra.popitem(last=False)
    return out


PARALLEL_FROM = 256  # blocks this wide or wider are decomposed two at a time (~0.05 s each below, 0.18 s at 512)


def recurrent_spectra(model: nn.Module, singular: bool = True) -> pd.DataFrame:
    """Singular values and spectral radius of each recurrent matrix w' (per gate block for GRU/LSTM);
    ``singular=False``: the spectral radius only where the singular values are not remembered yet (their columns
    None there: ``matrix_spectrum``).

    A spectral radius below 1 makes dL/dh_t shrink geometrically going back in time (vanishing); above 1 (with a
    non-saturated activation) it can grow (exploding). Big blocks not yet remembered (``matrix_spectrum``) are
    decomposed on two threads: LAPACK runs without the GIL, so the four blocks of a 512-unit LSTM take half as
    long on two cores."""
    where, blocks = [], []
    for mname, mod in model.named_modules():
        if not isinstance(mod, Recurrent):
            continue
        for layer in range(mod.num_layers):
            for d in range(mod.num_directions):
                if mod.cell in MIN_CELLS:
                    continue  # no recurrent matrix: the gates read only x_t
                w_hh = mod.weights(layer, d)[1].detach().float().cpu()  # (G*H, H)
                for gname, block in zip(GATES[mod.cell], w_hh.chunk(len(GATES[mod.cell]), dim=0)):
                    where.append((module_words(mname), layer, DIRECTIONS[d], gname))
                    blocks.append(block)
    if len(blocks) > 1 and max(b.shape[-1] for b in blocks) >= PARALLEL_FROM:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="rnnlab-spectra") as pool:
            spectra = list(pool.map(lambda b: matrix_spectrum(b, singular), blocks))
    else:
        spectra = [matrix_spectrum(b, singular) for b in blocks]
    rows = [(*w, rho, top, sv) for w, (rho, top, sv) in zip(where, spectra)]
    return pd.DataFrame(rows, columns=["module", "layer", "direction", "gate", "spectral_radius", "max_singular",
                                       "singular_values"])


def _bucket_table(bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For float32 entries a >= 0 and sorted float64 thresholds t_j: (c, table). c_j is the smallest float32 above
    t_j, so t_j < a exactly when a >= c_j; table[k] is the bucket #{j : t_j < a} shared by every float32 whose bit
    pattern's top 16 bits are k, or -1 where a threshold falls inside that range (or the sign bit is set)."""
    t32 = bounds.astype(np.float32)  # (J,) nearest float32
    c = np.where(t32.astype(np.float64) > bounds, t32, np.nextafter(t32, np.float32(np.inf)))  # (J,) float32
    cells = np.arange(1 << 16, dtype=np.uint32)  # (65536,)
    lo = np.searchsorted(c, (cells << 16).view(np.float32), side="right")  # (65536,) bucket of a cell's first pattern
    hi = np.searchsorted(c, ((cells << 16) | 0xFFFF).view(np.float32), side="right")  # (65536,) of its last
    table = np.where((lo == hi) & (cells < 1 << 15), lo, -1).astype(np.intp)  # (65536,)
    return c, table


def _buckets32(a: np.ndarray, c: np.ndarray, table: np.ndarray) -> np.ndarray:
    """#{j : t_j < a_i} for every float32 entry of ``a`` (see ``_bucket_table``): a table look-up on the top 16 bits
    of each entry (non-negative floats order as their bit patterns), a binary search only for the few entries whose
    range holds a threshold. The same buckets as ``np.searchsorted(thresholds, a.astype(float64))``, ~5x faster."""
    b = table[a.view(np.uint32) >> 16]  # (n,) intp, what np.bincount reads without a copy
    odd = np.flatnonzero(b < 0)
    if odd.size:
        b[odd] = np.searchsorted(c, a[odd], side="right")
    return b


def clip_report(grads: dict[str, torch.Tensor], threshold: float,
                labels: dict[str, str] | None = None) -> tuple[pd.DataFrame, dict]:
    """Each parameter's gradient norm before clipping, after clip-by-norm and after clip-by-value at ``threshold``.

    Clip-by-norm rescales *all* gradients by one factor (direction kept); clip-by-value clamps each entry
    (direction can change). Returns (per-parameter table, summary)."""
    return clip_reports(grads, [threshold], labels)[threshold]


def clip_reports(grads: dict[str, torch.Tensor], thresholds,
                 labels: dict[str, str] | None = None) -> ClipReports:
    """``clip_report`` at every threshold in one pass: what the inspector keeps instead of the gradients themselves.

    With the thresholds sorted, t_0 < t_1 < ..., each entry |g| falls in one bucket b = #{j : t_j < |g|} (a table
    look-up on a float32 entry's top bits, ``_buckets32``; no sort of the gradient). Clip-by-value at t_j keeps the
    entries <= t_j (buckets 0..j) and sets the rest to +-t_j, so with per-bucket sums S2 (of g^2), S1 (of |g|) and
    counts C, cumulated over the buckets: ||clamp(g)||^2 = cumS2_j + t_j^2 * (n - cumC_j) and
    g . clamp(g) = cumS2_j + t_j * (S1 - cumS1_j).
    The tables are a few numbers per parameter and threshold, where the gradients are model-sized (the cached
    inspections of 50 sessions held hundreds of MB); the pass is O(entries), ~0.07 s for captioning's 6M."""
    ts = [float(t) for t in thresholds]
    if any(not t > 0 for t in ts):
        raise ValueError("threshold must be positive")
    bounds = np.unique(np.asarray(ts, dtype=np.float64))  # (J,) sorted, distinct
    at = np.searchsorted(bounds, ts)  # where each asked threshold sits among them
    names, before, numel, kept, kept_sq, over_abs = [], [], [], [], [], []  # one entry per parameter
    lut = None
    for n, g in grads.items():
        a = g.detach().abs().flatten()  # (n,)
        if a.dtype in (torch.float16, torch.bfloat16, torch.float32):
            lut = _bucket_table(bounds) if lut is None else lut
            a32 = a.float().numpy()  # (n,) exact for these dtypes
            b = _buckets32(a32, *lut)  # (n,) thresholds strictly below each entry
            a = a32.astype(np.float64)  # (n,)
        else:
            a = a.double().numpy()  # (n,)
            b = np.searchsorted(bounds, a, side="left")  # (n,) thresholds strictly below each entry
        sq = np.cumsum(np.bincount(b, weights=a * a, minlength=len(bounds) + 1))  # (J+1,)
        ab = np.cumsum(np.bincount(b, weights=a, minlength=len(bounds) + 1))  # (J+1,)
        names.append(n)
        before.append(np.sqrt(sq[-1]))
        numel.append(a.size)
        kept.append(np.cumsum(np.bincount(b, minlength=len(bounds) + 1))[at])  # (T,) entries <= t
        kept_sq.append(sq[at])  # (T,)
        over_abs.append(ab[-1] - ab[at])  # (T,)
    t = np.asarray(ts, dtype=np.float64)[None, :]  # (1, T)
    before_, numel_ = np.asarray(before, dtype=np.float64), np.asarray(numel, dtype=np.int64)  # (P,), (P,)
    shape = (len(names), len(ts))
    kept_ = np.asarray(kept, dtype=np.int64).reshape(shape)  # (P, T)
    kept_sq_ = np.asarray(kept_sq, dtype=np.float64).reshape(shape)  # (P, T)
    over_abs_ = np.asarray(over_abs, dtype=np.float64).reshape(shape)  # (P, T)
    total = float(np.sqrt((before_ ** 2).sum()))
    n_over = numel_[:, None] - kept_  # (P, T) entries clamped
    value_sq = kept_sq_ + t * t * n_over  # (P, T) ||clamp(g)||^2
    by_value = np.sqrt(value_sq)  # (P, T)
    dot = kept_sq_ + t * over_abs_  # (P, T) g . clamp(g)
    denom = before_[:, None] * by_value  # (P, T)
    cos = np.minimum(1.0, np.divide(dot, denom, out=np.ones_like(dot), where=denom > 0))  # (P, T)
    factor = np.minimum(1.0, t[0] / (total + 1e-6))  # (T,)
    by_norm = before_[:, None] * factor[None, :]  # (P, T)
    words = {**parameter_labels(names), **(labels or {})}
    return ClipReports(thresholds=ts, names=names, lesson=[words[n] for n in names], before=before_,
                       by_norm=by_norm, by_value=by_value, cosine=cos, value_sq=value_sq, clamped=n_over.sum(0),
                       norm_scale=factor, total=total, entries=int(numel_.sum()))


@dataclass
class ClipReports(Mapping):
    """``clip_reports``' answer: {threshold: (per-parameter table, summary)}, each table built when it is read (the
    arrays are a few numbers per parameter and threshold; 29 DataFrames built up front cost more than the pass)."""

    thresholds: list[float]  # as asked, in order
    names: list[str]  # torch's parameter names
    lesson: list[str]  # the same in the lesson's words (parameter_labels)
    before: np.ndarray  # (P,) each gradient's norm before clipping
    by_norm: np.ndarray  # (P, T) after clip-by-norm at each threshold
    by_value: np.ndarray  # (P, T) after clip-by-value
    cosine: np.ndarray  # (P, T) cosine between the gradient and its clipped-by-value self
    value_sq: np.ndarray  # (P, T) squared norm after clip-by-value
    clamped: np.ndarray  # (T,) entries clamped by value
    norm_scale: np.ndarray  # (T,) clip-by-norm's factor
    total: float  # total gradient norm before clipping
    entries: int  # gradient entries in all

    def __getitem__(self, threshold: float) -> tuple[pd.DataFrame, dict]:
        if threshold not in self.thresholds:
            raise KeyError(threshold)
        i = self.thresholds.index(threshold)
        df = pd.DataFrame({"name": self.names, "lesson_name": self.lesson, "before": self.before,
                           "after_clip_norm": self.by_norm[:, i], "after_clip_value": self.by_value[:, i],
                           "value_clip_cosine": self.cosine[:, i]})
        summary = {"threshold": threshold, "total_before": self.total,
                   "total_after_clip_norm": float(np.sqrt((self.by_norm[:, i] ** 2).sum())),
                   "total_after_clip_value": float(np.sqrt(self.value_sq[:, i].sum())),
                   "norm_scale": float(self.norm_scale[i]), "entries_clamped": int(self.clamped[i]),
                   "entries": self.entries}
        return df, summary

    def __contains__(self, threshold) -> bool:
        return threshold in self.thresholds

    def __iter__(self):
        return iter(dict.fromkeys(self.thresholds))

    def __len__(self) -> int:
        return len(dict.fromkeys(self.thresholds))


def decay_rate(hidden: pd.DataFrame, layer: int = 0, direction: str = "forward") -> float:
    """Fitted per-step factor r of ||dL/dh_t|| ~ r**distance (log-linear least squares). r < 1: vanishing."""
    d = hidden[(hidden.layer == layer) & (hidden.direction == direction) & (hidden.grad_norm > 0)]
    if len(d) < 2:
        return float("nan")
    slope = np.polyfit(d["distance"].to_numpy(float), np.log(d["grad_norm"].to_numpy(float)), 1)[0]
    return float(np.exp(slope))


@dataclass
class Attribution:
    """Integrated gradients of one scalar output over T input steps (see ``integrated_gradients``)."""

    values: np.ndarray  # (T,) each step's share of f(x) - f(baseline)
    f_input: float  # f(x)
    f_baseline: float  # f(baseline)
    steps: int  # Riemann points used on the path

    @property
    def gap(self) -> float:
        """Completeness error |sum(values) - (f(x) - f(baseline))|: 0 for the exact integral."""
        return float(abs(self.values.sum() - (self.f_input - self.f_baseline)))


def integrated_gradients(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                         baseline: torch.Tensor | None = None, steps: int = 32, max_steps: int = 128,
                         tol: float = 0.05, chunk: int = 32) -> Attribution:
    """Integrated gradients (Sundararajan et al. 2017) of a scalar f over the steps of one input x (T, E).

    With b the baseline (default: zeros) and the straight path b + a (x - b), a in [0, 1], step t gets

        IG_t = sum_e (x - b)_{t,e} * integral_0^1 df/dx_{t,e}(b + a (x - b)) da
             ~ sum_e (x - b)_{t,e} * (1/m) sum_{k=1..m} df/dx_{t,e}(b + (k - 1/2)/m (x - b))   (midpoint rule).

    Completeness: sum_t IG_t = f(x) - f(b) (the fundamental theorem of calculus along the path), so every value
    is in f's own units and the values add up to the answer. Taken of a *logit margin* (e.g. logit_pos - logit_neg
    = log-odds), nothing vanishes when the softmax saturates: the margin is linear in the output layer, where the
    gradient of a softmax probability or of the cross-entropy against the model's own answer shrinks like 1 - p.

    ``f`` maps a batch of paths (K, T, E) to (K,) and must be differentiable; it is called with ``chunk`` path
    points at a time. When the midpoint rule is off by more than ``tol * max(1, |f(x) - f(b)|)`` (a recurrent
    network can jump along the path), ``steps`` doubles up to ``max_steps``; ``Attribution.gap`` says what is left.
    Nothing is accumulated into any parameter's ``.grad``."""
    with torch.inference_mode(False), torch.enable_grad():
        x = x.detach().clone()  # (T, E) a normal tensor even when x was made under inference_mode
        b = torch.zeros_like(x) if baseline is None else baseline.detach().clone().to(x)
        if b.shape != x.shape:
            raise ValueError(f"baseline shape {tuple(b.shape)} differs from the input's {tuple(x.shape)}")
        delta = x - b  # (T, E)
        with torch.no_grad():
            ends = f(torch.stack([x, b]))  # (2,)
        fx, fb = float(ends[0]), float(ends[1])
        m = max(1, int(steps))
        while True:
            total = torch.zeros_like(x)  # (T, E) sum of the gradients over the path points
            alphas = (torch.arange(m, dtype=x.dtype, device=x.device) + 0.5) / m  # (m,) midpoints
            for a in alphas.split(max(1, int(chunk))):
                path = (b.unsqueeze(0) + a.view(-1, 1, 1) * delta.unsqueeze(0)).requires_grad_(True)  # (k, T, E)
                (g,) = torch.autograd.grad(f(path).sum(), path)
                total += g.sum(0)
            values = (total / m * delta).sum(-1)  # (T,)
            res = Attribution(values.detach().cpu().double().numpy(), fx, fb, m)
            if res.gap <= tol * max(1.0, abs(fx - fb)) or m * 2 > max_steps:
                return res
            m *= 2
