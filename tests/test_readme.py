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
