"""Cat-vs-dog images: the CIFAR-10 JPEG tar read as it is (no extraction), decoded once into uint8 tensors.

Layout inside the tar: ``<root>/{train,test}/{cat,dog}/NNNN.jpg`` (32x32 RGB JPEG). The validation split is a
seeded 10% of train, stratified by class, so the test images are never looked at until the end.
"""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

LABELS = ["cat", "dog"]
SIZE = 32
TAR_NAME = "cifar10_cat_dog_jpeg.tar"
_CACHE: dict[tuple, dict] = {}  # (path, size, mtime) -> {"train": (x, y), "test": (x, y)}: decoded once per process


@dataclass
class ImageSet:
    x: torch.Tensor  # (N, 3, 32, 32) uint8
    y: torch.Tensor  # (N,) int64: index into LABELS

    def __len__(self) -> int:
        return int(self.y.shape[0])


def find_tar(data_dir: Path) -> Path:
    data_dir = Path(data_dir)
    if data_dir.is_file():
        return data_dir
    path = data_dir / TAR_NAME
    if not path.exists():
        tars = sorted(data_dir.glob("*.tar"))
        if not tars:
            raise FileNotFoundError(f"no {TAR_NAME} in {data_dir}")
        path = tars[0]
    return path


def decode_rgb(raw: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(raw)) as im:
        im = im.convert("RGB")
        if im.size != (SIZE, SIZE):
            im = im.resize((SIZE, SIZE), Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8)  # (32, 32, 3)


def read_tar(path: Path) -> dict[str, ImageSet]:
    """{"train": ImageSet, "test": ImageSet} from the tar; members sorted by name so the order is reproducible."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key in _CACHE:
        return _CACHE[key]
    items: dict[str, list] = {"train": [], "test": []}
    with tarfile.open(path, "r:*") as tar:
        for m in tar:
            if not m.isfile() or not m.name.lower().endswith((".jpg", ".jpeg", ".png")):
                continue
            parts = Path(m.name).parts
            if len(parts) < 3 or parts[-3] not in items or parts[-2] not in LABELS:
                continue
            f = tar.extractfile(m)
            items[parts[-3]].append((m.name, LABELS.index(parts[-2]), f.read()))
    out = {}
    for split, rows in items.items():
        rows.sort(key=lambda r: r[0])
        if not rows:
            raise ValueError(f"{path.name} has no {split}/{{cat,dog}}/*.jpg images")
        x = np.stack([decode_rgb(raw) for _, _, raw in rows])  # (N, 32, 32, 3)
        out[split] = ImageSet(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(),
                              torch.tensor([lab for _, lab, _ in rows], dtype=torch.long))
    _CACHE[key] = out
    return out


def split_val(data: ImageSet, frac: float = 0.1, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Stratified seeded split of train into (train, val)."""
    g = torch.Generator().manual_seed(seed)
    val_idx = []
    for c in range(len(LABELS)):
        idx = torch.nonzero(data.y == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        val_idx.append(idx[: max(1, round(len(idx) * frac))])
    val = torch.cat(val_idx).sort().values
    keep = torch.ones(len(data), dtype=torch.bool)
    keep[val] = False
    return ImageSet(data.x[keep], data.y[keep]), ImageSet(data.x[val], data.y[val])


def augment(x: torch.Tensor, g: torch.Generator, pad: int = 4, cutout: int = 8) -> torch.Tensor:
    """Random crop with zero padding + horizontal flip + cutout (one grey square of ``cutout`` px hidden, so the
    network cannot lean on any single patch -- DeVries & Taylor 2017), per image, on a uint8 batch (B, 3, 32, 32)."""
    B, _, H, W = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))  # (B, 3, H+2p, W+2p)
    dy = torch.randint(0, 2 * pad + 1, (B,), generator=g)
    dx = torch.randint(0, 2 * pad + 1, (B,), generator=g)
    rows = (dy[:, None] + torch.arange(H)[None])  # (B, H)
    cols = (dx[:, None] + torch.arange(W)[None])  # (B, W)
    flip = torch.rand(B, generator=g) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    b = torch.arange(B)[:, None, None, None]
    c = torch.arange(3)[None, :, None, None]
    out = padded[b, c, rows[:, None, :, None], cols[:, None, None, :]]  # (B, 3, H, W)
    if cutout:
        cy = torch.randint(0, H, (B,), generator=g)[:, None]  # square centre; it may hang over the edge
        cx = torch.randint(0, W, (B,), generator=g)[:, None]
        ys, xs = torch.arange(H)[None], torch.arange(W)[None]
        in_y = (ys - cy).abs() < cutout // 2 + cutout % 2  # (B, H)
        in_x = (xs - cx).abs() < cutout // 2 + cutout % 2  # (B, W)
        hole = (in_y[:, :, None] & in_x[:, None, :])[:, None]  # (B, 1, H, W)
        out = out.masked_fill(hole, 124)  # ~ the data's mean grey: zero after normalisation
    return out


def synthetic_images(n: int, seed: int = 0) -> ImageSet:
    """Tiny stand-in data: 'cats' are warm blobs with two pointed ears, 'dogs' cooler blobs with floppy ears."""
    from .drawing import draw_animal

    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for i in range(n):
        lab = i % 2
        xs.append(draw_animal(LABELS[lab], rng, size=SIZE))
        ys.append(lab)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous()
    return ImageSet(x, torch.tensor(ys, dtype=torch.long))
