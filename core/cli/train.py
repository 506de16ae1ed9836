"""python -m core.train: train a task's variants with its recipe and write the weights folder (model.safetensors,
card.json). The training itself is core.train's; this module reads the command line and says what it wrote.

    python -m core.train <task> --data-dir DIR [--variants a,b] [--epochs N] [--init-from weights/<task>] [--join]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import sys
import time
from dataclasses import asdict

import torch
import torch.distributed as dist

from core.calibrate import calibration_record, can_calibrate
from core.cli.common import cli_data, cli_task
from core.modelcard import Training
from core.paths import command_line
from core.task import Recipe, Splits, Task
from core.train import apply_profile, continue_story, dataset_record, join_card, make_card, pick_device, train_task
from core.weights import WeightsError, read_card, save_variant, save_weights, write_card


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _arguments() -> argparse.ArgumentParser:
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
    ap.add_argument("--join", action="store_true",
                    help="with --variants: train only these new variants and add their comparison rows (and kept "
                         "weights) to the card already in the weights folder; the served model is left as it is")
    ap.add_argument("--force", action="store_true",
                    help="with --synthetic: write over weights that were trained on real data (refused without it)")
    return ap


def synthetic_overwrite(out, synthetic: bool) -> str | None:
    """Why a --synthetic run must not write into ``out``: the weights there were trained on real data. None when
    the folder holds no card, a synthetic one, or an unreadable one (nothing real to lose)."""
    if not synthetic:
        return None
    try:
        card = read_card(out)
    except WeightsError:
        return None
    if card.dataset.synthetic:
        return None
    return (f"{out} holds weights trained on real data ({card.dataset.description or card.name}); "
            "a --synthetic run would replace them with a smoke-test model. Pass --out DIR to write elsewhere, or "
            "--force to replace them.")


def _start_processes(args) -> tuple[torch.device, bool]:
    """The device, and whether this is one of several processes (torchrun: the process group is started here)."""
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = pick_device(args.device)
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
    return device, distributed


def _recipe_and_overrides(task: Task, args) -> tuple[Recipe, dict]:
    """The task's recipe with --profile and the command line's changes; the --set config changes."""
    recipe = apply_profile(task.recipe, args.profile) if args.profile else copy.deepcopy(task.recipe)
    for k in ("epochs", "batch_size", "lr", "max_minutes"):
        if getattr(args, k) is not None:
            setattr(recipe, k, getattr(args, k))
    overrides = {}
    for kv in args.set:
        k, _, v = kv.partition("=")
        overrides[k] = _parse_value(v)
    return recipe, overrides


def training_command(argv: list[str] | None = None) -> str:
    """The command line running now, as a user would type it (absolute paths shortened by core.paths)."""
    if argv is None:
        argv = sys.argv[1:]
    return command_line("python -m core.train", argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments().parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device, distributed = _start_processes(args)
    task = cli_task(args.task, show_plugin_errors=True)
    if task is None:
        return 2
    recipe, overrides = _recipe_and_overrides(task, args)
    if args.synthetic:
        splits, data_dir = task.synthetic_data(args.seed), None
    else:
        got = cli_data(task, args.data_dir)
        if got is None:
            return 2
        splits, data_dir = got
    if args.join:
        return _join(task, args, argv, recipe, overrides, splits, device)
    out = args.out or task.weights_path()
    refused = None if args.force else synthetic_overwrite(out, args.synthetic)
    if refused:
        print(refused, file=sys.stderr)
        return 2
    if not args.no_progress:
        print(f"[{task.name}] training; the weights and card will be written to {out}", file=sys.stderr)
    earlier = None
    if args.init_from:
        try:
            earlier = read_card(args.init_from)  # read now: training may write over this very folder
        except WeightsError as exc:
            print(f"--init-from: {exc}", file=sys.stderr)
            return 2
    t0 = time.time()
    trained = train_task(task, splits, recipe, device, args.seed, args.variants.split(",") if args.variants else None,
                         progress=not args.no_progress, config_overrides=overrides, max_steps=args.max_steps,
                         init_from=args.init_from)
    stages = continue_story(trained, earlier) if earlier is not None else None
    if not distributed or dist.get_rank() == 0:
        training = Training(command=training_command(argv), seed=args.seed, device=str(device),
                            profile=args.profile or "default",
                            world_size=dist.get_world_size() if distributed else 1, recipe=asdict(recipe),
                            wall_seconds=round(time.time() - t0, 1), stages=stages)
        card = make_card(task, recipe, trained, splits, dataset_record(task, splits, data_dir, args.synthetic),
                         training)
        if can_calibrate(task):  # a classifier: its temperature, fitted on validation (core.calibrate)
            card.calibration = calibration_record(task, trained.model, splits, training.command, "served variant")
        card = save_weights(out, trained.model.cpu(), card, {n: m.cpu() for n, m in trained.kept.items()})
        print(f"wrote {out}: served {trained.served}, test {card.metrics}")
    if distributed:
        dist.destroy_process_group()
    return 0


def _join(task: Task, args, argv, recipe: Recipe, overrides: dict, splits: Splits, device) -> int:
    """--join: train the named variants and add them to the existing card (core.weights writes the files)."""
    if not args.variants or args.init_from:
        print("--join needs --variants (the new ones) and no --init-from", file=sys.stderr)
        return 2
    out = args.out or task.weights_path()
    try:
        card = read_card(out)
    except WeightsError as exc:
        print(f"--join: {exc}", file=sys.stderr)
        return 2
    if bool(args.synthetic) != bool(card.dataset.synthetic):
        print(f"--join: the card in {out} was trained on {'synthetic' if card.dataset.synthetic else 'real'} data; "
              "a joined variant must be trained on the same", file=sys.stderr)
        return 2
    taken = [n for n in args.variants.split(",") if n in card.comparison]
    if taken:  # before any training: --join adds, it never replaces
        print(f"--join: the card already has {', '.join(taken)}; train those without --join, or pick other "
              "variants", file=sys.stderr)
        return 2
    t0 = time.time()
    trained = train_task(task, splits, recipe, device, args.seed, args.variants.split(","),
                         progress=not args.no_progress, config_overrides=overrides, max_steps=args.max_steps)
    card = join_card(card, trained, training_command(argv), str(device), args.profile or "default", args.seed,
                     round(time.time() - t0, 1))
    if recipe.keep_variants:
        for name, model in {trained.served: trained.model, **trained.kept}.items():
            card.comparison[name] = dataclasses.replace(card.comparison[name],
                                                        **save_variant(out, name, model.cpu()))
    write_card(out, card)
    rows = ", ".join(f"{n}: test {trained.comparison[n].test}" for n in trained.comparison)
    print(f"joined {out}: {rows}; served model unchanged ({card.served_variant})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
