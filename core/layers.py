"""The recurrent layer: one set of parameters, two ways to run it.

* ``fused``   -- torch's nn.RNN / nn.GRU / nn.LSTM (cuDNN on GPU, oneDNN on CPU). Fast; used to train and serve.
* ``stepwise`` -- an explicit Python loop over time over the *same* weight tensors. Every step's hidden state
  (and the LSTM cell state, and every gate) is its own node in the autograd graph, so dL/dh_t can be read for
  every step, layer and direction. It also never touches cuDNN, whose backward refuses to run in eval mode.

The lesson's recurrence is  o_t = f(x_t . w + o_{t-1} . w' + b_o).  In torch's names w is ``weight_ih_l{k}``,
w' is ``weight_hh_l{k}`` and b_o is ``bias_ih_l{k} + bias_hh_l{k}`` (torch keeps two biases; only their sum matters
for the plain RNN).

The four cells, and what the app calls them (``CELL_LABELS``, the one table of their names on screen):
``rnn_tanh`` and ``rnn_relu`` are the plain recurrence above with f = tanh or ReLU; ``gru`` and ``lstm`` add gates
that decide, at each step, how much of the old state to keep -- which is why their gradients survive long sequences.

``mingru`` and ``minlstm`` (Feng et al. 2024, "Were RNNs All We Needed?") are gated cells whose gates read only the
input x_t, never h_{t-1}, and whose candidate has no tanh:

    minGRU:   z_t  = sigmoid(W_z x_t + b_z)                      update gate (1: write the candidate, 0: keep)
              h~_t = W_h x_t + b_h                               candidate
              h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t

    minLSTM:  f_t  = sigmoid(W_f x_t + b_f),  i_t = sigmoid(W_i x_t + b_i),  h~_t = W_h x_t + b_h
              f'_t = f_t / (f_t + i_t),  i'_t = i_t / (f_t + i_t)   normalised: f' + i' = 1
              h_t  = f'_t * h_{t-1} + i'_t * h~_t

Both are h_t = a_t * h_{t-1} + c_t with a_t in (0, 1) and c_t known for every step before any h is computed
(minGRU: a = 1 - z, c = z h~; minLSTM: a = f', c = i' h~). Unrolled, h_t = A_t h_0 + sum_{s<=t} (A_t / A_s) c_s with
A_t = a_1 ... a_t, so the whole sequence is a few cumulative sums (``linear_scan``): their default path is this
**parallel** scan instead of a fused kernel, and they have no recurrent matrix w'. The stepwise path runs the same
weights one step at a time, like the other cells, so that the inspector can read dL/dh_t.

Why not the paper's log-space scan: it takes log h~, so it needs h~ > 0 (the paper's g(x) = x + 0.5 for x >= 0,
sigmoid(x) otherwise), and its cumulative sums of log a over the whole sequence reach thousands at T = 4096, where
float32's rounding of them alone puts about 1e-3 on h. Ours scans signed values as they are, in chunks of C steps
(``SCAN_CHUNKS``): within a chunk, A_t / A_s is exp of a bounded difference of cumulative log-decays (each log a_t
floored at e^-15 in float32, where float32's own 1 - z is as coarse, so it never overflows); the chunks' end states
form a recurrence of the same form, T / C steps long, solved the same way, and so on. No cumulative sum spans more
than C steps, so the error does not grow with T (a few millionths of |h| at T = 4096 in float32). Gradients are the
reverse recurrence (``_LinearScan.backward``), one more scan. docs/min_cells.md has the derivation.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

CELLS = ("rnn_tanh", "rnn_relu", "gru", "lstm", "mingru", "minlstm")
MIN_CELLS = ("mingru", "minlstm")  # gates from x_t alone: a parallel scan, no recurrent matrix w'
# Gate names in the order torch stacks them inside weight_ih / weight_hh (for the min cells: inside their one input
# weight; "h" is the candidate h~, and minLSTM's f and i are recorded normalised, f' and i', the fractions that act).
GATES = {"rnn_tanh": ("h",), "rnn_relu": ("h",), "gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o"),
         "mingru": ("z", "h"), "minlstm": ("f", "i", "h")}


@dataclass(frozen=True)
class CellLabel:
    """A cell's name on screen, in two lengths."""

    short: str  # where space is tight and the context says "cell": chart legends, column headings, table cells
    long: str  # in a sentence or a model card, where "RNN" alone would not say it is the ungated one


CELL_LABELS: dict[str, CellLabel] = {
    "rnn_tanh": CellLabel("RNN (tanh)", "plain RNN (tanh)"),
    "rnn_relu": CellLabel("RNN (ReLU)", "plain RNN (ReLU)"),
    "gru": CellLabel("GRU", "GRU"),
    "lstm": CellLabel("LSTM", "LSTM"),
    "mingru": CellLabel("minGRU", "minGRU"),
    "minlstm": CellLabel("minLSTM", "minLSTM"),
}


def cell_label(cell: str, long: bool = False) -> str:
    """The on-screen name of a cell id (``CELL_LABELS``); an unknown id is shown as it is, never an error (a
    model card from elsewhere may name a cell this app does not have)."""
    label = CELL_LABELS.get(cell)
    if label is None:
        return cell
    return label.long if long else label.short


# Per-thread switch used by core.inspect: a served model is shared by every session of the app, so the choice of
# path and the recorded traces must belong to the thread that asked, never to the module.
_LOCAL = threading.local()


@contextmanager
def recording():
    """Within this block, every Recurrent called *from this thread* runs stepwise and records its trace.
    Yields a list that receives (module, trace) in call order."""
    prev = getattr(_LOCAL, "traces", None)
    _LOCAL.traces = []
    try:
        yield _LOCAL.traces
    finally:
        _LOCAL.traces = prev


def check_cell(cell: str) -> str:
    """Return ``cell`` if valid, else raise a ValueError that lists the valid names."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; valid cells are: {', '.join(CELLS)}")
    return cell


def _fused_module(cell, input_size, hidden_size, num_layers, bidirectional, dropout) -> nn.RNNBase:
    kw = dict(input_size=input_size, hidden_size=hidden_size, num_layers=num_layers, batch_first=True,
              bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
    if cell == "gru":
        return nn.GRU(**kw)
    if cell == "lstm":
        return nn.LSTM(**kw)
    return nn.RNN(nonlinearity="tanh" if cell == "rnn_tanh" else "relu", **kw)


# ---- the parallel scan of h_t = a_t * h_{t-1} + c_t ------------------------------------------------------------------
# Per working precision: (C, floor). C steps per chunk and log a_t >= floor keep |log A| <= C * |floor| = 60 in float32
# (e^60 ~ 1e26 of float32's 3e38) and 640 in float64 (of e^709), so A_t / A_s and c / A never overflow. A kept
# fraction below the floor (e^-15 ~ 3e-7 in float32, the size of float32's own rounding of 1 - z there) counts as it.
SCAN_CHUNKS = {torch.float32: (4, -15.0), torch.float64: (16, -40.0)}


def _scan_kernel(log_a: torch.Tensor, c: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """h_t = exp(log_a_t) * h_{t-1} + c_t for t = 1..T from h_0, without autograd; log_a (already at or above the
    floor), c (B, T, H), h0 (B, H).

    Each chunk of C steps is solved from a zero state with two cumulative sums, h_t = A_t * sum_{s<=t} c_s / A_s
    (A: the decay since the chunk's start); the state entering each chunk comes from the chunks' ends, which obey
    the same recurrence with the chunks' total decays, T / C steps long (solved by this function); then
    h_t = local_t + A_t * entering state. Depth log_C(T); no loop over time."""
    B, T, H = log_a.shape
    C, floor = SCAN_CHUNKS[log_a.dtype]
    if T <= C:
        A = log_a.cumsum(1).exp()  # (B, T, H) a_1 ... a_t
        return A * (h0[:, None] + (c / A).cumsum(1))
    N = -(-T // C)
    if N * C > T:  # pad to whole chunks with steps that keep the state: a = 1, c = 0
        log_a, c = F.pad(log_a, (0, 0, 0, N * C - T)), F.pad(c, (0, 0, 0, N * C - T))
    logA = log_a.reshape(B, N, C, H).cumsum(2)  # (B, N, C, H) log decay since each chunk's start
    A = logA.exp()
    local = (c.reshape(B, N, C, H) / A).cumsum(2).mul_(A)  # (B, N, C, H) each chunk run from a zero state
    ends = _scan_kernel(logA[:, :, -1].clamp(min=floor), local[:, :, -1], h0)  # (B, N, H) each chunk's last state
    entering = torch.cat([h0[:, None], ends[:, :-1]], 1)  # (B, N, H)
    return local.addcmul_(A, entering[:, :, None]).reshape(B, N * C, H)[:, :T]


class _LinearScan(torch.autograd.Function):
    """``linear_scan`` with its gradient written out: for h_t = a_t h_{t-1} + c_t and g_t = dL/dh_t (direct),
    the total adjoint d_t = g_t + a_{t+1} d_{t+1} is the same recurrence run backwards in time, and
    dL/dc_t = d_t,  dL/dlog a_t = d_t * h_{t-1} * a_t,  dL/dh_0 = a_1 d_1.
    No intermediate of the forward scan is kept: only log a (at the floor), h_0 and the outputs."""

    @staticmethod
    def forward(ctx, log_a, c, h0):
        work = torch.float64 if torch.float64 in (log_a.dtype, c.dtype, h0.dtype) else torch.float32
        la = log_a.to(work).clamp(min=SCAN_CHUNKS[work][1])  # (B, T, H)
        h = _scan_kernel(la, c.to(work), h0.to(work))  # (B, T, H)
        ctx.save_for_backward(la, h0, h)
        ctx.dtypes = (log_a.dtype, c.dtype, h0.dtype)
        return h

    @staticmethod
    def backward(ctx, g):
        la, h0, h = ctx.saved_tensors
        g = g.to(h.dtype)  # (B, T, H)
        la_next = torch.cat([la[:, 1:], torch.zeros_like(la[:, :1])], 1)  # a_{t+1}; the last one meets d_{T+1} = 0
        d = _scan_kernel(la_next.flip(1), g.flip(1), torch.zeros_like(h[:, 0])).flip(1)  # (B, T, H)
        a = la.exp()
        h_prev = torch.cat([h0.to(h.dtype)[:, None], h[:, :-1]], 1)  # (B, T, H)
        t_la, t_c, t_h0 = ctx.dtypes
        return (d * h_prev * a).to(t_la), d.to(t_c), (d[:, 0] * a[:, 0]).to(t_h0)


def linear_scan(log_a: torch.Tensor, c: torch.Tensor, h0: torch.Tensor | None = None) -> torch.Tensor:
    """All of h_t = exp(log_a_t) * h_{t-1} + c_t at once: log_a, c (B, T, H), h0 (B, H) or None (zeros) ->
    (B, T, H), differentiable. Computed in float64 if any input is float64, else float32 (half inputs are widened).
    A step with log_a = 0 and c = 0 keeps the state exactly (how padded steps are written)."""
    if h0 is None:
        h0 = log_a.new_zeros(log_a.shape[0], log_a.shape[2])
    return _LinearScan.apply(log_a, c, h0)


class MinCellWeights(nn.Module):
    """The parameters of a minGRU / minLSTM stack, named like torch's per layer and direction: one input weight per
    layer and direction with the gates' rows stacked in ``GATES`` order -- ``weight_zh_l0`` (2H, F) = [W_z; W_h] and
    ``bias_zh_l0`` (2H,) for minGRU, ``weight_fih_l0`` (3H, F) = [W_f; W_i; W_h] for minLSTM -- and no recurrent
    weight. Initialised like nn.Linear, uniform in +-1/sqrt(fan_in)."""

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool):
        super().__init__()
        self.tag = "zh" if cell == "mingru" else "fih"
        G, D = len(GATES[cell]), 2 if bidirectional else 1
        for layer in range(num_layers):
            fan_in = input_size if layer == 0 else D * hidden_size
            bound = fan_in ** -0.5
            for d in range(D):
                sfx = f"_l{layer}" + ("_reverse" if d == 1 else "")
                self.register_parameter(f"weight_{self.tag}{sfx}",
                                        nn.Parameter(torch.empty(G * hidden_size, fan_in).uniform_(-bound, bound)))
                self.register_parameter(f"bias_{self.tag}{sfx}",
                                        nn.Parameter(torch.empty(G * hidden_size).uniform_(-bound, bound)))


@dataclass
class StepTrace:
    """What the stepwise path kept, for one forward call. Lists are indexed [layer][direction]."""

    cell: str
    lengths: torch.Tensor | None  # (B,) real lengths, or None when every sequence is full
    inputs: list[torch.Tensor] = field(default_factory=list)  # per layer: the input it read, (B, T, F_l)
    hidden: list[list[list[torch.Tensor]]] = field(default_factory=list)  # [l][d][t] -> h_t (B, H)
    cells: list[list[list[torch.Tensor]]] = field(default_factory=list)  # LSTM only: [l][d][t] -> c_t (B, H)
    gates: list[list[dict[str, torch.Tensor]]] = field(default_factory=list)  # [l][d] gate -> (B, T, H)

    def reading_to_time(self, stacked: torch.Tensor, direction: int) -> torch.Tensor:
        """(B, T, X) in the reading order of ``direction`` -> (B, T, X) in time order."""
        if direction == 0:
            return stacked
        B, T = stacked.shape[:2]
        steps = torch.arange(T, device=stacked.device)
        lens = self.lengths.to(stacked.device) if self.lengths is not None else torch.full((B,), T, device=stacked.device)
        real = steps[None, :] < lens[:, None]
        idx = torch.where(real, (lens[:, None] - 1 - steps[None, :]).clamp(min=0), steps[None, :].expand(B, T))
        return stacked.gather(1, idx[:, :, None].expand_as(stacked))


class Recurrent(nn.Module):
    """A stack of recurrent layers, batch-first, with variable-length batches.

    forward(x, lengths=None, state=None) -> (output, state)
      x       (B, T, input_size)
      lengths (B,) long, real length of each sequence (padded steps never change any result)
      output  (B, T, D*H), zeros at padded steps
      state   h_n (L*D, B, H), or (h_n, c_n) for the LSTM -- same layout as torch

    ``path`` is the default way to run: "fused" (torch's kernel) for the classic cells, "parallel" (``linear_scan``)
    for minGRU / minLSTM, or "stepwise"; ``recording()`` switches every cell to stepwise for the calling thread.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0):
        super().__init__()
        self.cell = check_cell(cell)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional, self.dropout = bidirectional, dropout
        self.num_directions = 2 if bidirectional else 1
        if cell in MIN_CELLS:
            self.rnn = MinCellWeights(cell, input_size, hidden_size, num_layers, bidirectional)
        else:
            self.rnn = _fused_module(cell, input_size, hidden_size, num_layers, bidirectional, dropout)
        # "fused" | "parallel" | "stepwise": the default path (core.layers.recording() overrides per thread)
        self.path = "parallel" if cell in MIN_CELLS else "fused"

    def extra_repr(self) -> str:
        return f"cell={self.cell}, path={self.path}"

    # ---- parameters, by (layer, direction) -------------------------------------------------------------------
    def weights(self, layer: int, direction: int) -> tuple[torch.Tensor | None, ...]:
        """(w, w', input bias, recurrent bias) of one layer and direction, torch's layout; minGRU / minLSTM have no
        recurrent weight and one bias: (w, None, b, None)."""
        sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        r = self.rnn
        if self.cell in MIN_CELLS:
            return getattr(r, f"weight_{r.tag}{sfx}"), None, getattr(r, f"bias_{r.tag}{sfx}"), None
        return (getattr(r, "weight_ih" + sfx), getattr(r, "weight_hh" + sfx),
                getattr(r, "bias_ih" + sfx), getattr(r, "bias_hh" + sfx))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None, state=None):
        if x.dim() != 3:
            raise ValueError(f"Recurrent expects (B, T, F) input, got shape {tuple(x.shape)}")
        traces = getattr(_LOCAL, "traces", None)
        # Runs under no_grad (e.g. a task searching for its target inside inspect_loss) are not part of the loss.
        if traces is not None and torch.is_grad_enabled():
            if not x.requires_grad:  # so that saliency dL/dx can be read even for raw feature inputs
                x = x.detach().requires_grad_(True)
            out, st, trace = self.forward_stepwise(x, lengths, state)
            traces.append((self, trace))
            return out, st
        if self.path == "stepwise":
            out, st, _ = self.forward_stepwise(x, lengths, state)
            return out, st
        return self.forward_fused(x, lengths, state)

    def forward_fused(self, x, lengths=None, state=None):
        """The fast path: torch's fused kernel, or for minGRU / minLSTM the parallel scan."""
        if self.cell in MIN_CELLS:
            return self.forward_parallel(x, lengths, state)
        B, T, _ = x.shape  # (B, T, F)
        if lengths is None or bool((lengths == T).all()):
            out, st = self.rnn(x, state)  # (B, T, D*H)
            return out, st
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, st = self.rnn(packed, state)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, D*H)
        return out, st

    # ---- the explicit loop -------------------------------------------------------------------------------------
    def _step(self, xw_t, h, c, w_hh, b_hh):
        """One step given the precomputed input part xw_t = x_t W_ih^T + b_ih. Returns h, c, gates dict."""
        hw = F.linear(h, w_hh, b_hh)  # (B, G*H)
        if self.cell in ("rnn_tanh", "rnn_relu"):
            pre = xw_t + hw
            h_new = torch.tanh(pre) if self.cell == "rnn_tanh" else torch.relu(pre)
            return h_new, None, {"h": h_new}
        if self.cell == "gru":
            H = h.shape[-1]
            # r and z in one sigmoid, and h' = (1 - z) n + z h as one lerp: fewer kernels per step (forward and
            # backward) -- the loop runs T times, so per-step overhead is what makes it slower than the fused kernel.
            r, z = torch.sigmoid(xw_t[:, : 2 * H] + hw[:, : 2 * H]).chunk(2, dim=-1)  # (B, H) each
            n = torch.tanh(xw_t[:, 2 * H :] + r * hw[:, 2 * H :])  # (B, H)
            h_new = torch.lerp(n, h, z)  # n + z (h - n) = (1 - z) n + z h
            return h_new, None, {"r": r, "z": z, "n": n}
        pre = xw_t + hw  # (B, 4H) gates i, f, g, o
        i, f, _, o = torch.sigmoid(pre).chunk(4, dim=-1)  # one sigmoid for the three sigmoid gates (B, H) each
        g = torch.tanh(pre[:, 2 * h.shape[-1] : 3 * h.shape[-1]])  # (B, H)
        c_new = torch.addcmul(f * c, i, g)  # f c + i g
        h_new = o * torch.tanh(c_new)
        return h_new, c_new, {"i": i, "f": f, "g": g, "o": o}

    def _layout(self, x, lengths):
        """Masks for a (B, T, F) batch: keep (B, T) True on real steps, mask (B, T) 1.0 there, full (no padding
        anywhere), and flip: (B, T, X) -> each sequence reversed within its own length (padding stays in place)."""
        B, T, _ = x.shape
        dev = x.device
        lens = lengths.to(dev) if lengths is not None else torch.full((B,), T, device=dev, dtype=torch.long)
        steps = torch.arange(T, device=dev)
        keep = steps[None, :] < lens[:, None]  # (B, T) True on real steps
        mask = keep.to(x.dtype)  # (B, T) 1 on real steps
        full = lengths is None or bool(keep.all())  # no padding anywhere: no per-step masking needed
        # Reversing each sequence inside its own length lets the backward direction start at its last real step.
        rev_idx = (lens[:, None] - 1 - steps[None, :]).clamp(min=0)  # (B, T)
        rev_idx = torch.where(keep, rev_idx, steps[None, :].expand(B, T))

        def flip(t):  # (B, T, X) -> same, each sequence reversed within its length
            return t.gather(1, rev_idx[:, :, None].expand_as(t))

        return keep, mask, full, flip

    def _min_terms(self, xw, keep, full, gates: bool = False):
        """minGRU / minLSTM as h_t = a_t * h_{t-1} + c_t, from the input projections xw (B, T, G*H):
        (log a (B, T, H), c (B, T, H), the gates by ``GATES`` name or {}). Padded steps get a = 1, c = 0: they keep
        the state exactly. Half-precision projections are widened to float32 first."""
        H = self.hidden_size
        if xw.dtype in (torch.float16, torch.bfloat16):
            xw = xw.float()
        cand = xw[..., -H:]  # (B, T, H) h~_t = W_h x_t + b_h
        if self.cell == "mingru":
            k = xw[..., :H]  # (B, T, H) W_z x_t + b_z
            z = torch.sigmoid(k)  # update gate
            log_a = F.logsigmoid(-k)  # log(1 - z), exact where z is near 1
            c = z * cand
            seen = {"z": z, "h": cand} if gates else {}
        else:
            log_f, log_i = F.logsigmoid(xw[..., :H]), F.logsigmoid(xw[..., H:2 * H])  # (B, T, H) each
            log_n = torch.logaddexp(log_f, log_i)  # log(f + i)
            log_a = log_f - log_n  # log f'
            i_n = (log_i - log_n).exp()  # i' = i / (f + i)
            c = i_n * cand
            seen = {"f": log_a.exp(), "i": i_n, "h": cand} if gates else {}
        if not full:
            m = keep[:, :, None]  # (B, T, 1)
            log_a, c = log_a.masked_fill(~m, 0.0), c.masked_fill(~m, 0.0)
        return log_a, c, seen

    def forward_parallel(self, x, lengths=None, state=None):
        """minGRU / minLSTM over the whole sequence at once (``linear_scan``): same results as forward_stepwise."""
        B, T, _ = x.shape
        H, D, L = self.hidden_size, self.num_directions, self.num_layers
        keep, mask, full, flip = self._layout(x, lengths)
        h0 = x.new_zeros(L * D, B, H) if state is None else state  # (L*D, B, H)
        layer_in, h_n = x, []
        for layer in range(L):
            if layer > 0 and self.dropout > 0 and self.training:
                layer_in = F.dropout(layer_in, self.dropout, training=True)
            dir_outs = []
            for d in range(D):
                w, _, b, _ = self.weights(layer, d)
                seq = flip(layer_in) if d == 1 else layer_in
                log_a, c, _ = self._min_terms(F.linear(seq, w, b), keep, full)  # (B, T, H) each
                # (B, T, H), in the input's precision (the scan itself runs in float32 at least); padded steps carry
                # the last real state
                h = linear_scan(log_a, c, h0[layer * D + d]).to(x.dtype)
                h_n.append(h[:, -1])
                out = h if full else h * mask[:, :, None]  # zeros at padding
                dir_outs.append(flip(out) if d == 1 else out)
            layer_in = torch.cat(dir_outs, dim=-1)  # (B, T, D*H)
        return layer_in, torch.stack(h_n, dim=0)  # (B, T, D*H), (L*D, B, H)

    def forward_stepwise(self, x, lengths=None, state=None):
        B, T, _ = x.shape
        H, D, L = self.hidden_size, self.num_directions, self.num_layers
        keep, mask, full, flip = self._layout(x, lengths)
        if state is None:
            h0 = x.new_zeros(L * D, B, H)
            c0 = x.new_zeros(L * D, B, H)
        elif self.cell == "lstm":
            h0, c0 = state
        else:
            h0, c0 = state, None
        trace = StepTrace(cell=self.cell, lengths=lengths)
        layer_in = x
        h_n, c_n = [], []
        for layer in range(L):
            if layer > 0 and self.dropout > 0 and self.training:
                layer_in = F.dropout(layer_in, self.dropout, training=True)
            trace.inputs.append(layer_in)
            dir_outs, hid_l, cel_l, gat_l = [], [], [], []
            for d in range(D):
                w_ih, w_hh, b_ih, b_hh = self.weights(layer, d)
                seq = flip(layer_in) if d == 1 else layer_in
                xw = F.linear(seq, w_ih, b_ih)  # (B, T, G*H) all input projections at once
                h = h0[layer * D + d]
                c = c0[layer * D + d] if self.cell == "lstm" else None
                hs, cs = [], []
                if self.cell in MIN_CELLS:
                    # The gates read only x_t, so they are known for every step at once; the loop is the
                    # recurrence itself, h_t = a_t * h_{t-1} + c_t (padded steps: a = 1, c = 0, the state is kept).
                    log_a, cw, gates = self._min_terms(xw, keep, full, gates=True)
                    for a_t, c_t in zip(log_a.exp().unbind(1), cw.unbind(1)):
                        h = torch.addcmul(c_t, a_t, h)  # (B, H)
                        hs.append(h)
                    h = h.to(x.dtype)  # as the parallel path returns it
                else:
                    gs = {g: [] for g in GATES[self.cell]}
                    # unbind, not xw[:, t]: the backward of T slices would write T full-size (B, T, G*H)
                    # gradients; unbind's backward stacks the T step gradients once.
                    for t, xw_t in enumerate(xw.unbind(1)):
                        h_new, c_new, step_gates = self._step(xw_t, h, c, w_hh, b_hh)
                        if full:
                            h, c = h_new, c_new
                        else:
                            m = keep[:, t, None]  # (B, 1) True on real steps; padded steps keep the previous state
                            h = torch.where(m, h_new, h)
                            if c is not None:
                                c = torch.where(m, c_new, c)
                        hs.append(h)
                        cs.append(c)
                        for g, v in step_gates.items():
                            gs[g].append(v)
                    gates = {g: torch.stack(v, dim=1) for g, v in gs.items()}  # gate -> (B, T, H)
                out = torch.stack(hs, dim=1).to(h.dtype)  # (B, T, H)
                if not full:
                    out = out * mask[:, :, None]  # zeros at padding
                if d == 1:
                    out = flip(out)
                dir_outs.append(out)
                h_n.append(h)
                if c is not None:
                    c_n.append(c)
                # Step lists are kept in reading order of that direction; map to time with core.inspect helpers.
                hid_l.append(hs)
                cel_l.append(cs if c is not None else [])
                gat_l.append(gates)
            trace.hidden.append(hid_l)
            trace.cells.append(cel_l)
            trace.gates.append(gat_l)
            layer_in = torch.cat(dir_outs, dim=-1)  # (B, T, D*H)
        hn = torch.stack(h_n, dim=0)  # (L*D, B, H)
        st = (hn, torch.stack(c_n, dim=0)) if self.cell == "lstm" else hn
        return layer_in, st, trace


def last_real_step(output: torch.Tensor, lengths: torch.Tensor | None, hidden_size: int,
                   bidirectional: bool) -> torch.Tensor:
    """Summary of each sequence from a (B, T, D*H) output: the forward direction at its last *real* step,
    and (if bidirectional) the backward direction at step 0, where it has read the whole sequence."""
    B, T, _ = output.shape
    idx = (lengths.to(output.device) - 1) if lengths is not None else torch.full((B,), T - 1, device=output.device)
    fwd = output[torch.arange(B, device=output.device), idx, :hidden_size]  # (B, H)
    if not bidirectional:
        return fwd
    bwd = output[:, 0, hidden_size:]  # (B, H)
    return torch.cat([fwd, bwd], dim=-1)  # (B, 2H)


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
