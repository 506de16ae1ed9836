"""Home: the five shapes of recurrent network side by side -- a diagram of each (inline SVG, drawn here from the
shape registry, core.ui.shapes.SHAPE_SPECS, which also gives each shape's name, text and table row), the lesson's
equations, a "when to use what" table -- and links to every task of each shape, saying which ones still need
training (with the command that trains them). Also the way into the Gradient Lab.
"""

from __future__ import annotations

import functools
import html
import json
from pathlib import Path

import streamlit as st

from core.layers import MIN_CELLS, cell_label
from core.shapes import SHAPES
from core.ui.shapes import SHAPE_SPECS

# ---- diagrams ----------------------------------------------------------------------------------------------------
BOX_W, BOX_H, STEP = 34, 24, 50
ROW_Y, ROW_H, ROW_X = 12, 66, 120  # top of the output, hidden and input rows
COLOURS = {"x": ("#dbeafe", "#2563eb"), "h": ("#dcfce7", "#16a34a"), "s": ("#fef3c7", "#d97706"),
           "y": ("#fce7f3", "#db2777")}


def _box(cx: float, top: float, label: str, kind: str) -> str:
    fill, stroke = COLOURS[kind]
    return (f'<rect x="{cx - BOX_W / 2}" y="{top}" width="{BOX_W}" height="{BOX_H}" rx="5" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="1.5"/>'
            f'<text x="{cx}" y="{top + BOX_H / 2 + 4.5}" text-anchor="middle" font-size="13" '
            f'font-family="ui-sans-serif, system-ui, sans-serif" fill="#111827">{html.escape(label)}</text>')


def _arrow(x1: float, y1: float, x2: float, y2: float, dashed: bool = False, colour: str = "#4b5563") -> str:
    dash = ' stroke-dasharray="4 3"' if dashed else ""
    return (f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{colour}" stroke-width="1.6"{dash} '
            f'marker-end="url(#arrowhead)"/>')


def shape_svg(shape: str) -> str:
    """A small boxes-and-arrows diagram of one shape: inputs x (blue, bottom), hidden states (green; the decoder's
    in amber), outputs y (pink, top); right arrows carry the state o_{t-1} -> o_t, dashed arrows feed an output
    back in as the next input."""
    cols = SHAPE_SPECS[shape].diagram  # one DiagramStep per column (core.ui.shapes)
    n = len(cols)
    width = max(4, n) * STEP + 16
    x0 = (width - (n - 1) * STEP) / 2
    parts = ['<defs><marker id="arrowhead" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
             'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#4b5563"/></marker>'
             '</defs>']
    for i, c in enumerate(cols):
        cx = x0 + i * STEP
        if c.x:
            parts.append(_arrow(cx, ROW_X, cx, ROW_H + BOX_H + 2))
        if c.y:
            parts.append(_arrow(cx, ROW_H, cx, ROW_Y + BOX_H + 2))
        if i > 0:
            parts.append(_arrow(cx - STEP + BOX_W / 2, ROW_H + BOX_H / 2, cx - BOX_W / 2 - 2, ROW_H + BOX_H / 2))
        if c.feed and cols[i - 1].y:  # previous output becomes this step's input
            px = cx - STEP
            parts.append(f'<path d="M{px + BOX_W / 2},{ROW_Y + BOX_H / 2} C{px + STEP * 0.75},{ROW_Y + BOX_H / 2} '
                         f'{cx - 6},{ROW_Y + BOX_H + 10} {cx - 6},{ROW_H - 2}" fill="none" stroke="#db2777" '
                         f'stroke-width="1.3" stroke-dasharray="4 3" marker-end="url(#arrowhead)"/>')
    for i, c in enumerate(cols):
        cx = x0 + i * STEP
        if c.x:
            parts.append(_box(cx, ROW_X, c.x, "x"))
        parts.append(_box(cx, ROW_H, c.h, "s" if c.decoder else "h"))
        if c.y:
            parts.append(_box(cx, ROW_Y, c.y, "y"))
    if shape == "encoder_decoder":  # a bracket naming the two halves
        enc_r = x0 + 2 * STEP + BOX_W / 2
        parts.append(f'<text x="{x0 + STEP}" y="{ROW_Y + 14}" text-anchor="middle" font-size="11" fill="#16a34a" '
                     f'font-family="ui-sans-serif, system-ui, sans-serif">encoder</text>')
        parts.append(f'<text x="{x0 + 3.5 * STEP}" y="{ROW_X + 16}" text-anchor="middle" font-size="11" '
                     f'fill="#d97706" font-family="ui-sans-serif, system-ui, sans-serif">decoder</text>')
        parts.append(f'<line x1="{enc_r + 8}" y1="{ROW_Y}" x2="{enc_r + 8}" y2="{ROW_X + BOX_H}" stroke="#9ca3af" '
                     f'stroke-dasharray="2 3"/>')
    height = ROW_X + BOX_H + 6
    name = SHAPE_SPECS[shape].title
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{html.escape(name)} diagram" style="width:100%;max-width:{width * 1.25:.0f}px;'
            f'height:auto;display:block;margin:auto">{"".join(parts)}</svg>')


# ---- links -------------------------------------------------------------------------------------------------------
def _noop() -> None:  # the target of a link to a page the router owns; never run from here
    return None


def _link(page, label: str, icon: str | None = None) -> bool:
    """st.page_link that never breaks the page: if the target is not a registered page (e.g. in a test with no
    navigation), show the label as plain text instead."""
    try:
        st.page_link(page, label=label, icon=icon)
        return True
    except Exception:  # noqa: BLE001 -- a missing page is not worth a traceback on Home
        st.markdown(f"{label}")
        return False


def _md(text: str) -> str:
    try:
        from core.ui.widgets import md_escape
    except Exception:  # noqa: BLE001
        return html.escape(str(text))
    return md_escape(text)


def _has_weights(task) -> bool:
    try:
        return (Path(task.weights_path()) / "card.json").is_file()
    except Exception:  # noqa: BLE001 -- a plugin with an odd weights_dir: treat as untrained
        return False


def _card_cells(task) -> frozenset[str]:
    """Every cell a task's card names: the served variant's and each compared variant's (empty when untrained or
    unreadable). Read once per version of the card file (a card is hundreds of kB of JSON; Home reruns often)."""
    path = Path(task.weights_path()) / "card.json"
    try:
        stat = path.stat()
    except OSError:
        return frozenset()
    return _cells_in_card(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _cells_in_card(path: str, mtime_ns: int, size: int) -> frozenset[str]:
    """The cells a card file names; ``mtime_ns`` and ``size`` only key the cache (a rewritten card is read again)."""
    try:
        card = json.loads(Path(path).read_text())
    except Exception:  # noqa: BLE001 -- one this page cannot read: no cells to count
        return frozenset()
    compared = (card.get("comparison") or {}).values()
    configs = [card.get("config") or {}] + [v.get("config") or {} for v in compared if isinstance(v, dict)]
    return frozenset(str(c.get("cell")) for c in configs if isinstance(c, dict) and c.get("cell"))


def linear_recurrence_row(tasks) -> str:
    """The "when to use what" row for the 2024 linear recurrences: a cell for any shape, not a shape; "tasks here"
    counts the tasks whose card has a minGRU or minLSTM variant."""
    names = " / ".join(cell_label(c) for c in MIN_CELLS)
    n = sum(1 for t in tasks if _card_cells(t) & set(MIN_CELLS))
    return (f"| **{names}** (2024 linear recurrences: a cell for any shape) | as the shape it sits in | long "
            "sequences (thousands of steps) and fast training: the gates read only the input, so every step is "
            "computed at once by a parallel scan — about log₂ T rounds instead of T. **The catch:** the state can "
            "fade but never flip, so they cannot track a state such as parity (is the number of 1s odd?) at every "
            "length (Grazzi et al., 2025); use a GRU or LSTM there (Gradient Lab, parts 3 and 4) | long documents, "
            f"audio, sensor logs, a GRU that trains too slowly | {n} |")


def _train_command(task) -> str:
    try:
        return task.train_command()
    except Exception:  # noqa: BLE001 -- a plugin that cannot resolve its data dir still gets a usable command
        return f"python -m core.train {task.name} --data-dir DIR"


def _task_entry(task, task_pages: dict) -> None:
    page = task_pages.get(task.name)
    title = _md(task.title or task.name)
    if page is not None:
        _link(page, f"**{title}**", icon=":material/arrow_forward:")
    else:
        st.markdown(f"**{title}**")
    if task.summary:
        st.caption(_md(task.summary))
    if not _has_weights(task):
        st.markdown(":orange-badge[:material/hourglass_empty: no trained weights yet]",
                    help=f"Train it with: {_train_command(task)}")


# Page-link labels are a single line with an ellipsis; inside the narrow shape cards (and the Gradient Lab link on a
# phone) a title must wrap instead. On a narrow screen the equations and the "when to use what" table scroll inside
# their own box, never the page. Scoped to containers by key (a key becomes the CSS class st-key-<key>).
_WRAP_CSS = """<style>
.st-key-home_shapes [data-testid="stPageLink"] a, .st-key-home_shapes [data-testid="stPageLink"] a *,
.st-key-home_lab [data-testid="stPageLink"] a, .st-key-home_lab [data-testid="stPageLink"] a * {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important; height: auto;
}
.st-key-home_eq [data-testid="stMarkdownContainer"], .st-key-home_eq .katex-display {
  overflow-x: auto; overflow-y: hidden; max-width: 100%;
}
.st-key-home_when table { display: block; overflow-x: auto; max-width: 100%; }
.st-key-home_when th, .st-key-home_when td { min-width: 7.5em; }
.st-key-home_when th:nth-child(3), .st-key-home_when td:nth-child(3) { min-width: 15em; }
.st-key-home_swipe { display: none !important; }
@media (max-width: 760px) { .st-key-home_swipe { display: block !important; } }
</style>"""


# ---- page --------------------------------------------------------------------------------------------------------
def render(registry, task_pages: dict) -> None:
    task_pages = task_pages or {}
    st.title("RNN Lab", anchor=False)
    st.markdown("**Recurrent networks, one shape at a time.** Each shape below has working models to try and to "
                "look inside; the Gradient Lab shows why plain RNNs forget and gated ones (GRU, LSTM) do not.")
    st.html(_WRAP_CSS)
    with st.container(key="home_lab"):
        _link(st.Page(_noop, title="Gradient Lab", url_path="gradient-lab"),
              "Open the **Gradient Lab** — vanishing and exploding gradients, live (needs no trained weights)",
              icon=":material/science:")

    st.subheader("One recurrence, five shapes", anchor=False)
    c1, c2 = st.container(key="home_eq").columns(2)
    with c1:
        st.latex(r"o_t = f\left(x_t \cdot w + o_{t-1} \cdot w' + b_o\right)")
        st.caption("The state $o_t$ mixes the new input $x_t$ (through $w$) with the previous state $o_{t-1}$ "
                   "(through the recurrent weight $w'$). The same $w$, $w'$, $b_o$ are used at every step.")
    with c2:
        st.latex(r"y_t = f\left(w_1 \cdot o_t + b_y\right)")
        st.caption("An output is read from the state whenever the task needs one. Where the inputs enter and where "
                   "the outputs are read decides the shape.")

    by_shape: dict[str, list] = {s: [] for s in SHAPES}
    others = []
    for name in sorted(registry.tasks):
        task = registry.tasks[name]
        (by_shape[task.shape] if task.shape in by_shape else others).append(task)

    with st.container(key="home_shapes"):
        cols = st.columns(len(SHAPES), gap="small", border=True)
        for col, shape in zip(cols, SHAPES):
            with col:
                st.markdown(f"#### {SHAPE_SPECS[shape].title}")
                # st.html sanitises with DOMPurify's HTML-only profile, which strips <svg>; Markdown with raw
                # HTML keeps it. The SVG is built here from constants only (no user text): nothing to escape.
                st.markdown(shape_svg(shape), unsafe_allow_html=True)
                st.markdown(SHAPE_SPECS[shape].blurb)
                tasks = by_shape[shape]
                if tasks:
                    st.markdown(f"**Tasks** ({len(tasks)})")
                    for task in tasks:
                        _task_entry(task, task_pages)
                else:
                    st.caption("No task of this shape is installed yet.")
    st.caption("Blue: inputs x · green: hidden state o · amber: the decoder's state · pink: outputs y · "
               "solid right arrows: the state carried from step to step (through w') · dashed: an output fed "
               "back in as the next input.")

    untrained = [t for s in SHAPES for t in by_shape[s]] + others
    untrained = [t for t in untrained if not _has_weights(t)]
    if untrained:
        st.markdown(f"**Not trained yet** — {len(untrained)} task{'s' if len(untrained) != 1 else ''} "
                    "without weights (no `card.json` in its weights folder). Each trains with one command:")
        st.code("\n".join(f"# {t.title or t.name}\n{_train_command(t)}" for t in untrained), language="bash")

    st.subheader("When to use what", anchor=False)
    lines = ["| shape | in → out | use it when | for example | tasks here |", "|---|---|---|---|---|"]
    for spec in SHAPE_SPECS.values():
        lines.append(f"| **{spec.title}** | {spec.io} | {spec.use_when} | {spec.examples} | "
                     f"{len(by_shape[spec.name])} |")
    lines.append(linear_recurrence_row(registry.tasks.values()))
    st.container(key="home_swipe").caption("The table is wider than this screen: swipe it sideways to see "
                                           "every column (in → out, use it when, examples, tasks here).")
    st.container(key="home_when").markdown("\n".join(lines))
    st.markdown("Rules of thumb: prefer a **GRU or LSTM** over the plain RNN once dependencies span more than a "
                "few dozen steps (see the Gradient Lab); make a many-to-many or encoder network **bidirectional** "
                "when the whole input is known before you answer; add **attention** to an encoder–decoder when "
                "inputs are long; try **minGRU or minLSTM** when sequences run to thousands of steps and training "
                "time matters, but not when the task is to keep track of a state.")

    if others:
        st.subheader("Other tasks", anchor=False)
        for task in others:
            _task_entry(task, task_pages)
    if getattr(registry, "errors", None):
        n = len(registry.errors)
        st.warning(f"{n} plugin{'s' if n != 1 else ''} failed to load; the Plugins page lists "
                   f"{'them' if n != 1 else 'it'} with the error.", icon=":material/extension_off:")
