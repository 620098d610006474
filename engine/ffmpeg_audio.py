"""Reading the formats libsndfile cannot: AAC and ALAC in ``.m4a``, WavPack, Monkey's Audio, WMA …

Voice memos, downloaded sounds and some archives come as ``.m4a``, ``.wv`` or ``.wma``;
libsndfile reads none of them. :class:`FFmpegSound` decodes them with FFmpeg through PyAV (its
wheel carries FFmpeg's libraries) behind the part of ``soundfile.SoundFile``'s interface soundsift
uses — ``samplerate``, ``channels``, ``frames``, ``format``, ``subtype``, ``read``, ``seek``,
``copy_metadata`` — so :func:`engine.audio.open_sound` hands one out for these extensions and
the indexer, the player, thumbnails, export and the trainer read them unchanged.

``frames`` is what the container says (its duration at the stream's rate). An AAC encoder adds
priming samples before the sound (1024 by FFmpeg's encoder, 2112 by Apple's) and padding after it
up to a whole 1024-sample frame; an MP4/M4A's edit list says which of them are sound, its duration
counts only those, and FFmpeg's decoder drops the priming but not the padding. Reading an MP4/M4A
therefore stops at ``frames`` (an AAC file then reads as long as the sound encoded, sample for
sample where the edit list is right); any other stream is read to where it ends (a raw ADTS
``.aac`` holds no length: its ``frames`` is FFmpeg's estimate from the bit rate). ``seek``
decodes from the start up to the frame asked for (exact, if slow for long files: these formats
are mostly short recordings).
"""
from __future__ import annotations

import os
from typing import Any, BinaryIO

import numpy as np

#: extensions read through FFmpeg (the formats libsndfile does not read)
FFMPEG_EXTENSIONS = frozenset({".m4a", ".m4b", ".aac", ".alac", ".wma", ".ape", ".wv", ".mka", ".ac3", ".tta",
                               ".mp2", ".amr", ".dts"})
#: video files whose sound FFmpeg reads when one is given as a query ("more like this" from a
#: director's reference clip); a library scan does not index them
VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"})
#: soundfile's metadata names, as FFmpeg's container tags name them
_STANDARD_TAGS = {"title": "title", "artist": "artist", "album": "album", "comment": "comment",
                  "genre": "genre", "date": "date", "copyright": "copyright", "encoder": "software",
                  "track": "tracknumber"}
#: integer sample formats → their full scale
_FULL_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}


class FFmpegSound:
    """An audio file (a path, or a binary file object and its ``name``) decoded by FFmpeg, read
    like a ``soundfile.SoundFile`` (see the module docstring). OSError when it cannot be opened;
    ValueError, in FFmpeg's words, when it is not audio FFmpeg reads or holds no audio stream."""

    def __init__(self, source: str | BinaryIO, name: str | None = None) -> None:
        import av
        self.name = name or str(source)
        self._source = source
        self._av = av
        self._container = _open(av, source)
        try:
            if not self._container.streams.audio:
                raise ValueError("no audio stream in the file")
            stream = self._container.streams.audio[0]
            context = stream.codec_context
            self.samplerate = int(context.sample_rate or stream.rate or 0)
            self.channels = max(1, len(context.layout.channels)) if context.layout else 1
            self.frames = (_container_frames(self._container, stream, self.samplerate)      # (a file object is
                           or (self._count_frames() if isinstance(source, str) else 0))   # not opened twice)
            self.format = (os.path.splitext(self.name)[1].lstrip(".").upper()
                           or str(self._container.format.name).split(",")[0].upper())
            self.subtype = str(context.name).upper()
            self.tags = {str(k).lower(): str(v) for k, v in {**self._container.metadata, **stream.metadata}.items()}
        except BaseException:
            self._container.close()
            raise
        self._end = self.frames if _states_exact_length(self._container, stream) else None
        self._frames_decoded = self._decode()
        self._pending = np.zeros((0, self.channels), np.float32)
        self._position = 0

    # -- soundfile's interface --------------------------------------------------------------
    def read(self, frames: int = -1, dtype: str = "float64", always_2d: bool = False) -> np.ndarray:
        """The next ``frames`` frames (all that remain for -1), as (frames, channels) in [-1, 1);
        none past ``frames`` of an MP4/M4A (its encoder's padding: see the module docstring)."""
        if self._end is not None:
            left = max(0, self._end - self._position)
            frames = left if frames < 0 else min(frames, left)
        parts, have = [self._pending], len(self._pending)
        while frames < 0 or have < frames:
            block = next(self._frames_decoded, None)
            if block is None:
                break
            parts.append(block)
            have += len(block)
        data = np.concatenate(parts) if len(parts) > 1 else parts[0]
        take = len(data) if frames < 0 else min(frames, len(data))
        out, self._pending = data[:take], data[take:]
        self._position += take
        out = out.astype(dtype, copy=False)
        return out if always_2d or self.channels > 1 else out[:, 0]

    def seek(self, frame: int, whence: int = 0) -> int:
        """Go to ``frame`` (from the start; ``whence`` other than 0 is not supported)."""
        if whence != 0:
            raise ValueError("FFmpegSound seeks from the start only")
        if frame < self._position:                     # decode again from the start
            self._container.close()
            self._container = _open(self._av, self._source)
            self._frames_decoded = self._decode()
            self._pending = np.zeros((0, self.channels), np.float32)
            self._position = 0
        while self._position < frame:
            if not len(self.read(min(frame - self._position, 1 << 16), dtype="float32", always_2d=True)):
                break
        return self._position

    def copy_metadata(self) -> dict[str, str]:
        """The standard tags (title, artist, album, comment, genre, date …) under soundfile's names."""
        return {name: self.tags[tag] for tag, name in _STANDARD_TAGS.items() if self.tags.get(tag)}

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "FFmpegSound":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- decoding ---------------------------------------------------------------------------
    def _count_frames(self) -> int:
        """The stream's length found by decoding it (for a container that does not say)."""
        with _open(self._av, self._source) as container:
            return sum(frame.samples for frame in container.decode(container.streams.audio[0]))

    def _decode(self):
        """(frames, channels) float32 blocks of the first audio stream, in order; a stream that
        breaks off raises ValueError with FFmpeg's words for it."""
        try:
            for frame in self._container.decode(self._container.streams.audio[0]):
                yield _float_frames(frame.to_ndarray(), frame.format.name, frame.format.is_planar, self.channels)
        except self._av.error.FFmpegError as e:
            raise ValueError(getattr(e, "strerror", None) or str(e)) from e


def _open(av: Any, source: str | BinaryIO) -> Any:
    """``av.open(source)`` (a path, or a binary file read from its start); FFmpeg's complaint
    about the data (not the file system's) as a ValueError saying it in words ("Invalid data
    found when processing input")."""
    if not isinstance(source, str):
        source.seek(0)
    try:
        return av.open(source)
    except av.error.FFmpegError as e:
        if isinstance(e, OSError):
            raise
        raise ValueError(getattr(e, "strerror", None) or str(e)) from e


def _float_frames(raw: np.ndarray, sample_format: str, planar: bool, channels: int) -> np.ndarray:
    """A decoded frame's samples as (frames, channels) float32 in [-1, 1)."""
    data = raw.T if planar else raw.reshape(-1, channels)
    kind = sample_format.rstrip("p")
    if kind in _FULL_SCALE:
        scaled = data.astype(np.float64 if kind in ("s32", "s64") else np.float32)
        if kind == "u8":
            scaled = scaled - 128.0
        data = scaled / _FULL_SCALE[kind]
    return np.ascontiguousarray(data, dtype=np.float32)


#: FFmpeg's demuxer for MP4, M4A and QuickTime: the stream's duration comes from its sample
#: table and edit list, exact to the frame
_EXACT_LENGTH_DEMUXERS = frozenset({"mov", "mp4", "m4a"})


def _states_exact_length(container: Any, stream: Any) -> bool:
    """Whether ``container`` gives ``stream``'s length exactly (an MP4/M4A whose stream says its
    duration), so that decoded samples past it are the encoder's padding, not sound."""
    return bool(stream.duration and stream.time_base
                and _EXACT_LENGTH_DEMUXERS & set(str(container.format.name).split(",")))


def _container_frames(container: Any, stream: Any, rate: int) -> int:
    """The stream's length in frames as the container gives it (0 when it does not say)."""
    if stream.duration and stream.time_base:
        return int(round(float(stream.duration * stream.time_base) * rate))
    if container.duration:
        return int(round(container.duration / 1_000_000 * rate))
    return 0
