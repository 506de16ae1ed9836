"""core.toys: the long-range dependency toys, gradient against distance, and bounded live training with clipping.

Every test is small (short sequences, few steps) and runs in well under 10 s on one CPU thread. The teaching
point at full size (plain RNN fails at length 60, gated cells learn) is checked by one test marked slow.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from core import toys


# ---- data --------------------------------------------------------------------------------------------------------
def test_recall_batch_shapes_and_content():
    b = toys.recall_batch(8, 12, seed=3)
    assert b["x"].shape == (8, 12) and b["x"].dtype == torch.long
    assert b["y"].shape == (8,)
    assert torch.equal(b["x"][:, 0], b["y"])  # the answer is the first token
    assert int(b["y"].max()) < toys.NUM_SYMBOLS
    rest = b["x"][:, 1:]
    assert int(rest.min()) >= toys.NUM_SYMBOLS and int(rest.max()) < toys.NUM_SYMBOLS + toys.NUM_DISTRACTORS


def test_adding_batch_shapes_and_target():
    b = toys.adding_batch(16, 20, seed=1)
    assert b["x"].shape == (16, 20, 2) and b["y"].shape == (16,)
    marks = b["x"][..., 1]
    assert torch.equal(marks.sum(1), torch.full((16,), 2.0))
    assert bool((marks[:, :10].sum(1) == 1).all()) and bool((marks[:, 10:].sum(1) == 1).all())
    torch.testing.assert_close((b["x"][..., 0] * marks).sum(1), b["y"])


@pytest.mark.parametrize("toy", toys.TOYS)
def test_batches_are_seeded(toy):
    a, b, c = (toys.make_batch(toy, 4, 10, s) for s in (7, 7, 8))
    assert torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"])
    assert not torch.equal(a["x"], c["x"])


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="valid toys"):
        toys.make_batch("copy", 2, 5)
    with pytest.raises(ValueError, match="valid activations"):
        toys.resolve_cell("rnn", "sigmoid")
    with pytest.raises(ValueError, match="valid cells"):
        toys.resolve_cell("transformer")
    with pytest.raises(ValueError, match="valid modes"):
        toys.train_toy("gru", 5, 1, clip_mode="sometimes")
    with pytest.raises(ValueError, match="positive"):
        toys.train_toy("gru", 5, 1, clip_mode="norm", threshold=0.0)
    with pytest.raises(ValueError, match="length >= 2"):
        toys.recall_batch(2, 1)


def test_resolve_cell():
    assert toys.resolve_cell("rnn", "tanh") == "rnn_tanh"
    assert toys.resolve_cell("rnn", "relu") == "rnn_relu"
    assert toys.resolve_cell("lstm", "relu") == "lstm"  # the activation only concerns the plain RNN


@pytest.mark.parametrize("cell", ["rnn_tanh", "gru", "lstm"])
def test_model_forward_and_spectral_radius(cell):
    m = toys.build_toy_model("recall", cell, hidden=12, seed=0, length=10, recurrent_scale=1.7)
    assert toys.measured_spectral_radius(m) == pytest.approx(1.7, rel=1e-3)
    b = toys.recall_batch(5, 10)
    assert m(b["x"]).shape == (5, toys.NUM_SYMBOLS)
    loss, acc = toys.toy_loss(m, b)
    assert loss.requires_grad and 0.0 <= acc <= 1.0
    a = toys.build_toy_model("adding", cell, hidden=12, seed=0)
    assert a(toys.adding_batch(3, 6)["x"]).shape == (3,)


# ---- gradient against distance -----------------------------------------------------------------------------------
def test_gradient_vs_distance_frame():
    df = toys.gradient_vs_distance("rnn", 15, "tanh", 0.9, hidden=16, seed=0)
    assert list(df.columns) == ["cell", "label", "step", "distance", "grad_norm", "grad_norm_raw", "theory",
                                "spectral_radius"]
    assert len(df) == 15 and df["distance"].tolist() == list(range(15))
    assert (df["step"] + df["distance"] == 14).all()
    assert df.attrs["spectral_radius"] == pytest.approx(0.9, rel=1e-3)
    assert df["label"].iloc[0] == "RNN (tanh)"
    # theory is the k=0 value times rho**k
    np.testing.assert_allclose(df["theory"], df["grad_norm"].iloc[0] * 0.9 ** df["distance"], rtol=1e-3)


def test_gradient_vs_distance_is_deterministic():
    a = toys.gradient_vs_distance("gru", 12, hidden=8, seed=4, recurrent_scale=1.2)
    b = toys.gradient_vs_distance("gru", 12, hidden=8, seed=4, recurrent_scale=1.2)
    pd.testing.assert_frame_equal(a, b)
    c = toys.gradient_vs_distance("gru", 12, hidden=8, seed=5, recurrent_scale=1.2)
    assert not np.allclose(a["grad_norm"], c["grad_norm"])


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_small_scale_vanishes_faster_than_large(activation):
    small = toys.gradient_vs_distance("rnn", 25, activation, 0.5, hidden=16, seed=0)
    large = toys.gradient_vs_distance("rnn", 25, activation, 2.0, hidden=16, seed=0)
    assert small.attrs["decay_rate"] < 0.6 < large.attrs["decay_rate"]
    k = 10  # well inside the range where neither under- nor overflows
    ratio = lambda d: d["grad_norm"].iloc[k] / d["grad_norm"].iloc[0]  # noqa: E731
    assert ratio(small) < 1e-3 * ratio(large)
    if activation == "relu":  # no saturation: a radius above 1 makes it grow going back
        assert large.attrs["decay_rate"] > 1.0 and ratio(large) > 1.0


def test_gated_cell_keeps_gradient_where_plain_rnn_loses_it():
    rnn = toys.gradient_vs_distance("rnn", 40, "tanh", 1.0, hidden=16, seed=0)
    gru = toys.gradient_vs_distance("gru", 40, "tanh", 1.0, hidden=16, seed=0)
    far = lambda d: d["grad_norm"].iloc[-1] / d["grad_norm"].iloc[0]  # noqa: E731
    assert far(gru) > 1e-2 > 1e-4 > far(rnn)


def test_overflow_is_reported_not_raised():
    df = toys.gradient_vs_distance("rnn", 120, "relu", 4.0, hidden=16, seed=0)
    assert df.attrs["overflow"] and df["grad_norm"].isna().any()
    assert not np.isinf(df["grad_norm"]).any()


# ---- training ----------------------------------------------------------------------------------------------------
COLUMNS = ["step", "loss", "accuracy", "grad_norm_before_clip", "grad_norm_after_clip", "diverged"]


def test_train_toy_history_callback_and_determinism():
    seen = []
    h = toys.train_toy("lstm", 8, 6, "norm", 1.0, 0.1, seed=2, callback=seen.append, hidden=8, batch_size=8)
    assert list(h.columns) == COLUMNS and h["step"].tolist() == list(range(1, 7))
    assert [r["step"] for r in seen] == list(range(1, 7))
    assert set(COLUMNS) <= set(seen[0]) and seen[0]["steps"] == 6 and seen[0]["label"] == "LSTM"
    assert not h.attrs["diverged"] and 0.0 <= h.attrs["final_accuracy"] <= 1.0
    again = toys.train_toy("lstm", 8, 6, "norm", 1.0, 0.1, seed=2, hidden=8, batch_size=8)
    pd.testing.assert_frame_equal(h, again)
    assert isinstance(toys.verdict(h), str)


@pytest.mark.parametrize("toy", toys.TOYS)
def test_train_toy_runs_both_toys(toy):
    h = toys.train_toy("gru", 6, 3, "none", 1.0, 0.05, toy=toy, hidden=8, batch_size=4)
    assert len(h) == 3 and h["loss"].map(math.isfinite).all()
    assert (h["grad_norm_before_clip"] == h["grad_norm_after_clip"]).all()  # no clipping: untouched


def test_clip_by_norm_bounds_the_post_clip_norm():
    h = toys.train_toy("rnn_tanh", 20, 8, "norm", 0.5, 0.1, seed=0, recurrent_scale=2.5, hidden=16,
                       batch_size=8)
    assert (h["grad_norm_before_clip"] > 0.5).any()  # there was something to clip
    assert (h["grad_norm_after_clip"] <= 0.5 * (1 + 1e-4)).all()
    assert (h["grad_norm_after_clip"] <= h["grad_norm_before_clip"] * (1 + 1e-6)).all()


def test_clip_by_value_bounds_each_entry():
    h = toys.train_toy("rnn_tanh", 20, 5, "value", 0.01, 0.1, seed=0, recurrent_scale=2.5, hidden=16,
                       batch_size=8)
    n_params = sum(p.numel() for p in toys.build_toy_model("recall", "rnn_tanh", 16).parameters())
    assert (h["grad_norm_after_clip"] <= 0.01 * math.sqrt(n_params) * (1 + 1e-4)).all()
    assert (h["grad_norm_after_clip"] < h["grad_norm_before_clip"]).all()


def test_exploding_run_is_reported_not_raised():
    """ReLU RNN, large recurrent weight, no clipping: the loss becomes huge / NaN; the run stops and says so."""
    seen = []
    kw = dict(activation="relu", recurrent_scale=1.5, hidden=32, batch_size=8)
    h = toys.train_toy("rnn", 40, 10, "none", 1.0, 0.3, seed=0, callback=seen.append, **kw)
    assert h.attrs["diverged"] and h["diverged"].iloc[-1] and len(h) < 10
    assert seen[-1]["diverged"]
    assert "blew up" in toys.verdict(h)
    tamed = toys.train_toy("rnn", 40, 10, "norm", 1.0, 0.3, seed=0, **kw)
    assert not tamed.attrs["diverged"] and len(tamed) == 10
    assert tamed["loss"].map(math.isfinite).all()
    assert (tamed["grad_norm_after_clip"] <= 1.0 + 1e-4).all()


def test_forward_blow_up_is_reported():
    h = toys.train_toy("rnn", 60, 5, "norm", 1.0, 0.3, seed=0, activation="relu", recurrent_scale=3.0, hidden=16,
                       batch_size=8)
    assert h.attrs["diverged_at"] == 1 and "forward pass" in toys.verdict(h)


def test_max_seconds_bounds_a_run():
    h = toys.train_toy("gru", 10, 10_000, "norm", 1.0, 0.1, hidden=8, batch_size=4, max_seconds=0.2)
    assert len(h) < 10_000 and not h.attrs["diverged"]


@pytest.mark.slow
def test_teaching_point_at_full_size():
    """The defaults the Gradient Lab uses: at length 60 the plain tanh RNN stays near chance while GRU and LSTM
    learn the recall task (about 6 s of CPU on one thread for all three)."""
    res = {c: toys.train_toy(c, 60, 300, "norm", 1.0, 0.3, seed=0, recurrent_scale=1.0).attrs["final_accuracy"]
           for c in ("rnn_tanh", "gru", "lstm")}
    assert res["rnn_tanh"] < 0.45 and res["gru"] > 0.9 and res["lstm"] > 0.9, res


# ---- issue 22: same budget for every cell, verdicts that read the trend ------------------------------------------

def test_steps_within_budget_is_the_same_for_every_cell_and_bounds_the_work():
    assert toys.steps_within_budget(300, 60) == 300
    for length in (5, 60, 120, 200):
        n = toys.steps_within_budget(600, length)
        assert n * length <= toys.WORK_BUDGET or n == 10
        assert n % 10 == 0 and 10 <= n <= 600
    assert toys.steps_within_budget(600, 200) < 600


def _history(acc, loss) -> pd.DataFrame:
    n = len(acc)
    h = pd.DataFrame({"step": range(1, n + 1), "loss": loss, "accuracy": acc, "grad_norm_before_clip": 1.0,
                      "grad_norm_after_clip": 1.0, "diverged": False})
    h.attrs.update(label="LSTM", cell="lstm", chance=0.25, final_accuracy=float(pd.Series(acc).tail(20).mean()),
                   diverged=False, clip_mode="norm", threshold=1.0, max_grad_norm=1.0)
    return h


def test_verdict_says_still_learning_when_accuracy_is_rising():
    n = 300
    acc = np.linspace(0.22, 0.40, n)
    loss = np.linspace(1.40, 1.25, n)
    h = _history(acc, loss)
    assert toys.learning_trend(h)["rising"]
    text = toys.verdict(h)
    assert "still learning" in text and "failed" not in text


def test_verdict_flat_or_unstable_run_is_not_still_learning():
    rng = np.random.default_rng(0)
    flat = _history(0.25 + 0.02 * rng.standard_normal(300), 1.40 + 0.01 * rng.standard_normal(300))
    assert not toys.learning_trend(flat)["rising"] and "failed" in toys.verdict(flat)
    # a plain RNN whose loss jumped up and came part of the way back down: no progress
    loss = np.concatenate([np.full(60, 1.55), np.full(60, 1.8), np.full(60, 1.8), np.full(60, 2.15), np.full(60, 1.9)])
    jumpy = _history(np.full(300, 0.26), loss)
    assert not toys.learning_trend(jumpy)["rising"]


def test_underflow_is_kept_as_zero_in_the_raw_column():
    df = toys.gradient_vs_distance("rnn", 200, "tanh", 0.1, hidden=16, seed=0)
    raw = df["grad_norm_raw"].to_numpy(float)
    assert (raw == 0).any() and np.isnan(df.loc[raw == 0, "grad_norm"]).all()
