"""A task's page rendered in Streamlit's AppTest (no browser): what the page raised, in words. tests/test_contract.py
and ``python -m core.check`` (in a process of its own, so the command itself never imports Streamlit) use it.

    python -m core.ui.render_check <task> [extra sys.path entries ...]   -> exit 0 when the page drew without error
"""

from __future__ import annotations

import sys

PAGE_SCRIPT = """
import importlib, sys
sys.path[:0] = {paths!r}
from core.registry import discover
reg = discover()
extra = {extra!r}
if {name!r} not in reg.tasks and extra:
    reg.add(importlib.import_module(extra), extra)
task = reg.get({name!r})
mod, fn = task.page.split(":")
getattr(importlib.import_module(mod), fn)(task)
"""


def page_app(name: str, paths: list[str] | tuple[str, ...] = (), extra_module: str = "", timeout: float = 120):
    """The task's page in AppTest, not run yet: the discovered tasks, plus ``extra_module``'s TASK when discovery
    does not find ``name`` (a test's fixture plugin)."""
    from streamlit.testing.v1 import AppTest

    return AppTest.from_string(PAGE_SCRIPT.format(paths=list(paths), name=name, extra=extra_module),
                               default_timeout=timeout)


def render_problems(at) -> list[str]:
    """What a run page shows that it must not: exceptions, and fewer than the three tabs of a task page."""
    problems = [f"the page raised: {e.message}" for e in at.exception]
    if len(at.tabs) < 3:
        problems.append("a task page has Try it / Inspect / Model card tabs")
    return problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m core.ui.render_check <task> [path ...]", file=sys.stderr)
        return 2
    at = page_app(argv[0], argv[1:]).run()
    problems = render_problems(at)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
