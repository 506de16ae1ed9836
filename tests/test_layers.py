"""The recurrent layer: fused and stepwise paths agree; the lesson's equations; BPTT decay at the predicted rate."""

import pytest
import torch

from core.inspect import clip_report, clip_reports, decay_rate, inspect_model, matrix_spectrum, recurrent_spectra
from core.layers import CELL_LABELS, CELLS, Recurrent, cell_label, check_cell


def _state0(s):
    return s[0] if isinstance(s, tuple) else s


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("lengths", [[7, 4, 1, 6], [7, 7, 7, 7], None], ids=["padded", "full", "no-lengths"])
def test_fused_and_stepwise_agree(cell, layers, bidirectional, lengths):
    """Padded batches take the masked loop; full ones (or no lengths) the unmasked one: both match cuDNN/MKL."""
    torch.manual_seed(0)
    r = Recurrent(cell, 5, 8, layers, bidirectional)
    x = torch.randn(4, 7, 5)
    lengths = None if lengths is None else torch.tensor(lengths)
    out_f, st_f = r.forward_fused(x, lengths)
    out_s, st_s, _ = r.forward_stepwise(x, lengths)
    torch.testing.assert_close(out_s, out_f, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(_state0(st_s), _state0(st_f), atol=1e-5, rtol=1e-5)
    w = torch.randn_like(out_f)
    gf = torch.autograd.grad((out_f * w).sum() + _state0(st_f).pow(2).sum(), list(r.parameters()))
    gs = torch.autograd.grad((out_s * w).sum() + _state0(st_s).pow(2).sum(), list(r.parameters()))
    for a, b in zip(gf, gs):
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4)


def assert_padding_ignored(r: Recurrent) -> None:
    """Garbage after a sequence's length changes neither its outputs (zero there) nor its final state (h of (h, c))."""
    x = torch.randn(1, 5, 3)
    out1, st1 = r(x, torch.tensor([5]))
    padded = torch.cat([x, 100 * torch.randn(1, 4, 3)], dim=1)  # garbage in the padding
    out2, st2 = r(padded, torch.tensor([5]))
    torch.testing.assert_close(out2[:, :5], out1, atol=1e-6, rtol=1e-5)
    assert out2[:, 5:].abs().max() == 0
    h = (lambda s: s[0] if isinstance(s, tuple) else s)
    torch.testing.assert_close(h(st2), h(st1), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("path", ["fused", "stepwise"])
def test_padding_never_changes_results(path):
    torch.manual_seed(1)
    r = Recurrent("lstm", 3, 6, 2, True)
    r.path = path
    assert_padding_ignored(r)


def test_lesson_equations_match_the_layer():
    """o_t = tanh(x_t w + o_{t-1} w' + b_o), written straight from the lesson, against the layer."""
    torch.manual_seed(2)
    r = Recurrent("rnn_tanh", 4, 6)
    w, w_rec, b_ih, b_hh = r.weights(0, 0)
    x = torch.randn(2, 9, 4)
    o = torch.zeros(2, 6)
    outs = []
    for t in range(9):
        o = torch.tanh(x[:, t] @ w.T + o @ w_rec.T + (b_ih + b_hh))
        outs.append(o)
    out, _ = r(x)
    torch.testing.assert_close(out, torch.stack(outs, 1), atol=1e-6, rtol=1e-5)


def test_unknown_cell_lists_valid_ones():
    with pytest.raises(ValueError) as e:
        check_cell("transformer")
    for c in CELLS:
        assert c in str(e.value)
    with pytest.raises(ValueError):
        Recurrent("LSTM", 2, 2)


def test_every_cell_has_one_short_and_one_long_label():
    assert tuple(CELL_LABELS) == CELLS
    assert len({lab.short for lab in CELL_LABELS.values()}) == len({lab.long for lab in CELL_LABELS.values()}) == \
        len(CELLS)
    assert cell_label("rnn_tanh") == "RNN (tanh)" and cell_label("rnn_tanh", long=True) == "plain RNN (tanh)"
    assert cell_label("gru") == cell_label("gru", long=True) == "GRU"
    assert cell_label("transformer") == "transformer"  # a card from elsewhere: shown as it is, not an error


def _scaled_tanh_rnn(rho: float, hidden: int = 32) -> Recurrent:
    torch.manual_seed(3)
    r = Recurrent("rnn_tanh", 1, hidden)
    q, _ = torch.linalg.qr(torch.randn(hidden, hidden))
    with torch.no_grad():
        r.rnn.weight_hh_l0.copy_(rho * q)  # spectral radius exactly rho, all singular values rho
        r.rnn.bias_ih_l0.zero_()
        r.rnn.bias_hh_l0.zero_()
    return r


@pytest.mark.parametrize("rho", [0.7, 1.3])
def test_gradient_decays_or_grows_at_the_spectral_rate(rho):
    """Near the linear regime of tanh, ||dL/dh_t|| ~ rho ** distance: vanishing below 1, exploding above."""
    r = _scaled_tanh_rnn(rho).eval()
    x = 1e-6 * torch.randn(1, 25, 1)
    v = torch.randn(32)

    def loss_fn(m):
        out, _ = m(x)
        return (out[0, -1] * v).sum() * 1e6

    ins = inspect_model(r, loss_fn)
    rate = decay_rate(ins.hidden)
    # distance grows backwards in time, so the per-step factor of growth with distance is rho
    assert rate == pytest.approx(rho, rel=0.02)
    near, far = ins.hidden.grad_norm.iloc[-1], ins.hidden.grad_norm.iloc[0]
    assert (far < near) if rho < 1 else (far > near)


@pytest.mark.parametrize("T", [1, 2, 100, 10_000])
def test_any_length_runs_and_param_count_is_fixed(T):
    r = Recurrent("gru", 3, 4)
    n = sum(p.numel() for p in r.parameters())
    out, h = r(torch.randn(1, T, 3))
    assert out.shape == (1, T, 4) and torch.isfinite(out).all()
    assert sum(p.numel() for p in r.parameters()) == n == 3 * (3 * 4 + 4 * 4 + 2 * 4)


def test_stepwise_long_sequence_and_inspection():
    r = Recurrent("lstm", 2, 4).eval()
    x = torch.randn(1, 2000, 2)
    ins = inspect_model(r, lambda m: m(x)[0][0, -1].sum())
    assert len(ins.hidden) == 2000
    assert set(ins.gates.gate) == {"i", "f", "g", "o"}


def test_inspection_is_thread_local_and_leaves_grads_alone():
    """A served model is shared: inspecting must not switch other threads to the stepwise path or touch .grad."""
    import threading

    r = Recurrent("gru", 2, 4).eval()
    x = torch.randn(1, 5, 2)
    seen = {}

    def other():
        from core.layers import _LOCAL

        seen["traces"] = getattr(_LOCAL, "traces", None)

    def loss_fn(m):
        t = threading.Thread(target=other)
        t.start()
        t.join()
        return m(x)[0].sum()

    inspect_model(r, loss_fn)
    assert seen["traces"] is None
    assert all(p.grad is None for p in r.parameters())


def test_clip_reports_match_clamping_the_gradients():
    """The closed form over bucketed |g| (what the app keeps) against clamping and rescaling the tensors themselves;
    thresholds asked in any order, and entries exactly at a threshold (kept: clamping leaves them as they are)."""
    torch.manual_seed(3)
    grads = {"rnn.weight_hh_l0": torch.randn(12, 4) * 3, "rnn.bias_ih_l0": torch.randn(12) * 0.01,
             "head.weight": torch.zeros(2, 4)}
    grads["rnn.weight_hh_l0"][0, :2] = torch.tensor([0.5, -2.0])
    ts = [1e-3, 2.0, 0.05, 0.5, 1e3]
    reports = clip_reports(grads, ts)
    total = torch.cat([g.flatten() for g in grads.values()]).norm()
    for t in ts:
        df, summary = reports[t]
        assert clip_report(grads, t)[1] == pytest.approx(summary, rel=1e-12)
        factor = min(1.0, t / (float(total) + 1e-6))
        clamped = {n: g.clamp(-t, t) for n, g in grads.items()}
        for row in df.itertuples():
            g, gv = grads[row.name], clamped[row.name]
            assert row.before == pytest.approx(float(g.norm()), rel=1e-5)
            assert row.after_clip_norm == pytest.approx(float(g.norm()) * factor, rel=1e-5)
            assert row.after_clip_value == pytest.approx(float(gv.norm()), rel=1e-5, abs=1e-12)
            cos = float(torch.nn.functional.cosine_similarity(g.flatten(), gv.flatten(), dim=0)) if g.norm() > 0 \
                else 1.0
            assert row.value_clip_cosine == pytest.approx(cos, rel=1e-5)
        assert summary["entries_clamped"] == sum(int((g.abs() > t).sum()) for g in grads.values())
        assert summary["entries"] == 12 * 4 + 12 + 8
        assert summary["total_after_clip_value"] == pytest.approx(
            float(torch.cat([v.flatten() for v in clamped.values()]).norm()), rel=1e-5)
    assert reports[1e3][1]["entries_clamped"] == 0 and reports[1e3][1]["norm_scale"] == 1.0
    with pytest.raises(ValueError):
        clip_reports(grads, [0.0])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("cell", CELLS)
def test_cuda_paths_agree_and_inspect_in_eval_mode(cell):
    torch.manual_seed(0)
    torch.backends.cudnn.allow_tf32 = False  # cuDNN RNNs default to TF32 matmuls: ~1e-3 off the stepwise loop
    torch.backends.cuda.matmul.allow_tf32 = False
    r = Recurrent(cell, 5, 8, 2, True).cuda().eval()
    x = torch.randn(3, 6, 5, device="cuda")
    lengths = torch.tensor([6, 3, 2])
    out_f, _ = r.forward_fused(x, lengths)
    out_s, _, _ = r.forward_stepwise(x, lengths)
    torch.testing.assert_close(out_s, out_f, atol=1e-4, rtol=1e-4)
    ins = inspect_model(r, lambda m: m(x, lengths)[0].sum())  # would fail through cuDNN in eval mode
    assert (ins.hidden.grad_norm > 0).any()


def test_spectra_are_remembered_by_the_weights_content(monkeypatch):
    """matrix_spectrum: the eigenvalues and singular values of w' (slow for big blocks) are computed once per
    content; the same weights later come from memory, and weights changed in place are computed afresh."""
    torch.manual_seed(0)
    rnn = Recurrent("gru", 3, 16)
    direct = []
    for block in rnn.weights(0, 0)[1].detach().chunk(3, dim=0):
        direct.append((float(torch.linalg.eigvals(block).abs().max()), float(torch.linalg.svdvals(block)[0])))
    first = recurrent_spectra(rnn)
    assert first.spectral_radius.tolist() == pytest.approx([r for r, _ in direct], rel=1e-6)
    assert first.max_singular.tolist() == pytest.approx([s for _, s in direct], rel=1e-6)

    def no_more(*a, **k):
        raise AssertionError("computed again")

    monkeypatch.setattr(torch.linalg, "eigvals", no_more)
    assert recurrent_spectra(rnn).equals(first)  # from memory
    with torch.no_grad():
        rnn.weights(0, 0)[1].mul_(2.0)  # new weights, in place
    with pytest.raises(AssertionError, match="computed again"):
        recurrent_spectra(rnn)
    monkeypatch.undo()
    assert recurrent_spectra(rnn).spectral_radius.tolist() == pytest.approx([2 * r for r, _ in direct], rel=1e-5)
    rho, top, sv = matrix_spectrum(torch.eye(4) * 0.5)
    assert rho == pytest.approx(0.5) and top == pytest.approx(0.5) and sv == [0.5] * 4


def test_big_blocks_are_decomposed_on_two_threads_with_the_same_results(monkeypatch):
    import threading

    import core.inspect as I

    torch.manual_seed(1)
    rnn = Recurrent("gru", 3, I.PARALLEL_FROM)
    names = set()
    real = torch.linalg.eigvals

    def eigvals(m):
        names.add(threading.current_thread().name)
        return real(m)

    monkeypatch.setattr(torch.linalg, "eigvals", eigvals)
    got = recurrent_spectra(rnn).spectral_radius.tolist()
    blocks = rnn.weights(0, 0)[1].detach().chunk(3, dim=0)
    assert got == pytest.approx([float(real(b).abs().max()) for b in blocks], rel=1e-6)
    assert names and all(n.startswith("rnnlab-spectra") for n in names)
