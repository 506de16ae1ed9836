"""What a trained model needs at run time to read its input and name its output, in one typed record.

A task's ``predict``, ``evaluate`` and ``inspect_loss`` read ``model.runtime`` (a ``Runtime``) -- the vocabularies,
the labels, the card's meta -- and nothing else hung on the module. ``Task.runtime(meta, config)`` builds it from
a card's meta (core.task), so the weights carry their preprocessing as torchvision's do; core sets it on every
module ``Task.build_model`` returns, ``core.weights.load_model`` adds the card and the variant, and
``core.ensemble.build`` gives an ensemble its first member's record under the ensemble's own variant name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from core.data import Vocab
from core.modelcard import ModelCard

IN_MEMORY = "in memory"  # the variant of a model built but not loaded from weights (training, tests)


@dataclass(frozen=True)
class Runtime:
    """The run-time record of one model (or ensemble): built from the card's meta by ``Task.runtime``."""

    task: str  # the task whose predict and evaluate read this model (its name): a page never mixes two tasks' models
    variant: str  # which trained variant answers (the card's served one, a kept one, "ensemble 0.6/0.4", IN_MEMORY):
    # caches keyed by (weights, variant) tell an ensemble and the variants kept beside one card apart by it
    config: Mapping[str, Any]  # the constructor arguments the module was built with (the card's, or its variant's)
    meta: Mapping[str, Any]  # the card's meta as the data step wrote it: what a task reads beyond the fields below
    card: ModelCard | None = None  # the card the weights came with; None for a model built in memory
    vocab: Vocab | None = None  # input steps (words, characters) -> ids; None when the input is not tokens
    target_vocab: Vocab | None = None  # output ids -> tokens (translation, captions, generated text); None: no tokens out
    labels: tuple[str, ...] = ()  # output index -> the class or tag it names; () when the output is not a class
    reader: Any = None  # a task's own input encoder where one Vocab is not enough (NER: word, shape and character ids)
    temperature: float = 1.0  # classifiers divide their logits by it before the softmax (core.calibrate fits it)

    def loaded(self, card: ModelCard, variant: str) -> Runtime:
        """This record for a model whose weights came with ``card`` as ``variant``."""
        return replace(self, card=card, variant=variant)

