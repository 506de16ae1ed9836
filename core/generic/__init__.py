"""One Task class per output shape, shared by every generic sequence task (Your data, scaffolded plugins, tasks).

    SequenceClassifier   many-to-one     a text -> one label            (baseline: the majority class, chance)
    SequenceRegressor    many-to-one     a text -> one number           (baseline: the training mean)
    SequenceTagger       many-to-many    a text -> one tag per step     (baseline: the most common tag; all O)
    SequenceGenerator    one-to-many     a start -> a new sequence      (baseline: the unigram frequency model)
    Seq2SeqTask          encoder-decoder a text -> another text         (baselines: copying, the common output)
    FeatureClassifier    one-to-one      numbers -> one label           (baseline: the majority class, chance)

Each owns collate, loss, evaluate (with its baseline), predict and the inspector's loss; a subclass writes its
config, ``load_data`` (files -> raw examples -> ``make_splits``) and ``demos``. ``SHAPE_CLASSES`` maps a shape to its
class (the regressor is picked by kind, not shape). The maths of each is in its module's docstring.
"""

from core.generic.base import SequenceConfig, SequenceTask
from core.generic.classifier import SequenceClassifier
from core.generic.features import FeatureClassifier
from core.generic.generator import SequenceGenerator
from core.generic.regressor import SequenceRegressor
from core.generic.seq2seq import Seq2SeqTask
from core.generic.tagger import SequenceTagger

SHAPE_CLASSES: dict[str, type[SequenceTask]] = {
    "one_to_one": FeatureClassifier,
    "many_to_one": SequenceClassifier,
    "many_to_many": SequenceTagger,
    "one_to_many": SequenceGenerator,
    "encoder_decoder": Seq2SeqTask,
}

__all__ = ["SHAPE_CLASSES", "FeatureClassifier", "Seq2SeqTask", "SequenceClassifier", "SequenceConfig",
           "SequenceGenerator", "SequenceRegressor", "SequenceTagger", "SequenceTask"]
