"""The classifier: word embedding -> core's recurrent ManyToOne -> one answer from the last real step.

Unknown words share one learned <unk> vector. Word dropout (a few training words swapped for <unk> at random)
teaches that vector to mean "some word I have not seen" and stops the model leaning on any single rare word.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from core.calibrate import temperature_of
from core.data import config_from_dict
from core.shapes import ManyToOne

PAD_ID, UNK_ID = 0, 1


@dataclass
class SentimentConfig:
    cell: str = "lstm"  # rnn_tanh | gru | lstm: the comparison the card makes
    bidirectional: bool = False  # a second pass from the end; the summary then has read every word both ways
    embed_size: int = 160  # word vector size: what the recurrent layer reads at each step
    hidden_size: int = 160  # state size; the recurrent cost per word grows as hidden x (embed + hidden)
    num_layers: int = 1  # one layer: the CPU budget buys more epochs instead of depth
    dropout: float = 0.5  # on the embeddings and on the summary: SST is small, models over-fit fast


class SentimentRNN(ManyToOne):
    """ManyToOne over word ids.

    forward(x (B, T) word ids, lengths (B,)) -> logits (B, 2); prefix_logits(x, lengths) -> (B, T, 2)."""

    def __init__(self, vocab_size: int, cfg: SentimentConfig):
        super().__init__(input_size=cfg.embed_size, hidden_size=cfg.hidden_size, num_classes=2, cell=cfg.cell,
                         num_layers=cfg.num_layers, bidirectional=cfg.bidirectional, dropout=cfg.dropout,
                         vocab_size=vocab_size, pad_id=PAD_ID)
        self.cfg = cfg

    @torch.no_grad()
    def prefix_probs(self, x: torch.Tensor, max_points: int = 48, budget: int = 2400) -> tuple[list[int], torch.Tensor]:
        """P(positive) after prefixes of ONE sequence x (1, T). Returns (prefix lengths, probs (K,)).

        One-way model: every prefix, exact, from one pass (ManyToOne.prefix_logits). Bidirectional: each prefix
        must be re-read (its backward half would otherwise have seen the future), which costs about K * T / 2
        word-steps for K prefixes; so at most ``max_points`` and about ``budget / T`` evenly spaced prefixes are
        read (at least 8), in one padded batch -- all of them for a short review, a sample for a long one. Divided
        by the model's calibrated temperature, like the answer."""
        T = x.shape[1]
        if not self.rnn.bidirectional:
            logits = self.prefix_logits(x)[0]  # (T, 2)
            return list(range(1, T + 1)), torch.softmax(logits.float() / temperature_of(self), -1)[:, 1]
        k = min(max_points, max(8, budget // max(T, 1)))
        ends = list(range(1, T + 1)) if T <= k else sorted({max(1, round(T * (i + 1) / k)) for i in range(k)})
        return ends, torch.softmax(self._prefixes(x, ends).float() / temperature_of(self), -1)[:, 1]

    def _prefixes(self, x, ends: list[int]) -> torch.Tensor:
        lens = torch.tensor(ends, dtype=torch.long)  # (K,)
        xs = x.expand(len(ends), -1)[:, :max(ends)]  # (K, T') every row the same words, cut by its length
        return self.forward(xs, lens)  # (K, 2)


def build(config: dict, vocab_size: int) -> SentimentRNN:
    cfg = config_from_dict(SentimentConfig, config)
    return SentimentRNN(vocab_size, cfg)


def default_config() -> dict:
    return asdict(SentimentConfig())
