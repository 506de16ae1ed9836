"""Browser test: a CoNLL file uploaded as it is on the Your data page becomes a sentence-per-row table and the
proposal is a word tagger, in Debian's Chromium (never `playwright install`). Run:
pytest -m browser tests/test_browser_upload_formats.py
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
from test_browser import ARGS, CHROMIUM, app_server, check, settle
from test_your_data_formats import wnut_like

from core.yourdata import parse

pytestmark = pytest.mark.browser


def wait_for(page, ok, timeout: float = 60) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout and not ok():
        time.sleep(0.3)
    settle(page, 60)


def test_conll_upload_shows_sentences_and_a_tagger(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    upload = tmp_path / "wnut17train.conll"
    upload.write_text(wnut_like(40), encoding="utf-8")
    shots = os.environ.get("RNNLAB_SCREENSHOTS")
    with app_server() as base, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            page.goto(base + "/your-data")
            settle(page, 120)
            main = page.locator('[data-testid="stMain"]')
            assert "CoNLL" in main.inner_text()  # the page says which formats it reads
            page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(upload))
            wait_for(page, lambda: "Proposed:" in main.inner_text())
            check(page, "after uploading a CoNLL file")
            text = main.inner_text()
            assert re.search(r"wnut17train\.conll.*CoNLL.*40 rows, columns 'tokens', 'tags'", text), text[:2000]
            assert "Proposed: many-to-many" in text, text[:3000]
            grid = page.locator('[data-testid="stDataFrame"]').first
            assert grid.count() == 1
            if shots:
                page.screenshot(path=str(Path(shots) / "your_data_conll.png"), full_page=True)
            wrong = tmp_path / "holiday.csv"  # the wrong content under a table's name: a visible message
            wrong.write_bytes(b"%PDF-1.4 not a table\n" * 10)
            page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(wrong))
            wait_for(page, lambda: "PDF" in main.inner_text())
            check(page, "after uploading a PDF named .csv")
            alert = main.locator('[data-testid="stAlert"]').filter(has_text="PDF")
            assert alert.count() == 1 and alert.first.is_visible() and "Proposed:" not in main.inner_text()
            big = tmp_path / "big.csv"  # over the limit: refused by the uploader, its reason shown in words
            big.write_bytes(b"text,label\n" + b"x,y\n" * ((parse.MAX_BYTES + 2**20) // 4))
            page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(big))
            reason = page.locator('.st-key-yd_file span[role="alert"]')
            wait_for(page, lambda: reason.count() == 1)
            assert reason.count() == 1 and reason.is_visible(), "the refusal is only a tooltip"
            assert f"{parse.MAX_MB}.0MB or smaller" in reason.inner_text()
            assert reason.bounding_box()["height"] > 8  # drawn, not a 1-pixel screen-reader box
        finally:
            browser.close()
