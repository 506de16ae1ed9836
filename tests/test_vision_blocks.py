"""core.vision's BasicBlock / Conv2dNormActivation are torchvision's, without its import (issue 25: memory)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from core import vision

tv_resnet = pytest.importorskip("torchvision.models.resnet")
tv_ops = pytest.importorskip("torchvision.ops")


def _same(ours: nn.Module, theirs: nn.Module, x: torch.Tensor) -> None:
    sd = theirs.state_dict()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in sd.items()}
    ours.load_state_dict(sd, strict=True)  # torchvision-trained weights load as they are
    for mode in (True, False):
        ours.train(mode), theirs.train(mode)
        torch.testing.assert_close(ours(x.clone()), theirs(x.clone()), rtol=0, atol=0)


@pytest.mark.parametrize("cin,w,stride", [(8, 8, 1), (8, 16, 2), (16, 16, 2)])
def test_basic_block_is_torchvisions(cin, w, stride):
    torch.manual_seed(0)
    down = (nn.Sequential(tv_resnet.conv1x1(cin, w, stride), nn.BatchNorm2d(w)) if stride != 1 or cin != w else None)
    theirs = tv_resnet.BasicBlock(cin, w, stride, down)
    for m in theirs.modules():  # non-trivial statistics, so the BN buffers matter too
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 2)
    ours_down = (nn.Sequential(vision.conv1x1(cin, w, stride), nn.BatchNorm2d(w)) if down is not None else None)
    _same(vision.BasicBlock(cin, w, stride, ours_down), theirs, torch.randn(2, cin, 12, 12))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_conv_norm_activation_is_torchvisions(k):
    torch.manual_seed(0)
    _same(vision.Conv2dNormActivation(3, 6, k), tv_ops.Conv2dNormActivation(3, 6, k), torch.randn(2, 3, 10, 10))


def test_building_the_image_models_imports_neither_torchvision_nor_dynamo():
    code = ("import sys; sys.path.insert(0, '.')\n"
            "from core.registry import discover\n"
            "from core.weights import load_model\n"
            "r = discover()\n"
            "for n in ('captioning', 'image_classification'):\n"
            "    load_model(r.tasks[n])\n"
            "print(sorted(m for m in ('torchvision', 'torch._dynamo') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
