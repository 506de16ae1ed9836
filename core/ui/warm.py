"""Load the browser code of Streamlit's heavier elements while the first page is still being computed.

Streamlit's frontend fetches the code of a table, a chart or a select box the first time a page shows one, and
draws a grey placeholder (a "skeleton") until it has arrived and started: on a busy 2-core machine that was 1-3 s
after the answer itself was ready (seen on the NER page, which shows tables, charts, toggles and a select box at
once). ``warm_browser()`` puts one small script at the top of the sidebar, once per browser session: it imports
those modules from the same URLs the frontend uses, one after another, while the server is still running the page
script. When the page's elements arrive, their code is already loaded, so they are drawn at once.

Only the frontend's own files are imported (found in the installed streamlit package); nothing leaves the server.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import streamlit as st

# The elements the app's pages use, in the order a task page needs them (most pages: text box, tabs, tables,
# charts). Names are the frontend's module names (streamlit/static/static/js/<Name>.<hash>.js).
ELEMENTS = ("Html", "TextArea", "TextInput", "Checkbox", "Selectbox", "ButtonGroup", "Slider", "DataFrame",
            "ArrowVegaLiteChart", "loadVegaEmbed", "embed", "Metric", "Progress", "ProgressBar", "Json", "Radio",
            "Table", "FileUploader", "DownloadButton", "NumberInput", "Multiselect", "StreamlitSyntaxHighlighter")
SESSION_FLAG = "_rnnlab_warm_browser"


@lru_cache(maxsize=1)
def element_files() -> tuple[str, ...]:
    """File names of the frontend modules for ELEMENTS in this streamlit install (empty if the layout differs)."""
    js = Path(st.__file__).parent / "static" / "static" / "js"
    if not js.is_dir():
        return ()
    by_name: dict[str, str] = {}
    for f in sorted(js.glob("*.js")):
        name = f.name.split(".", 1)[0]
        if name in ELEMENTS and name not in by_name:
            by_name[name] = f.name
    return tuple(by_name[n] for n in ELEMENTS if n in by_name)


def warm_script(files: tuple[str, ...]) -> str:
    """The script: import each module, one at a time, from the folder the frontend's own index module came from."""
    return ("<script>(async () => { try {"
            "const idx = [...document.querySelectorAll('script[src]')].find(s => /static\\/js\\/index\\./.test(s.src));"
            "const base = idx ? new URL('.', idx.src) : new URL('./static/js/', document.baseURI);"
            f"for (const f of {json.dumps(list(files))}) {{ try {{ await import(new URL(f, base).href); }} "
            "catch (e) {} }"
            "window.__rnnlabWarm = 'done'; } catch (e) { window.__rnnlabWarm = 'failed'; } })();</script>")


def warm_browser() -> None:
    """Once per browser session, before the page runs: start loading the element code (see the module docstring)."""
    if st.session_state.get(SESSION_FLAG):
        return
    files = element_files()
    st.session_state[SESSION_FLAG] = True
    if files:
        st.sidebar.html(warm_script(files), unsafe_allow_javascript=True)
