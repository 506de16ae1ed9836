"""Shared pieces of the benchmarks and the server tests: start the app, wait for health, drive Chromium, read RSS.

Nothing here measures anything by itself. Used by bench/latency.py, bench/soak.py, bench/run_all.py and
tests/test_server.py. The browser is Debian's Chromium at /usr/bin/chromium driven by Playwright (never
``playwright install``).
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 # many pages in one browser (soak, concurrency): none of them may be throttled as "in background"
                 "--disable-renderer-backgrounding", "--disable-background-timer-throttling",
                 "--disable-backgrounding-occluded-windows"]
STATE_JS = """() => { const a = document.querySelector('[data-testid="stApp"]');
    return a ? a.getAttribute('data-test-script-state') : 'none'; }"""
CRASH_TEXT = ("Something went wrong", "could not be loaded")  # core.ui's guards: a bug behind each
HOST_PATHS = ("/work/", "/root/", "/home/", "/tmp/", "site-packages", str(REPO))


# ---- the server ---------------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log_path: str | Path, env: dict | None = None, nice: int = 0) -> subprocess.Popen:
    """``streamlit run streamlit_app.py`` on loopback, headless, no file watcher; stdout+stderr to ``log_path``."""
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
           "--server.fileWatcherType", "none", "--server.port", str(port), "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false"]
    if nice:
        cmd = ["nice", "-n", str(nice)] + cmd
    log = open(log_path, "w")  # noqa: SIM115 -- closed when the process is stopped
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})))
    proc._log = log  # type: ignore[attr-defined]
    return proc


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    with contextlib.suppress(Exception):
        proc._log.close()  # type: ignore[attr-defined]


def server_pid(proc: subprocess.Popen) -> int:
    """The Python process serving the app (under ``nice`` the Popen pid is nice's, which execs into Python)."""
    return proc.pid


def http_get(url: str, timeout: float = 5.0) -> tuple[int, str, dict]:
    req = urllib.request.Request(url)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace"), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace"), dict(e.headers)


def wait_health(base: str, proc: subprocess.Popen, timeout: float = 120) -> float:
    """Poll /_stcore/health until it says ok; returns the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            code, body, _ = http_get(base + "/_stcore/health", timeout=2)
            if code == 200 and body.strip() == "ok":
                return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"the app did not become healthy in {timeout:.0f} s")


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (psutil if installed, else /proc/<pid>/status VmRSS)."""
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss / 2**20
    except ImportError:
        pass
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def log_errors(log_path: str | Path) -> list[str]:
    """Lines of the server log that report an error (tracebacks, uncaught exceptions, ERROR records)."""
    try:
        text = Path(log_path).read_text(errors="replace")
    except OSError:
        return []
    keys = ("Traceback", "Uncaught app", " ERROR ", "Exception in", "Task exception")
    return [ln for ln in text.splitlines() if any(k in ln for k in keys)]


# ---- weights overlay: every task page with a model ---------------------------------------------------------------

def make_weights(task, folder, seed: int = 0, config: dict | None = None) -> dict:
    """Save an untrained model of ``task`` (built from its synthetic data's meta) with a card into ``folder``:
    the same files, checksum and card fields core.train writes, so every page and loader path runs as with a
    trained model (same architecture, so the same speed). Returns the card."""
    import torch

    from core.weights import save_weights

    splits = task.synthetic_data(seed)
    config = copy.deepcopy(task.config if config is None else config)
    torch.manual_seed(seed)
    model = task.build_model(copy.deepcopy(config), splits.meta)
    return save_weights(folder, model, untrained_card(task, config, splits.meta, model))


def untrained_card(task, config: dict, meta: dict, model, variants: dict | None = None):
    """A complete ModelCard for an untrained ``model`` of ``task`` (every metric 0.5, one epoch, synthetic data):
    what tests and benchmarks save beside stand-in weights (``model`` None: a card without a model, 0 parameters).
    ``variants`` maps more variant names to their configs (comparison rows and histories of their own, for weights
    kept beside the served ones)."""
    from dataclasses import asdict

    from core.modelcard import Dataset, EpochRecord, ModelCard, Training, Variant

    metric = task.recipe.metric
    n = sum(p.numel() for p in model.parameters()) if model is not None else 0
    rows = {name: Variant(config=cfg, val={metric: 0.5}, test={metric: 0.5}, num_params=n, epochs=1, best_epoch=1,
                          train_seconds=1.0, stopped="epochs")
            for name, cfg in {"default": config, **(variants or {})}.items()}
    epoch = EpochRecord(epoch=1, train_loss=1.0, val={metric: 0.5}, grad_norm=1.0, seconds=1.0, samples_per_s=10.0,
                        lr=1e-3)
    return ModelCard(name=task.name, title=task.title, shape=task.shape, summary=task.summary, config=config,
                     metrics={metric: 0.5}, val_metrics={metric: 0.5}, served_variant="default", comparison=rows,
                     history={name: [epoch] for name in rows}, metric=metric,
                     higher_is_better=task.recipe.higher_is_better, anchors=dict(task.recipe.anchors), meta=meta,
                     dataset=Dataset(description="synthetic (untrained stand-in)", source=task.data_source,
                                     synthetic=True, files=[]),
                     training=Training(command=f"python -m core.train {task.name} --synthetic", seed=0, device="cpu",
                                       world_size=1, recipe=asdict(task.recipe), wall_seconds=1.0))


def loads(task) -> bool:
    from core.weights import WeightsError, load_model

    try:
        load_model(task)
        return True
    except WeightsError:
        return False
    except Exception:  # noqa: BLE001 -- a plugin's build_model failing counts as "does not load"
        return False


def weights_overlay(root: Path | None = None) -> tuple[dict, dict[str, str]]:
    """A weights root where every tasks/ task has a loadable model: its trained folder (symlinked) where that
    loads, else an untrained stand-in. Returns (env for the server, {task: "trained" | "stand-in" | ...}).

    Entry-point tasks that carry their own weights_dir keep it (the env var does not reach them)."""
    from core.paths import WEIGHTS_ROOT
    from core.registry import discover

    if root is None:
        import atexit

        root = Path(tempfile.mkdtemp(prefix="rnnlab-weights-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)  # stand-ins and symlinks only: nothing trained
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    status = {}
    for name, task in discover().tasks.items():
        if task.weights_dir:
            status[name] = "trained (own folder)" if loads(task) else "missing (own folder)"
            continue
        target = root / name
        if target.exists() or target.is_symlink():
            status[name] = "prepared"
            continue
        if loads(task):
            target.symlink_to(Path(WEIGHTS_ROOT) / name, target_is_directory=True)
            status[name] = "trained"
        else:
            make_weights(task, target)
            status[name] = "stand-in (untrained, same architecture)"
    return {"RNNLAB_WEIGHTS_DIR": str(root)}, status


# ---- pages and the browser -----------------------------------------------------------------------------------------

def page_urls() -> list[tuple[str, str, bool]]:
    """(label, path, is_task) for every page, enumerated the way the router does."""
    from core.registry import discover
    from core.ui.pages import FIXED_PATHS, task_url_path

    urls = [(name, "/" + path, False) for name, path in FIXED_PATHS.items()]
    urls += [(n, "/" + task_url_path(n), True) for n in discover().tasks]
    return urls


def chromium_available() -> bool:
    if not Path(CHROMIUM).exists():
        return False
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


def settle(page, timeout: float = 60, quiet: float = 0.3) -> float:
    """Wait until the script has finished and stayed finished for ``quiet`` s. Returns the time.perf_counter()
    at which it finished (the quiet period not counted), for latencies measured from an action."""
    t0, since = time.perf_counter(), None
    while time.perf_counter() - t0 < timeout:
        if page.evaluate(STATE_JS) == "notRunning":
            since = since or time.perf_counter()
            if time.perf_counter() - since >= quiet:
                return since
        else:
            since = None
        time.sleep(0.03)
    raise TimeoutError(f"page {page.url} still running after {timeout:.0f} s")


# Click an element and time, inside the page, from the click to the end of the rerun it causes (the script state
# going running -> notRunning), with the page's own clock: no polling delay and no Playwright round trip counted.
# The result lands in window.__rnnlabClick.v (ms; 0 if no rerun started within startMs, when given; -1 if none started
# before timeoutMs; -2 if one started but did not finish); Python polls for it. (A Promise handed back to Playwright
# instead is "garbage collected" by Chromium 150 while the rerun redraws the page, failing the evaluate.)
# countRunning: a rerun already running at the click counts as the one it caused.
CLICK_START_JS = """(el, [startMs, timeoutMs, countRunning]) => {
  const app = document.querySelector('[data-testid="stApp"]');
  const busy = (s) => s === 'running' || s === 'rerunRequested';
  const state = window.__rnnlabClick = {v: null};
  let saw = countRunning && busy(app.getAttribute('data-test-script-state')), obs = null, t1 = null, t2 = null;
  const t0 = performance.now();
  const done = (v) => { if (obs) obs.disconnect(); clearTimeout(t1); clearTimeout(t2); state.v = v; };
  obs = new MutationObserver((records) => {
    // a short rerun can go running -> notRunning before this callback runs: its record still has the old value
    if (records.some((r) => busy(r.oldValue))) saw = true;
    const s = app.getAttribute('data-test-script-state');
    if (busy(s)) saw = true;
    else if (saw && s === 'notRunning') done(performance.now() - t0);
  });
  obs.observe(app, {attributes: true, attributeOldValue: true, attributeFilter: ['data-test-script-state']});
  if (startMs !== null) t1 = setTimeout(() => { if (!saw) done(0); }, startMs);
  t2 = setTimeout(() => done(saw ? -2 : -1), timeoutMs);
  el.click();
  return true;
}"""
CLICK_RESULT_JS = "() => window.__rnnlabClick && window.__rnnlabClick.v !== null ? [window.__rnnlabClick.v] : null"


def timed_click(locator, timeout: float = 120, start: float | None = None, count_running: bool = True) -> float:
    """Click (sync API); milliseconds until the rerun it caused finished, timed in the page (CLICK_START_JS)."""
    locator.evaluate(CLICK_START_JS, [None if start is None else start * 1000, timeout * 1000, count_running])
    handle = locator.page.wait_for_function(CLICK_RESULT_JS, timeout=(timeout + 30) * 1000, polling=15)
    return float(handle.json_value()[0])


async def atimed_click(locator, timeout: float = 120, start: float | None = None, count_running: bool = True) -> float:
    """timed_click for Playwright's async API."""
    await locator.evaluate(CLICK_START_JS, [None if start is None else start * 1000, timeout * 1000, count_running])
    handle = await locator.page.wait_for_function(CLICK_RESULT_JS, timeout=(timeout + 30) * 1000, polling=15)
    return float((await handle.json_value())[0])


def click_timed(locator, timeout: float = 120) -> float:
    """Click (sync API) and return the seconds until the rerun finished; raises if there was no rerun."""
    v = timed_click(locator, timeout)
    if v < 0:
        raise TimeoutError("no rerun started" if v == -1 else f"rerun still running after {timeout:.0f} s")
    return v / 1000


async def aclick_timed(locator, timeout: float = 120) -> float:
    v = await atimed_click(locator, timeout)
    if v < 0:
        raise TimeoutError("no rerun started" if v == -1 else f"rerun still running after {timeout:.0f} s")
    return v / 1000


def wait_running(page, timeout: float = 3.0) -> bool:
    """After an action: wait until the rerun it triggers has started (True), or ``timeout`` passed (False)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if page.evaluate(STATE_JS) == "running":
            return True
        time.sleep(0.02)
    return False


async def asettle(page, timeout: float = 60, quiet: float = 0.3) -> float:
    """``settle`` for Playwright's async API."""
    import asyncio

    t0, since = time.perf_counter(), None
    while time.perf_counter() - t0 < timeout:
        if await page.evaluate(STATE_JS) == "notRunning":
            since = since or time.perf_counter()
            if time.perf_counter() - since >= quiet:
                return since
        else:
            since = None
        await asyncio.sleep(0.05)
    raise TimeoutError(f"page {page.url} still running after {timeout:.0f} s")


def page_faults(page) -> list[str]:
    """Exception elements and guarded crash messages on the page."""
    out = []
    n = page.locator('[data-testid="stException"]').count()
    if n:
        out.append(f"{n} exception element(s)")
    body = page.locator('[data-testid="stMain"]').inner_text() if page.locator('[data-testid="stMain"]').count() \
        else ""
    out += [f"shows '{t}'" for t in CRASH_TEXT if t in body]
    return out


async def apage_faults(page) -> list[str]:
    out = []
    n = await page.locator('[data-testid="stException"]').count()
    if n:
        out.append(f"{n} exception element(s)")
    main = page.locator('[data-testid="stMain"]')
    body = await main.inner_text() if await main.count() else ""
    out += [f"shows '{t}'" for t in CRASH_TEXT if t in body]
    return out


# ---- numbers ------------------------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation; nan for no values."""
    v = sorted(values)
    if not v:
        return float("nan")
    if len(v) == 1:
        return v[0]
    k = (len(v) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def line(label: str, value: str, target: str, ok: bool | None) -> str:
    """One figure: label, measured value, target, PASS/FAIL (or INFO when there is no target)."""
    v = "INFO" if ok is None else verdict(ok)
    return f"{label:<52} {value:>16}   target {target:<18} {v}"


# ---- ratios and verdict lists (issue 25: figures that mean the same on every machine) -----------------------------

def normalized(samples: list[float], ref: float) -> list[float]:
    """``samples`` divided by a reference time measured side by side (nan-safe: [] for no usable reference)."""
    if not (ref == ref and ref > 0):
        return []
    return [s / ref for s in samples]


def ratio(a: float, b: float) -> float:
    """a / b, nan when either is missing or b is not positive."""
    return a / b if a == a and b == b and b > 0 else float("nan")


def fmt_x(v: float, digits: int = 2) -> str:
    return f"{v:.{digits}f}x" if v == v else "n/a"


_NUMBER = re.compile(r"(?<![A-Za-z_#\d.])[+-]?\d+(?:\.\d+)?(?:\s*(?:ms|s|MiB|MB|GiB|x|%|/s))?(?![A-Za-z])")


def stable_key(label: str) -> str:
    """A row's label with its measured numbers blanked (``#``): the same figure gets the same key in every run, so
    two runs' verdicts can be lined up (task names with digits, such as ``#1`` of a demo, keep their text)."""
    out = _NUMBER.sub("#", label)
    return re.sub(r"\s+", " ", out).strip()


def write_verdicts(path: str | Path, rows) -> int:
    """``key<TAB>value<TAB>PASS|FAIL`` for every judged row (``rows``: objects with key, value, ok). Returns the
    number written."""
    lines = []
    seen: dict[str, int] = {}
    for r in rows:
        if r.ok is None:
            continue
        k = r.key
        seen[k] = seen.get(k, 0) + 1
        if seen[k] > 1:  # two figures that read the same once their numbers are blanked: keep both, numbered
            k = f"{k} [{seen[k]}]"
        lines.append(f"{k}\t{r.value}\t{verdict(r.ok)}")
    Path(path).write_text("".join(ln.replace("\n", " ") + "\n" for ln in lines))
    return len(lines)


def read_verdicts(path: str | Path) -> dict[str, tuple[str, str]]:
    """{key: (value, PASS|FAIL)} from a file ``write_verdicts`` wrote (lines starting with # are comments)."""
    out = {}
    for ln in Path(path).read_text().splitlines():
        if not ln.strip() or ln.startswith("#"):
            continue
        parts = ln.split("\t")
        if len(parts) >= 3:
            out[parts[0]] = (parts[1], parts[2].strip())
    return out


def compare_verdicts(a: dict, b: dict) -> tuple[list[str], int, int]:
    """Lines saying, for each figure of either run, its value and verdict in A and in B and whether the verdict
    held; returns (lines, held, changed). A figure in one run only counts as changed."""
    lines, held, changed = [], 0, 0
    for k in list(a) + [k for k in b if k not in a]:
        va, vb = a.get(k), b.get(k)
        if va and vb and va[1] == vb[1]:
            held += 1
            mark = "held   "
        else:
            changed += 1
            mark = "CHANGED"
        fa = f"{va[0]} {va[1]}" if va else "(not in A)"
        fb = f"{vb[0]} {vb[1]}" if vb else "(not in B)"
        lines.append(f"{mark} {k[:70]:<70} A {fa:<20} B {fb}")
    return lines, held, changed


# ---- the reference page (bench/visitor.py and bench/latency.py time against it) ------------------------------------

REFERENCE_PAGE = '''
import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
import torch

torch.set_num_threads(1)
st.set_page_config(page_title="reference", layout="wide")


@st.cache_resource
def lstm():
    torch.manual_seed(0)
    return torch.nn.LSTM(32, 64, batch_first=True).eval()


st.title("Reference page", anchor=False)
st.markdown("A fixed page in miniature: the same kinds of work as a task page, never changed.")
st.button("rerun (changes nothing)", key="ref_rerun")
with st.container(horizontal=True):
    for i in range(6):
        st.button(f"demo {i}", key=f"ref_demo_{i}")
st.text_area("A review", "The movie was not at all good.", key="ref_text")
x = torch.randn(1, 50, 32, generator=torch.Generator().manual_seed(0))  # (B=1, T=50, 32)
with torch.inference_mode():
    h, _ = lstm()(x)  # (1, 50, 64)
p = torch.sigmoid(h[0, :, :4].sum(-1)).numpy()  # (50,)
c = st.columns(3)
c[0].metric("The model says", "negative")
c[1].metric("P(positive)", f"{p[-1]:.1%}")
c[2].progress(float(p[-1]), text="negative - positive")
df = pd.DataFrame({"step": np.arange(60), "p": np.resize(p, 60), "word": [f"w{i}" for i in range(60)]})
st.altair_chart(alt.Chart(df).mark_line(point=True).encode(x="step:Q", y=alt.Y("p:Q", scale=alt.Scale(domain=[0, 1])),
                                                           tooltip=["word:N", "p:Q"]).properties(height=240),
                width="stretch")
st.dataframe(pd.DataFrame(h[0, :20, :6].numpy(), columns=[f"h{i}" for i in range(6)]), hide_index=True)
st.html("".join(f'<span title="w{i}" style="background:rgba(255,127,14,{v:.2f});padding:1px 4px;margin:1px">w{i}</span>'
                for i, v in enumerate(np.resize(p, 60))))
with st.expander("More"):
    st.markdown("Nothing here changes between reruns.")
'''


@contextlib.contextmanager
def reference_server():
    """The reference page under ``streamlit run`` on a free port; yields its base URL."""
    folder = Path(tempfile.mkdtemp(prefix="rnnlab-ref-"))
    (folder / "reference_page.py").write_text(REFERENCE_PAGE)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "streamlit", "run", str(folder / "reference_page.py"), "--server.headless", "true",
           "--server.fileWatcherType", "none", "--server.port", str(port), "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false"]
    log = open(folder / "server.log", "w")  # noqa: SIM115 -- closed by stop_server
    proc = subprocess.Popen(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    proc._log = log  # type: ignore[attr-defined]
    try:
        wait_health(base, proc, timeout=180)
        yield base
    finally:
        stop_server(proc)
        shutil.rmtree(folder, ignore_errors=True)
