"""Browser test: the real app, served by `streamlit run`, opened page by page in Debian's Chromium via Playwright.

Every page the registry implies (Home, Gradient Lab, Plugins, one per task) must load with no exception element and
no guarded crash message, and survive one interaction (a demo button and the Inspect tab on task pages; a slider,
button or expander elsewhere). Uses the system browser at /usr/bin/chromium -- never `playwright install`.
Run: pytest -m browser tests/test_browser.py
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bench._common import free_port, wait_health

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
CRASH_TEXT = ("Something went wrong", "could not be loaded")  # what core.ui's guards show instead of a traceback
STATE_JS = """() => { const a = document.querySelector('[data-testid="stApp"]');
    return a ? a.getAttribute('data-test-script-state') : 'none'; }"""


def settle(page, timeout: float = 60, quiet: float = 0.6) -> None:
    """Wait until the script has finished running and stayed finished for ``quiet`` seconds."""
    t0, since = time.time(), None
    while time.time() - t0 < timeout:
        if page.evaluate(STATE_JS) == "notRunning":
            since = since or time.time()
            if time.time() - since >= quiet:
                return
        else:
            since = None
        time.sleep(0.15)
    raise TimeoutError(f"page {page.url} still running after {timeout} s")


def check(page, what: str) -> None:
    n = page.locator('[data-testid="stException"]').count()
    assert n == 0, f"{what}: {n} exception element(s) on {page.url}"
    body = page.locator('[data-testid="stMain"]').inner_text()
    for text in CRASH_TEXT:
        assert text not in body, f"{what}: the page shows '{text}' ({page.url})"


@contextlib.contextmanager
def your_data_page(base: str, height: int = 3000, **page_args):
    """The Your data page of the app at ``base``, open and settled in a fresh Chromium (1400 x ``height``;
    ``page_args``: more new_page settings, e.g. accept_downloads); the browser closes afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": height}, **page_args)
            page.goto(base + "/your-data")
            settle(page, 120)
            yield page
        finally:
            browser.close()


def upload_to_your_data(page, path, shows: str) -> str:
    """Give the Your data page the file ``path``, wait until the words ``shows`` are on it and check the page;
    returns the main area's text."""
    main = page.locator('[data-testid="stMain"]')
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    main.get_by_text(shows).wait_for(timeout=60_000)
    settle(page, 60)
    check(page, "after the upload")
    return main.inner_text()


def fewest_training_steps(page) -> None:
    """The Your data page's "Training steps" slider at its minimum, so that a browser test trains in seconds."""
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="Training steps").get_by_role("slider")
    slider.focus()
    slider.press("Home")
    settle(page, 30)


def train_your_data(page) -> str:
    """Click Train on the Your data page, wait for it and check the page; returns the main area's text."""
    page.get_by_role("button", name="Train", exact=True).click()
    settle(page, 180)
    check(page, "after training")
    return page.locator('[data-testid="stMain"]').inner_text()


def use_one_widget(page, is_task: bool) -> str:
    main = page.locator('[data-testid="stMain"]')
    if is_task:
        demo = main.locator('[data-testid="stButton"] button:visible')
        if demo.count():
            demo.first.click()
            settle(page)
        tab = main.get_by_role("tab", name="Inspect")
        if tab.count():
            tab.first.click()
            return "demo button + Inspect tab"
        return "demo button"
    slider = main.get_by_role("slider").filter(visible=True)
    if slider.count():
        slider.first.focus()
        page.keyboard.press("ArrowRight")
        return "slider"
    button = main.locator('[data-testid="stButton"] button:visible')
    if button.count():
        button.first.click()
        return "button"
    summary = main.locator('[data-testid="stExpander"] summary:visible')
    if summary.count():
        summary.first.click()
        return "expander"
    return "none"


def page_urls() -> list[tuple[str, str, bool]]:
    """(label, path, is_task) for every page: enumerate the registry the same way the router does."""
    from core.registry import discover
    from core.ui.pages import FIXED_PATHS, task_url_path

    reg = discover()
    urls = [(name, "/" + path, False) for name, path in FIXED_PATHS.items()]
    urls += [(f"task {n}", "/" + task_url_path(n), True) for n in reg.tasks]
    return urls


@contextlib.contextmanager
def app_server(env: dict | None = None):
    """`streamlit run` the app on a free port (headless, no file watcher); yields its base URL once healthy. On an
    error the server log's tail is printed; the server always stops. ``env``: more environment variables."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
         "--server.fileWatcherType", "none", "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})))
    try:
        wait_health(base, proc)
        yield base
    except BaseException:
        log.flush()
        print("---- streamlit log (tail) ----\n" + Path(log.name).read_text(errors="replace")[-4000:])
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
        os.unlink(log.name)


@contextlib.contextmanager
def app_and_browser(env: dict | None = None):
    """(base URL, a Chromium browser) over a fresh app server (``app_server``); skips the test when Debian's chromium
    or playwright is missing. A module's browser fixture is ``with app_and_browser() as got: yield got``."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    with app_server(env) as base, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield base, browser
        finally:
            browser.close()


@contextlib.contextmanager
def open_page(browser, url: str, width: int = 1400, height: int = 1400, ready: str = '[data-testid="stApp"]',
              wait_s: float = 120, quiet: float = 0.6):
    """A new page of ``browser`` (``width`` x ``height``) at ``url``, once ``ready`` is drawn and the script has
    settled (each within ``wait_s`` seconds, ``quiet`` as in ``settle``); the page closes afterwards."""
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        page.goto(url)
        page.wait_for_selector(ready, timeout=wait_s * 1000)
        settle(page, timeout=wait_s, quiet=quiet)
        yield page
    finally:
        page.close()


@contextlib.contextmanager
def trained_task_page(task, ready: str):
    """The page of ``task`` in Chromium (1400 x 3000) over a fresh app server, once ``ready`` is drawn (the script
    may still run); skips the test while the task's weights are not trained. For a module fixture."""
    from core.ui.load import weights_status
    from core.ui.pages import task_url_path

    if weights_status(task) != "ready":
        pytest.skip(f"the {task.name} weights are not trained")
    with app_and_browser() as (base, browser):
        page = browser.new_page(viewport={"width": 1400, "height": 3000})
        page.goto(base + "/" + task_url_path(task.name))
        page.wait_for_selector(ready, timeout=120_000)
        yield page


def link_to_this_view(page) -> str:
    """Click the page's "Link to this view" button and return the link its popover shows (then close it)."""
    page.get_by_role("button", name="Link to this view").first.click()
    code = page.locator('[data-testid="stPopoverBody"] code, [data-testid="stPopover"] code').last
    code.wait_for(timeout=10_000)
    url = code.inner_text().strip()
    page.keyboard.press("Escape")
    return url


def test_every_page_in_chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    t0 = time.time()
    with app_server() as base:
        urls = page_urls()
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                for label, path, is_task in urls:
                    page.goto(base + path)
                    page.wait_for_selector('[data-testid="stApp"]', timeout=30_000)
                    settle(page)
                    check(page, f"{label} on load")
                    used = use_one_widget(page, is_task)
                    settle(page, timeout=90)
                    check(page, f"{label} after using a widget ({used})")
            finally:
                browser.close()
        assert time.time() - t0 < 300, "the browser test should stay well under a few minutes"
