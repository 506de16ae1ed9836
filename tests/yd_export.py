"""Shared by the Your data tests: an exported plugin (core.yourdata.export) unpacked and its page drawn."""

from __future__ import annotations

from pathlib import Path


def unzip(files: dict[str, bytes], root: Path) -> None:
    """Write export's {relative path: bytes} under ``root``."""
    for path, data in files.items():
        p = Path(root) / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


def render_exported_page(task, table, result, raw, tmp_path: Path, folder: str, timeout: int = 120):
    """Export ``task`` (its plugin into tmp_path/``folder``, its weights beside it), discover it from there and draw
    its page in AppTest; returns the AppTest after the run."""
    from streamlit.testing.v1 import AppTest

    from core.yourdata.export import plugin_files, weights_files

    unzip(plugin_files(task, table), tmp_path / folder)
    unzip(weights_files(task, result, raw), tmp_path / "w" / task.name)
    script = f"""
import sys
sys.path.insert(0, {str(tmp_path)!r})
from core.registry import discover
task = discover(__import__("pathlib").Path({str(tmp_path / folder)!r}), entry_points_on=False).get({task.name!r})
task.weights_dir = {str(tmp_path / "w" / task.name)!r}
from {folder}.{task.name}.page import render
render(task)
"""
    return AppTest.from_string(script, default_timeout=timeout).run()


def export_and_discover(task, table, result, raw, tmp_path: Path, folder: str, monkeypatch):
    """Export ``task`` as a plugin package into tmp_path/``folder`` with its weights under tmp_path/weights/<name>,
    and make core.registry.discover find only that folder's plugins (as the commands do); returns the Registry."""
    from core import registry
    from core.yourdata.export import plugin_files, weights_files

    unzip(plugin_files(task, table), tmp_path / folder)
    unzip(weights_files(task, result, raw), tmp_path / "weights" / task.name)
    monkeypatch.syspath_prepend(str(tmp_path))
    real = registry.discover
    monkeypatch.setattr(registry, "discover", lambda *a, **k: real(tmp_path / folder, entry_points_on=False))
    return registry.discover()


def retrain_exported(name: str, tmp_path: Path, folder: str) -> tuple[dict, Path]:
    """``python -m core.train <name>`` on the exported plugin's own data folder (tmp_path/``folder``/<name>-data;
    3 steps, the GRU only) into tmp_path/retrained: (its card.json parsed, the folder)."""
    import json

    from core.cli.train import main as train_main

    out = tmp_path / "retrained"
    rc = train_main([name, "--data-dir", str(tmp_path / folder / f"{name}-data"), "--out", str(out),
                     "--max-steps", "3", "--epochs", "1", "--no-progress", "--variants", "GRU"])
    assert rc == 0
    return json.loads((out / "card.json").read_text()), out
