"""JSB Chorales as piano rolls: 88 binary keys (MIDI 21..108) per quarter-note step.

The file is Boulanger-Lewandowski et al.'s (2012) split as JSON: {"train": [...], "valid": [...], "test": [...]},
each chorale a list of time steps, each step a list of the MIDI pitches sounding then (possibly empty).

A batch is teacher-forced next-frame prediction with one silent "start" frame in front:
    inputs  x = [start, f_1, ..., f_{T-1}]   (B, T, 88)
    targets y = [f_1, f_2, ..., f_T]         (B, T, 88)
so every frame of a chorale is predicted, the first one from the start frame alone (no musical context).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

LOW, HIGH = 21, 108  # piano range A0..C8, the benchmark's 88 keys
KEYS = HIGH - LOW + 1
FILE = "jsb-chorales-quarter.json"
SPLITS = ("train", "valid", "test")
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def pitch_name(p: int) -> str:
    """MIDI pitch -> scientific name, middle C (60) = C4."""
    return f"{NOTE_NAMES[p % 12]}{p // 12 - 1}"


def parse_pitch(s: str | int) -> int:
    """'C4', 'F#3', 'Bb2', or a MIDI number (int or digits) -> MIDI pitch. ValueError if it is neither."""
    if isinstance(s, bool):
        raise ValueError(f"not a pitch: {s!r}")
    if isinstance(s, int):
        return s
    t = str(s).strip()
    if t.lstrip("-").isdigit():
        return int(t)
    flats = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#", "Cb": "B", "Fb": "E", "E#": "F", "B#": "C"}
    i = 2 if len(t) > 1 and t[1] in "#b" else 1
    name, octave = t[:i], t[i:]
    name = name[0].upper() + name[1:]
    shift = 0
    if name in ("Cb",):
        shift = -12  # Cb4 is B3
    if name in ("B#",):
        shift = 12  # B#3 is C4
    name = flats.get(name, name)
    if name not in NOTE_NAMES or not octave.lstrip("-").isdigit():
        raise ValueError(f"not a pitch name: {s!r} (write e.g. C4, F#3, Bb2 or a MIDI number)")
    return NOTE_NAMES.index(name) + 12 * (int(octave) + 1) + shift


@dataclass
class Chorales:
    """One split: each chorale a (T, 88) float tensor of 0/1."""

    rolls: list[torch.Tensor]

    def __len__(self) -> int:
        return len(self.rolls)

    @property
    def steps(self) -> int:
        return sum(int(r.shape[0]) for r in self.rolls)


def steps_to_roll(steps: list[list[int]]) -> torch.Tensor:
    """[[pitches] per step] -> (T, 88) multi-hot. Pitches outside the piano are an error (the data never has any)."""
    roll = torch.zeros(len(steps), KEYS)
    for t, pitches in enumerate(steps):
        for p in pitches:
            p = int(p)
            if not LOW <= p <= HIGH:
                raise ValueError(f"pitch {p} at step {t} is outside the 88 keys {LOW}..{HIGH}")
            roll[t, p - LOW] = 1.0
    return roll


def roll_to_steps(roll: torch.Tensor) -> list[list[int]]:
    """(T, 88) multi-hot -> [[pitches] per step], ascending."""
    return [[int(k) + LOW for k in torch.nonzero(row > 0.5).flatten().tolist()] for row in roll]


def key_log_odds(data: Chorales) -> list[float]:
    """log(p / (1 - p)) of each key sounding in a split's frames (p clamped to [1e-4, 1 - 1e-4]): the output bias
    a model with no context would use."""
    p = torch.cat(data.rolls).mean(0).clamp(1e-4, 1 - 1e-4)  # (88,)
    return [round(float(v), 4) for v in torch.log(p / (1 - p))]


def load_json(path: Path) -> dict[str, Chorales]:
    """Read the benchmark JSON as it is; check its shape so a wrong file fails with a readable message."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, dict) or any(k not in raw for k in SPLITS):
        raise ValueError(f"{path}: expected a JSON object with keys {', '.join(SPLITS)}")
    out = {}
    for k in SPLITS:
        chorales = raw[k]
        if not isinstance(chorales, list) or not chorales:
            raise ValueError(f"{path}: split {k!r} must be a non-empty list of chorales")
        rolls = []
        for i, ch in enumerate(chorales):
            if not isinstance(ch, list) or not ch or not all(isinstance(s, list) for s in ch):
                raise ValueError(f"{path}: {k}[{i}] must be a non-empty list of time steps (lists of pitches)")
            rolls.append(steps_to_roll(ch))
        out[k] = Chorales(rolls)
    return out


def synthetic_chorales(n: int, seed: int) -> Chorales:
    """Tiny fake chorales: four-voice triads on a I-IV-V-I walk in a random key, 8..20 quarter notes each."""
    rng = random.Random(seed)
    degrees = {"I": (0, 4, 7), "IV": (5, 9, 12), "V": (7, 11, 14), "vi": (9, 12, 16)}
    nxt = {"I": ["IV", "V", "vi"], "IV": ["V", "I"], "V": ["I", "vi"], "vi": ["IV", "V"]}
    rolls = []
    for _ in range(n):
        key = rng.randint(-5, 6)
        chord, steps = "I", []
        for _ in range(rng.randint(8, 20)):
            root, third, fifth = (48 + key + d for d in degrees[chord])
            steps.append(sorted({root, third + 12, fifth + 12, root + 24}))
            chord = rng.choice(nxt[chord])
        rolls.append(steps_to_roll(steps))
    return Chorales(rolls)


def batches(data: Chorales, batch_size: int, shuffle: bool, seed: int = 0) -> Iterable[dict]:
    """Padded batches: {"x": (B, T, 88) inputs, "y": (B, T, 88) targets, "mask": (B, T) 1 on real steps,
    "lengths": (B,)}."""
    order = list(range(len(data.rolls)))
    rng = random.Random(seed)
    chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if shuffle:
        # Chorales of similar length share a batch (less padding: ~1/3 less compute than random batches); the
        # jitter and the shuffled batch order keep every epoch different.
        order.sort(key=lambda j: int(data.rolls[j].shape[0]) + rng.uniform(-12, 12))
        chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
        rng.shuffle(chunks)
    for idx in chunks:
        rolls = [data.rolls[j] for j in idx]
        T = max(int(r.shape[0]) for r in rolls)
        B = len(rolls)
        x = torch.zeros(B, T, KEYS)
        y = torch.zeros(B, T, KEYS)
        mask = torch.zeros(B, T)
        for b, r in enumerate(rolls):
            n = int(r.shape[0])
            y[b, :n] = r
            x[b, 1:n] = r[:-1]  # x[b, 0] stays the silent start frame
            mask[b, :n] = 1.0
        yield {"x": x, "y": y, "mask": mask, "lengths": mask.sum(1).long()}
