"""Calibrated confidence (core/calibrate.py): the temperature fit, the expected calibration error, the card's
calibration record, and the classifiers answering with the temperature the card holds."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from core.calibrate import (
    calibration_record,
    can_calibrate,
    expected_calibration_error,
    fit_temperature,
    scores,
    temperature_of,
)
from core.modelcard import ModelCard
from core.paths import WEIGHTS_ROOT


def _overconfident(n: int = 20000, classes: int = 3, true_t: float = 2.5, seed: int = 0):
    """Logits z whose labels are drawn from softmax(z / true_t): the raw softmax is over-confident by true_t."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, classes, generator=g) * 4  # (N, C)
    y = torch.multinomial((z / true_t).softmax(-1), 1, generator=g)[:, 0]  # (N,)
    return z, y


def test_fit_recovers_the_temperature_the_labels_were_drawn_with():
    z, y = _overconfident(true_t=2.5)
    assert fit_temperature(z, y) == pytest.approx(2.5, rel=0.06)
    z, y = _overconfident(true_t=0.5, seed=1)  # under-confident logits: T below 1
    assert fit_temperature(z, y) == pytest.approx(0.5, rel=0.06)


def test_temperature_lowers_ece_and_never_changes_the_answer():
    z, y = _overconfident(true_t=3.0)
    t = fit_temperature(z, y)
    before, after = scores(z, y), scores(z, y, t)
    assert before["ece"] > 0.1 and after["ece"] < 0.02
    assert after["nll"] < before["nll"] and after["accuracy"] == before["accuracy"]


def test_ece_by_hand():
    # every answer 80% sure and 8 of 10 right: calibrated
    probs = torch.tensor([[0.8, 0.2]] * 10)
    labels = torch.tensor([0] * 8 + [1] * 2)
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-6)
    # 90% sure, half right: off by 0.4; two bins of 5 answers each, off by 0.4 and 0.1 -> 0.25
    assert expected_calibration_error(torch.tensor([[0.9, 0.1]] * 10), torch.tensor([0, 1] * 5)) == pytest.approx(0.4)
    probs = torch.tensor([[0.9, 0.1]] * 5 + [[0.6, 0.4]] * 5)
    labels = torch.tensor([0, 0, 0, 0, 1] + [0, 0, 0, 0, 0])
    assert expected_calibration_error(probs, labels) == pytest.approx(0.5 * 0.1 + 0.5 * 0.4)
    assert expected_calibration_error(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)) == 0.0


def test_every_classifier_can_be_calibrated_and_the_others_not():
    from core.registry import discover

    tasks = discover().tasks
    assert {n for n, t in tasks.items() if can_calibrate(t)} >= {"sentiment", "image_classification", "names_origin"}
    assert not can_calibrate(tasks["ner"]) and not can_calibrate(tasks["translation"])


def test_training_writes_a_calibration_the_card_reads_back_and_predict_uses(tmp_path):
    from core.cli.train import main as train_main
    from core.serving import load_served
    from tasks.sentiment import TASK

    out = tmp_path / "w"
    assert train_main(["sentiment", "--synthetic", "--out", str(out), "--epochs", "1", "--max-steps", "3",
                       "--variants", "bilstm", "--no-progress"]) == 0
    card = ModelCard.from_json((out / "card.json").read_text())
    cal = card.calibration
    assert cal is not None and cal.fit_on == "validation" and cal.temperature > 0
    assert cal.test_before["accuracy"] == cal.test_after["accuracy"]
    assert "core.train sentiment" in cal.command
    served = load_served(TASK, out)
    model = served.answering()
    assert temperature_of(model) == pytest.approx(cal.temperature)
    text = "a warm , funny film"
    calibrated = TASK.predict(model, text)
    model.runtime = dataclasses.replace(model.runtime, temperature=1.0)
    raw = TASK.predict(model, text)
    assert calibrated["label"] == raw["label"]  # the temperature changes the confidence, never the answer
    logit_margin = abs(torch.logit(torch.tensor(raw["p_positive"])))
    assert abs(torch.logit(torch.tensor(calibrated["p_positive"]))) == pytest.approx(
        float(logit_margin) / cal.temperature, rel=1e-3)
    assert calibrated["prefix_p"][-1] == pytest.approx(calibrated["p_positive"], abs=1e-4)  # the same model


def test_record_is_fitted_on_validation_only():
    from tasks.sentiment import TASK

    splits = TASK.synthetic_data(0)
    torch.manual_seed(0)
    model = TASK.build_model({**TASK.config, **TASK.recipe.variants["bilstm"]}, splits.meta).eval()
    rec = calibration_record(TASK, model, splits, "test", "served variant")
    z, y = TASK.class_logits(model, splits.val)
    assert rec.temperature == pytest.approx(fit_temperature(z, y))
    assert rec.val_after == scores(z, y, rec.temperature)


@pytest.mark.parametrize("card_path", [WEIGHTS_ROOT / "sentiment" / "card.json",
                                       WEIGHTS_ROOT / "image_classification" / "card.json"], ids=["sentiment", "cat/dog"])
def test_shipped_cards_are_calibrated(card_path):
    if not card_path.exists():
        pytest.skip("not trained")
    cal = json.loads(card_path.read_text())["calibration"]
    assert cal["fit_on"] == "validation" and cal["test_after"]["ece"] <= 0.05
    assert cal["test_after"]["ece"] < cal["test_before"]["ece"]
    assert cal["test_after"]["accuracy"] == cal["test_before"]["accuracy"]
