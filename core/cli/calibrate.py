"""python -m core.calibrate <task>: fit a classifier's temperature on validation (core.calibrate) and write it, with the
expected calibration error before and after on test, to the card."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from core.calibrate import calibration_record, can_calibrate
from core.cli.common import add_task_arguments, cli_data, cli_served
from core.paths import command_line
from core.weights import write_card


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.calibrate",
                                 description="Fit a classifier's temperature on validation and write it to its card.")
    add_task_arguments(ap)
    args = ap.parse_args(argv)

    got = cli_served(args)
    if got is None:
        return 2
    task, served = got
    if not can_calibrate(task):
        print(f"{task.name} gives no class logits (it is not a classifier): nothing to calibrate", file=sys.stderr)
        return 2
    folder = args.weights or task.weights_path()
    got = cli_data(task, args.data_dir)
    if got is None:
        return 2
    splits, _ = got
    model = served.answering()
    model.runtime = dataclasses.replace(model.runtime, temperature=1.0)  # fit on the raw logits, whatever the card held
    command = command_line("python -m core.calibrate", sys.argv[1:] if argv is None else argv)
    rec = calibration_record(task, model, splits, command, "ensemble" if served.has_ensemble else "served variant")
    card = served.card
    card.calibration = rec
    write_card(folder, card)
    print(f"{task.name}: temperature {rec.temperature:.3f}; test ECE {rec.test_before['ece']:.4f} -> "
          f"{rec.test_after['ece']:.4f}, NLL {rec.test_before['nll']:.4f} -> {rec.test_after['nll']:.4f} "
          f"(validation ECE {rec.val_before['ece']:.4f} -> {rec.val_after['ece']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
