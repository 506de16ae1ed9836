"""rnnlab-names: an RNN Lab plugin package published on its own -- surnames by language of origin.

Two tasks from one package, registered as two entry points in the ``rnnlab.tasks`` group (see pyproject.toml):

  names_origin    many-to-one   a surname's characters -> its language (18 classes), top-3 with probabilities
  names_generate  one-to-many   a language and a first letter -> new surnames (temperature, seed)

Their trained weights ship inside the package (``rnnlab_names/weights/<task>/``), so ``pip install`` is all a
user needs. Importing this package must not import Streamlit: the pages live in ``rnnlab_names.page``.
"""

from rnnlab_names.generate import NamesGenerate
from rnnlab_names.origin import NamesOrigin

ORIGIN = NamesOrigin()
GENERATE = NamesGenerate()

__all__ = ["ORIGIN", "GENERATE", "NamesOrigin", "NamesGenerate"]
