"""Pulling search results out of the library: each hit's matched moment as its own file.

A sound designer takes what a search found into a session folder. Each hit becomes
``NN_<name>`` (NN its rank, so the folder sorts as the results did):

- a hit that matched the whole file is the file itself, copied byte for byte;
- a hit on part of a longer recording is that span (± ``pad`` seconds) cut out as WAV at the
  source's own sample rate, channels and bit depth (lossy sources: 16-bit), with short fades
  where it was cut so it starts and ends without a click, and a RIFF comment saying where it
  came from. An excerpt of a WAVE recording (RIFF, RF64, Wave64) keeps its channel layout
  (the WAVE_FORMAT_EXTENSIBLE mask), its bext chunk and its iXML chunk, their timecode moved to
  where the excerpt starts (engine.wav_chunks); it is plain RIFF WAVE whatever its source.

A manifest, ``soundsift-export.csv``, gains one row per file written (what it is, where it came
from, the span, the score, the query), so a folder filled by several searches stays traceable.
A hit that cannot be read is reported (file and reason) and the others are still written; so
is one whose file changed since it was indexed (:func:`changed_since_indexed`), whose match
was found in audio the file no longer holds.
"""
from __future__ import annotations

import csv
import datetime
import io
import logging
import os
import re
import shutil
import struct
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import soundfile as sf

from engine.workbook import as_csv_text
from engine.audio import check_openable, go_to_frame, open_sound, probe, read_frames
from engine.errors import InvalidOutput, InvalidQuery, UnreadableAudio
from engine.file_state import FileState, state_now
from engine.keeper import is_lossless
from engine.outputs import make_folder, output_folder
from engine.wav_chunks import SourceChunks, data_offset, excerpt_header, source_chunks

log = logging.getLogger("soundsift.export")

MANIFEST = "soundsift-export.csv"
#: in a zip of results: the results that could not be read, and why
NOT_EXPORTED = "not-exported.txt"
MANIFEST_COLUMNS = ("exported", "kind", "source", "start", "end", "score", "rank", "query")
DEFAULT_FADE = 0.005          # seconds of fade at a cut inside the recording
WHOLE_FILE_SLACK = 0.05       # a match this close to the whole file is the whole file
LOSSY_SUBTYPES = frozenset({"MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III", "VORBIS", "OPUS"})
#: bytes a sample of the WAV sample formats :func:`excerpt_stream` writes as it reads (each sample
#: coded alone, so the length is known before the first byte); others are made whole, in memory
STREAMED_SUBTYPES = {"PCM_U8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
                     "ULAW": 1, "ALAW": 1}
STREAM_BLOCK_BYTES = 1 << 20  # samples read at a time by excerpt_stream (as float32/float64)


@dataclass(frozen=True)
class Exported:
    """One file written: where, what (``"file"`` or ``"excerpt"``) and where it came from."""

    path: Path
    kind: str
    source: str
    start: float
    end: float
    score: float
    rank: int


@dataclass
class ExportResult:
    """What :func:`export_hits` wrote, and the hits it could not (path, reason)."""

    written: list[Exported] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    manifest: Path | None = None


def is_whole_file(start: float, end: float, duration: float) -> bool:
    """Whether the span ``start``–``end`` covers a file ``duration`` seconds long."""
    return start <= WHOLE_FILE_SLACK and end >= duration - WHOLE_FILE_SLACK


def excerpt_name(source: str | Path, start: float, end: float, take: str | None = None) -> str:
    """The file name of an excerpt: ``<stem>_<start>-<end>s.wav`` (seconds: :func:`name_seconds`),
    with the take's name after the stem when the excerpt is a marked take (``street_Siren passing_…``)."""
    named = f"_{portable_name(take.strip())}" if take and take.strip() else ""
    return fitting_name(f"{Path(source).stem}{named}_{name_seconds(start)}-{name_seconds(end)}s.wav")


def name_seconds(seconds: float) -> str:
    """Seconds as an excerpt's name gives them: one decimal where that is exact (``15.0``), else
    to the millisecond (``9.75``: a 0.25 s pad named "9.8" would claim a span it does not hold)."""
    text = f"{seconds:.3f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def take_name(hit: Any) -> str | None:
    """The marker name of a hit that is a marked take (engine.query: its span starts at the
    marker), else None (a keyword hit around a marker is not the take)."""
    marker, at = getattr(hit, "marker", None), getattr(hit, "marker_at", None)
    return marker if marker and at is not None and abs(float(at) - float(hit.start)) < 1e-6 else None


def indexed_state(hit: Any) -> FileState | None:
    """``(size, mtime_ns)`` of a hit's (or catalog record's) file as the catalog recorded it when
    it was indexed (engine.query.Hit.size, .mtime_ns); None when it does not say (made by hand)."""
    size, mtime_ns = getattr(hit, "size", None), getattr(hit, "mtime_ns", None)
    return None if size is None or mtime_ns is None else (int(size), int(mtime_ns))


def changed_since_indexed(path: str | Path, indexed: FileState | None) -> str | None:
    """Why the file at ``path`` is not the one indexed as ``indexed`` (``(size, mtime_ns)``): its
    size or modification time is another now, the rule by which ``soundsift index`` takes a file
    as changed and indexes it again (indexer.scan; one stat, no read). None when it is the same,
    when ``indexed`` is None, or when the file cannot be stat'ed (gone: reading it says so)."""
    return changed_from(state_now(path), indexed)


def changed_from(now: FileState | None, indexed: FileState | None) -> str | None:
    """:func:`changed_since_indexed` of a file whose state is ``now`` (engine.file_state.state_now:
    the stat a caller made for more than this, as ``serve``'s ``/audio`` for its ETag)."""
    if indexed is None or now is None or now == tuple(indexed):
        return None
    (size, mtime), (size_then, mtime_then) = now, indexed
    what = (f"{size:,} bytes now, {size_then:,} when it was indexed" if size != size_then else
            f"modified {_clock(mtime)} now, {_clock(mtime_then)} when it was indexed")
    return (f"changed since it was indexed ({what}): its match was found in the audio it held then; "
            "run `soundsift index` on its folder again, then search again")


def _clock(mtime_ns: int) -> str:
    """A modification time (ns since 1970) as local time to the second."""
    try:
        return datetime.datetime.fromtimestamp(mtime_ns / 1e9).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return f"{mtime_ns} ns"


def excerpt_subtype(subtype: str) -> str:
    """The WAV sample format for an excerpt of audio stored as ``subtype``: the same where WAV
    holds it, 16-bit for lossy sources (MP3, Vorbis, Opus, and the AAC, WMA, AC-3 … FFmpeg reads),
    else 24-bit."""
    if subtype in LOSSY_SUBTYPES:
        return "PCM_16"
    if sf.check_format("WAV", subtype):
        return subtype
    return "PCM_24" if is_lossless(subtype) else "PCM_16"


def _span_frames(path: str, rate: int, frames: int, start: float, end: float,
                 pad: float = 0.0) -> tuple[int, int]:
    """The frames ``start``–``end`` s (± ``pad``) cover in a file of ``frames`` at ``rate``,
    clamped to it; UnreadableAudio when nothing of it is inside (the file changed since it was
    indexed), or when it starts inside but is shorter than one sample (it holds no frame)."""
    first = max(0, int(round((start - pad) * rate)))
    last = min(frames, int(round((end + pad) * rate)))
    if last <= first and start - pad < frames / rate and (end - start + 2 * pad) * rate < 1:
        raise UnreadableAudio(path, f"the span {start:g}–{end:g} s is shorter than one sample (1/{rate} s); "
                                    "ask for a longer one")
    if last <= first:
        raise UnreadableAudio(path, f"the span {start:.2f}–{end:.2f} s is not inside the file "
                                    f"({frames / rate:.2f} s long); re-index it if it changed")
    return first, last


def _read_dtype(subtype: str) -> str:
    """What a file of ``subtype`` is read as for an excerpt: float64 where float32 would round."""
    return "float64" if subtype in ("DOUBLE", "PCM_32") else "float32"


def _excerpt_comment(path: str, first: int, last: int, rate: int) -> str:
    return f"{first / rate:.3f}-{last / rate:.3f} s of {path} (soundsift export)"


def _unreadable_for_export(path: str, e: Exception) -> UnreadableAudio:
    """A read that failed (soundfile raises LibsndfileError/RuntimeError on a broken stream)."""
    return UnreadableAudio(path, f"cannot be read for export ({str(e).strip() or type(e).__name__})")


def excerpt_wav(source: str | Path, start: float, end: float, *, pad: float = 0.0,
                fade: float = DEFAULT_FADE) -> tuple[bytes, float, float]:
    """The span ``start``–``end`` (± ``pad``) of ``source`` as WAV bytes at its own rate,
    channels and bit depth, with ``fade`` seconds of fade at each cut inside the recording; of a
    WAVE source, with its channel mask, bext and iXML (engine.wav_chunks.excerpt_header).

    Returns the bytes and the span actually cut (clamped to the file). UnreadableAudio names
    the file and the reason when it cannot be read.
    """
    path = str(source)
    check_openable(path)
    try:
        with open_sound(path) as f:
            rate, frames, subtype = f.samplerate, f.frames, f.subtype
            first, last = _span_frames(path, rate, frames, start, end, pad)
            go_to_frame(f, first)
            data = read_frames(f, last - first, _read_dtype(subtype))
    except UnreadableAudio:
        raise
    except Exception as e:
        raise _unreadable_for_export(path, e) from e
    if len(data) == 0:
        raise UnreadableAudio(path, f"holds no audio from {first / rate:.2f} s on (cut short since it was indexed?)")
    last = first + len(data)          # a truncated file holds fewer frames than its header says
    _fade(data, int(round(fade * rate)), fade_in=first > 0, fade_out=last < frames)
    out_subtype = excerpt_subtype(subtype)
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=rate, channels=data.shape[1], format="WAV",
                      subtype=out_subtype) as out:
        out.comment = _excerpt_comment(path, first, last, rate)
        out.software = "soundsift"
        out.write(data)
    wav = _with_peak_time(buf.getvalue(), _peak_time(path))
    source = _source_chunks(path)
    if source:                     # libsndfile's header, then the samples: the header gains the source's chunks
        at = data_offset(wav)
        wav = excerpt_header(path, wav[:at], source, first=first, last=last, rate=rate, subtype=out_subtype) + wav[at:]
    return wav, first / rate, last / rate


def _source_chunks(path: str) -> SourceChunks:
    """engine.wav_chunks.source_chunks of ``path``; UnreadableAudio when it cannot be read."""
    try:
        return source_chunks(path)
    except OSError as e:
        raise _unreadable_for_export(path, e) from e


class ExcerptStream:
    """A WAV excerpt as it is sent: ``length`` bytes in all, given block by block by iterating
    it once (the header, then the audio a block at a time), and the span it holds (``start``,
    ``end``, seconds). Close it (or use ``with``) to close the file it reads.

    ``header_length`` is the bytes before the first sample (everything up to and including the
    data chunk's head) and ``frame_bytes`` the bytes of one frame after it, so byte ``n`` past
    the header is in frame ``n // frame_bytes``; both None for an excerpt made whole in memory
    (a sample format coded in blocks)."""

    def __init__(self, length: int, chunks: Iterator[bytes], start: float, end: float,
                 close: Any = None, *, header_length: int | None = None,
                 frame_bytes: int | None = None, from_byte: Callable[[int], Iterator[bytes]] | None = None) -> None:
        self.length, self.start, self.end = length, start, end
        self.header_length, self.frame_bytes = header_length, frame_bytes
        self._chunks, self._close, self._from_byte = chunks, close, from_byte

    @classmethod
    def whole(cls, data: bytes, start: float, end: float) -> "ExcerptStream":
        return cls(len(data), iter((data,)), start, end, from_byte=lambda at: iter((data[at:],)))

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def part(self, first: int, last: int) -> "ExcerptStream":
        """Bytes ``first``–``last`` (inclusive) of this excerpt, as a stream of their own that
        takes over the file (iterate and close that one, not this). Its first block is reached
        by :func:`engine.audio.go_to_frame` from where the file is: what comes before it is not
        read where the file seeks exactly, and of an Ogg or MP3 file at most
        :data:`~engine.audio.SEEK_PREROLL_SECONDS` of it is read and thrown away (the bytes are
        those of the whole excerpt; an MP3's to its decoder's float rounding, a 16-bit sample at
        most one step off); a float excerpt's peaks are measured only when the part holds the
        header."""
        if not 0 <= first <= last < self.length or self._from_byte is None:
            raise ValueError(f"bytes {first}-{last} are not a part of this {self.length}-byte excerpt")
        part = ExcerptStream(last - first + 1, _first_bytes(self._from_byte(first), last - first + 1),
                             self.start, self.end, self._close)
        self._close = self._chunks = None                       # the part reads the file now
        return part

    def close(self) -> None:
        close, self._close = self._close, None
        if close is not None:
            close()

    def __enter__(self) -> "ExcerptStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _first_bytes(chunks: Iterator[bytes], n: int) -> Iterator[bytes]:
    """The first ``n`` bytes of ``chunks`` (then no more is read)."""
    if n <= 0:
        return
    for chunk in chunks:
        if chunk:
            yield chunk[:n]
            n -= len(chunk)
            if n <= 0:
                return


def excerpt_stream(source: str | Path, start: float, end: float, *,
                   block_bytes: int | None = None) -> ExcerptStream:
    """The span ``start``–``end`` of ``source`` as the very bytes ``excerpt_wav(source, start,
    end, fade=0)`` returns, written as it is read: the header first (its lengths are known from
    the span), then the audio in blocks of at most ``block_bytes`` (default
    :data:`STREAM_BLOCK_BYTES`) of samples as read, so a span of any length costs a few MB, not
    the span twice over. A float excerpt (whose PEAK chunk, in the header, holds each channel's
    peak) reads the span once more when its header is first sent, to measure them (so a read
    failing then cuts the answer short, as one failing later does). The header holds what the
    excerpt keeps of a WAVE source (its channel mask, bext, iXML): the samples are all that
    follow it. :meth:`ExcerptStream.part` gives any part of it, for a byte range.

    UnreadableAudio (as ``excerpt_wav``) when the file cannot be read or holds nothing from
    ``start`` on; InvalidQuery for a span too long for a WAV (4 GB). A read that fails once the
    header is out raises UnreadableAudio from the iteration; a file that ends early (cut short
    since it was indexed, or a header that promises more frames than it holds) is completed
    with silence, with a warning (``excerpt_wav`` is shorter then: it reads the span at once). Sample formats coded in
    blocks (ADPCM, GSM …: not :data:`STREAMED_SUBTYPES`) are made whole, in memory, as before.
    """
    path = str(source)
    check_openable(path)
    try:
        f = open_sound(path)
    except Exception as e:
        raise _unreadable_for_export(path, e) from e
    try:
        made = _excerpt_stream(path, f, start, end, max(1, int(block_bytes or STREAM_BLOCK_BYTES)))
    except BaseException:
        f.close()
        raise
    if made is None:               # a sample format coded in blocks: the whole excerpt, as before
        f.close()
        data, cut_start, cut_end = excerpt_wav(path, start, end, fade=0.0)
        return ExcerptStream.whole(data, cut_start, cut_end)
    return made


def _excerpt_stream(path: str, f: Any, start: float, end: float, block_bytes: int) -> ExcerptStream | None:
    """:func:`excerpt_stream` over the open ``f`` (None for a sample format it does not stream)."""
    try:
        rate, frames, subtype, channels = f.samplerate, f.frames, f.subtype, f.channels
        out_subtype = excerpt_subtype(subtype)
        if out_subtype not in STREAMED_SUBTYPES:
            return None
        first, last = _span_frames(path, rate, frames, start, end)
        dtype = _read_dtype(subtype)
        block = max(1, block_bytes // (channels * np.dtype(dtype).itemsize))
        go_to_frame(f, first, block)
        pending = read_frames(f, min(block, last - first), dtype)                   # the first block
        source = _source_chunks(path)
        stamp = _peak_time(path)
    except UnreadableAudio:
        raise
    except Exception as e:
        raise _unreadable_for_export(path, e) from e
    if len(pending) == 0:
        raise UnreadableAudio(path, f"holds no audio from {first / rate:.2f} s on (cut short since it was indexed?)")
    count = last - first
    comment = _excerpt_comment(path, first, last, rate)
    frame_bytes = channels * STREAMED_SUBTYPES[out_subtype]
    data_bytes = count * frame_bytes

    def header(peaks: list[tuple[float, int]] | None) -> bytes:
        return excerpt_header(path, _wav_header(rate, channels, out_subtype, comment, count, data_bytes, peaks, stamp),
                              source, first=first, last=last, rate=rate, subtype=out_subtype)
    made = header(None)             # the PEAK chunk's values do not change its length
    header_length = len(made)
    if header_length - 8 + data_bytes + (data_bytes & 1) > 0xFFFFFFFF:
        raise InvalidQuery(f"the span {first / rate:g}–{last / rate:g} s of {path} is "
                           f"{data_bytes / 2**30:.1f} GB as WAV, more than a WAV holds (4 GB); ask for a shorter one")
    measured = out_subtype not in ("FLOAT", "DOUBLE")          # a float WAV's PEAK chunk holds its peaks
    unread = [pending]                                         # the first block, while the file is just past it
    at = first + len(pending)                                  # the frame the file is at

    def from_byte(offset: int) -> Iterator[bytes]:
        """The excerpt's bytes from ``offset`` on, read from the file as they are sent."""
        nonlocal made, measured, at
        if offset < header_length:
            if not measured:                                   # read the span once before: its peaks
                unread.clear()
                try:
                    go_to_frame(f, first, block, at)           # float: a PCM source, which seeks exactly
                    peaks, seen = _peaks(f, count, block, dtype, channels)
                except Exception as e:
                    raise _unreadable_for_export(path, e) from e
                at = first + seen
                made, measured = header(peaks), True
            yield made[offset:]
            offset = header_length
        frame, skip = divmod(offset - header_length, frame_bytes)
        sent = frame - frame % block                            # blocks as the whole excerpt reads them
        skip += (frame - sent) * frame_bytes
        data, ended = (unread.pop() if unread and sent == 0 else None), False
        unread.clear()
        if data is None and sent < count:
            try:
                go_to_frame(f, first + sent, block, at)        # Ogg, MP3: read on from here if it is near
            except Exception as e:
                raise _unreadable_for_export(path, e) from e
            at = first + sent
        while sent < count:
            if data is None and not ended:
                try:
                    data = read_frames(f, min(block, count - sent), dtype)
                except Exception as e:
                    raise _unreadable_for_export(path, e) from e
                at += len(data)
                if len(data) == 0:
                    log.warning("%s ended %.2f s early (cut short since it was indexed?); the excerpt "
                                "is completed with silence", path, (count - sent) / rate)
                    ended = True
            if data is None or len(data) == 0:
                data = np.zeros((min(block, count - sent), channels), dtype)
            yield _encoded(data, rate, out_subtype)[skip:]
            sent += len(data)
            data, skip = None, 0
        if data_bytes & 1:
            yield b"\x00"                                # RIFF chunks have an even length

    return ExcerptStream(header_length + data_bytes + (data_bytes & 1), from_byte(0), first / rate, last / rate,
                         f.close, header_length=header_length, frame_bytes=frame_bytes, from_byte=from_byte)


def _with_peak_time(wav: bytes, stamp: int) -> bytes:
    """The WAV ``wav`` with ``stamp`` as its PEAK chunk's time (``wav`` itself when it has none)."""
    pos = 12
    while pos + 8 <= len(wav):
        name, size = wav[pos:pos + 4], struct.unpack_from("<I", wav, pos + 4)[0]
        if name == b"data":
            break
        if name == b"PEAK" and size >= 8:
            return wav[:pos + 12] + struct.pack("<I", stamp) + wav[pos + 16:]
        pos += 8 + size + (size & 1)
    return wav


def _peak_time(path: str) -> int:
    """The time a float excerpt's PEAK chunk gives (seconds since 1970): the source's
    modification time, so every excerpt of a span is the same bytes (libsndfile writes the
    time it wrote it)."""
    try:
        return int(os.stat(path).st_mtime) & 0xFFFFFFFF
    except OSError:
        return 0


def _peaks(f: Any, count: int, block: int, dtype: str, channels: int) -> tuple[list[tuple[float, int]], int]:
    """Each channel's peak (absolute value, first frame holding it) over the next ``count``
    frames of ``f``, read a block at a time, as libsndfile writes them into a float WAV's PEAK
    chunk; and how many frames there were."""
    value, where = np.zeros(channels), np.zeros(channels, np.int64)
    seen = 0
    while seen < count:
        data = f.read(min(block, count - seen), dtype=dtype, always_2d=True)
        if len(data) == 0:
            break
        a = np.abs(np.ascontiguousarray(data.T))        # channel by channel: 40× faster than along axis 0
        top = a.max(axis=1)
        if np.isnan(top).any():                         # NaN is no peak
            a[np.isnan(a)] = 0
            top = a.max(axis=1)
        for ch in np.flatnonzero(top > value):          # a higher peak: the first frame holding it
            value[ch], where[ch] = top[ch], seen + int(np.argmax(a[ch]))
        seen += len(data)
    return [(float(v), int(w)) for v, w in zip(value, where)], seen


def _wav_header(rate: int, channels: int, subtype: str, comment: str, frames: int, data_bytes: int,
                peaks: list[tuple[float, int]] | None, stamp: int) -> bytes:
    """The header libsndfile writes for ``frames`` frames of WAV ``subtype`` (``data_bytes``
    of audio) with ``comment``: its header for no frames, with the lengths (and the PEAK chunk's
    peaks, and ``stamp`` as its time) put in."""
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=rate, channels=channels, format="WAV", subtype=subtype) as out:
        out.comment = comment
        out.software = "soundsift"
    head = bytearray(buf.getvalue())
    pos = 12
    while pos + 8 <= len(head):
        name, size = bytes(head[pos:pos + 4]), struct.unpack_from("<I", head, pos + 4)[0]
        if name == b"data":
            break
        if name == b"fact":
            struct.pack_into("<I", head, pos + 8, frames)
        elif name == b"PEAK":                           # version, timestamp, then value and frame a channel
            struct.pack_into("<I", head, pos + 12, stamp)
            for ch, (value, frame) in enumerate(peaks or ()):
                struct.pack_into("<fI", head, pos + 16 + 8 * ch, value, frame)
        pos += 8 + size + (size & 1)
    if head[:4] != b"RIFF" or pos + 8 != len(head) or head[pos:pos + 4] != b"data":
        raise RuntimeError(f"libsndfile wrote a WAV header soundsift does not know ({bytes(head[:64])!r})")
    struct.pack_into("<I", head, pos + 4, data_bytes)
    struct.pack_into("<I", head, 4, len(head) - 8 + data_bytes + (data_bytes & 1))
    return bytes(head)


def _encoded(data: np.ndarray, rate: int, subtype: str) -> bytes:
    """``data`` as the little-endian samples of a WAV's ``subtype`` (libsndfile's conversion,
    as :func:`excerpt_wav` writes them)."""
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", samplerate=rate, channels=data.shape[1], format="RAW", subtype=subtype,
                      endian="LITTLE") as out:
        out.write(data)
    return buf.getvalue()


def _fade(data: np.ndarray, n: int, *, fade_in: bool, fade_out: bool) -> None:
    """Raised-cosine fades of ``n`` frames (at most a quarter of the excerpt each), in place."""
    n = min(n, len(data) // 4)
    if n <= 0:
        return
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(data.dtype)[:, None]
    if fade_in:
        data[:n] *= ramp
    if fade_out:
        data[-n:] *= ramp[::-1]


def export_hits(hits: Sequence[Any], folder: str | Path, *, whole_files: bool = False,
                pad: float = 0.0, fade: float = DEFAULT_FADE, query: str = "",
                option: str = "--export") -> ExportResult:
    """Write ``hits`` (engine.query.Hit, best first) into ``folder``: the file for a whole-file
    match (or every hit with ``whole_files``), else the matched span as a WAV excerpt.

    Nothing in ``folder`` is overwritten: a name already there gets " (2)", " (3)" … A result
    that cannot be read is reported in ``failed`` and the others are written; so is one whose
    file changed since it was indexed (:func:`changed_since_indexed`, against the hit's ``size``
    and ``mtime_ns``), a whole file too: its match, and its score, are of audio it no longer
    holds (a span cut from it now would be another sound, or past its end); a folder that
    cannot be written to (no permission, a full disk) is an InvalidOutput naming it, raised
    after the manifest has recorded what was written before. ``pad`` and ``fade`` are seconds,
    finite and ≥ 0 (InvalidQuery otherwise, before anything is written).
    """
    for name, value in (("pad", pad), ("fade", fade)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not np.isfinite(value) or value < 0:
            raise InvalidQuery(f"{name} must be a finite number of seconds ≥ 0, got {value!r}")
    out = output_folder(folder, option)
    try:
        make_folder(out)
    except OSError as e:
        raise InvalidOutput(f"{out}: cannot create the {option} folder ({e.strerror or e})") from e
    result = ExportResult()
    try:
        _export_each(hits, out, result, whole_files, pad, fade)
    finally:
        if result.written:
            result.manifest = _append_manifest(out / MANIFEST, result.written, query)
    return result


def _export_each(hits: Sequence[Any], out: Path, result: ExportResult, whole_files: bool,
                 pad: float, fade: float) -> None:
    """The loop of :func:`export_hits`, filling ``result`` as it goes."""
    width = max(2, len(str(len(hits))))
    for rank, hit in enumerate(hits, start=1):
        source = Path(hit.path)
        start, end = float(hit.start), min(float(hit.end), float(hit.duration))
        changed = changed_since_indexed(source, indexed_state(hit))
        if changed is not None:
            log.debug("not exported: %s: %s", source, changed)     # result.failed: the caller says it
            result.failed.append((str(source), changed))
            continue
        try:
            if whole_files or is_whole_file(start, end, float(hit.duration)):
                target = _free_path(out, f"{rank:0{width}d}_{source.name}")
                _copy(source, target)
                item = Exported(target, "file", str(source), 0.0, float(hit.duration), hit.score, rank)
            else:
                data, cut_start, cut_end = excerpt_wav(source, start, end, pad=pad, fade=fade)
                take = take_name(hit)          # padded, it is the take with handles: the times say so
                target = _free_path(out, f"{rank:0{width}d}_{excerpt_name(source, cut_start, cut_end, take)}")
                _write(target, data)
                item = Exported(target, "excerpt", str(source), cut_start, cut_end, hit.score, rank)
        except UnreadableAudio as e:
            log.debug("not exported: %s", e)        # result.failed: the caller says it
            result.failed.append((e.path, e.reason))
            continue
        result.written.append(item)


def export_zip(hits: Sequence[Any], *, whole_files: bool = False, pad: float = 0.0,
               fade: float = DEFAULT_FADE, query: str = "") -> tuple[bytes, ExportResult]:
    """What :func:`export_hits` writes into a folder, as the bytes of a zip file (stored, not
    compressed: audio barely compresses), with ``not-exported.txt`` listing the results that
    could not be read. The result's paths are the names inside the zip. For the page's
    "download these results"."""
    with tempfile.TemporaryDirectory(prefix="soundsift-export-") as tmp:
        result = export_hits(hits, tmp, whole_files=whole_files, pad=pad, fade=fade, query=query)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
            for item in result.written:
                zf.write(item.path, item.path.name)
            if result.manifest is not None:
                zf.write(result.manifest, MANIFEST)
            if result.failed:
                zf.writestr(NOT_EXPORTED, "".join(f"{path}: {reason}\n" for path, reason in result.failed))
    result.written = [replace(item, path=Path(item.path.name)) for item in result.written]
    result.manifest = Path(MANIFEST) if result.manifest is not None else None
    return buf.getvalue(), result


def _copy(source: Path, target: Path) -> None:
    """``source`` copied to ``target``: UnreadableAudio when the source cannot be read (checked
    first; an empty file too: emptied since it was indexed, it holds no result; and one whose
    header is no audio's now: overwritten since, by a web page or a text, it is not the result),
    InvalidOutput when the copy then fails (the target's side: permission, full disk)."""
    check_openable(str(source))
    if source.stat().st_size == 0:
        raise UnreadableAudio(str(source), "empty: the file is 0 bytes now")
    probe(source)
    try:
        shutil.copy2(source, target)
    except OSError as e:
        target.unlink(missing_ok=True)
        raise InvalidOutput(f"{target}: cannot write the copy of {source} ({e.strerror or e})") from e


def _write(target: Path, data: bytes) -> None:
    try:
        target.write_bytes(data)
    except OSError as e:
        target.unlink(missing_ok=True)
        raise InvalidOutput(f"{target}: cannot write the excerpt ({e.strerror or e})") from e


#: characters Windows, exFAT and FAT drives refuse in a file name (a USB stick, a shared drive)
_UNPORTABLE = re.compile(r'[<>:"/\\|?*\x00-\x1f]')


def portable_name(name: str) -> str:
    """``name`` with what Windows, exFAT and FAT refuse replaced by "_" (and no trailing dots
    or spaces), so an export folder can live on any drive."""
    stem, suffix = os.path.splitext(_UNPORTABLE.sub("_", name))
    return (stem.rstrip(". ") or "_") + suffix


#: the longest file name, in UTF-8 bytes, that ext4, APFS, NTFS and exFAT all take (the last two
#: count 255 UTF-16 units, which UTF-8 never has fewer bytes than)
NAME_MAX_BYTES = 255
#: characters kept at the end of a shortened name's stem (an excerpt's times, "_12.5-22.5s",
#: "_3600.125-3610.125s")
_KEPT_TAIL = 20


def fitting_name(name: str, max_bytes: int = NAME_MAX_BYTES) -> str:
    """``name`` itself when it fits ``max_bytes`` of UTF-8, else its stem shortened in the
    middle ("…"), keeping its start, its last characters (an excerpt's times) and its suffix."""
    if len(name.encode("utf-8", "surrogateescape")) <= max_bytes:
        return name
    stem, suffix = os.path.splitext(name)
    tail = stem[-_KEPT_TAIL:] if len(stem) > 2 * _KEPT_TAIL else ""
    head = stem[:len(stem) - len(tail)]
    room = max_bytes - len(f"…{tail}{suffix}".encode("utf-8", "surrogateescape"))
    while head and len(head.encode("utf-8", "surrogateescape")) > room:
        head = head[:-1]
    return f"{head}…{tail}{suffix}"


def _free_path(folder: Path, name: str) -> Path:
    """``folder / name`` (made portable, and short enough for any drive: :func:`fitting_name`),
    or ``name (2)``, ``name (3)`` … when that is taken."""
    name = portable_name(name)
    target = folder / fitting_name(name)
    n = 2
    while target.exists():
        target = folder / _numbered(name, n)
        n += 1
    return target


def _numbered(name: str, n: int) -> str:
    """``name`` as ``stem (n).suffix``, its stem shortened as :func:`fitting_name` does so that
    the whole fits, the number kept."""
    mark = f" ({n})"
    stem, suffix = os.path.splitext(fitting_name(name, NAME_MAX_BYTES - len(mark)))
    return f"{stem}{mark}{suffix}"


def _append_manifest(path: Path, items: Sequence[Exported], query: str) -> Path:
    new = not path.exists()
    try:
        with open(path, "a", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(MANIFEST_COLUMNS)
            for it in items:       # text a spreadsheet would run as a formula ("=…", "-rain") stays text
                writer.writerow([as_csv_text(it.path.name), it.kind, as_csv_text(str(it.source)),
                                 f"{it.start:.3f}", f"{it.end:.3f}", f"{it.score:.4f}", it.rank, as_csv_text(query)])
    except OSError as e:
        raise InvalidOutput(f"{path}: cannot write the manifest ({e.strerror or e})") from e
    return path
