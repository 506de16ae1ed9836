"""Sentiment analysis on the Stanford Sentiment Treebank (SST-2): many words in, one answer out.

"The movie was not at all good" has to be read in order, with context, before one label comes out: the recurrent
network reads word by word and answers from its last state (core.shapes.ManyToOne). Trained on every labelled
non-neutral phrase of the training trees, selected on the dev sentences, reported on the 1,821 test sentences.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from core.calibrate import split_logits, temperature_of
from core.data import Vocab, bucket_batches, guess_note, pad, rare_ids_from, seq_lengths
from core.task import BadInput, Demo, Display, Headline, Metric, Recipe, Splits, Task
from tasks.sentiment import data as D
from tasks.sentiment.model import PAD_ID, UNK_ID, build, default_config

MAX_TOKENS = 256  # longer reviews are cut here (and the answer says so): keeps every answer well under 100 ms
MAX_CHARS = 20_000  # characters looked at before tokenizing; 256 tokens never need more
MAX_VOCAB = 20_000  # cap by frequency: vocab x embed_size is most of the weights file
# "Which words pushed the answer": integrated gradients with IG_STEPS path points, more (up to IG_MAX_STEPS) when
# they do not add up yet, while path points x words stays within IG_BUDGET (a long review keeps the first count)
IG_STEPS, IG_MAX_STEPS, IG_BUDGET = 32, 128, 4096


@dataclass
class Examples:
    """One split: token lists, their ids under the training vocabulary, and 0/1 labels."""

    tokens: list[list[str]]
    ids: list[list[int]]
    labels: list[int]
    kind: str = ""  # "phrases" or "sentences", for the card

    def __len__(self) -> int:
        return len(self.labels)


def encode(tokens: list[str], stoi: dict[str, int]) -> list[int]:
    return [stoi.get(t, UNK_ID) for t in tokens]


def make_examples(pairs: list[tuple[list[str], int]], stoi: dict[str, int], kind: str) -> Examples:
    pairs = [(t, y) for t, y in pairs if t]
    return Examples([t for t, _ in pairs], [encode(t, stoi) for t, _ in pairs], [y for _, y in pairs], kind)


# A negation and contrast set written for this project (not from the treebank): each sentence has the label a
# careful reader gives it. Word-counting models fail most of these; a model that reads in order should not.
NEGATION_SET: list[tuple[str, str, str]] = [
    ("The movie was not at all good.", "negative", "negation of a positive word"),
    ("Not bad at all.", "positive", "negation of a negative word"),
    ("You are beautiful but not intelligent.", "negative", "contrast, then negation"),
    ("I expected to hate it and I didn't.", "positive", "negated expectation"),
    ("This is not a good film.", "negative", "negation of a positive word"),
    ("This is not a bad film.", "positive", "negation of a negative word"),
    ("I did not like this movie.", "negative", "negated verb"),
    ("It is never boring.", "positive", "never + negative word"),
    ("It isn't funny.", "negative", "contracted negation"),
    ("The acting is good, but the story is not.", "negative", "contrast, negated ellipsis"),
    ("The plot is thin, but the performances are wonderful.", "positive", "contrast: the second clause wins"),
    ("The performances are wonderful, but the plot is thin and dull.", "negative", "contrast: the second clause wins"),
    ("Nothing about this film works.", "negative", "negative quantifier"),
    ("I can't say I enjoyed it.", "negative", "negated verb of saying"),
    ("It was not as good as I had hoped.", "negative", "negated comparison"),
    ("I wouldn't call it a masterpiece, but it is never dull.", "positive", "two negations"),
    ("There is nothing wrong with this movie.", "positive", "negated fault"),
    ("Far from a failure, it is a delight.", "positive", "negated negative noun"),
]


class SentimentTask(Task):
    name = "sentiment"
    title = "Sentiment (SST-2)"
    shape = "many_to_one"
    summary = "A movie review in, positive or negative out: the network reads every word, then answers once."
    config = default_config()
    recipe = Recipe(
        metric="accuracy",
        epochs=30,  # an upper bound; the time budget and early stopping end training sooner
        batch_size=128,  # phrases per step; bucketed by length so most batches need no padding
        lr=2e-3,
        weight_decay=0.0,
        clip_norm=5.0,
        patience=4,
        max_minutes=12.0,  # per variant: four variants (plus loading and test runs) fit in 50 minutes on one thread
        lr_decay=0.85,
        variants={
            "rnn_tanh": {"cell": "rnn_tanh"},
            "gru": {"cell": "gru"},
            "lstm": {"cell": "lstm"},
            # 256 units per direction: "same budget" is the same wall-clock minutes, in which the wider two-way
            # LSTM reads fewer epochs. The negation set guided the width (docs/models.md); validation accuracy
            # alone picks the served epoch.
            "bilstm": {"cell": "lstm", "bidirectional": True, "hidden_size": 256},
            # the 2024 linear recurrences, one way, with the GRU's recurrent-layer parameter count (154,560): their
            # gates read only x_t, so they are wider for the same weights
            "mingru": {"cell": "mingru", "hidden_size": 480},
            "minlstm": {"cell": "minlstm", "hidden_size": 320},
        },
        anchors={
            "LSTM (Tai et al. 2015, GloVe vectors)": "84.9% SST-2 test accuracy -- arXiv:1503.00075, Table 2",
            "Bi-LSTM (Tai et al. 2015, GloVe vectors)": "87.5% SST-2 test accuracy -- arXiv:1503.00075, Table 2",
            "RNTN (Socher et al. 2013, no pretrained vectors)": "85.4% SST-2 test accuracy -- EMNLP 2013, Table 1",
        },
    )
    page = "tasks.sentiment.page:render"
    data_subdir = "sentiment/sst"
    data_source = ("Stanford Sentiment Treebank v1.0 (Socher et al., EMNLP 2013), PTB-tree release "
                   "trainDevTestTrees_PTB.zip; snippets from Rotten Tomatoes (Pang & Lee 2005). Research use.")
    primary_input = "text"
    headlines = (Headline("accuracy", ">= 85%", "SST-2"), Headline("negation_accuracy", ">= 80%", "ours"))
    display = Display(  # the words for the card's metrics and variants (core.task.check_task holds the card to them)
        metrics={"accuracy": Metric("accuracy", "%"),
                 "nll": Metric("negative log-likelihood per review", "nats", "lower"),
                 "examples": Metric("reviews scored", "", ""),
                 "negation_accuracy": Metric("accuracy on the 18 negation sentences", "%")},
        variants={"bilstm": "BiLSTM (an LSTM reading both ways)"},
        inputs="a movie review, read word by word")
    metric_notes = {"negation_accuracy": "not from the test split: the project's 18 negation sentences (the same "
                                         "in both columns). They guided the recipe, so this is not a blind test."}

    # ---- model -------------------------------------------------------------------------------------------------
    def build_model(self, config: dict, meta: dict):
        return build(config, len(meta["vocab"]))

    def vocab(self, meta: dict, key: str = "vocab") -> Vocab:
        """The card's vocabulary: every id's word, <pad> and <unk> first, then by training frequency."""
        return Vocab.from_meta(meta, key, specials=(D.PAD, D.UNK), with_specials=True)

    # ---- data --------------------------------------------------------------------------------------------------
    def _splits(self, trees: dict[str, list[D.Node]], files: list[Path], dataset: str) -> Splits:
        vocab = D.build_vocab([D.normalise_leaves(t.leaves()) for t in trees["train"]], MAX_VOCAB)
        stoi = {w: i for i, w in enumerate(vocab)}
        train = make_examples(D.sst2_phrases(trees["train"]), stoi, "phrases")
        val = make_examples(D.sst2_sentences(trees["dev"]), stoi, "sentences")
        test = make_examples(D.sst2_sentences(trees["test"]), stoi, "sentences")
        meta = {"vocab": vocab, "labels": list(D.LABELS), "max_tokens": MAX_TOKENS,
                "sizes": {"train_phrases": len(train), "dev_sentences": len(val), "test_sentences": len(test)}}
        return Splits(train=train, val=val, test=test, meta=meta, files=files, dataset=dataset)

    def load_data(self, data_dir: Path) -> Splits:
        texts, files = D.find_tree_files(Path(data_dir))
        trees = {s: D.read_trees(texts[s]) for s in D.SPLITS}
        desc = ("SST-2 (binary, neutral dropped): train = every labelled non-neutral phrase of the "
                f"{len(trees['train'])} train trees, deduplicated; dev/test = whole non-neutral sentences")
        return self._splits(trees, files, desc)

    def synthetic_data(self, seed: int = 0) -> Splits:
        """Tiny trees in the treebank's own format: "<adverb> <adjective> <noun> ." with a negation that flips."""
        rng = random.Random(seed)
        good, bad = ["good", "great", "fine", "moving"], ["bad", "dull", "awful", "flat"]
        nouns, advs = ["film", "movie", "story", "cast"], ["very", "really", "quite"]

        def tree() -> str:
            pos = rng.random() < 0.5
            neg = rng.random() < 0.3
            adj = rng.choice(good if pos else bad)
            y = (pos != neg)
            lab = 3 if y else 1
            adj_t = f"(2 (2 not) ({3 if pos else 1} {adj}))" if neg else f"({3 if pos else 1} {adj})"
            return (f"({lab} (2 (2 The) (2 {rng.choice(nouns)})) ({lab} (2 is) ({lab} (2 {rng.choice(advs)}) "
                    f"{adj_t})) (2 .))")

        texts = {s: "\n".join(tree() for _ in range(n)) for s, n in (("train", 48), ("dev", 16), ("test", 16))}
        trees = {s: D.read_trees(t) for s, t in texts.items()}
        return self._splits(trees, [], "synthetic trees")

    def batches(self, data: Examples, batch_size: int, shuffle: bool, seed: int = 0):
        """Length-bucketed batches (core.data.bucket_batches): most then hold one length only and need no padding."""
        for chunk in bucket_batches([len(ids) for ids in data.ids], batch_size, shuffle, seed):
            yield collate([data.ids[i] for i in chunk], [data.labels[i] for i in chunk])

    def loss(self, model, batch) -> torch.Tensor:
        logits = model(batch["x"], batch["lengths"])  # (B, 2)
        return F.cross_entropy(logits.float(), batch["y"])

    @torch.no_grad()
    def evaluate(self, model, data: Examples) -> dict[str, float]:
        was = model.training
        model.eval()
        correct, nll, n = 0, 0.0, 0
        device = next(model.parameters()).device
        for batch in self.batches(data, 256, shuffle=False):
            logits = model(batch["x"].to(device), batch["lengths"].to(device)).float()  # (B, 2)
            y = batch["y"].to(device)
            correct += int((logits.argmax(-1) == y).sum())
            nll += float(F.cross_entropy(logits, y, reduction="sum"))
            n += len(y)
        # The project's negation set (18 sentences, not from the treebank) rides along with every evaluation, so
        # the card and the training history show it for every variant and epoch. Not used to select anything.
        neg = self.negation_report(model)
        model.train(was)
        out = {"accuracy": correct / max(n, 1), "nll": nll / max(n, 1), "examples": float(n)}
        if neg:
            out["negation_accuracy"] = sum(r["right"] for r in neg) / len(neg)
        return out

    @torch.no_grad()
    def class_logits(self, model, data: Examples) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, 2) and labels (N,) of a split, for core.calibrate."""
        return split_logits(model, self.batches(data, 256, shuffle=False), lambda m, b: m(b["x"], b["lengths"]))

    # ---- serving -----------------------------------------------------------------------------------------------
    def demos(self) -> list[Demo]:
        return [
            Demo("not at all good", "The movie was not at all good.", "the lesson's example: the answer comes last"),
            Demo("not bad at all", "Not bad at all.", "two negative-looking words, one positive meaning"),
            Demo("but ...", "You are beautiful but not intelligent.", "contrast: the end of the sentence decides"),
            Demo("expected to hate it", "I expected to hate it and I didn't.", "the turn comes in the last word"),
            Demo("a warm one", "A warm, funny and beautifully acted film that I would happily watch again.",
                 "plainly positive"),
            Demo("a long review", LONG_REVIEW, "a long review: watch ||dL/dh_t|| fade for the first words (Inspect)"),
        ]

    def prepare(self, model, text) -> tuple[list[str], list[int], bool]:
        """Text -> (tokens, ids, truncated). BadInput for anything that is not a non-empty text."""
        if text is None or (isinstance(text, str) and not text.strip()):
            raise BadInput("Type a review (a sentence or more) to classify.")
        if not isinstance(text, str):
            raise BadInput(f"Type a review as text (got {type(text).__name__}).")
        cut = len(text) > MAX_CHARS
        tokens = D.tokenize(text[:MAX_CHARS])
        if not tokens:
            raise BadInput("No words left after removing HTML tags and control characters: type a review.")
        truncated = cut or len(tokens) > MAX_TOKENS
        tokens = tokens[:MAX_TOKENS]
        return tokens, encode(tokens, model.runtime.vocab.stoi), truncated

    def predict(self, model, text) -> dict:
        tokens, ids, truncated = self.prepare(model, text)
        with torch.inference_mode():
            x = torch.tensor([ids], dtype=torch.long)  # (1, T)
            p = float(torch.softmax(model(x).float() / temperature_of(model), -1)[0, 1])  # calibrated
            ends, pref = model.prefix_probs(x)
        unknown = sorted({t for t, i in zip(tokens, ids) if i == UNK_ID})
        label = D.LABELS[int(p >= 0.5)]
        note = ""
        if truncated:
            note = f"Only the first {MAX_TOKENS} words were read (the text is longer)."
        rare = rare_ids_from(len(model.runtime.vocab.stoi))  # the vocabulary is sorted by training frequency
        guess = guess_note(tokens, [i == UNK_ID or i >= rare for i in ids], "English movie reviews")
        return {"label": label, "p_positive": p, "confidence": max(p, 1 - p), "tokens": tokens,
                "prefix_p": [float(v) for v in pref], "prefix_ends": ends, "unknown": unknown,
                "truncated": truncated, "note": note, "guess": guess}

    def inspect_loss(self, model, text):
        tokens, ids, _ = self.prepare(model, text)
        device = next(model.parameters()).device
        x = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
        logits = model(x)  # (1, 2)
        target = logits.detach().argmax(-1)  # the model's own answer: what made it say so?
        return F.cross_entropy(logits.float(), target), tokens

    def word_pushes(self, model, text) -> dict:
        """Each word's push on the answer, in log-odds: integrated gradients (core.inspect.integrated_gradients)
        of the logit margin m = logit_positive - logit_negative = ln(P / (1 - P)) over the word vectors.

        The baseline is a review of as many *unknown* words (<unk> at every position; the model reads it as
        nearly neutral), so the pushes add up to m(review) - m(baseline): positive values push towards
        *positive*, negative towards *negative*, whatever the answer. The margin has no softmax in it, so a very
        sure model (P = 0.1%) still gets pushes of a readable size -- where the gradient of the loss against the
        model's own answer shrinks like 1 - P and reads 0.00. Returns tokens, values, margin, baseline, gap, steps."""
        from contextlib import nullcontext

        from core.inspect import integrated_gradients
        from core.layers import last_real_step, recording

        tokens, ids, _ = self.prepare(model, text)
        device = next(model.parameters()).device
        x = torch.tensor([ids], dtype=torch.long, device=device)  # (1, T)
        with torch.no_grad():
            emb = model.embed(x)[0]  # (T, E)
            base = model.embed(torch.full_like(x, UNK_ID))[0]  # (T, E)
        rnn = model.rnn

        def margin(path: torch.Tensor) -> torch.Tensor:  # (K, T, E) -> (K,)
            out, _ = rnn(path, None)  # (K, T, D*H)
            logits = model.head(last_real_step(out, None, rnn.hidden_size, rnn.bidirectional))  # (K, 2)
            return logits[:, 1] - logits[:, 0]

        max_steps = max(IG_STEPS, min(IG_MAX_STEPS, IG_BUDGET // max(1, len(ids))))
        # cuDNN's backward refuses eval mode: on a GPU the stepwise path (core.layers.recording) takes the gradient
        with recording() if device.type == "cuda" else nullcontext():
            att = integrated_gradients(margin, emb, base, steps=IG_STEPS, max_steps=max_steps)
        return {"tokens": tokens, "values": [float(v) for v in att.values], "margin": att.f_input,
                "baseline": att.f_baseline, "gap": att.gap, "steps": att.steps}

    def negation_report(self, model) -> list[dict]:
        """The negation set with the model's answers."""
        rows = []
        for text, want, kind in NEGATION_SET:
            out = self.predict(model, text)
            rows.append({"sentence": text, "expected": want, "model": out["label"],
                         "p_positive": out["p_positive"], "right": out["label"] == want, "kind": kind})
        return rows


def collate(ids: list[list[int]], labels: list[int]) -> dict[str, torch.Tensor]:
    return {"x": pad(ids, PAD_ID), "lengths": seq_lengths(ids),  # (B, T), (B,)
            "y": torch.tensor(labels, dtype=torch.long)}


LONG_REVIEW = (
    "I will admit that the first half hour of this film is a chore: the opening scenes are slow, the dialogue is "
    "clumsy, and for a while I wondered why anyone had bothered to make it at all. The supporting cast seems lost, "
    "the music is far too loud, and the jokes land with a thud. And yet, somewhere around the middle, something "
    "changes. The two leads find their rhythm, the story starts to breathe, and the small details that looked like "
    "padding turn out to matter. By the last act I was completely won over: it is a warm, funny and honest film, "
    "beautifully shot and wonderfully acted, and I would gladly see it again."
)

TASK = SentimentTask()
