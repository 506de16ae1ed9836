"""No import cycle among the project's own modules (core/, bench/), counting imports inside functions too.

Two kinds of import never run when a module is imported, so they cannot close a cycle and are left out: those
under ``if TYPE_CHECKING:`` and those under ``if __name__ == "__main__":`` (there the module runs as __main__, a
module of its own: ``python -m core.train`` hands over to core.cli.train that way)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "bench")


def module_files(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the packages (a package is named by its __init__)."""
    mods = {}
    for pkg in packages:
        for f in sorted((root / pkg).rglob("*.py")):
            parts = f.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            mods[name] = f
    return mods


def _never_run(test: ast.expr) -> bool:
    """An ``if`` whose body does not run on import: TYPE_CHECKING, or __name__ == "__main__"."""
    if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
        return True
    if isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING":
        return True
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators))


def imported(tree: ast.AST, own: str, known: set[str]) -> set[str]:
    """The project modules that ``tree`` (module ``own``) imports, at any depth, as named modules: ``from core
    import paths`` imports core.paths; ``from core.paths import X`` imports core.paths."""
    out: set[str] = set()
    package = own if (own in known and any(k.startswith(own + ".") for k in known)) else own.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _never_run(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name in known:
                    out.add(a.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for a in node.names:
                if f"{base}.{a.name}" in known:
                    out.add(f"{base}.{a.name}")
                elif base in known:
                    out.add(base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    out.discard(own)
    return out


def import_graph(root: Path = REPO, packages=PACKAGES) -> dict[str, set[str]]:
    mods = module_files(root, packages)
    known = set(mods)
    return {m: imported(ast.parse(f.read_text(encoding="utf-8")), m, known) for m, f in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative), each sorted."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_cycle_in_core_or_bench():
    graph = import_graph()
    found = cycles(graph)
    lines = [" <-> ".join(c) + "\n    " + "\n    ".join(f"{m} imports {sorted(graph[m] & set(c))}" for m in c)
             for c in found]
    assert not found, "import cycles:\n" + "\n".join(lines)


def test_the_runtime_never_imports_a_command():
    graph = import_graph()
    commands = {m for m in graph if m.startswith("core.cli")}
    runtime = {m for m in graph if m.startswith("core") and not m.startswith(("core.cli", "core.ui"))}
    bad = {m: sorted(graph[m] & commands) for m in runtime if graph[m] & commands}
    assert not bad, f"runtime modules importing command modules: {bad}"


@pytest.mark.parametrize("source, expect", [
    ("import a.b\n", [["a.b", "m"]]),
    ("def f():\n    from a import b\n", [["a.b", "m"]]),
    ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a.b\n", []),
    ("if __name__ == '__main__':\n    import a.b\n", []),
])
def test_the_checker_sees_a_cycle_through_a_function(source, expect):
    known = {"m", "a", "a.b"}
    graph = {"m": imported(ast.parse(source), "m", known), "a": set(), "a.b": {"m"}}
    assert cycles(graph) == expect
