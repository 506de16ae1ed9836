"""The clipping tables' bucketing (core.inspect._buckets32): a table look-up on float32 bit patterns that must put
every entry in the bucket a float64 binary search puts it in, entries at, just below and just above each threshold
included."""

import numpy as np
import pytest
import torch

from core.inspect import _bucket_table, _buckets32, clip_reports
from core.ui.inspector import CLIP_OPTIONS


def _edge_entries(thresholds) -> np.ndarray:
    out = [0.0, 1e-45, 1e-40, 3e38, np.inf]
    for t in thresholds:
        t32 = np.float32(t)
        out += [t32, np.nextafter(t32, np.float32(0)), np.nextafter(t32, np.float32(np.inf))]
    return np.array(out, dtype=np.float32)


@pytest.mark.parametrize("thresholds", [CLIP_OPTIONS, [1e-3, 2.0, 0.05, 0.5, 1e3], [0.1]])
def test_buckets_equal_a_float64_binary_search(thresholds):
    bounds = np.unique(np.asarray(thresholds, dtype=np.float64))
    rng = np.random.default_rng(0)
    a = np.concatenate([_edge_entries(thresholds), np.abs(rng.standard_normal(20000) * 10.0 ** rng.uniform(-6, 3, 20000))
                        ]).astype(np.float32)
    got = _buckets32(a, *_bucket_table(bounds))
    want = np.searchsorted(bounds, a.astype(np.float64), side="left")
    assert np.array_equal(got, want)
    assert (got == len(bounds)).sum() >= 1 and (got == 0).sum() >= 1


def test_float32_gradients_give_the_tables_of_their_float64_copies():
    """float32 gradients take the look-up; float64 ones the binary search: the same counts and sums."""
    torch.manual_seed(0)
    edges = torch.from_numpy(_edge_entries(CLIP_OPTIONS)[5:])  # the entries at and beside each threshold
    grads = {"w": torch.randn(64, 48) * 1e-2, "edges": torch.cat([edges, -edges]), "b": torch.randn(40).exp() * 1e-3}
    fast = clip_reports(grads, CLIP_OPTIONS)
    ref = clip_reports({n: g.double() for n, g in grads.items()}, CLIP_OPTIONS)
    for t in CLIP_OPTIONS:
        assert fast[t][1]["entries_clamped"] == ref[t][1]["entries_clamped"], t
        assert fast[t][1] == pytest.approx(ref[t][1], rel=1e-12), t
        assert fast[t][0].drop(columns=["name", "lesson_name"]).to_numpy() == pytest.approx(
            ref[t][0].drop(columns=["name", "lesson_name"]).to_numpy(), rel=1e-12)
