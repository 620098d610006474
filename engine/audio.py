"""Decoding: soundfile → mono float32 → resampled to the model's rate (soxr), streamed.

Files are read in blocks so memory stays bounded for hour-long recordings; segments
(engine.segments) are cut from the resampled stream as soon as they are complete.
Every failure becomes :class:`~engine.errors.UnreadableAudio` naming the file and why.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import soundfile as sf
import soxr

from engine.errors import InvalidQuery, UnreadableAudio
from engine.segments import SegmentPolicy

#: extensions scanned by the indexer: the containers libsndfile reads
AUDIO_EXTENSIONS = frozenset({
    ".wav", ".wave", ".bwf", ".aif", ".aiff", ".aifc", ".flac", ".ogg", ".oga",
    ".opus", ".mp3", ".au", ".snd", ".caf", ".w64", ".rf64",
})

BLOCK_SECONDS = 20.0


def audio_files(paths: Iterable[str | Path]) -> list[Path]:
    """The audio files named by ``paths`` (files, or folders searched recursively), absolute,
    in the given order with each folder's files sorted; :class:`InvalidQuery` for a path that
    does not exist. (The indexer's scan, ``indexer.scan``, also records unreadable folders.)"""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
        elif p.is_file():
            out.append(p)
        else:
            raise InvalidQuery(f"{p}: no such file or folder")
    return [Path(os.path.abspath(f)) for f in dict.fromkeys(out)]


@dataclass(frozen=True)
class AudioInfo:
    """What the container header says about a file."""

    path: str
    frames: int
    sample_rate: int
    channels: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


@dataclass(frozen=True)
class Segment:
    """A piece of a file at the model's rate; times in seconds from the file's start."""

    start: float
    end: float
    waveform: np.ndarray


def probe(path: str | Path) -> AudioInfo:
    """Read the header of ``path``; raise UnreadableAudio if it is not usable audio."""
    p = str(path)
    try:
        info = sf.info(p)
    except Exception as e:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        if os.path.isfile(p) and os.path.getsize(p) == 0:
            raise UnreadableAudio(p, "empty: the file is 0 bytes") from e
        raise UnreadableAudio(p, f"not readable as audio ({_clear_reason(p, e)})") from e
    if info.samplerate <= 0:
        raise UnreadableAudio(p, f"invalid sample rate {info.samplerate}")
    if info.channels <= 0:
        raise UnreadableAudio(p, "no audio channels")
    if info.frames == 0:
        raise UnreadableAudio(p, "empty: the file holds no samples")
    return AudioInfo(p, int(info.frames), int(info.samplerate), int(info.channels),
                     str(info.format), str(info.subtype))


#: libsndfile's reason for an unrecognised MP3 stream, although the file is there
_MISLEADING = "File does not exist or is not a regular file"


def _clear_reason(path: str, e: BaseException) -> str:
    """libsndfile's reason, except one that would send the user looking for a file that is right there."""
    if _MISLEADING in str(e) and os.path.isfile(path):
        return "format not recognised: no audio stream found"
    return _short(e)


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


def iter_blocks(path: str | Path, target_sr: int, *, block_seconds: float = BLOCK_SECONDS,
                stats: dict[str, float] | None = None) -> Iterator[np.ndarray]:
    """Yield mono float32 blocks of ``path`` resampled to ``target_sr``.

    ``stats`` (optional) accumulates seconds spent in "decode" and "resample".
    """
    p = str(path)
    info = probe(p)
    block = max(1024, int(block_seconds * info.sample_rate))
    resampler = (soxr.ResampleStream(info.sample_rate, target_sr, 1, dtype="float32", quality="HQ")
                 if info.sample_rate != target_sr else None)
    total = 0
    t = time.perf_counter()
    try:
        with sf.SoundFile(p) as f:
            while True:
                data = f.read(block, dtype="float32", always_2d=True)
                n = data.shape[0]
                last = n < block
                mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
                if n and not np.isfinite(mono).all():
                    raise UnreadableAudio(p, "contains NaN or Inf samples")
                now = time.perf_counter()
                if stats is not None:
                    stats["decode"] = stats.get("decode", 0.0) + now - t
                t = now
                if resampler is not None:
                    mono = resampler.resample_chunk(np.ascontiguousarray(mono, dtype=np.float32), last=last)
                    now = time.perf_counter()
                    if stats is not None:
                        stats["resample"] = stats.get("resample", 0.0) + now - t
                    t = now
                total += n
                if mono.size:
                    yield np.ascontiguousarray(mono, dtype=np.float32)
                if last:
                    break
    except UnreadableAudio:
        raise
    except Exception as e:
        raise UnreadableAudio(p, f"decoding failed after {total} frames ({_short(e)})") from e
    if total == 0:
        raise UnreadableAudio(p, "empty: the file holds no samples")


def decode(path: str | Path, target_sr: int, stats: dict[str, float] | None = None) -> np.ndarray:
    """The whole of ``path`` as one mono float32 array at ``target_sr``."""
    blocks = list(iter_blocks(path, target_sr, stats=stats))
    out = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    if out.size == 0:
        raise UnreadableAudio(str(path), "no samples left after resampling")
    return out


def iter_segments(path: str | Path, target_sr: int, policy: SegmentPolicy,
                  stats: dict[str, float] | None = None) -> Iterator[Segment]:
    """Stream ``path`` and yield its segments by :func:`engine.segments.segment_bounds`.

    Only about one window of audio is held at a time, whatever the file's length.
    """
    win = policy.window_samples(target_sr)
    hop = policy.hop_samples(target_sr)
    buf = np.zeros(0, np.float32)
    buf_start = 0          # sample offset of buf[0] in the stream
    next_start = 0         # start of the next regular window
    last_end = 0           # end of the last emitted segment
    for block in iter_blocks(path, target_sr, stats=stats):
        buf = np.concatenate([buf, block])
        while next_start + win <= buf_start + len(buf):
            a = next_start - buf_start
            yield Segment(next_start / target_sr, (next_start + win) / target_sr, buf[a:a + win].copy())
            last_end = next_start + win
            next_start += hop
        # keep what the next window or the end-aligned tail could still need
        keep_from = min(next_start, buf_start + len(buf) - win)
        if keep_from > buf_start:
            buf = buf[keep_from - buf_start:]
            buf_start = keep_from
    n = buf_start + len(buf)
    if n == 0:
        raise UnreadableAudio(str(path), "no samples left after resampling")
    if last_end == 0:
        yield Segment(0.0, n / target_sr, buf.copy())
    elif last_end < n:
        yield Segment((n - win) / target_sr, n / target_sr, buf[len(buf) - win:].copy())
