"""A page link clicked while a text box still holds unsent typing: send the typing first, then change the page.

Streamlit sends a text box's value when the box loses focus (or on Enter), and that message leaves after the
click's page change when the click is quick (pressed and released within a few milliseconds): the server then
runs the old page again with the typed text, the visitor stays where they were and the box is drawn empty. A
second click was needed. ``commit_before_navigating()`` puts one small script in the sidebar, once per browser
session: a click on a page link (sidebar or ``st.page_link``) that began while a text box had the focus is held
back for NAV_DELAY_MS, long enough for the box's value to leave first, and then replayed. The server receives the
text, then the page change; the text is kept by the page's state (core.ui.widgets.remember) and the new page opens.
"""

from __future__ import annotations

import streamlit as st

SESSION_FLAG = "_rnnlab_nav_guard"
NAV_DELAY_MS = 150  # the box's value is sent on blur, one or two frames after the pointer went down

LINKS = '[data-testid="stSidebarNav"] a, [data-testid="stPageLink"] a, [data-testid="stSidebarNavLink"]'

SCRIPT = ("<script>(() => { if (window.__rnnlabNavGuard) return; window.__rnnlabNavGuard = true;"
          "const links = %s;"
          "const typing = el => !!el && (el.tagName === 'TEXTAREA' || (el.tagName === 'INPUT' && "
          "/^(text|search|email|url|number|)$/i.test(el.getAttribute('type') || '')));"
          "let held = null;"
          "document.addEventListener('pointerdown', e => { const a = e.target.closest && e.target.closest(links);"
          " held = a && typing(document.activeElement) ? a : null; }, true);"
          "document.addEventListener('click', e => { const a = e.target.closest && e.target.closest(links);"
          " if (!a || a !== held) return; held = null; e.preventDefault(); e.stopImmediatePropagation();"
          " if (document.activeElement && document.activeElement.blur) document.activeElement.blur();"
          " setTimeout(() => a.click(), %d); }, true);"
          "})();</script>")


def guard_script() -> str:
    """The script (pure: the same text every time)."""
    import json

    return SCRIPT % (json.dumps(LINKS), NAV_DELAY_MS)


def commit_before_navigating() -> None:
    """Once per browser session: install the click guard (see the module docstring). Its listeners stay on the
    document after the element that carried them is gone."""
    if st.session_state.get(SESSION_FLAG):
        return
    st.session_state[SESSION_FLAG] = True
    st.sidebar.html(guard_script(), unsafe_allow_javascript=True)
