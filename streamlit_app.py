"""RNN Lab -- the router. Run: streamlit run streamlit_app.py

This file only routes: it discovers the task plugins (once per process), builds the navigation -- Home, the
Lesson and the Gradient Lab, one section per recurrent shape with a page per task, and the Plugins page -- and runs
the page the URL names. Every page has its own url_path, so deep links work (/sentiment?tab=Inspect&sentiment_q=...). Each page runs
inside a guard: a task whose page fails to import or crashes shows a clear error, and every other page keeps
working. The pages themselves live in core/ui/pages/ and in each task's page module.
"""

from __future__ import annotations

import importlib
import logging

import streamlit as st

from core.registry import discover
from core.shapes import SHAPES
from core.ui.navguard import commit_before_navigating
from core.ui.pages import FIXED_PATHS, task_url_path
from core.ui.server import (
    ServerBusy,
    configure_torch,
    page_slot,
    release_free_memory,
    settle_heap,
)
from core.ui.shapes import SHAPE_SPECS, shape_spec
from core.ui.warm import warm_browser
from core.ui.widgets import glossary, md_code, show_error

log = logging.getLogger("rnnlab")
if not log.handlers:  # the router reruns on every interaction; add the handler once per process
    _h = logging.StreamHandler()
    _h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(_h)
    log.setLevel(logging.INFO)

st.set_page_config(page_title="RNN Lab", page_icon="🔁", layout="wide")
configure_torch()


@st.cache_resource(show_spinner="Discovering tasks ...")
def registry():
    reg = discover()
    settle_heap()  # start-up done: later full collections skip everything imported so far
    return reg


def _guard(fn, what: str):
    """Run a page function; any exception becomes a friendly message (traceback to the server log only)."""
    def run():
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 -- st.rerun/st.stop are BaseExceptions and pass through
            show_error(exc, what)
    run.__name__ = getattr(fn, "__name__", "page")
    return run


def home_page(reg, task_pages: dict) -> None:
    from core.ui.pages.home import render

    render(reg, task_pages)


def lesson_page(reg, pages: dict) -> None:
    from core.ui.pages.lesson import render

    render(reg, pages)


def gradient_lab_page() -> None:
    from core.ui.pages.gradient_lab import render

    render()


def plugins_page(reg) -> None:
    from core.ui.pages.plugins import render

    render(reg)


def your_data_page() -> None:
    from core.ui.pages.your_data import render

    render()


def task_page_fn(task):
    """The page function for one task: import its page module lazily, call it with the task, survive anything."""
    def page():
        spec = task.page
        try:
            module, _, func = spec.partition(":")
            render = getattr(importlib.import_module(module), func)
        except Exception as exc:  # noqa: BLE001 -- a plugin's page that fails to import must not break the app
            log.error("page %s of task %s failed to import", spec, task.name, exc_info=exc)
            st.title(task.title, anchor=False)
            st.error(f"This task's page ({md_code(spec)}) could not be loaded ({type(exc).__name__}). The other "
                     "pages work as usual; the details are in the server log and on the Plugins page's list.",
                     icon=":material/extension_off:")
            return
        try:
            render(task)
        except Exception as exc:  # noqa: BLE001
            log.error("page of task %s crashed", task.name, exc_info=exc)
            show_error(exc, f"drawing the {task.title} page")
    page.__name__ = f"task_{task.name}"
    return page


def main() -> None:
    reg = registry()
    task_pages = {}
    for name, task in reg.tasks.items():
        task_pages[name] = st.Page(task_page_fn(task), title=task.title, url_path=task_url_path(name),
                                   icon=shape_spec(task.shape).icon)
    home = st.Page(_guard(lambda: home_page(reg, task_pages), "drawing the home page"), title="Home",
                   icon=":material/home:", url_path="home", default=True)
    lab = st.Page(_guard(gradient_lab_page, "running the Gradient Lab"), title="Gradient Lab",
                  icon=":material/science:", url_path=FIXED_PATHS["gradient_lab"])
    plugins = st.Page(_guard(lambda: plugins_page(reg), "drawing the Plugins page"), title="Plugins",
                      icon=":material/extension:", url_path=FIXED_PATHS["plugins"])
    yours = st.Page(_guard(your_data_page, "running the Your data page"), title="Your data",
                    icon=":material/upload_file:", url_path=FIXED_PATHS["your_data"])
    linked = {p.url_path: p for p in [lab, yours, *task_pages.values()]}
    lesson = st.Page(_guard(lambda: lesson_page(reg, linked), "running the lesson"), title="Lesson",
                     icon=":material/school:", url_path=FIXED_PATHS["lesson"])
    sections: dict[str, list] = {"RNN Lab": [home, lesson, lab, yours]}
    for shape in SHAPES:
        pages = [task_pages[n] for n, t in reg.tasks.items() if t.shape == shape]
        if pages:
            sections[SHAPE_SPECS[shape].label] = pages
    sections["Develop"] = [plugins]
    current = st.navigation(sections, position="sidebar", expanded=True)
    with st.sidebar:
        glossary()  # the same plain words on every page
    if reg.errors:
        n = len(reg.errors)
        dup = sum("duplicate task name" in e.error for e in reg.errors)
        with st.sidebar:
            st.warning(f"{n} plugin problem{'s' if n != 1 else ''}"
                       + (f" ({dup} duplicate name{'s' if dup != 1 else ''})" if dup else "")
                       + ": the other tasks work as usual.", icon=":material/warning:")
            st.page_link(plugins, label="See the Plugins page", icon=":material/extension:")
    warm_browser()  # once per browser session: the frontend loads its table/chart code while the page computes
    commit_before_navigating()  # once per browser session: typing reaches the server before a page link's click
    try:
        with page_slot():  # at most PAGE_SLOTS pages run at once (core.ui.server); the sidebar above never waits
            current.run()
    except ServerBusy:
        st.warning("The server is very busy right now: this page waited two minutes for its turn. Please try again "
                   "in a moment.", icon=":material/hourglass_top:")
    release_free_memory()  # at most every 30 s: freed heap pages back to the OS (core.ui.server)


main()
