"""Core speed, measured side by side in one run: forward+backward at B=64, T=100, H=256 for every classic cell,
and for minGRU / minLSTM at B=8, H=128 and T = 64, 512, 4096.

  fused / raw      core.layers.Recurrent (fused path) against the bare torch module   target <= 1.05 (1 thread)
  stepwise / fused the explicit loop the inspector uses, against the fused path      target <= 2.5 (T=100), at 1 and 2 threads
  loop / scan      minGRU / minLSTM: their own stepwise loop against their parallel scan (how many times faster the
                   scan is)                                                            target >= 20 at T=4096
  scan / GRU       the parallel scan against torch's fused nn.GRU of the same size     target <= 1.0 at T >= 512

At one thread every run is timed in the calling thread's CPU time (time.thread_time: what the run cost, whatever
else the host is doing); at two threads in wall time (the second thread's share only shows there). The fused path
is the torch module's own call, so fused / raw only tells whether the wrapper adds anything: it is judged at one
thread, and printed as information at two, where wall-clock noise of a few percent is larger than what it checks.

Runs are interleaved (raw, fused, stepwise, raw, ...); each ratio is the median over the repeats of the ratio of
two runs timed back to back (a paired estimate: both runs of a pair meet the same load, and a stray slow pair does
not decide it); the times printed are the fastest run of each. Prints one line per cell, device and thread count
(and sequence length), then PASS/FAIL.
Usage: python bench/core_speed.py [--repeats N] [--scan-repeats N] [--threads 1,2] [--part all|cells|scan]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.layers import CELLS, MIN_CELLS, Recurrent  # noqa: E402

TARGET_FUSED, TARGET_STEPWISE = 1.05, 2.5
SCAN_T = (64, 512, 4096)  # sequence lengths of the scan table
TARGET_SCAN_LOOP, SCAN_LOOP_AT = 20.0, 4096  # loop / scan >= 20 at T = 4096
TARGET_SCAN_GRU, SCAN_GRU_FROM = 1.0, 512  # scan / nn.GRU <= 1 (not slower) at T >= 512


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_fb(fn, x, device, clock=time.perf_counter) -> float:
    _sync(device)
    t0 = clock()
    out = fn(x)
    out = out[0] if isinstance(out, tuple) else out
    out.float().pow(2).mean().backward()
    _sync(device)
    return clock() - t0


def bench(cell: str, device: torch.device, B: int, T: int, H: int, repeats: int) -> dict:
    torch.manual_seed(0)
    core = Recurrent(cell, H, H).to(device)
    raw = type(core.rnn)(H, H, batch_first=True, **({"nonlinearity": core.rnn.nonlinearity} if cell.startswith("rnn")
                                                   else {})).to(device)
    raw.load_state_dict(core.rnn.state_dict())
    runs = {"raw": (lambda v: raw(v)), "fused": (lambda v: core(v)),
            "stepwise": (lambda v: core.forward_stepwise(v)[0])}
    r = _interleaved(runs, torch.randn(B, T, H, device=device), device, repeats)
    paired = r.pop("paired")
    return {"cell": cell, **r, "fused_over_raw": paired("fused", "raw"), "stepwise_over_fused": paired("stepwise", "fused")}


def _interleaved(runs: dict, x: torch.Tensor, device: torch.device, repeats: int) -> dict:
    """Each run timed forward+backward ``repeats`` times, interleaved after a warm-up: device, clock, best ms per run
    (``<name>_ms``) and ``paired(a, b)``, the median over the repeats of a_i / b_i (each pair timed back to back).
    One thread on a CPU is timed by the thread's CPU clock (other processes do not count), else by the wall clock."""
    times = {k: [] for k in runs}
    one_thread_cpu = device.type == "cpu" and torch.get_num_threads() == 1
    clock = time.thread_time if one_thread_cpu else time.perf_counter
    for fn in runs.values():  # warm-up
        time_fb(fn, x, device)
    for _ in range(repeats):
        for k, fn in runs.items():
            times[k].append(time_fb(fn, x, device, clock))

    def paired(a: str, b: str) -> float:
        return statistics.median(p / q for p, q in zip(times[a], times[b]))

    return {"device": device.type, "clock": "cpu" if one_thread_cpu else "wall",
            **{f"{k}_ms": 1000 * min(v) for k, v in times.items()}, "paired": paired}


def bench_scan(cell: str, device: torch.device, B: int, T: int, H: int, repeats: int) -> dict:
    """One min cell at one length: its parallel scan, its own stepwise loop (the inspector's path) and torch's fused
    nn.GRU of the same size, forward+backward, interleaved; paired ratios as in ``bench``."""
    torch.manual_seed(0)
    core = Recurrent(cell, H, H).to(device)
    gru = torch.nn.GRU(H, H, batch_first=True).to(device)
    runs = {"scan": (lambda v: core(v)), "loop": (lambda v: core.forward_stepwise(v)[0]), "gru": (lambda v: gru(v))}
    r = _interleaved(runs, torch.randn(B, T, H, device=device), device, repeats)
    paired = r.pop("paired")
    return {"cell": cell, "T": T, **r, "loop_over_scan": paired("loop", "scan"), "scan_over_gru": paired("scan", "gru")}


def scan_verdict(r: dict) -> bool | None:
    """PASS (True) / FAIL (False) against the targets that apply at this length; None where none does (T=64)."""
    checks = []
    if r["T"] >= SCAN_LOOP_AT:
        checks.append(r["loop_over_scan"] >= TARGET_SCAN_LOOP)
    if r["T"] >= SCAN_GRU_FROM:
        checks.append(r["scan_over_gru"] <= TARGET_SCAN_GRU)
    return all(checks) if checks else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--B", type=int, default=64)
    ap.add_argument("--T", type=int, default=100)
    ap.add_argument("--H", type=int, default=256)
    ap.add_argument("--threads", default="1,2", help="CPU thread counts to run at, comma-separated (0: as is)")
    ap.add_argument("--scan-repeats", type=int, default=9, help="repeats of each run in the scan table")
    ap.add_argument("--part", choices=["all", "cells", "scan"], default="all",
                    help="cells: the classic cells' table only; scan: the minGRU / minLSTM table only")
    args = ap.parse_args(argv)
    threads = [int(t) for t in str(args.threads).split(",") if t.strip()]
    ok = True
    if args.part in ("all", "cells"):
        ok &= _cells_table(args, threads)
    if args.part in ("all", "scan"):
        ok &= _scan_table(args, threads)
    return 0 if ok else 1


def _settings(threads: list[int], *header: str):
    """Print the table's ``header`` lines, then yield (device, threads shown) for each thread count (set as it comes)
    and device: the GPU once, with the first count."""
    for line in header:
        print(line)
    for n in threads:
        if n:
            torch.set_num_threads(n)
        cuda = [torch.device("cuda")] if torch.cuda.is_available() and n == threads[0] else []
        for dev in [torch.device("cpu"), *cuda]:
            yield dev, (str(torch.get_num_threads()) if dev.type == "cpu" else "-")


def _scan_table(args, threads: list[int]) -> bool:
    ok = True
    for dev, shown in _settings(threads, "\nminGRU / minLSTM: parallel scan against its own stepwise loop and against "
                                f"fused nn.GRU, forward+backward, B=8 H=128, median of {args.scan_repeats} paired "
                                "ratios of interleaved runs",
                                f"{'device':<6} {'threads':>7} {'cell':<8} {'T':>5} {'scan ms':>9} {'loop ms':>9} "
                                f"{'GRU ms':>9} {'loop/scan':>10} {'scan/GRU':>9}"):
        for cell in MIN_CELLS:
            for T in SCAN_T:
                r = bench_scan(cell, dev, 8, T, 128, args.scan_repeats)
                good = scan_verdict(r)
                ok &= good is not False
                verdict = "-" if good is None else ("PASS" if good else "FAIL")
                print(f"{r['device']:<6} {shown:>7} {cell:<8} {T:>5} {r['scan_ms']:9.1f} {r['loop_ms']:9.1f} "
                      f"{r['gru_ms']:9.1f} {r['loop_over_scan']:9.1f}x {r['scan_over_gru']:9.2f}  {verdict:<4}  "
                      f"({r['clock']} time)", flush=True)
    print(f"targets: loop/scan >= {TARGET_SCAN_LOOP:g} at T={SCAN_LOOP_AT}, scan/GRU <= {TARGET_SCAN_GRU:g} at T >= "
          f"{SCAN_GRU_FROM} (- = no target at this length): {'PASS' if ok else 'FAIL'}")
    return ok


def _cells_table(args, threads: list[int]) -> bool:
    ok = True
    for dev, shown in _settings(threads, f"forward+backward, B={args.B} T={args.T} H={args.H}, median of {args.repeats} "
                                f"paired ratios of interleaved runs, torch {torch.__version__}",
                                f"{'device':<6} {'threads':>7} {'cell':<9} {'raw ms':>8} {'fused ms':>9} {'step ms':>9} "
                                f"{'fused/raw':>10} {'step/fused':>11}"):
        for cell in (c for c in CELLS if c not in MIN_CELLS):  # the min cells have no torch module: see _scan_table
            r = bench(cell, dev, args.B, args.T, args.H, args.repeats)
            judged_fused = r["clock"] == "cpu" or dev.type == "cuda"
            good = (r["fused_over_raw"] <= TARGET_FUSED or not judged_fused) and \
                r["stepwise_over_fused"] <= TARGET_STEPWISE
            ok &= good
            print(f"{r['device']:<6} {shown:>7} {cell:<9} {r['raw_ms']:8.1f} {r['fused_ms']:9.1f} "
                  f"{r['stepwise_ms']:9.1f} {r['fused_over_raw']:10.3f}{'' if judged_fused else '*'} "
                  f"{r['stepwise_over_fused']:10.2f}  {'PASS' if good else 'FAIL'}  ({r['clock']} time)")
    print(f"targets: fused/raw <= {TARGET_FUSED} (* = information only: wall time at 2 threads), stepwise/fused <= "
          f"{TARGET_STEPWISE}: {'PASS' if ok else 'FAIL'}")
    return ok


if __name__ == "__main__":
    sys.exit(main())
