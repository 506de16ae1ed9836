"""Tatoeba English-French pairs (manythings.org "fra-eng.zip"): reading, a leak-free split, and a reversible
tokenizer.

The tokenizer marks a token that follows a space with "▁" (as SentencePiece does), so detokenizing is exact:
"Comment vas-tu ?" -> ["▁Comment", "▁vas", "-", "tu", "▁?"] -> "Comment vas-tu ?" -- except that an elided French
word ("l'", "qu'") is always glued to the next one, as French writes it ("L'" + a copied "▁Zanzibar" -> "L'Zanzibar").
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
# an elided French word: the article/pronoun/conjunction that loses its vowel before the next word
_ELIDED = re.compile(r"(?:[cdjlmnst]|qu|jusqu|lorsqu|puisqu|quoiqu|presqu)['’]", re.IGNORECASE)


def strip_invisible(text: str) -> str:
    """Drop what a reader cannot see but a renderer obeys: control characters (whitespace ones become a space),
    format characters -- the bidi embeddings/overrides/isolates (U+202A-U+202E, U+2066-U+2069), the direction marks,
    zero-width spaces and joiners, soft hyphens, the BOM -- and lone surrogates. Printable text is returned as is."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat in ("Cf", "Cs", "Co", "Cn"):
            continue
        if cat == "Cc":
            if ch.isspace():
                out.append(" ")
            continue
        out.append(ch)
    return "".join(out)


def clean(text: str) -> str:
    """NFC, no control, format or zero-width characters (strip_invisible), every run of whitespace (incl. the
    French no-break spaces) one space."""
    text = strip_invisible(unicodedata.normalize("NFC", text))
    return " ".join(text.split())


def normalise_case(text: str, known=None) -> str:
    """Sentence case for a text typed in ALL CAPITALS or With Every Word Capitalised (three words or more), which
    a model trained on ordinary sentences reads as unknown words; any other text is returned unchanged.

    Each sentence's first word and "I" get a capital; every other word is lower case unless ``known`` (a
    predicate, e.g. "is in the vocabulary") knows it only as Capitalised ("Paris", "Tom") or only in CAPITALS."""
    words = re.findall(r"[^\W\d_]+", text)
    long = [w for w in words if len(w) > 1]
    all_caps = len(long) >= 2 and not any(ch.islower() for ch in text)
    title = len(long) >= 3 and all(w[0].isupper() and (w[1:].islower() or len(w) == 1) for w in words)
    if not (all_caps or title):
        return text
    lower = text.lower()
    out, last = [], 0
    for m in re.finditer(r"[^\W\d_]+", lower):
        w = m.group()
        first = not out or re.search(r"[.!?]", lower[last:m.start()]) is not None
        if first or w == "i":
            w = w[:1].upper() + w[1:]
        elif known is not None and not known(w):
            for form in (w[:1].upper() + w[1:], w.upper()):
                if known(form):
                    w = form
                    break
        out.append(lower[last:m.start()] + w)
        last = m.end()
    return "".join(out) + lower[last:]


def tokenize(text: str) -> list[str]:
    """Reversible: detokenize(tokenize(t)) == clean(t)."""
    text = clean(text)
    out = []
    for m in _TOKEN.finditer(text):
        s = m.start()
        out.append((SPACE if s == 0 or text[s - 1] == " " else "") + m.group())
    return out


def detokenize(tokens: list[str]) -> str:
    """Tokens -> text: each space marker becomes a space, but never right after an elided word ("L'" "▁avion" ->
    "L'avion"; French writes no space there)."""
    out = []
    for t in tokens:
        if out and t.startswith(SPACE) and _ELIDED.fullmatch(surface(out[-1]).strip()):
            t = t[len(SPACE):]
        out.append(t)
    return "".join(out).replace(SPACE, " ").strip()


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


# the marks that end a sentence; people chatting often leave them out
_FINAL = re.compile(r"[\s.!?…;:]+$")
_STARTS_SENTENCE = {".", "!", "?", "…"}


def drop_final_punct(text: str) -> str:
    """The text without the marks that end it ("Where is it?" -> "Where is it"); a text of marks only is kept."""
    bare = _FINAL.sub("", text)
    return bare if bare.strip() else text


def casual(text: str) -> str:
    """English as people often type it in a chat box: all lower case, no final punctuation mark."""
    return drop_final_punct(clean(text).lower())


def bare_tokens(tokens: list[str]) -> list[str]:
    """Tokens without the final punctuation marks (as drop_final_punct does to the text); a sentence of marks only
    is kept."""
    end = len(tokens)
    while end > 0 and _FINAL.fullmatch(surface(tokens[end - 1])):
        end -= 1
    return tokens[:end] if end else tokens


def truecase(tokens: list[str], known) -> list[str]:
    """Each word in the casing the vocabulary knows, so "how are you doing", "How are you doing?" and "HOW ARE YOU
    DOING" reach the model as the same words: at the start of a sentence the Capitalised form is tried first
    ("how" -> "How", as the training sentences begin), elsewhere the form as typed ("how" stays "how", "Paris" stays
    "Paris"), then lower case, Capitalised ("i" -> "I", "paris" -> "Paris") and CAPITALS. ``known(token)``: is this
    token (space marker included) in the vocabulary. A word known in no casing is left as typed."""
    out = []
    start = True
    for tok in tokens:
        word = surface(tok)
        mark = tok[: len(tok) - len(word)]
        if any(ch.isalpha() for ch in word):
            cap = word[:1].upper() + word[1:].lower()
            order = [cap, word, word.lower(), word.upper()] if start else [word, word.lower(), cap, word.upper()]
            tok = next((mark + w for w in order if known(mark + w)), tok)
        out.append(tok)
        if word.strip():
            start = word in _STARTS_SENTENCE
    return out
