"""Scale-out: sessions per second served by 1 vs 2 app processes behind nginx, on this machine (issue 25).

A Streamlit server runs every session's script in one Python process (one GIL): about one core. deploy/serve.py
puts N processes behind nginx with sticky sessions; this bench measures what the second process buys here.

A "session" is what a visitor does first, through nginx: GET / (nginx sets the sticky cookie), open the websocket
with that cookie (bench/_wsclient.py speaks Streamlit's protocol), run Home, open a task page, click its first demo,
close. ``--clients`` such visitors run back to back for ``--seconds`` against 1 process, then against 2; sessions/s
is completed sessions over the window. Printed: both rates, how the sessions spread over the processes, errors.

The verdict does not hang on the machine: how much a second process can help depends on how many cores are free
right now (another program busy beside us takes them, and so does this bench's own load generator). So the same run
also times a fixed CPU-bound job in one process alone and in two at once: ``parallelism`` = 2 x t_alone / t_both
(2.0 on two idle cores, ~1.0 when only one core is free), and the CPU the servers and the load generator used
(/proc). One process used u1 cores (its scripts share one GIL, but torch and protobuf work outside it); the cores
left to two are the parallelism less the load generator's, so the best two can do is
ideal = min(2 x u1, cores left) / u1. Target: ratio >= max(1, SHARE x ideal). The ratio against an absolute 1.5x
(two free cores) is printed beside it (information).

  nice -n 10 python bench/scale_out.py                    # ~4 minutes
  nice -n 10 python bench/scale_out.py --seconds 20 --clients 4     # a quicker look
Exit code 0 when the verdict is PASS (and no session failed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import _common as C  # noqa: E402
from bench._wsclient import Session  # noqa: E402
from deploy.serve import Cluster, find_nginx  # noqa: E402

SHARE = 0.7  # of the host's measured parallelism the second process must turn into sessions/s
IDEAL = 1.5  # information: what two free cores should give at least
COOKIE = "rnnlab_backend"  # deploy/nginx.conf.template
UPSTREAM_HEADER = "X-RNNLab-Upstream"


def first_visit(base: str, timeout: float = 60) -> tuple[str | None, str | None]:
    """GET / as a browser's first visit: (the sticky cookie nginx set, the upstream that answered)."""
    with urllib.request.urlopen(base + "/", timeout=timeout) as r:
        r.read()
        cookie = None
        for v in r.headers.get_all("Set-Cookie") or []:
            if v.startswith(COOKIE + "="):
                cookie = v.split(";", 1)[0].split("=", 1)[1]
        return cookie, r.headers.get(UPSTREAM_HEADER)


class BrowserSession(Session):
    """A bench/_wsclient.py session whose websocket carries the sticky cookie, as a browser's does; ``upstream``
    is the process nginx sent it to (its response header)."""

    def __init__(self, base: str, cookie: str | None = None, timeout: float = 120.0):
        super().__init__(base, timeout)
        self.cookie = cookie
        self.upstream: str | None = None

    async def connect(self) -> None:
        import websockets

        url = "ws" + self.base[len("http"):] + "/_stcore/stream"
        headers = {"Cookie": f"{COOKIE}={self.cookie}"} if self.cookie else {}
        self._ws = await asyncio.wait_for(
            websockets.connect(url, subprotocols=["streamlit"], max_size=None, open_timeout=self.timeout,
                               ping_interval=None, additional_headers=headers), self.timeout)
        self.upstream = self._ws.response.headers.get(UPSTREAM_HEADER)


async def one_session(base: str, path: str, timeout: float = 120) -> tuple[str | None, list[str]]:
    """A visitor's first minute through nginx; (upstream, problems)."""
    cookie, _ = await asyncio.to_thread(first_visit, base, timeout)
    async with BrowserSession(base, cookie, timeout) as s:
        problems = []
        for r in (await s.open("/"), await s.open(path)):
            problems += r.problems()
        if r.buttons:
            problems += (await s.click(r.buttons[0][1])).problems()
        else:
            problems.append(f"no demo button on {path}")
        return s.upstream, problems


async def drive(base: str, path: str, clients: int, seconds: float) -> dict:
    done, errors, spread = [0], [], Counter()
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            try:
                up, problems = await one_session(base, path)
            except Exception as exc:  # noqa: BLE001 -- a failed session is counted, the bench goes on
                errors.append(f"{type(exc).__name__}: {exc}"[:160])
                continue
            if problems:
                errors.append("; ".join(problems)[:160])
            else:
                done[0] += 1
                spread[up] += 1

    t0, cpu0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - t0  # the last sessions finish after the deadline: count their time too
    return {"sessions": done[0], "wall": wall, "rate": done[0] / wall, "errors": errors, "spread": spread,
            "client_cores": (time.process_time() - cpu0) / wall}  # what the load generator itself used


async def warm(cluster: Cluster, path: str) -> None:
    """Every process loads the page's model once before the clock starts (straight to its port)."""
    for i in range(cluster.n):
        async with Session(cluster.app_url(i), timeout=300) as s:
            await s.open("/")
            r = await s.open(path)
            if r.buttons:
                await s.click(r.buttons[0][1])


_SPIN = "import time; t=time.perf_counter(); s=0\nfor i in range({n}): s += i*i\nprint(time.perf_counter()-t)"


def parallelism(n: int = 6_000_000) -> float:
    """2 x (one CPU-bound process alone) / (two at once): how many cores this program gets right now (1..2)."""
    cmd = [sys.executable, "-c", _SPIN.format(n=n)]
    alone = float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    both = max(float(p.communicate()[0]) for p in procs)
    return min(2.0, 2 * alone / both)  # a disturbed "alone" run can read above 2


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(n: int, env: dict, path: str, clients: int, seconds: float) -> dict:
    t0 = time.perf_counter()
    with Cluster(n, env=env) as cluster:
        started = time.perf_counter() - t0
        asyncio.run(warm(cluster, path))
        cpu0 = sum(cpu_seconds(pid) for pid in cluster.pids())
        res = asyncio.run(drive(cluster.url, path, clients, seconds))
        res["server_cores"] = (sum(cpu_seconds(pid) for pid in cluster.pids()) - cpu0) / res["wall"]
        res["dead"] = cluster.dead()
        res["errors"] += [ln for i in range(n) for ln in C.log_errors(cluster.app_log(i))]
    cluster.cleanup()
    res["started"] = started
    spread = ", ".join(f"{k}: {v}" for k, v in sorted(res["spread"].items(), key=lambda kv: str(kv[0])))
    print(f"   {n} process(es) (up in {started:.0f} s): {res['sessions']} sessions in {res['wall']:.0f} s = "
          f"{res['rate']:.2f}/s; by process: {spread}; errors {len(res['errors'])}; cores used: servers "
          f"{res['server_cores']:.2f}, load generator {res['client_cores']:.2f}", flush=True)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="measuring window per configuration")
    ap.add_argument("--clients", type=int, default=8, help="visitors running back to back at once")
    ap.add_argument("--page", default="/sentiment", help="the task page each session opens and clicks a demo on")
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)
    if find_nginx() is None:
        print("nginx not found (Debian: apt-get install nginx): scale-out not measured\nscale_out: FAIL")
        return 1
    env, status = C.weights_overlay()
    print("weights: " + ", ".join(f"{k}: {v}" for k, v in status.items()))
    print(f"== {args.clients} visitors back to back for {args.seconds:g} s each: GET /, websocket, Home, "
          f"{args.page}, first demo ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}) ==")
    p_before = parallelism()
    one = measure(1, env, args.page, args.clients, args.seconds)
    two = measure(2, env, args.page, args.clients, args.seconds)
    p_after = parallelism()
    par = (p_before + p_after) / 2
    ratio = two["rate"] / one["rate"] if one["rate"] else float("nan")
    # What a second process can add here: one process already used u1 cores (its script threads hold one GIL, but
    # torch and protobuf work outside it); the cores left to the servers are the host's parallelism less what the
    # load generator on the same machine used. Best case for two: min(2 x u1, cores left) / u1.
    u1 = max(0.05, one["server_cores"])
    left2 = max(0.1, par - two["client_cores"])
    ideal = max(1.0, min(2 * u1, left2) / u1)
    target = max(1.0, SHARE * ideal)  # and never slower than one process
    errors = one["errors"] + two["errors"] + [f"died: {d}" for d in one["dead"] + two["dead"]]
    both_used = len([k for k in two["spread"] if k]) >= 2
    print()
    print(C.line("sessions/s: 1 process (information)", f"{one['rate']:.2f}/s", "none", None))
    print(C.line("sessions/s: 2 processes (information)", f"{two['rate']:.2f}/s", "none", None))
    print(C.line(f"host parallelism now (2 CPU-bound jobs: {p_before:.2f}, {p_after:.2f})", f"{par:.2f}",
                 "none (reference)", None))
    print(C.line(f"server cores used: 1 process {u1:.2f}, 2 processes {two['server_cores']:.2f} (left: "
                 f"{left2:.2f})", f"best {ideal:.2f}x", "none (reference)", None))
    ok_ratio = ratio >= target
    print(C.line("2 processes / 1 process, sessions/s", f"{ratio:.2f}x", f">= max(1, {SHARE:g} x {ideal:.2f}) = {target:.2f}x",
                 ok_ratio))
    print(C.line("  the same against two free cores (information)", f"{ratio:.2f}x", f">= {IDEAL:g}x",
                 None))
    print(C.line("sessions spread over both processes", "yes" if both_used else "no", "yes", both_used))
    print(C.line("failed sessions / server-log errors", str(len(errors)), "0", not errors))
    for e in errors[:10]:
        print("   " + e)
    ok = ok_ratio and both_used and not errors
    print("\nscale_out: " + C.verdict(ok))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
