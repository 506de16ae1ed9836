"""SequenceClassifier: a sequence -> one label (many-to-one), for any task whose answer is one class per text.

The network (core.shapes.ManyToOne) reads the steps x_1 .. x_T into a state and answers from the last one:
p(y | x) = softmax(W h_T + b). The loss is the cross-entropy of the true label; the state has to carry whatever
decides the label to the end, which is what gated cells are for. Because the answer is read from the state, the
answer *after each step* (``prefix_logits``) comes for free: the page shows how the model's mind changes while it
reads.

Scores: accuracy, beside the majority class (always answering the training part's most common label) and chance
(1 / the number of labels). A model that does not beat the majority class has learnt nothing from the text.

Raw examples: (text, label). meta: tokens, split_punct, vocab (the learnt tokens), labels, majority (its index).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.data import PAD
from core.generic.base import Cut, SequenceTask, most_common, pad_steps
from core.shapes import ManyToOne


class SequenceClassifier(SequenceTask):
    """Many-to-one: a text (characters or words) -> one label."""

    shape = "many_to_one"
    summary = "A sequence -> one label."
    metric_meaning = "share of rows labelled right"

    # ---- data --------------------------------------------------------------------------------------------------
    def target_code(self, train: list, examples: list, meta: dict):
        """What each row's answer becomes for the network: a label's index (labels and the majority on ``meta``).
        SequenceRegressor answers a standardised number instead."""
        labels = sorted({y for _, y in examples})
        meta.update(labels=labels, majority=labels.index(most_common(y for _, y in train)))
        return labels.index

    def encoder(self, train: list, examples: list, meta: dict, cut: Cut):
        vocab = self.build_vocab(self.cells(t, meta) for t, _ in train)
        meta.update(vocab.to_meta())
        code = self.target_code(train, examples, meta)

        def enc(part):
            return [(vocab.encode(cut(self.cells(t, meta), (id(part), k))), code(y)) for k, (t, y) in enumerate(part)]
        return enc

    def collate(self, part: list) -> dict:
        x, lengths = pad_steps([ids for ids, _ in part])  # (B, T), (B,)
        return {"x": x, "lengths": lengths, "y": torch.tensor([y for _, y in part])}  # y: (B,)

    # ---- model -------------------------------------------------------------------------------------------------
    def n_outputs(self, meta: dict) -> int:
        return len(meta["labels"])

    def build_model(self, config: dict, meta: dict):
        cfg = self.model_config(config)
        return ManyToOne(cfg.embed_size, cfg.hidden_size, self.n_outputs(meta), cfg.cell, cfg.num_layers,
                         cfg.bidirectional, cfg.dropout, vocab_size=len(self.vocab(meta)), pad_id=PAD)

    def forward(self, model, batch: dict) -> torch.Tensor:
        return model(batch["x"], batch["lengths"])  # (B, C)

    def loss(self, model, batch) -> torch.Tensor:
        return F.cross_entropy(self.forward(model, batch), batch["y"])

    def evaluate(self, model, data) -> dict:
        """loss, accuracy, baseline_accuracy (the majority class), chance and rows, on ``data``."""
        meta = model.runtime.meta
        loss_sum = right = base_right = total = 0.0
        for b in self.scored_batches(model, data):
            logits = self.forward(model, b)  # (B, C)
            loss_sum += float(F.cross_entropy(logits, b["y"], reduction="sum"))
            right += float((logits.argmax(-1) == b["y"]).sum())
            base_right += float((b["y"] == meta.get("majority", -1)).sum())
            total += len(b["y"])
        total = max(total, 1.0)
        out = {"loss": loss_sum / total, "rows": float(len(data)), "accuracy": right / total}
        if "majority" in meta:
            out["baseline_accuracy"] = base_right / total
        out["chance"] = 1 / len(meta["labels"])
        return out

    # ---- serving -----------------------------------------------------------------------------------------------
    def predict(self, model, input) -> dict:
        toks, ids, notes = self.read_text(model, input)
        x, lengths = pad_steps([ids])  # (1, T)
        with torch.inference_mode():
            probs = model(x, lengths).softmax(-1)[0]  # (C,)
            after = model.prefix_logits(x, lengths).softmax(-1)[0]  # (T, C): the answer after each step
        labels = model.runtime.labels
        best = int(probs.argmax())
        return {"label": labels[best], "prob": float(probs[best]),
                "probs": {lab: float(p) for lab, p in zip(labels, probs)},
                "after_each_char": [{"step": t, "char": c, "prob": float(after[t, best])} for t, c in enumerate(toks)],
                "notes": notes}

    def inspect_loss(self, model, input) -> tuple[torch.Tensor, list[str]]:
        """The model's own answer as the target: which steps moved it."""
        toks, ids, _ = self.read_text(model, input)
        logits = model(*pad_steps([ids]))  # (1, C)
        return F.cross_entropy(logits, logits.argmax(-1).detach()), toks
