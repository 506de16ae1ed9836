"""Decode with several trained variants at once: pick the mixing weights on validation, score the test split, and
write both into the weights card (the served system becomes the ensemble; each variant's own scores stay in the
card's comparison).

    python -m core.ensemble <task> --data-dir DIR [--members served,other] [--grid 1,0.9,...,0.3]
                                               [--add NAME=WEIGHTS_DIR] [--min-gain 0.005]

The first member is the card's served variant; its weight w runs over --grid and the others share 1 - w equally.
w = 1 is the served model alone, so the ensemble is kept only when it beats that on the validation metric the
training used (the recipe's) -- by at least --min-gain, when given ("serve one model unless a second clearly
pays") -- otherwise the card is left as a single model. Needs the task's ``ensemble`` hook
(core.task.Task.ensemble) and the other members' weights kept beside the served ones (Recipe.keep_variants), or
``--add NAME=DIR``: the served model of another weights folder (trained on the same data and vocabulary, e.g. with
another profile) joins as variant NAME; if the ensemble is kept, its weights file, comparison row (with the command
that trained it) and history are copied into this card.
Exit status 0 when the card was written (or left alone because the ensemble did not pay), 2 on errors.

The ensemble modules live here; the command is core.cli.ensemble (``python -m core.ensemble`` runs it).

The mixture. Members m = 1..M each give a distribution p_m(y | x) over the same answers (words, tags, classes);
the weights w_m >= 0 are normalised to sum to 1 (``ensemble_weights``). A decoding ensemble mixes log-probabilities
and renormalises -- a weighted product of experts:

    log p(y | x) = sum_m w_m log p_m(y | x)  -  log sum_y' exp(sum_m w_m log p_m(y' | x))

at every output step, so greedy and beam search run unchanged on the mixed distribution. (A classifier ensemble
may instead average the probabilities themselves, p = sum_m w_m p_m: the image task's ClassifierEnsemble.) With
w_1 = 1 the ensemble is the served model alone, which is why the sweep always tries it.

A task makes its ensemble module in ``Task.ensemble(models, weights)``; ``build`` below is the one place that calls it
and gives the module the run-time record a task's ``predict`` and ``evaluate`` read (core.runtime.Runtime).
"""

from __future__ import annotations

import dataclasses
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.shapes import EncoderDecoder

# ---- ensemble modules: several trained models answering as one -----------------------------------------------------

def ensemble_weights(members, weights) -> list[float]:
    """Checked mixing weights, normalised to sum to 1: one per member, none negative, not all zero."""
    if len(members) < 1 or len(members) != len(weights):
        raise ValueError(f"an ensemble needs one weight per member (got {len(members)} members, "
                         f"{len(weights)} weights)")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"ensemble weights must be >= 0 and not all 0 (got {list(weights)})")
    total = float(sum(weights))
    return [float(w) / total for w in weights]


def flatten_states(states) -> tuple:
    """Members' recurrent states (an LSTM's (h, c) or a GRU's h, each (L, B, H)) as one flat tuple of tensors: beam
    searches stack, repeat and select tuples component-wise, so an ensemble's state passes through them unchanged."""
    return tuple(t for s in states for t in (s if isinstance(s, tuple) else (s,)))


def unflatten_states(flat, members) -> list:
    """flatten_states undone, from each member's ``decoder.cell``."""
    out, k = [], 0
    for m in members:
        if m.decoder.cell == "lstm":
            out.append((flat[k], flat[k + 1]))
            k += 2
        else:
            out.append(flat[k])
            k += 1
    return out


class EncoderDecoderEnsemble(nn.Module):
    """Several trained encoder-decoders over the same vocabularies, decoding as one: at every output step the
    members' log-probabilities are mixed with fixed weights and renormalised (a weighted product of experts, the
    usual way translation ensembles decode -- Sutskever et al. 2014 ensembled five LSTMs).

    Same decoding interface as EncoderDecoder (encode / decode_step / beam_search), so greedy and beam search run
    unchanged. The attention shown is the first member with attention's. Not for training: members train alone.
    """

    def __init__(self, members: list[EncoderDecoder], weights: list[float]):
        super().__init__()
        self.weights = ensemble_weights(members, weights)
        heads = {m.head.out_features for m in members}
        if len(heads) != 1:
            raise ValueError(f"ensemble members must share one target vocabulary (sizes {sorted(heads)})")
        self.members = nn.ModuleList(members)
        first = members[0]
        self.pad_id, self.bos_id, self.eos_id = first.pad_id, first.bos_id, first.eos_id
        self.use_attention = any(m.use_attention for m in members)
        # each member's encoder output width (D*H): encode() concatenates them, decode_step() splits them again
        self._enc_sizes = [m.encoder.num_directions * m.encoder.hidden_size for m in members]

    def encode(self, src, src_lengths=None):
        enc, states, mask = [], [], None
        for m in self.members:
            e, s, mask = m.encode(src, src_lengths)  # (B, S, D*H), state, (B, S)
            enc.append(e)
            states.append(s)
        return torch.cat(enc, dim=-1), flatten_states(states), mask  # (B, S, sum D*H)

    def decode_step(self, tokens, state, enc, src_mask):
        """tokens (B,) -> mixed log-probs (B, V), new flat state, attention (B, S) of the first attending member."""
        encs = enc.split(self._enc_sizes, dim=-1)
        mixed, new, attn = 0.0, [], None
        for m, w, s, e in zip(self.members, self.weights, unflatten_states(state, self.members), encs):
            logp, s, a = m.decode_step(tokens, s, e, src_mask)  # (B, V)
            mixed = mixed + w * logp
            new.append(s)
            if attn is None and a is not None:
                attn = a
        return F.log_softmax(mixed, dim=-1), flatten_states(new), attn

    beam_search = EncoderDecoder.beam_search  # written against encode/decode_step only: works for an ensemble too


def build(task, models: list[nn.Module], weights: list[float]) -> nn.Module:
    """``task.ensemble(models, weights)`` in eval mode, with its first member's (the served variant's) run-time
    record -- card, vocabularies, labels -- so the task's ``predict`` and ``evaluate`` take the ensemble wherever
    they take a model. Its ``runtime.variant`` names the mixture ("ensemble 0.6/0.4"), not the first member: caches
    keyed by (weights, variant) tell the two apart."""
    ens = task.ensemble(list(models), list(weights))
    name = "ensemble " + "/".join(f"{w:.6g}" for w in getattr(ens, "weights", weights))
    ens.runtime = dataclasses.replace(models[0].runtime, variant=name)
    return ens.eval()


if __name__ == "__main__":  # python -m core.ensemble: the command, kept in core.cli
    from core.cli.ensemble import main

    sys.exit(main())
