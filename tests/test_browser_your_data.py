"""Browser test of the Your data page: the real app in Debian's Chromium (never `playwright install`).

Upload a file, accept the proposed shape, train with a tiny budget, try an input, open Inspect, download the
plugin and the weights (and check what is inside them), then click an example data set.
Run: pytest -m browser tests/test_browser_your_data.py
"""

from __future__ import annotations

import io
import zipfile

import pytest
from test_browser import check, fewest_training_steps, settle, train_your_data, upload_to_your_data, your_data_page

from core.yourdata.examples import EXAMPLES

pytestmark = pytest.mark.browser


def test_upload_train_try_inspect_download(app_without_plugins, tmp_path):
    name, raw = EXAMPLES["points"].make()
    upload = tmp_path / name
    upload.write_bytes(raw)
    with your_data_page(app_without_plugins, 2400, accept_downloads=True) as page:
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
