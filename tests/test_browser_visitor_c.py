"""Browser tests for what a visitor meets across pages (issue 22): a page's text never leaks into another page,
a link restores the view it was copied from, the Home page fits a phone, and labels are not cut off at 1400 px.

The real app in Debian's Chromium (one server and one browser for the whole module). Run:
pytest -m browser tests/test_browser_visitor_c.py
"""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from tests.test_browser import app_and_browser, check, link_to_this_view, open_page, settle

pytestmark = pytest.mark.browser

UNIQUE = "Zebraquux wandered through a marvellous film"  # appears on no page unless typed
SIDEBAR = '[data-testid="stSidebarNav"] a'
# Labels cut with an ellipsis: an element whose text overflows its box and is clipped.
TRUNCATED_JS = """() => { const out = [];
  for (const el of document.querySelectorAll('[data-testid="stMain"] *')) {
    const cs = getComputedStyle(el);
    if (cs.textOverflow === 'ellipsis' && el.scrollWidth > el.clientWidth + 1 && el.innerText.trim())
      out.push(el.innerText.trim().slice(0, 60));
  }
  return out; }"""
# Vega cuts a long legend or axis label with an ellipsis inside the SVG
SVG_CUT_JS = """() => Array.from(document.querySelectorAll('[data-testid="stMain"] svg text'))
  .map(t => t.textContent).filter(t => t.endsWith('…'))"""
WIDTH_JS = """() => { const m = document.querySelector('[data-testid="stMain"]');
  return [document.documentElement.scrollWidth, m.scrollWidth, window.innerWidth]; }"""


@pytest.fixture(scope="module")
def browser_app():
    with app_and_browser() as got:
        yield got


def _inputs(page) -> list[str]:
    """The values of the main area's text boxes; every page read here has one, so wait for it to be drawn (a widget's
    code can arrive after the script has finished: reading at once would find none, and a "not leaked" check on no
    box at all would pass whatever the page holds)."""
    boxes = page.locator('[data-testid="stMain"] textarea, [data-testid="stMain"] input[type="text"]')
    boxes.first.wait_for(state="visible", timeout=30_000)
    return [b.input_value() for b in boxes.all()]


def _go(page, title: str) -> None:
    page.locator(SIDEBAR, has_text=title).first.click()
    time.sleep(0.5)
    settle(page, timeout=120)


def test_sentiment_text_does_not_appear_on_other_pages(browser_app):
    """?q= was shared: a review typed on Sentiment became the surname on Names, the NER text, the English
    sentence on Translation. Now ?sentiment_q= fills the review only."""
    base, browser = browser_app
    with open_page(browser, f"{base}/sentiment?sentiment_q={quote(UNIQUE)}") as page:
        check(page, "sentiment")
        assert UNIQUE in _inputs(page)
        for title in ("language of origin", "Translation", "Named entities", "Sentiment"):
            _go(page, title)
            check(page, title)
            if title != "Sentiment":
                assert UNIQUE not in " ".join(_inputs(page)), f"the review leaked onto {title}"
                assert "Zebraquux" not in page.url
        # back on Sentiment, a review typed there stays there too
        box = page.locator('[data-testid="stMain"] textarea').first
        box.fill("Smithersonian " + UNIQUE)
        page.keyboard.press("Control+Enter")
        settle(page, timeout=120)
        assert "sentiment_q=" in page.url
        _go(page, "language of origin")
        assert not any("Smithersonian" in v for v in _inputs(page))


def test_old_shared_q_link_opens_on_its_own_page_only(browser_app):
    base, browser = browser_app
    with open_page(browser, f"{base}/names_origin?q=Smithersonian") as page:
        assert "Smithersonian" in _inputs(page)
        _go(page, "Sentiment")
        assert not any("Smithersonian" in v for v in _inputs(page))


def test_link_to_this_view_restores_the_gradient_lab(browser_app):
    base, browser = browser_app
    with open_page(browser, f"{base}/gradient-lab") as page:
        page.get_by_role("button", name="Exploding", exact=True).click()
        settle(page, timeout=120)
        link = link_to_this_view(page)
        assert "gl_act=relu" in link and "gl_clip=no+clipping" in link and link.startswith(base + "/gradient-lab")
    with open_page(browser, link) as again:
        check(again, "the Gradient Lab opened from its link")
        assert "Now: the preset Exploding" in again.locator('[data-testid="stMain"]').inner_text()


def test_link_to_this_view_carries_music_settings_and_the_tab(browser_app):
    base, browser = browser_app
    with open_page(browser, f"{base}/music?music_temperature=0.5&music_seed=42&tab=Model+card") as page:
        check(page, "music")
        link = link_to_this_view(page)
        for part in ("music_temperature=0.5", "music_seed=42", "tab=Model+card"):
            assert part in link, link


def test_home_fits_a_phone(browser_app):
    """At 390 px the table and the equations scroll inside their own box, not the page."""
    base, browser = browser_app
    with open_page(browser, base + "/", width=390, height=900) as page:
        check(page, "home at 390 px")
        doc, main, width = page.evaluate(WIDTH_JS)
        assert doc <= width + 1 and main <= width + 1, (doc, main, width)
        page.screenshot(path="/tmp/rnnlab-home-390.png", full_page=True)


@pytest.mark.parametrize("path", ["/gradient-lab", "/", "/translation?tab=Inspect"])
def test_no_label_is_cut_off_at_1400_px(browser_app, path):
    """Preset labels, toggle labels and chart legends (the translation's "encoder / backward · gate r") whole."""
    base, browser = browser_app
    with open_page(browser, base + path, width=1400, height=1600) as page:
        for summary in page.locator('[data-testid="stMain"] [data-testid="stExpander"] summary').all():
            summary.click()  # the charts inside expanders too
        settle(page, timeout=120)
        cut = page.evaluate(TRUNCATED_JS) + page.evaluate(SVG_CUT_JS)
        assert not cut, f"labels cut off on {path}: {cut}"
