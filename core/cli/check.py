"""python -m core.check: one command for a task's whole contract -- the checks every plugin must pass
(core.contract), its card reproduced from the weights (core.evaluate), and its page drawn (core.ui.render_check,
in a process of its own).

    python -m core.check <task> [--data-dir DIR] [--skip-evaluate] [--skip-page]

Prints a line per check (PASS / FAIL / SKIP and why); exit status 0 when nothing failed, 1 when something did,
2 when the task is unknown.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback

import torch

from core import contract
from core.cli.common import cli_task
from core.cli.evaluate import main as evaluate_main
from core.paths import REPO
from core.weights import CARD_FILE


def _line(status: str, what: str, seconds: float, detail: str = "") -> str:
    return f"{status:<5} {what} ({seconds:.1f} s)" + (f"\n        {detail}" if detail else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.check",
                                 description="Run a task's contract, evaluation and page render in one command.")
    ap.add_argument("task")
    ap.add_argument("--data-dir", help="the task's data directory, for the evaluation (else $RNNLAB_DATA_<TASK>, ...)")
    ap.add_argument("--skip-evaluate", action="store_true", help="do not recompute the card's test metrics")
    ap.add_argument("--skip-page", action="store_true", help="do not draw the page")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    task = cli_task(args.task, show_plugin_errors=True)
    if task is None:
        return 2
    failed = 0
    splits = task.synthetic_data(0)
    for what, run in contract.checks(task, splits):
        t0 = time.perf_counter()
        try:
            problems = run()
        except Exception as exc:  # noqa: BLE001 -- a check that crashes is a failed check, said in one line
            problems = [f"{type(exc).__name__}: {exc}".splitlines()[0]]
            traceback.print_exc(file=sys.stderr)
        if problems is None:
            print(_line("SKIP", what, time.perf_counter() - t0, f"no weights yet: {task.train_command()}"))
            continue
        failed += bool(problems)
        print(_line("FAIL" if problems else "PASS", what, time.perf_counter() - t0, "; ".join(problems)))
    t0 = time.perf_counter()
    if args.skip_evaluate:
        print(_line("SKIP", "the card's test metrics reproduced", 0.0, "--skip-evaluate"))
    elif not (task.weights_path() / CARD_FILE).exists():
        print(_line("SKIP", "the card's test metrics reproduced", 0.0, "no weights yet"))
    elif not task.resolve_data_dir(args.data_dir).exists():
        print(_line("SKIP", "the card's test metrics reproduced", 0.0,
                    f"no data at {task.resolve_data_dir(args.data_dir)}: pass --data-dir"))
    else:
        code = evaluate_main([task.name, *(["--data-dir", args.data_dir] if args.data_dir else [])])
        failed += code != 0
        print(_line("PASS" if code == 0 else "FAIL", "the card's test metrics reproduced", time.perf_counter() - t0))
    t0 = time.perf_counter()
    if args.skip_page:
        print(_line("SKIP", "the page draws", 0.0, "--skip-page"))
    else:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
        proc = subprocess.run([sys.executable, "-m", "core.ui.render_check", task.name, os.getcwd()], env=env,
                              capture_output=True, text=True, timeout=600)
        failed += proc.returncode != 0
        detail = proc.stdout.strip().replace("\n", "; ") or (proc.stderr.strip().splitlines() or [""])[-1]
        print(_line("PASS" if proc.returncode == 0 else "FAIL", "the page draws", time.perf_counter() - t0,
                    "" if proc.returncode == 0 else detail))
    print(f"{task.name}: {'every check passed' if not failed else f'{failed} check(s) failed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
