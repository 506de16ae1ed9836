"""What the app itself adds to the server's memory, judged against a bare process measured in the same run (issue 25).

The resident size of a Streamlit server is mostly libraries: ``import torch`` alone is 580-700 MiB with PyPI's CUDA
wheel. An absolute target then judges the wheel and the machine, not the app. So this bench measures, side by side:

  bare     a fresh ``python -c "import torch, streamlit, altair, pandas"``: its RSS after the imports
           (and, for information, the same plus torchvision, which the image pages import)
  pages    the server after one websocket session has opened every page once (bench/_wsclient.py: the server's
           work, no browser on the same cores)
  long     the same server after a long session: every task page, each of its tabs (?tab=...), its buttons
           clicked (demos), for ``--rounds`` rounds; after each round a fresh session opens every task page too

and judges what the app adds: pages - bare <= 200 MiB, long - bare <= 300 MiB, each read once the server has
handed its freed heap back (31 s later, after one more page: core.ui.server trims at most every 30 s; the reading right
after the last page is printed beside it). Printed beside them: the absolute
figures, how many models the server loaded and evicted (its log; core.ui.load keeps at most RNNLAB_MAX_MODELS),
and the growth between the long session's rounds (flat = no trend).

  nice -n 10 python bench/memory.py                 # the figures (a few minutes on a 2-core machine)
  nice -n 10 python bench/memory.py --rounds 1 --max-clicks 1    # a quicker look
  RNNLAB_MAX_MODELS=4 python bench/memory.py        # the same under a tighter model bound
Exit code 0 when both figures meet their targets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import _common as C  # noqa: E402

PAGES_TARGET, LONG_TARGET = 200.0, 300.0  # MiB the app may add over the bare process (issue 25)
TABS = ("Try it", "Inspect", "Model card")  # core.ui.page.TABS; ?tab=<name> opens one
BARE_IMPORTS = "torch, streamlit, altair, pandas"

_RSS_SNIPPET = """
import time, json, re, sys
t0 = time.perf_counter()
import {mods}
dt = time.perf_counter() - t0
rss = 0.0
for line in open('/proc/self/status'):
    if line.startswith('VmRSS:'):
        rss = int(line.split()[1]) / 1024
print(json.dumps({{"rss": rss, "seconds": dt}}), flush=True)
sys.stdin.read()  # stay alive while the parent reads /proc/<pid>/smaps
"""

# Resident memory by kind, read from /proc/<pid>/smaps (MiB), the same way for the bare process and the server
KINDS = ("model weights", "torch libraries", "CUDA libraries", "other libraries", "anonymous")
_CUDA = re.compile(r"/nvidia/|cuda|cudnn|cublas|cusparse|nccl|nvrtc|nvJitLink|cufft|curand|cusolver|nvshmem|cupti|cufile")


def smaps_kinds(pid: int | str) -> dict[str, float]:
    """{kind: MiB resident} of a process: its models' memory-mapped weights (*.safetensors), torch's own libraries
    (code and data), the CUDA libraries that PyPI's torch wheel loads, every other mapped file (Python extensions,
    pyarrow, ...), and anonymous memory (Python objects, tensors, malloc's heap, thread stacks)."""
    kinds = dict.fromkeys(KINDS, 0.0)
    name = ""
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                parts = line.split()
                name = parts[5] if len(parts) > 5 else ""
            elif line.startswith("Rss:"):
                mib = int(line.split()[1]) / 1024
                kind = ("model weights" if name.endswith(".safetensors") else "CUDA libraries" if _CUDA.search(name)
                        else "torch libraries" if "/torch/lib/" in name else "other libraries" if name.startswith("/")
                        else "anonymous")
                kinds[kind] += mib
    return kinds


def bare_rss(mods: str = BARE_IMPORTS) -> dict:
    """{rss, seconds, cuda, kinds} (MiB, s, MiB, {kind: MiB}) of a fresh interpreter of this venv after
    ``import <mods>``; ``cuda`` is what the CUDA libraries' mapped pages account for (a CPU-only torch wheel does not
    load them)."""
    proc = subprocess.Popen([sys.executable, "-c", _RSS_SNIPPET.format(mods=mods)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=C.REPO)
    try:
        out = json.loads(proc.stdout.readline())
        out["kinds"] = smaps_kinds(proc.pid)
    finally:
        proc.stdin.close()
        proc.wait(60)
    out["cuda"] = out["kinds"]["CUDA libraries"]
    return out


def print_kinds(server: dict[str, float], bare: dict[str, float], label: str) -> None:
    """The server's resident memory by kind beside the bare process's, and what the app adds of each."""
    print(f"   {label}, by kind (server - bare):  " + ";  ".join(
        f"{k} {server[k]:.0f} - {bare[k]:.0f} = {server[k] - bare[k]:+.0f}" for k in KINDS), flush=True)


def model_events(log_path: Path) -> tuple[int, int]:
    """(models loaded, models evicted) according to the server log (core.ui.load's log lines)."""
    try:
        text = Path(log_path).read_text(errors="replace")
    except OSError:
        return 0, 0
    return len(re.findall(r"rnnlab\.ui: loaded ", text)), len(re.findall(r"rnnlab\.ui: evicted ", text))


async def visit_every_page(base: str, problems: list[str]) -> None:
    from bench._wsclient import Session

    async with Session(base, timeout=300) as s:
        await s.open("/")
        for label, path, _ in C.page_urls():
            r = await s.open(path)
            problems += [f"{label}: {p}" for p in r.problems()]


async def long_session(base: str, rounds: int, max_clicks: int, rss, problems: list[str]) -> list[float]:
    """One session visiting every task page's tabs and clicking its buttons, ``rounds`` times; each round also a
    fresh session opens every task page and closes again (many visitors over time). RSS after each round."""
    from bench._wsclient import Session

    paths = [(label, path) for label, path, is_task in C.page_urls() if is_task]
    after = []
    async with Session(base, timeout=300) as s:
        await s.open("/")
        for rnd in range(rounds):
            for label, path in paths:
                for tab in TABS:
                    r = await s.open(path, query=f"tab={tab.replace(' ', '+')}")
                    problems += [f"{label} {tab}: {p}" for p in r.problems()]
                    for _, bid in r.buttons[:max_clicks]:
                        c = await s.click(bid)
                        problems += [f"{label} {tab} click: {p}" for p in c.problems()]
            async with Session(base, timeout=300) as fresh:
                await fresh.open("/")
                for label, path in paths:
                    problems += [f"fresh {label}: {p}" for p in (await fresh.open(path)).problems()]
            after.append(rss())
            print(f"   round {rnd + 1}/{rounds}: server RSS {after[-1]:.0f} MiB", flush=True)
    return after


async def settled(base: str, pid: int) -> float:
    """RSS once the server has handed freed heap pages back: core.ui.server.release_free_memory runs after a page at
    most every 30 s, so a reading right after a burst of pages holds up to 30 s of freed-but-kept heap. Wait past
    that, let one more page run (a visitor's next click) and read again."""
    from bench._wsclient import Session

    await asyncio.sleep(31)
    async with Session(base, timeout=300) as s:
        await s.open("/")
    await asyncio.sleep(1)
    return C.rss_mb(pid)


def run(args, figures: list | None = None) -> bool:
    """Measure and print; returns whether both figures meet their targets and no error was seen. ``figures``, if
    given, gets (key, label, value, target, ok) of every judged line (bench/run_all.py prints them)."""
    figures = [] if figures is None else figures
    b = bare_rss()
    bare, bare_tv = b["rss"], bare_rss(BARE_IMPORTS + ", torchvision")["rss"]
    print(f"bare process: import {BARE_IMPORTS}: {bare:.0f} MiB ({b['seconds']:.1f} s), of which CUDA libraries "
          f"{b['cuda']:.0f} MiB; + torchvision: {bare_tv:.0f} MiB (torch {_torch_version()})")
    env, status = C.weights_overlay()
    print("weights: " + ", ".join(f"{k}: {v}" for k, v in status.items()))
    port = C.free_port()
    base = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkstemp(prefix="rnnlab-memory-", suffix=".log")[1])
    extra = {"RNNLAB_MAX_MODELS": os.environ["RNNLAB_MAX_MODELS"]} if os.environ.get("RNNLAB_MAX_MODELS") else {}
    proc = C.start_server(port, log, env={**env, **extra})
    problems: list[str] = []
    try:
        C.wait_health(base, proc, timeout=300)
        pid = C.server_pid(proc)
        t0 = time.perf_counter()
        asyncio.run(visit_every_page(base, problems))
        time.sleep(2.0)  # anything the server does after the last answer (background imports) is done
        pages = settle_and_show(base, pid, b["kinds"], "the last page", "after every page")
        loaded_pages, _ = model_events(log)
        print(f"every page opened in {time.perf_counter() - t0:.0f} s: server {pages:.0f} MiB, {loaded_pages} models "
              "loaded", flush=True)
        t0 = time.perf_counter()
        rounds, long = [], float("nan")
        if args.rounds > 0:  # --rounds 0 (bench/run_all.py --quick): the "after every page" figure only
            rounds = asyncio.run(long_session(base, args.rounds, args.max_clicks, lambda: C.rss_mb(pid), problems))
            long = settle_and_show(base, pid, b["kinds"], "the long session", "after the long session")
            loaded, evicted = model_events(log)
            print(f"long session ({args.rounds} rounds, {time.perf_counter() - t0:.0f} s): {loaded} model loads, "
                  f"{evicted} evictions")
        log_errs = C.log_errors(log)
    finally:
        C.stop_server(proc)
    rows = [(f"app adds after every page ({pages:.0f} - {bare:.0f} MiB)", pages - bare, PAGES_TARGET)]
    if rounds:
        rows.append((f"app adds after a long session ({long:.0f} - {bare:.0f} MiB)", long - bare, LONG_TARGET))
    ok = True
    print()
    for (label, v, target), key in zip(rows, ("memory: app adds after every page (- bare)",
                                              "memory: app adds after a long session (- bare)")):
        ok &= v <= target
        figures.append((key, label, f"{v:+.0f} MiB", f"<= {target:.0f} MiB over bare", v <= target))
        print(C.line(label, f"{v:+.0f} MiB", f"<= {target:.0f} MiB", v <= target))
    if len(rounds) > 1:
        print(C.line("growth between the long session's rounds", f"{rounds[-1] - rounds[0]:+.0f} MiB", "none (info)",
                     None))
    print(C.line("importing torchvision would add (the app builds from core.vision)", f"{bare_tv - bare:+.0f} MiB",
                 "none (info)", None))
    if b["cuda"] > 0:
        print(C.line("bare process without the CUDA libraries (a CPU-only wheel, est.)", f"{bare - b['cuda']:.0f} MiB",
                     "none (info)", None))
        both = f"{pages - b['cuda']:.0f} / {long - b['cuda']:.0f} MiB" if rounds else f"{pages - b['cuda']:.0f} MiB / -"
        print(C.line("  the server after every page / a long session, the same way", both, "none (info)", None))
    errs = problems + log_errs
    figures.append(("memory: errors seen", "memory run: errors seen by the sessions / in the server log",
                    str(len(errs)), "0", not errs))
    print(C.line("errors seen by the sessions / in the server log", str(len(errs)), "0", not errs))
    for e in errs[:10]:
        print("   " + e[:200])
    return ok and not errs


def _torch_version() -> str:
    try:
        from importlib.metadata import version

        return version("torch")
    except Exception:  # noqa: BLE001
        return "?"


def settle_and_show(base: str, pid: int, bare_kinds: dict, after: str, label: str) -> float:
    """The server's RSS (MiB) right after ``after`` and once settled, printed with its memory by kind beside the bare
    process's; returns the settled figure."""
    now = C.rss_mb(pid)
    settled_mb = asyncio.run(settled(base, pid))
    print(f"   right after {after} {now:.0f} MiB; settled {settled_mb:.0f} MiB", flush=True)
    print_kinds(smaps_kinds(pid), bare_kinds, f"settled {label}")
    return settled_mb


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2, help="rounds of the long session (every task page, every tab)")
    ap.add_argument("--max-clicks", type=int, default=4, help="buttons clicked per page and tab, at most")
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress lines appear as they happen, also into a log file
    ok = run(args)
    print("\nmemory: " + C.verdict(ok))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
