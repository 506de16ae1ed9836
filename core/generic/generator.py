"""SequenceGenerator: a start -> a new sequence, written step by step (one-to-many), e.g. names or short lines.

The network (core.shapes.OneToMany) is a language model: it reads <s> x_1 .. x_{t-1} and gives p(x_t | x_<t); the
loss is the cross-entropy of every next step, the end token </s> included, so it learns where to stop. To write,
it samples a step from p / temperature, feeds it back in, and goes on until </s> or ``max_gen`` steps.

Scores: nll, the average surprise per step (lower is better), beside a model that only knows how often each step
occurs in the training part (the unigram frequency, add-one smoothed: baseline_nll); accuracy, the next step
guessed right with the true previous steps given, for information.

Raw examples: the texts. meta: tokens, split_punct, vocab, unigram (log-frequency of every id).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F

from core.data import BOS, EOS, SPECIALS
from core.generic.base import IGNORE, Cut, SequenceTask, pad_steps
from core.generic.text import control_char, join, steps
from core.layers import recording
from core.shapes import OneToMany
from core.task import BadInput, Demo, Recipe

MAX_GEN = {"char": 60, "word": 25}  # steps a generated sequence has at most
MAX_COUNT = 10  # sequences per request


def read_lines(path: Path) -> list[str]:
    """One example per non-blank line."""
    return [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]


def write_lines(path: Path, rows: list[str]) -> Path:
    """Write ``rows`` in the format the reader above reads (the folder is made when missing)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return Path(path)


class SequenceGenerator(SequenceTask):
    """One-to-many: writes new sequences like its training rows, from an optional start."""

    shape = "one_to_many"
    summary = "A start -> a new sequence, written step by step."
    primary_input = "settings"
    metric_meaning = "average surprise per step (negative log-likelihood; lower is better)"
    recipe = Recipe(metric="nll", higher_is_better=False, epochs=30, batch_size=32, lr=3e-3, patience=5,
                    max_minutes=5.0, clip_norm=1.0)
    max_gen: dict = MAX_GEN  # tokens mode -> steps a generated sequence has at most
    input_type = dict  # {start, temperature, seed, count} (a bare start text is read as {"start": text})
    data_file = "data.txt"  # one sequence per line

    def read_rows(self, path: Path) -> list:
        return read_lines(path)

    def write_rows(self, path: Path, rows: list) -> Path:
        return write_lines(path, rows)

    # ---- data --------------------------------------------------------------------------------------------------
    def encoder(self, train: list, examples: list, meta: dict, cut: Cut):
        vocab = self.build_vocab(self.cells(t, meta) for t in train)
        meta.update(vocab.to_meta())

        def enc(part):
            return [vocab.encode(cut(self.cells(t, meta), (id(part), k))) for k, t in enumerate(part)]
        return enc

    def after_encoding(self, train_ids: list, val_ids: list, meta: dict) -> None:
        """The frequency model: each id's share of the training steps, </s> included (add-one), as log-probs."""
        counts = Counter(i for seq in train_ids for i in seq + [EOS])
        n = len(meta["vocab"]) + len(SPECIALS)
        total = sum(counts.values()) + n
        meta["unigram"] = [round(math.log((counts[i] + 1) / total), 6) for i in range(n)]

    def collate(self, part: list) -> dict:
        x, lengths = pad_steps([[BOS] + s for s in part])  # (B, T): <s> x_1 .. x_n
        y, _ = pad_steps([s + [EOS] for s in part], value=IGNORE)  # (B, T): x_1 .. x_n </s>, the next step each
        return {"x": x, "lengths": lengths, "y": y}

    # ---- model -------------------------------------------------------------------------------------------------
    def build_model(self, config: dict, meta: dict):
        cfg = self.model_config(config)
        return OneToMany(len(self.vocab(meta)), cfg.embed_size, cfg.hidden_size, cfg.cell, cfg.num_layers, cfg.dropout)

    def loss(self, model, batch) -> torch.Tensor:
        return self.step_loss(model(batch["x"], batch["lengths"]), batch["y"])  # logits (B, T, V)

    def evaluate(self, model, data) -> dict:
        """loss = nll per step, accuracy of the next step, baseline_nll (the frequency model) and rows."""
        meta = model.runtime.meta
        loss_sum = right = total = base_nll = 0.0
        for b in self.scored_batches(model, data):
            logits, y = model(b["x"], b["lengths"]), b["y"]  # (B, T, V), (B, T)
            mask = y != IGNORE  # (B, T)
            loss_sum += float(self.step_loss(logits, y, "sum"))
            right += float(((logits.argmax(-1) == y) & mask).sum())
            total += float(mask.sum())
            if meta.get("unigram"):
                logp = torch.tensor(meta["unigram"], device=y.device)  # (V,)
                base_nll -= float(logp[y.clamp(min=0)][mask].sum())
        total = max(total, 1.0)
        out = {"loss": loss_sum / total, "rows": float(len(data)), "nll": loss_sum / total, "accuracy": right / total}
        if meta.get("unigram"):
            out["baseline_nll"] = base_nll / total
        return out

    # ---- serving -----------------------------------------------------------------------------------------------
    def demos(self) -> list[Demo]:
        return [Demo("From the start", {"start": "", "temperature": 0.8, "seed": 0, "count": 5}, "a new sequence")]

    def settings(self, model, input) -> dict:
        """A start (text) or {start, temperature, seed, count} -> checked settings with the start's ids."""
        if isinstance(input, str):
            input = {"start": input}
        if not isinstance(input, dict):
            raise BadInput("Give a start (it may be empty), a temperature, a seed and how many to write.")
        start = str(input.get("start", "") or "")
        if control_char(start):
            raise BadInput("The start contains a control character; type plain text.")
        rt = model.runtime
        mode = rt.meta["tokens"]
        toks = steps(" ".join(start.split()) if mode == "word" else start.lstrip(), mode,
                     bool(rt.meta.get("split_punct")))[:self.max_gen[mode] - 1]
        try:
            temperature = float(input.get("temperature", 0.8))
            seed, count = int(input.get("seed", 0)), int(input.get("count", 5))
        except (TypeError, ValueError, OverflowError):
            raise BadInput("The temperature must be a number; seed and count whole numbers.") from None
        if not (math.isfinite(temperature) and 0.05 <= temperature <= 3.0):
            raise BadInput("The temperature must be between 0.05 and 3.")
        if not 0 <= seed < 2**63:
            raise BadInput("The random seed must be a whole number from 0 to 2**63 - 1.")
        if not 1 <= count <= MAX_COUNT:
            raise BadInput(f"Ask for 1 to {MAX_COUNT} sequences.")
        vocab = rt.vocab
        unknown = vocab.unknown(toks)
        notes = [f"Never seen in training, read as unknown: {' '.join(unknown[:10])}"] if unknown else []
        return {"start": join(toks, mode), "tokens": toks, "ids": [BOS] + vocab.encode(toks),
                "temperature": temperature, "seed": seed, "count": count, "notes": notes}

    def predict(self, model, input) -> dict:
        s = self.settings(model, input)
        mode, vocab = model.runtime.meta["tokens"], model.runtime.vocab
        primer = torch.tensor([s["ids"]] * s["count"])  # (N, T0)
        with torch.inference_mode():
            out = model.generate(primer, self.max_gen[mode] - len(s["tokens"]), temperature=s["temperature"],
                                 seed=s["seed"])
        new = out["sequence"][:, primer.shape[1]:]  # (N, steps)
        seqs = [join(s["tokens"] + vocab.decode(row.tolist(), unk_as="?"), mode) for row in new]
        return {"start": s["start"], "sequences": seqs, "temperature": s["temperature"], "seed": s["seed"],
                "notes": s["notes"]}

    def inspect_loss(self, model, input) -> tuple[torch.Tensor, list[str]]:
        """The loss of the sequence the model writes from these settings (its first one), step by step."""
        meta = model.runtime.meta
        s = self.settings(model, input)
        with recording():  # a side computation: its steps stay out of the inspector's trace
            text = self.predict(model, {**s, "count": 1})["sequences"][0]
        toks = steps(text, meta["tokens"], bool(meta.get("split_punct")))[:self.max_gen[meta["tokens"]]]
        seq = [BOS] + model.runtime.vocab.encode(toks) + [EOS]
        x, y = torch.tensor([seq[:-1]]), torch.tensor([seq[1:]])  # (1, T)
        return F.cross_entropy(model(x)[0], y[0]), ["<s>"] + toks
