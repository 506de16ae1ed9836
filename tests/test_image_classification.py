"""Image classification task: tar loader, bad image inputs, predict format, row-reader prefix predictions."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from core.task import BadInput, check_task
from tasks.image_classification import TASK
from tasks.image_classification.data import augment, read_tar


def _jpeg(color, size=32) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buf, format="JPEG")
    return buf.getvalue()


def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def models():
    splits = TASK.synthetic_data(0)
    torch.manual_seed(0)
    return {arch: TASK.build_model({**TASK.config, "arch": arch}, splits.meta).eval()
            for arch in ("onestep", "rowreader")}


def test_contract():
    assert check_task(TASK) == []


def test_tar_loader(tmp_path):
    # Same layout as the real tar: cifar10_cat_dog_jpeg/{train,test}/{cat,dog}/NNNN.jpg
    path = tmp_path / "cifar10_cat_dog_jpeg.tar"
    with tarfile.open(path, "w") as tar:
        for split, n in (("train", 10), ("test", 2)):
            for lab, color in (("cat", (200, 100, 50)), ("dog", (50, 100, 200))):
                for i in range(n):
                    raw = _jpeg(color)
                    info = tarfile.TarInfo(f"cifar10_cat_dog_jpeg/{split}/{lab}/{i:04d}.jpg")
                    info.size = len(raw)
                    tar.addfile(info, io.BytesIO(raw))
    splits = TASK.load_data(tmp_path)
    assert len(splits.train) + len(splits.val) == 20 and len(splits.test) == 4
    assert len(splits.val) == 2 and set(splits.val.y.tolist()) == {0, 1}  # stratified 10%
    assert splits.train.x.dtype == torch.uint8 and splits.train.x.shape[1:] == (3, 32, 32)
    cats = splits.test.x[splits.test.y == 0].float()
    assert cats[:, 0].mean() > cats[:, 2].mean()  # colours decoded as RGB, labels from the folder
    assert read_tar(path) is read_tar(path)  # decoded once, cached
    b = next(iter(TASK.batches(splits.train, 8, shuffle=True, seed=1)))
    assert b["image"].shape == (8, 3, 32, 32) and b["image"].dtype == torch.float32 and b["image"].max() <= 1


def test_augment_shape():
    x = torch.randint(0, 255, (5, 3, 32, 32), dtype=torch.uint8)
    y = augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == torch.uint8


def test_augment_cutout_hides_one_square_and_nothing_else():
    x = torch.full((4, 3, 32, 32), 200, dtype=torch.uint8)  # flat images: crop/flip only add the zero border
    grey = (augment(x, torch.Generator().manual_seed(1), pad=0, cutout=8) == 124).all(1)  # (B, H, W)
    for b in range(4):
        ys, xs = grey[b].nonzero(as_tuple=True)
        assert 0 < len(ys) <= 64 and ys.max() - ys.min() < 8 and xs.max() - xs.min() < 8
    none = augment(x, torch.Generator().manual_seed(1), pad=0, cutout=0)
    assert (none == 200).all()


def test_predict_format(models):
    for m in models.values():
        for demo in TASK.demos():
            out = TASK.predict(m, demo.input)
            assert out["label"] in ("cat", "dog")
            assert abs(sum(out["probs"].values()) - 1) < 1e-5
            assert out["pixels"].shape == (32, 32, 3)
    out = TASK.predict(models["onestep"], _jpeg((10, 200, 10), size=100))
    assert set(out["probs"]) == {"cat", "dog"} and 0.5 <= out["confidence"] <= 1


def test_odd_images_are_handled(models):
    m = models["onestep"]
    gray = TASK.predict(m, _png(Image.new("L", (40, 30), 128)))
    assert any("grayscale" in n for n in gray["notes"])
    alpha = TASK.predict(m, _png(Image.new("RGBA", (20, 20), (255, 0, 0, 0))))
    assert alpha["pixels"].min() == 255  # fully transparent -> white
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    gif = TASK.predict(m, buf.getvalue())
    assert any("first frame" in n for n in gif["notes"]) and gif["pixels"][..., 0].mean() > 200


@pytest.mark.parametrize("bad", [b"", b"not an image at all", _jpeg((1, 2, 3), 64)[:200], 12345, "drawing:cow:1",
                                 b"\0" * (11 * 1024 * 1024)])
def test_bad_inputs(models, bad):
    with pytest.raises(BadInput):
        TASK.predict(models["onestep"], bad)


def test_huge_image_refused_before_decoding(models):
    raw = _png(Image.new("1", (8000, 8000)), optimize=True)  # small file, 64 megapixels
    assert len(raw) < 10 * 1024 * 1024
    with pytest.raises(BadInput, match="megapixels"):
        TASK.predict(models["onestep"], raw)


def test_inspect_and_rowreader(models):
    loss, labels = TASK.inspect_loss(models["onestep"], "drawing:cat:3")
    assert loss.ndim == 0 and len(labels) == 1
    loss, labels = TASK.inspect_loss(models["rowreader"], "drawing:dog:4")
    assert len(labels) == 32
    pre = TASK.prefix_predictions(models["rowreader"], "drawing:dog:4")
    assert pre["probs"].shape == (32, 2) and np.allclose(pre["probs"].sum(1), 1, atol=1e-5)
    sal = TASK.saliency(models["rowreader"], "drawing:dog:4")
    assert sal["map"].shape == (32, 32) and len(sal["row_norm"]) == 32
    with pytest.raises(BadInput):
        TASK.prefix_predictions(models["onestep"], "drawing:dog:4")


def test_one_training_step(models):
    splits = TASK.synthetic_data(1)
    for arch in ("onestep", "rowreader"):
        m = TASK.build_model({**TASK.config, "arch": arch}, splits.meta).train()
        batch = next(iter(TASK.batches(splits.train, 8, shuffle=True)))
        loss = TASK.loss(m, batch)
        loss.backward()
        assert torch.isfinite(loss)
        assert "accuracy" in TASK.evaluate(m.eval(), splits.test)


def test_ensemble_with_a_cnn_trained_elsewhere(tmp_path, capsys):
    """core.ensemble --add for the classifier: the mean of the members' probabilities serves; each named model on
    the page still answers alone (Served.model, and each variant)."""
    import json

    from core.calibrate import temperature_of
    from core.cli.ensemble import main as ens_main
    from core.cli.train import main as train_main
    from core.serving import load_served
    from tasks.image_classification.model import ClassifierEnsemble

    main_dir, other_dir = tmp_path / "main", tmp_path / "other"
    assert train_main(["image_classification", "--synthetic", "--out", str(main_dir), "--epochs", "1",
                       "--max-steps", "1", "--no-progress"]) == 0
    assert train_main(["image_classification", "--synthetic", "--out", str(other_dir), "--epochs", "1",
                       "--max-steps", "1", "--variants", "onestep", "--set", "widths=[8,16,32]", "--no-progress"]) == 0
    assert ens_main(["image_classification", "--synthetic", "--weights", str(main_dir), "--add",
                     "cnn2=" + str(other_dir), "--members", "onestep,cnn2", "--grid", "0.7"]) == 0
    card = json.loads((main_dir / "card.json").read_text())
    assert card["ensemble"]["members"] == ["onestep", "cnn2"]
    assert card["ensemble"]["weights"] == pytest.approx([0.7, 0.3])
    served = load_served(TASK, main_dir)
    model, ens = served.model, served.ensemble
    assert isinstance(ens, ClassifierEnsemble) and served.answering() is ens
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        want = 0.7 * torch.softmax(model(x), -1) + 0.3 * torch.softmax(ens.members[1](x), -1)
        assert torch.allclose(ens(x).exp(), want, atol=1e-5)
    assert TASK.evaluate(ens, TASK.synthetic_data(0).test) == card["metrics"]  # what core.evaluate recomputes
    assert served.members.names == ("onestep", "cnn2")
    both = TASK.predict(ens, {"image": "drawing:cat:3"})
    alone = TASK.predict(model, {"image": "drawing:cat:3"})
    x = TASK._tensor("drawing:cat:3")  # (1, 3, 32, 32): each answer is its own module's
    with torch.no_grad():
        assert list(both["probs"].values()) == pytest.approx(ens(x)[0].exp().tolist(), abs=1e-5)
        t = temperature_of(model)  # the single model's calibration (core.calibrate), fitted when it was trained
        assert list(alone["probs"].values()) == pytest.approx(torch.softmax(model(x)[0] / t, -1).tolist(), abs=1e-5)
    assert abs(sum(both["probs"].values()) - 1) < 1e-5
    capsys.readouterr()


def test_page_names_each_model_and_the_ensemble():
    from test_contract import ensemble_page

    at = ensemble_page("image_classification")
    demo = next((b for b in at.button if "drawn cat" in str(b.label)), None)
    if demo is not None:
        demo.click().run()
    text = " ".join(str(m.value) for m in at.markdown)
    assert "**CNN with one RNN step**" in text and "Served ensemble: CNN with one RNN step ×" in text
    table = at.dataframe[0].value
    assert "Served ensemble: CNN with one RNN step + smaller CNN with one RNN step" in list(table["model"])
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()  # a count or a dash, never "None"
    assert not any(v in text for v in ("onestep", "cnn2", "rowreader"))  # readable names, not variant ids


IMG_PAGE = """
import sys
sys.path[:0] = {paths!r}
from core.registry import discover
from tasks.image_classification.page import render
render(discover().get("image_classification"))
"""


def _stripes(size=128) -> np.ndarray:
    xx = np.mgrid[0:size, 0:size][1]
    band = ((xx // 8) % 2)[..., None]  # (size, size, 1): vertical stripes, 8 px wide
    return (band * np.array([255, 0, 200]) + (1 - band) * np.array([0, 255, 0])).astype(np.uint8)


def _page_with_upload(pixels: np.ndarray):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    if not (TASK.weights_path() / "card.json").exists():
        pytest.skip("no trained image-classification weights")
    repo = str(Path(__file__).resolve().parent.parent)
    at = AppTest.from_string(IMG_PAGE.format(paths=[repo]), default_timeout=120).run()
    at.radio(key="image_classification_source").set_value("upload").run()
    at.file_uploader(key="image_classification_upload").set_value(
        ("picture.png", _png(Image.fromarray(pixels)), "image/png"))
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_each_bar_shows_the_probability_of_the_answer_it_is_under():
    """The bar under "GRU reading rows: cat (70%)" was filled to P(dog) = 30% ("cat (100%)": an empty bar)."""
    import re

    at = _page_with_upload(_stripes())
    answers = [re.search(r"\*\*: (cat|dog) \((\d+)%\)$", str(m.value)) for m in at.markdown]
    answers = [int(a.group(2)) for a in answers if a]
    bars = [el.proto.value for el in at.get("progress")]  # 0..100
    assert len(answers) >= 2 and len(bars) == len(answers)
    for shown, bar in zip(answers, bars):
        assert abs(bar - shown) <= 1, (shown, bar)


def test_page_says_when_a_picture_is_far_from_the_training_photos():
    """An abstract striped picture got "cat 100%" with no word of doubt; now the page says it is unlike every
    training photo. A line says what the models know on every picture."""
    at = _page_with_upload(_stripes())
    warn = " ".join(str(w.value) for w in at.warning)
    assert "far from anything the models saw" in warn and "stripes" in warn
    assert any("32x32 photos of cats and dogs" in str(c.value) for c in at.caption)
    demo = next(b for b in TASK.demos())
    at.radio(key="image_classification_source").set_value("drawings").run()
    assert not at.exception and demo.label
    assert any("32x32 photos of cats and dogs" in str(c.value) for c in at.caption)


def test_unlike_training_flags_patterns_but_not_photos_or_drawings():
    from tasks.image_classification import unlike_training

    rng = np.random.default_rng(0)
    assert unlike_training(TASK.image_from_input(_stripes())["pixels"])
    assert unlike_training(rng.integers(0, 256, (32, 32, 3)).astype(np.uint8))  # noise
    assert unlike_training(np.full((32, 32, 3), 128, np.uint8))  # one grey
    # The app's own cartoons are off the photos' ground, but most are not this far (a smooth one may be).
    flagged = [d.label for d in TASK.demos() if unlike_training(TASK.image_from_input(d.input)["pixels"])]
    assert len(flagged) <= len(TASK.demos()) // 2, flagged


def test_training_ranges_match_the_training_photos():
    """TRAIN_RANGES are the 0.1%/99.9% quantiles of image_stats over the training photos; on the test photos about
    1% fall outside some range (6 statistics, 0.2% each)."""
    import os
    from pathlib import Path

    from core.images import image_stats
    from tasks.image_classification import TRAIN_RANGES

    root = Path(os.environ.get("RNNLAB_DATA_ROOT", Path(__file__).resolve().parents[2] / "shared" / "data"))
    try:
        splits = TASK.load_data(root / TASK.data_subdir)
    except (FileNotFoundError, OSError):
        pytest.skip("no CIFAR-10 cat/dog data")
    train = image_stats(torch.cat([splits.train.x, splits.val.x]).permute(0, 2, 3, 1).numpy())
    for key, (lo, hi) in TRAIN_RANGES.items():
        qlo, qhi = np.quantile(train[key], [0.001, 0.999])
        assert abs(qlo - lo) < 0.002 and abs(qhi - hi) < 0.002, (key, qlo, qhi)
    test = image_stats(splits.test.x.permute(0, 2, 3, 1).numpy())
    outside = np.zeros(len(splits.test), bool)
    for key, (lo, hi) in TRAIN_RANGES.items():
        outside |= (test[key] < lo) | (test[key] > hi)
    assert outside.mean() < 0.02


def test_model_card_names_the_cells_and_variants_one_way():
    """The card called the served cell "GRU" in the variants table (its config's "cell", which is the row reader's)
    and "plain RNN (tanh)" in the diagram, printed "None" where a number was missing and showed variant ids."""

    from test_contract import page_app

    if not (TASK.weights_path() / "card.json").exists():
        pytest.skip("no trained image-classification weights")
    at = page_app("image_classification")
    at.session_state["tab"] = "Model card"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    table = next(d.value for d in at.dataframe if "cell" in d.value.columns)
    cells = dict(zip(table["variant"].map(lambda v: v.split("  ")[0]), table["cell"]))
    assert cells["CNN with one RNN step"] == "plain RNN (tanh)" and cells["GRU reading rows"] == "GRU"
    dot = next(str(g.proto.spec) for g in at.get("graphviz_chart"))
    assert "plain RNN (tanh)" in dot
    shown = [str(x) for d in at.dataframe for x in d.value.astype(str).to_numpy().ravel()]
    shown += [str(m.value) for m in [*at.markdown, *at.caption]] + [str(m.value) for m in at.metric]
    assert "None" not in shown
    dev = next(e for e in at.expander if e.label.startswith("For developers"))  # ids belong there, and only there
    dev_shown = {str(x) for d in dev.dataframe for x in d.value.astype(str).to_numpy().ravel()}
    dev_shown |= {str(m.value) for m in [*dev.markdown, *dev.caption]}
    words = " ".join(v for v in shown if not v.startswith("{") and v not in dev_shown)
    assert not any(v in words for v in ("onestep", "cnn2", "rowreader")), words[:300]


def test_inspect_saliency_is_computed_once_per_input(monkeypatch):
    """The Inspect tab's saliency maps (the served model's and the row reader's) ran a backward pass on every rerun
    of the page; now once per (weights, input), and again for a new picture."""
    from tasks.image_classification import page

    at = _page_with_upload(_stripes())
    page.saliency_view.clear()
    page.row_reader_view.clear()
    calls = []
    real = type(TASK).saliency
    monkeypatch.setattr(type(TASK), "saliency", lambda self, m, x: calls.append(m) or real(self, m, x))
    at.session_state["tab"] = "Inspect"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    first = len(calls)
    assert first == 2  # the served model's map and the row reader's rows
    captions = [im.caption for e in at.get("image") for im in e.proto.imgs]
    assert any(c.startswith("saliency for '") for c in captions), captions
    at.run()  # a rerun of the page (another widget, another tab): served from the cache
    assert not at.exception and len(calls) == first
    at.file_uploader(key="image_classification_upload").set_value(
        ("other.png", _png(Image.fromarray(255 - _stripes())), "image/png"))
    at.run()
    assert not at.exception and len(calls) == 2 * first
