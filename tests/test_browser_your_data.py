"""Browser test of the Your data page: the real app in Debian's Chromium (never `playwright install`).

Upload a file, accept the proposed shape, train with a tiny budget, try an input, open Inspect, download the
plugin and the weights (and check what is inside them), then click an example data set.
Run: pytest -m browser tests/test_browser_your_data.py
"""

from __future__ import annotations

import io
import zipfile

import pytest
from test_browser import ARGS, CHROMIUM, check, fewest_training_steps, settle, train_your_data, upload_to_your_data

from core.yourdata.examples import EXAMPLES

pytestmark = pytest.mark.browser


def test_upload_train_try_inspect_download(app_without_plugins, tmp_path):
    from playwright.sync_api import sync_playwright

    name, raw = EXAMPLES["points"].make()
    upload = tmp_path / name
    upload.write_bytes(raw)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2400}, accept_downloads=True)
            page.goto(app_without_plugins + "/your-data")
            settle(page, 120)
            check(page, "Your data, empty")
            main = page.locator('[data-testid="stMain"]')
            assert "Pick an example" in main.inner_text()
            text = upload_to_your_data(page, upload, "Proposed: one-to-one")
            assert "points.csv" in text and "Proposed: one-to-one" in text
            fewest_training_steps(page)
            text = train_your_data(page)
            assert "Best on the held-out rows" in text and "training loss" in text
            box = page.get_by_label("Your input (numbers, separated by commas)")
            box.fill("0.1, 0.2")
            box.press("Enter")
            settle(page, 60)
            assert "inside" in main.inner_text() or "outside" in main.inner_text()
            page.get_by_role("tab", name="Inspect").click()
            settle(page, 30)
            check(page, "Inspect tab")
            assert "loss on this input" in main.inner_text()
            for label, must in (("Download the plugin", "my_points/__init__.py"),
                                ("Download the weights", "my_points/card.json")):
                with page.expect_download() as dl:
                    page.get_by_role("button", name=label).click()
                data = open(dl.value.path(), "rb").read()
                names = zipfile.ZipFile(io.BytesIO(data)).namelist()
                assert must in names, names
            settle(page, 30)
            page.get_by_role("button", name="Dates → ISO dates").click()
            settle(page, 60)
            check(page, "an example clicked")
            assert "Proposed: encoder-decoder" in main.inner_text()
        finally:
            browser.close()
