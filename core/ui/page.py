"""The frame of every task page: header, weights check, and the three tabs Try it / Inspect / Model card.

A task's page module is usually three lines::

    import streamlit as st
    from core.ui.page import task_page
    def render(task):
        task_page(task, try_it=lambda model: _try_it(task, model))

``try_it(model)`` draws the Try-it tab and RETURNS the current input (or None); the Inspect tab runs the shared
inspector on that input, then ``inspect_extra(model, input)`` if given. Nothing a task draws can take the page down:
each tab is guarded, and a ``BadInput`` raised anywhere becomes a friendly warning.

The frame serves the task's ``core.serving.Served`` (``core.ui.load.get_served``). When its card has an ensemble and
the task names it (``Task.ensemble_words``), the frame draws the "<the served model> alone (switch the ensemble
off)" toggle at the top of Try it and hands ``try_it`` the module that answers: the ensemble, or the served variant
alone. The page puts ``answer_caption(task)`` under its answer ("Written by an ensemble: ..."), and
``answered_by_ensemble(task)`` tells its views which of the two wrote what Try it shows. Inspect always takes a single
trained model apart (the served variant, or the variant picked there): gradients go through one network.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import streamlit as st

from core.serving import DEFAULT_ENSEMBLE_WORDS, EnsembleWords
from core.ui.card import render_model_card
from core.ui.inspector import render_inspector
from core.ui.load import card_only, get_model, get_served
from core.ui.widgets import (
    demo_buttons,
    demo_in_url,
    guarded,
    link_popover,
    md_escape,
    shape_badge,
    show_error,
    text_input_with_demos,
)

log = logging.getLogger("rnnlab.ui")

TABS = ("Try it", "Inspect", "Model card")
TAB_KEY = "tab"  # the query parameter that names the open tab: ...?tab=Inspect opens the inspector


TAB_OWNER = "_rnnlab_tab_page"  # session state: the task page whose tab TAB_KEY last named


def open_on_try_it_when_arriving(name: str) -> None:
    """Every task page shares the TAB_KEY widget key (so ``?tab=Inspect`` works on any page), so the tab left open
    on one page would open on the next. Arriving from another task page, forget it -- unless the URL names a tab
    (a link to this view)."""
    last = st.session_state.get(TAB_OWNER)
    st.session_state[TAB_OWNER] = name
    if last is not None and last != name and TAB_KEY not in st.query_params:
        st.session_state.pop(TAB_KEY, None)


def header(task) -> None:
    st.title(task.title, anchor=False)
    shape_badge(task.shape)
    st.markdown(md_escape(task.summary))


def default_try_it(task, model) -> Any:
    """A generic Try-it tab for any task: demos, a text box (text tasks) and the raw predict() output."""
    key = f"{task.name}_try"
    if task.primary_input == "text":
        current = text_input_with_demos(task)  # ?<task>_q=... in the URL
    else:
        clicked = demo_buttons(task, key)
        demos = guarded(task.demos, what="listing the demos") or []
        demo = demo_in_url(task, key, clicked)  # ?<task>_try_sample=<label>: a link opens on the same demo
        if demo is not None and (clicked is not None or f"{key}_pick" not in st.session_state):
            st.session_state[f"{key}_pick"] = demo.label
        label = st.session_state.get(f"{key}_pick", demos[0].label if demos else None)
        current = next((d.input for d in demos if d.label == label), None)
        if label:
            st.caption(f"Input: demo **{md_escape(label)}**")
    if current is None or current == "":
        st.info("Choose a demo or type an input.")
        return None
    try:
        with st.spinner("Thinking ..."):
            out = task.predict(model, current)
    except Exception as exc:  # noqa: BLE001 -- BadInput becomes a warning, the rest a friendly error
        show_error(exc, "predicting")
        return None
    st.json(out)
    return current


# ---- the served ensemble: one toggle, one caption, for every task -------------------------------------------------

def ensemble_words(task) -> EnsembleWords:
    """How the task's page names its served variant and ensemble (``Task.ensemble_words``, else plain defaults)."""
    words = getattr(task, "ensemble_words", None)
    return words if isinstance(words, EnsembleWords) else DEFAULT_ENSEMBLE_WORDS


def ensemble_toggle_key(task) -> str:
    """The toggle's widget key (session state): True while the served model answers alone."""
    return f"{task.name}_single"


def offers_ensemble_toggle(task, served) -> bool:
    """The toggle is drawn when an ensemble answers and the task's page names it (``Task.ensemble_words``); a page
    that shows its ensemble its own way (image classification: a row beside each variant) leaves the words None."""
    return served is not None and served.has_ensemble and getattr(task, "ensemble_words", None) is not None


def ensemble_toggle(task, served) -> bool:
    """The "switch the ensemble off" toggle (drawn only when ``offers_ensemble_toggle``); True = the served model
    alone. Drawn on every run, so it keeps its value while the page's other widgets come and go."""
    if not offers_ensemble_toggle(task, served):
        return False
    words = ensemble_words(task)
    return st.toggle(f"{words.alone[:1].upper()}{words.alone[1:]} alone (switch the ensemble off)",
                     key=ensemble_toggle_key(task), help=words.help, bind="query-params")


def answered_by_ensemble(task) -> bool:
    """Whether the answer Try it shows comes from the ensemble (it has one, and the toggle is not switched on)."""
    served = get_served(task, quiet=True)
    if served is None or not served.has_ensemble:
        return False
    return not (offers_ensemble_toggle(task, served) and st.session_state.get(ensemble_toggle_key(task), False))


def answer_caption(task) -> None:
    """Who answered, for under the answer: the ensemble with its members (as ``core.ui.card.variant_name`` names
    them) and weights, and how it mixes them; or, with the toggle on, the served model alone."""
    from core.ui.card import variant_name

    served = get_served(task, quiet=True)
    if served is None:
        return
    words = ensemble_words(task)
    if answered_by_ensemble(task):
        members = served.members
        mix = " + ".join(f"{md_escape(variant_name(task, m))} × {w:.2f}" for m, w in zip(members.names, members.weights))
        st.caption(f"{words.verb} by an **ensemble**: {mix} -- {words.how}")
    elif served.card.ensemble is not None:
        st.caption(f"{words.verb} by {words.alone} alone (the ensemble is switched off above).")


def _inspect_tab(task, served, current, inspect_extra) -> None:
    card = served.card
    others = list(served.kept_variants)
    target = served.model
    if others:  # kept variants: inspect e.g. the plain RNN and the LSTM on the same input, side by side in time
        main = card.served_variant or "served model"
        from core.ui.card import variant_name

        pick = st.segmented_control("Model to inspect", [main] + others, default=main,
                                    format_func=lambda v: variant_name(task, v),
                                    key=f"{task.name}_insp_variant", bind="query-params",
                                    help="Variants trained with the same budget (see the Model card).")
        if pick and pick != main:
            target = get_model(task, pick)
            if target is None:
                return
    render_inspector(task, target, current)
    if inspect_extra is not None and current is not None:
        st.divider()
        guarded(inspect_extra, target, current, what="drawing this task's extra views")


TRY_IT_SHOWN = "_rnnlab_try_it_shown"  # session state: is the Try it tab the open one in this run?


def try_it_shown() -> bool:
    """Whether the Try it tab is the open one in this run. A page's try_it runs on every run (its widgets keep their
    values and it yields the input that Inspect explains), but may leave out what only the eye needs -- pictures,
    tables, grids -- while Inspect or the Model card is open."""
    return bool(st.session_state.get(TRY_IT_SHOWN, True))


def task_page(task, try_it: Callable[[Any], Any] | None = None,
              inspect_extra: Callable[[Any, Any], None] | None = None) -> None:
    """Draw a task page. ``try_it(model) -> input | None``; None uses ``default_try_it``.

    Missing or broken weights: the message and the exact training command are shown, and the page still draws
    everything that needs no model (demos, architecture, data source)."""
    header(task)
    link_slot = st.empty()  # filled last, once every widget has put its value in the URL
    served = get_served(task)
    open_on_try_it_when_arriving(task.name)
    tabs = st.tabs(list(TABS), key=TAB_KEY, on_change="rerun", bind="query-params")
    current = None
    with tabs[0]:
        # Always drawn, even when another tab is open: its widgets keep their state and it yields the input.
        if served is None:
            st.info("The model answers once it is trained (command above). These are the demos it will take:")
            for d in guarded(task.demos, what="listing the demos") or []:
                st.markdown(f"- **{md_escape(d.label)}**" + (f": {md_escape(d.note)}" if d.note else ""))
        else:
            alone = ensemble_toggle(task, served)
            st.session_state[TRY_IT_SHOWN] = tabs[0].open is not False
            fn = try_it or (lambda m: default_try_it(task, m))
            current = guarded(fn, served.answering(alone), what="running this task's Try it tab")
    with tabs[1]:
        if tabs[1].open is not False:  # None (untracked) or True: draw; False: skip the work
            if served is None:
                st.info("The inspector needs the trained model. Meanwhile the **Gradient Lab** shows vanishing and "
                        "exploding gradients without any weights.")
            else:
                guarded(_inspect_tab, task, served, current, inspect_extra, what="inspecting the model")
    with tabs[2]:
        if tabs[2].open is not False:
            card = served.card if served is not None else card_only(task)
            guarded(render_model_card, task, card, served.model if served is not None else None,
                    what="drawing the model card")
    with link_slot:
        guarded(link_popover, task.name, (TAB_KEY,), what="making the link to this view")
