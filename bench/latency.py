"""Latency, memory and concurrency of the app, each figure with its target and PASS/FAIL (issue 12).

In process (server-side, torch.set_num_threads(1) as the server runs, after warm-up):
  predict p50/p95 per task per demo      text <= 100 ms, image/clip <= 300 ms, 64 music steps <= 1 s
  Inspect p95 per task                   core.inspect.inspect_model(task.inspect_loss) on every demo, <= 2 s
In Chromium against `streamlit run` on loopback (Debian's /usr/bin/chromium via Playwright):
  cold start                             process start -> /_stcore/health ok -> Home rendered, <= 6 s
  first open of each task page           click in the sidebar -> page drawn (loads the model), <= 1.5 s
  page rerun after a widget change       click a demo -> page drawn again, p95 <= 1 s (the issue names no number)
                                         (timed inside the page: click -> script state back to notRunning)
  memory                                 server RSS after visiting every page once, <= 1.0 GB
  concurrency                            20 sessions each clicking a demo at once: 0 errors, p95 <= 3x the
                                         single-user p95 on the same pages and demos, RSS flat (<= +10%)

Tasks without trained weights yet are measured with an untrained stand-in of the same architecture (same cost);
the output says which. Usage: python bench/latency.py [--repeats 30] [--sessions 20] [--no-browser]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
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
    """{name: (task, model)} with trained weights where they load, else a stand-in; {name: 'trained'|...}."""
    import torch

    from core.registry import discover
    from core.weights import load_model

    out, status = {}, {}
    for name, task in discover().tasks.items():
        try:
            out[name] = (task, load_model(task))
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


async def _concurrent(base: str, sessions: int, rounds: int) -> tuple[list[float], list[str], list[float]]:
    """``sessions`` contexts, session i on task page i mod n; all click demo r at the same moment, ``rounds`` times.
    Also the single-user baseline: one context doing the same clicks one after another."""
    from playwright.async_api import async_playwright

    paths = [path for _, path, is_task in C.page_urls() if is_task]
    errors: list[str] = []

    async def open_page(browser, path):
        c = await browser.new_context(viewport={"width": 1200, "height": 900})
        pg = await c.new_page()
        await pg.goto(base + path, wait_until="domcontentloaded")
        await pg.wait_for_selector('[data-testid="stMain"] h1', timeout=180_000)
        await pg.wait_for_selector(DEMO_BUTTONS, state="visible", timeout=180_000)  # a task page with a model
        await C.asettle(pg, timeout=180, quiet=0.5)
        return c, pg

    async def click(pg, r: int, who: str) -> float | None:
        try:
            buttons = pg.locator(DEMO_BUTTONS).filter(visible=True)
            await buttons.first.wait_for(state="visible", timeout=30_000)
            n = await buttons.count()
            if not n:
                errors.append(f"{who}: no demo button")
                return None
            dt = await C.aclick_timed(buttons.nth(r % n), timeout=180)
            await C.asettle(pg, timeout=180, quiet=0.15)
            errors.extend(f"{who}: {f}" for f in await C.apage_faults(pg))
            return dt
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{who}: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}")
            return None

    async def _close(c) -> None:  # every step is bounded: the benchmark must stop on its own
        try:
            await asyncio.wait_for(c.close(), 30)
        except Exception as exc:  # noqa: BLE001
            print(f"   closing a browser context: {type(exc).__name__} (ignored)", flush=True)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=C.CHROMIUM, args=C.CHROMIUM_ARGS)
        single = []
        c, pg = await open_page(browser, paths[0])
        for r in range(rounds):
            for i in range(sessions):
                path = paths[i % len(paths)]
                link = pg.locator(f'[data-testid="stSidebarNav"] a[href$="{path}"]')
                await link.first.click()
                await C.await_running(pg, 3.0)
                await C.asettle(pg, timeout=180, quiet=0.3)
                dt = await click(pg, r, f"single {path}")
                if dt is not None:
                    single.append(dt)
                print(f"   single-user {path} round {r}: {'error' if dt is None else f'{dt:.2f} s'}", flush=True)
        await _close(c)
        print(f"   opening {sessions} sessions ...", flush=True)
        opened = await asyncio.gather(*(asyncio.wait_for(open_page(browser, paths[i % len(paths)]), 300)
                                        for i in range(sessions)), return_exceptions=True)
        pages = []
        for i, o in enumerate(opened):
            if isinstance(o, BaseException):
                errors.append(f"session {i}: could not open: {type(o).__name__}")
            else:
                pages.append(o)
        conc = []
        for r in range(rounds):
            res = await asyncio.gather(*(asyncio.wait_for(click(pg, r, f"session {i}"), 300)
                                         for i, (_, pg) in enumerate(pages)), return_exceptions=True)
            errors += [f"round {r}: a click gave no answer in 300 s" for v in res if isinstance(v, BaseException)]
            res = [v if isinstance(v, float) else None for v in res]
            conc += [v for v in res if v is not None]
            print(f"   round {r}: {sum(v is not None for v in res)}/{len(res)} answered, "
                  f"slowest {max((v for v in res if v is not None), default=float('nan')):.2f} s", flush=True)
        for c, _ in pages:
            await _close(c)
        await browser.close()
    return conc, errors, single


def browser_concurrency(ctx: dict, sessions: int, rounds: int) -> list[Row]:
    conc, errors, single = asyncio.run(_concurrent(ctx["base"], sessions, rounds))
    rss_after = C.rss_mb(ctx["pid"])
    log_errs = C.log_errors(ctx["log"])
    rows = []
    s95, c95 = C.pct(single, 95), C.pct(conc, 95)
    print(f"\n== concurrency: {sessions} sessions x {rounds} rounds, each clicking a demo at the same moment ==")
    rows.append(Row(f"concurrency errors ({len(conc)} answers; server log {len(log_errs)})",
                    str(len(errors) + len(log_errs)), "0", not errors and not log_errs))
    print(rows[-1])
    for e in (errors + log_errs)[:10]:
        print("   " + e[:200])
    ratio = c95 / s95 if s95 == s95 and s95 > 0 else float("nan")
    rows.append(Row(f"concurrent p95 {c95:.2f} s vs single-user p95 {s95:.2f} s", f"{ratio:.2f}x",
                    f"<= {CONCURRENCY_RATIO:g}x", ratio <= CONCURRENCY_RATIO))
    print(rows[-1])
    g = 100 * (rss_after - ctx["rss_before_conc"]) / ctx["rss_before_conc"]
    rows.append(Row(f"RSS during concurrency {ctx['rss_before_conc']:.0f} -> {rss_after:.0f} MiB", f"{g:+.1f}%",
                    f"<= +{FLAT_GROWTH:g}% (flat)", g <= FLAT_GROWTH))
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
        rows += browser_concurrency(ctx, args.sessions, args.rounds)
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
    ap.add_argument("--sessions", type=int, default=20, help="concurrent browser sessions")
    ap.add_argument("--rounds", type=int, default=3, help="simultaneous demo clicks per concurrent session")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--no-inprocess", action="store_true")
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    rows = run(args)
    return 0 if summary(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
