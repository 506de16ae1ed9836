"""The inspector names a model's recurrent modules in words (core.inspect.module_words), never by torch's module
path: an ensemble's "members.1.decoder" is "decoder, ensemble member 2"."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.inspect import inspect_model, module_words
from core.layers import Recurrent


@pytest.mark.parametrize("path, words", [
    ("encoder", "encoder"),
    ("decoder", "decoder"),
    ("", "recurrent layer"),
    ("rnn", "recurrent layer"),
    ("members.0.decoder", "decoder, ensemble member 1"),
    ("members.1.encoder.net", "encoder, ensemble member 2"),
    ("body.temporal_rnn", "body temporal rnn"),
])
def test_module_words(path, words):
    assert module_words(path) == words


class _Pair(nn.Module):
    """Two members, each with a recurrent encoder: what core.ensemble builds."""

    def __init__(self):
        super().__init__()
        self.members = nn.ModuleList([nn.ModuleDict({"encoder": Recurrent("gru", 3, 4)}) for _ in range(2)])

    def forward(self, x):
        return sum(m["encoder"](x)[0].sum() for m in self.members)


def test_an_ensembles_modules_are_named_in_words_everywhere():
    torch.manual_seed(0)
    model = _Pair()
    ins = inspect_model(model, lambda m: m(torch.randn(1, 5, 3)))
    shown = set(ins.hidden.module) | set(ins.gates.module) | set(ins.spectra.module) | set(ins.hidden_states)
    assert set(ins.hidden.module) == {"encoder, ensemble member 1", "encoder, ensemble member 2"}
    assert not any("." in s or "#" in s or "members" in s for s in shown), shown
