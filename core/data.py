"""Data helpers every task needs: padding, length-bucketed batches, row splits, multi-reference BLEU, configs.

Recurrent networks read sequences of different lengths, and a batch is one rectangular tensor, so sequences are
**padded** to the longest in the batch and the true lengths travel alongside (``pad``, ``seq_lengths``; the
recurrent layer uses the lengths so padding never changes a result).

Padding costs compute: a batch of one 5-word and one 50-word sentence spends ten times the work on the short one.
**Length-bucketed batches** (``bucket_batches``) sort the examples by length and cut the sorted list into batches,
so each batch holds examples of (almost) one length. Sorting alone would give the same batches in the same order
every epoch, which training does not like; when shuffling, examples of equal length are ordered at random (so
which ones share a batch changes) and the order of the batches is shuffled. The same seed gives the same batches.

**Row splits** (``split_rows``): a table of examples becomes train / validation / test by one seeded shuffle, so
the same data and seed always give the same split (and a trained model is scored on rows it never saw).

**BLEU** (``corpus_bleu``, ``corpus_chrf``) scores generated text (a translation, a caption) by the n-grams it
shares with human references; several references per sentence are allowed, because there is more than one good
translation. sacrebleu computes it. It wants the references as "streams" -- stream j holds every sentence's j-th
reference -- so sentences with fewer references than the others leave a gap: ``reference_streams`` fills a gap
with ``None``, which sacrebleu reads as "no reference here". That is the one rule: a missing reference is
*absent*, never a copy of another one. (A copy would give the same BLEU -- BLEU takes, per n-gram, the most any
one reference allows, and the closest reference length -- but it is not true to the data, and chrF and other
metrics that average over references would be skewed by it.) A sentence with no reference at all cannot be scored
and is an error, as is a reference that is an empty string (sacrebleu would read it as missing, too).

**Inputs the model barely knows** (``guess_note``): a model answers every input, even one in another language or
made of emoji, and its confidence then means nothing. When most of the words of an input are outside what it learnt
(never seen, or seen too rarely to have learnt anything about them), the answer is a guess and the page says so.

**Contractions typed without their apostrophe** (``restore_apostrophes``): people type "dont", "im", "thats" in a
chat box; a model trained on edited text has seen only "don't", "I'm", "that's" and reads the bare forms as unknown
words. Forms that are also words of their own ("its", "ill", "were", "well", "id", "lets", "hell", "wed", "shell")
are left as typed: only the text around them could tell which was meant.

**Chat spellings** (``spell_out_chat``): "how r u", "thx", "see u tmrw" -- the short forms of a chat box, which edited
training text never has, are spelt out ("how are you") when the model does not know them; ambiguous ones ("ur":
your or you're) are left as typed.

**Vocabularies** (``Vocab``): a model reads ids, a person types tokens. A vocabulary is the special tokens
first (padding, unknown, start, end: ids 0-3 by default), then the tokens learnt from the training split, by count
(ties alphabetical) or alphabetically, at most ``max_size`` of them and each seen at least ``min_count`` times.
A card stores the learnt tokens as a plain list under a key of its meta (``to_meta`` / ``from_meta``), so the
weights rebuild the same ids without the training data.

**Configs from dicts** (``config_from_dict``): a model's settings are a dataclass (one field per setting, each with
its reason), and a card stores them as a JSON dict. Rebuilding the dataclass from the dict must not guess: a key
the dataclass does not know (a typo, a setting that was removed) or a setting the dict does not give is a clear
error naming the keys, instead of a silently different model.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import torch

C = TypeVar("C")


# ---- padding ------------------------------------------------------------------------------------------------------

def pad(seqs: Sequence[Sequence[int]], value: int = 0) -> torch.Tensor:
    """Integer sequences -> one (B, T) long tensor, each row filled with ``value`` after its end (T = the longest).

    An empty list of sequences, or only empty sequences, gives a (B, 0) tensor: give a task's empty input a token
    (e.g. <unk>) before padding if its model cannot read zero steps."""
    T = max((len(s) for s in seqs), default=0)
    x = torch.full((len(seqs), T), value, dtype=torch.long)  # (B, T)
    for b, s in enumerate(seqs):
        if len(s):
            x[b, :len(s)] = torch.as_tensor(list(s), dtype=torch.long)
    return x


def seq_lengths(seqs: Sequence[Sequence[Any]]) -> torch.Tensor:
    """(B,) long tensor of the sequences' true lengths: what the recurrent layer needs next to ``pad``'s tensor."""
    return torch.tensor([len(s) for s in seqs], dtype=torch.long)


# ---- batches ------------------------------------------------------------------------------------------------------

def shuffled_batches(n: int, batch_size: int, shuffle: bool, seed: int = 0) -> list[list[int]]:
    """Index lists of ``batch_size`` (the last may be smaller) over ``n`` examples: in order, or shuffled from
    ``seed`` (``random.Random(seed).shuffle``, so a seed always gives the same batches). For data whose lengths do
    not vary enough for ``bucket_batches`` to pay."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = list(range(n))
    if shuffle:
        random.Random(seed).shuffle(order)
    return [order[k:k + batch_size] for k in range(0, n, batch_size)]


def bucket_batches(lengths: Sequence[int], batch_size: int, shuffle: bool, seed: int = 0) -> list[list[int]]:
    """Index lists, one per batch, of examples with similar length (so little padding).

    Examples are sorted by length; ties are broken by index (``shuffle=False``: always the same batches, in order
    of length) or at random from ``seed`` (``shuffle=True``), and then the batches' order is shuffled from
    ``seed + 1``. Every index appears exactly once; only the last batch may be smaller than ``batch_size``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = list(range(len(lengths)))
    rng = random.Random(seed)
    key = {i: (lengths[i], rng.random() if shuffle else i) for i in order}
    order.sort(key=key.__getitem__)
    chunks = [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
    if shuffle:
        random.Random(seed + 1).shuffle(chunks)
    return chunks


# ---- row splits ---------------------------------------------------------------------------------------------------

def split_rows(rows: Sequence[Any], seed: int = 0, max_eval: int | None = None) -> tuple[list, list, list]:
    """(train, validation, test): one shuffle with ``seed``, then 10% of the rows each for validation and test
    (at least one row each, at most ``max_eval`` each when given), the rest (80%) for training."""
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    n_eval = max(1, len(rows) // 10)
    if max_eval is not None:
        n_eval = min(n_eval, max_eval)
    return rows[2 * n_eval:], rows[n_eval:2 * n_eval], rows[:n_eval]


# ---- multi-reference BLEU -----------------------------------------------------------------------------------------

def reference_streams(refs: Sequence[Sequence[str]]) -> list[list[str | None]]:
    """refs[i] = every reference of sentence i (their number may differ) -> sacrebleu's streams: stream j holds
    each sentence's j-th reference, ``None`` where a sentence has fewer than j + 1 (sacrebleu skips those)."""
    for i, r in enumerate(refs):
        if not r:
            raise ValueError(f"sentence {i} has no reference: BLEU cannot score it")
        if any(not isinstance(s, str) or not s.strip() for s in r):
            raise ValueError(f"sentence {i} has an empty or non-text reference: {list(r)!r}")
    width = max((len(r) for r in refs), default=0)
    return [[r[j] if j < len(r) else None for r in refs] for j in range(width)]


def _check(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> None:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but references for {len(refs)} sentences")


def corpus_bleu(hyps: Sequence[str], refs: Sequence[Sequence[str]], max_order: int = 4,
                lowercase: bool = False) -> float:
    """Corpus BLEU (0-100) of ``hyps[i]`` against all of ``refs[i]``: sacrebleu with its 13a tokenisation,
    n-grams up to ``max_order`` (BLEU-1 .. BLEU-4), case-sensitive unless ``lowercase``. 0.0 for no sentences."""
    from sacrebleu.metrics import BLEU

    _check(hyps, refs)
    if not hyps:
        return 0.0
    return float(BLEU(max_ngram_order=max_order, lowercase=lowercase).corpus_score(
        list(hyps), reference_streams(refs)).score)


def corpus_chrf(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """Corpus chrF (0-100, sacrebleu defaults): character n-gram F-score, kinder than BLEU to a word that is
    almost right (one wrong ending). Same references and missing-reference rule as ``corpus_bleu``."""
    from sacrebleu.metrics import CHRF

    _check(hyps, refs)
    if not hyps:
        return 0.0
    return float(CHRF().corpus_score(list(hyps), reference_streams(refs)).score)


# ---- vocabularies ------------------------------------------------------------------------------------------------

SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")  # ids 0-3 of a Vocab unless it is given others
PAD, UNK, BOS, EOS = 0, 1, 2, 3  # their ids


class Vocab:
    """Tokens <-> ids: ``specials`` first (ids 0 .. len(specials) - 1), then the learnt ``words``.

    encode() maps a token it lacks to ``unk`` (or, with ``fold_case``, first to the id of its most frequent form in
    any case: "Boring" reads as "boring" when only that was seen). decode() stops at ``stop`` and drops the other
    specials, writing ``unk_as`` for the unknown token when given."""

    def __init__(self, words: Sequence[str], specials: Sequence[str] = SPECIALS, unk: str | None = "<unk>",
                 fold_case: bool = False):
        self.specials = tuple(specials)  # their ids are their positions
        self.words = list(words)  # the learnt tokens; id = len(specials) + position
        self.itos = list(self.specials) + self.words  # id -> token
        # token -> id (a word equal to a special: the word). Text encodes to the words' ids only (id_of): one dict
        # serves both, a vocabulary's largest part in memory.
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.unk_id = self.specials.index(unk) if unk is not None else None
        self.fold_case = fold_case
        self.lower: dict[str, int] = {}  # lower-cased token -> id of its first (most frequent) form
        if fold_case:
            for t in dict.fromkeys(self.words):
                self.lower.setdefault(t.lower(), self.stoi[t])

    @classmethod
    def build(cls, token_lists, specials: Sequence[str] = SPECIALS, max_size: int | None = None, min_count: int = 1,
              first: Sequence[str] = (), order: str = "count", **kwargs) -> Vocab:
        """From the training split's token lists: ``first`` always (in its order), then every other token seen at
        least ``min_count`` times, by ``order`` -- "count" (most frequent first, ties alphabetical) or "alpha" --
        and at most ``max_size`` learnt tokens in all."""
        counts: dict[str, int] = {}
        for toks in token_lists:
            for t in toks:
                counts[t] = counts.get(t, 0) + 1
        fixed = list(dict.fromkeys(first))
        seen = set(fixed)
        rest = [t for t, c in counts.items() if c >= min_count and t not in seen]
        rest.sort(key=(lambda t: (-counts[t], t)) if order == "count" else None)
        words = fixed + rest
        return cls(words[:max_size] if max_size is not None else words, specials, **kwargs)

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any], key: str = "vocab", specials: Sequence[str] = SPECIALS,
                  with_specials: bool = False, **kwargs) -> Vocab:
        """The vocabulary a card's meta stores under ``key``: the learnt tokens alone (``with_specials=False``, how
        Your data, the shape classes and rnnlab-names store it) or every id's token, specials first (captioning)."""
        tokens = list(meta[key])
        if with_specials:
            if tuple(tokens[:len(specials)]) != tuple(specials):
                raise ValueError(f"meta[{key!r}] should start with the specials {list(specials)}")
            tokens = tokens[len(specials):]
        return cls(tokens, specials, **kwargs)

    def to_meta(self, key: str = "vocab", with_specials: bool = False) -> dict[str, list[str]]:
        """{key: tokens} for a card's meta; from_meta with the same arguments reads it back."""
        return {key: list(self.itos if with_specials else self.words)}

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and (self.itos, self.unk_id) == (other.itos, other.unk_id)

    def id_of(self, token: str) -> int | None:
        """The id ``token`` encodes to, or None when it is unknown (and there is no ``unk`` to read it as)."""
        i = self.stoi.get(token)
        if i is not None and i < len(self.specials):  # "<pad>" typed as text is a word like any other, unknown
            i = None
        if i is None and self.fold_case:
            i = self.lower.get(token.lower())
        return i if i is not None else self.unk_id

    def encode(self, tokens: Sequence[str]) -> list[int]:
        """Tokens -> ids (a vocabulary without ``unk`` drops the tokens it lacks)."""
        ids = [self.id_of(t) for t in tokens]
        return [i for i in ids if i is not None]

    def unknown(self, tokens: Sequence[str]) -> list[str]:
        """The different tokens of ``tokens`` that encode() reads as unknown, sorted."""
        return sorted({t for t in tokens if self.id_of(t) in (None, self.unk_id)})

    def decode(self, ids: Sequence[int], stop: int | None = EOS, unk_as: str | None = None) -> list[str]:
        """Ids -> learnt tokens, up to ``stop`` (not included); other specials are dropped, the unknown one
        written as ``unk_as`` when given."""
        out = []
        n = len(self.specials)
        for i in ids:
            i = int(i)
            if i == stop:
                break
            if i >= n:
                out.append(self.itos[i])
            elif i == self.unk_id and unk_as is not None:
                out.append(unk_as)
        return out


# ---- strict config-from-dict --------------------------------------------------------------------------------------

def config_from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
    """Build the config dataclass ``cls`` from ``data`` (e.g. a card's "config"), every field given exactly once.

    Raises ValueError naming the unknown keys (not fields of ``cls``) and the missing ones (fields ``data`` does
    not give, even those with a default: a stored config that leaves a setting out would otherwise silently take
    today's default, which may not be what it was trained with). Start from ``dataclasses.asdict(cls())`` and
    override keys to change a few settings."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if not isinstance(data, Mapping):
        raise TypeError(f"a {cls.__name__} is built from a dict of its fields, got {type(data).__name__}")
    known = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(data) - set(known))
    missing = [k for k in known if k not in data]
    if unknown or missing:
        parts = ([f"unknown keys {unknown}"] if unknown else []) + ([f"missing keys {missing}"] if missing else [])
        raise ValueError(f"{cls.__name__}: {'; '.join(parts)}; its fields are {known}")
    return cls(**data)


__all__ = ["Vocab", "SPECIALS", "pad", "seq_lengths", "bucket_batches", "split_rows", "reference_streams", "corpus_bleu",
           "corpus_chrf", "config_from_dict"]


# ---- inputs the model barely knows ----------------------------------------------------------------------------------

GUESS_SHARE = 0.5  # at least this share of the words unfamiliar -> the answer is called a guess


def rare_ids_from(vocab_size: int, share: float = 0.5) -> int:
    """The first id of the "barely seen" words in a vocabulary sorted by training frequency: its last ``share``
    (in a vocabulary of every training word, that tail is the words seen once or twice)."""
    return max(1, int(vocab_size * (1.0 - share)))


def guess_note(words: Sequence[str], unfamiliar: Sequence[bool], learnt_from: str = "its training data",
               threshold: float = GUESS_SHARE, kind: tuple[str, str] = ("word", "words")) -> str | None:
    """A sentence for the page when most ``words`` are unfamiliar to the model (``unfamiliar[i]``: never seen in
    training, or too rarely to have learnt it); None when the model knows enough of them. Punctuation that the
    model knows is not counted; ``learnt_from`` completes "It learnt from ..."; ``kind`` names what was counted
    (one, several) when the caller counted only some of the text's words."""
    pairs = [(w, u) for w, u in zip(words, unfamiliar) if any(ch.isalnum() for ch in w) or u]
    if not pairs:
        return None
    n_new = sum(1 for _, u in pairs if u)
    if n_new / len(pairs) < threshold:
        return None
    shown = ", ".join(dict.fromkeys(w for w, u in pairs if u))
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    how_many = (f"its one {kind[0]} is" if len(pairs) == 1 else
                f"{n_new} of its {len(pairs)} {kind[1]} {'is' if n_new == 1 else 'are'}")
    return (f"This answer is a guess: {how_many} new to the model or nearly so ({shown}). It learnt from "
            f"{learnt_from}; another language, emoji or very rare words tell it almost nothing, so its confidence "
            "here means little.")


# The apostrophe-less spellings people type, each with its written form; none is an English word of its own.
APOSTROPHES = {
    **{w[:-2] + w[-1]: w for w in (
        "don't", "didn't", "doesn't", "isn't", "wasn't", "aren't", "weren't", "haven't", "hasn't", "hadn't",
        "couldn't", "wouldn't", "shouldn't", "can't", "won't", "ain't", "mustn't", "needn't")},
    "im": "i'm", "youre": "you're", "theyre": "they're", "ive": "i've", "youve": "you've", "weve": "we've",
    "theyve": "they've", "couldve": "could've", "wouldve": "would've", "shouldve": "should've", "youll": "you'll",
    "theyll": "they'll", "youd": "you'd", "theyd": "they'd", "thats": "that's", "whats": "what's",
    "wheres": "where's", "theres": "there's", "heres": "here's", "whos": "who's", "hows": "how's", "shes": "she's",
    "hes": "he's",
}
_BARE = re.compile(r"\b(" + "|".join(sorted(APOSTROPHES, key=len, reverse=True)) + r")\b", re.IGNORECASE)


def _in_case_typed(typed: str, form: str) -> str:
    """``form`` in the case ``typed`` was typed in (CAPITALS, Capitalised or lower); "I" keeps its capital."""
    if typed.isupper() and len(typed) > 1:
        return form.upper()
    if typed[0].isupper() or form.startswith(("i'", "i ")):
        return form[0].upper() + form[1:]
    return form


def restore_apostrophes(text: str) -> str:
    """``text`` with each contraction typed without its apostrophe written with it ("i dont know" -> "i don't
    know", "IM HERE" -> "I'M HERE"), in the case it was typed in; "I'm" gets its capital I."""
    return _BARE.sub(lambda m: _in_case_typed(m.group(), APOSTROPHES[m.group().lower()]), text)


# Short forms typed in chat, each with the words it stands for; none is ambiguous in a sentence ("ur", your or
# you're, is not here).
CHAT_FORMS = {
    "u": "you", "r": "are", "ya": "you", "pls": "please", "plz": "please", "thx": "thanks", "thnx": "thanks",
    "thanx": "thanks", "ty": "thank you", "tmrw": "tomorrow", "tmr": "tomorrow", "2moro": "tomorrow",
    "2day": "today", "2nite": "tonight", "tonite": "tonight", "idk": "i don't know", "b4": "before",
    "ppl": "people", "cuz": "because", "coz": "because", "luv": "love", "msg": "message", "abt": "about",
    "cya": "see you", "bday": "birthday", "thru": "through", "wanna": "want to", "gonna": "going to",
    "gotta": "have to",
}
_CHAT = re.compile(r"(?<![\w'.-])(" + "|".join(sorted(map(re.escape, CHAT_FORMS), key=len, reverse=True))
                   + r")(?![\w'-])(?!\.\w)", re.IGNORECASE)  # a whole word: not in "u.s.", "u-turn", "r2"


def spell_out_chat(text: str, known=None) -> str:
    """``text`` with the chat short forms of ``CHAT_FORMS`` spelt out ("how r u" -> "how are you"), in the case they
    were typed in; a single capital letter ("R. Smith") stays unless the whole text is in capitals. ``known(word)``:
    does the model know this word as it is (then it is left: a model that learnt "gonna" reads it)? None: every
    short form is spelt out."""
    shouted = not any(ch.islower() for ch in text)

    def out(m: re.Match) -> str:
        typed = m.group()
        if known is not None and known(typed.lower() if shouted else typed):  # in capitals: the word as typed in chat
            return typed
        form = CHAT_FORMS[typed.lower()]
        if shouted:
            return form.upper()
        if len(typed) == 1 and typed.isupper():  # "R. Smith", "Plan U": an initial, a letter
            return typed
        return _in_case_typed(typed, form)

    return _CHAT.sub(out, text)
