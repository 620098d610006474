"""Waveform thumbnails: a min/max envelope read in blocks, drawn as a small PNG.

The envelope is computed at the file's own rate in bounded memory (hour-long files
included); the matching segment is drawn in another colour so a result shows where
in the file the match lies, and the file's named markers (its takes) as violet ticks.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np

from engine.audio import open_sound
from engine.errors import UnreadableAudio

WAVE = (74, 111, 165, 255)
WAVE_HIT = (217, 72, 15, 255)
BAND_HIT = (255, 236, 179, 255)
BACKGROUND = (246, 247, 249, 255)
MIDLINE = (210, 214, 220, 255)
MARK = (124, 58, 237, 255)          # violet, as the marker badge on a card
MARK_TICK = 8                       # pixels of a marker's tick at the top and the bottom


def envelope(path: str | Path, columns: int = 320, block_frames: int = 1 << 16) -> np.ndarray:
    """(columns, 2) min/max of the mono signal of ``path`` per column, in [-1, 1]."""
    p = str(path)
    try:
        with open_sound(p) as f:
            frames = f.frames
            if frames <= 0:
                raise UnreadableAudio(p, "empty: the file holds no samples")
            cols = max(1, min(columns, frames))
            edges = np.linspace(0, frames, cols + 1).astype(np.int64)
            lo = np.full(cols, np.inf, np.float32)
            hi = np.full(cols, -np.inf, np.float32)
            pos = 0
            while pos < frames:
                data = f.read(block_frames, dtype="float32", always_2d=True)
                if data.shape[0] == 0:
                    break
                mono = data.mean(axis=1)
                idx = np.searchsorted(edges, pos + np.arange(mono.size), side="right") - 1
                idx = np.clip(idx, 0, cols - 1)
                np.minimum.at(lo, idx, mono)
                np.maximum.at(hi, idx, mono)
                pos += data.shape[0]
    except UnreadableAudio:
        raise
    except Exception as e:
        raise UnreadableAudio(p, f"cannot draw its waveform ({e})") from e
    empty = ~np.isfinite(lo)
    lo[empty] = 0.0
    hi[empty] = 0.0
    env = np.stack([lo, hi], axis=1)
    if cols < columns:  # very short files: stretch to the requested width
        env = env[np.linspace(0, cols - 1, columns).round().astype(int)]
    return np.clip(env, -1.0, 1.0)


def render_png(env: np.ndarray, *, height: int = 64, highlight: tuple[float, float] | None = None,
               normalise: bool = True, marks: Sequence[float] = ()) -> bytes:
    """Draw an envelope as a PNG; ``highlight`` is a (start, end) span as fractions of the width,
    ``marks`` marker positions as fractions of the width (ticks at the top and the bottom)."""
    from PIL import Image

    env = np.asarray(env, dtype=np.float32)
    width = env.shape[0]
    img = np.empty((height, width, 4), np.uint8)
    img[:] = BACKGROUND
    hit = np.zeros(width, bool)
    if highlight is not None:
        a = int(np.floor(max(0.0, min(1.0, highlight[0])) * width))
        b = int(np.ceil(max(0.0, min(1.0, highlight[1])) * width))
        hit[a:max(b, a + 1)] = True
        img[:, hit] = BAND_HIT
    mid = (height - 1) / 2
    img[int(round(mid)), :] = MIDLINE
    peak = float(np.abs(env).max()) if normalise else 1.0
    scale = (0.95 / peak) if peak > 1e-6 else 1.0
    top = np.round(mid - env[:, 1] * scale * mid).astype(int).clip(0, height - 1)
    bottom = np.round(mid - env[:, 0] * scale * mid).astype(int).clip(0, height - 1)
    rows = np.arange(height)[:, None]
    inside = (rows >= top[None, :]) & (rows <= bottom[None, :])
    colour = np.where(hit[None, :, None], np.array(WAVE_HIT, np.uint8), np.array(WAVE, np.uint8))
    img = np.where(inside[:, :, None], colour, img)
    for at in marks:
        if 0.0 <= at <= 1.0:
            col = min(width - 1, int(at * width))
            img[:MARK_TICK, col:col + 2] = MARK
            img[height - MARK_TICK:, col:col + 2] = MARK
    buf = io.BytesIO()
    Image.fromarray(img.astype(np.uint8), "RGBA").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def waveform_png(path: str | Path, duration: float, start: float | None = None,
                 end: float | None = None, *, width: int = 320, height: int = 64,
                 marks: Sequence[float] = ()) -> bytes:
    """A PNG of the file's waveform with the span [start, end] (seconds) highlighted and its
    named markers (``marks``, seconds) ticked.

    A span covering the whole file (a file no longer than the model's window) is not
    highlighted: there is nothing to point at.
    """
    env = envelope(path, columns=width)
    span = None
    if start is not None and end is not None and duration > 0:
        if start > 0.02 * duration or end < 0.98 * duration:
            span = (start / duration, end / duration)
    return render_png(env, height=height, highlight=span,
                      marks=[at / duration for at in marks] if duration > 0 else ())
