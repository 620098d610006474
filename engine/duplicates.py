"""Files an index holds more than once: the same recording under another name, in another
format, at another gain, sample rate or bit rate.

An embedding says what a sound is, not which recording it is: two takes of a door slam can be
as close in the model's space as a WAV and its MP3. So the stored vectors only propose
candidates (files of about the same duration whose mean vectors are close, compared within a
duration window so 40,000 files never meet pairwise, each file with at most its :data:`PER_FILE`
closest), and every candidate pair not already joined through others is confirmed on
the audio: both files decoded at :data:`RATE` and aligned to the sample by cross-correlating
their first :data:`ALIGN_SECONDS` within :data:`MAX_SHIFT_SECONDS` (so encoder delay and a
trimmed lead-in do not count; a few milliseconds off would cost a noisy sound 1–2 dB below),
then turned into level maps (dB in :data:`BANDS` bands every :data:`HOP` samples) and compared
at the best constant gain (so a quieter copy does not count). Pairs whose maps differ by at
most ``max_difference_db`` (RMS) join one group, unless either file holds more heard audio
outside the stretch the other covers than :func:`allowed_unmatched` (a longer tone, a beep cut
later; codec padding and added silence are not heard, a trimmed attack is short).
Byte-identical groups are marked as such.

A file that is only part of another (an edit, a loop cut from a longer take) is not found: its
duration differs. Sounds are compared up to 8 kHz: a 3 kHz square wave and a 3 kHz triangle
wave, whose harmonics start at 9 kHz, are the same there.
"""
from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from engine.audio import decode
from engine.errors import InvalidQuery, SoundsiftError, UnreadableAudio
from engine.towers.cache import cached_file_sha256
from engine.wording import count

log = logging.getLogger(__name__)

#: decode rate for the comparison (what every codec keeps: up to 8 kHz)
RATE = 16000
#: analysis frame and hop (samples at RATE): 64 ms frames every 16 ms
FRAME, HOP = 1024, 256
#: log-spaced bands from 60 Hz to 8 kHz
BANDS = 32
#: largest shift between two files (seconds), found on their first ALIGN_SECONDS
MAX_SHIFT_SECONDS, ALIGN_SECONDS = 0.5, 20.0
#: a pair's fixed cost in the progress estimate, as seconds of audio (file opening, FFT set-up)
PAIR_OVERHEAD_SECONDS = 1.0
#: decoded audio and level maps kept for the pairs still to come (a file of 1 s: 70 kB), and
#: the spectra of their heads (1 s: 130 kB; made again in a tenth of a decode's time)
CACHE_BYTES, SPECTRA_BYTES = 512 * 2 ** 20, 256 * 2 ** 20
#: durations of a pair may differ by this much (seconds), or DURATION_SHARE of the longer
DURATION_SLACK, DURATION_SHARE = 0.15, 0.02
#: level maps are floored this far below a file's loudest cell (dB)
FLOOR_DB = -60.0
#: heard audio (1 ms blocks within 50 dB of a file's loudest) that a file may hold outside the
#: stretch the other covers once aligned, as a share of the shorter file's duration (and at most
#: the duration slack): a trimmed attack or lead-in, codec padding and added silence pass; a 150 ms
#: 3 kHz tone against a 60 ms one (90 ms heard, 15 allowed) or a beep cut later does not
#: (benchmarks/short_duplicates.py)
UNMATCHED_SHARE = 0.25
#: the blocks (samples at RATE) in which heard audio is counted
HEARD_BLOCK = 16
#: defaults: candidate threshold on the mean vectors' cosine, and the largest level difference
#: (dB RMS) of a duplicate. Indexed with soundsift-base, the 1,973 clips of the training corpus
#: give 9,804 pairs at cosine 0.8: 84 differ by at most 0.8 dB (copies of a sample in two drum
#: kits, renders with one seed), one by 0.91 dB, the rest by more than 1 dB (other takes,
#: velocity layers, other hits); 84 of the 85 under 1 dB have cosine 0.9 or more (79 of 84
#: with soundsift-fast; benchmarks/duplicates.py). Against re-encodes and edits of 117 of its
#: recordings (benchmarks/same_recording_threshold.py) 1 dB marks 63 % of the copies (resampled
#: to 16 kHz or more, quieter, trimmed: 99 %; MP3 ≥ 96 kbps: 91–97 %; 32 kbps: 7 %, median
#: 2.3 dB) and 18 of 863 negatives (25-cent detunes, a clip 20 dB under, two other takes);
#: 2.5 dB would mark 87 % and 106. No threshold parts them, nor one by duration or codec, nor a
#: higher floor: kept at 1 dB.
MIN_COSINE, MAX_DIFFERENCE_DB = 0.9, 1.0
#: each file is compared with at most this many others: its closest pairs by cosine (a pair is
#: kept when it is among either file's closest). Unrelated generated sounds can all pass 0.9 (a
#: 40,000-file test library, benchmarks/commands_at_scale.py, gives 35 million pairs, hours of
#: decoding; 428,974 under the cap); a copy ranks first.
PER_FILE = 16
#: the largest per-file cap whose highest cosines are tracked file by file (closest_candidates)
MOST_TRACKED = 256


@dataclass
class DuplicateGroup:
    """Files holding the same recording; ``difference_db``: the largest level difference of a
    confirmed pair among them (dB RMS, 0 for identical audio)."""

    paths: list[str]
    durations: list[float]
    difference_db: float
    identical: bool          # every file has the same bytes
    keep: str | None = None  # the copy to keep (engine.keeper.best_copy: lossless, most bits …, an unmarked name)
    formats: list[str] = field(default_factory=list)   # per path: "WAV 24-bit 96 kHz 2 ch" ("" unread)
    same_file: list[list[str]] = field(default_factory=list)  # paths naming one file on disk (hard links)

    def __post_init__(self) -> None:
        if not self.formats:            # not described yet: one empty entry per path, for renderers
            self.formats = [""] * len(self.paths)

    def is_link(self, path: str) -> bool:
        """Whether ``path`` names the same file on disk as another path of the group (a hard
        link): removing that name frees no space."""
        return any(path in names for names in self.same_file)

    def to_dict(self) -> dict[str, Any]:
        return {"paths": self.paths, "durations": self.durations, "difference_db": round(self.difference_db, 3),
                "identical": self.identical, "keep": self.keep, "formats": self.formats,
                "same_file": self.same_file}


@dataclass
class DuplicateReport:
    """The groups found, closest first, and what it took to find them."""

    groups: list[DuplicateGroup]
    files: int                       # files compared
    candidates: int                  # pairs proposed by the vectors (at most per_file per file)
    confirmed: int                   # pairs the audio confirmed
    unreadable: list[UnreadableAudio] = field(default_factory=list)
    compared: int = 0                # candidate pairs gone through (all unless interrupted)
    left_out: int = 0                # pairs over the cosine threshold left out by per_file
    interrupted: bool = False        # Ctrl-C: the groups are those confirmed before it


def longest_match(duration: np.ndarray | float) -> np.ndarray | float:
    """The longest duration a file of ``duration`` seconds is compared with (the slack)."""
    return duration + np.maximum(DURATION_SLACK, DURATION_SHARE * duration)


def _sweep(vectors: np.ndarray, durations: np.ndarray, min_cosine: float
           ) -> tuple[np.ndarray, Iterator[tuple[int, np.ndarray, np.ndarray]]]:
    """The order of the rows by duration, and per row ``a`` of that order that has any, its pairs
    with the rows after it within the slack at ``min_cosine`` or more: (a, their positions in the
    order, cosines). What every candidate function sweeps, so they see the same cosines."""
    order = np.argsort(durations, kind="stable")
    d = np.asarray(durations, np.float64)[order]
    v = np.asarray(vectors, np.float32)[order]
    reach = np.searchsorted(d, longest_match(d), side="right")

    def pairs() -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        for a in range(len(d)):
            if reach[a] <= a + 1:
                continue
            cos = v[a + 1:reach[a]] @ v[a]
            hit = np.flatnonzero(cos >= min_cosine)
            if len(hit):
                yield a, a + 1 + hit, cos[hit].astype(np.float32)
    return order, pairs()


def candidate_arrays(vectors: np.ndarray, durations: np.ndarray, min_cosine: float = MIN_COSINE
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`candidate_pairs` as three arrays (i, j, cosine), in the order they are compared
    (by the duration of the shorter file)."""
    order, swept = _sweep(vectors, durations, min_cosine)
    firsts, seconds, cosines = [], [], []
    for a, others, cos in swept:
        firsts.append(np.full(len(others), order[a], np.int64))
        seconds.append(order[others].astype(np.int64))
        cosines.append(cos)
    return _joined(firsts, seconds, cosines)


def _joined(firsts: list[np.ndarray], seconds: list[np.ndarray], cosines: list[np.ndarray]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Swept pairs as (i, j, cosine) arrays, i < j."""
    if not firsts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    x, y, c = np.concatenate(firsts), np.concatenate(seconds), np.concatenate(cosines)
    return np.minimum(x, y), np.maximum(x, y), c


def closest_candidates(vectors: np.ndarray, durations: np.ndarray, per_file: int, min_cosine: float = MIN_COSINE
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``closest_per_file(*candidate_arrays(vectors, durations, min_cosine), per_file)``, the same
    pairs in the same order, and how many pairs passed ``min_cosine`` in all, without holding
    them all (40,000 generated sounds: 35 million pairs, 4.5 GB): a first sweep keeps each file's
    ``per_file`` highest cosines, a second only the pairs at or above either file's lowest of them
    (its rank among them is then what it is among all its pairs). A cap over
    :data:`MOST_TRACKED` (those cosines are a float per cap and file) takes all pairs instead."""
    if per_file > MOST_TRACKED:
        i, j, c = candidate_arrays(vectors, durations, min_cosine)
        return (*closest_per_file(i, j, c, per_file), len(i))
    order, swept = _sweep(vectors, durations, min_cosine)
    best = np.full((len(order), per_file), -np.inf, np.float32)    # per position: its highest cosines
    every = 0
    for a, others, cos in swept:
        every += len(cos)
        mine = np.concatenate([best[a], cos])
        best[a] = mine[np.argpartition(-mine, per_file - 1)[:per_file]] if len(mine) > per_file else mine
        rows = best[others]
        low = rows.argmin(axis=1)
        higher = cos > rows[np.arange(len(others)), low]
        best[others[higher], low[higher]] = cos[higher]
    lowest = best.min(axis=1)                # the per_file-th highest cosine (-inf: fewer pairs)
    firsts, seconds, cosines = [], [], []
    for a, others, cos in _sweep(vectors, durations, min_cosine)[1]:
        near = (cos >= lowest[a]) | (cos >= lowest[others])
        if near.any():
            firsts.append(np.full(int(near.sum()), order[a], np.int64))
            seconds.append(order[others[near]].astype(np.int64))
            cosines.append(cos[near])
    return (*closest_per_file(*_joined(firsts, seconds, cosines), per_file), every)


def closest_per_file(i: np.ndarray, j: np.ndarray, cosine: np.ndarray, per_file: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs (i, j, cosine) that are among the ``per_file`` highest cosines of i's pairs or
    of j's, in their order (a copy's cosine is about 1, so it ranks first; files of one recording
    that all pass each other still join one group)."""
    if not len(cosine):
        return i, j, cosine
    rank = _rank_within(np.concatenate([i, j]), np.concatenate([cosine, cosine]))   # among all of a file's pairs
    keep = (rank[:len(cosine)] < per_file) | (rank[len(cosine):] < per_file)
    return i[keep], j[keep], cosine[keep]


def _rank_within(owner: np.ndarray, cosine: np.ndarray) -> np.ndarray:
    """Each pair's rank among the pairs of the same ``owner`` file, highest cosine first."""
    order = np.lexsort((-cosine, owner))
    sorted_owner = owner[order]
    starts = np.flatnonzero(np.r_[True, sorted_owner[1:] != sorted_owner[:-1]])
    ranks_sorted = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    ranks = np.empty(len(order), np.int64)
    ranks[order] = ranks_sorted
    return ranks


def candidate_pairs(vectors: np.ndarray, durations: np.ndarray, min_cosine: float = MIN_COSINE
                    ) -> list[tuple[int, int, float]]:
    """Pairs (i, j, cosine), i < j, of rows whose durations are within the slack and whose unit
    vectors have at least ``min_cosine``. Files are swept in order of duration, each against
    the files that are at most the slack longer."""
    i, j, c = candidate_arrays(vectors, durations, min_cosine)
    return [(int(a), int(b), float(x)) for a, b, x in zip(i, j, c)]


def level_map(x: np.ndarray) -> np.ndarray:
    """Levels of ``x`` (mono at RATE) as frames × BANDS: each band's energy in dB below the
    loudest cell, floored at :data:`FLOOR_DB`. Frames are analysed 4,096 at a time, so an hour
    of audio needs tens of MB, not GB."""
    if len(x) < FRAME:
        x = np.pad(x, (0, FRAME - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, FRAME)[::HOP]
    window, edges, filled = _analysis()
    energy = np.concatenate([_band_sums(np.abs(np.fft.rfft(frames[i:i + 4096] * window, axis=1)) ** 2,
                                        edges, filled) for i in range(0, len(frames), 4096)])
    level = 10.0 * np.log10(energy / max(float(energy.max()), 1e-20) + 1e-30)
    return np.maximum(level, FLOOR_DB).astype(np.float32)


def _band_sums(power: np.ndarray, edges: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """Frames × bins ``power`` summed per band (bins ``edges[b]`` to ``edges[b + 1]``) in float64;
    0 in a band with no bin. The same sums as a product with a bins × bands 0/1 matrix, to the
    bit, without BLAS: its threads made most of a map's time on a busy machine (3 s of audio:
    13 ms a map at load 4 on 2 cores, 3 ms in one thread; the sums 0.1 ms)."""
    return np.add.reduceat(power, edges, axis=1, dtype=np.float64)[:, :-1] * filled


@lru_cache(maxsize=1)
def _analysis() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`level_map`'s window, where each band's bins start (and the last ends) and which
    bands hold a bin, made once (read-only)."""
    window = np.hanning(FRAME).astype(np.float32)
    freqs = np.fft.rfftfreq(FRAME, 1.0 / RATE)
    band = np.searchsorted(np.geomspace(60.0, RATE / 2, BANDS + 1), freqs, side="right") - 1
    edges = np.searchsorted(band, np.arange(BANDS + 1), side="left")    # bins of band b: edges[b]:edges[b + 1]
    filled = (edges[1:] > edges[:-1]).astype(np.float64)                 # (the Nyquist bin is past the last)
    window.flags.writeable = edges.flags.writeable = filled.flags.writeable = False
    return window, edges, filled


def best_lag(x: np.ndarray, y: np.ndarray) -> int:
    """The shift (samples, within MAX_SHIFT_SECONDS) at which ``x[lag:]`` lines up best with
    ``y`` (negative: ``y[-lag:]`` with ``x``), by the largest |cross-correlation| of their first
    ALIGN_SECONDS (polarity does not count)."""
    n = _fft_size(len(x), len(y))
    return _lag_of(_head_spectrum(x, n), _head_spectrum(y, n), n, len(x), len(y))


def _head(length: int) -> int:
    """How many samples of a recording of ``length`` the alignment looks at."""
    return min(length, int(ALIGN_SECONDS * RATE) + int(MAX_SHIFT_SECONDS * RATE))


def _fft_size(len_x: int, len_y: int) -> int:
    """The FFT size :func:`best_lag` uses on recordings of these lengths: the smallest power of
    two at which the circular correlation holds no wrapped-around term at the lags it looks at
    (within MAX_SHIFT_SECONDS), so its peak is the linear correlation's. Two heads longer than
    the shift need their longer one's length plus the shift, not the sum of both (1.5 s files:
    32,768 instead of 65,536); powers of two keep a file's spectrum shared by its pairs."""
    shift = int(MAX_SHIFT_SECONDS * RATE)
    la, lb = _head(len_x), _head(len_y)
    need = max(la + min(shift, lb - 1), lb + min(shift, la - 1), 2)
    return 1 << (need - 1).bit_length()


def _head_spectrum(x: np.ndarray, n: int) -> np.ndarray:
    return np.fft.rfft(np.asarray(x[:_head(len(x))], np.float64), n)


def _lag_of(fx: np.ndarray, fy: np.ndarray, n: int, len_x: int, len_y: int) -> int:
    """:func:`best_lag` from the two heads' spectra (size ``n``)."""
    shift = int(MAX_SHIFT_SECONDS * RATE)
    la, lb = _head(len_x), _head(len_y)
    corr = np.fft.irfft(fx * np.conj(fy), n)              # corr[k] = Σ a[t + k] b[t]; lag −k at corr[n − k]
    low, high = max(-shift, 1 - lb), min(shift, la - 1)   # the lags where the two overlap, in order
    return int(np.argmax(np.abs(np.concatenate((corr[n + low:], corr[:high + 1]))))) + low


def difference_db(x: np.ndarray, y: np.ndarray) -> float:
    """How far two recordings (mono at RATE) are apart: aligned by :func:`best_lag`, the RMS of
    the difference of their level maps in dB once a constant gain is taken out, over the cells
    where either is more than 10 dB above the floor (two silent stretches agree without telling
    anything). 0 for two silent recordings; infinite for a silent one and one that is heard
    (the gain taken out would otherwise absorb all of a steady tone's difference from silence),
    and for two files one of which holds more heard audio outside the stretch both cover than
    :func:`allowed_unmatched` (the maps are compared over that stretch only)."""
    lag = best_lag(x, y)
    if _unmatched(x, y, lag):
        return float("inf")
    return _map_difference(level_map(x[max(lag, 0):]), level_map(y[max(-lag, 0):]))


def unmatched_seconds(x: np.ndarray, y: np.ndarray, lag: int) -> float:
    """The larger of the two files' heard seconds outside the stretch both cover when aligned at
    ``lag`` (as :func:`best_lag` gives it): what the level maps, compared over that stretch only,
    do not see (a 150 ms tone's last 90 ms against a 60 ms one). Heard: a :data:`HEARD_BLOCK`
    whose energy is more than ``FLOOR_DB + 10`` dB (−50 dB) relative to the file's loudest."""
    a, b = max(lag, 0), max(-lag, 0)
    m = max(min(len(x) - a, len(y) - b), 0)
    return max(_heard_seconds(x, a, a + m), _heard_seconds(y, b, b + m))


def _heard_seconds(x: np.ndarray, start: int, end: int) -> float:
    """Seconds of heard blocks of ``x`` before ``start`` and from ``end`` on."""
    if start <= 0 and end >= len(x):
        return 0.0
    n = len(x) // HEARD_BLOCK * HEARD_BLOCK
    blocks = np.concatenate([_block_energy(x[i:min(i + 2 ** 20, n)]) for i in range(0, n, 2 ** 20)]
                            or [np.zeros(0)])
    if not len(blocks) or blocks.max() <= 0.0:
        return 0.0
    heard = blocks > blocks.max() * 10.0 ** ((FLOOR_DB + 10.0) / 10.0)
    first, last = start // HEARD_BLOCK, -(-end // HEARD_BLOCK)
    return float(heard[:first].sum() + heard[last:].sum()) * HEARD_BLOCK / RATE


def _block_energy(x: np.ndarray) -> np.ndarray:
    """Mean square of ``x`` per :data:`HEARD_BLOCK` (its length a multiple of it), in float64."""
    c = np.asarray(x, np.float64).reshape(-1, HEARD_BLOCK)
    return np.einsum("ij,ij->i", c, c) / HEARD_BLOCK


def allowed_unmatched(shorter: float) -> float:
    """The heard seconds a file may hold outside its pair's stretch when the shorter of the two
    lasts ``shorter`` seconds (:data:`UNMATCHED_SHARE` of it, at most the duration slack)."""
    return float(min(UNMATCHED_SHARE * shorter, longest_match(shorter) - shorter))


def _unmatched(x: np.ndarray, y: np.ndarray, lag: int) -> bool:
    """Whether either file holds more heard audio outside the other than :func:`allowed_unmatched`."""
    return unmatched_seconds(x, y, lag) > allowed_unmatched(min(len(x), len(y)) / RATE)


def _map_difference(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`difference_db` of two aligned level maps."""
    m = min(len(a), len(b))
    a, b = a[:m], b[:m]
    heard_a, heard_b = a > FLOOR_DB + 10.0, b > FLOOR_DB + 10.0
    heard = heard_a | heard_b
    if not heard.any():
        return 0.0
    if not (heard_a.any() and heard_b.any()):      # silence against a sound: not one recording
        return float("inf")
    d = (a - b)[heard]
    return float(np.sqrt(((d - d.mean()) ** 2).mean()))


class _LeastRecentlyUsed:
    """Arrays by key, the least recently used dropped first once they hold more than ``limit``
    bytes (the last ``keep`` always stay: a pair's own)."""

    def __init__(self, limit: int, keep: int = 4):
        self.limit, self.keep = limit, keep
        self.kept: OrderedDict[Any, np.ndarray] = OrderedDict()
        self.bytes = 0

    def get(self, key: Any, make: Callable[[], np.ndarray]) -> np.ndarray:
        if key in self.kept:
            self.kept.move_to_end(key)
            return self.kept[key]
        value = make()
        self.kept[key] = value
        self.bytes += value.nbytes
        while self.bytes > self.limit and len(self.kept) > self.keep:
            self.bytes -= self.kept.popitem(last=False)[1].nbytes
        return value

    def drop(self, key: Any) -> None:
        """Forget ``key`` (nothing if it is not kept)."""
        value = self.kept.pop(key, None)
        if value is not None:
            self.bytes -= value.nbytes


class _Recordings:
    """The files' audio at RATE, decoded once while pairs still need them, with what every pair
    of a file would compute again: its level map from the first sample and its head's spectrum
    (per FFT size). Audio and maps (:data:`CACHE_BYTES`) are kept apart from the spectra
    (:data:`SPECTRA_BYTES`, complex64), which are larger but quicker to make again than a file
    is to decode. ``uses``: how many pairs each file is in; once the last of them is done
    (:meth:`done`) all of the file is let go, so the budgets hold the files still to come and
    a file is decoded again only when those alone exceed them (40,000 generated sounds: once
    each; a budget only over the least recently used had 4 % decoded twice or three times and
    made spectra 275,000 times for 40,000 files). A file that cannot be decoded is reported once
    (``unreadable``) and is None from then on."""

    def __init__(self, paths: list[str], uses: np.ndarray, say_failures: bool = True):
        self.paths, self.say_failures = paths, say_failures
        self.heard = _LeastRecentlyUsed(CACHE_BYTES)
        self.spectra = _LeastRecentlyUsed(SPECTRA_BYTES)
        self.failed: set[int] = set()
        self.unreadable: list[UnreadableAudio] = []
        self.left = np.array(uses, np.int64)           # pairs still to come, per file
        self.sizes: dict[int, set[int]] = {}           # FFT sizes a file's head spectrum was made at

    def audio(self, i: int) -> np.ndarray | None:
        if i in self.failed:
            return None
        try:
            return self.heard.get(("audio", i), lambda: decode(self.paths[i], RATE))
        except UnreadableAudio as e:
            if self.say_failures:
                log.warning("%s", e)
            self.unreadable.append(e)
            self.failed.add(i)
            return None

    def spectrum(self, i: int, x: np.ndarray, n: int) -> np.ndarray:
        """File i's head spectrum at FFT size ``n`` (``x``: its audio)."""
        self.sizes.setdefault(i, set()).add(n)
        return self.spectra.get((i, n), lambda: _head_spectrum(x, n).astype(np.complex64))

    def difference(self, i: int, j: int) -> float | None:
        """:func:`difference_db` of files i and j; None when either cannot be decoded."""
        x, y = self.audio(i), self.audio(j)
        if x is None or y is None:
            return None
        n = _fft_size(len(x), len(y))
        lag = _lag_of(self.spectrum(i, x, n), self.spectrum(j, y, n), n, len(x), len(y))
        if _unmatched(x, y, lag):
            return float("inf")
        a = self.heard.get(("map", i), lambda: level_map(x)) if lag <= 0 else level_map(x[lag:])
        b = self.heard.get(("map", j), lambda: level_map(y)) if lag >= 0 else level_map(y[-lag:])
        return _map_difference(a, b)

    def done(self, i: int, j: int) -> None:
        """The pair (i, j) is through (compared or not needed): a file none of whose pairs is
        left is let go."""
        for k in (i, j):
            self.left[k] -= 1
            if self.left[k] <= 0:
                self.heard.drop(("audio", k))
                self.heard.drop(("map", k))
                for n in self.sizes.pop(k, ()):
                    self.spectra.drop((k, n))


class _Pace:
    """Logs how many pairs are compared, then every ``every`` seconds how far it got and about
    how long the rest takes. A pair's work grows with its audio (decoding, level maps) and the
    pairs come shortest first, so the estimate weighs each pair by its files' seconds."""

    def __init__(self, seconds: np.ndarray, files: int, every: float):
        self.work = np.cumsum(PAIR_OVERHEAD_SECONDS + np.asarray(seconds, np.float64))
        self.every = every
        self.start = self.last = time.perf_counter()
        log.info("comparing %s of %s on their audio", count(len(seconds), "pair"), count(files, "file"))

    def log(self, done: int) -> None:
        now = time.perf_counter()
        if done >= len(self.work) or now - self.last < self.every:
            return
        self.last = now
        worked = self.work[done - 1]
        left = (now - self.start) * (self.work[-1] - worked) / worked
        log.info("compared %d of %s, about %s left", done, count(len(self.work), "pair"),
                 f"{left / 60:.0f} min" if left >= 90 else f"{left:.0f} s")


#: fewer pairs than this are compared in this process unless workers are asked for: starting
#: them (processes, imports) took 1–2 s on a busy 2-core machine, as long as about 500 pairs of 1 s
WORKERS_FROM = 2000
#: the most processes the command's default starts (:func:`default_workers`)
MAX_DEFAULT_WORKERS = 16
#: a worker sends its outcomes this many pairs at a time
WORKER_BATCH = 32
#: a pair's outcome as a worker sends it: not received (yet), a difference, a file unreadable,
#: or not compared because the worker's own earlier pairs already joined its two files
_WAITING, _SCORED, _UNREADABLE, _JOINED = 0, 1, 2, 3


def default_workers() -> int:
    """Every core this process may run on (at most :data:`MAX_DEFAULT_WORKERS`): comparing pairs
    is all the work, with no model beside it as in `index` (whose decoders take half the cores).
    On 2 cores, one worker ran 0.95x and two 1.68x as fast as this process (4,000 files, load
    about 1: benchmarks/duplicates.py --workers-list 0 1 2)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):           # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_DEFAULT_WORKERS, cores))


def _spans(work: np.ndarray, parts: int) -> np.ndarray:
    """Where ``parts`` contiguous spans of about equal summed ``work`` start, and the end: each
    cut where the work before it is closest to its share."""
    before = np.r_[0.0, np.cumsum(work)]
    share = before[-1] * np.arange(1, parts) / parts
    after = np.minimum(np.searchsorted(before, share), len(work))          # the first cut at or past it
    cuts = np.where(before[after] - share <= share - before[np.maximum(after - 1, 0)], after, after - 1)
    return np.unique(np.r_[0, np.clip(cuts, 0, len(work)), len(work)])


class _Joined:
    """Files joined by the pairs the audio confirmed (union–find), and those pairs' differences."""

    def __init__(self, files: int):
        self.parent = list(range(files))
        self.scores: dict[tuple[int, int], float] = {}

    def root(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def together(self, i: int, j: int) -> bool:
        return self.root(i) == self.root(j)

    def add(self, i: int, j: int, score: float | None, max_difference_db: float) -> None:
        """Join i and j when their difference (None: unreadable) is at most ``max_difference_db``."""
        if score is not None and score <= max_difference_db:
            self.scores[(i, j)] = score
            self.parent[self.root(j)] = self.root(i)


def _compare_span(recordings: _Recordings, firsts: np.ndarray, seconds: np.ndarray,
                  max_difference_db: float) -> Iterator[tuple[int, float]]:
    """Per pair of a span, in order: (outcome, difference). A pair whose files the span's own
    earlier pairs joined is not compared (the parent, which knows at least those, skips it too)."""
    joined = _Joined(len(recordings.paths))
    for i, j in zip(firsts.tolist(), seconds.tolist()):
        if joined.together(i, j):
            yield _JOINED, 0.0
        else:
            score = recordings.difference(i, j)
            joined.add(i, j, score, max_difference_db)
            yield (_UNREADABLE, 0.0) if score is None else (_SCORED, score)
        recordings.done(i, j)


class _RecordsKept(logging.Handler):
    """A worker's log records, made picklable, until they are sent to the parent."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        record.msg, record.args, record.exc_info, record.exc_text = record.getMessage(), None, None, None
        self.records.append(record)

    def take(self) -> list[logging.LogRecord]:
        taken, self.records = self.records, []
        return taken


def _worker_main(tasks: Any, results: Any, paths: list[str], max_difference_db: float, level: int,
                 parent_pid: int) -> None:
    """One comparing process: take a span (start, firsts, seconds), send its outcomes
    :data:`WORKER_BATCH` pairs at a time with the files it could not decode and what it logged
    (a decoder's messages, under the file's name), until a None arrives. Ctrl-C is the parent's
    to handle; the worker ends if the parent is gone (as `index`'s decoders)."""
    import signal

    from engine.audio import relaying_decoder_output
    from engine.worker_processes import exit_when_orphaned

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_when_orphaned(parent_pid)
    kept = _RecordsKept()
    logging.getLogger().addHandler(kept)
    logging.getLogger().setLevel(level)
    with relaying_decoder_output():
        while (task := tasks.get()) is not None:
            start, firsts, seconds = task
            recordings = _Recordings(paths, np.bincount(np.concatenate([firsts, seconds]), minlength=len(paths)),
                                     say_failures=False)
            outcomes: list[tuple[int, float]] = []
            sent_failures = 0
            for outcome in _compare_span(recordings, firsts, seconds, max_difference_db):
                outcomes.append(outcome)
                if len(outcomes) == WORKER_BATCH:
                    sent_failures = _send(results, start, outcomes, recordings, sent_failures, kept)
                    start, outcomes = start + WORKER_BATCH, []
            _send(results, start, outcomes, recordings, sent_failures, kept)


def _send(results: Any, start: int, outcomes: list[tuple[int, float]], recordings: _Recordings,
          sent_failures: int, kept: _RecordsKept) -> int:
    """Send outcomes of the pairs from ``start`` on, the failures after the first ``sent_failures``
    and the log records; returns how many failures are sent."""
    failed = [(e.path, e.reason) for e in recordings.unreadable[sent_failures:]]
    results.put((start, outcomes, failed, kept.take()))
    return len(recordings.unreadable)


class _ComparedElsewhere:
    """The pairs' differences computed by ``workers`` processes (started as `index` starts its
    decoders), each on one contiguous span of the pair order of about equal work (its files'
    seconds): a file's pairs lie close together in that order, so it is decoded by one worker,
    rarely two, and let go after its span's last pair. A worker does not compare a pair its own
    span already joined. Outcomes arrive in any order; :meth:`replay` then goes through them in
    the pair order as one process would, so the groups are the same."""

    def __init__(self, paths: list[str], firsts: np.ndarray, seconds: np.ndarray, work: np.ndarray,
                 workers: int, max_difference_db: float):
        import multiprocessing as mp

        from engine.worker_processes import START_METHOD

        self.paths, self.firsts, self.seconds = paths, firsts, seconds
        self.state = np.zeros(len(firsts), np.int8)
        self.scores = np.zeros(len(firsts), np.float64)
        self.received = 0
        self.failed: dict[str, str] = {}         # file → reason, as workers found them
        self.reported: set[str] = set()
        self.unreadable: list[UnreadableAudio] = []
        self.said: set[tuple[str, int, str]] = set()
        bounds = _spans(work, workers)
        ctx = mp.get_context(START_METHOD)
        self.tasks, self.results = ctx.Queue(), ctx.Queue()
        self.spans = list(zip(bounds[:-1].tolist(), bounds[1:].tolist()))
        self.procs = [ctx.Process(target=_worker_main, daemon=True, name="soundsift-duplicates",
                                  args=(self.tasks, self.results, paths, max_difference_db,
                                        logging.getLogger().getEffectiveLevel(), os.getpid()))
                      for _ in self.spans]

    def run(self, progress: Callable[[int, int], None] | None, pace: _Pace | None) -> None:
        """Start the workers and take every outcome, saying how many pairs are through as they come."""
        for a, b in self.spans:
            self.tasks.put((a, self.firsts[a:b], self.seconds[a:b]))
        for proc in self.procs:
            self.tasks.put(None)
            proc.start()
        while self.received < len(self.state):
            if self._receive():
                if progress is not None:
                    progress(self.received, len(self.state))
                if pace is not None:
                    pace.log(self.received)

    def _receive(self) -> bool:
        """Take one batch of outcomes, if one comes within half a second. A worker that died is
        an error: its pairs would never come."""
        import queue

        try:
            start, outcomes, failed, records = self.results.get(timeout=0.5)
        except queue.Empty:
            dead = [p for p in self.procs if p.exitcode not in (None, 0)]
            if dead:
                raise SoundsiftError(f"a process comparing pairs died (exit code {dead[0].exitcode}); "
                                     "--workers 0 (workers=0) compares them in this process")
            return False
        for path, reason in failed:
            self.failed.setdefault(path, reason)
        for record in records:          # what the worker logged (decoder messages): once each
            key = (record.name, record.levelno, record.getMessage())
            if key not in self.said:
                self.said.add(key)
                logging.getLogger(record.name).handle(record)
        if outcomes:
            state, score = zip(*outcomes)
            self.state[start:start + len(outcomes)] = state
            self.scores[start:start + len(outcomes)] = score
            self.received += len(outcomes)
        return True

    def replay(self, joined: _Joined, max_difference_db: float) -> int:
        """Join the pairs received, in the pair order, skipping those already joined as one
        process would (a pair not received: not compared); how many pairs were received. A file
        that could not be decoded is said here, at the first pair that compares it."""
        for p, (i, j) in enumerate(zip(self.firsts.tolist(), self.seconds.tolist())):
            if self.state[p] == _WAITING or joined.together(i, j):
                continue
            if self.state[p] == _JOINED:    # cannot be: the worker knew less than this replay
                raise AssertionError(f"pair {p} was joined in its worker but not in the replay")
            for k in (i, j):
                if self.paths[k] in self.failed and self.paths[k] not in self.reported:
                    self.reported.add(self.paths[k])
                    self.unreadable.append(UnreadableAudio(self.paths[k], self.failed[self.paths[k]]))
                    log.warning("%s", self.unreadable[-1])
            joined.add(i, j, float(self.scores[p]) if self.state[p] == _SCORED else None, max_difference_db)
        return self.received

    def close(self) -> None:
        """Stop the workers (terminated when still comparing, after Ctrl-C) and wait for them."""
        started = [proc for proc in self.procs if proc.pid is not None]
        for proc in started:
            if proc.is_alive():
                proc.terminate()
        for proc in started:
            proc.join(timeout=5)
        for q in (self.tasks, self.results):
            q.cancel_join_thread()
            q.close()


def _compare_here(paths: list[str], firsts: np.ndarray, seconds: np.ndarray, max_difference_db: float,
                  joined: _Joined, progress: Callable[[int, int], None] | None, pace: _Pace | None
                  ) -> tuple[int, list[UnreadableAudio], bool]:
    """Compare the pairs in this process, in order, skipping those already joined: how many
    were gone through, the files that could not be decoded, and whether Ctrl-C stopped it."""
    recordings = _Recordings(paths, np.bincount(np.concatenate([firsts, seconds]), minlength=len(paths)))
    done, total = 0, len(firsts)
    try:
        for i, j in zip(firsts.tolist(), seconds.tolist()):
            if not joined.together(i, j):
                joined.add(i, j, recordings.difference(i, j), max_difference_db)
            recordings.done(i, j)
            done += 1
            if progress is not None:
                progress(done, total)
            if pace is not None:
                pace.log(done)
    except KeyboardInterrupt:
        return done, recordings.unreadable, True
    return done, recordings.unreadable, False


def _compare_elsewhere(paths: list[str], firsts: np.ndarray, seconds: np.ndarray, work: np.ndarray,
                       workers: int, max_difference_db: float, joined: _Joined,
                       progress: Callable[[int, int], None] | None, pace: _Pace | None
                       ) -> tuple[int, list[UnreadableAudio], bool]:
    """:func:`_compare_here` in ``workers`` processes (:class:`_ComparedElsewhere`): the same
    groups; after Ctrl-C, those of every pair compared by then (the workers are stopped)."""
    pool = _ComparedElsewhere(paths, firsts, seconds, work, workers, max_difference_db)
    interrupted = False
    try:
        pool.run(progress, pace)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        pool.close()
    return pool.replay(joined, max_difference_db), pool.unreadable, interrupted


def find_duplicates(paths: list[str], vectors: np.ndarray, durations: np.ndarray, sizes: np.ndarray,
                    min_cosine: float = MIN_COSINE, max_difference_db: float = MAX_DIFFERENCE_DB,
                    progress: Callable[[int, int], None] | None = None,
                    per_file: int | None = PER_FILE, report_every: float | None = None,
                    workers: int | None = 0) -> DuplicateReport:
    """Groups of ``paths`` holding the same recording (see the module doc). ``vectors`` are the
    files' unit mean vectors; ``per_file``: how many pairs a file takes part in at most (its
    closest; None or 0: all, as ``--per-file 0``; see :func:`closest_per_file`); ``progress(done, total)`` is called
    first with 0 and then per candidate pair; with ``report_every`` (seconds) it also logs how
    many pairs there are, then that often how far it got and about how long the rest takes (for
    a log file, where no bar is drawn). A pair whose files the audio already put in one group is
    not compared again. A file that cannot be decoded is reported once and left out of
    every pair. Each group names the copy to keep and every file's format (engine.keeper).
    ``workers``: processes comparing the pairs (0: this one; see :class:`_ComparedElsewhere`),
    the same groups either way; None: every core (:func:`default_workers`), for
    :data:`WORKERS_FROM` pairs or more. Ctrl-C stops the comparing (and the workers): the report holds
    the groups confirmed so far and says so (``interrupted``)."""
    n = len(paths)
    if not (len(vectors) == len(durations) == len(sizes) == n):
        raise InvalidQuery(f"find_duplicates needs one vector, duration and size per path: got {n} paths, "
                           f"{len(vectors)} vectors, {len(durations)} durations, {len(sizes)} sizes")
    if per_file is not None and per_file < 0:
        raise InvalidQuery(f"per_file must be ≥ 0 (0 or None: every pair), got {per_file}")
    if workers is not None and workers < 0:
        raise InvalidQuery(f"workers must be ≥ 0 (0: compare in this process), got {workers}")
    if per_file:                    # None or 0: every pair over min_cosine (as `--per-file 0`)
        firsts, seconds, cosines, every = closest_candidates(vectors, durations, per_file, min_cosine)
    else:
        firsts, seconds, cosines = candidate_arrays(vectors, durations, min_cosine)
        every = len(firsts)
    total = len(firsts)
    seconds_of = np.asarray(durations, np.float64)
    pace = (_Pace(seconds_of[firsts] + seconds_of[seconds], len(paths), report_every)
            if report_every is not None else None)
    if progress is not None:
        progress(0, total)
    joined = _Joined(n)
    if workers is None:
        workers = default_workers() if total >= WORKERS_FROM else 0
    if workers and total:
        done, unreadable, interrupted = _compare_elsewhere(
            paths, firsts, seconds, PAIR_OVERHEAD_SECONDS + seconds_of[firsts] + seconds_of[seconds], workers,
            max_difference_db, joined, progress, pace)
    else:
        done, unreadable, interrupted = _compare_here(paths, firsts, seconds, max_difference_db, joined,
                                                      progress, pace)
    if interrupted:
        log.warning("interrupted after %d of %s: the groups are those confirmed so far", done,
                    count(total, "pair"))
    scores, root = joined.scores, joined.root
    grouped: dict[int, list[int]] = {}
    for k in sorted({k for pair in scores for k in pair}, key=lambda k: paths[k]):
        grouped.setdefault(root(k), []).append(k)
    worst: dict[int, float] = {}
    for (i, _j), score in scores.items():
        worst[root(i)] = max(worst.get(root(i), 0.0), score)
    groups = [_with_keeper(DuplicateGroup([paths[k] for k in files], [float(durations[k]) for k in files], worst[r],
                                          _same_bytes([paths[k] for k in files], [int(sizes[k]) for k in files])))
              for r, files in grouped.items()]
    groups.sort(key=lambda g: (g.difference_db, g.paths))
    return DuplicateReport(groups, len(paths), total, len(scores), unreadable,
                           compared=done, left_out=every - total, interrupted=interrupted)


def _with_keeper(group: DuplicateGroup) -> DuplicateGroup:
    """``group`` with the copy to keep and each file's format (headers only)."""
    from engine.keeper import best_copy

    group.keep, quality = best_copy(group.paths)
    group.formats = [q.describe() if (q := quality[p]) is not None else "" for p in group.paths]
    group.same_file = hard_links(group.paths)
    return group


def hard_links(paths: Sequence[str]) -> list[list[str]]:
    """The sets of ``paths`` (in their order) that are one file on disk: the same device and
    inode, so deleting one of the names frees nothing. A path that cannot be stat'ed is in none."""
    by_file: dict[tuple[int, int], list[str]] = {}
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        by_file.setdefault((st.st_dev, st.st_ino), []).append(p)
    return [names for names in by_file.values() if len(names) > 1]


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
                copies: Callable[[str | None, list[tuple[str, float, float]]], dict[str, float]] | None = None,
                itself: bool | None = None) -> list[Any]:
    """"More like" ``query`` results (objects with ``path``, ``duration``, ``score``; dataclasses)
    with ``same_recording`` set: True for a copy (:func:`copies_of`, or the ``copies`` function
    given, e.g. a cached one or :func:`copies_of_waveform` for a clip in memory, whose ``query``
    is None), False for another file, ``itself`` for the query file: True where every hit must
    carry the mark (JSON: it is the same recording), None where a display badges only the
    query's copies (the table, the page)."""
    from dataclasses import replace

    candidates = [(h.path, h.duration, h.score) for h in hits]
    if copies is None:
        if query is None:
            raise ValueError("mark_copies: a clip in memory needs its copies function")
        found = copies_of(query, candidates)
    else:
        found = copies(query, candidates)
    me = os.path.realpath(query) if query is not None else None
    return [replace(h, same_recording=itself if me is not None and os.path.realpath(h.path) == me
                    else h.path in found) for h in hits]


def _same_bytes(paths: list[str], sizes: list[int]) -> bool:
    """Whether every file has the same bytes (sizes first, then SHA-256)."""
    if len(set(sizes)) > 1:
        return False
    links = hard_links(paths)
    if len(links) == 1 and len(links[0]) == len(paths):
        return True                     # one file under several names: nothing to read
    digests = set()
    for p in paths:
        try:
            digests.add(cached_file_sha256(p))
        except OSError as e:
            log.warning("%s: not read to compare bytes (%s)", p, e)
            return False
    return len(digests) == 1
