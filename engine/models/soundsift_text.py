"""A soundsift-clap model for a command that embeds text only, without importing torch.

``soundsift search "…"`` embeds one query and reads stored audio vectors; building the torch
model for it (torch's import alone ≈ 1.3–1.9 s on 2 cores) cost most of the command.
:class:`SoundsiftTextModel` reads the same folder, fingerprint and weights, runs the frozen
MiniLM tower in numpy (engine.towers.minilm_numpy) and the model's text head
(:meth:`engine.models.soundsift_clap.SoundsiftClap.text_head`) in numpy: the same vectors within
10⁻⁵ (tests/test_text_without_torch.py). The first audio it is given builds the torch model
(:class:`~engine.models.soundsift_clap.SoundsiftClapModel`), which embeds all audio from then on.

A model whose text tower was trained (``text_trainable``, or text-tower weights in its file) is
loaded as the torch model at once: only the frozen tower has a numpy twin here.
"""
from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from engine.errors import ModelUnavailable
from engine.models.base import AudioTextModel, l2_normalize
from engine.models.soundsift_config import CONFIG_FILE, WEIGHTS_FILE, SoundsiftClapConfig, fingerprint_of
from engine.prompt_carriers import strip_carrier

#: SoundsiftClap's parameters its text head reads (the rest is the audio side's)
HEAD_WEIGHTS = ("logit_scale", "text_adapter.weight", "text_adapter.bias", "class_text", "log_text_temperature",
                "mix_class_table")


def _normalize(x: np.ndarray) -> np.ndarray:
    """Rows over their L2 norm (at least 1e-12), as torch's ``F.normalize``."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _head_weights(path: Path) -> dict[str, np.ndarray] | None:
    """The text head's tensors in ``path``, or None when the file holds text-tower weights
    (a fine-tuned tower, which the numpy tower does not read)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            keys = set(f.keys())
            if any(k.startswith("text.") for k in keys):
                return None
            return {k: f.get_tensor(k).astype(np.float64) for k in HEAD_WEIGHTS if k in keys}
    except Exception as e:  # safetensors raises its own SafetensorError
        raise ModelUnavailable(f"{path}: unreadable safetensors file ({e})") from e


class SoundsiftTextModel(AudioTextModel):
    """A soundsift-clap folder whose text side runs in numpy; audio builds the torch model."""

    text_batch_size = 64          # SoundsiftClapModel's: each chunk padded to its longest text

    def __init__(self, folder: Path, name: str, config: SoundsiftClapConfig, weights: dict[str, np.ndarray],
                 fingerprint: str) -> None:
        from engine.towers.minilm_numpy import MiniLMNumpyTower

        missing = [k for k, needed in (("logit_scale", True), ("text_adapter.weight", config.text_adapter),
                                       ("class_text", config.space == "audioset"),
                                       ("log_text_temperature", config.space == "audioset"),
                                       ("mix_class_table", config.minilm_mix > 0)) if needed and k not in weights]
        if missing:
            raise ModelUnavailable(f"{folder / WEIGHTS_FILE} does not match {folder / CONFIG_FILE}: "
                                   f"missing {missing[:5]}")
        self.folder, self.name, self.config, self.fingerprint = folder, name, config, fingerprint
        self.sample_rate = config.sample_rate
        self.dim = config.embedding_dim
        self.window_seconds = float(config.window_seconds)
        self.logit_scale = float(np.float32(min(np.exp(weights["logit_scale"]), config.logit_scale_max)))
        self._weights = weights
        self._tower = MiniLMNumpyTower()
        self._full: AudioTextModel | None = None
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path, name: str | None = None) -> AudioTextModel:
        """This model for the folder ``path``, or the torch model where its text tower was trained."""
        folder = Path(path)
        config = SoundsiftClapConfig.from_file(folder / CONFIG_FILE)
        config.check()
        weights_file = folder / WEIGHTS_FILE
        if not weights_file.is_file():
            raise ModelUnavailable(f"{weights_file}: missing; a soundsift-clap folder needs config.json "
                                   f"and {WEIGHTS_FILE}")
        weights = None if config.text_trainable else _head_weights(weights_file)
        if weights is None:
            from engine.models.soundsift_clap import SoundsiftClapModel
            return SoundsiftClapModel.load(path, name=name)
        return cls(folder, name or str(path), config, weights, fingerprint_of(folder, config))

    @property
    def class_names(self) -> tuple[str, ...]:
        """AudioSet class names (the default zero-shot vocabulary)."""
        from engine.towers.yamnet import class_names
        return class_names()

    @property
    def full_model(self) -> AudioTextModel:
        """The torch model of the same folder (built on first use: torch, YAMNet, aisfx)."""
        with self._lock:
            if self._full is None:
                from engine.models.soundsift_clap import SoundsiftClapModel
                self._full = SoundsiftClapModel.load(self.folder, name=self.name)
            return self._full

    @property
    def module(self) -> Any:
        """The torch model's module (:attr:`full_model`)."""
        return self.full_model.module  # type: ignore[attr-defined]

    def embed_audio(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """As :meth:`SoundsiftClapModel.embed_audio`, by the torch model."""
        return self.full_model.embed_audio(waveforms)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Strings → (N, dim) float32 unit rows, read as the torch model reads them (without a
        leading ``query_carriers`` phrase, in chunks of :attr:`text_batch_size`)."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        carriers = self.config.query_carriers
        texts = [strip_carrier(t, carriers) for t in texts] if carriers else texts
        chunks = [self.text_head(self._tower(texts[i:i + self.text_batch_size]))
                  for i in range(0, len(texts), self.text_batch_size)]
        return l2_normalize(np.concatenate(chunks))

    def text_head(self, sentence_vectors: np.ndarray) -> np.ndarray:
        """:meth:`SoundsiftClap.text_head` in numpy: MiniLM sentence vectors (N, 384) → (N, dim)."""
        w, m = self._weights, self.config.minilm_mix
        t = sentence_vectors
        if self.config.text_adapter:
            t = t + (t @ w["text_adapter.weight"].T + w["text_adapter.bias"])
        t = _normalize(t)
        if self.config.space == "audioset":
            logits = (t @ _normalize(w["class_text"]).T) / np.exp(w["log_text_temperature"])
            t = np.exp(logits - logits.max(-1, keepdims=True))
            t = t / t.sum(-1, keepdims=True)
        t = _normalize(t)
        if m > 0:
            t = np.concatenate([math.sqrt(1 - m) * t, math.sqrt(m) * _normalize(sentence_vectors)], axis=-1)
        return t
