"""Answers for what people actually type, in Chromium: the lessons' examples typed in lower case get the lessons'
answers, and each classifier says plainly, right under its answer, when that answer is a guess (another language
for sentiment, a made-up name for names origin, a picture unlike any training photo for cat/dog).

Run: pytest -m browser tests/test_browser_guess.py
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from test_browser import app_and_browser, check, settle

pytestmark = pytest.mark.browser

ALERT = '[data-testid="stMain"] [data-testid="stAlert"]'


@pytest.fixture(scope="module")
def browser_app():
    with app_and_browser() as got:
        yield got


@contextlib.contextmanager
def _task_page(browser_app, name: str):
    """The task's page open and settled (the test skips when the task has no trained weights); closed afterwards."""
    _weights_ready(name)
    base, browser = browser_app
    page = browser.new_page(viewport={"width": 1400, "height": 3000})
    try:
        page.goto(f"{base}/{name}")
        page.wait_for_selector('[data-testid="stApp"]', timeout=60_000)
        settle(page, timeout=120)
        yield page
    finally:
        page.close()


def _type(page, text: str) -> None:
    """Type into the page's first text box as a person would, and wait for the answer."""
    box = page.locator('[data-testid="stMain"] textarea, [data-testid="stMain"] input[type="text"]').first
    box.wait_for(state="visible", timeout=30_000)
    box.fill(text)
    box.press("Control+Enter" if box.evaluate("e => e.tagName") == "TEXTAREA" else "Enter")
    time.sleep(0.5)
    settle(page, timeout=120)


def _main(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def _warnings(page) -> list[str]:
    return [a.inner_text() for a in page.locator(ALERT).all()]


def _shot(page, name: str) -> None:
    folder = os.environ.get("RNNLAB_SCREENSHOTS")  # a folder to save screenshots in, for a person to look at
    if folder:
        page.screenshot(path=str(Path(folder) / f"guess_{name}.png"), full_page=True)


def _weights_ready(name: str) -> None:
    from core.registry import discover
    from core.ui.load import weights_status

    task = discover().tasks.get(name)
    if task is None or weights_status(task) != "ready":
        pytest.skip(f"{name} has no trained weights here")


def test_ner_lesson_example_in_lower_case(browser_app):
    with _task_page(browser_app, "ner") as page:
        _type(page, "adam lists his manhattan house for $37.5 million")
        check(page, "NER, lower case")
        page.wait_for_selector('[data-testid="stMain"] mark', timeout=60_000)
        tagged = {re.sub(r"\s+", " ", m.inner_text()).strip() for m in page.locator('[data-testid="stMain"] mark').all()}
        _shot(page, "ner_lower")
        assert any(t.startswith("adam") and "PER" in t for t in tagged), tagged
        assert any(t.startswith("manhattan") and "LOC" in t for t in tagged), tagged


def test_ner_another_language_is_called_a_guess(browser_app):
    with _task_page(browser_app, "ner") as page:
        for text in ("Olumide visited Lagos with Chidi",  # new names in English: read by their spelling, no warning
                     "Okonkwo Adeyemi left Brightwater Analytics to open a bakery in Port Amberley"):
            _type(page, text)
            assert not any("This answer is a guess" in w for w in _warnings(page)), (text, _warnings(page))
        for text in ("Gestern hat Frau Schmidt in München ein neues Auto gekauft", "Der Film war schrecklich",
                     "这部电影很好看", "AYER FUIMOS A LA PLAYA CON MIS AMIGOS"):
            _type(page, text)
            check(page, f"NER: {text}")
            assert any("This answer is a guess" in w for w in _warnings(page)), (text, _warnings(page))
        _shot(page, "ner_capitals_spanish")
        _type(page, "ADAM LISTS HIS MANHATTAN HOUSE FOR $37.5 MILLION")  # shouted English: the capitals note only
        assert not any("This answer is a guess" in w for w in _warnings(page)), _warnings(page)
        assert any("all in capitals" in w for w in _warnings(page)), _warnings(page)


def test_sentiment_lower_case_example_and_a_guess_in_another_language(browser_app):
    with _task_page(browser_app, "sentiment") as page:
        _type(page, "the movie was not at all good")
        check(page, "sentiment, lower case")
        assert re.search(r"The model says\s*negative", _main(page)), _main(page)[:800]
        assert not any("guess" in w for w in _warnings(page))
        for text in ("Der Film war schrecklich", "这部电影很好看", "😀😍🎬🍿"):
            _type(page, text)
            check(page, f"sentiment: {text}")
            assert any("This answer is a guess" in w for w in _warnings(page)), (text, _warnings(page))
        _shot(page, "sentiment_emoji")


def test_names_origin_made_up_name_is_called_a_guess(browser_app):
    with _task_page(browser_app, "names_origin") as page:
        _type(page, "kowalczyk")
        check(page, "names origin, a real name")
        assert "Polish" in _main(page) and not any("spelt unlike" in w for w in _warnings(page))
        _type(page, "xyzzyq")
        check(page, "names origin, a made-up name")
        warned = [w for w in _warnings(page) if "spelt unlike" in w]
        assert warned and "guess" in warned[0], _warnings(page)
        # right under the answer: the warning comes before the chart of all 18 languages
        body = _main(page)
        assert body.index("spelt unlike") < body.index("All 18 languages")
        _shot(page, "names_madeup")


def test_cat_dog_unfamiliar_picture_is_called_a_guess(browser_app, tmp_path):
    from PIL import Image

    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (96, 96, 3)).astype(np.uint8)).save(noise)
    with _task_page(browser_app, "image_classification") as page:
        page.get_by_text("upload", exact=True).first.click()
        settle(page)
        page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(noise))
        t0 = time.time()
        while time.time() - t0 < 60 and not any("far from anything" in w for w in _warnings(page)):
            time.sleep(0.5)
        settle(page)
        _shot(page, "catdog_noise")
        check(page, "cat/dog, a noise picture")
        assert any("far from anything the models saw" in w and "guesses" in w for w in _warnings(page)), \
            _warnings(page)
        _shot(page, "catdog_noise")
