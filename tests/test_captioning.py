"""Image captioning task: Flickr8k loader on a tiny fake folder, bad image inputs, predict format, batched beam
search, BLEU on a hand example."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from core.task import BadInput, check_task
from tasks.captioning import END_WORD, START_WORD, TASK, bleu_scores
from tasks.captioning.data import read_captions, tokenize
from tasks.captioning.model import EOS_ID, PAD_ID


def _img_bytes(img: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def test_contract():
    assert check_task(TASK) == []


def test_tokenize_and_odd_id(tmp_path):
    assert tokenize("A tri-colored dog, running!") == ["a", "tri", "colored", "dog", "running"]
    p = tmp_path / "t.txt"
    p.write_text("x.jpg#0\tA dog .\nx.jpg#1\tA cat .\ny.jpg.1#0\tPeople wait .\n", encoding="utf-8")
    caps = read_captions(p)
    assert caps == {"x.jpg": ["A dog .", "A cat ."], "y.jpg": ["People wait ."]}


def test_loader_reads_fake_flickr8k(tmp_path):
    text, imgs = tmp_path / "Flickr8k_text", tmp_path / "images_128"
    text.mkdir(), imgs.mkdir()
    names = {"train": [f"tr{i}.jpg" for i in range(6)], "val": ["va0.jpg"], "test": ["te0.jpg", "te1.jpg"]}
    lines = []
    for ns in names.values():
        for j, n in enumerate(ns):
            Image.new("RGB", (128, 128), (200, 30, 30) if j % 2 else (30, 30, 200)).save(imgs / n, quality=90)
            for k in range(5):
                key = n + (".1" if n == "tr0.jpg" else "")
                lines.append(f"{key}#{k}\tA dog runs on the grass" + (f" near {n[:-4]} ." if k == 0 else " ."))
    (text / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    files = {"train": "Flickr_8k.trainImages.txt", "val": "Flickr_8k.devImages.txt",
             "test": "Flickr_8k.testImages.txt"}
    for split, f in files.items():
        (text / f).write_text("\n".join(names[split]) + "\n", encoding="utf-8")
    s = TASK.load_data(tmp_path)
    assert (len(s.train), len(s.val), len(s.test)) == (6, 1, 2)
    assert s.train.images.dtype == torch.uint8 and s.train.images.shape == (6, 3, 128, 128)
    assert s.train.images[0, 2].float().mean() > s.train.images[0, 0].float().mean()  # blue, RGB order
    vocab = s.meta["vocab"]
    assert vocab[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"] and "dog" in vocab and "tr1" not in vocab  # count >= 5
    assert s.test.refs[0][:2] == ["a dog runs on the grass near te0", "a dog runs on the grass"]
    assert s.train.captions.shape[:2] == (6, 5)
    b = next(iter(TASK.batches(s.train, 4, shuffle=True, seed=1)))
    assert b["image"].shape == (4, 3, 128, 128) and b["captions"].shape[:2] == (4, 5)


def test_bleu_hand_example():
    refs = [["a dog runs on the grass"] * 5]
    assert bleu_scores(["a dog runs on the grass"], refs)["bleu4"] == pytest.approx(100.0)
    r = bleu_scores(["a cat sits in the house"], refs)
    assert r["bleu1"] == pytest.approx(100 * 2 / 6) and r["bleu4"] < 10


def test_demos_and_predict_format(model):
    for d in TASK.demos():
        out = TASK.predict(model, d.input)
        assert isinstance(out["caption"], str) and out["pixels"].shape == (128, 128, 3)
        assert len(out["steps"]) == len(out["words"]) + 1
        assert out["steps"][-1]["word"] == END_WORD and [s["word"] for s in out["steps"][:-1]] == out["words"]
        assert not any(w == "<eos>" for s in out["steps"] for w, _ in s["topk"])  # stopping is named END_WORD
        assert out["attention"].shape == (len(out["words"]) + 1, 8, 8)
        assert np.allclose(out["attention"].sum((1, 2)), 1, atol=1e-3)


def test_beam_search_batched_and_width(model, splits):
    x = splits.test.images[:4]
    g = model.beam_search(x, beam=1, max_len=12)
    b5 = model.beam_search(x, beam=5, max_len=12)
    assert g.shape[0] == 4 and b5.shape[0] == 4
    # batched decoding = one image at a time
    for i in range(4):
        one = model.beam_search(x[i:i + 1], beam=5, max_len=12)[0]
        n = min(len(one), b5.shape[1])
        assert torch.equal(one[:n], b5[i, :n])
    # a wider beam never finds a lower total log-prob than greedy (no length penalty)

    def logprob(ids, img):
        ids = [i for i in ids.tolist()]
        if EOS_ID in ids:
            ids = ids[:ids.index(EOS_ID) + 1]
        ids = [i for i in ids if i != PAD_ID]
        seq = torch.tensor([[1] + ids])
        with torch.no_grad():
            lg, _ = model(img[None], seq[:, :-1])
        return float(torch.log_softmax(lg[0].float(), -1).gather(1, seq[0, 1:, None]).sum())

    for i in range(4):
        assert logprob(b5[i], x[i]) >= logprob(g[i], x[i]) - 1e-4


def test_beam_width_from_input(model):
    out = TASK.predict(model, {"image": "scene:0", "beam": 99})
    assert out["beam"] == 10
    from tasks.captioning import BEAM

    assert TASK.predict(model, {"image": "scene:0", "beam": "x"})["beam"] == BEAM  # the default: the card's beam


def test_bad_inputs(model):
    for bad in (b"", b"not an image at all", "<script>", "scene:99", 42):
        with pytest.raises(BadInput):
            TASK.predict(model, bad)
    jpeg = _img_bytes(Image.new("RGB", (64, 64), (10, 200, 10)), "JPEG")
    with pytest.raises(BadInput):
        TASK.predict(model, jpeg[: len(jpeg) // 2])  # truncated
    # a decompression bomb: a tiny PNG claiming a huge size
    bomb = _img_bytes(Image.new("L", (5000, 5000), 0))
    with pytest.raises(BadInput):
        TASK.predict(model, bomb)


def test_odd_but_fine_images(model):
    gray = _img_bytes(Image.new("L", (50, 80), 128))
    assert any("grayscale" in n for n in TASK.predict(model, gray)["notes"])
    rgba = _img_bytes(Image.new("RGBA", (40, 40), (255, 0, 0, 0)))
    assert any("transparent" in n for n in TASK.predict(model, rgba)["notes"])
    frames = [Image.new("RGB", (30, 30), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    assert any("animated" in n for n in TASK.predict(model, buf.getvalue())["notes"])
    wide = _img_bytes(Image.new("RGB", (400, 50), (0, 0, 255)), "JPEG")
    assert TASK.predict(model, wide)["pixels"].shape == (128, 128, 3)


def test_inspect_loss_and_saliency(model):
    loss, labels = TASK.inspect_loss(model, "scene:0")
    assert loss.dim() == 0 and labels[0] == START_WORD
    sal = TASK.saliency(model, "scene:1", word=1)
    assert sal["map"].shape == (128, 128) and np.isfinite(sal["map"]).all() and sal["map"].max() > 0
    assert TASK.saliency(model, "scene:1", word=99)["word"] == len(sal["words"]) - 1  # clamped to the end token


def test_word_dependence_is_each_words_own_gradient(model):
    """The batched pass (T copies of the features, one backward) gives, for every word, the norm of that word's
    own log-probability gradient with respect to the features: checked against one backward pass per word."""
    from tasks.captioning.model import BOS_ID

    dep = TASK.word_dependence(model, "scene:2")
    _, x_u8, words, ids = TASK._shown_words(model, "scene:2")
    assert dep["words"] == words + [END_WORD] and dep["norms"].shape == (len(ids),)
    with torch.no_grad():
        f0 = model.features(model.prep(x_u8))
    for t, tok in enumerate(ids):
        feats = f0.clone().requires_grad_(True)
        f, g, state = model.from_features(feats)
        logits, _, _ = model.decode(torch.tensor([[BOS_ID] + ids[:t]]), state, f, g)
        (gf,) = torch.autograd.grad(torch.log_softmax(logits[0, -1], -1)[tok], feats)
        assert float(gf.norm()) == pytest.approx(float(dep["norms"][t]), rel=1e-4, abs=1e-9), (t, words)


def test_augment_only_in_training(model):
    x = torch.randint(0, 256, (2, 3, 128, 128), dtype=torch.uint8)
    assert torch.equal(model.prep(x), model.prep(x))
    model.train()
    try:
        assert not torch.equal(model.prep(x), model.prep(x))
    finally:
        model.eval()


def test_ensemble_with_a_captioner_trained_elsewhere(tmp_path, capsys):
    """core.ensemble --add: a captioner trained into another folder joins the served one; the card keeps its weights,
    comparison row (with the command that trained it) and history; the app loads the pair and can ask the served
    captioner alone."""
    import json

    from core.cli.ensemble import main as ens_main
    from core.cli.train import main as train_main
    from core.serving import load_served

    main_dir, other_dir = tmp_path / "main", tmp_path / "other"
    assert train_main(["captioning", "--synthetic", "--out", str(main_dir), "--epochs", "1", "--max-steps", "1",
                       "--no-progress"]) == 0
    assert train_main(["captioning", "--synthetic", "--out", str(other_dir), "--epochs", "1", "--max-steps", "1",
                       "--set", "hidden_size=64", "--no-progress"]) == 0
    assert ens_main(["captioning", "--synthetic", "--weights", str(main_dir), "--add", "default=" + str(other_dir)]) == 2
    elsewhere = tmp_path / "elsewhere"  # synthetic data of another seed: another vocabulary, refused
    assert train_main(["captioning", "--synthetic", "--out", str(elsewhere), "--epochs", "1", "--max-steps", "1",
                       "--seed", "1", "--no-progress"]) == 0
    assert ens_main(["captioning", "--synthetic", "--weights", str(main_dir), "--add", "x=" + str(elsewhere)]) == 2
    assert "other vocab" in capsys.readouterr().err
    assert ens_main(["captioning", "--synthetic", "--weights", str(main_dir), "--add", "small=" + str(other_dir),
                     "--grid", "0.5"]) == 0
    card = json.loads((main_dir / "card.json").read_text())
    assert card["ensemble"]["members"] == ["default", "small"] and card["ensemble"]["weights"] == [0.5, 0.5]
    row = card["comparison"]["small"]
    assert row["config"]["hidden_size"] == 64 and "hidden_size=64" in row["trained_by"]["command"]
    assert (main_dir / row["weights_file"]).exists() and card["history"]["small"]
    served = load_served(TASK, main_dir)
    assert served.members.names == ("default", "small") and served.members.weights == (0.5, 0.5)
    ens = served.answering()
    assert ens is served.ensemble and ens.runtime.variant != served.model.runtime.variant  # caches tell the two apart
    assert TASK.evaluate(ens, TASK.synthetic_data(0).test) == card["metrics"]  # what core.evaluate recomputes
    both = TASK.predict(ens, {"image": "scene:0", "beam": 2})
    alone = TASK.predict(served.answering(alone=True), {"image": "scene:0", "beam": 2})
    assert both["steps"] != alone["steps"]  # mixed word probabilities, not the main captioner's own
    assert both["attention"] is not None and len(both["steps"]) == len(both["words"]) + 1
    sal = TASK.saliency(served.model, {"image": "scene:0", "beam": 2}, word=0)
    assert sal["map"].shape == (128, 128)
    dep = TASK.word_dependence(ens, {"image": "scene:0", "beam": 2})
    assert dep["words"] == both["words"] + [END_WORD] and np.isfinite(dep["norms"]).all()
    capsys.readouterr()


def test_page_shows_the_ensemble_and_the_main_captioner_alone():
    from test_contract import ensemble_page

    at = ensemble_page("captioning")
    assert "Written by an **ensemble**: main captioner ×" in " ".join(str(c.value) for c in at.caption)
    next(t for t in at.toggle if t.key == "captioning_single").set_value(True).run()
    assert not at.exception, [e.message for e in at.exception]
    assert "Written by the main captioner alone" in " ".join(str(c.value) for c in at.caption)



def _served():
    from core.serving import load_served

    if not (TASK.weights_path() / "card.json").exists():
        pytest.skip("no trained captioning weights")
    served = load_served(TASK)
    if not served.has_ensemble:
        pytest.skip("the committed captioning weights are not an ensemble")
    return served


def test_inspect_explains_the_caption_try_it_shows():
    """Try it shows the ensemble's beam caption; Inspect analysed another caption (one member's own). Now the
    inspector's loss and the saliency maps teacher-force the caption that predict shows (the page passes it), with
    the ensemble on or off; without it they explain the caption of the module they are given."""
    served = _served()
    for demo in TASK.demos():
        query = {"image": demo.input, "beam": 4}
        assert TASK.inspect_loss(served.model, query)[1] == [START_WORD] + TASK.predict(served.model, query)["words"]
        for alone in (False, True):
            shown = TASK.predict(served.answering(alone), query)["words"]
            passed = {**query, "caption": " ".join(shown)}  # what the page hands to Inspect
            _, labels = TASK.inspect_loss(served.model, passed)  # gradients through the main captioner
            assert labels == [START_WORD] + shown, (demo.label, alone)
            assert TASK.saliency(served.model, passed)["words"] == shown + [END_WORD]
            assert TASK.word_dependence(served.model, passed)["words"] == shown + [END_WORD]


def test_page_inspect_tab_names_and_uses_the_shown_caption():
    from test_contract import ensemble_page

    at = ensemble_page("captioning")
    heading = next(str(m.value) for m in at.markdown if str(m.value).startswith("### “"))
    shown = heading[len("### “"):-1]
    at.session_state["tab"] = "Inspect"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    note = next(str(c.value) for c in at.caption if str(c.value).startswith("Explained here"))
    assert f"“{shown}”" in note
    words = at.selectbox(key="captioning_sal_word").options
    assert [w.split(". ", 1)[1] for w in words] == shown.split() + [END_WORD]
    at.selectbox(key="captioning_sal_word").set_value(2).run()  # another word: its own pixel map
    assert not at.exception, [e.message for e in at.exception]
    captions = [im.caption for e in at.get("image") for im in e.proto.imgs]
    assert f"saliency for '{shown.split()[2]}'" in captions, captions


def test_switching_the_image_source_keeps_beam_width_and_ensemble_toggle():
    from test_contract import ensemble_page

    at = ensemble_page("captioning")
    at.slider(key="captioning_beam").set_value(2).run()
    at.toggle(key="captioning_single").set_value(True).run()
    for source in ("upload", "camera", "samples"):
        at.radio(key="captioning_source").set_value(source).run()
        assert not at.exception, [e.message for e in at.exception]
        assert at.slider(key="captioning_beam").value == 2, source
        assert at.toggle(key="captioning_single").value is True, source
    assert "width 2" in " ".join(str(c.value) for c in at.caption)


def test_sample_photos_are_real_photographs_and_the_odd_picture_is_flagged():
    """The demos are the photographs scikit-image ships (read from its package folder); black, noise and stripes
    are called far from the training photos, the sample photos mostly not."""
    from core.images import unlike
    from tasks.captioning import TRAIN_RANGES

    for demo in TASK.demos():
        img = TASK.image_from_input(demo.input)
        assert img["source"] == "photo" and img["original"].shape[0] >= 256 and img["pixels"].shape == (128, 128, 3)
    rng = np.random.default_rng(0)
    stripes = np.zeros((128, 128, 3), np.uint8)
    stripes[:, ::8] = 255
    for odd in (np.zeros((128, 128, 3), np.uint8), rng.integers(0, 256, (128, 128, 3)).astype(np.uint8), stripes):
        assert unlike(odd, TRAIN_RANGES)
    flagged = [d.label for d in TASK.demos() if unlike(TASK.image_from_input(d.input)["pixels"], TRAIN_RANGES)]
    assert len(flagged) <= len(TASK.demos()) // 2, flagged


def test_training_ranges_match_the_flickr_training_photos():
    """TRAIN_RANGES are the 0.1%/99.9% quantiles of image_stats over the 6,000 training photos at 128x128; about 1%
    of the test photos fall outside some range."""
    import os
    from pathlib import Path

    from core.images import image_stats, stat_ranges
    from tasks.captioning import TRAIN_RANGES

    root = Path(os.environ.get("RNNLAB_DATA_ROOT", Path(__file__).resolve().parents[2] / "shared" / "data"))
    folder = root / "captioning"
    lists = folder / "Flickr8k_text"
    if not (lists / "Flickr_8k.trainImages.txt").is_file():
        pytest.skip("no Flickr8k data")

    def pictures(split: str) -> np.ndarray:
        names = (lists / f"Flickr_8k.{split}Images.txt").read_text().split()
        out = []
        for n in names:
            with Image.open(folder / "images_128" / n) as im:
                im = im.convert("RGB")
                out.append(np.asarray(im if im.size == (128, 128) else im.resize((128, 128), Image.BICUBIC)))
        return np.stack(out)

    ranges = stat_ranges(pictures("train"))
    for key, (lo, hi) in TRAIN_RANGES.items():
        assert ranges[key] == pytest.approx((lo, hi), abs=0.002), key
    test = image_stats(pictures("test"))
    outside = np.zeros(len(test["detail"]), bool)
    for key, (lo, hi) in TRAIN_RANGES.items():
        outside |= (test[key] < lo) | (test[key] > hi)
    assert outside.mean() < 0.02


def test_inspection_reuses_the_shown_caption_without_a_new_beam_search(model, monkeypatch):
    """The caption Try it printed travels with the input: the inspector's loss, the word dependence and the saliency
    teacher-force it and never search for it again (a beam search over the image costs ~0.1 s)."""
    from core.inspect import inspect_model

    query = {"image": TASK.demos()[0].input, "beam": 3}
    shown = TASK.predict(model, query)["words"]
    passed = {**query, "caption": " ".join(shown)}

    def no_search(*args, **kwargs):
        raise AssertionError("the inspection searched for the caption again")

    monkeypatch.setattr(model, "beam_search", no_search)
    ins = inspect_model(model, lambda m: TASK.inspect_loss(m, passed))
    assert len(ins.labels) == len(shown) + 1  # <start>, then the words read
    assert TASK.word_dependence(model, passed)["words"] == shown + [END_WORD]
    assert TASK.saliency(model, passed, 0)["words"] == shown + [END_WORD]
    with pytest.raises(AssertionError, match="searched for the caption again"):
        TASK.inspect_loss(model, query)  # no caption given: it has to search


def test_opening_inspect_after_an_answer_runs_no_beam_search(monkeypatch):
    """On the page: the answer's beam search runs once (Try it, cached per input); opening Inspect runs none."""
    from test_contract import ensemble_page

    at = ensemble_page("captioning")
    calls = []
    real = type(TASK)._caption_ids
    monkeypatch.setattr(type(TASK), "_caption_ids", lambda self, m, x, beam: calls.append(beam) or real(self, m, x, beam))
    at.session_state["tab"] = "Inspect"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert any(str(c.value).startswith("Explained here") for c in at.caption)
    assert calls == []


def test_try_it_draws_its_pictures_only_while_it_is_the_open_tab():
    """With Inspect open, Try it still runs (its widgets keep their values, the caption reaches Inspect) but leaves
    out what only the eye needs: the attention grid, the word-by-word table, the picture."""
    from test_contract import ensemble_page

    at = ensemble_page("captioning")
    assert not at.exception, [e.message for e in at.exception]

    def grid_drawn(a) -> bool:
        return any(h.value == "Where it looked for each word" for h in a.subheader)

    assert grid_drawn(at)
    at.session_state["tab"] = "Inspect"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not grid_drawn(at)
    assert any(str(c.value).startswith("Explained here") for c in at.caption)  # Inspect explains the shown caption
    at.session_state["tab"] = "Try it"
    at.run()
    assert grid_drawn(at)
