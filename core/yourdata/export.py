"""Take it home: the trained weights and a ready plugin folder, each as a zip made in memory.

    weights_zip(task, result, data_bytes) -> bytes   <name>/model.safetensors + card.json (core.weights' format;
                                                      the other cells as variant-<cell>.safetensors)
    plugin_zip(task, table, title) -> bytes          <name>/ (what core.new_task writes for the shape: __init__.py,
                                                      page.py, __main__.py, plus spec.json and README.md) and
                                                      <name>-data/<file> (the person's rows, formulas escaped)

Drop ``<name>/`` into ``tasks/`` and ``python -m core.train <name> --data-dir <name>-data`` trains it; put the
weights folder at ``weights/<name>/`` and the app serves the model trained on the page.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import zipfile
from dataclasses import asdict
from pathlib import Path

from core.modelcard import DataFile, Dataset, ModelCard, Training, Variant
from core.new_task import TEMPLATES, ScaffoldError, class_name, render_template, validate_name
from core.shape_words import shape_words
from core.weights import save_weights
from core.yourdata.build import CELLS, RunResult
from core.yourdata.parse import Table, safe_file_name, write_table
from core.yourdata.task import YourDataTask

INIT = '''"""{title}

A {shape_words} task made on RNN Lab's "Your data" page from {file}.

    python -m core.train {name} --data-dir {name}-data     # trains every cell compared on the page: {cells}
    python -m core.evaluate {name} --data-dir {name}-data
    streamlit run streamlit_app.py                         # its page is in the navigation

load_data reads {file} in {name}-data/ exactly as the page read it (delimiter, header, columns and checks are in
spec.json, with the tokens, the model sizes, a sample of the rows for the synthetic data and the demos).
{base_module}.{Base} reads the table; {core_class} (its ``head``) builds the model and owns the batches, loss,
metrics with their baselines and answers. Make it yours from here.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.yourdata.parse import Table, write_table
from {base_module} import {Base}

SPEC = json.loads(Path(__file__).with_name("spec.json").read_text(encoding="utf-8"))


class {Class}({Base}):
    name = "{name}"
    title = "{title}"
    page = f"{{__name__}}.page:render"  # this package's page.py
    data_subdir = "{name}"  # --data-dir DIR, else $RNNLAB_DATA_{NAME}, else $RNNLAB_DATA_ROOT/{name}
    data_source = "your own data ({file}), brought to RNN Lab's Your data page"  # file name: [A-Za-z0-9._-] only
    spec = SPEC

    def load_data(self, data_dir: Path):
        """{file} in data_dir (or its only .csv/.tsv/.txt file), read with the page's delimiter and header."""
        return super().load_data(data_dir)


def write_example_data(data_dir: Path) -> Path:
    """The sample rows kept in spec.json, written in the file's own format (to try core.train --data-dir)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SPEC["file"]
    table = Table(SPEC["columns"], SPEC["sample"], [], SPEC["delimiter"], SPEC["header"])
    path.write_text(write_table(table), encoding="utf-8")
    return path


TASK = {Class}()
'''

MAIN = '''"""Write the sample rows in the real format, to try core.train --data-dir on them:

    python -m tasks.{name} DIR
"""

import sys

from . import write_example_data

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tasks.{name} DIR")
    print(f"wrote {{write_example_data(sys.argv[1])}}")
'''

README = """# {title}

Made on RNN Lab's *Your data* page: a {shape_words} network for `{file}`.

From the root of an RNN Lab checkout:

```bash
unzip {name}-plugin.zip -d /tmp/{name} && mv /tmp/{name}/{name} tasks/ && mv /tmp/{name}/{name}-data .
python -m core.train {name} --data-dir {name}-data      # writes weights/{name}/
streamlit run streamlit_app.py                          # its page is in the navigation, with its shape
```

Or serve the model trained on the page as it is: unzip `{name}-weights.zip` into `weights/`.
"""

FORECAST_PAGE = '''"""The page of {title}: a forecast of the next steps of a time series.

The shared frame (header, Try it / Inspect / Model card) plus this task's own Try-it tab.

Imported only by the app; Streamlit and core.ui are imported here, never in the task's __init__.py.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st


def render(task):
    from core.ui.page import task_page

    task_page(task, try_it=lambda model: _try_it(task, model))


def _try_it(task, model):
    """Draw the Try-it tab; return the current input, which the Inspect tab then takes apart."""
    from core.ui.charts import forecast_lines
    from core.ui.widgets import answer, md_escape, text_input_with_demos
    from core.yourdata.forecast import forecast_rows

    W, H = model.runtime.meta["window"], model.runtime.meta["horizon"]
    text = text_input_with_demos(task, key="q", label=f"The last {{W}} values (empty: the end of the series)")
    out = answer(task, model, text, "forecasting")  # a bad input: a warning and None
    if out is None:
        return None
    st.markdown(f"**The next {{H}} values of {{md_escape(out['target'])}}:** "
                + ", ".join(f"{{v:.5g}}" for v in out["forecast"]))
    chart = forecast_lines(pd.DataFrame(forecast_rows(out)), alt.X("step:Q", title="steps from now"), 260)
    st.altair_chart(chart, width="stretch")
    return text
'''

REGRESSION_PAGE = '''"""The page of {title}: a sequence -> one number (many-to-one regression).

The shared frame (header, Try it / Inspect / Model card) plus this task's own Try-it tab.

Imported only by the app; Streamlit and core.ui are imported here, never in the task's __init__.py.
"""

from __future__ import annotations

import streamlit as st


def render(task):
    from core.ui.page import task_page

    task_page(task, try_it=lambda model: _try_it(task, model))


def _try_it(task, model):
    """Draw the Try-it tab; return the current input, which the Inspect tab then takes apart."""
    from core.ui.widgets import answer, regression_answer, text_input_with_demos

    text = text_input_with_demos(task, key="q", label="Text")  # ?q=... in the URL shares the input
    if not text.strip():
        st.info("Type a text or pick a demo.")
        return None
    out = answer(task, model, text, "predicting")  # a bad input: a warning and None
    if out is None:
        return None
    regression_answer(out)
    return text
'''



def check_name(name: str) -> str:
    """A task name the scaffold accepts (lower_snake_case, not a keyword, at most 40 characters)."""
    try:
        validate_name(name, Path(tempfile.gettempdir()) / "rnnlab-no-such-dir" / name)
    except ScaffoldError as exc:
        from core.yourdata.parse import DataError

        raise DataError(str(exc).replace(" (nothing was written)", "")) from None
    return name


def check_title(title: str) -> str:
    """The scaffold's rule for a title: 1-60 characters, no quotes, backslashes or braces."""
    from core.yourdata.parse import DataError

    if not title or len(title) > 60 or any(c in title for c in '"\\{}') or not title.isprintable():
        raise DataError("The title must be 1-60 characters, without quotes, backslashes or braces.")
    return title


def suggest_name(file_name: str) -> str:
    stem = "".join(c if c.isalnum() else "_" for c in Path(file_name).stem.lower()).strip("_")
    stem = "_".join(p for p in stem.split("_") if p)[:30]
    if not stem or not stem[0].isalpha() or not stem.isascii():
        stem = "my_data"
    return f"my_{stem}" if not stem.startswith("my_") else stem


def card_for(task: YourDataTask, result: RunResult, data_bytes: bytes) -> ModelCard:
    """The card core.train would write, before save_weights adds the weights file's checksum and size."""
    runs, served = result.runs, result.served
    run = runs[served]
    comparison = {label: Variant(config=r.config, val=r.fit.best_val, test=r.test, num_params=r.num_params,
                                 epochs=len(r.fit.history), best_epoch=r.fit.best_epoch,
                                 train_seconds=round(r.seconds, 1), stopped=r.stopped)
                  for label, r in runs.items()}
    recipe = asdict(task.recipe)
    recipe.update(max_minutes=round(result.per_cell_seconds / 60, 3), epochs=len(run.fit.history))
    split = "time-ordered, the last part held out" if task.choice.kind == "forecast" else "80/10/10 split (seed 0)"
    dataset = Dataset(description=f"{task.spec.get('file')}: your own data, {split}",
                      source=task.data_source, synthetic=False,
                      files=[DataFile(path=task.spec.get("file", "data"), sha256=hashlib.sha256(data_bytes).hexdigest(),
                                      bytes=len(data_bytes))])
    training = Training(command=f"trained live on the Your data page with core.train.fit ({result.steps} steps per "
                                f"cell at most); to retrain: python -m core.train {task.name} --data-dir "
                                f"{task.name}-data",
                        seed=0, device="cpu", profile="default", world_size=1, recipe=recipe,
                        wall_seconds=round(result.seconds, 1))
    return ModelCard(name=task.name, title=task.title, shape=task.shape, summary=task.summary, config=run.config,
                     metrics=run.test, val_metrics=run.fit.best_val, served_variant=served, comparison=comparison,
                     history={label: list(r.fit.history) for label, r in runs.items()},
                     metric=task.recipe.metric, higher_is_better=task.recipe.higher_is_better, anchors={},
                     meta=dict(run.model.runtime.meta), dataset=dataset, training=training)


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            z.writestr(path, data)
    return buf.getvalue()


def weights_files(task: YourDataTask, result: RunResult, data_bytes: bytes) -> dict[str, bytes]:
    """{file name: bytes} of a weights folder: model.safetensors, card.json, variant-<cell>.safetensors."""
    card = card_for(task, result, data_bytes)
    served = result.runs[result.served].model
    extra = {label: r.model for label, r in result.runs.items() if label != result.served}
    with tempfile.TemporaryDirectory() as tmp:
        save_weights(Path(tmp), served.cpu(), card, {k: m.cpu() for k, m in extra.items()})
        return {p.name: p.read_bytes() for p in sorted(Path(tmp).iterdir())}


def weights_zip(task: YourDataTask, result: RunResult, data_bytes: bytes) -> bytes:
    return _zip({f"{task.name}/{k}": v for k, v in weights_files(task, result, data_bytes).items()})


def core_class(task: YourDataTask) -> str:
    """The class that trains and serves the exported plugin: its shape class (core.generic), or the forecaster's
    network for a time series (ForecastTask keeps its own batches, loss and metrics)."""
    if task.choice.kind == "forecast":
        return "core.shapes.ManyToOne"
    return f"core.generic.{type(task.head).__name__}"


def plugin_files(task: YourDataTask, table: Table) -> dict[str, bytes]:
    """{path in the zip: bytes}: the plugin folder <name>/ and the data folder <name>-data/."""
    name, title, shape = task.name, task.title, task.shape
    check_name(name)
    fields = dict(name=name, NAME=name.upper(), title=title, Class=class_name(name), shape=shape)
    forecast, regression = task.choice.kind == "forecast", task.choice.kind == "regression"
    page = FORECAST_PAGE.format(title=title) if forecast else REGRESSION_PAGE.format(title=title) if regression else \
        render_template((TEMPLATES / f"page_{shape}.py.tmpl").read_text(encoding="utf-8"), **fields)
    if task.choice.tokens == "word":
        page = page.replace("after reading each character", "after reading each word")
    spec = dict(task.spec)
    check_title(title)
    file = safe_file_name(spec.get("file", ""))
    spec["file"] = file
    cells = ", ".join(c for c in (spec.get("variants") or ["GRU"]) if c in CELLS)
    # only checked names go into Python source: every string of the person's (columns, rows) stays in spec.json
    base = {"forecast": ("core.yourdata.forecast", "ForecastTask"),
            "regression": ("core.yourdata.regression", "RegressionTask")}.get(task.choice.kind,
                                                                            ("core.yourdata.task", "YourDataTask"))
    info = dict(fields, shape_words="forecasting (many-to-one over time windows)" if forecast else
                "many-to-one regression (a sequence -> one number)" if regression else shape_words(shape),
                file=file, core_class=core_class(task), cells=cells, base_module=base[0], Base=base[1])
    init = INIT.format(**info)
    compile(init, f"{name}/__init__.py", "exec")  # a template bug must never reach a person
    compile(page, f"{name}/page.py", "exec")
    return {f"{name}/__init__.py": init.encode(), f"{name}/page.py": page.encode(),
            f"{name}/__main__.py": MAIN.format(name=name).encode(),
            f"{name}/spec.json": (json.dumps(spec, indent=1, ensure_ascii=False) + "\n").encode(),
            f"{name}/README.md": README.format(**info).encode(),
            f"{name}-data/{file}": write_table(table).encode()}


def plugin_zip(task: YourDataTask, table: Table) -> bytes:
    return _zip(plugin_files(task, table))
