"""The Plugins page: every task that loaded (where from, its shape, whether it has weights) and every plugin that
did not, with its error and traceback -- plus how to add one."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.ui.load import weights_status
from core.ui.shapes import shape_spec
from core.ui.widgets import md_escape
from core.weights import read_card

# The first commands of docs/plugins.md, which tests/test_docs_plugins.py runs as written (and checks these against).
QUICK_START = (
    ("python -m core.new_task my_task --shape many_to_one", "writes tasks/my_task/ (task, page, toy data)"),
    ("python -m core.train my_task --synthetic", "trains it on the toy data, writes weights/my_task/"),
    ("streamlit run streamlit_app.py", "restart the app: it lists tasks when it starts"),
)


def _weights_cell(task) -> tuple[str, str]:
    """(status, detail) from the files alone -- nothing is loaded here."""
    if weights_status(task) == "missing":
        return "missing", task.train_command()
    try:
        card = read_card(task.weights_path())
    except Exception as exc:  # noqa: BLE001 -- a broken card is a status, not a crash
        return "card unreadable", str(exc).split(" Fix it with:")[0]
    val = card.metrics.get(card.metric)
    synth = " (synthetic data)" if card.dataset.synthetic else ""
    return "ready", (f"test {card.metric} = {val:.4g}{synth}" if isinstance(val, (int, float)) else f"trained{synth}")


def render(registry) -> None:
    st.title("Plugins", anchor=False)
    st.markdown("Every task in RNN Lab is a plugin: a package in `tasks/` or an installed package in the "
                "`rnnlab.tasks` entry-point group. A plugin that fails to load is listed here with its error, and "
                "everything else keeps working.")

    st.subheader(f"Loaded tasks ({len(registry.tasks)})", anchor=False)
    if registry.tasks:
        rows = []
        for name, task in registry.tasks.items():
            status, detail = _weights_cell(task)
            rows.append({"task": name, "title": task.title, "shape": shape_spec(task.shape).label,
                         "source": registry.sources.get(name, ""), "weights": status, "detail": detail,
                         "page": task.page})
        df = pd.DataFrame(rows)
        st.dataframe(df, hide_index=True, width="stretch",
                     column_config={"weights": st.column_config.TextColumn(help="ready: weights/<task>/ has a "
                                                                           "card and a weights file")})
        missing = df[df.weights != "ready"]
        if not missing.empty:
            with st.expander(f"Train the {len(missing)} task(s) without usable weights"):
                st.code("\n".join(registry.tasks[n].train_command() for n in missing.task), language="bash")
    else:
        st.info("No task loaded yet.")

    st.subheader(f"Plugin errors ({len(registry.errors)})", anchor=False)
    if not registry.errors:
        st.success("Every plugin loaded and passed the contract check.", icon=":material/check_circle:")
    for err in registry.errors:
        st.error(f"**{md_escape(err.source)}**: {md_escape(err.error)}", icon=":material/extension_off:")
        if err.detail:
            with st.expander("Traceback"):
                st.code(err.detail, language="python")

    st.subheader("Add a task in three lines", anchor=False)
    st.code("\n".join(f"{cmd:<54}# {what}" for cmd, what in QUICK_START), language="bash")
    st.markdown("The contract (what a task declares, how its page is built from `core.ui`, how to publish it as "
                "a pip-installable package through the `rnnlab.tasks` entry point) is in `docs/plugins.md`. "
                "Set `RNNLAB_NO_ENTRY_POINTS=1` to load only `tasks/`.")
