"""LAION-CLAP feature fusion: a global downsampled view plus three local crops, fused by attention.

Audio longer than the model window gives four views of ``window_frames`` frames each:

* view 0, global: every frame of the clip, resized in time to the window (bilinear, as LAION-CLAP
  resizes its mel spectrogram);
* views 1–3, local: window-length crops at the front, middle and back at inference; in training
  one random start inside each third of the possible starts.

Audio no longer than the window is repeat-padded to it beforehand (:func:`repeat_pad`), and then
gives four identical views. Crop positions are fractions in [0, 1] of the possible start range so
that towers with different frame rates crop the same moments.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

#: crop positions at inference: front, middle, back
INFERENCE_POSITIONS: tuple[float, float, float] = (0.0, 0.5, 1.0)
NUM_VIEWS = 4


def repeat_pad(waveform: np.ndarray, length: int) -> np.ndarray:
    """Repeat a 1-D waveform until it is ``length`` samples long (silence stays silence)."""
    w = np.asarray(waveform, dtype=np.float32).reshape(-1)
    if w.size >= length:
        return w
    if w.size == 0:
        return np.zeros(length, dtype=np.float32)
    reps = -(-length // w.size)
    return np.tile(w, reps)[:length]


def random_positions(generator: torch.Generator | None = None) -> tuple[float, float, float]:
    """Training crop positions: one uniform draw inside each third of [0, 1]."""
    u = torch.rand(3, generator=generator).tolist()
    return tuple((k + u[k]) / 3.0 for k in range(3))  # type: ignore[return-value]


def fusion_views(frames: torch.Tensor, window_frames: int,
                 positions: Sequence[float] = INFERENCE_POSITIONS) -> torch.Tensor:
    """(T, F) frames → (4, window_frames, F): global resized view, then three crops.

    Shorter inputs are repeated along time to ``window_frames`` first (then all views are equal).
    """
    if frames.ndim != 2:
        raise ValueError(f"expected (frames, features), got shape {tuple(frames.shape)}")
    t = frames.shape[0]
    if t <= window_frames:
        reps = -(-window_frames // max(t, 1))
        clip = frames.repeat(reps, 1)[:window_frames] if t else frames.new_zeros(window_frames, frames.shape[1])
        return clip.unsqueeze(0).expand(NUM_VIEWS, -1, -1).contiguous()
    glob = nn.functional.interpolate(
        frames.T.unsqueeze(0), size=window_frames, mode="linear", align_corners=False)[0].T
    span = t - window_frames
    crops = [frames[int(round(p * span)):int(round(p * span)) + window_frames] for p in positions]
    return torch.stack([glob, *crops])


class ViewAttention(nn.Module):
    """Attention over the four views' projected vectors: softmax(score(v) + view bias) · v.

    Initialised to zero scores, i.e. the plain mean of the views.
    """

    def __init__(self, dim: int, num_views: int = NUM_VIEWS) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)
        self.view_bias = nn.Parameter(torch.zeros(num_views))
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        """(B, V, dim) → (B, dim)."""
        weights = torch.softmax(self.score(views).squeeze(-1) + self.view_bias, dim=-1)
        return (weights.unsqueeze(-1) * views).sum(1)
