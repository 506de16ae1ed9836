"""How text becomes the steps a sequence network reads, and back.

    tokenize(text)                  words and punctuation as people write them ("a mess." -> a, mess, .)
    words(text)                     whitespace-separated words (a tagging row: one tag per word)
    steps(text, tokens, split)      characters ("char") or words ("word"; ``split``: punctuation split off)
    join(tokens, tokens_mode)       steps -> text again (no space before closing punctuation)
    control_char(text)              the first control character in typed text (U+XXXX), or None
"""

from __future__ import annotations

import re

import regex

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # Unicode's control characters (Cc) but tab and newline


def control_char(text: str) -> str | None:
    """The first control character of ``text`` as U+XXXX (a person cannot have meant to type it), or None."""
    m = CONTROL.search(text)
    return f"U+{ord(m.group()):04X}" if m else None


def words(text: str) -> list[str]:
    """Whitespace-separated words: how a row of tags lines up with its sentence (one tag per word)."""
    return text.split()


_WORD_RE = regex.compile(
    r"(?:https?://|www\.)\S+?(?=[.,;:!?)\]}'\"]*(?:\s|$))"  # a URL, without the punctuation after it
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # an e-mail address
    r"|(?:\p{L}\.){2,}"  # U.S.  e.g.  i.e.
    r"|[$€£¥]?\d+(?:[.,:]\d+)*%?(?![\p{L}\p{N}_])"  # 37  $37.5  1,000  12:30  50% (3rd and 1990s are words)
    r"|[#@]?[\p{L}\p{M}\p{N}_]+(?:[-'’][\p{L}\p{M}\p{N}_]+)*"  # don't  e-mail  Saint-Étienne  हिन्दी  #tag  @name
    r"|(\p{P}|\p{S})\1*"  # punctuation or a symbol, a run of the same one kept whole: .  ,  ...  !!!  --
    r"|\S",  # anything else, one character at a time
)


def tokenize(text: str) -> list[str]:
    """Text as people write it -> words and punctuation: "a mess." -> a, mess, . ; "boring," -> boring, , ;
    "don't", "$37.5", "e-mail", a URL and a word of any script stay whole. Case is kept."""
    return [m.group() for m in _WORD_RE.finditer(text)]


def steps(text: str, tokens: str, split_punct: bool = False) -> list[str]:
    """A cell cut into the steps the network reads: characters, or words -- whitespace-separated (the default: a
    row of tags lines up with them), or with punctuation split from the words (``split_punct``: text people wrote)."""
    if tokens == "char":
        return list(text)
    return tokenize(text) if split_punct else text.split()


_NO_SPACE_BEFORE = set(".,;:!?%)]}…") | {"...", "'s", "n't"}
_NO_SPACE_AFTER = set("([{$")


def join(tokens: list[str], mode: str) -> str:
    """Steps -> text: characters run together; words get a space between them, but not before closing punctuation
    or after an opening bracket ("a mess ." -> "a mess.")."""
    if mode == "char":
        return "".join(tokens)
    out = ""
    for i, t in enumerate(tokens):
        glue = i == 0 or t in _NO_SPACE_BEFORE or set(t) <= set(".,;:!?") or tokens[i - 1] in _NO_SPACE_AFTER
        out += t if glue else " " + t
    return out
