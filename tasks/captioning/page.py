"""The captioning page: upload / snap / pick a sample photo -> a caption by beam search, the top words at each step,
where the model looked for each word (attention), and in Inspect the pixels each word depends on (saliency).

Imported only by the app; core.ui pieces are imported inside functions so importing the task never needs them.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import streamlit as st

from tasks.captioning import END_WORD

TRAINED_ON = ("The captioner learnt from **6,000 Flickr photos**, mostly of people and dogs outdoors (playing, "
              "running, in water, snow or on bikes), with five captions each. It knows nothing else: shown a cup, a "
              "rocket or a cat, it can only answer with the words and scenes of those photos.")


def render(task):
    from core.ui.page import task_page

    task_page(task, try_it=lambda model: _try_it(task, model),
              inspect_extra=lambda model, input: _inspect_extra(task, model, input))


def _overlay(pixels: np.ndarray, heat: np.ndarray, color=(255, 40, 40)) -> np.ndarray:
    """pixels (128, 128, 3), heat (h, w) >= 0 -> pixels tinted where heat is high (heat upscaled to the image)."""
    from PIL import Image

    h = heat / (heat.max() or 1.0)
    big = np.asarray(Image.fromarray((h * 255).astype(np.uint8)).resize(pixels.shape[1::-1], Image.BILINEAR),
                     dtype=np.float32)[..., None] / 255.0  # (128, 128, 1)
    dark = pixels.astype(np.float32) * (0.35 + 0.65 * big)
    tint = dark * (1 - 0.35 * big) + np.array(color, np.float32) * 0.35 * big
    return tint.clip(0, 255).astype(np.uint8)


def _try_it(task, model):
    """``model``: the module that answers (the served captioner; when the card serves an ensemble, the frame's
    toggle picks it or the main captioner alone)."""
    from core.ui.load import predict_cached
    from core.ui.page import answer_caption, try_it_shown
    from core.ui.widgets import image_input, show_error

    st.markdown(
        "**One-to-many:** one picture goes in once; the LSTM then writes one word per step, each step reading the "
        "word it wrote before. The image encoder is a small ResNet (residual `BasicBlock`s, as in torchvision) **trained from "
        "scratch** on 6,000 Flickr8k photos -- no ImageNet-pretrained weights -- so expect simple, generic captions.")
    input = image_input(
        task, task.name, "samples",
        "Samples are **real photographs** that come with the scikit-image package (an astronaut, a cat, a cup ...). "
        "Few of them look like the model's training photos: see what it makes of them, then upload your own.",
        "Upload a photo: people, dogs, bikes, beaches and snow are what Flickr8k is full of.")
    # Drawn on every run, picture or not: a widget that is skipped for one run loses its value, so switching to
    # "upload" (no file yet) and back would reset the beam width (the frame draws the ensemble toggle every run).
    beam = _decoding_controls(task)
    if input is None:
        return None
    query = {"image": input, "beam": beam}
    try:
        out = predict_cached(task, model, query)
    except Exception as exc:  # noqa: BLE001 -- BadInput shows as a warning, anything else as a friendly error
        show_error(exc, "reading the image")
        return None
    if not try_it_shown():  # another tab is open: the caption is all it needs from here
        return {**query, "caption": out["caption"]}
    for note in out["notes"]:
        st.info(note)
    left, right = st.columns([1, 2])
    orig = out["original"]
    whose = {"photo": "sample photo", "drawing": "sample drawing"}.get(out["source"], "your image")
    left.image(orig, caption=f"{whose} ({orig.shape[1]}x{orig.shape[0]})", width=224)
    with right:
        st.markdown(f"### “{html.escape(out['caption'] or '(empty)')}”")
        st.caption(f"beam search, width {out['beam']}")
        if out.get("label"):
            st.caption(f"(the picture shows {html.escape(out['label'])})")
        answer_caption(task)  # the ensemble (its members by name) or the main captioner alone
    if out.get("unlike_training"):
        st.warning("**This picture is far from anything the captioner saw.** Unlike every one of its 6,000 training "
                   f"photos, it has {'; '.join(out['unlike_training'])}. The caption above is a guess, however fluent "
                   "it sounds.", icon=":material/help:")
    st.caption(TRAINED_ON)
    _steps_table(out)
    if out["attention"] is not None:
        _attention_grid(out)
    # Inspect explains this very caption: it is teacher-forced there as the target (TASK.shown_caption_ids).
    return {**query, "caption": out["caption"]}


def _decoding_controls(task) -> int:
    from tasks.captioning import BEAM, MAX_BEAM

    beam = st.slider("beam width (1 = greedy)", 1, MAX_BEAM, BEAM, key=f"{task.name}_beam", bind="query-params",
                     help="How many partial captions are kept at every step; the best complete one wins. "
                          f"{BEAM} is the width the model card's test scores use (picked on the dev images).")
    return int(beam)


def _steps_table(out) -> None:
    st.subheader("Word by word")
    st.caption("At each step: the word written, its probability, and the model's top alternatives given the words "
               f"before it. {END_WORD} ends the caption: the model writes it to say it is done.")
    rows = []
    for t, s in enumerate(out["steps"]):
        alts = ", ".join(f"{w} {p:.0%}" for w, p in s["topk"])
        rows.append({"step": t + 1, "word": s["word"], "probability": s["prob"], "top alternatives": alts})
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
        "probability": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0)})


def _attention_grid(out) -> None:
    st.subheader("Where it looked for each word")
    st.caption("Soft attention over the 8x8 grid of image features at each step: bright = looked here.")
    words = out["words"] + [END_WORD]
    att = out["attention"]  # (T, 8, 8)
    per_row = 5
    for start in range(0, len(words), per_row):
        cols = st.columns(per_row)
        for j, w in enumerate(words[start:start + per_row]):
            cols[j].image(_overlay(out["pixels"], att[start + j]), caption=w, width=128)


def inspect_note(task, model, input, by_ensemble: bool) -> str:
    """One sentence: which caption the Inspect tab explains (the one Try it showed, ``by_ensemble`` or not) and
    through which captioner (``model``)."""
    caption = input.get("caption") if isinstance(input, dict) else None
    names = task.variant_names
    who = names.get(model.runtime.variant) or names.get(getattr(model.runtime.card, "served_variant", None), "captioner")
    shown = f"“{html.escape(caption)}”, the caption Try it shows" if caption else "the caption Try it shows"
    return (f"Explained here: {shown}" + (", written by the ensemble" if by_ensemble else "")
            + f". The gradients are taken through the {who}" + (" (one of the ensemble's members)" if by_ensemble
                                                                  else "")
            + ", reading that caption word by word: it is the loss's target.")


@st.cache_data(show_spinner="Measuring how much each word depends on the picture ...", max_entries=8, ttl=3600)
def _word_dependence(task_name: str, model_id: str, in_key: str, _task, _model, _input) -> dict:
    """task.word_dependence, once per (model, input): one backward pass through the decoder."""
    return _task.word_dependence(_model, _input)


@st.cache_data(show_spinner="Taking the word's gradient back to the pixels ...", max_entries=32, ttl=3600)
def _saliency(task_name: str, model_id: str, in_key: str, word: int, _task, _model, _input) -> dict:
    """task.saliency for one word, once per (model, input, word): one backward pass through the encoder."""
    return _task.saliency(_model, _input, word)


def _inspect_extra(task, model, input):
    from core.ui.inspector import input_key, model_key
    from core.ui.page import answered_by_ensemble
    from core.ui.widgets import show_error

    st.subheader("Which pixels does each word depend on? (saliency)")
    st.caption(inspect_note(task, model, input, answered_by_ensemble(task)))
    st.caption("The gradient of the chosen word's log-probability with respect to every input pixel (largest over "
               "the three colours). Compare with the attention maps on Try it: attention is where the model chose "
               "to look; saliency is what would change its mind.")
    keys = (task.name, model_key(model), input_key(input))
    try:
        dep = _word_dependence(*keys, task, model, input)
        words = dep["words"]
        pick = st.selectbox("word", list(range(len(words))), format_func=lambda i: f"{i + 1}. {words[i]}",
                            key=f"{task.name}_sal_word")
        sal = _saliency(*keys, int(pick), task, model, input)
    except Exception as exc:  # noqa: BLE001
        show_error(exc, "computing the saliency maps")
        return
    m = sal["map"]
    gray = (m / (m.max() or 1.0) * 255).astype(np.uint8)
    c1, c2, c3 = st.columns(3)
    c1.image(sal["pixels"], caption="input (128x128)", width=192)
    c2.image(np.repeat(gray[..., None], 3, axis=2), caption=f"saliency for '{words[sal['word']]}'", width=192)
    c3.image(_overlay(sal["pixels"], m), caption="overlay", width=192)
    st.caption("How strongly each word depends on the picture at all: the norm of its log-probability's gradient "
               "with respect to the 8x8 grid of image features, everything the decoder knows of the picture.")
    from core.ui import charts

    df = pd.DataFrame({"word": [f"{i + 1:02d} {w}" for i, w in enumerate(words)],
                       "gradient norm": [float(v) for v in dep["norms"]]})
    st.altair_chart(charts.bar_chart(df, "word", "gradient norm"), width="stretch")
