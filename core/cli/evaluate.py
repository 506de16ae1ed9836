"""python -m core.evaluate: recompute a task's held-out test metrics from its committed weights and say whether they
match its card.

    python -m core.evaluate <task> --data-dir DIR

Exit status 0 when every metric on the card is reproduced (within --tol), 1 when one differs, 2 on errors.
"""

from __future__ import annotations

import argparse
import sys

import torch

from core.cli.common import changed_data_files, cli_data, cli_task
from core.evaluate import compare
from core.serving import load_served
from core.weights import WeightsError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.evaluate",
                                 description="Recompute a task's test metrics from its weights; compare with its card.")
    ap.add_argument("task")
    ap.add_argument("--data-dir")
    ap.add_argument("--weights", help="weights folder (default: the task's)")
    ap.add_argument("--tol", type=float, default=1e-3, help="relative tolerance (default 1e-3)")
    ap.add_argument("--threads", type=int)
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    task = cli_task(args.task)
    if task is None:
        return 2
    try:
        served = load_served(task, args.weights)
    except WeightsError as exc:
        print(f"cannot load weights: {exc}", file=sys.stderr)
        return 2
    card = served.card
    if served.ensemble_problem:
        print(f"warning: the card's ensemble cannot be put together, evaluating the served variant alone: "
              f"{served.ensemble_problem}", file=sys.stderr)
    got = cli_data(task, args.data_dir)
    if got is None:
        return 2
    splits, data_dir = got
    for rel in changed_data_files(card, splits, data_dir):
        print(f"warning: data file {rel} differs from the one the card was trained on (sha256)")
    with torch.no_grad():
        metrics = task.evaluate(served.answering(), splits.test)
    rows = compare(card.metrics, metrics, args.tol)
    if card.calibration is not None:  # the temperature's test scores (core.calibrate), recomputed the same way
        from core.calibrate import recompute

        cal = recompute(task, served, splits.test)
        rows += [(f"calibration {k}", want, got, ok) for k, want, got, ok in compare(
            {f"{when} {key}": v for when in ("before", "after") for key, v in
             getattr(card.calibration, f"test_{when}").items()}, cal, args.tol)]
    print(f"{task.name}: test metrics, card vs. recomputed")
    for k, want, got, ok in rows:
        print(f"  {k:<24} card {want:10.4f}   now {got:10.4f}   {'match' if ok else 'DIFFERS'}")
    if not rows:
        print("  the card holds no numeric metrics")
        return 1
    good = all(ok for *_, ok in rows)
    print("reproduced: the card's metrics match" if good else "NOT reproduced: see DIFFERS above")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
