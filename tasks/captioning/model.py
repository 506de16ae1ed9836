"""Image -> caption: a small ResNet (torchvision BasicBlocks, trained from scratch) reads the 128x128 picture into an
8x8 grid of feature vectors; an LSTM (core.layers.Recurrent) writes the caption one word at a time, and at every
word a soft attention over the 64 grid cells picks where to look (Lu et al. 2017's "spatial attention": attend with
the LSTM's output h_t; Xu et al. 2015 feed the context into the LSTM instead). The mean feature starts the LSTM.

Batched beam search decodes many images at once (images x beams in one tensor per step), so the 1,000 test images
take seconds on a GPU. Augmentation (random shift/zoom/flip, brightness) happens inside the model, on the device.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.ensemble import ensemble_weights, flatten_states, unflatten_states
from core.layers import Recurrent

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
MEAN = (0.485, 0.456, 0.406)  # the usual ImageNet statistics: a fixed, documented normalisation
STD = (0.229, 0.224, 0.225)


def default_config() -> dict:
    return {
        "widths": [16, 32, 64, 128],  # channels of the 4 ResNet stages (64x64, 32x32, 16x16, 8x8 maps); CPU-sized
        "blocks": [1, 1, 1, 1],  # BasicBlocks per stage
        "embed_size": 128,  # word embedding; also the size the output is projected to (tied with the embedding)
        "hidden_size": 256,  # LSTM state
        "cell": "lstm",  # lstm | gru (any core cell works)
        "attention": True,  # soft attention over the 8x8 grid at every word (False: the mean feature only)
        "dropout": 0.3,  # on embeddings, LSTM output and features: 6,000 training images overfit fast
        "augment": True,  # random shift/zoom/flip/brightness while training (no pretrained encoder to lean on)
        "label_smoothing": 0.05,  # a little: five different references per image, none is "the" answer
    }


class Encoder(nn.Module):
    """(B, 3, 128, 128) normalised -> (B, 64, C) grid features (8x8 cells, row-major)."""

    def __init__(self, widths, blocks):
        super().__init__()
        # torchvision's own classes, without importing torchvision (its import pulls in torch._dynamo: ~190 MiB
        # resident and 1-2 s; core.vision's copies load the same weights strictly -- bench/memory.py).
        from core.vision import BasicBlock, conv1x1

        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))  # 128 -> 64
        layers, cin = [], widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks)):
            stride = 1 if i == 0 else 2
            for j in range(n):
                s = stride if j == 0 else 1
                down = None
                if s != 1 or cin != w:
                    down = nn.Sequential(conv1x1(cin, w, s), nn.BatchNorm2d(w))
                layers.append(BasicBlock(cin, w, s, down))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.out_dim = cin

    def forward(self, x):
        f = self.layers(self.stem(x))  # (B, C, 8, 8)
        return f.flatten(2).transpose(1, 2)  # (B, 64, C)


class Captioner(nn.Module):
    def __init__(self, vocab_size: int, widths=(16, 32, 64, 128), blocks=(1, 1, 1, 1), embed_size: int = 128,
                 hidden_size: int = 256, cell: str = "lstm", attention: bool = True, dropout: float = 0.3,
                 augment: bool = True, label_smoothing: float = 0.0):
        super().__init__()
        self.vocab_size, self.use_attention, self.augment = vocab_size, attention, augment
        self.label_smoothing = label_smoothing
        self.encoder = Encoder(list(widths), list(blocks))
        F_ = self.encoder.out_dim
        self.embed = nn.Embedding(vocab_size, embed_size, padding_idx=PAD_ID)
        self.init_h = nn.Linear(F_, hidden_size)  # mean feature -> h0 (and c0)
        self.init_c = nn.Linear(F_, hidden_size)
        # Every step reads [word embedding; mean image feature] (the global view, as in Lu et al. 2017).
        self.decoder = Recurrent(cell, embed_size + F_, hidden_size)
        if attention:
            self.attn_feat = nn.Linear(F_, hidden_size, bias=False)  # score(h, f_s) = h . W f_s / sqrt(H)
            self.combine = nn.Linear(hidden_size + F_, embed_size)
        else:
            self.combine = nn.Linear(hidden_size, embed_size)
        self.drop = nn.Dropout(dropout)
        self.out_bias = nn.Parameter(torch.zeros(vocab_size))  # logits = combine(...) . E^T + b (tied embedding)
        # Small embedding init: the same matrix scores the output words, and N(0, 1) would start at huge logits.
        nn.init.normal_(self.embed.weight, std=0.1)
        with torch.no_grad():
            self.embed.weight[PAD_ID].zero_()
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    # ---- image side ----------------------------------------------------------------------------------------------
    def prep(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 3, H, W) -> normalised float; random shift/zoom/flip/brightness in training mode."""
        x = images.float() / 255.0  # (B, 3, H, W)
        if self.training and self.augment:
            B = x.shape[0]
            dev = x.device
            scale = torch.empty(B, device=dev).uniform_(0.8, 1.0)  # zoom in up to 20%
            flip = torch.where(torch.rand(B, device=dev) < 0.5, -1.0, 1.0)
            shift = torch.empty(B, 2, device=dev).uniform_(-1, 1) * (1 - scale)[:, None] + \
                torch.empty(B, 2, device=dev).uniform_(-0.06, 0.06)
            theta = torch.zeros(B, 2, 3, device=dev)
            theta[:, 0, 0], theta[:, 1, 1] = scale * flip, scale
            theta[:, :, 2] = shift
            grid = F.affine_grid(theta, list(x.shape), align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
            bright = torch.empty(B, 1, 1, 1, device=dev).uniform_(0.8, 1.2)
            contrast = torch.empty(B, 1, 1, 1, device=dev).uniform_(0.8, 1.2)
            m = x.mean((1, 2, 3), keepdim=True)
            x = ((x - m) * contrast + m * bright).clamp(0, 1)
        return (x - self.mean) / self.std

    def encode(self, x: torch.Tensor):
        """Normalised (B, 3, 128, 128) -> grid features (B, S=64, F), mean feature (B, F), initial state."""
        return self.from_features(self.features(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised (B, 3, 128, 128) -> the encoder's 8x8 grid of feature vectors (B, S=64, F)."""
        return self.encoder(x)  # (B, S, F)

    def from_features(self, feats: torch.Tensor):
        """The grid features (B, S, F) -> what the decoder reads: features, mean feature (B, F), initial state."""
        g = feats.mean(1)  # (B, F)
        h0 = torch.tanh(self.init_h(g))[None]  # (1, B, H)
        if self.decoder.cell == "lstm":
            state = (h0, torch.tanh(self.init_c(g))[None])
        else:
            state = h0
        return self.drop(feats), self.drop(g), state

    # ---- word side -----------------------------------------------------------------------------------------------
    def decode(self, tokens, state, feats, g):
        """tokens (N, T) -> logits (N, T, V), attention (N, T, S) or None, new state. Teacher forcing when T > 1."""
        T = tokens.shape[1]
        x = torch.cat([self.drop(self.embed(tokens)), g[:, None].expand(-1, T, -1)], dim=-1)  # (N, T, E+F)
        h, state = self.decoder(x, None, state)  # (N, T, H)
        if self.use_attention:
            scores = h @ self.attn_feat(feats).transpose(1, 2) / h.shape[-1] ** 0.5  # (N, T, S)
            attn = F.softmax(scores.float(), dim=-1)  # fp32 even under bf16 autocast
            ctx = attn.to(feats.dtype) @ feats  # (N, T, F)
            mixed = torch.tanh(self.combine(torch.cat([h, ctx.to(h.dtype)], dim=-1)))  # (N, T, E)
        else:
            attn, mixed = None, torch.tanh(self.combine(h))
        logits = F.linear(self.drop(mixed), self.embed.weight, self.out_bias)  # (N, T, V)
        return logits, attn, state

    def forward(self, images: torch.Tensor, tokens: torch.Tensor):
        """images uint8 (B, 3, 128, 128); tokens (B, T) or (B, K, T) -- K captions per image share one encoding.
        Returns logits (B*K, T, V) and attention (B*K, T, 64) or None."""
        feats, g, state = self.encode(self.prep(images))
        if tokens.dim() == 3:
            K = tokens.shape[1]
            feats, g = feats.repeat_interleave(K, 0), g.repeat_interleave(K, 0)  # (B*K, S, F), (B*K, F)
            state = _repeat_state(state, K)
            tokens = tokens.flatten(0, 1)  # (B*K, T)
        logits, attn, _ = self.decode(tokens, state, feats, g)
        return logits, attn

    @torch.no_grad()
    def beam_search(self, images: torch.Tensor, beam: int = 3, max_len: int = 20,
                    length_penalty: float = 0.0) -> torch.Tensor:
        """Batched beam search: uint8 (B, 3, 128, 128) -> best token ids (B, T) (EOS/PAD-terminated).

        All B images x ``beam`` hypotheses advance together; a finished hypothesis keeps its score and extends
        with PAD at no cost. The best is picked by log-prob / length**length_penalty (0: plain sum). beam=1 is
        greedy decoding."""
        feats, g, state = self.encode(self.prep(images))
        B, K, dev = images.shape[0], max(int(beam), 1), images.device
        feats, g = feats.repeat_interleave(K, 0), g.repeat_interleave(K, 0)  # (B*K, S, F)
        state = _repeat_state(state, K)
        tok = torch.full((B * K,), BOS_ID, dtype=torch.long, device=dev)
        scores = torch.full((B, K), float("-inf"), device=dev)
        scores[:, 0] = 0.0  # every beam starts as a copy of the first: keep one alive
        seqs = torch.zeros(B * K, 0, dtype=torch.long, device=dev)
        done = torch.zeros(B * K, dtype=torch.bool, device=dev)
        length = torch.zeros(B * K, device=dev)
        base = (torch.arange(B, device=dev) * K)[:, None]  # (B, 1)
        for _ in range(max_len):
            logits, _, state = self.decode(tok[:, None], state, feats, g)
            logp = F.log_softmax(logits[:, 0].float(), dim=-1)  # (B*K, V)
            logp[:, PAD_ID] = float("-inf")
            logp = torch.where(done[:, None], torch.full_like(logp, float("-inf")), logp)
            logp[:, PAD_ID] = torch.where(done, 0.0, float("-inf"))
            V = logp.shape[1]
            cand = (scores.view(-1, 1) + logp).view(B, K * V)  # (B, K*V)
            top, idx = cand.topk(K, dim=1)  # (B, K)
            src = (base + idx // V).view(-1)  # (B*K,) which hypothesis each new one extends
            tok = (idx % V).view(-1)
            state = _select_state(state, src)
            prev_done = done[src]
            seqs = torch.cat([seqs[src], tok[:, None]], dim=1)
            length = length[src] + (~prev_done).float()
            done = prev_done | (tok == EOS_ID)
            scores = top
            if bool(done.all()):
                break
        final = scores / length.view(B, K).clamp(min=1) ** length_penalty if length_penalty else scores
        best = final.argmax(1)  # (B,)
        return seqs.view(B, K, -1)[torch.arange(B, device=dev), best]  # (B, T)


def _repeat_state(state, k):
    if isinstance(state, tuple):
        return tuple(s.repeat_interleave(k, 1) for s in state)
    return state.repeat_interleave(k, 1)  # (L, B*k, H)


def _select_state(state, idx):
    if isinstance(state, tuple):
        return tuple(s.index_select(1, idx) for s in state)
    return state.index_select(1, idx)


def build(config: dict, vocab_size: int) -> Captioner:
    return Captioner(vocab_size, widths=config["widths"], blocks=config["blocks"], embed_size=config["embed_size"],
                     hidden_size=config["hidden_size"], cell=config["cell"], attention=config["attention"],
                     dropout=config["dropout"], augment=config.get("augment", True),
                     label_smoothing=config.get("label_smoothing", 0.0))


def ids_to_words(ids, vocab: list[str]) -> list[str]:
    out = []
    for i in ids:
        i = int(i)
        if i in (EOS_ID, PAD_ID):
            break
        if i != BOS_ID:
            out.append(vocab[i])
    return out


class CaptionerEnsemble(nn.Module):
    """Several trained captioners (same vocabulary) writing one caption: at every word their log-probabilities
    are mixed with fixed weights and renormalised, inside the same batched beam search (Captioner.beam_search
    runs on it unchanged). Each member reads the picture with its own encoder; the attention shown is the first
    attending member's. ``python -m core.ensemble captioning`` picks the weights. Serving only."""

    def __init__(self, members: list[Captioner], weights: list[float]):
        super().__init__()
        self.weights = ensemble_weights(members, weights)
        if len({m.vocab_size for m in members}) != 1:
            raise ValueError("ensemble members must share one vocabulary")
        self.members = nn.ModuleList(members)
        self.vocab_size, self.use_attention = members[0].vocab_size, any(m.use_attention for m in members)
        self._dims = [m.encoder.out_dim for m in members]  # feature widths: encode() concatenates, decode() splits

    def prep(self, images):
        return self.members[0].prep(images)  # the same fixed normalisation for every member (no augmentation here)

    def encode(self, x):
        return self.from_features(self.features(x))

    def features(self, x):
        return torch.cat([m.features(x) for m in self.members], -1)  # (B, S, sum F): each member's own encoder

    def from_features(self, feats):
        parts = [m.from_features(f) for m, f in zip(self.members, feats.split(self._dims, -1))]
        fs, gs, states = zip(*parts)  # (B, S, F_i), (B, F_i), state per member
        return torch.cat(fs, -1), torch.cat(gs, -1), flatten_states(states)  # (B, S, sum F), (B, sum F)

    def decode(self, tokens, state, feats, g):
        """tokens (N, T) -> mixed log-probs (N, T, V) (a valid 'logits'), attention (N, T, S) or None, new state."""
        fs, gs = feats.split(self._dims, -1), g.split(self._dims, -1)
        mixed, new, attn = 0.0, [], None
        for m, w, s, f, gg in zip(self.members, self.weights, unflatten_states(state, self.members), fs, gs):
            logits, a, s = m.decode(tokens, s, f, gg)
            mixed = mixed + w * F.log_softmax(logits.float(), dim=-1)
            new.append(s)
            if attn is None and a is not None:
                attn = a
        return F.log_softmax(mixed, dim=-1), attn, flatten_states(new)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor):
        """images uint8 (B, 3, H, W), tokens (B, T) -> mixed log-probs (B, T, V), attention (B, T, 64) or None."""
        feats, g, state = self.encode(self.prep(images))
        logp, attn, _ = self.decode(tokens, state, feats, g)
        return logp, attn

    beam_search = Captioner.beam_search  # written against prep/encode/decode only
