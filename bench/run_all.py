"""Every performance figure of issues 12 and 25 in one run, each JUDGED AS A RATIO measured side by side in the same
run (so the verdict does not flip with the CPU), with its target and PASS/FAIL; the absolute figures are printed
beside each ratio, as information (issue 25).

  1. predict p95 / the served model's own forward on that demo input; Inspect p95 / its forward+backward
     (bench/latency.py, in process; targets per task, reasons there)
  2. cold start (process start -> Home drawn) / the same for a bare Streamlit page importing torch, streamlit,
     altair and pandas (and, as information, / a bare `python -c "import torch, streamlit, altair, pandas"`);
     each page rerun after a demo click / that demo's predict p50 (bench/latency.py, Chromium; information)
  3. concurrency: N websocket sessions' p95 / one session's p95; a burst / (N x one rerun); RSS flat during it
  4. memory: what the app adds over a bare process, after every page and after a long session (bench/memory.py)
  5. core ratios (bench/core_speed.py, its own lines and verdict); training throughput of each task's recipe
     (samples/s: information)
  6. speed as a visitor feels it (bench/visitor.py, Chromium: ratios to a reference page's rerun), and from the
     same clicks: the Inspect tab's rerun / its inspect_model call (information; --no-visitor skips them)

Usage: python bench/run_all.py [--quick] [--no-browser] [--busy [N]] [--verdicts FILE]   (nice -n 10 on a shared
machine);  python bench/run_all.py --compare QUIET.tsv BUSY.tsv
--quick: fewer repeats, 5 concurrent sessions, memory after every page only (no long session): a smoke run, not the figures to report.
--no-browser: no Chromium (and no concurrency, which shares the browser's server); bench/memory.py still runs over
websockets unless --no-memory.
--busy [N]: N (default 1) CPU-bound processes (`python -c "while True: pass"`, at the bench's own niceness, not
pinned) run beside the whole bench and are stopped at its end: do the verdicts hold on a loaded machine?
--verdicts FILE: writes `figure<TAB>value<TAB>PASS|FAIL` for every judged figure (the figure's name has its numbers
blanked, so two runs line up); --compare A B prints, figure by figure, which verdicts held and which changed.
Exit code 0 when every figure meets its target (--compare: 0 when every verdict held).
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


def memory(quick: bool) -> list[L.Row]:
    """bench/memory.py's two figures (the app's own memory over a bare process, measured in the same run)."""
    from bench import memory as M

    print("\n== memory: what the app adds over a bare process (bench/memory.py) ==", flush=True)
    # --quick: the "after every page" figure only (the long session alone takes ~4 minutes on 2 busy cores)
    args = argparse.Namespace(rounds=0 if quick else 2, max_clicks=4)
    figs: list = []
    M.run(args, figs)
    return [L.Row(label, value, target, ok, key=key) for key, label, value, target, ok in figs]


def inspect_tab(out: dict) -> list[L.Row]:
    """From bench/visitor.py's clicks: each task's Inspect tab rerun (p95, Chromium) / its inspect_model call (p50, in
    process, the same run) -- what the tab adds on top of the inspection -- and the demo click's rerun / predict."""
    figs, calls = out.get("figs") or {}, out.get("calls") or {}
    rows = []
    print("\n== the Inspect tab's rerun / its inspect_model call (bench/visitor.py's clicks, first inspection of each "
          "demo) ==")
    for (fname, name), fig in figs.items():
        if fname != "inspect" or not fig.values or name not in calls:
            continue
        model = calls[name][1]
        r = C.ratio(C.pct(fig.values, 95), model)
        rows.append(L.Row(f"Inspect tab {name}: rerun p95 {L.ms(C.pct(fig.values, 95))}; inspect_model "
                          f"{L.ms(model)}", C.fmt_x(r, 1), f"info (aim <= {L.RERUN_RATIO:g}x inspect_model)", None,
                          key=f"Inspect tab rerun/inspect_model {name}"))
        print(rows[-1])
    return rows


def start_busy(n: int) -> list[subprocess.Popen]:
    """``n`` CPU-bound processes (a pure-Python busy loop each, at this process's niceness -- under ``nice -n 10`` the
    loop is as nice as the bench -- with no CPU affinity set: the scheduler puts them where it likes, as another
    program on the host would be)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop_busy(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def compare(a: str, b: str) -> int:
    va, vb = C.read_verdicts(a), C.read_verdicts(b)
    lines, held, changed = C.compare_verdicts(va, vb)
    print(f"A = {a} ({len(va)} figures), B = {b} ({len(vb)} figures)")
    for ln in lines:
        print(ln)
    print(f"\n{held} verdicts held, {changed} changed")
    return 0 if not changed else 1


def main(argv=None) -> int:
    ap = L.parser()
    ap.description = __doc__
    ap.formatter_class = argparse.RawDescriptionHelpFormatter
    ap.add_argument("--quick", action="store_true", help="a smoke run: fewer repeats and sessions")
    ap.add_argument("--core-repeats", type=int, default=15)
    ap.add_argument("--train-seconds", type=float, default=4.0)
    ap.add_argument("--no-visitor", action="store_true", help="skip bench/visitor.py's browser figures")
    ap.add_argument("--no-memory", action="store_true", help="skip bench/memory.py's figures")
    ap.add_argument("--busy", type=int, nargs="?", const=1, default=0, metavar="N",
                    help="run N CPU-bound processes (default 1) beside the whole bench")
    ap.add_argument("--verdicts", metavar="FILE", help="write figure<TAB>value<TAB>PASS|FAIL lines to FILE")
    ap.add_argument("--compare", nargs=2, metavar=("A", "B"), help="compare two --verdicts files and exit")
    args = ap.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    if args.quick:
        # 12 predict calls per demo, not 5: a verdict on a p95 of 5 calls is a verdict on the slowest one (one
        # outlier flipped a verdict between a quiet and a --busy run at 5)
        args.repeats, args.inspect_repeats, args.rerun_repeats = 12, 2, 3
        args.sessions, args.seconds, args.burst_rounds, args.core_repeats, args.train_seconds = 5, 10.0, 1, 9, 1.5
    sys.stdout.reconfigure(line_buffering=True)
    import torch

    busy = start_busy(args.busy)
    try:
        print(f"RNN Lab benchmarks -- {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}: "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
              f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        if busy:
            print(f"BUSY: {len(busy)} CPU-bound process(es) (python busy loop, nice {os.nice(0)}, not pinned; pids "
                  f"{', '.join(str(p.pid) for p in busy)}) run beside the whole bench")
        else:
            print("QUIET: no load of our own beside the bench (--busy adds some)")
        if args.quick:
            print("QUICK: a smoke run (few repeats): not the figures to report")
        t0 = time.time()
        ctx: dict = {}
        rows = L.run(args, ctx)
        if not args.no_memory:
            rows += memory(args.quick)
        rows += core_speed(args.core_repeats)
        rows += training_throughput(args.train_seconds)
        if not args.no_browser and not args.no_visitor:
            out: dict = {}
            rows += V.run(V.options(quick=args.quick), out)
            rows += inspect_tab(out)
    finally:
        stop_busy(busy)
    print(f"\n== summary ({time.time() - t0:.0f} s{'; BUSY x' + str(len(busy)) if busy else '; quiet'}) ==")
    for r in rows:
        if r.ok is not None:
            print(r)
    ok = L.summary(rows)
    if args.verdicts:
        n = C.write_verdicts(args.verdicts, rows)
        print(f"\n{n} verdicts written to {args.verdicts} (compare two runs: bench/run_all.py --compare A B)")
    print(f"\nRESULT {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
