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
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

CELLS = ("rnn_tanh", "rnn_relu", "gru", "lstm")
# Gate names in the order torch stacks them inside weight_ih / weight_hh.
GATES = {"rnn_tanh": ("h",), "rnn_relu": ("h",), "gru": ("r", "z", "n"), "lstm": ("i", "f", "g", "o")}


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
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0):
        super().__init__()
        self.cell = check_cell(cell)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional, self.dropout = bidirectional, dropout
        self.num_directions = 2 if bidirectional else 1
        self.rnn = _fused_module(cell, input_size, hidden_size, num_layers, bidirectional, dropout)
        self.path = "fused"  # "fused" | "stepwise": the default path (core.layers.recording() overrides per thread)

    def extra_repr(self) -> str:
        return f"cell={self.cell}, path={self.path}"

    # ---- parameters, by (layer, direction) -------------------------------------------------------------------
    def weights(self, layer: int, direction: int) -> tuple[torch.Tensor, ...]:
        sfx = f"_l{layer}" + ("_reverse" if direction == 1 else "")
        r = self.rnn
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

    def forward_stepwise(self, x, lengths=None, state=None):
        B, T, _ = x.shape
        H, D, L = self.hidden_size, self.num_directions, self.num_layers
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
                hs, cs, gs = [], [], {g: [] for g in GATES[self.cell]}
                # unbind, not xw[:, t]: the backward of T slices would write T full-size (B, T, G*H) gradients;
                # unbind's backward stacks the T step gradients once.
                for t, xw_t in enumerate(xw.unbind(1)):
                    h_new, c_new, gates = self._step(xw_t, h, c, w_hh, b_hh)
                    if full:
                        h, c = h_new, c_new
                    else:
                        m = keep[:, t, None]  # (B, 1) True on real steps; padded steps keep the previous state
                        h = torch.where(m, h_new, h)
                        if c is not None:
                            c = torch.where(m, c_new, c)
                    hs.append(h)
                    cs.append(c)
                    for g, v in gates.items():
                        gs[g].append(v)
                out = torch.stack(hs, dim=1)  # (B, T, H)
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
                gat_l.append({g: torch.stack(v, dim=1) for g, v in gs.items()})  # gate -> (B, T, H)
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
