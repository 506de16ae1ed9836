"""One training loop for every task, and the command that trains a task and writes its weights and card.

    python -m core.train <task> --data-dir DIR [--epochs N] [--variants a,b] [--device cpu|cuda|mps] [--seed S]

Multi-process (DistributedDataParallel), for users who outgrow one machine:

    torchrun --nproc_per_node 2 -m core.train <task> --data-dir DIR
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

from core.modelcard import DataFile, Dataset, EpochRecord, ModelCard, TrainedBy, Training, TrainingStage, Variant
from core.task import Recipe, Splits, Task


def pick_device(requested: str | None = None) -> torch.device:
    """CUDA, then MPS, then CPU -- unless ``requested`` says otherwise."""
    if requested and requested != "auto":
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover
        pass


def to_device(batch: Any, device: torch.device) -> Any:
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def total_grad_norm(params) -> float:
    norms = [p.grad.detach().norm(2) for p in params if p.grad is not None]
    return float(torch.norm(torch.stack(norms), 2)) if norms else 0.0


@dataclass
class FitResult:
    """What fit hands back: every epoch, and which one's weights the model now holds."""

    history: list[EpochRecord] = field(default_factory=list)  # one record per epoch trained
    best_epoch: int = 0  # the epoch whose weights were kept (0: the starting weights, see fit's ``baseline``)
    best_val: dict = field(default_factory=dict)  # that epoch's validation metrics
    stopped: str = ""  # why training ended: "epochs", "patience", "time budget", "max steps"


def better(score: float, best: float | None, higher_is_better: bool) -> bool:
    """Is ``score`` better than ``best`` (the best so far; None: nothing yet)? The one rule for picking epochs,
    variants and ensemble weights. Something beats nothing; a NaN score (a diverged run) never beats a number;
    any number beats a NaN best."""
    if best is None:
        return True
    if math.isnan(score):
        return False
    if math.isnan(best):
        return True
    return score > best if higher_is_better else score < best


@dataclass
class _Run:
    """What stays fixed while fit trains one model: the optimizer, the (possibly DDP-wrapped) module, the ranks."""

    model: nn.Module  # the module being trained (its state_dict is what gets kept)
    net: nn.Module  # what the loss calls: the model, or the DistributedDataParallel wrapping it
    task: Task
    recipe: Recipe
    device: torch.device
    opt: torch.optim.Optimizer
    params: list[nn.Parameter]  # the trainable parameters (gradient norms and clipping)
    rank: int  # this process under torch.distributed (0 alone)
    world: int  # processes under torch.distributed (1 alone)
    amp: bool  # bf16 autocast on CUDA (no loss scaling needed)
    progress: bool  # a progress bar and one line per epoch (rank 0 only)
    t_start: float  # when training began (the recipe's max_minutes counts from here)
    step: int = 0  # optimizer steps so far, every epoch
    epoch_batches: int | None = None  # batches in an epoch, once one has run (the progress bar's total)

    def out_of_time(self) -> bool:
        return bool(self.recipe.max_minutes) and time.time() - self.t_start > self.recipe.max_minutes * 60


@dataclass
class _EpochStats:
    """Sums over one epoch's batches, on this rank."""

    seen: int = 0  # samples, all ranks together
    loss_sum: float = 0.0  # loss x batch size, this rank
    gn_sum: float = 0.0  # total gradient norms before clipping
    n_steps: int = 0  # optimizer steps this epoch


def _start(model: nn.Module, task: Task, recipe: Recipe, device: torch.device, progress: bool) -> _Run:
    """Put the model on the device, wrap it for DDP when distributed, make the optimizer."""
    model.to(device)
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    net = nn.parallel.DistributedDataParallel(model) if distributed else model
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    try:
        import tqdm.auto  # noqa: F401 -- the progress bar
    except ImportError:  # pragma: no cover
        progress = False
    return _Run(model=model, net=net, task=task, recipe=recipe, device=device, opt=opt,
                params=[p for p in model.parameters() if p.requires_grad], rank=rank, world=world,
                amp=device.type == "cuda", progress=progress, t_start=time.time())


def _epoch_batches(run: _Run, splits: Splits, epoch: int, seed: int):
    """This rank's batches for one epoch: the same shuffle on every rank, each taking an equal share."""
    batches = run.task.batches(splits.train, run.recipe.batch_size, shuffle=True, seed=seed + epoch)
    if run.world > 1:
        batches = list(batches)
        per = len(batches) // run.world
        batches = batches[run.rank::run.world][:per]
    return batches


def rows_in(data: Any) -> int | None:
    """How many examples a split holds, where that can be told without reading it: a list or tensor's length, or the
    first dimension of a dict's tensors (None otherwise)."""
    if isinstance(data, torch.Tensor):
        return int(data.shape[0]) if data.dim() else None
    if isinstance(data, dict):
        sizes = {int(v.shape[0]) for v in data.values() if isinstance(v, torch.Tensor) and v.dim()}
        return sizes.pop() if len(sizes) == 1 else None
    if isinstance(data, (list, tuple)):
        return len(data)
    return None


def batch_total(run: _Run, data: Any, batches: Any) -> int | None:
    """The progress bar's total for an epoch: the batches of the epoch before, else their count when the task gives a
    sized collection, else an estimate from the split's size (ceil(rows / batch size) per process)."""
    if run.epoch_batches:
        return run.epoch_batches
    if hasattr(batches, "__len__"):
        return len(batches)
    rows = rows_in(data)
    return math.ceil(rows / run.recipe.batch_size / run.world) if rows else None


def _train_step(run: _Run, batch: Any) -> tuple[float, float]:
    """One optimizer step on one batch: loss, backward, clipping, update. Returns (loss, grad norm before
    clipping)."""
    batch = to_device(batch, run.device)
    with torch.autocast("cuda", dtype=torch.bfloat16) if run.amp else contextlib.nullcontext():
        loss = run.task.loss(run.net, batch)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    gn = total_grad_norm(run.params)
    if run.recipe.clip_value:
        torch.nn.utils.clip_grad_value_(run.params, run.recipe.clip_value)
    if run.recipe.clip_norm:
        torch.nn.utils.clip_grad_norm_(run.params, run.recipe.clip_norm)
    run.opt.step()
    run.step += 1
    return float(loss.detach()), gn


def _train_epoch(run: _Run, splits: Splits, epoch: int, seed: int, callbacks, max_steps: int | None) -> _EpochStats:
    """Train on one epoch's batches (fewer when max_steps or the time budget runs out first)."""
    from tqdm.auto import tqdm

    run.model.train()
    t0, stats = time.time(), _EpochStats()
    batches = _epoch_batches(run, splits, epoch, seed)
    bar = tqdm(batches, total=batch_total(run, splits.train, batches), desc=f"{run.task.name} epoch {epoch}",
               unit="batch", leave=False, disable=not run.progress or run.rank != 0, mininterval=1.0)
    for batch in bar:
        loss, gn = _train_step(run, batch)
        n = run.task.batch_size_of(batch)
        stats.seen += n * run.world
        stats.loss_sum += loss * n
        stats.gn_sum += gn
        stats.n_steps += 1
        rate = stats.seen / max(time.time() - t0, 1e-9)
        bar.set_postfix(loss=f"{stats.loss_sum / max(stats.seen / run.world, 1):.4f}", samples_s=f"{rate:.0f}")
        for cb in callbacks:
            cb({"event": "step", "epoch": epoch, "step": run.step, "loss": loss, "grad_norm": gn,
                "samples_per_s": rate})
        if (max_steps and run.step >= max_steps) or run.out_of_time():
            break
    else:  # a whole epoch: its count is the next epochs' total
        run.epoch_batches = stats.n_steps
    bar.close()
    return stats


def _validate(run: _Run, splits: Splits, epoch: int, stats: _EpochStats, t0: float) -> EpochRecord:
    """Score the epoch's weights on the validation split; the epoch's record."""
    run.model.eval()
    with torch.no_grad():
        val = run.task.evaluate(run.model, splits.val)
    secs = time.time() - t0
    rec = EpochRecord(epoch=epoch, train_loss=stats.loss_sum / max(stats.seen / run.world, 1), val=val,
                      grad_norm=stats.gn_sum / max(stats.n_steps, 1), seconds=round(secs, 2),
                      samples_per_s=round(stats.seen / max(secs, 1e-9), 1), lr=run.opt.param_groups[0]["lr"])
    if run.progress and run.rank == 0:
        metric = run.recipe.select or run.recipe.metric
        print(f"[{run.task.name}] epoch {epoch}: loss {rec.train_loss:.4f} val {metric} "
              f"{val.get(metric, float('nan')):.4f} ({secs:.1f}s, {rec.samples_per_s:.0f} samples/s)",
              file=sys.stderr, flush=True)
    return rec


def _stop_reason(run: _Run, bad_epochs: int, max_steps: int | None) -> str:
    """Why training should stop after this epoch ("" to go on)."""
    if max_steps and run.step >= max_steps:
        return "max steps"
    if bad_epochs >= run.recipe.patience:
        return "patience"
    if run.out_of_time():
        return "time budget"
    return ""


def fit(model: nn.Module, task: Task, splits: Splits, recipe: Recipe, device: torch.device | None = None,
        seed: int = 0, callbacks: list[Callable[[dict], None]] | None = None, progress: bool = True,
        max_steps: int | None = None, baseline: bool = False) -> FitResult:
    """Train ``model`` on splits.train, select on splits.val with recipe.metric, restore the best weights.

    ``baseline``: the model is already trained (--init-from); its validation score is the one to beat, so further
    training that only makes it worse returns it unchanged (best_epoch 0) instead of its best worse epoch.

    Callbacks receive dicts: {"event": "step", "step", "loss", ...} and {"event": "epoch", **EpochRecord}.
    Under torch.distributed each rank takes every world_size-th batch (DDP averages gradients)."""
    device = device or pick_device()
    seed_everything(seed)
    run = _start(model, task, recipe, device, progress)
    callbacks = callbacks or []
    result = FitResult()
    best_state, best_score, bad_epochs = None, None, 0
    if baseline:
        model.eval()
        with torch.no_grad():
            val = task.evaluate(model, splits.val)
        best_score, best_state = float(val[recipe.select or recipe.metric]), copy.deepcopy(model.state_dict())
        result.best_epoch, result.best_val = 0, val
        if run.progress and run.rank == 0:
            print(f"[{task.name}] start: val {recipe.select or recipe.metric} {best_score:.4f} (the trained weights to beat)",
                  file=sys.stderr, flush=True)
    for epoch in range(1, recipe.epochs + 1):
        t0 = time.time()
        stats = _train_epoch(run, splits, epoch, seed, callbacks, max_steps)
        rec = _validate(run, splits, epoch, stats, t0)
        result.history.append(rec)
        for cb in callbacks:
            cb({"event": "epoch", **asdict(rec)})
        score = float(rec.val[recipe.select or recipe.metric])
        if better(score, best_score, recipe.higher_is_better):
            best_score, best_state, bad_epochs = score, copy.deepcopy(model.state_dict()), 0
            result.best_epoch, result.best_val = epoch, rec.val
        else:
            bad_epochs += 1
        for g in run.opt.param_groups:
            g["lr"] *= recipe.lr_decay
        result.stopped = _stop_reason(run, bad_epochs, max_steps)
        if result.stopped:
            break
    else:
        result.stopped = "epochs"
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return result


def apply_profile(recipe: Recipe, name: str) -> Recipe:
    """A copy of ``recipe`` with profile ``name`` applied (recipe fields, then per-variant config changes)."""
    if name not in recipe.profiles:
        known = ", ".join(sorted(recipe.profiles)) or "none"
        raise SystemExit(f"unknown profile {name!r}; this task's profiles: {known}")
    recipe = copy.deepcopy(recipe)
    fields = {f for f in asdict(recipe)} - {"profiles", "variants"}
    for key, value in recipe.profiles[name].items():
        if key == "variants":
            for variant, changes in value.items():
                recipe.variants[variant] = {**recipe.variants.get(variant, {}), **changes}
        elif key in fields:
            setattr(recipe, key, value)
        else:
            raise SystemExit(f"profile {name!r} sets unknown recipe field {key!r}")
    return recipe


def load_start(task: Task, folder, name: str, meta: dict, overrides: dict | None = None) -> tuple[nn.Module, dict]:
    """The trained variant ``name`` from a weights folder, to continue training from: (model, config).

    Loaded as the app loads it (core.weights.load_model: card config, checksum, strict shapes); ``overrides`` may
    change what holds no weight (dropout, say). The data's vocabularies and labels must be the ones the weights
    were trained with."""
    from core.weights import WeightsError, load_model

    try:
        model = load_model(task, folder, variant=name)
    except WeightsError as exc:  # no weights for this variant, a checksum that lies, ...: say so, no traceback
        raise SystemExit(f"--init-from: {exc}") from None
    differ = sorted(k for k, v in meta.items() if isinstance(v, (list, tuple)) and k in model.runtime.meta
                    and list(model.runtime.meta[k]) != list(v))
    if differ:
        raise SystemExit(f"cannot continue from {folder}: the data gives other {', '.join(differ)} than the "
                         "weights were trained with")
    config = {**model.runtime.config, **(overrides or {})}
    if overrides:  # rebuild with the changed config, then take the trained weights over (strict: same shapes)
        trained = model
        model = task.build_model(config, meta)
        model.load_state_dict(trained.state_dict())
    return model, config


@dataclass
class Trained:
    """What train_task hands back: the variant to serve, its model, and what the card says about every variant."""

    served: str  # the variant to serve: the recipe's ``serve``, else the best on the validation metric
    model: nn.Module  # the served variant's trained model
    comparison: dict[str, Variant]  # every variant's row for the card, by name
    history: dict[str, list[EpochRecord]]  # every variant's epochs, by name
    kept: dict[str, nn.Module] = field(default_factory=dict)  # the other variants' models (recipe.keep_variants)

    @property
    def row(self) -> Variant:
        """The served variant's comparison row."""
        return self.comparison[self.served]


def _pick_served(recipe: Recipe, comparison: dict[str, Variant]) -> str:
    """The recipe's ``serve`` when it was trained, else the variant best on the validation metric (``select``, else
    ``metric``; first on ties)."""
    if recipe.serve and recipe.serve in comparison:
        return recipe.serve
    served, key = None, recipe.select or recipe.metric
    for name, row in comparison.items():
        if better(row.val[key], None if served is None else comparison[served].val[key],
                  recipe.higher_is_better):
            served = name
    return served


def train_task(task: Task, splits: Splits, recipe: Recipe, device: torch.device, seed: int = 0,
               variants: list[str] | None = None, progress: bool = True, config_overrides: dict | None = None,
               max_steps: int | None = None, init_from=None) -> Trained:
    """Train every variant with the same budget; the served one and every variant's comparison row and history.

    ``init_from``: a weights folder whose trained variants are the starting points (training continues from
    them, every variant with the same further budget) instead of fresh initialisations."""
    names = variants or list(recipe.variants) or ["default"]
    models, comparison, history = {}, {}, {}
    for name in names:
        if name != "default" and name not in recipe.variants:
            raise SystemExit(f"unknown variant {name!r} for {task.name}; variants: {', '.join(recipe.variants)}")
        config = {**task.config, **recipe.variants.get(name, {}), **(config_overrides or {})}
        seed_everything(seed)
        if init_from:
            model, config = load_start(task, init_from, name, splits.meta, config_overrides)
        else:
            model = task.build_model(config, splits.meta)
        t0 = time.time()
        fit_res = fit(model, task, splits, recipe, device, seed=seed, progress=progress, max_steps=max_steps,
                      baseline=bool(init_from))
        model.eval()
        with torch.no_grad():
            test = task.evaluate(model, splits.test)
        models[name], history[name] = model, fit_res.history
        comparison[name] = Variant(config=config, val=fit_res.best_val, test=test,
                                   num_params=sum(p.numel() for p in model.parameters()),
                                   epochs=len(fit_res.history), best_epoch=fit_res.best_epoch,
                                   train_seconds=round(time.time() - t0, 1), stopped=fit_res.stopped)
        if progress:
            print(f"[{task.name}] variant {name}: val {fit_res.best_val} test {test}", file=sys.stderr, flush=True)
    served = _pick_served(recipe, comparison)
    kept = {n: m for n, m in models.items() if n != served} if recipe.keep_variants else {}
    return Trained(served=served, model=models[served], comparison=comparison, history=history, kept=kept)


def join_card(card: ModelCard, trained: Trained, command: str, device: str, profile: str, seed: int,
              wall_seconds: float) -> ModelCard:
    """``card`` with the variants of ``trained`` added as comparison rows (each with how it was trained) and
    histories. Refuses a variant the card already has: --join adds, it never replaces."""
    taken = [n for n in trained.comparison if n in card.comparison]
    if taken:
        raise ValueError(f"--join adds new variants; the card already has {', '.join(taken)} (train those without "
                         "--join, or pick other variants)")
    comparison, history = dict(card.comparison), dict(card.history)
    for name, row in trained.comparison.items():
        comparison[name] = dataclasses.replace(row, trained_by=TrainedBy(
            command=command, device=device, profile=profile, seed=seed, wall_seconds=wall_seconds))
        history[name] = trained.history[name]
    return dataclasses.replace(card, comparison=comparison, history=history)


def continue_story(trained: Trained, earlier: ModelCard) -> list[TrainingStage]:
    """Training continued from ``earlier`` (--init-from): the card tells the whole story. Each variant's history
    gets the earlier epochs first and its counts (epochs, best epoch, seconds) cover every stage. Returns the
    earlier card's training stages, oldest first, its own run last."""
    for name, recs in trained.history.items():
        before = list(earlier.history.get(name, []))
        trained.history[name] = before + [dataclasses.replace(r, epoch=r.epoch + len(before)) for r in recs]
        row, old = trained.comparison[name], earlier.comparison.get(name)
        # best epoch 0: no new epoch beat the weights it started from, which keep their earlier best epoch
        best = row.best_epoch + len(before) if row.best_epoch else ((old.best_epoch if old else 0) or len(before))
        row.epochs, row.best_epoch = row.epochs + len(before), best
        if old is not None and isinstance(old.train_seconds, (int, float)):  # like epochs: all stages together
            row.train_seconds = round(row.train_seconds + old.train_seconds, 1)
    own = TrainingStage(**{f.name: getattr(earlier.training, f.name) for f in dataclasses.fields(TrainingStage)})
    return [*(earlier.training.stages or []), own]


def dataset_record(task: Task, splits: Splits, data_dir, synthetic: bool) -> Dataset:
    """What the card says about the data: description, source, and each file with its checksum (paths relative to
    the data directory)."""
    from core.weights import sha256_file

    files = []
    for f in splits.files:
        f = os.fspath(f)
        rel = os.path.relpath(f, data_dir) if data_dir else os.path.basename(f)
        files.append(DataFile(path=rel, sha256=sha256_file(f), bytes=os.path.getsize(f)))
    return Dataset(description=splits.dataset or ("synthetic" if synthetic else ""), source=task.data_source,
                   synthetic=synthetic, files=files)


def make_card(task: Task, recipe: Recipe, trained: Trained, splits: Splits, dataset: Dataset,
              training: Training) -> ModelCard:
    """The card of a training run, before save_weights adds the weights file's checksum and size."""
    return ModelCard(name=task.name, title=task.title, shape=task.shape, summary=task.summary,
                     config=trained.row.config, metrics=trained.row.test, val_metrics=trained.row.val,
                     served_variant=trained.served, comparison=trained.comparison, history=trained.history,
                     metric=recipe.metric, higher_is_better=recipe.higher_is_better, anchors=recipe.anchors,
                     meta=splits.meta, dataset=dataset, training=training)


if __name__ == "__main__":  # python -m core.train: the command, kept in core.cli
    from core.cli.train import main

    sys.exit(main())
