"""The guided lesson: one step per idea, in the lesson's order, each with a question the student answers before the
live model answers it.

Every step is a ``Step`` record: the idea in a few sentences, a question with its choices, and ``reveal(models)``,
which RUNS a model on the step's input and returns a ``Reveal`` -- the model's answer (which choices it makes
right), in words, and two or three sentences on why, with the numbers it measured. There is no answer key: when a
model is retrained, its reveal says what the new model does.

The models a reveal runs:
  * served models (sentiment, the NER tagger and its one-way variant), through ``Models`` (the page passes loaders
    that share the app's model cache; tests pass their own);
  * toy networks from core.toys, built and trained from fixed seeds when the reveal runs (gradients at
    initialisation, an exploding run with and without clipping, recall over 100 steps for each cell);
  * ``TinyRNN``: a one-unit tanh RNN that learns "has a 1 come yet?" in a fraction of a second, for the
    step-through of the recurrence o_t = f(x_t·w + o_{t-1}·w' + b_o), y_t = f(w1·o_t + b_y) with real numbers
    (``recurrence_steps``; tests hold it to the layer's own stepwise path).

Progress (which choices the student picked at each step, and whether the model agreed) travels in a link:
``encode_progress`` / ``decode_progress``.

Pure PyTorch + pandas, no Streamlit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from core import toys
from core.layers import Recurrent, cell_label, recording
from core.shape_words import shape_words

# ---- the models a reveal runs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Models:
    """Where a reveal gets the trained models it runs (the page: the app's shared cache; tests: their own copies)."""

    task: Callable[[str], object]  # task name -> the Task plugin (its predict() answers)
    model: Callable[[str, str | None], nn.Module]  # (task name, variant or None for the served one) -> model
    tiny: Callable[[], TinyRNN]  # the step-through's trained one-unit network


@dataclass(frozen=True)
class Reveal:
    """What the live model said about one question."""

    right: tuple[int, ...]  # indices of the choices the model's answer makes right (computed, never stored)
    said: str  # the model's answer in words, shown beside the student's guess
    why: str  # two or three sentences on why, with the numbers the model gave
    table: pd.DataFrame | None = None  # the numbers behind the answer, to show under it (None: nothing more)
    chart: pd.DataFrame | None = None  # a small series to plot (columns named in chart.attrs["x"], ["y"])


@dataclass(frozen=True)
class Step:
    """One idea of the lesson, with its question."""

    key: str  # stable id: the URL's progress and the tests name steps by it
    title: str  # the step's heading
    idea: str  # the idea in a few sentences (Markdown; [term](#g-...) links point to the page's glossary)
    question: str  # asked before the answer is shown
    choices: tuple[str, ...]  # what the student can answer
    reveal: Callable[[Models], Reveal]  # runs the model and says what it did
    multi: bool = False  # several choices may be right together (the student picks a set)
    more: tuple[str, str, dict] = ("", "", {})  # (label, url path, query params) of the full page on this idea
    terms: tuple[str, ...] = field(default_factory=tuple)  # glossary terms this step uses
    # The trained models the reveal runs, loaded while the student answers: "task" (its served model),
    # "task:variant", or "tiny" (the one-unit network). Toys trained at the reveal are not listed.
    uses: tuple[str, ...] = ()


# ---- the one-unit network of the step-through ------------------------------------------------------------------------

TINY_SEED = 0
TINY_STEPS = 80  # Adam steps: enough for the latch to form (the test checks it learned the task)
TINY_LENGTH = 8  # training sequences of 8 bits


class TinyRNN(nn.Module):
    """The lesson's recurrence with one unit: o_t = tanh(x_t·w + o_{t-1}·w' + b_o), y_t = sigmoid(w1·o_t + b_y).
    Reads bits and says at every step whether a 1 has come yet (many-to-many, aligned): only a state that
    remembers can answer after the 1 has gone."""

    def __init__(self):
        super().__init__()
        self.rnn = Recurrent("rnn_tanh", 1, 1)
        self.head = nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x[..., None].float())  # (B, T, 1)
        return self.head(out)[..., 0]  # (B, T) logits of "a 1 has come"


def tiny_batch(n: int, length: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n sequences of bits (a 1 with probability 0.15 at each step) and, per step, whether a 1 has come yet."""
    x = (torch.rand(n, length, generator=gen) < 0.15).long()  # (B, T)
    return x, (x.cumsum(1) > 0).float()  # (B, T), (B, T)


def train_tiny(seed: int = TINY_SEED, steps: int = TINY_STEPS) -> TinyRNN:
    """The step-through's network, trained from a fixed seed (about 0.3 s on one core)."""
    torch.manual_seed(int(seed))
    model = TinyRNN()
    opt = toys.PlainOptimizer(model.parameters(), lr=0.1)  # torch.optim would import torch._dynamo
    gen = torch.Generator().manual_seed(int(seed) + 1)
    with torch.enable_grad():
        for _ in range(int(steps)):
            x, y = tiny_batch(64, TINY_LENGTH, gen)
            loss = F.binary_cross_entropy_with_logits(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


_TINY_LOCK = threading.Lock()
_TINY: list[TinyRNN] = []


def shared_tiny() -> TinyRNN:
    """``train_tiny()`` once per process: the network the step-through and the recurrence step's reveal share (two
    callers at once train it once)."""
    with _TINY_LOCK:
        if not _TINY:
            _TINY.append(train_tiny())
        return _TINY[0]


@torch.no_grad()
def tiny_accuracy(model: TinyRNN, n: int = 500, length: int = 12, seed: int = 999) -> float:
    """Share of steps answered right on fresh sequences (longer than the training ones)."""
    x, y = tiny_batch(n, length, torch.Generator().manual_seed(seed))
    return float(((model(x) > 0) == (y > 0.5)).float().mean())


def parse_bits(text: str, max_len: int = 12) -> list[int]:
    """"0 1 0 0" (spaces or commas optional) -> [0, 1, 0, 0]; a ValueError with a plain message otherwise."""
    chars = [c for c in str(text) if c not in " ,;\t"]
    if not chars:
        raise ValueError("Type some bits, for example 0 1 0 0 0.")
    if any(c not in "01" for c in chars):
        raise ValueError("Only 0 and 1 can be read: type bits such as 0 1 0 0 0.")
    if len(chars) > max_len:
        raise ValueError(f"At most {max_len} bits: the step-through shows every step.")
    return [int(c) for c in chars]


@dataclass(frozen=True)
class RecurrenceStep:
    """The numbers of one step t of o_t = tanh(x_t·w + o_{t-1}·w' + b_o), y_t = sigmoid(w1·o_t + b_y)."""

    t: int  # 1-based step
    x: float  # x_t, the input at this step
    w: float  # input weight
    o_prev: float  # o_{t-1}, the state the step starts from (o_0 = 0)
    w_rec: float  # w', the recurrent weight
    b_o: float  # the state's bias (torch keeps two that add up; this is their sum)
    pre: float  # x_t·w + o_{t-1}·w' + b_o, before tanh
    o: float  # o_t = tanh(pre)
    w1: float  # output weight
    b_y: float  # output bias
    y: float  # y_t = sigmoid(w1·o_t + b_y): the probability that a 1 has come


@torch.no_grad()
def recurrence_steps(model: TinyRNN, bits: list[int]) -> list[RecurrenceStep]:
    """The lesson's equations computed by hand, step by step, from the network's weights (float32, as torch runs)."""
    w_ih, w_hh, b_ih, b_hh = model.rnn.weights(0, 0)
    w, w_rec, b_o = w_ih[0, 0], w_hh[0, 0], b_ih[0] + b_hh[0]
    w1, b_y = model.head.weight[0, 0], model.head.bias[0]
    o = torch.zeros((), dtype=w.dtype)
    rows = []
    for t, bit in enumerate(bits, start=1):
        x = torch.tensor(float(bit), dtype=w.dtype)
        pre = x * w + o * w_rec + b_o
        o_new = torch.tanh(pre)
        y = torch.sigmoid(w1 * o_new + b_y)
        rows.append(RecurrenceStep(t, float(x), float(w), float(o), float(w_rec), float(b_o), float(pre),
                                   float(o_new), float(w1), float(b_y), float(y)))
        o = o_new
    return rows


def stepwise_path(model: TinyRNN, bits: list[int]) -> tuple[list[float], list[float]]:
    """(o_t, y_t) for every step from the layer's own stepwise path (core.layers.recording): what
    ``recurrence_steps`` must reproduce."""
    x = torch.tensor([bits], dtype=torch.float32)  # (1, T)
    with torch.enable_grad(), recording() as traces:
        logits = model(x)  # (1, T)
    trace = traces[0][1]
    states = [float(h[0, 0].detach()) for h in trace.hidden[0][0]]
    return states, [float(v) for v in torch.sigmoid(logits[0]).detach()]


# ---- the steps' inputs -------------------------------------------------------------------------------------------

MEMORY_SENTENCE = "You are beautiful but not intelligent."
LATCH_BITS = (0, 1, 0, 0, 0, 0, 0, 0, 0, 0)
SHAPE_SENTENCE = "Adam lists his Manhattan house for $37.5 million."
PARIS_SENTENCE = "Paris Hilton flew to Paris on Monday."
BPTT_LENGTH = 50
EXPLODE = dict(length=60, steps=40, lr=0.3, activation="relu", recurrent_scale=1.5, threshold=1.0)
RECALL_LENGTH = 100
RACE_CELLS = ("rnn_tanh", "gru", "lstm", "mingru")
RACE = dict(steps=60, lr=0.03, hidden=32, batch_size=32)  # Adam, clip by norm at 1, chrono start for gated cells
SOLVED = 0.9  # held-out accuracy that counts as "solved" (chance is 1/4)


def _words(sentence: str) -> tuple[str, ...]:
    return tuple(w.strip(".,!?$") for w in sentence.split() if w.strip(".,!?$"))


# ---- reveals -------------------------------------------------------------------------------------------------------

NO_FLIP = "No word: its answer never changes side"


def reveal_memory(models: Models) -> Reveal:
    """Which word moves the sentiment model's answer to the side it ends on (the last change of side of P(positive)
    over the prefixes)."""
    task, model = models.task("sentiment"), models.model("sentiment", None)
    out = task.predict(model, MEMORY_SENTENCE)
    toks, ends, ps = out["tokens"], out["prefix_ends"], out["prefix_p"]
    flip = None
    for i in range(1, len(ps)):
        if (ps[i] >= 0.5) != (ps[i - 1] >= 0.5):
            flip = ends[i] - 1  # index of the word that ends this prefix
    choices = MEMORY_STEP_CHOICES
    if flip is None:
        right, said = (choices.index(NO_FLIP),), f"No word: it says {out['label']} after every prefix."
    else:
        word = toks[flip]
        low = [c.lower() for c in choices]
        right = (low.index(word.lower()),) if word.lower() in low else (choices.index(NO_FLIP),)
        said = f"“{word}”: after it the answer turns {out['label']}."
    table = pd.DataFrame({"after the word": [toks[e - 1] for e in ends], "P(positive)": ps})
    first = ps[0]
    why = (f"The model reads one word at a time and carries what it read in its state. After “{toks[0]}” it gives "
           f"P(positive) = {first:.2f}; at the end {ps[-1]:.2f}, so it says **{out['label']}**. "
           + ("The answer changes side where the table's P(positive) crosses 0.5: the words before it are still "
              "in the state, and only the whole sentence decides." if flip is not None else
              "It never crosses 0.5: this model reads the whole sentence one way from the start."))
    return Reveal(right, said, why, table=table)


def reveal_latch(models: Models) -> Reveal:
    """Does the one-unit network still say "a 1 came" at the last step, long after the 1?"""
    model = models.tiny()
    steps = recurrence_steps(model, list(LATCH_BITS))
    last = steps[-1]
    keeps = last.y >= 0.5
    said = (f"Yes: at t = {last.t} it says a 1 came with probability {last.y:.2f}." if keeps else
            f"No: at t = {last.t} it gives only {last.y:.2f} that a 1 came.")
    o1 = next(s for s in steps if s.x == 1.0)
    why = (f"At t = {o1.t} the 1 pushes the state to o = {o1.o:.2f}. Every later step computes "
           f"tanh(0·w + o·w' + b_o) with w' = {last.w_rec:.2f} and b_o = {last.b_o:.2f}: "
           + ("the recurrent weight is large enough to hold the state where it is, so the memory stays."
              if keeps else "the state drifts back, so the memory fades."))
    table = pd.DataFrame([{"t": s.t, "x_t": s.x, "o_t": s.o, "y_t": s.y} for s in steps])
    return Reveal((0,) if keeps else (1,), said, why, table=table)


def reveal_shapes(models: Models) -> Reveal:
    """How many answers each model gives for the same sentence: one (many-to-one) or one per word (aligned)."""
    s = models.task("sentiment").predict(models.model("sentiment", None), SHAPE_SENTENCE)
    n = models.task("ner").predict(models.model("ner", None), SHAPE_SENTENCE)
    n_sent = 1 if isinstance(s.get("label"), str) else len(s.get("label") or [])
    n_tags, n_words = len(n["tags"]), len(n["tokens"])
    sent_one, tag_each = n_sent == 1, n_tags == n_words and n_words > 1
    right = {(True, False): 0, (True, True): 1, (False, False): 2, (False, True): 3}[(sent_one, tag_each)]
    said = (f"Sentiment: {n_sent} answer ({s['label']}); tagger: {n_tags} tags for {n_words} words.")
    why = (f"Sentiment is **{shape_words('many_to_one')}**: it reads all {len(s['tokens'])} words and answers "
           f"once, from its last state. The tagger is **{shape_words('many_to_many')}**: one tag per input "
           f"step ({', '.join(f'{w} = {t}' for w, t in zip(n['tokens'], n['tags']) if t != 'O') or 'no entity'}).")
    table = pd.DataFrame({"word": n["tokens"], "tagger's tag": n["tags"]})
    return Reveal((right,), said, why, table=table)


def reveal_bptt(models: Models, length: int = BPTT_LENGTH, activation: str = "tanh", scale: float = 1.0) -> Reveal:
    """Where ||dL/dh_t|| is smallest for a plain RNN that answers after the last of ``length`` steps (at
    initialisation, core.toys.gradient_vs_distance; the lesson's question: tanh, w' at spectral radius 1)."""
    df = toys.gradient_vs_distance("rnn", length, activation, scale, hidden=32, seed=0)
    g = df.set_index("step")["grad_norm_raw"].astype(float).sort_index()  # (T,) by step, 0-based
    g.index = g.index.astype(int) + 1  # t = 1 ... T, as the lesson counts
    lo, hi = float(g.min()), float(g.max())
    t_min = int(g.idxmin())
    if hi <= 3 * max(lo, 1e-30):
        right, where = 3, "about the same everywhere"
    else:
        third = min((t_min - 1) * 3 // length, 2)
        right, where = third, ("at the first steps", "in the middle", "at the last steps")[third]
    first, last = float(g.iloc[0]), float(g.iloc[-1])
    said = f"Smallest {where}: ‖dL/dh_t‖ = {first:.1e} at t = 1 against {last:.1e} at t = {length}."
    why = (f"The loss is read after step {length}. Going back one step multiplies the gradient by w' and by the "
           f"slope of tanh (at most 1); here that shrinks it by a factor of about "
           f"{df.attrs.get('decay_rate', float('nan')):.2f} per step, so at t = 1 only {first / last:.1e} of what "
           f"reaches t = {length} is left: the first steps barely learn (a vanishing gradient).")
    chart = pd.DataFrame({"t": g.index.to_numpy(), "‖dL/dh_t‖": g.to_numpy()})
    chart.attrs.update(x="t", y="‖dL/dh_t‖", log=True)
    return Reveal((right,), said, why, chart=chart)


def reveal_clipping(models: Models, **kw) -> Reveal:
    """The exploding run (ReLU RNN, w' at spectral radius 1.5, SGD) trained without and with clipping by norm."""
    cfg = dict(EXPLODE, **kw)
    runs = {}
    for mode in ("none", "norm"):
        runs[mode] = toys.train_toy("rnn", cfg["length"], cfg["steps"], mode, cfg["threshold"], cfg["lr"], 0,
                                    activation=cfg["activation"], recurrent_scale=cfg["recurrent_scale"])
    raw, clip = runs["none"].attrs, runs["norm"].attrs
    rescued = raw["diverged"] and not clip["diverged"]
    right = 0 if not clip["diverged"] else 1
    def outcome(a: dict) -> str:
        return f"blew up at step {a['diverged_at']}" if a["diverged"] else f"stayed finite for all {a['steps_run']} steps"

    said = f"Without clipping: {outcome(raw)}. With clipping by norm: {outcome(clip)}."
    why = (f"The raw gradient reached ‖g‖ = {raw['max_grad_norm']:.3g}: one SGD step that size throws the weights "
           "far away and the loss becomes huge or not a number. "
           + (f"Clipping by norm rescales every update to ‖g‖ ≤ {cfg['threshold']:g}, keeping its direction, so the "
              f"run survives (accuracy {clip['final_accuracy']:.0%}, chance {clip['chance']:.0%}): clipping keeps a "
              "run alive, it does not make it learn." if rescued or not clip["diverged"] else
              "Clipping could not save it here: the forward pass itself overflowed, and clipping only acts on "
              "updates."))
    rows = []
    for mode, h in runs.items():
        rows.append({"clipping": "by norm" if mode == "norm" else "none", "steps run": len(h),
                     "blew up": bool(h.attrs["diverged"]), "largest ‖g‖": h.attrs["max_grad_norm"],
                     "last loss": float(h["loss"].iloc[-1])})
    return Reveal((right,), said, why, table=pd.DataFrame(rows))


def reveal_paris(models: Models) -> Reveal:
    """Does the one-way tagger tag the first "Paris" of "Paris Hilton ..." as a person? (the two-way one beside)"""
    task = models.task("ner")
    one = task.predict(models.model("ner", "lstm"), PARIS_SENTENCE)
    two = task.predict(models.model("ner", None), PARIS_SENTENCE)
    tag1, tag2 = one["tags"][0], two["tags"][0]
    person = tag1.endswith("PER")
    said = f"{'Yes' if person else 'No'}: the one-way tagger says “Paris” = {tag1} (the two-way tagger: {tag2})."
    why = ("Reading left to right, the one-way tagger has to tag “Paris” before it has read “Hilton”: at that "
           "word its state holds only the start of the sentence. The two-way tagger also reads right to left, so "
           "at “Paris” it has already seen “Hilton flew”"
           + (" and gets it right." if tag2.endswith("PER") else
              ", but here even that is not enough: reading both ways gives the chance, not the guarantee."))
    table = pd.DataFrame({"word": one["tokens"], "one-way tagger": one["tags"], "two-way tagger": two["tags"]})
    return Reveal((0,) if person else (1,), said, why, table=table)


_RACE_LOCK = threading.Lock()
_RACE_CACHE: dict[tuple, pd.DataFrame] = {}
_RACE_PENDING: dict[tuple, threading.Event] = {}  # races being computed by a background process
_RACE_PROCS: dict[tuple, subprocess.Popen] = {}  # and those processes
_RACE_WANTED: set[tuple] = set()  # races a reveal is waiting for (a process started for one runs at full priority)
RACE_PRIORITY = 19  # niceness added to the background race while no student waits for it: the lowest
RACE_PROCESS_TIMEOUT_S = 300.0  # a background race that takes longer is given up; recall_race then computes it here
_ROOT = Path(__file__).resolve().parent.parent  # the folder that holds the core package


def _race_key(length: int, cells: tuple[str, ...], steps: int, seed: int) -> tuple:
    return (int(length), tuple(cells), int(steps), int(seed))


def recall_race(length: int = RECALL_LENGTH, cells: tuple[str, ...] = RACE_CELLS, steps: int = RACE["steps"],
                seed: int = 0) -> pd.DataFrame:
    """Each cell trained on recall over ``length`` steps (Adam, clip by norm 1, gated cells start remembering) for
    ``steps`` steps, then tested on 500 fresh sequences. Columns: cell, label, accuracy, solved, seconds.
    Computed once per process and arguments (a few seconds on a busy 2-core machine), then kept in memory."""
    key = _race_key(length, cells, steps, seed)
    pending = _RACE_PENDING.get(key)
    if pending is not None:  # a background process is computing it: someone waits now, so it runs at full priority
        _RACE_WANTED.add(key)
        if _hurry(_RACE_PROCS.get(key)):
            pending.wait(RACE_PROCESS_TIMEOUT_S)
        else:
            pending.wait(5.0)  # stopped: its thread lets go at once
    with _RACE_LOCK:
        if key in _RACE_CACHE:
            return _RACE_CACHE[key]
        rows = []
        for cell in cells:
            hist, model = toys.fit_toy(cell, length, steps, "norm", 1.0, RACE["lr"], seed, hidden=RACE["hidden"],
                                       batch_size=RACE["batch_size"], optimizer="adam")
            test = toys.recall_batch(500, length, seed=10_000 + seed)
            with torch.no_grad():
                acc = float((model(test["x"]).argmax(-1) == test["y"]).float().mean())
            rows.append({"cell": cell, "label": cell_label(cell), "accuracy": acc, "solved": acc >= SOLVED,
                         "seconds": hist.attrs["seconds"]})
        df = pd.DataFrame(rows)
        _RACE_CACHE[key] = df
        return df


def race_in_background(length: int = RECALL_LENGTH, cells: tuple[str, ...] = RACE_CELLS, steps: int = RACE["steps"],
                       seed: int = 0) -> bool:
    """Start ``recall_race`` in a separate process at the lowest CPU priority (``python -m core.cli.race``), so its
    training shares neither this process's interpreter lock nor its memory, and keep its table when it ends.
    False when the table is known or already under way. If the process fails, ``recall_race`` computes it here."""
    key = _race_key(length, cells, steps, seed)
    with _RACE_LOCK:
        if key in _RACE_CACHE or key in _RACE_PENDING:
            return False
        done = _RACE_PENDING[key] = threading.Event()
    threading.Thread(target=_race_from_process, args=(key, done), name="lesson-recall-race", daemon=True).start()
    return True


def race_records(df: pd.DataFrame) -> str:
    """The race table as JSON (what the background process prints)."""
    return json.dumps(df.to_dict(orient="records"))


def _race_from_process(key: tuple, done: threading.Event) -> None:
    length, cells, steps, seed = key
    cmd = [sys.executable, "-m", "core.cli.race", "--length", str(length), "--cells", ",".join(cells),
           "--steps", str(steps), "--seed", str(seed), "--priority", "0"]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        proc = subprocess.Popen(cmd, cwd=_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        if key not in _RACE_WANTED:
            try:
                os.setpriority(os.PRIO_PROCESS, proc.pid, os.getpriority(os.PRIO_PROCESS, 0) + RACE_PRIORITY)
            except (OSError, AttributeError):
                pass  # not on this system: it runs at this process's priority
        _RACE_PROCS[key] = proc
        out, _ = proc.communicate(timeout=RACE_PROCESS_TIMEOUT_S)
        if proc.returncode == 0:
            df = pd.DataFrame(json.loads(out))
            if list(df.get("cell", [])) == list(cells):
                with _RACE_LOCK:
                    _RACE_CACHE.setdefault(key, df)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
    except (OSError, subprocess.SubprocessError, ValueError):
        pass  # recall_race computes it in this process when a reveal asks
    finally:
        with _RACE_LOCK:
            _RACE_PENDING.pop(key, None)
            _RACE_PROCS.pop(key, None)
            _RACE_WANTED.discard(key)
        done.set()


def _hurry(proc: subprocess.Popen | None) -> bool:
    """Give a background race this process's own priority, now that a reveal waits for it. False when that is not
    allowed here (an unprivileged process may not raise a priority): the race is then stopped and computed here."""
    if proc is None or proc.poll() is not None:
        return True
    try:
        os.setpriority(os.PRIO_PROCESS, proc.pid, os.getpriority(os.PRIO_PROCESS, 0))
        return True
    except (OSError, AttributeError):
        proc.kill()
        return False


def reveal_cells(models: Models, race: Callable[[], pd.DataFrame] = recall_race) -> Reveal:
    """Which cells learn to recall the first of 100 symbols (core.toys recall) within the same short budget."""
    df = race()
    right = tuple(i for i, c in enumerate(RACE_CELLS) if bool(df.loc[df["cell"] == c, "solved"].any()))
    solved = [r["label"] for _, r in df.iterrows() if r["solved"]]
    said = (f"Solved: {', '.join(solved)}." if solved else "None of them solved it in this budget.") + " " + \
        "; ".join(f"{r['label']} {r['accuracy']:.0%}" for _, r in df.iterrows())
    why = (f"The answer depends on the first symbol, {RECALL_LENGTH - 1} steps before the question, and chance is "
           f"{toys.chance_accuracy('recall'):.0%}. The plain RNN multiplies its gradient by w' and tanh' at each of "
           "those steps, so almost nothing reaches the first one. GRU and LSTM gates can keep the state (and the "
           "gradient) nearly unchanged from step to step; minGRU (2024) keeps only the gates, computed from "
           "the input alone, so it trains in parallel and still remembers.")
    table = df[["label", "accuracy", "solved"]].rename(columns={"label": "cell", "accuracy": "held-out accuracy"})
    return Reveal(right, said, why, table=table)


# ---- the lesson ------------------------------------------------------------------------------------------------------

MEMORY_STEP_CHOICES = _words(MEMORY_SENTENCE) + (NO_FLIP,)

STEPS: tuple[Step, ...] = (
    Step("memory", "Why sequences need memory",
         "“You are beautiful but not intelligent.” Word by word, the sentence sounds positive until its last two "
         "words. A model that looks at one word at a time, with no memory, cannot know what *not* does to "
         "*intelligent*, or that *but* turns the sentence. A recurrent network keeps a **[state](#g-state)**: a "
         "vector it updates after every word, so what it read earlier changes how it reads the next word.",
         f"The sentiment model reads “{MEMORY_SENTENCE}” one word at a time. After which word does its answer turn "
         "to the side it ends on?",
         MEMORY_STEP_CHOICES, reveal_memory,
         more=("Open the sentiment page with this sentence", "sentiment", {"sentiment_q": MEMORY_SENTENCE}),
         terms=("state",), uses=("sentiment",)),
    Step("recurrence", "The recurrence, with numbers",
         "At every step t the network computes its new state from the input and its old state, with the same "
         "weights at every step:\n\n"
         "$$o_t = f(x_t \\cdot w + o_{t-1} \\cdot w' + b_o)$$\n\n$$y_t = f(w_1 \\cdot o_t + b_y)$$\n\n"
         "w reads the input, **[w'](#g-recurrent-weight-w)** carries the old state forward, b_o and b_y are biases, "
         "and f is an activation (tanh for the state, a sigmoid for this output). Here a network with ONE unit, "
         "trained on this server from a fixed seed, answers at every step: *has a 1 come yet?*",
         "It reads 0 1 0 0 0 0 0 0 0 0. After the 1 it sees only zeros. At the last step, does it still say a 1 "
         "came?",
         ("Yes: the state still holds the 1", "No: the memory has faded"), reveal_latch,
         terms=("recurrent weight w'", "state"), uses=("tiny",)),
    Step("shapes", "Five shapes, one cell",
         "The same recurrence fits many problems; what changes is where inputs go in and answers come out. "
         "**[Many-to-many (aligned)](#g-shape)**: one answer per input step (named entities, video frames). "
         "**Encoder-decoder**: read a whole sequence, then write another of a different length (translation). "
         "**Many-to-one**: read everything, answer once (sentiment). **One-to-many**: one input, a sequence out "
         "(music, captioning). **One-to-one**: one step, no memory used (cat or dog: the baseline).",
         f"The sentiment model and the named-entity tagger both read “{SHAPE_SENTENCE}” How many answers does each "
         "give?",
         ("One each", "Sentiment one; the tagger one per word", "Sentiment one per word; the tagger one",
          "One per word each"), reveal_shapes,
         more=("Open the named-entity page with this sentence", "ner", {"ner_q": SHAPE_SENTENCE}),
         terms=("shape", "B-, I-, O tags"), uses=("sentiment", "ner")),
    Step("bptt", "Backpropagation through time",
         "A recurrent network learns by **[backpropagation through time](#g-bptt-dl-dh-t)**: unroll it over the "
         "sequence and send the error at the answer backwards through every step. ‖dL/dh_t‖ is how much gradient "
         "reaches step t. Each step back multiplies it by w' and by the slope of the activation.",
         f"A plain RNN (tanh) reads {BPTT_LENGTH} steps and answers after the last one. Where will ‖dL/dh_t‖ be "
         "smallest?",
         ("At the first steps, far from the answer", "In the middle", "At the last steps, next to the answer",
          "About the same everywhere"), reveal_bptt,
         more=("Open the Gradient Lab", "gradient-lab", {}), terms=("BPTT, ‖dL/dh_t‖", "spectral radius ρ")),
    Step("clipping", "Exploding gradients and clipping",
         "Multiplying by w' at every step can also make the gradient *grow*: with a large recurrent weight "
         "(**[spectral radius](#g-spectral-radius-ρ)** ρ > 1) it explodes, one update throws the weights away and "
         "the loss becomes not a number. **[Gradient clipping](#g-gradient-clipping)** rescales an update whose "
         "norm is too large, keeping its direction.",
         f"A ReLU RNN with ρ = {EXPLODE['recurrent_scale']:g} is trained for {EXPLODE['steps']} SGD steps twice: once "
         "without clipping, once with clipping by norm at 1. Will the clipped run stay finite?",
         ("Yes: it stays finite", "No: it still blows up"), reveal_clipping,
         more=("Open the Gradient Lab on the exploding run", "gradient-lab",
               {"gl_length": "60", "gl_scale": "1.5", "gl_clip": "none", "gl_act": "relu"}),
         terms=("spectral radius ρ", "gradient clipping")),
    Step("bidirectional", "Reading both ways",
         "A one-way tagger tags each word having read only the words before it. A **[bidirectional](#g-bidirectional)** "
         "tagger runs a second recurrence from the end of the sentence backwards and joins the two states, so "
         "every tag can use the words after it too.",
         f"A one-way tagger reads “{PARIS_SENTENCE}” left to right. Will it tag the first “Paris” as a person?",
         ("Yes", "No"), reveal_paris,
         more=("Open the named-entity page with this sentence", "ner", {"ner_q": PARIS_SENTENCE}),
         terms=("bidirectional", "B-, I-, O tags"), uses=("ner:lstm", "ner")),
    Step("gates", "GRU, LSTM and the 2024 linear recurrences",
         "**[Gates](#g-gates-lstm-gru)** are numbers between 0 and 1 computed at every step that decide how much "
         "of the old state to keep and how much new input to write. The LSTM (1997) and the GRU (2014) read their "
         "gates from the input and the old state. **minGRU** and **minLSTM** (2024) compute them from the input "
         "alone: the whole sequence can then be computed at once (a parallel scan), not one step after another.",
         f"Recall: the first of {RECALL_LENGTH} symbols must be named after the last; {RECALL_LENGTH - 1} random "
         f"symbols lie between. Each cell trains {RACE['steps']} steps. Which cells will solve it (≥ {SOLVED:.0%} on "
         "fresh sequences)? Pick every one you expect.",
         tuple(cell_label(c) for c in RACE_CELLS), reveal_cells, multi=True,
         more=("Open the Gradient Lab", "gradient-lab", {}), terms=("gates (LSTM, GRU)", "chrono init")),
)
STEP_KEYS = tuple(s.key for s in STEPS)

# Words the lesson uses beyond the app's glossary (core.ui.widgets.GLOSSARY); the page lists both, with anchors.
LESSON_TERMS: dict[str, str] = {
    "state": "The vector $o_t$ (also written $h_t$) a recurrent network carries from one step to the next: what it "
             "remembers of everything it has read so far.",
    "recurrent weight w'": "The weight that multiplies the old state $o_{t-1}$ at every step. The same w' acts at every "
                           "step, so its size decides whether memories (and gradients) fade, hold or grow.",
    "shape": "Where inputs go in and answers come out: one-to-one, one-to-many, many-to-one, many-to-many (aligned) "
             "and encoder-decoder.",
    "bidirectional": "Two recurrences over the same sequence, one left to right and one right to left, their states "
                     "joined at every step: each output sees the whole sequence.",
}


def term_anchor(term: str) -> str:
    """The glossary anchor of a term: "g-" + its words in lower case joined by hyphens ("BPTT, ‖dL/dh_t‖" ->
    "g-bptt-dl-dh-t")."""
    out, prev = [], "-"
    for ch in term.lower():
        if ch.isalnum() or ch in "ρ'":
            ch = "" if ch == "'" else ch
            out.append(ch)
            prev = ch
        elif prev != "-":
            out.append("-")
            prev = "-"
    return "g-" + "".join(out).strip("-")


# ---- progress: answered / right per step, in a link ------------------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """The student's answer at one step."""

    picked: tuple[int, ...]  # indices of the choices picked (one for a single-answer question)
    right: bool | None  # whether the live model agreed when it was revealed (None: not revealed yet)


def encode_progress(progress: dict[str, Answer]) -> str:
    """{step key: Answer} -> "1y.0n..-.." : one field per step in STEPS order, "" for unanswered, else the picked
    indices joined by "-" and y / n / ? (right, wrong, not revealed). Trailing empty fields are dropped."""
    fields = []
    for step in STEPS:
        a = progress.get(step.key)
        if a is None or not a.picked:
            fields.append("")
            continue
        mark = "?" if a.right is None else ("y" if a.right else "n")
        fields.append("-".join(str(i) for i in a.picked) + mark)
    return ".".join(fields).rstrip(".")


def decode_progress(text: str | None) -> dict[str, Answer]:
    """The inverse of ``encode_progress``; a field that does not fit its step (a choice it does not have, a bad
    mark) is dropped, never an error: a hand-edited link still opens."""
    out: dict[str, Answer] = {}
    if not text:
        return out
    for step, f in zip(STEPS, str(text)[:400].split(".")):
        if len(f) < 2 or f[-1] not in "yn?":
            continue
        try:
            picked = tuple(sorted({int(p) for p in f[:-1].split("-")}))
        except ValueError:
            continue
        if not picked or any(not 0 <= p < len(step.choices) for p in picked) or (len(picked) > 1 and not step.multi):
            continue
        out[step.key] = Answer(picked, None if f[-1] == "?" else f[-1] == "y")
    return out


def is_right(step: Step, picked: tuple[int, ...], reveal: Reveal) -> bool:
    """A single-answer question is right when the pick is the model's answer; a multi-answer one when the set of
    picks equals the set the model makes right."""
    return set(picked) == set(reveal.right)


def score(progress: dict[str, Answer]) -> tuple[int, int]:
    """(answered, right) over the lesson's steps."""
    answered = [a for k, a in progress.items() if k in STEP_KEYS and a.picked]
    return len(answered), sum(1 for a in answered if a.right)


def step_index(value) -> int:
    """A 1-based step number from a link ("3") -> 0-based index, clamped to the lesson; anything else -> 0."""
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return 0
    return min(max(n, 1), len(STEPS)) - 1


__all__ = ["STEPS", "STEP_KEYS", "Step", "Reveal", "Models", "Answer", "TinyRNN", "train_tiny", "shared_tiny", "recurrence_steps",
           "stepwise_path", "parse_bits", "encode_progress", "decode_progress", "is_right", "score", "step_index",
           "recall_race", "race_in_background", "race_records", "LESSON_TERMS", "term_anchor"]
