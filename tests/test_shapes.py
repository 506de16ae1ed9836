"""The five shapes: output shapes, last real step, seeded generation, beam search."""

import pytest
import torch

from core.shapes import SHAPES, EncoderDecoder, ManyToMany, ManyToOne, OneToMany, OneToOne, check_shape


def test_shape_names():
    assert SHAPES == ("one_to_one", "one_to_many", "many_to_one", "many_to_many", "encoder_decoder")
    with pytest.raises(ValueError, match="one_to_one"):
        check_shape("many_to_few")


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
