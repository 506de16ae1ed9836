"""One registry of tasks: every package in tasks/ plus the ``rnnlab.tasks`` entry-point group.

A plugin that fails to import or breaks the contract is recorded with its error and skipped; duplicate names are
an error (the first one found keeps the name). Set RNNLAB_NO_ENTRY_POINTS=1 to load only tasks/.
"""

from __future__ import annotations

import importlib
import os
import traceback
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

from core.paths import REPO
from core.task import Task, check_task

GROUP = "rnnlab.tasks"


@dataclass
class PluginError:
    source: str  # "tasks/foo" or "entry point foo = pkg:TASK"
    error: str  # one readable line
    detail: str = ""  # the traceback, for the Plugins page's expander
    duplicate: str = ""  # the task name it tried to take, when another plugin has it already


@dataclass
class Registry:
    tasks: dict[str, Task] = field(default_factory=dict)
    errors: list[PluginError] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # task name -> where it came from

    def get(self, name: str) -> Task:
        if name not in self.tasks:
            raise KeyError(f"no task named {name!r}; known tasks: {', '.join(sorted(self.tasks)) or 'none'}")
        return self.tasks[name]

    def add(self, obj, source: str) -> None:
        task = getattr(obj, "TASK", obj)  # a module exposing TASK, or the Task itself
        problems = check_task(task)
        if problems:
            self.errors.append(PluginError(source, "breaks the plugin contract: " + "; ".join(problems)))
            return
        if task.name in self.tasks:
            self.errors.append(PluginError(
                source, f"duplicate task name {task.name!r}: already registered by {self.sources[task.name]}",
                duplicate=task.name))
            return
        self.tasks[task.name] = task
        self.sources[task.name] = source


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def discover(tasks_dir: Path | None = None, entry_points_on: bool | None = None) -> Registry:
    reg = Registry()
    tasks_dir = Path(tasks_dir or REPO / "tasks")
    package = tasks_dir.name
    if tasks_dir.is_dir():
        for sub in sorted(tasks_dir.iterdir()):
            if not sub.is_dir() or sub.name.startswith(("_", ".")) or not (sub / "__init__.py").exists():
                continue
            source = f"{package}/{sub.name}"
            try:
                mod = importlib.import_module(f"{package}.{sub.name}")
            except BaseException as exc:  # noqa: BLE001 -- a broken plugin must never take the app down
                if isinstance(exc, KeyboardInterrupt):
                    raise
                reg.errors.append(PluginError(source, "failed to import: " + _short(exc), traceback.format_exc()))
                continue
            if not hasattr(mod, "TASK"):
                reg.errors.append(PluginError(source, "module defines no TASK"))
                continue
            reg.add(mod, source)
    if entry_points_on is None:
        entry_points_on = os.environ.get("RNNLAB_NO_ENTRY_POINTS", "") in ("", "0", "false")
    if entry_points_on:
        for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
            source = f"entry point {ep.name} = {ep.value}"
            try:
                obj = ep.load()
            except BaseException as exc:  # noqa: BLE001
                if isinstance(exc, KeyboardInterrupt):
                    raise
                reg.errors.append(PluginError(source, "failed to import: " + _short(exc), traceback.format_exc()))
                continue
            reg.add(obj, source)
    return reg
