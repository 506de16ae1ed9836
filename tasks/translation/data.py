"""Tatoeba English-French pairs (manythings.org "fra-eng.zip"): reading, a leak-free split, and a reversible
tokenizer.

The tokenizer marks a token that follows a space with "▁" (as SentencePiece does), so detokenizing is exact:
"Comment vas-tu ?" -> ["▁Comment", "▁vas", "-", "tu", "▁?"] -> "Comment vas-tu ?".
"""

from __future__ import annotations

import io
import random
import re
import unicodedata
import zipfile
from collections import Counter
from pathlib import Path

ZIP_NAME = "fra-eng.zip"
INNER = "fra.txt"
SPACE = "▁"
PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
SPECIALS = [PAD, BOS, EOS, UNK]
# a word (letters/digits, with a trailing apostrophe so "l'", "n'", "don'" stay whole) or one punctuation mark
_TOKEN = re.compile(r"\w+['’]?|[^\w\s]", re.UNICODE)
_CONTROL = re.compile(r"[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200b-\u200d\u2060\ufeff]")


def clean(text: str) -> str:
    """NFC, no control characters, every run of whitespace (incl. the French no-break spaces) one space."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    return " ".join(text.split())


def tokenize(text: str) -> list[str]:
    """Reversible: detokenize(tokenize(t)) == clean(t)."""
    text = clean(text)
    out = []
    for m in _TOKEN.finditer(text):
        s = m.start()
        out.append((SPACE if s == 0 or text[s - 1] == " " else "") + m.group())
    return out


def detokenize(tokens: list[str]) -> str:
    return "".join(tokens).replace(SPACE, " ").strip()


def surface(token: str) -> str:
    """A token as a person reads it (no space marker)."""
    return token.replace(SPACE, "")


def n_words(text: str) -> int:
    return len(text.split())


def norm_key(english: str) -> str:
    """Grouping key for the split: lower case, letters and digits only -- "Go!" and "go." are one sentence."""
    return " ".join(re.findall(r"\w+", clean(english).lower()))


def read_pairs(path: Path) -> list[tuple[str, str]]:
    """(english, french) pairs from the zip as distributed (fra.txt inside, "English<TAB>French" per line)."""
    with zipfile.ZipFile(path) as zf:
        name = next((n for n in zf.namelist() if n.rsplit("/", 1)[-1] == INNER), None)
        if name is None:
            raise FileNotFoundError(f"{path.name} has no {INNER}")
        raw = zf.read(name)
    pairs = []
    for line in io.StringIO(raw.decode("utf-8")):
        parts = line.rstrip("\r\n").split("\t")
        if len(parts) < 2:
            continue
        en, fr = clean(parts[0]), clean(parts[1])
        if en and fr:
            pairs.append((en, fr))
    return pairs


def split_pairs(pairs: list[tuple[str, str]], seed: int = 0, val_frac: float = 0.05, test_frac: float = 0.05):
    """Seeded split by normalised English sentence: all translations of one sentence land in the same split."""
    keys = sorted({norm_key(en) for en, _ in pairs})
    random.Random(seed).shuffle(keys)
    n_val, n_test = int(len(keys) * val_frac), int(len(keys) * test_frac)
    where = {k: "test" for k in keys[:n_test]}
    where.update({k: "val" for k in keys[n_test:n_test + n_val]})
    out = {"train": [], "val": [], "test": []}
    for en, fr in pairs:
        out[where.get(norm_key(en), "train")].append((en, fr))
    return out


def build_vocab(token_lists, max_size: int, min_count: int = 2) -> list[str]:
    counts = Counter(t for toks in token_lists for t in toks)
    words = [w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_count]
    return SPECIALS + words[:max_size - len(SPECIALS)]
