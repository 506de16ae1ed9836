"""Clips for the video task: one digit at a time moving and bouncing over a 64x64 canvas, every frame labelled.

The recipe is Moving MNIST's (Srivastava et al. 2015) -- real MNIST digits slid over a black canvas -- with one
change that makes the order of frames matter: some frames are *unreadable* on their own. A frame is either

  readable   the digit (or the empty canvas) is in plain view, under light grain
  occluded   a grey block covers the digit's whole 28x28 patch (blocks also fall on empty canvas, so a block
             says nothing about what is behind it)
  static     the frame is lost to noise: not one pixel of the scene survives

The label of every frame is the digit in the scene, or "empty". Unreadable frames take the label of the scene
they belong to, so only the frames around them can tell it. Two rules keep every label answerable from context:
the first and last frame of every run (a digit's stay, or an empty stretch) are readable, so the readable frames
on either side of an unreadable one belong to its own run. Unreadable frames may still open a clip: a one-way
reader has nothing before them, a two-way reader has what follows -- the measured case for bidirectionality.

Everything is drawn from a seeded numpy Generator; the structure of a clip (runs, motion, which frames are lost,
where blocks fall) never depends on pixel values, so the same seed over two digit banks of the same size gives
the same clip with other digits in it (tests use this to show that unreadable frames carry no digit at all).

Digit banks: MNIST for training and test (``load_bank``), and digits this project renders itself with PIL
(``rendered_bank``) for the app's demos and the tests -- no MNIST image is ever shipped.
"""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

FRAMES = 20  # frames per clip: long enough for two or three digits to pass through
SIZE = 64  # canvas side in pixels (Moving MNIST's)
PATCH = 28  # MNIST digit side; a digit's top-left corner moves inside [0, SIZE - PATCH]
LABELS = [str(d) for d in range(10)] + ["empty"]
EMPTY = 10  # label id of "empty"
MIN_RUN = 3  # frames a digit stays at least: room for readable frames at both ends
KIND_NAMES = ("readable", "occluded", "static")


@dataclass
class Bank:
    """Digit images to build clips from."""

    images: np.ndarray  # (N, 28, 28) float32 in [0, 1], white ink on black
    digits: np.ndarray  # (N,) int64 class of each image
    source: str = ""  # "mnist" or "rendered"


@dataclass
class ClipSettings:
    """What a generated clip looks like. Training draws these at random per clip (``random_settings``)."""

    speed: float = 3.0  # pixels per frame the digit travels (it bounces off the canvas edges)
    occlusion: float = 0.2  # chance that a frame is covered by a block (0..0.6)
    noise: float = 0.1  # chance that a frame is lost to static (0..0.6)
    digits: int = 1  # digits that pass through the clip one after another (1..3)
    frames: int = FRAMES  # clip length
    grain: float = 0.05  # std of the light pixel noise on every frame


@dataclass
class Clip:
    frames: np.ndarray  # (T, 64, 64) float32 in [0, 1]
    labels: np.ndarray  # (T,) int64, 0..9 or EMPTY
    kind: np.ndarray  # (T,) int64: 0 readable, 1 occluded, 2 static
    images: list[int] = field(default_factory=list)  # bank index of each digit that appears, in order

    @property
    def unreadable(self) -> np.ndarray:  # (T,) bool
        return self.kind > 0


def random_settings(rng: np.random.Generator) -> ClipSettings:
    """The training / test distribution of clip settings."""
    return ClipSettings(speed=float(rng.uniform(1.0, 5.0)), occlusion=float(rng.uniform(0.0, 0.35)),
                        noise=float(rng.uniform(0.0, 0.25)), digits=int(rng.choice([1, 2, 3], p=[0.35, 0.4, 0.25])),
                        frames=FRAMES, grain=float(rng.uniform(0.0, 0.1)))


def _composition(rng: np.random.Generator, total: int, parts: int, minimum: int) -> list[int]:
    """``total`` split into ``parts`` random integers, each >= minimum."""
    spare = total - parts * minimum
    cuts = np.sort(rng.integers(0, spare + 1, size=parts - 1))
    sizes = np.diff(np.concatenate([[0], cuts, [spare]]))
    return [int(s) + minimum for s in sizes]


def timeline(rng: np.random.Generator, frames: int, digits: int) -> list[tuple[int, int, int]]:
    """Runs of the clip as (slot, start, end): slot k >= 0 is the k-th digit, -1 an empty stretch."""
    digits = max(1, min(int(digits), frames // MIN_RUN))
    room = frames - digits * MIN_RUN  # frames that may be empty
    empty = 0 if rng.random() < 0.3 or room == 0 else int(rng.integers(1, min(room, frames // 2) + 1))
    seg = _composition(rng, frames - empty, digits, MIN_RUN)
    gaps = np.bincount(rng.integers(0, digits + 1, size=empty), minlength=digits + 1).tolist()
    runs, t = [], 0
    for k in range(digits + 1):
        if gaps[k]:
            runs.append((-1, t, t + gaps[k]))
            t += gaps[k]
        if k < digits:
            runs.append((k, t, t + seg[k]))
            t += seg[k]
    return runs


def _bounce(p: float, v: float, hi: float) -> tuple[float, float]:
    """Move p by v inside [0, hi], reflecting off both ends."""
    p += v
    while p < 0 or p > hi:
        if p < 0:
            p, v = -p, -v
        if p > hi:
            p, v = 2 * hi - p, -v
    return p, v


def make_clip(rng: np.random.Generator, bank: Bank, s: ClipSettings) -> Clip:
    """One clip. Every random draw comes before or apart from the pixels, so structure depends on the seed only."""
    T, hi = int(s.frames), SIZE - PATCH
    runs = timeline(rng, T, s.digits)
    n_digits = 1 + max(slot for slot, _, _ in runs)
    picks = [int(i) for i in rng.integers(0, len(bank.images), size=n_digits)]
    slot_of = np.full(T, -1)
    for slot, a, b in runs:
        slot_of[a:b] = slot
    labels = np.array([EMPTY if k < 0 else int(bank.digits[picks[k]]) for k in slot_of], dtype=np.int64)

    # Which frames are lost: drawn per frame, then the ends of every run are made readable.
    u = rng.random(T)
    kind = np.where(u < s.noise, 2, np.where(u < s.noise + s.occlusion, 1, 0)).astype(np.int64)
    for _, a, b in runs:
        if a > 0:  # a run that opens the clip may open unreadable (only later frames can tell it)
            kind[a] = 0
        if b < T:  # the frame before a change is readable (a run that ends the clip has its past)
            kind[b - 1] = 0
        if (kind[a:b] > 0).all():  # every run shows itself at least once
            kind[(a + b - 1) // 2] = 0

    # Motion: each digit enters at a random spot and velocity and bounces off the edges.
    pos = np.zeros((T, 2))
    for slot, a, b in runs:
        if slot < 0:
            continue
        p = rng.uniform(0, hi, size=2)
        ang = rng.uniform(0, 2 * np.pi)
        v = s.speed * rng.uniform(0.7, 1.3) * np.array([np.cos(ang), np.sin(ang)])
        for t in range(a, b):
            pos[t] = p
            (p[0], v[0]), (p[1], v[1]) = _bounce(p[0], v[0], hi), _bounce(p[1], v[1], hi)

    # Blocks: over a digit they cover its whole 28x28 patch plus a random margin (so a block's size says nothing
    # about the digit's shape); over an empty canvas they fall anywhere, the same size.
    margins = rng.integers(0, 8, size=(T, 4))
    spots = rng.integers(0, hi + 1, size=(T, 2))
    shades = rng.uniform(0.35, 0.9, size=T)
    static_gain = rng.uniform(0.6, 1.0, size=T)
    # Noise comes from a fixed pool of uniform noise frames, picked and flipped at random: drawing 80k fresh
    # numbers per clip was most of the cost of making a clip (and this runs inside the training loop).
    picks_noise = rng.integers(0, NOISE_ROWS, size=(3, T))
    flips = rng.integers(0, 2, size=(3, T, 2)).astype(bool)

    def noise(j: int, t: int) -> np.ndarray:  # (64, 64) uniform in [0, 1)
        a = noise_row(int(picks_noise[j, t]))
        return a[::-1 if flips[j, t, 0] else 1, ::-1 if flips[j, t, 1] else 1]

    frames = np.zeros((T, SIZE, SIZE), dtype=np.float32)
    for t in range(T):
        if kind[t] == 2:  # static: nothing of the scene survives
            frames[t] = noise(0, t) * np.float32(static_gain[t])
            continue
        if slot_of[t] >= 0:
            y, x = int(round(pos[t, 0])), int(round(pos[t, 1]))
        else:
            y, x = int(spots[t, 0]), int(spots[t, 1])
        if slot_of[t] >= 0:
            frames[t, y:y + PATCH, x:x + PATCH] = bank.images[picks[slot_of[t]]]
        if kind[t] == 1:
            top, left = max(0, y - margins[t, 0]), max(0, x - margins[t, 1])
            bottom, right = min(SIZE, y + PATCH + margins[t, 2]), min(SIZE, x + PATCH + margins[t, 3])
            tex = noise(1, t)[top:bottom, left:right]
            frames[t, top:bottom, left:right] = shades[t] + (tex - np.float32(0.5)) * np.float32(3.46 * 0.08)
        if s.grain > 0:  # light grain, std s.grain (a uniform's std is its width / sqrt(12))
            frames[t] += (noise(2, t) - np.float32(0.5)) * np.float32(3.46 * s.grain)
    np.clip(frames, 0.0, 1.0, out=frames)
    return Clip(frames=frames, labels=labels, kind=kind, images=picks)


NOISE_ROWS, NOISE_SEED = 256, 20240611  # the pool of noise frames clips draw from, and its seed


@lru_cache(maxsize=NOISE_ROWS)
def noise_row(k: int) -> np.ndarray:
    """Frame ``k`` of a fixed pool of ``NOISE_ROWS`` (64, 64) float32 uniform noise frames, the same in every process:
    row k of ``default_rng(NOISE_SEED).random((NOISE_ROWS, 64, 64), dtype=float32)``, computed alone -- PCG64 jumps
    over the k * 4096 float32 draws before it (two per 64-bit output) -- so a process holds only the frames its
    clips used (a page showing a few clips: well under the whole pool's 4 MiB). Read-only."""
    bits = np.random.PCG64(NOISE_SEED)
    bits.advance(int(k) * SIZE * SIZE // 2)
    row = np.random.Generator(bits).random((SIZE, SIZE), dtype=np.float32)  # (64, 64)
    row.setflags(write=False)
    return row


# ---- digit banks -------------------------------------------------------------------------------------------------
def load_bank(folder: Path) -> tuple[Bank, list[Path]]:
    """Read MNIST digits from ``folder``/{0..9}.json.gz ({"data": N*784 floats}, row-major 28x28)."""
    folder = Path(folder)
    if not (folder / "0.json.gz").exists() and (folder / "mnist_digits" / "0.json.gz").exists():
        folder = folder / "mnist_digits"
    images, digits, files = [], [], []
    for d in range(10):
        path = folder / f"{d}.json.gz"
        if not path.is_file():
            raise FileNotFoundError(f"missing {path}: expected MNIST digits as {{0..9}}.json.gz")
        with gzip.open(path, "rt", encoding="utf-8") as f:
            flat = np.asarray(json.load(f)["data"], dtype=np.float32)
        if flat.size % (PATCH * PATCH):
            raise ValueError(f"{path}: {flat.size} values is not a whole number of 28x28 images")
        img = flat.reshape(-1, PATCH, PATCH)
        images.append(np.clip(img, 0.0, 1.0))
        digits.append(np.full(len(img), d, dtype=np.int64))
        files.append(path)
    return Bank(np.concatenate(images), np.concatenate(digits), "mnist"), files


def split_bank(bank: Bank, seed: int = 0, val: float = 0.1, test: float = 0.1) -> tuple[Bank, Bank, Bank]:
    """Seeded split by digit image, per class: no image is in two splits, so no test clip shows a trained image."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[], [], []]
    for d in range(10):
        idx = rng.permutation(np.flatnonzero(bank.digits == d))
        n_val, n_test = int(round(len(idx) * val)), int(round(len(idx) * test))
        parts[0] += idx[n_val + n_test:].tolist()
        parts[1] += idx[:n_val].tolist()
        parts[2] += idx[n_val:n_val + n_test].tolist()
    return tuple(Bank(bank.images[np.array(p, dtype=np.int64)], bank.digits[np.array(p, dtype=np.int64)],
                      bank.source) for p in parts)


# Pen strokes of each digit in a unit box (x right, y down), written the way people write them -- MNIST is
# handwriting, so pen strokes of even width are much closer to it than a typeface (whose 1 has a flag and whose
# 6 and 9 are closed rings). Each stroke is a list of control points, smoothed by a Catmull-Rom spline.
def _ring(cx, cy, rx, ry, start=0.0, turns=1.0, n=12):
    a = start + np.linspace(0, 2 * np.pi * turns, n)
    return list(zip(cx + rx * np.sin(a), cy - ry * np.cos(a)))


STROKES = {
    0: [_ring(0.5, 0.5, 0.36, 0.5, turns=1.05, n=14)],
    1: [[(0.58, 0.0), (0.52, 0.5), (0.45, 1.0)]],
    2: [[(0.12, 0.25), (0.3, 0.04), (0.6, 0.0), (0.85, 0.2), (0.8, 0.45), (0.5, 0.72), (0.1, 1.0), (0.5, 0.98),
         (0.92, 0.97)]],
    3: [[(0.12, 0.1), (0.5, 0.0), (0.85, 0.15), (0.78, 0.38), (0.42, 0.5), (0.85, 0.62), (0.88, 0.86), (0.55, 1.0),
         (0.1, 0.9)]],
    4: [[(0.22, 0.0), (0.12, 0.62), (0.92, 0.6)], [(0.72, 0.02), (0.7, 0.5), (0.68, 1.0)]],
    5: [[(0.85, 0.0), (0.28, 0.02)], [(0.28, 0.02), (0.22, 0.45), (0.55, 0.38), (0.85, 0.6), (0.8, 0.9), (0.45, 1.0),
                                      (0.1, 0.9)]],
    6: [[(0.72, 0.0), (0.4, 0.2), (0.2, 0.5), (0.16, 0.78), (0.35, 0.98), (0.65, 0.98), (0.82, 0.78), (0.68, 0.56),
         (0.42, 0.55), (0.2, 0.72)]],
    7: [[(0.08, 0.02), (0.5, 0.0), (0.92, 0.0), (0.6, 0.5), (0.4, 1.0)]],
    8: [[(0.5, 0.48), (0.78, 0.3), (0.72, 0.06), (0.5, 0.0), (0.28, 0.06), (0.24, 0.28), (0.5, 0.48), (0.82, 0.7),
         (0.76, 0.95), (0.5, 1.0), (0.24, 0.95), (0.18, 0.7), (0.5, 0.48)]],
    9: [_ring(0.48, 0.3, 0.32, 0.3, start=np.pi / 2, turns=1.0, n=12) + [(0.78, 0.55), (0.72, 1.0)]],
}


def _spline(points: np.ndarray, per: int = 8) -> np.ndarray:
    """Catmull-Rom through ``points`` (N, 2) -> a smooth polyline."""
    if len(points) < 3:
        return points
    p = np.vstack([points[:1], points, points[-1:]])
    t = np.linspace(0, 1, per, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3))
    out.append(p[-2:-1])
    return np.vstack(out)


def render_digit(d: int, rng: np.random.Generator) -> np.ndarray:
    """A digit written by the project with a virtual pen, made to look like MNIST: jittered pen strokes of even
    width, slanted and squeezed at random, fitted into a 20x20 box and centred by centre of mass in 28x28.
    Returns (28, 28) float32 in [0, 1]."""
    from PIL import Image, ImageDraw, ImageFilter

    S = 112  # draw 4x larger than the 28 px box, then shrink: anti-aliased strokes like MNIST's
    canvas = Image.new("L", (2 * S, 2 * S), 0)
    draw = ImageDraw.Draw(canvas)
    slant = float(rng.uniform(-0.3, 0.15))  # x += slant * (y - 0.5): most handwriting leans right
    aspect = float(rng.uniform(0.6, 1.0))  # width / height of the digit's box
    width = int(rng.integers(9, 15))  # pen width at 4x: 2-3.5 px in the 28 px image
    for stroke in STROKES[int(d)]:
        pts = np.array(stroke, dtype=np.float64) + rng.normal(0, 0.035, size=(len(stroke), 2))
        pts[:, 0] = 0.5 + (pts[:, 0] - 0.5) * aspect + slant * (pts[:, 1] - 0.5)
        line = _spline(pts) * S + S / 2
        draw.line([tuple(q) for q in line], fill=255, width=width, joint="curve")
        r = width / 2  # round pen ends
        for q in (line[0], line[-1]):
            draw.ellipse([q[0] - r, q[1] - r, q[0] + r, q[1] + r], fill=255)
    box = canvas.getbbox() or (0, 0, 2 * S, 2 * S)
    glyph = canvas.crop(box)
    w, h = glyph.size
    scale = 20.0 / max(w, h)
    glyph = glyph.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
    g = np.asarray(glyph, dtype=np.float32) / 255.0
    ys, xs = np.mgrid[0:g.shape[0], 0:g.shape[1]]
    mass = max(float(g.sum()), 1e-6)
    cy, cx = float((ys * g).sum() / mass), float((xs * g).sum() / mass)
    top = int(np.clip(round(14 - cy), 0, PATCH - g.shape[0]))
    left = int(np.clip(round(14 - cx), 0, PATCH - g.shape[1]))
    out = Image.new("L", (PATCH, PATCH), 0)
    out.paste(glyph, (left, top))
    out = out.filter(ImageFilter.GaussianBlur(0.4))
    return np.clip(np.asarray(out, dtype=np.float32) / 255.0 * 1.15, 0.0, 1.0)


@lru_cache(maxsize=4)
def rendered_bank(per_digit: int = 8, seed: int = 0) -> Bank:
    """Digits the project writes itself (pen strokes drawn with PIL), for demos and tests. Cached."""
    rng = np.random.default_rng(seed)
    imgs, digits = [], []
    for d in range(10):
        for _ in range(per_digit):
            imgs.append(render_digit(d, rng))
            digits.append(d)
    return Bank(np.stack(imgs), np.array(digits, dtype=np.int64), "rendered")


# ---- clip sets (what batches() walks over) -------------------------------------------------------------------------
@dataclass
class ClipSet:
    """A split: a digit bank and how to draw its clips. Clip i of a pass is drawn from rng((seed, pass, i))."""

    bank: Bank
    clips: int  # clips per pass (an epoch for train)
    seed: int  # split seed
    fixed: bool  # val/test: the same clips every pass; train: fresh clips each epoch
    frames: tuple[int, int] = (FRAMES, FRAMES)  # clip length range; one length per batch (train: shorter clips
    # show more different digits per second of CPU -- 20 frames of one digit are mostly the same picture)

    def length(self, batch_start: int, epoch: int = 0) -> int:
        lo, hi = self.frames
        if lo == hi:
            return lo
        return int(np.random.default_rng([self.seed, epoch, batch_start, 7]).integers(lo, hi + 1))

    def clip(self, i: int, epoch: int = 0, frames: int = FRAMES) -> Clip:
        rng = np.random.default_rng([self.seed, 0 if self.fixed else epoch, i])
        s = random_settings(rng)
        s.frames = frames
        return make_clip(rng, self.bank, s)


def render_settings_clip(settings: dict, bank: Bank | None = None) -> Clip:
    """The app's clip: settings {"seed", "speed", "occlusion", "noise", "digits"} over rendered digits."""
    s = ClipSettings(speed=float(settings.get("speed", 3.0)), occlusion=float(settings.get("occlusion", 0.2)),
                     noise=float(settings.get("noise", 0.1)), digits=int(settings.get("digits", 1)),
                     frames=int(settings.get("frames", FRAMES)), grain=float(settings.get("grain", 0.05)))
    rng = np.random.default_rng(int(settings.get("seed", 0)))
    return make_clip(rng, bank or rendered_bank(), s)


# ---- GIF upload ----------------------------------------------------------------------------------------------------
MAX_GIF_BYTES = 2_000_000  # an upload larger than this is refused before it is parsed
MAX_GIF_SIDE = 512  # pixels per side
MAX_GIF_FRAMES = 60  # frames


class GifError(ValueError):
    """The upload is not a GIF this task can take; the message is for the user."""


def decode_gif(data: bytes) -> np.ndarray:
    """Uploaded GIF bytes -> (T, 64, 64) float32 in [0, 1], white on black. Limits are checked before decoding
    pixels: byte size and signature, then the header's size, then the frame count."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not isinstance(data, (bytes, bytearray)) or len(data) == 0:
        raise GifError("the upload is empty")
    if len(data) > MAX_GIF_BYTES:
        raise GifError(f"the GIF is {len(data) / 1e6:.1f} MB; the limit is {MAX_GIF_BYTES / 1e6:.0f} MB")
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        raise GifError("that is not a GIF file (it does not start with the GIF signature); upload an animated GIF")
    try:
        im = Image.open(io.BytesIO(bytes(data)), formats=["GIF", "PNG", "WEBP"])  # never EPS (Ghostscript) etc.
        if im.format != "GIF":
            raise GifError("that is not a GIF file; upload an animated GIF")
        w, h = im.size
        if w < 1 or h < 1 or w > MAX_GIF_SIDE or h > MAX_GIF_SIDE:
            raise GifError(f"the GIF is too large ({w}x{h} pixels); the limit is {MAX_GIF_SIDE}x{MAX_GIF_SIDE}")
        n = int(getattr(im, "n_frames", 1))
        if n > MAX_GIF_FRAMES:
            raise GifError(f"the GIF has {n} frames; the limit is {MAX_GIF_FRAMES}")
        out = []
        for k in range(n):
            im.seek(k)
            gray = im.convert("L")
            edge = np.concatenate([np.asarray(gray)[[0, -1]].ravel(), np.asarray(gray)[:, [0, -1]].ravel()])
            # Fit inside 64x64 keeping the aspect ratio; pad with the frame's own background (its border).
            fr = ImageOps.pad(gray, (SIZE, SIZE), method=Image.BILINEAR, color=int(np.median(edge)))
            out.append(np.asarray(fr, dtype=np.float32) / 255.0)
    except GifError:
        raise
    except Image.DecompressionBombError:
        raise GifError(f"the GIF's picture is far too large; the limit is {MAX_GIF_SIDE}x{MAX_GIF_SIDE}") from None
    except (UnidentifiedImageError, OSError, ValueError, EOFError, SyntaxError):
        raise GifError("the GIF could not be read: the file is corrupted or cut short; try another GIF") from None
    frames = np.stack(out)  # (T, 64, 64)
    # The model saw white digits on black: a light background (judged from the border) is inverted.
    border = np.concatenate([frames[:, 0], frames[:, -1], frames[:, :, 0], frames[:, :, -1]], axis=1)
    if float(np.median(border)) > 0.5:
        frames = 1.0 - frames
    return frames
