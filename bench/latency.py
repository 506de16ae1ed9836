"""Latency, memory and concurrency of the app, each figure with its target and PASS/FAIL (issue 12).

In process (server-side, torch.set_num_threads(1) as the server runs, after warm-up):
  predict p50/p95 per task per demo      text <= 100 ms, image/clip <= 300 ms, 64 music steps <= 1 s
  Inspect p95 per task                   core.inspect.inspect_model(task.inspect_loss) on every demo, <= 2 s
In Chromium against `streamlit run` on loopback (Debian's /usr/bin/chromium via Playwright):
  cold start                             process start -> /_stcore/health ok -> Home rendered, <= 6 s
  first open of each task page           click in the sidebar -> page drawn (loads the model), <= 1.5 s
                                         (after the server's background import of torchvision, timed as info)
  page rerun after a widget change       click a demo -> page drawn again, p95 <= 1 s (the issue names no number)
                                         (timed inside the page: click -> script state back to notRunning)
  memory                                 server RSS after visiting every page once, <= 1.0 GB
Over websockets (bench/_wsclient.py: the app's own protocol, no browser drawing on the server's cores):
  concurrency                            20 sessions open together, each clicking a demo of its page and reading
                                         the answer for 2-8 s, for 60 s: 0 errors, p95 <= 3x the single-user p95
                                         (one session clicking the same demos), RSS flat (<= +10%). Also printed,
                                         without a target: a burst, every session clicking in the same millisecond
                                         (the last answer waits for the 19 reruns queued before it).

Tasks without trained weights yet are measured with an untrained stand-in of the same architecture (same cost);
the output says which. Usage: python bench/latency.py [--repeats 30] [--sessions 20] [--no-browser]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import _common as C  # noqa: E402

COLD_TARGET, FIRST_OPEN_TARGET, INSPECT_TARGET, RSS_TARGET_MB = 6.0, 1.5, 2.0, 1000.0  # 1.0 GB = 1e9 bytes ~ 954 MiB
# The issue sets no number for a full page rerun (it redraws the whole page: charts, tables, the model's answer).
# Ours: 1 s, the limit for a user's flow of thought to stay uninterrupted (Nielsen's response-time limits).
RERUN_TARGET = 1.0
CONCURRENCY_RATIO, FLAT_GROWTH = 3.0, 10.0
DEMO_BUTTONS = '[data-testid="stMain"] [data-testid="stButton"] button'


@dataclass
class Row:
    label: str
    value: str
    target: str
    ok: bool | None

    def __str__(self) -> str:
        return C.line(self.label, self.value, self.target, self.ok)


def predict_target(task) -> tuple[float, str]:
    """Seconds, and which of the issue's targets applies."""
    if task.primary_input in ("image", "clip"):
        return 0.300, "image"
    if task.name == "music" or task.primary_input == "midi":
        return 1.000, "64 music steps"
    return 0.100, "text"  # text in, or short text out (names_generate): it must feel instant


def ms(v: float) -> str:
    return f"{1000 * v:.0f} ms" if v == v else "n/a"


# ---- in process -----------------------------------------------------------------------------------------------------

def served_models() -> tuple[dict, dict]:
    """{name: (task, module that answers)} with trained weights where they load (the card's ensemble where it has
    one, as the app serves it), else a stand-in; {name: 'trained'|...}."""
    import torch

    from core.registry import discover
    from core.serving import load_served

    out, status = {}, {}
    for name, task in discover().tasks.items():
        try:
            out[name] = (task, load_served(task).answering())
            status[name] = "trained"
        except Exception:  # noqa: BLE001 -- not trained yet: same architecture, untrained
            torch.manual_seed(0)
            splits = task.synthetic_data(0)
            out[name] = (task, task.build_model(copy.deepcopy(task.config), splits.meta).eval())
            status[name] = "stand-in (untrained)"
    return out, status


def timed(fn, repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def inprocess(repeats: int, inspect_repeats: int) -> list[Row]:
    import torch

    from core.inspect import inspect_model

    torch.set_num_threads(1)  # as the server runs (core.ui.load.configure_torch)
    models, status = served_models()
    rows = []
    print(f"\n== predict and Inspect, in process (torch {torch.__version__}, {torch.get_num_threads()} thread) ==")
    for name, (task, model) in models.items():
        target, kind = predict_target(task)
        print(f"-- {name}: {status[name]}")
        all_insp = []
        for demo in task.demos():
            t = timed(lambda d=demo, t=task, m=model: t.predict(m, d.input), repeats)
            p95 = C.pct(t, 95)
            rows.append(Row(f"predict {name} / {demo.label[:24]} p50 {ms(C.median(t))}, p95", ms(p95),
                            f"<= {ms(target)} ({kind})", p95 <= target))
            print(rows[-1])
            all_insp += timed(lambda d=demo, t=task, m=model: inspect_model(m, lambda mm: t.inspect_loss(mm, d.input)),
                              inspect_repeats, warmup=1)
        p95 = C.pct(all_insp, 95)
        rows.append(Row(f"Inspect {name} (all demos) p50 {ms(C.median(all_insp))}, p95", ms(p95),
                        f"<= {ms(INSPECT_TARGET)}", p95 <= INSPECT_TARGET))
        print(rows[-1])
    return rows


# ---- in the browser --------------------------------------------------------------------------------------------------

def _rendered(page, timeout: float = 120) -> float:
    """Wait for a drawn page (a title in the main area, script finished); returns perf_counter at that moment."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=timeout * 1000)
    return C.settle(page, timeout=timeout, quiet=0.3)


def _preloaded(log: Path, timeout: float) -> float | None:
    """Seconds the server's background import of torchvision took (core.ui.load.preload_in_background logs it once
    it is done), waiting up to ``timeout`` s for that line; None if it never came. The first opens below are timed
    after it, as a person who reads Home first would meet them: they measure the model load, not that import."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        m = re.search(r"preloaded torchvision in ([0-9.]+) s", log.read_text(errors="replace"))
        if m:
            return float(m.group(1))
        time.sleep(0.1)
    return None


def _click_sidebar(page, path: str) -> None:
    page.locator(f'[data-testid="stSidebarNav"] a[href$="{path}"]').first.click()


def _demo_clicks(page, k: int) -> list[float]:
    """Click the visible demo buttons in turn, k times; click -> page drawn again, seconds."""
    out = []
    for i in range(k):
        buttons = page.locator(DEMO_BUTTONS).filter(visible=True)
        n = buttons.count()
        if not n:
            break
        out.append(C.click_timed(buttons.nth(i % n)))
        C.settle(page, timeout=120, quiet=0.15)
    return out


def browser_sequential(rerun_repeats: int, env: dict, status: dict, ctx: dict) -> list[Row]:
    """Cold start, first opens, memory, page reruns. Fills ``ctx`` (base, proc, log, pid, rss_before_conc)."""
    from playwright.sync_api import sync_playwright

    rows = []
    log = Path(tempfile.mkstemp(prefix="rnnlab-latency-", suffix=".log")[1])
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=C.CHROMIUM, args=C.CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto("about:blank")
        port = C.free_port()
        base = f"http://127.0.0.1:{port}"
        t0 = time.perf_counter()
        proc = C.start_server(port, log, env=env)
        ctx.update(proc=proc, log=log, base=base)
        health = C.wait_health(base, proc, timeout=180)
        page.goto(base + "/")
        home = _rendered(page) - t0
        ctx["pid"] = C.server_pid(proc)
        print("\n== in Chromium, against streamlit run on loopback ==")
        rows.append(Row(f"cold start: health ok after {health:.2f} s; Home drawn after", f"{home:.2f} s",
                        f"<= {COLD_TARGET:g} s", home <= COLD_TARGET))
        print(rows[-1])
        rss_home = C.rss_mb(ctx["pid"])
        preload = _preloaded(log, timeout=20)
        # a task page opened before this is done waits for the rest of the import
        rows.append(Row("after Home: torchvision preloaded in the background in", f"{preload:.2f} s" if preload
                        else "not seen", "none", None))
        print(rows[-1])
        firsts, reruns = {}, {}
        for label, path, is_task in C.page_urls():
            if not is_task:
                continue
            link = page.locator(f'[data-testid="stSidebarNav"] a[href$="{path}"]').first
            firsts[label] = C.click_timed(link)
            _rendered(page)
            w = status.get(label, "")
            rows.append(Row(f"first open of {label} ({w[:22]})", f"{firsts[label]:.2f} s",
                            f"<= {FIRST_OPEN_TARGET:g} s", firsts[label] <= FIRST_OPEN_TARGET))
            print(rows[-1])
            faults = C.page_faults(page)
            if faults:
                print(f"   {label}: {faults}")
        for _, path, is_task in C.page_urls():  # Home, Gradient Lab, Plugins too: "every page"
            if not is_task:
                _click_sidebar(page, path) if path != "/" else page.goto(base + "/")
                C.wait_running(page, 3.0)
                _rendered(page)
        rss_all = C.rss_mb(ctx["pid"])
        rows.append(Row(f"server RSS after every page (after Home: {rss_home:.0f} MiB)", f"{rss_all:.0f} MiB",
                        f"<= {RSS_TARGET_MB:.0f} MB", rss_all * 2**20 <= RSS_TARGET_MB * 1e6))
        print(rows[-1])
        for label, path, is_task in C.page_urls():
            if not is_task:
                continue
            _click_sidebar(page, path)
            C.wait_running(page, 3.0)
            _rendered(page)
            _demo_clicks(page, 1)  # warm
            t = _demo_clicks(page, rerun_repeats)
            reruns[label] = t
            p95 = C.pct(t, 95)
            rows.append(Row(f"page rerun {label}: demo click, p50 {ms(C.median(t))}, p95", ms(p95),
                            f"<= {ms(RERUN_TARGET)}", p95 <= RERUN_TARGET if t else None))
            print(rows[-1])
        ctx["rss_before_conc"] = C.rss_mb(ctx["pid"])
        browser.close()
    ctx["reruns"] = reruns
    return rows


async def _ws_concurrency(base: str, sessions: int, seconds: float, think: tuple[float, float], burst_rounds: int,
                          seed: int = 0, rss=lambda: float("nan")) -> dict:
    """Websocket sessions (bench/_wsclient.py: the server's work, no browser drawing on the same cores).

    single:  one session; on every task page in turn, each demo clicked -- latency of each click.
    paced:   ``sessions`` sessions open together, session i on task page i mod n, each clicking a random demo of its
             page, then reading the answer for a random ``think`` interval (people read what they asked for),
             for ``seconds``; start times spread over the first think interval.
    burst:   (information) all sessions click at the same moment, ``burst_rounds`` times.
    ``rss()`` is read once the sessions are open and have each answered one demo (their state and the models'
    working memory in place: "ramped") and at the end.
    """
    import random

    from bench._wsclient import Session

    paths = [path for _, path, is_task in C.page_urls() if is_task]
    out = {"single": [], "paced": [], "burst": [], "errors": [], "clicks_per_s": 0.0}

    def check(r, who: str) -> float | None:
        if r.problems():
            out["errors"].append(f"{who}: {'; '.join(r.problems())[:160]}")
            return None
        return r.seconds

    async def opened(path: str) -> tuple[Session, list[str]]:
        s = Session(base, timeout=180)
        await s.connect()
        await s.open("/")
        r = await s.open(path)
        check(r, f"open {path}")
        return s, [bid for _, bid in r.buttons]

    s, _ = await opened(paths[0])
    for path in paths:  # single user: every demo of every page, twice (the first round warms caches)
        r = await s.open(path)
        for rnd in range(2):
            for _, bid in r.buttons:
                v = check(await s.click(bid), f"single {path}")
                if v is not None and rnd:
                    out["single"].append(v)
    await s.close()

    res = await asyncio.gather(*(asyncio.wait_for(opened(paths[i % len(paths)]), 300) for i in range(sessions)),
                               return_exceptions=True)
    live = []
    for i, o in enumerate(res):
        if isinstance(o, BaseException):
            out["errors"].append(f"session {i}: could not open: {type(o).__name__}")
        elif o[1]:
            live.append(o)
        else:
            out["errors"].append(f"session {i}: no demo button on {paths[i % len(paths)]}")
            await o[0].close()

    async def first(k: int, sess: Session, buttons: list[str]) -> None:
        await asyncio.sleep(random.Random(seed * 1000 + k).uniform(0, think[1]))
        check(await sess.click(buttons[0]), f"session {k}")

    await asyncio.gather(*(first(k, sess, b) for k, (sess, b) in enumerate(live)))
    out["rss_ramped"] = rss()

    async def paced(k: int, sess: Session, buttons: list[str]) -> int:
        rng = random.Random(seed * 1000 + k)
        deadline = time.perf_counter() + seconds
        await asyncio.sleep(rng.uniform(0, think[1]))
        n = 0
        while time.perf_counter() < deadline:
            v = check(await sess.click(rng.choice(buttons)), f"session {k}")
            if v is not None:
                out["paced"].append(v)
            n += 1
            await asyncio.sleep(rng.uniform(*think))
        return n

    t0 = time.perf_counter()
    counts = await asyncio.gather(*(paced(k, sess, b) for k, (sess, b) in enumerate(live)), return_exceptions=True)
    out["clicks_per_s"] = sum(c for c in counts if isinstance(c, int)) / (time.perf_counter() - t0)
    out["errors"] += [f"paced session: {type(c).__name__}: {c}" for c in counts if isinstance(c, BaseException)]
    for r in range(burst_rounds):
        got = await asyncio.gather(*(sess.click(b[r % len(b)]) for sess, b in live))
        out["burst"] += [v for v in (check(g, "burst") for g in got) if v is not None]
    out["rss_end"] = rss()
    for sess, _ in live:
        await sess.close()
    out["sessions"] = len(live)
    return out


def concurrency(ctx: dict, sessions: int, seconds: float, think: tuple[float, float], burst_rounds: int) -> list[Row]:
    """Issue 12's concurrency figure: websocket sessions against the server the browser figures used."""
    res = asyncio.run(_ws_concurrency(ctx["base"], sessions, seconds, think, burst_rounds,
                                      rss=lambda: C.rss_mb(ctx["pid"])))
    log_errs = C.log_errors(ctx["log"])
    single, paced, burst = res["single"], res["paced"], res["burst"]
    s95, c95, b95 = C.pct(single, 95), C.pct(paced, 95), C.pct(burst, 95)
    rows = []
    print(f"\n== concurrency: {res['sessions']} websocket sessions for {seconds:g} s, each clicking a demo and reading "
          f"the answer for {think[0]:g}-{think[1]:g} s ({res['clicks_per_s']:.1f} clicks/s in all) ==")
    print(f"   single user: {len(single)} clicks, p50 {ms(C.median(single))}, p95 {ms(s95)}; concurrent: "
          f"{len(paced)} clicks, p50 {ms(C.median(paced))}, p95 {ms(c95)}")
    errors = res["errors"] + log_errs
    rows.append(Row(f"concurrency errors ({len(paced)} answers; server log {len(log_errs)})", str(len(errors)), "0",
                    not errors))
    print(rows[-1])
    for e in errors[:10]:
        print("   " + e[:200])
    ratio = c95 / s95 if s95 == s95 and s95 > 0 else float("nan")
    rows.append(Row(f"{res['sessions']} sessions p95 {ms(c95)} vs single-user p95 {ms(s95)}", f"{ratio:.2f}x",
                    f"<= {CONCURRENCY_RATIO:g}x", ratio <= CONCURRENCY_RATIO))
    print(rows[-1])
    before, ramped, end = ctx["rss_before_conc"], res["rss_ramped"], res["rss_end"]
    # Flat = no growth while the load goes on. Opening 20 sessions and answering one demo each costs memory once
    # (each session's state, the models' working memory at 20 at once): printed beside it, as in bench/soak.py.
    g = 100 * (end - ramped) / ramped
    rows.append(Row(f"RSS during concurrency {ramped:.0f} -> {end:.0f} MiB (sessions open: {before:.0f} -> "
                    f"{ramped:.0f}, {100 * (ramped - before) / before:+.0f}%)", f"{g:+.1f}%",
                    f"<= +{FLAT_GROWTH:g}% (flat)", g <= FLAT_GROWTH))
    print(rows[-1])
    if burst:
        # Not a target: N reruns asked in the same millisecond queue on the server's cores (the scripts hold the GIL),
        # so the last answer waits for the N-1 before it: ~N x one rerun, whatever a rerun costs.
        rows.append(Row(f"burst: all {res['sessions']} click at once, p95 {ms(b95)} vs {ms(s95)}",
                        f"{b95 / s95:.2f}x" if s95 == s95 and s95 > 0 else "n/a", "none (queueing)", None))
        print(rows[-1])
    return rows


def run(args) -> list[Row]:
    rows = []
    if not args.no_inprocess:
        rows += inprocess(args.repeats, args.inspect_repeats)
    if args.no_browser:
        return rows
    if not C.chromium_available():
        print("\nno Chromium/playwright: the browser figures are not measured")
        rows.append(Row("browser figures", "not measured", "chromium", False))
        return rows
    env, status = C.weights_overlay()
    print("\nweights: " + ", ".join(f"{k}: {v}" for k, v in status.items()))
    ctx: dict = {}
    try:
        rows += browser_sequential(args.rerun_repeats, env, status, ctx)
        rows += concurrency(ctx, args.sessions, args.seconds, (args.think_min, args.think_max), args.burst_rounds)
    finally:
        if ctx.get("proc") is not None:
            C.stop_server(ctx["proc"])
    return rows


def summary(rows: list[Row]) -> bool:
    judged = [r for r in rows if r.ok is not None]
    bad = [r for r in judged if not r.ok]
    print(f"\n{len(judged) - len(bad)} of {len(judged)} figures meet their targets")
    for r in bad:
        print("  FAIL " + r.label + ": " + r.value + " (target " + r.target + ")")
    return not bad


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=30, help="predict calls per demo (after 2 warm-up calls)")
    ap.add_argument("--inspect-repeats", type=int, default=5, help="inspect_model calls per demo")
    ap.add_argument("--rerun-repeats", type=int, default=8, help="demo clicks per task page in the browser")
    ap.add_argument("--sessions", type=int, default=20, help="concurrent websocket sessions")
    ap.add_argument("--seconds", type=float, default=60.0, help="how long the concurrent sessions click")
    ap.add_argument("--think-min", type=float, default=2.0, help="seconds a session reads an answer, at least")
    ap.add_argument("--think-max", type=float, default=8.0, help="... and at most (uniform in between)")
    ap.add_argument("--burst-rounds", type=int, default=2, help="then: every session clicking at the same moment")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--no-inprocess", action="store_true")
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    rows = run(args)
    return 0 if summary(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
