"""What the command lines (core.train, core.evaluate, core.ensemble, core.calibrate) share: a task by name, its data,
the data files that changed since a card was written."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from core import registry
from core.task import Task
from core.weights import sha256_file


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
