"""The translator: core.shapes.EncoderDecoder (bidirectional GRU encoder, GRU decoder, Luong attention optional)
plus batched greedy decoding for cheap validation and the copy-through of unknown words."""

from __future__ import annotations

import torch

from core.shapes import EncoderDecoder

PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3


def default_config() -> dict:
    return {
        "embed_size": 128,  # small: two embedding tables of ~6k words each are most of the weights
        "hidden_size": 192,  # per direction; fits the 1-thread CPU budget and < 15 MB per weights file
        "cell": "gru",  # fewer gates than an LSTM: faster per step, as good on short sentences
        "num_layers": 1,
        "dropout": 0.1,  # light: 18 minutes of training hardly overfits ~110k pairs
        "attention": True,  # the served variant; "plain" turns it off (the lesson's plain encoder-decoder)
        "bidirectional_encoder": True,
    }


def build(config: dict, src_vocab: int, tgt_vocab: int) -> EncoderDecoder:
    return EncoderDecoder(src_vocab, tgt_vocab, config["embed_size"], config["hidden_size"], cell=config["cell"],
                          num_layers=config["num_layers"], dropout=config["dropout"],
                          attention=config["attention"], bidirectional_encoder=config["bidirectional_encoder"],
                          pad_id=PAD_ID, bos_id=BOS_ID, eos_id=EOS_ID)


@torch.no_grad()
def greedy(model: EncoderDecoder, src: torch.Tensor, src_lengths: torch.Tensor, max_len: int):
    """Batched greedy decoding: src (B, S) -> (tokens (B, T) ids, attention (B, T, S) or None).
    A sentence may not end before it has written <unk> once per unknown source word (unknown_count), until it is
    ``owe_until`` tokens long: each unknown name then has a place in the output to be copied into (ids_to_tokens)."""
    enc, state, mask = model.encode(src, src_lengths)  # (B, S, D*H)
    B = src.shape[0]
    tok = torch.full((B,), BOS_ID, dtype=torch.long, device=src.device)  # (B,)
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    owed = unknown_count(src)  # (B,) <unk>s still to write
    until = owe_until(src_lengths if src_lengths is not None else torch.full((B,), src.shape[1]))  # (B,)
    until = until.to(src.device)
    outs, atts = [], []
    for step in range(max_len):
        logp, state, attn = model.decode_step(tok, state, enc, mask)  # (B, V), (B, S)
        owing = (owed > 0) & (step < until)  # (B,) ending now would leave an unknown word out
        logp[:, EOS_ID] = logp[:, EOS_ID].masked_fill(owing, float("-inf"))  # (B,)
        tok = logp.argmax(-1).masked_fill(done, PAD_ID)  # (B,)
        owed -= (tok == UNK_ID).long()
        outs.append(tok)
        if attn is not None:
            atts.append(attn)
        done |= tok == EOS_ID
        if bool(done.all()):
            break
    ys = torch.stack(outs, 1)  # (B, T)
    return ys, (torch.stack(atts, 1) if atts else None)  # (B, T, S)


def unknown_count(src: torch.Tensor) -> torch.Tensor:
    """src (B, S) ids -> (B,) how many unknown source words each sentence has (how many <unk>s its output owes)."""
    return (src == UNK_ID).sum(-1)  # (B,)


def owe_until(src_lengths):
    """Output length from which a translation may end without its unknown words: twice the source's tokens, plus 2
    (an output that long has lost the thread; a sentence without the name is better than one that never ends)."""
    return 2 * src_lengths + 2


def must_write(src_ids: list[int]) -> dict:
    """beam_search's keyword arguments for one source sentence: one <unk> per unknown word, to be copied through."""
    n = sum(i == UNK_ID for i in src_ids)
    return {"must_write": {UNK_ID: n}, "owe_until": owe_until(len(src_ids))} if n else {}


def ids_to_tokens(ids: list[int], vocab: list[str], src_tokens: list[str], src_unk: list[bool],
                  attention=None) -> list[str]:
    """Target ids -> token strings, stopping at EOS. An <unk> becomes an English word copied as typed (names,
    numbers, rare words pass through): the unknown English word it attends to most that has not been copied yet --
    each once, so a name is not written twice and a known word ("in") is not copied in place of a name. With no
    unknown English word at all, the word it attends to most; without attention, the next unknown word in order.
    An <unk> beyond the unknown words there are is left out."""
    unknown = [j for j, u in enumerate(src_unk[:len(src_tokens)]) if u]
    out, used = [], set()
    for t, i in enumerate(ids):
        if i in (EOS_ID, PAD_ID):
            break
        if i == UNK_ID:
            left = [j for j in unknown if j not in used]
            if attention is not None and len(src_tokens):
                row = torch.as_tensor(attention[t])[:len(src_tokens)].float()  # (S,)
                if left:
                    j = max(left, key=lambda k: float(row[k]))
                elif not unknown:
                    j = int(row.argmax())
                else:
                    continue
            elif left:
                j = left[0]
            else:
                continue
            used.add(j)
            out.append(src_tokens[j])
            continue
        out.append(vocab[i])
    return [t for t in out if t]
