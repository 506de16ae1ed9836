"""One training loop for every task, and the command that trains a task and writes its weights and card.

    python -m core.train <task> --data-dir DIR [--epochs N] [--variants a,b] [--device cpu|cuda|mps] [--seed S]

Multi-process (DistributedDataParallel), for users who outgrow one machine:

    torchrun --nproc_per_node 2 -m core.train <task> --data-dir DIR
"""

from __future__ import annotations

import argparse
import contextlib
import copy
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
class EpochRecord:
    epoch: int
    train_loss: float
    val: dict  # metrics on the validation split
    grad_norm: float  # mean total gradient norm before clipping
    seconds: float
    samples_per_s: float
    lr: float


@dataclass
class FitResult:
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = 0
    best_val: dict = field(default_factory=dict)
    stopped: str = ""  # why training ended: "epochs", "patience", "time budget"


def _better(a: float, b: float | None, higher: bool) -> bool:
    if b is None or (isinstance(b, float) and math.isnan(b)):
        return True
    return a > b if higher else a < b


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
    model.to(device)
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    net = nn.parallel.DistributedDataParallel(model) if distributed else model
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    amp = device.type == "cuda"  # bf16 autocast: no loss scaling needed
    callbacks = callbacks or []
    result = FitResult()
    best_state, best_val = None, None
    bad_epochs, step = 0, 0
    t_start = time.time()
    params = [p for p in model.parameters() if p.requires_grad]
    if baseline:
        model.eval()
        with torch.no_grad():
            val = task.evaluate(model, splits.val)
        best_val, best_state = float(val[recipe.metric]), copy.deepcopy(model.state_dict())
        result.best_epoch, result.best_val = 0, val
        if progress and rank == 0:
            print(f"[{task.name}] start: val {recipe.metric} {best_val:.4f} (the trained weights to beat)",
                  file=sys.stderr, flush=True)
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        progress = False
    for epoch in range(1, recipe.epochs + 1):
        model.train()
        t0, seen, loss_sum, gn_sum, n_steps = time.time(), 0, 0.0, 0.0, 0
        batches = task.batches(splits.train, recipe.batch_size, shuffle=True, seed=seed + epoch)
        if world > 1:  # same shuffle on every rank; each takes its share, all take the same count
            batches = list(batches)
            per = len(batches) // world
            batches = batches[rank::world][:per]
        bar = tqdm(batches, desc=f"{task.name} epoch {epoch}", leave=False, disable=not progress or rank != 0,
                   mininterval=1.0)
        for batch in bar:
            batch = to_device(batch, device)
            with torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext():
                loss = task.loss(net, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gn = total_grad_norm(params)
            if recipe.clip_value:
                torch.nn.utils.clip_grad_value_(params, recipe.clip_value)
            if recipe.clip_norm:
                torch.nn.utils.clip_grad_norm_(params, recipe.clip_norm)
            opt.step()
            n = task.batch_size_of(batch)
            seen += n * world
            loss_sum += float(loss.detach()) * n
            gn_sum += gn
            n_steps += 1
            step += 1
            rate = seen / max(time.time() - t0, 1e-9)
            bar.set_postfix(loss=f"{loss_sum / max(seen / world, 1):.4f}", samples_s=f"{rate:.0f}")
            for cb in callbacks:
                cb({"event": "step", "epoch": epoch, "step": step, "loss": float(loss.detach()), "grad_norm": gn,
                    "samples_per_s": rate})
            if max_steps and step >= max_steps:
                break
            if recipe.max_minutes and time.time() - t_start > recipe.max_minutes * 60:
                break
        bar.close()
        model.eval()
        with torch.no_grad():
            val = task.evaluate(model, splits.val)
        secs = time.time() - t0
        rec = EpochRecord(epoch=epoch, train_loss=loss_sum / max(seen / world, 1), val=val,
                          grad_norm=gn_sum / max(n_steps, 1), seconds=round(secs, 2),
                          samples_per_s=round(seen / max(secs, 1e-9), 1), lr=opt.param_groups[0]["lr"])
        result.history.append(rec)
        if progress and rank == 0:
            print(f"[{task.name}] epoch {epoch}: loss {rec.train_loss:.4f} val {recipe.metric} "
                  f"{val.get(recipe.metric, float('nan')):.4f} ({secs:.1f}s, {rec.samples_per_s:.0f} samples/s)",
                  file=sys.stderr, flush=True)
        for cb in callbacks:
            cb({"event": "epoch", **asdict(rec)})
        score = float(val[recipe.metric])
        if _better(score, best_val, recipe.higher_is_better):
            best_val, best_state, bad_epochs = score, copy.deepcopy(model.state_dict()), 0
            result.best_epoch, result.best_val = epoch, val
        else:
            bad_epochs += 1
        for g in opt.param_groups:
            g["lr"] *= recipe.lr_decay
        if max_steps and step >= max_steps:
            result.stopped = "max steps"
            break
        if bad_epochs >= recipe.patience:
            result.stopped = "patience"
            break
        if recipe.max_minutes and time.time() - t_start > recipe.max_minutes * 60:
            result.stopped = "time budget"
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


def _parse_value(text: str):
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


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
    differ = sorted(k for k, v in meta.items() if isinstance(v, (list, tuple)) and k in model.meta
                    and list(model.meta[k]) != list(v))
    if differ:
        raise SystemExit(f"cannot continue from {folder}: the data gives other {', '.join(differ)} than the "
                         "weights were trained with")
    config = {**model.config, **(overrides or {})}
    if overrides:  # rebuild with the changed config, then take the trained weights over (strict: same shapes)
        trained = model
        model = task.build_model(config, meta)
        model.load_state_dict(trained.state_dict())
    return model, config


def train_task(task: Task, splits: Splits, recipe: Recipe, device: torch.device, seed: int = 0,
               variants: list[str] | None = None, progress: bool = True, config_overrides: dict | None = None,
               max_steps: int | None = None, init_from=None):
    """Train every variant with the same budget; return (served name, served model, card fields).

    ``init_from``: a weights folder whose trained variants are the starting points (training continues from
    them, every variant with the same further budget) instead of fresh initialisations."""
    names = variants or list(recipe.variants) or ["default"]
    runs = {}
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
        runs[name] = dict(model=model, config=config, fit=fit_res, test=test, seconds=time.time() - t0)
        if progress:
            print(f"[{task.name}] variant {name}: val {fit_res.best_val} test {test}", file=sys.stderr, flush=True)
    if recipe.serve and recipe.serve in runs:
        served = recipe.serve
    else:
        served = None
        for name, run in runs.items():
            if served is None or _better(run["fit"].best_val[recipe.metric],
                                         runs[served]["fit"].best_val[recipe.metric], recipe.higher_is_better):
                served = name
    comparison = {
        name: {"config": run["config"], "val": run["fit"].best_val, "test": run["test"],
               "num_params": sum(p.numel() for p in run["model"].parameters()), "epochs": len(run["fit"].history),
               "best_epoch": run["fit"].best_epoch, "train_seconds": round(run["seconds"], 1),
               "stopped": run["fit"].stopped}
        for name, run in runs.items()
    }
    run = runs[served]
    fields = dict(config=run["config"], metrics=run["test"], val_metrics=run["fit"].best_val, served_variant=served,
                  comparison=comparison, history={n: [asdict(h) for h in r["fit"].history] for n, r in runs.items()})
    fields["_extra"] = {n: r["model"] for n, r in runs.items() if n != served} if recipe.keep_variants else {}
    return served, run["model"], fields


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m core.train", description="Train a task and write its weights.")
    ap.add_argument("task", help="task name (the Plugins page of the app lists them)")
    ap.add_argument("--data-dir", help="the task's data directory (else $RNNLAB_DATA_<TASK>, $RNNLAB_DATA_ROOT)")
    ap.add_argument("--out", help="weights folder (default: the task's weights/<task>)")
    ap.add_argument("--epochs", type=int, help="override the recipe's epoch count")
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--max-minutes", type=float, help="wall-clock budget per variant")
    ap.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (smoke runs)")
    ap.add_argument("--variants", help="comma-separated subset of the recipe's variants")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | mps")
    ap.add_argument("--profile", help="a named recipe from the task's recipe.profiles (e.g. gpu: bigger, longer)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    ap.add_argument("--synthetic", action="store_true", help="train on the task's tiny synthetic data (smoke test)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--init-from", metavar="DIR",
                    help="continue training from the trained variants in this weights folder (e.g. weights/<task>)")
    args = ap.parse_args(argv)

    from core.registry import cli_data, cli_task
    from core.weights import save_weights, sha256_file, training_command

    if args.threads:
        torch.set_num_threads(args.threads)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = pick_device(args.device)
    if distributed:
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend)
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    task = cli_task(args.task, show_plugin_errors=True)
    if task is None:
        return 2
    recipe = apply_profile(task.recipe, args.profile) if args.profile else copy.deepcopy(task.recipe)
    for k in ("epochs", "batch_size", "lr", "max_minutes"):
        if getattr(args, k) is not None:
            setattr(recipe, k, getattr(args, k))
    overrides = {}
    for kv in args.set:
        k, _, v = kv.partition("=")
        overrides[k] = _parse_value(v)
    if args.synthetic:
        splits = task.synthetic_data(args.seed)
        data_dir = None
    else:
        got = cli_data(task, args.data_dir)
        if got is None:
            return 2
        splits, data_dir = got
    variants = args.variants.split(",") if args.variants else None
    rank0 = not distributed or dist.get_rank() == 0
    earlier = None
    if args.init_from:
        from core.weights import WeightsError, read_card

        try:
            earlier = read_card(args.init_from)  # read now: training may write over this very folder
        except WeightsError as exc:
            print(f"--init-from: {exc}", file=sys.stderr)
            return 2
    t0 = time.time()
    served, model, fields = train_task(task, splits, recipe, device, args.seed, variants,
                                       progress=not args.no_progress, config_overrides=overrides,
                                       max_steps=args.max_steps, init_from=args.init_from)
    extra = fields.pop("_extra")
    stages = []
    if earlier is not None:  # the card tells the whole story: every earlier stage, its epochs before these
        old_hist = earlier.get("history") or {}
        for name, recs in fields["history"].items():
            before = list(old_hist.get(name, []))
            fields["history"][name] = before + [dict(r, epoch=r["epoch"] + len(before)) for r in recs]
            comp = fields["comparison"][name]
            old_best = (earlier.get("comparison") or {}).get(name, {}).get("best_epoch")
            # best epoch 0: no new epoch beat the weights it started from, which keep their earlier best epoch
            best = comp["best_epoch"] + len(before) if comp["best_epoch"] else (old_best or len(before))
            comp["epochs"], comp["best_epoch"] = comp["epochs"] + len(before), best
            prev_secs = (earlier.get("comparison") or {}).get(name, {}).get("train_seconds")
            if isinstance(prev_secs, (int, float)):  # like epochs: all stages together
                comp["train_seconds"] = round(comp["train_seconds"] + prev_secs, 1)
        prev = earlier.get("training") or {}
        stages = list(prev.get("stages", [])) + [{k: v for k, v in prev.items() if k != "stages"}]
    if rank0:
        files = []
        for f in splits.files:
            f = os.fspath(f)
            rel = os.path.relpath(f, data_dir) if data_dir else os.path.basename(f)
            files.append({"path": rel, "sha256": sha256_file(f), "bytes": os.path.getsize(f)})
        card = dict(name=task.name, title=task.title, shape=task.shape, summary=task.summary, **fields,
                    metric=recipe.metric, higher_is_better=recipe.higher_is_better, anchors=recipe.anchors,
                    meta=splits.meta,
                    dataset={"description": splits.dataset or ("synthetic" if args.synthetic else ""),
                             "source": task.data_source, "synthetic": bool(args.synthetic), "files": files},
                    training={"command": training_command(argv), "seed": args.seed, "device": str(device),
                              "profile": args.profile or "default",
                              "world_size": dist.get_world_size() if distributed else 1,
                              "recipe": asdict(recipe), "wall_seconds": round(time.time() - t0, 1)})
        if stages:
            card["training"]["stages"] = stages  # earlier training runs this one continued, oldest first
        out = args.out or task.weights_path()
        card = save_weights(out, model.cpu(), card, {n: m.cpu() for n, m in extra.items()})
        print(f"wrote {out}: served {served}, test {card['metrics']}")
    if distributed:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
