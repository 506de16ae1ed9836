"""The generic Model card tab, drawn from a task's ModelCard (core/modelcard.py; weights/<task>/card.json).

Held-out metrics beside the published anchors, the variants compared under the same budget, training curves, the
data's source and license, parameter count, how it was trained, and an architecture diagram.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pandas as pd
import streamlit as st

from core.layers import cell_label
from core.modelcard import ModelCard
from core.paths import shown_command
from core.task import Display
from core.ui import charts
from core.ui.shapes import shape_spec
from core.ui.widgets import md_escape

# ---- architecture diagram ---------------------------------------------------------------------------------------

def _q(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rnn_label(r: dict) -> str:
    layers = r.get("num_layers", 1)
    d = "bidirectional" if r.get("bidirectional") else "one direction"
    return (f"{_part(r.get('title', 'recurrent layer'))}\n{cell_label(r.get('cell', '?'), long=True)}\n"
            f"{layers} layer{'s' if layers != 1 else ''} × {r.get('hidden_size', '?')} units, {d}")


def _built(task, config: dict | None, meta: Any):
    """The model ``config`` builds (over the task's default config): its modules and shapes, freshly initialised,
    to be read and dropped. None when it does not build (a model that needs its data's vocabulary, with no card to
    read it from). Built on the CPU, not on PyTorch's "meta" device: meta tensors run torch's Python meta kernels,
    whose first use imports torch._dynamo and sympy (~150 MiB resident for good, ~2 s) -- far more than the few MB a
    model of this app takes for the moment it is read."""
    try:
        import torch

        with torch.no_grad():
            return task.build_model({**(getattr(task, "config", None) or {}), **(config or {})}, meta or {})
    except Exception:  # noqa: BLE001 -- a plugin's build_model may fail in any way; the caller falls back
        return None


_KINDS = {"Sequential": "a small network", "Conv2d": "a convolution", "Linear": "a linear layer"}


def _part(name: str) -> str:
    """A module's name in a diagram, in words (core.inspect.PART_WORDS: "src_embed" -> "source embedding")."""
    from core.inspect import PART_WORDS

    top = str(name).split(".")[-1] or "model"
    return PART_WORDS.get(top, top.replace("_", " "))


def _describe(model=None, config: dict | None = None) -> dict:
    """What the diagram needs, read from the model's modules (exact); without a model, from its config's usual
    field names (a model that could not be built)."""
    info: dict[str, Any] = {"rnns": [], "embeds": [], "encoder": None, "head": None, "attention": False}
    if model is not None:
        import torch.nn as nn

        from core.layers import Recurrent

        for name, m in model.named_modules():
            if isinstance(m, Recurrent):
                info["rnns"].append({"title": name or "rnn", "cell": m.cell, "num_layers": m.num_layers,
                                     "hidden_size": m.hidden_size, "bidirectional": m.bidirectional,
                                     "input_size": m.input_size})
            elif isinstance(m, nn.Embedding):
                info["embeds"].append(f"{_part(name)}: {m.num_embeddings} words → vectors of {m.embedding_dim}")
            elif name in ("encoder", "embed") and not isinstance(m, (nn.Identity, Recurrent, nn.Embedding)):
                info["encoder"] = f"{_part(name)}: {_KINDS.get(type(m).__name__, 'feature extractor')}"
        head = getattr(model, "head", None)
        if isinstance(head, nn.Linear):
            info["head"] = f"output layer: linear {head.in_features} → {head.out_features}"
        info["attention"] = bool(getattr(model, "use_attention", False))
        return info
    c = config or {}
    arch = str(c.get("arch", c.get("variant", ""))).lower()  # e.g. "bigru": a task's own naming
    cell = c.get("cell") or next((k for k in ("minlstm", "mingru", "lstm", "gru", "rnn_relu", "rnn_tanh") if k in arch),
                                  None)
    cell = cell or ("rnn_tanh" if "rnn" in arch else "?")
    hidden = c.get("hidden_size", c.get("hidden", "?"))
    bi = c.get("bidirectional", c.get("bidirectional_encoder", arch.startswith("bi")))
    info["rnns"].append({"title": "rnn", "cell": cell, "num_layers": c.get("num_layers", 1), "hidden_size": hidden,
                         "bidirectional": bi})
    emb = c.get("embed_size") or c.get("embedding_size") or c.get("input_size")
    if c.get("vocab_size") or emb:
        info["embeds"].append(f"embedding {c.get('vocab_size', '')} → {emb or '?'}".replace("  ", " "))
    info["attention"] = bool(c.get("attention", False))
    return info


def architecture_dot(task, model=None, config: dict | None = None, meta: Any = None) -> str:
    """Graphviz DOT: input -> embedding/encoder -> recurrent layer(s) (with their loop) -> head -> output. Without
    a loaded ``model``, the one ``config`` and ``meta`` build is drawn."""
    info = _describe(model if model is not None else _built(task, config, meta), config)
    shape = task.shape
    lines = ["digraph G {", "rankdir=LR; bgcolor=transparent;",
             'node [shape=box, style="rounded,filled", fillcolor="#f0f2f6", fontname="Helvetica", fontsize=11];',
             'edge [fontname="Helvetica", fontsize=9];']
    io = 'shape=plaintext, style="", fontsize=13'
    rnn_style = 'fillcolor="#ffe0b2"'

    def node(nid, label, extra=""):
        lines.append(f"{nid} [label={_q(label)}{', ' + extra if extra else ''}];")

    rnns = info["rnns"] or [{"title": "rnn", "cell": "?"}]
    front = info["embeds"][:1] + ([info["encoder"]] if info["encoder"] else [])
    head = info["head"] or "output layer: linear"
    if shape == "encoder_decoder" and len(rnns) >= 2:
        node("x", "x_1 … x_S", io)
        node("semb", info["embeds"][0] if info["embeds"] else "source embedding")
        node("enc", _rnn_label(rnns[0]), rnn_style)
        node("bridge", "bridge: summary → decoder's h_0")
        node("yprev", "yₜ₋₁  (BOS first)", io)
        node("temb", info["embeds"][1] if len(info["embeds"]) > 1 else "target embedding")
        node("dec", _rnn_label(rnns[1]), rnn_style)
        node("head", head)
        node("y", "y_1 … y_M", io)
        lines += ["x -> semb -> enc -> bridge -> dec;", "yprev -> temb -> dec;", "dec -> head -> y;",
                  'enc -> enc [label="hₜ₋₁"];', 'dec -> dec [label="hₜ₋₁"];',
                  'y -> yprev [style=dashed, label="fed back (inference)", constraint=false];']
        if info["attention"]:
            node("attn", "attention\n(Luong, general)", 'fillcolor="#c8e6c9"')
            lines += ['enc -> attn [label="all source steps"];', "dec -> attn;", "attn -> head;"]
        lines.append("}")
        return "\n".join(lines)

    spec = shape_spec(shape)
    node("x", spec.card_in, io)
    prev = "x"
    for i, f in enumerate(front):
        node(f"f{i}", f)
        lines.append(f"{prev} -> f{i};")
        prev = f"f{i}"
    for i, r in enumerate(rnns):
        node(f"r{i}", _rnn_label(r) if shape != "one_to_one" else _rnn_label(r) + "\none step from h_0 = 0",
             rnn_style)
        lines.append(f"{prev} -> r{i};")
        if shape != "one_to_one":
            lines.append(f'r{i} -> r{i} [label="hₜ₋₁"];')
        prev = f"r{i}"
    if shape == "many_to_one":
        node("last", "last real step\n(+ backward at step 0)" if any(r.get("bidirectional") for r in rnns)
             else "last real step")
        lines.append(f"{prev} -> last;")
        prev = "last"
    node("head", head + ("\n(every step)" if spec.loss_at == "every" else ""))
    node("y", spec.card_out, io)
    lines += [f"{prev} -> head;", "head -> y;"]
    if shape == "one_to_many":
        lines.append('y -> x [style=dashed, label="each output is the next input", constraint=false];')
    lines.append("}")
    return "\n".join(lines)


# ---- the card ----------------------------------------------------------------------------------------------------

DASH = "–"  # what a table shows where a card has no number (never "None")


def _fmt(v: Any) -> str:
    if v is None:
        return DASH
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def display_of(task) -> Display:
    """The task's words for its metrics and variants (``Task.display``; an empty Display for a task without)."""
    d = getattr(task, "display", None)
    return d if isinstance(d, Display) else Display()


def metric_name(task, key: str, with_unit: bool = False) -> str:
    """A metric key in the task's words (``Task.display``)."""
    return display_of(task).metric_label(str(key), with_unit=with_unit)


def fmt_metric(task, key: str, v: Any) -> str:
    """A metric's value as its unit says: a fraction with unit "%" as a percentage, counts without decimals."""
    m = display_of(task).metric(str(key))
    if isinstance(v, (int, float)) and not isinstance(v, bool) and m is not None:
        if m.unit == "%":
            return f"{100 * v:.1f} %"
        if not m.better and float(v).is_integer():
            return f"{int(v):,}"
    return _fmt(v)


def _better(task, key: str) -> str:
    m = display_of(task).metric(str(key))
    return {"higher": "higher is better", "lower": "lower is better"}.get(m.better, "") if m else ""


def _metrics_table(metrics: dict, val: dict | None, task=None) -> pd.DataFrame:
    rows = []
    for k, v in (metrics or {}).items():
        rows.append({"metric": metric_name(task, k, with_unit=True), "test (held out)": fmt_metric(task, k, v),
                     "validation": fmt_metric(task, k, (val or {}).get(k)) if k in (val or {}) else DASH,
                     "": _better(task, k)})
    return pd.DataFrame(rows)


def variant_name(task, name: Any) -> str:
    """A variant as people read it: the task's ``display.variants`` (e.g. "onestep" -> "CNN with one RNN step"),
    else a cell's name, else the older ``variant_names``, else the card's own name."""
    words = display_of(task).variant(str(name))
    if words:
        return words
    names = getattr(task, "variant_names", None) or {}
    return str(names.get(name, name)) if isinstance(names, dict) else str(name)


_CELLS: dict[tuple, str] = {}  # (task, config, meta) -> the cell names of the model that config builds


def variant_cell(task, cfg: dict, meta: Any) -> str:
    """The recurrent cell(s) a variant's config really builds, read from its Recurrent modules (a config's "cell"
    field can name the cell of another variant: the image task's one-step CNN always uses a plain tanh step). The
    model is built once per config and dropped (``_built``). Falls back to the config's "cell"."""
    from core.layers import Recurrent

    try:
        key = (getattr(task, "name", ""), json.dumps(cfg, sort_keys=True, default=str),
               json.dumps(meta, sort_keys=True, default=str))
    except (TypeError, ValueError):
        key = None
    if key is not None and key in _CELLS:
        return _CELLS[key]
    shown = cell_label(cfg.get("cell", ""), long=True)
    model = _built(task, cfg, meta)
    if model is not None:  # a config that no longer builds keeps its own word
        cells = list(dict.fromkeys(m.cell for m in model.modules() if isinstance(m, Recurrent)))
        shown = " + ".join(cell_label(c, long=True) for c in cells) if cells else "none (no recurrence)"
    if key is not None:
        _CELLS[key] = shown
    return str(shown)


def _mix(card: ModelCard) -> dict[str, float]:
    """Each ensemble member's mixing weight by variant name ({} for a single model)."""
    return dict(zip(card.ensemble.members, card.ensemble.weights)) if card.ensemble else {}


def _comparison_table(card: ModelCard, task=None) -> pd.DataFrame:
    metric, served, mix = card.metric, card.served_variant, _mix(card)
    words = metric_name(task, metric)
    rows = []
    for name, row in card.comparison.items():
        if name in mix:
            mark = f"  ✓ served, in the ensemble × {mix[name]:.2f}"
        else:
            mark = "  ✓ served" if name == served and not mix else ""
        cell = variant_cell(task, row.config, card.meta) if task is not None else \
            cell_label(row.config.get("cell", ""), long=True)
        rows.append({"variant": variant_name(task, name) + mark,
                     "cell": cell,
                     f"{words} (validation)": fmt_metric(task, metric, row.val.get(metric)),
                     f"{words} (test)": fmt_metric(task, metric, row.test.get(metric)),
                     "parameters": row.num_params, "epochs": row.epochs, "best epoch": row.best_epoch,
                     "train seconds": row.train_seconds, "stopped by": _stopped(row.stopped)})
    df = pd.DataFrame(rows)
    return df.astype(object).where(df.notna(), DASH)  # a dash where the card has no number, never "None"


STOPPED = {"patience": "early stop (no better on validation)", "epochs": "its last epoch",
           "time budget": "the time budget", "max steps": "the step budget"}


def _stopped(why: Any) -> Any:
    """Why training stopped, in words (core.train records a short reason)."""
    return STOPPED.get(str(why), why) if why is not None else None


def _commands(runs: list[tuple[str, Any]]) -> str:
    """Recorded commands as one bash block, each under a comment: "# <who>device, <minutes>"."""
    return "\n".join(f"# {who}{run.device or '?'}, {_minutes(run.wall_seconds)}\n{shown_command(run.command)}"
                     for who, run in runs)


def _ensemble_section(card: ModelCard, task=None) -> None:
    """How the served ensemble was put together: its members and weights, the validation sweep that chose
    them, and the served variant alone beside it."""
    ens, metric = card.ensemble, card.metric
    st.markdown("#### Served as an ensemble")
    mix = ", ".join(f"{md_escape(variant_name(task, m))} × {w:.2f}" for m, w in zip(ens.members, ens.weights))
    st.markdown(f"The app answers with {len(ens.members)} trained variants at once, their scores mixed with fixed "
                f"weights ({mix}; the Try it tab says how this task mixes them and can switch the ensemble off). "
                f"The weights were picked on the **validation** {md_escape(metric_name(task, metric))}; the test "
                "split was scored "
                "once, for the weights picked.")
    rows = [{"weights": " / ".join(f"{x:.2f}" for x in r.weights),
             f"{metric_name(task, metric)} (validation)": fmt_metric(task, metric, r.val.get(metric)),
             "picked": "✓" if list(r.weights) == list(ens.weights) else ""} for r in ens.sweep]
    row = card.comparison.get(card.served_variant)
    alone = row.test if row else {}
    served = variant_name(task, card.served_variant)
    left, right = st.columns([1, 1])
    if rows:
        left.caption("Validation sweep (the first weight is the served variant's; 1.00 = that variant alone)")
        left.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    keys = [k for k, v in card.metrics.items() if isinstance(v, (int, float)) and k in alone]
    if keys:
        right.caption(f"Test split: the ensemble beside {md_escape(str(served))} alone")
        right.dataframe(pd.DataFrame([{"metric": metric_name(task, k), "ensemble": fmt_metric(task, k, card.metrics[k]),
                                       f"{served} alone": fmt_metric(task, k, alone[k])} for k in keys]),
                        hide_index=True, width="stretch")
    st.caption("The commands that trained the members and chose the weights are under *For developers* below.")


def _minutes(seconds) -> str:
    """Seconds from a card as minutes for people; "n/a" for anything that is not a number."""
    ok = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
    return f"{seconds / 60:.1f} min" if ok else "n/a"


# ---- the tab, section by section -----------------------------------------------------------------------------------

def _no_card(task) -> None:
    """No weights yet: what is known without training, and the command that trains."""
    st.info("No model card yet: this task has not been trained. Train it with:")
    st.code(task.train_command(), language="bash")
    st.markdown("#### Architecture (from the task's default config)")
    st.graphviz_chart(architecture_dot(task, None, task.config), width="stretch")
    if task.recipe.anchors:
        st.markdown("#### Published anchors")
        for k, v in task.recipe.anchors.items():
            st.markdown(f"- **{md_escape(k)}**: {md_escape(v)}")
    if task.data_source:
        st.markdown("#### Data")
        st.markdown(md_escape(task.data_source))


def _headline(task, card: ModelCard) -> None:
    """The four tiles: test metric, parameters, what is served, training time."""
    metric, ens = card.metric, card.ensemble
    if card.dataset.synthetic:
        st.warning("These weights were trained on the tiny **synthetic** data (a smoke test): the metrics below "
                   "mean nothing. Train on the real data with the command at the bottom.")
    c = st.columns(4)
    head_val = card.metrics.get(metric)
    c[0].metric(f"{metric_name(task, metric)} (test)", fmt_metric(task, metric, head_val) if head_val is not None else "n/a",
                help="on the held-out test split, computed by python -m core.train after model selection on "
                     "validation" + (" (for the ensemble: by python -m core.ensemble, weights chosen on "
                                     "validation)" if ens else ""))
    n_params, params_help = card.num_params, f"of {variant_name(task, card.served_variant or 'the model')}"
    if ens:  # what answers: every member together
        counts = [card.comparison[m].num_params if m in card.comparison else None for m in ens.members]
        if counts and all(isinstance(n, int) for n in counts):
            n_params = sum(counts)
            params_help = "of the ensemble's members together: " + ", ".join(
                f"{variant_name(task, m)} {n:,}" for m, n in zip(ens.members, counts))
    c[1].metric("parameters", f"{n_params:,}" if isinstance(n_params, int) else DASH, help=params_help)
    served_label, served_help = variant_name(task, card.served_variant or "default"), None
    if ens:  # a count fits the tile; the names go in its help and in the ensemble section below
        names = [variant_name(task, m) for m in ens.members]
        served_label, served_help = f"{len(names)} variants", " + ".join(names)
    c[2].metric("served " + ("ensemble" if ens else "variant"), served_label, help=served_help)
    stages = card.all_stages()
    c[3].metric("training time", _minutes(sum(s.wall_seconds for s in stages)),
                help="all training stages together" if len(stages) > 1 else None)


def _metrics_and_anchors(task, card: ModelCard) -> None:
    st.markdown("#### Held-out metrics and published anchors")
    left, right = st.columns([1, 1])
    with left:
        st.caption("This model (test split never seen in training or selection)")
        st.dataframe(_metrics_table(card.metrics, card.val_metrics, task), hide_index=True, width="stretch")
        for key, note in (getattr(task, "metric_notes", None) or {}).items():
            if key in card.metrics:
                st.caption(f"**{md_escape(metric_name(task, key))}**: {md_escape(note)}")
    with right:
        st.caption("Published numbers on the same kind of task, for scale (not always the same split or size)")
        anchors = card.anchors or task.recipe.anchors
        if anchors:
            for k, v in anchors.items():
                st.markdown(f"- **{md_escape(k)}**: {md_escape(v)}")
        else:
            st.markdown("_No published anchor recorded for this task._")


def _variants(task, card: ModelCard) -> None:
    comp = _comparison_table(card, task)
    if comp.empty:
        return
    joined = [(variant_name(task, n), "--join" in (row.trained_by.command or ""))
              for n, row in card.comparison.items() if row.trained_by]
    later = [n for n, same_recipe in joined if same_recipe]
    apart = [n for n, same_recipe in joined if not same_recipe]
    notes = ([f"{', '.join(later)} trained later with the same recipe"] if later else []) + \
        ([f"{', '.join(apart)} trained on its own budget, see below"] if apart else [])
    st.markdown("#### Variants compared (same data, same budget)" if not notes else
                f"#### Variants compared (same data; {'; '.join(notes)})")
    st.dataframe(comp, hide_index=True, width="stretch")


def card_version(card: ModelCard) -> str:
    """What tells two cards apart for caching what is drawn from them: a digest of what the curves are drawn from
    (the histories, the metric, the served variant, the creation time; ~1 ms), so a retrained model or a variant
    joined to the card later draws its new curves."""
    import hashlib
    import pickle

    what = (card.history, card.metric, card.served_variant, card.created, card.weights_sha256)
    return hashlib.sha256(pickle.dumps(what, protocol=4)).hexdigest()


# One entry per task and card: the specs are a few tens of KB, the same for every session.
@st.cache_data(show_spinner=False, max_entries=32, ttl=3600)
def _curve_specs(task_name: str, version: str, _task, _card: ModelCard) -> tuple[dict | None, dict | None, int]:
    """(the main training curves, the other validation metrics' curves, how many of those) as Vega-Lite specs."""
    task, card = _task, _card
    hist = {variant_name(task, k): [dataclasses.asdict(r) for r in recs] for k, recs in card.history.items()}
    names = display_of(task).series_label
    main_series = ["train_loss", f"val {card.metric}", "grad_norm"]
    main = charts.training_curves(hist, main_series, names=names)
    rest = charts.history_frame(hist)
    rest = sorted(set(rest.series[rest.series.str.startswith("val ")]) - set(main_series)) if not rest.empty else []
    more = charts.training_curves(hist, rest, names=names) if rest else None
    return main, more, len(rest)


def _curves(task, card: ModelCard) -> None:
    """Training curves per epoch and variant; the other validation metrics in an expander. The specs are built once
    per card (``_curve_specs``), so opening the tab again costs only sending them."""
    main, more, n_more = _curve_specs(task.name, card_version(card), task, card)
    if main is None:
        return
    st.markdown("#### Training curves")
    st.caption(f"Per epoch and per variant: training loss, {metric_name(task, card.metric)} on validation and the "
               "mean gradient size ‖g‖ "
               "before clipping (log scales where positive). Hover for values.")
    st.vega_lite_chart(spec=main, width="content", key=f"card_{task.name}_hist")
    if more is not None:
        with st.expander(f"The other validation metrics ({n_more})"):
            st.vega_lite_chart(spec=more, width="content", key=f"card_{task.name}_hist_more")


def _architecture(task, card: ModelCard, model) -> None:
    st.markdown("#### Architecture")
    try:
        st.graphviz_chart(architecture_dot(task, model, card.config, card.meta), width="stretch")
    except Exception:  # noqa: BLE001 -- a diagram is a nicety; never let it break the card
        st.caption("(diagram unavailable)")


def _data(task, card: ModelCard) -> None:
    ds = card.dataset
    st.markdown("#### Data")
    src = ds.source or task.data_source
    if ds.description:
        st.markdown(md_escape(display_of(task).in_words(ds.description)))
    if src:
        st.markdown(f"**Source and license:** {md_escape(src)}")
    if ds.files:
        with st.expander(f"{len(ds.files)} data file(s) and their checksums"):
            st.dataframe(pd.DataFrame([{"file": f.path, "bytes": f.bytes, "sha256": f.sha256[:16] + "…"}
                                       for f in ds.files]), hide_index=True, width="stretch")


def _how_trained(task, card: ModelCard) -> None:
    """How these weights were made, in words; the commands are in the developers' expander."""
    tr = card.training
    st.markdown("#### How it was trained")
    stages = card.all_stages()
    rows = [f"{_minutes(sum(x.wall_seconds for x in stages))} of training on {md_escape(tr.device or 'an unknown device')}",
            f"random seed {tr.seed}" if tr.seed is not None else "",
            "every variant with the same data and budget; the served one picked on the validation split"]
    st.markdown("; ".join(r for r in rows if r) + ". The exact commands, to reproduce it, are below.")


def _for_developers(task, card: ModelCard) -> None:
    """Everything a developer needs and a student does not: the commands, the ids, the raw config and recipe."""
    tr = card.training
    with st.expander("For developers: commands, ids and the raw config", icon=":material/code:"):
        if tr.command:
            st.caption("The command that produced these weights")
            st.code(shown_command(tr.command), language="bash", wrap_lines=True)
        stages = [s for s in tr.stages or [] if s.command]
        if stages:
            rescored = " --epochs 0 " in f" {tr.command} "
            what = ("It re-scored weights trained earlier without training them (--init-from with --epochs 0: the "
                    "task's current evaluation code)" if rescored else
                    "It continued from weights trained earlier (--init-from)")
            st.caption(f"{what}; the earlier stage{'s' if len(stages) > 1 else ''}, oldest first:")
            st.code(_commands([("", s) for s in stages]), language="bash", wrap_lines=True)
        ens = card.ensemble
        if ens is not None:
            joined = [(m, card.comparison[m].trained_by) for m in ens.members if m in card.comparison]
            joined = [(f"{m}: ", t) for m, t in joined if t is not None and t.command]
            if joined:
                st.caption("Ensemble members trained on their own and joined to this card (core.ensemble --add)")
                st.code(_commands(joined), language="bash", wrap_lines=True)
            if ens.command:
                st.caption("The command that chose the ensemble's weights and scored the test split")
                st.code(shown_command(ens.command), language="bash", wrap_lines=True)
        st.caption("Retrain from scratch")
        st.code(task.train_command(), language="bash")
        ids = [{"variant": variant_name(task, n), "id": n, "config": json.dumps(r.config, sort_keys=True)}
               for n, r in card.comparison.items()]
        if ids:
            st.caption("Variant ids (for --variants) and their configs")
            st.dataframe(pd.DataFrame(ids), hide_index=True, width="stretch")
        keys = sorted(set(card.metrics) | set(card.val_metrics or {}))
        if keys:
            st.caption("Metric ids (the keys of evaluate()'s dict)")
            st.dataframe(pd.DataFrame([{"metric": metric_name(task, k), "id": k} for k in keys]), hide_index=True,
                         width="stretch")
        st.caption("Recipe, config, checksums and versions")
        st.json({"config": card.config, "recipe": tr.recipe, "seed": tr.seed, "device": tr.device,
                 "weights_sha256": card.weights_sha256, "weights_bytes": card.weights_bytes,
                 "versions": card.versions, "created": card.created}, expanded=False)


def render_model_card(task, card: ModelCard | None, model=None) -> None:
    """The Model card tab. ``card`` None (no weights yet): what is known without training, and the command."""
    from core.ui.calibration import render_calibration

    if card is None:
        _no_card(task)
        return
    if model is None:
        st.caption("The model itself could not be loaded (see the message above); this is what its card says.")
    _headline(task, card)
    _metrics_and_anchors(task, card)
    render_calibration(card)
    _variants(task, card)
    if card.ensemble is not None:
        _ensemble_section(card, task)
    _curves(task, card)
    _architecture(task, card, model)
    _data(task, card)
    _how_trained(task, card)
    _for_developers(task, card)
