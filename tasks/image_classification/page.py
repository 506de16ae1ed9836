"""The image-classification page: upload / snap / pick a drawing -> cat or dog, from two models that read it
differently (a CNN with one recurrent step, and a GRU reading pixel rows), plus saliency and row-by-row views.

Imported only by the app; core.ui pieces are imported inside functions so importing the task never needs them.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import streamlit as st

from tasks.image_classification import VARIANT_NAMES

MODELS = [("onestep", VARIANT_NAMES["onestep"]), ("rowreader", VARIANT_NAMES["rowreader"])]
TRAINED_ON = ("Both models know only **32x32 photos of cats and dogs** (CIFAR-10), and they always answer *cat* or "
              "*dog*: for any other picture (a person, a car, a pattern) the answer is a guess, however sure it sounds.")


def render(task):
    from core.ui.page import task_page

    task_page(task, try_it=lambda model: _try_it(task, model),
              inspect_extra=lambda model, input: _inspect_extra(task, model, input))


def _models(task, served) -> dict:
    from core.ui.load import get_model

    out = {"onestep": served}
    out["rowreader"] = get_model(task, variant="rowreader", quiet=True)
    return out


def _big(pixels: np.ndarray, k: int = 6) -> np.ndarray:
    return np.kron(pixels, np.ones((k, k, 1), dtype=np.uint8))  # nearest-neighbour upscale, so pixels stay visible


# ---- try it -----------------------------------------------------------------------------------------------------
def _try_it(task, model):
    """``model``: the module that answers (the card's ensemble, if any). This page shows every model alone, side by
    side, with the served ensemble in a row of its own."""
    from core.ui.load import get_served
    from core.ui.widgets import image_input, show_error

    st.markdown(
        "**One-to-one, honestly:** the served model is a small convolutional network (a ResNet-style stack of "
        "residual `BasicBlock`s) whose features go through **one recurrent step** into the classifier. One step "
        "from an empty state means the recurrent weights never act, so this \"RNN\" is a **feed-forward network**. "
        "Beside it, a real RNN: a **GRU that reads the picture row by row** (32 steps of 32 pixels x 3 colours) and "
        "answers after the last row (many-to-one).")
    _card_comparison(model)
    st.caption("Both models were trained on 32x32 photos of cats and dogs (CIFAR-10), so any picture is shrunk to "
               "32x32 first: fine detail is lost, and the centre square is what they see.")
    input = image_input(
        task, task.name, "drawings",
        "These are **cartoons this app draws itself** (no dataset image ships with the app). The models learned "
        "from photos, so drawings are off their home ground: treat their answers as a curiosity.",
        "Upload a photo of a cat or a dog.")
    if input is None:
        return None
    served = get_served(task, quiet=True)
    members = served.members if served is not None else None
    models = _models(task, served.model if served is not None else model)
    try:  # each model alone, as its name says; the card's ensemble (if any) answers in a row of its own
        outs = {v: task.predict(m, {"image": input}) for v, m in models.items() if m is not None}
        if members is not None:
            outs["ensemble"] = task.predict(served.ensemble, {"image": input})
    except Exception as exc:  # noqa: BLE001 -- BadInput shows as a warning, anything else as a friendly error
        show_error(exc, "reading the image")
        return None
    main = outs["onestep"]
    for note in main["notes"]:
        st.info(note)
    left, mid, right = st.columns([1, 1, 2])
    orig = main["original"]
    left.image(orig, caption=f"your image ({orig.shape[1]}x{orig.shape[0]})", width=192)
    mid.image(_big(main["pixels"]), caption="what the models see (32x32)", width=192)
    with right:
        for v, name in MODELS + [("ensemble", _ensemble_name(members))]:
            if v in outs:
                o = outs[v]
                st.markdown(f"**{html.escape(name)}**: {html.escape(o['label'])} ({o['confidence']:.0%})")
                value, text = answer_bar(o)
                st.progress(value, text=text)
        if main.get("truth"):
            st.caption(f"(the drawing is meant to be a {html.escape(main['truth'])})")
    _familiarity(outs)
    if "rowreader" not in outs:
        st.info(f"No row-reader weights: train with `{task.train_command()}` to compare both models.")
    return input


def answer_bar(out: dict) -> tuple[float, str]:
    """The bar under an answer: filled to the probability of the class it names, with both classes in its text."""
    value = float(out["probs"][out["label"]])
    return min(max(value, 0.0), 1.0), " · ".join(f"{c} {p:.0%}" for c, p in out["probs"].items())


def familiarity_notes(outs: dict) -> tuple[list[str], bool]:
    """(what makes the picture unlike the training photos, whether the CNN and the GRU give different answers)."""
    unlike = list((outs.get("onestep") or next(iter(outs.values()))).get("unlike_training") or [])
    labels = {outs[v]["label"] for v, _ in MODELS if v in outs}
    return unlike, len(labels) > 1


def _familiarity(outs: dict) -> None:
    unlike, disagree = familiarity_notes(outs)
    if unlike:
        st.warning("**This picture is far from anything the models saw.** Unlike every one of the 9,000 training "
                   f"photos, it has {'; '.join(unlike)}. The answers above are guesses, however sure they sound: a "
                   "convolutional network can be 100% sure about a picture that is neither a cat nor a dog.",
                   icon=":material/help:")
    elif disagree:
        st.info("The two models disagree on this picture: neither answer is one to trust much.",
                icon=":material/help:")
    st.caption(TRAINED_ON)


def _ensemble_name(members) -> str:
    """The ensemble's row title from its members (core.serving.EnsembleMembers; None: no ensemble)."""
    names, weights = (members.names, members.weights) if members is not None else ((), ())
    mix = " + ".join(f"{VARIANT_NAMES.get(m, m)} × {w:.2f}" for m, w in zip(names, weights))
    return f"Served ensemble: {mix} (mean of probabilities, weights chosen on validation)"


def _card_comparison(model) -> None:
    card = model.runtime.card
    comp = card.comparison if card is not None else {}
    rows = []
    for v, name in MODELS:
        c = comp.get(v)
        if c is not None and "accuracy" in c.test:
            rows.append({"model": name, "test accuracy": c.test["accuracy"], "cats right": c.test.get("cat_accuracy"),
                         "dogs right": c.test.get("dog_accuracy"), "parameters": c.num_params, "epochs": c.epochs})
    ens = card.ensemble if card is not None else None
    test = ens.test if ens is not None else {}
    if rows and "accuracy" in test:  # what the page serves: the card's ensemble, on the same test photos
        members = ens.members
        params = [comp[m].num_params if m in comp else None for m in members]
        rows.append({"model": "Served ensemble: " + " + ".join(VARIANT_NAMES.get(m, m) for m in members),
                     "test accuracy": test["accuracy"], "cats right": test.get("cat_accuracy"),
                     "dogs right": test.get("dog_accuracy"),
                     "parameters": sum(params) if params and all(isinstance(p, int) for p in params) else None,
                     "epochs": None})
    if rows:
        # Never a "None" on screen: a number, or a dash where there is none (the ensemble was not trained by epochs).
        rows = [{k: ("–" if v is None else f"{v:,}" if k in ("parameters", "epochs") else v) for k, v in r.items()}
                for r in rows]
        st.caption("Held-out test accuracy on 2,000 CIFAR-10 cat/dog photos (from the model card; the CNN and the GRU "
                   "had the same training budget; the ensemble's second CNN is in the Model card's comparison):")
        st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
            c: st.column_config.NumberColumn(format="percent") for c in ("test accuracy", "cats right",
                                                                          "dogs right")})


# ---- inspect extra ------------------------------------------------------------------------------------------------
# Once per (weights, input) for every session: the Inspect tab reruns for each widget and tab of the page, and its
# own inspection is cached the same way (core.ui.inspector). Errors are not cached: they show on every run.
@st.cache_data(show_spinner="Taking the answer's gradient back to the pixels ...", max_entries=16, ttl=3600)
def saliency_view(task_name: str, model_id: str, in_key: str, _task, _model, _input) -> dict:
    """task.saliency through ``_model`` and the 32x32 pixels it read: one backward pass."""
    return {**_task.saliency(_model, _input), "pixels": _task.image_from_input(_input)["pixels"]}


@st.cache_data(show_spinner="Reading the picture row by row ...", max_entries=16, ttl=3600)
def row_reader_view(task_name: str, model_id: str, in_key: str, _task, _model, _input) -> dict:
    """The row reader's answer after each row (task.prefix_predictions) and its saliency per row."""
    return {"pre": _task.prefix_predictions(_model, _input), "rsal": _task.saliency(_model, _input)}


def _inspect_extra(task, model, input):
    from core.ui import charts
    from core.ui.inspector import input_key, model_key
    from core.ui.widgets import show_error

    st.subheader("Which pixels decided it? (saliency)")
    st.caption("The gradient of the predicted class's score with respect to every input pixel (largest over the "
               "three colours): bright pixels are those whose small change would move the answer most.")
    in_key = input_key(input)
    try:
        sal = saliency_view(task.name, model_key(model), in_key, task, model, input)  # the model whose gradients are shown
    except Exception as exc:  # noqa: BLE001
        show_error(exc, "computing the saliency map")
        return
    m = sal["map"]
    heat = (m / (m.max() or 1.0))  # (32, 32) in [0, 1]
    pixels = sal["pixels"].astype(np.float32)
    red = np.zeros_like(pixels)
    red[..., 0] = 255
    overlay = (pixels * (1 - 0.7 * heat[..., None]) + red * 0.7 * heat[..., None]).astype(np.uint8)
    gray = (heat * 255).astype(np.uint8)
    c1, c2, c3 = st.columns(3)
    c1.image(_big(sal["pixels"]), caption="input (32x32)", width=192)
    c2.image(_big(np.repeat(gray[..., None], 3, axis=2)), caption=f"saliency for '{sal['label']}'", width=192)
    c3.image(_big(overlay), caption="overlay (red = salient)", width=192)

    rr = model if getattr(model, "arch", "") == "rowreader" else _models(task, model).get("rowreader")
    if rr is None:
        return
    st.subheader("The row reader, row by row")
    st.caption("The GRU reads row 0 (top) to row 31 (bottom). Left: its answer if it had to stop after each row "
               "(the same network, read out early). Right: how strongly its final answer depends on each row (norm of the "
               "gradient per row) -- a recurrent reader often leans on the last rows it read.")
    try:
        rows = row_reader_view(task.name, model_key(rr), in_key, task, rr, input)
        pre, rsal = rows["pre"], rows["rsal"]
    except Exception as exc:  # noqa: BLE001
        show_error(exc, "running the row reader")
        return
    probs = pre["probs"]
    df = pd.DataFrame({"row": np.arange(len(probs)), "P(dog)": probs[:, 1]})
    gdf = pd.DataFrame({"row": [f"{r:02d}" for r in range(len(rsal["row_norm"]))], "grad norm": rsal["row_norm"]})
    a, b = st.columns(2)
    a.altair_chart(_prefix_chart(df), width="stretch")
    b.altair_chart(charts.bar_chart(gdf, "row", "grad norm"), width="stretch")
    st.markdown(f"After the last row the row reader says **{html.escape(rsal['label'])}** "
                f"(P(dog) = {probs[-1, 1]:.0%}).")


def _prefix_chart(df: pd.DataFrame):
    """P(dog) after each row on a fixed 0..1 axis, with the 50% line where the answer flips."""
    import altair as alt

    line = alt.Chart(df).mark_line(point=True).encode(
        x=alt.X("row:Q", title="rows read (0 = top)", scale=alt.Scale(domain=[0, 31])),
        y=alt.Y("P(dog):Q", scale=alt.Scale(domain=[0, 1]), title="P(dog) if it stopped here"),
        tooltip=["row", alt.Tooltip("P(dog):Q", format=".0%")])
    rule = alt.Chart(pd.DataFrame({"y": [0.5]})).mark_rule(strokeDash=[4, 4], color="gray").encode(y="y:Q")
    return alt.layer(line, rule).properties(height=280)
