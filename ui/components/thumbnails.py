"""Waveform thumbnails: a min/max envelope read in blocks, drawn as a small PNG.

The envelope is computed at the file's own rate in bounded memory; a file over two minutes
long that seeks is sampled (a few short reads under each column; in a file FFmpeg reads, an
M4A, each reached by its container's index) so an hour-long file costs no more than a short
one, and each file's envelope is kept per process, whichever moment of it is shown. The
matching segment is drawn in another colour so a result shows where in the file the match
lies, and the file's named markers (its takes) as violet ticks.
"""
from __future__ import annotations

import io
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from engine.audio import check_openable, downmix, open_sound
from engine.errors import UnreadableAudio

WAVE = (74, 111, 165, 255)
WAVE_HIT = (217, 72, 15, 255)
BAND_HIT = (255, 236, 179, 255)
BACKGROUND = (246, 247, 249, 255)
MIDLINE = (210, 214, 220, 255)
MARK = (124, 58, 237, 255)          # violet, as the marker badge on a card
MARK_TICK = 8                       # pixels of a marker's tick at the top and the bottom
SAMPLE_ABOVE_S = 120.0              # longer files (that seek) are sampled, not read whole
SAMPLE_READS = 8                    # reads under each column of a sampled file …
SAMPLE_FRAMES = 512                 # … of this many frames each (320 columns: 1.3 M frames in all)
REFINE_MAX_S = 60.0                 # a moment's columns read in full, up to this much audio
CACHE_FILES = 512                   # envelopes kept per process (320 columns: 2.5 kB each)

log = logging.getLogger(__name__)
_CACHE: OrderedDict[tuple[str, int, int, int, int], "_Envelope"] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def envelope(path: str | Path, columns: int = 320, block_frames: int = 1 << 16, *,
             sample_above: float | None = SAMPLE_ABOVE_S, reads_per_column: int = SAMPLE_READS,
             read_frames: int = SAMPLE_FRAMES) -> np.ndarray:
    """(columns, 2) min/max of the mono signal of ``path`` per column, in [-1, 1].

    A file no longer than ``sample_above`` seconds (None: any file) is read whole, every sample
    counted. A longer one that seeks (WAV, RF64, W64, AIFF, FLAC, OGG … through libsndfile) is
    sampled: ``reads_per_column`` reads of ``read_frames`` frames spread evenly under each
    column, so an hour-long 96 kHz file costs about as much as a few seconds of it; a column's
    min/max is then that of its samples (a click shorter than the gaps between reads may be
    missed; anything lasting a good part of a column shows: :func:`file_envelope` reads the
    columns under a card's own moment in full). Formats read through FFmpeg (``.m4a``, ``.wv``
    …) are sampled too, each read reached by the container's index
    (:meth:`~engine.ffmpeg_audio.FFmpegSound.seek_near`: a little is decoded before it), where
    that decodes less than the whole file; a container that does not seek is read whole.
    """
    return _measure(path, columns, block_frames, sample_above, reads_per_column, read_frames)[0]


def _measure(path: str | Path, columns: int, block_frames: int = 1 << 16,
             sample_above: float | None = SAMPLE_ABOVE_S, reads_per_column: int = SAMPLE_READS,
             read_frames: int = SAMPLE_FRAMES) -> tuple[np.ndarray, bool, int, int]:
    """:func:`envelope`, whether it was sampled, the file's frames and its rate."""
    p = str(path)
    sampled = False
    check_openable(p)       # the OS's reason (deleted since it was indexed …): libsndfile says "System error"
    if os.path.getsize(p) == 0:
        raise UnreadableAudio(p, "empty: the file is 0 bytes now")
    try:
        with open_sound(p) as f:
            frames = int(f.frames)
            rate = int(f.samplerate)
            if frames <= 0:
                raise UnreadableAudio(p, "empty: the file holds no samples")
            cols = max(1, min(columns, frames))
            edges = np.linspace(0, frames, cols + 1).astype(np.int64)
            if _sampled(f, frames, cols, sample_above, reads_per_column, read_frames):
                try:
                    lo, hi = _sampled_min_max(f, edges, reads_per_column, read_frames)
                    sampled = True
                except Exception as e:      # a seek the format turned down: read it whole
                    log.debug("%s: sampled waveform failed (%s); reading it whole", p, e)
                    f.seek(0)
                    lo, hi = _exact_min_max(f, edges, frames, block_frames)
            else:
                lo, hi = _exact_min_max(f, edges, frames, block_frames)
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
    return np.clip(env, -1.0, 1.0), sampled, frames, rate


def _sampled(f, frames: int, cols: int, sample_above: float | None, reads_per_column: int,
             read_frames: int) -> bool:
    """Whether ``f`` is long enough to sample and can seek to do it cheaply."""
    if sample_above is None or reads_per_column <= 0 or read_frames <= 0:
        return False
    if frames <= sample_above * max(1, int(f.samplerate)):
        return False
    if callable(getattr(f, "seek_near", None)):     # FFmpegSound: by its index, decoding a little before each read
        near = f.near_frames()
        return near is not None and cols * reads_per_column * (read_frames + near) < frames
    if cols * reads_per_column * read_frames >= frames:     # sampling would read it all anyway
        return False
    seekable = getattr(f, "seekable", None)
    try:
        return bool(seekable()) if callable(seekable) else False
    except Exception as e:          # libsndfile's never raises; were another reader's to, read it whole
        log.debug("%s: cannot tell whether it seeks (%s); reading it whole", getattr(f, "name", "?"), e)
        return False


def _exact_min_max(f, edges: np.ndarray, frames: int, block_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Every sample's column min/max, reading ``block_frames`` at a time from the current place
    (the start)."""
    cols = edges.size - 1
    lo = np.full(cols, np.inf, np.float32)
    hi = np.full(cols, -np.inf, np.float32)
    pos = 0
    while pos < frames:
        data = f.read(block_frames, dtype="float32", always_2d=True)
        if data.shape[0] == 0:
            break
        _fold(lo, hi, edges, pos, downmix(data))
        pos += data.shape[0]
    return lo, hi


def _fold(lo: np.ndarray, hi: np.ndarray, edges: np.ndarray, pos: int, mono: np.ndarray) -> None:
    """Fold ``mono`` (frames ``pos``… of the file) into the columns' min/max: one reduction per
    column the block touches (samples past the last edge count in the last column)."""
    cols = lo.size
    n = mono.size
    if n == 0:
        return
    first = int(np.searchsorted(edges, pos, side="right")) - 1
    inner = edges[(edges > pos) & (edges < pos + n)] - pos     # where the next columns begin
    starts = np.concatenate([[0], inner]).astype(np.intp)
    which = np.clip(np.arange(first, first + starts.size), 0, cols - 1)
    np.minimum.at(lo, which, np.minimum.reduceat(mono, starts))
    np.maximum.at(hi, which, np.maximum.reduceat(mono, starts))


def _sampled_min_max(f, edges: np.ndarray, reads_per_column: int,
                     read_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Column min/max from ``reads_per_column`` reads of ``read_frames`` frames spread evenly
    under each column (in file order, so the seeks only go forward)."""
    cols = edges.size - 1
    lo = np.full(cols, np.inf, np.float32)
    hi = np.full(cols, -np.inf, np.float32)
    a, b = edges[:-1, None].astype(np.float64), edges[1:, None].astype(np.float64)
    centres = a + (b - a) * (np.arange(reads_per_column)[None, :] + 0.5) / reads_per_column
    starts = np.clip(np.round(centres - read_frames / 2), a, np.maximum(a, b - read_frames)).astype(np.int64)
    for c in range(cols):
        for at in np.unique(starts[c]):
            at = _jump(f, int(at))
            n = int(min(read_frames, edges[c + 1] - at))
            if n <= 0:
                continue
            data = f.read(n, dtype="float32", always_2d=True)
            if data.shape[0] == 0:
                continue
            mono = downmix(data)
            lo[c] = min(lo[c], mono.min())
            hi[c] = max(hi[c], mono.max())
    return lo, hi


def _jump(f, frame: int) -> int:
    """Move ``f`` to ``frame`` for a read of its waveform, and say which frame it is at: a file
    FFmpeg reads by its container's index (its ``seek_near``: at or just past ``frame``), any
    other by its seek."""
    near = getattr(f, "seek_near", None)
    if callable(near):
        return int(near(frame))
    f.seek(frame)
    return frame


class _Envelope(NamedTuple):
    env: np.ndarray             # (columns, 2), read-only
    exact: np.ndarray | None    # per column, whether every sample counted (None: all of them)
    frames: int
    rate: int


def file_envelope(path: str | Path, columns: int = 320, span: tuple[float, float] | None = None) -> np.ndarray:
    """:func:`envelope` of ``path``, kept for the process per file (its path, size, modification
    time and inode, so a changed file is read again): every moment of one file draws on the
    same envelope, read once. Read-only.

    ``span`` (seconds) is the moment the card points at: where a long file was sampled, the
    columns under it (up to :data:`REFINE_MAX_S` of audio) are read in full once, so a short
    loud event there shows even if the sampling stepped over it, and kept as read. (Two
    sessions asking for a new file at once may both read it; the envelope is the same.)"""
    p = str(path)
    try:
        st = os.stat(p)
        key = (p, st.st_size, st.st_mtime_ns, st.st_ino, columns)
    except OSError:
        return envelope(p, columns=columns)          # says why in UnreadableAudio's words
    with _CACHE_LOCK:
        entry = _CACHE.get(key)
        if entry is not None:
            _CACHE.move_to_end(key)
    if entry is None:
        env, sampled, frames, rate = _measure(p, columns, sample_above=SAMPLE_ABOVE_S,
                                              reads_per_column=SAMPLE_READS, read_frames=SAMPLE_FRAMES)
        env.flags.writeable = False
        entry = _Envelope(env, np.zeros(columns, bool) if sampled else None, frames, rate)
        _remember(key, entry)
    if span is not None and entry.exact is not None:
        entry = _refine(p, key, entry, span)
    return entry.env


def _remember(key: tuple, entry: _Envelope) -> None:
    with _CACHE_LOCK:
        _CACHE[key] = entry
        _CACHE.move_to_end(key)
        while len(_CACHE) > CACHE_FILES:
            _CACHE.popitem(last=False)


def _refine(p: str, key: tuple, entry: _Envelope, span: tuple[float, float]) -> _Envelope:
    """``entry`` with the sampled columns under ``span`` (seconds) read in full."""
    cols = entry.env.shape[0]
    edges = np.linspace(0, entry.frames, cols + 1).astype(np.int64)
    a = int(np.clip(span[0] * entry.rate, 0, entry.frames))
    b = int(np.clip(span[1] * entry.rate, 0, entry.frames))
    first = int(np.clip(np.searchsorted(edges, a, side="right") - 1, 0, cols - 1))
    last = int(np.clip(np.searchsorted(edges, max(a, b - 1), side="right") - 1, first, cols - 1))
    while last > first and edges[last + 1] - edges[first] > REFINE_MAX_S * entry.rate:
        last -= 1
    todo = np.flatnonzero(~entry.exact[first:last + 1]) + first
    if todo.size == 0 or edges[last + 1] - edges[first] > REFINE_MAX_S * entry.rate:
        return entry
    lo = np.full(cols, np.inf, np.float32)
    hi = np.full(cols, -np.inf, np.float32)
    c0, c1 = int(todo[0]), int(todo[-1])
    try:
        with open_sound(p) as f:
            pos, stop = _jump(f, int(edges[c0])), int(edges[c1 + 1])
            while pos < stop:
                data = f.read(min(1 << 16, stop - pos), dtype="float32", always_2d=True)
                if data.shape[0] == 0:
                    break
                _fold(lo, hi, edges, pos, downmix(data))
                pos += data.shape[0]
    except Exception as e:                  # the sampled columns still stand
        log.debug("%s: cannot read the span's columns in full (%s)", p, e)
        return entry
    done = np.arange(c0, c1 + 1)
    done = done[np.isfinite(lo[done])]
    env = entry.env.copy()
    env[done, 0] = np.clip(lo[done], -1.0, 1.0)
    env[done, 1] = np.clip(hi[done], -1.0, 1.0)
    env.flags.writeable = False
    exact = entry.exact.copy()
    exact[done] = True
    entry = _Envelope(env, exact, entry.frames, entry.rate)
    _remember(key, entry)
    return entry


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
    highlighted: there is nothing to point at. The file's envelope is kept per file
    (:func:`file_envelope`): another moment of it costs the drawing, and for a sampled long
    file a read of the columns under the new moment.
    """
    moment = (start, end) if start is not None and end is not None else None
    env = file_envelope(path, columns=width, span=moment)
    span = None
    if start is not None and end is not None and duration > 0:
        if start > 0.02 * duration or end < 0.98 * duration:
            span = (start / duration, end / duration)
    return render_png(env, height=height, highlight=span,
                      marks=[at / duration for at in marks] if duration > 0 else ())
