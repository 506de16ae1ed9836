"""Small shared widgets: one-click demos, error display, coloured tokens, a guard that keeps a page alive.

Rules every page follows through these helpers: a user never sees a traceback (it goes to the server log), a
``BadInput`` is a friendly warning with the task's own message, and any text that came from a user or a dataset is
escaped before it reaches Markdown or HTML.
"""

from __future__ import annotations

import html
import logging
import math
import re
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

import streamlit as st

from core.task import BadInput, Demo
from core.ui.shapes import SHAPE_SPECS

log = logging.getLogger("rnnlab.ui")

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>$~:])")


def md_escape(text: Any) -> str:
    """Make arbitrary text literal inside st.markdown / st.error (no emphasis, links, LaTeX, emoji codes)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text))


def md_code(text: Any, limit: int = 200) -> str:
    """Text as an inline code span. Markdown does no escaping inside code spans, so backticks and newlines go."""
    return "`" + str(text).replace("`", "'").replace("\n", " ")[:limit] + "`"


# ---- errors -----------------------------------------------------------------------------------------------------

def show_error(exc: BaseException, what: str = "") -> None:
    """Show an exception the way a user should see it.

    BadInput -> a warning with the task's message (the task wrote it for users);
    WeightsError -> an error with its message (it names the file and the fix);
    anything else -> a generic, friendly error; the traceback goes to the server log only."""
    from core.weights import WeightsError  # local: keeps this module light to import

    if isinstance(exc, BadInput):
        st.warning(md_escape(str(exc) or "This input cannot be used."), icon=":material/edit_note:")
        return
    if isinstance(exc, WeightsError):
        st.error(md_escape(str(exc)), icon=":material/error:")
        return
    log.error("error while %s", what or "running a page", exc_info=exc)
    doing = f" while {what}" if what else ""
    st.error(f"Something went wrong{doing}. Try another input or a demo; the details are in the server log.",
             icon=":material/error:")


def guarded(fn: Callable, *args, what: str = "", **kwargs):
    """Call ``fn``; on any exception show it with ``show_error`` and return None, so the rest of the page draws.

    Streamlit's own control flow (st.rerun, st.stop, st.switch_page) derives from BaseException and passes."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 -- the point of the guard
        show_error(exc, what)
        return None


def answer(task, model, input, what: str = "predicting") -> dict | None:
    """``task.predict(model, input)`` for a Try-it tab: a bad input (or any failure) is shown with ``show_error``
    and gives None; the answer's ``notes`` are shown as captions."""
    out = guarded(task.predict, model, input, what=what)
    for note in (out or {}).get("notes", []):
        st.caption(md_escape(note))
    return out


def regression_answer(out: dict) -> None:
    """A regressor's answer (Your data's regression tasks and the plugins they export): the number, the training
    rows' mean beside it as the baseline, and the number the model would answer after each step."""
    import pandas as pd

    from core.ui.charts import line_chart

    st.markdown(f"**{md_escape(out['target'])}: {out['value']:.4g}** (always answering the training rows' mean "
                f"would say {out['mean']:.4g})")
    steps = pd.DataFrame(out["after_each_step"])
    if len(steps):
        st.caption("The number the model would answer after reading each step:")
        st.altair_chart(line_chart(steps, "step", "value", tooltip=["step", "token", "value"], height=200,
                                   integer_x=True), width="stretch")


# ---- demos ------------------------------------------------------------------------------------------------------

def lazy_expander(label: str, key: str, **kwargs):
    """An expander whose content is computed only while it is open: ``with box: if box.open: ...``. Opening it
    reruns the page (a widget, ``key`` its state); closed, the charts inside cost neither the server nor the browser
    anything. For what a visitor opens on purpose (all singular values, the hidden state unit by unit)."""
    return st.expander(label, key=key, on_change="rerun", **kwargs)


def demo_buttons(task, key: str, label: str = "One-click demos") -> Demo | None:
    """A row of buttons, one per ``task.demos()``; returns the Demo clicked in this run (else None).

    The demo's note is the button's tooltip. Typical use: put ``demo.input`` into the input widget's session
    state *before* drawing that widget (see ``text_input_with_demos``)."""
    try:
        demos = list(task.demos())
    except Exception as exc:  # noqa: BLE001
        show_error(exc, "listing the demos")
        return None
    if not demos:
        return None
    chosen = None
    st.caption(label)
    with st.container(horizontal=True, gap="small"):
        for i, demo in enumerate(demos):
            if st.button(demo.label, key=f"{key}_demo_{i}", help=demo.note or None):
                chosen = demo
    return chosen


# ---- links: every page owns its query parameters -------------------------------------------------------------------

URL_TEXT_MAX = 1500  # characters: a longer text is not put in the link (browsers and servers cut long URLs)
LEGACY_TEXT_PARAM = "q"  # links made before the parameters were per page: ?q=... still opens on the page it names


def own_key(task_or_prefix, name: str) -> str:
    """The widget key -- and, for a widget bound to the URL, the query parameter -- that ``name`` gets on this page:
    ``f"{task.name}_{name}"``. Every page prefixes its keys with its own name, so a parameter of one page never
    fills a widget of another (``?sentiment_q=`` is the review, ``?names_origin_q=`` the surname). Idempotent."""
    prefix = getattr(task_or_prefix, "name", task_or_prefix)
    return name if name == prefix or name.startswith(f"{prefix}_") else f"{prefix}_{name}"


_KEPT = "_rnnlab_kept"  # session state: {widget key: the value it last had}, outside Streamlit's widget state


def remember(key: str, value: Any) -> None:
    """Keep an input's value for this browser session. Streamlit forgets a widget's value when its page is left
    (the widget is not drawn there); the page puts it back with ``recall`` when the person comes back."""
    st.session_state.setdefault(_KEPT, {})[key] = value


def recall(key: str, default: Any = None) -> Any:
    """The value ``remember`` kept for ``key`` in this session (``default`` if none)."""
    return (st.session_state.get(_KEPT) or {}).get(key, default)


_UNLINKED = "_rnnlab_unlinked"  # session state: {widget key: why its value is not in the link}, rebuilt every run


def note_unlinked(key: str, why: str | None) -> None:
    """Say (in the "Link to this view" box) why the input under ``key`` is not in the link; None: it is again."""
    notes = st.session_state.setdefault(_UNLINKED, {})
    if why:
        notes[key] = why
    else:
        notes.pop(key, None)


def view_url(prefix: str, extra: Sequence[str] = ()) -> str:
    """The link to this page as it is now: the page's address and every query parameter the page owns (the keys
    that start with ``prefix + "_"``, plus ``extra`` such as the open tab)."""
    own = f"{prefix}_"
    items = [(k, v) for k in st.query_params if k.startswith(own) or k in extra for v in st.query_params.get_all(k)]
    try:
        base = st.context.url or ""
    except Exception:  # noqa: BLE001 -- no browser context (tests): a relative link
        base = ""
    return base + ("?" + urlencode(items) if items else "")


def link_popover(prefix: str, extra: Sequence[str] = ()) -> None:
    """A "Link to this view" button: it opens the link to this page with the current inputs, settings and tab,
    ready to copy. Says which input a link cannot carry (a very long text)."""
    with st.popover("Link to this view", icon=":material/link:"):
        st.caption("This link opens this page with the same inputs, settings and tab. Copy it with the button at "
                   "the right of the box.")
        st.code(view_url(prefix, extra), language=None, wrap_lines=True)
        own = f"{prefix}_"
        for key, why in (st.session_state.get(_UNLINKED) or {}).items():
            if key.startswith(own):
                st.caption(md_escape(why))


def _text_from_url(key: str) -> str | None:
    """This page's text from the URL: its own parameter, else an old shared ``?q=`` (removed once read)."""
    if key in st.query_params:
        return st.query_params[key]
    if LEGACY_TEXT_PARAM in st.query_params:
        text = st.query_params[LEGACY_TEXT_PARAM]
        del st.query_params[LEGACY_TEXT_PARAM]
        return text
    return None


def text_input_with_demos(task, key: str | None = None, label: str = "Your input", default: str | None = None,
                          max_chars: int = 2000, area: bool = False, placeholder: str | None = None) -> str:
    """Demo buttons above a text box whose value lives in the URL (``?<task>_q=...``) so a link shares the input.

    The key (and query parameter) always belongs to the task: ``key=None`` or ``"q"`` gives ``f"{task.name}_q"``,
    any other key gets the same prefix. A text longer than URL_TEXT_MAX characters is not put in the URL (a caption
    says so). A demo click fills the box. Returns the current text (the first demo's input on a first visit)."""
    key = own_key(task, key or "q")
    demo = demo_buttons(task, key)
    if demo is not None:
        st.session_state[key] = str(demo.input)
    if key not in st.session_state:
        # a link's text, else the text this session had here before it left the page, else the first demo
        text = _text_from_url(key)
        if text is None:
            text = recall(key)
        if text is None:
            if default is None:
                try:
                    demos = task.demos()
                    default = str(demos[0].input) if demos else ""
                except Exception:  # noqa: BLE001 -- a broken demos() was already reported by demo_buttons
                    default = ""
            text = default
        st.session_state[key] = str(text)[:max_chars]
    widget = st.text_area if area else st.text_input
    text = widget(label, key=key, max_chars=max_chars, placeholder=placeholder)
    remember(key, text)
    if len(text) <= URL_TEXT_MAX:
        if st.query_params.get(key) != text:
            st.query_params[key] = text
        note_unlinked(key, None)
    else:
        if key in st.query_params:
            del st.query_params[key]
        why = (f"This text ({len(text):,} characters) is too long for a link, so a link to this view opens with "
               f"the first example instead; links keep texts of up to {URL_TEXT_MAX:,} characters.")
        st.caption(why)
        note_unlinked(key, why)
    if demo is not None and demo.note:
        st.caption(md_escape(demo.note))
    return text


def demo_in_url(task, key: str, demo: Demo | None) -> Demo | None:
    """Keep the chosen demo in the URL (``?<key>_sample=<label>``): a click writes it; on a first visit (``key``'s
    choice not in the session yet) the link's label picks the demo. Returns the demo the page should show now (the
    one clicked, else the link's), or None. A label that names no demo is ignored."""
    param = f"{key}_sample"
    if demo is not None:
        if st.query_params.get(param) != demo.label:
            st.query_params[param] = demo.label
        return demo
    label = st.query_params.get(param)
    if label is None:
        return None
    try:
        return next((d for d in task.demos() if d.label == label), None)
    except Exception:  # noqa: BLE001 -- a broken demos() was already reported by demo_buttons
        return None


def image_input(task, key: str, samples: str, samples_caption: str, upload_hint: str):
    """Where a picture comes from: the task's drawn samples, an upload, or the camera. Returns what ``predict`` takes
    (a demo's input or the file's bytes), or None while the person has not given one yet (a hint says what to do).
    The upload limit is core.images.MAX_BYTES, the same one the decoder enforces. The source and the chosen sample
    live in the URL (``?<task>_source=...&<task>_sample=...``)."""
    from core.images import MAX_BYTES

    key = own_key(task, key)
    source = st.radio("image source", [samples, "upload", "camera"], horizontal=True, key=f"{key}_source",
                      bind="query-params")
    if source == samples:
        clicked = demo_buttons(task, key)
        demo = demo_in_url(task, key, clicked)
        if demo is not None and (clicked is not None or f"{key}_demo" not in st.session_state):
            st.session_state[f"{key}_demo"] = demo.input
        note_unlinked(key, None)
        st.caption(samples_caption)
        return st.session_state.get(f"{key}_demo") or task.demos()[0].input
    if f"{key}_sample" in st.query_params:  # an upload or a photo is not in the link: neither is a sample
        del st.query_params[f"{key}_sample"]
    note_unlinked(key, "An uploaded file or a photo is not part of the link: it opens with the upload box (or the "
                        "camera) ready for a picture.")
    if source == "upload":
        mb = MAX_BYTES // 2**20
        up = st.file_uploader(f"A photo (JPEG, PNG, GIF, WebP, BMP; up to {mb} MB)",
                              type=["jpg", "jpeg", "png", "gif", "webp", "bmp"], key=f"{key}_upload",
                              max_upload_size=mb)
        if up is None:
            st.info(upload_hint)
            return None
        return up.getvalue()
    shot = st.camera_input("Take a picture", key=f"{key}_camera")
    if shot is None:
        st.info("Allow the camera and take a picture (or pick another source).")
        return None
    return shot.getvalue()


# ---- coloured tokens --------------------------------------------------------------------------------------------

VISIBLE = {" ": "\u2423", "\n": "\u21b5", "\t": "\u21e5", "": "\u2205"}


def _rgba(v: float, signed: bool) -> str:
    """v in [0, 1] (sequential) or [-1, 1] (signed) -> a translucent colour that works on light and dark themes."""
    if math.isnan(v):
        return "rgba(128,128,128,0.15)"
    a = min(1.0, abs(v)) * 0.85 + 0.05
    if signed and v < 0:
        return f"rgba(31,119,180,{a:.3f})"  # blue: pushes against the answer
    return f"rgba(255,127,14,{a:.3f})"  # orange: pushes towards it / large gradient


def token_html(tokens: Sequence[Any], values: Sequence[float], *, signed: bool | None = None,
               vmax: float | None = None, fmt: str = "{:.3g}", name: str = "value", legend: bool = True,
               max_tokens: int = 3000) -> str:
    """HTML for tokens whose background encodes a value (saliency, probability, gradient). Every token is escaped.

    signed=None picks a diverging scale (blue < 0 < orange) when any value is negative, else a sequential one.
    Values are scaled by ``vmax`` (default: the largest |value|). Hover a token for its exact value."""
    toks = [str(t) for t in tokens][:max_tokens]
    vals = [float(v) if v is not None else float("nan") for v in values][:len(toks)]
    vals += [float("nan")] * (len(toks) - len(vals))
    finite = [abs(v) for v in vals if not math.isnan(v)]
    if signed is None:
        signed = any(v < 0 for v in vals if not math.isnan(v))
    scale = vmax if vmax and vmax > 0 else (max(finite) if finite and max(finite) > 0 else 1.0)
    spans = []
    for tok, v in zip(toks, vals):
        shown = VISIBLE.get(tok, tok) if tok.strip() == "" else tok
        tip = html.escape(f"{tok!r}: {name} = {fmt.format(v)}" if not math.isnan(v) else f"{tok!r}", quote=True)
        spans.append(f'<span title="{tip}" style="background:{_rgba(v / scale, signed)};padding:1px 4px;'
                     f'margin:1px;border-radius:4px;display:inline-block;font-family:ui-monospace,monospace;'
                     f'white-space:pre">{html.escape(shown)}</span>')
    more = f' <span style="opacity:.6">... ({len(tokens) - len(toks)} more not shown)</span>' \
        if len(tokens) > len(toks) else ""
    body = f'<div style="line-height:2.0">{"".join(spans)}{more}</div>'
    if legend:
        lo = f"-{fmt.format(scale)}" if signed else "0"
        grad = ("linear-gradient(90deg, rgba(31,119,180,.9), rgba(128,128,128,.05), rgba(255,127,14,.9))" if signed
                else "linear-gradient(90deg, rgba(255,127,14,.05), rgba(255,127,14,.9))")
        body += (f'<div style="font-size:0.8em;opacity:.75;display:flex;align-items:center;gap:6px;margin-top:4px">'
                 f'{html.escape(name)}: {html.escape(lo)}<span style="display:inline-block;width:120px;height:10px;'
                 f'border-radius:3px;background:{grad}"></span>{html.escape(fmt.format(scale))}</div>')
    return body


def show_tokens(tokens: Sequence[Any], values: Sequence[float], **kwargs) -> None:
    """Render ``token_html`` (st.html sanitises it again with DOMPurify)."""
    st.html(token_html(tokens, values, **kwargs))


# ---- small formatting helpers -------------------------------------------------------------------------------------

def shape_badge(shape: str) -> None:
    """The shape's label, icon and colour (core.ui.shapes.SHAPE_SPECS) as a badge; an unknown shape as a grey one."""
    spec = SHAPE_SPECS.get(shape)
    if spec is None:
        st.badge(shape, color="gray")
    else:
        st.badge(spec.label, icon=spec.icon, color=spec.colour)


# ---- plain words ----------------------------------------------------------------------------------------------------

BPTT = ("**Backpropagation through time (BPTT)** is how a recurrent network learns. The network is one cell applied "
        "at every step; to learn, the error at the answer is sent backwards through every step it came from. Each "
        "step back multiplies the gradient by the recurrent weight w' and by the slope of the activation, so over "
        "many steps it shrinks (*vanishing gradient*: early steps learn nothing) or grows (*exploding gradient*: "
        "one update can wreck the model). ‖dL/dh_t‖ is its size at step t. LSTM and GRU gates add a path where the "
        "memory is copied rather than multiplied, so the gradient survives many more steps.")

GLOSSARY: dict[str, str] = {  # term -> one or two plain sentences; shown in the sidebar of every page
    "BPTT, ‖dL/dh_t‖": BPTT,
    "NLL, nats": "**Negative log-likelihood**: minus the log of the probability the model gave the right answer, "
                 "averaged over answers. 0 is perfect; lower is better. Measured with the natural log it is in "
                 "**nats** (with log₂ it would be bits): guessing among K equally likely choices costs ln K nats.",
    "log-prob": "The logarithm of a probability: 0 means certain, -1 about 37%, -5 under 1%. Logs are added instead "
                "of multiplying many small probabilities; a sentence's log-prob is the sum over its words.",
    "</s>, <unk>": "Special tokens. `</s>` marks the end of a sentence or a caption (the decoder writes it to say it "
                   "is done), `<s>` its start; `<unk>` stands for a word that is not in the model's vocabulary.",
    "CRF": "A **conditional random field** on top of a tagger scores whole tag sequences, not one tag at a time: it "
           "learns which tag may follow which (I-PER cannot follow B-LOC) and picks the best sequence.",
    "B-, I-, O tags": "How entity spans are tagged word by word: **B-PER** begins a person's name, **I-PER** is "
                      "inside the same name, **O** is outside any entity. \"New York City\" is B-LOC I-LOC I-LOC.",
    "spectral radius ρ": "The largest |eigenvalue| of the recurrent matrix w'. Going back one step multiplies the "
                         "gradient by about ρ (times the activation's slope), so ρ < 1 makes it vanish over many "
                         "steps and ρ > 1 lets it explode.",
    "chrono init": "Starting LSTM and GRU gates so that they *remember* (forget-gate bias log T): the memory and "
                   "its gradient then survive about T steps from the first update (Tallec & Ollivier, 2018).",
    "gates (LSTM, GRU)": "Numbers between 0 (closed) and 1 (open), computed at every step, that decide how much "
                         "memory to keep (LSTM forget gate f, GRU update gate z) and how much new input to write.",
    "saliency": "How much the loss would change if one input step changed (the size of dL/dx_t): the steps the "
                "answer depends on most get the deepest colour.",
    "gradient clipping": "Scaling an update down when its gradient is too large (by norm: keep the direction; by "
                         "value: cut each entry), so one exploding gradient cannot throw the weights away.",
    "ensemble, ensemble weights": "Several trained models answer together: their probabilities are mixed, each "
                                  "with a weight (chosen on the validation split) that says how much it counts.",
    "temperature, top-k, beam width": "Ways to pick words or notes from the model's probabilities. **Temperature** "
                                      "below 1 makes choices safer, above 1 more surprising; **top-k** draws only "
                                      "from the k likeliest; **beam search** keeps the best few (the beam width) "
                                      "partial answers at every step instead of one.",
    "random seed": "A number that fixes the random draws: the same seed and settings always give the same result.",
}


def glossary() -> None:
    """One expander with the words the pages use, in plain language; the router draws it in every page's sidebar."""
    with st.expander("Glossary: the words on these pages", icon=":material/menu_book:"):
        for term, text in GLOSSARY.items():
            st.markdown(f"**{md_escape(term)}** — {text}")
