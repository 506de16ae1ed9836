"""Stanford Sentiment Treebank: the PTB tree reader, SST-2 filtering, and one tokenizer for train and serve time.

The release (Socher et al. 2013, ``trainDevTestTrees_PTB.zip``) holds one sentence per line as a binary tree in
Penn-Treebank bracket form; every node, from single words to the whole sentence, carries a label 0-4
(very negative .. very positive):

    (3 (2 (2 The) (2 Rock)) (4 (2 is) (4 (3 good) (2 .))))

Two traps: a leaf can contain a space (train line 4342 has ``(2 8<NBSP>1\\/2)``), so a leaf is read up to its ``)``,
never split on whitespace; and the text is PTB-escaped (``-LRB-``, ``\\/``, ```` `` ''``, ``n't`` split off), so
whatever a person types must be tokenized the same way before the model sees it -- ``tokenize()`` below does that,
and ``normalise_leaf()`` maps treebank leaves into the very same token space.
"""

from __future__ import annotations

import html
import io
import re
import unicodedata
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from core.data import restore_apostrophes

SPLITS = ("train", "dev", "test")
LABELS = ("negative", "positive")  # SST-2: 0-1 -> negative, 3-4 -> positive, 2 (neutral) dropped


# ---- trees -----------------------------------------------------------------------------------------------------
@dataclass
class Node:
    label: int  # 0..4
    word: str | None = None  # a leaf's raw text (may contain spaces); None for an inner node
    children: list[Node] = field(default_factory=list)

    def leaves(self) -> list[str]:
        if self.word is not None:
            return [self.word]
        return [w for c in self.children for w in c.leaves()]

    def nodes(self):
        """Every node, root first (pre-order)."""
        yield self
        for c in self.children:
            yield from c.nodes()


class TreeError(ValueError):
    pass


_PIECES = re.compile(r"\(|\)|[^()]+")


def parse_tree(line: str) -> Node:
    """One bracketed tree -> Node. After '(' comes "<label> " and then either child nodes or the leaf's text, which
    runs up to the next ')' -- spaces included (never split a leaf on whitespace)."""
    stack: list[Node] = []
    root = None
    pieces = _PIECES.findall(line.strip())
    k = 0
    while k < len(pieces):
        p = pieces[k]
        if p == "(":
            body = pieces[k + 1] if k + 1 < len(pieces) else ""
            m = re.match(r"(\d+)(?: (.*))?$", body, re.S)
            if not m:
                raise TreeError(f"expected '(<label> ...' near piece {k}: {body[:30]!r}")
            node = Node(int(m.group(1)))
            word = m.group(2) or ""
            if word.strip():
                node.word = word
            if stack:
                if stack[-1].word is not None:
                    raise TreeError(f"a leaf ({stack[-1].word!r}) cannot have children")
                stack[-1].children.append(node)
            elif root is not None:
                raise TreeError("more than one tree on a line")
            else:
                root = node
            stack.append(node)
            k += 2
        elif p == ")":
            if not stack:
                raise TreeError("unbalanced ')'")
            done = stack.pop()
            if done.word is None and not done.children:
                raise TreeError("a node with neither a word nor children")
            k += 1
        else:
            if p.strip():
                raise TreeError(f"stray text {p.strip()[:30]!r}")
            k += 1
    if stack or root is None:
        raise TreeError("unbalanced '(' or empty line")
    return root


def read_trees(text: str) -> list[Node]:
    return [parse_tree(line) for line in text.splitlines() if line.strip()]


# ---- tokens ----------------------------------------------------------------------------------------------------
PTB_ESCAPES = {"-lrb-": "(", "-rrb-": ")", "-lsb-": "[", "-rsb-": "]", "-lcb-": "{", "-rcb-": "}",
               "``": '"', "''": '"', "`": "'"}


def _fold(text: str) -> str:
    """Unicode -> the treebank's plain alphabet: compatibility forms, no accents (cliché == cliche), lower case,
    typographic quotes and dashes to ASCII."""
    text = unicodedata.normalize("NFKC", text)
    text = (text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
            .replace("\u2014", " -- ").replace("\u2013", " -- ").replace("\u2026", "..."))
    text = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return text.lower()


def normalise_leaf(leaf: str) -> list[str]:
    """A treebank leaf -> model tokens (usually one; a leaf with a space such as "8 1\\/2" gives two)."""
    out = []
    for tok in _fold(leaf).split():  # str.split() also splits on the non-breaking space
        tok = PTB_ESCAPES.get(tok, tok).replace("\\/", "/").replace("\\*", "*")
        out.append(tok)
    return out


def normalise_leaves(leaves: list[str]) -> list[str]:
    return [t for leaf in leaves for t in normalise_leaf(leaf)]


# Serve time: a small Penn-Treebank-style tokenizer. Order matters: contractions first, then punctuation.
# Contractions typed without their apostrophe ("dont", "im") get it back first (core.data.restore_apostrophes).
_SPLIT_WORDS = {"cannot": "can not"}
_ABBREV = {"mr.", "mrs.", "ms.", "dr.", "st.", "vs.", "jr.", "sr.", "no.", "etc.", "inc.", "bros.", "al.", "e.g.",
           "i.e."}
_TAG = re.compile(r"<[^<>]{0,200}>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff\ud800-\udfff]")
_PUNCT = re.compile(r'(\.\.\.|--|[?!]+|[,;:"()\[\]{}&$#=+*@%])')


def clean_text(text: str) -> str:
    """Raw user text -> plain text: HTML tags dropped and entities decoded, control characters to spaces."""
    text = _TAG.sub(" ", text)
    text = html.unescape(text)
    return _CONTROL.sub(" ", text)


def tokenize(text: str) -> list[str]:
    """Text as a person types it -> the treebank's tokens: "I didn't like it." -> i did n't like it ."""
    text = _fold(restore_apostrophes(clean_text(text)))
    text = _PUNCT.sub(r" \1 ", text)
    text = re.sub(r"(\w)n't\b", r"\1 n't", text)  # didn't -> did n't ; can't -> ca n't ; won't -> wo n't
    text = re.sub(r"(\w)'(s|re|ve|ll|d|m)\b", r"\1 '\2", text)  # it's -> it 's ; you're -> you 're
    out = []
    for tok in text.split():
        if tok in _SPLIT_WORDS:
            out.extend(_SPLIT_WORDS[tok].split())
            continue
        if tok.endswith(".") and len(tok) > 1 and tok not in _ABBREV and "." not in tok[:-1]:
            out.extend([tok[:-1], "."])  # sentence full stop; "u.s." and "mr." keep theirs
            continue
        if len(tok) > 1 and tok.startswith("'") and tok not in ("'s", "'re", "'ve", "'ll", "'d", "'m", "'em") \
                and not re.match(r"'\d0s$", tok):
            out.extend(["'", tok[1:]])  # an opening single quote
            continue
        if len(tok) > 1 and tok.endswith("'") and tok not in ("ol'", "o'"):
            out.extend([tok[:-1], "'"])
            continue
        out.append(tok)
    return out


# ---- SST-2 -----------------------------------------------------------------------------------------------------
def binary_label(label5: int) -> int | None:
    """0/1 -> 0 (negative), 3/4 -> 1 (positive), 2 -> None (neutral: dropped in SST-2)."""
    return 0 if label5 < 2 else (1 if label5 > 2 else None)


def sst2_sentences(trees: list[Node]) -> list[tuple[list[str], int]]:
    """Whole sentences whose root is not neutral -> (tokens, 0/1). The standard SST-2 dev/test sets."""
    out = []
    for t in trees:
        y = binary_label(t.label)
        if y is not None:
            out.append((normalise_leaves(t.leaves()), y))
    return out


def sst2_phrases(trees: list[Node]) -> list[tuple[list[str], int]]:
    """Every non-neutral labelled phrase (each node, sentences included), deduplicated on its text.

    A phrase that occurs in several trees keeps its most frequent binary label (ties: the first seen)."""
    votes: dict[tuple[str, ...], Counter] = {}

    def visit(n: Node) -> list[str]:  # post-order, so each node's tokens are built once from its children's
        toks = normalise_leaf(n.word) if n.word is not None else [t for c in n.children for t in visit(c)]
        y = binary_label(n.label)
        if y is not None:
            votes.setdefault(tuple(toks), Counter())[y] += 1
        return toks

    for t in trees:
        visit(t)
    return [(list(k), c.most_common(1)[0][0]) for k, c in votes.items()]


def find_tree_files(data_dir: Path) -> tuple[dict[str, str], list[Path]]:
    """Read {train,dev,test}.txt from ``data_dir/trees/``, ``data_dir/`` or the release zip (whichever is present).

    Returns ({split: text}, [files read])."""
    data_dir = Path(data_dir)
    for folder in (data_dir / "trees", data_dir):
        paths = {s: folder / f"{s}.txt" for s in SPLITS}
        if all(p.is_file() for p in paths.values()):
            return {s: p.read_text(encoding="utf-8") for s, p in paths.items()}, list(paths.values())
    zips = sorted(data_dir.glob("*.zip")) if data_dir.is_dir() else ([data_dir] if data_dir.suffix == ".zip" else [])
    for zpath in zips:
        with zipfile.ZipFile(zpath) as z:
            names = {Path(n).name: n for n in z.namelist() if n.endswith(".txt")}
            if all(f"{s}.txt" in names for s in SPLITS):
                texts = {s: io.TextIOWrapper(z.open(names[f"{s}.txt"]), encoding="utf-8").read() for s in SPLITS}
                return texts, [zpath]
    raise FileNotFoundError(f"no SST trees in {data_dir}: expected trees/train.txt, dev.txt, test.txt or "
                            "trainDevTestTrees_PTB.zip")


# ---- vocabulary ------------------------------------------------------------------------------------------------
PAD, UNK = "<pad>", "<unk>"


def build_vocab(token_lists, max_size: int, min_freq: int = 1) -> list[str]:
    """Most frequent first, capped (keeps the weights small); ids 0 and 1 are <pad> and <unk>."""
    counts = Counter(t for toks in token_lists for t in toks)
    words = [w for w, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if c >= min_freq]
    return [PAD, UNK] + words[:max(0, max_size - 2)]
