"""The contract suite: every discovered task (tasks/ and installed entry points), one test id per task name.

Each test runs one of core.contract's checks (the same ones ``python -m core.check <task>`` runs): fields,
forward/backward and one training step on the tiny synthetic data, every demo input, the inspector, odd input, the
weights card against the weights file, the model and the recipe; and the page in AppTest (core.ui.render_check)."""

from __future__ import annotations

import os

import pytest
import rnnlab_fixture

from core import contract
from core.registry import discover
from core.task import Task
from core.ui.render_check import page_app as _page_app
from core.ui.render_check import render_problems
from core.weights import CARD_FILE

REGISTRY = discover()
TASKS: dict[str, Task] = dict(REGISTRY.tasks)
TASKS.setdefault(rnnlab_fixture.TASK.name, rnnlab_fixture.TASK)  # the suite checks itself on the fixture too
NAMES = sorted(TASKS)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


@pytest.mark.parametrize("name", NAMES)
def test_fields(name):
    assert contract.fields(TASKS[name]) == []


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_and_one_training_step(name, synthetic):
    assert contract.training_step(TASKS[name], synthetic(name)) == []


@pytest.mark.parametrize("name", NAMES)
def test_demos_predict(name, synthetic):
    task = TASKS[name]
    assert contract.demos(task, contract.served_or_fresh(task, synthetic(name))) == []


@pytest.mark.parametrize("name", NAMES)
def test_inspector_runs_on_first_demo(name, synthetic):
    task = TASKS[name]
    assert contract.inspector(task, contract.served_or_fresh(task, synthetic(name))) == []


@pytest.mark.parametrize("name", NAMES)
def test_empty_input_is_a_clear_message_or_an_answer(name, synthetic):
    task = TASKS[name]
    if task.primary_input != "text":
        pytest.skip("input is not free text")
    assert contract.empty_input(task, contract.served_or_fresh(task, synthetic(name))) == []


@pytest.mark.parametrize("name", NAMES)
def test_weights_card_matches_reality(name):
    problems = contract.weights_card(TASKS[name])
    if problems is None:
        pytest.skip(f"no trained weights yet for {name} ({TASKS[name].train_command()})")
    assert problems == []


def page_app(name: str):
    """The task's page in AppTest (not run yet): the repository's tasks plus the fixture plugin."""
    return _page_app(name, [REPO, os.path.join(REPO, "tests", "plugins", "rnnlab-fixture")], "rnnlab_fixture")


def typed_page(name: str, label: str, text: str | None = None):
    """The task's page in AppTest, run, then (given ``text``) with it typed into the text box or area ``label``;
    no exception on it either time."""
    at = page_app(name).run()
    if text is not None:
        next(t for t in [*at.text_area, *at.text_input] if t.label == label).set_value(text).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


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
    assert render_problems(at) == []
