"""Browser test: every screen reads as words a student knows, in Debian's Chromium against `streamlit run`.

Every page of the sidebar is opened; on a task page every tab; on every page every expander (the sidebar's
glossary included), and the Model card's "For developers" expander both closed and open. The visible text -- the
main area and the sidebar, tables' cells included, minus the inside of the developers' expander -- must hold no
snake_case id (negation_accuracy, rnn_tanh, train_loss), no PyTorch parameter path (encoder.net.1.0.weight,
weight_ih_l0) and no raw Markdown or LaTeX (**, _{, $...$, \\frac). Short maths notation (h_t, b_o, dL/dh_t) is not
an id. Run: pytest -m browser tests/test_browser_words.py
"""

from __future__ import annotations

import re

import pytest

from bench.visitor import nav_links
from tests.test_browser import app_and_browser, open_page, settle

pytestmark = pytest.mark.browser

DEV = "For developers"
PLUGINS = "plugins"  # core.ui.pages.FIXED_PATHS["plugins"]: the developers' page
# the visible text of the main area and the sidebar; the developers' expander's inside is left out
TEXT_JS = """(dev) => {
    const hide = document.createElement('style');  // icons are ligatures ("expand_more"): not words on screen
    hide.textContent = '[data-testid="stIconMaterial"], [data-testid="stExpanderIcon"] {display: none !important}';
    document.head.appendChild(hide);
    const icons = [];  // badge and button icons drawn with the Material Symbols font
    document.querySelectorAll('span, i').forEach(e => {
        if (getComputedStyle(e).fontFamily.includes('Material') && e.style.display !== 'none') {
            icons.push([e, e.style.display]); e.style.display = 'none'; } });
    const parts = [];
    for (const sel of ['[data-testid="stSidebar"]', '[data-testid="stMain"]']) {
        const root = document.querySelector(sel); if (!root) continue;
        let text = root.innerText;
        root.querySelectorAll('[data-testid="stExpander"]').forEach(e => {
            const s = e.querySelector('summary'); if (!s || !s.innerText.includes(dev)) return;
            const inside = e.querySelector('[data-testid="stExpanderDetails"]');
            if (inside && inside.innerText.trim()) text = text.split(inside.innerText).join(' ');
        });
        parts.push(text);
    }
    hide.remove();
    icons.forEach(([e, d]) => { e.style.display = d; });
    return parts.join('\\n'); }"""
# a snake_case word: two or more parts, one of them three letters or more (h_t, b_o, dh_t are notation)
SNAKE = re.compile(r"(?<![\w./=?&-])([a-z][a-z0-9]*(?:_[a-z0-9]+)+)(?![\w(=])")
TORCH_PATH = re.compile(r"\b\w+(?:\.\w+)*\.(?:weight|bias)\b|\b(?:weight|bias)_(?:ih|hh|zh|fih)_l\d")
RAW_MD = re.compile(r"\*\*|_\{|\$[^$\n]{1,60}\$|\\(?:frac|left|right|cdot|sum|mathrm)\b")
NOTATION_OK = re.compile(r"^[a-zA-Z]{1,3}(?:_[a-zA-Z0-9]{1,2})+$")


def problems(text: str, ids: bool = True) -> list[str]:
    """What a student should not see in ``text`` (pure: tested below without a browser). ``ids`` False: the
    Plugins page, written for developers (its commands name tasks by id), is checked for raw markdown only."""
    out = []
    for m in SNAKE.finditer(text if ids else ""):
        word = m.group(1)
        if NOTATION_OK.match(word) or not any(len(p) >= 3 for p in word.split("_")[1:] + word.split("_")[:1]):
            continue
        out.append(f"id {word!r}: ...{text[max(0, m.start() - 40):m.end() + 40]!r}")
    out += [f"PyTorch name {m.group(0)!r}" for m in TORCH_PATH.finditer(text if ids else "")]
    out += [f"raw markdown {m.group(0)!r}: ...{text[max(0, m.start() - 40):m.end() + 40]!r}"
            for m in RAW_MD.finditer(text)]
    return out


def test_the_checker_itself():
    assert problems("negation_accuracy 0.94") and problems("cell rnn_tanh") and problems("train_loss")
    assert problems("encoder.net.1.0.weight") and problems("weight_ih_l0") and problems("**B-**PER")
    assert problems("state o_{t-1}") and problems("the $o_t$ state")
    assert not problems("‖dL/dh_t‖ at step t, b_o and w1, x_t, W_z")
    assert not problems("Adam lists his Manhattan house for $37.5 million.")
    assert not problems("w' (recurrent weights of the update gate z, layer 0)")


def _expanders(page):
    return page.locator('[data-testid="stSidebar"] [data-testid="stExpander"] summary, '
                        '[data-testid="stMain"] [data-testid="stExpander"] summary')


def _open_every_expander(page) -> None:
    """Open every closed expander except the developers' one (its inside is read separately)."""
    for _ in range(3):  # opening one can draw more (nested), but not forever
        opened = 0
        sums = _expanders(page)
        for i in range(sums.count()):
            s = sums.nth(i)
            if not s.is_visible() or DEV in s.inner_text():
                continue
            details = s.locator("xpath=..")
            if details.get_attribute("open") is None:
                s.click()
                opened += 1
        if not opened:
            return
        page.wait_for_timeout(300)


def _read(page, where: str, found: dict) -> None:
    settle(page, timeout=180)
    _open_every_expander(page)
    settle(page, timeout=180)  # an expander that computes its content only when opened reruns the page
    for p in problems(page.evaluate(TEXT_JS, DEV), ids=not page.url.split("?")[0].endswith("/" + PLUGINS)):
        found.setdefault(where, []).append(p)


def test_every_page_tab_and_expander_is_in_words():
    found: dict[str, list[str]] = {}
    with app_and_browser() as (base, browser), open_page(browser, base + "/", height=3000,
                                                         ready='[data-testid="stSidebarNav"]') as page:
        for path, label in nav_links(page):
            page.goto(base + path)
            page.wait_for_selector('[data-testid="stMain"] h1', timeout=60_000)
            _read(page, f"{label}", found)
            tabs = page.locator('[data-testid="stMain"] [data-testid="stTabs"]').first.locator('[role="tab"]')
            names = [tabs.nth(i).inner_text().strip() for i in range(tabs.count())] if tabs.count() else []
            for i, name in enumerate(names[1:], start=1):
                tabs.nth(i).click()
                page.wait_for_timeout(300)
                _read(page, f"{label} / {name}", found)
            dev = page.locator('[data-testid="stMain"] [data-testid="stExpander"] summary', has_text=DEV)
            if dev.count():
                dev.first.click()  # open: what is inside is the developers' and is not read
                page.wait_for_timeout(300)
                _read(page, f"{label} / {DEV} open", found)
    assert not found, "\n".join(f"{where}: {p}" for where, ps in found.items() for p in ps[:8])
