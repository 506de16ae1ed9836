"""Plugin discovery: tasks/ packages and the rnnlab.tasks entry-point group; broken plugins are contained."""

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

from core.registry import discover
from core.task import check_task

REPO = Path(__file__).resolve().parent.parent


def register_entry_points(root: Path, dist: str, eps: dict[str, str]) -> None:
    """Make an installed-distribution record under ``root`` (on sys.path) declaring rnnlab.tasks entry points:
    exactly what pip writes, read by importlib.metadata the same way."""
    info = root / f"{dist}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    lines = "\n".join(f"{k} = {v}" for k, v in eps.items())
    (info / "entry_points.txt").write_text(f"[rnnlab.tasks]\n{lines}\n")


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    for pkg in ("rnnlab-fixture", "rnnlab-broken"):
        monkeypatch.syspath_prepend(str(REPO / "tests" / "plugins" / pkg))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return tmp_path


def test_third_party_plugin_found_through_entry_point(plugin_path):
    register_entry_points(plugin_path, "rnnlab_fixture", {"fixture_sign": "rnnlab_fixture:TASK"})
    reg = discover(tasks_dir=plugin_path / "none")
    assert "fixture_sign" in reg.tasks
    assert reg.sources["fixture_sign"].startswith("entry point fixture_sign")


def test_entry_points_can_be_turned_off(plugin_path, monkeypatch):
    register_entry_points(plugin_path, "rnnlab_fixture", {"fixture_sign": "rnnlab_fixture:TASK"})
    monkeypatch.setenv("RNNLAB_NO_ENTRY_POINTS", "1")
    assert "fixture_sign" not in discover(tasks_dir=plugin_path / "none").tasks


def test_broken_entry_point_is_reported_not_fatal(plugin_path):
    register_entry_points(plugin_path, "rnnlab_pair", {"fixture_sign": "rnnlab_fixture:TASK",
                                                       "broken": "rnnlab_broken:TASK"})
    reg = discover(tasks_dir=plugin_path / "none")
    assert "fixture_sign" in reg.tasks
    errs = [e for e in reg.errors if "broken" in e.source]
    assert errs and "fails at import on purpose" in errs[0].error and "Traceback" in errs[0].detail


def _write_pkg(root: Path, name: str, body: str) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text(textwrap.dedent(body))


def _tasks_dir(tmp_path: Path, monkeypatch, name: str) -> Path:
    """An empty tasks package ``name`` under tmp_path, importable, with the fixture plugin importable beside it."""
    pkgdir = tmp_path / name
    pkgdir.mkdir()
    (pkgdir / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(REPO / "tests" / "plugins" / "rnnlab-fixture"))
    return pkgdir


def test_tasks_dir_isolation_and_duplicates(tmp_path, monkeypatch):
    pkgdir = _tasks_dir(tmp_path, monkeypatch, "mytasks_iso")
    _write_pkg(pkgdir, "good", "from rnnlab_fixture import TASK\n")
    _write_pkg(pkgdir, "zdup", "from rnnlab_fixture import SignTask\nTASK = SignTask()\n")
    _write_pkg(pkgdir, "raises", "raise ImportError('no module named nonexistent_dep')\n")
    _write_pkg(pkgdir, "notask", "X = 1\n")
    _write_pkg(pkgdir, "wrongtype", "TASK = 'a string'\n")
    _write_pkg(pkgdir, "_private", "raise SystemExit('must be skipped')\n")
    reg = discover(tasks_dir=pkgdir, entry_points_on=False)
    assert list(reg.tasks) == ["fixture_sign"]
    by_src = {e.source.split("/")[-1]: e.error for e in reg.errors}
    assert "duplicate task name 'fixture_sign'" in by_src["zdup"]
    assert "nonexistent_dep" in by_src["raises"]
    assert "no TASK" in by_src["notask"]
    assert "instance of core.task.Task" in by_src["wrongtype"]
    assert "_private" not in by_src
    assert [e.duplicate for e in reg.errors if e.duplicate] == ["fixture_sign"]


def test_a_command_line_says_when_two_plugins_claim_a_name(tmp_path, monkeypatch, capsys):
    """python -m core.train / evaluate / ensemble name the plugin that was left out for a duplicate name."""
    import core.registry as registry
    from core.cli.common import cli_task

    pkgdir = _tasks_dir(tmp_path, monkeypatch, "mytasks_dup")
    _write_pkg(pkgdir, "a_first", "from rnnlab_fixture import TASK\n")
    _write_pkg(pkgdir, "b_second", "from rnnlab_fixture import SignTask\nTASK = SignTask()\n")
    real = registry.discover
    monkeypatch.setattr(registry, "discover", lambda: real(tasks_dir=pkgdir, entry_points_on=False))
    assert cli_task("fixture_sign").name == "fixture_sign"
    err = capsys.readouterr().err
    assert "mytasks_dup/b_second also calls itself 'fixture_sign' and was left out" in err
    assert "from mytasks_dup/a_first" in err


def test_check_task_lists_problems(fixture_task):
    import copy

    t = copy.copy(fixture_task)
    assert check_task(t) == []
    t.shape, t.name = "sideways", "Bad Name"
    probs = " ".join(check_task(t))
    assert "shape 'sideways'" in probs and "lower_snake_case" in probs


def test_importing_core_and_tasks_never_imports_streamlit():
    code = ("import sys; import core, core.train, core.evaluate, core.inspect, core.registry; "
            "core.registry.discover(); "
            "bad = [m for m in sys.modules if m == 'streamlit' or m.startswith('streamlit.')]; "
            "assert not bad, bad[:3]")
    import subprocess

    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
