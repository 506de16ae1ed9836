"""Cat- and dog-like pictures this project draws itself with PIL (demos and synthetic test data; no dataset image
ships with the app). They are cartoons: the page says so, and the model was trained on photos."""

from __future__ import annotations

import numpy as np


def draw_animal(kind: str, rng: np.random.Generator, size: int = 32, scale: int = 4) -> np.ndarray:
    """(size, size, 3) uint8: a head with ears, eyes and nose on a plain background. Cats: pointed ears, whiskers;
    dogs: long floppy ears, a bigger snout."""
    from PIL import Image, ImageDraw

    S = size * scale
    bg = tuple(int(v) for v in rng.integers(150, 240, 3))
    im = Image.new("RGB", (S, S), bg)
    d = ImageDraw.Draw(im)
    if kind == "cat":
        fur = tuple(int(v) for v in rng.choice([[200, 120, 50], [90, 90, 90], [230, 170, 90], [40, 40, 40]]))
    else:
        fur = tuple(int(v) for v in rng.choice([[140, 90, 50], [210, 180, 130], [90, 60, 40], [240, 230, 210]]))
    cx, cy = S / 2 + rng.uniform(-0.06, 0.06) * S, S * 0.55 + rng.uniform(-0.05, 0.05) * S
    r = S * rng.uniform(0.26, 0.32)
    dark = tuple(max(0, v - 60) for v in fur)
    if kind == "cat":  # two pointed triangles above the head
        for sgn in (-1, 1):
            d.polygon([(cx + sgn * r * 0.95, cy - r * 0.2), (cx + sgn * r * 0.75, cy - r * 1.45),
                       (cx + sgn * r * 0.2, cy - r * 0.85)], fill=fur)
    else:  # long ears hanging down the sides
        for sgn in (-1, 1):
            d.ellipse([cx + sgn * r * 0.95 - r * 0.35, cy - r * 0.9, cx + sgn * r * 0.95 + r * 0.35,
                       cy + r * 0.7], fill=dark)
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fur)
    for sgn in (-1, 1):  # eyes
        ex, ey = cx + sgn * r * 0.4, cy - r * 0.15
        er = r * 0.14
        d.ellipse([ex - er, ey - er, ex + er, ey + er], fill=(30, 30, 30) if kind == "dog" else (120, 180, 60))
        if kind == "cat":
            d.ellipse([ex - er * 0.3, ey - er, ex + er * 0.3, ey + er], fill=(10, 10, 10))
    if kind == "dog":  # a big pale snout with a black nose
        d.ellipse([cx - r * 0.45, cy + r * 0.05, cx + r * 0.45, cy + r * 0.7], fill=(235, 220, 200))
        d.ellipse([cx - r * 0.18, cy + r * 0.1, cx + r * 0.18, cy + r * 0.35], fill=(20, 20, 20))
    else:  # a small pink nose and whiskers
        d.polygon([(cx - r * 0.1, cy + r * 0.2), (cx + r * 0.1, cy + r * 0.2), (cx, cy + r * 0.32)],
                  fill=(230, 120, 140))
        for sgn in (-1, 1):
            for k in (-1, 0, 1):
                d.line([cx + sgn * r * 0.2, cy + r * 0.35, cx + sgn * r * 1.1, cy + r * (0.3 + 0.15 * k)],
                       fill=(250, 250, 250), width=max(1, scale // 2))
    im = im.resize((size, size), Image.LANCZOS)
    return np.asarray(im, dtype=np.uint8)
