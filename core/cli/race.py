"""python -m core.cli.race: the Lesson's cell race (``core.lesson.recall_race``) computed in its own process at the
lowest CPU priority, printed as JSON records. The Lesson page starts it in the background
(``core.lesson.race_in_background``) so that the race's training does not slow the first reveals a student clicks."""

from __future__ import annotations

import argparse
import os
import sys

import torch

from core.lesson import RACE, RACE_CELLS, RECALL_LENGTH, race_records, recall_race


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.cli.race", description="The Lesson's cell race, as JSON.")
    ap.add_argument("--length", type=int, default=RECALL_LENGTH, help="sequence length of the recall task")
    ap.add_argument("--cells", default=",".join(RACE_CELLS), help="comma-separated cells")
    ap.add_argument("--steps", type=int, default=RACE["steps"], help="training steps per cell")
    ap.add_argument("--seed", type=int, default=0, help="seed of the data and the initial weights")
    ap.add_argument("--priority", type=int, default=19, help="niceness added to this process (0: as started)")
    args = ap.parse_args(argv)
    if args.priority and hasattr(os, "nice"):
        os.nice(args.priority)
    torch.set_num_threads(1)
    df = recall_race(args.length, tuple(c for c in args.cells.split(",") if c), args.steps, args.seed)
    print(race_records(df))
    return 0


if __name__ == "__main__":
    sys.exit(main())
