"""python -m core.ensemble: decode with several trained variants at once, the mixing weights picked on validation,
the test split scored, both written into the weights card (the ensemble modules are core.ensemble's).

    python -m core.ensemble <task> --data-dir DIR [--members served,other] [--grid 1,0.9,...,0.3]
                                               [--add NAME=WEIGHTS_DIR] [--min-gain 0.005]

The first member is the card's served variant; its weight w runs over --grid and the others share 1 - w equally.
w = 1 is the served model alone, so the ensemble is kept only when it beats that on the validation metric the
training used (the recipe's) -- by at least --min-gain, when given ("serve one model unless a second clearly
pays") -- otherwise the card is left as a single model. ``--add NAME=DIR``: the served model of another weights
folder (trained on the same data and vocabulary) joins as variant NAME; if the ensemble is kept, its weights file,
comparison row (with the command that trained it) and history are copied into this card.
Exit status 0 when the card was written (or left alone because the ensemble did not pay), 2 on errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import torch

from core.cli.common import changed_data_files, cli_data, cli_task
from core.ensemble import build
from core.modelcard import Ensemble, SweepRow, TrainedBy
from core.paths import command_line as shown
from core.train import better
from core.weights import CARD_FILE, WeightsError, load_model, save_variant, write_card

DEFAULT_GRID = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)


def sweep(task, models: list, grid, data, metric: str, higher: bool, log=print) -> tuple[list[float], list[dict]]:
    """Validation metrics of the ensemble for every first-member weight in ``grid`` (others share the rest).
    Returns (the best weights, every row). Ties keep the larger first-member weight (the simpler system)."""
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
    return shown("python -m core.ensemble", argv)


class _Refused(Exception):
    """A reason to stop with exit status 2; the message is for the user."""


def _arguments() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m core.ensemble", description=__doc__.splitlines()[0].split(": ", 1)[1])
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
    added = {}
    for spec in specs:
        name, _, where = spec.partition("=")
        if not name or not where or name in card.comparison or name in added:
            raise _Refused(f"--add takes NAME=DIR with a new variant name (got {spec!r}; this card has "
                           f"{', '.join(card.comparison)})")
        other = load_model(task, where)
        differ = sorted(k for k, v in card.meta.items() if isinstance(v, (list, tuple))
                        and list(v) != list(other.runtime.meta.get(k, [])))
        if differ:
            raise _Refused(f"--add {name}: {where} was trained with other {', '.join(differ)} than this card")
        added[name] = other
    return added


def _members(task, folder, args) -> tuple[object, list[str], list, dict]:
    """The served variant alone (an earlier ensemble is redone from scratch), the members' names and models, the
    --add models."""
    primary = load_model(task, folder)
    card = primary.runtime.card
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
    comparison, history = dict(card.comparison), dict(card.history)
    for name, other in added.items():
        if name not in members:
            continue
        oc, tr = other.runtime.card, other.runtime.card.training
        comparison[name] = dataclasses.replace(
            oc.comparison[oc.served_variant], **save_variant(folder, name, other),
            trained_by=TrainedBy(command=tr.command, device=tr.device, profile=tr.profile, seed=tr.seed,
                                 wall_seconds=tr.wall_seconds))
        history[name] = oc.history.get(oc.served_variant, [])
    return dataclasses.replace(card, comparison=comparison, history=history)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _arguments().parse_args(argv)

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
        card = primary.runtime.card
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
