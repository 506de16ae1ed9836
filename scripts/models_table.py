"""Print the README's "Models" table from the weights cards (never typed by hand; tests/test_readme.py checks it).

    python scripts/models_table.py

One row per headline metric (``Task.headlines``, in the task's own Display words) of every task the repository
holds: the committed packages in tasks/ and the plugins in examples/. An installed third-party plugin or a task
just scaffolded into tasks/ (not committed) is left out, so adding one changes nothing here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def example_entry_points(repo: Path = REPO) -> set[str]:
    """``name = value`` of every ``rnnlab.tasks`` entry point that a plugin in examples/ declares in its pyproject
    (read line by line: Python 3.10 has no tomllib)."""
    out = set()
    for pyproject in sorted((repo / "examples").glob("*/pyproject.toml")):
        section = ""
        for line in pyproject.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("["):
                section = line
            elif section == '[project.entry-points."rnnlab.tasks"]' and "=" in line:
                name, value = (part.strip().strip('"') for part in line.split("=", 1))
                out.add(f"{name} = {value}")
    return out


def committed_task_dirs(repo: Path = REPO) -> set[str] | None:
    """The folders of tasks/ that git tracks ("tasks/ner", ...); None when this is not a git checkout."""
    try:
        out = subprocess.run(["git", "ls-files", "--", "tasks/*/__init__.py"], cwd=repo, capture_output=True,
                             text=True, timeout=30)
    except OSError:
        return None
    if out.returncode != 0:
        return None
    return {str(Path(line).parent) for line in out.stdout.splitlines() if line}


def repository_tasks(reg, repo: Path = REPO) -> list[str]:
    """The names in the registry ``reg`` whose plugin the repository holds, sorted."""
    examples, committed = example_entry_points(repo), committed_task_dirs(repo)
    keep = []
    for name, source in reg.sources.items():
        if source.startswith("entry point "):
            ok = source.removeprefix("entry point ") in examples
        else:  # "tasks/<folder>"; outside a git checkout every folder of tasks/ counts
            ok = source.startswith("tasks/") and (committed is None or source in committed)
        if ok:
            keep.append(name)
    return sorted(keep)


def rows(reg=None) -> list[str]:
    from core.registry import discover
    from core.ui.shapes import shape_spec  # plain data: no Streamlit
    from core.weights import read_card

    reg = reg or discover()
    out = ["| task | shape | served model | metric | test | target |", "|---|---|---|---|---|---|"]
    for name in repository_tasks(reg):
        task = reg.tasks[name]
        words = task.display  # the same words as the app's Model card (core.task.Display)
        title, shape = task.title, shape_spec(task.shape).label
        card_path = task.weights_path() / "card.json"
        if not card_path.exists():
            out.append(f"| {title} | {shape} | (no weights yet) | | | |")
            continue
        card = read_card(card_path.parent)
        served = words.variant(card.served_variant or "default") or card.served_variant
        if card.ensemble is not None:  # core.ensemble: the served system mixes several variants
            served = " + ".join(words.variant(m) or m for m in card.ensemble.members) + " (ensemble)"
        for head in task.headline_metrics():
            value, scale = card.metrics.get(head.key), head.scale(words)
            digits = 2 if scale == 1 and isinstance(value, float) and value < 10 else 1  # NLLs need two
            shown = f"{value * scale:.{digits}f}" if isinstance(value, (int, float)) else "?"
            out.append(f"| {title} | {shape} | {served} | {head.label(words, card.metrics)} | {shown} | {head.target} |")
    return out


if __name__ == "__main__":
    print("\n".join(rows()))
