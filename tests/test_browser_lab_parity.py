"""Browser test: the Gradient Lab's parity experiment, in Debian's Chromium, against `streamlit run`.

A visitor opens the Gradient Lab from a link that sets a short training length and few steps, keeps two cells in
the parity section (the plain tanh RNN and, where installed, minGRU) by removing the others, presses "Train on
parity" and must see, with no exception and no guard text: one verdict per cell with the accuracy at each test
length (T, 2T, 4T, 8T), the accuracy chart and table, and the paragraph saying what the run measured.
Run: pytest -m browser tests/test_browser_lab_parity.py
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from core.layers import cell_label
from core.toys import PARITY_CELLS
from tests.test_browser import ARGS, CHROMIUM, app_server, check, settle

pytestmark = pytest.mark.browser

KEEP = [c for c in ("rnn_tanh", "mingru") if c in PARITY_CELLS]
TRAIN_BUDGET_S = 300  # two cells x 100 steps at T = 10: seconds on an idle 2-core machine


def test_parity_trains_and_gives_a_verdict_per_cell():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    query = urlencode({"gl_par_len": 10, "gl_par_steps": 100})
    with app_server() as base, playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.goto(f"{base}/gradient-lab?{query}")
            settle(page, timeout=120)
            check(page, "gradient lab opened")
            section = page.locator(".st-key-gl_par_cells")
            for cell in PARITY_CELLS:
                if cell not in KEEP:
                    section.get_by_role("button", name=f"Remove {cell_label(cell)}").click()
                    settle(page)
            chosen = section.inner_text()
            assert all(cell_label(c) in chosen for c in KEEP) and "LSTM" not in chosen.replace("minLSTM", "")
            t0 = time.time()
            page.locator(".st-key-gl_par_train button").click()
            page.get_by_text("What this run measured").wait_for(timeout=TRAIN_BUDGET_S * 1000)
            settle(page, timeout=60)
            assert time.time() - t0 < TRAIN_BUDGET_S
            check(page, "after training on parity")
            body = page.locator('[data-testid="stMain"]').inner_text()
            for cell in KEEP:
                assert f"{cell_label(cell)}:" in body, f"no verdict for {cell_label(cell)}"
            for length in (10, 20, 40, 80):  # the verdicts give the accuracy measured at every test length
                assert f"% at {length}" in body, f"no accuracy at length {length} in the verdicts"
            assert page.locator('[data-testid="stMain"] [data-testid="stDataFrame"]').count() >= 2  # + the table
            assert page.locator('[data-testid="stMain"] [data-testid="stVegaLiteChart"]').count() >= 2
            assert "chance is 50%" in body and "Grazzi" in body
        finally:
            browser.close()
