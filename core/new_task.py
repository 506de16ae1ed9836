"""Scaffold a new task plugin that works before you write a line.

    python -m core.new_task <name> --shape <one_to_one|one_to_many|many_to_one|many_to_many|encoder_decoder>
                            [--title "Shown in the navigation"] [--dir tasks | --package DIR]

writes ``<dir>/<name>/`` (with ``--package DIR``: ``DIR/<name>/``, an installable package -- see PYPROJECT):

  __init__.py   the Task: a typed Config (a reason per field), a toy synthetic dataset that trains in seconds,
                load_data() for a simple real format, demos, predict(), inspect_loss()
  page.py       its page: the shared frame (core.ui.page.task_page) and a Try-it tab for the shape
  __main__.py   ``python -m tasks.<name> DIR`` writes the toy data in the real format (to try --data-dir)

It passes core.task.check_task and the contract suite as written, and the app lists it at once (its page says how
to train it until weights exist). Then: ``python -m core.train <name> --synthetic`` and ``streamlit run
streamlit_app.py``. The guide is docs/plugins.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import keyword
import re
import sys
from importlib.metadata import entry_points
from pathlib import Path

from core.shapes import SHAPES

TEMPLATES = Path(__file__).resolve().parent / "templates"
REPO = Path(__file__).resolve().parent.parent
GROUP = "rnnlab.tasks"  # = core.registry.GROUP (not imported: that would import torch for a file copy)

MAIN = '''"""Write the toy data as files in the real format, to try core.train --data-dir on them:

    python -m {module} DIR
"""

import sys

from {module} import TASK

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m {module} DIR")
    print(f"wrote {{TASK.write_example_data(sys.argv[1])}}")
'''

# --package: the plugin as its own distribution, laid out as examples/rnnlab-names is.
PYPROJECT = '''[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "RNN Lab plugin: {title}"
requires-python = ">=3.10"
# torch and safetensors come with RNN Lab itself (its requirements.txt); the package needs RNN Lab's `core`
# importable, i.e. run it from an RNN Lab checkout (`streamlit run streamlit_app.py`, `python -m core.train ...`).
dependencies = []

# The task RNN Lab discovers: name = "module:object" (the object is a core.task.Task instance).
[project.entry-points."rnnlab.tasks"]
{name} = "{name}:TASK"

[tool.setuptools]
packages = ["{name}"]

# The trained weights ship inside the package: <site-packages>/{name}/weights/{name}/{{model.safetensors,card.json}}
[tool.setuptools.package-data]
{name} = ["weights/*/*.safetensors", "weights/*/card.json"]
'''
# the line a packaged Task adds after data_source: its weights live inside the package
WEIGHTS_LINE = '    weights_dir = Path(__file__).resolve().parent / "weights" / "{name}"  # shipped inside the package\n'


class ScaffoldError(ValueError):
    """A reason not to write the plugin; the message is shown to the user as it is."""


def validate_name(name: str, target: Path, top_level: bool = False) -> None:
    if not name:
        raise ScaffoldError("the task name is empty")
    if not name.isidentifier() or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise ScaffoldError(f"{name!r} is not a valid task name: use lower_snake_case letters, digits and "
                            f"underscores, starting with a letter (e.g. 'my_task')")
    if len(name) > 40:
        raise ScaffoldError(f"{name!r} is too long: at most 40 characters (it is a folder, a URL and a class name)")
    if keyword.iskeyword(name):
        raise ScaffoldError(f"{name!r} is a Python keyword and cannot be a module name")
    if target.exists():
        raise ScaffoldError(f"{target} already exists: choose another name (nothing was written)")
    if top_level and importlib.util.find_spec(name) is not None:
        raise ScaffoldError(f"a module named {name!r} is already importable: a package of that name would hide it "
                            f"or be hidden by it; choose another name (nothing was written)")
    installed = {ep.name for ep in entry_points(group=GROUP)}
    if name in installed:
        raise ScaffoldError(f"a task named {name!r} is already installed (entry point in group {GROUP!r}): "
                            f"choose another name (nothing was written)")


def render_template(text: str, **fields: str) -> str:
    for key, value in fields.items():
        text = text.replace("{{" + key + "}}", value)
    leftover = re.findall(r"\{\{\w+\}\}", text)
    if leftover:  # a template bug, not a user error
        raise RuntimeError(f"unfilled template fields: {sorted(set(leftover))}")
    return text


def class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_") if part) + "Task"


def scaffold(name: str, shape: str, tasks_dir: Path | str | None = None, title: str | None = None,
             package_dir: Path | str | None = None) -> Path:
    """Write ``tasks_dir/name/`` for ``shape`` -- or, with ``package_dir``, an installable package there
    (``pyproject.toml`` with the entry point, ``name/`` with its weights folder inside). Returns the plugin's
    folder. Raises ScaffoldError for a bad request."""
    if shape not in SHAPES:
        raise ScaffoldError(f"unknown shape {shape!r}; valid shapes are: {', '.join(SHAPES)}")
    if package_dir is not None:
        root = Path(package_dir)
        if root.exists() and any(root.iterdir()):
            raise ScaffoldError(f"{root} exists and is not empty: choose a new folder (nothing was written)")
        target, module = root / name, name
    else:
        root = Path(tasks_dir or REPO / "tasks")
        target, module = root / name, f"{root.name}.{name}"
    validate_name(name, target, top_level=package_dir is not None)
    title = " ".join((title or name.replace("_", " ").capitalize()).split())
    if not title or len(title) > 60 or any(c in title for c in '"\\{}'):
        raise ScaffoldError("the title must be 1-60 characters, without quotes, backslashes or braces")
    fields = dict(name=name, NAME=name.upper(), title=title, Class=class_name(name), shape=shape, module=module)
    task_file = render_template((TEMPLATES / f"{shape}.py.tmpl").read_text(encoding="utf-8"), **fields)
    files = {
        "__init__.py": task_file,
        "page.py": render_template((TEMPLATES / f"page_{shape}.py.tmpl").read_text(encoding="utf-8"), **fields),
        "__main__.py": MAIN.format(module=module),
    }
    if package_dir is not None:
        anchor = "\n    data_source = "
        if anchor not in task_file:  # a template bug, not a user error
            raise RuntimeError(f"template {shape}.py.tmpl has no data_source line to put weights_dir after")
        at = task_file.index(anchor) + 1
        task_file = task_file[:at] + WEIGHTS_LINE.format(name=name) + task_file[at:]
        stdlib = "from dataclasses import asdict, dataclass\n"  # weights_dir needs Path: imported beside it
        if stdlib not in task_file:  # a template bug, not a user error
            raise RuntimeError(f"template {shape}.py.tmpl has no dataclasses import to put the Path import after")
        files["__init__.py"] = task_file.replace(stdlib, stdlib + "from pathlib import Path\n", 1)
    root.mkdir(parents=True, exist_ok=True)
    target.mkdir()
    for fname, text in files.items():
        (target / fname).write_text(text, encoding="utf-8")
    if package_dir is not None:
        (target / "weights" / name).mkdir(parents=True)  # core.train writes model.safetensors + card.json here
        dist = "rnnlab-" + name.replace("_", "-")
        (root / "pyproject.toml").write_text(PYPROJECT.format(dist=dist, title=title, name=name), encoding="utf-8")
    return target


def check_scaffold(target: Path) -> list[str]:
    """Import the written plugin on its own (as <dir>.<name>, or <name> in a package) and run core.task.check_task
    on its TASK."""
    from core.task import check_task

    packaged = (target.parent / "pyproject.toml").is_file()
    modname = target.name if packaged else f"{target.parent.name}.{target.name}"
    spec = importlib.util.spec_from_file_location(modname, target / "__init__.py",
                                                  submodule_search_locations=[str(target)])
    module = importlib.util.module_from_spec(spec)
    saved = sys.modules.get(modname)
    sys.modules[modname] = module
    try:
        spec.loader.exec_module(module)
        return check_task(getattr(module, "TASK", None))
    finally:  # leave no trace: a later import (the registry's) must find the package the normal way
        if saved is None:
            sys.modules.pop(modname, None)
        else:
            sys.modules[modname] = saved


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.new_task", description=__doc__.splitlines()[0])
    ap.add_argument("name", help="lower_snake_case task name: the folder, the weights folder and the URL")
    ap.add_argument("--shape", required=True, choices=SHAPES, help="which of the five RNN shapes")
    ap.add_argument("--title", help="title shown in the navigation (default: from the name)")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--dir", default=str(REPO / "tasks"), help="the tasks folder to write into (default: tasks/)")
    where.add_argument("--package", metavar="DIR", help="write an installable package into DIR instead: pyproject.toml "
                       "with the rnnlab.tasks entry point, the weights folder inside the package")
    ap.add_argument("--no-check", action="store_true", help="skip importing the new plugin to check it")
    args = ap.parse_args(argv)
    try:
        target = scaffold(args.name, args.shape, args.dir, args.title, package_dir=args.package)
    except ScaffoldError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not args.no_check:
        problems = check_scaffold(target)
        if problems:  # should never happen; say so loudly rather than leave a broken plugin silently
            print(f"error: the scaffold at {target} breaks the contract: " + "; ".join(problems), file=sys.stderr)
            return 1
    try:
        shown = target.relative_to(Path.cwd())
    except ValueError:
        shown = target
    if args.package:
        root = shown.parent
        steps = [(f"pip install --no-deps -e {root}", "RNN Lab finds it through its entry point"),
                 (f"python -m core.train {args.name} --synthetic", f"writes {args.name}/weights/{args.name}/ in the package"),
                 ("streamlit run streamlit_app.py", "its page is in the navigation")]
        width = max(len(cmd) for cmd, _ in steps) + 3
        print(f"wrote {root}/ (pyproject.toml; {args.name}/: __init__.py, page.py, __main__.py, weights/): an installable "
              f"{args.shape} task that trains on toy data.\nnext:\n"
              + "".join(f"  {cmd:<{width}}# {why}\n" for cmd, why in steps)
              + f"then make it yours: docs/plugins.md; `pip install {root}` ships the trained weights with it")
        return 0
    print(f"wrote {shown}/ (__init__.py, page.py, __main__.py): a {args.shape} task that trains on toy data.\n"
          f"next:\n"
          f"  python -m core.train {args.name} --synthetic     # train it on its toy data (seconds)\n"
          f"  streamlit run streamlit_app.py                   # its page is in the navigation\n"
          f"then make it yours: docs/plugins.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
