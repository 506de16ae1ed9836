"""Browser test of forecasting on the Your data page: the real app in Debian's Chromium (never `playwright install`).

Upload a generated monthly series with a season, accept the proposed forecast, train with the fewest steps, see
the forecast chart and the naive forecasts' scores beside the network's, try an input, open Inspect, download the
plugin (a ForecastTask inside). A tall screenshot goes to /tmp for a person to look at.
Run: pytest -m browser tests/test_browser_your_data_forecast.py
"""

from __future__ import annotations

import io
import zipfile

import pytest
from test_browser import check, fewest_training_steps, settle, train_your_data, upload_to_your_data, your_data_page
from test_your_data_forecast import monthly_csv, seasonal

pytestmark = pytest.mark.browser
SHOT = "/tmp/your-data-forecast.png"


def test_upload_a_series_forecast_try_inspect_download(app_without_plugins, tmp_path):
    upload = tmp_path / "sales.csv"
    upload.write_bytes(monthly_csv(seasonal(180)))
    with your_data_page(app_without_plugins, accept_downloads=True) as page:
        main = page.locator('[data-testid="stMain"]')
        text = upload_to_your_data(page, upload, "Window (steps read)")
        assert "Proposed: forecasting (many-to-one over time windows)" in text and "season of 12" in text
        assert "Column to forecast" in text and "Window (steps read)" in text and "Horizon" in text
        fewest_training_steps(page)
        charts = main.locator('[data-testid="stVegaLiteChart"]').count()
        text = train_your_data(page)
        assert "on the test part" in text and "the last-value forecast" in text
        assert "the seasonal-naive forecast" in text and ("The network beats" in text or "does not beat" in text)
        assert main.locator('[data-testid="stVegaLiteChart"]').count() >= charts + 3  # curves, forecast, try
        assert "The next 12 values:" in text
        page.get_by_role("button", name="Held out: before", exact=False).first.click()
        settle(page, 60)
        box = page.get_by_label("The last 24 values of 'sales' (commas or spaces; empty: the end of the series)")
        typed = box.input_value()
        assert len(typed.split(",")) == 24
        box.fill(", ".join(["50"] * 24))
        box.press("Enter")
        settle(page, 60)
        check(page, "a typed window")
        assert "The next 12 values:" in main.inner_text()
        page.screenshot(path=SHOT, full_page=True)
        page.get_by_role("tab", name="Inspect").click()
        settle(page, 60)
        check(page, "Inspect tab")
        assert "loss on this input" in main.inner_text()
        with page.expect_download() as dl:
            page.get_by_role("button", name="Download the plugin").click()
        z = zipfile.ZipFile(io.BytesIO(open(dl.value.path(), "rb").read()))
        init = next(n for n in z.namelist() if n.endswith("/__init__.py"))
        assert "(ForecastTask)" in z.read(init).decode()
