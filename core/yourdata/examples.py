"""Small example data sets that this project writes itself (generated here from fixed seeds -- never copied from
any dataset), one per kind of data, so that a first-time visitor can try the page in one click.

    EXAMPLES[key].make() -> (file name, file bytes)

Each is hard enough that 300 steps do not make every cell perfect (noisy labels, words seen only in the held-out
rows, answers that depend on context), and large enough that the held-out rows (a tenth each) number 100 or more.
The "memory" example is the one where the cells differ: its answer is at the start of a long sequence.
"""

from __future__ import annotations

import csv
import io
import math
import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    label: str  # the button
    kind: str  # the shape the page proposes for it
    note: str  # one line: what is in it
    make: Callable[[], tuple[str, bytes]]


def _table(rows: list[list[str]], delimiter: str = ",") -> bytes:
    """Rows -> CSV/TSV bytes, cells quoted where they must be (a review with a comma in it)."""
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


# ---- reviews: many-to-one ------------------------------------------------------------------------------------------

_GOOD = ["good", "great", "lovely", "superb", "fun", "clever", "moving", "sharp"]
_BAD = ["bad", "dull", "awful", "weak", "boring", "silly", "a mess", "flat"]
_THINGS = ["film", "plot", "acting", "music", "ending", "story", "cast", "script", "camera work", "dialogue"]
_FILL = ["really", "quite", "so", "very", "rather", "truly"]
REVIEW_NOISE = 0.06  # the share of reviews whose label disagrees with their words (as real raters do)


def _clause(rng: random.Random, positive: bool) -> str:
    negate = rng.random() < 0.3
    word = rng.choice(_BAD if positive == negate else _GOOD)
    adv = rng.choice(_FILL) + " " if rng.random() < 0.4 else ""
    return f"the {rng.choice(_THINGS)} was {'not ' if negate else ''}{adv}{word}"


def reviews(seed: int = 0, n: int = 1000) -> tuple[str, bytes]:
    """text,label -- made-up reviews with punctuation. 'not' flips the word after it, and after 'but' the second
    half decides ("The plot was dull, but the acting was superb." is positive): order matters. A few labels are
    noisy."""
    rng = random.Random(seed)
    rows = [["text", "label"]]
    for _ in range(n):
        positive = rng.random() < 0.5
        if rng.random() < 0.35:  # a contrast: the first half says the opposite
            text = f"{_clause(rng, not positive)}, but {_clause(rng, positive)}"
        else:
            text = _clause(rng, positive)
            if rng.random() < 0.3:
                text += f", and the {rng.choice(_THINGS)} too"
        text = text[0].upper() + text[1:] + rng.choice([".", ".", "!", "..."])
        if rng.random() < REVIEW_NOISE:
            positive = not positive
        rows.append([text, "positive" if positive else "negative"])
    return "reviews.csv", _table(rows)


# ---- tags: many-to-many --------------------------------------------------------------------------------------------

_NOUNS = ["dog", "cat", "bird", "child", "farmer", "river", "house", "teacher", "horse", "garden", "baker", "ship",
          "forest", "doctor", "letter", "window", "storm", "king", "song", "city", "boat", "sister", "lamp", "wolf",
          "field", "cloud", "queen", "road", "stone", "apple", "train", "pilot", "mountain", "island", "painter",
          "village", "candle", "dragon", "bottle", "tiger"]
_VERBS_T = ["sees", "likes", "finds", "chases", "follows", "visits", "hears", "helps", "carries", "draws",
            "greets", "watches", "remembers", "avoids", "calls"]
_VERBS_I = ["sleeps", "sings", "waits", "laughs", "falls", "arrives", "smiles", "shines"]
_BOTH = {"fly": "flies", "watch": "watches", "walk": "walks", "light": "lights", "play": "plays", "ring": "rings"}
_ADJ = ["small", "green", "quick", "old", "happy", "tall", "quiet", "brave", "cold", "bright", "lazy", "young"]
_DET = ["the", "a", "every", "some", "this", "that"]
_ADV = ["slowly", "often", "today", "quietly", "again", "outside", "soon"]
_PREP = ["in", "near", "behind", "under", "with"]
_PRON = ["she", "he", "it", "they"]
_NAMES = ["Anna", "Omar", "Lena", "Kofi", "Mei", "Paul"]
_UPOS = ["DET", "ADJ", "NOUN", "VERB", "ADV", "ADP", "PRON", "PROPN"]
TAG_NOISE = 0.03  # the share of words tagged wrong, as in data that people tag by hand


def _zipf(rng: random.Random, words: list[str]) -> str:
    """A word, the first ones of the list far more often than the last (some are met only once or never)."""
    return words[min(int(len(words) * rng.random() ** 2.2), len(words) - 1)]


def tags(seed: int = 0, n: int = 1000) -> tuple[str, bytes]:
    """sentence<TAB>tags -- one part-of-speech tag per word (and per punctuation mark, split off as in CoNLL files).
    Sentences have many forms (a name or a pronoun for a noun phrase, phrases with 'in', adverbs first or last), rare
    nouns appear only in some rows, and 'fly', 'watch', 'light' ... are nouns after 'the' but verbs after a subject,
    so the tagger must read each word in its context. A few tags are wrong, as in data tagged by hand."""
    rng = random.Random(seed)

    def noun_phrase() -> list[tuple[str, str]]:
        r = rng.random()
        if r < 0.12:
            return [(rng.choice(_NAMES), "PROPN")]
        if r < 0.22:
            return [(rng.choice(_PRON), "PRON")]
        words = [(rng.choice(_DET), "DET")]
        for _ in range(rng.choice([0, 0, 1, 1, 2])):
            words.append((rng.choice(_ADJ), "ADJ"))
        noun = rng.choice(list(_BOTH)) if rng.random() < 0.15 else _zipf(rng, _NOUNS)
        return words + [(noun, "NOUN")]

    def verb_phrase(subject_plural: bool) -> list[tuple[str, str]]:
        if rng.random() < 0.25:
            verb = rng.choice(list(_BOTH.values()) + _VERBS_I)
            out = [(verb, "VERB")]
        else:
            verb = rng.choice(list(_BOTH.values()) + _VERBS_T)
            out = [(verb, "VERB")] + noun_phrase()
        if subject_plural:  # they fly, they watch: the base form after 'they'
            base = {v: b for b, v in _BOTH.items()}.get(verb, verb[:-1] if verb.endswith("s") else verb)
            out[0] = (base[:-2] + "y" if base.endswith("ie") else base, "VERB")
        if rng.random() < 0.3:
            out += [(rng.choice(_PREP), "ADP")] + noun_phrase()
        return out

    rows = [["sentence", "tags"]]
    for _ in range(n):
        toks: list[tuple[str, str]] = []
        if rng.random() < 0.2:
            toks.append((rng.choice(_ADV), "ADV"))
        subject = noun_phrase()
        toks += subject + verb_phrase(subject == [("they", "PRON")])
        if rng.random() < 0.3:
            toks.append((rng.choice(_ADV), "ADV"))
        toks.append((rng.choice([".", ".", ".", "!"]), "PUNCT"))
        if toks[0][1] != "PROPN":
            toks[0] = (toks[0][0].capitalize(), toks[0][1])
        toks = [(w, rng.choice(_UPOS) if t != "PUNCT" and rng.random() < TAG_NOISE else t) for w, t in toks]
        rows.append([" ".join(w for w, _ in toks), " ".join(t for _, t in toks)])
    return "tags.tsv", _table(rows, "\t")


# ---- dates: encoder-decoder ----------------------------------------------------------------------------------------

_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december"]


_ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
             "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth", "eighteenth",
             "nineteenth", "twentieth"] + [f"twenty-{w}" for w in ["first", "second", "third", "fourth", "fifth",
                                                                   "sixth", "seventh", "eighth"]]


def _nth(d: int) -> str:
    return f"{d}{'st' if d % 10 == 1 and d != 11 else 'nd' if d % 10 == 2 and d != 12 else 'rd' if d % 10 == 3 and d != 13 else 'th'}"


def dates(seed: int = 0, n: int = 1000) -> tuple[str, bytes]:
    """written<TAB>iso -- a date as people write it -> the same date as YYYY-MM-DD (lengths differ): six ways of
    writing, days as numbers, as '3rd' or in words ('the twenty-third of may'), years in full or as '99 (1950-2049:
    '50-'99 are 19xx)."""
    rng = random.Random(seed)
    rows = [["written", "iso"]]
    for _ in range(n):
        y, m, d = rng.randint(1950, 2049), rng.randint(1, 12), rng.randint(1, 28)
        month = _MONTHS[m - 1]
        text = rng.choice([f"{d} {month} {y}", f"{month[:3]} {d}, {y}", f"{month.capitalize()} {d} {y}",
                           f"{d}/{m}/{y}", f"{_nth(d)} of {month} '{y % 100:02d}",
                           f"the {_ORDINALS[d - 1]} of {month} {y}"])
        rows.append([text, f"{y:04d}-{m:02d}-{d:02d}"])
    return "dates.tsv", _table(rows, "\t")


# ---- names: one-to-many --------------------------------------------------------------------------------------------

_ONSETS = ["k", "m", "t", "l", "r", "s", "n", "v", "d", "b", "z", "th", "sh"]
_VOWELS = ["a", "e", "i", "o", "u", "ai", "ou"]
_CODAS = ["", "", "", "n", "r", "l", "s"]


def names(seed: int = 0, n: int = 1000) -> tuple[str, bytes]:
    """One invented name per line, built from syllables (a language model learns which letters follow which)."""
    rng = random.Random(seed)
    out = set()
    while len(out) < n:
        sylls = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(rng.randint(2, 3))]
        out.add(("".join(sylls) + rng.choice(_CODAS)).capitalize())
    return "names.txt", ("\n".join(sorted(out, key=lambda s: rng.random())) + "\n").encode()


# ---- points: one-to-one --------------------------------------------------------------------------------------------

POINT_BLUR = 0.12  # the circle's edge is blurred: near it, a point's label is partly luck


def points(seed: int = 0, n: int = 1000) -> tuple[str, bytes]:
    """x,y,label -- a point and whether it lies inside the unit circle, measured with a little noise (so points near
    the edge can be on either side): fixed features, no sequence."""
    rng = random.Random(seed)
    rows = [["x", "y", "label"]]
    for _ in range(n):
        x, y = rng.uniform(-1.6, 1.6), rng.uniform(-1.6, 1.6)
        r = math.hypot(x, y) + rng.gauss(0, POINT_BLUR)
        rows.append([f"{x:.3f}", f"{y:.3f}", "inside" if r < 1 else "outside"])
    return "points.csv", _table(rows)


# ---- memory: many-to-one, where the cells differ -------------------------------------------------------------------

_KEYS = ["north", "south", "east", "west"]
_DISTRACT = ["the", "road", "turns", "past", "a", "hill", "and", "then", "river", "bridge", "town", "field", "gate",
             "keep", "going", "along", "wall", "tree"]
MEMORY_STEPS = (4, 60)  # words per message: the answer is up to this far back when the network must give it
MEMORY_KEY_RATE = 0.1  # the share of later words that are answer words too (a decoy: only the first one counts)


def memory(seed: int = 0, n: int = 1000, length: tuple[int, int] = MEMORY_STEPS, keys: int = 4,
           key_rate: float = MEMORY_KEY_RATE) -> tuple[str, bytes]:
    """message,direction -- a message whose FIRST word is the answer (one of ``keys`` directions); the rest is
    noise, with decoy answer words in it. A network must carry the first word across up to 60 steps and not let a
    decoy overwrite it: a gated cell (GRU, LSTM) learns to close its gate, a tanh-RNN's state is pushed by every
    word. Measured at the page's defaults (300 steps, medium): tanh-RNN near chance (0.25), GRU about 1.0."""
    rng = random.Random(seed)
    rows = [["message", "direction"]]
    for _ in range(n):
        key = rng.choice(_KEYS[:keys])
        words = [key] + [rng.choice(_KEYS) if rng.random() < key_rate else rng.choice(_DISTRACT)
                         for _ in range(rng.randint(*length) - 1)]
        rows.append([" ".join(words), key])
    return "memory.csv", _table(rows)


# ---- a monthly time series: forecasting ----------------------------------------------------------------------------

def monthly_sales(seed: int = 0, n: int = 240) -> tuple[str, bytes]:
    """date,sales -- 20 years of made-up monthly sales: a rising trend, a yearly season (a December peak, a
    summer dip) and noise."""
    rng = random.Random(seed)
    rows = [["date", "sales"]]
    for t in range(n):
        year, month = 2005 + t // 12, t % 12 + 1
        season = 18 * math.sin(2 * math.pi * (month - 4) / 12) + (25 if month == 12 else 0)
        value = 200 + 0.9 * t + season + rng.gauss(0, 6)
        rows.append([f"{year:04d}-{month:02d}-01", f"{value:.1f}"])
    return "monthly_sales.csv", _table(rows)


EXAMPLES = {
    "reviews": Example("Reviews → sentiment", "many_to_one",
                       "1,000 made-up reviews, positive or negative ('not' and 'but' change the meaning; a few labels "
                       "are wrong, as real ones are)", reviews),
    "memory": Example("Remember the first word", "many_to_one",
                      "1,000 messages of 4-60 words whose first word is the answer (north, south, east or west; "
                      "later ones are decoys): train tanh-RNN, GRU and LSTM together to see which cells remember",
                      memory),
    "tags": Example("Sentences → tags", "many_to_many",
                    "1,000 sentences with a part-of-speech tag per word ('fly' is a noun or a verb by its place; a "
                    "few tags are wrong, as in hand-tagged data)",
                    tags),
    "dates": Example("Dates → ISO dates", "encoder_decoder",
                     "1,000 dates as people write them (six ways, e.g. 3/5/1999, the third of may 1999, 3rd of may "
                     "'99) and as YYYY-MM-DD", dates),
    "names": Example("Names to imitate", "one_to_many", "1,000 invented names to learn to write more of", names),
    "points": Example("Points → inside?", "one_to_one",
                      "1,000 points (x, y), inside or outside a circle whose edge is blurred", points),
    "sales": Example("Monthly sales (time series)", "forecast",
                     "20 years of monthly sales with a trend and a yearly season", monthly_sales),
}
