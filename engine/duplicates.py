"""Files an index holds more than once: the same recording under another name, in another
format, at another gain, sample rate or bit rate.

An embedding says what a sound is, not which recording it is: two takes of a door slam can be
as close in the model's space as a WAV and its MP3. So the stored vectors only propose
candidates (files of about the same duration whose mean vectors are close, compared within a
duration window so 40,000 files never meet pairwise), and every candidate pair is confirmed on
the audio: both files decoded at :data:`RATE` and aligned to the sample by cross-correlating
their first :data:`ALIGN_SECONDS` within :data:`MAX_SHIFT_SECONDS` (so encoder delay and a
trimmed lead-in do not count; a few milliseconds off would cost a noisy sound 1–2 dB below),
then turned into level maps (dB in :data:`BANDS` bands every :data:`HOP` samples) and compared
at the best constant gain (so a quieter copy does not count). Pairs whose maps differ by at
most ``max_difference_db`` (RMS) join one group. Byte-identical groups are marked as such.

A file that is only part of another (an edit, a loop cut from a longer take) is not found: its
duration differs. Sounds are compared up to 8 kHz: a 3 kHz square wave and a 3 kHz triangle
wave, whose harmonics start at 9 kHz, are the same there.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from engine.audio import decode
from engine.errors import UnreadableAudio

log = logging.getLogger(__name__)

#: decode rate for the comparison (what every codec keeps: up to 8 kHz)
RATE = 16000
#: analysis frame and hop (samples at RATE): 64 ms frames every 16 ms
FRAME, HOP = 1024, 256
#: log-spaced bands from 60 Hz to 8 kHz
BANDS = 32
#: largest shift between two files (seconds), found on their first ALIGN_SECONDS
MAX_SHIFT_SECONDS, ALIGN_SECONDS = 0.5, 20.0
#: decoded audio kept for the pairs still to come (samples at RATE: 128 MB)
CACHE_SAMPLES = 32_000_000
#: durations of a pair may differ by this much (seconds), or DURATION_SHARE of the longer
DURATION_SLACK, DURATION_SHARE = 0.15, 0.02
#: level maps are floored this far below a file's loudest cell (dB)
FLOOR_DB = -60.0
#: defaults: candidate threshold on the mean vectors' cosine, and the largest level difference
#: (dB RMS) of a duplicate. Indexed with soundsift-base, the 1,973 clips of the training corpus
#: give 9,804 pairs at cosine 0.8: 84 differ by at most 0.8 dB (copies of a sample in two drum
#: kits, renders with one seed), one by 0.91 dB, the rest by more than 1 dB (other takes,
#: velocity layers, other hits); 84 of the 85 under 1 dB have cosine 0.9 or more (79 of 84
#: with soundsift-fast; benchmarks/duplicates.py)
MIN_COSINE, MAX_DIFFERENCE_DB = 0.9, 1.0


@dataclass
class DuplicateGroup:
    """Files holding the same recording; ``difference_db``: the largest level difference of a
    confirmed pair among them (dB RMS, 0 for identical audio)."""

    paths: list[str]
    durations: list[float]
    difference_db: float
    identical: bool          # every file has the same bytes

    def to_dict(self) -> dict[str, Any]:
        return {"paths": self.paths, "durations": self.durations, "difference_db": round(self.difference_db, 3),
                "identical": self.identical}


@dataclass
class DuplicateReport:
    """The groups found, closest first, and what it took to find them."""

    groups: list[DuplicateGroup]
    files: int                       # files compared
    candidates: int                  # pairs proposed by the vectors
    confirmed: int                   # pairs the audio confirmed
    unreadable: list[UnreadableAudio] = field(default_factory=list)


def longest_match(duration: np.ndarray | float) -> np.ndarray | float:
    """The longest duration a file of ``duration`` seconds is compared with (the slack)."""
    return duration + np.maximum(DURATION_SLACK, DURATION_SHARE * duration)


def candidate_pairs(vectors: np.ndarray, durations: np.ndarray, min_cosine: float = MIN_COSINE
                    ) -> list[tuple[int, int, float]]:
    """Pairs (i, j, cosine), i < j, of rows whose durations are within the slack and whose unit
    vectors have at least ``min_cosine``. Files are swept in order of duration, each against
    the files that are at most the slack longer."""
    order = np.argsort(durations, kind="stable")
    d = np.asarray(durations, np.float64)[order]
    v = np.asarray(vectors, np.float32)[order]
    reach = np.searchsorted(d, longest_match(d), side="right")
    out: list[tuple[int, int, float]] = []
    for a in range(len(d)):
        if reach[a] <= a + 1:
            continue
        cos = v[a + 1:reach[a]] @ v[a]
        for b in np.flatnonzero(cos >= min_cosine):
            i, j = int(order[a]), int(order[a + 1 + b])
            out.append((min(i, j), max(i, j), float(cos[b])))
    return out


def level_map(x: np.ndarray) -> np.ndarray:
    """Levels of ``x`` (mono at RATE) as frames × BANDS: each band's energy in dB below the
    loudest cell, floored at :data:`FLOOR_DB`. Frames are analysed 4,096 at a time, so an hour
    of audio needs tens of MB, not GB."""
    if len(x) < FRAME:
        x = np.pad(x, (0, FRAME - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP]
    window = np.hanning(FRAME).astype(np.float32)
    freqs = np.fft.rfftfreq(FRAME, 1.0 / RATE)
    band = np.searchsorted(np.geomspace(60.0, RATE / 2, BANDS + 1), freqs, side="right") - 1
    to_bands = (band[:, None] == np.arange(BANDS)[None, :]).astype(np.float64)     # bins × bands
    energy = np.concatenate([(np.abs(np.fft.rfft(frames[i:i + 4096] * window, axis=1)) ** 2) @ to_bands
                             for i in range(0, len(frames), 4096)])
    level = 10.0 * np.log10(energy / max(float(energy.max()), 1e-20) + 1e-30)
    return np.maximum(level, FLOOR_DB).astype(np.float32)


def best_lag(x: np.ndarray, y: np.ndarray) -> int:
    """The shift (samples, within MAX_SHIFT_SECONDS) at which ``x[lag:]`` lines up best with
    ``y`` (negative: ``y[-lag:]`` with ``x``), by the largest |cross-correlation| of their first
    ALIGN_SECONDS (polarity does not count)."""
    shift = int(MAX_SHIFT_SECONDS * RATE)
    a = np.asarray(x[:int(ALIGN_SECONDS * RATE) + shift], np.float64)
    b = np.asarray(y[:int(ALIGN_SECONDS * RATE) + shift], np.float64)
    n = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    corr = np.fft.irfft(np.fft.rfft(a, n) * np.conj(np.fft.rfft(b, n)), n)   # corr[k] = Σ a[t + k] b[t]
    lags = np.arange(max(-shift, 1 - len(b)), min(shift, len(a) - 1) + 1)    # where the two overlap
    return int(lags[np.argmax(np.abs(corr[lags % n]))])


def difference_db(x: np.ndarray, y: np.ndarray) -> float:
    """How far two recordings (mono at RATE) are apart: aligned by :func:`best_lag`, the RMS of
    the difference of their level maps in dB once a constant gain is taken out, over the cells
    where either is more than 10 dB above the floor (two silent stretches agree without telling
    anything). 0 for two silent recordings."""
    lag = best_lag(x, y)
    a, b = level_map(x[max(lag, 0):]), level_map(y[max(-lag, 0):])
    m = min(len(a), len(b))
    a, b = a[:m], b[:m]
    heard = np.maximum(a, b) > FLOOR_DB + 10.0
    if not heard.any():
        return 0.0
    d = (a - b)[heard]
    return float(np.sqrt(((d - d.mean()) ** 2).mean()))


def find_duplicates(paths: list[str], vectors: np.ndarray, durations: np.ndarray, sizes: np.ndarray,
                    min_cosine: float = MIN_COSINE, max_difference_db: float = MAX_DIFFERENCE_DB,
                    progress: Callable[[int, int], None] | None = None) -> DuplicateReport:
    """Groups of ``paths`` holding the same recording (see the module doc). ``vectors`` are the
    files' unit mean vectors; ``progress(done, total)`` is called per candidate pair. A file
    that cannot be decoded is reported once and left out of every pair."""
    pairs = candidate_pairs(vectors, durations, min_cosine)
    decoded: OrderedDict[int, np.ndarray] = OrderedDict()    # least recently used first
    failed: set[int] = set()
    unreadable: list[UnreadableAudio] = []

    def audio(i: int) -> np.ndarray | None:
        if i in failed:
            return None
        if i in decoded:
            decoded.move_to_end(i)
            return decoded[i]
        try:
            x = decode(paths[i], RATE)
        except UnreadableAudio as e:
            log.warning("%s", e)
            unreadable.append(e)
            failed.add(i)
            return None
        decoded[i] = x
        while sum(len(v) for v in decoded.values()) > CACHE_SAMPLES and len(decoded) > 2:
            decoded.popitem(last=False)
        return x

    parent = list(range(len(paths)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    scores: dict[tuple[int, int], float] = {}
    for done, (i, j, _cos) in enumerate(pairs, 1):
        a, b = audio(i), audio(j)
        if a is not None and b is not None:
            score = difference_db(a, b)
            if score <= max_difference_db:
                scores[(i, j)] = score
                parent[root(j)] = root(i)
        if progress is not None:
            progress(done, len(pairs))
    grouped: dict[int, list[int]] = {}
    for k in sorted({k for pair in scores for k in pair}, key=lambda k: paths[k]):
        grouped.setdefault(root(k), []).append(k)
    worst: dict[int, float] = {}
    for (i, _j), score in scores.items():
        worst[root(i)] = max(worst.get(root(i), 0.0), score)
    groups = [DuplicateGroup([paths[k] for k in files], [float(durations[k]) for k in files], worst[r],
                             _same_bytes([paths[k] for k in files], [int(sizes[k]) for k in files]))
              for r, files in grouped.items()]
    groups.sort(key=lambda g: (g.difference_db, g.paths))
    return DuplicateReport(groups, len(paths), len(pairs), len(scores), unreadable)


def copies_of(query: str, candidates: Sequence[tuple[str, float, float]],
              min_cosine: float = MIN_COSINE, max_difference_db: float = MAX_DIFFERENCE_DB) -> dict[str, float]:
    """Which of ``candidates`` — (path, duration in seconds, cosine to the query), as "more like
    this" results give them — are copies of the audio file ``query``, holding its recording:
    path → level difference (dB). The query file itself is not its own copy. Only candidates at
    ``min_cosine`` or more and of the query's duration (within the slack) are decoded. A
    candidate that cannot be decoded is logged and left out; so is everything when the query
    cannot be (the results stand without the marks)."""
    me = os.path.realpath(query)
    near = [(p, d, cos) for p, d, cos in candidates if os.path.realpath(p) != me]
    if not any(cos >= min_cosine for _, _, cos in near):
        return {}
    try:
        x = decode(query, RATE)
    except UnreadableAudio as e:
        log.warning("%s; its copies are not marked", e)
        return {}
    return _copies_among(x, near, min_cosine, max_difference_db)


def copies_of_waveform(waveform: np.ndarray, sample_rate: int, candidates: Sequence[tuple[str, float, float]],
                       min_cosine: float = MIN_COSINE, max_difference_db: float = MAX_DIFFERENCE_DB
                       ) -> dict[str, float]:
    """:func:`copies_of` for audio in memory (mono, at ``sample_rate``: a clip sent to the HTTP
    API or dropped on the page)."""
    import soxr

    x = np.asarray(waveform, np.float32).reshape(-1)
    if sample_rate != RATE:
        x = soxr.resample(x, sample_rate, RATE).astype(np.float32)
    return _copies_among(x, candidates, min_cosine, max_difference_db)


def _copies_among(x: np.ndarray, candidates: Sequence[tuple[str, float, float]], min_cosine: float,
                  max_difference_db: float) -> dict[str, float]:
    """The candidates (path, duration, cosine) at ``min_cosine`` or more whose audio is ``x``'s
    (mono at RATE) within ``max_difference_db``: path → level difference (dB)."""
    near = [(p, d) for p, d, cos in candidates if cos >= min_cosine]
    length = len(x) / RATE
    out: dict[str, float] = {}
    for path, duration in near:
        if max(duration, length) > longest_match(min(duration, length)):
            continue
        try:
            score = difference_db(x, decode(path, RATE))
        except UnreadableAudio as e:
            log.warning("%s", e)
            continue
        if score <= max_difference_db:
            out[path] = score
    return out


def mark_copies(query: str | None, hits: Sequence[Any],
                copies: Callable[[str | None, list[tuple[str, float, float]]], dict[str, float]] | None = None
                ) -> list[Any]:
    """"More like" ``query`` results (objects with ``path``, ``duration``, ``score``; dataclasses)
    with ``same_recording`` set: True for a copy (:func:`copies_of`, or the ``copies`` function
    given, e.g. a cached one or :func:`copies_of_waveform` for a clip in memory, whose ``query``
    is None), False for another file, None for the query file itself."""
    from dataclasses import replace

    candidates = [(h.path, h.duration, h.score) for h in hits]
    if copies is None:
        if query is None:
            raise ValueError("mark_copies: a clip in memory needs its copies function")
        found = copies_of(query, candidates)
    else:
        found = copies(query, candidates)
    me = os.path.realpath(query) if query is not None else None
    return [replace(h, same_recording=None if me is not None and os.path.realpath(h.path) == me
                    else h.path in found) for h in hits]


def _same_bytes(paths: list[str], sizes: list[int]) -> bool:
    """Whether every file has the same bytes (sizes first, then SHA-256)."""
    if len(set(sizes)) > 1:
        return False
    digests = set()
    for p in paths:
        h = hashlib.sha256()
        try:
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        except OSError as e:
            log.warning("%s: not read to compare bytes (%s)", p, e)
            return False
        digests.add(h.hexdigest())
    return len(digests) == 1
