"""Stage 3: embed segments in batches that cross file boundaries.

Segments from any file are gathered until ``batch_size`` of them are waiting, then
embedded in one ``model.embed_audio`` call; the model contract guarantees a segment's
vector does not depend on its batch, so batching is only about speed.
"""
from __future__ import annotations

import time
from typing import Hashable

import numpy as np

from engine.models.base import AudioTextModel

DEFAULT_BATCH_SIZE = 16


class SegmentBatcher:
    """Collects (key, waveform) pairs and embeds them ``batch_size`` at a time."""

    def __init__(self, model: AudioTextModel, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model = model
        self.batch_size = batch_size
        self.seconds = 0.0          # time spent inside model.embed_audio
        self.n_embedded = 0
        self._keys: list[Hashable] = []
        self._waves: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: Hashable, waveform: np.ndarray) -> list[tuple[Hashable, np.ndarray]]:
        """Queue one segment; returns the (key, vector) pairs of a batch if one filled up."""
        self._keys.append(key)
        self._waves.append(waveform)
        if len(self._keys) >= self.batch_size:
            return self.flush()
        return []

    def flush(self) -> list[tuple[Hashable, np.ndarray]]:
        """Embed whatever is queued (possibly a short batch)."""
        if not self._keys:
            return []
        keys, waves = self._keys, self._waves
        self._keys, self._waves = [], []
        t = time.perf_counter()
        vectors = np.asarray(self.model.embed_audio(waves), dtype=np.float32)
        self.seconds += time.perf_counter() - t
        if vectors.shape != (len(keys), self.model.dim):
            raise RuntimeError(f"model {self.model.name!r} returned vectors of shape "
                               f"{vectors.shape} for {len(keys)} clips (expected dim {self.model.dim})")
        self.n_embedded += len(keys)
        return list(zip(keys, vectors))
