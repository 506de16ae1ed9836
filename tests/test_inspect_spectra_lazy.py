"""The inspection computes the spectral radius of w' up front and the singular values only when they are asked for
(the Inspect tab's "All singular values"): the same numbers, remembered per matrix content."""

from __future__ import annotations

import pytest
import torch

from core import inspect as I
from core.layers import Recurrent


def test_the_inspection_decomposes_w_prime_for_rho_alone(monkeypatch):
    monkeypatch.setattr(I, "_spectra", type(I._spectra)())
    torch.manual_seed(0)
    r = Recurrent("lstm", 3, 8).eval()
    x = torch.randn(1, 5, 3)
    real = torch.linalg.svdvals
    blocks = r.weights(0, 0)[1].detach().chunk(4, dim=0)
    direct = [(float(torch.linalg.eigvals(b).abs().max()), float(real(b)[0])) for b in blocks]
    calls = []
    monkeypatch.setattr(torch.linalg, "svdvals", lambda m: calls.append(m) or real(m))

    ins = I.inspect_model(r, lambda m: m(x)[0][0, -1].sum())
    assert not calls and len(ins.spectra) == 4  # four gate blocks, no SVD yet
    assert ins.spectra.spectral_radius.tolist() == pytest.approx([rho for rho, _ in direct], rel=1e-5)
    assert ins.spectra.singular_values.isna().all() and ins.spectra.max_singular.isna().all()

    full = I.recurrent_spectra(r)  # what "All singular values" asks for when it is opened
    assert len(calls) == 4 and full.spectral_radius.tolist() == ins.spectra.spectral_radius.tolist()
    assert full.max_singular.tolist() == pytest.approx([s for _, s in direct], rel=1e-5)
    assert all(len(v) == 8 for v in full.singular_values)

    I.recurrent_spectra(r)
    again = I.inspect_model(r, lambda m: m(x)[0][0, -1].sum())
    assert len(calls) == 4  # remembered: neither asks again
    assert again.spectra.max_singular.tolist() == full.max_singular.tolist()  # known now: part of the inspection


def test_the_spectra_chart_leaves_out_what_is_not_computed():
    import altair as alt
    from altair.utils.schemapi import validate_jsonschema

    from core.ui import charts

    def tooltip(sp) -> list[str]:
        spec = charts.spectra_chart(sp)
        validate_jsonschema(spec, alt.Chart._rootschema)
        return [t["field"] for t in spec["layer"][0]["encoding"]["tooltip"]]

    r = Recurrent("gru", 2, 4)
    assert "max_singular" not in tooltip(I.recurrent_spectra(r, singular=False))
    assert "max_singular" in tooltip(I.recurrent_spectra(r))
