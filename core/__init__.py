"""RNN Lab core: recurrent layers, the five shapes, training, weights I/O, gradient inspection, plugin registry.

Nothing here imports Streamlit; only core.ui does.
"""

from core.inspect import Inspection, clip_report, inspect_model, recurrent_spectra
from core.layers import CELLS, Recurrent, check_cell
from core.shapes import SHAPES, EncoderDecoder, ManyToMany, ManyToOne, OneToMany, OneToOne
from core.task import BadInput, Demo, Recipe, Splits, Task

__all__ = ["CELLS", "SHAPES", "Recurrent", "check_cell", "OneToOne", "OneToMany", "ManyToOne", "ManyToMany",
           "EncoderDecoder", "inspect_model", "clip_report", "recurrent_spectra", "Inspection", "Task", "Recipe",
           "Splits", "Demo", "BadInput"]
