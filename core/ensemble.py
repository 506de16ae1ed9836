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
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

import torch

DEFAULT_GRID = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3)


def _better(a: float, b: float | None, higher: bool) -> bool:
    return b is None or (a > b if higher else a < b)


def sweep(task, models: list, grid, data, metric: str, higher: bool, log=print) -> tuple[list[float], list[dict]]:
    """Validation metrics of the ensemble for every first-member weight in ``grid`` (others share the rest).
    Returns (the best weights, every row). Ties keep the larger first-member weight (the simpler system)."""
    from core.weights import attach_ensemble

    primary, rows, best, best_w = models[0], [], None, None
    rest = len(models) - 1
    for w in sorted({float(x) for x in grid}, reverse=True):
        weights = [w] + [(1.0 - w) / rest] * rest
        attach_ensemble(primary, task.ensemble(models, weights).eval())
        with torch.no_grad():
            val = task.evaluate(primary, data)
        rows.append({"weights": [round(x, 6) for x in weights], "val": val})
        log(f"  weights {', '.join(f'{x:.2f}' for x in weights)}: val {metric} {val[metric]:.4f}")
        if _better(float(val[metric]), best, higher):
            best, best_w = float(val[metric]), weights
    attach_ensemble(primary, None)
    return best_w, rows


def command_line(argv: list[str]) -> str:
    from core.task import display_path

    def shown(a: str) -> str:
        name, eq, value = a.partition("=")
        if eq and name and not os.path.isabs(a) and os.path.isabs(value):  # --add NAME=/abs/dir
            return f"{name}={display_path(value)}"
        return display_path(a) if os.path.isabs(a) else a

    return "python -m core.ensemble " + shlex.join(shown(a) for a in argv)


def main(argv: list[str] | None = None) -> int:
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
    argv = sys.argv[1:] if argv is None else list(argv)
    args = ap.parse_args(argv)

    from core.registry import changed_data_files, cli_data, cli_task
    from core.weights import CARD_FILE, WeightsError, _json_default, attach_ensemble, load_model, save_variant

    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        grid = [float(x) for x in args.grid.split(",") if x.strip()]
    except ValueError:
        print(f"--grid takes numbers separated by commas (got {args.grid!r})", file=sys.stderr)
        return 2
    if not grid or any(not 0.0 <= w <= 1.0 for w in grid):
        print("--grid weights must lie between 0 and 1", file=sys.stderr)
        return 2
    task = cli_task(args.task)
    if task is None:
        return 2
    folder = args.weights or task.weights_path()
    try:
        primary = load_model(task, folder)
        attach_ensemble(primary, None)  # an earlier ensemble is redone from scratch
        card = primary.card
        served = card.get("served_variant")
        kept = [n for n, row in (card.get("comparison") or {}).items() if n != served and "weights_file" in row]
        added = {}
        for spec in args.add:
            name, _, where = spec.partition("=")
            if not name or not where or name in (card.get("comparison") or {}) or name in added:
                print(f"--add takes NAME=DIR with a new variant name (got {spec!r}; this card has "
                      f"{', '.join(card.get('comparison') or {})})", file=sys.stderr)
                return 2
            other = load_model(task, where)
            differ = sorted(k for k, v in (card.get("meta") or {}).items() if isinstance(v, (list, tuple))
                            and list(v) != list((other.card.get("meta") or {}).get(k, [])))
            if differ:
                print(f"--add {name}: {where} was trained with other {', '.join(differ)} than this card",
                      file=sys.stderr)
                return 2
            attach_ensemble(other, None)
            added[name] = other
        members = args.members.split(",") if args.members else [served] + kept + list(added)
        if members[0] != served:
            print(f"the first member must be the served variant {served!r} (got {members[0]!r})", file=sys.stderr)
            return 2
        if len(members) < 2 or len(set(members)) != len(members):
            print(f"an ensemble needs two or more different variants (got {members}; kept: {kept})",
                  file=sys.stderr)
            return 2
        models = [primary] + [added[n] if n in added else load_model(task, folder, variant=n) for n in members[1:]]
        task.ensemble(models, [1.0] * len(models))  # fails early, before any decoding, if the task cannot
    except WeightsError as exc:
        print(f"cannot load weights: {exc}", file=sys.stderr)
        return 2
    except NotImplementedError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.synthetic:
        splits = task.synthetic_data(0)
    else:
        got = cli_data(task, args.data_dir)
        if got is None:
            return 2
        splits, data_dir = got
        for rel in changed_data_files(card, splits, data_dir):
            print(f"data file {rel} differs from the one the card was trained on (sha256): refusing to tune an "
                  "ensemble on other data", file=sys.stderr)
            return 2
    metric, higher = card.get("metric", task.recipe.metric), card.get("higher_is_better", True)
    t0 = time.time()
    print(f"[{task.name}] ensemble of {', '.join(members)}: weights by validation {metric}")
    best_w, rows = sweep(task, models, grid, splits.val, metric, higher)
    single = next((r for r in rows if r["weights"][0] == 1.0), None)
    card = dict(card)
    path = os.path.join(folder, CARD_FILE)
    gain = None
    if best_w is not None and single is not None:
        best_val = max(rows, key=lambda r: r["val"][metric] if higher else -r["val"][metric])["val"][metric]
        gain = (best_val - single["val"][metric]) * (1 if higher else -1)
    if best_w is None or best_w[0] == 1.0 or (gain is not None and gain < args.min_gain):
        why = ("the served model alone is best on validation" if best_w is None or best_w[0] == 1.0 else
               f"the ensemble beats the served model alone by {gain:.4f} on validation {metric}, less than "
               f"--min-gain {args.min_gain}")
        print(f"{why}: the card stays a single model ({path})")
        if card.pop("ensemble", None) is not None:  # undo an earlier ensemble: the single model's own scores
            card["metrics"] = card["comparison"][served]["test"]
            card["val_metrics"] = card["comparison"][served]["val"]
            _write(path, card, _json_default)
        return 0
    attach_ensemble(primary, task.ensemble(models, best_w).eval())
    with torch.no_grad():
        test = task.evaluate(primary, splits.test)
    for name, other in added.items():  # joins this card as a kept variant, with the story of its training
        if name not in members:
            continue
        oc = other.card
        row = dict((oc.get("comparison") or {}).get(oc.get("served_variant"), {}))
        row.pop("weights_file", None), row.pop("weights_sha256", None)
        row.update(save_variant(folder, name, other))
        row["trained_by"] = {k: (oc.get("training") or {}).get(k) for k in ("command", "device", "profile", "seed",
                                                                          "wall_seconds")}
        card.setdefault("comparison", {})[name] = row
        card.setdefault("history", {})[name] = (oc.get("history") or {}).get(oc.get("served_variant"), [])
    best_val = next(r["val"] for r in rows if r["weights"] == [round(x, 6) for x in best_w])
    card["ensemble"] = {
        "members": members, "weights": [round(x, 6) for x in best_w], "metric": metric,
        "selected_on": "validation", "sweep": rows, "val": best_val, "test": test,
        "single_val": single["val"] if single else None,
        "command": command_line(argv), "seconds": round(time.time() - t0, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    card["metrics"], card["val_metrics"] = test, best_val
    _write(path, card, _json_default)
    print(f"wrote {path}: ensemble weights {best_w}, test {test}")
    return 0


def _write(path: str, card: dict, default) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(json.dumps(card, indent=2, sort_keys=False, default=default) + "\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
