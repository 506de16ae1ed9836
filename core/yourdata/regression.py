"""A number from a sequence: many-to-one regression (a review -> its rating, a name -> a number).

    numeric_target(profile, n_rows) -> bool        is a column of numbers a quantity to predict (not a label)?
    propose_regression(table, source, target, ...) -> Choice   the proposal, with its one-sentence reason
    RegressionTask                                 the Task (a YourDataTask whose spec.choice.kind is "regression")

The model, loss, scores and answers are core.generic.SequenceRegressor's: core.shapes.ManyToOne over the sequence's
characters or words with one output, the target standardised with the training rows' mean and standard deviation
(on the card's meta: target_mean, target_std), Huber loss, the MAE and RMSE in the target's own units beside always
answering the training mean.
"""

from __future__ import annotations

from core.generic.regressor import SequenceRegressor
from core.yourdata.choice import MAX_LABELS, Choice, Profile
from core.yourdata.task import YourDataTask

METRIC_MEANING = SequenceRegressor.metric_meaning


def numeric_target(p: Profile, n_rows: int) -> bool:
    """A column of numbers to predict as a quantity: numbers with a fraction, or too many different whole numbers
    for a label (0/1, 1-5 stars: few whole numbers stay labels)."""
    few = p.distinct <= min(MAX_LABELS, max(2, n_rows // 3), 20)
    return p.numeric and p.distinct >= 3 and not (p.integer and few)


def propose_regression(source: str, target: Profile, tokens: str, example: str) -> Choice:
    """Many-to-one regression of ``target`` from the sequences of ``source``."""
    kind = "numbers with fractions" if not target.integer else f"{target.distinct} different numbers"
    return Choice("many_to_one", source, target.name, [], tokens, False,
                  f"'{source}' holds sequences and '{target.name}' a quantity ({kind}, e.g. '{example}'), so a "
                  "many-to-one network reads each sequence and answers one number (regression).",
                  kind="regression")


class RegressionTask(YourDataTask):
    """A sequence -> one number. ``core.yourdata.kinds.task_for_spec(spec)`` of a spec whose choice.kind is
    "regression" is one of these; core.generic.SequenceRegressor trains and serves it."""

    head_class = SequenceRegressor

    def __init__(self, spec: dict | None = None, **fields):
        super().__init__(spec, **fields)
        self.summary = getattr(type(self), "summary", "") or SequenceRegressor.summary
        self.metric_meaning = METRIC_MEANING
        self.recipe.metric, self.recipe.higher_is_better = "mae", False
