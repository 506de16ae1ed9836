"""The five shapes: output shapes, last real step, seeded generation, beam search."""

import pytest
import torch

from core.shapes import (
    SHAPES,
    EncoderDecoder,
    ManyToMany,
    ManyToOne,
    OneToMany,
    OneToOne,
    check_shape,
)
from core.ui.shapes import SHAPE_SPECS, shape_spec


def test_shape_names():
    assert SHAPES == ("one_to_one", "one_to_many", "many_to_one", "many_to_many", "encoder_decoder")
    with pytest.raises(ValueError, match="one_to_one"):
        check_shape("many_to_few")


def test_shape_registry_has_one_spec_per_shape():
    assert tuple(SHAPE_SPECS) == SHAPES and all(shape_spec(n).name == n for n in SHAPES)
    with pytest.raises(ValueError, match="valid shapes are: one_to_one"):
        shape_spec("many_to_few")
    specs = SHAPE_SPECS.values()
    for field in ("label", "title", "icon", "colour"):  # each tells the shapes apart on screen
        assert len({getattr(s, field) for s in specs}) == len(SHAPES), field
    assert all(s.icon.startswith(":material/") and s.blurb and s.use_when and s.examples for s in specs)
    with pytest.raises(AttributeError):  # frozen: a page cannot change what every other page shows
        shape_spec("one_to_one").label = "x"


def test_shape_specs_agree_with_their_shape():
    """What the registry says about each shape is what its diagram draws and where its loss is read."""
    for s in SHAPE_SPECS.values():
        n_in = sum(bool(c.x) for c in s.diagram)
        n_out = sum(bool(c.y) for c in s.diagram)
        assert (n_in > 1) == s.name.startswith(("many", "encoder")), s.name  # many inputs <=> "many to" / encoder
        assert (n_out > 1) == s.name.endswith(("many", "decoder")), s.name
        assert (s.io.count("…") == 2) == (n_in > 1 and n_out > 1), s.name
        assert any(c.decoder for c in s.diagram) == (s.name == "encoder_decoder")
        assert not s.diagram[0].feed  # nothing before the first step to feed back
    assert {s.name for s in SHAPE_SPECS.values() if s.loss_at == "every"} == {"one_to_many", "many_to_many"}
    assert shape_spec("encoder_decoder").loss_at == "decoder" and shape_spec("many_to_one").loss_at == "last"
    from core.ui.inspector import WHERE_THE_LOSS_IS  # the inspector explains every place a loss can be read

    assert {s.loss_at for s in SHAPE_SPECS.values()} == set(WHERE_THE_LOSS_IS)


def test_one_to_one_is_feed_forward():
    torch.manual_seed(0)
    m = OneToOne(6, 8, 3, cell="rnn_tanh").eval()
    x = torch.randn(5, 6)
    w, _, b_ih, b_hh = m.rnn.weights(0, 0)
    expect = m.head(torch.tanh(x @ w.T + b_ih + b_hh))  # the recurrent weight w' never acts
    torch.testing.assert_close(m(x), expect)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_many_to_one_uses_last_real_step(bidirectional):
    torch.manual_seed(1)
    m = ManyToOne(4, 8, 2, cell="lstm", vocab_size=20, bidirectional=bidirectional).eval()
    x = torch.randint(1, 20, (1, 5))
    alone = m(x, torch.tensor([5]))
    padded = torch.cat([x, torch.randint(1, 20, (1, 3))], 1)
    torch.testing.assert_close(m(padded, torch.tensor([5])), alone, atol=1e-6, rtol=1e-5)
    pre = m.prefix_logits(x)
    assert pre.shape == (1, 5, 2)
    torch.testing.assert_close(pre[:, -1], alone, atol=1e-5, rtol=1e-5)


def test_many_to_many_direction_parts_sum_to_logits():
    torch.manual_seed(2)
    m = ManyToMany(4, 6, 5, cell="gru", vocab_size=30, bidirectional=True).eval()
    x = torch.randint(1, 30, (2, 7))
    logits = m(x)
    parts = m.direction_parts(x)
    assert logits.shape == (2, 7, 5)
    torch.testing.assert_close(parts["forward"] + parts["backward"] + parts["bias"], logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("output", ["categorical", "bernoulli"])
def test_one_to_many_generation_is_seeded(output):
    torch.manual_seed(3)
    m = OneToMany(12, 8, 16, cell="gru", output=output, cond_size=4).eval()
    first = torch.tensor([3]) if output == "categorical" else torch.zeros(1, 12).index_fill_(1, torch.tensor([2, 5]), 1)
    cond = torch.randn(1, 4)
    a = m.generate(first, 10, temperature=1.0, top_k=3, seed=7, cond=cond)
    b = m.generate(first, 10, temperature=1.0, top_k=3, seed=7, cond=cond)
    c = m.generate(first, 10, temperature=1.0, top_k=3, seed=8, cond=cond)
    assert torch.equal(a["sequence"], b["sequence"])
    assert a["sequence"].shape[1] == 11
    assert not torch.equal(a["sequence"], c["sequence"]) or output == "bernoulli"
    logits = m(a["sequence"], cond=cond)
    assert logits.shape[:2] == (1, 11) and logits.shape[-1] == 12


def test_top_k_limits_choices():
    torch.manual_seed(4)
    m = OneToMany(50, 8, 16).eval()
    out = m.generate(torch.tensor([1]), 30, top_k=1, seed=0)
    greedy = m.generate(torch.tensor([1]), 30, greedy=True)
    assert torch.equal(out["sequence"], greedy["sequence"])


@pytest.mark.parametrize("attention", [True, False])
def test_encoder_decoder_shapes_and_beam(attention):
    torch.manual_seed(5)
    m = EncoderDecoder(20, 25, 8, 16, cell="gru", attention=attention).eval()
    src = torch.randint(3, 20, (2, 6))
    lens = torch.tensor([6, 4])
    tgt = torch.randint(3, 25, (2, 9))
    logits, attn = m(src, lens, tgt)
    assert logits.shape == (2, 9, 25)
    if attention:
        assert attn.shape == (2, 9, 6)
        torch.testing.assert_close(attn.sum(-1), torch.ones(2, 9))
        assert attn[1, :, 4:].abs().max() == 0  # never attends to padding
    else:
        assert attn is None
    cands = m.beam_search(src[:1], lens[:1], beam=3, max_len=8)
    assert 1 <= len(cands) <= 3
    assert cands == sorted(cands, key=lambda c: c.score, reverse=True)
    best = cands[0]
    assert len(best.steps) == len(best.tokens) and best.tokens
    if attention:
        assert best.attention.shape == (len(best.tokens), 6)
    forced = m.beam_search(src[:1], lens[:1], beam=2, max_len=8, prefix=[7, 8])
    assert all(c.tokens[:2] == [7, 8] for c in forced)
    greedy = m.beam_search(src[:1], lens[:1], beam=1, max_len=8)
    assert len(greedy) == 1


def _pair_of_translators():
    torch.manual_seed(0)
    a = EncoderDecoder(20, 25, 8, 16, cell="gru", attention=True).eval()
    b = EncoderDecoder(20, 25, 6, 12, cell="lstm", attention=False, bidirectional_encoder=False).eval()
    return a, b


def test_ensemble_of_one_weight_is_that_member():
    from core.ensemble import EncoderDecoderEnsemble

    a, b = _pair_of_translators()
    src = torch.randint(3, 20, (1, 7))
    ens = EncoderDecoderEnsemble([a, b], [1.0, 0.0]).eval()
    got = ens.beam_search(src, beam=3, max_len=8)
    want = a.beam_search(src, beam=3, max_len=8)
    assert [c.tokens for c in got] == [c.tokens for c in want]
    assert got[0].logprob == pytest.approx(want[0].logprob, abs=1e-4)
    assert torch.allclose(got[0].attention, want[0].attention)  # the attending member's attention


def test_ensemble_mixes_log_probs_and_renormalises():
    from core.ensemble import EncoderDecoderEnsemble

    a, b = _pair_of_translators()
    src = torch.randint(3, 20, (2, 5))
    ens = EncoderDecoderEnsemble([a, b], [3.0, 1.0])  # normalised to 0.75 / 0.25
    assert ens.weights == [0.75, 0.25]
    enc, state, mask = ens.encode(src)
    assert enc.shape == (2, 5, 32 + 12) and len(state) == 3  # GRU h + LSTM (h, c), flat
    tok = torch.full((2,), 1)
    logp, new, attn = ens.decode_step(tok, state, enc, mask)
    ea, sa, ma = a.encode(src)
    eb, sb, mb = b.encode(src)
    la, _, aa = a.decode_step(tok, sa, ea, ma)
    lb, _, _ = b.decode_step(tok, sb, eb, mb)
    assert torch.allclose(logp, torch.log_softmax(0.75 * la + 0.25 * lb, -1), atol=1e-5)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(attn, aa) and len(new) == 3


def test_ensemble_refuses_what_cannot_mix():
    from core.ensemble import EncoderDecoderEnsemble

    a, _ = _pair_of_translators()
    other = EncoderDecoder(20, 30, 8, 16)  # another target vocabulary
    with pytest.raises(ValueError, match="target vocabulary"):
        EncoderDecoderEnsemble([a, other], [0.5, 0.5])
    with pytest.raises(ValueError, match="one weight per member"):
        EncoderDecoderEnsemble([a], [0.5, 0.5])
    with pytest.raises(ValueError, match=">= 0"):
        EncoderDecoderEnsemble([a, a], [1.0, -0.5])
