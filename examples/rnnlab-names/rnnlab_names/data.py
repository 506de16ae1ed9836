"""Surnames by language of origin: reading the files, a seeded stratified split, a character vocabulary.

The data is the PyTorch char-RNN tutorials' ``names/`` folder: one ``<Language>.txt`` per language, UTF-8, one
surname per line. Both tasks of this package (``names_origin`` and ``names_generate``) use the same split, so a
name held out for testing one is held out for the other.

Two cleanups, both for an honest test score:
* exact duplicates are dropped -- Arabic.txt holds 2,000 lines but only 108 distinct names, and a duplicate in
  both train and test would be scored as generalisation when it is only memory;
* a name listed under several languages (465 of them) goes whole into ONE split, so the test never asks about a
  string the model has already read.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from core.data import SPECIALS as CORE_SPECIALS
from core.data import Vocab

PAD, UNK, BOS, EOS = 0, 1, 2, 3  # special ids shared by both tasks: core.data.Vocab's
SPECIALS = list(CORE_SPECIALS)  # <pad> <unk> <s> </s>
# Always in the vocabulary, whatever the training data held: every ASCII letter can be typed and generated from.
BASE_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz '-"
MAX_NAME_CHARS = 40  # the longest real surname has 20 characters; longer input is truncated (and the user told)


def clean_name(text: str) -> str:
    """NFC-normalise, turn every kind of space (the files hold a few no-break spaces) into one plain space."""
    text = unicodedata.normalize("NFC", str(text))
    return re.sub(r"\s+", " ", text).strip()


@dataclass
class NameSet:
    """One split: parallel lists of names and their language (as an index into ``labels``)."""

    names: list[str]
    langs: list[int]
    labels: list[str]
    split: str = ""  # "train" | "val" | "test" | "" -- evaluate() adds the confusion matrix on "test" only
    counts: dict[str, int] = field(default_factory=dict)
    chars: list[str] = field(default_factory=list)  # the vocabulary (from the train split), for batches()
    # The test split keeps a reference to Splits.meta, which core.train writes to the card AFTER training:
    # evaluate() on it records the confusion matrix there (the card's metrics must stay plain numbers).
    meta: dict | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.names)


def read_names(data_dir: Path) -> tuple[list[tuple[str, str]], list[Path]]:
    """All (name, language) pairs of ``data_dir/*.txt`` (language = file stem), and the files read."""
    data_dir = Path(data_dir)
    files = sorted(p for p in data_dir.glob("*.txt") if p.stem.upper() not in ("SOURCES", "README", "LICENSE"))
    if not files:
        raise FileNotFoundError(f"no <Language>.txt files in {data_dir} (expected e.g. {data_dir}/Russian.txt)")
    pairs = []
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            name = clean_name(line)
            if name:
                pairs.append((name, path.stem))
    return pairs, files


def stratified_split(pairs: list[tuple[str, str]], seed: int = 0, val: float = 0.1, test: float = 0.1
                     ) -> dict[str, list[tuple[str, str]]]:
    """Deduplicate, then split every language separately (same fractions in every split, even for the 73
    Vietnamese names) and keep all the languages of one name in the same split. Deterministic for a seed."""
    rng = random.Random(seed)
    by_lang: dict[str, list[str]] = defaultdict(list)
    for name, lang in sorted(set(pairs)):
        by_lang[lang].append(name)
    where: dict[str, str] = {}  # name -> split, fixed by the first language that places it
    out: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    for lang in sorted(by_lang):
        names = by_lang[lang]
        rng.shuffle(names)
        n = len(names)
        n_test = max(1, round(n * test)) if n >= 3 else 0
        n_val = max(1, round(n * val)) if n >= 3 else 0
        for i, name in enumerate(names):
            split = "test" if i < n_test else "val" if i < n_test + n_val else "train"
            out[where.setdefault(name, split)].append((name, lang))
    return out


def make_sets(parts: dict[str, list[tuple[str, str]]], labels: list[str] | None = None) -> dict[str, NameSet]:
    labels = labels or sorted({lang for items in parts.values() for _, lang in items})
    index = {lang: i for i, lang in enumerate(labels)}
    sets = {}
    for split, items in parts.items():
        counts = defaultdict(int)
        for _, lang in items:
            counts[lang] += 1
        sets[split] = NameSet([n for n, _ in items], [index[lang] for _, lang in items], labels, split,
                              dict(sorted(counts.items())))
    return sets


def build_vocab(names: list[str]) -> list[str]:
    """The characters a model reads and writes: the ASCII letters plus every character of the training names
    (sorted); the card's meta stores this list as "chars", the learnt tokens of a core.data.Vocab."""
    return Vocab.build((list(n) for n in names), first=BASE_CHARS, order="alpha").words


def encode(name: str, chars: list[str]) -> tuple[list[int], list[str]]:
    """Character ids (unknown characters -> <unk>) and the list of characters that were unknown."""
    vocab = Vocab(chars)
    return vocab.encode(list(name)), vocab.unknown(list(name))


def decode(ids: list[int], chars: list[str]) -> str:
    """Ids -> the name, up to </s> (the other specials dropped)."""
    return "".join(Vocab(chars).decode(ids))


# ---- synthetic data ---------------------------------------------------------------------------------------------
# Made-up names for tests and smoke runs: each of the 18 real language labels gets its own syllables and ending,
# so a model can learn to tell them apart in a few steps. None of these strings comes from the dataset.
LANGUAGES = ["Arabic", "Chinese", "Czech", "Dutch", "English", "French", "German", "Greek", "Irish", "Italian",
             "Japanese", "Korean", "Polish", "Portuguese", "Russian", "Scottish", "Spanish", "Vietnamese"]
_SYLLABLES = ["ba", "ko", "ri", "ta", "mu", "zel", "on", "qua", "ve", "lo", "sh", "dri", "ny", "pa", "ik", "we",
              "tor", "ha", "ge", "fu", "xi", "ja", "ul", "me"]
_ENDINGS = ["ab", "ng", "ek", "je", "by", "ieu", "mann", "poulos", "agh", "ini", "oto", "eon", "ski", "eira",
            "ov", "och", "ez", "uyen"]


def synthetic_pairs(seed: int = 0, per_language: int = 12) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    pairs = []
    for k, lang in enumerate(LANGUAGES):
        own = [_SYLLABLES[(k + j) % len(_SYLLABLES)] for j in (0, 5, 11)]  # three syllables typical of this label
        for _ in range(per_language):
            body = "".join(rng.choice(own) for _ in range(rng.randint(1, 2)))
            name = (body + _ENDINGS[k]).capitalize()
            pairs.append((name, lang))
    return pairs


class NamesData:
    """load_data and synthetic_data for both tasks (a mixin): the same files and split, each task's ``_splits``
    (pairs, files, seed, dataset description) building its own sets and meta."""

    split_note: str = ""  # the end of the dataset description: what this task's split adds

    def load_data(self, data_dir: Path):
        pairs, files = read_names(data_dir)
        return self._splits(pairs, files, 0, f"{len(pairs)} lines, {len(set(pairs))} distinct (name, language) pairs; "
                                             f"stratified 80/10/10 split by language (seed 0), {self.split_note}")

    def synthetic_data(self, seed: int = 0):
        return self._splits(synthetic_pairs(seed), [], seed, "synthetic made-up names, 12 per language")
