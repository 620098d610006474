"""Deterministic CLAP audio features, equal to transformers' ``ClapFeatureExtractor``.

Same log-mel spectrogram (periodic Hann window, centred reflect-padded STFT, power 2,
HTK mel filters for ``truncation="fusion"``, Slaney filters otherwise, ``10·log10(max(p, 1e-10))``),
same ``repeatpad`` / ``repeat`` / ``pad`` padding of short clips, but **no randomness** for
clips longer than the window (``max_length_s``):

* ``rand_trunc`` (unfused checkpoints): the *front* window ``waveform[:max_samples]``
  (transformers picks a random offset). The indexer never relies on this: it cuts long
  files into window-sized segments first (engine.segments).
* ``fusion`` (fused checkpoints): the mel of the whole clip shrunk to one window, plus three
  fixed crops: the first offset of transformers' front range, the middle offset of its middle
  range and the last offset of its back range (transformers draws one at random from each).

``is_longer`` is the honest flag: true only when the fused path really cropped the clip
(transformers marks a random short clip as longer when no clip of a batch is, which makes a
clip's vector depend on its batch).

Each clip is featurised on its own, so features never depend on the batch they came in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch

MEL_FLOOR = 1e-10


@dataclass(frozen=True)
class ClapFeatureParams:
    """The preprocessing settings of one checkpoint (from its feature extractor config)."""

    sampling_rate: int
    feature_size: int
    hop_length: int
    fft_window_size: int
    max_length_s: float
    frequency_min: float
    frequency_max: float
    truncation: str
    padding: str

    @property
    def max_samples(self) -> int:
        return int(self.max_length_s * self.sampling_rate)

    @property
    def chunk_frames(self) -> int:
        """Spectrogram frames of one window (``max_samples // hop + 1``, as transformers)."""
        return self.max_samples // self.hop_length + 1

    @classmethod
    def from_extractor(cls, fe) -> "ClapFeatureParams":
        return cls(
            sampling_rate=int(fe.sampling_rate), feature_size=int(fe.feature_size),
            hop_length=int(fe.hop_length), fft_window_size=int(fe.fft_window_size),
            max_length_s=float(fe.max_length_s), frequency_min=float(fe.frequency_min),
            frequency_max=float(fe.frequency_max), truncation=str(fe.truncation),
            padding=str(fe.padding),
        )


def fusion_crop_starts(total_frames: int, chunk_frames: int) -> tuple[int, int, int]:
    """Fixed front / middle / back crop offsets for the fused path.

    The ranges are transformers' (``np.array_split(range(total - chunk + 1), 3)``, an empty
    range falling back to ``[0]``); we take the first of the front range, the middle of the
    middle range and the last of the back range.
    """
    ranges = np.array_split(np.arange(0, total_frames - chunk_frames + 1), 3)
    ranges = [r if len(r) else np.array([0]) for r in ranges]
    return int(ranges[0][0]), int(ranges[1][len(ranges[1]) // 2]), int(ranges[2][-1])


def pad_short(waveform: np.ndarray, max_samples: int, padding: str) -> np.ndarray:
    """Bring a clip of at most ``max_samples`` to exactly that length (transformers' rules)."""
    n = waveform.shape[0]
    if n < max_samples:
        if padding == "repeat":
            waveform = np.tile(waveform, int(max_samples / n) + 1)[:max_samples]
        elif padding == "repeatpad":
            waveform = np.tile(waveform, int(max_samples / n))
        waveform = np.pad(waveform, (0, max_samples - waveform.shape[0]), mode="constant")
    return waveform


class ClapFeatures:
    """Turns mono waveforms at ``sampling_rate`` into ``(input_features, is_longer)`` tensors.

    ``mel_filters`` / ``mel_filters_slaney`` are the (freq_bins, n_mels) banks of the
    transformers extractor, so the filters are bit-identical to its own.
    """

    def __init__(self, params: ClapFeatureParams, mel_filters: np.ndarray,
                 mel_filters_slaney: np.ndarray, device: "str | torch.device" = "cpu") -> None:
        import torch

        if params.truncation not in ("fusion", "rand_trunc"):
            raise ValueError(f"unsupported CLAP truncation {params.truncation!r} "
                             "(expected 'fusion' or 'rand_trunc')")
        self.params = params
        self.device = torch.device(device)
        fusion = params.truncation == "fusion"
        bank = mel_filters if fusion else mel_filters_slaney
        self._mel_t = torch.as_tensor(np.asarray(bank, dtype=np.float32).T.copy(), device=self.device)
        self._window = torch.hann_window(params.fft_window_size, periodic=True,
                                         dtype=torch.float64, device=self.device)

    @classmethod
    def from_transformers(cls, fe, device: "str | torch.device" = "cpu") -> "ClapFeatures":
        """Build from a transformers ``ClapFeatureExtractor`` (settings and mel banks)."""
        return cls(ClapFeatureParams.from_extractor(fe), fe.mel_filters, fe.mel_filters_slaney, device)

    @property
    def fusion(self) -> bool:
        return self.params.truncation == "fusion"

    def log_mel(self, waveforms: np.ndarray) -> "torch.Tensor":
        """(samples,) or (B, samples) → (frames, n_mels) or (B, frames, n_mels) float32 dB.

        Like transformers, the FFT runs in float64 and is kept as complex64; power and mel then
        run in float32 (transformers: float64). Measured ≤ 1e-5 dB from transformers' values
        on the test clips, and about 3× faster than its per-frame numpy loop.
        """
        import torch

        p = self.params
        x = torch.as_tensor(np.asarray(waveforms, dtype=np.float64), device=self.device)
        spec = torch.stft(x, n_fft=p.fft_window_size, hop_length=p.hop_length,
                          win_length=p.fft_window_size, window=self._window, center=True,
                          pad_mode="reflect", onesided=True, return_complex=True).to(torch.complex64)
        power = spec.real.square() + spec.imag.square()  # (..., freq, frames)
        mel = torch.clamp(self._mel_t @ power, min=MEL_FLOOR)  # (..., n_mels, frames)
        return (10.0 * torch.log10(mel)).transpose(-1, -2).contiguous()

    def features_one(self, waveform: np.ndarray) -> "tuple[torch.Tensor, bool]":
        """One clip → ((channels, frames, n_mels) float32, is_longer)."""
        import torch

        p = self.params
        waveform = np.asarray(waveform, dtype=np.float64)
        if waveform.ndim != 1:
            raise ValueError(f"expected a 1-D mono waveform, got shape {waveform.shape}")
        if waveform.shape[0] == 0:
            raise ValueError("cannot embed an empty waveform (0 samples)")
        if not np.isfinite(waveform).all():
            raise ValueError("waveform has NaN or infinite samples")
        channels = 4 if self.fusion else 1
        if waveform.shape[0] <= p.max_samples:
            mel = self.log_mel(pad_short(waveform, p.max_samples, p.padding))
            return mel[None].expand(channels, -1, -1), False
        if not self.fusion:
            return self.log_mel(waveform[: p.max_samples])[None], True
        mel = self.log_mel(waveform)
        chunk, total = p.chunk_frames, mel.shape[0]
        if total == chunk:  # at most one hop longer than the window: used whole, not fused
            return mel[None].expand(4, -1, -1), False
        front, middle, back = fusion_crop_starts(total, chunk)
        shrink = torch.nn.functional.interpolate(
            mel[None, None], size=[chunk, p.feature_size], mode="bilinear", align_corners=False)[0, 0]
        crops = [mel[s: s + chunk] for s in (front, middle, back)]
        return torch.stack([shrink, *crops], dim=0), True

    def __call__(self, waveforms: Sequence[np.ndarray]) -> "tuple[torch.Tensor, torch.Tensor]":
        """Clips → (input_features (N, C, frames, n_mels), is_longer (N, 1) bool).

        Each clip is featurised alone (also the fastest way on CPU: one 10 s STFT stays in
        cache), so a clip's features never depend on its neighbours.
        """
        import torch

        p = self.params
        feats = torch.empty((len(waveforms), 4 if self.fusion else 1, p.chunk_frames, p.feature_size),
                            dtype=torch.float32, device=self.device)
        longer = []
        for i, w in enumerate(waveforms):
            try:
                feats[i], is_longer = self.features_one(w)
            except ValueError as e:
                raise ValueError(f"waveform {i}: {e}") from e
            longer.append(is_longer)
        return feats, torch.tensor(longer, dtype=torch.bool, device=self.device)[:, None]
