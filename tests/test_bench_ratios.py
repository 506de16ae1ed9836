"""bench/_common.py's pure helpers for issue 25's ratios and verdict lists (fast: no server, no torch)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench import _common as C


@dataclass
class _Row:
    key: str
    value: str
    ok: bool | None


def test_stable_key_blanks_numbers_keeps_names():
    a = C.stable_key("predict sentiment / not at all good: p50 3 ms, p95 4.2 ms; forward 1.5 ms")
    b = C.stable_key("predict sentiment / not at all good: p50 12 ms, p95 20.9 ms; forward 7 ms")
    assert a == b
    assert "sentiment" in a and "ms" not in a
    assert C.stable_key("first open of image_classification") == "first open of image_classification"
    assert C.stable_key("drawn cat #1 took 2.5 s") == C.stable_key("drawn cat #1 took 0.4 s")
    assert C.stable_key("5 sessions   p95 / single") == "# sessions p95 / single"


def test_ratio_and_normalized_are_nan_safe():
    assert C.ratio(3.0, 2.0) == 1.5
    assert math.isnan(C.ratio(1.0, 0.0))
    assert math.isnan(C.ratio(float("nan"), 1.0))
    assert C.normalized([2.0, 4.0], 2.0) == [1.0, 2.0]
    assert C.normalized([1.0], float("nan")) == []
    assert C.fmt_x(float("nan")) == "n/a"
    assert C.fmt_x(1.234, 1) == "1.2x"


def test_verdicts_round_trip_and_compare(tmp_path):
    rows = [_Row("cold start / bare import", "1.21x", True), _Row("info only", "3 s", None),
            _Row("burst", "2.00x", False), _Row("burst", "1.00x", True)]
    a = tmp_path / "a.tsv"
    assert C.write_verdicts(a, rows) == 3  # the info row has no verdict; the duplicate key is numbered
    va = C.read_verdicts(a)
    assert va == {"cold start / bare import": ("1.21x", "PASS"), "burst": ("2.00x", "FAIL"),
                  "burst [2]": ("1.00x", "PASS")}
    b = tmp_path / "b.tsv"
    C.write_verdicts(b, [_Row("cold start / bare import", "1.60x", False), _Row("burst", "1.90x", False),
                         _Row("new figure", "1x", True)])
    lines, held, changed = C.compare_verdicts(va, C.read_verdicts(b))
    assert (held, changed) == (1, 3)  # burst held; cold start flipped; burst [2] only in A; new figure only in B
    text = "\n".join(lines)
    assert text.count("CHANGED") == 3 and "(not in B)" in text and "(not in A)" in text


def test_rerun_ratio_pairs_each_click_with_its_demo():
    from bench.latency import rerun_ratio

    # clicks go demo 0, 1, 0: each divided by its own demo's predict p50
    assert rerun_ratio([0.2, 0.6, 0.2], [0.1, 0.3]) == 2.0
    assert math.isnan(rerun_ratio([], [0.1]))
    assert math.isnan(rerun_ratio([0.1], []))
