"""Browser test of regression on the Your data page: the real app in Debian's Chromium (never `playwright install`).

Upload generated reviews with a rating with decimals, accept the proposed regression, train with the fewest steps,
see the validation MAE beside always answering the training mean, try an input (a number comes back), open Inspect.
A tall screenshot goes to /tmp for a person to look at.
Run: pytest -m browser tests/test_browser_your_data_regression.py
"""

from __future__ import annotations

import re

import pytest
from test_browser import check, fewest_training_steps, settle, train_your_data, upload_to_your_data, your_data_page
from test_your_data_regression import reviews

pytestmark = pytest.mark.browser
SHOT = "/tmp/your-data-regression.png"


def test_upload_reviews_regression_train_try_inspect(app_without_plugins, tmp_path):
    upload = tmp_path / "ratings.csv"
    upload.write_bytes(reviews(300))
    with your_data_page(app_without_plugins) as page:
        main = page.locator('[data-testid="stMain"]')
        text = upload_to_your_data(page, upload, "Number column to predict")
        assert "Proposed: many-to-one regression" in text and "answers one number" in text
        fewest_training_steps(page)
        text = train_your_data(page)
        assert re.search(r"validation MAE [\d.]+ (?:--|—) always answering the training mean gets [\d.]+", text), text
        assert "test MAE" in text
        page.get_by_role("button", name="Held-out row", exact=False).first.click()
        settle(page, 60)
        box = page.get_by_label("Your input (a sequence)")
        box.fill("great superb lovely film")
        box.press("Enter")
        settle(page, 60)
        check(page, "a typed review")
        assert re.search(r"rating: [\d.]+ \(always answering the training rows' mean would say [\d.]+\)",
                         main.inner_text())
        page.screenshot(path=SHOT, full_page=True)
        page.get_by_role("tab", name="Inspect").click()
        settle(page, 60)
        check(page, "Inspect tab")
        assert "loss on this input" in main.inner_text()
        page.screenshot(path="/tmp/your-data-regression-inspect.png", full_page=True)
