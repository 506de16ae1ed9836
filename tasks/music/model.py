"""The music model, its loss, and everything between a piece and a MIDI file / a WAV.

Model: core.shapes.OneToMany(output="bernoulli") over 88-key frames. Frame in (88 -> input_size linear), one
recurrent layer (tanh-RNN, GRU or LSTM from core.layers.Recurrent), 88 independent logits out: the probability
that each key sounds at the next quarter note, given every frame so far.
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.data import config_from_dict
from core.shapes import OneToMany
from tasks.music.data import HIGH, KEYS, LOW

MAX_MIDI_BYTES = 1_000_000  # checked before parsing: a chorale primer is a few kB
MAX_MIDI_NOTES = 50_000  # more notes than this is not a primer (and parsing/quantising it would stall the page)
MAX_PRIMER_STEPS = 64  # a longer upload is cut to its last 64 quarter notes (the user is told)
MAX_STEPS = 512  # longest generation the page/predict allows
MAX_MIDI_SECONDS = 1800.0  # a primer longer than 30 minutes is not a primer (and its beat grid would stall the page)


@dataclass
class MusicConfig:
    """Constructor arguments of build_model (stored on the card)."""

    cell: str = "gru"  # rnn_tanh | gru | lstm: the three cells Chung et al. (2014) compared on this data
    input_size: int = 128  # a frame (88 keys) is mapped linearly to this many features before the recurrence
    hidden_size: int = 256  # 0.1-0.3 M parameters: enough for JSB (13.8k training frames), minutes on one CPU thread
    num_layers: int = 1  # one layer already reaches the benchmark's level; a second mostly overfits JSB
    dropout: float = 0.5  # on the frame features and on the hidden state before the head: JSB is tiny and overfits


def build(config: dict, key_log_odds: list[float] | None = None) -> OneToMany:
    c = config_from_dict(MusicConfig, config)
    model = OneToMany(vocab_size=KEYS, input_size=c.input_size, hidden_size=c.hidden_size, cell=c.cell,
                      num_layers=c.num_layers, dropout=c.dropout, output="bernoulli")
    if key_log_odds is not None and len(key_log_odds) == KEYS:
        # Start each key's output bias at its log-odds in the training frames: most keys are almost never on, and
        # from a bias of 0 (p = 0.5 for all 88 keys, ~61 nats/frame) the clipped early updates spend epochs just
        # learning that. Measured on JSB: ~2x fewer epochs to the same validation NLL.
        with torch.no_grad():
            model.head.bias.copy_(torch.tensor(key_log_odds))
    return model


def step_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, T, 88) logits, (B, T, 88) 0/1 targets -> (B, T) NLL in nats of each frame: the sum over the 88 keys
    of -log p(key as it is), each key an independent Bernoulli."""
    return F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none").sum(-1)


def masked_mean_nll(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean per-frame NLL over the real (mask = 1) frames of a batch."""
    nll = step_nll(logits, target)  # (B, T)
    return (nll * mask).sum() / mask.sum().clamp(min=1)


# ---- pieces <-> MIDI / audio -------------------------------------------------------------------------------------


def roll_to_midi(steps: list[list[int]], step_seconds: float = 0.6, program: int = 19) -> bytes:
    """[[pitches] per quarter note] -> MIDI file bytes. A pitch sounding on consecutive steps becomes one held note
    (the data does not distinguish held from repeated notes; held is how a chorale is sung). Program 19 = church
    organ in General MIDI."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=60.0 / step_seconds)
    inst = pretty_midi.Instrument(program=program, name="RNN Lab")
    open_notes: dict[int, int] = {}  # pitch -> start step
    for t, pitches in enumerate(list(steps) + [[]]):
        now = set(pitches)
        for p in [p for p in open_notes if p not in now]:
            inst.notes.append(pretty_midi.Note(velocity=80, pitch=p, start=open_notes.pop(p) * step_seconds,
                                               end=t * step_seconds))
        for p in now:
            open_notes.setdefault(p, t)
    inst.notes.sort(key=lambda n: (n.start, n.pitch))
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def midi_to_steps(data: bytes) -> tuple[list[list[int]], list[str]]:
    """MIDI bytes -> ([[pitches] per quarter note], notes for the user). Raises ValueError with a readable message
    for anything that is not a usable MIDI file. Quantised like the dataset: the pitches sounding at each beat."""
    if not isinstance(data, (bytes, bytearray)) or len(data) == 0:
        raise ValueError("the file is empty")
    if len(data) > MAX_MIDI_BYTES:
        raise ValueError(f"the file is {len(data) / 1e6:.1f} MB; the limit for a primer is "
                         f"{MAX_MIDI_BYTES / 1e6:.0f} MB")
    if bytes(data[:4]) != b"MThd":
        raise ValueError("this is not a MIDI file (it does not start with the MIDI header 'MThd')")
    import mido
    import pretty_midi

    try:  # count notes on mido's raw events first: pretty_midi's note building is the slow part of a huge file
        raw = mido.MidiFile(file=io.BytesIO(bytes(data)))
        n_on = sum(1 for tr in raw.tracks for m in tr if m.type == "note_on" and m.velocity > 0)
    except Exception:  # noqa: BLE001 -- mido raises EOFError, OSError, ValueError, KeyError ...
        raise ValueError("the MIDI file is corrupted or cut short and cannot be read; try another MIDI file") from None
    if n_on > MAX_MIDI_NOTES:
        raise ValueError(f"the MIDI file has {n_on:,} notes; a primer may have at most {MAX_MIDI_NOTES:,}")
    # pretty_midi builds a tick->time table as long as the file: check the length on mido's events first.
    max_tick = max((sum(m.time for m in tr) for tr in raw.tracks), default=0)
    if max_tick > 2_000_000 or (raw.ticks_per_beat and max_tick / raw.ticks_per_beat > 20_000):
        raise ValueError(f"the MIDI file is far too long for a primer (over {MAX_MIDI_SECONDS / 60:.0f} minutes)")
    try:
        pm = pretty_midi.PrettyMIDI(io.BytesIO(bytes(data)))
    except Exception:  # noqa: BLE001 -- mido/pretty_midi raise many types (EOFError, KeyError, OSError, ValueError ...)
        raise ValueError("the MIDI file is corrupted or cut short and cannot be read; try another MIDI file") from None
    notes = [n for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    if len(notes) > MAX_MIDI_NOTES:
        raise ValueError(f"the MIDI file has {len(notes):,} notes; a primer may have at most {MAX_MIDI_NOTES:,}")
    if not notes:
        raise ValueError("the MIDI file has no (non-drum) notes to continue")
    messages = []
    if max(n.end for n in notes) > MAX_MIDI_SECONDS:
        raise ValueError(f"the MIDI file lasts over {MAX_MIDI_SECONDS / 60:.0f} minutes; a primer must be shorter")
    try:
        beats = pm.get_beats()
    except Exception:  # noqa: BLE001 -- odd tempo maps: fall back to 120 bpm
        beats = np.array([])
    end = max(n.end for n in notes)
    if len(beats) < 2 or not np.all(np.isfinite(beats)):
        beats = np.arange(0.0, end, 0.5)
    step = float(np.median(np.diff(beats))) if len(beats) > 1 else 0.5
    beats = beats[beats < end - 0.25 * step]  # a beat needs some sound after it (tick rounding puts one at the end)
    if len(beats) == 0:
        beats = np.array([0.0])
    if len(beats) > MAX_PRIMER_STEPS:
        messages.append(f"the file is {len(beats)} beats long; only its last {MAX_PRIMER_STEPS} beats are used as "
                        "the primer")
        beats = beats[-MAX_PRIMER_STEPS:]
    starts = np.array([n.start for n in notes])
    ends = np.array([n.end for n in notes])
    pitches = np.array([n.pitch for n in notes])
    # A note counts at a beat if it sounds there or starts within the first quarter of the beat; a note must also
    # sound for a tenth of a beat after it (tick rounding leaves notes ending a hair after the next beat).
    steps, dropped = [], 0
    for b in beats:
        on = (starts <= b + 0.25 * step) & (ends > b + 0.1 * step)
        ps = sorted(set(int(p) for p in pitches[on]))
        keep = [p for p in ps if LOW <= p <= HIGH]
        dropped += len(ps) - len(keep)
        steps.append(keep)
    if dropped:
        messages.append(f"{dropped} notes outside the piano's 88 keys were left out")
    if not any(steps):
        raise ValueError("the MIDI file has no notes on the quarter-note grid to continue")
    return steps, messages


def organ_wave(phase: np.ndarray) -> np.ndarray:
    """A few harmonics: softer than a bare sine, closer to the organ a chorale is played on."""
    return np.sin(phase) + 0.35 * np.sin(2 * phase) + 0.15 * np.sin(3 * phase)


FLUIDSYNTH = "fluidsynth"  # Debian's command-line synthesiser (packages.txt)
SOUNDFONT = "TimGM6mb.sf2"  # the General MIDI soundfont that comes with pretty_midi
FLUIDSYNTH_WORDS = "FluidSynth (the General MIDI soundfont that comes with the pretty-midi library)"


def fluidsynth_process(midi_bytes: bytes, fs: int, timeout: float = 60.0) -> np.ndarray | None:
    """MIDI bytes -> mono samples rendered by the ``fluidsynth`` command in a process of its own (its libraries and
    soundfont then never load into the app's process: about 8 MiB less per server); None where the command or the
    soundfont is missing or the render fails."""
    import pretty_midi

    exe, sf2 = shutil.which(FLUIDSYNTH), Path(pretty_midi.__file__).parent / SOUNDFONT
    if exe is None or not sf2.is_file():
        return None
    with tempfile.TemporaryDirectory(prefix="rnnlab-music-") as d:
        mid, out = Path(d) / "piece.mid", Path(d) / "piece.wav"
        mid.write_bytes(midi_bytes)
        try:
            subprocess.run([exe, "-ni", "-q", "-F", str(out), "-r", str(int(fs)), "-T", "wav", str(sf2), str(mid)],
                           capture_output=True, timeout=timeout, check=True)
            with wave.open(str(out)) as w:
                channels, width, frames = w.getnchannels(), w.getsampwidth(), w.readframes(w.getnframes())
        except (OSError, subprocess.SubprocessError, wave.Error, EOFError):
            return None
    if width != 2 or not frames:
        return None
    audio = np.frombuffer(frames, dtype="<i2").reshape(-1, channels).astype(np.float64).mean(axis=1)  # (N,)
    loud = np.flatnonzero(np.abs(audio) > 0.01 * max(float(np.abs(audio).max()), 1.0))  # above -40 dB
    return audio[: loud[-1] + 1 + fs // 20] if loud.size else audio  # the render's near-silent tail cut (50 ms kept)


def render_wav(midi_bytes: bytes, fs: int = 22050) -> tuple[bytes | None, str]:
    """MIDI bytes -> (16-bit mono WAV bytes, which renderer) or (None, reason). FluidSynth with pretty_midi's
    bundled General MIDI soundfont where Debian's ``fluidsynth`` command is installed, else additive synthesis."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(io.BytesIO(midi_bytes))
    if not any(inst.notes for inst in pm.instruments):
        return None, "the piece has no notes (silence)"
    audio, how = fluidsynth_process(midi_bytes, fs), FLUIDSYNTH_WORDS
    if audio is None or len(audio) == 0:
        audio, how = pm.synthesize(fs=fs, wave=organ_wave, normalize=False), "sine synthesis (pretty_midi.synthesize)"
    audio = np.nan_to_num(np.asarray(audio, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if audio.size == 0 or peak == 0.0 or not math.isfinite(peak):
        return None, "the piece rendered to silence"
    pcm = (audio / peak * 0.8 * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(fs)
        w.writeframes(pcm.tobytes())
    return buf.getvalue(), how
