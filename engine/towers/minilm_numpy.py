"""The frozen MiniLM text tower's inference in numpy: strings → the (N, 384) unit sentence
vectors engine.towers.minilm's torch tower gives (within about 2·10⁻⁷), from the same files
(engine.towers.minilm_source), tokenizer (engine.towers.wordpiece) and network
(engine.towers.bert_numpy), without importing torch."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from engine.towers import minilm_source
from engine.towers.bert_numpy import NumpyBert
from engine.towers.minilm_source import DIM, MAX_TOKENS, text_folder
from engine.towers.wordpiece import WordPieceTokenizer


class MiniLMNumpyTower:
    """Strings → (N, 384) float64 L2-normalised sentence vectors: mean over the non-padding
    tokens' last hidden states, as :class:`engine.towers.minilm.MiniLMTextTower` (frozen) pools."""

    dim = DIM

    def __init__(self, source: str | Path | None = None) -> None:
        try:
            folder = text_folder(source)
            self.tokenizer = WordPieceTokenizer(folder, MAX_TOKENS)
            self.encoder = NumpyBert.from_folder(folder)
        except (OSError, ValueError, RuntimeError) as e:
            raise minilm_source.unavailable(source, e) from e

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        ids, mask = self.tokenizer.encode([str(t) for t in texts])
        hidden = self.encoder(ids, mask)
        weights = mask[..., None].astype(np.float64)
        pooled = (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
