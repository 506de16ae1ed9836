"""The task for a Your data spec, by its kind: the page, the export and the plugins build their task from a spec.

    task_for_spec(spec, name=..., title=...) -> YourDataTask | ForecastTask | RegressionTask
"""

from __future__ import annotations

from core.yourdata.forecast import ForecastTask
from core.yourdata.regression import RegressionTask
from core.yourdata.task import YourDataTask

KINDS: dict[str, type[YourDataTask]] = {
    "sequence": YourDataTask,  # rows are examples: any of the five shapes
    "forecast": ForecastTask,  # the rows are the steps of a time series
    "regression": RegressionTask,  # a sequence -> one number
}


def task_for_spec(spec: dict, **fields) -> YourDataTask:
    """The task of ``spec``'s kind (spec["choice"]["kind"], "sequence" when absent); ``fields`` as for the class
    (name, title, ...)."""
    kind = (spec or {}).get("choice", {}).get("kind", "sequence")
    if kind not in KINDS:
        raise ValueError(f"unknown kind of data {kind!r}; known: {', '.join(KINDS)}")
    return KINDS[kind](spec, **fields)
