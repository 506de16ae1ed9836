"""Models for cat-vs-dog: the same 32x32 RGB image, read two ways, with the same training budget.

    onestep  : image (B, 3, 32, 32) --small ResNet (BasicBlocks, BatchNorm)--> (B, F) --OneToOne (1 RNN step)--> logits
    rowreader: image (B, 3, 32, 32) --rows as a sequence (B, 32, 32*3)--> GRU (ManyToOne, 32 steps) --> logits

A one-step recurrence starts from h_0 = 0, so its recurrent weights never act: ``onestep`` *is* a feed-forward
CNN with a tanh layer on top. ``rowreader`` is a real RNN over the 32 rows, with no convolution at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from core.data import config_from_dict
from core.ensemble import ensemble_weights
from core.shapes import ManyToOne, OneToOne

# Per-channel mean/std of the CIFAR-10 training images (the usual published constants): inputs are [0, 1] RGB.
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


@dataclass
class ImageConfig:
    arch: str = "onestep"  # "onestep" (CNN -> one RNN step) or "rowreader" (GRU over the 32 rows)
    widths: tuple = (24, 48, 96)  # ResNet stage widths at 32, 16, 8 px: small, because training runs on one CPU core
    blocks: int = 1  # BasicBlocks per stage (each is two 3x3 convs with a skip connection)
    hidden: int = 128  # units of the recurrent layer (onestep: its single tanh step; rowreader: the GRU)
    cell: str = "gru"  # rowreader's recurrent cell (onestep always uses rnn_tanh: one step, no memory to gate)
    layers: int = 1  # rowreader's stacked recurrent layers
    dropout: float = 0.2  # before the classifier head


def default_config() -> dict:
    c = asdict(ImageConfig())
    c["widths"] = list(c["widths"])  # JSON-able, so the card can carry it
    return c


class Normalize(nn.Module):
    """[0, 1] RGB -> zero-mean unit-variance channels, inside the model so predict() feeds plain pixels."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.mean) / self.std  # (B, 3, 32, 32)


class ConvEncoder(nn.Module):
    """(B, 3, 32, 32) -> (B, F): a stem conv, then stages of torchvision BasicBlocks (stride 2 between stages),
    then global average pooling -- a CIFAR-style ResNet, shrunk to run on a CPU core."""

    def __init__(self, widths=(24, 48, 96), blocks: int = 1):
        super().__init__()
        # torchvision's own classes, without importing torchvision (its import pulls in torch._dynamo: ~190 MiB
        # resident and 1-2 s; core.vision's copies load the same weights strictly -- bench/memory.py).
        from core.vision import BasicBlock, Conv2dNormActivation

        layers: list[nn.Module] = [Normalize(), Conv2dNormActivation(3, widths[0], 3)]
        c_in = widths[0]
        for i, w in enumerate(widths):
            for b in range(blocks):
                stride = 2 if (i > 0 and b == 0) else 1
                down = None
                if stride != 1 or c_in != w:  # the skip path must match the new shape
                    down = nn.Sequential(nn.Conv2d(c_in, w, 1, stride=stride, bias=False), nn.BatchNorm2d(w))
                layers.append(BasicBlock(c_in, w, stride=stride, downsample=down))
                c_in = w
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        self.out_features = c_in

    def forward(self, x):
        return self.net(x)  # (B, F)


class RowEncoder(nn.Module):
    """(B, 3, 32, 32) -> (B, 32, 96): row r becomes time step r, its 32 pixels x 3 colours the features."""

    def __init__(self):
        super().__init__()
        self.norm = Normalize()

    def forward(self, x):
        x = self.norm(x)  # (B, 3, H, W)
        return x.permute(0, 2, 3, 1).flatten(2)  # (B, H, W*3)


def build(config: dict, meta: dict) -> nn.Module:
    cfg = config_from_dict(ImageConfig, config)
    n = len(meta.get("labels", ["cat", "dog"]))
    if cfg.arch == "onestep":
        enc = ConvEncoder(tuple(cfg.widths), cfg.blocks)
        model = OneToOne(enc.out_features, cfg.hidden, n, cell="rnn_tanh", encoder=enc, dropout=cfg.dropout)
    elif cfg.arch == "rowreader":
        model = ManyToOne(32 * 3, cfg.hidden, n, cell=cfg.cell, num_layers=cfg.layers,
                          dropout=cfg.dropout, encoder=RowEncoder())
    else:
        raise ValueError(f"unknown arch {cfg.arch!r}; use 'onestep' or 'rowreader'")
    model.arch = cfg.arch
    return model


class ClassifierEnsemble(nn.Module):
    """Several trained classifiers answering as one: the weighted mean of their class probabilities (returned as
    log-probabilities, so anything that takes logits -- softmax, cross-entropy, argmax -- works unchanged).
    ``python -m core.ensemble image_classification`` picks the weights on validation. Serving only."""

    def __init__(self, members: list[nn.Module], weights: list[float]):
        super().__init__()
        self.weights = ensemble_weights(members, weights)
        self.members = nn.ModuleList(members)
        self.arch = "ensemble"

    def forward(self, x):
        probs = sum(w * torch.softmax(m(x).float(), dim=-1) for m, w in zip(self.members, self.weights))  # (B, C)
        return probs.clamp_min(1e-12).log()
