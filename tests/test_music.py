"""The music task: the JSB JSON loader, the NLL definition, seeded generation, MIDI in and out, bad uploads."""

from __future__ import annotations

import io
import json
import math

import pretty_midi
import pytest
import torch
import torch.nn as nn

from core.inspect import inspect_model
from core.task import BadInput
from tasks.music import TASK
from tasks.music import data as D
from tasks.music import model as M

TINY = {  # the real file's format: split -> chorales -> steps -> MIDI pitches (a step may be empty)
    "train": [[[60, 64, 67, 72], [62, 65, 69], [], [59, 62, 67, 74]], [[57, 60, 64]]],
    "valid": [[[48, 55, 64, 72], [50, 57, 65, 74]]],
    "test": [[[60, 64, 67], [60, 64, 67], [59, 62, 67, 74]], [[43, 59, 62, 67], [48, 60, 64, 72]]],
}


@pytest.fixture
def tiny_dir(tmp_path):
    (tmp_path / D.FILE).write_text(json.dumps(TINY))
    return tmp_path


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return TASK.build_model(TASK.config, TASK.synthetic_data(0).meta).eval()


# ---- data -------------------------------------------------------------------------------------------------------


def test_loader_reads_the_json_as_it_is(tiny_dir):
    s = TASK.load_data(tiny_dir)
    assert [len(s.train), len(s.val), len(s.test)] == [2, 1, 2]
    r = s.train.rolls[0]
    assert r.shape == (4, 88) and r.sum() == 4 + 3 + 0 + 4
    assert D.roll_to_steps(r) == TINY["train"][0]  # the empty step stays an empty (silent) frame
    assert s.files == [tiny_dir / D.FILE] and s.meta["keys"] == 88
    assert "summed over the 88 keys" in s.dataset and "first frame" in s.dataset


def test_loader_rejects_wrong_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        TASK.load_data(tmp_path)
    (tmp_path / D.FILE).write_text(json.dumps({"train": [], "valid": [], "test": []}))
    with pytest.raises(ValueError, match="non-empty"):
        TASK.load_data(tmp_path)
    (tmp_path / D.FILE).write_text(json.dumps({**TINY, "test": [[[200]]]}))
    with pytest.raises(ValueError, match="outside the 88 keys"):
        TASK.load_data(tmp_path)


def test_batches_shift_by_one_frame_behind_a_silent_start(tiny_dir):
    s = TASK.load_data(tiny_dir)
    b = next(iter(TASK.batches(s.test, 8, shuffle=False)))
    assert b["x"].shape == b["y"].shape == (2, 3, 88)
    assert b["x"][:, 0].sum() == 0  # the start frame
    assert torch.equal(b["x"][0, 1:], b["y"][0, :-1])
    assert b["mask"].tolist() == [[1, 1, 1], [1, 1, 0]] and b["lengths"].tolist() == [3, 2]
    shuffled = list(TASK.batches(s.train, 1, shuffle=True, seed=3))
    assert sorted(int(x["lengths"]) for x in shuffled) == [1, 4]


# ---- the metric -----------------------------------------------------------------------------------------------------


class ConstantLogits(nn.Module):
    """Ignores its input: the same 88 logits at every step (so the NLL can be computed by hand)."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = nn.Parameter(logits)

    def forward(self, x, lengths=None):
        return self.logits.expand(x.shape[0], x.shape[1], -1)


def test_nll_is_summed_over_keys_and_averaged_over_all_frames(tiny_dir):
    s = TASK.load_data(tiny_dir)
    gen = torch.Generator().manual_seed(0)
    b = torch.randn(88, generator=gen).double()

    def frame_nll(pitches):  # -sum_k log p(key k as it is), by hand
        on = {p - 21 for p in pitches}
        return sum(math.log1p(math.exp(-float(b[k]))) if k in on else math.log1p(math.exp(float(b[k])))
                   for k in range(88))

    frames = [frame_nll(st) for ch in TINY["test"] for st in ch]
    firsts = [frame_nll(ch[0]) for ch in TINY["test"]]
    got = TASK.evaluate(ConstantLogits(b.float()), s.test)
    assert got["nll"] == pytest.approx(sum(frames) / len(frames), rel=1e-5)  # 5 frames, not 2 chorale means
    assert got["nll_after_first"] == pytest.approx((sum(frames) - sum(firsts)) / (len(frames) - 2), rel=1e-5)
    assert got["frames"] == 5
    # All logits 0: every key is a fair coin, 88 ln 2 nats per frame whatever the music.
    assert TASK.evaluate(ConstantLogits(torch.zeros(88)), s.test)["nll"] == pytest.approx(88 * math.log(2))


def test_training_loss_matches_the_metric_on_one_batch(tiny_dir, model):
    s = TASK.load_data(tiny_dir)
    batch = next(iter(TASK.batches(s.test, 8, shuffle=False)))
    with torch.no_grad():
        assert float(TASK.loss(model, batch)) == pytest.approx(TASK.evaluate(model, s.test)["nll"], rel=1e-5)


# ---- generation -----------------------------------------------------------------------------------------------------


def test_generation_is_deterministic_for_a_seed(model):
    inp = {"first": ["C4", "E4", "G4"], "steps": 32, "temperature": 1.0, "top_k": 4, "seed": 7}
    a, b = TASK.predict(model, inp), TASK.predict(model, inp)
    assert a["roll"] == b["roll"] and a["probs"] == b["probs"] and a["midi"] == b["midi"]
    assert a["roll"][0] == [60, 64, 67] and len(a["roll"]) == 33 and a["primer_steps"] == 1
    assert a["probs"][0] is None and all(len(p) == len(r) for p, r in zip(a["probs"][1:], a["roll"][1:]))
    assert all(0 <= p <= 1 for ps in a["probs"][1:] for p in ps)
    assert all(len(r) <= 4 for r in a["roll"][1:])  # top-k 4: at most 4 keys at once
    others = [TASK.predict(model, {**inp, "seed": s})["roll"] for s in (8, 9)]
    assert any(o != a["roll"] for o in others)


def test_first_chord_spellings_and_bad_settings(model):
    out = TASK.predict(model, {"first": "C4, Eb4 G4", "steps": 4})
    assert out["roll"][0] == [60, 63, 67] and out["names"][0] == ["C4", "D#4", "G4"]
    assert TASK.predict(model, {"first": [], "steps": 4})["primer_steps"] == 1  # from silence
    assert "clamped" in TASK.parse_input({"steps": 10_000})["notes"][0]
    for bad in ({"first": "H9"}, {"first": [200]}, {"first": ["C-1"]}, {"temperature": float("nan")},
                {"temperature": -1}, {"steps": "many"}, ["C4"], {"first": {"a": 1}}):
        with pytest.raises(BadInput):
            TASK.predict(model, bad)


def test_inspect_loss_labels_the_steps(model):
    ins = inspect_model(model, lambda m: TASK.inspect_loss(m, {"first": [60, 64, 67], "steps": 6, "seed": 1}))
    assert ins.labels[0] == "t0: start" and ins.labels[1] == "t1: C4 E4 G4" and len(ins.labels) == 7
    assert len(ins.hidden) == 7 and all(p.grad is None for p in model.parameters())
    out = TASK.predict(model, {"first": [60, 64, 67], "steps": 6, "seed": 1})
    loss, labels = TASK.inspect_loss(model, {"roll": out["roll"]})
    assert float(loss.detach()) == pytest.approx(out["nll"], rel=1e-4) and labels == ins.labels


# ---- MIDI -----------------------------------------------------------------------------------------------------------


def test_midi_round_trip(model):
    roll = [[60, 64, 67], [60, 65, 69], [], [59, 62, 67, 74], [59, 62, 67, 74], [48]]
    midi = M.roll_to_midi(roll)
    pm = pretty_midi.PrettyMIDI(io.BytesIO(midi))
    held = [n for n in pm.instruments[0].notes if n.pitch == 74]
    assert len(held) == 1 and held[0].end - held[0].start == pytest.approx(1.2, abs=1e-3)  # two steps, one note
    steps, notes = M.midi_to_steps(midi)
    assert steps == roll and notes == []
    hymn = [[60, 64, 67, 72], [62, 65, 69, 74], [59, 62, 67, 74], [60, 64, 67, 72]] * 4  # held and repeated notes
    assert M.midi_to_steps(M.roll_to_midi(hymn))[0] == hymn
    out = TASK.predict(model, {"primer_midi": midi, "steps": 8, "seed": 0})  # continue an upload
    assert out["roll"][:6] == roll and out["primer_steps"] == 6 and len(out["roll"]) == 14
    wav, how = M.render_wav(out["midi"])
    assert wav is None or wav[:4] == b"RIFF"


def _midi(notes: list[tuple[int, float, float]], drum: bool = False) -> bytes:
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0, is_drum=drum)
    inst.notes = [pretty_midi.Note(velocity=80, pitch=p, start=s, end=e) for p, s, e in notes]
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def test_bad_midi_uploads_are_clear_messages(model):
    good = _midi([(60, 0, 0.5), (64, 0.5, 1.0)])
    cases = {
        "empty": (b"", "empty"),
        "not midi": (b"RIFF....WAVEfmt " + bytes(100), "not a MIDI file"),
        "text": (b"<script>alert(1)</script>", "not a MIDI file"),
        "corrupted": (good[: len(good) // 2], "corrupted"),
        "garbage after header": (b"MThd" + bytes(range(256)) * 4, "corrupted"),
        "no notes": (_midi([]), r"no \(non-drum\) notes"),
        "drums only": (_midi([(36, 0, 0.5)], drum=True), r"no \(non-drum\) notes"),
        "too big": (b"MThd" + bytes(M.MAX_MIDI_BYTES), "limit"),
    }
    for _name, (data, msg) in cases.items():
        with pytest.raises(BadInput, match=msg):
            TASK.predict(model, {"primer_midi": data, "steps": 4})
    # Off the piano: dropped with a note, not a crash
    out = TASK.predict(model, {"primer_midi": _midi([(10, 0, 0.5), (60, 0, 0.5)]), "steps": 2})
    assert out["roll"][0] == [60] and any("88 keys" in n for n in out["notes"])


def test_huge_midi_is_refused(monkeypatch, model):
    monkeypatch.setattr(M, "MAX_MIDI_NOTES", 500)  # the real limit (50,000) works the same, only slower to build
    data = _midi([(40 + i % 40, i * 0.01, i * 0.01 + 0.02) for i in range(1000)])
    with pytest.raises(BadInput, match="1,000 notes"):
        TASK.predict(model, {"primer_midi": data, "steps": 4})


def test_long_primer_is_cut_and_said(model):
    data = _midi([(60 + i % 12, i * 0.5, i * 0.5 + 0.5) for i in range(100)])  # 100 beats at 120 bpm
    out = TASK.predict(model, {"primer_midi": data, "steps": 4})
    assert out["primer_steps"] == M.MAX_PRIMER_STEPS and any("last 64" in n for n in out["notes"])


def test_note_names():
    assert D.pitch_name(60) == "C4" and D.pitch_name(21) == "A0" and D.pitch_name(108) == "C8"
    assert [D.parse_pitch(s) for s in ("C4", "c#4", "Db4", "Bb2", "B#3", "Cb4", "61")] == [60, 61, 61, 46, 60, 59, 61]


# ---- the page: every input in the link (issue 22) ------------------------------------------------------------------
def _music_page():
    from tasks.music import TASK
    from tasks.music.page import render

    render(TASK)


def _page(query: dict):
    from streamlit.testing.v1 import AppTest

    if not TASK.weights_path().joinpath("card.json").exists():
        pytest.skip("the music weights are not in the repository")
    at = AppTest.from_function(_music_page, default_timeout=120)
    at.query_params.update(query)
    return at.run()


def _chord(at) -> list[str]:
    return sorted(n for w in at.button_group if (w.key or "").startswith("music_oct") for n in (w.value or []))


def test_page_restores_chord_and_settings_from_its_link():
    at = _page({"music_oct4": ["D4", "F4"], "music_oct3": "A3", "music_temperature": "0.5", "music_top_k": "0",
                "music_seed": "42", "music_steps": "16"})
    assert not at.exception and not at.error
    assert _chord(at) == ["A3", "D4", "F4"]
    assert at.slider(key="music_temperature").value == pytest.approx(0.5)
    assert at.slider(key="music_top_k").value == 0 and at.slider(key="music_steps").value == 16
    assert at.number_input(key="music_seed").value == 42
    link = [c.value for c in at.code if "music_" in c.value]
    assert link and "music_seed=42" in link[0] and "music_oct4=D4" in link[0]


def test_page_bad_url_values_fall_back_and_old_links_still_open():
    at = _page({"music_temperature": "hot", "music_top_k": "99", "music_seed": "-5", "music_oct4": "H9"})
    assert not at.exception and not at.error
    assert at.slider(key="music_temperature").value == pytest.approx(1.0)
    assert 0 <= at.slider(key="music_top_k").value <= 8 and at.number_input(key="music_seed").value >= 0
    old = _page({"q": "C4 E4 G4 C5"})
    assert not old.exception and _chord(old) == ["C4", "C5", "E4", "G4"] and "q" not in old.query_params


def _chord_midi() -> bytes:
    return _midi([(60, 0.0, 0.5), (64, 0.5, 1.0), (67, 1.0, 1.5)])


def _wav_seconds(wav: bytes) -> float:
    import wave

    with wave.open(io.BytesIO(wav)) as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        return w.getnframes() / w.getframerate()


def test_sound_is_fluidsynth_where_it_is_installed():
    """packages.txt installs Debian's fluidsynth: the piece then plays on FluidSynth's General MIDI piano (rendered
    by the fluidsynth command in a process of its own), a real mono WAV of the piece's length."""
    import shutil

    if shutil.which(M.FLUIDSYNTH) is None:
        pytest.skip("FluidSynth is not installed here (Debian's fluidsynth)")
    wav, how = M.render_wav(_chord_midi())
    assert how.startswith("FluidSynth") and wav[:4] == b"RIFF"
    assert 1.4 <= _wav_seconds(wav) <= 4.0  # 1.5 s of notes plus the piano's release


def test_fluidsynth_renders_outside_the_app_process():
    """The command renders the piece; the app's process never maps libfluidsynth (its libraries stay out of the
    server's memory)."""
    import shutil
    import sys

    if shutil.which(M.FLUIDSYNTH) is None:
        pytest.skip("FluidSynth is not installed here (Debian's fluidsynth)")
    had = "fluidsynth" in sys.modules  # pyfluidsynth, if some other package imported it
    samples = M.fluidsynth_process(_chord_midi(), 22050)
    assert samples is not None and samples.ndim == 1 and 1.4 <= len(samples) / 22050 <= 4.0
    assert abs(samples).max() > 0
    assert had or "fluidsynth" not in sys.modules
    assert M.fluidsynth_process(b"not a midi file", 22050) is None  # a failed render: None, the caller falls back


def test_sound_falls_back_to_synthesis_without_fluidsynth(monkeypatch):
    monkeypatch.setattr(M, "FLUIDSYNTH", "no-such-fluidsynth-command")
    wav, how = M.render_wav(_chord_midi())
    assert how.startswith("sine synthesis") and wav[:4] == b"RIFF"
