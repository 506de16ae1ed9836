"""Browser test: a visitor's walk through the whole app, in Debian's Chromium, against `streamlit run`.

Every page of the sidebar's navigation is opened by clicking its link (as a visitor does, in one session); on each,
every one-click demo button is clicked and every tab is opened (Try it / Inspect / Model card on a task page).
After every step: no exception element, no error box, none of the app's guard texts (tests/test_browser.py's
CRASH_TEXT). Pages, demos and tabs are read from the page itself (the sidebar's links, the demo buttons' widget
keys, the tab bar), and checked against the registry: every page the registry implies must be in the sidebar and
every demo of a task must have its button -- so a new page, demo or tab is walked without editing this file.

On the way, the lesson's examples must get the lesson's answers:
  sentiment    "The movie was not at all good."                    -> negative
  translation  "How are you doing?"                                -> a French sentence with "comment"
  ner          "Adam lists his Manhattan house for $37.5 million."  -> Adam a person (PER), Manhattan a place (LOC)

One walk (a module fixture) serves all four tests, so the app is started and walked once. Steps wait for the
script-state attribute (a click -> the rerun it causes finished), never for fixed sleeps.
Run: pytest -m browser tests/test_browser_walk.py
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from bench.visitor import click_demo, click_tab, demo_buttons, faults, nav_links, open_from_sidebar, selected_tab, tabs
from tests.test_browser import app_and_browser, open_page, page_urls

pytestmark = pytest.mark.browser

WALK_BUDGET_S = 300  # CI has 2 cores: the walk (server start included) aims at under 4 minutes, fails past 5
SENTIMENT_EXAMPLE = "The movie was not at all good."
TRANSLATION_EXAMPLE = "How are you doing?"
NER_EXAMPLE = "Adam lists his Manhattan house for $37.5 million."

# What a page shows as its answer, read in the browser (text only, nothing the model produced is hard-coded here)
METRICS_JS = """() => Array.from(document.querySelectorAll('[data-testid="stMain"] [data-testid="stMetric"]')).map(m => [
    (m.querySelector('[data-testid="stMetricLabel"]') || {innerText: ''}).innerText.trim(),
    (m.querySelector('[data-testid="stMetricValue"]') || {innerText: ''}).innerText.trim()])"""
FIRST_H3_JS = """() => { const h = document.querySelector('[data-testid="stMain"] [role="tabpanel"] h3');
    return h ? h.innerText.trim() : null; }"""
MARKS_JS = """() => Array.from(document.querySelectorAll('[data-testid="stMain"] mark')).map(m => {
    const sup = m.querySelector('sup'); const tag = sup ? sup.innerText.trim() : '';
    const whole = m.innerText.trim(); return [sup ? whole.slice(0, whole.length - tag.length).trim() : whole,
                                               tag.split(/\\s+/)[0]]; })"""
ANSWER_READERS = {  # task -> (the example's input, what to read after its demo was clicked)
    "sentiment": (SENTIMENT_EXAMPLE, METRICS_JS),
    "translation": (TRANSLATION_EXAMPLE, FIRST_H3_JS),
    "ner": (NER_EXAMPLE, MARKS_JS),
}


@dataclass
class Walk:
    faults: list[str] = field(default_factory=list)  # "page / step: what went wrong"
    visited: list[str] = field(default_factory=list)  # "label: n demos, tabs ..."
    answers: dict = field(default_factory=dict)  # task -> what the page showed for the lesson's example
    steps: list[tuple[float, str]] = field(default_factory=list)  # (seconds, "page / step"): the slow ones printed
    seconds: float = 0.0


def _walk_page(page, label: str, task, walk: Walk) -> None:
    where = label
    walk.faults += [f"{where} / on open: {f}" for f in faults(page)]
    names, note = tabs(page), ""
    if names and selected_tab(page) != names[0]:  # a tab left open on the page before must not hide the demos
        note = f" (opened on {selected_tab(page)!r})"
        click_tab(page, names[0])
        walk.faults += [f"{where} / back to {names[0]!r}: {f}" for f in faults(page)]
    found = demo_buttons(page)  # [(widget key, label)] as drawn
    if task is not None:
        demos = list(task.demos())
        missing = [d.label for d in demos if d.label not in {lab for _, lab in found}]
        if missing:
            walk.faults.append(f"{where}: demo(s) without a button on the page: {missing}")
        example = ANSWER_READERS.get(task.name)
        wanted = next((d.label for d in demos if example and str(d.input) == example[0]), None)
        if example and wanted is None:
            walk.answers[task.name] = f"the lesson's example {example[0]!r} is not one of the demos"
    else:
        example = wanted = None
    for key, demo_label in found:
        t = time.perf_counter()
        click_demo(page, key)
        walk.steps.append((time.perf_counter() - t, f"{where} / demo {demo_label!r}"))
        walk.faults += [f"{where} / demo {demo_label!r}: {f}" for f in faults(page)]
        if example and demo_label == wanted:
            walk.answers[task.name] = page.evaluate(example[1])
    for name in names[1:]:
        t = time.perf_counter()
        click_tab(page, name)
        walk.steps.append((time.perf_counter() - t, f"{where} / tab {name!r}"))
        walk.faults += [f"{where} / tab {name!r}: {f}" for f in faults(page)]
    walk.visited.append(f"{label}: {len(found)} demos, tabs {names}{note}")


@pytest.fixture(scope="module")
def walk() -> Walk:
    from core.registry import discover
    from core.ui.pages import task_url_path

    tasks_by_path = {"/" + task_url_path(n): t for n, t in discover().tasks.items()}
    w = Walk()
    t0 = time.perf_counter()
    with app_and_browser() as (base, browser), open_page(browser, base + "/", height=1000, wait_s=90, quiet=0.3,
                                                         ready='[data-testid="stSidebarNav"] a') as page:
        links = nav_links(page)  # [(path, label)] in the sidebar's order
        paths = {path for path, _ in links}
        w.faults += [f"the sidebar has no link to {label} ({path})" for label, path, _ in page_urls()
                     if path not in paths]
        for i, (path, label) in enumerate(links):
            if i:  # the first link is Home, already open
                t = time.perf_counter()
                open_from_sidebar(page, path)
                w.steps.append((time.perf_counter() - t, f"{label} / open"))
            _walk_page(page, label, tasks_by_path.get(path), w)
    w.seconds = time.perf_counter() - t0
    slow = sorted(w.steps, reverse=True)[:8]
    print(f"walked {len(w.visited)} pages, {len(w.steps)} steps in {w.seconds:.0f} s:\n  " + "\n  ".join(w.visited)
          + "\nslowest steps: " + "; ".join(f"{what} {s:.1f} s" for s, what in slow)
          + "\nanswers: " + "; ".join(f"{k}: {v}" for k, v in w.answers.items()))
    return w


def test_every_page_demo_and_tab(walk):
    assert not walk.faults, f"{len(walk.faults)} problem(s) on the walk:\n" + "\n".join(walk.faults)
    assert walk.visited, "no page was walked"
    assert walk.seconds < WALK_BUDGET_S, f"the walk took {walk.seconds:.0f} s (budget {WALK_BUDGET_S} s)"


def test_sentiment_lesson_example_is_negative(walk):
    metrics = walk.answers.get("sentiment")
    assert isinstance(metrics, list), f"no answer read for {SENTIMENT_EXAMPLE!r}: {metrics}"
    values = [v.lower() for _, v in metrics]
    assert "negative" in values and "positive" not in values, \
        f"{SENTIMENT_EXAMPLE!r} should be negative; the page's figures: {metrics}"


def test_translation_lesson_example_says_comment(walk):
    heading = walk.answers.get("translation")
    assert isinstance(heading, str) and "comment" in heading.lower(), \
        f"{TRANSLATION_EXAMPLE!r} should give a French sentence with 'comment'; the page shows {heading!r}"


@pytest.mark.xfail(strict=True, reason="the tagger trained for lower case and capitals (2026-12-07) marks 'Manhattan "
                                       "house' as the location, one word too long; Adam = PER holds")
def test_ner_lesson_example_tags_person_and_place(walk):
    marks = walk.answers.get("ner")
    assert isinstance(marks, list), f"no tags read for {NER_EXAMPLE!r}: {marks}"
    tagged = {(text, tag) for text, tag in marks}
    assert ("Adam", "PER") in tagged and ("Manhattan", "LOC") in tagged, \
        f"{NER_EXAMPLE!r}: Adam should be PER and Manhattan LOC; the page marks {marks}"
