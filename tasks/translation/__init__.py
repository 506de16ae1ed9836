"""English -> French translation on Tatoeba pairs: n words in, m words out (core.shapes.EncoderDecoder).

The encoder (a bidirectional GRU) reads the English sentence; the decoder (a GRU) writes French one token at a
time. With attention each output step looks back at every English word (the heatmap on the page); the "plain"
variant has only the encoder's final summary, as in the lesson's plain encoder-decoder. Word-level tokens with a
capped vocabulary; an unknown output word is copied through from the source word it attends to most, and a
translation may not end before every unknown source word has had its place (model.greedy, beam_search's must_write).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from core.data import (
    Vocab,
    bucket_batches,
    corpus_bleu,
    corpus_chrf,
    guess_note,
    pad,
    restore_apostrophes,
    seq_lengths,
    spell_out_chat,
)
from core.ensemble import EncoderDecoderEnsemble
from core.serving import EnsembleWords
from core.task import BadInput, Demo, Display, Headline, Metric, Recipe, Splits, Task
from tasks.translation import data as D
from tasks.translation.model import BOS_ID, EOS_ID, PAD_ID, UNK_ID, build, default_config, greedy, ids_to_tokens, must_write

TRAIN_MAX_WORDS = 10  # train on pairs whose English side has at most this many words (CPU budget); test: all
SRC_VOCAB, TGT_VOCAB = 6000, 5000  # capped by frequency; the rest is <unk> (copied through at decode time)
MAX_SRC_TOKENS = 40  # longer inputs are cut here (and the answer says so)
MAX_CHARS = 2000  # characters looked at before tokenizing
VAL_SUBSET = 1000  # validation: greedy BLEU on a fixed seeded subset (cheap enough to run every epoch)
TEST_BEAM_SUBSET = 600  # test: beam-5 BLEU/chrF on a fixed seeded subset of the test split (decode time)
BEAM, DECODE_MAX = 5, 40
BARE_SHARE = 0.5  # training: share of sentences shown without their final punctuation mark in an epoch


@dataclass
class Pairs:
    """One split: English/French strings, their tokens and ids."""

    en: list[str]
    fr: list[str]
    src: list[list[int]]
    tgt: list[list[int]]
    src_tokens: list[list[str]]
    role: str = "train"  # "val" | "test": what evaluate() computes
    src_bare: list[list[int]] | None = None  # train: each source without its final punctuation (batches() mixes them in)

    def __len__(self) -> int:
        return len(self.en)


def _encode(tokens: list[str], stoi: dict[str, int]) -> list[int]:
    return [stoi.get(t, UNK_ID) for t in tokens]


def source_ids(tokens: list[str], stoi: dict[str, int]) -> list[int]:
    """English tokens -> ids, each word in the casing the vocabulary knows (data.truecase): the model reads
    "how are you doing" and "How are you doing" alike, in training and in the app."""
    return _encode(D.truecase(tokens, stoi.__contains__), stoi)


def make_pairs(pairs: list[tuple[str, str]], s_stoi, t_stoi, role: str, max_tokens: int = MAX_SRC_TOKENS) -> Pairs:
    en, fr, src, tgt, st, bare = [], [], [], [], [], []
    for e, f in pairs:
        se, tf = D.tokenize(e)[:max_tokens], D.tokenize(f)[:max_tokens + 20]
        if not se or not tf:
            continue
        en.append(e), fr.append(f), st.append(se)
        src.append(source_ids(se, s_stoi))
        bare.append(source_ids(D.bare_tokens(se), s_stoi))
        tgt.append(_encode(tf, t_stoi))
    return Pairs(en, fr, src, tgt, st, role, bare if role == "train" else None)


def _subset(n: int, k: int, seed: int) -> list[int]:
    idx = list(range(n))
    random.Random(seed).shuffle(idx)
    return sorted(idx[:k])


def _bleu(hyps: list[str], refs: list[list[str]]) -> tuple[float, float]:
    """Corpus BLEU and chrF (sacrebleu defaults: 13a tokenisation, case-sensitive). ``refs[k]`` holds every
    reference of hypothesis k -- their number may differ from sentence to sentence (core.data's rule)."""
    return corpus_bleu(hyps, refs), corpus_chrf(hyps, refs)


def _groups(data: Pairs) -> list[list[int]]:
    """Pairs grouped by their English sentence (Tatoeba often gives several French translations of one English
    sentence; the split keeps each group in one split). Each group is scored once, against all its translations."""
    by_en: dict[str, list[int]] = {}
    for i, e in enumerate(data.en):
        by_en.setdefault(D.norm_key(e), []).append(i)
    return list(by_en.values())


class TranslationTask(Task):
    name = "translation"
    title = "Translation (English → French)"
    shape = "encoder_decoder"
    summary = "An English sentence in, a French one out: n words become m words, with attention over the source."
    config = default_config()
    recipe = Recipe(
        metric="bleu_greedy",  # greedy-decoding BLEU: cheap enough for validation every epoch
        epochs=20,  # an upper bound; the time budget ends training first
        batch_size=64,
        lr=3e-3,
        clip_norm=1.0,
        patience=3,
        max_minutes=12.5,  # per variant, both variants the same: two runs plus test decoding fit in 30 minutes
        lr_decay=0.8,
        variants={"attention": {"attention": True}, "plain": {"attention": False}},
        # On a GPU the same-size models (both files together stay under 30 MB) train to convergence instead of
        # for one or two epochs: bigger batches, a slower decay, a bit more dropout against overfitting.
        profiles={"gpu": {"epochs": 40, "batch_size": 128, "lr": 2e-3, "lr_decay": 0.92, "patience": 4,
                          "max_minutes": 6.0,
                          "variants": {"attention": {"dropout": 0.2}, "plain": {"dropout": 0.2}}}},
        serve="attention",
        keep_variants=True,
        anchors={
            "Bahdanau et al. 2015 (RNNsearch-50, WMT'14 En-Fr, much larger data)":
                "34.16 BLEU on news test (all lengths) -- arXiv:1409.0473, Table 1",
        },
    )
    page = "tasks.translation.page:render"
    data_subdir = "translation"
    data_source = ("Tatoeba English-French sentence pairs as exported by ManyThings.org for Anki "
                   "(fra-eng.zip, 2017-09-29). CC-BY 2.0 (France): www.manythings.org/anki and tatoeba.org.")
    primary_input = "text"
    headlines = (Headline("bleu_le10", ">= 37", "several references"), Headline("bleu_le10_casual", ">= 95% of the above"),
                 Headline("bleu"), Headline("names_kept", "100% (aim)", "capitalised names unseen in training"))
    display = Display(  # the words for the card's metrics and variants (core.task.check_task holds the card to them)
        metrics={"bleu_greedy": Metric("BLEU, greedy decoding", "points (0-100)"),
                 "chrf_greedy": Metric("chrF, greedy decoding", "points (0-100)"),
                 "bleu_greedy_le10": Metric("BLEU, greedy decoding, sentences of up to 10 words", "points (0-100)"),
                 "bleu": Metric("BLEU, beam search", "points (0-100)"),
                 "chrf": Metric("chrF, beam search", "points (0-100)"),
                 "bleu_le10": Metric("BLEU, beam search, sentences of up to 10 words", "points (0-100)"),
                 "chrf_le10": Metric("chrF, beam search, sentences of up to 10 words", "points (0-100)"),
                 "sentences": Metric("test sentences (greedy)", "", ""),
                 "references": Metric("reference translations", "", ""),
                 "beam_sentences": Metric("test sentences (beam search)", "", ""),
                 "beam_sentences_le10": Metric("test sentences of up to 10 words (beam search)", "", ""),
                 "bleu_greedy_written": Metric("BLEU, greedy decoding, English as written", "points (0-100)"),
                 "bleu_greedy_casual": Metric("BLEU, greedy decoding, English typed in lower case without the final "
                                              "punctuation", "points (0-100)"),
                 "bleu_greedy_le10_casual": Metric("BLEU, greedy decoding, sentences of up to 10 words typed in lower "
                                                   "case without the final punctuation", "points (0-100)"),
                 "bleu_le10_casual": Metric("BLEU, beam search, sentences of up to 10 words typed in lower case "
                                            "without the final punctuation", "points (0-100)"),
                 "chrf_le10_casual": Metric("chrF, beam search, sentences of up to 10 words typed in lower case "
                                            "without the final punctuation", "points (0-100)"),
                 "names_kept": Metric("names the model never saw, written unchanged in the French", "%"),
                 "names": Metric("names the model never saw, in the test sentences", "", "")},
        variants={"attention": "with attention", "plain": "without attention"},
        inputs="an English sentence")
    ensemble_words = EnsembleWords(
        alone="the attention model", verb="Written",
        help="The app translates with an ensemble of the attention and the plain encoder-decoder. "
             "Switch it off to see what the attention model says by itself.",
        how="at every step the two models' word probabilities are mixed with these weights (chosen on "
            "validation BLEU; see the Model card). Alone, the attention model often translates word by word "
            "(\"How are you doing?\" -> *Comment fais-tu ?*) while the plain one recalls whole phrases it "
            "has seen (*Comment vas-tu ?*); mixed, they score higher on validation than either alone.")

    # ---- model -------------------------------------------------------------------------------------------------
    def build_model(self, config: dict, meta: dict):
        return build(config, len(meta["src_vocab"]), len(meta["tgt_vocab"]))

    def vocab(self, meta: dict, key: str = "vocab") -> Vocab:
        """A card's English ("src_vocab") or French ("tgt_vocab") vocabulary: every id's token, specials first."""
        return Vocab.from_meta(meta, key, specials=D.SPECIALS, with_specials=True)

    def ensemble(self, models, weights):
        """The served translator with the other variant(s): one decoder mixing their word probabilities at every
        step (core.ensemble.EncoderDecoderEnsemble). ``python -m core.ensemble translation`` picks the weights;
        core.ensemble.build gives it the served model's run-time record (vocabularies)."""
        vocabs = {(tuple(m.runtime.vocab.itos), tuple(m.runtime.target_vocab.itos)) for m in models}
        if len(vocabs) != 1:
            raise ValueError("ensemble members must share their vocabularies")
        return EncoderDecoderEnsemble(list(models), list(weights))


    # ---- data --------------------------------------------------------------------------------------------------
    def _splits(self, pairs: list[tuple[str, str]], files: list[Path], dataset: str, max_words: int,
                vocab_sizes=(SRC_VOCAB, TGT_VOCAB), min_count: int = 2) -> Splits:
        parts = D.split_pairs(pairs, seed=0)
        train_raw = [(e, f) for e, f in parts["train"] if D.n_words(e) <= max_words]
        src_vocab = D.build_vocab((D.tokenize(e) for e, _ in train_raw), vocab_sizes[0], min_count)
        tgt_vocab = D.build_vocab((D.tokenize(f) for _, f in train_raw), vocab_sizes[1], min_count)
        s_stoi = {w: i for i, w in enumerate(src_vocab)}
        t_stoi = {w: i for i, w in enumerate(tgt_vocab)}
        train = make_pairs(train_raw, s_stoi, t_stoi, "train")
        val = make_pairs(parts["val"], s_stoi, t_stoi, "val")
        test = make_pairs(parts["test"], s_stoi, t_stoi, "test")
        meta = {"src_vocab": src_vocab, "tgt_vocab": tgt_vocab, "train_max_words": max_words,
                "max_src_tokens": MAX_SRC_TOKENS,
                "sizes": {"train": len(train), "val": len(val), "test": len(test),
                          "train_all_lengths": len(parts["train"])}}
        return Splits(train=train, val=val, test=test, meta=meta, files=files, dataset=dataset)

    def load_data(self, data_dir: Path) -> Splits:
        path = Path(data_dir) / D.ZIP_NAME
        if not path.exists():
            raise FileNotFoundError(f"{D.ZIP_NAME} not found in {data_dir}")
        pairs = D.read_pairs(path)
        desc = (f"{len(pairs)} Tatoeba pairs; seeded 90/5/5 split grouped by normalised English sentence (no English "
                f"sentence in two splits). Trained on train pairs with <= {TRAIN_MAX_WORDS} English words; "
                f"each English sentence is translated once and scored against ALL its Tatoeba "
                f"translations (multi-reference); val metric = greedy BLEU on a fixed subset of {VAL_SUBSET} val "
                f"sentences, each translated twice: as written and typed casually (lower case, no final punctuation; "
                f"bleu_greedy_written and bleu_greedy_casual apart); "
                f"test = greedy BLEU on every test sentence and beam-{BEAM} BLEU/chrF (sacrebleu, cased, "
                f"13a) on a fixed seeded subset of {TEST_BEAM_SUBSET} test sentences, all lengths and <= 10 English "
                f"words. Vocabularies capped at "
                f"{SRC_VOCAB}/{TGT_VOCAB} tokens; each English word is read in the casing the vocabulary knows "
                f"(so case does not matter); in training each sentence loses its final punctuation mark in "
                f"{BARE_SHARE:.0%} of the epochs; unknown output words are copied from the unknown source words "
                f"(each once, by attention). Test *_casual: the <= 10-word sentences typed casually; names_kept: share "
                f"of unseen capitalised names written unchanged (greedy).")
        return self._splits(pairs, [path], desc, TRAIN_MAX_WORDS)

    def synthetic_data(self, seed: int = 0) -> Splits:
        """A tiny made-up phrasebook: "<subject> see the [adjective] <noun> ." and its French (adjective after)."""
        rng = random.Random(seed)
        subj = [("I", "je", "vois"), ("you", "tu", "vois"), ("we", "nous", "voyons")]
        nouns = [("cat", "chat"), ("dog", "chien"), ("car", "voiture"), ("house", "maison"), ("bird", "oiseau"),
                 ("tree", "arbre"), ("book", "livre"), ("boat", "bateau")]
        adjs = [("", ""), ("big", "grand"), ("small", "petit"), ("red", "rouge")]
        pairs = []
        for _ in range(160):
            (se, sf, vf), (ne, nf), (ae, af) = rng.choice(subj), rng.choice(nouns), rng.choice(adjs)
            end = rng.choice([".", "!"])
            en = f"{se.capitalize()} see the {ae + ' ' if ae else ''}{ne}{end}"
            fr = f"{sf.capitalize()} {vf} le {nf}{' ' + af if af else ''} {end}"  # the adjective moves
            pairs.append((en, fr))
        return self._splits(pairs, [], "synthetic phrasebook", 12, (200, 200), 1)

    def batches(self, data: Pairs, batch_size: int, shuffle: bool, seed: int = 0):
        """Length-bucketed batches by source length (core.data.bucket_batches). Shuffled training batches show each
        English sentence without its final punctuation mark in BARE_SHARE of the epochs (a seeded coin per sentence
        and epoch), so the model learns to write "?" or "." from the words themselves, as people often type none."""
        src = data.src
        if shuffle and data.src_bare is not None:
            rng = random.Random(seed)
            src = [b if rng.random() < BARE_SHARE else s for s, b in zip(data.src, data.src_bare)]
        for chunk in bucket_batches([len(s) for s in src], batch_size, shuffle, seed):
            yield collate([src[i] for i in chunk], [data.tgt[i] for i in chunk], chunk)

    def loss(self, model, batch) -> torch.Tensor:
        logits, _ = model(batch["src"], batch["src_lengths"], batch["tgt_in"])  # (B, T, V)
        return F.cross_entropy(logits.float().flatten(0, 1), batch["tgt_out"].flatten(), ignore_index=PAD_ID)

    @torch.no_grad()
    def translate_batch(self, model, data: Pairs, idx: list[int]) -> list[str]:
        """Greedy translations of data[idx], batched (``model``: a translator or an ensemble of them)."""
        device = next(model.parameters()).device
        out: dict[int, str] = {}
        sub = Pairs([data.en[i] for i in idx], [data.fr[i] for i in idx], [data.src[i] for i in idx],
                    [data.tgt[i] for i in idx], [data.src_tokens[i] for i in idx])
        for batch in self.batches(sub, 128, shuffle=False):
            ys, att = greedy(model, batch["src"].to(device), batch["src_lengths"].to(device), DECODE_MAX)
            for r, j in enumerate(batch["index"].tolist()):
                toks = sub.src_tokens[j]
                unk = [i == UNK_ID for i in sub.src[j]]
                a = att[r].cpu() if att is not None else None
                out[j] = D.detokenize(ids_to_tokens(ys[r].tolist(), model.runtime.target_vocab.itos, toks, unk, a))
        return [out[j] for j in range(len(idx))]

    @torch.no_grad()
    def evaluate(self, model, data: Pairs) -> dict[str, float]:
        was = model.training
        model.eval()
        groups = _groups(data)
        if data.role != "test":  # validation: a fixed seeded subset of source sentences, greedy (cheap per epoch)
            groups = [groups[k] for k in _subset(len(groups), VAL_SUBSET, seed=1)]
        idx = [g[0] for g in groups]  # one decode per English sentence
        refs = [[data.fr[i] for i in g] for g in groups]
        hyps = self.translate_batch(model, data, idx)
        bleu, chrf = _bleu(hyps, refs)
        le10 = [k for k, i in enumerate(idx) if D.n_words(data.en[i]) <= 10]
        bleu10, _ = _bleu([hyps[k] for k in le10], [refs[k] for k in le10])
        res = {"bleu_greedy": bleu, "chrf_greedy": chrf, "bleu_greedy_le10": bleu10, "sentences": float(len(idx)),
               "references": float(sum(len(r) for r in refs))}
        if data.role != "test":  # the score training keeps the best epoch by: each sentence as written and typed casually
            casual_hyps = self.translate_batch(model, casual_pairs(data, model.runtime.vocab.stoi), idx)
            res["bleu_greedy_written"] = bleu
            res["bleu_greedy_casual"], _ = _bleu(casual_hyps, refs)
            res["bleu_greedy"], _ = _bleu(hyps + casual_hyps, refs + refs)
        if data.role == "test":  # beam search: a fixed seeded subset of the test sentences (decoding is per sentence)
            sub = _subset(len(groups), TEST_BEAM_SUBSET, seed=2)
            bh = [self._beam_text(model, data, idx[k]) for k in sub]
            br = [refs[k] for k in sub]
            res["bleu"], res["chrf"] = _bleu(bh, br)
            k10 = [j for j, k in enumerate(sub) if D.n_words(data.en[idx[k]]) <= 10]
            res["bleu_le10"], res["chrf_le10"] = _bleu([bh[j] for j in k10], [br[j] for j in k10])
            res["beam_sentences"], res["beam_sentences_le10"] = float(len(sub)), float(len(k10))
            res.update(self._casual_metrics(model, data, idx, refs, [idx[sub[j]] for j in k10], [br[j] for j in k10]))
            res.update(names_kept(data, idx, hyps, model.runtime.vocab.stoi))
        model.train(was)
        return res

    def _casual_metrics(self, model, data: Pairs, idx: list[int], refs: list[list[str]], beam_idx: list[int],
                        beam_refs: list[list[str]]) -> dict[str, float]:
        """BLEU of the same <= 10-word test sentences typed as people often type them in a chat box: all lower case,
        no final punctuation mark (data.casual). Greedy on all of them, beam on the beam subset's."""
        le10 = [k for k, i in enumerate(idx) if D.n_words(data.en[i]) <= 10]
        typed = casual_pairs(data, model.runtime.vocab.stoi)
        hyps = self.translate_batch(model, typed, [idx[k] for k in le10])
        bleu10, _ = _bleu(hyps, [refs[k] for k in le10])
        bh = [self._beam_text(model, typed, i) for i in beam_idx]
        beam10, chrf10 = _bleu(bh, beam_refs)
        return {"bleu_greedy_le10_casual": bleu10, "bleu_le10_casual": beam10, "chrf_le10_casual": chrf10}

    def _beam_text(self, model, data: Pairs, i: int) -> str:
        device = next(model.parameters()).device
        src = torch.tensor([data.src[i]], dtype=torch.long, device=device)  # (1, S)
        cands = model.beam_search(src, None, beam=BEAM, max_len=DECODE_MAX, topk=1, **must_write(data.src[i]))
        c = cands[0]
        unk = [j == UNK_ID for j in data.src[i]]
        return D.detokenize(ids_to_tokens(c.tokens, model.runtime.target_vocab.itos, data.src_tokens[i], unk, c.attention))

    # ---- serving -----------------------------------------------------------------------------------------------
    def demos(self) -> list[Demo]:
        return [
            Demo("How are you doing?", "How are you doing?", "4 words in, 3 out: lengths need not match"),
            Demo("word order", "I have a red car.", "the adjective moves after the noun: watch the attention cross"),
            Demo("negation", "I don't know what he wants.", "one English word, two French ones: ne ... pas"),
            Demo("a name", "My friend lives in Zanzibar.",
                 "an unknown name is copied through from the English word the decoder looks at"),
            Demo("a question", "Where did you put the keys?", "question word moves; tense changes"),
            Demo("longer", "We should have left earlier, but nobody wanted to leave the party.",
                 "longer than any sentence the model was trained on: the note under the answer says by how much"),
        ]

    def prepare(self, model, text) -> tuple[list[str], list[int], str]:
        """Text -> (tokens, ids, notes for the reader). Invisible characters are dropped (data.clean), contractions
        typed without an apostrophe get it back and chat spellings unknown to the model are written out
        (core.data.restore_apostrophes, spell_out_chat), ALL-CAPS or Title Case text is put
        in sentence case (data.normalise_case), and each change, cut or stretch is said: more
        characters than MAX_CHARS, more tokens than MAX_SRC_TOKENS, more words than the model was trained on."""
        if isinstance(text, dict):
            text = text.get("text")
        if text is None or (isinstance(text, str) and not text.strip()):
            raise BadInput("Type an English sentence to translate.")
        if not isinstance(text, str):
            raise BadInput(f"Type an English sentence as text (got {type(text).__name__}).")
        notes = []
        typed = D.clean(text[:MAX_CHARS])
        stoi = model.runtime.vocab.stoi
        known = lambda w: D.SPACE + w in stoi or w in stoi  # noqa: E731 -- the vocabulary knows this word
        restored = spell_out_chat(restore_apostrophes(typed), known)  # "i dont know u" -> "i don't know you"
        cased = D.normalise_case(restored, known)
        tokens = D.tokenize(cased)
        if not any(any(ch.isalnum() for ch in t) for t in tokens):
            raise BadInput("There are no words to translate here (only punctuation or symbols).")
        if cased != typed:
            why = []
            if restored != typed:
                why.append("“don't” has its apostrophe and chat spellings such as “u” or “thx” are written out")
            if cased != restored:
                why.append("words are in ordinary sentence case (in capitals they would be words it has never seen)")
            notes.append(f"Read as “{cased[:200]}”: the model learnt from edited sentences, where "
                         + " and ".join(why) + ".")
        if len(text) > MAX_CHARS:
            notes.append(f"The text has {len(text):,} characters: only the first {MAX_CHARS:,} were read.")
        cut = len(tokens) > MAX_SRC_TOKENS
        if cut:
            notes.append(f"Only the first {MAX_SRC_TOKENS} of the {len(tokens)} tokens were translated.")
            tokens = tokens[:MAX_SRC_TOKENS]
        limit = train_max_words(model)
        n = D.n_words(D.detokenize(tokens))
        if limit and n > limit:
            what = "What was read" if cut else "This input"
            notes.append(f"{what} has {n} words, {n - limit} more than the longest sentences the model was "
                         f"trained on ({limit} words; {n / limit:.1f}× as long): expect parts of it to be left out "
                         "or garbled; shorter sentences translate better.")
        ids = source_ids(tokens, stoi)
        return tokens, ids, " ".join(notes)

    def predict(self, model, input) -> dict:
        opts = input if isinstance(input, dict) else {}
        tokens, ids, note = self.prepare(model, input)
        beam = max(1, min(int(opts.get("beam", BEAM) or 1), 10))
        max_len = max(1, min(int(opts.get("max_len", 30) or 30), 80))
        force = opts.get("force")
        device = next(model.parameters()).device
        unk = [i == UNK_ID for i in ids]
        with torch.inference_mode():
            src = torch.tensor([ids], dtype=torch.long, device=device)  # (1, S)
            prefix, forced_at = None, None
            if force:
                step = int(force.get("step", 0))
                tok = self._target_id(model, force.get("token", ""))
                base = model.beam_search(src, None, beam=beam, max_len=max_len, **must_write(ids))[0].tokens
                step = max(0, min(step, len(base)))
                prefix = [t for t in base[:step] if t != EOS_ID] + [tok]
                forced_at = step
            cands = model.beam_search(src, None, beam=beam, max_len=max_len, prefix=prefix, **must_write(ids))
        best = cands[0]
        out_tokens = ids_to_tokens(best.tokens, model.runtime.target_vocab.itos, tokens, unk, best.attention)
        step_tokens = [model.runtime.target_vocab.itos[t] for t in best.tokens]  # one per decoder step (incl. </s>, <unk>)
        attn = best.attention.tolist() if best.attention is not None else None
        steps = [{"step": k, "token": model.runtime.target_vocab.itos[s["token"]], "prob": s["prob"],
                  "topk": [(model.runtime.target_vocab.itos[t], p) for t, p in s["topk"]]} for k, s in enumerate(best.steps)]
        candidates = []
        for c in cands:
            toks = ids_to_tokens(c.tokens, model.runtime.target_vocab.itos, tokens, unk, c.attention)
            candidates.append({"translation": D.detokenize(toks), "score": c.score, "logprob": c.logprob,
                               "length": len(c.tokens)})
        if len(best.tokens) >= max_len and best.tokens[-1] != EOS_ID:
            note = (note + " " if note else "") + f"The translation stopped at the maximum length ({max_len})."
        return {"source_tokens": tokens, "source_unknown": unk, "output_tokens": out_tokens,
                "step_tokens": step_tokens, "translation": D.detokenize(out_tokens), "candidates": candidates,
                "attention": attn, "steps": steps, "n_source": len(tokens), "n_output": len(out_tokens),
                "forced_step": forced_at, "note": note, "beam": beam, "max_len": max_len,
                "guess": guess(tokens, ids)}

    def _target_id(self, model, token: str) -> int:
        token = (token or "").strip()
        for cand in (token, D.SPACE + token.lstrip(D.SPACE), token.lstrip(D.SPACE)):
            if cand in model.runtime.target_vocab.stoi and cand:
                return model.runtime.target_vocab.stoi[cand]
        raise BadInput(f"'{token}' is not in the French vocabulary, so it cannot be forced.")

    def inspect_loss(self, model, input):
        """Loss of the model's own greedy output; steps = the source words (the encoder is the first recurrence)."""
        tokens, ids, _ = self.prepare(model, input)
        device = next(model.parameters()).device
        src = torch.tensor([ids], dtype=torch.long, device=device)  # (1, S)
        target = self._target_of(model, src, input)
        tgt_in = torch.tensor([[BOS_ID] + target[:-1]], dtype=torch.long, device=device)  # (1, T)
        tgt_out = torch.tensor([target], dtype=torch.long, device=device)  # (1, T)
        logits, _ = model(src, None, tgt_in)  # (1, T, V)
        return F.cross_entropy(logits.float()[0], tgt_out[0]), [D.surface(t) for t in tokens]

    def _target_of(self, model, src, input) -> list[int]:
        # The search for the target is not part of the loss: under no_grad the inspector does not record it.
        with torch.no_grad():
            ys, _ = greedy(model, src, None, DECODE_MAX)
        out = []
        for t in ys[0].tolist():
            out.append(t)
            if t == EOS_ID:
                break
        return out

    def output_grad_norms(self, model, input, out_step: int) -> tuple[list[str], list[float], list[str]]:
        """||d log p(y_k) / d h_enc_t|| for every source step t: how far back the k-th output word's gradient
        reaches through the encoder. Returns (source words, norms, output tokens)."""
        tokens, ids, _ = self.prepare(model, input)
        device = next(model.parameters()).device
        src = torch.tensor([ids], dtype=torch.long, device=device)  # (1, S)
        target = self._target_of(model, src, input)
        out_step = max(0, min(out_step, len(target) - 1))
        emb = model.src_embed(src).detach().requires_grad_(True)  # (1, S, E)
        enc, _ = model.encoder(emb, None)  # (1, S, D*H)
        enc.retain_grad()
        from core.layers import last_real_step

        summary = last_real_step(enc, None, model.encoder.hidden_size, model.encoder.bidirectional)
        L, H = model.decoder.num_layers, model.decoder.hidden_size
        h0 = torch.tanh(model.bridge(summary)).view(-1, L, H).transpose(0, 1).contiguous()
        tgt_in = torch.tensor([[BOS_ID] + target[:-1]], dtype=torch.long, device=device)  # (1, T)
        dec, _ = model.decoder(model.tgt_embed(tgt_in), None, h0)  # (1, T, H)
        mask = torch.ones_like(src, dtype=torch.bool)
        logits, _ = model._output(dec, enc, mask)  # (1, T, V)
        lp = F.log_softmax(logits.float()[0, out_step], -1)[target[out_step]]
        lp.backward()
        norms = enc.grad[0].norm(dim=-1).tolist()  # (S,)
        return [D.surface(t) for t in tokens], norms, [model.runtime.target_vocab.itos[t] for t in target]


def casual_pairs(data: Pairs, stoi: dict[str, int]) -> Pairs:
    """``data`` with every English sentence typed casually (data.casual: lower case, no final punctuation)."""
    en = [D.casual(e) for e in data.en]
    toks = [D.tokenize(e)[:MAX_SRC_TOKENS] or t for e, t in zip(en, data.src_tokens)]
    return Pairs(en, data.fr, [source_ids(t, stoi) for t in toks], data.tgt, toks, data.role)


def name_positions(tokens: list[str], ids: list[int]) -> list[int]:
    """Positions of the words that look like names the model has never seen: Capitalised, not at the start of a
    sentence, and unknown to the English vocabulary (after data.truecase)."""
    out, start = [], True
    for j, (tok, i) in enumerate(zip(tokens, ids)):
        word = D.surface(tok)
        if not start and i == UNK_ID and word[:1].isupper() and word[:1].isalpha():
            out.append(j)
        if word.strip():
            start = word in {".", "!", "?"}
    return out


def names_kept(data: Pairs, idx: list[int], hyps: list[str], stoi: dict[str, int]) -> dict[str, float]:
    """Share of the unseen names in the English (name_positions) that the translation writes exactly as typed (its
    letters: the tokenizer keeps an apostrophe on the name it follows, "Patrick'" of "Patrick's")."""
    found = kept = 0
    for i, hyp in zip(idx, hyps):
        words = set(re.findall(r"\w+", hyp))
        for j in name_positions(data.src_tokens[i], data.src[i]):
            found += 1
            kept += set(re.findall(r"\w+", D.surface(data.src_tokens[i][j]))) <= words
    return {"names_kept": kept / found, "names": float(found)} if found else {"names": 0.0}


def guess(tokens: list[str], ids: list[int]) -> str | None:
    """core.data.guess_note's warning when most words are unknown to the model (another language, gibberish, emoji).
    Unseen names (name_positions) do not count: they are copied through, and a sentence full of names is still
    English."""
    names = set(name_positions(tokens, ids))
    return guess_note([D.surface(t) for t in tokens], [i == UNK_ID and j not in names for j, i in enumerate(ids)],
                      "short everyday English sentences (Tatoeba)")


def train_max_words(model) -> int | None:
    """The longest English sentence (in words) the model was trained on, as its data recorded it (the card's meta,
    or the meta the model was built from); None when unknown."""
    limit = model.runtime.meta.get("train_max_words")
    return int(limit) if limit else None


def collate(src: list[list[int]], tgt: list[list[int]], index: list[int] | None = None) -> dict[str, torch.Tensor]:
    out = {"src": pad(src, PAD_ID), "src_lengths": seq_lengths(src),  # (B, S), (B,)
           "tgt_in": pad([[BOS_ID] + t for t in tgt], PAD_ID),  # (B, T) teacher forcing: <s> y1 .. y_m
           "tgt_out": pad([t + [EOS_ID] for t in tgt], PAD_ID)}  # (B, T) targets: y1 .. y_m </s>
    if index is not None:
        out["index"] = torch.tensor(index, dtype=torch.long)
    return out


TASK = TranslationTask()
