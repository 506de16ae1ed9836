"""The typed model card (core/modelcard.py): every card in the repository reads and writes back to the same JSON,
a card that does not fit the schema is a clear error naming the file and the field, the one rule for shortening
paths (core/paths.py), and the one rule for "better" (core.train.better)."""

import json
import math
from pathlib import Path

import pytest

from core.modelcard import CardError, EpochRecord, ModelCard, Variant
from core.paths import REPO, command_line, display_path, shown_command
from core.train import better
from core.weights import CARD_FILE, WeightsCorrupted, read_card, write_card

CARDS = sorted({*REPO.glob("weights/*/card.json"), *REPO.glob("examples/*/*/weights/*/card.json")})


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_the_repository_has_cards():
    assert len(CARDS) >= 2, "the committed weights' cards are missing"


@pytest.mark.parametrize("path", CARDS, ids=_rel)
def test_every_card_reads_and_writes_back_the_same_json(path, tmp_path):
    text = path.read_text(encoding="utf-8")
    card = read_card(path.parent)
    assert isinstance(card, ModelCard) and card.served_variant in card.comparison
    assert all(isinstance(r, Variant) for r in card.comparison.values())
    assert all(isinstance(e, EpochRecord) for recs in card.history.values() for e in recs)
    assert json.loads(card.to_json()) == json.loads(text)
    write_card(tmp_path, card)
    assert (tmp_path / CARD_FILE).read_text(encoding="utf-8") == text, "fields in the file's order, same format"


def _broken(tmp_path: Path, change) -> Path:
    data = json.loads(CARDS[0].read_text(encoding="utf-8"))
    change(data)
    (tmp_path / CARD_FILE).write_text(json.dumps(data), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("change, field", [
    (lambda c: c.update(colour="blue"), "colour"),
    (lambda c: c.pop("metric"), "metric"),
    (lambda c: next(iter(c["comparison"].values())).pop("best_epoch"), "best_epoch"),
    (lambda c: c["dataset"].update(files="all of them"), "dataset.files"),
    (lambda c: c["training"].update(seed="zero"), "training.seed"),
    (lambda c: c.update(num_params=True), "num_params"),
    (lambda c: next(iter(c["history"].values()))[0].update(loss=1.0), "loss"),
])
def test_a_card_that_does_not_fit_names_the_file_and_field(tmp_path, change, field):
    folder = _broken(tmp_path, change)
    with pytest.raises(WeightsCorrupted) as err:
        read_card(folder, fix="python -m core.train x")
    msg = str(err.value)
    assert CARD_FILE in msg and field in msg and msg.endswith("Fix it with: python -m core.train x")


def test_optional_fields_may_be_absent_and_stay_absent():
    data = json.loads(CARDS[0].read_text(encoding="utf-8"))
    data.pop("ensemble", None)
    data["training"].pop("stages", None)
    card = ModelCard.from_dict(data)
    assert card.ensemble is None and card.training.stages is None
    assert "ensemble" not in card.to_dict() and "stages" not in card.to_dict()["training"]
    with pytest.raises(CardError, match="must be an object"):
        ModelCard.from_dict([1, 2, 3])


# ---- paths as shown ------------------------------------------------------------------------------------------------

def test_display_path_near_and_far():
    assert display_path(REPO / "weights" / "ner" / "card.json") == str(Path("weights", "ner", "card.json"))
    far = "/srv/host-a/someone/scratch/runs/cap_small"
    assert display_path(far) == str(Path("...", "scratch", "runs", "cap_small"))  # messages: the last three parts
    assert display_path(far, parts=1) == str(Path("...", "cap_small"))  # the Model card's commands: the name only
    assert display_path(".../tmp/runs/cap_small", parts=1) == str(Path("...", "cap_small"))


def test_recorded_and_shown_commands_apply_the_same_rule():
    far = "/srv/host-a/someone/scratch/runs/cap_small"
    recorded = command_line("python -m core.ensemble", ["x", "--add", f"small={far}", "--out", far, "--grid", "1,0.5"])
    assert recorded == "python -m core.ensemble x --add small=.../scratch/runs/cap_small " \
                       "--out .../scratch/runs/cap_small --grid 1,0.5"
    assert shown_command(recorded) == "python -m core.ensemble x --add small=.../cap_small --out .../cap_small " \
                                      "--grid 1,0.5"
    assert shown_command('python -m core.train "unbalanced') == 'python -m core.train "unbalanced'


# ---- one rule for "better" -----------------------------------------------------------------------------------------

def test_better_has_one_nan_rule():
    nan = math.nan
    assert better(0.5, None, True) and better(nan, None, True)  # something beats nothing
    assert better(0.6, 0.5, True) and not better(0.5, 0.6, True) and not better(0.5, 0.5, True)
    assert better(0.4, 0.5, False) and not better(0.6, 0.5, False)
    assert not better(nan, 0.5, True) and not better(nan, 0.5, False)  # a diverged score never wins
    assert better(0.1, nan, True) and better(9.0, nan, False)  # any number beats a diverged best
    assert not better(nan, nan, True)


def test_the_diagram_without_a_loaded_model_is_the_model_its_card_builds(fixture_task):
    """The Model card of weights that cannot be loaded still draws the model its config and meta build (on the meta
    device), the same diagram as the loaded model's -- not one guessed from the config's field names."""
    from core.ui.card import _describe, architecture_dot

    task = fixture_task
    model = task.build_model(task.config, {})
    built = architecture_dot(task, None, task.config, {})
    assert built == architecture_dot(task, model, task.config)
    assert _describe(model) != _describe(None, task.config), "the config's guess would draw something else"
