"""docs/plugins.md: every command in its ```bash blocks runs, in the guide's order, and succeeds.

The commands run exactly as written, from the root of a temporary copy of the repository, so they never leave a
file in the real one: the scaffold goes into the copy's tasks/, its weights into the copy's weights/. ``pip
install`` is pointed at a temporary target folder (PIP_TARGET, on PYTHONPATH for the later commands), so the
test's own environment is untouched too. ``streamlit run`` passes when the server answers its health check.

The slow ones (a pip build, the contract suite, a Streamlit server) are marked slow; the rest are the newcomer's
path and run in the default suite."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bench._common import free_port

REPO = Path(__file__).resolve().parent.parent
GUIDE = REPO / "docs" / "plugins.md"
SLOW = ("pip install", "python -m pytest", "python -m core.check", "streamlit run")
_IGNORE_ANYWHERE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache",
                                          ".ruff_cache", "*.egg-info", "node_modules")


def copy_ignore(folder: str, names: list[str]) -> set[str]:
    """What not to copy: caches and builds anywhere; the repository's own weights/ (other tasks' models, maybe
    large), runs/ and screenshots/ at the top only -- a plugin package's weights inside examples/ are copied."""
    skip = set(_IGNORE_ANYWHERE(folder, names))
    if Path(folder).resolve() == REPO:
        skip |= {"weights", "runs", "screenshots"} & set(names)
    return skip


def guide_commands(text: str | None = None) -> list[str]:
    """Every command line of every ```bash block, in order (comments and blank lines skipped)."""
    text = GUIDE.read_text(encoding="utf-8") if text is None else text
    cmds = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                cmds.append(line)
    return cmds


COMMANDS = guide_commands()


def test_the_guide_has_the_three_command_path():
    assert COMMANDS[:3] == ["python -m core.new_task my_task --shape many_to_one",
                            "python -m core.train my_task --synthetic",
                            "streamlit run streamlit_app.py"]
    assert any(c.startswith("python -m core.evaluate my_task") for c in COMMANDS)
    assert any(c.startswith("pip install ./examples/") for c in COMMANDS)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A copy of the repository (code only) beside a link to the real ../shared, and the environment to run in."""
    root = tmp_path_factory.mktemp("docs")
    repo = root / "repo"
    shutil.copytree(REPO, repo, ignore=copy_ignore)
    (repo / "weights").mkdir(exist_ok=True)
    shared = REPO.parent / "shared"
    if shared.exists():
        (root / "shared").symlink_to(shared, target_is_directory=True)
    site = root / "site"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RNNLAB_", "PIP_", "STREAMLIT_"))}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
               PYTHONPATH=str(site), PIP_TARGET=str(site), PIP_NO_DEPS="1", PIP_NO_BUILD_ISOLATION="false",
               PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONDONTWRITEBYTECODE="1", RNNLAB_TORCH_THREADS="1",
               OMP_NUM_THREADS="1")
    return {"repo": repo, "env": env, "failed": []}


def _serve(cmd: str, repo: Path, env: dict, timeout: float = 90.0) -> None:
    """Start the server command, wait for Streamlit's health check and the page, then stop it."""
    port = free_port()
    env = {**env, "STREAMLIT_SERVER_HEADLESS": "true", "STREAMLIT_SERVER_PORT": str(port),
           "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"}
    proc = subprocess.Popen(cmd, shell=True, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        deadline, ok = time.time() + timeout, False
        while time.time() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    ok = r.read().decode().strip() == "ok"
                if ok:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                        assert r.status == 200
                    break
            except OSError:
                time.sleep(0.5)
        assert ok, f"`{cmd}` did not come up (exit {proc.poll()})"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the whole process group we started, nothing else
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    assert "Traceback" not in (out or ""), out[-3000:]


def _params():
    for i, cmd in enumerate(COMMANDS):
        marks = [pytest.mark.slow] if cmd.startswith(SLOW) else []
        yield pytest.param(i, cmd, id=f"{i:02d} {cmd[:60]}", marks=marks)


@pytest.mark.parametrize("index,cmd", list(_params()))
def test_guide_command(workspace, index, cmd):
    repo, env = workspace["repo"], workspace["env"]
    if "../shared" in cmd and not (repo.parent / "shared").exists():
        pytest.skip("the real data (../shared) is not on this machine")
    if workspace["failed"]:
        pytest.skip(f"an earlier command of the guide failed: {workspace['failed'][0]}")
    try:
        if cmd.startswith("streamlit run"):
            _serve(cmd, repo, env)
            return
        out = subprocess.run(cmd, shell=True, cwd=repo, env=env, capture_output=True, text=True, timeout=540)
        assert out.returncode == 0, f"`{cmd}` exited {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        if cmd.startswith("python -m core.evaluate"):
            assert "reproduced: the card's metrics match" in out.stdout, out.stdout
        if cmd.startswith("python -m core.new_task"):  # the app's registry finds it at once, before training
            probe = subprocess.run([sys.executable, "-c", "from core.registry import discover; r = discover(); "
                                    "print(sorted(r.tasks)); print([e.error for e in r.errors if 'my_task' in "
                                    "e.source])"], cwd=repo, env=env, capture_output=True, text=True, timeout=300)
            assert "'my_task'" in probe.stdout.splitlines()[0] and probe.stdout.splitlines()[1] == "[]", probe
    except BaseException:
        workspace["failed"].append(cmd)
        raise
    assert not (REPO / "tasks" / "my_task").exists(), "a guide command wrote into the real repository"


def test_the_plugins_page_quick_start_is_the_guide_s():
    """The Plugins page's quick start runs as written: its commands are the guide's first ones, which this file runs."""
    from core.ui.pages.plugins import QUICK_START

    assert [cmd for cmd, _ in QUICK_START] == COMMANDS[:len(QUICK_START)]
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for cmd in re.findall(r"`(python -m core\.new_task [^`]*)`", readme):
        assert cmd.replace("<name>", "my_task") in COMMANDS, cmd
