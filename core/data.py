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

**Configs from dicts** (``config_from_dict``): a model's settings are a dataclass (one field per setting, each with
its reason), and a card stores them as a JSON dict. Rebuilding the dataclass from the dict must not guess: a key
the dataclass does not know (a typo, a setting that was removed) or a setting the dict does not give is a clear
error naming the keys, instead of a silently different model.
"""

from __future__ import annotations

import dataclasses
import random
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


__all__ = ["pad", "seq_lengths", "bucket_batches", "split_rows", "reference_streams", "corpus_bleu", "corpus_chrf",
           "config_from_dict"]


# ---- inputs the model barely knows ----------------------------------------------------------------------------------

GUESS_SHARE = 0.5  # at least this share of the words unfamiliar -> the answer is called a guess


def rare_ids_from(vocab_size: int, share: float = 0.5) -> int:
    """The first id of the "barely seen" words in a vocabulary sorted by training frequency: its last ``share``
    (in a vocabulary of every training word, that tail is the words seen once or twice)."""
    return max(1, int(vocab_size * (1.0 - share)))


def guess_note(words: Sequence[str], unfamiliar: Sequence[bool], learnt_from: str = "its training data",
               threshold: float = GUESS_SHARE) -> str | None:
    """A sentence for the page when most ``words`` are unfamiliar to the model (``unfamiliar[i]``: never seen in
    training, or too rarely to have learnt it); None when the model knows enough of them. Punctuation that the
    model knows is not counted; ``learnt_from`` completes "It learnt from ..."."""
    pairs = [(w, u) for w, u in zip(words, unfamiliar) if any(ch.isalnum() for ch in w) or u]
    if not pairs:
        return None
    n_new = sum(1 for _, u in pairs if u)
    if n_new / len(pairs) < threshold:
        return None
    shown = ", ".join(dict.fromkeys(w for w, u in pairs if u))
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    how_many = "its one word is" if len(pairs) == 1 else f"{n_new} of its {len(pairs)} words are"
    return (f"This answer is a guess: {how_many} new to the model or nearly so ({shown}). It learnt from "
            f"{learnt_from}; another language, emoji or very rare words tell it almost nothing, so its confidence "
            "here means little.")
