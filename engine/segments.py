"""The fixed, documented segment policy.

A file no longer than the model's window is one segment spanning the whole file.
A longer file is cut into windows of exactly ``window`` seconds that start every
``hop = window / 2`` seconds (50 % overlap); when the last regular window stops short
of the end, one more window is aligned to the end of the file, so every sample is
covered and no segment is shorter than the window. Positions are in samples at the
model's rate, so the policy is a pure function of (length, rate, window) and
deterministic: no random crops at inference.

A WAVE or AIFF file with named markers (the takes of a field recording, the regions a library
tool wrote) also gets one segment per marker (:func:`take_bounds`): from the marker to the next one,
the end of its region or one window later, whichever comes first, so a search can land on one
take, by its name, instead of a window that straddles two. A take that is exactly a regular
segment, or shorter than :data:`MIN_TAKE`, adds none.

A segment that is all digital silence (:func:`is_silent`: no sample above :data:`SILENT_PEAK`)
is left out of a file that has sound elsewhere (:func:`without_silence`), so a 3 s sound padded
to 40 s is not a vector of mostly silence; a file that is silence throughout keeps its first
segment. A marked take is judged as a window is: one of digital silence (a "Pause" marked over
a gap) is left out too, so it no longer enters the file's vector (the mean of its segments), and
a silent file with markers is a file of silence throughout (until session 40 such a take was
kept, and made a silent file look as if it had sound).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Collection, Iterable, Iterator, Sequence, TypeVar

import numpy as np


@dataclass(frozen=True)
class SegmentPolicy:
    """Window and hop in seconds; ``hop`` defaults to half the window."""

    window: float
    hop: float | None = None

    @property
    def hop_seconds(self) -> float:
        return self.hop if self.hop is not None else self.window / 2

    def as_dict(self) -> dict[str, float | str]:
        return {"kind": "fixed-window, end-aligned tail, one more per named marker", "window": self.window,
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


#: shortest marked take given a segment of its own (seconds): shorter ones are slips of the hand
MIN_TAKE = 0.1


def take_bounds(markers: Sequence[tuple[float, float | None]], sample_rate: int,
                policy: SegmentPolicy) -> list[tuple[int, int]]:
    """The takes of a file whose named markers are ``(at, region length or None)`` in seconds:
    ``(start, end)`` sample offsets at ``sample_rate``, in order of start. Each ends at the next
    marker, the end of its region or one window after its start, whichever is first; where the
    file ends earlier, it ends there (the caller knows where: :func:`regular_take`). One per
    start; takes shorter than :data:`MIN_TAKE` are left out."""
    win = policy.window_samples(sample_rate)
    starts: dict[int, int] = {}
    for at, length in sorted(markers, key=lambda m: m[0]):
        a = max(0, int(round(at * sample_rate)))
        end = a + win if not length or length <= 0 else min(a + win, a + int(round(length * sample_rate)))
        starts.setdefault(a, end)
    ordered = sorted(starts)
    out = []
    for i, a in enumerate(ordered):
        end = min(starts[a], ordered[i + 1]) if i + 1 < len(ordered) else starts[a]
        if end - a >= MIN_TAKE * sample_rate:
            out.append((a, end))
    return out


def regular_take(start: int, end: int, n_samples: int | None, sample_rate: int, policy: SegmentPolicy) -> bool:
    """Whether the take ``start``–``end`` is one of :func:`segment_bounds`' segments of a file of
    ``n_samples`` (None: longer than ``end``, not known yet), so it adds nothing."""
    win, hop = policy.window_samples(sample_rate), policy.hop_samples(sample_rate)
    if n_samples is not None and end >= n_samples:
        return (n_samples <= win and start == 0) or (n_samples > win and start == n_samples - win)
    return end - start == win and start % hop == 0


def bounds_with_takes(n_samples: int, sample_rate: int, policy: SegmentPolicy,
                      markers: Sequence[tuple[float, float | None]] = ()) -> list[tuple[int, int]]:
    """Every segment of a file of ``n_samples`` with named ``markers``: :func:`segment_bounds`,
    then the takes that add something (cut at the end, at least :data:`MIN_TAKE`), as
    :func:`engine.audio.iter_segments` gives them when streaming."""
    out = segment_bounds(n_samples, sample_rate, policy)
    for a, b in take_bounds(markers, sample_rate, policy):
        b = min(b, n_samples)
        if a < n_samples and b - a >= MIN_TAKE * sample_rate and not regular_take(
                a, b, n_samples if b >= n_samples else None, sample_rate, policy):
            out.append((a, b))
    return out



#: a segment whose every sample (at the model's rate, as embedded) is at or under this magnitude is
#: silent: −80 dBFS. Digital silence through MP3 / Vorbis / Opus / AAC and resampling, and 16-bit
#: TPDF dither, stay well under it; room tone at −60 dBFS and sounds 40 dB down stay over it
#: (measured: MODEL_CARD, "Sound-aware pooling")
SILENT_PEAK = 1e-4

S = TypeVar("S")


def is_silent(waveform: np.ndarray) -> bool:
    """Whether every sample of ``waveform`` is at or under :data:`SILENT_PEAK` (an empty one is)."""
    return waveform.size == 0 or float(np.max(np.abs(waveform))) <= SILENT_PEAK


def take_starts(markers: Sequence[tuple[float, float | None]], sample_rate: int, policy: SegmentPolicy) -> set[int]:
    """Sample offsets at ``sample_rate`` where the takes of ``markers`` (:func:`take_bounds`) start:
    the indexer notes those whose take it left out as silence (:func:`silent_segment`), so a take
    missing from the index is not taken for one never cut (indexer.take_refresh)."""
    return {a for a, _ in take_bounds(markers, sample_rate, policy)} if markers else set()


def without_silence(segments: Iterable[S], silent: Callable[[S], bool],
                    counts: dict[str, int] | None = None) -> Iterator[tuple[S, bool]]:
    """The segments of one file to embed, in order, each with whether it is kept only because the
    file has nothing else: a ``silent`` one is left out once the file is known to have one that is
    not; until then the first silent one is held (no other), and given last when none is not, so a
    file of silence keeps its first segment and is still found. ``counts["silent_left_out"]`` adds
    up those left out. The indexer, a query file, an upload and the evaluator go through this rule."""
    held: list[S] = []
    sounded = False

    def leave_out() -> None:
        if counts is not None:
            counts["silent_left_out"] = counts.get("silent_left_out", 0) + 1

    for seg in segments:
        if not silent(seg):
            if held:
                held.clear()
                leave_out()
            sounded = True
            yield seg, False
        elif sounded or held:
            leave_out()
        else:
            held.append(seg)
    if held:
        yield held[0], True


def silent_segment(sample_rate: int, takes: Collection[int] = (),
                   silent_takes: set[int] | None = None) -> Callable[[object], bool]:
    """A ``silent`` test for :func:`without_silence` of segments with ``start`` (seconds) and a
    ``waveform`` at ``sample_rate`` (the model's, where :data:`SILENT_PEAK` is judged):
    :func:`is_silent`, for a marked take as for a window. ``silent_takes`` gets the offset of each
    silent one starting where a take does (``takes``: :func:`take_starts`)."""
    def silent(seg: object) -> bool:
        if not is_silent(getattr(seg, "waveform")):
            return False
        if silent_takes is not None and (start := int(round(getattr(seg, "start") * sample_rate))) in takes:
            silent_takes.add(start)
        return True
    return silent


def noting_end(segments: Iterable[S], reached: dict[str, float]) -> Iterator[S]:
    """``segments`` (with an ``end`` in seconds) as they come, the latest end among them kept in
    ``reached["end"]``: how far a file decoded, whatever :func:`without_silence` leaves out."""
    for seg in segments:
        reached["end"] = max(reached.get("end", 0.0), getattr(seg, "end"))
        yield seg
