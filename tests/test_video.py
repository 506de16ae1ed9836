"""The video task: the clip generator, the MNIST loader's split, unreadable frames, labels, GIF uploads, predict."""

from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pytest
import torch

from core.task import BadInput
from tasks.video import TASK
from tasks.video.data import (
    EMPTY,
    FRAMES,
    MAX_GIF_FRAMES,
    PATCH,
    SIZE,
    Bank,
    ClipSet,
    ClipSettings,
    make_clip,
    rendered_bank,
    timeline,
)


def _bank(n_per_digit=6, seed=0, value=None):
    """Tiny fake digits: random blobs, one class per digit (the generator never looks at their content)."""
    rng = np.random.default_rng(seed)
    imgs = rng.random((10 * n_per_digit, PATCH, PATCH)).astype(np.float32) if value is None else \
        np.full((10 * n_per_digit, PATCH, PATCH), value, dtype=np.float32)
    return Bank(imgs, np.repeat(np.arange(10), n_per_digit), "fake")


def _write_fake_mnist(folder, n_per_digit=10):
    sub = folder / "mnist_digits"
    sub.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for d in range(10):
        data = np.round(rng.random(n_per_digit * 784), 3).tolist()
        with gzip.open(sub / f"{d}.json.gz", "wt", encoding="utf-8") as f:
            json.dump({"data": data}, f)
    return folder


def test_generator_is_deterministic():
    bank = _bank()
    s = ClipSettings(occlusion=0.3, noise=0.2, digits=2)
    a = make_clip(np.random.default_rng(5), bank, s)
    b = make_clip(np.random.default_rng(5), bank, s)
    c = make_clip(np.random.default_rng(6), bank, s)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.kind, b.kind)
    assert not np.array_equal(a.frames, c.frames)
    assert a.frames.shape == (FRAMES, SIZE, SIZE) and a.frames.dtype == np.float32
    assert 0.0 <= a.frames.min() and a.frames.max() <= 1.0
    fixed = ClipSet(bank, 4, seed=3, fixed=True)
    assert np.array_equal(fixed.clip(2, epoch=1).frames, fixed.clip(2, epoch=9).frames)  # val/test never move
    fresh = ClipSet(bank, 4, seed=3, fixed=False)
    assert not np.array_equal(fresh.clip(2, epoch=1).frames, fresh.clip(2, epoch=2).frames)  # train re-draws


def test_noise_frames_are_the_fixed_pool_computed_one_at_a_time():
    """Each noise frame is the same row of the one seeded pool that made the training clips, computed alone."""
    from tasks.video.data import NOISE_ROWS, NOISE_SEED, SIZE, noise_row

    pool = np.random.default_rng(NOISE_SEED).random((NOISE_ROWS, SIZE, SIZE), dtype=np.float32)
    for k in (0, 1, 7, 128, NOISE_ROWS - 1):
        assert np.array_equal(noise_row(k), pool[k])
    assert not noise_row(3).flags.writeable


def test_loader_splits_by_image_disjointly(tmp_path):
    splits = TASK.load_data(_write_fake_mnist(tmp_path))
    banks = [splits.train.bank, splits.val.bank, splits.test.bank]
    keys = [{img.tobytes() for img in b.images} for b in banks]
    assert len(keys[0] & keys[2]) == 0 and len(keys[0] & keys[1]) == 0 and len(keys[1] & keys[2]) == 0
    assert sum(len(b.digits) for b in banks) == 100 and all(set(b.digits) == set(range(10)) for b in banks)
    again = TASK.load_data(tmp_path)  # the split is seeded
    assert np.array_equal(again.test.bank.images, splits.test.bank.images)
    assert len(splits.files) == 10 and splits.meta["labels"][EMPTY] == "empty"


def test_unreadable_frames_carry_no_digit():
    """Same seed over two digit banks: readable digit frames differ, unreadable frames are pixel-identical."""
    a_bank, b_bank = _bank(value=1.0), _bank(value=0.0)
    s = ClipSettings(occlusion=0.35, noise=0.25, digits=2, grain=0.05)
    n_unread = 0
    for seed in range(30):
        a = make_clip(np.random.default_rng(seed), a_bank, s)
        b = make_clip(np.random.default_rng(seed), b_bank, s)
        assert np.array_equal(a.labels, b.labels) and np.array_equal(a.kind, b.kind)
        for t in range(FRAMES):
            same = np.array_equal(a.frames[t], b.frames[t])
            if a.kind[t] > 0 or a.labels[t] == EMPTY:
                assert same, f"seed {seed} frame {t}: an unreadable or empty frame shows the digit"
            else:
                assert not same, f"seed {seed} frame {t}: a readable frame does not show its digit"
        n_unread += int((a.kind > 0).sum())
    assert n_unread > 50


def test_labels_and_context_rules():
    bank = _bank()
    rng = np.random.default_rng(0)
    for i in range(200):
        s = ClipSettings(occlusion=float(rng.uniform(0, 0.6)), noise=float(rng.uniform(0, 0.6)),
                         digits=int(rng.integers(1, 4)))
        clip = make_clip(np.random.default_rng(i), bank, s)
        lab, unread = clip.labels, clip.unreadable
        assert ((lab >= 0) & (lab <= EMPTY)).all()
        # The k-th digit's frames carry that digit image's class.
        digit_runs = [lab[t] for t in range(FRAMES) if lab[t] != EMPTY and (t == 0 or lab[t - 1] != lab[t])]
        assert len(digit_runs) <= len(clip.images)
        for t in range(1, FRAMES):
            if lab[t] != lab[t - 1]:  # both sides of every change are readable: context decides hidden frames
                assert not unread[t] and not unread[t - 1]
        assert not unread.all()


def test_timeline_covers_the_clip():
    rng = np.random.default_rng(1)
    for _ in range(100):
        n = int(rng.integers(1, 4))
        runs = timeline(rng, FRAMES, n)
        assert runs[0][1] == 0 and runs[-1][2] == FRAMES
        assert all(a[2] == b[1] for a, b in zip(runs, runs[1:]))
        assert sorted({r[0] for r in runs if r[0] >= 0}) == list(range(n))


def test_rendered_digits_look_like_mnist():
    bank = rendered_bank(per_digit=2, seed=0)
    assert bank.images.shape == (20, PATCH, PATCH) and bank.source == "rendered"
    assert (bank.images[:, :2].max() < 0.05) and 0.05 < bank.images.mean() < 0.4  # centred white ink on black


def _gif(frames, size=(64, 64)):
    from PIL import Image

    imgs = [Image.fromarray(np.full(size[::-1], v, dtype=np.uint8)) for v in frames]
    buf = io.BytesIO()
    imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:], duration=100, loop=0)
    return buf.getvalue()


@pytest.fixture(scope="module")
def model():
    splits = TASK.synthetic_data(0)
    torch.manual_seed(0)
    return TASK.build_model(TASK.config, splits.meta).eval()


def test_gif_upload_bad_inputs(model):
    good = _gif([0, 40, 80])
    bad = {
        "empty": b"",
        "not a gif": b"\x89PNG\r\n\x1a\n" + b"0" * 100,
        "text": b"GIF89a" + b"hello",
        "truncated": good[:40],
        "too many frames": _gif([i % 250 for i in range(MAX_GIF_FRAMES + 5)], size=(8, 8)),
        "too large": _gif([0, 1], size=(600, 20)),
        "too many bytes": b"GIF89a" + b"\0" * 2_100_000,
        "pixel bomb": good[:6] + (65535).to_bytes(2, "little") * 2 + good[10:],
    }
    for name, data in bad.items():
        with pytest.raises(BadInput) as e:
            TASK.predict(model, {"gif": data})
        assert str(e.value), name
        if name in ("too large", "pixel bomb"):
            assert "large" in str(e.value)
    out = TASK.predict(model, {"gif": good})
    assert out["frames"].shape == (3, SIZE, SIZE) and len(out["labels"]) == 3
    with pytest.raises(BadInput):
        TASK.predict(model, "not a dict")
    with pytest.raises(BadInput):
        TASK.predict(model, {"seed": 1, "digits": 9})
    with pytest.raises(BadInput):
        TASK.predict(model, {"seed": "x"})


def test_predict_output_shape(model):
    out = TASK.predict(model, {"seed": 3, "speed": 2.0, "occlusion": 0.3, "noise": 0.2, "digits": 2})
    T = FRAMES
    assert out["frames"].shape == (T, SIZE, SIZE)
    assert len(out["labels"]) == len(out["confidence"]) == len(out["truth"]) == len(out["unreadable"]) == T
    assert out["probs"].shape == (T, 11) and np.allclose(out["probs"].sum(1), 1, atol=1e-5)
    assert all(0 <= c <= 1 for c in out["confidence"]) and all(lab in out["classes"] for lab in out["labels"])
    loss, steps = TASK.inspect_loss(model, {"seed": 3, "frame": 4})
    assert loss.dim() == 0 and steps[0] == "frame 0" and len(steps) == T
    sal = TASK.frame_saliency(model, {"seed": 3, "frame": 4})
    assert len(sal["grad_norm"]) == T and sal["frame"] == 4


def test_frame_only_model_sees_only_its_frame():
    splits = TASK.synthetic_data(0)
    m = TASK.build_model({**TASK.config, "arch": "frame"}, splits.meta).eval()
    sal = TASK.frame_saliency(m, {"seed": 1, "frame": 5})
    g = np.array(sal["grad_norm"])
    assert g[5] > 0 and np.allclose(np.delete(g, 5), 0)
    with pytest.raises(BadInput):
        TASK.inspect_loss(m, {"seed": 1})


def test_evaluate_metrics_on_synthetic(model):
    splits = TASK.synthetic_data(0)
    m = TASK.evaluate(model, splits.test)
    assert 0 <= m["accuracy"] <= 1 and "unreadable_accuracy" in m and "loss" in m
    assert m == TASK.evaluate(model, splits.test)  # deterministic


VIDEO_PAGE = """
import sys
sys.path[:0] = {paths!r}
from core.registry import discover
from tasks.video.page import render
render(discover().get("video"))
"""


def _moving_bar_gif(n_frames: int) -> bytes:
    from PIL import Image

    frames = []
    for k in range(n_frames):
        a = np.zeros((64, 64), np.uint8)
        a[20:44, 10 + 4 * k:20 + 4 * k] = 255  # a white bar that moves
        frames.append(Image.fromarray(a))
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=n_frames > 1, append_images=frames[1:], duration=100)
    return buf.getvalue()


@pytest.mark.parametrize("n_frames", [1, 2, 5])
def test_page_labels_an_uploaded_gif_of_any_length(n_frames):
    """A still (one-frame) GIF used to break the Try it tab: the frame slider got min = max
    (StreamlitInvalidMinMaxError). Every length works; one frame gets a note instead of a slider."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    if not (TASK.weights_path() / "card.json").exists():
        pytest.skip("no trained video weights")
    repo = str(Path(__file__).resolve().parent.parent)
    at = AppTest.from_string(VIDEO_PAGE.format(paths=[repo]), default_timeout=120)
    at.session_state["video_frame"] = 9  # left over from a longer clip
    at.run()
    at.radio(key="video_source").set_value("upload a GIF").run()
    at.file_uploader(key="video_gif").set_value(("clip.gif", _moving_bar_gif(n_frames), "image/gif"))
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    sliders = [s for s in at.slider if s.key == "video_frame"]
    notes = " ".join(str(c.value) for c in at.caption)
    if n_frames == 1:
        assert not sliders and "one frame" in notes
    else:
        assert sliders and sliders[0].max == n_frames - 1 and sliders[0].value == n_frames - 1
    assert any("frame-only CNN" in str(m.value) for m in at.markdown)  # every model labelled the clip


def test_a_link_carries_the_frame_and_a_bad_one_lands_inside_the_clip():
    """The frame slider is in the link (video_frame); a link naming a frame outside the clip, or no number at all,
    opens a frame of the clip without an error."""
    from test_contract import page_app

    for linked, want in (("2", 2), ("abc", None), ("-5", None), ("999", None), ("1e999", None)):
        at = page_app("video")
        at.query_params["video_frame"] = linked
        at.run(timeout=120)
        assert not at.exception and not at.error, (linked, [e.message for e in at.exception])
        frame = next(s for s in at.slider if s.label == "frame")
        assert 0 <= frame.value <= frame.max, (linked, frame.value)
        if want is not None:
            assert frame.value == want
