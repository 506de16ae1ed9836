"""names_generate -- one-to-many: a language and a first letter -> new surnames, one character at a time.

The language is a one-hot vector turned into the GRU's initial state; the first letter (or a few) is the primer;
then the model samples a character, feeds it back in, and stops at the end-of-name token. Temperature and seed
make the sampling visible and repeatable. Metric: negative log-likelihood per character (end token included) on
the held-out names -- the same split as names_origin.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from core.data import config_from_dict, pad, seq_lengths, shuffled_batches
from core.layers import recording
from core.shapes import OneToMany
from core.task import BadInput, Demo, Display, Metric, Recipe, Splits, Task
from rnnlab_names.data import (
    BOS,
    EOS,
    PAD,
    SPECIALS,
    NamesData,
    NameSet,
    build_vocab,
    clean_name,
    decode,
    encode,
    make_sets,
    stratified_split,
)
from rnnlab_names.origin import SOURCE

MAX_LEN = 24  # characters per generated name (the longest real surname has 20)
MAX_COUNT = 20  # names per request: a page of them, and p95 latency stays far under 100 ms


@dataclass
class Config:
    """Constructor arguments of build_model, each with the reason for its value."""

    cell: str = "gru"  # gated, and a third fewer weights than an LSTM for the same width
    embed_size: int = 32  # ~90 characters need few dimensions
    hidden_size: int = 256  # enough to keep 18 languages' spelling habits apart
    num_layers: int = 2  # the second layer sharpens which letter pairs are allowed (NLL -0.05 in trials)
    dropout: float = 0.2  # between layers and on the head: 14k names are few for ~600k weights


def batch_of(names: list[str], langs: list[int], n_langs: int, chars: list[str]) -> dict[str, torch.Tensor]:
    seqs = [[BOS] + encode(n, chars)[0] + [EOS] for n in names]
    x = pad([s[:-1] for s in seqs], PAD)  # (B, T) inputs: <s> c1 .. cn
    y = pad([s[1:] for s in seqs], PAD)  # (B, T) targets: c1 .. cn </s>
    cond = F.one_hot(torch.tensor(langs, dtype=torch.long), n_langs).float()  # (B, L)
    return {"x": x, "y": y, "lengths": seq_lengths([s[1:] for s in seqs]), "cond": cond}


class NamesGenerate(NamesData, Task):
    name = "names_generate"
    title = "Names: generate by language"
    shape = "one_to_many"
    summary = "A language and a first letter -> new surnames, sampled one character at a time (temperature, seed)."
    config = asdict(Config())
    recipe = Recipe(metric="nll_per_char", higher_is_better=False, epochs=30, batch_size=64, lr=2e-3,
                    clip_norm=1.0, patience=4, max_minutes=8.0, lr_decay=0.93)
    page = "rnnlab_names.page:render_generate"
    data_subdir = "names/names"
    data_source = SOURCE
    weights_dir = Path(__file__).parent / "weights" / "names_generate"
    primary_input = "settings"
    input_type = dict  # {language, start, temperature, seed, count}
    display = Display(  # the words for the card's metrics and variants (core.task.check_task holds the card to them)
        metrics={"nll_per_char": Metric("negative log-likelihood per letter", "nats", "lower"),
                 "perplexity": Metric("perplexity per letter (choices the model hesitates between)", "", "lower"),
                 "next_char_accuracy": Metric("next letter guessed right", "%")},
        variants={"default": "GRU, one way"},
        terms={"names_origin": "the language-of-origin task"},
        inputs="a language, first letters and a temperature")

    # ---- model -------------------------------------------------------------------------------------------------
    def build_model(self, config: dict, meta: dict) -> OneToMany:
        cfg = config_from_dict(Config, config)
        return OneToMany(len(SPECIALS) + len(meta["chars"]), cfg.embed_size, cfg.hidden_size, cfg.cell,
                         cfg.num_layers, cfg.dropout, cond_size=len(meta["labels"]))

    # ---- data --------------------------------------------------------------------------------------------------
    split_note = "as names_origin"  # the end of the dataset description on the card

    def _splits(self, pairs, files, seed: int, dataset: str) -> Splits:
        sets = make_sets(stratified_split(pairs, seed=seed))
        chars = build_vocab(sets["train"].names)
        for s in sets.values():
            s.chars = chars
        meta = {"chars": chars, "labels": sets["train"].labels, "split_seed": seed,
                # first letters seen per language: the page offers them, and says when a choice is unusual
                "first_letters": {lab: sorted({n[0] for n, li in zip(sets["train"].names, sets["train"].langs)
                                               if sets["train"].labels[li] == lab})
                                  for lab in sets["train"].labels}}
        return Splits(sets["train"], sets["val"], sets["test"], meta, files=files, dataset=dataset)

    def batches(self, data: NameSet, batch_size: int, shuffle: bool, seed: int = 0):
        for idx in shuffled_batches(len(data), batch_size, shuffle, seed):
            yield batch_of([data.names[j] for j in idx], [data.langs[j] for j in idx], len(data.labels), data.chars)

    def loss(self, model, batch) -> torch.Tensor:
        logits = model(batch["x"], batch["lengths"], cond=batch["cond"])  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1), batch["y"].flatten(), ignore_index=PAD)

    def evaluate(self, model, data: NameSet) -> dict:
        model.eval()
        dev = next(model.parameters()).device
        total, count, correct = 0.0, 0, 0
        with torch.no_grad():
            for b in self.batches(data, 512, shuffle=False):
                logits = model(b["x"].to(dev), b["lengths"], cond=b["cond"].to(dev)).float().cpu()  # (B, T, V)
                y = b["y"]
                total += float(F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=PAD, reduction="sum"))
                real = y != PAD
                count += int(real.sum())
                correct += int(((logits.argmax(-1) == y) & real).sum())
        nll = total / max(count, 1)
        return {"nll_per_char": nll, "perplexity": math.exp(min(nll, 50.0)),
                "next_char_accuracy": correct / max(count, 1)}

    # ---- serving -----------------------------------------------------------------------------------------------
    def demos(self) -> list[Demo]:
        d = dict(temperature=0.8, count=6)
        return [
            Demo("Russian, K", {"language": "Russian", "start": "K", "seed": 1, **d}, "-ov, -in, -sky endings"),
            Demo("Japanese, T", {"language": "Japanese", "start": "T", "seed": 2, **d}, "open syllables"),
            Demo("Irish, O'", {"language": "Irish", "start": "O'", "seed": 3, **d}, "a two-character primer"),
            Demo("Italian, hot", {"language": "Italian", "start": "B", "seed": 4, "temperature": 1.5, "count": 6},
                 "high temperature: flatter distributions, stranger names"),
            Demo("German, cold", {"language": "German", "start": "S", "seed": 5, "temperature": 0.2, "count": 6},
                 "low temperature: nearly greedy, the same few names"),
        ]

    def _settings(self, model, input) -> dict:
        if isinstance(input, str):  # "Russian K" is accepted too
            lang, _, start = input.strip().partition(" ")
            input = {"language": lang, "start": start}
        if not isinstance(input, dict):
            raise BadInput("Give a language and a first letter, e.g. {'language': 'Russian', 'start': 'K'}.")
        labels = model.runtime.labels
        lang = str(input.get("language", "")).strip()
        match = {lab.lower(): lab for lab in labels}.get(lang.lower())
        if match is None:
            raise BadInput(f"Unknown language {lang[:40]!r}; choose one of: {', '.join(labels)}.")
        typed = clean_name(input.get("start", "") or "")
        start, notes = capitalised(typed), []
        if start != typed:
            notes.append(f"Names start with a capital letter: '{typed[:10]}' was read as '{start[:10]}'.")
        if len(start) > 10:
            start = start[:10]
            notes.append("Only the first 10 characters of the start were used.")
        _, unknown = encode(start, model.runtime.meta["chars"])
        if unknown:
            raise BadInput("The model cannot start with characters it never saw: " + " ".join(unknown))
        try:
            temperature = float(input.get("temperature", 0.8))
            seed = int(input.get("seed", 0))
            count = int(input.get("count", 5))
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf), float(10**400)
            raise BadInput("temperature must be a number, seed and count whole numbers.") from None
        if not math.isfinite(temperature) or not 0.05 <= temperature <= 3.0:
            raise BadInput("Temperature must be between 0.05 and 3.")
        if not 0 <= seed < 2**63:
            raise BadInput("The seed must be a whole number from 0 to 2**63 - 1.")
        if not 1 <= count <= MAX_COUNT:
            raise BadInput(f"Ask for 1 to {MAX_COUNT} names.")
        return dict(language=match, lang_index=labels.index(match), start=start, temperature=temperature,
                    seed=seed, count=count, notes=notes)

    def predict(self, model, input) -> dict:
        s = self._settings(model, input)
        chars, labels = model.runtime.meta["chars"], model.runtime.labels
        primer = torch.tensor([[BOS] + encode(s["start"], chars)[0]] * s["count"])  # (N, T0)
        cond = F.one_hot(torch.tensor([s["lang_index"]] * s["count"]), len(labels)).float()  # (N, L)
        with torch.inference_mode():
            out = model.generate(primer, MAX_LEN - len(s["start"]), temperature=s["temperature"], seed=s["seed"],
                                 cond=cond)
        seqs, probs = out["sequence"][:, primer.shape[1]:], out["probs"]  # (N, steps), (N, steps, V)
        names, steps = [], []
        for i in range(s["count"]):
            names.append(s["start"] + decode(seqs[i].tolist(), chars))
        for t, tok in enumerate(seqs[0].tolist()):  # the first name, step by step: what it chose and what it could
            p = probs[0, t]
            top = p.topk(3)
            steps.append({"step": t, "chose": _tok(tok, chars), "prob": float(p[tok]),
                          "top3": [(_tok(int(i), chars), float(v)) for v, i in zip(top.values, top.indices)]})
            if tok == EOS:
                break
        return {"language": s["language"], "start": s["start"], "temperature": s["temperature"], "seed": s["seed"],
                "names": names, "first_name_steps": steps, "notes": s["notes"]}

    def inspect_loss(self, model, input) -> tuple[torch.Tensor, list[str]]:
        s = self._settings(model, input)
        name = clean_name(input.get("name", "")) if isinstance(input, dict) else ""
        if not name:  # the first name predict shows for these settings (the same count: sampling draws for the
            # whole batch, so one name alone would be another); generating it is a side computation, so a nested
            # recording keeps its steps out of the inspector's trace
            with recording():
                name = self.predict(model, input)["names"][0]
        b = batch_of([name], [s["lang_index"]], len(model.runtime.labels), model.runtime.meta["chars"])
        logits = model(b["x"], b["lengths"], cond=b["cond"])  # (1, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), b["y"].flatten(), ignore_index=PAD)
        return loss, ["<s>"] + list(name)


def capitalised(start: str) -> str:
    """A typed first letter(s) as the names in the data begin: with a capital ("mc" -> "Mc", "o'" -> "O'"); all in
    capitals, as a name is written ("MAC" -> "Mac"); a mix is kept as typed ("McD")."""
    if not start:
        return start
    if start == start.upper() and len(start) > 1 and any(c.isalpha() for c in start[1:]):
        start = start[0] + start[1:].lower()
    return start[0].upper() + start[1:]


def _tok(i: int, chars: list[str]) -> str:
    return chars[i - len(SPECIALS)] if i >= len(SPECIALS) else SPECIALS[i]
