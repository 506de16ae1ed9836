"""The served app: production settings, readiness, XSRF, no HTML injection and no host paths in Chromium, and a
short soak (issue 13).

Server parts (no browser): .streamlit/config.toml holds the production settings; ``streamlit run`` with them
answers ``/_stcore/health`` with ``ok``, sets the XSRF cookie, and refuses an upload without the XSRF token.
Browser parts (``-m browser``; Debian's Chromium via Playwright, never ``playwright install``): a script typed into
every text task's input never runs, no page shows an exception or a host path, and bench/soak.py in its shortest
form passes. Every task page gets a model: its trained weights, or an untrained stand-in of the same architecture
(bench/_common.weights_overlay) so that the text boxes exist before training has finished.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench import _common as C

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / ".streamlit" / "config.toml"
XSS = '<img src=x onerror="window.__pwned=1">'
XSS_PARTS = XSS + " <script>window.__pwned=2</script> [x](javascript:window.__pwned=3) <style>*{display:none}</style>"


# ---- settings ---------------------------------------------------------------------------------------------------

def _config() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+ (the hosted app runs 3.11)
    return tomllib.loads(CONFIG.read_text())


def test_production_settings():
    cfg = _config()
    server, client = cfg.get("server", {}), cfg.get("client", {})
    assert server.get("enableXsrfProtection") is True, "XSRF protection must be on"
    assert server.get("enableCORS", True) is True, "Streamlit turns XSRF off when CORS is off"
    assert isinstance(server.get("maxUploadSize"), int) and 0 < server["maxUploadSize"] <= 200, \
        "set an upload limit (MB)"
    assert client.get("showErrorDetails") == "none", "error details must not reach users"
    assert server.get("fileWatcherType") == "none", "no file watcher in production"
    assert server.get("headless") is True
    assert server.get("runOnSave", False) is False
    assert cfg.get("browser", {}).get("gatherUsageStats") is False
    # Streamlit's full gc after every rerun keeps memory down; it is cheap only because core.ui.server.settle_heap
    # froze the long-lived heap (tests/test_ui_shell.py checks that it does).
    assert cfg.get("runner", {}).get("postScriptGC", True) is True


def test_upload_limits_fit_the_server_limit():
    """Every page's own limit is below the server's, so the page's friendly message is what a user sees."""
    limit = _config()["server"]["maxUploadSize"] * 2**20
    checked = 0
    for module, name in (("tasks.music.model", "MAX_MIDI_BYTES"), ("tasks.video.data", "MAX_GIF_BYTES"),
                         ("core.images", "MAX_BYTES")):
        try:
            value = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        assert 0 < value <= limit, f"{module}.{name} = {value} is above the server's {limit} bytes"
        checked += 1
    if not checked:
        pytest.skip("no task with an upload limit")


# ---- the server -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server():
    env, status = C.weights_overlay()
    port = C.free_port()
    base = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkstemp(prefix="rnnlab-server-", suffix=".log")[1])
    proc = C.start_server(port, log, env=env)
    try:
        C.wait_health(base, proc, timeout=180)
        yield {"base": base, "proc": proc, "log": log, "weights": status}
    except BaseException:
        print("---- streamlit log (tail) ----\n" + log.read_text(errors="replace")[-4000:])
        raise
    finally:
        C.stop_server(proc)


def test_health_is_ok_and_sets_the_xsrf_cookie(server):
    code, body, headers = C.http_get(server["base"] + "/_stcore/health")
    assert (code, body.strip()) == (200, "ok")
    cookie = headers.get("set-cookie") or headers.get("Set-Cookie") or ""
    assert "_streamlit_xsrf=" in cookie, f"no XSRF cookie: XSRF protection is off? ({cookie!r})"


def _put(url: str, headers: dict) -> int:
    req = urllib.request.Request(url, data=b"--x--\r\n", method="PUT", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_upload_without_xsrf_token_is_refused(server):
    base = server["base"]
    url = base + "/_stcore/upload_file/not-a-session/not-a-file"
    assert _put(url, {}) == 403
    # With a valid token the same request gets past XSRF and fails on the session instead: the 403 was XSRF.
    _, _, headers = C.http_get(base + "/_stcore/health")
    token = (headers.get("set-cookie") or headers.get("Set-Cookie")).split(";")[0].split("=", 1)[1]
    code = _put(url, {"X-Xsrftoken": token, "Cookie": f"_streamlit_xsrf={token}"})
    assert code == 400, code


def test_unknown_paths_reveal_nothing(server):
    for path in ("/../../etc/passwd", "/_stcore/nope", "/media/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd"):
        try:
            code, body, _ = C.http_get(server["base"] + path)
        except OSError:
            continue
        assert "root:x:" not in body
        assert not [p for p in C.HOST_PATHS if p in body], f"{path}: a host path in the response"


# ---- in Chromium -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(server):
    if not C.chromium_available():
        pytest.skip("Debian's chromium (/usr/bin/chromium) or playwright is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=C.CHROMIUM, args=C.CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(url)
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=120_000)  # every page has a title: drawn
    C.settle(page, timeout=120, quiet=0.8)
    return page


def _text_box(page):
    """The page's text box and the key that submits it. Every text task has one; wait for it to be drawn (a widget's
    code can arrive after the script has finished), and fail if it never is."""
    main = page.locator('[data-testid="stMain"]')
    either = main.locator('[data-testid="stTextArea"] textarea, [data-testid="stTextInput"] input').filter(visible=True)
    either.first.wait_for(state="visible", timeout=30_000)
    for sel, key in (('[data-testid="stTextArea"] textarea', "Control+Enter"),
                     ('[data-testid="stTextInput"] input', "Enter")):
        box = main.locator(sel).filter(visible=True)
        if box.count():
            return box.first, key
    raise AssertionError("no text box drawn")


def _text_task_urls() -> list[tuple[str, str]]:
    from core.registry import discover
    from core.ui.pages import task_url_path

    return [(n, "/" + task_url_path(n)) for n, t in sorted(discover().tasks.items()) if t.primary_input == "text"]


@pytest.mark.browser
@pytest.mark.parametrize("name,path", _text_task_urls())
def test_script_typed_into_a_text_task_never_runs(server, browser, name, path):
    page = _open(browser, server["base"] + path)
    try:
        box, key = _text_box(page)
        for payload in (XSS, XSS_PARTS):
            box.fill(payload)
            box.press(key)
            time.sleep(0.3)
            C.settle(page, timeout=120, quiet=0.8)
            assert page.evaluate("() => window.__pwned") is None, f"{name}: the script ran"
            assert page.locator('[data-testid="stMain"] img[src="x"]').count() == 0, f"{name}: live <img> injected"
            assert page.locator('[data-testid="stMain"] a[href^="javascript:"]').count() == 0, \
                f"{name}: a live javascript: link"
            assert not C.page_faults(page), C.page_faults(page)
        tab = page.locator('[data-testid="stMain"]').get_by_role("tab", name="Inspect")
        if tab.count():
            tab.first.click()
            time.sleep(0.3)
            C.settle(page, timeout=120, quiet=0.8)
            assert page.evaluate("() => window.__pwned") is None
            assert page.locator('[data-testid="stMain"] img[src="x"]').count() == 0
            assert not C.page_faults(page), C.page_faults(page)
    finally:
        page.close()


@pytest.mark.browser
def test_every_page_with_a_hostile_url(server, browser):
    """Every page opened with the payload in the URL (?q=..., a bogus ?tab=): the script never runs, no exception,
    no guarded crash, and no host path anywhere in the rendered text."""
    from urllib.parse import quote

    problems = []
    for label, path, _ in C.page_urls():
        page = _open(browser, server["base"] + path + "?q=" + quote(XSS_PARTS) + "&tab=" + quote("<b>x</b>"))
        try:
            if page.evaluate("() => window.__pwned") is not None:
                problems.append(f"{label}: the script ran")
            if page.locator('[data-testid="stMain"] img[src="x"]').count():
                problems.append(f"{label}: a live <img> from the URL")
            problems += [f"{label}: {f}" for f in C.page_faults(page)]
            text = page.locator('[data-testid="stApp"]').inner_text()
            problems += [f"{label}: host path {p!r} on the page" for p in C.HOST_PATHS if p in text]
        finally:
            page.close()
    assert not problems, problems


@pytest.mark.browser
def test_soak_very_short(server, browser):
    """bench/soak.py's shortest form against this module's server (warm already)."""
    _soak(["--client", "browser", "--think-max", "1", "--sessions", "3", "--minutes", "0.25", "--url", server["base"],
           "--pid", str(C.server_pid(server["proc"])), "--grace", "240", "--no-warmup"], timeout=400)
    # every page was visited by the test above


def test_soak_websocket_very_short(server):
    """The full soak's load generator (websocket sessions) in its shortest form, against the same server."""
    out = _soak(["--sessions", "8", "--minutes", "0.3", "--think-min", "0.5", "--think-max", "2", "--url",
                 server["base"], "--pid", str(C.server_pid(server["proc"])), "--grace", "120", "--no-warmup"],
                timeout=400)
    assert "8 ws sessions" in out


@pytest.mark.browser
def test_server_log_has_no_errors(server, browser):
    """After everything above (hostile typing, hostile URLs, every page, the soak): no traceback in the log."""
    errors = C.log_errors(server["log"])
    assert not errors, "\n".join(errors[:20])


# ---- the soak, shortest form ----------------------------------------------------------------------------------------

def _soak(args: list[str], timeout: float) -> str:
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "soak.py"), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    print(out[-6000:])
    assert proc.returncode == 0 and "\nRESULT PASS" in out, out[-3000:]
    return out


@pytest.mark.slow
@pytest.mark.browser
def test_soak_short():
    if not C.chromium_available():
        pytest.skip("no chromium")
    _soak(["--sessions", "5", "--minutes", "0.5"], timeout=900)
