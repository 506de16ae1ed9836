"""Reading a person's picture safely, for every task that takes images (no Streamlit here).

Limits are checked before any pixel is decoded: the byte size first, then the header's width x height
(decompression bombs), and only a short list of plain decoders is ever used (never EPS/PostScript, which would run
Ghostscript). Everything a file can do wrong becomes a ``BadInput`` with a clear message.
"""

from __future__ import annotations

import io

import numpy as np

from core.task import BadInput

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
