"""Chart builders. Most take a tidy DataFrame and return an ``alt.Chart``; draw it with
``st.altair_chart(chart, width="stretch")`` (add ``on_select="rerun", key=...`` for charts made with ``select=``).
The charts a tab redraws on every rerun (training curves, gradient through time, clipping, spectra) return a plain
Vega-Lite spec instead, built without Altair's objects: draw it with ``st.vega_lite_chart(spec, ...)``.

Every chart has tooltips (hover for exact values). Log scales drop values <= 0 (a log axis cannot show them); the
callers say so in their captions when that matters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd


def skip_spec_validation() -> None:
    """Streamlit turns every chart into its Vega-Lite spec with ``chart.to_dict()``, which also validates the spec
    against the Vega-Lite JSON schema: about 40% of the conversion, paid for every chart on every rerun (a page's
    Inspect tab draws 8-9). The app's charts are built by code that the tests validate
    (tests/test_ui_shell.py::test_chart_specs_are_valid), so the app skips it: ``to_dict()`` defaults to
    ``validate=False`` for single, layered and concatenated charts, and the pieces are not validated as they are
    built either; ``to_dict(validate=True)`` still validates the whole spec."""
    # Altair's "debug mode" also validates each schema object (an encoding, a NamedData ...) as it is built
    alt.utils.schemapi.disable_debug_mode()
    # Chart has its own to_dict; the layered and concatenated charts (alt.layer, hconcat, ...) use TopLevelMixin's
    for cls in (alt.Chart, alt.TopLevelMixin):
        original = cls.__dict__["to_dict"]
        if getattr(original, "_rnnlab_fast", False):
            continue

        def to_dict(self, validate: bool = False, *args, _original=original, **kw):
            return _original(self, validate, *args, **kw)

        to_dict._rnnlab_fast = True
        to_dict.__doc__ = original.__doc__
        cls.to_dict = to_dict


skip_spec_validation()


def reuse_schema_lookup() -> None:
    """Altair turns every dict it is handed inside a chart (a condition, a datum, a shorthand string) into a schema
    object with ``from_dict``, which first builds a lookup table by hashing the JSON schema of every one of its
    ~1,200 schema classes: ~15 ms per call, two to four calls per chart, on every rerun. The classes do not change
    after import, so the table is built once per class family and kept (the specs come out the same: tested)."""
    from altair.utils import schemapi

    original = schemapi.SchemaBase.__dict__["from_dict"].__func__
    if getattr(original, "_rnnlab_fast", False):
        return
    tables: dict = {}

    def from_dict(cls, dct, validate: bool = True):
        if validate:
            cls.validate(dct)
        family = cls._default_wrapper_classes.__func__
        table = tables.get(family)
        if table is None:
            table = tables[family] = schemapi._FromDict(cls._default_wrapper_classes())
        return table.from_dict(dct, cls)

    from_dict._rnnlab_fast, from_dict._rnnlab_original = True, original
    from_dict.__doc__ = original.__doc__
    schemapi.SchemaBase.from_dict = classmethod(from_dict)


reuse_schema_lookup()


def _log_safe(df: pd.DataFrame, cols: Sequence[str]) -> pd.DataFrame:
    df = df.copy()
    for c in cols:
        df[c] = pd.to_numeric(df[c], errors="coerce")
        df.loc[~(df[c] > 0), c] = np.nan
    return df


def vl_type(col: pd.Series) -> str:
    """The Vega-Lite type of a column, as Altair infers it: numbers quantitative, dates temporal, the rest nominal.

    The builders name every field with ``field=`` and this type instead of a shorthand string: for a shorthand
    without a type, Altair reads the whole frame's schema again for every channel on every rerun (most of a
    chart's conversion time)."""
    if pd.api.types.is_bool_dtype(col):
        return "nominal"
    if pd.api.types.is_numeric_dtype(col):
        return "quantitative"
    if pd.api.types.is_datetime64_any_dtype(col):
        return "temporal"
    return "nominal"


def _tooltips(df: pd.DataFrame, fields: Sequence[str] | None, fmt: str = ".4g") -> list:
    out = []
    for f in fields or df.columns:
        if f not in df.columns:
            continue
        if pd.api.types.is_float_dtype(df[f]):
            out.append(alt.Tooltip(field=f, type=vl_type(df[f]), format=fmt))
        else:
            out.append(alt.Tooltip(field=f, type=vl_type(df[f])))
    return out


def _scale(log: bool, **kw) -> alt.Scale:
    return alt.Scale(type="log", **kw) if log else alt.Scale(zero=False, **kw)


def _finish(chart: alt.Chart, title: str | None, height: int | alt.Step | None) -> alt.Chart:
    props: dict[str, Any] = {}
    if title:
        props["title"] = title
    if height:
        props["height"] = height
    if not props:
        return chart
    # chart.properties(**props) without validating each property against the schema on every rerun (the tests
    # validate every whole spec the pages draw)
    out = chart.copy(deep=False)
    for k, v in props.items():
        setattr(out, k, v)
    return out


# Plain Vega-Lite specs (drawn with ``st.vega_lite_chart``) for the charts a tab redraws on every rerun.
VEGA_LITE = "https://vega.github.io/schema/vega-lite/v5.json"


def _named_data(name: str, rows: list[dict]) -> dict:
    """A spec's data as a named dataset (what Streamlit sends apart from the spec, the way Altair's charts go)."""
    return {"data": {"name": name}, "datasets": {name: rows}}


def _tip(field: str, kind: str = "nominal", fmt: str | None = None, title: str | None = None) -> dict:
    """A tooltip entry; ``title``: the words shown for the field (else its name)."""
    return {"field": field, "type": kind, **({"format": fmt} if fmt else {}), **({"title": title} if title else {})}


# ---- generic builders -------------------------------------------------------------------------------------------
LEGEND_LABEL_LIMIT = 360  # px: Vega's default (160) cuts names such as "encoder / backward · gate r" with an ellipsis

def line_chart(df: pd.DataFrame, x: str, y: str, color: str | None = None, log: bool = False, *,
               tooltip: Sequence[str] | None = None, title: str | None = None, x_title: str | None = None,
               y_title: str | None = None, points: bool = True, select: str | None = None, height: int = 280,
               x_type: str = "quantitative", fmt: str = ".4g", integer_x: bool = False) -> alt.Chart:
    """Lines of ``y`` against ``x`` (one per ``color`` value). ``log``: log y axis.

    ``select="name"`` adds a click selection of the nearest x named ``name`` (read it from
    ``st.altair_chart(..., on_select="rerun")``'s ``selection[name]``); the selected point is enlarged."""
    if log:
        df = _log_safe(df, [y])
    tip = _tooltips(df, tooltip or [c for c in (x, y, color) if c], fmt)
    axis = alt.Axis(tickMinStep=1, format="d") if x_type == "quantitative" and integer_x else alt.Axis()
    enc = dict(x=alt.X(field=x, type=x_type, title=x_title or x, axis=axis),
               y=alt.Y(field=y, type="quantitative", title=y_title or y, scale=_scale(log)),
               tooltip=tip)
    if color:
        enc["color"] = alt.Color(field=color, type="nominal", title=color,
                                 legend=alt.Legend(labelLimit=LEGEND_LABEL_LIMIT))
    base = alt.Chart(df).encode(**enc)
    line = base.mark_line(interpolate="monotone", strokeWidth=2)
    if not points and not select:
        return _finish(line.interactive(bind_y=False), title, height)
    if select:
        sel = alt.selection_point(name=select, fields=[x], on="click", nearest=True, empty=False)
        pts = base.mark_point(filled=True).encode(
            size=alt.condition(sel, alt.value(160), alt.value(30)),
            opacity=alt.condition(sel, alt.value(1.0), alt.value(0.7))).add_params(sel)
    else:
        pts = base.mark_point(filled=True, size=30)
    return _finish(alt.layer(line, pts), title, height)


def bar_chart(df: pd.DataFrame, x: str, y: str, color: str | None = None, *, horizontal: bool = False,
              log: bool = False, tooltip: Sequence[str] | None = None, title: str | None = None,
              x_title: str | None = None, y_title: str | None = None, sort: Any = None, rule: float | None = None,
              height: int | alt.Step | None = None, offset: str | None = None, fmt: str = ".4g") -> alt.Chart:
    """Bars of value ``y`` per category ``x`` (``horizontal``: categories down the side, good for long names).

    ``offset``: a field to place bars side by side within each category (grouped bars). ``rule``: a reference
    line at this value (e.g. 1.0 for a spectral radius)."""
    val = y
    if log:
        df = _log_safe(df, [val])
    cat_enc = alt.X if not horizontal else alt.Y
    val_enc = alt.Y if not horizontal else alt.X
    # A long rotated title on the category axis of horizontal bars collapses the chart: leave it to the caption.
    cat_title = None if horizontal else (x_title or x)
    enc = {("x" if not horizontal else "y"): cat_enc(field=x, type="nominal", title=cat_title,
                                                      sort=sort if sort is not None else None,
                                                      axis=alt.Axis(labelLimit=320)),
           ("y" if not horizontal else "x"): val_enc(field=val, type="quantitative", title=y_title or val,
                                                      stack=None, scale=_scale(log) if log else alt.Scale()),
           "tooltip": _tooltips(df, tooltip or [c for c in (x, y, color, offset) if c], fmt)}
    if log:  # bars on a log axis need an explicit base (there is no 0): a power of ten below the smallest value
        pos = pd.to_numeric(df[val], errors="coerce")
        pos = pos[pos > 0]
        base = 10 ** np.floor(np.log10(float(pos.min()) / 1.5)) if len(pos) else 1e-12
        enc["y2" if not horizontal else "x2"] = alt.datum(float(base))
    if color:
        enc["color"] = alt.Color(field=color, type="nominal", title=color,
                                 legend=alt.Legend(labelLimit=LEGEND_LABEL_LIMIT))
    if offset:
        kind = vl_type(df[offset])
        enc["yOffset" if horizontal else "xOffset"] = (alt.XOffset(field=offset, type=kind) if not horizontal
                                                       else alt.YOffset(field=offset, type=kind))
    chart = alt.Chart(df).mark_bar(cornerRadius=2).encode(**enc)
    if rule is not None:
        r = alt.Chart(pd.DataFrame({"ref": [rule]})).mark_rule(strokeDash=[6, 4], color="red")
        r = (r.encode(x=alt.X(field="ref", type="quantitative")) if horizontal
             else r.encode(y=alt.Y(field="ref", type="quantitative")))
        chart = alt.layer(chart, r)
    if height is None and horizontal:  # a step per bar (not a total height): every label stays readable
        height = alt.Step(11 if offset else 26)
    return _finish(chart, title, height)


def heatmap(df: pd.DataFrame, x: str, y: str, value: str, *, tooltip: Sequence[str] | None = None,
            title: str | None = None, scheme: str = "viridis", domain: tuple[float, float] | None = None,
            x_type: str = "ordinal", y_sort: Any = None, height: int | None = None, x_title: str | None = None,
            y_title: str | None = None, fmt: str = ".3f", select: str | None = None) -> alt.Chart:
    """Colour = ``value`` on an ``x`` by ``y`` grid (gates over time, attention, hidden units)."""
    scale = alt.Scale(scheme=scheme, domain=list(domain)) if domain else alt.Scale(scheme=scheme)
    enc = dict(x=alt.X(field=x, type=x_type, title=x_title or x),
               y=alt.Y(field=y, type="nominal", title=y_title or y, sort=y_sort),
               color=alt.Color(field=value, type="quantitative", title=value, scale=scale),
               tooltip=_tooltips(df, tooltip or [x, y, value], fmt))
    chart = alt.Chart(df).mark_rect().encode(**enc)
    if select:
        sel = alt.selection_point(name=select, fields=[x], on="click", empty=False)
        chart = chart.encode(stroke=alt.condition(sel, alt.value("white"), alt.value(None)),
                             strokeWidth=alt.condition(sel, alt.value(2), alt.value(0))).add_params(sel)
    if height is None:
        height = int(min(600, max(80, 22 * df[y].nunique())))
    return _finish(chart, title, height)


# ---- training curves --------------------------------------------------------------------------------------------

def history_frame(history: dict[str, list[dict]] | list[dict]) -> pd.DataFrame:
    """A card's ``history`` ({variant: [epoch records]}) as a long table: variant, epoch, series, value."""
    if isinstance(history, list):
        history = {"model": history}
    rows = []
    for variant, recs in (history or {}).items():
        for r in recs or []:
            if not isinstance(r, dict):
                continue
            ep = r.get("epoch")
            for k in ("train_loss", "grad_norm", "lr", "samples_per_s"):
                if isinstance(r.get(k), (int, float)):
                    rows.append((variant, ep, k, float(r[k])))
            for k, v in (r.get("val") or {}).items():
                if isinstance(v, (int, float)):
                    rows.append((variant, ep, f"val {k}", float(v)))
    return pd.DataFrame(rows, columns=["variant", "epoch", "series", "value"])


CURVE_POINTS = 150  # points per line at most in a training-curve chart: a longer history is thinned evenly


def thin(epochs: Sequence, limit: int = CURVE_POINTS) -> list[int]:
    """Indices of at most ``limit`` entries of ``epochs``, evenly spaced, the first and the last always kept."""
    n = len(epochs)
    if n <= limit:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, limit).round().astype(int).tolist()))


def training_curves(history: dict[str, list[dict]] | list[dict], series: Sequence[str] | None = None,
                    height: int = 220, names=None, width: int = 230, legend_below: bool = True) -> dict | None:
    """One small chart per series (train loss, each validation metric, gradient norm), one line per variant, three
    to a row: a Vega-Lite spec (draw it with ``st.vega_lite_chart(spec)``), or None when there is nothing to draw.
    ``names(series) -> words`` titles each chart (``core.task.Display.series_label``); None keeps the ids.

    Written as a plain spec rather than built with Altair: the history is one dataset that every small chart
    filters (Altair's concatenation copies the data into each chart), and building it costs a millisecond where
    Altair's objects took 0.1-0.2 s per chart. Each line has at most ``CURVE_POINTS`` points (``thin``)."""
    df = history_frame(history)
    if df.empty:
        return None
    if series is None:  # the curves that teach something: loss, validation metrics, gradient norm
        series = ["train_loss"] + sorted(s for s in df.series.unique() if s.startswith("val ")) + ["grad_norm"]
    df = df[df.series.isin(series)]
    if df.empty:
        return None
    parts = []
    for (_variant, _s), part in df.groupby(["variant", "series"], sort=False):
        parts.append(part.iloc[thin(part.epoch.tolist())])
    df = pd.concat(parts)
    charts = []
    for s in dict.fromkeys(df.series):
        vals = df.value[df.series == s]
        log = s in ("train_loss", "grad_norm") and bool((vals > 0).all())
        words = str(names(s) if names is not None else s)
        enc = {"x": {"field": "epoch", "type": "quantitative", "title": "epoch",
                     "axis": {"tickMinStep": 1, "format": "d"}},
               "y": {"field": "value", "type": "quantitative", "title": words,
                     "scale": {"type": "log"} if log else {"zero": False}},
               "color": {"field": "variant", "type": "nominal", "title": "variant",
                         "legend": {"labelLimit": 0 if legend_below else LEGEND_LABEL_LIMIT}},
               "tooltip": [{"field": "variant", "type": "nominal"}, {"field": "epoch", "type": "quantitative"},
                           {"field": "value", "type": "quantitative", "format": ".4g"}]}
        charts.append({"title": words, "width": width, "height": height,
                       "transform": [{"filter": {"field": "series", "equal": s}}], "encoding": enc,
                       "layer": [{"mark": {"type": "line", "interpolate": "monotone", "strokeWidth": 2}},
                                 {"mark": {"type": "point", "filled": True, "size": 30}}]})
    spec: dict[str, Any] = {"$schema": VEGA_LITE,
                            "data": {"name": "curves"}, "datasets": {"curves": df.to_dict("records")},
                            "concat": charts, "columns": 3}
    if legend_below:  # the variants' names in full under the curves (readable names are longer than ids)
        spec["config"] = {"legend": {"orient": "bottom", "direction": "horizontal", "labelLimit": 0}}
    return spec


# ---- the inspector's charts -------------------------------------------------------------------------------------

def series_name(row: pd.Series | dict, many_modules: bool, many_layers: bool, two_dirs: bool) -> str:
    parts = []
    if many_modules:
        parts.append(str(row["module"]))
    if many_layers or not (many_modules or two_dirs):
        parts.append(f"layer {row['layer']}")
    if two_dirs:
        parts.append(str(row["direction"]))
    return " / ".join(parts)


def label_series(df: pd.DataFrame) -> pd.DataFrame:
    """Add a readable ``series`` column (module / layer / direction, only the parts that vary)."""
    df = df.copy()
    if df.empty:
        df["series"] = []
        return df
    mm, ml, md = df.module.nunique() > 1, df.layer.nunique() > 1, df.direction.nunique() > 1
    df["series"] = [series_name(r, mm, ml, md) for r in df.to_dict("records")]
    return df


def grad_through_time_chart(hidden: pd.DataFrame, select: str = "step_pick") -> dict:
    """||dL/dh_t|| per step on a log axis, one line per module/layer/direction; click a point to select a step
    (``select`` names the selection: read it from ``st.vega_lite_chart(spec, on_select="rerun")``'s
    ``selection[select]``; the selected point is enlarged).

    A plain Vega-Lite spec, as ``training_curves`` is (draw it with ``st.vega_lite_chart``): the inspector draws it
    on every rerun of the tab, and Altair's objects took ~0.15 s of each. Steps whose gradient is 0 are left out of
    the log axis (the records hold null there)."""
    df = label_series(hidden)
    cols = [c for c in ["series", "step", "label", "distance", "grad_norm", "h_norm"] if c in df.columns]
    rows = df[cols].astype(object).where(df[cols].notna(), None).to_dict("records")
    for r in rows:
        g = r.get("grad_norm")
        r["grad_norm"] = float(g) if g is not None and g > 0 else None  # a log axis cannot show 0
    fmt = {"grad_norm": ".3e", "h_norm": ".3e", "distance": "d", "step": "d"}
    words = {"series": "series", "step": "time step t", "label": "input", "distance": "steps from the end",
             "grad_norm": "‖dL/dh_t‖", "h_norm": "‖h_t‖"}
    tip = [_tip(c, "quantitative" if c in fmt else "nominal", fmt.get(c), words[c]) for c in cols]
    chosen = {"param": select, "empty": False}
    return {"$schema": VEGA_LITE, "height": 280, **_named_data("steps", rows),
            "encoding": {"x": {"field": "step", "type": "quantitative", "title": "time step t",
                               "axis": {"tickMinStep": 1, "format": "d"}},
                         "y": {"field": "grad_norm", "type": "quantitative", "title": "‖dL/dh_t‖ (log scale)",
                               "scale": {"type": "log"}},
                         "color": {"field": "series", "type": "nominal", "title": "series",
                                   "legend": {"labelLimit": LEGEND_LABEL_LIMIT}},
                         "tooltip": tip},
            "layer": [{"mark": {"type": "line", "interpolate": "monotone", "strokeWidth": 2}},
                      {"mark": {"type": "point", "filled": True},
                       "params": [{"name": select, "select": {"type": "point", "fields": ["step"], "on": "click",
                                                              "nearest": True}}],
                       "encoding": {"size": {"condition": {**chosen, "value": 160}, "value": 30},
                                    "opacity": {"condition": {**chosen, "value": 1.0}, "value": 0.7}}}]}


LESSON_NAME = "parameter"  # the lesson's notation (w, w', b_o, w1, b_y); torch's name only in the tooltip
TORCH_NAME = "PyTorch name"
CLIP_SERIES = {"before": ("before clipping", "#9e9e9e"), "after_clip_norm": ("after clip-by-norm", "#1f77b4"),
               "after_clip_value": ("after clip-by-value", "#ff7f0e")}


def _log_floor(values: Sequence[float]) -> float:
    """A power of ten below the smallest positive value: where bars on a log axis start (a log axis has no 0)."""
    pos = [v for v in values if v is not None and v > 0]
    return float(10 ** np.floor(np.log10(min(pos) / 1.5))) if pos else 1e-12


def clip_chart(clip: pd.DataFrame, threshold: float | None = None) -> dict:
    """Each parameter's gradient size before clipping and after either kind of clipping: grouped horizontal bars on
    a log axis, the parameter in the lesson's notation (torch's name in the tooltip). A plain Vega-Lite spec (draw it
    with ``st.vega_lite_chart``): redrawn at every move of the threshold, where Altair's objects took ~0.1 s."""
    rows = []
    for r in clip.to_dict("records"):
        for col, (words, _) in CLIP_SERIES.items():
            v = float(r[col])
            rows.append({LESSON_NAME: r["lesson_name"], TORCH_NAME: r["name"], "gradient": words,
                         "norm": v if v > 0 else None, "value_clip_cosine": float(r["value_clip_cosine"])})
    order = [w for w, _ in CLIP_SERIES.values()]
    return {"$schema": VEGA_LITE, **_named_data("clip", rows), "height": {"step": 11},
            "mark": {"type": "bar", "cornerRadius": 2},
            "encoding": {
                "y": {"field": LESSON_NAME, "type": "nominal", "title": None, "axis": {"labelLimit": 320}},
                "x": {"field": "norm", "type": "quantitative", "title": "gradient size (log scale)", "stack": None,
                      "scale": {"type": "log"}},
                "x2": {"datum": _log_floor([r["norm"] for r in rows])},
                "color": {"field": "gradient", "type": "nominal", "title": None,
                          "scale": {"domain": order, "range": [c for _, c in CLIP_SERIES.values()]},
                          "legend": {"orient": "top"}},
                "yOffset": {"field": "gradient", "type": "nominal", "sort": order},
                "tooltip": [_tip(LESSON_NAME), _tip(TORCH_NAME), _tip("gradient"),
                            _tip("norm", "quantitative", ".3e", "gradient size"),
                            _tip("value_clip_cosine", "quantitative", ".3f", "cosine, clipped by value vs. not")]}}


def spectra_chart(spectra: pd.DataFrame) -> dict:
    """The spectral radius of each recurrent matrix w' (per gate block), a red line at 1: horizontal bars, a plain
    Vega-Lite spec (``st.vega_lite_chart``). The largest singular value is in the tooltip once it is computed."""
    df = label_series(spectra)
    top = "max_singular" in df and bool(df["max_singular"].notna().all())  # not yet computed: left out
    rows = []
    for r in df.to_dict("records"):
        row = {"matrix": r["series"] if r["gate"] == "h" else f"{r['series']} · gate {r['gate']}",
               "module": r["module"], "layer": int(r["layer"]), "direction": r["direction"], "gate": r["gate"],
               "spectral_radius": float(r["spectral_radius"])}
        if top:
            row["max_singular"] = float(r["max_singular"])
        rows.append(row)
    tips = [_tip("module"), _tip("layer", "quantitative"), _tip("direction"), _tip("gate"),
            _tip("spectral_radius", "quantitative", ".3f", "spectral radius ρ")] + (
        [_tip("max_singular", "quantitative", ".3f", "largest singular value")] if top else [])
    bars = {"data": {"name": "spectra"}, "mark": {"type": "bar", "cornerRadius": 2},
            "encoding": {"y": {"field": "matrix", "type": "nominal", "title": None, "axis": {"labelLimit": 320}},
                         "x": {"field": "spectral_radius", "type": "quantitative", "stack": None,
                               "title": "spectral radius ρ (red line: 1)"},
                         "tooltip": tips}}
    line = {"data": {"name": "one"}, "mark": {"type": "rule", "strokeDash": [6, 4], "color": "red"},
            "encoding": {"x": {"field": "ref", "type": "quantitative"}}}
    return {"$schema": VEGA_LITE, "datasets": {"spectra": rows, "one": [{"ref": 1.0}]}, "height": {"step": 26},
            "layer": [bars, line]}


def singular_values_chart(spectra: pd.DataFrame) -> alt.Chart:
    df = label_series(spectra)
    rows = []
    for r in df.to_dict("records"):
        for i, s in enumerate(r["singular_values"] or []):
            rows.append((r["series"] if r["gate"] == "h" else f"{r['series']} · gate {r['gate']}", i + 1, float(s)))
    long = pd.DataFrame(rows, columns=["matrix", "index", "singular value"])
    return line_chart(long, "index", "singular value", "matrix", log=True, points=False, fmt=".3f",
                      x_title="singular value #, largest first", y_title="singular value (log scale)", height=240,
                      integer_x=True)


GATE_NAMES = {"i": "i · input gate", "f": "f · forget gate", "g": "g · candidate", "o": "o · output gate",
              "r": "r · reset gate", "z": "z · update gate", "n": "n · candidate"}


def gates_heatmap(gates: pd.DataFrame, labels: Sequence[str] | None = None) -> alt.Chart:
    df = gates.copy()
    df["gate name"] = df["gate"].map(lambda g: GATE_NAMES.get(g, g))
    if labels is not None:
        df["label"] = [labels[t] if t < len(labels) else "" for t in df["step"]]
    candidate = df["gate"].isin(["g", "n"])
    if candidate.all():
        dom = (-1.0, 1.0)
    else:
        dom = (0.0, 1.0)
    order = [GATE_NAMES[g] for g in GATE_NAMES if g in set(df["gate"])]
    return heatmap(df, "step", "gate name", "mean", scheme="viridis", domain=dom, y_sort=order,
                   tooltip=["step", "label", "gate name", "mean", "saturated"] if labels is not None else
                   ["step", "gate name", "mean", "saturated"], x_title="time step t", y_title="gate",
                   height=40 * df["gate"].nunique() + 40)


def hidden_heatmap(states: np.ndarray, labels: Sequence[str] | None = None, max_units: int = 48,
                   max_steps: int = 300) -> alt.Chart:
    """Hidden units (rows) over time (columns) for one item: what the network carries forward."""
    T, H = states.shape
    units = np.argsort(-np.abs(states).mean(0))[:max_units]  # the busiest units first
    stride = max(1, int(np.ceil(T / max_steps)))
    rows = []
    for t in range(0, T, stride):
        lab = labels[t] if labels is not None and t < len(labels) else ""
        for u in units:
            rows.append((t, lab, f"unit {u}", float(states[t, u])))
    df = pd.DataFrame(rows, columns=["step", "label", "unit", "h"])
    lim = float(max(1e-6, np.abs(states).max()))
    return heatmap(df, "step", "unit", "h", scheme="redblue", domain=(lim, -lim),
                   tooltip=["step", "label", "unit", "h"], x_title="time step t", y_title="hidden unit",
                   y_sort=[f"unit {u}" for u in units], height=min(600, 12 * len(units) + 40))


# ---- forecasts ----------------------------------------------------------------------------------------------------

FORECAST_LINES = {"truth": ("#111827", []), "network": ("#16a34a", []), "last value": ("#9ca3af", [6, 3]),
                  "seasonal naive": ("#f59e0b", [2, 2]), "next steps": ("#2563eb", []),
                  "the window": ("#111827", [])}  # line -> (colour, dash)


def forecast_lines(df: pd.DataFrame, x, height: int = 280) -> alt.Chart:
    """A forecast's lines (``df``: line, value, and the ``x`` field; ``FORECAST_LINES`` names, colours, dashes):
    the truth, the network's forecast and the naive forecasts, told apart by colour and dash."""
    present = [k for k in FORECAST_LINES if k in set(df.line)]
    return alt.Chart(df).mark_line(point=len(df) < 60).encode(
        x=x, y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        color=alt.Color("line:N", title=None, scale=alt.Scale(domain=present,
                                                              range=[FORECAST_LINES[k][0] for k in present])),
        strokeDash=alt.StrokeDash("line:N", title=None, scale=alt.Scale(domain=present,
                                                                        range=[FORECAST_LINES[k][1] for k in present])),
        tooltip=["line", alt.Tooltip("value:Q", format=".4g")] + (["when"] if "when" in df else [])
    ).properties(height=height)
