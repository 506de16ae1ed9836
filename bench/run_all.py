"""Every performance figure of issue 12, each with its target and PASS/FAIL, in one run.

  1. cold start and first open of each task page             (bench/latency.py, Chromium)
  2. predict p50/p95 per task per demo, Inspect p95, page rerun (bench/latency.py)
  3. server memory after visiting every page                   (bench/latency.py)
  4. 20 concurrent browser sessions                            (bench/latency.py)
  5. core ratios (bench/core_speed.py, its own lines), and training throughput (samples/s) of each task's
     recipe on CPU -- and on a GPU with the speed-up where there is one
  6. speed as a visitor feels it: demo click, Inspect tab, sidebar open, p95 as ratios to a reference rerun
     (bench/visitor.py, Chromium; --no-visitor skips it)

Usage: python bench/run_all.py [--quick] [--no-browser]   (nice -n 10 on a shared machine)
--quick: fewer repeats, 5 concurrent sessions: a smoke run, not the figures to report.
Exit code 0 when every figure meets its target.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import _common as C  # noqa: E402
from bench import latency as L  # noqa: E402
from bench import visitor as V  # noqa: E402


def core_speed(repeats: int) -> list[L.Row]:
    """Run bench/core_speed.py as it is and print its lines; its verdict becomes one row."""
    print("\n== core: bench/core_speed.py ==")
    t0 = time.time()
    proc = subprocess.run([sys.executable, str(C.REPO / "bench" / "core_speed.py"), "--repeats", str(repeats),
                           "--threads", "1,2"], cwd=C.REPO, capture_output=True, text=True)
    out = (proc.stdout + proc.stderr).rstrip()
    print(out)
    last = [ln for ln in out.splitlines() if ln.startswith("targets:")]
    ok = proc.returncode == 0 and bool(last) and last[-1].rstrip().endswith("PASS")
    return [L.Row(f"core_speed.py ({time.time() - t0:.0f} s): fused/raw and stepwise/fused",
                  "see lines above", "core_speed targets", ok)]


def _throughput(task, device, seconds: float, max_steps: int) -> tuple[float, int]:
    import torch

    from core.train import to_device

    splits = task.synthetic_data(0)
    torch.manual_seed(0)
    model = task.build_model(copy.deepcopy(task.config), splits.meta).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=task.recipe.lr, weight_decay=task.recipe.weight_decay)
    bs = task.recipe.batch_size

    def step(batch) -> int:
        batch = to_device(batch, device)
        loss = task.loss(model, batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if task.recipe.clip_norm:
            torch.nn.utils.clip_grad_norm_(model.parameters(), task.recipe.clip_norm)
        opt.step()
        return task.batch_size_of(batch)

    step(next(iter(task.batches(splits.train, bs, shuffle=True, seed=0))))  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    seen = steps = 0
    t0 = time.perf_counter()
    while steps < max_steps and time.perf_counter() - t0 < seconds:
        for batch in task.batches(splits.train, bs, shuffle=True, seed=steps):
            seen += step(batch)
            steps += 1
            if steps >= max_steps or time.perf_counter() - t0 >= seconds:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - t0), steps


def training_throughput(seconds: float) -> list[L.Row]:
    import torch

    from core.registry import discover
    from core.weights import CARD_FILE, read_card

    torch.set_num_threads(1)
    gpu = torch.cuda.is_available()
    print(f"\n== training throughput: each task's recipe (batch size, optimizer, clipping) on its synthetic data, "
          f"1 CPU thread{', and CUDA' if gpu else ''} ==")
    print("   (synthetic splits are small, so batches can be smaller than the recipe's; 'card' is the rate "
          "core.train recorded on the real data)")
    rows = []
    for name, task in discover().tasks.items():
        cpu, steps = _throughput(task, torch.device("cpu"), seconds, 50)
        card_rate = ""
        try:
            if (Path(task.weights_path()) / CARD_FILE).is_file():
                card = read_card(task.weights_path())
                hist = card.history.get(card.served_variant, [])
                if hist and hist[-1].samples_per_s:
                    card_rate = f"; card {hist[-1].samples_per_s:.0f}/s on {card.training.device}"
        except Exception:  # noqa: BLE001 -- a card we cannot read just has no recorded rate
            pass
        value = f"{cpu:.0f} samples/s"
        if gpu:
            g, _ = _throughput(task, torch.device("cuda"), seconds, 200)
            value += f", GPU {g:.0f}/s ({g / cpu:.1f}x)"
        rows.append(L.Row(f"train {name} (batch {task.recipe.batch_size}, {steps} steps{card_rate})", value,
                          "- (measured)", None))
        print(rows[-1])
    if not gpu:
        print("   no GPU on this host: GPU throughput and speed-up not measured here")
    return rows


def main(argv=None) -> int:
    ap = L.parser()
    ap.description = __doc__
    ap.formatter_class = argparse.RawDescriptionHelpFormatter
    ap.add_argument("--quick", action="store_true", help="a smoke run: fewer repeats and sessions")
    ap.add_argument("--core-repeats", type=int, default=15)
    ap.add_argument("--train-seconds", type=float, default=4.0)
    ap.add_argument("--no-visitor", action="store_true", help="skip bench/visitor.py's browser figures")
    args = ap.parse_args(argv)
    if args.quick:
        args.repeats, args.inspect_repeats, args.rerun_repeats = 5, 2, 3
        args.sessions, args.seconds, args.burst_rounds, args.core_repeats, args.train_seconds = 5, 10.0, 1, 3, 1.5
    import torch

    print(f"RNN Lab benchmarks -- {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}: "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    t0 = time.time()
    rows = L.run(args)
    rows += core_speed(args.core_repeats)
    rows += training_throughput(args.train_seconds)
    if not args.no_browser and not args.no_visitor:
        rows += V.run(V.options(quick=args.quick))
    print(f"\n== summary ({time.time() - t0:.0f} s) ==")
    for r in rows:
        if r.ok is not None:
            print(r)
    ok = L.summary(rows)
    print(f"\nRESULT {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
