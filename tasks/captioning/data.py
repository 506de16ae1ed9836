"""Flickr8k in its released form: Flickr8k_text/Flickr8k.token.txt ("<image>.jpg#<n>\\t<caption>", 5 per image),
the official Flickr_8k.{train,dev,test}Images.txt lists (6,000 / 1,000 / 1,000), and images_128/<image>.jpg (all
8,091 images resized to 128x128). Every image is decoded once into one uint8 tensor (N, 3, 128, 128)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.data import Vocab

from .model import BOS_ID, EOS_ID, PAD_ID, SPECIALS

SIZE = 128
TEXT_DIR, IMAGE_DIR = "Flickr8k_text", "images_128"
TOKEN_FILE = "Flickr8k.token.txt"
SPLIT_FILES = {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt",
               "test": "Flickr_8k.testImages.txt"}
MIN_COUNT = 5  # a word needs this many uses in the training captions to get its own id
MAX_WORDS = 20  # training captions are cut here (the EOS still follows); references stay whole
REFS = 5  # references per image


def tokenize(text: str) -> list[str]:
    """Lowercase, punctuation removed (hyphens and apostrophes split words): "A tri-colored dog." -> [a, tri,
    colored, dog]. The same tokens make the vocabulary, the references and the BLEU input."""
    return re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split()


def read_captions(path: Path) -> dict[str, list[str]]:
    """image file name -> its captions, in file order. The one id written "<name>.jpg.1#n" maps to <name>.jpg."""
    caps: dict[str, list[str]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if "\t" not in line:
            continue
        key, cap = line.split("\t", 1)
        name = key.rsplit("#", 1)[0]
        if name.endswith(".jpg.1"):
            name = name[: -len(".1")]
        caps.setdefault(name, []).append(cap.strip())
    return caps


def read_list(path: Path) -> list[str]:
    return [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]


def build_vocab(token_lists, min_count: int = MIN_COUNT) -> Vocab:
    """The training words used at least ``min_count`` times, most frequent first, after the four specials (the
    card's meta stores every id's word, specials included: ``vocab_meta`` / ``vocab_of``)."""
    return Vocab.build(token_lists, specials=SPECIALS, min_count=min_count)


def vocab_meta(vocab: Vocab) -> dict[str, list[str]]:
    return vocab.to_meta("vocab", with_specials=True)


def vocab_of(meta: dict) -> Vocab:
    return Vocab.from_meta(meta, "vocab", specials=SPECIALS, with_specials=True)


def encode(tokens: list[str], vocab: Vocab, max_words: int = MAX_WORDS) -> list[int]:
    return [BOS_ID] + vocab.encode(tokens[:max_words]) + [EOS_ID]


@dataclass
class CapSet:
    """One split: images (N, 3, 128, 128) uint8, caption ids (N, 5, T) padded, and reference strings."""

    images: torch.Tensor
    captions: torch.Tensor  # (N, 5, T) long: BOS w1 .. wn EOS PAD..
    refs: list[list[str]]  # per image, its 5 tokenized references joined by spaces
    names: list[str]
    role: str = "train"  # "train" | "val" | "test": what evaluate() computes

    def __len__(self) -> int:
        return len(self.names)


def make_set(images: torch.Tensor, caps: list[list[str]], names: list[str], vocab: Vocab, role: str) -> CapSet:
    toks = [[tokenize(c) for c in cs] for cs in caps]
    toks = [(ts + ts * REFS)[:REFS] for ts in toks]  # exactly 5 per image (repeat if an image had fewer)
    ids = [[encode(t, vocab) for t in ts] for ts in toks]
    T = max(len(x) for row in ids for x in row)
    cap = torch.full((len(ids), REFS, T), PAD_ID, dtype=torch.long)
    for i, row in enumerate(ids):
        for k, x in enumerate(row):
            cap[i, k, :len(x)] = torch.tensor(x)
    return CapSet(images, cap, [[" ".join(t) for t in ts] for ts in toks], names, role)


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size != (SIZE, SIZE):
            im = im.resize((SIZE, SIZE), Image.BICUBIC)
        return np.array(im, dtype=np.uint8)


def load_images(folder: Path, names: list[str], workers: int = 8) -> torch.Tensor:
    """Decode every image once (PIL releases the GIL while decoding, so threads help) -> (N, 3, 128, 128) uint8."""
    out = torch.empty(len(names), 3, SIZE, SIZE, dtype=torch.uint8)
    with ThreadPoolExecutor(workers) as ex:
        for i, arr in enumerate(ex.map(lambda n: _read_image(folder / n), names)):
            out[i] = torch.from_numpy(arr).permute(2, 0, 1)
    return out


def load_flickr8k(data_dir: Path):
    """-> (sets {"train","val","test"}: CapSet, Vocab, files read)."""
    data_dir = Path(data_dir)
    tok_path = data_dir / TEXT_DIR / TOKEN_FILE
    if not tok_path.exists():
        raise FileNotFoundError(f"{TEXT_DIR}/{TOKEN_FILE} not found in {data_dir}")
    caps = read_captions(tok_path)
    lists = {s: [n for n in read_list(data_dir / TEXT_DIR / f) if n in caps] for s, f in SPLIT_FILES.items()}
    vocab = build_vocab(tokenize(c) for n in lists["train"] for c in caps[n])
    sets = {}
    for s, names in lists.items():
        imgs = load_images(data_dir / IMAGE_DIR, names)
        sets[s] = make_set(imgs, [caps[n] for n in names], names, vocab, s)
    files = [tok_path] + [data_dir / TEXT_DIR / f for f in SPLIT_FILES.values()]
    return sets, vocab, files


def synthetic_sets(seed: int = 0):
    """Tiny drawn scenes with generated captions: 32 train / 8 val / 8 test."""
    from .drawing import GROUNDS, THINGS, describe, draw_scene

    rng = np.random.default_rng(seed)

    def make(n, role, stoi=None):
        imgs, caps, names = [], [], []
        for i in range(n):
            k = int(rng.integers(1, 3))
            things = [str(t) for t in rng.choice(THINGS, size=k, replace=False)]
            ground = str(rng.choice(list(GROUNDS)))
            night = bool(rng.random() < 0.3)
            imgs.append(torch.from_numpy(draw_scene(things, ground, night, seed=int(rng.integers(1 << 30)))).permute(2, 0, 1))
            c = describe(things, ground, night)
            caps.append([c, "a picture of " + c, c, c.replace("a ", "one ", 1), "there is " + c])
            names.append(f"{role}{i}.png")
        return torch.stack(imgs), caps, names

    raw = {"train": make(32, "train"), "val": make(8, "val"), "test": make(8, "test")}
    vocab = build_vocab((tokenize(c) for cs in raw["train"][1] for c in cs), min_count=1)
    sets = {s: make_set(im, cs, nm, vocab, s) for s, (im, cs, nm) in raw.items()}
    return sets, vocab
