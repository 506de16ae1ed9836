"""CUDA paths, for machines with a GPU (skipped elsewhere; CI has none): every task trains a few steps on the GPU
under bf16 autocast as core.train does, predicts from GPU weights after a CPU round trip, and the inspector reads
gradients from a GPU model in eval mode (where backward through cuDNN's fused RNN would fail)."""

from __future__ import annotations

import copy

import pytest
import torch

from core.inspect import inspect_model
from core.registry import discover
from core.task import Recipe
from core.train import fit, to_device

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

TASKS = dict(discover().tasks)
NAMES = sorted(TASKS)


@pytest.mark.parametrize("name", NAMES)
def test_task_trains_on_cuda_and_serves_on_cpu(name):
    task = TASKS[name]
    splits = task.synthetic_data(0)
    torch.manual_seed(0)
    model = task.build_model(copy.deepcopy(task.config), splits.meta)
    recipe = Recipe(metric=task.recipe.metric, higher_is_better=task.recipe.higher_is_better, epochs=1,
                    batch_size=8, lr=1e-3)
    res = fit(model, task, splits, recipe, torch.device("cuda"), progress=False, max_steps=3)
    assert all(p.device.type == "cuda" for p in model.parameters())
    assert res.history and torch.isfinite(torch.tensor(res.history[0].train_loss))
    with torch.no_grad():
        val = task.evaluate(model, splits.val)
    assert task.recipe.metric in val
    demo = task.demos()[0]
    cpu = model.cpu().eval()
    with torch.inference_mode():
        out = task.predict(cpu, demo.input)
    assert isinstance(out, dict) and out


@pytest.mark.parametrize("name", NAMES)
def test_inspector_on_cuda_model_in_eval_mode(name):
    task = TASKS[name]
    splits = task.synthetic_data(0)
    torch.manual_seed(0)
    model = task.build_model(copy.deepcopy(task.config), splits.meta).cuda().eval()
    demo = task.demos()[0]
    try:
        ins = inspect_model(model, lambda m: task.inspect_loss(m, demo.input))
    except ValueError as exc:  # a demo the task cannot inspect says so; anything else is a failure
        pytest.skip(str(exc))
    assert len(ins.hidden) and (ins.hidden.grad_norm >= 0).all()


def test_batches_move_to_cuda():
    batch = {"x": torch.zeros(2, 3), "n": [torch.ones(1)], "s": "text"}
    moved = to_device(batch, torch.device("cuda"))
    assert moved["x"].is_cuda and moved["n"][0].is_cuda and moved["s"] == "text"
