"""The NER task: reading CoNLL-2003 (and WikiANN) files, tokenizing real text with offsets, BIO spans, the CRF,
the everyday-sentence probe set, bad input."""

from __future__ import annotations

import itertools

import pytest
import torch

from core.task import BadInput, check_task
from tasks.ner import MAX_TOKENS, TASK
from tasks.ner.data import (
    Encoder,
    bio_to_spans,
    build_gazetteer,
    build_meta,
    collate,
    gazetteer_table,
    lexicon_table,
    pack_rows,
    read_conll,
    spans_to_bio,
    synthetic_sentences,
    tokenize,
    unpack_rows,
    vocabulary,
    write_conll,
)
from tasks.ner.model import CRF

SENTS = [
    (["R.H.", "Saunders", "(", "St.", "Lawrence", "River", ")"],
     ["B-ORG", "I-ORG", "O", "B-ORG", "I-ORG", "I-ORG", "O"]),
    (["Karl", "Ove", "Knausgård", "(", "born", "1968", ")"], ["B-PER", "I-PER", "I-PER", "O", "O", "O", "O"]),
    (["Atlantic", "City"], ["B-LOC", "I-LOC"]),
]


def _write_raw(path, sents, final_blank=True, eol="\n"):
    lines = []
    for toks, tags in sents:
        lines += [f"en:{t}\t{g}" for t, g in zip(toks, tags)] + [""]
    text = eol.join(lines if final_blank else lines[:-1])
    path.write_text(text + (eol if final_blank else ""), encoding="utf-8")


def test_contract():
    assert check_task(TASK) == []


# ---- the real format ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("final_blank,eol", [(True, "\n"), (False, "\n"), (True, "\r\n")])
def test_read_conll_strips_prefix(tmp_path, final_blank, eol):
    p = tmp_path / "train"
    _write_raw(p, SENTS, final_blank, eol)
    assert read_conll(p) == SENTS


CONLL_2003 = """-DOCSTART- O

EU I-ORG
rejects O
German I-MISC
call O
. O

Peter I-PER
Blackburn I-PER
Smith B-PER

-DOCSTART- O

BRUSSELS B-LOC
1996-08-22 O
"""


def test_read_conll_2003_layout(tmp_path):
    """-DOCSTART- lines are skipped, tokens and tags are space-separated, and entities that start with I-X (the
    IOB1 files) become B-X: the same spans seqeval reads from the raw tags."""
    from seqeval.metrics.sequence_labeling import get_entities

    p = tmp_path / "train.txt"
    p.write_text(CONLL_2003, encoding="utf-8")
    sents = read_conll(p)
    assert [toks for toks, _ in sents] == [["EU", "rejects", "German", "call", "."], ["Peter", "Blackburn", "Smith"],
                                           ["BRUSSELS", "1996-08-22"]]
    assert sents[0][1] == ["B-ORG", "O", "B-MISC", "O", "O"]
    assert sents[1][1] == ["B-PER", "I-PER", "B-PER"]
    raw = [["I-ORG", "O", "I-MISC", "O", "O"], ["I-PER", "I-PER", "B-PER"], ["B-LOC", "O"]]
    for (_, tags), r in zip(sents, raw):
        assert bio_to_spans(tags) == [(t, s, e + 1) for t, s, e in get_entities(r)]


def test_to_bio_keeps_every_span():
    from tasks.ner.data import to_bio

    for tags in itertools.product(["O", "B-PER", "I-PER", "I-LOC", "B-MISC", "I-MISC"], repeat=4):
        tags = list(tags)
        assert bio_to_spans(to_bio(tags)) == bio_to_spans(tags), tags
        assert all(not (t.startswith("I-") and (i == 0 or to_bio(tags)[i - 1][2:] != t[2:]))
                   for i, t in enumerate(to_bio(tags)))


def test_read_conll_rejects_bad_lines(tmp_path):
    p = tmp_path / "bad"
    p.write_text("en:Paris\tB-CITY\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown tag"):
        read_conll(p)
    p.write_text("justonefield\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected"):
        read_conll(p)


def test_load_data_reads_three_files(tmp_path):
    sents = synthetic_sentences(30, seed=1) + SENTS
    for name in ("train", "dev", "test"):
        write_conll(tmp_path / name, sents)
    sp = TASK.load_data(tmp_path)
    assert len(sp.train) == len(sp.val) == len(sp.test) == len(sents)
    assert sp.train.sents[-1] == SENTS[-1]
    words = sp.meta["words"]
    assert sp.meta["labels"][0] == "O"
    assert words.index("knausgård") >= sp.meta["embed_words"]  # seen once: no word vector, lexicon only
    assert [p.name for p in sp.files] == ["train", "dev", "test"] and "gazetteer" not in sp.meta
    batch = next(iter(TASK.batches(sp.train, 8, shuffle=True, seed=0)))
    B, T, W = batch["x"].shape
    assert batch["tags"].shape == (B, T) and batch["lengths"].max() == T and W >= 3


# ---- the gazetteer (WikiANN's name counts) ---------------------------------------------------------------------
WIKI = [
    (["Olumide", "Adeyemi", "visited", "Manhattan", "Bridge"], ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]),
    (["Manhattan", "Records", "signed", "Olumide"], ["B-ORG", "I-ORG", "O", "B-PER"]),
]


def test_gazetteer_counts_types_of_names():
    """B- and I- merge into the type; words never inside a name are left out; the cap keeps the most named."""
    gaz = build_gazetteer(WIKI)
    assert gaz["columns"] == ["PER", "ORG", "LOC", "O"]
    words, counts = gazetteer_table(gaz)
    got = {w: counts[i].tolist() for i, w in enumerate(words)}
    assert got["olumide"] == [2, 0, 0, 0] and got["manhattan"] == [0, 1, 1, 0]
    assert got["bridge"] == [0, 0, 1, 0] and "visited" not in got and "signed" not in got
    assert gazetteer_table(build_gazetteer(WIKI, max_words=2))[0] == ["manhattan", "olumide"]  # 2 names each


def test_tables_read_the_same_from_older_cards():
    """Cards written before the packed tables (a list per lexicon row, a dict of count strings for the gazetteer)
    give the same model: same vocabulary, same lexicon and gazetteer buffers."""
    meta = build_meta(SENTS + synthetic_sentences(20, seed=3), gazetteer=WIKI)
    assert isinstance(meta["lexicon"], str) and isinstance(meta["gazetteer"]["counts"], str)
    words, counts = gazetteer_table(meta["gazetteer"])
    old = {**meta, "lexicon": lexicon_table(meta).tolist(),
           "gazetteer": {"columns": meta["gazetteer"]["columns"],
                         "counts": {w: " ".join(map(str, c)) for w, c in zip(words, counts.tolist())}}}
    assert vocabulary(old) == vocabulary(meta)
    new_m, old_m = TASK.build_model(TASK.config, meta), TASK.build_model(TASK.config, old)
    assert torch.equal(new_m.embed.lexicon, old_m.embed.lexicon) and torch.equal(new_m.embed.gazetteer,
                                                                                  old_m.embed.gazetteer)
    assert pack_rows(unpack_rows(meta["lexicon"], len(meta["labels"])).tolist()) == meta["lexicon"]


def _nested_layout(root, wiki=WIKI):
    (root / "conll2003").mkdir()
    for name in ("train.txt", "dev.txt", "test.txt"):
        write_conll(root / "conll2003" / name, synthetic_sentences(30, seed=1) + SENTS)
    (root / "wikiann_en").mkdir()
    _write_raw(root / "wikiann_en" / "train", wiki)
    (root / "wikiann_en" / "dev").write_text("not read\n", encoding="utf-8")  # only train is the gazetteer


def test_load_data_with_gazetteer(tmp_path):
    """A folder with conll2003/ and wikiann_en/: the splits from the first, the gazetteer from WikiANN's train file
    (recorded among the data files); a word only WikiANN has gets an id past the words, and no word vector."""
    _nested_layout(tmp_path)
    sp = TASK.load_data(tmp_path)
    assert [str(p.relative_to(tmp_path)) for p in sp.files] == [
        "conll2003/train.txt", "conll2003/dev.txt", "conll2003/test.txt", "wikiann_en/train"]
    assert "WikiANN" in sp.dataset and len(sp.train) == 33
    meta = sp.meta
    assert "olumide" not in meta["words"] and "olumide" in gazetteer_table(meta["gazetteer"])[0]
    enc = Encoder(meta)
    ids = enc.encode(["Olumide", "Lisbon", "Xyzzy"])[:, 0].tolist()
    assert ids[0] >= len(meta["words"]) and ids[1] < len(meta["words"]) and ids[2] == 1
    m = TASK.build_model(TASK.config, meta).eval()
    feats = m.embed.gazetteer_features(torch.tensor([ids]))[0]  # (3, 6)
    assert torch.allclose(feats[0, 1:5], torch.tensor([1.0, 0, 0, 0])) and feats[0, -1] == 0  # a person, seen
    assert feats[1, -1] == 1 and feats[2, -1] == 1  # not in the gazetteer: "never seen"
    assert float(m.embed.lexicon_features(torch.tensor([ids[:1]]), torch.zeros(1, 1, dtype=torch.long))[0, 0, -1]) == 1
    out = TASK.predict(m, "Olumide Adeyemi works in Lisbon.")
    assert "Olumide" in out["unknown_words"] and len(out["tags"]) == 6
    m.train()
    m.embed.lexicon_dropout = 1.0  # hidden while training: the word looks unseen
    assert m.embed.gazetteer_features(torch.tensor([ids]))[0, 0, -1] == 1


def test_cards_without_the_gazetteer_still_build(tmp_path):
    """A config from before the gazetteer (no such key) builds the model it was trained as, even from a meta that
    has one; ``gazetteer: false`` leaves the features out."""
    _nested_layout(tmp_path)
    meta = TASK.load_data(tmp_path).meta
    old_meta = {k: v for k, v in meta.items() if k != "gazetteer"}
    old_config = {k: v for k, v in TASK.config.items() if k != "gazetteer"}
    plain = TASK.build_model(old_config, old_meta)
    assert plain.embed.gazetteer is None
    assert TASK.build_model(old_config, meta).embed.out_size == plain.embed.out_size
    assert TASK.build_model({**TASK.config, "gazetteer": False}, meta).embed.out_size == plain.embed.out_size
    with_gaz = TASK.build_model(TASK.config, meta)
    assert with_gaz.embed.out_size == plain.embed.out_size + 6  # 4 columns, total, "never seen"
    assert set(with_gaz.state_dict()) == set(plain.state_dict())  # the counts are data from the meta, not weights


def test_missing_file_is_clear(tmp_path):
    write_conll(tmp_path / "train", SENTS)
    with pytest.raises(FileNotFoundError, match="no dev file"):
        TASK.load_data(tmp_path)


# ---- tokenizer -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("Adam lists his Manhattan house for $37.5 million.",
     ["Adam", "lists", "his", "Manhattan", "house", "for", "$", "37.5", "million", "."]),
    ("O'Brien's well-known Saint-Étienne café isn't in the U.S.",
     ["O'Brien", "'s", "well-known", "Saint-Étienne", "café", "is", "n't", "in", "the", "U.S."]),
    ("Mr. J. Smith (born 1,234) – “hi”…", ["Mr.", "J.", "Smith", "(", "born", "1,234", ")", "–", "“", "hi", "”", "…"]),
    ("Łódź, 東京 and Zoë’s Knausga\u030ard", ["Łódź", ",", "東京", "and", "Zoë", "’s", "Knausga\u030ard"]),
    ("<b>Paris</b> & co 🙂", ["<", "b", ">", "Paris", "<", "/", "b", ">", "&", "co", "🙂"]),
    ("  \n\t ", []),
    ("\x00\u202e abc\u200bdef", ["abc", "def"]),  # control and bidi characters are not words
])
def test_tokenize_offsets(text, expected):
    toks = tokenize(text)
    assert [t for t, _, _ in toks] == expected
    for tok, s, e in toks:
        assert text[s:e] == tok


def test_encoder_handles_odd_tokens(splits):
    enc = Encoder(splits.meta)
    rows = enc.encode(["x" * 100, "🙂", "Zoë"])
    assert rows.shape == (3, enc.lead + splits.meta["max_word_len"])
    assert (rows[:, enc.lead] > 0).all()  # every word has at least one character id


# ---- spans -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tags,spans", [
    (["B-PER", "I-PER", "O", "B-LOC"], [("PER", 0, 2), ("LOC", 3, 4)]),
    (["O", "I-ORG", "I-ORG", "O"], [("ORG", 1, 3)]),  # ill-formed I- after O starts an entity (as conlleval)
    (["B-PER", "I-ORG"], [("PER", 0, 1), ("ORG", 1, 2)]),  # a type switch inside starts a new one
    (["B-LOC", "B-LOC", "I-LOC"], [("LOC", 0, 1), ("LOC", 1, 3)]),
    (["I-PER"], [("PER", 0, 1)]),
    ([], []),
])
def test_bio_to_spans(tags, spans):
    assert bio_to_spans(tags) == spans


def test_spans_round_trip():
    spans = [("PER", 0, 2), ("LOC", 3, 4)]
    assert bio_to_spans(spans_to_bio(5, spans)) == spans


def test_bio_agrees_with_seqeval():
    from seqeval.metrics.sequence_labeling import get_entities

    for tags in itertools.product(["O", "B-PER", "I-PER", "I-LOC"], repeat=3):
        want = sorted((t, s, e + 1) for t, s, e in get_entities(list(tags)))
        assert sorted(bio_to_spans(list(tags))) == want, tags


# ---- model -------------------------------------------------------------------------------------------------------
def test_crf_matches_brute_force():
    torch.manual_seed(0)
    labels = ["O", "B-PER", "I-PER"]
    crf = CRF(labels)
    with torch.no_grad():
        crf.trans.normal_()
        crf.end.normal_()
    emit = torch.randn(1, 3, 3)
    mask = torch.ones(1, 3, dtype=torch.bool)
    trans, start = crf._scores()

    def score(y):
        s = start[y[0]] + emit[0, 0, y[0]] + crf.end[y[-1]]
        return s + sum(trans[y[t - 1], y[t]] + emit[0, t, y[t]] for t in range(1, 3))

    paths = list(itertools.product(range(3), repeat=3))
    scores = torch.stack([score(y) for y in paths])
    assert torch.allclose(crf.log_partition(emit, mask), torch.logsumexp(scores, 0), atol=1e-4)
    best = paths[int(scores.argmax())]
    assert crf.viterbi(emit, mask)[0] == list(best)
    assert bio_to_spans([labels[k] for k in best]) is not None
    assert crf.viterbi(emit, mask)[0][0] != 2  # never starts with I-
    marg = crf.marginals(emit, mask)[0]
    assert torch.allclose(marg.sum(-1), torch.ones(3), atol=1e-5)


def test_training_step_lowers_loss(splits):
    torch.manual_seed(0)
    m = TASK.build_model(TASK.config, splits.meta)
    opt = torch.optim.Adam(m.parameters(), 1e-2)
    batch = collate(splits.train.rows[:16], splits.train.tags[:16], lead=splits.train.lead)
    first = None
    for _ in range(5):
        loss = TASK.loss(m, batch)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first
    m.eval()
    metrics = TASK.evaluate(m, splits.test)
    assert {"f1", "precision", "recall"} <= set(metrics) and 0 <= metrics["f1"] <= 1


@pytest.mark.parametrize("variant", ["lstm", "gru"])
def test_variants_build(splits, variant):
    m = TASK.build_model({**TASK.config, **TASK.recipe.variants[variant]}, splits.meta).eval()
    out = TASK.predict(m, "Alice Okafor works in Lisbon.")
    assert len(out["tags"]) == len(out["tokens"]) == 6
    parts = TASK.direction_parts(m, "Alice Okafor works in Lisbon.")
    assert ("backward" in parts) == m.rnn.bidirectional


# ---- serving -----------------------------------------------------------------------------------------------------
def test_predict_shape_and_offsets(model):
    text = "Adam lists his Manhattan house for $37.5 million."
    out = TASK.predict(model, text)
    assert set(out) >= {"tokens", "tags", "confidences", "spans"}
    assert len(out["tokens"]) == len(out["tags"]) == len(out["confidences"]) == 10
    assert all(0.0 <= c <= 1.0 for c in out["confidences"])
    for sp in out["spans"]:
        assert text[sp["start"]:sp["end"]] == sp["text"] and sp["type"] in ("PER", "ORG", "LOC", "MISC")


def test_demos_predict(model):
    for demo in TASK.demos():
        assert TASK.predict(model, demo.input)["tokens"]


@pytest.mark.parametrize("bad", ["", "   \n ", None, 42, ["a"], {"text": ""}, {"text": "Hi", "word": "x"}])
def test_bad_input_is_clear(model, bad):
    with pytest.raises(BadInput):
        TASK.predict(model, bad)


def test_huge_and_odd_input(model):
    out = TASK.predict(model, "Paris " * 5000)
    assert len(out["tokens"]) == MAX_TOKENS and "first" in out["note"]
    out = TASK.predict(model, "<script>alert(1)</script> \u200b\u0000 ☃")
    assert out["tokens"] and out["note"] == ""
    assert TASK.predict(model, "...")["spans"] == [] or True  # punctuation only: a sane answer, no error


def test_inspect_loss_chosen_word(model):
    text = "Alice Okafor moved to Lisbon ."
    loss, labels = TASK.inspect_loss(model, {"text": text, "word": 4})
    assert loss.dim() == 0 and labels == ["Alice", "Okafor", "moved", "to", "Lisbon", "."]
    loss.backward()
    with pytest.raises(BadInput):
        TASK.inspect_loss(model, {"text": text, "word": 99})


def test_highlight_escapes_html():
    from tasks.ner.page import highlight_html

    text = "<img src=x onerror=alert(1)> Paris"
    out = highlight_html(text, [{"start": 29, "end": 34, "type": "LOC", "confidence": 0.9, "text": "Paris"}])
    assert "<img" not in out and "&lt;img" in out and "Paris" in out and "LOC 90%" in out


def test_lexicon_leaves_own_tag_out(model, splits):
    """On the training split a word's tag counts exclude its own occurrence; elsewhere they are complete."""
    enc = model.embed
    i = next(k for k, (toks, _) in enumerate(splits.train.sents) if "UNESCO" in toks)
    row = splits.train.rows[i]
    j = splits.train.sents[i][0].index("UNESCO")
    held = enc.lexicon_features(row[None, :, 0], row[None, :, 2])[0, j]  # (9,)
    full = enc.lexicon_features(row[None, :, 0], torch.zeros_like(row[None, :, 2]))[0, j]
    n = lexicon_table(splits.meta)[int(row[j, 0])].tolist()
    assert sum(n) >= 1 and full[-1] == 0  # seen in training
    assert torch.isclose(held[0], torch.log1p(torch.tensor(sum(n) - 1.0)) / 5)
    assert int(row[j, 2]) == splits.meta["labels"].index("B-ORG") + 1
    assert splits.test.rows[0][:, 2].eq(0).all()  # no held-out tags outside the training split


def test_meta_caps_vocabulary():
    sents = [([w, w], ["O", "O"]) for w in ("".join(p) for p in itertools.product("abcdefg", repeat=2))]
    meta = build_meta(sents, max_words=10)
    assert meta["embed_words"] == 12  # <pad>, <unk> + 10 with a word vector
    assert len(meta["words"]) == len(lexicon_table(meta)) == 2 + 49  # every training word is in the lexicon
    assert len(build_meta(sents, max_words=10, lexicon=False)["words"]) == 12


# ---- the served ensemble (core.ensemble) -------------------------------------------------------------------------
def test_ensemble_is_one_mixed_crf(splits):
    from core.ensemble import build

    torch.manual_seed(0)
    a = TASK.build_model(TASK.config, splits.meta).eval()
    b = TASK.build_model({**TASK.config, **TASK.recipe.variants["gru"]}, splits.meta).eval()
    with torch.no_grad():  # untrained CRFs are all zeros: give them different transitions to mix
        a.crf.trans.normal_()
        b.crf.trans.normal_()
    text = "Alice Okafor works in Lisbon."
    alone = build(TASK, [a, b], [1.0, 0.0])
    assert TASK.predict(alone, text)["tags"] == TASK.predict(a, text)["tags"]
    ens = build(TASK, [a, b], [3.0, 1.0])
    assert ens.weights == [0.75, 0.25]
    assert b.embed.lexicon is a.embed.lexicon  # one copy of the card's tag-count table for every member
    assert torch.allclose(ens.crf.trans, 0.75 * a.crf.trans + 0.25 * b.crf.trans)
    b_ = collate([splits.test.encoded(a.runtime.reader).rows[0]], lead=splits.test.lead)
    emit = ens(b_["x"], b_["lengths"])
    assert torch.allclose(emit, 0.75 * a(b_["x"], b_["lengths"]) + 0.25 * b(b_["x"], b_["lengths"]), atol=1e-6)
    probs = ens.probabilities(emit, b_["lengths"])[0]
    assert torch.allclose(probs.sum(-1), torch.ones(probs.shape[0]), atol=1e-4)  # a proper CRF's marginals
    other = TASK.build_model({**TASK.config, "crf": False}, splits.meta)
    with pytest.raises(ValueError, match="CRF"):
        TASK.ensemble([a, other], [0.5, 0.5])


def test_ensemble_command_serves_the_two_bidirectional_taggers(tmp_path, capsys):
    import json

    from core.cli.ensemble import main as ens_main
    from core.cli.train import main as train_main
    from core.serving import load_served

    out = tmp_path / "w"
    assert train_main(["ner", "--synthetic", "--out", str(out), "--epochs", "1", "--max-steps", "2",
                       "--no-progress"]) == 0
    assert ens_main(["ner", "--synthetic", "--weights", str(out), "--members", "bilstm,gru", "--grid", "0.5"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["ensemble"]["members"] == ["bilstm", "gru"] and card["metrics"] == card["ensemble"]["test"]
    served = load_served(TASK, out)
    assert served.has_ensemble and served.members.names == ("bilstm", "gru") and served.members.weights == (0.5, 0.5)
    ens = served.answering()
    assert TASK.evaluate(ens, TASK.synthetic_data(0).test) == card["metrics"]  # what core.evaluate recomputes
    both = TASK.predict(ens, {"text": "Alice Okafor works in Lisbon."})
    alone = TASK.predict(served.answering(alone=True), {"text": "Alice Okafor works in Lisbon."})
    assert both["probs"] != alone["probs"]  # the mixed CRF's marginals, not the BiLSTM's
    assert len(both["tags"]) == len(alone["tags"]) == 6
    capsys.readouterr()


def test_page_shows_the_ensemble_and_the_bilstm_alone():
    from test_contract import ensemble_page

    at = ensemble_page("ner")
    captions = " ".join(str(c.value) for c in at.caption)
    assert "Tagged by an **ensemble**: BiLSTM ×" in captions  # the members as the page names them (variant_names)
    assert "alone (the views take its two halves" in captions
    next(t for t in at.toggle if t.key == "ner_single").set_value(True).run()
    assert not at.exception, [e.message for e in at.exception]
    assert "Tagged by the BiLSTM alone" in " ".join(str(c.value) for c in at.caption)


# ---- the everyday-sentence probe set ---------------------------------------------------------------------------
def test_probe_set_is_well_formed():
    """At least 30 sentences; every expected span is a run of whole tokens of its sentence, of a known type."""
    from tasks.ner import PROBE_SET
    from tasks.ner.data import ENTITY_TYPES

    assert len(PROBE_SET) >= 30 and PROBE_SET[0][0].startswith("Adam lists his Manhattan house")
    for text, want, _kind in PROBE_SET:
        toks = [t for t, _, _ in tokenize(text)]
        for span, typ in want:
            assert typ in ENTITY_TYPES
            words = [t for t, _, _ in tokenize(span)]
            assert any(toks[i:i + len(words)] == words for i in range(len(toks))), (text, span)


def test_probe_report_scores_exact_spans(model, monkeypatch):
    """right = the same (text, type) spans and nothing more: an extra or a wrongly typed span is wrong."""
    import tasks.ner as ner

    monkeypatch.setattr(ner, "PROBE_SET", [("Adam lives in Oslo.", [("Adam", "PER"), ("Oslo", "LOC")], "a"),
                                           ("Adam lives in Oslo.", [("Adam", "PER")], "b"),
                                           ("Adam lives in Oslo.", [("Adam", "LOC"), ("Oslo", "LOC")], "c")])
    fake = {"Adam lives in Oslo.": [{"text": "Adam", "type": "PER"}, {"text": "Oslo", "type": "LOC"}]}
    monkeypatch.setattr(type(TASK), "predict", lambda self, m, text: {"spans": fake[text]})
    rows = TASK.probe_report(model)
    assert [r["right"] for r in rows] == [True, False, False]
    assert rows[1]["model"] == "Adam = PER; Oslo = LOC" and rows[1]["expected"] == "Adam = PER"


def test_ensemble_min_gain_keeps_one_model(tmp_path, capsys):
    """--min-gain: an ensemble that does not beat the served model alone by that much on validation is not served."""
    import json

    from core.cli.ensemble import main as ens_main
    from core.cli.train import main as train_main

    out = tmp_path / "w"
    assert train_main(["ner", "--synthetic", "--out", str(out), "--epochs", "1", "--max-steps", "2",
                       "--no-progress"]) == 0
    assert ens_main(["ner", "--synthetic", "--weights", str(out), "--members", "bilstm,gru", "--grid", "1,0.5",
                     "--min-gain", "2"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert "ensemble" not in card and card["metrics"] == card["comparison"]["bilstm"]["test"]
    said = capsys.readouterr().out
    assert "stays a single model" in said


def test_text_in_one_case_gets_a_note():
    """All lower case or all capitals is unlike the training news: the page says so -- with the card's scores for
    text written that way when it has them, else that the tags are a guess; mixed case gets no note."""
    from tasks.ner import case_note

    assert "lower case" in case_note("adam lists his manhattan house".split())
    assert "capitals" in case_note("ADAM LISTS HIS MANHATTAN HOUSE".split())
    assert case_note("Adam lists his Manhattan house".split()) is None
    assert case_note(["hi", "there"]) is None  # too short to judge
    measured = {"f1": 0.865, "f1_lower": 0.833, "f1_upper": 0.8}  # a tagger trained on lower-case and capitals copies
    lower = case_note("adam lists his manhattan house".split(), measured)
    assert "83%" in lower and "86%" in lower and "guess" not in lower  # the card's scores, not a blanket warning
    assert "80%" in case_note("ADAM LISTS HIS MANHATTAN HOUSE".split(), measured)
    assert case_note("Adam lists his Manhattan house".split(), measured) is None
    assert case_note("the U.S. and EU met".split()) is None


# ---- how people type: the same sentences in lower case and in capitals ------------------------------------------
def test_recase_keeps_the_tags():
    from tasks.ner.data import recase

    low, up = recase(SENTS, "lower"), recase(SENTS, "upper")
    assert low[1] == (["karl", "ove", "knausgård", "(", "born", "1968", ")"], SENTS[1][1])
    assert up[2] == (["ATLANTIC", "CITY"], ["B-LOC", "I-LOC"])
    with pytest.raises(ValueError):
        recase(SENTS, "title")


def test_training_epochs_show_each_sentence_as_written_and_once_recased(splits):
    train = splits.train
    assert set(train.copies) == {"lower", "upper"} and not splits.val.copies  # copies for training only

    def epoch(seed):
        seen = []
        for b in TASK.batches(train, 8, shuffle=True, seed=seed):
            for row, n in zip(b["x"], b["lengths"]):
                seen.append(tuple(row[:int(n), 1].tolist()))  # the shape column: capitalisation
        return seen

    first, second = epoch(1), epoch(2)
    assert len(first) == 2 * len(train)
    enc = Encoder(splits.meta)
    as_written = {tuple(enc.encode(t)[:, 1].tolist()) for t, _ in train.sents}
    lower = {tuple(enc.encode([w.lower() for w in t])[:, 1].tolist()) for t, _ in train.sents}
    upper = {tuple(enc.encode([w.upper() for w in t])[:, 1].tolist()) for t, _ in train.sents}
    assert sum(s in as_written for s in first) >= len(train)
    assert any(s in lower and s not in as_written for s in first)
    assert any(s in upper and s not in as_written for s in first)
    assert first != second  # each epoch tosses its own coins
    assert len(list(TASK.batches(train, 8, shuffle=False))) == -(-len(train) // 8)  # unshuffled: as written, once


def test_evaluate_scores_every_way_of_writing(model, splits):
    out = TASK.evaluate(model, splits.val)
    assert {"f1", "f1_lower", "f1_upper", "f1_cases"} <= set(out)
    assert out["f1_cases"] == pytest.approx((out["f1"] + out["f1_lower"] + out["f1_upper"]) / 3)
    assert TASK.recipe.select == "f1_cases" and TASK.recipe.metric == "f1"


def test_unfamiliar_note_when_most_words_have_no_vector():
    """A guess when most ordinary (not capitalised) words are new to the tagger; new names alone are no reason."""
    from tasks.ner import unfamiliar_note

    german = "Gestern hat Frau Schmidt in München ein neues Auto gekauft".split()
    note = unfamiliar_note({"tokens": german, "unknown_words": [w for w in german if w not in ("in", "Auto")]})
    assert note and note.startswith("This answer is a guess") and "4 of its 5 ordinary words" in note
    assert "hat, ein, neues, gekauft" in note
    names = "Olumide visited Lagos with Chidi".split()  # a few new names: what the spelling is for, no warning
    assert unfamiliar_note({"tokens": names, "unknown_words": ["Olumide", "Chidi"]}) is None
    made_up = "Okonkwo Adeyemi left Brightwater Analytics to open a bakery in Port Amberley .".split()
    new = ["Okonkwo", "Adeyemi", "Brightwater", "Analytics", "bakery", "Amberley"]  # half the words, mostly names
    assert unfamiliar_note({"tokens": made_up, "unknown_words": new}) is None
    assert "its one ordinary word" in unfamiliar_note({"tokens": ["这部电影很好看"], "unknown_words": ["这部电影很好看"]})
    spanish = "ayer fuimos a la playa con mis amigos".split()
    assert unfamiliar_note({"tokens": spanish, "unknown_words": ["ayer", "fuimos", "playa", "con", "mis", "amigos"]})
    assert unfamiliar_note({"tokens": ["..."], "unknown_words": []}) is None  # punctuation only: nothing to judge
    assert "3 of its 3 ordinary words" in unfamiliar_note({"tokens": ["😀", "😍", "🎬"], "unknown_words": ["😀", "😍", "🎬"]})
    # all in capitals no word stands out by its capital: every word counts, so a shouted foreign text is a guess too
    shouted = [w.upper() for w in spanish]
    note = unfamiliar_note({"tokens": shouted, "unknown_words": ["AYER", "FUIMOS", "PLAYA", "CON", "MIS", "AMIGOS"]})
    assert note and "6 of its 8 words" in note and "ordinary" not in note
    english = "ADAM LISTS HIS MANHATTAN HOUSE FOR $37.5 MILLION".split()
    assert unfamiliar_note({"tokens": english, "unknown_words": []}) is None
    assert unfamiliar_note({"tokens": english, "unknown_words": ["ADAM", "MANHATTAN"]}) is None  # 2 of 7: known enough
