"""Browser test: what a visitor meets on the Sentiment and Translation pages (issue 22), in Debian's Chromium.

Sentiment: the lesson's example is answered negative and "Which words pushed the answer" has a legend whose numbers
are the largest push shown (not "-0.00 ... 0.00" beside strongly coloured words when the model is very sure).
Translation: the lesson's example gives a French sentence with "comment"; ALL CAPS is read in sentence case; a
right-to-left override never reaches the heading; a paste past 2,000 characters and a sentence longer than the
training sentences are said; the "a name" demo shows no "l' " gap. Needs the committed weights of both tasks.
Set RNNLAB_SHOTS=/some/folder to keep a screenshot of each step there. Run: pytest -m browser <this file>
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from test_browser import app_and_browser, check, settle

from tasks.sentiment import TASK as SENTIMENT
from tasks.translation import MAX_CHARS
from tasks.translation import TASK as TRANSLATION

pytestmark = pytest.mark.browser

PUSHES_JS = """() => {
  const box = [...document.querySelectorAll('[data-testid="stHtml"]')]
      .find(e => e.innerText.includes('push towards positive'));
  if (!box) return null;
  const words = [...box.querySelectorAll('span[title]')].map(s => s.getAttribute('title'));
  const legend = box.lastElementChild ? box.lastElementChild.innerText : '';
  return {words, legend};
}"""


def _shot(page, name: str) -> None:
    folder = os.environ.get("RNNLAB_SHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def _main(page):
    return page.locator('[data-testid="stMain"]')


def _demo(page, label: str) -> None:
    _main(page).locator('[data-testid="stButton"] button', has_text=label).first.click()
    settle(page, timeout=90)


def _type(page, label: str, text: str) -> None:
    box = _main(page).get_by_label(label)
    box.fill(text)
    box.press("Enter")
    settle(page, timeout=90)


def _headline(page) -> str:
    return _main(page).locator('[data-testid="stMarkdown"] h3').first.inner_text()


def _infos(page) -> str:
    return " ".join(_main(page).locator('[data-testid="stAlert"]').all_inner_texts())


def _lesson_example(page, url: str, demo: str, what: str) -> None:
    """Open ``url``, click the demo button ``demo`` and check the page (``what``)."""
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"]', timeout=30_000)
    settle(page, timeout=90)
    _demo(page, demo)
    check(page, what)


def _sentiment(page, base: str) -> None:
    _lesson_example(page, base + "/sentiment", "not at all good", "sentiment, the lesson's example")
    said = _main(page).locator('[data-testid="stMetric"]', has_text="The model says").inner_text()
    assert "negative" in said, said
    got = page.evaluate(PUSHES_JS)
    assert got, "no 'Which words pushed the answer' on the page"
    values = {t.split(":")[0].strip("'"): float(t.rsplit("=", 1)[1]) for t in got["words"]}
    legend = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", got["legend"].split(":", 1)[1])]
    top = max(abs(v) for v in values.values())
    assert top >= 0.5 and legend[-1] == pytest.approx(top, rel=0.01) and legend[0] == pytest.approx(-top, rel=0.01), \
        (got["legend"], values)
    assert values["not"] < 0, values
    _shot(page, "sentiment_lesson_example")


def _translation(page, base: str) -> None:
    _lesson_example(page, base + "/translation", "How are you doing?", "translation, the lesson's example")
    assert "comment" in _headline(page).lower(), _headline(page)

    _type(page, "English sentence", "WHERE IS THE STATION?")
    head = _headline(page)
    assert not any(w.isupper() and len(w) > 1 for w in re.findall(r"\w+", head)), head
    assert "Read as" in _infos(page)
    _shot(page, "translation_all_caps")

    _type(page, "English sentence", "Where is the \u202estation?")
    assert "\u202e" not in _headline(page)
    check(page, "translation, a right-to-left override")

    long = "Where is the station? " * 120  # 2,640 characters, pasted at once
    _type(page, "English sentence", long)
    infos = _infos(page)
    assert f"{len(long):,} characters" in infos and f"first {MAX_CHARS:,}" in infos, infos
    assert "more than the longest sentences the model was trained on" in infos, infos
    _shot(page, "translation_long_paste")

    _demo(page, "a name")
    head = _headline(page)
    assert "Zanzibar" in head and "' " not in head and "’ " not in head, head
    _demo(page, "longer")
    assert "more than the longest sentences the model was trained on" in _infos(page)
    check(page, "translation, the demos")
    _shot(page, "translation_longer_demo")


def test_sentiment_and_translation_as_a_visitor_meets_them():
    for task in (SENTIMENT, TRANSLATION):
        if not (task.weights_path() / "card.json").exists():
            pytest.skip(f"no trained {task.name} weights")
    t0 = time.time()
    with app_and_browser() as (base, browser):
        page = browser.new_page(viewport={"width": 1400, "height": 3000})
        _sentiment(page, base)
        _translation(page, base)
    assert time.time() - t0 < 120
