"""The Model card's calibration section: how sure the answers sound, against how often they are right."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.modelcard import ModelCard
from core.ui.widgets import md_escape


def calibration_rows(card: ModelCard) -> pd.DataFrame:
    """Test and validation ECE and NLL with the raw softmax (T = 1) and with the fitted temperature."""
    cal = card.calibration
    rows = []
    for split, before, after in (("test", cal.test_before, cal.test_after), ("validation", cal.val_before, cal.val_after)):
        rows.append({"split": split, "ECE, raw softmax": f"{before['ece']:.3f}", "ECE, calibrated": f"{after['ece']:.3f}",
                     "NLL, raw": f"{before['nll']:.3f}", "NLL, calibrated": f"{after['nll']:.3f}"})
    return pd.DataFrame(rows)


def render_calibration(card: ModelCard) -> None:
    cal = card.calibration
    if cal is None:
        return
    st.markdown("#### How sure it sounds: calibrated confidence")
    sure = "over-confident" if cal.temperature > 1 else "under-confident"
    st.caption(f"The raw model was {sure}: every score is divided by a temperature T = {cal.temperature:.2f}, "
               f"fitted on the {cal.fit_on} split (Guo et al. 2017), before the probabilities are shown. The answer "
               "never changes, only how sure it sounds. ECE (expected calibration error): the answers sorted into "
               f"{cal.bins} bins by confidence, the gap between confidence and accuracy in each, averaged; 0 means "
               "'80% sure' is right 80% of the time.")
    st.dataframe(calibration_rows(card), hide_index=True, width="stretch")
    st.caption(f"Fitted by `{md_escape(cal.command)}`.")
