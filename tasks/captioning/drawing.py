"""Simple scenes this project draws itself with PIL (demo inputs and synthetic test data; no dataset image ships
with the app): a sky, a ground, and a few things on it, each scene with the caption that describes it."""

from __future__ import annotations

import numpy as np

THINGS = ("person", "dog", "ball", "tree", "house", "bike")
GROUNDS = {"grass": (70, 150, 60), "sand": (220, 200, 140), "water": (50, 100, 190), "snow": (240, 240, 245)}


def _person(d, x, y, s, shirt):
    d.ellipse([x - 0.06 * s, y - 0.46 * s, x + 0.06 * s, y - 0.34 * s], fill=(230, 190, 160))  # head
    d.rectangle([x - 0.05 * s, y - 0.34 * s, x + 0.05 * s, y - 0.14 * s], fill=shirt)  # body
    w = max(2, int(0.02 * s))
    d.line([x - 0.03 * s, y - 0.14 * s, x - 0.07 * s, y], fill=(40, 40, 90), width=w)  # legs
    d.line([x + 0.03 * s, y - 0.14 * s, x + 0.07 * s, y], fill=(40, 40, 90), width=w)
    d.line([x - 0.05 * s, y - 0.3 * s, x - 0.12 * s, y - 0.2 * s], fill=shirt, width=w)  # arms
    d.line([x + 0.05 * s, y - 0.3 * s, x + 0.12 * s, y - 0.2 * s], fill=shirt, width=w)


def _dog(d, x, y, s, fur):
    d.ellipse([x - 0.1 * s, y - 0.12 * s, x + 0.08 * s, y - 0.04 * s], fill=fur)  # body
    d.ellipse([x + 0.05 * s, y - 0.17 * s, x + 0.13 * s, y - 0.09 * s], fill=fur)  # head
    w = max(2, int(0.015 * s))
    for dx in (-0.08, -0.04, 0.02, 0.06):
        d.line([x + dx * s, y - 0.06 * s, x + dx * s, y], fill=fur, width=w)
    d.line([x - 0.1 * s, y - 0.1 * s, x - 0.15 * s, y - 0.15 * s], fill=fur, width=w)  # tail


def _bike(d, x, y, s):
    r = 0.07 * s
    w = max(2, int(0.012 * s))
    for cx in (x - 0.1 * s, x + 0.1 * s):
        d.ellipse([cx - r, y - 2 * r, cx + r, y], outline=(20, 20, 20), width=w)
    d.line([x - 0.1 * s, y - r, x, y - r, x + 0.1 * s, y - r], fill=(200, 30, 30), width=w)
    d.line([x - 0.03 * s, y - r, x - 0.03 * s, y - 0.2 * s], fill=(200, 30, 30), width=w)


def draw_scene(things: list[str], ground: str = "grass", night: bool = False, seed: int = 0,
               size: int = 128) -> np.ndarray:
    """(size, size, 3) uint8. ``things`` from THINGS, placed left to right; a person with a bike rides it."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    S = size * 2  # draw at twice the size, then shrink: smoother edges
    sky = (20, 25, 60) if night else tuple(int(v) for v in rng.integers([110, 160, 220], [150, 200, 250]))
    im = Image.new("RGB", (S, S), sky)
    d = ImageDraw.Draw(im)
    horizon = S * rng.uniform(0.5, 0.62)
    d.rectangle([0, horizon, S, S], fill=GROUNDS[ground])
    sx, sy = S * rng.uniform(0.1, 0.9), S * rng.uniform(0.08, 0.2)
    d.ellipse([sx - 14, sy - 14, sx + 14, sy + 14], fill=(240, 240, 210) if night else (255, 220, 40))
    items = list(things)
    riding = "person" in items and "bike" in items
    if riding:
        items.remove("bike")
    n = max(len(items), 1)
    for i, kind in enumerate(items):
        x = S * (i + 0.5) / n + rng.uniform(-0.04, 0.04) * S
        y = S * rng.uniform(0.8, 0.92)
        color = tuple(int(v) for v in rng.integers(30, 230, 3))
        if kind == "person":
            if riding:
                _bike(d, x, y, S)
                _person(d, x, y - 0.12 * S, S, color)
            else:
                _person(d, x, y, S, color)
        elif kind == "dog":
            _dog(d, x, y, S, tuple(int(v) for v in rng.choice([[120, 80, 40], [30, 30, 30], [220, 200, 160]])))
        elif kind == "ball":
            r = 0.04 * S
            d.ellipse([x - r, y - 2 * r, x + r, y], fill=(230, 40, 40))
        elif kind == "tree":
            d.rectangle([x - 0.025 * S, y - 0.25 * S, x + 0.025 * S, y], fill=(110, 70, 30))
            d.ellipse([x - 0.12 * S, y - 0.5 * S, x + 0.12 * S, y - 0.2 * S], fill=(30, 120, 40))
        elif kind == "house":
            d.rectangle([x - 0.14 * S, y - 0.22 * S, x + 0.14 * S, y], fill=(200, 120, 90))
            d.polygon([(x - 0.17 * S, y - 0.22 * S), (x + 0.17 * S, y - 0.22 * S), (x, y - 0.38 * S)],
                      fill=(120, 40, 40))
            d.rectangle([x - 0.03 * S, y - 0.1 * S, x + 0.03 * S, y], fill=(80, 50, 30))
        elif kind == "bike":
            _bike(d, x, y, S)
    return np.array(im.resize((size, size), Image.LANCZOS), dtype=np.uint8)


def describe(things: list[str], ground: str = "grass", night: bool = False) -> str:
    """The caption a person might write for ``draw_scene(things, ground, night)``."""
    names = {"person": "a person", "dog": "a dog", "ball": "a red ball", "tree": "a tree", "house": "a house",
             "bike": "a bike"}
    if "person" in things and "bike" in things:
        rest = [names[t] for t in things if t not in ("person", "bike")]
        head = "a person riding a bike"
        parts = [head] + rest
    else:
        parts = [names[t] for t in things]
    subject = " and ".join(parts) if parts else "an empty field"
    where = "in the water" if ground == "water" else f"on the {ground}"
    when = " at night" if night else ""
    return f"{subject} {where}{when}"


# The page's samples: (label, things, ground, night, seed)
SCENES = [
    ("a bike ride on a sunny day", ["person", "bike"], "grass", False, 1),
    ("a dog and a ball on the beach", ["dog", "ball"], "sand", False, 2),
    ("two people in the snow", ["person", "person"], "snow", False, 3),
    ("a house and a tree at night", ["house", "tree"], "grass", True, 4),
    ("a dog in the water", ["dog"], "water", False, 5),
]
