"""Browser test: what a visitor met on the video, image, captioning and names pages (issue 22), in Chromium.

A still (one-frame) GIF on Video; a striped picture on Image classification (the bars and the "far from anything
the models saw" warning); on Captioning the beam width surviving a switch of the image source and the Inspect tab
naming the caption Try it showed; a lowercase start on Names generate. Uses /usr/bin/chromium, never
`playwright install`. Run: pytest -m browser tests/test_browser_visitor_a.py (RNNLAB_SCREENSHOTS=DIR saves pages).
"""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_browser import app_and_browser, check, settle

pytestmark = pytest.mark.browser


def _still_gif(path: Path) -> Path:
    from PIL import Image

    a = np.zeros((64, 64), np.uint8)
    a[16:48, 28:36] = 255  # a white "1"
    Image.fromarray(a).save(path, format="GIF")
    return path


def _stripes(path: Path) -> Path:
    from PIL import Image

    band = ((np.mgrid[0:128, 0:128][1] // 8) % 2)[..., None]  # (128, 128, 1)
    arr = (band * np.array([255, 0, 200]) + (1 - band) * np.array([0, 255, 0])).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    path.write_bytes(buf.getvalue())
    return path


def _wait_text(page, pattern: str, timeout: float = 60) -> str:
    t0 = time.time()
    while time.time() - t0 < timeout:
        body = page.locator('[data-testid="stMain"]').inner_text()
        if re.search(pattern, body):
            settle(page)
            return page.locator('[data-testid="stMain"]').inner_text()
        time.sleep(0.3)
    raise AssertionError(f"no {pattern!r} on {page.url}:\n{body[:1500]}")


def _shot(page, name: str) -> None:
    folder = os.environ.get("RNNLAB_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"visitor_a_{name}.png"), full_page=True)


def _open(page, base: str, name: str) -> None:
    from core.ui.pages import task_url_path

    page.goto(base + "/" + task_url_path(name))
    page.wait_for_selector('[data-testid="stApp"]', timeout=30_000)
    settle(page)


def _upload(page, base: str, name: str, source: str, path: Path, shows: str, what: str) -> str:
    """Open task ``name``'s page, choose the input ``source``, give it the file ``path``, wait for ``shows`` (a
    pattern) and check the page (``what``); returns the main area's text."""
    _open(page, base, name)
    main = page.locator('[data-testid="stMain"]')
    main.get_by_text(source, exact=True).click()
    settle(page)
    main.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    body = _wait_text(page, shows)
    check(page, what)
    return body


def _beam_slider(page):
    return page.locator('[data-testid="stSlider"]').filter(has_text="beam width").locator('input[type="range"]').first


def _beam(page) -> str:
    return _beam_slider(page).get_attribute("aria-valuetext")


def test_visitor_pages_in_chromium(tmp_path):
    from core.registry import discover

    tasks = discover().tasks
    t0 = time.time()
    with app_and_browser() as (base, browser):
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        main = page.locator('[data-testid="stMain"]')
        if "video" in tasks:  # a still GIF: a note, no frame slider, every model's label
            body = _upload(page, base, "video", "upload a GIF", _still_gif(tmp_path / "still.gif"),
                           "This clip has one frame", "video after a one-frame GIF")
            assert "frame-only CNN:" in body and "two-way GRU:" in body
            _shot(page, "video_one_frame")
        if "image_classification" in tasks:  # stripes: warned, and each bar shows its own answer's share
            body = _upload(page, base, "image_classification", "upload", _stripes(tmp_path / "stripes.png"),
                           "far from anything the models saw", "image classification after a striped picture")
            shown = [int(m) for m in re.findall(r": (?:cat|dog) \((\d+)%\)", body)]
            bars = [int(float(b.get_attribute("aria-valuenow")))
                    for b in main.locator('[data-testid="stProgress"] [role="progressbar"]').all()]
            assert len(shown) >= 2 and len(bars) == len(shown), (shown, bars)
            assert all(abs(a - b) <= 1 for a, b in zip(shown, bars)), (shown, bars)
            _shot(page, "image_stripes")
        if "captioning" in tasks:  # beam width kept across sources; Inspect names the shown caption
            _open(page, base, "captioning")
            before = _beam(page)
            _beam_slider(page).focus()
            page.keyboard.press("ArrowLeft")
            page.keyboard.press("ArrowLeft")
            settle(page)
            beam = _beam(page)
            assert beam != before
            for source in ("upload", "samples"):
                main.get_by_text(source, exact=True).first.click()
                settle(page)
                assert _beam(page) == beam, f"the beam width was reset after choosing {source}"
            body = _wait_text(page, f"beam search, width {beam}")
            caption = re.search(r"“([^”]+)”", body).group(1)
            main.get_by_role("tab", name="Inspect").click()
            body = _wait_text(page, "Explained here", timeout=90)
            check(page, "captioning Inspect")
            assert f"“{caption}”" in body
            _shot(page, "captioning_inspect")
        if "names_generate" in tasks:  # "mc" is read as "Mc"
            _open(page, base, "names_generate")
            box = main.get_by_role("textbox", name="first letter(s)")
            box.fill("mc")
            box.press("Enter")
            body = _wait_text(page, "was read as 'Mc'")
            check(page, "names generate after 'mc'")
            assert "starts with 'm'" not in body and re.search(r"^Mc\w", body, re.M)
            _shot(page, "names_generate_mc")
    assert time.time() - t0 < 150, "this browser test should stay short"
