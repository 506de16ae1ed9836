"""The served model: what the app and ``core.evaluate`` answer with for a task, loaded by one function.

A task's weights folder holds one served variant (``model.safetensors``), perhaps other kept variants
(``variant-<name>.safetensors``, for pages that compare them) and perhaps an ensemble on its card (``core.ensemble``:
the served variant and others, mixed with fixed weights). ``load_served(task)`` reads all of that into one
``Served`` record, and ``served.answering(alone)`` says which module answers: the ensemble when the card has one
(unless ``alone``: the served variant by itself, as the pages' "switch the ensemble off" toggle asks), else the
served model. A task's ``predict`` / ``evaluate`` / ``inspect_*`` just take that module: they never look for an
ensemble themselves.

An ensemble whose members cannot be loaded does not take the model down: the served variant answers alone and
``served.ensemble_problem`` says why (the app shows it, ``core.evaluate`` reports it).

Nothing here imports Streamlit: ``core.ui.load`` caches ``Served`` objects for the app.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
import torch.nn as nn

from core.modelcard import ModelCard
from core.paths import display_path
from core.weights import CARD_FILE, WeightsError, WeightsMismatch, load_model


@dataclass(frozen=True)
class EnsembleMembers:
    """Who answers inside a served ensemble, for captions ("an ensemble: attention × 0.60 + plain × 0.40")."""

    names: tuple[str, ...]  # the card's variant names, the served variant first
    weights: tuple[float, ...]  # their mixing weights, normalised to sum to 1, in the same order


@dataclass(frozen=True)
class EnsembleWords:
    """How a task's page names its served variant and its ensemble on screen (``Task.ensemble_words``). The shared
    page frame (core.ui.page) draws the toggle and the caption with these words for every task that ensembles."""

    alone: str  # the served variant as the toggle and caption name it, e.g. "the attention model"
    verb: str  # what the answer is, in the caption "<verb> by an ensemble": "Written", "Tagged", "Answered"
    help: str  # the toggle's tooltip: what the ensemble is and what switching it off shows
    how: str  # the caption's end: how the ensemble mixes its members, for a student


DEFAULT_ENSEMBLE_WORDS = EnsembleWords(
    alone="the served model", verb="Answered",
    help="The app answers with an ensemble of several trained models. Switch it off to see the served model alone.",
    how="their probabilities are mixed with these weights (chosen on validation; see the Model card).")


@dataclass
class Served:
    """One task's served system: the served variant, its card, and the ensemble the card asks for, if any."""

    model: nn.Module  # the served variant: eval mode, with its run-time record .runtime (core.weights)
    card: ModelCard  # the weights card the model was loaded from (card.json)
    ensemble: nn.Module | None = None  # the card's ensemble (core.ensemble.build), None when it has none or failed
    ensemble_problem: str | None = None  # why the card's ensemble could not be built; None when it was (or none)
    kept_variants: tuple[str, ...] = field(default_factory=tuple)  # other variants with weights beside the served

    @property
    def has_ensemble(self) -> bool:
        """True when an ensemble answers by default (the page then offers "this model alone")."""
        return self.ensemble is not None

    def answering(self, alone: bool = False) -> nn.Module:
        """The module that answers: the ensemble when there is one and not ``alone``, else the served variant."""
        return self.ensemble if self.ensemble is not None and not alone else self.model

    @property
    def members(self) -> EnsembleMembers | None:
        """The ensemble's members and weights (None without an ensemble)."""
        if self.ensemble is None:
            return None
        names = self.card.ensemble.members if self.card.ensemble is not None else []
        return EnsembleMembers(tuple(names), tuple(float(w) for w in getattr(self.ensemble, "weights", [])))


def kept_variants(card: ModelCard) -> tuple[str, ...]:
    """The card's variants whose weights are kept beside the served model's (not the served one itself)."""
    return tuple(card.variant_weights())


def load_served(task, folder: Path | str | None = None, device: str | torch.device = "cpu") -> Served:
    """Load a task's served system from its weights folder (default: the task's). Raises a WeightsError when the
    served variant itself cannot be loaded; a broken ensemble member only sets ``ensemble_problem``."""
    folder = Path(folder or task.weights_path())
    model = load_model(task, folder, device)
    card = model.runtime.card
    served = Served(model=model, card=card, kept_variants=kept_variants(card))
    if card.ensemble is not None:
        try:
            served.ensemble = _build_ensemble(task, model, card, folder, device, task.train_command())
        except WeightsError as exc:  # a broken member: the served variant still answers, and says it is alone
            served.ensemble_problem = str(exc)
    cal = card.calibration  # the temperature goes to the module it was fitted for (core.calibrate)
    if cal is not None:
        fitted = served.ensemble if cal.answering == "ensemble" else served.model
        if fitted is not None:
            fitted.runtime = replace(fitted.runtime, temperature=float(cal.temperature))
    return served


def _build_ensemble(task, model: nn.Module, card: ModelCard, folder: Path, device, fix: str) -> nn.Module:
    """The card's ensemble (card.ensemble: members and weights, the served variant first), its other members
    loaded from their variant files like any variant."""
    from core.ensemble import build

    members, weights = list(card.ensemble.members), list(card.ensemble.weights)
    if not members or len(members) != len(weights) or members[0] != card.served_variant:
        raise WeightsMismatch(f"model card {display_path(folder / CARD_FILE)} has an ensemble whose members "
                              f"({members}) and weights ({weights}) do not fit its served variant. Fix it with: {fix}")
    models = [model] + [load_model(task, folder, device, variant=name, card=card) for name in members[1:]]
    try:
        return build(task, models, weights).to(device)
    except (NotImplementedError, ValueError, TypeError) as exc:
        raise WeightsMismatch(f"model card {display_path(folder / CARD_FILE)} asks for an ensemble this task cannot "
                              f"build ({str(exc)[:200]}). Fix it with: {fix}") from None
