"""Where things live, and paths as people see them.

Where: the repository (``REPO``), the weights folders (``WEIGHTS_ROOT``: $RNNLAB_WEIGHTS_DIR, default ``weights/``)
and each task's data (``data_dir``: --data-dir, else $RNNLAB_DATA_<TASK>, else $RNNLAB_DATA_ROOT/<subdir>, default
``../shared/data``): every environment variable that moves them is read here.

Shown: the one rule for shortening a path in a message, a command or a model card.

A message or a card read by someone else must not reveal the directory layout of the machine that wrote it. So a
path near the repository is shown relative to it (``weights/ner``, ``../shared/data/ner``), and a path far from it
keeps only its last parts (``.../runs/cap_small``). ``display_path`` is that rule; ``command_line`` and
``shown_command`` apply it to each word of a command (``--out /abs/dir``, ``--add NAME=/abs/dir``) when a command
is recorded on a card and when a recorded one is shown.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent  # the repository root: paths under it (or beside it) stay readable
WEIGHTS_ROOT = Path(os.environ.get("RNNLAB_WEIGHTS_DIR", REPO / "weights"))  # one folder per task (weights/<name>/)


def data_env(task_name: str) -> str:
    """The environment variable that points one task at its data: RNNLAB_DATA_<NAME>."""
    return f"RNNLAB_DATA_{task_name.upper()}"


def data_dir(task_name: str, subdir: str = "", given: str | Path | None = None) -> Path:
    """A task's data folder: ``given`` (--data-dir), else $RNNLAB_DATA_<NAME>, else $RNNLAB_DATA_ROOT/``subdir``
    (``subdir`` defaults to the task's name; the root to ``../shared/data`` beside the repository)."""
    if given:
        return Path(given)
    env = os.environ.get(data_env(task_name))
    if env:
        return Path(env)
    root = Path(os.environ.get("RNNLAB_DATA_ROOT", REPO.parent / "shared" / "data"))
    return root / (subdir or task_name)


def display_path(path: str | Path, parts: int = 3) -> str:
    """``path`` as shown to users: relative to the repository when it is near it (at most one ``..``), else
    ``...`` and its last ``parts`` parts. A path already shortened (``.../a/b``) keeps its last ``parts`` parts."""
    text = str(path)
    if text.startswith("..." + os.sep):
        tail = Path(text).parts[1:]
        return str(Path("...", *tail[-parts:])) if tail else text
    p = Path(path)
    try:
        rel = os.path.relpath(p.resolve(), REPO)
    except ValueError:  # another drive (Windows): nothing in common with the repository
        rel = ""
    if rel and rel.count("..") <= 1:
        return rel
    return str(Path("...", *p.parts[-parts:])) if len(p.parts) > parts else str(p)


def _is_path(word: str) -> bool:
    return os.path.isabs(word) or word.startswith("..." + os.sep)


def _display_word(word: str, parts: int) -> str:
    """One command-line word: an absolute (or already shortened) path, or NAME=PATH (core.ensemble --add), goes
    through display_path; every other word stays as typed."""
    name, eq, value = word.partition("=")
    if eq and name and not _is_path(word) and _is_path(value):
        return f"{name}={display_path(value, parts)}"
    return display_path(word, parts) if _is_path(word) else word


def command_line(program: str, argv: Iterable[str]) -> str:
    """The command a card records, e.g. ``command_line("python -m core.train", ["ner", "--out", "/abs/w"])``: the
    words as typed, absolute paths shortened by display_path."""
    return f"{program} {shlex.join(_display_word(a, 3) for a in argv)}".rstrip()


def shown_command(command: str) -> str:
    """A recorded command as the Model card shows it: every path far from the repository keeps only its name
    (cards written by older versions may hold the host's absolute paths). Text that is not a command line is
    returned unchanged."""
    try:
        words = shlex.split(str(command))
    except ValueError:  # unbalanced quotes: not a command line core.train wrote
        return str(command)
    return shlex.join(_display_word(w, 1) for w in words)
