"""Long-range dependency toys for the Gradient Lab: small seeded problems where the answer depends on something
the network read many steps ago, so backpropagation through time (BPTT) has to carry the gradient that far.

  recall   x = [s, d, d, ..., d]  (one of K symbols, then length-1 random distractors)  ->  y = s
           chance accuracy is 1/K; the only learning signal is a gradient that travels back length-1 steps.
  adding   x_t = (u_t, m_t), u_t ~ U(0, 1), exactly two markers m_t = 1 (one in each half)  ->  y = sum of the two
           marked u_t (Hochreiter & Schmidhuber 1997); "solved" means |error| < 0.04.
  parity   x = random bits, each sequence 1..T long  ->  y = 1 if it holds an odd number of 1s, else 0; chance 1/2.
           Every bit matters to the answer, and the answer flips with every 1: the state must flip too.
           ``parity_lab`` trains every cell at lengths up to T and tests it at T, 2T, 4T, 8T (length
           generalisation): a state that flips learns a rule that holds at any length; a state that only fades
           (the linear recurrences minGRU / minLSTM, whose per-step factor stays in (0, 1)) cannot
           (Grazzi et al., ICLR 2025).

``gradient_vs_distance`` measures ||dL/dh_t|| against the distance back in time at initialisation (through
core.inspect, on the stepwise path), after rescaling the recurrent weight w' to a chosen spectral radius rho, and
puts the linear theory ||dL/dh_T|| * rho**k beside it. ``train_toy`` trains one small many-to-one model for a
bounded number of steps, with no / norm / value clipping, reporting every step to a callback so a UI can follow.

Pure PyTorch + pandas (no Streamlit). Everything is seeded: the same arguments give the same numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from core.inspect import decay_rate, inspect_model, recurrent_spectra
from core.layers import CELLS, GATES, MIN_CELLS, Recurrent, cell_label, check_cell, last_real_step

TOYS = ("recall", "adding", "parity")
CLIP_MODES = ("none", "norm", "value")
NUM_SYMBOLS = 4  # K symbols to remember in "recall": chance accuracy 1/4
NUM_DISTRACTORS = 4  # distractor symbols (disjoint from the K): random, so the state cannot just idle
EMBED = 16  # input embedding width for "recall"
ADDING_TOLERANCE = 0.04  # the classic criterion for a correct sum
DIVERGED_LOSS = 1e6  # a loss above this (or NaN/inf) counts as a blown-up run


def check_toy(toy: str) -> str:
    if toy not in TOYS:
        raise ValueError(f"unknown toy {toy!r}; valid toys are: {', '.join(TOYS)}")
    return toy


def resolve_cell(cell: str, activation: str = "tanh") -> str:
    """'rnn' + activation ('tanh' | 'relu') -> 'rnn_tanh' | 'rnn_relu'; any core cell name passes through.
    The activation only concerns the plain RNN: GRU/LSTM have their own fixed sigmoid/tanh gates."""
    if cell == "rnn":
        if activation not in ("tanh", "relu"):
            raise ValueError(f"unknown activation {activation!r}; valid activations are: tanh, relu")
        return f"rnn_{activation}"
    return check_cell(cell)


def chance_accuracy(toy: str) -> float:
    """Accuracy of guessing: 1/K for recall; 1/2 for parity; for adding, always answering 1.0 (the mean sum) is
    within 0.04 of the sum of two U(0,1) about 7.8% of the time (triangular density near its peak:
    2*0.04 - 0.04**2)."""
    toy = check_toy(toy)
    if toy == "recall":
        return 1.0 / NUM_SYMBOLS
    if toy == "parity":
        return 0.5
    return 2 * ADDING_TOLERANCE - ADDING_TOLERANCE ** 2


# ---- data --------------------------------------------------------------------------------------------------------
def _generator(seed: int | torch.Generator) -> torch.Generator:
    return seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(int(seed))


def recall_batch(batch_size: int, length: int, seed: int | torch.Generator = 0,
                 num_symbols: int = NUM_SYMBOLS, num_distractors: int = NUM_DISTRACTORS) -> dict:
    """{"x": (B, T) long ids, "y": (B,) long}: x[:, 0] is the symbol to recall (0..K-1), x[:, 1:] distractors
    (K..K+D-1). The answer is asked for after the last step, so it lies length-1 steps back."""
    if length < 2:
        raise ValueError("recall needs length >= 2 (a symbol and at least one distractor)")
    g = _generator(seed)
    first = torch.randint(0, num_symbols, (batch_size,), generator=g)  # (B,)
    noise = torch.randint(num_symbols, num_symbols + num_distractors, (batch_size, length - 1), generator=g)
    return {"x": torch.cat([first[:, None], noise], dim=1), "y": first}  # (B, T), (B,)


def adding_batch(batch_size: int, length: int, seed: int | torch.Generator = 0) -> dict:
    """{"x": (B, T, 2) float, "y": (B,) float}: channel 0 values in [0, 1), channel 1 marks one step in each
    half of the sequence; y is the sum of the two marked values."""
    if length < 2:
        raise ValueError("adding needs length >= 2 (two marked steps)")
    g = _generator(seed)
    vals = torch.rand(batch_size, length, generator=g)  # (B, T)
    half = length // 2
    a = torch.randint(0, half, (batch_size,), generator=g)  # (B,) one marker in the first half
    b = torch.randint(half, length, (batch_size,), generator=g)  # (B,) one in the second
    marks = torch.zeros(batch_size, length)
    rows = torch.arange(batch_size)
    marks[rows, a] = 1.0
    marks[rows, b] = 1.0
    y = vals[rows, a] + vals[rows, b]  # (B,)
    return {"x": torch.stack([vals, marks], dim=-1), "y": y}  # (B, T, 2), (B,)


def parity_batch(batch_size: int, length: int, seed: int | torch.Generator = 0, min_length: int = 1) -> dict:
    """{"x": (B, T) long bits, "y": (B,) long, "lengths": (B,) long}: each sequence is ``lengths[b]`` random bits
    (drawn uniformly from min_length..length), zeros after it; y = 1 when it holds an odd number of 1s.
    ``min_length = length`` gives sequences of exactly that length (how a test at one length is read)."""
    if not 1 <= min_length <= length:
        raise ValueError("parity needs 1 <= shortest length <= longest length")
    g = _generator(seed)
    lengths = torch.randint(int(min_length), int(length) + 1, (batch_size,), generator=g)  # (B,)
    bits = torch.randint(0, 2, (batch_size, length), generator=g)  # (B, T)
    x = bits * (torch.arange(length)[None, :] < lengths[:, None])  # (B, T) zeros after each real length
    return {"x": x, "y": x.sum(1) % 2, "lengths": lengths}  # (B, T), (B,), (B,)


def make_batch(toy: str, batch_size: int, length: int, seed: int | torch.Generator = 0) -> dict:
    toy = check_toy(toy)
    if toy == "recall":
        return recall_batch(batch_size, length, seed)
    if toy == "parity":
        return parity_batch(batch_size, length, seed)
    return adding_batch(batch_size, length, seed)


# ---- model -------------------------------------------------------------------------------------------------------
class ToyModel(nn.Module):
    """Many-to-one: read the whole sequence, answer once from the last real step. y = w1 . o_T + b_y for recall
    and adding; for parity the answer is read by a small two-layer network (H -> H -> 2), the same for every
    cell, so that the readout is never what fails: whatever the last state holds, the head can decode."""

    def __init__(self, toy: str, cell: str, hidden: int = 32):
        super().__init__()
        self.toy, self.cell = check_toy(toy), check_cell(cell)
        if toy == "recall":
            self.embed = nn.Embedding(NUM_SYMBOLS + NUM_DISTRACTORS, EMBED)
            self.rnn = Recurrent(cell, EMBED, hidden)
            self.head = nn.Linear(hidden, NUM_SYMBOLS)
        elif toy == "parity":
            self.embed = nn.Embedding(2, EMBED)
            self.rnn = Recurrent(cell, EMBED, hidden)
            self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        else:
            self.embed = nn.Identity()  # the two channels are already vectors
            self.rnn = Recurrent(cell, 2, hidden)
            self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        out, _ = self.rnn(self.embed(x), lengths)  # (B, T, H)
        y = self.head(last_real_step(out, lengths, self.rnn.hidden_size, False))  # (B, C) logits, or (B, 1)
        return y if self.toy != "adding" else y[:, 0]


def toy_loss(model: ToyModel, batch: dict) -> tuple[torch.Tensor, float]:
    """(mean loss with grad, accuracy). Cross-entropy for recall and parity; MSE for adding (accuracy:
    |error| < 0.04)."""
    pred = model(batch["x"], batch.get("lengths"))
    if model.toy != "adding":
        loss = F.cross_entropy(pred, batch["y"])
        acc = (pred.argmax(-1) == batch["y"]).float().mean()
    else:
        loss = F.mse_loss(pred, batch["y"])
        acc = ((pred - batch["y"]).abs() < ADDING_TOLERANCE).float().mean()
    return loss, float(acc)


@torch.no_grad()
def set_spectral_radius(rnn: Recurrent, target: float) -> float:
    """Rescale every gate block of every recurrent matrix w' so that its spectral radius (largest |eigenvalue|)
    is ``target``. Returns the largest spectral radius measured afterwards. minGRU and minLSTM have no w': nothing
    to rescale (NaN)."""
    if not target > 0:
        raise ValueError("the recurrent scale (target spectral radius) must be positive")
    if rnn.cell in MIN_CELLS:
        return float("nan")
    for layer in range(rnn.num_layers):
        for d in range(rnn.num_directions):
            w_hh = rnn.weights(layer, d)[1]  # (G*H, H)
            for block in w_hh.chunk(len(GATES[rnn.cell]), dim=0):  # views: scaled in place
                rho = float(torch.linalg.eigvals(block.double()).abs().max())
                if rho > 0:
                    block.mul_(target / rho)
    return measured_spectral_radius(rnn)


def measured_spectral_radius(module: nn.Module) -> float:
    spec = recurrent_spectra(module)
    return float(spec["spectral_radius"].max()) if len(spec) else float("nan")


@torch.no_grad()
def chrono_init(rnn: Recurrent, length: int) -> None:
    """Gated cells start out *remembering* (the "chrono" initialisation of Tallec & Ollivier, 2018): the LSTM
    forget-gate bias and the GRU update-gate bias are set to log(length), so the kept fraction per step is about
    1 - 1/length; the LSTM input-gate bias is set to -log(length), so distractors barely write. torch's default
    (biases near 0, gates near 0.5) halves the memory every step, and then even an LSTM cannot learn a
    dependency 50 steps long in a few hundred steps. The plain RNN has no gate and so nothing to set. minGRU
    and minLSTM get the same start through their one bias: minGRU's update gate z at -log(length) (it keeps
    1 - z), minLSTM's forget gate at +log(length) and its input gate at -log(length)."""
    if rnn.cell not in ("gru", "lstm") + MIN_CELLS:
        return
    b = math.log(max(float(length), math.e))  # at least 1
    H = rnn.hidden_size
    for layer in range(rnn.num_layers):
        for d in range(rnn.num_directions):
            _, _, b_ih, b_hh = rnn.weights(layer, d)
            if rnn.cell in MIN_CELLS:  # rows in GATES order: minGRU (z, h), minLSTM (f, i, h)
                b_ih.zero_()
                if rnn.cell == "mingru":
                    b_ih[0:H].fill_(-b)  # z small: keep about 1 - 1/length per step
                else:
                    b_ih[0:H].fill_(b)  # f open
                    b_ih[H:2 * H].fill_(-b)  # i mostly closed
                continue
            for bias in (b_ih, b_hh):  # torch keeps two biases that add up: give each half
                bias.zero_()
                bias[H:2 * H].fill_(b / 2)  # LSTM: f (forget) gate; GRU: z (update) gate, z = keep
                if rnn.cell == "lstm":
                    bias[0:H].fill_(-b / 2)  # LSTM: i (input) gate mostly closed


def build_toy_model(toy: str, cell: str, hidden: int = 32, seed: int = 0, length: int = 50,
                    recurrent_scale: float | None = None, gate_init: str = "chrono") -> ToyModel:
    """A seeded ToyModel; ``recurrent_scale`` (if given) sets the spectral radius of w', ``gate_init`` is
    "chrono" (gated cells start remembering, see chrono_init) or "torch" (torch's default)."""
    if gate_init not in ("chrono", "torch"):
        raise ValueError(f"unknown gate_init {gate_init!r}; valid values are: chrono, torch")
    torch.manual_seed(int(seed))
    model = ToyModel(toy, cell, hidden)
    if gate_init == "chrono":
        chrono_init(model.rnn, length)
    if recurrent_scale is not None:
        set_spectral_radius(model.rnn, float(recurrent_scale))
    return model


# ---- gradient against distance -----------------------------------------------------------------------------------
def gradient_vs_distance(cell: str = "rnn", length: int = 50, activation: str = "tanh",
                         recurrent_scale: float = 1.0, hidden: int = 32, seed: int = 0, toy: str = "recall",
                         batch_size: int = 16, gate_init: str = "chrono") -> pd.DataFrame:
    """||dL/dh_t|| at initialisation against k = distance back in time from the step that answers.

    Columns: cell (core name), label ("RNN (tanh)", "GRU", ...), step t, distance k = T-1-t, grad_norm (NaN where
    it over/underflowed), grad_norm_raw (as measured: 0 where it underflowed, inf where it overflowed),
    theory = grad_norm[k=0] * rho**k (the linear estimate: each step back multiplies by w' and by f' <= 1, so a
    radius rho < 1 vanishes at least this fast, rho > 1 may grow up to this fast), spectral_radius (measured on w'
    after rescaling, largest over gate blocks).
    ``df.attrs`` also holds spectral_radius, fitted decay_rate (per-step factor), loss and total_grad_norm."""
    core_cell = resolve_cell(cell, activation)
    length, hidden = int(length), int(hidden)
    model = build_toy_model(toy, core_cell, hidden, seed, length, recurrent_scale, gate_init)
    batch = make_batch(toy, batch_size, length, seed + 1)
    rho = measured_spectral_radius(model)
    ins = inspect_model(model, lambda m: toy_loss(m, batch)[0])
    df = ins.hidden[["step", "distance", "grad_norm"]].copy()
    df = df.sort_values("distance").reset_index(drop=True)
    raw = df["grad_norm"].to_numpy(float)
    g = np.where(np.isfinite(raw) & (raw > 0), raw, np.nan)  # log-scale charts cannot show 0 or inf
    df["grad_norm"] = g
    df["grad_norm_raw"] = raw  # 0 where float32 underflowed, inf / NaN where it overflowed: what a table says
    with np.errstate(over="ignore"):
        df["theory"] = g[0] * np.power(rho, df["distance"].to_numpy(float))
    df["theory"] = df["theory"].where(np.isfinite(df["theory"]) & (df["theory"] > 0))
    df.insert(0, "label", cell_label(core_cell))
    df.insert(0, "cell", core_cell)
    df["spectral_radius"] = rho
    h = ins.hidden
    finite = h[np.isfinite(h["grad_norm"]) & (h["grad_norm"] > 0)]
    df.attrs.update(spectral_radius=rho, decay_rate=decay_rate(finite) if len(finite) > 1 else float("nan"),
                    loss=ins.loss, total_grad_norm=ins.total_grad_norm, recurrent_scale=recurrent_scale,
                    overflow=bool(np.isnan(g).any()))
    return df


# ---- training ----------------------------------------------------------------------------------------------------
WORK_BUDGET = 60_000  # steps x sequence length per cell for a live run: GRU at T=200 for 300 steps, ~20 s on 2 cores


def steps_within_budget(steps: int, length: int, budget: int = WORK_BUDGET, step: int = 10) -> int:
    """The number of training steps a live run takes: ``steps``, or fewer when steps x length would exceed
    ``budget`` -- the same number for every cell, so the comparison stays fair on any machine (a wall-clock cap
    would stop a slow cell earlier). Rounded down to a multiple of ``step``, at least ``step``."""
    steps, length = max(1, int(steps)), max(1, int(length))
    if steps * length <= budget:
        return steps
    return max(step, (budget // length) // step * step)


def learning_trend(history: pd.DataFrame) -> dict:
    """Is the run still improving at its end? Over the second half of the run (at least 40 steps): rising when the
    straight line fitted to the accuracy gains 5 points across it, or when the loss of the last fifth reaches a new
    low (5% under every earlier fifth) while the accuracy does not fall -- an unstable run's loss also falls back
    after a jump, which is no progress. Returns {"rising", "gain" (fitted accuracy gain over the second half),
    "acc_before" (mean accuracy at the start of the second half), "since_step"} (False / NaN when too short)."""
    ok = history[~history["diverged"]] if "diverged" in history else history
    n = len(ok)
    out = dict(rising=False, gain=float("nan"), acc_before=float("nan"), since_step=None)
    half = ok.iloc[n // 2:]
    if len(half) < 40:
        return out
    acc = half["accuracy"].to_numpy(float)
    x = np.arange(len(acc), dtype=float)
    slope = float(np.polyfit(x, acc, 1)[0]) if np.isfinite(acc).all() else float("nan")
    gain = slope * (len(acc) - 1)
    w = max(20, n // 5)
    loss = ok["loss"].to_numpy(float)
    fifths = [float(np.mean(loss[i:i + w])) for i in range(0, n - w, w)]
    last = float(np.mean(loss[n - w:]))
    earlier = [v for v in fifths if math.isfinite(v)]
    new_low = bool(earlier) and math.isfinite(last) and last < 0.95 * min(earlier)
    out.update(gain=gain, acc_before=float(np.mean(acc[:20])), since_step=int(half["step"].iloc[0]),
               rising=bool(math.isfinite(gain) and (gain >= 0.05 or (new_low and gain >= 0))))
    return out


class PlainOptimizer:
    """SGD with momentum, or Adam, with the arithmetic of torch.optim's single-tensor path (what it runs on the CPU),
    for the toys trained live on the Gradient Lab and the Lesson. Not torch.optim itself: creating any torch.optim
    optimizer imports torch._dynamo (its methods are wrapped in torch._disable_dynamo), which pulls in sympy and
    triton -- ~150 MiB resident in the server for good, for a toy of a few thousand weights."""

    def __init__(self, params, lr: float, kind: str = "adam", momentum: float = 0.9,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        if kind not in ("sgd", "adam"):
            raise ValueError(f"unknown optimizer {kind!r}; valid optimizers are: sgd, adam")
        self.params = [p for p in params]
        self.lr, self.kind, self.momentum, self.betas, self.eps = float(lr), kind, float(momentum), betas, float(eps)
        self.steps = 0
        self.state: list[tuple[torch.Tensor, torch.Tensor] | torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        b1, b2 = self.betas
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                continue
            if self.kind == "sgd":
                buf = self.state[i]
                if buf is None:
                    buf = self.state[i] = g.clone().detach()
                else:
                    buf.mul_(self.momentum).add_(g)
                p.add_(buf, alpha=-self.lr)
                continue
            if self.state[i] is None:
                self.state[i] = (torch.zeros_like(p), torch.zeros_like(p))
            m, v = self.state[i]
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            step_size = self.lr / (1 - b1 ** self.steps)
            denom = (v.sqrt() / (1 - b2 ** self.steps) ** 0.5).add_(self.eps)
            p.addcdiv_(m, denom, value=-step_size)


def _total_norm(params: list[torch.Tensor]) -> float:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.double()) for g in grads])))


def train_toy(cell: str = "rnn_tanh", length: int = 50, steps: int = 300, clip_mode: str = "norm",
              threshold: float = 1.0, lr: float = 0.1, seed: int = 0,
              callback: Callable[[dict], None] | None = None, *, toy: str = "recall", activation: str = "tanh",
              recurrent_scale: float | None = None, hidden: int = 32, batch_size: int = 32,
              optimizer: str = "sgd", gate_init: str = "chrono", max_seconds: float | None = None) -> pd.DataFrame:
    """The history of ``fit_toy`` with the same arguments (the trained model is dropped)."""
    return fit_toy(cell, length, steps, clip_mode, threshold, lr, seed, callback, toy=toy, activation=activation,
                   recurrent_scale=recurrent_scale, hidden=hidden, batch_size=batch_size, optimizer=optimizer,
                   gate_init=gate_init, max_seconds=max_seconds)[0]


def fit_toy(cell: str = "rnn_tanh", length: int = 50, steps: int = 300, clip_mode: str = "norm",
            threshold: float = 1.0, lr: float = 0.1, seed: int = 0,
            callback: Callable[[dict], None] | None = None, *, toy: str = "recall", activation: str = "tanh",
            recurrent_scale: float | None = None, hidden: int = 32, batch_size: int = 32,
            optimizer: str = "sgd", gate_init: str = "chrono",
            max_seconds: float | None = None) -> tuple[pd.DataFrame, ToyModel]:
    """Train a fresh ToyModel for at most ``steps`` steps; return (history, the trained model). The history is a
    DataFrame with columns
    step, loss, accuracy (on that step's batch, before the update), grad_norm_before_clip, grad_norm_after_clip,
    diverged. ``callback(row_dict)`` is called after every step.

    The optimizer is plain SGD with momentum by default because that is where clipping matters: Adam divides
    each gradient by its own running size, which hides an exploding gradient. A non-finite loss or gradient
    (or a loss above DIVERGED_LOSS) ends the run with diverged=True instead of raising. ``df.attrs``: cell,
    chance, final_accuracy (mean of the last 20 steps), diverged, diverged_at, seconds, spectral_radius."""
    if clip_mode not in CLIP_MODES:
        raise ValueError(f"unknown clip_mode {clip_mode!r}; valid modes are: {', '.join(CLIP_MODES)}")
    if clip_mode != "none" and not threshold > 0:
        raise ValueError("the clipping threshold must be positive")
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"unknown optimizer {optimizer!r}; valid optimizers are: sgd, adam")
    core_cell = resolve_cell(cell, activation)
    model = build_toy_model(toy, core_cell, hidden, seed, length, recurrent_scale, gate_init)
    rho = measured_spectral_radius(model)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = PlainOptimizer(params, lr, optimizer, momentum=0.9)
    gen = torch.Generator().manual_seed(int(seed) + 1)
    rows, diverged_at, t0 = [], None, time.perf_counter()
    with torch.enable_grad():
        for step in range(1, int(steps) + 1):
            batch = make_batch(toy, batch_size, length, gen)
            loss, acc = toy_loss(model, batch)
            lv = float(loss.detach())
            before = after = float("nan")
            if math.isfinite(lv) and lv < DIVERGED_LOSS:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                before = _total_norm(params)
                if math.isfinite(before):
                    if clip_mode == "norm":
                        torch.nn.utils.clip_grad_norm_(params, threshold)
                    elif clip_mode == "value":
                        torch.nn.utils.clip_grad_value_(params, threshold)
                    after = _total_norm(params)
            # The update is taken only when everything is finite: one inf gradient would turn every weight to NaN.
            diverged = not (math.isfinite(lv) and lv < DIVERGED_LOSS and math.isfinite(before)
                            and math.isfinite(after))
            if not diverged:
                opt.step()
            row = dict(step=step, loss=lv, accuracy=acc, grad_norm_before_clip=before, grad_norm_after_clip=after,
                       diverged=diverged)
            rows.append(row)
            if callback is not None:
                callback(dict(row, cell=core_cell, label=cell_label(core_cell), steps=int(steps)))
            if diverged:
                diverged_at = step
                break
            if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                break
    df = pd.DataFrame(rows, columns=["step", "loss", "accuracy", "grad_norm_before_clip", "grad_norm_after_clip",
                                     "diverged"])
    ok = df[~df["diverged"]]
    df.attrs.update(cell=core_cell, label=cell_label(core_cell), chance=chance_accuracy(toy),
                    final_accuracy=float(ok["accuracy"].tail(20).mean()) if len(ok) else float("nan"),
                    diverged=diverged_at is not None, diverged_at=diverged_at,
                    seconds=time.perf_counter() - t0, spectral_radius=rho, steps_run=len(df), clip_mode=clip_mode,
                    threshold=float(threshold), max_grad_norm=float(df["grad_norm_before_clip"].max())
                    if df["grad_norm_before_clip"].notna().any() else float("nan"))
    model.eval()
    return df, model


def verdict(history: pd.DataFrame) -> str:
    """One plain sentence on how a train_toy run went."""
    a = history.attrs
    label, chance = a.get("label", "model"), a.get("chance", 0.25)
    clip, thr, peak = a.get("clip_mode", "none"), a.get("threshold", float("nan")), a.get("max_grad_norm", float("nan"))
    if a.get("diverged"):
        if a.get("diverged_at") == 1:
            return (f"{label}: blew up in the forward pass, before any update (loss {history['loss'].iloc[0]:.3g}) "
                    f"-- the recurrent weight is too large for this activation; clipping only acts on updates, so "
                    f"it cannot help here.")
        hint = " Clipping is off: try clip by norm." if clip == "none" else ""
        return (f"{label}: blew up at step {a['diverged_at']} -- an exploding gradient (largest norm "
                f"{peak:.3g}) threw the weights so far that the loss became huge or not a number.{hint}")
    acc = a.get("final_accuracy", float("nan"))
    if not math.isfinite(acc):
        return f"{label}: no steps were run."
    tamed = ""
    big = math.isfinite(peak) and peak > 10 * (thr if clip != "none" else 1.0)
    if clip != "none" and big:
        held = f"every update to norm <= {thr:g}" if clip == "norm" else f"every gradient entry to +-{thr:g}"
        tamed = f" Clipping kept the run finite: it held {held} while the raw gradient reached {peak:.3g}."
    steps = f" after {len(history)} steps"
    if acc >= 0.9:
        return f"{label}: learned it -- {acc:.0%} accuracy at the end{steps} (chance is {chance:.0%}).{tamed}"
    trend = learning_trend(history)
    if trend["rising"]:
        return (f"{label}: still learning when the budget ran out -- {acc:.0%} accuracy{steps} (chance is "
                f"{chance:.0%}), up from {trend['acc_before']:.0%} around step {trend['since_step']}. More steps "
                f"would likely take it further.{tamed}")
    if acc >= chance + 0.15:
        return (f"{label}: partly -- {acc:.0%} accuracy at the end{steps} (chance is {chance:.0%}), no longer "
                f"improving much.{tamed}")
    why = ("the gradient from the answer faded away before it reached the first step (vanishing gradient)"
           if a.get("cell", "").startswith("rnn") and not big else
           "it never learned to carry the first symbol to the end")
    near = "about chance" if acc < chance + 0.07 else "barely above chance"
    return f"{label}: failed -- {acc:.0%} accuracy{steps}, {near} ({chance:.0%}), and not improving: {why}.{tamed}"


# ---- parity: does what a cell learned hold at longer lengths? ---------------------------------------------------
PARITY_CELLS = tuple(c for c in ("rnn_tanh", "gru", "lstm", "mingru", "minlstm") if c in CELLS)
SOLVED = 0.9  # accuracy at a length that counts as "gets parity right there" (chance is 0.5)
NOT_LEARNED = 0.6  # below this at the training length: the cell did not learn parity at all


@dataclass(frozen=True)
class ParityConfig:
    """One parity experiment: the same for every cell, so the cells differ only in their recurrence."""

    train_length: int = 20  # longest training sequence; each is 1..train_length bits, so short ones teach the rule
    factors: tuple[int, ...] = (1, 2, 4, 8)  # test lengths, as multiples of train_length (1: the longest trained)
    steps: int = 600  # Adam steps per run: at T = 20 (seeds 0-2) GRU and LSTM learned it every time, tanh-RNN 2 of 3
    lr: float = 0.01  # Adam's step size: parity is a search problem, not the place to show SGD and clipping
    hidden: int = 32  # state size H; the readout is a small two-layer network on the last state (ToyModel)
    batch_size: int = 64  # sequences per step
    clip: float = 1.0  # clip by norm: keeps a rare large step from undoing what was learned
    eval_size: int = 500  # sequences per test length: an accuracy within about +-4 points (95%)

    def test_lengths(self) -> list[int]:
        return [int(self.train_length) * int(f) for f in self.factors]


def parity_steps(steps: int, train_length: int, runs: int = 1) -> int:
    """Training steps per run within the lab's budget: steps x length x runs per cell <= WORK_BUDGET."""
    return steps_within_budget(steps, int(train_length) * max(1, int(runs)))


@torch.no_grad()
def accuracy_at_lengths(model: ToyModel, lengths: list[int], n: int = 500, seed: int = 12345) -> pd.DataFrame:
    """Accuracy of a trained parity model on ``n`` fresh sequences of exactly each length (one seeded test set per
    length, the same for every model). Columns: length, accuracy, said_odd (the share of sequences it called
    odd: near 0 or 1 means it gives one answer to nearly all of them), n."""
    model.eval()
    rows = []
    for length in lengths:
        b = parity_batch(n, int(length), seed + int(length), min_length=int(length))
        pred = model(b["x"], b["lengths"]).argmax(-1)  # (n,)
        rows.append({"length": int(length), "accuracy": float((pred == b["y"]).float().mean()),
                     "said_odd": float(pred.float().mean()), "n": int(n)})
    return pd.DataFrame(rows, columns=["length", "accuracy", "said_odd", "n"])


PARITY_COLUMNS = ["cell", "label", "seed", "length", "factor", "trained", "accuracy", "said_odd", "chance",
                  "train_accuracy", "steps_run", "seconds"]


def parity_lab(cells: tuple[str, ...] | list[str] = PARITY_CELLS, config: ParityConfig = ParityConfig(),
               seeds: tuple[int, ...] | list[int] = (0,), callback: Callable[[dict], None] | None = None,
               max_seconds: float | None = None) -> pd.DataFrame:
    """Train each cell (once per seed) on parity at lengths 1..train_length, then test it at every length of
    ``config.test_lengths()``. One row per cell x seed x test length, columns PARITY_COLUMNS: trained says the
    length was seen in training (factor 1), train_accuracy is the mean accuracy of the run's last 20 training
    batches, seconds its training time. ``callback`` gets every training step (train_toy's row, with seed)."""
    cfg = config
    lengths = cfg.test_lengths()
    rows = []
    for cell in cells:
        for seed in seeds:
            cb = None if callback is None else (lambda r, seed=seed: callback(dict(r, seed=int(seed))))
            hist, model = fit_toy(cell, cfg.train_length, cfg.steps, "norm", cfg.clip, cfg.lr, int(seed), cb,
                                  toy="parity", hidden=cfg.hidden, batch_size=cfg.batch_size, optimizer="adam",
                                  gate_init="torch", max_seconds=max_seconds)
            acc = accuracy_at_lengths(model, lengths, cfg.eval_size)
            for (_, r), factor in zip(acc.iterrows(), cfg.factors):
                rows.append(dict(cell=hist.attrs["cell"], label=hist.attrs["label"], seed=int(seed),
                                 length=int(r["length"]), factor=int(factor), trained=int(factor) == 1,
                                 accuracy=float(r["accuracy"]), said_odd=float(r["said_odd"]),
                                 chance=chance_accuracy("parity"),
                                 train_accuracy=hist.attrs["final_accuracy"], steps_run=len(hist),
                                 seconds=hist.attrs["seconds"]))
    df = pd.DataFrame(rows, columns=PARITY_COLUMNS)
    df.attrs.update(train_length=int(cfg.train_length), steps=int(cfg.steps), seeds=[int(s) for s in seeds])
    return df


def parity_outcome(run: pd.DataFrame) -> str:
    """What one run (one cell, one seed: its rows of parity_lab) did: "generalised" (right at the training length
    and at every longer one), "fits only" (right at the training length, not at some longer one), "partly"
    (between NOT_LEARNED and SOLVED at the training length), "not learned"."""
    run = run.sort_values("length")
    at_train = float(run.loc[run["trained"], "accuracy"].max())
    longer = run.loc[~run["trained"], "accuracy"]
    if at_train >= SOLVED:
        return "generalised" if bool((longer >= SOLVED).all()) else "fits only"
    return "partly" if at_train >= NOT_LEARNED else "not learned"


def _pct_at(part: pd.DataFrame) -> str:
    """"100% at 20, 51% at 40, ..." from rows with length and accuracy (means over seeds)."""
    means = part.groupby("length")["accuracy"].mean()
    return ", ".join(f"{a:.0%} at {n}" for n, a in means.items())


def parity_verdict(results: pd.DataFrame, cell: str) -> str:
    """One plain paragraph on what one cell did in parity_lab: the outcome of each run and the accuracies measured
    at each length (the mean over runs when there were several)."""
    part = results[results["cell"] == cell]
    if part.empty:
        return f"{cell_label(cell)}: not run."
    label, chance = part["label"].iloc[0], float(part["chance"].iloc[0])
    t = int(part.loc[part["trained"], "length"].iloc[0])
    outcomes = [parity_outcome(r) for _, r in part.groupby("seed", sort=True)]
    n = len(outcomes)
    accs = _pct_at(part)
    mean = " (mean over the runs)" if n > 1 else ""
    runs = f"in {outcomes.count(outcomes[0])} of {n} runs" if n > 1 else ""
    if all(o == "generalised" for o in outcomes):
        return (f"{label}: learned the rule{' ' + runs if runs else ''} and kept it at every longer length — "
                f"{accs}{mean}; chance is {chance:.0%}. What it learned from sequences of at most {t} bits holds "
                f"for sequences {max(part['factor'])}× as long.")
    if all(o == "not learned" for o in outcomes):
        tr = float(part.groupby("seed")["train_accuracy"].first().mean())
        odd = part.loc[part["trained"], "said_odd"]
        same = ""
        if bool(((odd <= 0.05) | (odd >= 0.95)).all()):
            same = (f" At {t} bits it gives the same answer to nearly every sequence, so its accuracy is just the "
                    "share of test sequences with that answer.")
        return (f"{label}: did not learn parity, not even at the training lengths — {accs}{mean}; chance is "
                f"{chance:.0%} (accuracy on its last training batches, lengths 1 to {t}: {tr:.0%}).{same}")
    if all(o == "fits only" for o in outcomes):
        return (f"{label}: fits the training lengths but not beyond — {accs}{mean}; chance is {chance:.0%}. "
                f"What it learned holds only for the lengths it saw.")
    if n == 1 and outcomes[0] == "partly":
        return (f"{label}: partly — {accs}; chance is {chance:.0%}. It did not get the training lengths right "
                f"within the budget.")
    counts = ", ".join(f"{outcomes.count(o)} {o}" for o in ("generalised", "fits only", "partly", "not learned")
                       if o in outcomes)
    return (f"{label}: mixed over {n} runs ({counts}) — {accs}{mean}; chance is {chance:.0%}. Whether this "
            f"cell finds the rule depends on its random start.")


def parity_summary(results: pd.DataFrame) -> dict[str, list[str]]:
    """Cell labels by what every run of theirs did: {"generalised": [...], "fits only": [...], "partly": [...],
    "not learned": [...], "mixed": [...]} (a cell whose runs differ is "mixed")."""
    out: dict[str, list[str]] = {k: [] for k in ("generalised", "fits only", "partly", "not learned", "mixed")}
    for _cell, part in results.groupby("cell", sort=False):
        outcomes = {parity_outcome(r) for _, r in part.groupby("seed")}
        out[outcomes.pop() if len(outcomes) == 1 else "mixed"].append(str(part["label"].iloc[0]))
    return out


__all__ = ["TOYS", "CLIP_MODES", "CELLS", "recall_batch", "adding_batch", "make_batch", "ToyModel",
           "toy_loss", "set_spectral_radius", "chrono_init", "build_toy_model", "gradient_vs_distance", "train_toy",
           "verdict", "chance_accuracy", "resolve_cell", "steps_within_budget", "learning_trend", "WORK_BUDGET",
           "parity_batch", "fit_toy", "ParityConfig", "PARITY_CELLS", "parity_steps", "accuracy_at_lengths",
           "parity_lab", "parity_outcome", "parity_verdict", "parity_summary"]
