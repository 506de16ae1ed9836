"""Music: give the first note (or chord), and the network writes the chorale -- one-to-many on the JSB Chorales.

The lesson's one-to-many example: each generated frame is fed back in as the next input. A frame is the piano roll
of one quarter note: 88 keys, each on or off, predicted as 88 independent Bernoulli variables given the past.

Metric (the benchmark's usual one, Boulanger-Lewandowski et al. 2012; Chung et al. 2014):
    nll = sum over test frames of  -sum_{k=1..88} log p(key k as it is | earlier frames)  /  number of test frames
in nats, every frame of every chorale counted once (so long chorales weigh more). The first frame of a chorale has
no musical context: it is predicted from a silent start frame (the model's learned opening distribution) and
counted like any other. ``nll_after_first`` leaves the first frames out (predict f_2..f_T from f_1..f_{T-1}, the
convention of e.g. Bai et al. 2018).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from core.task import BadInput, Demo, Display, Headline, Metric, Recipe, Splits, Task
from tasks.music import data as D
from tasks.music import model as M

FIRST_DEFAULT = [60, 64, 67]  # C4 E4 G4: a C major triad


class MusicTask(Task):
    name = "music"
    title = "Music (one-to-many)"
    shape = "one_to_many"
    summary = ("Pick a first note or chord; a recurrent network trained on 229 Bach chorales writes on, one quarter "
               "note at a time.")
    config = {"cell": "gru", "input_size": 128, "hidden_size": 256, "num_layers": 1, "dropout": 0.5}
    recipe = Recipe(
        metric="nll",
        higher_is_better=False,
        epochs=30,  # the budget per cell; with lr decay and early stopping the best epoch is usually 10-20
        batch_size=8,  # 229 chorales -> 29 updates per epoch; small batches learn JSB fastest per CPU second
        lr=5e-3,  # high, then decayed: JSB overfits within ~15 epochs, so the first epochs must count
        weight_decay=0.0,  # dropout 0.5 regularises enough; weight decay added nothing measurable
        clip_norm=1.0,  # the tanh-RNN needs it; harmless for the gated cells
        patience=5,  # epochs without validation improvement; the best epoch's weights are kept
        max_minutes=4.5,  # per cell, a wall-clock cap: 3 cells x 4.5 min + loading stays under 15 minutes
        lr_decay=0.9,  # x0.9 per epoch: 5e-3 -> ~6e-4 by epoch 20
        variants={"rnn_tanh": {"cell": "rnn_tanh"}, "gru": {"cell": "gru"}, "lstm": {"cell": "lstm"}},
        keep_variants=True,
        anchors={
            "Chung et al. 2014, Table 2 (JSB Chorales, test NLL/step)": "tanh-RNN 9.10, GRU 8.54, LSTM 8.67",
            "Boulanger-Lewandowski et al. 2012 (JSB, test NLL/step)": "RNN-RBM 6.27, RNN-NADE 5.83 (the level to "
                                                                      "chase)",
            "Bai et al. 2018 (JSB, test NLL/step, first frame not counted)": "LSTM 8.45, GRU 8.43, RNN 8.72, TCN 8.10",
        },
    )
    page = "tasks.music.page:render"
    data_subdir = "music/jsb_chorales"
    data_source = ("JSB Chorales, Boulanger-Lewandowski, Bengio & Vincent (ICML 2012) split, via GitHub "
                   "czhuang/JSB-Chorales-dataset (jsb-chorales-quarter.json); Bach's music is public domain")
    primary_input = "settings"
    input_type = dict  # settings: {"first": notes, "steps", "temperature", "top_k", "seed"} (a str: the first notes)
    headlines = (Headline("nll", "<= 8.5"),)  # the README's Models table
    display = Display(  # the words for the card's metrics and variants (core.task.check_task holds the card to them)
        metrics={"nll": Metric("negative log-likelihood per time step (88 keys)", "nats", "lower"),
                 "nll_after_first": Metric("the same, leaving out each chorale's first step", "nats", "lower"),
                 "frame_accuracy": Metric("notes right per step (hits / (hits + misses + extras))", "%"),
                 "frames": Metric("time steps scored", "", "")},
        inputs="a first note or chord, the length and the sampling settings")

    # ---- model -------------------------------------------------------------------------------------------------
    def build_model(self, config: dict, meta: dict) -> nn.Module:
        return M.build(config, meta.get("key_log_odds"))

    # ---- data --------------------------------------------------------------------------------------------------
    def load_data(self, data_dir) -> Splits:
        path = Path(data_dir) / D.FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: the music task reads {D.FILE} from its data directory")
        s = D.load_json(path)
        return Splits(train=s["train"], val=s["valid"], test=s["test"], meta=self._meta(s["train"]), files=[path],
                      dataset=self._describe(s, f"JSB Chorales {D.FILE}"))

    def synthetic_data(self, seed: int = 0) -> Splits:
        train = D.synthetic_chorales(24, seed)
        return Splits(train=train, val=D.synthetic_chorales(6, seed + 1), test=D.synthetic_chorales(6, seed + 2),
                      meta=self._meta(train), dataset="synthetic: I-IV-V-vi triad walks, 24/6/6 chorales")

    def _meta(self, train: D.Chorales) -> dict:
        return {"keys": D.KEYS, "lowest_pitch": D.LOW, "highest_pitch": D.HIGH, "step": "quarter note",
                "key_log_odds": D.key_log_odds(train)}

    def _describe(self, s: dict, name: str) -> str:
        counts = "/".join(str(len(s[k])) for k in D.SPLITS)
        steps = "/".join(f"{s[k].steps:,}" for k in D.SPLITS)
        return (f"{name}: train/valid/test {counts} chorales, {steps} quarter-note frames of 88 keys (MIDI 21-108). "
                "Metric nll: test negative log-likelihood in nats per frame, summed over the 88 keys (independent "
                "Bernoulli per key) and averaged over all test frames; each chorale's first frame is predicted from "
                "a silent start frame and counted. nll_after_first: the same without first frames.")

    def batches(self, data, batch_size: int, shuffle: bool, seed: int = 0):
        return D.batches(data, batch_size, shuffle, seed)

    def loss(self, model: nn.Module, batch: dict) -> torch.Tensor:
        logits = model(batch["x"])  # (B, T, 88); causal, so padding after a chorale's end never reaches its frames
        return M.masked_mean_nll(logits, batch["y"], batch["mask"])

    def evaluate(self, model: nn.Module, data) -> dict[str, float]:
        was_training = model.training
        model.eval()
        nll = nll_first = frames = firsts = 0.0
        tp = fp = fn = 0.0
        dev = next(model.parameters()).device
        with torch.no_grad():
            for b in D.batches(data, 32, shuffle=False):
                b = {k: v.to(dev) if torch.is_tensor(v) else v for k, v in b.items()}
                logits = model(b["x"])  # (B, T, 88)
                step = M.step_nll(logits, b["y"]).double() * b["mask"].double()  # (B, T)
                nll += float(step.sum())
                nll_first += float(step[:, 0].sum())
                frames += float(b["mask"].sum())
                firsts += float(b["mask"][:, 0].sum())
                on = (logits > 0).float() * b["mask"][..., None]  # (B, T, 88) the most likely state of each key
                y = b["y"]
                tp += float((on * y).sum())
                fp += float((on * (1 - y)).sum())
                fn += float(((1 - on) * y * b["mask"][..., None]).sum())
        model.train(was_training)
        return {"nll": nll / max(frames, 1), "nll_after_first": (nll - nll_first) / max(frames - firsts, 1),
                "frame_accuracy": tp / max(tp + fp + fn, 1), "frames": frames}

    # ---- serving -----------------------------------------------------------------------------------------------
    def demos(self) -> list[Demo]:
        return [
            Demo("C major chord", {"first": [60, 64, 67], "steps": 64, "temperature": 1.0, "top_k": 4, "seed": 0},
                 "the most common opening: see whether it finds a cadence"),
            Demo("A minor, low temperature", {"first": [57, 60, 64, 69], "steps": 64, "temperature": 0.6,
                                              "top_k": 4, "seed": 1}, "cooler sampling: safer, more repetitive"),
            Demo("One note: G4", {"first": [67], "steps": 48, "temperature": 1.0, "top_k": 4, "seed": 2},
                 "from a single note the network must invent the harmony"),
            Demo("Hot: temperature 1.6", {"first": [62, 66, 69, 74], "steps": 48, "temperature": 1.6, "top_k": 6,
                                          "seed": 3}, "flatter probabilities: more surprising, less Bach"),
        ]

    def parse_input(self, input: Any) -> dict:
        """Validate and normalise a predict() input; BadInput with a readable message for anything unusable."""
        if isinstance(input, str):
            input = {"first": input}
        if not isinstance(input, dict):
            raise BadInput("give a dict of settings, e.g. {'first': ['C4', 'E4', 'G4'], 'steps': 64}")
        notes: list[str] = []
        spec = {"steps": _int(input.get("steps", 64), "steps"), "temperature": _float(input.get("temperature", 1.0)),
                "top_k": _int(input.get("top_k", 4) or 0, "top_k"), "seed": _int(input.get("seed", 0) or 0, "seed"),
                "step_seconds": 0.6}
        if not 1 <= spec["steps"] <= M.MAX_STEPS:
            notes.append(f"length {spec['steps']} is outside 1..{M.MAX_STEPS}; clamped")
            spec["steps"] = min(max(spec["steps"], 1), M.MAX_STEPS)
        if not 0.05 <= spec["temperature"] <= 5.0:
            notes.append(f"temperature {spec['temperature']:g} is outside 0.05..5; clamped")
            spec["temperature"] = min(max(spec["temperature"], 0.05), 5.0)
        spec["top_k"] = min(max(spec["top_k"], 0), D.KEYS)
        spec["seed"] = spec["seed"] % (2 ** 63)
        primer = input.get("primer_midi")
        if primer is not None:
            try:
                spec["primer"], msgs = M.midi_to_steps(primer)
            except ValueError as exc:
                raise BadInput(f"cannot use this MIDI file: {exc}") from None
            notes += msgs
        else:
            spec["primer"] = [_first_chord(input.get("first", FIRST_DEFAULT))]
        spec["notes"] = notes
        return spec

    def _generate(self, model: nn.Module, spec: dict) -> dict:
        primer = D.steps_to_roll(spec["primer"])  # (T0, 88)
        first = torch.cat([torch.zeros(1, D.KEYS), primer])[None]  # (1, 1+T0, 88): silent start frame in front
        dev = next(model.parameters()).device
        out = model.generate(first.to(dev), spec["steps"], temperature=spec["temperature"],
                             top_k=spec["top_k"] or None, seed=spec["seed"])
        seq = out["sequence"][0, 1:].cpu()  # (T0+steps, 88) without the start frame
        probs = out["probs"][0].cpu()  # (steps, 88) the distribution each generated frame was drawn from
        return {"seq": seq, "probs": probs, "primer_steps": int(primer.shape[0])}

    def predict(self, model: nn.Module, input: Any) -> dict:
        spec = self.parse_input(input)
        with torch.inference_mode():
            g = self._generate(model, spec)
            roll = D.roll_to_steps(g["seq"])
            n0 = g["primer_steps"]
            probs: list[list[float] | None] = [None] * n0
            for t, pitches in enumerate(roll[n0:]):
                probs.append([round(float(g["probs"][t, p - D.LOW]), 4) for p in pitches])
            step_nll = self._piece_nll(model, g["seq"])  # (T,) the model's surprise at each frame, temperature 1
        return {"roll": roll, "names": [[D.pitch_name(p) for p in ps] for ps in roll], "primer_steps": n0,
                "probs": probs, "step_nll": [round(float(v), 4) for v in step_nll],
                "nll": float(step_nll.mean()), "midi": M.roll_to_midi(roll, spec["step_seconds"]),
                "step_seconds": spec["step_seconds"], "notes": spec["notes"],
                "settings": {k: spec[k] for k in ("steps", "temperature", "top_k", "seed")}}

    def _piece_nll(self, model: nn.Module, seq: torch.Tensor) -> torch.Tensor:
        """(T, 88) piece -> (T,) NLL of each frame given the ones before it (frame 1 from the start frame)."""
        x = torch.cat([torch.zeros(1, D.KEYS), seq[:-1]])[None]  # (1, T, 88)
        dev = next(model.parameters()).device
        logits = model(x.to(dev))  # (1, T, 88)
        return M.step_nll(logits, seq[None].to(dev))[0].cpu()  # (T,)

    def inspect_loss(self, model: nn.Module, input: Any) -> tuple[torch.Tensor, list[str]]:
        """NLL (per frame, summed over keys) of the generated piece, the model's own samples as targets. Step t of
        the recurrence reads frame t (t0 = the silent start frame) and predicts frame t+1."""
        roll = input.get("roll") if isinstance(input, dict) else None
        if roll is not None:
            try:
                seq = D.steps_to_roll(roll)
            except (TypeError, ValueError) as exc:
                raise BadInput(f"cannot inspect this piece: {exc}") from None
        else:
            from core.layers import recording

            spec = self.parse_input(input)
            with recording(), torch.no_grad():  # generation's own steps stay out of the inspector's trace
                seq = self._generate(model, spec)["seq"]
        if len(seq) == 0:
            raise BadInput("the piece is empty: nothing to inspect")
        seq = seq[:M.MAX_STEPS]
        x = torch.cat([torch.zeros(1, D.KEYS), seq[:-1]])[None]  # (1, T, 88)
        dev = next(model.parameters()).device
        logits = model(x.to(dev))  # (1, T, 88)
        loss = M.step_nll(logits, seq[None].to(dev)).mean()
        steps = D.roll_to_steps(seq)
        labels = ["t0: start"] + [f"t{t + 1}: " + (" ".join(D.pitch_name(p) for p in ps) or "rest")
                                  for t, ps in enumerate(steps[:-1])]
        return loss, labels


def _int(v: Any, what: str) -> int:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise BadInput(f"{what} must be a whole number, got {str(v)[:40]!r}") from None
    except OverflowError:  # 10**400 and friends
        raise BadInput(f"{what} is far too large") from None
    if not math.isfinite(f):
        raise BadInput(f"{what} must be a finite number")
    return int(f)


def _float(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise BadInput(f"temperature must be a number, got {str(v)[:40]!r}") from None
    except OverflowError:
        raise BadInput("temperature is far too large") from None
    if not math.isfinite(f) or f <= 0:
        raise BadInput("temperature must be a positive number (1.0 samples the model as trained)")
    return f


def _first_chord(first: Any) -> list[int]:
    """'C4 E4 G4' / ['C4', 64, '67'] / 60 -> sorted MIDI pitches on the keyboard (may be empty: start from silence)."""
    if first is None:
        return []
    if isinstance(first, (int, str)):
        first = [first] if isinstance(first, int) else [t for t in re.split(r"[\s,;+]+", first.strip()) if t]
    if not isinstance(first, (list, tuple)):
        raise BadInput("the first chord must be a list of notes such as ['C4', 'E4', 'G4'] or MIDI numbers")
    if len(first) > D.KEYS:
        raise BadInput(f"a chord has at most {D.KEYS} notes")
    out = set()
    for n in first:
        try:
            p = D.parse_pitch(n)
        except (ValueError, TypeError):
            raise BadInput(f"not a note: {str(n)[:20]!r} (write e.g. C4, F#3, Bb2 or a MIDI number 21-108)") from None
        if not D.LOW <= p <= D.HIGH:
            raise BadInput(f"{str(n)[:20]} (MIDI {p}) is off the piano: notes must be A0..C8 (MIDI 21-108)")
        out.add(p)
    return sorted(out)


TASK = MusicTask()
