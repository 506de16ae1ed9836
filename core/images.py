"""Reading a person's picture safely, for every task that takes images (no Streamlit here).

Limits are checked before any pixel is decoded: the byte size first, then the header's width x height
(decompression bombs), and only a short list of plain decoders is ever used (never EPS/PostScript, which would run
Ghostscript). Everything a file can do wrong becomes a ``BadInput`` with a clear message.

**How far a picture is from the training photos** (``image_stats``, ``unlike``): a few numbers per picture (fine
detail, contrast, flat areas, colour, brightness) and each task's range of them over its training photos (their
0.1% and 99.9% quantiles). A picture outside a range is unlike every photo the model learned from: its answer is a
guess, however sure it sounds (a network can be 100% sure about stripes).

**Sample photos** (``sample_photo``): real photographs that ship inside scikit-image's package (``skimage/data``:
an astronaut, a cat, a cup of coffee, a rocket ...), read from the installed package's folder, never bundled here.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.task import BadInput

# What an image task's predict takes (its Task.input_type): a sample photo's name, image file bytes, an (H, W, 3|4)
# uint8 array, or {"image": one of these} -- image_input below reads each.
IMAGE_INPUT = (str, bytes, np.ndarray, dict)

MAX_BYTES = 10 * 1024 * 1024  # uploads larger than this are refused before decoding
MAX_PIXELS = 12_000_000  # width x height above this is refused from the header (decompression and memory bombs)
FORMATS = ["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"]  # the decoders PIL may use; nothing exotic
MAX_SIDE = 1024  # decoded pictures are shrunk to this longest side: the models need far less, the page shows it


def decode_image(raw: bytes) -> tuple[np.ndarray, list[str]]:
    """Image file bytes -> ((H, W, 3) uint8 RGB, notes for the person). Animated: first frame; alpha: on white."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    if not raw:
        raise BadInput("the file is empty")
    if len(raw) > MAX_BYTES:
        raise BadInput(f"the file is {len(raw) / 2**20:.1f} MB; the limit is {MAX_BYTES // 2**20} MB")
    notes = []
    try:
        im = Image.open(io.BytesIO(raw), formats=FORMATS)  # reads the header only: the size is known before pixels
        w, h = im.size
        if w * h > MAX_PIXELS:
            raise BadInput(f"the image is {w}x{h} pixels; the limit is {MAX_PIXELS // 10**6} megapixels")
        if w < 1 or h < 1:
            raise BadInput("the image has no pixels")
        if getattr(im, "n_frames", 1) > 1:
            notes.append(f"animated image ({im.n_frames} frames): only the first frame is used")
            im = next(iter(ImageSequence.Iterator(im)))
        im.load()
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            if rgba.getextrema()[3][0] < 255:  # only say so when something is actually see-through
                notes.append("transparent parts were put on white")
            im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        elif im.mode in ("L", "1", "I", "I;16", "F"):
            notes.append("grayscale image: the model was trained on colour photos")
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except BadInput:
        raise
    except Image.DecompressionBombError:
        raise BadInput("the image is too large to decode safely (decompression bomb guard)") from None
    except (UnidentifiedImageError, OSError, ValueError, EOFError, SyntaxError, MemoryError):
        raise BadInput("this file could not be read as an image (not an image, or truncated/corrupted)") from None
    return _shrink(rgb), notes


def image_input(input, named: Callable[[str], dict | None], to_pixels: Callable[[np.ndarray], np.ndarray],
                squeeze: tuple[float, str], example: str) -> dict:
    """What an image task's ``predict`` reads -- image file bytes (upload, camera), an (H, W, 3|4) uint8 array, a
    name that ``named`` turns into its ready record (None: no such name), or {"image": one of those} -- as
    {"pixels": to_pixels(rgb), "original" (H, W, 3) uint8, "notes" [str], "source"}. ``squeeze`` = (ratio, note):
    an upload whose long side exceeds ratio x its short side gets the note. ``example``: a name, for messages."""
    if isinstance(input, dict):
        input = input.get("image", input.get("bytes"))
    if isinstance(input, str):
        record = named(input)
        if record is None:
            raise BadInput(f"expected an image file (JPEG, PNG, GIF, WebP, BMP) or {example}")
        return record
    if isinstance(input, np.ndarray):
        arr = check_array(input)
        return {"pixels": to_pixels(arr), "original": arr, "notes": [], "source": "array"}
    if isinstance(input, (bytes, bytearray, memoryview)):
        rgb, notes = decode_image(bytes(input))
        ratio, note = squeeze
        if min(rgb.shape[:2]) * ratio < max(rgb.shape[:2]):
            notes.append(note)
        return {"pixels": to_pixels(rgb), "original": rgb, "notes": notes, "source": "upload"}
    raise BadInput(f"expected image bytes or {example}, got {type(input).__name__}")


def check_array(arr) -> np.ndarray:
    """A caller's pixel array -> (H, W, 3) uint8 RGB (grey is repeated, alpha dropped), or BadInput."""
    if not isinstance(arr, np.ndarray):
        raise BadInput(f"expected an image array, got {type(arr).__name__}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8 or min(arr.shape[:2]) < 1:
        raise BadInput("an image array must be uint8 of shape (H, W, 3) or (H, W, 4)")
    if arr.shape[0] * arr.shape[1] > MAX_PIXELS:
        raise BadInput(f"the image is {arr.shape[1]}x{arr.shape[0]} pixels; the limit is "
                       f"{MAX_PIXELS // 10**6} megapixels")
    return _shrink(np.ascontiguousarray(arr[..., :3]))


def _shrink(rgb: np.ndarray) -> np.ndarray:
    if max(rgb.shape[:2]) <= MAX_SIDE:
        return rgb
    from PIL import Image

    scale = MAX_SIDE / max(rgb.shape[:2])
    size = (max(1, int(rgb.shape[1] * scale)), max(1, int(rgb.shape[0] * scale)))
    return np.asarray(Image.fromarray(rgb).resize(size), dtype=np.uint8)


# ---- how far a picture is from the training photos ------------------------------------------------------------------

UNLIKE = {  # (stat, too low?) -> what a person is told: "Unlike every training photo, it has ..."
    ("detail", False): "far more fine detail or sharp stripes", ("detail", True): "far less detail (it is smoother)",
    ("contrast", True): "almost no contrast", ("contrast", False): "more contrast",
    ("flat", False): "large areas of one flat colour", ("flat", True): "no patch of even colour at all (like noise)",
    ("colour", False): "brighter, more saturated colours", ("colour", True): "almost no colour (grey)",
    ("brightness", True): "a darker picture overall", ("brightness", False): "a lighter picture overall",
    ("grain", False): "neighbouring pixels that have nothing to do with each other (like noise or static)",
    ("grain", True): "",
}


def image_stats(pixels: np.ndarray) -> dict[str, np.ndarray]:
    """(N, H, W, 3) or (H, W, 3) uint8 -> per picture: detail (mean |difference| of neighbouring pixels),
    contrast (std), flat (share of pixels in the commonest of 512 colour bins), colour (mean saturation),
    brightness (mean), grain (detail / contrast: about 1.1 when neighbouring pixels are unrelated, as in noise;
    photos, whose neighbours are alike, sit far lower)."""
    x = pixels[None] if pixels.ndim == 3 else pixels
    if len(x) > 256:  # in chunks: a float copy of thousands of pictures would take gigabytes
        parts = [image_stats(x[i:i + 256]) for i in range(0, len(x), 256)]
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    f = x.astype(np.float32) / 255.0  # (N, H, W, 3)
    detail = (np.abs(np.diff(f, axis=1)).mean((1, 2, 3)) + np.abs(np.diff(f, axis=2)).mean((1, 2, 3))) / 2
    q = (x // 32).astype(np.int64)
    code = (q[..., 0] * 64 + q[..., 1] * 8 + q[..., 2]).reshape(len(x), -1)  # (N, H*W) colour bins
    flat = np.array([np.bincount(c, minlength=512).max() / c.size for c in code])
    contrast = f.std((1, 2, 3))
    return {"detail": detail, "contrast": contrast, "flat": flat,
            "colour": (f.max(-1) - f.min(-1)).mean((1, 2)), "brightness": f.mean((1, 2, 3)),
            "grain": detail / np.maximum(contrast, 1e-3)}


def stat_ranges(pixels: np.ndarray, q: float = 0.001) -> dict[str, tuple[float, float]]:
    """The (q, 1 - q) quantiles of ``image_stats`` over training pictures: what a task keeps as its ranges."""
    stats = image_stats(pixels)
    return {k: (round(float(np.quantile(v, q)), 3), round(float(np.quantile(v, 1 - q)), 3)) for k, v in stats.items()}


def unlike(pixels: np.ndarray, ranges: dict[str, tuple[float, float]]) -> list[str]:
    """What makes this picture unlike every training photo (``ranges`` from ``stat_ranges``); empty: it looks like
    one of them."""
    stats = image_stats(pixels)
    out = []
    for key, (lo, hi) in ranges.items():
        v = float(stats[key][0])
        if v < lo or v > hi:
            out.append(UNLIKE.get((key, v < lo)))
    return [o for o in out if o]


# ---- sample photos --------------------------------------------------------------------------------------------------

SAMPLE_PHOTOS = {  # name -> (file in skimage/data, what it shows)
    "astronaut": ("astronaut.png", "an astronaut (Eileen Collins) in front of a flag"),
    "cameraman": ("camera.png", "a man with a camera on a tripod, outdoors (black and white)"),
    "chelsea": ("chelsea.png", "Chelsea the cat"),
    "coffee": ("coffee.png", "a cup of coffee on a saucer"),
    "rocket": ("rocket.jpg", "a rocket on its launch pad"),
    "motorcycle": ("motorcycle_left.png", "a motorcycle in a garage"),
}


def sample_photo(name: str) -> np.ndarray:
    """A sample photograph (``SAMPLE_PHOTOS``) as (H, W, 3) uint8 RGB, read from the installed scikit-image
    package's data folder (without importing scikit-image)."""
    from PIL import Image

    if name not in SAMPLE_PHOTOS:
        raise BadInput(f"unknown sample photo {name!r}; the samples are: {', '.join(SAMPLE_PHOTOS)}")
    spec = importlib.util.find_spec("skimage")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" if spec and spec.submodule_search_locations \
        else None
    path = folder / SAMPLE_PHOTOS[name][0] if folder else None
    if path is None or not path.is_file():
        raise BadInput("the sample photos come with the scikit-image package, which is not installed here: upload a "
                       "photo instead")
    with Image.open(path) as im:
        return _shrink(check_array(np.asarray(im.convert("RGB"))))
