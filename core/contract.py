"""The plugin contract, run: what every task must do, each check a function that returns its problems in words
(an empty list when the task passes). tests/test_contract.py runs them over every discovered task;
``python -m core.check <task>`` runs them over one, with the evaluation and the page.

    fields            check_task's rules, a recipe metric, variants as name -> config changes
    training_step     forward, backward and one optimizer step on the synthetic data; evaluate names the metric
    demos             every demo is of the task's input_type and answers with a non-empty dict (on the trained
                      model where weights exist, which carries its run-time record)
    inspector         gradients through time come out finite on the first demo, and leave no .grad behind
    empty_input       free text: empty, blank, control characters, markup, emoji -> an answer or a clear BadInput
    weights_card      the card matches the weights file, the model and the recipe (None: no weights yet)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch

from core.inspect import inspect_model
from core.runtime import Runtime
from core.task import BadInput, Splits, Task, check_task
from core.train import fit, to_device
from core.weights import CARD_FILE, WEIGHTS_FILE, load_model, sha256_file

HOSTILE_TEXT = ("", "   ", "\x00\x01", "<script>alert(1)</script>", "😀" * 50)
MAX_WEIGHTS_MB = 30  # a served weights file larger than this does not belong in the repository


def fresh_model(task: Task, splits: Splits) -> torch.nn.Module:
    """A new, seeded model for the synthetic data's vocabularies."""
    torch.manual_seed(0)
    return task.build_model(copy.deepcopy(task.config), splits.meta)


def served_or_fresh(task: Task, splits: Splits) -> torch.nn.Module:
    """The trained model where weights exist (demos are written for it), else a fresh one in eval mode."""
    if (task.weights_path() / CARD_FILE).exists():
        return load_model(task)
    return fresh_model(task, splits).eval()


def input_type_words(kind) -> str:
    """A declared input_type as the contract's messages name it: "str", "str | dict"."""
    return " | ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))


def fields(task: Task) -> list[str]:
    problems = list(check_task(task))
    if not task.recipe.metric:
        problems.append("the recipe names no metric")
    if not isinstance(task.recipe.epochs, int):
        problems.append("recipe.epochs must be an int")
    for v, over in task.recipe.variants.items():
        if not isinstance(v, str) or not isinstance(over, dict):
            problems.append(f"recipe.variants must map names to config changes (got {v!r}: {type(over).__name__})")
    return problems


def training_step(task: Task, splits: Splits) -> list[str]:
    problems = []
    model = fresh_model(task, splits)
    model.train()
    batch = next(iter(task.batches(splits.train, 4, shuffle=True, seed=0)))
    loss = task.loss(model, to_device(batch, torch.device("cpu")))
    if loss.dim() != 0 or not torch.isfinite(loss):
        return [f"loss must be a finite scalar (got shape {tuple(loss.shape)}, value {loss.detach().flatten()[:3]})"]
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    if not any(g is not None and g.abs().sum() > 0 for g in grads):
        problems.append("no parameter received a gradient from the loss")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    recipe = copy.deepcopy(task.recipe)
    recipe.epochs, recipe.batch_size, recipe.max_minutes = 1, 4, None
    res = fit(model, task, splits, recipe, torch.device("cpu"), progress=False, max_steps=1)
    if not any(not torch.equal(before[k], v) for k, v in model.state_dict().items()):
        problems.append("one training step changed no weight")
    if task.recipe.metric not in res.best_val:
        problems.append(f"evaluate on the validation split does not give the recipe's metric {task.recipe.metric!r}")
    metrics = task.evaluate(model, splits.test)
    bad = [k for k, v in metrics.items() if not isinstance(v, (int, float))]
    if bad:
        problems.append(f"evaluate must give numbers (not for {', '.join(bad)})")
    if task.recipe.metric not in metrics or (not bad and math.isnan(float(metrics[task.recipe.metric]))):
        problems.append(f"evaluate on the test split gives no number for {task.recipe.metric!r}")
    return problems


def demos(task: Task, model: torch.nn.Module) -> list[str]:
    found = task.demos()
    if not found:
        return ["a task needs at least one demo input"]
    rt = getattr(model, "runtime", None)
    if not isinstance(rt, Runtime) or rt.task != task.name:
        return [f"the model must carry its run-time record for {task.name!r} (model.runtime, set by Task.build_model)"]
    problems = []
    for d in found:
        if not isinstance(d.input, task.input_type):
            problems.append(f"demo {d.label!r} gives predict a {type(d.input).__name__}, not the task's input_type "
                            f"({input_type_words(task.input_type)})")
            continue
        out = task.predict(model, d.input)
        if not isinstance(out, dict) or not out:
            problems.append(f"predict({d.label!r}) must return a non-empty dict")
    return problems


def inspector(task: Task, model: torch.nn.Module) -> list[str]:
    demo = task.demos()[0]
    ins = inspect_model(model, lambda m: task.inspect_loss(m, demo.input))
    problems = []
    if len(ins.hidden) == 0 or not ins.hidden.grad_norm.map(math.isfinite).all():
        problems.append("no finite ||dL/dh_t|| for the first demo (inspect_loss must reach the recurrent layers)")
    if not (ins.params.grad_norm > 0).any():
        problems.append("inspect_loss gives no parameter a gradient")
    if any(p.grad is not None for p in model.parameters()):
        problems.append("the inspection left .grad on the model's parameters")
    return problems


def empty_input(task: Task, model: torch.nn.Module) -> list[str]:
    if task.primary_input != "text":
        return []
    problems = []
    for bad in HOSTILE_TEXT:
        try:
            out = task.predict(model, bad)
            if not isinstance(out, dict):
                problems.append(f"predict({bad[:12]!r}) must return a dict or raise BadInput")
        except BadInput as e:
            if not str(e):
                problems.append(f"predict({bad[:12]!r}) raised BadInput without a message")
    return problems


def weights_card(task: Task) -> list[str] | None:
    """The card against the weights file, the model and the recipe; None when the task has no weights yet."""
    folder = task.weights_path()
    if not (folder / CARD_FILE).exists():
        return None
    model = load_model(task)  # checksum + strict load: a WeightsError says what is wrong
    card, problems = model.runtime.card, []
    if card.name != task.name or card.shape != task.shape:
        problems.append(f"the card is for {card.name!r} ({card.shape}), not {task.name!r} ({task.shape})")
    if card.weights_sha256 != sha256_file(folder / WEIGHTS_FILE):
        problems.append("the card's sha256 is not the weights file's")
    if card.num_params != sum(p.numel() for p in model.parameters()):
        problems.append("the card's parameter count is not the model's")
    if task.recipe.metric not in card.metrics:
        problems.append(f"the card must carry the task's held-out metric {task.recipe.metric!r}")
    if card.dataset.synthetic:
        problems.append("the weights were trained on the synthetic data (train on the real data before committing)")
    if not card.dataset.files or not all(len(f.sha256) == 64 for f in card.dataset.files):
        problems.append("the card must list the data files with their sha256")
    if f"core.train {task.name}" not in card.training.command:
        problems.append("the card's training command is not core.train's for this task")
    served, ens = card.served_variant, card.ensemble
    if ens:  # served as an ensemble (core.ensemble): its own test metrics, the served variant first
        if card.metrics != ens.test or ens.members[0] != served:
            problems.append("an ensemble card's metrics must be its own, with the served variant first")
        if not all(card.comparison[m].weights_file for m in ens.members[1:]):
            problems.append("every ensemble member needs its weights file")
        if "core.ensemble " + task.name not in ens.command:
            problems.append("the ensemble's command is not core.ensemble's for this task")
        if not any(r.weights == ens.weights for r in ens.sweep) or not any(r.weights[0] == 1.0 for r in ens.sweep):
            problems.append("the ensemble's weights must come from a sweep that tried the served model alone")
    elif card.comparison[served].test != card.metrics:
        problems.append("the card's metrics must be the served variant's test row")
    if not card.history.get(served):
        problems.append("the served variant's training history is missing")
    for variant in card.variant_weights():
        load_model(task, variant=variant)
    if (folder / WEIGHTS_FILE).stat().st_size > MAX_WEIGHTS_MB * 2**20:
        problems.append(f"the weights file is over {MAX_WEIGHTS_MB} MB")
    return problems


def checks(task: Task, splits: Splits) -> list[tuple[str, Callable[[], list[str] | None]]]:
    """Every check of the contract for ``task``, in order, as (what, run): run() gives problems, or None when the
    check does not apply yet (no weights). The model is loaded once, by the first check that needs it."""
    model: list[torch.nn.Module] = []

    def served() -> torch.nn.Module:
        if not model:
            model.append(served_or_fresh(task, splits))
        return model[0]

    return [
        ("declared fields", lambda: fields(task)),
        ("one training step on the synthetic data", lambda: training_step(task, splits)),
        ("every demo answers", lambda: demos(task, served())),
        ("the inspector runs on the first demo", lambda: inspector(task, served())),
        ("empty and odd input", lambda: empty_input(task, served())),
        ("the weights card matches the weights", lambda: weights_card(task)),
    ]
