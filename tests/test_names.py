"""The example plugin package examples/rnnlab-names: loader, split, predictions, generation, packaging.

Data: tiny files the tests write themselves (the real names never enter the repository)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
PKG_ROOT = REPO / "examples" / "rnnlab-names"
try:  # installed (CI: pip install ./examples/rnnlab-names), else straight from the source tree
    import rnnlab_names  # noqa: F401
except ImportError:
    sys.path.insert(0, str(PKG_ROOT))

from rnnlab_names import GENERATE, ORIGIN  # noqa: E402
from rnnlab_names.data import (  # noqa: E402
    BASE_CHARS,
    LANGUAGES,
    clean_name,
    read_names,
    stratified_split,
    synthetic_pairs,
)

from core.task import BadInput, check_task  # noqa: E402


def write_names(folder: Path, per_lang: dict[str, list[str]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for lang, names in per_lang.items():
        (folder / f"{lang}.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    (folder / "SOURCES.txt").write_text("not a language\n", encoding="utf-8")
    return folder


def test_loader_reads_cleans_and_skips(tmp_path):
    folder = write_names(tmp_path, {"Alpha": ["Abba", "  Abbo  ", "", "Ab\u00a0ba", "Abba"], "Beta": ["Bopp"]})
    pairs, files = read_names(folder)
    assert [f.name for f in files] == ["Alpha.txt", "Beta.txt"]  # SOURCES.txt is not a language
    assert pairs == [("Abba", "Alpha"), ("Abbo", "Alpha"), ("Ab ba", "Alpha"), ("Abba", "Alpha"), ("Bopp", "Beta")]
    assert clean_name("Mu\u0308ller") == "M\u00fcller"  # NFC: a typed umlaut equals the precomposed one


def test_loader_error_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="Language"):
        read_names(tmp_path)


def _pairs():
    pairs = [(f"A{i:03d}", "Alpha") for i in range(50)] + [(f"B{i:03d}", "Beta") for i in range(20)]
    pairs += [(f"C{i:03d}", "Gamma") for i in range(10)]
    pairs += [("Shared", "Alpha"), ("Shared", "Beta"), ("A000", "Alpha")]  # a name in two languages; a duplicate
    return pairs


def test_stratified_split_is_deterministic_deduplicated_and_stratified():
    a, b, c = stratified_split(_pairs(), seed=0), stratified_split(_pairs(), seed=0), stratified_split(_pairs(), 1)
    assert a == b and a != c
    flat = [p for part in a.values() for p in part]
    assert len(flat) == len(set(flat)) == len(set(_pairs()))  # duplicates dropped, nothing lost
    for lang, n in (("Alpha", 51), ("Beta", 21), ("Gamma", 10)):
        counts = {k: sum(1 for _, lg in v if lg == lang) for k, v in a.items()}
        assert counts["test"] >= 1 and counts["val"] >= 1  # even the smallest language is in every split
        assert abs(counts["test"] - 0.1 * n) <= 1.5 and sum(counts.values()) == n
    where = {k for k, v in a.items() for name, _ in v if name == "Shared"}
    assert len(where) == 1  # a name listed under two languages lives in one split only


def test_synthetic_data_has_every_language_and_the_same_form():
    for task in (ORIGIN, GENERATE):
        s = task.synthetic_data(0)
        assert s.meta["labels"] == LANGUAGES
        assert set(BASE_CHARS) <= set(s.meta["chars"])  # every ASCII letter can be typed and generated
        assert s.train.chars == s.meta["chars"] and len(s.train) > len(s.test) > 0
        assert check_task(task) == []


@pytest.fixture(scope="module")
def origin_model():
    torch.manual_seed(0)
    s = ORIGIN.synthetic_data(0)
    return ORIGIN.build_model({**ORIGIN.config, "hidden_size": 32}, s.meta).eval()  # small: the format is tested


def test_predict_top3_format(origin_model):
    out = ORIGIN.predict(origin_model, "  Kowalczyk ")
    assert out["name"] == "Kowalczyk"
    top = out["top3"]
    assert len(top) == 3 and all(set(r) == {"language", "prob"} for r in top)
    assert [r["prob"] for r in top] == sorted((r["prob"] for r in top), reverse=True)
    assert all(r["language"] in LANGUAGES for r in top)
    assert abs(sum(out["probs"].values()) - 1) < 1e-4
    assert top[0]["language"] == max(out["probs"], key=out["probs"].get)
    assert len(out["prefix"]) == len("Kowalczyk") and out["prefix"][-1]["prefix"] == "Kowalczyk"
    last = out["prefix"][-1]  # the last prefix is the whole name: the same answer as the full forward pass
    assert abs(last[top[0]["language"]] - top[0]["prob"]) < 1e-3


def test_predict_bad_input(origin_model):
    for bad in ("", "   ", None, 42):
        with pytest.raises(BadInput):
            ORIGIN.predict(origin_model, bad)
    with pytest.raises(BadInput, match="Latin"):
        ORIGIN.predict(origin_model, "\U0001F600" * 5)
    out = ORIGIN.predict(origin_model, "<b>Smith</b>" * 10)
    assert any("first 40" in n for n in out["notes"]) and len(out["name"]) == 40


def test_evaluate_metrics_and_confusion(origin_model):
    s = ORIGIN.synthetic_data(0)
    val = ORIGIN.evaluate(origin_model, s.val)
    assert set(val) == {"accuracy", "macro_f1"} and "test_confusion" not in s.meta
    test = ORIGIN.evaluate(origin_model, s.test)
    conf = s.meta["test_confusion"]  # recorded for the card, metrics stay plain numbers
    assert all(isinstance(v, float) for v in test.values())
    m = torch.tensor(conf["matrix"])
    assert m.shape == (18, 18) and int(m.sum()) == len(s.test)
    assert abs(float(m.diag().sum() / m.sum()) - test["accuracy"]) < 1e-6


@pytest.fixture(scope="module")
def gen_model():
    torch.manual_seed(0)
    s = GENERATE.synthetic_data(0)
    return GENERATE.build_model({**GENERATE.config, "hidden_size": 32, "num_layers": 1}, s.meta).eval()


def test_generation_is_seeded(gen_model):
    ask = {"language": "russian", "start": "K", "temperature": 1.0, "seed": 7, "count": 4}
    a, b = GENERATE.predict(gen_model, ask), GENERATE.predict(gen_model, ask)
    c = GENERATE.predict(gen_model, {**ask, "seed": 8})
    assert a["names"] == b["names"] and a["names"] != c["names"]
    assert a["language"] == "Russian" and len(a["names"]) == 4 and all(n.startswith("K") for n in a["names"])
    assert a["first_name_steps"] and all(0 <= s["prob"] <= 1 and len(s["top3"]) == 3 for s in a["first_name_steps"])
    assert GENERATE.predict(gen_model, "Japanese T")["names"][0].startswith("T")  # the text form works too


def test_generation_bad_input(gen_model):
    for bad in ({"language": "Klingon"}, {"language": "Irish", "temperature": 0}, {"language": "Irish", "count": 99},
                {"language": "Irish", "temperature": "hot"}, {"language": "Irish", "start": "\u4e2d"}, 3.5):
        with pytest.raises(BadInput):
            GENERATE.predict(gen_model, bad)


def test_generate_loss_and_metrics():
    s = GENERATE.synthetic_data(0)
    model = GENERATE.build_model({**GENERATE.config, "hidden_size": 32}, s.meta)
    batch = next(iter(GENERATE.batches(s.train, 8, shuffle=True, seed=0)))
    assert batch["x"].shape == batch["y"].shape and batch["cond"].shape == (8, 18)
    loss = GENERATE.loss(model, batch)
    loss.backward()
    metrics = GENERATE.evaluate(model, s.test)
    assert set(metrics) == {"nll_per_char", "perplexity", "next_char_accuracy"}
    assert abs(metrics["nll_per_char"] - torch.log(torch.tensor(float(len(s.meta["chars"]) + 4)))) < 1.0


def test_synthetic_names_are_made_up():
    names = {n for n, _ in synthetic_pairs(0)}
    assert len(names) > 100 and all(n[0].isupper() for n in names)


def test_pyproject_registers_both_tasks_and_ships_weights():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    meta = tomllib.loads((PKG_ROOT / "pyproject.toml").read_text())
    eps = meta["project"]["entry-points"]["rnnlab.tasks"]
    assert eps == {"names_origin": "rnnlab_names:ORIGIN", "names_generate": "rnnlab_names:GENERATE"}
    data = meta["tool"]["setuptools"]["package-data"]["rnnlab_names"]
    assert "weights/*/*.safetensors" in data and "weights/*/card.json" in data
    for task in (ORIGIN, GENERATE):
        assert task.weights_path().parts[-3:] == ("rnnlab_names", "weights", task.name)  # inside the package


@pytest.mark.parametrize("task", [ORIGIN, GENERATE], ids=lambda t: t.name)
def test_shipped_card(task):
    card_path = task.weights_path() / "card.json"
    if not card_path.exists():
        pytest.skip(f"{task.name} not trained yet")
    card = json.loads(card_path.read_text())
    assert not card["dataset"]["synthetic"] and len(card["dataset"]["files"]) == 18
    assert card["meta"]["labels"] == LANGUAGES
    assert task.recipe.metric in card["metrics"]
    if task is ORIGIN:
        conf = card["meta"]["test_confusion"]
        m = torch.tensor(conf["matrix"])
        assert abs(float(m.diag().sum() / m.sum()) - card["metrics"]["accuracy"]) < 1e-6
        assert {"accuracy", "macro_f1"} <= set(card["metrics"])
        cal = card["calibration"]  # core.calibrate: fitted on validation, scored on test
        assert cal["fit_on"] == "validation" and cal["test_after"]["ece"] <= 0.05
        assert cal["test_after"]["ece"] < cal["test_before"]["ece"]


PAGE_SCRIPT = """
import copy, sys
from pathlib import Path
sys.path[:0] = {paths!r}
import rnnlab_names, rnnlab_names.page as page
task = copy.copy(rnnlab_names.GENERATE)
task.weights_dir = Path({weights!r})
page.render_generate(task)
"""


G = "names_generate_"  # the page's widget keys and URL parameters


@pytest.mark.parametrize("query,expect", [({G + "lang": "Irish", G + "start": "O'", G + "seed": "5", G + "n": "3"},
                                           (5, 3)),
                                          ({G + "lang": "Klingon", G + "seed": "-1e999", G + "n": "nan",
                                            G + "temp": "1e999"}, (0, 6))], ids=["shared-link", "hand-made-link"])
def test_generate_page_reads_the_url(tmp_path, query, expect):
    """A shared link sets the widgets; a hand-made one with impossible values falls back to the defaults."""
    from streamlit.testing.v1 import AppTest

    from bench._common import untrained_card
    from core.weights import save_weights

    s = GENERATE.synthetic_data(0)
    config = {**GENERATE.config, "hidden_size": 16, "num_layers": 1}
    model = GENERATE.build_model(config, s.meta)
    save_weights(tmp_path, model, untrained_card(GENERATE, config, s.meta, model))
    at = AppTest.from_string(PAGE_SCRIPT.format(paths=[str(REPO), str(PKG_ROOT)], weights=str(tmp_path)),
                             default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert [int(n.value) for n in at.number_input] == list(expect)
    if query[G + "lang"] == "Irish":
        assert at.selectbox[0].value == "Irish" and at.text_input[0].value == "O'"
    assert len(at.markdown) and not at.error


NAMES_PAGE = """
import sys
sys.path[:0] = {paths!r}
import rnnlab_names, rnnlab_names.page as page
page.{fn}(rnnlab_names.{task})
"""


def _names_page(fn: str, task, state: dict):
    from streamlit.testing.v1 import AppTest

    if not (task.weights_path() / "card.json").exists():
        pytest.skip(f"{task.name} not trained yet")
    at = AppTest.from_string(NAMES_PAGE.format(paths=[str(REPO), str(PKG_ROOT)], fn=fn, task=task.name.upper()[6:]),
                             default_timeout=60)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_a_lowercase_start_is_read_with_a_capital():
    """Typed "mc": the model was primed with a lowercase "m" and the page said no Russian name starts with "m"."""
    from rnnlab_names.generate import capitalised

    assert [capitalised(s) for s in ("mc", "o'", "MAC", "McD", "K", "", "de la")] == \
        ["Mc", "O'", "Mac", "McD", "K", "", "De la"]
    if not (GENERATE.weights_path() / "card.json").exists():
        pytest.skip("names_generate not trained yet")
    at = _names_page("render_generate", GENERATE, {G + "lang": "Russian", G + "start": "mc"})
    shown = " ".join(str(c.value) for c in at.caption)
    assert "starts with" not in shown and "read as 'Mc'" in shown
    names = [n.strip("*") for m in at.markdown if str(m.value).startswith("**") for n in str(m.value).split("  \n")]
    assert names and all(n.startswith("Mc") for n in names), names


def test_origin_letter_curve_is_a_probability_over_the_letters():
    """The letter-by-letter curve was smoothed (monotone spline) below 0 and its x axis read 1..12, not letters."""
    at = _names_page("render_origin", ORIGIN, {"names_origin_q": "Smith"})
    specs = [json.loads(el.proto.spec) for el in at.get("vega_lite_chart")]
    spec = next(s for s in specs if "letter" in json.dumps(s.get("layer", s)))
    layers = spec.get("layer", [spec])
    marks = [ly["mark"] for ly in layers]
    assert all(m.get("interpolate", "linear") == "linear" for m in marks if isinstance(m, dict))
    enc = layers[0]["encoding"]
    assert enc["y"]["scale"]["domain"] == [0, 1]
    label = enc["x"]["axis"]["labelExpr"]
    assert all(f'"{c}"' in label for c in "Smith")


def test_inspect_explains_the_first_name_try_it_shows():
    """Inspect generated its own name with count=1, which samples another name than the first of the list shown."""
    from core.weights import load_model

    if not (GENERATE.weights_path() / "card.json").exists():
        pytest.skip("names_generate not trained yet")
    model = load_model(GENERATE)
    for demo in GENERATE.demos():
        first = GENERATE.predict(model, demo.input)["names"][0]
        assert GENERATE.inspect_loss(model, demo.input)[1] == ["<s>"] + list(first), demo.label


def test_demo_notes_never_state_an_answer_the_served_model_contradicts():
    """A demo's note may ask, or name the language the served model puts first -- never claim another one."""
    import re

    from core.serving import load_served

    served = load_served(ORIGIN).answering(False)
    for demo in ORIGIN.demos():
        out = ORIGIN.predict(served, demo.input)
        top = out["top3"][0]["language"]
        named = [lang for lang in out["probs"] if re.search(rf"\b{lang}\b", demo.note)]
        if not demo.note.rstrip().endswith("?"):
            assert set(named) <= {top}, (demo.label, demo.note, top)


# ---- a made-up name is called a guess (rnnlab_names.spelling) ------------------------------------------------------
def test_spelling_threshold_comes_from_validation_names():
    from rnnlab_names.spelling import coverage, spelling_record, trigrams

    assert trigrams("Kim") == ["^ki", "kim", "im$"]
    train = ["Kowalski", "Nowak", "Smith", "Smithson", "Tanaka"]
    val = ["Kowal", "Smithers", "Tanakawa", "Nowakowski"]
    rec = spelling_record(train, val, quantile=0.0)  # the lowest validation score: no real name under it
    known = set(rec["trigrams"])
    assert rec["threshold"] == min(coverage(n, known) for n in val) and rec["val_flagged"] == 0.0
    assert coverage("Smith", known) == 1.0 and coverage("xyzzyq", known) == 0.0


def test_a_made_up_name_gets_a_guess_warning_from_the_shipped_card():
    from rnnlab_names.spelling import spelling_note

    card_path = ORIGIN.weights_path() / "card.json"
    if not card_path.exists():
        pytest.skip("names_origin not trained yet")
    rec = json.loads(card_path.read_text())["meta"]["spelling"]
    assert 0 < rec["threshold"] < 1 and rec["val_flagged"] <= rec["quantile"]
    for made_up in ("xyzzyq", "Zxcvbn", "Qqqqq"):
        assert "guess" in spelling_note(made_up, rec)
    for real in ("Kowalczyk", "Smith", "Nguyen", "Takahashi", "Papadopoulos", "O'Brien"):
        assert spelling_note(real, rec) is None, real
    assert spelling_note("xyzzyq", None) is None  # a card without the record: no claim either way


def test_predict_carries_the_guess(origin_model):
    s = ORIGIN.synthetic_data(0)
    assert "spelling" in s.meta  # core.train writes it to the card with the rest of meta
    assert ORIGIN.predict(origin_model, "Xyzzyqwv")["guess"]
    assert ORIGIN.predict(origin_model, s.train.names[0])["guess"] is None
