"""The tagger: word + character features -> a recurrent ManyToMany (core.shapes) -> a CRF over BIO tags.

    x (B, T, 2 + L) long: per word [word id, shape id, char ids ...]
      -> WordCharEncoder                 (B, T, E)  lowercased-word embedding | shape embedding | char CNN
      -> Recurrent (uni- or bidirectional LSTM / GRU)   (B, T, D*H)
      -> Linear head                     (B, T, C)  emission scores, one per tag
      -> CRF                             transition scores between neighbouring tags; Viterbi decoding

The char CNN reads each word's letters, so an unseen word ("Okonkwo") still looks like a name and
capitalisation is seen even though the word embedding is lowercased. It is a CNN, not a char RNN, on purpose:
the inspector follows core.layers.Recurrent modules, and the only one here is the word-level tagger, so its
saliency is per *word*.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.ensemble import ensemble_weights
from core.shapes import ManyToMany
from tasks.ner.data import gazetteer_rows, lexicon_table, vocabulary


@dataclass
class NERConfig:
    cell: str = "lstm"  # lstm | gru: gated cells keep the signal across a sentence; plain RNNs do worse here
    bidirectional: bool = True  # True: each tag sees the words after it too (the point of this page)
    hidden_size: int = 150  # units per direction; variants are sized to about the same recurrent parameter count
    num_layers: int = 1  # one layer is enough for sentences of ~8 words and keeps the CPU budget
    word_dim: int = 100  # lowercased word embedding (no pretrained vectors: trained from scratch on 20k sentences)
    shape_dim: int = 8  # capitalisation pattern (lower / Title / UPPER / mIxed / digit / punct)
    char_dim: int = 30  # per character, fed to the char CNN
    char_filters: int = 50  # char CNN output size: the word's spelling features
    char_width: int = 3  # char CNN window: trigrams catch suffixes (-ski, -ville, -ton) and capitals
    dropout: float = 0.33  # on the features and the recurrent outputs (0.5 learns too slowly for a 14-minute budget)
    crf: bool = True  # a transition matrix on top: well-formed BIO output and about +1 F1
    # While training, hide a word's tag counts (the lexicon) this often, as if it were a new word: the tagger must
    # also learn to read the context, not only recall what the word was in the news (0: always shown).
    lexicon_dropout: float = 0.3
    # Read the name list from another corpus (the meta's "gazetteer": WikiANN counts per word) when the meta has
    # one: real names tell the tagger that "manhattan" or "olumide" is a name even with no capital letter and
    # never seen in the news. False trains without it on the same data (a comparison); cards from before the
    # gazetteer have no such key and are read as False (NERTask.build_model).
    gazetteer: bool = True

    def input_size(self, lexicon_features: int) -> int:
        return self.word_dim + self.shape_dim + self.char_filters + lexicon_features


def lexicon_size(num_labels: int) -> int:
    """Lexicon features per word: log1p(count)/5, the fraction of each tag, "never seen in training"."""
    return num_labels + 2


def count_features(counts: torch.Tensor) -> torch.Tensor:
    """(B, T, C) counts -> (B, T, C + 2): log1p(total)/5, the fraction in each column, "never seen"."""
    n = counts.sum(-1, keepdim=True)  # (B, T, 1)
    return torch.cat([torch.log1p(n) / 5, counts / n.clamp(min=1), (n == 0).float()], dim=-1)  # (B, T, C + 2)


class WordCharEncoder(nn.Module):
    """(B, T, K + L) ids -> (B, T, E) per-word vectors:
    word embedding | shape embedding | max-pooled char CNN | (lexicon features) | (gazetteer features).

    Columns of x: word id, shape id, (held-out tag + 1 when the meta has a lexicon,) then char ids."""

    def __init__(self, meta: dict, cfg: NERConfig):
        super().__init__()
        self.num_embedded = int(meta.get("embed_words", len(meta["words"])))  # later ids are lexicon-only
        self.word = nn.Embedding(self.num_embedded, cfg.word_dim, padding_idx=0)
        self.shape = nn.Embedding(len(meta["shapes"]), cfg.shape_dim, padding_idx=0)
        self.char = nn.Embedding(len(meta["chars"]), cfg.char_dim, padding_idx=0)
        self.conv = nn.Conv1d(cfg.char_dim, cfg.char_filters, cfg.char_width, padding=cfg.char_width // 2)
        self.lead = 3 if meta.get("lexicon") else 2
        self.lexicon_dropout = float(cfg.lexicon_dropout)
        vocab = len(vocabulary(meta))  # words with an id: the lexicon's, then the gazetteer's own
        if meta.get("lexicon"):  # tag counts per word: data, not parameters (rebuilt from the card's meta)
            self.register_buffer("lexicon", torch.as_tensor(lexicon_table(meta), dtype=torch.float32),
                                 persistent=False)
        else:
            self.lexicon = None
        if cfg.gazetteer and meta.get("gazetteer"):  # WikiANN counts per word id, (V, G): data as well
            self.register_buffer("gazetteer", torch.as_tensor(gazetteer_rows(meta), dtype=torch.float32).view(vocab, -1),
                                 persistent=False)
        else:
            self.gazetteer = None
        extra = lexicon_size(len(meta["labels"])) if self.lexicon is not None else 0
        extra += lexicon_size(self.gazetteer.shape[1]) if self.gazetteer is not None else 0
        self.out_size = cfg.input_size(extra)

    def lexicon_features(self, words: torch.Tensor, held_out: torch.Tensor) -> torch.Tensor:
        """(B, T) word ids, held-out tag + 1 (0: none) -> (B, T, C + 2)."""
        known = words < len(self.lexicon)  # (B, T); later ids are the gazetteer's own words: never in training
        counts = self.lexicon[words.clamp(max=len(self.lexicon) - 1)] * known[..., None]  # (B, T, C)
        own = F.one_hot((held_out - 1).clamp(min=0), counts.shape[-1]).float() * (held_out > 0)[..., None].float()
        counts = (counts - own).clamp(min=0)  # leave-one-out on the training split
        return count_features(self._hide(counts))  # (B, T, C + 2)

    def gazetteer_features(self, words: torch.Tensor) -> torch.Tensor:
        """(B, T) word ids -> (B, T, G + 2) from the gazetteer's counts (another corpus: nothing to leave out)."""
        return count_features(self._hide(self.gazetteer[words]))  # (B, T, G + 2)

    def _hide(self, counts: torch.Tensor) -> torch.Tensor:
        """While training, zero the counts of a random ``lexicon_dropout`` share of the words (B, T, C): they look
        unseen, so the tagger must also read the context (each list draws its own words)."""
        if self.training and self.lexicon_dropout > 0:
            keep = torch.rand(counts.shape[:-1], device=counts.device) >= self.lexicon_dropout  # (B, T)
            counts = counts * keep[..., None]
        return counts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, W = x.shape
        K = self.lead
        words, shapes, chars = x[..., 0], x[..., 1], x[..., K:]  # (B, T), (B, T), (B, T, L)
        c = self.char(chars.reshape(B * T, W - K))  # (B*T, L, Ec)
        c = self.conv(c.transpose(1, 2))  # (B*T, F, L)
        real = (chars.reshape(B * T, 1, W - K) > 0)  # (B*T, 1, L) real characters
        c = c.masked_fill(~real, -1e4).max(dim=2).values  # (B*T, F) strongest response over the word
        c = torch.where(real.any(dim=2), torch.tanh(c), torch.zeros_like(c)).view(B, T, -1)  # (B, T, F); pad -> 0
        emb_ids = torch.where(words < self.num_embedded, words, torch.ones_like(words))  # lexicon-only -> <unk>
        feats = [self.word(emb_ids), self.shape(shapes), c]
        if self.lexicon is not None:
            feats.append(self.lexicon_features(words, x[..., 2]))
        if self.gazetteer is not None:
            feats.append(self.gazetteer_features(words))
        return torch.cat(feats, dim=-1)  # (B, T, E)


def bio_allowed(labels: list[str]) -> torch.Tensor:
    """(C, C) bool: may tag j follow tag i? I-X only after B-X or I-X. Plus (C,) for the first tag."""
    C = len(labels)
    ok = torch.ones(C, C, dtype=torch.bool)
    for j, lab in enumerate(labels):
        if lab.startswith("I-"):
            for i, prev in enumerate(labels):
                ok[i, j] = prev[2:] == lab[2:] and prev != "O"
    return ok


class CRF(nn.Module):
    """Linear-chain CRF: score(y) = sum_t emit[t, y_t] + start[y_1] + sum_t trans[y_{t-1}, y_t] + end[y_T].
    BIO-impossible transitions (O -> I-PER) are fixed at -10000 so decoding never produces them."""

    def __init__(self, labels: list[str]):
        super().__init__()
        C = len(labels)
        self.trans = nn.Parameter(torch.zeros(C, C))
        self.start = nn.Parameter(torch.zeros(C))
        self.end = nn.Parameter(torch.zeros(C))
        allowed = bio_allowed(labels)
        first_ok = torch.tensor([not lab.startswith("I-") for lab in labels])
        self.register_buffer("trans_mask", torch.where(allowed, 0.0, -1e4), persistent=False)
        self.register_buffer("start_mask", torch.where(first_ok, 0.0, -1e4), persistent=False)

    def _scores(self):
        return self.trans + self.trans_mask, self.start + self.start_mask  # (C, C), (C,)

    def log_partition(self, emit: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log Z per sentence: emit (B, T, C), mask (B, T) bool -> (B,)."""
        trans, start = self._scores()
        alpha = start + emit[:, 0]  # (B, C)
        for t in range(1, emit.shape[1]):
            nxt = torch.logsumexp(alpha[:, :, None] + trans[None], dim=1) + emit[:, t]  # (B, C)
            alpha = torch.where(mask[:, t, None], nxt, alpha)
        return torch.logsumexp(alpha + self.end, dim=1)  # (B,)

    def nll(self, emit: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of the gold tags, per sentence (B,). tags (B, T) with anything on padding."""
        trans, start = self._scores()
        tags = tags.clamp(min=0)
        B, T, _ = emit.shape
        gold = emit.gather(2, tags[..., None])[..., 0]  # (B, T)
        score = start[tags[:, 0]] + (gold * mask).sum(1)  # (B,)
        pair = trans[tags[:, :-1], tags[:, 1:]]  # (B, T-1)
        score = score + (pair * mask[:, 1:]).sum(1)
        last = tags.gather(1, (mask.sum(1) - 1).clamp(min=0)[:, None])[:, 0]  # (B,)
        score = score + self.end[last]
        return self.log_partition(emit, mask) - score

    def marginals(self, emit: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """p(y_t = c | sentence) by forward-backward, differentiable: (B, T, C). Zero rows on padding."""
        trans, start = self._scores()
        B, T, C = emit.shape
        alphas = [start + emit[:, 0]]  # each (B, C)
        for t in range(1, T):
            nxt = torch.logsumexp(alphas[-1][:, :, None] + trans[None], dim=1) + emit[:, t]
            alphas.append(torch.where(mask[:, t, None], nxt, alphas[-1]))
        # beta_t(i) = log sum over continuations after step t; at each sentence's last step it is end[i]
        betas = [None] * T
        beta = self.end.expand(B, C)
        for t in range(T - 1, -1, -1):
            betas[t] = beta
            if t > 0:
                prev = torch.logsumexp(trans[None] + (emit[:, t] + beta)[:, None, :], dim=2)  # (B, C)
                is_last_or_pad = ~mask[:, t]  # padding: pass 'end' through unchanged
                beta = torch.where(is_last_or_pad[:, None], beta, prev)
        a, b = torch.stack(alphas, 1), torch.stack(betas, 1)  # (B, T, C)
        logz = torch.logsumexp(a[:, -1] + self.end, dim=1)  # (B,) alphas carry forward over padding
        return torch.exp(a + b - logz[:, None, None]) * mask[..., None]

    @torch.no_grad()
    def viterbi(self, emit: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        trans, start = self._scores()
        B, T, C = emit.shape
        score = start + emit[:, 0]  # (B, C)
        back = []
        for t in range(1, T):
            best, idx = (score[:, :, None] + trans[None]).max(dim=1)  # (B, C)
            nxt = best + emit[:, t]
            m = mask[:, t, None]
            score = torch.where(m, nxt, score)
            back.append(torch.where(m, idx, torch.arange(C, device=emit.device).expand(B, C)))
        score = score + self.end
        lengths = mask.sum(1).tolist()
        out = []
        last = score.argmax(1).tolist()
        for b in range(B):
            path = [last[b]]
            for t in range(int(lengths[b]) - 1, 0, -1):
                path.append(int(back[t - 1][b, path[-1]]))
            out.append(path[::-1])
        return out


class NERTagger(ManyToMany):
    """core.shapes.ManyToMany with the word+char encoder as its ``encoder`` and an optional CRF on its logits.

    forward(x (B, T, 2+L), lengths (B,)) -> emission logits (B, T, C); direction_parts() splits them into what
    the forward and the backward half contributed."""

    def __init__(self, cfg: NERConfig, meta: dict):
        labels = list(meta["labels"])
        encoder = WordCharEncoder(meta, cfg)
        super().__init__(encoder.out_size, cfg.hidden_size, len(labels), cell=cfg.cell, num_layers=cfg.num_layers,
                         bidirectional=cfg.bidirectional, dropout=cfg.dropout, encoder=encoder)
        self.cfg, self.labels = cfg, labels
        self.crf = CRF(labels) if cfg.crf else None

    @staticmethod
    def mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
        return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]  # (B, T)

    def nll(self, logits, tags, lengths) -> torch.Tensor:
        """Mean per-sentence CRF NLL (or mean per-token cross-entropy without a CRF)."""
        if self.crf is None:
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tags.reshape(-1), ignore_index=-100)
        return self.crf.nll(logits, tags, self.mask(lengths, logits.shape[1])).mean()

    def probabilities(self, logits, lengths) -> torch.Tensor:
        """p(tag | sentence) per word, (B, T, C): CRF marginals, or the softmax without a CRF."""
        if self.crf is None:
            return logits.softmax(-1)
        return self.crf.marginals(logits, self.mask(lengths, logits.shape[1]))

    def decode(self, logits, lengths) -> list[list[int]]:
        """Best tag sequence per sentence (Viterbi with the CRF; argmax without)."""
        if self.crf is None:
            return [row[:n].tolist() for row, n in zip(logits.argmax(-1), lengths.tolist())]
        return self.crf.viterbi(logits, self.mask(lengths, logits.shape[1]))


def share_tables(members: list[NERTagger]) -> None:
    """Members built from one card's meta hold equal lexicon and gazetteer tables (data, not parameters): point
    them all at the first member's copy, so an ensemble keeps one of each in memory, not one per member."""
    first = members[0].embed
    for m in members[1:]:
        for name in ("lexicon", "gazetteer"):
            mine, theirs = getattr(m.embed, name), getattr(first, name)
            if mine is not None and theirs is not None and mine is not theirs and mine.shape == theirs.shape \
                    and torch.equal(mine, theirs):
                setattr(m.embed, name, theirs)


class NEREnsemble(nn.Module):
    """Several trained taggers (same labels and vocabulary) tagging as one: the emission scores and the CRF's
    transition scores are mixed with fixed weights, i.e. one CRF whose score is the weighted sum of the members'
    scores (a product of experts), decoded and normalised like any CRF. ``python -m core.ensemble ner`` picks the
    weights on validation. Serving only: members train alone."""

    def __init__(self, members: list[NERTagger], weights: list[float]):
        super().__init__()
        self.weights = ensemble_weights(members, weights)
        first = members[0]
        if any(list(m.labels) != list(first.labels) for m in members):
            raise ValueError("ensemble members must share their tag set")
        if len({m.crf is None for m in members}) != 1:
            raise ValueError("ensemble members must all have a CRF, or none")
        self.members = nn.ModuleList(members)
        self.labels, self.cfg = first.labels, first.cfg
        share_tables(members)
        self.crf = None
        if first.crf is not None:
            self.crf = CRF(list(first.labels))
            with torch.no_grad():
                for name in ("trans", "start", "end"):
                    getattr(self.crf, name).copy_(sum(w * getattr(m.crf, name)
                                                      for m, w in zip(members, self.weights)))

    @property
    def embed(self):  # the word+char encoder: predict() asks it which ids have a word vector
        return self.members[0].embed

    def forward(self, x, lengths):
        return sum(w * m(x, lengths) for m, w in zip(self.members, self.weights))  # (B, T, C) mixed emissions

    mask = staticmethod(NERTagger.mask)
    probabilities = NERTagger.probabilities  # marginals of the mixed CRF
    decode = NERTagger.decode  # Viterbi of the mixed CRF
