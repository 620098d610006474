"""A deterministic fake AudioTextModel for the evaluation tests (counts its calls)."""
from __future__ import annotations

import zlib

import numpy as np

from engine.models.base import AudioTextModel, l2_normalize


class CountingModel(AudioTextModel):
    """Audio → log band energies of the spectrum; text → hashed word vectors.

    Deterministic per clip (alone or in a batch); ``audio_calls`` / ``audio_clips`` /
    ``text_calls`` count what was asked of it.
    """

    def __init__(self, fingerprint: str = "fake-v1", dim: int = 16, sample_rate: int = 16000,
                 window_seconds: float = 1.0) -> None:
        self.name = f"fake:{fingerprint}"
        self.fingerprint = fingerprint
        self.dim = dim
        self.sample_rate = sample_rate
        self.window_seconds = window_seconds
        self.audio_calls = self.audio_clips = self.text_calls = 0
        self.seen_lengths: list[int] = []

    def embed_audio(self, waveforms):
        self.audio_calls += 1
        self.audio_clips += len(waveforms)
        rows = []
        for w in waveforms:
            w = np.asarray(w, dtype=np.float32)
            assert w.ndim == 1 and len(w) <= round(self.window_seconds * self.sample_rate)
            self.seen_lengths.append(len(w))
            spec = np.abs(np.fft.rfft(w, n=2048))
            bands = np.array_split(spec, self.dim)
            rows.append(np.log1p([b.mean() for b in bands]) + 1e-3)
        return l2_normalize(np.array(rows))

    def embed_text(self, texts):
        self.text_calls += 1
        rows = []
        for t in texts:
            v = np.zeros(self.dim)
            for word in t.lower().split():
                v += np.random.default_rng(zlib.crc32(word.encode())).standard_normal(self.dim)
            rows.append(v if v.any() else np.ones(self.dim))
        return l2_normalize(np.array(rows))
