"""The translation page in Chromium, as a visitor types: the lesson's example in lower case without its question
mark gets a French question with "comment"; a sentence in another language gets the plain warning, right under the
answer, that the translation is a guess.

Run: pytest -m browser tests/test_browser_translation.py
"""

from __future__ import annotations

import re

import pytest
from test_browser import check, settle, trained_task_page

pytestmark = pytest.mark.browser

MAIN = '[data-testid="stMain"]'
ANSWER = MAIN + " h3"  # the translation is the page's only level-3 heading above the charts


@pytest.fixture(scope="module")
def page():
    from tasks.translation import TASK

    with trained_task_page(TASK, ANSWER) as page:
        settle(page, timeout=120)
        yield page


def _type(page, text: str) -> tuple[str, str]:
    """Type ``text`` into the English box; (the answer, the text of the element right under it)."""
    box = page.get_by_label("English sentence")
    box.fill(text)
    box.press("Enter")
    page.wait_for_function(f"decodeURIComponent(location.search.replace(/\\+/g, ' ')).includes({text!r})",
                           timeout=60_000)
    settle(page, timeout=120)
    check(page, f"after typing {text!r}")
    answer = page.locator(ANSWER).first
    below = answer.locator("xpath=ancestor::div[@data-testid='stElementContainer'][1]/following-sibling::div[1]")
    said = below.locator('[data-testid="stMarkdownContainer"]')  # the words, without the alert's icon ligature
    return answer.inner_text().strip(), (said.first.inner_text() if said.count() else below.inner_text()).strip()


def test_lesson_example_typed_in_lower_case(page):
    answer, below = _type(page, "how are you doing")
    page.screenshot(path="/tmp/tr32_browser_lower.png", full_page=False)
    assert "comment" in answer.lower() and answer.endswith("?"), answer
    assert "guess" not in below


def test_another_language_gets_the_guess_warning_under_the_answer(page):
    answer, below = _type(page, "Je ne sais pas ce que tu veux dire")
    page.screenshot(path="/tmp/tr32_browser_guess.png", full_page=False)
    assert answer
    assert below.startswith("This answer is a guess"), below


def test_an_unseen_name_typed_in_lower_case_sentence_comes_through_as_typed(page):
    """The decoder may not end before every unknown English word has its place: the name is in the French, as typed,
    and the page says which words were copied."""
    answer, _ = _type(page, "i met Olumide yesterday")
    assert "Olumide" in re.findall(r"\w+", answer), answer
    assert "copied into the French as typed" in page.inner_text("body")


def test_a_contraction_typed_without_its_apostrophe_is_read_with_it(page):
    """"i dont know" is how people type "I don't know": the page reads it with the apostrophe and says so, and the
    French is the negation the model gives the written form (no English word left in it)."""
    answer, _ = _type(page, "i dont know")
    body = page.inner_text("body")
    assert "Read as “i don't know”" in body and "apostrophe" in body, body[:1500]
    assert "dont" not in answer.lower(), answer
    page.screenshot(path="/tmp/tr32_browser_apostrophe.png", full_page=False)


def test_chat_spelling_is_written_out(page):
    """"how r u" is chat for "how are you": read so, and said; the answer is the lesson's French question."""
    answer, _ = _type(page, "how r u")
    assert "Read as “how are you”" in page.inner_text("body")
    assert "comment" in answer.lower(), answer
