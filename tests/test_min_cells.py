"""minGRU and minLSTM (core.layers): the parallel scan against the step-by-step loop (values and gradients), the
paper's equations, long sequences, padding, dropout, initial state; every place a cell name is accepted (the five
shapes, core.train.fit, the Your data page's training, the plugin scaffold); and what Inspect reads from them."""

from __future__ import annotations

import copy
import importlib
import sys
import uuid

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_layers import assert_padding_ignored

from core import new_task
from core.inspect import inspect_model, lesson_name, reach_summary, reach_table, recurrent_spectra
from core.layers import CELL_LABELS, CELLS, GATES, MIN_CELLS, Recurrent, linear_scan, recording
from core.shapes import SHAPES, EncoderDecoder, ManyToMany, ManyToOne, OneToMany, OneToOne
from core.train import fit

LENGTHS = [[70, 41, 1, 69], [70, 70, 70, 70], None]


def _loop(log_a: torch.Tensor, c: torch.Tensor, h0: torch.Tensor) -> torch.Tensor:
    """h_t = a_t h_{t-1} + c_t, one step at a time, in float64."""
    h, out = h0.double(), []
    for a_t, c_t in zip(log_a.double().exp().unbind(1), c.double().unbind(1)):
        h = a_t * h + c_t
        out.append(h)
    return torch.stack(out, 1)


# ---- the scan itself ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("T", [1, 2, 3, 4, 9, 10, 28, 100, 300])
def test_linear_scan_matches_the_loop_at_chunk_edges(T):
    """Lengths below, at and above the chunk sizes (3 in float32, 16 in float64) and their powers."""
    torch.manual_seed(T)
    log_a = F.logsigmoid(torch.randn(2, T, 5) * 3)
    c, h0 = torch.randn(2, T, 5), torch.randn(2, 5)
    ref = _loop(log_a, c, h0)
    torch.testing.assert_close(linear_scan(log_a.double(), c.double(), h0.double()), ref, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(linear_scan(log_a, c, h0).double(), ref, atol=2e-6, rtol=1e-5)
    torch.testing.assert_close(linear_scan(log_a, c)[:, :1], c[:, :1])  # h0 = 0 by default


def test_linear_scan_gradient_is_exact():
    torch.manual_seed(0)
    log_a = F.logsigmoid(torch.randn(2, 37, 3, dtype=torch.float64) * 2).detach().requires_grad_()
    c = torch.randn(2, 37, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(linear_scan, (log_a, c, h0))


@pytest.mark.parametrize("gate_scale", [0.3, 3.0, 50.0], ids=["soft", "sharp", "saturated"])
def test_linear_scan_stays_accurate_at_4096_steps(gate_scale):
    """One cumulative sum over 4096 steps would leave ~1e-3 on h in float32 (the log-decays reach thousands and
    their rounding is what multiplies h); the chunked scan stays at float32's own precision, with gates anywhere
    from soft to fully saturated (a_t down to e^-50, where the floor at e^-20 applies)."""
    torch.manual_seed(1)
    k = torch.randn(4, 4096, 16) * gate_scale
    log_a, c, h0 = F.logsigmoid(-k), torch.sigmoid(k) * torch.randn(4, 4096, 16) * 3, torch.randn(4, 16)
    ref = _loop(log_a, c, h0)
    out = linear_scan(log_a, c, h0)
    assert torch.isfinite(out).all()
    scale = float(ref.abs().max())
    assert float((out.double() - ref).abs().max()) < 1e-5 * scale
    torch.testing.assert_close(linear_scan(log_a.double(), c.double(), h0.double()), ref, atol=1e-11, rtol=1e-10)


# ---- the layer: two paths, the paper's equations ----------------------------------------------------------------

@pytest.mark.parametrize("cell", MIN_CELLS)
@pytest.mark.parametrize("dtype,atol", [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["f64", "f32"])
@pytest.mark.parametrize("lengths", LENGTHS, ids=["padded", "full", "no-lengths"])
def test_parallel_and_stepwise_agree(cell, dtype, atol, lengths):
    """Two layers, both directions, variable lengths, an initial state: outputs, final states and the gradients of
    every weight, of the input and of the initial state."""
    torch.manual_seed(2)
    r = Recurrent(cell, 5, 8, 2, bidirectional=True).to(dtype)
    assert r.path == "parallel"
    x = torch.randn(4, 70, 5, dtype=dtype, requires_grad=True)
    h0 = torch.randn(4, 4, 8, dtype=dtype, requires_grad=True)
    lengths = None if lengths is None else torch.tensor(lengths)
    out_p, st_p = r(x, lengths, h0)
    out_s, st_s, _ = r.forward_stepwise(x, lengths, h0)
    assert out_p.shape == (4, 70, 16) and st_p.shape == (4, 4, 8)
    torch.testing.assert_close(out_p, out_s, atol=atol, rtol=atol)
    torch.testing.assert_close(st_p, st_s, atol=atol, rtol=atol)
    w = torch.randn_like(out_p)
    wrt = list(r.parameters()) + [x, h0]
    g_p = torch.autograd.grad((out_p * w).sum() + st_p.pow(2).sum(), wrt)
    g_s = torch.autograd.grad((out_s * w).sum() + st_s.pow(2).sum(), wrt)
    for a, b in zip(g_p, g_s):
        torch.testing.assert_close(a, b, atol=10 * atol, rtol=10 * atol)


def test_min_gru_is_the_papers_equations():
    """z = sigmoid(W_z x + b_z), h~ = W_h x + b_h, h = (1 - z) h + z h~, written out, against both paths."""
    torch.manual_seed(3)
    r = Recurrent("mingru", 4, 6)
    w, w_rec, b, b_rec = r.weights(0, 0)
    assert w_rec is None and b_rec is None and w.shape == (12, 4) and b.shape == (12,)
    W_z, W_h, b_z, b_h = w[:6], w[6:], b[:6], b[6:]
    x = torch.randn(2, 9, 4)
    h, outs = torch.zeros(2, 6), []
    for t in range(9):
        z = torch.sigmoid(x[:, t] @ W_z.T + b_z)
        h = (1 - z) * h + z * (x[:, t] @ W_h.T + b_h)
        outs.append(h)
    for path in ("parallel", "stepwise"):
        r.path = path
        torch.testing.assert_close(r(x)[0], torch.stack(outs, 1), atol=1e-6, rtol=1e-5)


def test_min_lstm_is_the_papers_equations():
    """f, i = sigmoid(W_f x + b_f), sigmoid(W_i x + b_i); f' = f / (f + i), i' = i / (f + i); h = f' h + i' h~."""
    torch.manual_seed(4)
    r = Recurrent("minlstm", 4, 6)
    w, _, b, _ = r.weights(0, 0)
    (W_f, W_i, W_h), (b_f, b_i, b_h) = w.chunk(3), b.chunk(3)
    x = torch.randn(2, 9, 4)
    h, outs = torch.zeros(2, 6), []
    for t in range(9):
        f, i = torch.sigmoid(x[:, t] @ W_f.T + b_f), torch.sigmoid(x[:, t] @ W_i.T + b_i)
        h = f / (f + i) * h + i / (f + i) * (x[:, t] @ W_h.T + b_h)
        outs.append(h)
    for path in ("parallel", "stepwise"):
        r.path = path
        torch.testing.assert_close(r(x)[0], torch.stack(outs, 1), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("cell", MIN_CELLS)
def test_4096_steps_are_finite_and_match_the_loop(cell):
    """The parallel path on 4096 steps: finite, its first 300 steps equal the stepwise loop run on those 300 alone,
    and the whole sequence equals a float64 loop over the same weights."""
    torch.manual_seed(5)
    r = Recurrent(cell, 3, 16).eval()
    x = torch.randn(2, 4096, 3) * 2
    with torch.no_grad():
        out, h_n = r(x)
        assert torch.isfinite(out).all() and torch.isfinite(h_n).all()
        prefix, _, _ = r.forward_stepwise(x[:, :300])
        torch.testing.assert_close(out[:, :300], prefix, atol=1e-5, rtol=1e-5)
        r64 = copy.deepcopy(r).double()
        full, _, _ = r64.forward_stepwise(x.double())
    assert float((out.double() - full).abs().max()) < 1e-5 * float(full.abs().max())


@pytest.mark.parametrize("cell", MIN_CELLS)
@pytest.mark.parametrize("path", ["parallel", "stepwise"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_padding_never_changes_results(cell, path, bidirectional):
    torch.manual_seed(6)
    r = Recurrent(cell, 3, 6, 2, bidirectional)
    r.path = path
    assert_padding_ignored(r)


@pytest.mark.parametrize("cell", MIN_CELLS)
def test_dropout_acts_between_layers_only_in_training(cell):
    torch.manual_seed(7)
    r = Recurrent(cell, 3, 6, num_layers=2, dropout=0.5)
    x = torch.randn(2, 8, 3)
    torch.manual_seed(0)
    a = r(x)[0]
    torch.manual_seed(0)
    b = r.forward_stepwise(x)[0]  # the same dropout mask, drawn at the same place: the paths still agree
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(r(x)[0], a)  # another mask
    r.eval()
    torch.testing.assert_close(r(x)[0], r(x)[0])
    one = Recurrent(cell, 3, 6, num_layers=1, dropout=0.5)
    torch.testing.assert_close(one(x)[0], one(x)[0])  # one layer: nothing between layers to drop


@pytest.mark.parametrize("cell", MIN_CELLS)
def test_recording_switches_to_the_stepwise_path_and_keeps_every_step(cell):
    r = Recurrent(cell, 3, 4, 1, True)
    x = torch.randn(2, 6, 3)
    with recording() as traces:
        out, _ = r(x, torch.tensor([6, 4]))
    (mod, trace), = traces
    assert mod is r and trace.cell == cell and len(trace.hidden[0][1]) == 6
    assert tuple(trace.gates[0][0]) == GATES[cell]
    assert all(v.shape == (2, 6, 4) for v in trace.gates[0][0].values())
    if cell == "minlstm":  # recorded normalised: f' + i' = 1
        torch.testing.assert_close(trace.gates[0][0]["f"] + trace.gates[0][0]["i"], torch.ones(2, 6, 4))
    torch.testing.assert_close(out, r(x, torch.tensor([6, 4]))[0], atol=1e-6, rtol=1e-5)


def test_names_labels_and_half_precision():
    assert set(MIN_CELLS) <= set(CELLS) and CELL_LABELS["mingru"].short == "minGRU"
    assert CELL_LABELS["minlstm"].long == "minLSTM"
    assert GATES["mingru"] == ("z", "h") and GATES["minlstm"] == ("f", "i", "h")
    r = Recurrent("minlstm", 3, 4, 1, True)
    assert [n for n, _ in r.named_parameters()] == ["rnn.weight_fih_l0", "rnn.bias_fih_l0",
                                                    "rnn.weight_fih_l0_reverse", "rnn.bias_fih_l0_reverse"]
    assert lesson_name("rnn.weight_zh_l1_reverse") == "W_z, W_h (input weights of the update gate and the " \
                                                      "candidate, layer 1, backward)"
    assert lesson_name("encoder.rnn.bias_fih_l0").startswith("b_f, b_i, b_h (biases of")
    assert recurrent_spectra(r).empty  # no w' to decompose
    x = torch.randn(2, 40, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # how core.train runs on CUDA (bf16): widened to float32
        out, _ = r(x)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    torch.testing.assert_close(out, r(x)[0], atol=0.05, rtol=0.05)


# ---- everywhere a cell name is accepted --------------------------------------------------------------------------

def _same_on_both_paths(model: torch.nn.Module, run) -> torch.Tensor:
    """run(model) on the default (parallel) path and on the stepwise path: the same numbers."""
    fast = run(model)
    with recording():
        slow = run(model)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    return fast


@pytest.mark.parametrize("cell", MIN_CELLS)
def test_the_five_shapes_take_the_new_cells(cell):
    torch.manual_seed(8)
    m = OneToOne(6, 8, 3, cell=cell).eval()
    assert _same_on_both_paths(m, lambda m: m(torch.randn(5, 6, generator=torch.Generator().manual_seed(0)))).shape \
        == (5, 3)
    x, lens = torch.randint(1, 20, (3, 7)), torch.tensor([7, 3, 5])
    m2o = ManyToOne(4, 8, 2, cell=cell, vocab_size=20, bidirectional=True, num_layers=2).eval()
    alone = _same_on_both_paths(m2o, lambda m: m(x, lens))
    padded = torch.cat([x, torch.randint(1, 20, (3, 2))], 1)
    torch.testing.assert_close(m2o(padded, lens), alone, atol=1e-6, rtol=1e-5)
    m2m = ManyToMany(4, 6, 5, cell=cell, vocab_size=20).eval()
    parts = m2m.direction_parts(x, lens)
    torch.testing.assert_close(parts["forward"] + parts["backward"] + parts["bias"],
                               _same_on_both_paths(m2m, lambda m: m(x, lens)), atol=1e-5, rtol=1e-5)
    gen = OneToMany(12, 8, 16, cell=cell, cond_size=4, num_layers=2).eval()
    cond = torch.randn(1, 4)
    a = gen.generate(torch.tensor([3]), 10, top_k=3, seed=7, cond=cond)
    assert torch.equal(a["sequence"], gen.generate(torch.tensor([3]), 10, top_k=3, seed=7, cond=cond)["sequence"])
    _same_on_both_paths(gen, lambda m: m(a["sequence"], cond=cond))
    ed = EncoderDecoder(20, 25, 8, 16, cell=cell, attention=True).eval()
    src, tgt = torch.randint(3, 20, (2, 6)), torch.randint(3, 25, (2, 9))
    logits = _same_on_both_paths(ed, lambda m: m(src, torch.tensor([6, 4]), tgt)[0])
    assert logits.shape == (2, 9, 25)
    cands = ed.beam_search(src[:1], torch.tensor([6]), beam=3, max_len=8)
    assert cands and cands == sorted(cands, key=lambda c: c.score, reverse=True)


@pytest.fixture(scope="module")
def scaffolds(tmp_path_factory):
    """The plugin scaffold of every shape (core.new_task), imported from a temporary folder."""
    root = tmp_path_factory.mktemp("scaffolds")
    pkg = f"mc_{uuid.uuid4().hex[:8]}"
    for shape in SHAPES:
        new_task.scaffold(f"my_{shape}", shape, root / pkg)
    sys.path.insert(0, str(root))
    try:
        yield {shape: importlib.import_module(f"{pkg}.my_{shape}").TASK for shape in SHAPES}
    finally:
        sys.path.remove(str(root))


@pytest.mark.parametrize("cell", MIN_CELLS)
@pytest.mark.parametrize("shape", SHAPES)
def test_a_scaffolded_plugin_trains_and_inspects_with_the_new_cells(scaffolds, shape, cell):
    """The scaffold's own config with its cell set to a min cell: built, one core.train.fit step, evaluated,
    inspected (no recurrent matrix, gates and reach instead)."""
    task = scaffolds[shape]
    splits = task.synthetic_data(0)
    torch.manual_seed(0)
    model = task.build_model({**copy.deepcopy(task.config), "cell": cell}, splits.meta)
    assert {m.cell for m in model.modules() if isinstance(m, Recurrent)} == {cell}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recipe = copy.deepcopy(task.recipe)
    recipe.epochs, recipe.max_minutes = 1, None
    fit(model, task, splits, recipe, torch.device("cpu"), progress=False, max_steps=1)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    metrics = task.evaluate(model, splits.test)
    assert all(np.isfinite(v) for v in metrics.values() if isinstance(v, float))
    ins = inspect_model(model, lambda m: task.inspect_loss(m, task.demos()[0].input))
    assert len(ins.hidden) > 0 and (ins.hidden.grad_norm > 0).any() and ins.spectra.empty
    assert not ins.reach.empty and ins.reach["reach"].between(0, 1).all()
    expect = {"z"} if cell == "mingru" else {"f", "i"}
    assert set(ins.gates.gate) == expect and set(ins.gates.cell) == {cell}


@pytest.mark.parametrize("cells", [["minGRU", "minLSTM"]])
def test_your_data_trains_the_new_cells(cells):
    from core.yourdata.build import CELLS as PAGE_CELLS
    from core.yourdata.build import make_task, train_run
    from core.yourdata.examples import EXAMPLES
    from core.yourdata.parse import read_table
    from core.yourdata.propose import propose

    assert {PAGE_CELLS[c] for c in cells} == set(MIN_CELLS)
    name, raw = EXAMPLES["reviews"].make()
    t = read_table(raw, name)
    task = make_task(t, propose(t), cells=cells, size="small")
    splits = task.splits_from_table(t)
    result = train_run(task, splits, cells, "small", 8, 20)
    assert set(result.runs) == set(cells) and result.served in result.runs
    for run in result.runs.values():
        assert run.model.rnn.cell == PAGE_CELLS[run.label] and run.stopped == "max steps"
    out = task.predict(result.runs[result.served].model, "the plot was not good")
    assert out["label"] in ("positive", "negative") and 0 <= out["prob"] <= 1


# ---- what Inspect reads from them ------------------------------------------------------------------------------

def test_reach_table_is_the_product_of_the_kept_fractions():
    rng = np.random.default_rng(0)
    keep = rng.uniform(0.2, 1.0, size=(12, 5))
    df = reach_table(keep)
    for s in range(12):
        r = np.prod(keep[s + 1:], axis=0)  # a_{s+1} ... a_e (empty product at the end: 1)
        assert df.reach[s] == pytest.approx(r.mean(), rel=1e-12)
        assert df.share[s] == pytest.approx(((1 - keep[s]) * r).mean(), rel=1e-12)
    # the shares and what is left of the initial state add up to the whole last state
    assert df.share.sum() + np.prod(keep, axis=0).mean() == pytest.approx(1.0, rel=1e-12)
    long = reach_table(np.full((4096, 3), 0.5))  # 0.5 ** 4095 underflows to 0, never to nan
    assert np.isfinite(long.reach).all() and long.reach.iloc[0] == 0 and long.reach.iloc[-1] == 1
    s = reach_summary(reach_table(np.full((40, 2), 0.9)))
    assert s["back_half"] == 7 and s["back_1pct"] is None  # 0.9^7 < 1/2; 0.9^39 > 1/100 (0.9^44 would be below)
    assert s["top_step"] == 39 and s["start_share"] == pytest.approx(0.9 ** 40, rel=1e-9)


def test_reach_summary_reads_the_right_end_in_each_direction():
    fwd = reach_table(np.full((10, 1), 0.5)).assign(direction="forward")
    assert reach_summary(fwd) == {"steps": 10, "back_half": 2, "back_1pct": 7, "top_step": 9,
                                  "start_share": pytest.approx(0.5 ** 10)}
    bwd = fwd.assign(step=9 - fwd.step, direction="backward")  # read from the end: its last step is step 0
    assert reach_summary(bwd)["top_step"] == 0 and reach_summary(bwd)["back_half"] == 2


@pytest.mark.parametrize("cell", MIN_CELLS)
def test_inspection_reads_gates_reach_and_gradients(cell):
    """With the loss on the last step of a one-layer model, dL/dh_s = (a_{s+1} ... a_e) * dL/dh_e unit by unit:
    the gradient the inspector reads and the reach it reports are the same product."""
    torch.manual_seed(9)
    r = Recurrent(cell, 3, 4).eval()
    x = torch.randn(1, 12, 3)
    v = torch.randn(4)
    ins = inspect_model(r, lambda m: (m(x)[0][0, -1] * v).sum())
    assert len(ins.hidden) == 12 and ins.spectra.empty
    with torch.no_grad():
        g = r.forward_stepwise(x)[2].gates[0][0]
        keep = (1 - g["z"] if cell == "mingru" else g["f"])[0]  # (T, H)
    expect = [float((torch.prod(keep[s + 1:], 0) * v).norm()) for s in range(12)]
    assert ins.hidden.sort_values("step").grad_norm.tolist() == pytest.approx(expect, rel=1e-4)
    assert ins.reach.reach.tolist() == pytest.approx(reach_table(keep.numpy()).reach.tolist(), rel=1e-6)
    assert set(ins.reach.direction) == {"forward"} and (ins.reach.cell == cell).all()


def _inspector_page(label: str, bidirectional: bool):
    import torch

    from core.ui.inspector import render_inspector
    from core.yourdata.build import cell_config, make_task
    from core.yourdata.examples import EXAMPLES
    from core.yourdata.parse import read_table
    from core.yourdata.propose import propose

    name, raw = EXAMPLES["reviews"].make()
    t = read_table(raw, name)
    task = make_task(t, propose(t), cells=[label], size="small")
    splits = task.splits_from_table(t)
    torch.manual_seed(0)
    cfg = {**task.config, **cell_config(label, "small"), "bidirectional": bidirectional}
    model = task.build_model(cfg, splits.meta).eval()
    render_inspector(task, model, task.demos()[0].input, key="mc")


@pytest.mark.parametrize("label,bidirectional", [("minGRU", False), ("minLSTM", True)])
def test_the_inspector_shows_the_reach_and_no_matrix(label, bidirectional):
    """The Inspect tab on a min-cell model: the reach section with its chart and words, the matrix section saying
    there is none, no error and no traceback; a layer picker where there are two directions."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_inspector_page, args=(label, bidirectional), default_timeout=120).run()
    assert not at.exception and not at.error
    text = "\n".join(str(e.value) for e in [*at.markdown, *at.caption, *at.info, *at.subheader])
    assert "How far back each step reaches" in text and "no recurrent matrix w'" in text
    assert "before the end, less than half is left" in text or "keeps more than half" in text
    assert "Grazzi" in text and "Traceback" not in text
    assert [m.value for m in at.metric if m.label == "largest spectral radius of w'"] == ["none"]
    gate_words = "works the other way round" if label == "minGRU" else "divided by their sum"
    assert gate_words in text
    assert any(s.label.startswith("Recurrent layer (reach)") for s in at.selectbox) == bidirectional


def test_reach_chart_is_a_valid_spec_and_its_words_follow_the_numbers():
    from core.ui.inspector import reach_chart, reach_words

    df = reach_table(np.full((30, 4), 0.8)).assign(direction="forward")
    reach_chart(df, [f"w{i}" for i in range(30)]).to_dict(validate=True)  # raises on a spec Vega-Lite refuses
    words = reach_words(reach_summary(df), "mingru", False, [f"w{i}" for i in range(30)])
    # 0.8^3 = 0.51, 0.8^4 = 0.41: less than half from 4 steps back; 0.8^21 = 0.0092: less than 1 % from 21
    assert "**4 steps** before the end, less than half" in words and "**21 steps** before it" in words
    assert "step 29 (`w29`)" in words and "1 − z" in words
    short = reach_words(reach_summary(reach_table(np.full((3, 2), 0.9))), "minlstm", True)
    assert "keeps more than half" in short and "(step 0)" in short
