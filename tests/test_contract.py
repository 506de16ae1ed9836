"""The contract suite: every discovered task (tasks/ and installed entry points), one test id per task name.

Checks fields, forward/backward on the tiny synthetic data, one training step, every demo input, the inspector,
the page in AppTest, and the weights card against the weights file, the model and the recipe."""

from __future__ import annotations

import copy
import math
import os

import pytest
import rnnlab_fixture
import torch

from core.inspect import inspect_model
from core.registry import discover
from core.task import BadInput, Task, check_task
from core.train import fit, to_device
from core.weights import CARD_FILE, WEIGHTS_FILE, load_model, sha256_file

REGISTRY = discover()
TASKS: dict[str, Task] = dict(REGISTRY.tasks)
TASKS.setdefault(rnnlab_fixture.TASK.name, rnnlab_fixture.TASK)  # the suite checks itself on the fixture too
NAMES = sorted(TASKS)


def test_no_plugin_errors_in_the_repo():
    errors = [f"{e.source}: {e.error}" for e in REGISTRY.errors]
    assert not errors, "\n".join(errors)


@pytest.fixture(scope="module")
def synthetic():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = TASKS[name].synthetic_data(0)
        return cache[name]

    return get


def _model(task, splits):
    torch.manual_seed(0)
    return task.build_model(copy.deepcopy(task.config), splits.meta)


def _served(task, splits):
    """The trained model where weights exist (demos are meant for it), else a fresh one from synthetic meta."""
    if (task.weights_path() / CARD_FILE).exists():
        return load_model(task)
    return _model(task, splits).eval()


@pytest.mark.parametrize("name", NAMES)
def test_fields(name):
    task = TASKS[name]
    assert check_task(task) == []
    assert task.recipe.metric and isinstance(task.recipe.epochs, int)
    for v, over in task.recipe.variants.items():
        assert isinstance(v, str) and isinstance(over, dict)


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_and_one_training_step(name, synthetic):
    task = TASKS[name]
    splits = synthetic(name)
    model = _model(task, splits)
    model.train()
    batch = next(iter(task.batches(splits.train, 4, shuffle=True, seed=0)))
    loss = task.loss(model, to_device(batch, torch.device("cpu")))
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads), "no parameter received a gradient"
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recipe = copy.deepcopy(task.recipe)
    recipe.epochs, recipe.batch_size, recipe.max_minutes = 1, 4, None
    res = fit(model, task, splits, recipe, torch.device("cpu"), progress=False, max_steps=1)
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert task.recipe.metric in res.best_val
    metrics = task.evaluate(model, splits.test)
    assert all(isinstance(v, (int, float)) for v in metrics.values())
    assert task.recipe.metric in metrics and not math.isnan(float(metrics[task.recipe.metric]))


@pytest.mark.parametrize("name", NAMES)
def test_demos_predict(name, synthetic):
    task = TASKS[name]
    demos = task.demos()
    assert demos, "a task needs at least one demo input"
    model = _served(task, synthetic(name))
    for d in demos:
        out = task.predict(model, d.input)
        assert isinstance(out, dict) and out, f"predict({d.label!r}) must return a non-empty dict"


@pytest.mark.parametrize("name", NAMES)
def test_inspector_runs_on_first_demo(name, synthetic):
    task = TASKS[name]
    model = _served(task, synthetic(name))
    demo = task.demos()[0]
    ins = inspect_model(model, lambda m: task.inspect_loss(m, demo.input))
    assert len(ins.hidden) > 0 and ins.hidden.grad_norm.map(math.isfinite).all()
    assert (ins.params.grad_norm > 0).any()
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_empty_input_is_a_clear_message_or_an_answer(name, synthetic):
    task = TASKS[name]
    if task.primary_input != "text":
        pytest.skip("input is not free text")
    model = _served(task, synthetic(name))
    for bad in ("", "   ", "\x00\x01", "<script>alert(1)</script>", "😀" * 50):
        try:
            out = task.predict(model, bad)
            assert isinstance(out, dict)
        except BadInput as e:
            assert str(e)


@pytest.mark.parametrize("name", NAMES)
def test_weights_card_matches_reality(name):
    task = TASKS[name]
    folder = task.weights_path()
    if not (folder / CARD_FILE).exists():
        pytest.skip(f"no trained weights yet for {name} ({task.train_command()})")
    model = load_model(task)  # checksum + strict load
    card = model.card
    assert card.name == name and card.shape == task.shape
    assert card.weights_sha256 == sha256_file(folder / WEIGHTS_FILE)
    assert card.num_params == sum(p.numel() for p in model.parameters())
    assert task.recipe.metric in card.metrics, "the card must carry the task's held-out metric"
    assert not card.dataset.synthetic, "committed weights must be trained on the real data"
    assert card.dataset.files and all(len(f.sha256) == 64 for f in card.dataset.files)
    assert f"core.train {name}" in card.training.command
    served = card.served_variant
    ens = card.ensemble
    if ens:  # served as an ensemble (core.ensemble): its own test metrics, the served variant first
        from core.serving import load_served

        assert card.metrics == ens.test and ens.members[0] == served
        assert all(card.comparison[m].weights_file for m in ens.members[1:])
        assert load_served(task).has_ensemble and "core.ensemble " + name in ens.command
        assert any(r.weights == ens.weights for r in ens.sweep), "the weights come from the sweep"
        assert any(r.weights[0] == 1.0 for r in ens.sweep), "the sweep must try the served model alone"
    else:
        assert card.comparison[served].test == card.metrics
    assert card.history[served], "training history missing"
    for variant in card.variant_weights():
        load_model(task, variant=variant)
    assert (folder / WEIGHTS_FILE).stat().st_size <= 30 * 2**20


PAGE_SCRIPT = """
import importlib, sys
sys.path[:0] = {paths!r}
import rnnlab_fixture
from core.registry import discover
reg = discover()
if {name!r} not in reg.tasks:
    reg.add(rnnlab_fixture.TASK, "fixture")
task = reg.get({name!r})
mod, fn = task.page.split(":")
getattr(importlib.import_module(mod), fn)(task)
"""


def page_app(name: str):
    """The task's page in AppTest (not run yet): the repository's tasks plus the fixture plugin."""
    from streamlit.testing.v1 import AppTest

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = [repo, os.path.join(repo, "tests", "plugins", "rnnlab-fixture")]
    return AppTest.from_string(PAGE_SCRIPT.format(paths=paths, name=name), default_timeout=120)


def ensemble_page(name: str):
    """The task's page in AppTest, run once, when its committed weights are served as an ensemble (else skip)."""
    from core.weights import read_card

    folder = TASKS[name].weights_path()
    if not (folder / CARD_FILE).exists() or read_card(folder).ensemble is None:
        pytest.skip(f"the committed {name} weights are not an ensemble")
    at = page_app(name).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


@pytest.mark.parametrize("name", NAMES)
def test_page_renders_in_apptest(name):
    at = page_app(name)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert len(at.tabs) >= 3, "a task page has Try it / Inspect / Model card tabs"
