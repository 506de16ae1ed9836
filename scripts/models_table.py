"""Print the README's "Models" table from the weights cards (never typed by hand; tests/test_readme.py checks it).

    python scripts/models_table.py
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# task -> the card metrics that the task's issue sets a target for: (key, label, scale, target text)
HEADLINES = {
    "image_classification": [("accuracy", "test accuracy", 100, ">= 88%")],
    "captioning": [("bleu4", "BLEU-4 (beam {beam})", 1, ">= 12"), ("bleu1", "BLEU-1 (beam {beam})", 1, ">= 55")],
    "music": [("nll", "test NLL per step (88 keys)", 1, "<= 8.5")],
    "names_origin": [("accuracy", "test accuracy (18 languages)", 100, "--")],
    "names_generate": [("nll_per_char", "test NLL per character", 1, "--")],
    "sentiment": [("accuracy", "SST-2 test accuracy", 100, ">= 85%"),
                  ("negation_accuracy", "negation set (18 sentences of ours)", 100, ">= 80%")],
    "ner": [("f1", "CoNLL-2003 test entity F1 (seqeval)", 100, ">= 88"),
            ("probe_accuracy", "everyday sentences exactly right (36 of ours)", 100, ">= 90% (aim)")],
    "video": [("accuracy", "frame accuracy", 100, "--"), ("unreadable_accuracy", "on unreadable frames", 100, "--")],
    "translation": [("bleu_le10", "BLEU, <= 10 words (beam 5, multi-ref)", 1, ">= 37"),
                    ("bleu_le10_casual", "the same typed in lower case, no final punctuation", 1, ">= 95% of the above"),
                    ("bleu", "BLEU, all lengths", 1, "--")],
}


def rows() -> list[str]:
    from core.registry import discover
    from core.weights import read_card

    from core.shapes import shape_spec

    reg = discover()
    out = ["| task | shape | served model | metric | test | target |", "|---|---|---|---|---|---|"]
    for name in sorted(reg.tasks):
        task = reg.tasks[name]
        words = task.display  # the same words as the app's Model card (core.task.Display)
        title, shape = task.title, shape_spec(task.shape).label
        card_path = task.weights_path() / "card.json"
        if not card_path.exists():
            out.append(f"| {title} | {shape} | (no weights yet) | | | |")
            continue
        card = read_card(card_path.parent)
        heads = HEADLINES.get(name) or [(card.metric, words.metric_label(card.metric), 1, "--")]
        served = words.variant(card.served_variant or "default") or card.served_variant
        if card.ensemble is not None:  # core.ensemble: the served system mixes several variants
            served = " + ".join(words.variant(m) or m for m in card.ensemble.members) + " (ensemble)"
        for key, label, scale, target in heads:
            value = card.metrics.get(key)
            digits = 2 if scale == 1 and isinstance(value, float) and value < 10 else 1  # NLLs need two
            shown = f"{value * scale:.{digits}f}" if isinstance(value, (int, float)) else "?"
            beam = card.metrics.get("beam")  # the test beam width the card was scored with
            label = label.format(beam=int(beam) if isinstance(beam, (int, float)) else "?")
            out.append(f"| {title} | {shape} | {served} | {label} | {shown} | {target} |")
    return out


if __name__ == "__main__":
    print("\n".join(rows()))
