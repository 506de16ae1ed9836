"""Soak: N concurrent sessions on loopback for M minutes doing mixed demo inputs (issue 13).

Each simulated user is a Streamlit session of its own. It opens Home, then loops until the deadline: open a random
task page (same session, as a person navigates in the sidebar), click a random demo button, wait for the answer,
check it for exception elements or guarded crash messages, then read it for a random think time. Bounded in time
(--minutes) and count (--max-rounds), and the whole run has a hard timeout, so it always stops on its own.

Two kinds of client: ``--client ws`` (default) is bench/_wsclient.py, a websocket speaking the app's protocol --
the server's work without a browser drawing every page on the same cores (fifty Chromium tabs on a 2-core host
measure Chromium); ``--client browser`` is one headless Chromium with a browser context per user.

Printed: rounds and errors per session, whether each session still answered at the end (it opens Home again and
must render within 60 s), server-log errors, server RSS (cold, warm = after one visit of every page, ramped = after
every session's first round, end), growth over the soak (end vs ramped), and PASS/FAIL against: zero errors,
growth < 10%, every session answered.

  python bench/soak.py                               # the full soak: 50 sessions, 10 minutes, websocket clients
  python bench/soak.py --client browser --sessions 10 --minutes 2   # real browsers
  python bench/soak.py --sessions 5 --minutes 0.5    # the short form (tests/test_server.py runs 3 x 0.25)
  python bench/soak.py --url http://host:8501 --pid 1234   # against a running server (RSS needs its pid)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import _common as C  # noqa: E402

GROWTH_LIMIT = 10.0  # percent
DEMO_BUTTONS = '[data-testid="stMain"] [data-testid="stButton"] button'


@dataclass
class Session:
    index: int
    rounds: int = 0
    no_button: int = 0  # rounds on a page without a demo button (nothing clicked)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # not errors: what a reader of the output may want to know
    latencies: list[float] = field(default_factory=list)  # click -> answer drawn, seconds
    answered: bool = False
    first_round: asyncio.Event = field(default_factory=asyncio.Event)


async def _click(page, locator, notes: list[str], what: str) -> float:
    """Click and wait for the rerun (seconds). A click that starts no rerun within 30 s is retried once (a person
    clicks again) and noted; a second miss is an error."""
    try:
        return await C.aclick_timed(locator, timeout=30)
    except TimeoutError as exc:
        if "no rerun started" not in str(exc):
            raise
        notes.append(f"a click on {what} started no rerun within 30 s; clicked again")
        await C.asettle(page, timeout=90, quiet=0.5)
        return await C.aclick_timed(locator, timeout=90)


async def _nav(page, base: str, path: str, notes: list[str]) -> None:
    """Open ``path`` through the sidebar (same Streamlit session); a full load if the link is not there."""
    link = page.locator(f'[data-testid="stSidebarNav"] a[href$="{path}"]')
    if path != "/" and page.url.split("?")[0].endswith(path):
        pass  # already there: the demo click below is this round's action
    elif path != "/" and await link.count():
        await _click(page, link.first, notes, f"the sidebar link {path}")  # returns when the rerun has finished
    else:
        await page.goto(base + path, wait_until="domcontentloaded")
        await page.wait_for_selector('[data-testid="stMain"] h1', timeout=90_000)
    await C.asettle(page, timeout=90, quiet=0.3)


async def _diagnose(page) -> str:
    """What the page looks like when something timed out: script state, connection status, the title."""
    try:
        return await page.evaluate("""() => {
          const a = document.querySelector('[data-testid="stApp"]');
          const st = document.querySelector('[data-testid="stStatusWidget"]');
          const h = document.querySelector('[data-testid="stMain"] h1');
          return `state=${a ? a.getAttribute('data-test-script-state') : 'none'} status=` +
                 `${st ? st.innerText.replace(/\\s+/g, ' ').slice(0, 60) : '-'} title=${h ? h.innerText.slice(0, 30) : '-'}`;
        }""")
    except Exception as exc:  # noqa: BLE001
        return f"unreadable ({type(exc).__name__})"


async def run_session(s: Session, browser, base: str, paths: list[str], deadline: float, max_rounds: int,
                      think: float, seed: int) -> None:
    rng = random.Random(seed + s.index)
    ctx = await browser.new_context(viewport={"width": 1200, "height": 900})
    page = await ctx.new_page()
    try:
        try:
            await _nav(page, base, "/", s.notes)
        except Exception as exc:  # noqa: BLE001
            s.errors.append(f"home: {type(exc).__name__}: {str(exc)[:120]}")
        while time.time() < deadline and s.rounds < max_rounds:
            path = rng.choice(paths)
            step = "open"
            try:
                await _nav(page, base, path, s.notes)
                step = "demo click"
                s.errors += [f"{path} on open: {f}" for f in await C.apage_faults(page)]
                buttons = page.locator(DEMO_BUTTONS).filter(visible=True)
                try:  # a page still being drawn: give its buttons a moment
                    await buttons.first.wait_for(state="visible", timeout=15_000)
                except Exception:  # noqa: BLE001 -- counted below
                    pass
                n = await buttons.count()
                if not n:
                    s.no_button += 1  # e.g. a task whose weights are missing shows its demos as a list
                    h1 = page.locator('[data-testid="stMain"] h1')
                    title = await h1.first.inner_text() if await h1.count() else "no title"
                    s.notes.append(f"no demo button on {page.url.split('?')[0]} ({title[:40]})")
                else:
                    s.latencies.append(await _click(page, buttons.nth(rng.randrange(n)), s.notes, f"a demo on {path}"))
                    await C.asettle(page, timeout=90, quiet=0.2)
                    s.errors += [f"{path} after a demo: {f}" for f in await C.apage_faults(page)]
            except Exception as exc:  # noqa: BLE001 -- a timeout or a dead page is an error of this session
                s.errors.append(f"{path} ({step}): {type(exc).__name__}: {str(exc).splitlines()[0][:120]}; "
                                f"page: {await _diagnose(page)}")
            s.rounds += 1
            s.first_round.set()
            await asyncio.sleep(think * rng.random())
        s.first_round.set()
        try:  # still answered? Home must render in this same session within 60 s
            await _nav(page, base, "/", s.notes)
            s.answered = not await C.apage_faults(page)
        except Exception as exc:  # noqa: BLE001
            s.errors.append(f"final check: {type(exc).__name__}")
    finally:
        s.first_round.set()
        await ctx.close()


async def run_session_ws(s: Session, base: str, paths: list[str], deadline: float, max_rounds: int,
                         think: tuple[float, float], seed: int) -> None:
    """The same loop as run_session, over bench/_wsclient.py."""
    from bench._wsclient import Session as WsSession

    rng = random.Random(seed + s.index)
    ws = WsSession(base, timeout=180)

    def check(r, what: str) -> bool:
        s.errors += [f"{what}: {p}" for p in r.problems()]
        return r.status == "FINISHED_SUCCESSFULLY"

    try:
        await asyncio.sleep(rng.uniform(0, think[1]))  # people arrive over a few seconds, not in one millisecond
        await ws.connect()
        check(await ws.open("/"), "home")
        while time.time() < deadline and s.rounds < max_rounds:
            path = rng.choice(paths)
            try:
                r = await ws.open(path)
                if check(r, f"{path} on open"):
                    if not r.buttons:
                        s.no_button += 1
                        s.notes.append(f"no demo button on {path} ({r.title[:40]})")
                    else:
                        label, bid = r.buttons[rng.randrange(len(r.buttons))]
                        c = await ws.click(bid)
                        if check(c, f"{path} after the demo {label[:30]!r}"):
                            s.latencies.append(c.seconds)
            except Exception as exc:  # noqa: BLE001 -- a dead socket is an error of this session
                s.errors.append(f"{path}: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}")
                await ws.close()
                await ws.connect()  # a person reloads the page
            s.rounds += 1
            s.first_round.set()
            await asyncio.sleep(rng.uniform(*think))
        s.first_round.set()
        r = await ws.open("/")  # still answered? Home must render in this same session
        s.answered = not r.problems() and bool(r.title)
    except Exception as exc:  # noqa: BLE001
        s.errors.append(f"session: {type(exc).__name__}: {str(exc)[:120]}")
    finally:
        s.first_round.set()
        await ws.close()


async def soak(args, base: str, pid: int | None, log_path: Path | None) -> bool:
    from playwright.async_api import async_playwright

    rss = {}
    if pid:
        rss["cold"] = C.rss_mb(pid)
    paths = [path for _, path, is_task in C.page_urls() if is_task]
    browser_mode = args.client == "browser"
    async with contextlib.AsyncExitStack() as stack:
        browser = None
        if browser_mode:
            from playwright.async_api import async_playwright

            p = await stack.enter_async_context(async_playwright())
            browser = await p.chromium.launch(executable_path=C.CHROMIUM, args=C.CHROMIUM_ARGS)
        if args.warmup:  # one visit of every page, so models are loaded before the baseline is taken
            from bench._wsclient import Session as WsSession

            async with WsSession(base, timeout=180) as ws:
                await ws.open("/")
                for _, path, _ in C.page_urls():
                    try:
                        r = await ws.open(path)
                        if r.status != "FINISHED_SUCCESSFULLY":
                            print(f"warm-up {path}: {r.status}")
                    except Exception as exc:  # noqa: BLE001
                        print(f"warm-up {path}: {type(exc).__name__}")
        if pid:
            rss["warm"] = C.rss_mb(pid)
        t0 = time.time()
        deadline = t0 + args.minutes * 60
        sessions = [Session(i) for i in range(args.sessions)]
        if browser_mode:
            tasks = [asyncio.create_task(run_session(s, browser, base, paths, deadline, args.max_rounds,
                                                     args.think_max, args.seed)) for s in sessions]
        else:
            tasks = [asyncio.create_task(run_session_ws(s, base, paths, deadline, args.max_rounds,
                                                        (args.think_min, args.think_max), args.seed))
                     for s in sessions]

        async def ramped():
            await asyncio.gather(*(s.first_round.wait() for s in sessions))
            if pid:
                rss["ramped"] = C.rss_mb(pid)
            print(f"all {len(sessions)} sessions through their first round after {time.time() - t0:.0f} s")

        ramp = asyncio.create_task(ramped())
        samples: list[tuple[float, float]] = []

        async def sample():  # RSS once a minute: a plateau and a leak look different
            while pid:
                await asyncio.sleep(60)
                samples.append((time.time() - t0, C.rss_mb(pid)))

        sampler = asyncio.create_task(sample())
        hard = args.minutes * 60 + args.grace
        done, pending = await asyncio.wait(tasks, timeout=hard)
        for t in pending:  # self-stopping: whatever is still running after the hard limit is cancelled
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        ramp.cancel()
        sampler.cancel()
        if pid:
            rss["end"] = C.rss_mb(pid)
        if browser is not None:
            await browser.close()
    wall = time.time() - t0

    for t, s in zip(tasks, sessions):
        if t in pending:
            s.errors.append(f"still running after the hard limit ({hard:.0f} s): cancelled")
    print(f"\n{'session':>7} {'rounds':>6} {'errors':>6} {'p50 s':>6} {'p95 s':>6}  answered")
    for s in sessions:
        print(f"{s.index:>7} {s.rounds:>6} {len(s.errors):>6} {C.median(s.latencies):6.2f} "
              f"{C.pct(s.latencies, 95):6.2f}  {'yes' if s.answered else 'NO'}")
    errs = [f"session {s.index}: {e}" for s in sessions for e in s.errors]
    log_errs = C.log_errors(log_path) if log_path else []
    for e in errs[:20]:
        print("  " + e)
    notes = [n for s in sessions for n in s.notes]
    for n in sorted(set(notes))[:12]:
        print(f"  note ({notes.count(n)}x): {n}")
    for e in log_errs[:20]:
        print("  server log: " + e[:200])
    lat = [v for s in sessions for v in s.latencies]
    rounds = sum(s.rounds for s in sessions)
    print(f"\n{args.sessions} {args.client} sessions x {args.minutes:g} min: {rounds} rounds in {wall:.0f} s "
          f"({sum(s.no_button for s in sessions)} without a demo button), demo answer p50 {C.median(lat):.2f} s, "
          f"p95 {C.pct(lat, 95):.2f} s")
    n_err = len(errs) + len(log_errs)
    answered = sum(s.answered for s in sessions)
    ok = True
    print(C.line("errors (sessions + server log)", f"{len(errs)} + {len(log_errs)}", "0", n_err == 0))
    ok &= n_err == 0
    print(C.line("sessions still answering at the end", f"{answered}/{len(sessions)}", "all",
                 answered == len(sessions)))
    ok &= answered == len(sessions)
    if pid and "ramped" in rss and "end" in rss:
        growth = 100 * (rss["end"] - rss["ramped"]) / rss["ramped"]
        print(f"server RSS MiB: cold {rss.get('cold', float('nan')):.0f}, warm {rss.get('warm', float('nan')):.0f}, "
              f"ramped {rss['ramped']:.0f}, end {rss['end']:.0f}")
        if samples:
            print("server RSS MiB each minute: " + ", ".join(f"{t / 60:.0f} min {v:.0f}" for t, v in samples))
        print(C.line("server RSS growth during the soak (end vs ramped)", f"{growth:+.1f}%", f"< {GROWTH_LIMIT:g}%",
                     growth < GROWTH_LIMIT))
        print(C.line("server RSS growth since warm (info: sessions' own state)",
                     f"{100 * (rss['end'] - rss['warm']) / rss['warm']:+.1f}%", "-", None))
        ok &= growth < GROWTH_LIMIT
    else:
        print("server RSS: not measured (no pid of the server)" + ("" if pid else "; pass --pid with --url"))
        ok = False if not args.url else ok
    print(f"\nRESULT {'PASS' if ok else 'FAIL'}")
    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=50)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--max-rounds", type=int, default=10_000, help="per session: an upper bound on rounds")
    ap.add_argument("--client", choices=("ws", "browser"), default="ws",
                    help="websocket sessions (default) or Chromium browser contexts")
    ap.add_argument("--think-min", type=float, default=2.0, help="websocket sessions: seconds reading an answer, "
                    "at least (uniform up to --think-max)")
    ap.add_argument("--think-max", type=float, default=8.0, help="seconds reading an answer, at most (browser: "
                    "uniform from 0; Chromium's own drawing already takes its time)")
    ap.add_argument("--grace", type=float, default=240.0, help="seconds past --minutes before sessions are cut")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--url", help="a running server (default: start one on a free loopback port)")
    ap.add_argument("--pid", type=int, help="with --url: the server's pid, for its RSS")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false",
                    help="skip visiting every page first (a server that has already loaded every model)")
    ap.add_argument("--real-weights-only", action="store_true",
                    help="do not give untrained stand-in weights to tasks that are not trained yet")
    args = ap.parse_args(argv)
    if args.client == "browser" and not C.chromium_available():
        print("needs Debian's chromium at /usr/bin/chromium and playwright; RESULT FAIL")
        return 2
    proc = log = None
    if args.url:
        base, pid = args.url.rstrip("/"), args.pid
    else:
        env, status = ({}, {}) if args.real_weights_only else C.weights_overlay()
        for name, st in status.items():
            print(f"weights {name}: {st}")
        port = C.free_port()
        base = f"http://127.0.0.1:{port}"
        log = Path(tempfile.mkstemp(prefix="rnnlab-soak-", suffix=".log")[1])
        proc = C.start_server(port, log, env=env)
        C.wait_health(base, proc, timeout=180)
        pid = C.server_pid(proc)
        print(f"server pid {pid} on {base}, log {log}")
    try:
        ok = asyncio.run(soak(args, base, pid, log))
    finally:
        if proc is not None:
            C.stop_server(proc)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
