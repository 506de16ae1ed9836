"""core.runtime.Runtime: the one typed record a model carries at run time (issue 35), built from a card's meta by
Task.runtime; the contract's input_type check; and no module hanging loose run-time attributes on a model."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest
import torch.nn as nn
from test_generic import Polar, Upper

from core import contract
from core.data import Vocab
from core.runtime import IN_MEMORY, Runtime
from core.task import Demo, Task, check_task

REPO = Path(__file__).resolve().parents[1]


def test_the_record_is_built_from_the_meta_on_every_model_build_model_returns():
    task = Polar()
    splits = task.synthetic_data(0)
    model = task.build_model(dict(task.config), splits.meta)
    rt = model.runtime
    assert isinstance(rt, Runtime) and rt.task == "polar" and rt.variant == IN_MEMORY and rt.card is None
    assert rt.labels == tuple(splits.meta["labels"]) == ("no", "yes")
    assert rt.vocab == Vocab.from_meta(splits.meta) and rt.vocab.fold_case  # the shape classes read case-folding
    assert rt.target_vocab is None and rt.meta is splits.meta and rt.config == task.config
    with pytest.raises(dataclasses.FrozenInstanceError):
        rt.variant = "other"  # frozen: a changed record is a new one (dataclasses.replace)


def test_an_encoder_decoders_record_has_both_vocabularies():
    task = Upper()
    meta = task.synthetic_data(0).meta
    rt = task.build_model(dict(task.config), meta).runtime
    assert rt.vocab.itos[4:] == list(meta["src_vocab"]) and rt.target_vocab.itos[4:] == list(meta["tgt_vocab"])
    assert rt.labels == ()


def test_a_loaded_models_record_comes_from_its_card(tmp_path):
    """load_model: the record of the card's meta and config, with the card and the variant it loaded."""
    from test_ui_shell import make_task

    from core.weights import load_model, read_card

    task = make_task(tmp_path / "w")
    card = read_card(task.weights_path())
    served, other = load_model(task), load_model(task, variant="gru")
    assert served.runtime == task.runtime(card.meta, card.config).loaded(card, "lstm")
    assert other.runtime.variant == "gru" and other.runtime.config == card.comparison["gru"].config
    assert served.runtime.card == card and served.runtime.task == task.name


@pytest.mark.parametrize("name, key, specials", [("translation", "src_vocab", ("<pad>", "<s>", "</s>", "<unk>")),
                                                 ("sentiment", "vocab", ("<pad>", "<unk>"))])
def test_hand_written_tasks_read_their_stored_vocabularies_id_for_id(name, key, specials):
    """A task that stores every id's token (specials first) reads it back with the same ids."""
    import json

    from core.registry import discover

    task = discover().get(name)
    meta = json.loads((task.weights_path() / "card.json").read_text())["meta"]
    rt = task.runtime(meta, {})
    assert rt.vocab.itos == list(meta[key]) and rt.vocab.specials == specials
    assert rt.vocab.stoi == {w: i for i, w in enumerate(meta[key])}


class _Settings(Polar):
    name = "settings_task"
    input_type = dict


def test_the_contract_holds_demos_to_the_declared_input_type():
    task = _Settings()
    model = task.build_model(dict(task.config), task.synthetic_data(0).meta).eval()
    problems = contract.demos(task, model)
    assert problems == ["demo 'a row' gives predict a str, not the task's input_type (dict)"]
    task.demos = lambda: [Demo("settings", {"text": "acde"})]
    assert contract.demos(task, model) == []


def test_the_contract_wants_the_record_on_the_model():
    task = Polar()
    model = task.build_model(dict(task.config), task.synthetic_data(0).meta).eval()
    del model.runtime
    assert "run-time record" in contract.demos(task, model)[0]


def test_check_task_wants_input_type_to_be_types():
    task = Polar()
    task.input_type = "text"
    assert any("input_type" in p for p in check_task(task))


# ---- no loose run-time attributes ------------------------------------------------------------------------------------

RUNTIME_NAMES = {"vocab", "stoi", "itos", "labels", "meta", "card", "config", "variant", "src_vocab", "tgt_vocab",
                 "src_stoi", "tgt_stoi", "train_max_words", "temperature", "label_smoothing"}
MODEL_NAMES = {"model", "m", "ens", "first", "net", "tagger", "member", "fitted", "served_model"}


def model_name(node: ast.AST) -> str | None:
    """``model`` for the expressions ``model`` and ``run.model`` (a name of MODEL_NAMES, alone or as an attribute)."""
    name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
    return name if name in MODEL_NAMES else None


def loose_runtime(source: str) -> list[str]:
    """What a module's source does with a model's run-time needs outside model.runtime: ``model.vocab = ...``,
    ``setattr(ens, ...)``, ``hasattr(model, "vocab")`` / ``getattr(model, "meta", ...)``, reads such as
    ``model.labels`` -- except reads inside an nn.Module class (an ensemble reading its members' constructor
    attributes). Pure."""
    tree = ast.parse(source)
    modules = [range(c.lineno, c.end_lineno + 1) for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
               and any((b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "")) == "Module" for b in c.bases)]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and model_name(node.value) and node.attr in RUNTIME_NAMES:
            if isinstance(node.ctx, ast.Load) and any(node.lineno in r for r in modules):
                continue
            found.append(f"line {node.lineno}: {model_name(node.value)}.{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args and model_name(node.args[0]):
            attr = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) else None
            if node.func.id == "setattr" or (node.func.id in ("hasattr", "getattr") and attr in RUNTIME_NAMES):
                found.append(f"line {node.lineno}: {node.func.id}({model_name(node.args[0])}, {attr!r})")
    return sorted(found, key=lambda f: int(f.split(":")[0].split()[1]))


def test_the_checker_finds_each_loose_form():
    src = ("model.vocab = v\nsetattr(ens, name, value)\nif hasattr(model, 'stoi'): pass\n"
           "x = getattr(run.model, 'meta', None)\ny = model.labels[0]\nz = model.runtime.labels\nm.own = 1\n"
           "class E(nn.Module):\n    def f(self, first):\n        first.labels = 1\n        return first.labels\n")
    assert loose_runtime(src) == ["line 1: model.vocab", "line 2: setattr(ens, None)", "line 3: hasattr(model, 'stoi')",
                                  "line 4: getattr(model, 'meta')", "line 5: model.labels", "line 10: first.labels"]


def test_no_module_hangs_run_time_needs_on_a_model():
    """Tasks, core and the example plugin read what a model needs at run time from model.runtime only."""
    files = [p for d in ("core", "tasks", "examples") for p in (REPO / d).rglob("*.py")]
    files += list((REPO / "core" / "templates").glob("*.tmpl"))
    def source(p: Path) -> str:  # a template's {{Name}} fields as plain names, so that it parses
        return re.sub(r"\{\{(\w+)\}\}", r"field_\1", p.read_text(encoding="utf-8"))

    bad = {str(p.relative_to(REPO)): hits for p in files if (hits := loose_runtime(source(p)))}
    assert not bad, bad


def test_build_model_of_a_plain_subclass_gets_the_record():
    """Task.__init_subclass__: any plugin's build_model, however written, returns a module with its record."""

    class Bare(Task):
        name = "bare"

        def build_model(self, config, meta):
            return nn.Linear(2, len(meta["labels"]))

    model = Bare().build_model({}, {"labels": ["x", "y"]})
    assert model.runtime.labels == ("x", "y") and model.runtime.task == "bare" and model.runtime.vocab is None
