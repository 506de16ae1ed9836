"""Small example data sets that this project writes itself (generated here from fixed seeds -- never copied from
any dataset), one per kind of data, so that a first-time visitor can try the page in one click.

    EXAMPLES[key].make() -> (file name, file bytes)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    label: str  # the button
    kind: str  # the shape the app should propose for it
    note: str  # one line: what is in it
    make: Callable[[], tuple[str, bytes]]


_GOOD = ["good", "great", "lovely", "superb", "fun", "clever"]
_BAD = ["bad", "dull", "awful", "weak", "boring", "silly"]
_THINGS = ["film", "plot", "acting", "music", "ending", "story", "cast"]
_FILL = ["really", "quite", "so", "very", "rather"]


def reviews(seed: int = 0, n: int = 480) -> tuple[str, bytes]:
    """text,label -- short made-up reviews; 'not' flips the word after it (so order matters)."""
    rng = random.Random(seed)
    lines = ["text,label"]
    for _ in range(n):
        positive = rng.random() < 0.5
        negate = rng.random() < 0.35
        word = rng.choice(_BAD if positive == negate else _GOOD)
        thing = rng.choice(_THINGS)
        adv = rng.choice(_FILL) + " " if rng.random() < 0.5 else ""
        start = rng.choice(["the", "this", "that"])
        text = f"{start} {thing} was {'not ' if negate else ''}{adv}{word}"
        if rng.random() < 0.3:
            text += f" and the {rng.choice(_THINGS)} too"
        lines.append(f"{text},{'positive' if positive else 'negative'}")
    return "reviews.csv", ("\n".join(lines) + "\n").encode()


_LEX = {"DET": ["the", "a", "every", "some"], "ADJ": ["small", "green", "quick", "old", "happy"],
        "NOUN": ["dog", "cat", "bird", "child", "farmer", "river", "house"],
        "VERB": ["sees", "likes", "finds", "chases", "paints"], "ADV": ["slowly", "often", "today"]}


def tags(seed: int = 0, n: int = 420) -> tuple[str, bytes]:
    """sentence<TAB>tags -- one part-of-speech tag per word ('fly' and 'flies' are nouns or verbs by position)."""
    rng = random.Random(seed)
    lines = ["sentence\ttags"]
    def noun_phrase() -> list[tuple[str, str]]:
        words = [(rng.choice(_LEX["DET"]), "DET")]
        if rng.random() < 0.5:
            words.append((rng.choice(_LEX["ADJ"]), "ADJ"))
        return words + [(rng.choice(_LEX["NOUN"] + ["fly"]), "NOUN")]

    for _ in range(n):
        toks = noun_phrase()
        toks.append((rng.choice(_LEX["VERB"] + ["flies"]), "VERB"))
        toks += noun_phrase()
        if rng.random() < 0.4:
            toks.append((rng.choice(_LEX["ADV"]), "ADV"))
        lines.append(" ".join(w for w, _ in toks) + "\t" + " ".join(t for _, t in toks))
    return "tags.tsv", ("\n".join(lines) + "\n").encode()


_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]


def dates(seed: int = 0, n: int = 600) -> tuple[str, bytes]:
    """written<TAB>iso -- a date as people write it -> the same date as YYYY-MM-DD (lengths differ)."""
    rng = random.Random(seed)
    lines = ["written\tiso"]
    for _ in range(n):
        y, m, d = rng.randint(1950, 2049), rng.randint(1, 12), rng.randint(1, 28)
        style = rng.randrange(3)
        if style == 0:
            text = f"{d} {_MONTHS[m - 1]} {y}"
        elif style == 1:
            text = f"{_MONTHS[m - 1][:3]} {d}, {y}"
        else:
            text = f"{_MONTHS[m - 1]} {d} {y}"
        lines.append(f"{text}\t{y:04d}-{m:02d}-{d:02d}")
    return "dates.tsv", ("\n".join(lines) + "\n").encode()


_ONSETS = ["k", "m", "t", "l", "r", "s", "n", "v", "d", "b", "z", "th", "sh"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou"]
_CODAS = ["", "", "", "n", "r", "l", "s"]


def names(seed: int = 0, n: int = 500) -> tuple[str, bytes]:
    """One invented name per line, built from syllables (a language model learns which letters follow which)."""
    rng = random.Random(seed)
    out = set()
    while len(out) < n:
        sylls = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.randint(2, 3))]
        out.add(("".join(sylls) + rng.choice(_CODAS)).capitalize())
    return "names.txt", ("\n".join(sorted(out, key=lambda s: rng.random())) + "\n").encode()


def points(seed: int = 0, n: int = 400) -> tuple[str, bytes]:
    """x,y,label -- a point and whether it lies inside the unit circle: fixed features, no sequence."""
    rng = random.Random(seed)
    lines = ["x,y,label"]
    for _ in range(n):
        x, y = rng.uniform(-1.6, 1.6), rng.uniform(-1.6, 1.6)
        lines.append(f"{x:.3f},{y:.3f},{'inside' if x * x + y * y < 1 else 'outside'}")
    return "points.csv", ("\n".join(lines) + "\n").encode()


EXAMPLES = {
    "reviews": Example("Reviews → sentiment", "many_to_one", "480 short made-up reviews, each positive or negative",
                       reviews),
    "tags": Example("Sentences → tags", "many_to_many", "420 sentences with a part-of-speech tag per word",
                    tags),
    "dates": Example("Dates → ISO dates", "encoder_decoder", "600 dates as people write them and as YYYY-MM-DD",
                     dates),
    "names": Example("Names to imitate", "one_to_many", "500 invented names to learn to write more of", names),
    "points": Example("Points → inside?", "one_to_one", "400 points (x, y), inside or outside a circle",
                      points),
}
