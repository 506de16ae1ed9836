"""Browser test: a person uploads their own picture on the image pages and gets an answer, in Debian's Chromium.

For captioning and image classification: switch the source to "upload", send a PNG the test draws (and a file
that is not an image), and check that a caption / the cat-dog probabilities appear, that the bad file gets a
clear message, and that no exception element shows. Run: pytest -m browser tests/test_browser_upload.py
"""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

from tests.test_browser import ARGS, CHROMIUM, app_server, check, settle

pytestmark = pytest.mark.browser

# page path, what a good upload must show (a regex over the page text)
PAGES = {
    "captioning": ("captioning", r"beam search, width \d+"),
    "image_classification": ("image_classification", r"cat \d+% · dog \d+%"),
}
BAD_MESSAGE = r"could not be read as an image|not an image"  # what the guarded decoder says


def _png(tmp: Path) -> Path:
    """A 160x120 RGBA picture with a gradient sky, grass and a brown blob (alpha channel on purpose)."""
    from PIL import Image

    h, w = 120, 160
    arr = np.zeros((h, w, 4), np.uint8)
    arr[..., 3] = 255
    arr[: h // 2, :, 2] = np.linspace(120, 255, w, dtype=np.uint8)[None]
    arr[h // 2:, :, 1] = 150
    yy, xx = np.mgrid[:h, :w]
    blob = (yy - 70) ** 2 / 400 + (xx - 80) ** 2 / 900 < 1
    arr[blob] = (120, 80, 40, 255)
    path = tmp / "my photo.png"
    buf = io.BytesIO()
    Image.fromarray(arr, "RGBA").save(buf, "PNG")
    path.write_bytes(buf.getvalue())
    return path


def _not_an_image(tmp: Path) -> Path:
    path = tmp / "holiday.jpg"  # the right extension, the wrong content
    path.write_bytes(b"%PDF-1.4 this is not a JPEG at all\n" * 20)
    return path


def test_upload_on_image_pages_in_chromium(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    from core.registry import discover
    from core.ui.pages import task_url_path

    names = [n for n in PAGES if n in discover().tasks]
    assert names, "no image task is registered"
    good, bad = _png(tmp_path), _not_an_image(tmp_path)
    shots = os.environ.get("RNNLAB_SCREENSHOTS")  # a folder to save screenshots in, for a person to look at
    with app_server() as base:
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                for name in names:
                    page.goto(base + "/" + task_url_path(name))
                    page.wait_for_selector('[data-testid="stApp"]', timeout=30_000)
                    settle(page)
                    page.get_by_text("upload", exact=True).first.click()
                    settle(page)
                    uploader = page.locator('[data-testid="stFileUploaderDropzoneInput"]').first
                    uploader.set_input_files(str(good))
                    t0 = time.time()
                    while time.time() - t0 < 60 and not re.search(PAGES[name][1], page.inner_text("body")):
                        time.sleep(0.5)
                    settle(page)
                    check(page, f"{name} after uploading a PNG")
                    body = page.inner_text("body")
                    assert re.search(PAGES[name][1], body), f"{name}: no answer after the upload:\n{body[:1500]}"
                    assert "your image (160x120)" in body
                    if shots:
                        page.screenshot(path=str(Path(shots) / f"upload_{name}.png"), full_page=True)
                    uploader.set_input_files(str(bad))
                    t0 = time.time()
                    while time.time() - t0 < 30 and not re.search(BAD_MESSAGE, page.inner_text("body"), re.I):
                        time.sleep(0.5)
                    settle(page)
                    check(page, f"{name} after uploading a non-image")
                    body = page.inner_text("body")
                    assert not re.search(PAGES[name][1], body), f"{name}: a non-image still got an answer"
                    assert re.search(BAD_MESSAGE, body, re.I), \
                        f"{name}: no clear message for a non-image:\n{body[:1500]}"
            finally:
                browser.close()
