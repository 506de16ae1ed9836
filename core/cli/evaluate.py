"""python -m core.evaluate: recompute a task's held-out test metrics from its committed weights and say whether they
match its card.

    python -m core.evaluate <task> --data-dir DIR

Exit status 0 when every metric on the card is reproduced (within --tol), 1 when one differs, 2 on errors.
"""

from __future__ import annotations

import argparse
import sys

import torch

from core.cli.common import add_task_arguments, changed_data_files, cli_data, cli_served
from core.evaluate import compare


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.evaluate",
                                 description="Recompute a task's test metrics from its weights; compare with its card.")
    add_task_arguments(ap)
    ap.add_argument("--tol", type=float, default=1e-3, help="relative tolerance (default 1e-3)")
    args = ap.parse_args(argv)

    got = cli_served(args)
    if got is None:
        return 2
    task, served = got
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
