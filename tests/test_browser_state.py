"""Browser test: what a visitor types survives the sidebar, and a page's settings survive a link.

1. Navigation after typing: on every page with a text box, type without Enter and click another page in the
   sidebar at once (Playwright's click: pressed and released within milliseconds). The other page must open on
   that first click, and coming back (sidebar again) must show the typed text in the box.
2. State restore: a text typed and sent (Enter), then another page, then back: the box still holds it.
3. Link round trip: on pages with settings, change each setting, read the "Link to this view" box, open that link
   in a new browser context (a new session: nothing remembered) and compare every widget's value.

Pages and their text boxes are read from the registry and the page itself. Uses Debian's chromium.
Run: pytest -m browser tests/test_browser_state.py
"""

from __future__ import annotations

import time

import pytest

from bench.visitor import nav_links
from tests.test_browser import app_and_browser, link_to_this_view, settle

pytestmark = pytest.mark.browser

TEXT_BOX = '[data-testid="stMain"] textarea, [data-testid="stMain"] [data-testid="stTextInput"] input'
# every widget value on the page's Try-it tab, in order: sliders, toggles/checkboxes, text boxes, radios, selects
VALUES_JS = """() => { const m = document.querySelector('[data-testid="stMain"]'); const out = [];
    m.querySelectorAll('input[type="range"]').forEach(s => out.push(['slider', s.getAttribute('aria-label'), s.value]));
    m.querySelectorAll('input[type="checkbox"]').forEach(c =>
        out.push(['check', c.getAttribute('aria-label') || '', String(c.checked)]));
    m.querySelectorAll('textarea, [data-testid="stTextInput"] input, [data-testid="stNumberInput"] input')
        .forEach(t => out.push(['text', t.value]));
    m.querySelectorAll('input[type="radio"]').forEach(r => out.push(['radio', String(r.checked)]));
    return out; }"""


@pytest.fixture(scope="module")
def browser_and_base():
    with app_and_browser() as (base, browser):
        yield browser, base


def text_pages() -> list[tuple[str, str]]:
    """(url path, page title) of every task page whose input is text."""
    from core.registry import discover
    from core.ui.pages import task_url_path

    reg = discover()
    return [("/" + task_url_path(n), t.title) for n, t in reg.tasks.items() if t.primary_input == "text"]


def _open(browser, base: str, path: str):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    page.goto(base + path)
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=60_000)
    settle(page, timeout=120)
    return ctx, page


def _sidebar(page, path: str):
    i = [p for p, _ in nav_links(page)].index(path)
    return page.locator('[data-testid="stSidebarNav"] a').nth(i)


def _h1(page) -> str:
    return page.locator('[data-testid="stMain"] h1').first.inner_text().strip()


@pytest.mark.parametrize("path,title", text_pages())
def test_navigation_after_typing_and_back(browser_and_base, path, title):
    browser, base = browser_and_base
    ctx, page = _open(browser, base, path)
    try:
        box = page.locator(TEXT_BOX).first
        typed = "Zelinski wrote this in Paris yesterday"
        box.click()
        box.fill(typed)  # no Enter: the box still holds unsent typing
        other = next(p for p, _ in nav_links(page) if p != path and p != "/")
        _sidebar(page, other).click()
        page.wait_for_timeout(400)
        settle(page, timeout=120, quiet=1.0)
        assert _h1(page) != title, f"one click on {other} left the visitor on {title} (typed text pending)"
        assert page.url.split("?")[0].endswith(other), page.url
        _sidebar(page, path).click()
        page.wait_for_timeout(300)
        settle(page, timeout=120, quiet=1.0)
        assert _h1(page) == title
        assert page.locator(TEXT_BOX).first.input_value() == typed, "the typed text was lost on the way back"
    finally:
        ctx.close()


def test_sent_text_restored_after_visiting_another_page(browser_and_base):
    browser, base = browser_and_base
    path, title = text_pages()[0]
    ctx, page = _open(browser, base, path)
    try:
        box = page.locator(TEXT_BOX).first
        box.click()
        box.fill("a text sent with the keyboard")
        page.keyboard.press("Control+Enter" if box.evaluate("e => e.tagName") == "TEXTAREA" else "Enter")
        settle(page, timeout=120)
        other = next(p for p, _ in nav_links(page) if p != path and p != "/")
        _sidebar(page, other).click()
        page.wait_for_timeout(300)
        settle(page, timeout=120)
        _sidebar(page, path).click()
        page.wait_for_timeout(300)
        settle(page, timeout=120)
        assert page.locator(TEXT_BOX).first.input_value() == "a text sent with the keyboard"
        assert "a+text+sent" in page.url or "a%20text%20sent" in page.url, page.url
    finally:
        ctx.close()


def _move_every_slider(page) -> None:
    sliders = page.locator('[data-testid="stMain"] [role="tabpanel"]').first.locator('input[type="range"]')
    for i in range(sliders.count()):
        s = sliders.nth(i)
        for _ in range(2):  # one step at a time: a key pressed while the last step's rerun runs may never be sent
            s.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(500)  # the slider sends its value after a short debounce; then the rerun starts
            settle(page, timeout=120)
            _url_settled(page)


def _url_settled(page, quiet: float = 1.5, timeout: float = 60) -> None:
    """Wait until the page's own URL (which the app rewrites after each change) has stayed the same for ``quiet`` s."""
    t0, last, since = time.time(), page.url, time.time()
    while time.time() - t0 < timeout:
        page.wait_for_timeout(200)
        if page.url != last:
            last, since = page.url, time.time()
        elif time.time() - since >= quiet:
            settle(page, timeout=120)
            return


def _flip_every_toggle(page) -> None:
    toggles = page.locator('[data-testid="stMain"] [role="tabpanel"]').first.locator('[data-testid="stCheckbox"] label')
    for i in range(toggles.count()):
        t = toggles.nth(i)
        if t.is_visible():
            t.click()
            settle(page, timeout=120)
    _url_settled(page)


ROUND_TRIP = ["/translation", "/captioning", "/video", "/music"]


@pytest.mark.parametrize("path", ROUND_TRIP)
def test_link_round_trip(browser_and_base, path):
    """Change every slider and toggle on the page's first tab, open the link in a new context: same values."""
    browser, base = browser_and_base
    ctx, page = _open(browser, base, path)
    try:
        _move_every_slider(page)
        _flip_every_toggle(page)
        before = page.evaluate(VALUES_JS)
        url = link_to_this_view(page)
        assert url.startswith("http"), url
    finally:
        ctx.close()
    ctx2 = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page2 = ctx2.new_page()
        page2.goto(url)
        page2.wait_for_selector('[data-testid="stMain"] h1', timeout=60_000)
        settle(page2, timeout=120)
        after = page2.evaluate(VALUES_JS)
        t0 = time.time()
        while after != before and time.time() - t0 < 60:  # a loaded host: the answer's own widgets may come later
            page2.wait_for_timeout(500)
            settle(page2, timeout=120)
            after = page2.evaluate(VALUES_JS)
        assert after == before, f"{path}: the link reopened other values\nbefore {before}\nafter  {after}\n{url}"
    finally:
        ctx2.close()
