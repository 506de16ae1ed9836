"""Is a typed name spelt like the training names? If not, the origin classifier's answer is a guess.

The classifier always answers with one of its 18 languages, even for "xyzzyq". A name's letter triples (with its
start and end marked: "^ko", "kow", ..., "yk$") tell how familiar its spelling is: the share of them that occur
in some training name. Real names the model never saw (the validation split) almost all score high; the
threshold is the score that only 1 in 100 of them falls below, so a name under it is spelt unlike 99% of real
unseen names. Both the triples and the threshold come from the data (the training and validation splits) and
live in the card's meta["spelling"], written by core.train, or for an existing card by

    python -m rnnlab_names.spelling --data-dir ../shared/data/names/names --weights <names_origin weights folder>
"""

from __future__ import annotations

import argparse
import sys

QUANTILE = 0.01  # share of real, unseen (validation) names allowed to fall under the threshold


def trigrams(name: str) -> list[str]:
    """The name's letter triples, start and end marked: "Kim" -> ["^ki", "kim", "im$"]."""
    s = "^" + name.lower() + "$"  # lower case, as the classifier reads names
    return [s[i:i + 3] for i in range(len(s) - 2)]


def coverage(name: str, known: set[str]) -> float:
    """Share of the name's letter triples that occur in some training name (1.0: every one does)."""
    grams = trigrams(name)
    return sum(g in known for g in grams) / max(len(grams), 1)


def spelling_record(train_names: list[str], val_names: list[str], quantile: float = QUANTILE) -> dict:
    """meta["spelling"]: the training names' letter triples and the familiarity threshold from validation."""
    known = {g for n in train_names for g in trigrams(n)}
    scores = sorted(coverage(n, known) for n in val_names)
    threshold = scores[int(len(scores) * quantile)] if scores else 0.0
    return {"trigrams": sorted(known), "threshold": threshold, "quantile": quantile,
            "val_flagged": sum(s < threshold for s in scores) / max(len(scores), 1)}


def spelling_note(name: str, record: dict | None) -> str | None:
    """A warning when the name is spelt unlike the training names (None when familiar, or no record)."""
    if not record or not record.get("trigrams"):
        return None
    known = set(record["trigrams"])
    score = coverage(name, known)
    if score >= float(record["threshold"]):
        return None
    strange = [g.strip("^$") for g in trigrams(name) if g not in known]
    shown = ", ".join(f"'{g}'" for g in dict.fromkeys(strange))
    return (f"This name is spelt unlike the names the model learnt from: only {score:.0%} of its letter triples "
            f"occur in them (not {shown}), while 99 in 100 real names it never saw score at least "
            f"{float(record['threshold']):.0%}. The model still picks one of its languages, but the answer is a guess.")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rnnlab_names.spelling",
                                 description="Add the spelling-familiarity record to a names_origin card.")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--weights", help="weights folder (default: the installed package's)")
    args = ap.parse_args(argv)

    from pathlib import Path

    from core.weights import read_card, write_card
    from rnnlab_names.origin import NamesOrigin

    task = NamesOrigin()
    folder = Path(args.weights or task.weights_path())
    splits = task.load_data(Path(args.data_dir))
    card = read_card(folder)
    card.meta["spelling"] = spelling_record(splits.train.names, splits.val.names)
    write_card(folder, card)
    rec = card.meta["spelling"]
    print(f"names_origin: {len(rec['trigrams'])} letter triples; threshold {rec['threshold']:.3f} "
          f"({rec['val_flagged']:.1%} of validation names under it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
