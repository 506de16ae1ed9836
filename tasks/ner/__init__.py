"""Named entity recognition: one tag per word (many-to-many, aligned), and why reading both ways helps.

The seed's example, "Adam lists his Manhattan house for $37.5 million": a tagger reads the words and gives each a
tag -- Adam = person, Manhattan = location. A one-way RNN tags "Paris" before it has read "Hilton"; a bidirectional
one has read the whole sentence at every word. Both are trained here with the same budget and compared on the card.
"""

from __future__ import annotations

import random
from dataclasses import asdict, fields
from pathlib import Path

import torch
import torch.nn as nn

from core.task import BadInput, Demo, Recipe, Splits, Task
from core.weights import answering, ensemble_info
from tasks.ner.data import (
    Corpus,
    Encoder,
    bio_to_spans,
    bucket_batches,
    build_meta,
    collate,
    read_conll,
    synthetic_sentences,
    tokenize,
)
from tasks.ner.model import NERConfig, NEREnsemble, NERTagger

MAX_CHARS = 5000  # longer text is cut here (and the answer says so): a page of text, tagged well within 100 ms
MAX_TOKENS = 200  # the same bound in words; WikiANN sentences are ~8 words, the longest 439
VAL_SENTENCES = 2000  # validation during training uses a fixed random 2,000 of the 10,000 dev sentences (time)
TYPE_NAMES = {"PER": "person", "ORG": "organisation", "LOC": "location"}


def _sentence(input) -> tuple[str, int | None]:
    """Accepts text, or {"text": ..., "word": i} (the word the inspector / direction view looks at)."""
    word = None
    if isinstance(input, dict):
        word = input.get("word")
        input = input.get("text")
    if input is None:
        raise BadInput("Type a sentence to tag, e.g. \"Adam lists his Manhattan house for $37.5 million.\"")
    if not isinstance(input, str):
        raise BadInput(f"The tagger reads text; got {type(input).__name__}.")
    if not input.strip():
        raise BadInput("The text is empty: type a sentence, e.g. \"Adam lists his Manhattan house.\"")
    if word is not None and not isinstance(word, int):
        raise BadInput("'word' must be the index of a word in the sentence.")
    return input, word


class NERTask(Task):
    name = "ner"
    title = "Named entities (tagger)"
    shape = "many_to_many"
    summary = "A sentence in, a tag per word out (person / organisation / location), read in both directions."
    config = asdict(NERConfig())
    recipe = Recipe(
        metric="f1",
        epochs=8,  # the same epoch count for every variant (val F1 flattens by epoch 8); max_minutes is the cap
        batch_size=32,
        lr=4e-3,
        clip_norm=5.0,
        patience=4,
        lr_decay=0.9,
        max_minutes=8.0,  # x 3 variants + loading + validation + test evaluation: the whole command fits in 30 min
        serve="bilstm",
        keep_variants=True,  # the page shows the one-way model's tags beside the served one's
        variants={
            # Recurrent parameters are matched (~370k) so the comparison is about direction, not size.
            "bilstm": {"cell": "lstm", "bidirectional": True, "hidden_size": 150},
            "lstm": {"cell": "lstm", "bidirectional": False, "hidden_size": 235},
            "gru": {"cell": "gru", "bidirectional": True, "hidden_size": 181},
        },
    )
    page = "tasks.ner.page:render"
    data_subdir = "ner/wikiann_en"
    data_source = ("WikiANN English (Pan et al. 2017, text from Wikipedia, CC BY-SA) in the Rahimi et al. 2019 "
                   "train/dev/test split, via github.com/davidsbatista/NER-datasets")
    primary_input = "text"

    # ---- model -------------------------------------------------------------------------------------------------
    def build_model(self, config: dict, meta: dict) -> nn.Module:
        known = {f.name for f in fields(NERConfig)}
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"unknown config fields {sorted(unknown)}; known: {sorted(known)}")
        model = NERTagger(NERConfig(**config), meta)
        model.vocab = Encoder(meta)  # plain attribute: how predict() turns words into ids
        return model

    def ensemble(self, models, weights):
        """The served tagger with other trained variants, tagging as one mixed CRF (tasks.ner.model.NEREnsemble);
        ``python -m core.ensemble ner --members bilstm,gru`` picks the weights on validation F1."""
        return NEREnsemble(list(models), list(weights))


    # ---- data --------------------------------------------------------------------------------------------------
    def _splits(self, train, dev, test, files, dataset, val_subset: int | None) -> Splits:
        meta = build_meta(train)
        enc = Encoder(meta)
        val = dev
        if val_subset and len(dev) > val_subset:
            keep = sorted(random.Random(0).sample(range(len(dev)), val_subset))
            val = [dev[i] for i in keep]
        return Splits(train=Corpus(train, hold_out=True).encoded(enc), val=Corpus(val).encoded(enc),
                      test=Corpus(test).encoded(enc), meta=meta, files=files, dataset=dataset)

    def load_data(self, data_dir: Path) -> Splits:
        data_dir = Path(data_dir)
        paths = {}
        for split in ("train", "dev", "test"):
            cands = [data_dir / split, data_dir / f"{split}.txt", data_dir / f"{split}.conll"]
            found = next((p for p in cands if p.is_file()), None)
            if found is None:
                names = ", ".join(c.name for c in cands)
                raise FileNotFoundError(f"no {split} file in {data_dir} (looked for {names})")
            paths[split] = found
        train, dev, test = (read_conll(paths[s]) for s in ("train", "dev", "test"))
        desc = (f"WikiANN en (Rahimi et al. 2019 split): train {len(train):,} / dev {len(dev):,} / test {len(test):,} "
                f"sentences; validation during training = a fixed random {VAL_SENTENCES:,} of the dev sentences "
                f"(seed 0), test = all {len(test):,}")
        return self._splits(train, dev, test, list(paths.values()), desc, VAL_SENTENCES)

    def synthetic_data(self, seed: int = 0) -> Splits:
        sents = synthetic_sentences(90, seed)
        return self._splits(sents[:60], sents[60:75], sents[75:], [], "synthetic template sentences", None)

    def batches(self, data: Corpus, batch_size: int, shuffle: bool, seed: int = 0):
        for idx in bucket_batches([len(r) for r in data.rows], batch_size, shuffle, seed):
            yield collate([data.rows[i] for i in idx], [data.tags[i] for i in idx], lead=data.lead)

    def loss(self, model: nn.Module, batch: dict) -> torch.Tensor:
        logits = model(batch["x"], batch["lengths"])  # (B, T, C)
        return getattr(model, "module", model).nll(logits, batch["tags"], batch["lengths"])

    @torch.no_grad()
    def tag_corpus(self, model: nn.Module, data: Corpus, batch_size: int = 256) -> list[list[str]]:
        """Predicted tag strings for every sentence of a split, in order."""
        data = data.encoded(model.vocab)
        device = next(model.parameters()).device
        model = answering(model)
        preds: list[list[str] | None] = [None] * len(data)
        for idx in bucket_batches([len(r) for r in data.rows], batch_size, shuffle=False):
            b = collate([data.rows[i] for i in idx], lead=data.lead)
            logits = model(b["x"].to(device), b["lengths"].to(device))  # (B, T, C)
            for i, path in zip(idx, model.decode(logits.float(), b["lengths"].to(device))):
                preds[i] = [model.labels[k] for k in path]
        return preds

    def evaluate(self, model: nn.Module, data: Corpus) -> dict[str, float]:
        from seqeval.metrics import classification_report

        was_training = model.training
        model.eval()
        preds = self.tag_corpus(model, data)
        model.train(was_training)
        gold = [tags for _, tags in data.sents]
        # seqeval's default (conlleval) mode: an entity counts only if its type and exact span both match.
        rep = classification_report(gold, preds, output_dict=True, zero_division=0)
        micro = rep["micro avg"]
        out = {"f1": float(micro["f1-score"]), "precision": float(micro["precision"]),
               "recall": float(micro["recall"])}
        for typ in ("PER", "ORG", "LOC"):
            out[f"f1_{typ}"] = float(rep.get(typ, {}).get("f1-score", 0.0))
        n = sum(len(g) for g in gold)
        out["token_accuracy"] = sum(a == b for g, p in zip(gold, preds) for a, b in zip(g, p)) / max(n, 1)
        return out

    # ---- serving -----------------------------------------------------------------------------------------------
    def demos(self) -> list[Demo]:
        return [
            Demo("The seed's sentence", "Adam lists his Manhattan house for $37.5 million.",
                 "Wanted: Adam = person, Manhattan = place, the money untagged (WikiANN has no MONEY type). In "
                 "WikiANN 'lists' and 'house' occur almost only inside titles, so this model runs the words "
                 "together: a real failure, open the Inspect tab to see which words pulled it."),
            Demo("Paris and Paris", "Paris Hilton checked into a small hotel in Paris last night.",
                 "Only the word AFTER the first 'Paris' tells it is not the city: compare the 'forward only' tags "
                 "and the backward half's push."),
            Demo("Made-up names", "Okonkwo Adeyemi left Brightwater Analytics to open a bakery in Port Amberley.",
                 "None of these names is in the vocabulary: the character CNN has to recognise them by spelling."),
            Demo("Accents and hyphens", "Zoë Kravitz and Björn Ulvaeus met the mayor of Saint-Étienne in São Paulo.",
                 "Unicode names and a hyphenated city stay whole."),
            Demo("Organisations", "The World Health Organization and Doctors Without Borders sent teams to Haiti.",
                 "Long organisation names: the B-/I- tags must agree over four words."),
            Demo("Jordan and Jordan", "Michael Jordan flew to Jordan, where King Abdullah welcomed him in Amman.",
                 "The same word, two types, decided by context on both sides."),
            Demo("A Wikipedia-style title", "Riverside County Museum ( Oregon )",
                 "Most WikiANN sentences look like this: a page title and a place in brackets."),
        ]

    def _run(self, model: nn.Module, text: str):
        """Tokenize (truncating huge input), then logits (1, T, C), probabilities (T, C) and the best path."""
        note = ""
        if len(text) > MAX_CHARS:
            note = f"The text was cut to its first {MAX_CHARS:,} characters (it had {len(text):,})."
            text = text[:MAX_CHARS]
        toks = tokenize(text)
        if not toks:
            raise BadInput("No words found in the text.")
        if len(toks) > MAX_TOKENS:
            note = f"Only the first {MAX_TOKENS} words were tagged (the text has {len(toks)})."
            toks = toks[:MAX_TOKENS]
        dev = next(model.parameters()).device
        x = model.vocab.encode([t for t, _, _ in toks])[None].to(dev)  # (1, T, 2 + L)
        lengths = torch.tensor([len(toks)], device=dev)
        return text, toks, x, lengths, note

    def predict(self, model: nn.Module, input) -> dict:
        """Tags by the card's ensemble when there is one; {"text": ..., "single": True} asks the served variant."""
        text, word = _sentence(input)
        served = model
        model = answering(model, single=bool(input.get("single")) if isinstance(input, dict) else False)
        with torch.inference_mode():
            text, toks, x, lengths, note = self._run(model, text)
            logits = model(x, lengths)  # (1, T, C)
            probs = model.probabilities(logits, lengths)[0]  # (T, C)
            path = model.decode(logits, lengths)[0]
        tags = [model.labels[k] for k in path]
        conf = [float(probs[i, k]) for i, k in enumerate(path)]
        spans = []
        for typ, s, e in bio_to_spans(tags):
            start, end = toks[s][1], toks[e - 1][2]
            spans.append({"text": text[start:end], "type": typ, "start": start, "end": end,
                          "confidence": sum(conf[s:e]) / (e - s), "first_word": s, "last_word": e - 1})
        n_emb = model.embed.num_embedded  # ids past it (and <unk>) have no word vector: spelling and lexicon only
        unknown = [t for (t, _, _), row in zip(toks, x[0]) if int(row[0]) == 1 or int(row[0]) >= n_emb]
        return {"tokens": [t for t, _, _ in toks], "offsets": [(s, e) for _, s, e in toks], "tags": tags,
                "confidences": conf, "spans": spans, "unknown_words": unknown, "note": note,
                "probs": {lab: [float(p) for p in probs[:, k]] for k, lab in enumerate(model.labels)},
                "ensemble": ensemble_info(served) if model is not served else None}

    def direction_parts(self, model: nn.Module, input) -> dict:
        """For each word, how much the forward and the backward half of the recurrent layer added to each tag's
        score (logit = forward + backward + bias; ManyToMany.direction_parts). Lists of (T, C) rows."""
        text, _ = _sentence(input)
        with torch.inference_mode():
            text, toks, x, lengths, _ = self._run(model, text)
            parts = model.direction_parts(x, lengths)
        return {"tokens": [t for t, _, _ in toks], "labels": list(model.labels),
                **{k: v[0].tolist() for k, v in parts.items()}}

    def inspect_loss(self, model: nn.Module, input) -> tuple[torch.Tensor, list[str]]:
        """-log p(tag of one word) under the model (CRF marginal), target = the model's own tag for that word.
        ``input`` may be {"text": ..., "word": i}; without a word, the first word of the first entity (else 0)."""
        text, word = _sentence(input)
        text, toks, x, lengths, _ = self._run(model, text)
        logits = model(x, lengths)  # (1, T, C)
        path = model.decode(logits.detach(), lengths)[0]
        if word is None:
            spans = bio_to_spans([model.labels[k] for k in path])
            word = spans[0][1] if spans else 0
        if not 0 <= word < len(toks):
            raise BadInput(f"word {word} is not in the sentence (it has {len(toks)} words).")
        probs = model.probabilities(logits, lengths)[0]  # (T, C)
        loss = -torch.log(probs[word, path[word]].clamp_min(1e-12))
        return loss, [t for t, _, _ in toks]


TASK = NERTask()
