"""Weights I/O: round trip, and a specific readable error for every way a weights folder can be broken."""

import json

import pytest
import torch

from core.weights import (
    WeightsCorrupted,
    WeightsMismatch,
    WeightsMissing,
    load_model,
    read_card,
    save_weights,
    sha256_file,
)


@pytest.fixture
def saved(tmp_path, fixture_task):
    """The fixture task's untrained model saved with a complete card; the card comes back as JSON (a dict), for
    the tests to break."""
    from bench._common import untrained_card

    task = fixture_task
    model = task.build_model(task.config, {})
    save_weights(tmp_path, model, untrained_card(task, task.config, {}, model))
    return task, model, json.loads((tmp_path / "card.json").read_text()), tmp_path


def test_round_trip(saved):
    task, model, card, folder = saved
    loaded = load_model(task, folder)
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    assert card["num_params"] == sum(p.numel() for p in model.parameters())
    assert card["weights_sha256"] == sha256_file(folder / "model.safetensors")
    assert not loaded.training and loaded.runtime.card.metrics["accuracy"] == 0.5


def test_missing_files(tmp_path, fixture_task):
    with pytest.raises(WeightsMissing, match="card.json"):
        load_model(fixture_task, tmp_path)


def test_missing_weights_names_the_fix(saved):
    task, _, _, folder = saved
    (folder / "model.safetensors").unlink()
    with pytest.raises(WeightsMissing) as e:
        load_model(task, folder)
    assert "model.safetensors" in str(e.value) and "python -m core.train fixture_sign" in str(e.value)


def test_truncated(saved):
    task, _, _, folder = saved
    p = folder / "model.safetensors"
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(WeightsCorrupted, match="does not match its card"):
        load_model(task, folder)


def test_corrupted_file_is_caught_even_when_its_checksum_matches(saved):
    task, _, card, folder = saved
    p = folder / "model.safetensors"
    p.write_bytes(b"\x00garbage" * 10)
    card["weights_sha256"] = sha256_file(p)  # the card tells the truth about the garbage: safetensors refuses it
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(WeightsCorrupted, match="cannot be read"):
        load_model(task, folder)


def test_card_that_lies_about_checksum(saved):
    task, _, card, folder = saved
    card["weights_sha256"] = "0" * 64
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(WeightsCorrupted):
        load_model(task, folder)


def test_mismatched_config(saved):
    task, _, card, folder = saved
    card["config"] = {**card["config"], "hidden_size": 32}  # the file holds hidden 16
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(WeightsMismatch, match="shape mismatch"):
        load_model(task, folder)


def test_bad_card_json(saved):
    task, _, _, folder = saved
    (folder / "card.json").write_text("{not json")
    with pytest.raises(WeightsCorrupted, match="not valid JSON"):
        read_card(folder)


def test_no_pickle_in_weights(saved):
    *_, folder = saved
    head = (folder / "model.safetensors").read_bytes()[:8]
    assert int.from_bytes(head, "little") < 10_000  # safetensors header length, not a pickle/zip magic
