"""core.new_task: every shape's scaffold is a working plugin as written, and bad names are refused.

The scaffolds are written into a temporary folder (``--dir``), never into tasks/."""

from __future__ import annotations

import copy
import importlib
import math
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch

from core import new_task
from core.inspect import inspect_model
from core.shapes import SHAPES
from core.task import Task, check_task
from core.train import fit, to_device

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def scaffolds(tmp_path_factory):
    """All five shapes scaffolded into one temporary tasks folder, imported as <pkg>.<shape>."""
    root = tmp_path_factory.mktemp("scaffolds")
    pkg = f"sc_{uuid.uuid4().hex[:8]}"  # a fresh package name: nothing cached in sys.modules
    for shape in SHAPES:
        new_task.scaffold(f"my_{shape}", shape, root / pkg)
    sys.path.insert(0, str(root))
    try:
        yield {shape: importlib.import_module(f"{pkg}.my_{shape}") for shape in SHAPES}, root / pkg
    finally:
        sys.path.remove(str(root))


@pytest.mark.parametrize("shape", SHAPES)
def test_scaffold_passes_check_task(scaffolds, shape):
    mod = scaffolds[0][shape]
    task = mod.TASK
    assert isinstance(task, Task) and check_task(task) == []
    assert task.name == f"my_{shape}" and task.shape == shape
    assert task.page == f"{mod.__name__}.page:render"
    assert "streamlit" not in mod.__dict__  # the plugin module itself never imports Streamlit
    files = sorted(p.name for p in (scaffolds[1] / f"my_{shape}").iterdir() if p.is_file())
    assert files == ["__init__.py", "__main__.py", "page.py"]


@pytest.mark.parametrize("shape", SHAPES)
def test_scaffold_trains_one_step_and_serves(scaffolds, shape):
    task = scaffolds[0][shape].TASK
    splits = task.synthetic_data(0)
    assert len(splits.train) and len(splits.val) and len(splits.test)
    torch.manual_seed(0)
    model = task.build_model(copy.deepcopy(task.config), splits.meta)
    batch = next(iter(task.batches(splits.train, 4, shuffle=True, seed=0)))
    loss = task.loss(model, to_device(batch, torch.device("cpu")))
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recipe = copy.deepcopy(task.recipe)
    recipe.epochs, recipe.max_minutes = 1, None
    res = fit(model, task, splits, recipe, torch.device("cpu"), progress=False, max_steps=1)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    metrics = task.evaluate(model, splits.test)
    assert task.recipe.metric in metrics and task.recipe.metric in res.best_val
    assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in metrics.values())
    for demo in task.demos():
        out = task.predict(model, demo.input)
        assert isinstance(out, dict) and out
    ins = inspect_model(model, lambda m: task.inspect_loss(m, task.demos()[0].input))
    assert len(ins.hidden) > 0 and (ins.params.grad_norm > 0).any()
    assert len(ins.saliency) == len(ins.labels)  # one label per step of the first recurrent layer


@pytest.mark.parametrize("shape", SHAPES)
def test_scaffold_real_format_round_trip(scaffolds, shape, tmp_path):
    """write_example_data (python -m tasks.<name> DIR) writes files that load_data reads back."""
    mod = scaffolds[0][shape]
    path = mod.TASK.write_example_data(tmp_path)
    splits = mod.TASK.load_data(tmp_path)
    assert splits.files == [path]
    assert len(splits.train) > len(splits.val) > 0 and len(splits.test) > 0
    assert splits.meta == mod.TASK.synthetic_data(0).meta  # same rows, same split, same vocabulary


def test_untrained_scaffold_says_how_to_train(scaffolds):
    task = scaffolds[0]["many_to_one"].TASK
    assert task.train_command() == "python -m core.train my_many_to_one --synthetic"


@pytest.mark.parametrize("bad", ["MyTask", "my-task", "1task", "my task", "", "_private", "class", "café", "x" * 41])
def test_refuses_bad_names(bad, tmp_path, capsys):
    assert new_task.main([bad, "--shape", "many_to_one", "--dir", str(tmp_path), "--no-check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_refuses_existing_name(tmp_path, capsys):
    assert new_task.main(["dup", "--shape", "many_to_one", "--dir", str(tmp_path), "--no-check"]) == 0
    before = (tmp_path / "dup" / "__init__.py").read_text()
    assert new_task.main(["dup", "--shape", "one_to_one", "--dir", str(tmp_path), "--no-check"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (tmp_path / "dup" / "__init__.py").read_text() == before  # untouched


def test_refuses_installed_task_name(tmp_path, capsys, monkeypatch):
    class EP:
        name = "taken_name"

    monkeypatch.setattr(new_task, "entry_points", lambda group: [EP()] if group == "rnnlab.tasks" else [])
    assert new_task.main(["taken_name", "--shape", "many_to_one", "--dir", str(tmp_path), "--no-check"]) == 2
    assert "already installed" in capsys.readouterr().err


def test_refuses_unknown_shape_and_bad_title(tmp_path):
    with pytest.raises(new_task.ScaffoldError, match="valid shapes"):
        new_task.scaffold("ok_name", "many_to_few", tmp_path)
    with pytest.raises(new_task.ScaffoldError, match="title"):
        new_task.scaffold("ok_name", "many_to_one", tmp_path, title='say "hi"')
    assert not (tmp_path / "ok_name").exists()


def test_cli_writes_a_checked_plugin(tmp_path):
    """The command itself, as a user runs it (it imports the result and runs check_task)."""
    out = subprocess.run([sys.executable, "-m", "core.new_task", "cli_task", "--shape", "encoder_decoder",
                          "--dir", str(tmp_path / "tasks_cli")], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "python -m core.train cli_task --synthetic" in out.stdout
    assert (tmp_path / "tasks_cli" / "cli_task" / "page.py").is_file()


@pytest.mark.skipif(shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists(),
                    reason="ruff not installed")
def test_scaffolds_pass_ruff_with_long_names(tmp_path):
    """The generated code is lint-clean under the repo's settings, even with the longest name and title allowed."""
    for shape in SHAPES:
        name = (f"n_{shape}_" + "x" * 40)[:40]
        new_task.scaffold(name, shape, tmp_path / "tasks_lint", title="T" * 60)
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    out = subprocess.run([ruff, "check", "--config", str(REPO / "pyproject.toml"), str(tmp_path / "tasks_lint")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


PAGE_SCRIPT = """
import importlib, sys
sys.path[:0] = [{repo!r}, {root!r}]
from pathlib import Path
mod = importlib.import_module({module!r})
task = mod.TASK
task.weights_dir = Path({weights!r})
page, fn = task.page.split(":")
getattr(importlib.import_module(page), fn)(task)
"""


@pytest.mark.parametrize("shape,trained", [("many_to_one", False)] + [(s, True) for s in SHAPES])
def test_scaffold_page_renders(scaffolds, tmp_path, shape, trained):
    """The page renders in AppTest: untrained it says how to train; trained (untrained weights, saved the way
    core.train saves them) it answers the first demo."""
    from streamlit.testing.v1 import AppTest

    from bench._common import untrained_card
    from core.weights import save_weights

    mods, folder = scaffolds
    mod = mods[shape]
    task = mod.TASK
    weights = tmp_path / "w"
    if trained:
        splits = task.synthetic_data(0)
        model = task.build_model(task.config, splits.meta)
        save_weights(weights, model, untrained_card(task, task.config, splits.meta, model))
    at = AppTest.from_string(PAGE_SCRIPT.format(repo=str(REPO), root=str(folder.parent), module=mod.__name__,
                                                weights=str(weights)), default_timeout=120)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert len(at.tabs) >= 3
    text = " ".join(str(m.value) for m in list(at.markdown) + list(at.warning) + list(at.code) + list(at.info))
    assert not at.error, [e.value for e in at.error]
    if trained:
        assert "No trained weights" not in text
    else:
        assert f"core.train {task.name} --synthetic" in text


def test_package_installs_trains_and_passes_the_check(tmp_path):
    """--package writes an installable plugin: pip installs it (no dependencies fetched), RNN Lab discovers it
    through its entry point, core.train writes its weights inside the installed package, and core.check passes
    (contract, weights card, the card's metrics reproduced) on the toy data written in the real format."""
    name = f"pkg_{uuid.uuid4().hex[:8]}"
    root, site, data = tmp_path / "plugin", tmp_path / "site", tmp_path / "data"
    out = subprocess.run([sys.executable, "-m", "core.new_task", name, "--shape", "many_to_one", "--package", str(root)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"pip install --no-deps -e {root}" in out.stdout
    pyproject = (root / "pyproject.toml").read_text()
    assert f'{name} = "{name}:TASK"' in pyproject and '[project.entry-points."rnnlab.tasks"]' in pyproject
    assert (root / name / "weights" / name).is_dir()
    task_file = (root / name / "__init__.py").read_text()
    assert "weights_dir = Path(__file__)" in task_file and f"python -m {name} DIR" in task_file
    assert len(task_file.splitlines()) < 80  # the shape class owns the rest (issue 35)
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                          "--target", str(site), str(root)], capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    env = {**__import__("os").environ, "PYTHONPATH": str(site)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)

    where = run("-c", f"from core.registry import discover; r = discover(); print(r.sources[{name!r}]); "
                      f"print(r.get({name!r}).weights_path())")
    assert where.returncode == 0, where.stderr
    source, weights = where.stdout.splitlines()
    assert source == f"entry point {name} = {name}:TASK"
    assert Path(weights) == site / name / "weights" / name
    assert run("-m", name, str(data)).returncode == 0  # the toy data in the real format
    train = run("-m", "core.train", name, "--data-dir", str(data), "--max-steps", "3", "--threads", "1", "--no-progress")
    assert train.returncode == 0, train.stderr
    assert (site / name / "weights" / name / "model.safetensors").is_file()
    check = run("-m", "core.check", name, "--data-dir", str(data), "--skip-page", "--threads", "1")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "every check passed" in check.stdout


def test_package_refuses_a_folder_in_use_or_a_taken_module_name(tmp_path, capsys):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert new_task.main(["fine_name", "--shape", "many_to_one", "--package", str(tmp_path / "busy"), "--no-check"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert new_task.main(["json", "--shape", "many_to_one", "--package", str(tmp_path / "p"), "--no-check"]) == 2
    assert "already importable" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
