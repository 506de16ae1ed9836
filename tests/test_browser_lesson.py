"""Browser test of the Lesson: the real app under `streamlit run`, in Debian's Chromium.

A student walks the whole lesson, answering every question before the model's answer is shown; a teacher's link
opens the step it names; the page works at 390 px; and the answers on screen come from the models: served from a
copy of the weights in which two models were changed, the same steps show different answers.
Run: pytest -m browser tests/test_browser_lesson.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core import lesson as L
from tests.test_browser import ARGS, CHROMIUM, app_server, check, settle

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parent.parent
MODEL_BOX = '[class*="st-key-lesson_model_"]'  # the model's answer (core.ui.pages.lesson)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def base():
    with app_server() as url:
        yield url


def open_lesson(browser, url: str, width: int = 1400):
    page = browser.new_page(viewport={"width": width, "height": 1600})
    page.goto(url)
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=120_000)
    settle(page, 120)
    return page


def heading(page) -> str:
    return page.locator('[data-testid="stMain"] h3').first.inner_text()


def picks_made(page) -> bool:
    main = page.locator('[data-testid="stMain"]')
    return bool(main.locator('[data-testid="stRadioOption"] input:checked').count()
                or main.locator('[data-testid="stButtonGroup"] button[kind*="Active"]').count())


def answer_and_reveal(page, picks: tuple[int, ...]) -> str:
    """Pick the choices, press the reveal button; return what the model's box says."""
    main = page.locator('[data-testid="stMain"]')
    assert main.locator(MODEL_BOX).count() == 0, "the model's answer was shown before the question was answered"
    button = main.get_by_role("button", name="Show the model's answer")
    if not picks_made(page):
        button.click()  # before any answer: a request to answer first, not the model's answer
        settle(page, 60)
        assert main.locator(MODEL_BOX).count() == 0 and "Pick your answer first" in main.inner_text()
    for k in picks:
        if main.locator('[data-testid="stButtonGroup"]').count():
            main.locator('[data-testid="stButtonGroup"] button').nth(k).click()
        else:
            main.locator('[data-testid="stRadioOption"]').nth(k).click()
        settle(page, 60)
    button.click()
    settle(page, 180)
    box = main.locator(MODEL_BOX)
    assert box.count() == 1, f"no model answer after the reveal on {page.url}"
    return box.inner_text()


def walk(browser, base: str, width: int = 1400, steps: range | None = None) -> dict[str, str]:
    """Answer every step (the first choice), in order, with the Next button; {step key: the model's answer}."""
    page = open_lesson(browser, base + "/lesson", width)
    said = {}
    try:
        for i, step in enumerate(L.STEPS):
            assert heading(page).startswith(f"Step {i + 1} of {len(L.STEPS)}"), heading(page)
            said[step.key] = answer_and_reveal(page, (0,))
            check(page, f"step {i + 1}")
            assert f"lesson_step={i + 1}" in page.url
            if i < len(L.STEPS) - 1:
                page.locator('[data-testid="stMain"]').get_by_role("button", name="Next step").click()
                settle(page, 60)
        body = page.locator('[data-testid="stMain"]').inner_text()
        assert f"Answered {len(L.STEPS)} of {len(L.STEPS)} questions" in body
        code = page.url.split("lesson_p=")[1]
        assert set(L.decode_progress(code)) == set(L.STEP_KEYS), "every answer should be in the link"
    finally:
        page.close()
    return said


def test_walk_the_whole_lesson(browser, base):
    said = walk(browser, base)
    assert len(said) == len(L.STEPS) and all(s.strip() for s in said.values())
    assert "tags for" in said["shapes"] and "one-way tagger" in said["bidirectional"]


def test_teacher_link_opens_its_step(browser, base):
    for n in (1, 4, len(L.STEPS)):
        page = open_lesson(browser, f"{base}/lesson?lesson_step={n}")
        assert heading(page).startswith(f"Step {n} of {len(L.STEPS)}: {L.STEPS[n - 1].title}")
        assert page.locator(MODEL_BOX).count() == 0, "a teacher's link opens the question, not the answer"
        page.close()
    # a link with answers: the step opens with the student's answer and the model's, computed again
    page = open_lesson(browser, f"{base}/lesson?lesson_step=6&lesson_p=5y.....0n")
    body = page.locator('[data-testid="stMain"]').inner_text()
    assert heading(page).startswith("Step 6 of") and "Answered 2 of" in body
    assert page.locator(MODEL_BOX).count() == 1 and "one-way tagger" in page.locator(MODEL_BOX).inner_text()
    check(page, "a link with answers")
    page.close()
    page = open_lesson(browser, f"{base}/lesson?lesson_step=banana&lesson_p=zz")  # a mangled link still opens
    assert heading(page).startswith("Step 1 of")
    check(page, "a mangled link")
    page.close()


def test_at_390_px(browser, base):
    page = open_lesson(browser, f"{base}/lesson?lesson_step=2", width=390)
    said = answer_and_reveal(page, (0,))
    assert "t = " in said
    check(page, "390 px")
    wide = page.evaluate("() => document.documentElement.scrollWidth")
    assert wide <= 392, f"the page is {wide} px wide at a 390 px viewport"
    # the step-through: one more step along
    slider = page.locator('[data-testid="stMain"]').get_by_role("slider").first
    slider.focus()
    page.keyboard.press("ArrowRight")
    settle(page, 60)
    assert "t = 2" in page.locator('[data-testid="stMain"]').inner_text()
    page.close()


def test_glossary_links_land_on_their_entry(browser, base):
    page = open_lesson(browser, f"{base}/lesson?lesson_step=1")
    link = page.locator('[data-testid="stMain"] a[href$="#g-state"]').first
    assert link.count() == 1
    assert page.locator("#g-state").count() == 1
    link.click()
    page.wait_for_timeout(800)
    top = page.evaluate("() => document.querySelector('#g-state').getBoundingClientRect().top")
    assert 0 <= top < 1600, f"the glossary entry is {top} px down after following its link"
    page.close()


def _changed_weights(root: Path) -> None:
    """A weights root like the served one, with the sentiment model pushed to 'positive' whatever it reads and the
    one-way tagger made to start every sentence with a person (each file's card updated to match)."""
    from safetensors.torch import load_file, save_file

    from core.paths import WEIGHTS_ROOT
    from core.weights import sha256_file

    for sub in Path(WEIGHTS_ROOT).iterdir():
        if sub.is_dir() and sub.name not in ("sentiment", "ner"):
            (root / sub.name).symlink_to(sub, target_is_directory=True)
    for name, file, key, change in (("sentiment", "model.safetensors", "head.bias", "positive"),
                                    ("ner", "variant-lstm.safetensors", "crf.start", "person")):
        shutil.copytree(Path(WEIGHTS_ROOT) / name, root / name)
        tensors = load_file(root / name / file)
        if change == "positive":
            tensors[key] = tensors[key].new_tensor([-50.0, 50.0])
        else:
            labels = json.loads((root / name / "card.json").read_text())["meta"]["labels"]
            tensors[key][labels.index("B-PER")] += 100.0
        save_file(tensors, root / name / file)
        card = json.loads((root / name / "card.json").read_text())
        if file == "model.safetensors":
            card["weights_sha256"] = sha256_file(root / name / file)
        else:
            card["comparison"]["lstm"]["weights_sha256"] = sha256_file(root / name / file)
        (root / name / "card.json").write_text(json.dumps(card))


def test_reveals_change_with_the_weights(browser, base, tmp_path):
    """The same questions, served from changed weights: the model's answers on screen change with them."""
    def answers(url: str) -> tuple[str, str]:
        out = []
        for n in (1, 6):
            page = open_lesson(browser, f"{url}/lesson?lesson_step={n}")
            out.append(answer_and_reveal(page, (0,)))
            check(page, f"step {n}")
            page.close()
        return out[0], out[1]

    served = answers(base)
    _changed_weights(tmp_path)
    with app_server({"RNNLAB_WEIGHTS_DIR": str(tmp_path)}) as changed_base:
        changed = answers(changed_base)
    assert "No word" in changed[0] and changed[0] != served[0], (served[0], changed[0])
    assert "= B-PER" in changed[1] and changed[1] != served[1], (served[1], changed[1])
