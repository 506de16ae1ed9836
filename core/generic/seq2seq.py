"""Seq2SeqTask: a sequence -> another sequence of its own length (encoder-decoder with attention).

An encoder (bidirectional) reads the source x_1 .. x_S into states e_1 .. e_S; a decoder writes y_1 .. y_m, each
step from its own state, the previous output and an attention-weighted mix of the e_s (which source steps it
looks at shows as the attention map). Training feeds the true previous output (teacher forcing): the loss is the
cross-entropy of every target step, </s> included. Writing is greedy (batched, for the scores) or a beam search
(the page's answer).

Scores: exact, the share of held-out rows whose whole output the model writes right on its own (greedy, the first
``max_exact_rows`` rows; while training a smaller sample of the validation rows), beside copying the input and
always writing the training part's most common output; step_accuracy (each next step right with the true
previous steps given), for information.

Raw examples: (source, target) texts. meta: tokens, split_punct, src_vocab, tgt_vocab, common_output (its ids).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.data import BOS, EOS, PAD, UNK
from core.generic.base import IGNORE, Cut, SequenceTask, most_common, pad_steps, upto_eos
from core.generic.text import join
from core.layers import recording
from core.shapes import EncoderDecoder
from core.task import Recipe

MAX_EXACT_ROWS = 500  # rows decoded greedily for the exact-match score (the first ones)
EXACT_VAL_STEPS = 6000  # ... and during training, at most this many rows x output steps at each validation check


class Seq2SeqTask(SequenceTask):
    """Encoder-decoder: a text -> another text, with attention."""

    shape = "encoder_decoder"
    summary = "A sequence -> another sequence of its own length, with attention."
    metric_meaning = "share of held-out rows whose whole output is exactly right, written by the model on its own"
    recipe = Recipe(metric="exact", higher_is_better=True, epochs=30, batch_size=32, lr=3e-3, patience=5,
                    max_minutes=5.0, clip_norm=1.0)
    max_exact_rows: int = MAX_EXACT_ROWS

    # ---- data --------------------------------------------------------------------------------------------------
    def encoder(self, train: list, examples: list, meta: dict, cut: Cut):
        src_vocab = self.build_vocab(self.cells(s, meta) for s, _ in train)
        tgt_vocab = self.build_vocab(self.cells(t, meta) for _, t in train)
        meta.update(src_vocab.to_meta("src_vocab"), **tgt_vocab.to_meta("tgt_vocab"))

        def enc(part):
            return [(src_vocab.encode(cut(self.cells(s, meta), (id(part), k))),
                     tgt_vocab.encode(cut(self.cells(t, meta), (id(part), k), cut.n - 1)) + [EOS])
                    for k, (s, t) in enumerate(part)]
        return enc

    def after_encoding(self, train_ids: list, val_ids: list, meta: dict) -> None:
        meta["common_output"] = list(most_common(tuple(t) for _, t in train_ids))
        self._val_rows = val_ids  # evaluate() decodes a bounded sample of these at each check while training

    def collate(self, part: list) -> dict:
        src, src_len = pad_steps([s for s, _ in part])  # (B, S), (B,)
        tgt_in, _ = pad_steps([[BOS] + t[:-1] for _, t in part])  # (B, T) teacher forcing: <s> y_1 .. y_{m-1}
        tgt_out, _ = pad_steps([t for _, t in part], value=IGNORE)  # (B, T) targets: y_1 .. y_m (= </s>)
        return {"src": src, "src_lengths": src_len, "tgt_in": tgt_in, "tgt_out": tgt_out}

    # ---- model -------------------------------------------------------------------------------------------------
    def build_model(self, config: dict, meta: dict):
        cfg = self.model_config(config)
        return EncoderDecoder(len(self.vocab(meta, "src_vocab")), len(self.vocab(meta, "tgt_vocab")),
                              cfg.embed_size, cfg.hidden_size, cfg.cell, cfg.num_layers, cfg.dropout,
                              attention=True, bidirectional_encoder=True, pad_id=PAD, bos_id=BOS, eos_id=EOS)

    def loss(self, model, batch) -> torch.Tensor:
        logits, _ = model(batch["src"], batch["src_lengths"], batch["tgt_in"])  # (B, T, V)
        return self.step_loss(logits, batch["tgt_out"])

    def evaluate(self, model, data) -> dict:
        """loss, step_accuracy and rows; exact, copy_exact, common_exact and exact_rows (exact_scores)."""
        loss_sum = right = total = 0.0
        for b in self.scored_batches(model, data):
            logits, _ = model(b["src"], b["src_lengths"], b["tgt_in"])  # (B, T, V)
            y = b["tgt_out"]  # (B, T)
            mask = y != IGNORE
            loss_sum += float(self.step_loss(logits, y, "sum"))
            right += float(((logits.argmax(-1) == y) & mask).sum())
            total += float(mask.sum())
        total = max(total, 1.0)
        out = {"loss": loss_sum / total, "rows": float(len(data)), "step_accuracy": right / total}
        if data:
            n = self.max_exact_rows
            if data is getattr(self, "_val_rows", None):  # a check while training: a sample, to stay quick
                n = min(n, max(20, EXACT_VAL_STEPS // (max(len(t) for _, t in data) + 2)))
            out.update(self.exact_scores(model, data[:n]))
        return out

    def exact_scores(self, model, rows, greedy=None) -> dict:
        """The share of rows whose whole output is right, decoded greedily in batches (``greedy``: another decoder
        with greedy()'s arguments) -- the model's, copying the input's and always writing the training part's most
        common output's."""
        greedy = greedy or self.greedy
        rt = model.runtime
        dev = next(model.parameters()).device
        src_vocab, tgt_vocab = rt.vocab, rt.target_vocab
        hits = copies = commons = 0
        common = upto_eos(list(rt.meta.get("common_output") or []))
        for i in range(0, len(rows), 256):
            part = rows[i:i + 256]
            b = self.collate(part)
            pred = greedy(model, b["src"].to(dev), b["src_lengths"],
                               max(len(t) for _, t in part) + 2).cpu()  # (B, T)
            for p, (src, tgt) in zip(pred.tolist(), part):
                want = upto_eos(tgt)
                hits += upto_eos(p) == want
                commons += want == common
                copies += UNK not in src and UNK not in want and src_vocab.decode(src) == tgt_vocab.decode(want)
        n = max(len(rows), 1)
        return {"exact": hits / n, "copy_exact": copies / n, "common_exact": commons / n, "exact_rows": float(n)}

    def greedy(self, model, src, lengths, max_len: int) -> torch.Tensor:
        """Batched greedy decoding: (B, S) -> (B, <= max_len) ids (</s> and after it: ignored by decode)."""
        enc, state, mask = model.encode(src, lengths)
        tok = torch.full((src.shape[0],), BOS, dtype=torch.long, device=src.device)
        out, done = [], torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            logp, state, _ = model.decode_step(tok, state, enc, mask)  # (B, V)
            tok = logp.argmax(-1)
            out.append(tok)
            done |= tok == EOS
            if bool(done.all()):
                break
        return torch.stack(out, dim=1)  # (B, T)

    # ---- serving -----------------------------------------------------------------------------------------------
    def predict(self, model, input) -> dict:
        toks, ids, notes = self.read_text(model, input)
        mode = model.runtime.meta["tokens"]
        tgt = model.runtime.target_vocab
        with torch.inference_mode():
            cands = model.beam_search(torch.tensor([ids]), torch.tensor([len(ids)]), beam=3,
                                      max_len=min(len(ids) * 2 + 10, self.max_steps[mode]))
        best = cands[0]
        return {"input": join(toks, mode),
                "output": join(tgt.decode(best.tokens, unk_as="?"), mode),
                "candidates": [{"output": join(tgt.decode(c.tokens, unk_as="?"), mode), "score": c.score}
                               for c in cands],
                "attention": {"source": toks, "output": [tgt.itos[i] for i in best.tokens],  # (T_out, S) weights
                              "weights": best.attention.tolist() if best.attention is not None else None},
                "notes": notes}

    def inspect_loss(self, model, input) -> tuple[torch.Tensor, list[str]]:
        """The model's own greedy output as the target; the steps are the encoder's (the input)."""
        toks, ids, _ = self.read_text(model, input)
        src, lengths = torch.tensor([ids]), torch.tensor([len(ids)])
        with recording():  # a side computation: its steps stay out of the inspector's trace
            target = self.greedy(model, src, lengths, min(len(ids) * 2 + 10, self.max_steps[model.runtime.meta["tokens"]]))
        target = target[0].tolist()
        target = target[:target.index(EOS) + 1] if EOS in target else target
        tgt_in, tgt_out = torch.tensor([[BOS] + target[:-1]]), torch.tensor([target])  # (1, T)
        logits, _ = model(src, lengths, tgt_in)  # (1, T, V)
        return F.cross_entropy(logits[0], tgt_out[0]), toks
