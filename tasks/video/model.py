"""Models for the video task: a small per-frame CNN, then either nothing (frame-only) or a GRU tagger.

    frames (B, T, 1, 64, 64) --FrameEncoder--> features (B, T, F) --GRU (one- or two-way)--> (B, T, D*H) --> logits

The three variants share the encoder and the budget; only what sits between the encoder and the head differs, so
the card's comparison measures what the recurrence adds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from core.data import config_from_dict
from core.shapes import ManyToMany

from .data import LABELS, SIZE


@dataclass
class VideoConfig:
    arch: str = "bigru"  # "frame" (no recurrence), "gru" (one-way tagger) or "bigru" (two-way tagger)
    channels: tuple = (8, 16, 32, 48)  # conv widths: narrow, because every frame of every clip goes through them
    strides: tuple = (2, 2, 2, 1)  # 64 -> 32 -> 16 -> 8 -> 8: cheap strided convs, then one at 8x8 to see whole digits
    feat: int = 64  # per-frame feature size the recurrence reads
    hidden: int = 64  # GRU units per direction: a digit identity + "seen a change" fit easily
    dropout: float = 0.1  # on frame features and before the head


class FrameEncoder(nn.Module):
    """(B, T, 1, 64, 64) -> (B, T, F): every frame through the same small CNN, independently.

    Strided convs (the first 5x5, then 3x3) instead of pooling keep it cheap on CPU. The last layer's receptive field
    (33 px, on an 8 px grid) covers a whole 28 px digit wherever it is, and a global max over the grid makes the
    features the same wherever the digit moved to -- on moving digits this learns several times faster (per step)
    than a linear layer over positions, which has to learn every digit at every place."""

    def __init__(self, channels=(8, 16, 32, 48), strides=(2, 2, 2, 1), feat: int = 64):
        super().__init__()
        if len(channels) != len(strides):
            raise ValueError("channels and strides must have the same length")
        layers, c_in = [], 1
        for i, (c, s) in enumerate(zip(channels, strides)):
            k = 5 if i == 0 else 3
            layers += [nn.Conv2d(c_in, c, k, stride=s, padding=k // 2, bias=False), nn.BatchNorm2d(c),
                       nn.ReLU(inplace=True)]
            c_in = c
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Linear(c_in, feat)
        self.out_features = feat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T = x.shape[:2]
        h = self.convs(x.reshape(B * T, 1, SIZE, SIZE))  # (B*T, C, 8, 8)
        h = h.amax(dim=(2, 3))  # (B*T, C) global max: where the digit is does not matter
        return torch.relu(self.proj(h)).view(B, T, -1)  # (B, T, F)


class FrameOnly(nn.Module):
    """The baseline: the same encoder and a linear head per frame -- each label from its own frame alone.

    forward(x (B, T, 1, 64, 64), lengths=None) -> logits (B, T, C), the same signature as ManyToMany."""

    def __init__(self, encoder: nn.Module, feat: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.embed = encoder
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(feat, num_classes)

    def forward(self, x, lengths=None):
        return self.head(self.drop(self.embed(x)))  # (B, T, C)


def build(config: dict, meta: dict) -> nn.Module:
    cfg = config_from_dict(VideoConfig, config)
    n_classes = len(meta.get("labels", LABELS))
    enc = FrameEncoder(tuple(cfg.channels), tuple(cfg.strides), cfg.feat)
    if cfg.arch == "frame":
        model = FrameOnly(enc, cfg.feat, n_classes, cfg.dropout)
    elif cfg.arch in ("gru", "bigru"):
        model = ManyToMany(cfg.feat, cfg.hidden, n_classes, cell="gru", bidirectional=cfg.arch == "bigru",
                           dropout=cfg.dropout, encoder=enc)
    else:
        raise ValueError(f"unknown arch {cfg.arch!r}; valid: frame, gru, bigru")
    model.arch = cfg.arch
    return model


def default_config() -> dict:
    d = asdict(VideoConfig())
    d["channels"], d["strides"] = list(d["channels"]), list(d["strides"])
    return d
