"""The model contract every backend implements (DESIGN.md §2)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np


class AudioTextModel(ABC):
    """A language–audio model embedding audio and text into one L2-normalised space.

    Attributes every backend sets:
      name            how the user asked for it ("soundsift-base", "laion/…", a folder)
      sample_rate     rate (Hz) the waveforms given to :meth:`embed_audio` must have
      dim             embedding size
      fingerprint     identifies weights + preprocessing; stored in every index
      window_seconds  longest audio embedded as one piece; the indexer cuts longer
                      files into segments of this length (engine.segments)
      logit_scale     optional: the trained temperature exp(t) of cosine logits, used to
                      turn zero-shot cosines into probabilities (engine.zeroshot)
    """

    name: str
    sample_rate: int
    dim: int
    fingerprint: str
    window_seconds: float

    @abstractmethod
    def embed_audio(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """1-D float32 arrays at ``sample_rate`` → (N, dim) float32, rows L2-normalised.

        Deterministic: a clip gives the same vector alone or in any batch.
        """

    @abstractmethod
    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Strings → (N, dim) float32, rows L2-normalised."""

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, "
                f"sample_rate={self.sample_rate}, fingerprint={self.fingerprint[:12]!r})")


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation in float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, eps)
