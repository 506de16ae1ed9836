"""bench/memory.py's reading of /proc/<pid>/smaps by kind: the kinds add up to the resident size, and a model's
memory-mapped weights are counted as weights once the model has read them."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

pytestmark = pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux /proc")


def _rss() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))


def test_kinds_add_up_to_the_resident_size():
    from bench.memory import KINDS, smaps_kinds

    kinds = smaps_kinds(os.getpid())
    assert set(kinds) == set(KINDS) and all(v >= 0 for v in kinds.values())
    assert kinds["torch libraries"] > 0 and kinds["anonymous"] > 0
    assert sum(kinds.values()) == pytest.approx(_rss(), abs=8)  # read a moment apart


def test_memory_mapped_weights_count_as_weights(tmp_path):
    from safetensors.torch import load_file, save_file

    from bench.memory import smaps_kinds

    save_file({"w": torch.randn(1024, 1024)}, str(tmp_path / "model.safetensors"))  # 4 MiB
    before = smaps_kinds(os.getpid())["model weights"]
    w = load_file(str(tmp_path / "model.safetensors"))["w"]
    float(w.sum())  # the model reads its weights: their pages become resident
    assert smaps_kinds(os.getpid())["model weights"] - before == pytest.approx(4, abs=0.5)
