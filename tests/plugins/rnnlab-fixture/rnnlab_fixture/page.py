"""The fixture plugin's page: uses only the shared task page."""

import streamlit as st


def render(task):
    from core.ui.page import task_page

    def try_it(model):
        text = st.text_input("Sequence of + and -", value="+ + - +", key="fixture_q")
        if model is not None:
            st.write(task.predict(model, text))
        return text

    task_page(task, try_it)
