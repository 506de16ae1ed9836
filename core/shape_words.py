"""A shape's name inside a sentence, for the modules outside the UI that talk about shapes (Your data's checks, the
lesson, exported plugins). Plain data; the app's words, icons and diagrams for shapes are core.ui.shapes."""

from __future__ import annotations

from core.shapes import check_shape

SHAPE_WORDS: dict[str, str] = {  # shape id (core.shapes.SHAPES) -> its name in a sentence
    "one_to_one": "one-to-one",
    "one_to_many": "one-to-many",
    "many_to_one": "many-to-one",
    "many_to_many": "many-to-many (aligned)",
    "encoder_decoder": "encoder-decoder",
}


def shape_words(shape: str) -> str:
    """``shape``'s name inside a sentence ("many-to-one"); a ValueError naming the valid ids for an unknown one."""
    return SHAPE_WORDS[check_shape(shape)]
