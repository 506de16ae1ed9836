"""CoNLL-2003 English: reading the files, a vocabulary, a tokenizer for real text, and BIO spans.

The files (train / dev / test) hold one token per line, ``<token> <tag>`` (space or tab), a blank line between
sentences and ``-DOCSTART-`` lines between news stories (skipped). Tags are BIO over PER / ORG / LOC / MISC, but a
few entities start with I-X (the original IOB1 files): ``read_conll`` rewrites each such I-X as B-X, which is
exactly how conlleval / seqeval read it, so spans and scores are unchanged. The same reader takes WikiANN's
``en:<token><TAB><tag>`` lines (three types, no MISC). The text was tokenized Penn-Treebank style: "$" and "'s"
are their own tokens, hyphenated words and "U.S." stay whole. ``tokenize`` below cuts user text the same way and
keeps each token's character offsets so spans can be highlighted in place.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

ENTITY_TYPES = ("PER", "ORG", "LOC", "MISC")
LABELS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")
PAD, UNK = "<pad>", "<unk>"  # ids 0 and 1 in both vocabularies
MAX_WORD_LEN = 20  # characters the char CNN reads per word; longer words keep their first 20 (covers 99.9%)
# Word shapes: what capitalisation looks like, a cheap strong hint for names that the lowercased word embedding
# throws away (the char CNN can learn it too, but this makes it available from the first step).
SHAPES = ("<pad>", "lower", "Title", "UPPER", "mIxed", "digit", "punct")


# ---- reading the real format -----------------------------------------------------------------------------------
def to_bio(tags: list[str]) -> list[str]:
    """IOB1 -> BIO (IOB2): an I-X that does not continue an X entity starts one, so it becomes B-X. This is the
    conlleval / seqeval reading of such a tag, so the spans (and every score) are the same before and after."""
    out, prev = [], "O"
    for tag in tags:
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def read_conll(path: str | Path) -> list[tuple[list[str], list[str]]]:
    """Sentences as (tokens, BIO tags). Skips ``-DOCSTART-`` lines; strips WikiANN's ``en:`` prefix; tolerates a
    missing final blank line, CRLF endings, tab or space. Raises ValueError naming the line for anything else."""
    sents, toks, tags = [], [], []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if line.startswith("-DOCSTART-"):
                continue
            if not line.strip():
                if toks:
                    sents.append((toks, to_bio(tags)))
                    toks, tags = [], []
                continue
            tok, sep, tag = line.rpartition("\t")
            if not sep:
                tok, sep, tag = line.rpartition(" ")
            if not sep or not tok:
                raise ValueError(f"{path}:{lineno}: expected '<token><TAB><tag>', got {line[:60]!r}")
            tag = tag.strip()
            if tag not in LABELS:
                raise ValueError(f"{path}:{lineno}: unknown tag {tag!r} (expected one of {', '.join(LABELS)})")
            if tok.startswith("en:"):
                tok = tok[3:]
            toks.append(tok)
            tags.append(tag)
    if toks:
        sents.append((toks, to_bio(tags)))
    return sents


def write_conll(path: str | Path, sents: list[tuple[list[str], list[str]]]) -> None:
    """The inverse of read_conll in the CoNLL-2003 layout (``-DOCSTART-`` first), for tests and synthetic data."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("-DOCSTART- O\n\n")
        for toks, tags in sents:
            for tok, tag in zip(toks, tags):
                f.write(f"{tok} {tag}\n")
            f.write("\n")


# ---- spans -------------------------------------------------------------------------------------------------------
def bio_to_spans(tags: list[str]) -> list[tuple[str, int, int]]:
    """(type, first token, last token + 1) for each entity, read the way conlleval / seqeval read it:
    B-X starts an entity; I-X continues one of type X, and an I-X that follows O or another type (ill-formed)
    starts a new entity instead of being dropped."""
    spans, cur = [], None  # cur = [type, start]
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, _, typ = tag.partition("-")
        continues = prefix == "I" and cur is not None and cur[0] == typ
        if cur is not None and not continues:
            spans.append((cur[0], cur[1], i))
            cur = None
        if prefix in ("B", "I") and typ and not continues:
            cur = [typ, i]
    return spans


def spans_to_bio(n: int, spans: list[tuple[str, int, int]]) -> list[str]:
    tags = ["O"] * n
    for typ, s, e in spans:
        for i in range(s, e):
            tags[i] = ("B-" if i == s else "I-") + typ
    return tags


# ---- tokenizing real text ----------------------------------------------------------------------------------------
_L = r"[^\W\d_]"  # a letter in any script
_W = r"[\w\u0300-\u036f\u1ab0-\u1aff\u20d0-\u20ff]"  # letter/digit, plus combining accents (decomposed text)
_TITLES = ("Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|Mt|Ft|Inc|Ltd|Co|Corp|Bros|vs|etc|No|Gen|Col|Lt|Sgt|Capt|Rev|Hon|Gov|Sen|"
           "Rep|Pres|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|Ave|Blvd|Rd|Univ|Dept|approx|ca")
TOKEN_RE = re.compile(
    rf"(?:{_L}\.){{2,}}"  # U.S.  R.H.  e.g.
    rf"|(?:{_TITLES})\.(?!\w)"  # Mr.  St.  Inc.
    rf"|[A-Z]\.(?=\s+[A-Z])"  # the initial in "J. Smith"
    r"|\d+(?:[.,:]\d+)+"  # 37.5  184,000  14:15.61
    rf"|{_W}+(?:[-'’]{_W}+)*"  # words: O'Brien  Saint-Étienne  COVID-19  Knausgård (Adam's is split below)
    r"|``|''|\.\.\.|--+|==+|\*\*+"  # multi-character punctuation the data keeps whole
    r"|\S",  # anything else is a token of one character ($, %, quotes, emoji ...)
)
_CLITIC_RE = re.compile(r"(?i)^(.+?)(n['’]t|['’](?:s|re|ve|ll|m|d))$")  # Adam's -> Adam 's ; don't -> do n't


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """(token, start, end) with text[start:end] == token, cut the way the training data was cut. Control and
    formatting characters (NUL, zero-width spaces, bidi marks: Unicode category C*) are skipped like spaces."""
    out = []
    for m in TOKEN_RE.finditer(text):
        tok, s = m.group(), m.start()
        if all(unicodedata.category(ch)[0] == "C" for ch in tok):
            continue
        c = _CLITIC_RE.match(tok)
        base = c.group(1) if c else ""
        if c and not (len(base) == 1 and base.isupper() and base != "I"):  # keep O'd, D's ... whole
            a = len(c.group(1))
            out.append((tok[:a], s, s + a))
            out.append((tok[a:], s + a, m.end()))
        else:
            out.append((tok, s, m.end()))
    return out


def normalize(token: str) -> str:
    """The key a word has in the word vocabulary: NFC, lowercased, digits -> 0, straight quotes as in the data."""
    t = unicodedata.normalize("NFC", token)
    t = {'"': "''", "“": "``", "”": "''", "’": "'", "‘": "'", "…": "..."}.get(t, t).replace("’", "'")
    return re.sub(r"\d", "0", t.lower())


def word_shape(token: str) -> int:
    letters = [c for c in token if c.isalpha()]
    if not letters:
        return SHAPES.index("digit") if any(c.isdigit() for c in token) else SHAPES.index("punct")
    if all(c.islower() for c in letters):
        return SHAPES.index("lower")
    if all(c.isupper() for c in letters):
        return SHAPES.index("UPPER") if len(letters) > 1 else SHAPES.index("Title")
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return SHAPES.index("Title")
    return SHAPES.index("mIxed")


# ---- ways of writing the same text ---------------------------------------------------------------------------------
# News is written with names capitalised; people also type all in lower case (chat, search boxes) or all in
# capitals (headlines, shouting). The tags do not change with the case, so a sentence's lower-case and capitals
# copies are more training data (Mayhew, Tsygankova & Roth 2019) and two more test sets.
CASES = ("lower", "upper")


def recase(sents: list[tuple[list[str], list[str]]], case: str) -> list[tuple[list[str], list[str]]]:
    """The sentences all in lower case (``case="lower"``) or all in capitals (``"upper"``), tags unchanged."""
    if case not in CASES:
        raise ValueError(f"case must be one of {', '.join(CASES)}, got {case!r}")
    change = str.lower if case == "lower" else str.upper
    return [([change(t) for t in toks], tags) for toks, tags in sents]


# ---- a list of names from another corpus (gazetteer) ----------------------------------------------------------
# Columns of the gazetteer: how often a word was inside a person / organisation / location name, or outside any
# name, in WikiANN's Wikipedia sentences. B- and I- are merged: what a name list adds is the *type* of a word never
# seen in the news; where a name starts and ends is learnt from CoNLL itself (its own lexicon keeps B/I apart),
# and WikiANN's spans come from Wikipedia links, whose boundaries follow other conventions than CoNLL's.
GAZETTEER_COLUMNS = ("PER", "ORG", "LOC", "O")


def pack_rows(rows) -> str:
    """Rows of counts as one string, "8 0 1;0 2 0": a card's JSON then holds a table as one short line and the
    server one string, not a list of lists (about 3 MiB of Python objects per 20,000 rows)."""
    return ";".join(" ".join(map(str, r)) for r in rows)


def unpack_rows(packed, width: int) -> np.ndarray:
    """``pack_rows``'s string (or, from older cards, the rows themselves) -> (N, width) int64 counts."""
    if isinstance(packed, str):
        flat = np.array(packed.replace(";", " ").split(), dtype=np.int64) if packed else np.zeros(0, np.int64)
        return flat.reshape(-1, width)
    return np.asarray(packed, dtype=np.int64).reshape(-1, width)


def build_gazetteer(sents: list[tuple[list[str], list[str]]], max_words: int = 40000) -> dict:
    """Per normalised word, its counts in ``GAZETTEER_COLUMNS`` over the sentences; only words inside a name at
    least once, the ``max_words`` most often inside one (the card stores them: size is memory on the server).

    Stored as {"columns": [...], "words": "word\\nword ...", "counts": pack_rows(...)}: two strings, whatever the
    number of words (older cards: {"counts": {word: "PER ORG LOC O"}}, still read)."""
    counts: dict[str, list[int]] = {}
    for toks, tags in sents:
        for t, g in zip(toks, tags):
            row = counts.setdefault(normalize(t), [0] * len(GAZETTEER_COLUMNS))
            row[GAZETTEER_COLUMNS.index(g[2:] if g != "O" else "O")] += 1
    named = [(w, c) for w, c in counts.items() if sum(c[:-1]) > 0]
    named.sort(key=lambda wc: (-sum(wc[1][:-1]), wc[0]))
    named = named[:max_words]
    return {"columns": list(GAZETTEER_COLUMNS), "words": "\n".join(w for w, _ in named),
            "counts": pack_rows(c for _, c in named)}


def gazetteer_table(gaz: dict) -> tuple[list[str], np.ndarray]:
    """A gazetteer's words and their (N, G) counts, from either way a card stores them."""
    width = len(gaz["columns"])
    if isinstance(gaz["counts"], dict):  # older cards: {word: "PER ORG LOC O"}
        return list(gaz["counts"]), unpack_rows(";".join(gaz["counts"].values()), width)
    words = gaz["words"].split("\n") if gaz["words"] else []
    return words, unpack_rows(gaz["counts"], width)


def vocabulary(meta: dict, gazetteer_words: list[str] | None = None) -> list[str]:
    """Every word with an id, in id order: the meta's words, then the gazetteer's words not among them (ids past
    ``embed_words``: no word vector, only their counts). ``gazetteer_words``: the gazetteer's words when the caller
    has read them already (gazetteer_table)."""
    words = list(meta["words"])
    gaz = meta.get("gazetteer")
    if gaz:
        known = set(words)
        gw = gazetteer_words if gazetteer_words is not None else gazetteer_table(gaz)[0]
        words += [w for w in gw if w not in known]
    return words


def lexicon_table(meta: dict) -> np.ndarray:
    """(len(meta["words"]), C) training-data tag counts per word id (the lexicon), from either way a card stores it."""
    return unpack_rows(meta["lexicon"], len(meta["labels"]))


def gazetteer_rows(meta: dict) -> np.ndarray:
    """(V, G) gazetteer counts per word id of ``vocabulary(meta)``; zeros for words not in it."""
    words, counts = gazetteer_table(meta["gazetteer"])
    at = {w: i for i, w in enumerate(words)}
    src = np.array([at.get(w, -1) for w in vocabulary(meta, words)], dtype=np.int64)  # (V,) row in counts, or -1
    out = np.zeros((len(src), counts.shape[1]), dtype=np.int64)  # (V, G)
    out[src >= 0] = counts[src[src >= 0]]
    return out


# ---- vocabulary and encoding -------------------------------------------------------------------------------------
def build_meta(train: list[tuple[list[str], list[str]]], max_words: int = 12000, min_count: int = 2,
               min_char_count: int = 3, lexicon: bool = True, max_lexicon: int = 40000,
               gazetteer: list[tuple[list[str], list[str]]] | None = None, max_gazetteer: int = 40000) -> dict:
    """Vocabularies from the training split only.

    Embedded words: seen at least twice, at most ``max_words`` (words seen once share <unk>, so <unk> is trained
    on the kind of rare word it meets at test time; the cap keeps the weights small). With ``lexicon`` the word
    list goes on past them to every training word, each with its tag counts in the training split (a gazetteer
    built from the training data): "paris" was B-LOC 40 times and B-PER twice. ``gazetteer``: sentences of
    another tagged corpus (WikiANN), whose name counts go in the meta too (build_gazetteer); its words that are
    not in ``words`` get the next ids (see ``vocabulary``)."""
    wc = Counter(normalize(t) for toks, _ in train for t in toks)
    cc = Counter(c for toks, _ in train for t in toks for c in unicodedata.normalize("NFC", t))
    ranked = [w for w, _ in sorted(wc.items(), key=lambda kv: (-kv[1], kv[0]))]
    embedded = [w for w in ranked if wc[w] >= min_count][:max_words]
    chars = [c for c, n in sorted(cc.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_char_count]
    meta = {"words": [PAD, UNK] + embedded, "chars": [PAD, UNK] + chars, "labels": list(LABELS),
            "shapes": list(SHAPES), "max_word_len": MAX_WORD_LEN, "embed_words": 2 + len(embedded)}
    if lexicon:
        rest = set(embedded)
        words = meta["words"] + [w for w in ranked if w not in rest][:max(0, max_lexicon - len(embedded))]
        index = {w: i for i, w in enumerate(words)}
        counts = [[0] * len(LABELS) for _ in words]
        for toks, tags in train:
            for t, g in zip(toks, tags):
                i = index.get(normalize(t))
                if i is not None:
                    counts[i][LABELS.index(g)] += 1
        meta.update(words=words, lexicon=pack_rows(counts))
    if gazetteer:
        meta["gazetteer"] = build_gazetteer(gazetteer, max_gazetteer)
    return meta


def lead_columns(meta: dict) -> int:
    """Columns before the char ids: word id, shape id (+ the held-out tag for the lexicon)."""
    return 3 if meta.get("lexicon") else 2


class Encoder:
    """Turns tokens into the (T, K + L) rows the model reads: [word id, shape id, (held-out tag,) char ids ...].

    The held-out tag (training split only, else 0) is gold tag + 1: the lexicon subtracts it from the word's
    counts, so on training sentences a word's counts are those of its *other* occurrences (leave-one-out) and a
    word seen once looks unseen -- as a new word at test time does. Without this the tagger would learn to copy
    the lexicon."""

    def __init__(self, meta: dict):
        self.lead = lead_columns(meta)
        self.word_index = {w: i for i, w in enumerate(vocabulary(meta))}
        self.char_index = {c: i for i, c in enumerate(meta["chars"])}
        self.label_index = {t: i for i, t in enumerate(meta["labels"])}
        self.labels = list(meta["labels"])
        self.max_word_len = int(meta.get("max_word_len", MAX_WORD_LEN))
        self.fingerprint = (len(self.word_index), len(meta["chars"]), tuple(meta["labels"]), self.lead,
                            hash(tuple(meta["words"][:50])))

    def encode(self, tokens: list[str], held_out: list[int] | None = None) -> torch.Tensor:
        L, cidx = self.max_word_len, self.char_index
        rows = []
        for i, tok in enumerate(tokens):
            ids = [cidx.get(c, 1) for c in unicodedata.normalize("NFC", tok)[:L]] or [1]
            lead = [self.word_index.get(normalize(tok), 1), word_shape(tok)]
            if self.lead == 3:
                lead.append(held_out[i] + 1 if held_out is not None else 0)
            rows.append(lead + ids + [0] * (L - len(ids)))
        return torch.tensor(rows, dtype=torch.long).view(len(tokens), self.lead + L)  # (T, K + L)


@dataclass
class Corpus:
    """One split: the raw sentences and their encoding (rows (T, 2 + L) and tag ids (T,)) under one vocabulary."""

    sents: list[tuple[list[str], list[str]]]
    hold_out: bool = False  # True for the training split: the lexicon leaves each word's own tag out
    rows: list[torch.Tensor] = field(default_factory=list)
    tags: list[torch.Tensor] = field(default_factory=list)
    fingerprint: tuple = ()
    lead: int = 2  # columns before the char ids in each row (see Encoder)
    # True for the training split: each sentence is also encoded in lower case and in capitals (copies below),
    # and every epoch shows each sentence as written plus one of its copies (NERTask.batches)
    case_copies: bool = False
    copies: dict[str, list[torch.Tensor]] = field(default_factory=dict, repr=False)  # case -> rows, as ``rows``
    _recased: dict[str, Corpus] = field(default_factory=dict, repr=False)  # evaluation copies, made once

    def __len__(self) -> int:
        return len(self.sents)

    def recased(self, case: str) -> Corpus:
        """This split written all in lower case or all in capitals (same tags), as its own Corpus (cached)."""
        if case not in self._recased:
            self._recased[case] = Corpus(recase(self.sents, case), hold_out=self.hold_out)
        return self._recased[case]

    def encoded(self, enc: Encoder) -> Corpus:
        """This split encoded with ``enc`` (cached: evaluation re-encodes only when the vocabulary differs)."""
        if self.fingerprint != enc.fingerprint or len(self.rows) != len(self.sents):
            self.tags = [torch.tensor([enc.label_index[t] for t in tags], dtype=torch.long) for _, tags in self.sents]
            self.rows = [enc.encode(toks, tags.tolist() if self.hold_out else None)
                         for (toks, _), tags in zip(self.sents, self.tags)]
            self.copies = {case: [enc.encode(toks, tags.tolist() if self.hold_out else None)
                                  for (toks, _), tags in zip(recase(self.sents, case), self.tags)]
                           for case in (CASES if self.case_copies else ())}
            self.fingerprint, self.lead = enc.fingerprint, enc.lead
        return self


def collate(rows: list[torch.Tensor], tags: list[torch.Tensor] | None = None, lead: int | None = None) -> dict:
    """Pad a list of sentences into one batch; char columns are cut to the longest word in the batch."""
    B, T = len(rows), max(len(r) for r in rows)
    K = lead if lead is not None else 2
    width = max(int((r[:, K:] > 0).sum(1).max()) for r in rows)  # longest word, in chars
    x = torch.zeros(B, T, K + width, dtype=torch.long)  # (B, T, K + L')
    y = torch.full((B, T), -100, dtype=torch.long)  # (B, T), -100 on padding
    for i, r in enumerate(rows):
        x[i, :len(r)] = r[:, :K + width]
        if tags is not None:
            y[i, :len(r)] = tags[i]
    lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
    return {"x": x, "lengths": lengths, "tags": y}


# ---- synthetic data (tests) -------------------------------------------------------------------------------------
_FIRST = ["Alice", "Bruno", "Chen", "Dara", "Émile", "Farah", "Goran", "Hiro", "Ines", "Jonas"]
_LAST = ["Okafor", "Lindqvist", "Moreau", "Tanaka", "Novak", "Silva", "O'Hara", "Kowalski"]
_ORG = [["Acme", "Corp"], ["Northwind", "Bank"], ["Blue", "River", "Press"], ["Vega", "Labs"], ["UNESCO"]]
_LOC = [["Lisbon"], ["New", "Harbor"], ["Mount", "Kessel"], ["Oslo"], ["Port", "Amber"], ["Zürich"]]
_MISC = [["German"], ["French"], ["World", "Cup"], ["Olympic", "Games"]]
_TEMPLATES = [
    "{PER} works for {ORG} in {LOC} .",
    "the {MISC} minister met {PER} .",
    "{PER} moved to {LOC} .",
    "{ORG} opened an office in {LOC} .",
    "( {LOC} )",
    "{PER} ( born 1970 ) is a painter .",
    "the mayor of {LOC} met {PER} .",
]


def synthetic_sentences(n: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        toks, tags = [], []
        for piece in rng.choice(_TEMPLATES).split():
            if piece == "{PER}":
                ent, typ = [rng.choice(_FIRST), rng.choice(_LAST)], "PER"
            elif piece == "{ORG}":
                ent, typ = rng.choice(_ORG), "ORG"
            elif piece == "{LOC}":
                ent, typ = rng.choice(_LOC), "LOC"
            elif piece == "{MISC}":
                ent, typ = rng.choice(_MISC), "MISC"
            else:
                toks.append(piece)
                tags.append("O")
                continue
            toks += ent
            tags += ["B-" + typ] + ["I-" + typ] * (len(ent) - 1)
        out.append((toks, tags))
    return out
