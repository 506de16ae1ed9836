"""Translation task: the zip reader, the leak-free split, the reversible tokenizer, bad inputs, predict's answer
and forced prefixes. Data written here (never the dataset); a tiny untrained model: each test well under a second."""

from __future__ import annotations

import re
import zipfile

import pytest
import sacrebleu  # noqa: F401 -- imported once here, not inside the first evaluate() test (slow on a busy host)
import torch

from core.task import BadInput, check_task
from tasks.translation import MAX_SRC_TOKENS, TASK
from tasks.translation import data as D

LINES = [
    "Go.\tVa !",
    "Go!\tBouge !",  # same normalised English as "Go." -> same split
    "Hi.\tSalut !",
    "How are you doing?\tComment vas-tu ?",
    "I don't know.\tJe ne sais pas.",
    "The cat is on the table.\tLe chat est sur la table.",
]


def _zip(tmp_path, lines):
    path = tmp_path / D.ZIP_NAME
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("_about.txt", "made by the test")
        zf.writestr("fra.txt", "\n".join(lines) + "\n")
    return path


def test_contract():
    assert check_task(TASK) == []


def test_zip_reader(tmp_path):
    pairs = D.read_pairs(_zip(tmp_path, LINES + ["broken line without tab", ""]))
    assert pairs[0] == ("Go.", "Va !")
    assert ("How are you doing?", "Comment vas-tu ?") in pairs
    assert len(pairs) == len(LINES)


def test_load_data_from_zip(tmp_path):
    lines = [f"I see {n} cats.\tJe vois {n} chats." for n in range(200)] + LINES
    _zip(tmp_path, lines)
    splits = TASK.load_data(tmp_path)
    assert len(splits.train) + len(splits.val) + len(splits.test) == len(lines)
    assert splits.files and splits.files[0].name == D.ZIP_NAME


def test_split_keeps_english_sentences_apart():
    pairs = [(f"Sentence number {i % 300}{'.' if i % 2 else '!'}", f"Phrase {i}") for i in range(900)]
    parts = D.split_pairs(pairs, seed=0)
    keys = {name: {D.norm_key(e) for e, _ in ps} for name, ps in parts.items()}
    assert not keys["train"] & keys["val"] and not keys["train"] & keys["test"] and not keys["val"] & keys["test"]
    assert parts["val"] and parts["test"]
    assert D.split_pairs(pairs, seed=0) == parts  # seeded


@pytest.mark.parametrize("text", ["Comment vas-tu ?", "L'éléphant n'a pas  faim.", "I don't know, Tom!",
                                  "C'est « génial » !", "Il\u00a0est 3\u202fh 30."])
def test_tokenize_round_trip(text):
    toks = D.tokenize(text)
    assert D.detokenize(toks) == D.clean(text)
    assert all(t for t in toks)


def test_tokenize_marks_spaces():
    assert D.tokenize("Comment vas-tu ?") == ["▁Comment", "▁vas", "-", "tu", "▁?"]


@pytest.mark.parametrize("bad", ["", "   ", None, 42, "?!... ---", "💥💥"])
def test_bad_inputs(model, bad):
    with pytest.raises(BadInput):
        TASK.predict(model, bad)


def test_long_input_truncated(model):
    out = TASK.predict(model, {"text": "the cat " * 500, "beam": 2, "max_len": 5})
    assert out["n_source"] == MAX_SRC_TOKENS and "first" in out["note"]


def test_foreign_input_gets_a_note(model):
    out = TASK.predict(model, "Съешь же ещё этих мягких французских булок")
    assert out["guess"] and "guess" in out["guess"]


def test_predict_format(model):
    out = TASK.predict(model, {"text": "I see the big cat.", "beam": 3, "max_len": 8})
    assert isinstance(out["translation"], str)
    assert out["source_tokens"] == D.tokenize("I see the big cat.")
    assert 1 <= len(out["candidates"]) <= 3
    assert all({"translation", "score"} <= set(c) for c in out["candidates"])
    att = out["attention"]
    assert isinstance(att, list) and len(att) == len(out["step_tokens"]) and len(att[0]) == len(out["source_tokens"])
    assert abs(sum(att[0]) - 1) < 1e-4
    assert len(out["steps"]) == len(out["step_tokens"])
    assert all(len(s["topk"]) >= 1 and 0 <= s["prob"] <= 1 for s in out["steps"])
    assert TASK.predict(model, "I see the big cat.")["translation"] == TASK.predict(model, "I see the big cat.")[
        "translation"]


def test_forced_prefix(model):
    base = TASK.predict(model, {"text": "We see the dog.", "beam": 2, "max_len": 6})
    word = "chat"
    out = TASK.predict(model, {"text": "We see the dog.", "beam": 2, "max_len": 6,
                               "force": {"step": 1, "token": word}})
    assert out["forced_step"] == 1
    assert out["step_tokens"][:1] == base["step_tokens"][:1]
    assert out["step_tokens"][1].replace("▁", "") == word
    with pytest.raises(BadInput):
        TASK.predict(model, {"text": "We see the dog.", "force": {"step": 0, "token": "zzzqqq"}})


def test_plain_variant_and_inspect(model):
    splits = TASK.synthetic_data(0)
    plain = TASK.build_model({**TASK.config, "attention": False}, splits.meta).eval()
    out = TASK.predict(plain, {"text": "I see the cat.", "beam": 2, "max_len": 5})
    assert out["attention"] is None
    loss, labels = TASK.inspect_loss(model, "I see the cat.")
    assert loss.dim() == 0 and labels == ["I", "see", "the", "cat", "."]
    words, norms, outs = TASK.output_grad_norms(model, "I see the cat.", 0)
    assert len(norms) == len(words) == 5 and all(n >= 0 for n in norms)


def test_train_step_and_evaluate(monkeypatch):
    import tasks.translation as T

    monkeypatch.setattr(T, "DECODE_MAX", 6)  # an untrained model never ends a sentence: keep the decode short
    torch.manual_seed(0)
    splits = TASK.synthetic_data(0)
    m = TASK.build_model(TASK.config, splits.meta)
    opt = torch.optim.AdamW(m.parameters(), 3e-3)
    batch = next(iter(TASK.batches(splits.train, 16, True, 0)))
    loss = TASK.loss(m, batch)
    loss.backward()
    opt.step()
    m.eval()
    test = splits.test
    test.en, test.fr, test.src, test.tgt, test.src_tokens = (v[:3] for v in (test.en, test.fr, test.src, test.tgt,
                                                                              test.src_tokens))
    res = TASK.evaluate(m, test)  # test role: greedy + beam metrics, as written and typed casually
    assert TASK.recipe.metric in res and "bleu_le10" in res and "chrf" in res
    assert {"bleu_greedy_le10_casual", "bleu_le10_casual", "names"} <= set(res)
    val = TASK.evaluate(m, splits.val)
    assert TASK.recipe.metric in val and val == TASK.evaluate(m, splits.val)  # deterministic


def test_shared_inspector_runs(model):
    from core.inspect import inspect_model

    ins = inspect_model(model, lambda m: TASK.inspect_loss(m, "I see the cat."))
    sal = ins.saliency
    assert list(sal["label"]) == ["I", "see", "the", "cat", "."]


def test_bleu_uses_every_reference_of_a_sentence():
    from tasks.translation import _bleu, _groups

    hyps = ["Je suis fatigué .", "Il pleut ."]
    one = [["Je suis épuisé ."], ["Il pleut ."]]
    many = [["Je suis épuisé .", "Je suis fatigué ."], ["Il pleut ."]]  # a varying number of references
    assert _bleu(hyps, many)[0] == pytest.approx(100.0)
    assert _bleu(hyps, one)[0] < 80.0
    pairs = TASK.synthetic_data(0).test
    groups = _groups(pairs)
    assert sorted(i for g in groups for i in g) == list(range(len(pairs)))  # a partition of the split
    for g in groups:  # one English sentence per group
        assert len({pairs.en[i].lower().strip(" .!?") for i in g}) == 1


def test_page_says_how_the_two_lengths_compare():
    """The Try-it tab states n and m as they are (it must not claim n != m when they happen to be equal)."""

    from test_contract import page_app

    at = page_app("translation").run()
    assert not at.exception, [e.message for e in at.exception]
    shown = {m.label: int(m.value) for m in at.metric if "tokens" in m.label}
    if not shown:
        pytest.skip("no trained translation weights: the page shows no translation")
    n, m = shown["English tokens (n)"], shown["French tokens (m)"]
    caption = next(str(c.value) for c in at.caption if "the two lengths are independent" in str(c.value))
    assert caption.startswith(f"n = {n}, m = {m}: equal" if n == m else f"n = {n} ≠ m = {m}")


def test_ensemble_command_picks_weights_on_validation_and_serves_them(tmp_path, monkeypatch, capsys):
    """core.ensemble on trained (synthetic) weights: the card gets the ensemble, the app loads it, core.evaluate's
    path reproduces its metrics, and the served variant alone still answers."""
    import json

    import tasks.translation as T
    from core.cli.ensemble import main as ens_main
    from core.cli.train import main as train_main
    from core.serving import load_served

    monkeypatch.setattr(T, "DECODE_MAX", 6)  # barely trained models rarely end a sentence: keep decoding short
    out = tmp_path / "w"
    assert train_main(["translation", "--synthetic", "--out", str(out), "--epochs", "1", "--max-steps", "2",
                       "--no-progress"]) == 0
    single = json.loads((out / "card.json").read_text())
    assert "ensemble" not in single

    # the first member must be the served variant; a task's variants only
    assert ens_main(["translation", "--synthetic", "--weights", str(out), "--members", "plain,attention"]) == 2
    assert ens_main(["translation", "--synthetic", "--weights", str(out), "--grid", "1.5"]) == 2

    assert ens_main(["translation", "--synthetic", "--weights", str(out), "--grid", "0.5"]) == 0
    card = json.loads((out / "card.json").read_text())
    ens = card["ensemble"]
    assert ens["members"] == ["attention", "plain"] and ens["weights"] == [0.5, 0.5]
    assert card["metrics"] == ens["test"] and card["val_metrics"] == ens["val"]
    assert card["comparison"]["attention"]["test"] == single["metrics"]  # the variant alone stays on the card
    assert "core.ensemble translation" in ens["command"] and len(ens["sweep"]) == 1

    served = load_served(TASK, out)
    assert served.has_ensemble and served.ensemble.weights == [0.5, 0.5] and served.ensemble_problem is None
    assert served.members.names == ("attention", "plain") and served.members.weights == (0.5, 0.5)
    assert served.answering() is served.ensemble and served.answering(alone=True) is served.model
    ens = served.answering()
    assert TASK.evaluate(ens, TASK.synthetic_data(0).test) == card["metrics"]  # what core.evaluate recomputes
    both = TASK.predict(ens, {"text": "I see the cat.", "beam": 2, "max_len": 5})
    alone = TASK.predict(served.model, {"text": "I see the cat.", "beam": 2, "max_len": 5})
    assert "ensemble" not in both and "ensemble" not in alone  # who answered is the frame's to say, not predict's
    with torch.no_grad():  # the ensemble decodes with both members: its first step's distribution is not the model's
        src = torch.tensor([TASK.prepare(ens, "I see the cat.")[1]])
        a, b = ens.encode(src), served.model.encode(src)
        step_e = ens.decode_step(torch.tensor([ens.bos_id]), a[1], a[0], a[2])[0]
        step_m = served.model.decode_step(torch.tensor([ens.bos_id]), b[1], b[0], b[2])[0]
        assert not torch.allclose(step_e, step_m)
    forced = TASK.predict(ens, {"text": "I see the cat.", "beam": 2, "max_len": 5,
                                "force": {"step": 0, "token": both["steps"][0]["topk"][-1][0]}})
    assert forced["forced_step"] == 0

    # the served model alone best on validation (grid of 1 only): the card goes back to a single model
    assert ens_main(["translation", "--synthetic", "--weights", str(out), "--grid", "1"]) == 0
    back = json.loads((out / "card.json").read_text())
    assert "ensemble" not in back and back["metrics"] == single["metrics"]
    assert not load_served(TASK, out).has_ensemble

    # a card naming a member whose weights are not there: the served variant answers alone and says why
    card["ensemble"]["members"] = ["attention", "nosuch"]
    (out / "card.json").write_text(json.dumps(card))
    alone_now = load_served(TASK, out)
    assert not alone_now.has_ensemble and "nosuch" in alone_now.ensemble_problem
    assert alone_now.answering() is alone_now.model
    assert TASK.predict(alone_now.answering(), {"text": "I see the cat.", "beam": 2, "max_len": 5})["translation"]
    card["ensemble"]["members"] = ["plain", "attention"]  # members that do not start with the served variant
    (out / "card.json").write_text(json.dumps(card))
    assert "do not fit" in load_served(TASK, out).ensemble_problem
    capsys.readouterr()


def test_the_served_translator_says_how_are_you_doing():
    """The lesson's example, on the committed weights: a correct French sentence (the issue's acceptance line)."""
    from core.serving import load_served

    if not (TASK.weights_path() / "card.json").exists():
        pytest.skip("no trained translation weights")
    model = load_served(TASK).answering()  # what the app translates with
    out = TASK.predict(model, {"text": "How are you doing?"})
    assert out["translation"] in {"Comment vas-tu ?", "Comment allez-vous ?", "Comment ça va ?",
                                  "Comment te portes-tu ?", "Comment vous portez-vous ?"}, out["translation"]


def test_page_shows_the_ensemble_and_the_attention_model_alone():
    from test_contract import ensemble_page

    at = ensemble_page("translation")
    captions = " ".join(str(c.value) for c in at.caption)
    assert "Written by an **ensemble**: attention ×" in captions
    headline = [str(m.value) for m in at.markdown if str(m.value).startswith("### ")]
    toggle = next(t for t in at.toggle if t.key == "translation_single")
    toggle.set_value(True).run()
    assert not at.exception, [e.message for e in at.exception]
    assert "Written by the attention model alone" in " ".join(str(c.value) for c in at.caption)
    assert headline  # a translation was shown both times


# ---- what a visitor types (issue 22) -----------------------------------------------------------------------------
@pytest.mark.parametrize("tokens, text", [
    (["▁L'", "▁Zanzibar", "▁est", "▁loin", "."], "L'Zanzibar est loin."),  # a copied name after an elided article
    (["▁Je", "▁veux", "▁aller", "▁à", "▁l'", "▁avion", "."], "Je veux aller à l'avion."),
    (["▁Qu'", "▁il", "▁vienne", "▁!"], "Qu'il vienne !"),
    (["▁jusqu’", "▁ici"], "jusqu’ici"),
    (["▁Les", "▁garçons", "▁sont", "▁là", "."], "Les garçons sont là."),  # no elision: spaces stay
    (["▁C'", "est", "▁«", "▁génial", "▁»"], "C'est « génial »"),
])
def test_detokenize_glues_elided_words(tokens, text):
    assert D.detokenize(tokens) == text


@pytest.mark.parametrize("ch", ["\u202e", "\u202b", "\u2066", "\u2069", "\u200e", "\u200f", "\u061c", "\u00ad",
                                "\ufeff", "\u200b", "\u2060", "\x07"])
def test_invisible_characters_never_reach_the_model_or_the_answer(model, ch):
    """A right-to-left override (or any format/zero-width/control character) typed or pasted in is neither encoded
    nor copied into the translation shown as the heading."""
    assert ch not in D.clean(f"I see {ch}the cat{ch}.")
    out = TASK.predict(model, {"text": f"I see {ch}the {ch}cat.", "beam": 2, "max_len": 6})
    assert out["source_tokens"] == D.tokenize("I see the cat.")
    shown = out["translation"] + "".join(c["translation"] for c in out["candidates"]) + "".join(out["output_tokens"])
    assert ch not in shown


@pytest.mark.parametrize("typed, read", [
    ("WHERE IS THE STATION?", "Where is the station?"),
    ("Where Is The Station?", "Where is the station?"),
    ("I LIVE IN PARIS. I WATCH TV!", "I live in Paris. I watch TV!"),  # the vocabulary knows Paris and TV so
    ("I met Tom in Paris.", "I met Tom in Paris."),  # ordinary casing is left alone, names and all
    ("Tom Jones", "Tom Jones"),  # two words: could be a name
    ("OK.", "OK."),
])
def test_normalise_case(typed, read):
    known = {"Paris", "TV", "Tom", "i", "live", "in", "watch", "where", "is", "the", "station"}.__contains__
    assert D.normalise_case(typed, known) == read


def test_all_caps_input_is_read_in_sentence_case(model):
    out = TASK.predict(model, {"text": "I SEE THE BIG CAT.", "beam": 2, "max_len": 6})
    assert out["source_tokens"] == D.tokenize("I see the big cat.")
    assert "Read as “I see the big cat.”" in out["note"]
    assert "Read as" not in TASK.predict(model, {"text": "I see the big cat.", "beam": 2, "max_len": 6})["note"]


def test_contractions_typed_without_apostrophe_are_read_with_it(model):
    out = TASK.predict(model, {"text": "i dont see the cat", "beam": 2, "max_len": 6})
    assert out["source_tokens"] == D.tokenize("i don't see the cat")
    assert "Read as “i don't see the cat”" in out["note"] and "apostrophe" in out["note"]
    assert "sentence case" not in out["note"]  # lower case is read as typed (truecased word by word), not re-cased
    shouted = TASK.predict(model, {"text": "I DONT SEE THE CAT", "beam": 2, "max_len": 6})["note"]
    assert "apostrophe" in shouted and "sentence case" in shouted  # both changes, both said


def test_chat_spellings_are_written_out(model):
    out = TASK.predict(model, {"text": "u see the cat", "beam": 2, "max_len": 6})
    assert out["source_tokens"] == D.tokenize("you see the cat") and "Read as “you see the cat”" in out["note"]


def test_longer_than_trained_on_is_said_with_the_limit_from_the_data(model):
    """The length limit comes from the data the model was built from (12 words for the synthetic phrasebook, 10 on
    the served card), never from a constant in the page."""
    limit = TASK.synthetic_data(0).meta["train_max_words"]
    words = ("I see the big cat and you see the small dog and we see the red car too").split()
    assert len(words) > limit
    out = TASK.predict(model, {"text": " ".join(words) + ".", "beam": 1, "max_len": 5})
    assert f"has {len(words)} words, {len(words) - limit} more than" in out["note"]
    assert f"trained on ({limit} words" in out["note"]
    short = TASK.predict(model, {"text": " ".join(words[:limit]), "beam": 1, "max_len": 5})
    assert "more than the longest" not in short["note"]


def test_more_characters_than_read_is_said(model):
    from tasks.translation import MAX_CHARS

    text = "I see the cat. " * 200  # 3,000 characters
    out = TASK.predict(model, {"text": text, "beam": 1, "max_len": 5})
    assert f"{len(text):,} characters: only the first {MAX_CHARS:,} were read" in out["note"]


def _page(text: str | None = None):
    from test_contract import typed_page

    return typed_page("translation", "English sentence", text)


def test_page_box_takes_more_than_is_read_so_a_long_paste_is_not_cut_silently():
    """The browser cuts a paste at the box's max_chars without a word: the box must take more than MAX_CHARS, so
    the task can say how much it read."""
    from tasks.translation import MAX_CHARS

    at = _page()
    box = next(t for t in at.text_input if t.label == "English sentence")
    assert box.proto.max_chars == 0 or box.proto.max_chars > 10 * MAX_CHARS
    if not (TASK.weights_path() / "card.json").exists():
        pytest.skip("no trained translation weights: the page shows no translation")
    text = "Where is the station? " * 120  # 2,640 characters
    at = _page(text)
    info = " ".join(str(i.value) for i in at.info)
    assert f"The text has {len(text):,} characters" in info and f"only the first {MAX_CHARS:,} were read" in info


def test_served_translator_on_the_visitors_inputs():
    """On the committed weights: ALL CAPS is translated as the sentence it spells; the "a name" demo copies its
    unknown name into a translation with no "l' " gap; a sentence longer than the card's training limit says so."""
    from core.serving import load_served

    if not (TASK.weights_path() / "card.json").exists():
        pytest.skip("no trained translation weights")
    served = load_served(TASK).answering()  # what the app translates with
    caps = TASK.predict(served, "WHERE IS THE STATION?")
    assert caps["translation"] == TASK.predict(served, "Where is the station?")["translation"]
    assert not any(t.isupper() and len(t) > 1 for t in caps["translation"].split()), caps["translation"]
    name = next(d for d in TASK.demos() if d.label == "a name")
    out = TASK.predict(served, name.input)
    unknown = [D.surface(t) for t, u in zip(out["source_tokens"], out["source_unknown"]) if u]
    assert unknown and all(w in out["translation"] for w in unknown), out["translation"]
    assert "' " not in out["translation"] and "’ " not in out["translation"]
    limit = served.runtime.meta["train_max_words"]
    longer = next(d for d in TASK.demos() if d.label == "longer").input
    assert D.n_words(longer) > limit
    assert f"more than the longest sentences the model was trained on ({limit} words" in \
        TASK.predict(served, longer)["note"]


KNOWN = {"▁How", "▁how", "▁are", "▁you", "▁doing", "▁?", "▁I", "▁I'", "m", "▁love", "▁Paris", "▁The", "▁the", "▁cat", "▁."}


@pytest.mark.parametrize("typed", ["how are you doing", "How are you doing?", "HOW ARE YOU DOING ?", "how Are you doing"])
def test_truecase_reads_every_casing_as_the_vocabulary_knows_it(typed):
    tokens = D.truecase(D.tokenize(typed), KNOWN.__contains__)
    assert tokens[:4] == ["▁How", "▁are", "▁you", "▁doing"]


def test_truecase_inside_a_sentence_keeps_known_words_and_fixes_unknown_casings():
    assert D.truecase(D.tokenize("i love paris. the cat"), KNOWN.__contains__) == \
        ["▁I", "▁love", "▁Paris", ".", "▁The", "▁cat"]
    assert D.truecase(D.tokenize("i'm Zorblax"), KNOWN.__contains__) == ["▁I'", "m", "▁Zorblax"]  # unknown: as typed
    assert D.truecase(D.tokenize("you how"), KNOWN.__contains__) == ["▁you", "▁how"]  # not "How" mid-sentence


@pytest.mark.parametrize("text, bare", [("Where is it?", "Where is it"), ("Stop!!", "Stop"), ("Wait...", "Wait"),
                                        ("Hi, Tom.", "Hi, Tom"), ("no mark", "no mark"), ("?!", "?!")])
def test_drop_final_punct(text, bare):
    assert D.drop_final_punct(text) == bare
    assert D.detokenize(D.bare_tokens(D.tokenize(text))) == bare


def test_casual_is_lower_case_without_the_final_mark():
    assert D.casual("How are you doing, Tom?") == "how are you doing, tom"


def test_case_and_final_punctuation_do_not_change_what_the_model_reads(model):
    """Synthetic model: the casual sentence reaches the encoder as the same ids, less the final mark."""
    _, ids, _ = TASK.prepare(model, "I see the big cat.")
    for typed in ("i see the big cat", "I SEE THE BIG CAT.", "i see The big cat."):
        _, casual, _ = TASK.prepare(model, typed)
        assert casual == ids[:len(casual)] and len(casual) >= len(ids) - 1, typed


def test_training_shows_sentences_with_and_without_their_final_mark():
    splits = TASK.synthetic_data(0)
    train = splits.train
    assert train.src_bare is not None and all(b == s[:-1] for s, b in zip(train.src, train.src_bare))

    def bare_share(data, shuffle, seed):
        bare = []
        for b in TASK.batches(data, 16, shuffle, seed):
            for row, i in zip(b["src"].tolist(), b["index"].tolist()):
                row = row[:len(row) - row[::-1].index(next(x for x in row[::-1] if x))]  # without padding
                assert row in (data.src[i], (data.src_bare or data.src)[i])
                bare.append(row != data.src[i])
        return bare

    a, b = bare_share(train, True, 0), bare_share(train, True, 1)
    assert 0.3 < sum(a) / len(a) < 0.7 and a != b  # a seeded coin per sentence and epoch
    assert not any(bare_share(splits.val, False, 0))  # never in scoring


def _onehot(rows: list[int], n: int) -> torch.Tensor:
    return torch.eye(n)[rows]  # (T, S): step t looks at source word rows[t]


def test_unknown_output_copies_each_unknown_source_word_once():
    from tasks.translation.model import EOS_ID, UNK_ID

    vocab = ["<pad>", "<s>", "</s>", "<unk>", "▁a", "▁rencontré", "▁à"]
    src = ["▁Zorblax", "▁met", "▁Quenby", "▁in", "▁Ulm"]
    unk = [True, False, True, False, True]
    # <unk> looking at "met" (known): the best unknown word instead; a 4th <unk> has nothing left to copy
    ids = [UNK_ID, 4, 5, UNK_ID, 6, UNK_ID, UNK_ID, EOS_ID]
    att = _onehot([0, 1, 1, 1, 4, 4, 4, 4], 5) + 0.1 * _onehot([2, 2, 2, 2, 2, 0, 2, 2], 5)
    out = T_ids(ids, vocab, src, unk, att)
    assert out == ["▁Zorblax", "▁a", "▁rencontré", "▁Quenby", "▁à", "▁Ulm"]
    # no attention (the plain model): unknown words in order
    assert T_ids([UNK_ID, 5, UNK_ID, EOS_ID], vocab, src, unk, None) == ["▁Zorblax", "▁rencontré", "▁Quenby"]
    # no unknown source word: the word looked at most, as before
    assert T_ids([UNK_ID, EOS_ID], vocab, ["▁x", "▁y"], [False, False], _onehot([1, 1], 2)) == ["▁y"]


def test_decoding_may_not_end_before_every_unknown_word_has_its_place(model):
    """Greedy and beam search owe one <unk> per unknown source word before </s>: with the end of sentence made the
    model's favourite, the unknown words are written first, then it ends; without unknown words nothing is owed;
    a decoder that never writes <unk> may end once its output is twice the source long (plus 2)."""
    from tasks.translation.model import EOS_ID, UNK_ID, greedy, must_write

    head = model.head
    saved = head.bias.detach().clone()
    with torch.no_grad():
        head.bias[EOS_ID] += 50.0  # </s> first at every step unless it is ruled out, then <unk>
        head.bias[UNK_ID] += 25.0
    try:
        src = torch.tensor([[4, UNK_ID, 5, UNK_ID], [4, 5, 6, 7]])  # (2, S): two unknown words, then none
        ys, _ = greedy(model, src, torch.tensor([4, 4]), 12)
        assert ys[0, :3].tolist() == [UNK_ID, UNK_ID, EOS_ID] and ys[1, 0] == EOS_ID
        for ids, owed in ((src[0].tolist(), 2), (src[1].tolist(), 0)):
            assert must_write(ids) == ({"must_write": {UNK_ID: owed}, "owe_until": 10} if owed else {})
            best = model.beam_search(torch.tensor([ids]), beam=3, max_len=12, **must_write(ids))[0]
            assert best.tokens == [UNK_ID] * owed + [EOS_ID]
            assert all(0 <= s["prob"] <= 1 for s in best.steps)  # the model's own probabilities, not the rule's
        out = TASK.predict(model, {"text": "Zorblax met Quenby.", "beam": 2, "max_len": 8})
        assert {"Zorblax", "Quenby"} <= set(re.findall(r"\w+", out["translation"]))
        with torch.no_grad():
            head.bias[UNK_ID] -= 100.0  # now <unk> is never written: the rule gives way at 2 * 4 + 2 tokens
        ys, _ = greedy(model, src[:1], torch.tensor([4]), 30)
        assert ys[0].tolist().index(EOS_ID) == 10
        best = model.beam_search(src[:1], beam=3, max_len=30, **must_write(src[0].tolist()))[0]
        assert len(best.tokens) == 11 and best.tokens[-1] == EOS_ID
    finally:
        with torch.no_grad():
            head.bias.copy_(saved)


def T_ids(*args):
    from tasks.translation.model import ids_to_tokens

    return ids_to_tokens(*args)


def test_guess_warning_for_input_the_model_does_not_know(model):
    out = TASK.predict(model, {"text": "Xq zorp blivet wumble?", "beam": 1, "max_len": 4})
    assert out["guess"] and out["guess"].startswith("This answer is a guess")
    assert TASK.predict(model, {"text": "I see the cat.", "beam": 1, "max_len": 4})["guess"] is None
    # unseen names do not count: a sentence with a name in it is still English
    assert TASK.predict(model, {"text": "I see Zorblax.", "beam": 1, "max_len": 4})["guess"] is None


def _served():
    from core.serving import load_served

    if not (TASK.weights_path() / "card.json").exists():
        pytest.skip("no trained translation weights")
    return load_served(TASK).answering()  # what the app translates with


def test_served_translator_reads_the_lesson_example_typed_in_lower_case():
    served = _served()
    for typed in ("how are you doing", "how are you doing?", "How are you doing"):
        out = TASK.predict(served, {"text": typed})
        assert "comment" in out["translation"].lower(), (typed, out["translation"])
        assert out["translation"].endswith("?"), (typed, out["translation"])
        assert out["guess"] is None


@pytest.mark.parametrize("text, names", [
    ("Angela Merkel met Barack Obama in Berlin.", ["Angela", "Merkel", "Barack", "Obama"]),
    ("My friend Zorblax lives in Quenbyville.", ["Zorblax", "Quenbyville"]),
    ("i met Olumide yesterday", ["Olumide"]),
    ("my friend lives in zanzibar", ["zanzibar"]),
    ("we visited Ouagadougou last summer", ["Ouagadougou"]),
])
def test_served_translator_writes_unseen_names_as_typed(text, names):
    out = TASK.predict(_served(), {"text": text})
    words = re.findall(r"\w+", out["translation"])
    assert all(n in words for n in names), out["translation"]
    assert all(words.count(n) == 1 for n in names), out["translation"]


def test_names_kept_counts_a_name_written_with_its_letters():
    from tasks.translation import Pairs, names_kept
    from tasks.translation.model import UNK_ID

    toks = [["▁I", "▁met", "▁Olumide", "▁."], ["▁I", "▁like", "▁Patrick'", "s", "▁dog", "▁."]]
    ids = [[5, 6, UNK_ID, 7], [5, 6, UNK_ID, 8, 9, 7]]
    data = Pairs(["I met Olumide.", "I like Patrick's dog."], ["", ""], ids, [[], []], toks)
    assert names_kept(data, [0, 1], ["J'ai rencontré Olumide.", "J'aime le chien de Patrick."], {}) == {
        "names_kept": 1.0, "names": 2.0}
    assert names_kept(data, [0, 1], ["J'ai rencontré.", "J'aime le chien de Patrick."], {})["names_kept"] == 0.5
