"""What the command lines (core.train, core.evaluate, core.ensemble, core.calibrate) share: a task by name, its data,
the data files that changed since a card was written."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from core import registry
from core.serving import Served, load_served
from core.task import Task
from core.weights import WeightsError, sha256_file


def add_task_arguments(ap: argparse.ArgumentParser) -> None:
    """The arguments every command on a trained task takes: the task, --data-dir, --weights, --threads."""
    ap.add_argument("task", help="task name (the Plugins page of the app lists them)")
    ap.add_argument("--data-dir", help="the task's data directory (else $RNNLAB_DATA_<TASK>, $RNNLAB_DATA_ROOT)")
    ap.add_argument("--weights", help="weights folder (default: the task's)")
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")


def cli_served(args: argparse.Namespace) -> tuple[Task, Served] | None:
    """(task, its served model) for ``add_task_arguments``' arguments, or None after saying on stderr what is
    missing (an unknown task, weights that do not load)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    task = cli_task(args.task)
    if task is None:
        return None
    try:
        return task, load_served(task, args.weights or task.weights_path())
    except WeightsError as exc:
        print(f"cannot load weights: {exc}", file=sys.stderr)
        return None


def cli_task(name: str, show_plugin_errors: bool = False) -> Task | None:
    """The task called ``name`` for a command line, or None after saying on stderr which names exist. Another
    plugin that claims the same name is always said (which one the command uses, which one was left out)."""
    reg = registry.discover()
    try:
        task = reg.get(name)
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        if show_plugin_errors:
            for e in reg.errors:
                print(f"  plugin error: {e.source}: {e.error}", file=sys.stderr)
        return None
    for e in reg.errors:
        if e.duplicate == name:
            print(f"warning: {e.source} also calls itself {name!r} and was left out; this command uses the task "
                  f"from {reg.sources[name]}", file=sys.stderr)
    return task


def cli_data(task: Task, data_dir: str | None):
    """(splits, data directory) read from --data-dir (or the environment), or None after saying it is missing."""
    folder = task.resolve_data_dir(data_dir)
    if not folder.exists():
        print(f"data directory {folder} does not exist; pass --data-dir", file=sys.stderr)
        return None
    return task.load_data(folder), folder


def changed_data_files(card, splits, data_dir: Path) -> list[str]:
    """The data files (relative paths) whose sha256 differs from the one the card (a ModelCard) was trained on."""
    want = {f.path: f.sha256 for f in card.dataset.files}
    out = []
    for f in splits.files:
        rel = os.path.relpath(os.fspath(f), data_dir)
        if rel in want and sha256_file(f) != want[rel]:
            out.append(rel)
    return out
