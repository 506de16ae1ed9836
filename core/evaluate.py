"""A card's metrics beside recomputed ones: which match. ``python -m core.evaluate <task>`` (core.cli.evaluate)
recomputes a task's test metrics from its committed weights with it."""

from __future__ import annotations

import sys


def compare(card_metrics: dict, metrics: dict, tol: float) -> list[tuple[str, float, float, bool]]:
    rows = []
    for k, want in card_metrics.items():
        if not isinstance(want, (int, float)):
            continue
        got = metrics.get(k)
        ok = got is not None and abs(float(got) - float(want)) <= tol * max(1.0, abs(float(want)))
        rows.append((k, float(want), float("nan") if got is None else float(got), ok))
    return rows


if __name__ == "__main__":  # python -m core.evaluate: the command, kept in core.cli
    from core.cli.evaluate import main

    sys.exit(main())
