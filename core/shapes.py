"""The five shapes of recurrent network, one plain module each.

  OneToOne        x -> y              a single recurrent step from a zero state: a feed-forward net in disguise
  OneToMany       x -> y_1..y_m       a generator: a first token (or a conditioning vector) and it writes on
  ManyToOne       x_1..x_n -> y       a classifier that reads the whole sequence, then answers once
  ManyToMany      x_1..x_n -> y_1..y_n an aligned tagger: one output per input step (uni- or bidirectional)
  EncoderDecoder  x_1..x_n -> y_1..y_m unequal lengths: an encoder reads, a decoder writes (optional attention)

Each takes plain constructor arguments (so a checkpoint can carry them) and an optional ``encoder`` module that
turns raw inputs (pixels, characters) into the feature vectors the recurrent layer reads.

``SHAPES`` lists the shape ids (Task.shape). What the app says and draws about each shape is core.ui.shapes
(``shape_spec(name)``); a shape's name inside a sentence, for modules outside the UI, is core.shape_words.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.layers import Recurrent, last_real_step

SHAPES = ("one_to_one", "one_to_many", "many_to_one", "many_to_many", "encoder_decoder")  # teaching order


def check_shape(shape: str) -> str:
    """Return ``shape`` if it is a known shape id, else raise a ValueError that lists the valid ones."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; valid shapes are: {', '.join(SHAPES)}")
    return shape


def _inputs(vocab_size: int | None, input_size: int, pad_id: int = 0) -> nn.Module:
    """Token ids -> vectors when there is a vocabulary; otherwise the inputs already are vectors."""
    return nn.Embedding(vocab_size, input_size, padding_idx=pad_id) if vocab_size else nn.Identity()


class SequenceReader(nn.Module):
    """The parts a sequence reader has (ManyToOne, ManyToMany): inputs -> recurrent layer -> dropout -> linear head
    over every direction's state. ``bidirectional=None`` takes the shape's own default (``BIDIRECTIONAL``)."""

    BIDIRECTIONAL = False  # a reader's default direction when none is given

    def __init__(self, input_size: int, hidden_size: int, num_classes: int, cell: str = "lstm",
                 num_layers: int = 1, bidirectional: bool | None = None, dropout: float = 0.0,
                 vocab_size: int | None = None, pad_id: int = 0, encoder: nn.Module | None = None):
        super().__init__()
        bidirectional = self.BIDIRECTIONAL if bidirectional is None else bool(bidirectional)
        self.embed = encoder or _inputs(vocab_size, input_size, pad_id)
        self.rnn = Recurrent(cell, input_size, hidden_size, num_layers, bidirectional, dropout)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * self.rnn.num_directions, num_classes)


class OneToOne(nn.Module):
    """y = W1 . f(x . w + b_o) + b_y : the recurrence run for exactly one step from o_0 = 0.

    forward(x (B, ...)) -> logits (B, C). With o_{t-1} = 0 the recurrent weight w' never acts: this is why a
    one-to-one "RNN" is a feed-forward network.
    """

    def __init__(self, input_size: int, hidden_size: int, num_classes: int, cell: str = "rnn_tanh",
                 encoder: nn.Module | None = None, dropout: float = 0.0):
        super().__init__()
        self.encoder = encoder or nn.Identity()
        self.rnn = Recurrent(cell, input_size, hidden_size)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)  # (B, F)
        out, _ = self.rnn(feats[:, None, :])  # (B, 1, H)
        return self.head(self.drop(out[:, 0]))  # (B, C)


class ManyToOne(SequenceReader):
    """Reads x_1..x_n, answers once from the last *real* step (both directions' summaries if bidirectional).

    forward(x (B, T) ids or (B, T, F), lengths (B,)) -> logits (B, C). One-way unless asked.
    """

    BIDIRECTIONAL = False

    def features(self, x, lengths=None):
        out, _ = self.rnn(self.drop(self.embed(x)), lengths)  # (B, T, D*H)
        return out

    def forward(self, x, lengths=None):
        out = self.features(x, lengths)
        summary = last_real_step(out, lengths, self.rnn.hidden_size, self.rnn.bidirectional)  # (B, D*H)
        return self.head(self.drop(summary))  # (B, C)

    def prefix_logits(self, x, lengths=None):
        """(B, T, C): the answer the model would give after each prefix x_1..x_t.

        Exact for a one-way model (its state at t has read only the prefix). A bidirectional model's backward
        half has read the future, so each prefix is re-read on its own."""
        if not self.rnn.bidirectional:
            out = self.features(x, lengths)  # (B, T, H)
            return self.head(out)
        T = x.shape[1]
        rows = []
        for t in range(1, T + 1):
            lens = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
            if lengths is not None:
                lens = torch.minimum(lens, lengths.to(x.device))
            rows.append(self.forward(x[:, :t], lens))
        return torch.stack(rows, dim=1)  # (B, T, C)


class ManyToMany(SequenceReader):
    """An aligned tagger: one output per input step. With bidirectional=True (the default) each y_t sees the whole
    sentence.

    forward(x, lengths) -> logits (B, T, C)
    """

    BIDIRECTIONAL = True

    def forward(self, x, lengths=None):
        out, _ = self.rnn(self.drop(self.embed(x)), lengths)  # (B, T, D*H)
        return self.head(self.drop(out))  # (B, T, C)

    def direction_parts(self, x, lengths=None) -> dict[str, torch.Tensor]:
        """Split each step's logits into what the forward half and the backward half contributed:
        logits = forward + backward + bias, each (B, T, C)."""
        out, _ = self.rnn(self.embed(x), lengths)  # (B, T, D*H)
        H = self.rnn.hidden_size
        W, b = self.head.weight, self.head.bias  # (C, D*H), (C,)
        parts = {"forward": out[..., :H] @ W[:, :H].T, "bias": b.expand(*out.shape[:2], -1)}
        if self.rnn.bidirectional:
            parts["backward"] = out[..., H:] @ W[:, H:].T
        return parts


class OneToMany(nn.Module):
    """A generator: from a first token / frame (and optionally a conditioning vector) it writes on, feeding each
    output back in as the next input.

    output="categorical": tokens (B, T) ids, logits over vocab_size.
    output="bernoulli":   frames (B, T, V) multi-hot (e.g. 88 piano keys), one independent logit per unit.
    forward(inputs, lengths=None, cond=None) -> logits (B, T, V), predicting step t+1 from steps <= t.
    """

    def __init__(self, vocab_size: int, input_size: int, hidden_size: int, cell: str = "gru",
                 num_layers: int = 1, dropout: float = 0.0, cond_size: int | None = None,
                 output: str = "categorical"):
        super().__init__()
        if output not in ("categorical", "bernoulli"):
            raise ValueError(f"unknown output {output!r}; valid outputs are: categorical, bernoulli")
        self.output, self.vocab_size = output, vocab_size
        self.embed = nn.Embedding(vocab_size, input_size) if output == "categorical" else nn.Linear(vocab_size, input_size)
        self.rnn = Recurrent(cell, input_size, hidden_size, num_layers, False, dropout)
        self.cond = nn.Linear(cond_size, num_layers * hidden_size) if cond_size else None
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, vocab_size)

    def init_state(self, batch: int, cond: torch.Tensor | None, device) -> torch.Tensor | tuple | None:
        if cond is None or self.cond is None:
            return None
        L, H = self.rnn.num_layers, self.rnn.hidden_size
        h0 = torch.tanh(self.cond(cond)).view(batch, L, H).transpose(0, 1).contiguous()  # (L, B, H)
        return (h0, torch.zeros_like(h0)) if self.rnn.cell == "lstm" else h0

    def forward(self, inputs, lengths=None, cond=None, state=None):
        x = self.drop(self.embed(inputs))  # (B, T, E)
        if state is None:
            state = self.init_state(x.shape[0], cond, x.device)
        out, _ = self.rnn(x, lengths, state)  # (B, T, H)
        return self.head(self.drop(out))  # (B, T, V)

    @torch.no_grad()
    def generate(self, first: torch.Tensor, steps: int, temperature: float = 1.0, top_k: int | None = None,
                 seed: int | None = None, cond: torch.Tensor | None = None, greedy: bool = False) -> dict:
        """Sample ``steps`` more items after ``first`` ((B,) ids or (B, V) frames, or a (B, T0[, V]) primer).

        Returns {"sequence": (B, T0+steps[, V]), "probs": (B, steps[, V]) the distribution each item was drawn
        from}. Seeded: the same seed gives the same piece on the same device."""
        gen = torch.Generator(device=first.device)
        if seed is not None:
            gen.manual_seed(int(seed))
        else:
            gen.seed()
        primer = first if first.dim() == (2 if self.output == "categorical" else 3) else first[:, None]
        state = self.init_state(primer.shape[0], cond, primer.device)
        out, state = self.rnn(self.embed(primer), None, state)  # (B, T0, H)
        logits = self.head(out[:, -1])  # (B, V)
        seq, probs = [primer], []
        for _ in range(steps):
            z = logits / max(float(temperature), 1e-4)
            if self.output == "categorical":
                if top_k:
                    kth = z.topk(min(int(top_k), z.shape[-1]), dim=-1).values[:, -1:]
                    z = z.masked_fill(z < kth, float("-inf"))
                p = F.softmax(z, dim=-1)  # (B, V)
                nxt = p.argmax(-1) if greedy else torch.multinomial(p, 1, generator=gen)[:, 0]  # (B,)
                item = nxt[:, None]
            else:
                p = torch.sigmoid(z)  # (B, V)
                if top_k:  # at most k units on at once: keep the k most likely
                    kth = p.topk(min(int(top_k), p.shape[-1]), dim=-1).values[:, -1:]
                    p = torch.where(p >= kth, p, torch.zeros_like(p))
                nxt = (p > 0.5).float() if greedy else torch.bernoulli(p, generator=gen)  # (B, V)
                item = nxt[:, None]
            probs.append(p)
            seq.append(item)
            out, state = self.rnn(self.embed(item), None, state)  # (B, 1, H)
            logits = self.head(out[:, -1])
        return {"sequence": torch.cat(seq, dim=1), "probs": torch.stack(probs, dim=1) if probs else None}


@dataclass
class Candidate:
    """One finished (or best-so-far) hypothesis of a beam search."""

    tokens: list[int]  # without BOS, with EOS if it ended
    score: float  # sum of log-probabilities divided by length**length_penalty
    logprob: float
    attention: torch.Tensor | None  # (T_out, S) attention over the source per output step
    steps: list[dict]  # per output step: {"token", "prob", "topk": [(token, prob), ...]}


class EncoderDecoder(nn.Module):
    """Unequal lengths: the encoder reads x_1..x_n, the decoder writes y_1..y_m.

    Without attention the encoder's summary (its final state) is the decoder's only view of the source -- the
    lesson's plain encoder-decoder. With attention (Luong "general") every decoder step looks back at every source
    step; the decoder still runs as one fused call under teacher forcing.

    forward(src (B, S), src_lengths (B,), tgt_in (B, T)) -> logits (B, T, V_tgt), attention (B, T, S) or None
    """

    def __init__(self, src_vocab: int, tgt_vocab: int, embed_size: int, hidden_size: int, cell: str = "gru",
                 num_layers: int = 1, dropout: float = 0.0, attention: bool = True,
                 bidirectional_encoder: bool = True, pad_id: int = 0, bos_id: int = 1, eos_id: int = 2):
        super().__init__()
        self.pad_id, self.bos_id, self.eos_id, self.use_attention = pad_id, bos_id, eos_id, attention
        self.src_embed = nn.Embedding(src_vocab, embed_size, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab, embed_size, padding_idx=pad_id)
        self.encoder = Recurrent(cell, embed_size, hidden_size, num_layers, bidirectional_encoder, dropout)
        D = self.encoder.num_directions
        self.bridge = nn.Linear(D * hidden_size, num_layers * hidden_size)  # encoder summary -> decoder h0
        self.decoder = Recurrent(cell, embed_size, hidden_size, num_layers, False, dropout)
        self.drop = nn.Dropout(dropout)
        if attention:
            self.attn_proj = nn.Linear(D * hidden_size, hidden_size, bias=False)  # score = h_dec . W h_enc
            self.combine = nn.Linear(hidden_size + D * hidden_size, hidden_size)
        self.head = nn.Linear(hidden_size, tgt_vocab)

    def encode(self, src, src_lengths=None):
        enc, _ = self.encoder(self.drop(self.src_embed(src)), src_lengths)  # (B, S, D*H)
        summary = last_real_step(enc, src_lengths, self.encoder.hidden_size, self.encoder.bidirectional)
        L, H = self.decoder.num_layers, self.decoder.hidden_size
        h0 = torch.tanh(self.bridge(summary)).view(-1, L, H).transpose(0, 1).contiguous()  # (L, B, H)
        state = (h0, torch.zeros_like(h0)) if self.decoder.cell == "lstm" else h0
        S = src.shape[1]
        lens = src_lengths.to(src.device) if src_lengths is not None else torch.full((src.shape[0],), S, device=src.device)
        src_mask = torch.arange(S, device=src.device)[None, :] < lens[:, None]  # (B, S)
        return enc, state, src_mask

    def _output(self, dec, enc, src_mask):
        """dec (B, T, H), enc (B, S, D*H) -> logits (B, T, V), attention (B, T, S) or None."""
        if not self.use_attention:
            return self.head(self.drop(dec)), None
        scores = dec @ self.attn_proj(enc).transpose(1, 2)  # (B, T, S)
        scores = scores.masked_fill(~src_mask[:, None, :], float("-inf"))
        attn = F.softmax(scores, dim=-1)  # (B, T, S)
        ctx = attn @ enc  # (B, T, D*H)
        mixed = torch.tanh(self.combine(torch.cat([dec, ctx], dim=-1)))  # (B, T, H)
        return self.head(self.drop(mixed)), attn

    def forward(self, src, src_lengths, tgt_in):
        enc, state, src_mask = self.encode(src, src_lengths)
        dec, _ = self.decoder(self.drop(self.tgt_embed(tgt_in)), None, state)  # (B, T, H) teacher forcing
        return self._output(dec, enc, src_mask)

    def decode_step(self, tokens, state, enc, src_mask):
        """One decoder step for a batch of hypotheses: tokens (B,) -> log-probs (B, V), new state, attn (B, S)."""
        dec, state = self.decoder(self.tgt_embed(tokens)[:, None], None, state)  # (B, 1, H)
        logits, attn = self._output(dec, enc, src_mask)
        return F.log_softmax(logits[:, 0], dim=-1), state, (attn[:, 0] if attn is not None else None)

    @torch.no_grad()
    def beam_search(self, src: torch.Tensor, src_lengths: torch.Tensor | None = None, beam: int = 5,
                    max_len: int = 50, length_penalty: float = 1.0, prefix: list[int] | None = None,
                    topk: int = 5, must_write: dict[int, int] | None = None,
                    owe_until: int | None = None) -> list[Candidate]:
        """Beam search for ONE source sentence (src (1, S)). Returns the candidates, best first.

        ``prefix`` forces the first output tokens ("force a word"), and the search continues from there.
        ``must_write`` {token id: n}: a hypothesis may not end before it has written that token n times (a translator
        asks for its <unk> once per unknown source word, so every unknown name is copied through); the beam keeps the
        hypotheses that place it best. ``owe_until``: from this many output tokens on, the rule is lifted (a decoder
        that has not placed the word by then will not; better an end without it than no end). The step infos keep
        the model's own probabilities. beam=1 is greedy decoding."""
        if src.shape[0] != 1:
            raise ValueError("beam_search decodes one sentence at a time: src must be (1, S)")
        enc, state, src_mask = self.encode(src, src_lengths)
        # Each hypothesis: (tokens, logprob, state, attention rows, step infos)
        hyps = [([], 0.0, state, [], [])]
        finished: list[Candidate] = []
        forced = list(prefix or [])
        owe_until = max_len if owe_until is None else owe_until
        for t in range(max_len):
            if not hyps:
                break
            toks = torch.tensor([h[0][-1] if h[0] else self.bos_id for h in hyps], device=src.device)
            st = _stack_states([h[2] for h in hyps])
            n = len(hyps)
            logp, st, attn = self.decode_step(toks, st, enc.expand(n, -1, -1), src_mask.expand(n, -1))
            states = _split_states(st, n)
            cands = []
            for i, (tokens, lp, _, attns, infos) in enumerate(hyps):
                probs = logp[i].exp()
                tp, ti = probs.topk(min(topk, probs.shape[-1]))
                info_top = [(int(a), float(b)) for a, b in zip(ti, tp)]
                if must_write and t < owe_until and any(tokens.count(k) < n for k, n in must_write.items()):
                    logp[i, self.eos_id] = float("-inf")  # not done yet: it cannot end here
                choices = [forced[t]] if t < len(forced) else logp[i].topk(min(beam, logp.shape[-1])).indices.tolist()
                for tok in choices:
                    a_row = attn[i].cpu() if attn is not None else None
                    info = {"token": int(tok), "prob": float(probs[tok]), "topk": info_top}
                    cands.append((tokens + [int(tok)], lp + float(logp[i, tok]), states[i], attns + [a_row], infos + [info]))
            cands.sort(key=lambda c: c[1], reverse=True)
            hyps = []
            for c in cands:
                if c[0][-1] == self.eos_id or t == max_len - 1:
                    finished.append(_candidate(c, length_penalty))
                else:
                    hyps.append(c)
                if len(hyps) >= beam:
                    break
            if len(finished) >= beam:
                break
        finished.extend(_candidate(h, length_penalty) for h in hyps)
        finished.sort(key=lambda c: c.score, reverse=True)
        return finished[:max(beam, 1)]


def _candidate(h, length_penalty) -> Candidate:
    tokens, lp, _, attns, infos = h
    att = torch.stack(attns) if attns and attns[0] is not None else None
    return Candidate(tokens=tokens, score=lp / max(len(tokens), 1) ** length_penalty, logprob=lp, attention=att,
                     steps=infos)


def _stack_states(states):
    if isinstance(states[0], tuple):
        return tuple(torch.cat([s[k] for s in states], dim=1) for k in range(len(states[0])))
    return torch.cat(states, dim=1)  # (L, n, H)


def _split_states(state, n):
    if isinstance(state, tuple):
        parts = [s.split(1, dim=1) for s in state]
        return [tuple(p[i] for p in parts) for i in range(n)]
    return list(state.split(1, dim=1))
