"""The inspector names a model's recurrent modules in words (core.inspect.module_words), never by torch's module
path: an ensemble's "members.1.decoder" is "decoder, ensemble member 2"."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.inspect import inspect_model, module_words
from core.layers import Recurrent


@pytest.mark.parametrize("path, words", [
    ("encoder", "encoder"),
    ("decoder", "decoder"),
    ("", "recurrent layer"),
    ("rnn", "recurrent layer"),
    ("members.0.decoder", "decoder, ensemble member 1"),
    ("members.1.encoder.net", "encoder, ensemble member 2"),
    ("body.temporal_rnn", "body temporal rnn"),
])
def test_module_words(path, words):
    assert module_words(path) == words


class _Pair(nn.Module):
    """Two members, each with a recurrent encoder: what core.ensemble builds."""

    def __init__(self):
        super().__init__()
        self.members = nn.ModuleList([nn.ModuleDict({"encoder": Recurrent("gru", 3, 4)}) for _ in range(2)])

    def forward(self, x):
        return sum(m["encoder"](x)[0].sum() for m in self.members)


def test_an_ensembles_modules_are_named_in_words_everywhere():
    torch.manual_seed(0)
    model = _Pair()
    ins = inspect_model(model, lambda m: m(torch.randn(1, 5, 3)))
    shown = set(ins.hidden.module) | set(ins.gates.module) | set(ins.spectra.module) | set(ins.hidden_states)
    assert set(ins.hidden.module) == {"encoder, ensemble member 1", "encoder, ensemble member 2"}
    assert not any("." in s or "#" in s or "members" in s for s in shown), shown


def test_charts_name_their_fields_in_words_and_stay_valid():
    """The through-time, clipping and spectra charts are plain Vega-Lite specs: valid, a zero gradient left off the
    log axis (null), the step selection named, every tooltip field shown in words (no column ids)."""
    import json
    import re

    import altair as alt
    from altair.utils.schemapi import validate_jsonschema

    from core.inspect import clip_reports, recurrent_spectra
    from core.ui import charts

    torch.manual_seed(0)
    model = _Pair()
    ins = inspect_model(model, lambda m: m(torch.randn(1, 5, 3)))
    hidden = ins.hidden.copy()
    hidden.loc[0, "grad_norm"] = 0.0
    gtt = charts.grad_through_time_chart(hidden.assign(label=""), select="pick")
    rows = gtt["datasets"]["steps"]
    assert rows[0]["grad_norm"] is None and all(r["grad_norm"] > 0 for r in rows[1:])
    assert gtt["layer"][1]["params"][0]["name"] == "pick"
    df, _ = clip_reports({"w": torch.randn(4, 4)}, [0.1, 1.0])[1.0]
    specs = [gtt, charts.clip_chart(df), charts.spectra_chart(recurrent_spectra(model))]
    for spec in specs:
        validate_jsonschema(spec, alt.Chart._rootschema)
        json.dumps(spec, allow_nan=False)
    tips = [t for spec in specs for part in [spec, *spec.get("layer", [])] for t in part.get("encoding", {}).get("tooltip", [])]
    shown = [t.get("title", t["field"]) for t in tips]
    assert not [w for w in shown if re.search(r"[a-z]{2,}_[a-z]{2,}", w)], shown  # ids, not maths such as h_t
