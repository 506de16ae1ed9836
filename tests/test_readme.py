"""The README's code blocks are true: the core API example runs and both set-up commands exist."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def test_core_api_example_runs(capsys):
    block = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    assert len(block.strip().splitlines()) <= 11
    exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "grad_norm" in out and "spectral_radius" in out and "total_before" in out


def test_setup_commands_point_at_real_scripts():
    cmds = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    assert "bash scripts/run-app.sh" in cmds and "bash scripts/test.sh" in cmds
    ci = (REPO / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci
    for script in ("scripts/run-app.sh", "scripts/test.sh"):
        assert (REPO / script).exists()


def test_models_table_matches_the_cards():
    """The README's Models table is exactly what scripts/models_table.py makes from the weights cards."""
    import subprocess
    import sys

    readme = (REPO / "README.md").read_text()
    start, end = "<!-- models-table:start -->\n", "\n<!-- models-table:end -->"
    assert start in readme and end in readme
    shown = readme.split(start, 1)[1].split(end, 1)[0]
    made = subprocess.run([sys.executable, "scripts/models_table.py"], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout.rstrip("\n")
    assert shown == made, "README's Models table is stale: run python scripts/models_table.py and paste it"


def test_the_readme_is_short_and_its_links_lead_somewhere():
    """What it is, the two commands, the API, what is where, the models, where the rest is: under 200 lines, and
    every relative link (README and docs/) names a file that exists."""
    assert len(README.splitlines()) < 200
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def _models_table():
    import importlib.util

    spec = importlib.util.spec_from_file_location("models_table", REPO / "scripts" / "models_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_models_table_leaves_out_tasks_the_repository_does_not_hold(tmp_path, monkeypatch):
    """A task just scaffolded into tasks/ (not committed) and an installed third-party plugin are left out of the
    table, so neither breaks the check above; the repository's own tasks all stay in it."""
    import importlib
    import sys
    import uuid

    from core import new_task
    from core.registry import discover

    table = _models_table()
    before = table.rows()
    pkg = f"tasks_{uuid.uuid4().hex[:8]}"
    new_task.scaffold("fresh_task", "many_to_one", tmp_path / pkg)
    new_task.scaffold("third_party", "one_to_one", tmp_path / pkg)
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = discover()
    repo_names = table.repository_tasks(reg)
    reg.add(importlib.import_module(f"{pkg}.fresh_task"), "tasks/fresh_task")  # as discover() names tasks/ folders
    reg.add(importlib.import_module(f"{pkg}.third_party"), "entry point third_party = other_pkg:TASK")
    assert {"fresh_task", "third_party"} <= set(reg.tasks)
    assert table.repository_tasks(reg) == repo_names
    assert table.rows(reg) == before
    assert "names_origin" in repo_names and "sentiment" in repo_names  # tasks/ and examples/ both count
    sys.modules.pop(f"{pkg}.fresh_task", None)
    sys.modules.pop(f"{pkg}.third_party", None)


def test_headlines_are_named_in_the_tasks_words():
    """Every headline's words are its task's Display label; a headline the Display cannot name breaks the contract;
    a task that declares none shows its recipe's metric."""
    from core.registry import discover
    from core.task import Headline, check_task

    reg = discover()
    for task in reg.tasks.values():
        for head in task.headline_metrics():
            assert task.display.metric(head.key) is not None, (task.name, head.key)
    task = reg.get("names_generate")
    assert task.headlines == () and task.headline_metrics() == (Headline(task.recipe.metric),)
    broken = type(task)()
    broken.headlines = (Headline("no_such_metric"),)
    assert any("no_such_metric" in p for p in check_task(broken))
