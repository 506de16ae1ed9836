"""YourDataTask: one core.task.Task for a person's own table, whatever its shape.

The page trains it live (core.yourdata.build) and every exported plugin subclasses it (core.yourdata.export), so
the weights the page hands out load into the plugin unchanged: the same build_model, the same vocabularies (on the
card's meta). What it learns is set by a JSON ``spec``:

    {"choice": Choice.to_dict(), "file": "reviews.csv", "delimiter": ",", "header": true, "skip_bad": false,
     "sample": [[cell, ...], ...] (a few rows: the synthetic data of an exported plugin), "demos": [...]}

Steps are characters or whitespace-separated words (choice.tokens). Ids 0-3 are reserved for padding, unknown,
start and end.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from core.data import config_from_dict, seq_lengths, split_rows
from core.data import pad as pad_ids
from core.layers import recording
from core.shapes import EncoderDecoder, ManyToMany, ManyToOne, OneToMany, OneToOne
from core.task import BadInput, Demo, Recipe, Splits, Task
from core.yourdata.parse import Table, _control_char, read_table
from core.yourdata.propose import Choice, check_choice, steps

SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
PAD, UNK, BOS, EOS = 0, 1, 2, 3
MAX_STEPS = {"char": 200, "word": 100}  # longer sequences are cut (and the answer says so)
MAX_VOCAB = 4000  # the most frequent tokens of the training rows; the rest read as unknown
MAX_GEN = {"char": 60, "word": 25}  # steps a one-to-many model writes
MAX_COUNT = 10  # sequences per generation request
MAX_EVAL_ROWS = 1000  # validation and test rows at most (the rest train)
MAX_EXACT_ROWS = 100  # encoder-decoder: rows decoded greedily for the exact-match score
EXTENSIONS = (".csv", ".tsv", ".txt")


@dataclass
class Config:
    """Constructor arguments of build_model (on the card, so a checkpoint rebuilds itself)."""

    cell: str = "gru"  # rnn_tanh | gru | lstm
    embed_size: int = 32  # vector per character / word (one-to-one: unused, the features are the input)
    hidden_size: int = 64  # units of the recurrent state
    num_layers: int = 1
    bidirectional: bool = False  # many-to-one and many-to-many: read both ways
    dropout: float = 0.0


METRICS = {  # shape -> (selection metric, higher is better, what it means)
    "one_to_one": ("accuracy", True, "share of rows labelled right"),
    "many_to_one": ("accuracy", True, "share of rows labelled right"),
    "many_to_many": ("accuracy", True, "share of steps tagged right"),
    "one_to_many": ("nll", False, "average surprise per step (negative log-likelihood; lower is better)"),
    "encoder_decoder": ("accuracy", True, "share of output steps right when the true previous step is given"),
}
SUMMARIES = {
    "one_to_one": "A row of numbers -> one label, in a single step (no recurrence).",
    "many_to_one": "A sequence -> one label.",
    "many_to_many": "A sequence -> one label per step.",
    "one_to_many": "A start -> a new sequence, written step by step.",
    "encoder_decoder": "A sequence -> another sequence of its own length, with attention.",
}


def join(tokens: list[str], mode: str) -> str:
    return "".join(tokens) if mode == "char" else " ".join(tokens)


def build_vocab(seqs, limit: int = MAX_VOCAB) -> list[str]:
    """Tokens by frequency (ties alphabetical), at most ``limit``: the vocabulary after the 4 special ids."""
    counts: dict[str, int] = {}
    for s in seqs:
        for t in s:
            counts[t] = counts.get(t, 0) + 1
    return [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def encode(tokens: list[str], vocab: list[str]) -> list[int]:
    index = {t: i + len(SPECIALS) for i, t in enumerate(vocab)}
    return [index.get(t, UNK) for t in tokens]


def decode_ids(ids: list[int], vocab: list[str]) -> list[str]:
    out = []
    for i in ids:
        if i == EOS:
            break
        if i >= len(SPECIALS):
            out.append(vocab[i - len(SPECIALS)])
        elif i == UNK:
            out.append("?")
    return out


def _upto_eos(ids: list[int]) -> list[int]:
    return ids[:ids.index(EOS)] if EOS in ids else ids


def pad(seqs: list[list[int]], value: int = PAD) -> tuple[torch.Tensor, torch.Tensor]:
    """core.data.pad plus the lengths, an empty sequence read as one <unk> (no model here reads zero steps)."""
    seqs = [s or [UNK] for s in seqs]
    return pad_ids(seqs, value), seq_lengths(seqs)  # (B, T), (B,)


class YourDataTask(Task):
    """A person's table as a task. Subclassed by exported plugins (which set name, title, page, spec)."""

    name = "your_data"
    private = True  # a visitor's own model and data: the inspector keeps its results in that session only
    title = "Your data"
    page = "core.ui.pages.your_data:render"  # the app's own page; an exported plugin has its own page.py
    data_source = "a person's own file, brought to the Your data page"
    primary_input = "text"
    spec: dict = {}
    epoch_steps: int | None = None  # the page: an "epoch" of this many batches, so validation curves move often

    def __init__(self, spec: dict | None = None, **fields):
        spec = dict(spec if spec is not None else type(self).spec)
        for k, v in fields.items():
            setattr(self, k, v)
        self.spec = spec
        self.choice = Choice(**spec["choice"])
        self.shape = self.choice.shape
        self.data_subdir = self.data_subdir or self.name
        self.summary = getattr(type(self), "summary", "") or SUMMARIES[self.shape]
        metric, higher, self.metric_meaning = METRICS[self.shape]
        known = set(asdict(Config()))
        sizes = {k: v for k, v in (spec.get("config") or {}).items() if k in known}
        self.config = asdict(Config(**{"bidirectional": self.choice.bidirectional, **sizes}))
        self.recipe = Recipe(metric=metric, higher_is_better=higher, epochs=30, batch_size=32, lr=3e-3, patience=5,
                             max_minutes=5.0, clip_norm=1.0, variants=dict(spec.get("variants") or {}))

    # ---- data --------------------------------------------------------------------------------------------------
    def examples(self, table: Table) -> list:
        """Rows -> raw examples of this shape: (features, label), (text, label), (text, tags), text, (src, tgt)."""
        c, cols = self.choice, table.columns
        if self.shape == "one_to_one":
            fi = [cols.index(f) for f in c.features]
            ti = cols.index(c.target)
            return [([float(r[j]) for j in fi], r[ti]) for r in table.rows]
        ii = cols.index(c.input)
        if self.shape == "one_to_many":
            return [r[ii] for r in table.rows]
        ti = cols.index(c.target)
        return [(r[ii], r[ti]) for r in table.rows]

    def make_splits(self, examples: list, files=(), dataset: str = "", seed: int = 0) -> Splits:
        train, val, test = split_rows(examples, seed, max_eval=MAX_EVAL_ROWS)
        mode, shape = self.choice.tokens, self.shape
        cut = MAX_STEPS[mode]
        meta: dict = {"tokens": mode, "columns": {"input": self.choice.input, "target": self.choice.target}}
        if shape == "one_to_one":
            cols = list(zip(*[x for x, _ in train]))  # feature-major
            mean = [sum(col) / len(col) for col in cols]
            std = [max(math.sqrt(sum((v - m) ** 2 for v in col) / len(col)), 1e-6) for col, m in zip(cols, mean)]
            labels = sorted({y for _, y in examples})
            meta.update(features=list(self.choice.features), mean=mean, std=std, labels=labels)

            def enc(part):
                return [([(v - m) / s for v, m, s in zip(x, mean, std)], labels.index(y)) for x, y in part]
        elif shape == "one_to_many":
            vocab = build_vocab(steps(t, mode) for t in train)
            meta.update(vocab=vocab)

            def enc(part):
                return [encode(steps(t, mode)[:cut], vocab) for t in part]
        elif shape == "encoder_decoder":
            src_vocab = build_vocab(steps(s, mode) for s, _ in train)
            tgt_vocab = build_vocab(steps(t, mode) for _, t in train)
            meta.update(src_vocab=src_vocab, tgt_vocab=tgt_vocab)

            def enc(part):
                return [(encode(steps(s, mode)[:cut], src_vocab), encode(steps(t, mode)[:cut - 1], tgt_vocab) + [EOS])
                        for s, t in part]
        else:
            vocab = build_vocab(steps(t, mode) for t, _ in train)
            meta.update(vocab=vocab)
            if shape == "many_to_one":
                labels = sorted({y for _, y in examples})
                meta.update(labels=labels)

                def enc(part):
                    return [(encode(steps(t, mode)[:cut], vocab), labels.index(y)) for t, y in part]
            else:
                tags = sorted({g for _, y in examples for g in steps(y, mode)})
                meta.update(tags=tags)

                def enc(part):
                    return [(encode(steps(t, mode)[:cut], vocab), [tags.index(g) for g in steps(y, mode)[:cut]])
                            for t, y in part]
        return Splits(enc(train), enc(val), enc(test), meta, files=list(files),
                      dataset=dataset or f"{len(examples)} rows, {len(train)}/{len(val)}/{len(test)} "
                                         "train/validation/test (shuffled, seed 0)")

    def splits_from_table(self, table: Table, files=(), dataset: str = "") -> Splits:
        table = check_choice(table, self.choice, skip_bad=bool(self.spec.get("skip_bad")))
        return self.make_splits(self.examples(table), files, dataset)

    def load_data(self, data_dir: Path) -> Splits:
        """The person's file, read exactly as the page read it (same delimiter, header and checks)."""
        data_dir = Path(data_dir)
        path = data_dir / self.spec.get("file", "")
        if not path.is_file():
            found = sorted(p for p in data_dir.iterdir() if p.suffix.lower() in EXTENSIONS) if data_dir.is_dir() else []
            if len(found) != 1:
                raise FileNotFoundError(f"{self.name} reads {self.spec.get('file')!r} (or the only .csv/.tsv/.txt "
                                        f"file) in {data_dir}")
            path = found[0]
        table = read_table(path.read_bytes(), path.name, self.spec.get("delimiter"), bool(self.spec.get("header")),
                           skip_bad=bool(self.spec.get("skip_bad")))
        return self.splits_from_table(table, [path])

    def synthetic_data(self, seed: int = 0) -> Splits:
        """The few rows of the person's data kept in the spec: a tiny dataset of the same form."""
        sample = self.spec.get("sample") or []
        cols = self.spec.get("columns") or []
        table = Table(cols, [list(r) for r in sample], list(range(1, len(sample) + 1)), self.spec.get("delimiter"),
                      bool(self.spec.get("header")))
        return self.make_splits(self.examples(table), [], "a sample of the person's rows", seed)

    def batches(self, data, batch_size: int, shuffle: bool, seed: int = 0):
        order = list(range(len(data)))
        rng = random.Random(seed)
        if shuffle:
            rng.shuffle(order)
        if shuffle and self.epoch_steps:  # exactly epoch_steps batches, cycling through shuffled passes
            need = self.epoch_steps * batch_size
            while len(order) < need:
                more = list(range(len(data)))
                rng.shuffle(more)
                order += more
            order = order[:need]
        for i in range(0, len(order), batch_size):
            yield self.collate([data[j] for j in order[i:i + batch_size]])

    def collate(self, part: list) -> dict:
        shape = self.shape
        if shape == "one_to_one":
            return {"x": torch.tensor([x for x, _ in part], dtype=torch.float32),  # (B, F)
                    "y": torch.tensor([y for _, y in part])}
        if shape == "one_to_many":
            x, lengths = pad([[BOS] + s for s in part])  # (B, T)
            y, _ = pad([s + [EOS] for s in part], value=-100)  # (B, T): the next step at every step
            return {"x": x, "lengths": lengths, "y": y}
        if shape == "encoder_decoder":
            src, src_len = pad([s for s, _ in part])  # (B, S)
            tgt_in, _ = pad([[BOS] + t[:-1] for _, t in part])  # (B, T)
            tgt_out, _ = pad([t for _, t in part], value=-100)  # (B, T)
            return {"src": src, "src_lengths": src_len, "tgt_in": tgt_in, "tgt_out": tgt_out}
        x, lengths = pad([ids for ids, _ in part])  # (B, T)
        if shape == "many_to_one":
            return {"x": x, "lengths": lengths, "y": torch.tensor([y for _, y in part])}
        y, _ = pad([tags for _, tags in part], value=-100)  # (B, T)
        return {"x": x, "lengths": lengths, "y": y}

    # ---- model -------------------------------------------------------------------------------------------------
    def build_model(self, config: dict, meta: dict):
        cfg = config_from_dict(Config, config)
        shape = self.shape
        if shape == "one_to_one":
            model = OneToOne(len(meta["features"]), cfg.hidden_size, len(meta["labels"]), cfg.cell,
                             dropout=cfg.dropout)
        elif shape == "many_to_one":
            model = ManyToOne(cfg.embed_size, cfg.hidden_size, len(meta["labels"]), cfg.cell, cfg.num_layers,
                              cfg.bidirectional, cfg.dropout, vocab_size=len(meta["vocab"]) + len(SPECIALS), pad_id=PAD)
        elif shape == "many_to_many":
            model = ManyToMany(cfg.embed_size, cfg.hidden_size, len(meta["tags"]), cfg.cell, cfg.num_layers,
                               cfg.bidirectional, cfg.dropout, vocab_size=len(meta["vocab"]) + len(SPECIALS), pad_id=PAD)
        elif shape == "one_to_many":
            model = OneToMany(len(meta["vocab"]) + len(SPECIALS), cfg.embed_size, cfg.hidden_size, cfg.cell,
                              cfg.num_layers, cfg.dropout)
        else:
            model = EncoderDecoder(len(meta["src_vocab"]) + len(SPECIALS), len(meta["tgt_vocab"]) + len(SPECIALS),
                                   cfg.embed_size, cfg.hidden_size, cfg.cell, cfg.num_layers, cfg.dropout,
                                   attention=True, bidirectional_encoder=True, pad_id=PAD, bos_id=BOS, eos_id=EOS)
        model.meta = meta
        return model

    def loss(self, model, batch) -> torch.Tensor:
        shape = self.shape
        if shape == "one_to_one":
            return F.cross_entropy(model(batch["x"]), batch["y"])  # (B, C)
        if shape == "many_to_one":
            return F.cross_entropy(model(batch["x"], batch["lengths"]), batch["y"])  # (B, C)
        if shape == "encoder_decoder":
            logits, _ = model(batch["src"], batch["src_lengths"], batch["tgt_in"])  # (B, T, V)
            return F.cross_entropy(logits.flatten(0, 1), batch["tgt_out"].flatten(), ignore_index=-100)
        logits = model(batch["x"], batch["lengths"])  # (B, T, C)
        return F.cross_entropy(logits.flatten(0, 1), batch["y"].flatten(), ignore_index=-100)

    def evaluate(self, model, data) -> dict:
        model.eval()
        dev = next(model.parameters()).device
        shape = self.shape
        loss_sum = right = total = 0.0
        with torch.no_grad():
            for b in self.batches(data, 256, shuffle=False):
                b = {k: v.to(dev) for k, v in b.items()}
                if shape in ("one_to_one", "many_to_one"):
                    logits = model(b["x"]) if shape == "one_to_one" else model(b["x"], b["lengths"])  # (B, C)
                    loss_sum += float(F.cross_entropy(logits, b["y"], reduction="sum"))
                    right += float((logits.argmax(-1) == b["y"]).sum())
                    total += len(b["y"])
                    continue
                if shape == "encoder_decoder":
                    logits, _ = model(b["src"], b["src_lengths"], b["tgt_in"])  # (B, T, V)
                    y = b["tgt_out"]
                else:
                    logits, y = model(b["x"], b["lengths"]), b["y"]  # (B, T, V), (B, T)
                mask = y != -100
                loss_sum += float(F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100,
                                                  reduction="sum"))
                right += float(((logits.argmax(-1) == y) & mask).sum())
                total += float(mask.sum())
        total = max(total, 1.0)
        out = {"loss": loss_sum / total}
        if shape == "one_to_many":
            out["nll"] = out["loss"]
            out["accuracy"] = right / total  # the next step guessed right (information)
        else:
            out["accuracy"] = right / total
        if shape == "encoder_decoder" and data:
            out["exact"] = self._exact(model, data[:MAX_EXACT_ROWS])
        return out

    def greedy(self, model, src, lengths, max_len: int) -> torch.Tensor:
        """Batched greedy decoding: (B, S) -> (B, <= max_len) ids (EOS and after it: ignored by decode_ids)."""
        enc, state, mask = model.encode(src, lengths)
        tok = torch.full((src.shape[0],), BOS, dtype=torch.long, device=src.device)
        out, done = [], torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            logp, state, _ = model.decode_step(tok, state, enc, mask)  # (B, V)
            tok = logp.argmax(-1)
            out.append(tok)
            done |= tok == EOS
            if bool(done.all()):
                break
        return torch.stack(out, dim=1)  # (B, T)

    def _exact(self, model, rows) -> float:
        b = self.collate(rows)
        dev = next(model.parameters()).device
        pred = self.greedy(model, b["src"].to(dev), b["src_lengths"], max(len(t) for _, t in rows) + 2).cpu()
        hits = sum(_upto_eos(p.tolist()) == _upto_eos(t) for p, (_, t) in zip(pred, rows))
        return hits / len(rows)

    # ---- serving -----------------------------------------------------------------------------------------------
    def demos(self) -> list[Demo]:
        out = [Demo(d["label"], d["input"], d.get("note", "")) for d in self.spec.get("demos") or []]
        if out:
            return out
        if self.shape == "one_to_many":
            return [Demo("From the start", {"start": "", "temperature": 0.8, "seed": 0, "count": 5}, "a new sequence")]
        return [Demo("First sample row", self.example_input(self.spec.get("sample", [[]])[0]), "")]

    def example_input(self, row: list[str]):
        """What predict() takes for a row of the table (the input column, or the features joined)."""
        cols = self.spec.get("columns") or []
        if self.shape == "one_to_one":
            return ", ".join(row[cols.index(f)] for f in self.choice.features)
        return row[cols.index(self.choice.input)]

    def _tokens(self, model, text, vocab_key: str = "vocab") -> tuple[list[str], list[int], list[str]]:
        if isinstance(text, dict):
            text = text.get("text", "")
        if not isinstance(text, str) or not text.strip():
            raise BadInput("Type some text.")
        if _control_char(text.replace("\n", " ")):
            raise BadInput("The text contains a control character; type plain text.")
        mode = model.meta["tokens"]
        toks = steps(" ".join(text.split()), mode)
        notes = []
        if len(toks) > MAX_STEPS[mode]:
            toks = toks[:MAX_STEPS[mode]]
            notes.append(f"Only the first {MAX_STEPS[mode]} {'characters' if mode == 'char' else 'words'} were read.")
        ids = encode(toks, model.meta[vocab_key])
        unknown = sorted({t for t, i in zip(toks, ids) if i == UNK})
        if unknown:
            notes.append(f"Never seen in training, read as unknown: {' '.join(unknown[:10])}"
                         + (" ..." if len(unknown) > 10 else ""))
        return toks, ids, notes

    def _features(self, model, input) -> torch.Tensor:
        meta = model.meta
        n = len(meta["features"])
        if isinstance(input, str):
            parts = [p for p in input.replace(";", ",").replace(",", " ").split() if p]
            try:
                input = [float(p) for p in parts]
            except ValueError:
                raise BadInput(f"Type {n} numbers separated by commas ({', '.join(meta['features'])}).") from None
        if not isinstance(input, (list, tuple)) or len(input) != n:
            raise BadInput(f"Expected {n} numbers ({', '.join(meta['features'])}).")
        try:
            values = [float(v) for v in input]
        except (TypeError, ValueError, OverflowError):
            raise BadInput(f"Expected {n} numbers ({', '.join(meta['features'])}).") from None
        if not all(math.isfinite(v) and abs(v) < 1e9 for v in values):
            raise BadInput("The numbers must be finite and below a billion in size.")
        scaled = [(v - m) / s for v, m, s in zip(values, meta["mean"], meta["std"])]
        return torch.tensor([scaled], dtype=torch.float32)  # (1, F)

    def _settings(self, model, input) -> dict:
        if isinstance(input, str):
            input = {"start": input}
        if not isinstance(input, dict):
            raise BadInput("Give a start (it may be empty), a temperature, a seed and how many to write.")
        start = str(input.get("start", "") or "")
        if _control_char(start):
            raise BadInput("The start contains a control character; type plain text.")
        mode = model.meta["tokens"]
        toks = steps(" ".join(start.split()) if mode == "word" else start.lstrip(), mode)[:MAX_GEN[mode] - 1]
        try:
            temperature = float(input.get("temperature", 0.8))
            seed, count = int(input.get("seed", 0)), int(input.get("count", 5))
        except (TypeError, ValueError, OverflowError):
            raise BadInput("The temperature must be a number; seed and count whole numbers.") from None
        if not (math.isfinite(temperature) and 0.05 <= temperature <= 3.0):
            raise BadInput("The temperature must be between 0.05 and 3.")
        if not 0 <= seed < 2**63:
            raise BadInput("The random seed must be a whole number from 0 to 2**63 - 1.")
        if not 1 <= count <= MAX_COUNT:
            raise BadInput(f"Ask for 1 to {MAX_COUNT} sequences.")
        ids = encode(toks, model.meta["vocab"])
        notes = []
        unknown = sorted({t for t, i in zip(toks, ids) if i == UNK})
        if unknown:
            notes.append(f"Never seen in training, read as unknown: {' '.join(unknown[:10])}")
        return {"start": join(toks, mode), "tokens": toks, "ids": [BOS] + ids, "temperature": temperature,
                "seed": seed, "count": count, "notes": notes}

    def predict(self, model, input) -> dict:
        shape, meta = self.shape, model.meta
        if shape == "one_to_one":
            with torch.inference_mode():
                probs = model(self._features(model, input)).softmax(-1)[0]  # (C,)
            best = int(probs.argmax())
            return {"label": meta["labels"][best], "prob": float(probs[best]),
                    "probs": {lab: float(p) for lab, p in zip(meta["labels"], probs)}, "notes": []}
        if shape == "one_to_many":
            s = self._settings(model, input)
            mode = meta["tokens"]
            primer = torch.tensor([s["ids"]] * s["count"])  # (N, T0)
            with torch.inference_mode():
                out = model.generate(primer, MAX_GEN[mode] - len(s["tokens"]), temperature=s["temperature"],
                                     seed=s["seed"])
            new = out["sequence"][:, primer.shape[1]:]  # (N, steps)
            seqs = [join(s["tokens"] + decode_ids(row.tolist(), meta["vocab"]), mode) for row in new]
            return {"start": s["start"], "sequences": seqs, "temperature": s["temperature"], "seed": s["seed"],
                    "notes": s["notes"]}
        if shape == "encoder_decoder":
            toks, ids, notes = self._tokens(model, input, "src_vocab")
            mode = meta["tokens"]
            with torch.inference_mode():
                cands = model.beam_search(torch.tensor([ids]), torch.tensor([len(ids)]), beam=3,
                                          max_len=min(len(ids) * 2 + 10, MAX_STEPS[mode]))
            best = cands[0]
            out_toks = [SPECIALS[i] if i < len(SPECIALS) else meta["tgt_vocab"][i - len(SPECIALS)] for i in best.tokens]
            return {"input": join(toks, mode),
                    "output": join(decode_ids(best.tokens, meta["tgt_vocab"]), mode),
                    "candidates": [{"output": join(decode_ids(c.tokens, meta["tgt_vocab"]), mode), "score": c.score}
                                   for c in cands],
                    "attention": {"source": toks, "output": out_toks,  # (T_out, S) weights, one row per output step
                                  "weights": best.attention.tolist() if best.attention is not None else None},
                    "notes": notes}
        toks, ids, notes = self._tokens(model, input)
        x, lengths = pad([ids])  # (1, T)
        if shape == "many_to_one":
            with torch.inference_mode():
                probs = model(x, lengths).softmax(-1)[0]  # (C,)
                after = model.prefix_logits(x, lengths).softmax(-1)[0]  # (T, C): the answer after each step
            best = int(probs.argmax())
            return {"label": meta["labels"][best], "prob": float(probs[best]),
                    "probs": {lab: float(p) for lab, p in zip(meta["labels"], probs)},
                    "after_each_char": [{"step": t, "char": c, "prob": float(after[t, best])}
                                        for t, c in enumerate(toks)],
                    "notes": notes}
        with torch.inference_mode():
            probs = model(x, lengths).softmax(-1)[0]  # (T, C)
        p, idx = probs.max(-1)
        return {"tokens": [{"word": w, "tag": meta["tags"][int(i)], "prob": float(q)} for w, i, q in zip(toks, idx, p)],
                "notes": notes}

    def inspect_loss(self, model, input) -> tuple[torch.Tensor, list[str]]:
        shape, meta = self.shape, model.meta
        if shape == "one_to_one":
            logits = model(self._features(model, input))  # (1, C)
            return F.cross_entropy(logits, logits.argmax(-1).detach()), ["input"]
        if shape == "one_to_many":
            s = self._settings(model, input)
            with recording():  # a side computation: its steps stay out of the inspector's trace
                text = self.predict(model, {**s, "start": s["start"], "count": 1})["sequences"][0]
            toks = steps(text, meta["tokens"])[:MAX_GEN[meta["tokens"]]]
            seq = [BOS] + encode(toks, meta["vocab"]) + [EOS]
            x, y = torch.tensor([seq[:-1]]), torch.tensor([seq[1:]])  # (1, T)
            return F.cross_entropy(model(x)[0], y[0]), ["<s>"] + toks
        if shape == "encoder_decoder":
            toks, ids, _ = self._tokens(model, input, "src_vocab")
            src, lengths = torch.tensor([ids]), torch.tensor([len(ids)])
            with recording():
                target = self.greedy(model, src, lengths, min(len(ids) * 2 + 10, MAX_STEPS[meta["tokens"]]))[0].tolist()
            target = target[:target.index(EOS) + 1] if EOS in target else target
            tgt_in, tgt_out = torch.tensor([[BOS] + target[:-1]]), torch.tensor([target])  # (1, T)
            logits, _ = model(src, lengths, tgt_in)  # (1, T, V)
            return F.cross_entropy(logits[0], tgt_out[0]), toks
        toks, ids, _ = self._tokens(model, input)
        x, lengths = pad([ids])
        logits = model(x, lengths)  # (1, C) or (1, T, C)
        if shape == "many_to_one":
            return F.cross_entropy(logits, logits.argmax(-1).detach()), toks
        return F.cross_entropy(logits[0], logits[0].argmax(-1).detach()), toks

    def train_command(self) -> str:
        return f"python -m core.train {self.name} --data-dir {self.name}-data"
