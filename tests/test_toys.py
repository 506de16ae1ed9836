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


# ---- issue 36: parity and length generalisation -------------------------------------------------------------------

def test_parity_batch_labels_count_the_ones_of_each_real_sequence():
    b = toys.parity_batch(64, 12, seed=5)
    x, y, lengths = b["x"], b["y"], b["lengths"]
    assert x.shape == (64, 12) and y.shape == (64,) and lengths.shape == (64,)
    assert int(lengths.min()) >= 1 and int(lengths.max()) <= 12 and lengths.unique().numel() > 3
    for row, n, label in zip(x.tolist(), lengths.tolist(), y.tolist()):
        assert set(row) <= {0, 1} and not any(row[n:])  # bits, zeros after the real length
        assert label == sum(row[:n]) % 2  # odd number of 1s -> 1
    assert 0 < int(y.sum()) < 64  # both answers occur
    exact = toys.parity_batch(16, 9, seed=1, min_length=9)
    assert bool((exact["lengths"] == 9).all())
    with pytest.raises(ValueError, match="shortest length"):
        toys.parity_batch(2, 5, min_length=6)


@pytest.mark.parametrize("cell", [c for c in ("rnn_tanh", "mingru", "minlstm") if c in toys.CELLS])
def test_parity_model_reads_the_last_real_step(cell):
    """A sequence padded with extra zeros (lengths given) gets the same answer as the unpadded one."""
    m = toys.build_toy_model("parity", cell, hidden=8, seed=0, gate_init="torch").eval()
    b = toys.parity_batch(6, 7, seed=2, min_length=7)
    padded = torch.cat([b["x"], torch.ones(6, 5, dtype=torch.long)], dim=1)  # ones after the end: must be ignored
    with torch.no_grad():
        torch.testing.assert_close(m(b["x"], b["lengths"]), m(padded, b["lengths"]))


def test_parity_lab_returns_one_row_per_cell_and_length():
    cells = [c for c in toys.PARITY_CELLS if c in ("rnn_tanh", "gru", "mingru")]
    cfg = toys.ParityConfig(train_length=4, factors=(1, 2, 4), steps=5, hidden=8, batch_size=8, eval_size=32)
    seen = []
    df = toys.parity_lab(cells, cfg, seeds=(0,), callback=seen.append)
    assert list(df.columns) == toys.PARITY_COLUMNS
    assert len(df) == len(cells) * 3
    assert sorted(df.groupby("cell").size().unique()) == [3]
    assert df.groupby("cell")["length"].apply(list).map(lambda v: sorted(v) == [4, 8, 16]).all()
    assert df.loc[df["trained"], "length"].eq(4).all() and (~df["trained"]).sum() == 2 * len(cells)
    assert df["accuracy"].between(0, 1).all() and (df["chance"] == 0.5).all() and (df["steps_run"] == 5).all()
    assert df["said_odd"].between(0, 1).all()
    assert len(seen) == 5 * len(cells) and seen[0]["seed"] == 0 and seen[0]["cell"] == cells[0]
    again = toys.parity_lab(cells, cfg, seeds=(0,))
    pd.testing.assert_frame_equal(df.drop(columns="seconds"), again.drop(columns="seconds"))


def _parity_rows(label: str, accs: dict[int, list[float]], cell: str = "x") -> pd.DataFrame:
    """parity_lab-shaped rows: accs maps seed -> accuracy at lengths 10, 20, 40."""
    rows = [dict(cell=cell, label=label, seed=s, length=n, factor=n // 10, trained=n == 10, accuracy=a,
                 said_odd=0.0 if a < 0.6 else 0.5, chance=0.5, train_accuracy=0.55, steps_run=100, seconds=1.0)
            for s, row in accs.items() for n, a in zip((10, 20, 40), row)]
    return pd.DataFrame(rows, columns=toys.PARITY_COLUMNS)


def test_parity_outcomes_and_verdicts_follow_the_numbers():
    gen = _parity_rows("GRU", {0: [1.0, 0.99, 0.97]})
    fits = _parity_rows("minGRU", {0: [0.98, 0.62, 0.5]})
    none = _parity_rows("minLSTM", {0: [0.52, 0.5, 0.49]})
    mixed = _parity_rows("RNN (tanh)", {0: [1.0, 1.0, 1.0], 1: [0.55, 0.5, 0.5]})
    assert toys.parity_outcome(gen) == "generalised" and toys.parity_outcome(fits) == "fits only"
    assert toys.parity_outcome(none) == "not learned"
    assert toys.parity_outcome(_parity_rows("x", {0: [0.75, 0.6, 0.5]})) == "partly"
    assert "kept it at every longer length" in toys.parity_verdict(gen, "x") and "97% at 40" in \
        toys.parity_verdict(gen, "x")
    assert "fits the training lengths but not beyond" in toys.parity_verdict(fits, "x")
    assert "not even at the training lengths" in toys.parity_verdict(none, "x")
    assert "same answer to nearly every sequence" in toys.parity_verdict(none, "x")
    assert "same answer" not in toys.parity_verdict(none.assign(said_odd=0.4), "x")
    text = toys.parity_verdict(mixed, "x")
    assert "mixed over 2 runs" in text and "1 generalised" in text and "1 not learned" in text
    both = pd.concat([gen.assign(cell="gru"), none.assign(cell="minlstm"), mixed.assign(cell="rnn_tanh")])
    summary = toys.parity_summary(both)
    assert summary["generalised"] == ["GRU"] and summary["not learned"] == ["minLSTM"]
    assert summary["mixed"] == ["RNN (tanh)"]


def test_parity_steps_keep_the_labs_budget():
    assert toys.parity_steps(600, 20, 1) == 600
    assert toys.parity_steps(1000, 40, 3) * 40 * 3 <= toys.WORK_BUDGET


@pytest.mark.skipif("mingru" not in toys.CELLS, reason="the linear recurrences are not installed")
def test_linear_recurrences_get_a_remembering_start_and_no_spectral_radius():
    m = toys.build_toy_model("recall", "mingru", hidden=6, seed=0, length=50, recurrent_scale=1.5)
    b = m.rnn.weights(0, 0)[2]
    torch.testing.assert_close(b[:6], torch.full((6,), -math.log(50)))  # z = 1/51: keeps 1 - z per step
    assert math.isnan(toys.measured_spectral_radius(m))  # no recurrent matrix w'
    lstm = toys.build_toy_model("recall", "minlstm", hidden=6, seed=0, length=50).rnn.weights(0, 0)[2]
    assert bool((lstm[:6] > 0).all() and (lstm[6:12] < 0).all())
    df = toys.gradient_vs_distance("mingru", 12, hidden=8)
    assert len(df) == 12 and df["grad_norm"].notna().all()


# ---- issue 36: speed of one training step ------------------------------------------------------------------------

def test_speed_table_columns_positive_times_and_rounds():
    from core import speed

    cfg = speed.SpeedConfig(batch=2, hidden=8, lengths=(8, 32), budget_s=30, repeats=1)
    seen = []
    df = speed.speed_table(cfg, callback=seen.append)
    series = speed.speed_series()
    assert list(df.columns) == speed.SPEED_COLUMNS and len(df) == len(series) * 2 == len(seen)
    assert (df["seconds"] > 0).all() and df["measured"].all()
    loops = df[df["path"] != speed.PATH_SCAN]
    assert (loops["rounds"] == loops["length"]).all()
    scans = df[df["path"] == speed.PATH_SCAN]
    assert (scans["rounds"] == scans["length"].map(lambda t: math.ceil(math.log2(t)))).all()
    if "mingru" in toys.CELLS:
        assert {("mingru", speed.PATH_SCAN), ("mingru", speed.PATH_STEPWISE), ("gru", speed.PATH_LOOP)} <= set(
            zip(df["cell"], df["path"]))
    assert df.attrs["threads"] >= 1 and df.attrs["hidden"] == 8


def test_speed_table_estimates_what_the_budget_does_not_allow():
    from core import speed

    cfg = speed.SpeedConfig(batch=2, hidden=8, lengths=(8, 16, 64), budget_s=0.0, repeats=1)
    df = speed.speed_table(cfg, series=[("gru", speed.PATH_LOOP)])
    assert df["measured"].tolist() == [True, False, False]  # the first length is always measured
    s = df["seconds"].to_numpy()
    np.testing.assert_allclose(s[1:], s[0] * np.array([2.0, 8.0]))  # in proportion to T
    assert speed.speed_ratio(df, 64, ("gru", speed.PATH_LOOP), ("gru", speed.PATH_LOOP)) == pytest.approx(1.0)
    assert math.isnan(speed.speed_ratio(df, 64, ("lstm", speed.PATH_LOOP), ("gru", speed.PATH_LOOP)))


@pytest.mark.slow
def test_parity_teaching_point_at_full_size():
    """The page's defaults (T = 20, 600 steps, seed 0): GRU and LSTM learn a rule that holds at 8x the training
    length; minGRU and minLSTM stay near chance even at the training length (about 30 s on two idle cores)."""
    cells = [c for c in ("gru", "lstm", "mingru", "minlstm") if c in toys.PARITY_CELLS]
    res = toys.parity_lab(cells, toys.ParityConfig(), seeds=(0,))
    outcome = {c: toys.parity_outcome(res[res["cell"] == c]) for c in cells}
    assert outcome["gru"] == outcome["lstm"] == "generalised", outcome
    for c in set(cells) & {"mingru", "minlstm"}:
        assert outcome[c] == "not learned", outcome


@pytest.mark.parametrize("kind", ["sgd", "adam"])
def test_plain_optimizer_takes_torch_optims_steps(kind):
    """core.toys.PlainOptimizer (the live toys' optimizer, which keeps torch._dynamo out of the server) updates the
    weights exactly as torch.optim's SGD with momentum / Adam do."""
    from core.toys import PlainOptimizer

    torch.manual_seed(0)
    a = torch.nn.GRU(3, 5, batch_first=True)
    b = torch.nn.GRU(3, 5, batch_first=True)
    b.load_state_dict(a.state_dict())
    ours = PlainOptimizer(a.parameters(), lr=0.05, kind=kind)
    theirs = (torch.optim.SGD(b.parameters(), lr=0.05, momentum=0.9) if kind == "sgd"
              else torch.optim.Adam(b.parameters(), lr=0.05))
    for step in range(5):
        x = torch.randn(4, 6, 3, generator=torch.Generator().manual_seed(step))
        for model, opt in ((a, ours), (b, theirs)):
            opt.zero_grad(set_to_none=True)
            model(x)[0].pow(2).mean().backward()
            opt.step()
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), n
    with pytest.raises(ValueError, match="valid optimizers"):
        PlainOptimizer(a.parameters(), lr=0.1, kind="rmsprop")


def test_training_a_toy_keeps_torch_dynamo_out():
    """Creating a torch.optim optimizer imports torch._dynamo, sympy and triton (~150 MiB resident in the server for
    good); the toys trained live on the Gradient Lab and the Lesson do not."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, torch\nfrom core import toys, lesson\n"
            "toys.fit_toy('gru', 10, 3, 'norm', 1.0, 0.01, 0, optimizer='adam')\n"
            "toys.fit_toy('rnn_tanh', 10, 3, 'value', 1.0, 0.01, 0, optimizer='sgd')\n"
            "lesson.train_tiny(steps=2)\n"
            "print(sorted(m for m in ('torch._dynamo', 'sympy', 'triton') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parent.parent, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr
