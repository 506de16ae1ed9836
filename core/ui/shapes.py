"""What the app says and draws about each shape of recurrent network (the modules themselves are core.shapes).

``SHAPE_SPECS`` holds one ``ShapeSpec`` per shape -- its name on screen, icon and colour, the "in -> out" words,
where the loss is read (which decides how gradients flow back through time), the Home page's text and diagram.
Pages, the inspector and the Plugins page read a shape's words from here (``shape_spec(name)``) instead of keeping
their own copies; a new shape is one ShapeSpec here, its words in core.shape_words and its module in core.shapes.
Plain data: importing it does not import Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.shape_words import SHAPE_WORDS
from core.shapes import check_shape


@dataclass(frozen=True)
class DiagramStep:
    """One time step (one column) of a shape's diagram on the Home page: boxes for the input, state, output."""

    h: str  # the state box's label, e.g. "o₁" (the encoder's "e₁", the decoder's "d₁")
    x: str = ""  # the input box's label; "" = no input enters at this step
    y: str = ""  # the output box's label; "" = nothing is read out at this step
    feed: bool = False  # the previous step's output is fed back in as this step's input (a dashed arrow)
    decoder: bool = False  # a decoder's state (drawn amber), not the encoder's (green)


@dataclass(frozen=True)
class ShapeSpec:
    """What the app says and draws about one shape of recurrent network (the module itself is below)."""

    name: str  # the id tasks declare (Task.shape), e.g. "many_to_one"
    label: str  # its short name: navigation sections, badges, the Plugins table ("Many to many")
    title: str  # its name as the Home page's card heading and table row ("Many to many (aligned)")
    icon: str  # Streamlit material icon beside the label
    colour: str  # Streamlit badge colour (st.badge color=...), one per shape so badges tell them apart
    io: str  # inputs -> outputs in the lesson's notation, e.g. "x₁ … xₙ → y"
    card_in: str  # the Model card diagram's input node ("x_1 … x_T"), in the ASCII Graphviz draws everywhere
    card_out: str  # ... and its output node ("y")
    loss_at: Literal["last", "every", "decoder"]  # where the loss is read: after the last step, at every step, or
    #   on the decoder's outputs -- this decides which paths the gradient takes back through time (the inspector)
    blurb: str  # the Home card's paragraph: what goes in, what comes out, what that asks of the state
    use_when: str  # Home's "when to use what" table: the situation this shape fits
    examples: str  # ... and tasks of that kind
    diagram: tuple[DiagramStep, ...]  # the Home diagram, one column per time step

    @property
    def words(self) -> str:
        """Its name inside a sentence: "these rows do not fit many-to-many (aligned)" (core.shape_words)."""
        return SHAPE_WORDS[self.name]


SHAPE_SPECS: dict[str, ShapeSpec] = {s.name: s for s in (
    ShapeSpec(
        name="one_to_one", label="One to one", title="One to one",
        icon=":material/arrow_forward:", colour="gray", io="x → y",
        card_in="x", card_out="y", loss_at="last",
        blurb="One input, one output. The recurrence runs a single step from o₀ = 0, so w' never acts: a "
              "feed-forward network in disguise. The baseline that shows what memory adds.",
        use_when="inputs have no order that matters; a fixed-size input and one label",
        examples="image or tabular classification (a baseline)",
        diagram=(DiagramStep("o", x="x", y="y"),)),
    ShapeSpec(
        name="one_to_many", label="One to many", title="One to many",
        icon=":material/call_split:", colour="violet", io="x → y₁ … yₘ",
        card_in="x_0 (first item)", card_out="y_1 … y_M", loss_at="every",
        blurb="One input (a first token, a first chord, a condition), a sequence out. Each output is fed back in as "
              "the next input, so the model writes on for as long as you ask.",
        use_when="you generate: the output is a sequence and the input is one thing (or nothing)",
        examples="music / text generation, captioning",
        diagram=(DiagramStep("o₁", x="x", y="y₁"), DiagramStep("o₂", y="y₂", feed=True),
                 DiagramStep("o₃", y="y₃", feed=True), DiagramStep("o₄", y="y₄", feed=True))),
    ShapeSpec(
        name="many_to_one", label="Many to one", title="Many to one",
        icon=":material/call_merge:", colour="blue", io="x₁ … xₙ → y",
        card_in="x_1 … x_T", card_out="y", loss_at="last",
        blurb="A sequence in, one answer after the last step. The final state must summarise everything the model "
              "read.",
        use_when="one decision about a whole sequence",
        examples="sentiment, language of a name, action in a video clip",
        diagram=(DiagramStep("o₁", x="x₁"), DiagramStep("o₂", x="x₂"), DiagramStep("o₃", x="x₃"),
                 DiagramStep("o₄", x="x₄", y="y"))),
    ShapeSpec(
        name="many_to_many", label="Many to many", title="Many to many (aligned)",
        icon=":material/view_week:", colour="green", io="x₁ … xₙ → y₁ … yₙ",
        card_in="x_1 … x_T", card_out="y_1 … y_T", loss_at="every",
        blurb="One output per input step, aligned in time. A bidirectional network lets every output see the whole "
              "sequence, past and future.",
        use_when="one label per step and input and output line up one to one",
        examples="part-of-speech / named-entity tagging, frame labelling",
        diagram=tuple(DiagramStep(f"o{i}", x=f"x{i}", y=f"y{i}") for i in "₁₂₃₄")),
    ShapeSpec(
        name="encoder_decoder", label="Encoder-decoder", title="Encoder–decoder",
        icon=":material/swap_horiz:", colour="orange", io="x₁ … xₙ → y₁ … yₘ",
        card_in="x_1 … x_S", card_out="y_1 … y_M", loss_at="decoder",
        blurb="A sequence in, a sequence of a different length out. An encoder reads it all, a decoder writes; "
              "attention lets each output step look back at every input step.",
        use_when="output is a sequence whose length differs from the input's",
        examples="translation, transliteration, summarisation",
        diagram=(DiagramStep("e₁", x="x₁"), DiagramStep("e₂", x="x₂"), DiagramStep("e₃", x="x₃"),
                 DiagramStep("d₁", y="y₁", decoder=True), DiagramStep("d₂", y="y₂", decoder=True, feed=True))),
)}


def shape_spec(shape: str) -> ShapeSpec:
    """The ShapeSpec of a shape id; a ValueError naming the valid ids for an unknown one."""
    return SHAPE_SPECS[check_shape(shape)]
