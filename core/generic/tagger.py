"""SequenceTagger: a sequence -> one tag per step (many-to-many, aligned), e.g. part of speech or named entities.

The network (core.shapes.ManyToMany) answers at every step from that step's state: p(y_t | x) = softmax(W h_t + b),
with h_t from the left only, or from both sides (bidirectional: the word after "bank" says which bank). The loss is
the cross-entropy of every step's tag, padding skipped.

Scores: accuracy per step beside tagging every word with the most common training tag; when the tags name entities
(BIO / IOB / BIOES: O, B-PER, I-PER ...) also entity F1 (seqeval, the CoNLL way: an entity counts only when its
type and whole span are right) beside tagging everything O, and F1 is the headline.

Raw examples: (text, tags), both whitespace-separated, one tag per word (or per character with tokens="char").
meta: tokens, split_punct, vocab, tags, majority (the most common tag's index), entities.
"""

from __future__ import annotations

from pathlib import Path

import torch

from core.data import PAD
from core.generic.base import IGNORE, Cut, SequenceTask, most_common, pad_steps, read_pairs
from core.generic.text import steps, tokenize
from core.shapes import ManyToMany

ENTITY_METRIC = ("f1", True, "how well the named things (B-/I- tags) are found whole, from 0 to 1")


def is_entity_tags(tags) -> bool:
    """Tags in the BIO / IOB / BIOES scheme of named entities (O, B-PER, I-PER, ...): entity F1 scores them."""
    tags = set(tags)
    return any(t[:2] in ("B-", "I-", "S-", "E-") for t in tags) and all(
        t == "O" or (t[:2] in ("B-", "I-", "S-", "E-") and len(t) > 2) for t in tags)


def entity_f1(gold: list[list[str]], pred: list[list[str]]) -> float:
    """Entity F1 (seqeval, the CoNLL way): an entity counts only when its type and its whole span are right."""
    from seqeval.metrics import f1_score

    return float(f1_score(gold, pred, zero_division=0))


def punct_split(seqs, share: float = 0.98) -> bool:
    """Were these whitespace tokens already split from their punctuation (a CoNLL file: "," is its own token)?
    Yes when nearly every token is one token to tokenize() and some of them are punctuation."""
    n = whole = punct = 0
    for s in seqs:
        for t in s:
            n += 1
            whole += len(tokenize(t)) == 1
            punct += not any(ch.isalnum() for ch in t)
    return n > 0 and whole >= share * n and punct > 0


def read_tagged(path: Path) -> list[tuple[str, str]]:
    """``words<TAB>tags`` per line, one tag per word -> (sentence, tags) rows."""
    rows = read_pairs(path)
    for n, (text, tags) in enumerate(rows, 1):
        if len(text.split()) != len(tags.split()):
            raise ValueError(f"{path}: row {n}: {len(text.split())} words but {len(tags.split())} tags")
    return rows


class SequenceTagger(SequenceTask):
    """Many-to-many (aligned): a text -> one tag per word (or character). Tags that name entities (BIO) are scored
    with entity F1 too; a subclass makes it the headline with ``Recipe(metric="f1")``."""

    shape = "many_to_many"
    summary = "A sequence -> one label per step."
    metric_meaning = "share of steps tagged right"
    tokens = "word"

    # ---- data --------------------------------------------------------------------------------------------------
    def read_rows(self, path: Path) -> list:
        return read_tagged(path)

    def split_punct(self, train: list) -> bool:
        """Tags line up with whitespace words; typed text is split like the training rows were."""
        return self.tokens == "word" and punct_split(steps(t, self.tokens) for t, _ in train)

    def encoder(self, train: list, examples: list, meta: dict, cut: Cut):
        mode = meta["tokens"]
        vocab = self.build_vocab(self.cells(t, meta) for t, _ in train)
        tags = sorted({g for _, y in examples for g in steps(y, mode)})
        meta.update(vocab.to_meta())
        meta.update(tags=tags, majority=tags.index(most_common(g for _, y in train for g in steps(y, mode))),
                    entities=is_entity_tags(tags))

        def enc(part):
            return [(vocab.encode(cut(steps(t, mode), (id(part), k))), [tags.index(g) for g in steps(y, mode)[:cut.n]])
                    for k, (t, y) in enumerate(part)]
        return enc

    def collate(self, part: list) -> dict:
        x, lengths = pad_steps([ids for ids, _ in part])  # (B, T), (B,)
        y, _ = pad_steps([tags for _, tags in part], value=IGNORE)  # (B, T)
        return {"x": x, "lengths": lengths, "y": y}

    # ---- model -------------------------------------------------------------------------------------------------
    def build_model(self, config: dict, meta: dict):
        cfg = self.model_config(config)
        return ManyToMany(cfg.embed_size, cfg.hidden_size, len(meta["tags"]), cfg.cell, cfg.num_layers,
                          cfg.bidirectional, cfg.dropout, vocab_size=len(self.vocab(meta)), pad_id=PAD)

    def loss(self, model, batch) -> torch.Tensor:
        return self.step_loss(model(batch["x"], batch["lengths"]), batch["y"])  # logits (B, T, C)

    def evaluate(self, model, data) -> dict:
        """loss, accuracy per step, baseline_accuracy (the most common tag) and rows; with entity tags also f1 and
        baseline_f1 (everything O)."""
        meta = model.runtime.meta
        tags = model.runtime.labels
        loss_sum = right = base_right = total = 0.0
        gold_tags: list[list[str]] = []
        pred_tags: list[list[str]] = []
        f1 = meta.get("entities") or self.recipe.metric == "f1"
        for b in self.scored_batches(model, data):
            logits, y = model(b["x"], b["lengths"]), b["y"]  # (B, T, C), (B, T)
            mask = y != IGNORE  # (B, T)
            loss_sum += float(self.step_loss(logits, y, "sum"))
            pred = logits.argmax(-1)  # (B, T)
            right += float(((pred == y) & mask).sum())
            base_right += float(((y == meta.get("majority", -1)) & mask).sum())
            total += float(mask.sum())
            if f1:
                for p_row, y_row, m_row in zip(pred.tolist(), y.tolist(), mask.tolist()):
                    gold_tags.append([tags[t] for t, m in zip(y_row, m_row) if m])
                    pred_tags.append([tags[t] for t, m in zip(p_row, m_row) if m])
        total = max(total, 1.0)
        out = {"loss": loss_sum / total, "rows": float(len(data)), "accuracy": right / total}
        if "majority" in meta:
            out["baseline_accuracy"] = base_right / total
        if gold_tags:
            out["f1"] = entity_f1(gold_tags, pred_tags)
            out["baseline_f1"] = entity_f1(gold_tags, [["O"] * len(g) for g in gold_tags])
        return out

    # ---- serving -----------------------------------------------------------------------------------------------
    def predict(self, model, input) -> dict:
        toks, ids, notes = self.read_text(model, input)
        with torch.inference_mode():
            probs = model(*pad_steps([ids])).softmax(-1)[0]  # (T, C)
        p, idx = probs.max(-1)
        tags = model.runtime.labels
        return {"tokens": [{"word": w, "tag": tags[int(i)], "prob": float(q)} for w, i, q in zip(toks, idx, p)],
                "notes": notes}

    def inspect_loss(self, model, input) -> tuple[torch.Tensor, list[str]]:
        """The model's own tags as the targets."""
        toks, ids, _ = self.read_text(model, input)
        logits = model(*pad_steps([ids]))[0]  # (T, C)
        return torch.nn.functional.cross_entropy(logits, logits.argmax(-1).detach()), toks
