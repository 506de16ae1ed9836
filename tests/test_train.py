"""The training loop and the train / evaluate commands, on the fixture task."""

import copy
import dataclasses
import json
import os
import subprocess
import sys

import pytest
import torch

from core.cli.train import main as train_main
from core.train import fit, pick_device, train_task

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_pick_device_cpu_here():
    assert pick_device("cpu").type == "cpu"
    assert pick_device().type in ("cpu", "cuda", "mps")


def test_fit_learns_and_is_reproducible(fixture_task):
    task = fixture_task
    splits = task.synthetic_data(0)
    recipe = copy.deepcopy(task.recipe)
    recipe.epochs = 4
    results, states = [], []
    for _ in range(2):
        torch.manual_seed(123)
        model = task.build_model(task.config, {})
        events = []
        res = fit(model, task, splits, recipe, torch.device("cpu"), seed=5, callbacks=[events.append],
                  progress=False)
        results.append(res)
        states.append(model.state_dict())
    assert results[0].best_val["accuracy"] > 0.7  # far above chance on the sign task
    assert [h.train_loss for h in results[0].history] == [h.train_loss for h in results[1].history]
    for k in states[0]:
        assert torch.equal(states[0][k], states[1][k])
    assert {e["event"] for e in events} == {"step", "epoch"}
    h = results[0].history[0]
    assert h.grad_norm > 0 and h.samples_per_s > 0 and h.seconds >= 0


def test_early_stopping_restores_best(fixture_task):
    task = fixture_task
    recipe = copy.deepcopy(task.recipe)
    recipe.epochs, recipe.patience, recipe.lr = 20, 1, 0.0  # nothing improves after epoch 1
    model = task.build_model(task.config, {})
    res = fit(model, task, task.synthetic_data(0), recipe, torch.device("cpu"), progress=False)
    assert res.stopped == "patience" and len(res.history) == 2 and res.best_epoch == 1


def test_clipping_by_value_and_norm(fixture_task):
    task = fixture_task
    recipe = copy.deepcopy(task.recipe)
    recipe.epochs, recipe.clip_norm, recipe.clip_value = 1, 1e-3, 1e-4
    model = task.build_model(task.config, {})
    before = copy.deepcopy(model.state_dict())
    fit(model, task, task.synthetic_data(0), recipe, torch.device("cpu"), progress=False, max_steps=1)
    # one AdamW step moves each weight by ~lr regardless of gradient scale; clipping must not produce NaN
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_variants_same_budget_best_served(fixture_task):
    task = fixture_task
    recipe = copy.deepcopy(task.recipe)
    recipe.epochs = 2
    recipe.variants = {"gru": {"cell": "gru"}, "tanh": {"cell": "rnn_tanh"}}
    trained = train_task(task, task.synthetic_data(0), recipe, torch.device("cpu"), progress=False)
    served, rows = trained.served, trained.comparison
    assert served in ("gru", "tanh")
    assert set(rows) == {"gru", "tanh"} and set(trained.history) == {"gru", "tanh"}
    best = max(rows, key=lambda n: rows[n].val["accuracy"])
    assert rows[served].val["accuracy"] == rows[best].val["accuracy"]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([REPO, os.path.join(REPO, "tests", "plugins", "rnnlab-fixture")])
    return env


@pytest.fixture
def registered(monkeypatch, fixture_task):
    """The fixture task, findable by name through core.registry.discover (as core.train and core.evaluate look)."""
    from core import registry

    real = registry.discover

    def with_fixture(*a, **k):
        reg = real(*a, **k)
        if fixture_task.name not in reg.tasks:
            reg.add(fixture_task, "test")
        return reg

    monkeypatch.setattr(registry, "discover", with_fixture)
    return fixture_task


def test_train_and_evaluate_commands(tmp_path, registered):
    """core.train writes weights + an honest card; core.evaluate reproduces it and notices a tampered card."""
    fixture_task = registered
    out = tmp_path / "w"
    assert train_main(["fixture_sign", "--synthetic", "--out", str(out), "--epochs", "2", "--no-progress"]) == 0
    card = json.loads((out / "card.json").read_text())
    for key in ("config", "metrics", "comparison", "history", "num_params", "weights_sha256", "training",
                "dataset", "versions", "meta"):
        assert key in card
    assert "python -m core.train fixture_sign" in card["training"]["command"]
    from core.cli.evaluate import main as eval_main

    fixture_task.weights_dir = out
    try:
        assert eval_main(["fixture_sign", "--data-dir", str(tmp_path)]) == 0
        card["metrics"]["accuracy"] = card["metrics"]["accuracy"] + 0.2  # a card that lies
        (out / "card.json").write_text(json.dumps(card))
        assert eval_main(["fixture_sign", "--data-dir", str(tmp_path)]) == 1
    finally:
        fixture_task.weights_dir = None


def test_init_from_continues_training_and_keeps_the_story(tmp_path, registered, capsys):
    """--init-from starts every variant from the trained weights in a folder (not from scratch); the new card
    keeps the earlier epochs before the new ones and the earlier run's command under training.stages."""
    from core.weights import load_model

    fixture_task = registered
    assert train_main(["fixture_sign", "--synthetic", "--init-from", str(tmp_path / "nothing")]) == 2
    assert "no model card" in capsys.readouterr().err  # a clear message, no traceback
    first, second = tmp_path / "first", tmp_path / "second"
    assert train_main(["fixture_sign", "--synthetic", "--out", str(first), "--epochs", "2", "--no-progress"]) == 0
    # lr 0: the continued model can only be the starting weights, so they must have been loaded
    assert train_main(["fixture_sign", "--synthetic", "--out", str(second), "--epochs", "1", "--lr", "0",
                       "--init-from", str(first), "--no-progress"]) == 0
    a, b = load_model(fixture_task, first), load_model(fixture_task, second)
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), k
    old, new = a.runtime.card, b.runtime.card
    served = new.served_variant
    assert [h.epoch for h in new.history[served]] == [1, 2, 3]
    assert new.history[served][:2] == old.history[served]
    assert new.comparison[served].epochs == 3
    assert new.comparison[served].train_seconds >= old.comparison[served].train_seconds
    assert "--init-from" in new.training.command
    assert new.training.stages[0].command == old.training.command
    # a fresh run from the same seed with lr 0 is NOT the first run's weights: the check above can fail
    third = tmp_path / "third"
    assert train_main(["fixture_sign", "--synthetic", "--out", str(third), "--epochs", "1", "--lr", "0",
                       "--no-progress"]) == 0
    c = load_model(fixture_task, third)
    assert any(not torch.equal(va, vc) for va, vc in zip(a.state_dict().values(), c.state_dict().values()))


def test_join_adds_new_variants_and_leaves_the_served_model(tmp_path, registered, monkeypatch, capsys):
    """--join trains only the named variants and adds their rows (with how they were trained) to the card in the
    folder; the served weights and metrics stay byte for byte; a name the card has already is refused."""
    import dataclasses

    fixture_task = registered
    monkeypatch.setattr(fixture_task, "recipe", dataclasses.replace(
        fixture_task.recipe, variants={"gru": {"cell": "gru"}, "tanh": {"cell": "rnn_tanh"}}))
    out = tmp_path / "w"
    assert train_main(["fixture_sign", "--synthetic", "--out", str(out), "--variants", "gru", "--epochs", "1",
                       "--no-progress"]) == 0
    before_card = json.loads((out / "card.json").read_text())
    before_weights = (out / "model.safetensors").read_bytes()
    assert train_main(["fixture_sign", "--synthetic", "--out", str(out), "--variants", "tanh", "--epochs", "1",
                       "--no-progress", "--join"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert (out / "model.safetensors").read_bytes() == before_weights
    assert card["served_variant"] == before_card["served_variant"] == "gru"
    assert card["metrics"] == before_card["metrics"] and card["training"] == before_card["training"]
    assert set(card["comparison"]) == {"gru", "tanh"} and set(card["history"]) == {"gru", "tanh"}
    assert card["comparison"]["tanh"]["config"]["cell"] == "rnn_tanh"
    assert "--join" in card["comparison"]["tanh"]["trained_by"]["command"]
    assert train_main(["fixture_sign", "--synthetic", "--out", str(out), "--variants", "tanh", "--epochs", "1",
                       "--no-progress", "--join"]) == 2  # already there: --join never replaces
    assert train_main(["fixture_sign", "--out", str(out), "--data-dir", str(tmp_path), "--variants", "tanh",
                       "--join", "--no-progress"]) == 2  # real data joined to a synthetic card: refused
    assert "synthetic" in capsys.readouterr().err


def test_init_from_keeps_the_start_when_training_only_hurts(tmp_path, registered):
    """The trained weights are the score to beat: a continuation whose every epoch is worse on validation (a huge
    learning rate here) hands back the starting weights, and the card keeps their earlier best epoch; --epochs 0
    re-scores them under today's evaluation code."""
    from core.weights import load_model

    fixture_task = registered
    first, worse, again = tmp_path / "first", tmp_path / "worse", tmp_path / "again"
    assert train_main(["fixture_sign", "--synthetic", "--out", str(first), "--epochs", "3", "--no-progress"]) == 0
    assert train_main(["fixture_sign", "--synthetic", "--out", str(worse), "--epochs", "2", "--lr", "50",
                       "--init-from", str(first), "--no-progress"]) == 0
    a, b = load_model(fixture_task, first), load_model(fixture_task, worse)
    served = a.runtime.card.served_variant
    hist = b.runtime.card.history[served]
    new_vals = [h.val[fixture_task.recipe.metric] for h in hist[3:]]
    start_val = a.runtime.card.comparison[served].val[fixture_task.recipe.metric]
    assert all(v < start_val for v in new_vals), (start_val, new_vals)  # seeded: lr 50 wrecks every epoch
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), k
    assert b.runtime.card.comparison[served].best_epoch == a.runtime.card.comparison[served].best_epoch
    assert b.runtime.card.comparison[served].val == a.runtime.card.comparison[served].val
    assert train_main(["fixture_sign", "--synthetic", "--out", str(again), "--epochs", "0",
                       "--init-from", str(first), "--no-progress"]) == 0
    c = load_model(fixture_task, again)
    assert c.runtime.card.metrics == a.runtime.card.metrics and len(c.runtime.card.history[served]) == 3
    assert c.runtime.card.comparison[served].best_epoch == a.runtime.card.comparison[served].best_epoch


def test_init_from_refuses_other_vocabularies(tmp_path, fixture_task):
    from core.train import load_start

    out = tmp_path / "w"
    splits = fixture_task.synthetic_data(0)
    recipe = copy.deepcopy(fixture_task.recipe)
    recipe.epochs = 1
    trained = train_task(fixture_task, splits, recipe, torch.device("cpu"), progress=False)
    from core.train import Training, dataset_record, make_card
    from core.weights import save_weights

    served = trained.served
    training = Training(command="python -m core.train fixture_sign", seed=0, device="cpu", world_size=1, recipe={},
                        wall_seconds=1.0)
    card = make_card(fixture_task, recipe, trained, splits, dataset_record(fixture_task, splits, None, True), training)
    save_weights(out, trained.model, dataclasses.replace(card, meta={"vocab": ["a", "b"]}))
    with pytest.raises(SystemExit, match="vocab"):
        load_start(fixture_task, out, served, {"vocab": ["a", "c"]})
    m, config = load_start(fixture_task, out, served, {"vocab": ["a", "b"]})
    assert config == trained.row.config
    with pytest.raises(SystemExit, match="no weights for variant 'nope'"):
        load_start(fixture_task, out, "nope", {"vocab": ["a", "b"]})


def test_train_unknown_task_is_a_clear_error(capsys):
    assert train_main(["no_such_task", "--synthetic"]) == 2
    assert "no task named 'no_such_task'" in capsys.readouterr().err


DDP_SCRIPT = r"""
import os, sys, copy, torch, torch.distributed as dist
sys.path[:0] = [{repo!r}, {fixture!r}]
from core.train import fit
import rnnlab_fixture
rank, world = int(sys.argv[1]), 2
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT={port!r})
dist.init_process_group("gloo", rank=rank, world_size=world)
task = rnnlab_fixture.TASK
recipe = copy.deepcopy(task.recipe); recipe.epochs = 1
torch.manual_seed(0)
model = task.build_model(task.config, {{}})
fit(model, task, task.synthetic_data(0), recipe, torch.device("cpu"), progress=False)
flat = torch.cat([p.detach().flatten() for p in model.parameters()])
gathered = [torch.zeros_like(flat) for _ in range(world)]
dist.all_gather(gathered, flat)
assert torch.equal(gathered[0], gathered[1]), "ranks diverged"
print("RANK", rank, "OK", float(flat.norm()))
dist.destroy_process_group()
"""


def test_ddp_two_process_gloo(tmp_path):
    """DistributedDataParallel on CPU: two gloo ranks train the fixture task and stay in lock-step."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT.format(repo=REPO, fixture=os.path.join(REPO, "tests", "plugins", "rnnlab-fixture"),
                                        port=port))
    procs = [subprocess.Popen([sys.executable, str(script), str(r)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for r in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (o, e) in zip(procs, outs):
        assert p.returncode == 0, e[-2000:]
        assert "OK" in o


def test_profile_changes_recipe_and_variant_configs_only_in_a_copy():
    from core.task import Recipe
    from core.train import apply_profile

    base = Recipe(metric="accuracy", epochs=3, variants={"a": {"hidden_size": 8}, "b": {"cell": "gru"}},
                  profiles={"gpu": {"epochs": 9, "variants": {"a": {"hidden_size": 32}}}})
    got = apply_profile(base, "gpu")
    assert got.epochs == 9 and got.variants["a"] == {"hidden_size": 32} and got.variants["b"] == {"cell": "gru"}
    assert base.epochs == 3 and base.variants["a"] == {"hidden_size": 8}  # the task's own recipe is untouched
    with pytest.raises(SystemExit, match="profiles: gpu"):
        apply_profile(base, "tpu")
    with pytest.raises(SystemExit, match="unknown recipe field"):
        apply_profile(Recipe(metric="x", profiles={"p": {"epoch": 1}}), "p")


def test_every_task_profile_applies():
    from core.registry import discover
    from core.train import apply_profile

    for task in discover().tasks.values():
        for name in task.recipe.profiles:
            recipe = apply_profile(task.recipe, name)
            known = set(task.recipe.variants) or {"default"}  # no variants: the one model is called "default"
            for variant in recipe.variants:
                assert variant in known, f"{task.name}: profile {name} adds unknown variant {variant}"


def test_a_synthetic_run_does_not_replace_real_weights(tmp_path, registered, capsys):
    """core.train --synthetic refuses to write over weights trained on real data unless --force is given; over
    synthetic weights (or an empty folder) it writes as before, and it says where it writes."""
    out = tmp_path / "w"
    args = ["fixture_sign", "--synthetic", "--out", str(out), "--epochs", "1"]
    assert train_main(args) == 0
    assert str(out) in capsys.readouterr().err  # where the weights go, before training
    card = json.loads((out / "card.json").read_text())
    assert card["dataset"]["synthetic"] is True
    assert train_main([*args, "--no-progress"]) == 0  # synthetic over synthetic: fine
    card["dataset"]["synthetic"] = False  # now the folder holds a model trained on real data
    (out / "card.json").write_text(json.dumps(card))
    before = (out / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert train_main([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "trained on real data" in err and "--force" in err and "--out" in err
    assert (out / "model.safetensors").read_bytes() == before
    assert json.loads((out / "card.json").read_text())["dataset"]["synthetic"] is False
    assert train_main([*args, "--no-progress", "--force"]) == 0
    assert json.loads((out / "card.json").read_text())["dataset"]["synthetic"] is True


def test_the_progress_bar_knows_its_total():
    """Training shows 'k/N batches', not '0it ?it/s': N from a sized collection, else from the split's size, then
    from the epoch before."""
    from types import SimpleNamespace

    from core.train import batch_total, rows_in

    assert rows_in([1, 2, 3]) == 3 and rows_in(torch.zeros(7, 2)) == 7
    assert rows_in({"x": torch.zeros(5, 3), "y": torch.zeros(5)}) == 5
    assert rows_in({"x": torch.zeros(5, 3), "y": torch.zeros(4)}) is None and rows_in(iter([])) is None
    run = SimpleNamespace(epoch_batches=None, recipe=SimpleNamespace(batch_size=4), world=1)
    assert batch_total(run, list(range(10)), iter([])) == 3  # a generator: ceil(10 / 4)
    assert batch_total(run, None, [0] * 6) == 6
    assert batch_total(run, object(), iter([])) is None
    run.world = 2
    assert batch_total(run, list(range(10)), iter([])) == 2
    run.epoch_batches = 9
    assert batch_total(run, list(range(10)), iter([])) == 9


def test_core_check_runs_the_contract_and_says_what_failed(tmp_path, registered, capsys, monkeypatch):
    """python -m core.check: a line per check, exit 0 when all pass; a task whose demos are gone fails that check."""
    from core.cli.check import main as check_main

    assert check_main(["fixture_sign", "--skip-page", "--skip-evaluate"]) == 0
    out = capsys.readouterr().out
    assert "PASS  one training step on the synthetic data" in out and "PASS  every demo answers" in out
    assert "SKIP  the weights card matches the weights" in out and "every check passed" in out
    monkeypatch.setattr(registered, "demos", lambda: [])
    assert check_main(["fixture_sign", "--skip-page", "--skip-evaluate"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  every demo answers" in out and "a task needs at least one demo input" in out
    assert check_main(["no_such_task_here"]) == 2
