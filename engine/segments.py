"""The fixed, documented segment policy.

A file no longer than the model's window is one segment spanning the whole file.
A longer file is cut into windows of exactly ``window`` seconds that start every
``hop = window / 2`` seconds (50 % overlap); when the last regular window stops short
of the end, one more window is aligned to the end of the file, so every sample is
covered and no segment is shorter than the window. Positions are in samples at the
model's rate, so the policy is a pure function of (length, rate, window) and
deterministic: no random crops at inference.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SegmentPolicy:
    """Window and hop in seconds; ``hop`` defaults to half the window."""

    window: float
    hop: float | None = None

    @property
    def hop_seconds(self) -> float:
        return self.hop if self.hop is not None else self.window / 2

    def as_dict(self) -> dict[str, float | str]:
        return {"kind": "fixed-window, end-aligned tail", "window": self.window,
                "hop": self.hop_seconds}

    def window_samples(self, sample_rate: int) -> int:
        return max(1, int(round(self.window * sample_rate)))

    def hop_samples(self, sample_rate: int) -> int:
        return max(1, int(round(self.hop_seconds * sample_rate)))


def segment_bounds(n_samples: int, sample_rate: int, policy: SegmentPolicy) -> list[tuple[int, int]]:
    """Segments of a file of ``n_samples`` samples as (start, end) sample offsets."""
    if n_samples <= 0:
        return []
    win = policy.window_samples(sample_rate)
    hop = policy.hop_samples(sample_rate)
    if n_samples <= win:
        return [(0, n_samples)]
    bounds = []
    start = 0
    while start + win <= n_samples:
        bounds.append((start, start + win))
        start += hop
    if bounds[-1][1] < n_samples:
        bounds.append((n_samples - win, n_samples))
    return bounds
