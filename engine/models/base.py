"""The model contract every backend implements (DESIGN.md §2)."""
from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence

import numpy as np


class AudioTextModel(ABC):
    """A language–audio model embedding audio and text into one L2-normalised space.

    Attributes every backend sets:
      name            how the user asked for it ("soundsift-base", "laion/…", a folder)
      sample_rate     rate (Hz) the waveforms given to :meth:`embed_audio` must have
      dim             embedding size
      fingerprint     identifies weights + preprocessing; stored in every index, which
                      holds audio vectors: a model of another fingerprint asks for a rebuild
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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every backend's embed methods first refuse the easy slips of their argument: one
        string to :meth:`embed_text` (it would embed each character), one 1-D waveform to
        :meth:`embed_audio` (each sample a clip: minutes of work and a row per sample), and a
        waveform of 0 samples in its batch (nothing to embed: each backend once gave its own
        answer, an error or the vector of silence)."""
        super().__init_subclass__(**kwargs)
        for attr, check in (("embed_text", _check_texts), ("embed_audio", _check_waveforms)):
            method = cls.__dict__.get(attr)
            if method is None or getattr(method, "_checks_batch", False) or \
                    getattr(method, "__isabstractmethod__", False):
                continue
            setattr(cls, attr, _checked(method, check))

    @abstractmethod
    def embed_audio(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        """1-D float32 arrays at ``sample_rate`` → (N, dim) float32, rows L2-normalised. Each clip
        holds at least one sample: ValueError naming the clip ("waveform 2: …") for an empty one.

        Deterministic: a clip gives the same vector alone or in any batch, to float rounding
        (bit-identical when embedded alone again; in a batch within about 2e-8 for the bundled
        models).
        """

    @abstractmethod
    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """Strings → (N, dim) float32, rows L2-normalised."""

    @property
    def text_fingerprint(self) -> str:
        """Identifies how this model makes text vectors: the key of text vectors cached on disk
        (engine.zeroshot's label vectors). :attr:`fingerprint` unless a backend's text encoding
        has settings of its own that leave its audio vectors alone (HFClapModel's token limit),
        so changing them makes cached text vectors again without asking indexes for a rebuild."""
        return str(self.fingerprint)

    def __repr__(self) -> str:  # pragma: no cover - cosmetic
        return (f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, "
                f"sample_rate={self.sample_rate}, fingerprint={self.fingerprint[:12]!r})")


def _check_texts(texts: Any) -> None:
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"embed_text takes a list of strings, not a single {type(texts).__name__}: "
                        f"embed_text([{texts!r:.40}])")


def _check_waveforms(waveforms: Any) -> None:
    if isinstance(waveforms, np.ndarray) and waveforms.ndim == 1 and waveforms.dtype != object:
        raise TypeError(f"embed_audio takes a list of waveforms, not one 1-D array of {len(waveforms)} "
                        "samples: embed_audio([waveform])")
    for i, waveform in enumerate(waveforms if isinstance(waveforms, (list, tuple, np.ndarray)) else ()):
        if 0 in np.shape(waveform):
            raise ValueError(f"waveform {i}: cannot embed an empty waveform (0 samples); "
                             "a clip needs at least one sample")


def _checked(method: Callable[..., np.ndarray], check: Callable[[Any], None]) -> Callable[..., np.ndarray]:
    params = list(inspect.signature(method).parameters)
    key = params[1] if len(params) > 1 else None     # the batch's name, when given by keyword

    @functools.wraps(method)
    def embed(self: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        check(args[0] if args else kwargs.get(key))
        return method(self, *args, **kwargs)
    embed._checks_batch = True  # type: ignore[attr-defined]
    return embed


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation in float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, eps)
