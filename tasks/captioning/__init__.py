"""Image captioning on Flickr8k: one picture in, a sentence out (one-to-many).

The lesson's second one-to-many example ("a person riding a bike on a sunny day"). A small ResNet built from
torchvision BasicBlocks -- trained from scratch: no pretrained ImageNet weights -- turns the 128x128 image into an
8x8 grid of features; an LSTM writes the caption word by word, attending over the grid at every word (the page
shows where). Beam search picks the sentence; BLEU-1..4 (sacrebleu, 5 references) measures it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from core.data import Vocab, corpus_bleu
from core.images import IMAGE_INPUT, SAMPLE_PHOTOS, image_input, sample_photo, unlike
from core.runtime import Runtime
from core.serving import EnsembleWords
from core.task import Demo, Display, Headline, Metric, Recipe, Splits, Task

from . import data as D
from .drawing import SCENES, draw_scene
from .model import BOS_ID, EOS_ID, PAD_ID, UNK_ID, CaptionerEnsemble, build, default_config, ids_to_words

# Test-time beam width (the card's headline numbers and the page's default), picked on the dev images by the recipe's
# metric, BLEU-4, with the GPU-trained weights: beam 1/3/4/5/6/7 -> dev BLEU-4 12.55/14.07/14.54/14.43/13.81/13.60
# (BLEU-1 49.2/53.1/54.0/54.2/53.6/53.2). Never chosen on test.
BEAM = 4
MAX_LEN = 20  # words generated at most
EVAL_CHUNK = 250  # images decoded together (x beam hypotheses)
MAX_BEAM = 10  # the page's beam slider goes up to this
TOPK = 5  # alternatives shown per step
# The tokens that start and end a caption, as every page names them (the glossary's "</s>, <unk>" entry; translation
# shows the same): the LSTM's first input, and the step where it chose to stop (its vocabulary's <bos> / <eos>).
START_WORD, END_WORD = "<s>", "</s>"
# How the training photos look (core.images.image_stats at 128x128): the 0.1% and 99.9% quantiles over the 6,000
# Flickr8k training images (core.images.stat_ranges; tests/test_captioning.py recomputes them when the data is there).
# A picture outside a range is unlike every training photo: its caption is a guess.
TRAIN_RANGES = {"detail": (0.009, 0.1), "contrast": (0.086, 0.395), "flat": (0.048, 0.854), "colour": (0.011, 0.562),
                "brightness": (0.062, 0.85), "grain": (0.044, 0.511)}

GPU_CONFIG = {"widths": [32, 64, 128, 256], "blocks": [2, 2, 2, 2], "embed_size": 256, "hidden_size": 512,
              "dropout": 0.5}


def bleu_scores(hyps: list[str], refs: list[list[str]], prefix: str = "") -> dict[str, float]:
    """Corpus BLEU-1..4 (sacrebleu, lowercase, 13a tokenisation on our already-tokenised text): hyps[i] is
    compared with all of refs[i] (core.data.corpus_bleu: a missing reference is absent, never a copy)."""
    return {f"{prefix}bleu{n}": corpus_bleu(hyps, refs, max_order=n, lowercase=True) for n in range(1, 5)}


def _resize128(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (128, 128, 3). Squashed, not cropped: the training images were squashed to squares too."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(rgb[..., :3]))
    if im.size != (D.SIZE, D.SIZE):
        im = im.resize((D.SIZE, D.SIZE), Image.BICUBIC)
    return np.array(im.convert("RGB"), dtype=np.uint8)


class CaptioningTask(Task):
    name = "captioning"
    title = "Image captioning"
    shape = "one_to_many"
    summary = ("A picture in, a sentence out: a CNN trained from scratch (no pretrained weights) reads the image, "
               "an LSTM with attention writes the caption.")
    config = default_config()
    recipe = Recipe(
        metric="bleu4",  # val: greedy BLEU-4 on the 1,000 dev images (cheap); test: beam-BEAM BLEU-4
        epochs=12,  # a CPU-sized default (small model); the gpu profile trains the served model
        batch_size=32,  # images per step, each with all 5 of its captions (one encoding, 5 decodings)
        lr=2e-3,
        weight_decay=1e-2,
        clip_norm=2.0,
        patience=4,
        max_minutes=60,
        lr_decay=0.9,
        anchors={
            "Xu et al. 2015, Show, Attend and Tell (soft attention, ImageNet-pretrained VGG encoder)":
                "BLEU-4 19.5, BLEU-1 67 on the Flickr8k test split -- arXiv:1502.03044, Table 1",
            "Vinyals et al. 2015, Show and Tell (ImageNet-pretrained GoogLeNet encoder)":
                "BLEU-1 63 on Flickr8k -- arXiv:1411.4555, Table 2",
        },
        profiles={
            # For one GPU and 11 minutes (~2.5 s an epoch of 6,000 images at 64 per step): a 2x wider, 2x deeper
            # encoder and a 512-unit LSTM (6.2M parameters, ~25 MB). Small data overfits long before the clock
            # runs out, so: strong dropout, augmentation, slow lr decay and patience on the dev BLEU-4.
            "gpu": {"epochs": 200, "batch_size": 64, "lr": 2e-3, "lr_decay": 0.98, "patience": 15,
                    "max_minutes": 11, "variants": {"default": GPU_CONFIG}},
            # A second, small captioner for the served ensemble (core.ensemble --add): the CPU-sized default model
            # (5 MB, so both files stay under 30 MB), trained ~40 epochs on 2 CPU threads (~1 min each) with a
            # slow decay and patience for the noisy dev BLEU-4.
            "small": {"epochs": 40, "batch_size": 32, "lr": 2e-3, "lr_decay": 0.95, "patience": 10,
                      "max_minutes": 40},
        },
    )
    page = "tasks.captioning.page:render"
    data_subdir = "captioning"
    data_source = ("Flickr8k (Hodosh, Young & Hockenmaier, JAIR 2013): 8,091 Flickr photos with 5 captions each, "
                   "official 6,000/1,000/1,000 split; research use only. Images resized to 128x128. No image of it "
                   "ships with this app.")
    primary_input = "image"
    input_type = IMAGE_INPUT
    variant_names = {"default": "main captioner", "small": "small captioner"}  # how the Model card names the variants
    headlines = (Headline("bleu4", ">= 12", "width {beam}"), Headline("bleu1", ">= 55", "width {beam}"))
    display = Display(  # the words for the card's metrics and variants (core.task.check_task holds the card to them)
        metrics={**{f"bleu{n}": Metric(f"BLEU-{n}, beam search", "points (0-100)") for n in range(1, 5)},
                 **{f"greedy_bleu{n}": Metric(f"BLEU-{n}, greedy decoding", "points (0-100)") for n in range(1, 5)},
                 "beam": Metric("beam width used", "", ""),
                 "vocab_used": Metric("different words in the captions", "words", ""),
                 "mean_words": Metric("words per caption", "words", "")},
        variants=variant_names,
        inputs="a photo")
    ensemble_words = EnsembleWords(
        alone="the main captioner", verb="Written",
        help="The app captions with an ensemble of two captioners trained separately. Switch it off to see what "
             "the main (bigger) one writes by itself.",
        how="at every word the captioners' probabilities are mixed with these weights (chosen on the dev images; "
            "see the Model card). The attention maps are the main captioner's.")

    # ---- model -------------------------------------------------------------------------------------------------
    def build_model(self, config, meta):
        return build(config, len(D.vocab_of(meta)))

    def vocab(self, meta: dict, key: str = "vocab") -> Vocab:
        """The card's caption words: every id's word, the four specials first."""
        return D.vocab_of(meta)

    def runtime(self, meta: dict, config: dict) -> Runtime:
        """Task.runtime with the caption words as the output's vocabulary: the input is a photo."""
        rt = super().runtime(meta, config)
        return replace(rt, vocab=None, target_vocab=rt.vocab)

    def ensemble(self, models, weights):
        """The served captioner with other trained ones, writing one caption (tasks.captioning.model.
        CaptionerEnsemble); ``python -m core.ensemble captioning`` picks the weights on the dev BLEU-4."""
        if len({tuple(m.runtime.target_vocab.itos) for m in models}) != 1:
            raise ValueError("ensemble members must share their vocabulary")
        return CaptionerEnsemble(list(models), list(weights))  # core.ensemble.build gives it the vocabulary


    # ---- data --------------------------------------------------------------------------------------------------
    def load_data(self, data_dir):
        sets, vocab, files = D.load_flickr8k(Path(data_dir))
        meta = {**D.vocab_meta(vocab), "size": D.SIZE, "max_words": D.MAX_WORDS, "min_count": D.MIN_COUNT,
                "sizes": {s: len(v) for s, v in sets.items()}}
        desc = (f"Flickr8k official split: {len(sets['train'])} train / {len(sets['val'])} dev / "
                f"{len(sets['test'])} test images, 5 captions each, images at 128x128. Tokens: lowercase, "
                f"punctuation removed (hyphen/apostrophe split words); vocabulary = train words used >= "
                f"{D.MIN_COUNT} times ({len(vocab)} incl. 4 specials); training captions cut at {D.MAX_WORDS} words. "
                f"Validation metric: greedy BLEU-4 on the dev images. Test: beam-{BEAM} BLEU-1..4 (and greedy) by "
                f"corpus BLEU (the sacrebleu library: matches of up to n words, lower case, its standard tokenizer) "
                f"against all 5 references.")
        return Splits(train=sets["train"], val=sets["val"], test=sets["test"], meta=meta, files=files,
                      dataset=desc)

    def synthetic_data(self, seed: int = 0):
        sets, vocab = D.synthetic_sets(seed)
        meta = {**D.vocab_meta(vocab), "size": D.SIZE, "max_words": D.MAX_WORDS, "min_count": 1,
                "sizes": {s: len(v) for s, v in sets.items()}}
        return Splits(train=sets["train"], val=sets["val"], test=sets["test"], meta=meta,
                      dataset="synthetic: drawn scenes with generated captions, 32/8/8")

    def batches(self, data: D.CapSet, batch_size, shuffle, seed=0):
        """{"image": uint8 (B, 3, 128, 128), "captions": (B, 5, T) ids}; T trimmed to the longest in the batch."""
        n = len(data)
        g = torch.Generator().manual_seed(int(seed))
        order = torch.randperm(n, generator=g) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            cap = data.captions[idx]  # (B, 5, T)
            T = int((cap != PAD_ID).sum(-1).max())
            yield {"image": data.images[idx], "captions": cap[:, :, :T].contiguous()}

    def loss(self, model, batch):
        cap = batch["captions"]  # (B, K, T)
        logits, _ = model(batch["image"], cap[:, :, :-1])  # (B*K, T-1, V)
        target = cap[:, :, 1:].flatten()  # (B*K*(T-1),)
        smooth = getattr(model, "module", model).label_smoothing if model.training else 0.0
        return F.cross_entropy(logits.float().flatten(0, 1), target, ignore_index=PAD_ID, label_smoothing=smooth)

    @torch.no_grad()
    def caption_set(self, model, data: D.CapSet, beam: int) -> list[str]:
        """Captions for every image of a split, decoded EVAL_CHUNK images at a time."""
        dev = next(model.parameters()).device
        out = []
        for s in range(0, len(data), EVAL_CHUNK):
            imgs = data.images[s:s + EVAL_CHUNK].to(dev)
            ids = model.beam_search(imgs, beam=beam, max_len=MAX_LEN).cpu()
            out.extend(" ".join(ids_to_words(row.tolist(), model.runtime.target_vocab.itos)) for row in ids)
        return out

    @torch.no_grad()
    def evaluate(self, model, data: D.CapSet):
        was = model.training
        model.eval()
        # Full fp32 convolutions on GPU too (cuDNN uses TF32 by default): the card's numbers, decoded on a GPU,
        # should be reproduced by core.evaluate on a CPU, and beam search amplifies tiny differences into words.
        tf32 = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = False
        try:
            greedy = self.caption_set(model, data, beam=1)
            res = bleu_scores(greedy, data.refs, "greedy_")
            if data.role == "test":
                beam = self.caption_set(model, data, beam=BEAM)
                res.update(bleu_scores(beam, data.refs))
                res["beam"] = float(BEAM)
                res["vocab_used"] = float(len({w for c in beam for w in c.split()}))
                res["mean_words"] = float(np.mean([len(c.split()) for c in beam]))
            else:
                res.update({f"bleu{n}": res[f"greedy_bleu{n}"] for n in range(1, 5)})
            return res
        finally:
            torch.backends.cudnn.allow_tf32 = tf32
            model.train(was)

    # ---- serving -----------------------------------------------------------------------------------------------
    def demos(self):
        return [Demo(name.capitalize(), f"photo:{name}", f"a real photograph: {what}")
                for name, (_, what) in SAMPLE_PHOTOS.items()]

    def image_from_input(self, input) -> dict:
        """Bytes (upload/camera), "scene:<i>", an (H, W, 3|4) uint8 array, or {"image": one of those, "beam": k}
        -> {"pixels" (128, 128, 3) uint8, "original", "notes", "source"}."""
        def named(text: str) -> dict | None:
            parts = text.split(":")
            if len(parts) == 2 and parts[0] == "scene" and parts[1].isdigit() and int(parts[1]) < len(SCENES):
                label, things, ground, night, seed = SCENES[int(parts[1])]
                arr = draw_scene(things, ground, night, seed)
                return {"pixels": arr, "original": arr, "notes": [], "source": "drawing", "label": label}
            if len(parts) == 2 and parts[0] == "photo" and parts[1] in SAMPLE_PHOTOS:
                arr = sample_photo(parts[1])
                return {"pixels": _resize128(arr), "original": arr, "notes": [], "source": "photo",
                        "label": SAMPLE_PHOTOS[parts[1]][1]}
            return None

        return image_input(input, named, _resize128, example="a sample name like 'photo:astronaut'", squeeze=(
            2, "elongated image: it is squeezed into a square, as the training photos were"))

    @staticmethod
    def _beam_of(input) -> int:
        beam = input.get("beam", BEAM) if isinstance(input, dict) else BEAM
        try:
            return min(max(int(beam), 1), MAX_BEAM)
        except (TypeError, ValueError):
            return BEAM

    @staticmethod
    def _tensor(pixels: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1)[None]  # (1, 3, 128, 128) uint8

    def _caption_ids(self, model, x, beam) -> list[int]:
        ids = model.beam_search(x, beam=beam, max_len=MAX_LEN)[0].tolist()
        out = []
        for i in ids:
            if i in (EOS_ID, PAD_ID):
                break
            out.append(i)
        return out

    def predict(self, model, input):
        """A caption for an image (or {"image": ..., "beam": ...}); ``model``: a captioner or an ensemble of them."""
        img = self.image_from_input(input)
        beam = self._beam_of(input)
        x = self._tensor(img["pixels"])
        with torch.inference_mode():
            ids = self._caption_ids(model, x, beam)
            # Teacher-force the chosen caption: the distribution at each step given the words before it.
            tokens = torch.tensor([[BOS_ID] + ids])  # (1, T)
            logits, attn = model(x, tokens)  # (1, T, V), (1, T, 64)
            probs = F.softmax(logits[0].float(), dim=-1)  # (T, V)
        itos = model.runtime.target_vocab.itos
        words = [itos[i] for i in ids]

        def shown(i: int) -> str:
            return END_WORD if i == EOS_ID else itos[i]

        steps = []
        for t, tok in enumerate(ids + [EOS_ID]):
            tp, ti = probs[t].topk(min(TOPK, probs.shape[-1]))
            steps.append({"word": shown(tok), "prob": float(probs[t, tok]),
                          "topk": [(shown(int(i)), float(p)) for p, i in zip(tp, ti)]})
        side = int(round((attn.shape[-1]) ** 0.5)) if attn is not None else 0
        att = attn[0].float().reshape(-1, side, side).numpy() if attn is not None else None  # (T, 8, 8)
        return {"caption": " ".join(words), "words": words, "steps": steps, "attention": att, "beam": beam,
                "pixels": img["pixels"], "original": img["original"], "notes": img["notes"],
                "source": img["source"], "label": img.get("label"),
                "unlike_training": unlike(img["pixels"], TRAIN_RANGES)}

    def shown_caption_ids(self, model, input, x) -> list[int]:
        """The caption the page showed for this input, as token ids: ``input["caption"]`` when the page passes it
        (what Try it printed, perhaps by the ensemble), else what ``predict`` writes with ``model`` itself, at the
        input's beam width. The inspection views teacher-force it, so they explain the answer that was shown."""
        given = input.get("caption") if isinstance(input, dict) else None
        if isinstance(given, str):
            unk = model.runtime.target_vocab.stoi.get("<unk>", 3)
            return [model.runtime.target_vocab.stoi.get(w, unk) for w in given.split()][:MAX_LEN]
        with torch.no_grad():
            return self._caption_ids(model, x, self._beam_of(input))

    def inspect_loss(self, model, input):
        """Cross-entropy of the caption the page showed (teacher-forced through ``model``: the served captioner,
        or the variant picked in Inspect). Steps: the word the LSTM reads at each step (START_WORD, then the caption's
        words) while predicting the next."""
        img = self.image_from_input(input)
        dev = next(model.parameters()).device
        x = self._tensor(img["pixels"]).to(dev)
        ids = self.shown_caption_ids(model, input, x)
        seq = torch.tensor([[BOS_ID] + ids + [EOS_ID]], device=dev)  # (1, T+1)
        logits, _ = model(x, seq[:, :-1])  # (1, T, V)
        loss = F.cross_entropy(logits[0].float(), seq[0, 1:])
        return loss, [START_WORD] + [model.runtime.target_vocab.itos[i] for i in ids]

    def _shown_words(self, model, input):
        """(image, uint8 tensor, the shown caption's words, their ids + the end token): what the inspection views explain."""
        img = self.image_from_input(input)
        x_u8 = self._tensor(img["pixels"])  # (1, 3, 128, 128)
        words = [model.runtime.target_vocab.itos[i] for i in self.shown_caption_ids(model, input, x_u8)]
        return img, x_u8, words, [model.runtime.target_vocab.stoi.get(w, UNK_ID) for w in words] + [EOS_ID]

    def word_dependence(self, model, input) -> dict:
        """How much each word of the caption the page showed (``shown_caption_ids``) depends on the picture at all:
        ``norms[t]`` = ‖∂ log p(word_t | the words before) / ∂ features‖, the gradient of the word's log-probability
        with respect to the encoder's 8x8 grid of feature vectors -- everything the decoder knows of the image.

        One batched backward pass through the decoder only: copy t of the features (T copies, a batch of T)
        carries word t's gradient, so the encoder runs once, without gradients."""
        img, x_u8, words, ids = self._shown_words(model, input)
        T = len(ids)
        with torch.inference_mode(False):
            with torch.no_grad():
                f0 = model.features(model.prep(x_u8))  # (1, S, F)
            with torch.enable_grad():
                feats = f0.expand(T, -1, -1).clone().requires_grad_(True)  # (T, S, F)
                f, g, state = model.from_features(feats)
                seq = torch.tensor([[BOS_ID] + ids]).expand(T, -1)  # (T, T + 1)
                logits, _, _ = model.decode(seq[:, :-1], state, f, g)  # (T, T, V)
                logp = F.log_softmax(logits.float(), dim=-1)  # (T, T, V)
                t = torch.arange(T)
                chosen = logp[t, t, torch.tensor(ids)]  # (T,): in copy t, word t's log-probability
                (gf,) = torch.autograd.grad(chosen.sum(), feats)  # (T, S, F)
        return {"words": words + [END_WORD], "norms": gf.flatten(1).norm(dim=1).numpy(), "caption": " ".join(words)}

    def saliency(self, model, input, word: int = 0) -> dict:
        """The pixels word ``word`` of the shown caption depends on: |∂ log p(word) / ∂ pixels| through ``model``
        (max over colours), a (128, 128) array. Teacher-forced: the decoder reads START_WORD and the words before it.
        One backward pass through decoder and encoder; ``word`` is clamped to the caption (the last is END_WORD)."""
        img, x_u8, words, ids = self._shown_words(model, input)
        k = min(max(int(word), 0), len(ids) - 1)
        with torch.inference_mode(False), torch.enable_grad():
            x = model.prep(x_u8).detach().requires_grad_(True)  # (1, 3, 128, 128)
            feats, g, state = model.encode(x)
            seq = torch.tensor([[BOS_ID] + ids[:k]])  # (1, k + 1): what it has read when it writes word k
            logits, _, _ = model.decode(seq, state, feats, g)  # (1, k + 1, V)
            logp = F.log_softmax(logits[0, -1].float(), dim=-1)  # (V,)
            (gx,) = torch.autograd.grad(logp[ids[k]], x)  # (1, 3, 128, 128)
        return {"words": words + [END_WORD], "word": k, "map": gx[0].abs().amax(0).numpy(),
                "caption": " ".join(words), "pixels": img["pixels"]}


TASK = CaptioningTask()

__all__ = ["TASK", "CaptioningTask", "bleu_scores"]
