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

This file is the one place for ensembles: the ensemble modules (top), then that command.

The mixture. Members m = 1..M each give a distribution p_m(y | x) over the same answers (words, tags, classes);
the weights w_m >= 0 are normalised to sum to 1 (``ensemble_weights``). A decoding ensemble mixes log-probabilities
and renormalises -- a weighted product of experts:

    log p(y | x) = sum_m w_m log p_m(y | x)  -  log sum_y' exp(sum_m w_m log p_m(y' | x))

at every output step, so greedy and beam search run unchanged on the mixed distribution. (A classifier ensemble
may instead average the probabilities themselves, p = sum_m w_m p_m: the image task's ClassifierEnsemble.) With
w_1 = 1 the ensemble is the served model alone, which is why the sweep always tries it.

A task makes its ensemble module in ``Task.ensemble(models, weights)``; ``build`` below is the one place that calls it
and gives the module what a task's ``predict`` and ``evaluate`` read from a model (card, vocabularies, labels).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.shapes import EncoderDecoder

DEFAULT_GRID = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)


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
    """``task.ensemble(models, weights)`` in eval mode, dressed like its first member (the served variant): every
    plain attribute that member carries and the ensemble module lacks (the card, config, meta and variant that
    core.weights.load_model sets; the vocabularies and labels a task's build_model sets) is shared with it, so the
    task's ``predict`` and ``evaluate`` take the ensemble wherever they take a model. Its ``variant`` names the
    mixture ("ensemble 0.6/0.4"), not the first member."""
    ens = task.ensemble(list(models), list(weights))
    first = models[0]
    for name, value in vars(first).items():
        if name.startswith("_") or name == "training" or isinstance(value, (nn.Module, torch.Tensor)):
            continue
        if name not in vars(ens) and not hasattr(type(ens), name):
            setattr(ens, name, value)
    # Not the served variant's name: caches keyed by (weights, variant) must tell the ensemble from its first member.
    ens.variant = "ensemble " + "/".join(f"{w:.6g}" for w in getattr(ens, "weights", weights))
    return ens.eval()


def sweep(task, models: list, grid, data, metric: str, higher: bool, log=print) -> tuple[list[float], list[dict]]:
    """Validation metrics of the ensemble for every first-member weight in ``grid`` (others share the rest).
    Returns (the best weights, every row). Ties keep the larger first-member weight (the simpler system)."""
    from core.train import better

    rows, best, best_w = [], None, None
    rest = len(models) - 1
    for w in sorted({float(x) for x in grid}, reverse=True):
        weights = [w] + [(1.0 - w) / rest] * rest
        with torch.no_grad():
            val = task.evaluate(build(task, models, weights), data)
        rows.append({"weights": [round(x, 6) for x in weights], "val": val})
        log(f"  weights {', '.join(f'{x:.2f}' for x in weights)}: val {metric} {val[metric]:.4f}")
        if better(float(val[metric]), best, higher):
            best, best_w = float(val[metric]), weights
    return best_w, rows


def command_line(argv: list[str]) -> str:
    """The core.ensemble command running now, as the card records it (paths shortened by core.paths)."""
    from core.paths import command_line as shown

    return shown("python -m core.ensemble", argv)


class _Refused(Exception):
    """A reason to stop with exit status 2; the message is for the user."""


def _arguments() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m core.ensemble", description=__doc__.splitlines()[0])
    ap.add_argument("task")
    ap.add_argument("--data-dir", help="the task's data directory (else $RNNLAB_DATA_<TASK>, $RNNLAB_DATA_ROOT)")
    ap.add_argument("--weights", help="weights folder (default: the task's weights/<task>)")
    ap.add_argument("--members", help="comma-separated variants, the served one first (default: served + all kept)")
    ap.add_argument("--grid", default=",".join(str(x) for x in DEFAULT_GRID),
                    help="the served variant's weights to try (default: %(default)s)")
    ap.add_argument("--add", action="append", default=[], metavar="NAME=DIR",
                    help="another weights folder's served model joins as variant NAME (repeatable)")
    ap.add_argument("--min-gain", type=float, default=0.0,
                    help="keep the ensemble only if it beats the served model alone on validation by this much "
                         "(in the metric's own units, e.g. 0.005 = half a point of F1)")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    ap.add_argument("--synthetic", action="store_true", help="use the task's tiny synthetic data (smoke test)")
    return ap


def _grid(text: str) -> list[float]:
    try:
        grid = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise _Refused(f"--grid takes numbers separated by commas (got {text!r})") from None
    if not grid or any(not 0.0 <= w <= 1.0 for w in grid):
        raise _Refused("--grid weights must lie between 0 and 1")
    return grid


def _added(task, card, specs: list[str]) -> dict:
    """--add NAME=DIR: each folder's served model, refused when its name is taken or its vocabularies differ."""
    from core.weights import load_model

    added = {}
    for spec in specs:
        name, _, where = spec.partition("=")
        if not name or not where or name in card.comparison or name in added:
            raise _Refused(f"--add takes NAME=DIR with a new variant name (got {spec!r}; this card has "
                           f"{', '.join(card.comparison)})")
        other = load_model(task, where)
        differ = sorted(k for k, v in card.meta.items() if isinstance(v, (list, tuple))
                        and list(v) != list(other.card.meta.get(k, [])))
        if differ:
            raise _Refused(f"--add {name}: {where} was trained with other {', '.join(differ)} than this card")
        added[name] = other
    return added


def _members(task, folder, args) -> tuple[object, list[str], list, dict]:
    """The served variant alone (an earlier ensemble is redone from scratch), the members' names and models, the
    --add models."""
    from core.weights import load_model

    primary = load_model(task, folder)
    card = primary.card
    served, kept = card.served_variant, card.variant_weights()
    added = _added(task, card, args.add)
    members = args.members.split(",") if args.members else [served] + kept + list(added)
    if members[0] != served:
        raise _Refused(f"the first member must be the served variant {served!r} (got {members[0]!r})")
    if len(members) < 2 or len(set(members)) != len(members):
        raise _Refused(f"an ensemble needs two or more different variants (got {members}; kept: {kept})")
    models = [primary] + [added[n] if n in added else load_model(task, folder, variant=n) for n in members[1:]]
    task.ensemble(models, [1.0] * len(models))  # fails early, before any decoding, if the task cannot
    return primary, members, models, added


def _splits(task, card, args):
    """The data to tune on; refused when a data file differs from the one the card was trained on."""
    from core.registry import changed_data_files, cli_data

    if args.synthetic:
        return task.synthetic_data(0)
    got = cli_data(task, args.data_dir)
    if got is None:
        raise _Refused("")  # cli_data has said why
    splits, data_dir = got
    for rel in changed_data_files(card, splits, data_dir):
        raise _Refused(f"data file {rel} differs from the one the card was trained on (sha256): refusing to tune an "
                       "ensemble on other data")
    return splits


def _single_model(card):
    """The card as a single model: an earlier ensemble undone, the served variant's own scores in the headline."""
    row = card.comparison[card.served_variant]
    return dataclasses.replace(card, ensemble=None, metrics=row.test, val_metrics=row.val)


def _join_added(card, folder, added: dict, members: list[str]):
    """The card with each --add model that is a member joined as a kept variant: its weights file beside the
    others, its comparison row with how it was trained, its history."""
    from core.modelcard import TrainedBy
    from core.weights import save_variant

    comparison, history = dict(card.comparison), dict(card.history)
    for name, other in added.items():
        if name not in members:
            continue
        oc, tr = other.card, other.card.training
        comparison[name] = dataclasses.replace(
            oc.comparison[oc.served_variant], **save_variant(folder, name, other),
            trained_by=TrainedBy(command=tr.command, device=tr.device, profile=tr.profile, seed=tr.seed,
                                 wall_seconds=tr.wall_seconds))
        history[name] = oc.history.get(oc.served_variant, [])
    return dataclasses.replace(card, comparison=comparison, history=history)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _arguments().parse_args(argv)

    from core.modelcard import Ensemble, SweepRow
    from core.registry import cli_task
    from core.weights import CARD_FILE, WeightsError, write_card

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        grid = _grid(args.grid)
        task = cli_task(args.task)
        if task is None:
            return 2
        folder = args.weights or task.weights_path()
        try:
            primary, members, models, added = _members(task, folder, args)
        except WeightsError as exc:
            raise _Refused(f"cannot load weights: {exc}") from None
        except NotImplementedError as exc:
            raise _Refused(str(exc)) from None
        card = primary.card
        splits = _splits(task, card, args)
    except _Refused as exc:
        if str(exc):
            print(str(exc), file=sys.stderr)
        return 2
    metric, higher = card.metric, card.higher_is_better
    t0 = time.time()
    print(f"[{task.name}] ensemble of {', '.join(members)}: weights by validation {metric}")
    best_w, rows = sweep(task, models, grid, splits.val, metric, higher)
    single = next((r for r in rows if r["weights"][0] == 1.0), None)
    path = os.path.join(folder, CARD_FILE)
    best_val = next((r["val"] for r in rows if r["weights"] == [round(x, 6) for x in best_w]), None) if best_w \
        else None
    gain = None if best_val is None or single is None else \
        (best_val[metric] - single["val"][metric]) * (1 if higher else -1)
    if best_w is None or best_w[0] == 1.0 or (gain is not None and gain < args.min_gain):
        why = ("the served model alone is best on validation" if best_w is None or best_w[0] == 1.0 else
               f"the ensemble beats the served model alone by {gain:.4f} on validation {metric}, less than "
               f"--min-gain {args.min_gain}")
        print(f"{why}: the card stays a single model ({path})")
        if card.ensemble is not None:  # undo an earlier ensemble: the single model's own scores
            write_card(folder, _single_model(card))
        return 0
    with torch.no_grad():
        test = task.evaluate(build(task, models, best_w), splits.test)
    card = _join_added(card, folder, added, members)
    ensemble = Ensemble(members=members, weights=[round(x, 6) for x in best_w], metric=metric,
                        selected_on="validation", sweep=[SweepRow(**r) for r in rows], val=best_val, test=test,
                        single_val=single["val"] if single else None, command=command_line(argv),
                        seconds=round(time.time() - t0, 1), created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    write_card(folder, dataclasses.replace(card, ensemble=ensemble, metrics=test, val_metrics=best_val))
    print(f"wrote {path}: ensemble weights {best_w}, test {test}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
