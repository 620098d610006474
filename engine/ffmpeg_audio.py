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
sample where the edit list is right). iTunes writes no edit list, only an ``iTunSMPB`` tag (priming,
padding, frames of sound): FFmpeg drops the priming it names, and ``frames`` is the tag's count. Any
other stream is read to where it ends; a raw stream — ADTS ``.aac``, ``.ac3``, ``.mp2``, ``.amr``,
``.dts`` — holds no length (FFmpeg's estimate from the bit rate of its start is off many times over
where the rate changes: VBR AAC, AMR's silence frames, two encodings joined end to end), so its
frames are counted when it is opened, from the frame headers, demuxed but not decoded. AMR is
decoded by OpenCORE's decoder where PyAV's FFmpeg has it; FFmpeg's own (PyAV 18.1.1's wheel has
no OpenCORE) cannot decode the silence frames of an AMR recorded with DTX, which are read as
silence of their length instead, and :attr:`FFmpegSound.note` says how many. An Ogg Opus file
(one libsndfile refuses or misreads: engine.audio) is counted so too: its packets' frames less the encoder's pre-skip, which FFmpeg's
decoder drops and its length (the last granule position, with any the stream starts at) counts.
An Ogg Vorbis file's length is its granule positions' (:meth:`FFmpegSound._vorbis_frames`), as
libsndfile reads it: FFmpeg starts the packets of one whose sound is all in one page a packet late
and trims that packet's frames of sound off its end (a 1 s tone read 43,972 frames of 44,100).
``seek`` is exact: in Opus, MP3, ALAC, WavPack and AAC it goes by the container's index to a
codec's preroll before the frame (:data:`SEEK_PREROLL_FRAMES`) and decodes on from there, placing each decoded
frame by its timestamp (an export of a long file's last second decodes about that second). AAC's
noise bands (PNS) are drawn from a state only a decode from the start gives, so there every frame
decoded after the seek is checked against a second decoder whose state differs
(:func:`_noise_drawn_decoder`): where the two part (a frame with a noise band), the frames from
there on are those of a decode from the start. In the other codecs, a raw stream (ADTS ``.aac``,
AC-3, MP2 …: no index), and where the timestamps are coarser than a frame (Matroska, WMA) it
decodes from the start up to the frame. ``seek_near`` goes by the index in every codec, decoding
only from shortly before the frame (what a waveform thumbnail of an hour-long M4A needs: a few
moments of it, not the hour before each, as loud if not the same noise).
"""
from __future__ import annotations

import logging
import os
from typing import Any, BinaryIO, Iterator

import numpy as np

from engine.errors import UnreadableAudio

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
#: frames :meth:`FFmpegSound.seek_near` decodes before the frame asked for, so that the decoder has
#: settled there (an AAC frame's output needs the frame before it: after 1024 frames, tones in an
#: M4A's AAC gave the samples a read from the start gives, bit for bit, wherever tried; noise AAC
#: codes as noise (PNS) is drawn anew after a seek: as loud, not the same samples)
NEAR_PREROLL = 2048
#: frames :meth:`FFmpegSound.seek` decodes before the frame asked for after going there by the
#: container's index, by FFmpeg's codec name: what each decoder needs to give there, sample for
#: sample, what a decode from the start gives. Opus: 2 s at the 48 kHz FFmpeg decodes it at (its
#: decoder's state converges slowly: 80 ms, RFC 7845's preroll, left errors up to 1.3e-3, 0.34 s
#: 1.5e-8; engine.audio's preroll for libsndfile's Ogg seek is 2 s too); MP3: 10 frames (a frame
#: may take its data from up to 511 bytes before it, its bit reservoir: 9 frames back at 8 kbit/s,
#: and overlaps the one before); ALAC and WavPack packets decode on their own. Every sample alike
#: at 66 positions (0, the middle, the last frame, past the end, 60 at random) in each of 14 files
#: of 10–20 s (tones, noise, clicks; Opus at 8–128 kbit/s, SILK and CELT, 16 and 48 kHz, granules
#: from 0 and past it; MP3 at 8–32 kbit/s, 8 and 44.1 kHz), from a fresh file and going back and
#: forth in one (session 36). Not Vorbis: FFmpeg's timestamps misplace a page's packets where its
#: blocks change size (around a click's short blocks: in a 12 s file by libsndfile, 448 frames
#: early after a seek to its middle, session 42). AAC (LC, mono or stereo, in a container with an
#: index): two packets, one for the overlap a frame's output shares with the frame before; but a
#: band the encoder codes as noise (PNS, which FFmpeg's encoder uses, even on a tone's quiet high
#: bands) is drawn by the decoder from a random state only a decode from the start gives (up to
#: 0.26 off after a seek), so its frames are checked (:data:`CHECKED_CODECS`). A codec not named
#: here is decoded from the start
SEEK_PREROLL_FRAMES = {"opus": 96000, "mp3float": 10 * 1152, "mp3": 10 * 1152, "alac": 0, "wavpack": 0,
                       "aac": NEAR_PREROLL}
#: codecs whose frames after a seek by the index are decoded twice, by two decoders whose random
#: states differ (:func:`_noise_drawn_decoder`), and kept only where both give the same samples:
#: those the state did not touch, so a decode from the start gives them too. Frames that differ
#: (a noise band) and all after them are decoded from the start instead
CHECKED_CODECS = frozenset({"aac"})
#: how far ahead :meth:`FFmpegSound.seek` reads on instead of seeking by the index
READ_ON_FRAMES = 4 * NEAR_PREROLL


#: how the reason a file gets begins when FFmpeg itself cannot be loaded (:class:`FFmpegUnavailable`)
FFMPEG_UNAVAILABLE = "FFmpeg could not be started"


class FFmpegUnavailable(UnreadableAudio):
    """FFmpeg (PyAV and the libraries its wheel carries) cannot be loaded in this process: every
    file it would read fails alike, the decoder's fault and not the file's, so a caller that reads
    many (a rebuild) says so once instead of naming each file as unreadable."""


def _load_av(name: str) -> Any:
    """The ``av`` module; :class:`FFmpegUnavailable` for the file ``name`` when it cannot be
    imported (not installed, or its FFmpeg libraries do not load)."""
    try:
        import av
    except (ImportError, OSError) as e:
        raise FFmpegUnavailable(name, f"{FFMPEG_UNAVAILABLE} (PyAV: {e}); install it again: "
                                      "pip install --force-reinstall av") from e
    return av


#: what a demuxer's files are called where the file's extension is not one of its own (an AAC
#: download named ``.mp3``, a file without an extension): an MP4 holding audio is an M4A
_DEMUXER_NAMES = {"mov": "M4A", "matroska": "MKA", "asf": "WMA"}


def container_name(name: str, demuxer: Any) -> str:
    """The format of the file ``name`` that FFmpeg's ``demuxer`` (an ``av.ContainerFormat``) reads,
    as the catalog keeps it and ``--format`` matches it: the extension where the demuxer takes
    it (``M4A``, ``WV``, ``AAC``, ``MP4`` …), else the container decoded (an M4A or a raw AAC
    stream named ``.mp3`` is ``M4A`` or ``AAC``, not ``MP3``: :data:`_DEMUXER_NAMES`)."""
    extension = os.path.splitext(name)[1].lstrip(".").lower()
    if extension and extension in {str(e).lower() for e in (demuxer.extensions or ())}:
        return extension.upper()
    first = str(demuxer.name).split(",")[0]
    return _DEMUXER_NAMES.get(first, first.upper())


log = logging.getLogger(__name__)


class FFmpegSound:
    """An audio file (a path, or a binary file object and its ``name``) decoded by FFmpeg, read
    like a ``soundfile.SoundFile`` (see the module docstring). OSError when it cannot be opened;
    ValueError, in FFmpeg's words, when it is not audio FFmpeg reads or holds no audio stream;
    :class:`FFmpegUnavailable` when FFmpeg itself cannot be loaded."""

    #: :meth:`seek` decodes from the start every time, as before it went by the index (for
    #: benchmarks/decoders.py's before/after)
    _decode_from_start = False

    def __init__(self, source: str | BinaryIO, name: str | None = None) -> None:
        self.name = name or str(source)
        #: what of the file is read otherwise than it was recorded, and why (AMR's silence frames
        #: where FFmpeg cannot decode them: :func:`_undecoded_amr_types`), for the reader to say
        self.note: str | None = None
        self._trims_end = False                        # the end is cut at ``frames`` here, not by FFmpeg
        av = _load_av(self.name)
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
            self.format = container_name(self.name, self._container.format)
            self.subtype = str(context.name).upper()
            self.tags = {str(k).lower(): str(v) for k, v in {**self._container.metadata, **stream.metadata}.items()}
            if _estimates_length(self._container, stream):     # a raw stream: FFmpeg's guess from the bit rate
                self.frames = self._demuxed_frames() or self.frames
                stream = self._container.streams.audio[0]
            elif _is_ogg_opus(self._container, stream):         # FFmpeg's length counts the pre-skip
                counted = self._demuxed_frames()
                self.frames = max(0, counted - _opus_pre_skip(stream, self.samplerate)) if counted else self.frames
                stream = self._container.streams.audio[0]
            elif _is_ogg_vorbis(self._container, stream):       # FFmpeg misplaces a stream's first packet
                self.frames = self._vorbis_frames()
                stream = self._container.streams.audio[0]
        except BaseException:
            self._container.close()
            raise
        self._end = self.frames if _states_exact_length(self._container, stream) or self._trims_end else None
        sound = _itunes_sound_frames(self.tags.get("itunsmpb"), self.frames)
        if sound is not None and _EXACT_LENGTH_DEMUXERS & set(str(self._container.format.name).split(",")):
            self.frames = self._end = sound            # no edit list dropped the padding: iTunSMPB says
        self._frames_decoded = self._decode()
        self._pending = np.zeros((0, self.channels), np.float32)
        self._position = 0
        self._reference: tuple[int, int] | bool | None = None     # :meth:`_timeline`, once found

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
        """Go to ``frame`` (from the start; ``whence`` other than 0 is not supported), exactly:
        what is read from there is what a read from the start gives (to the decoder's float
        rounding). A frame more than :data:`READ_ON_FRAMES` ahead, or behind, is reached by the
        container's index and :data:`SEEK_PREROLL_FRAMES` of decoding before it, in the codecs
        that settle there (:meth:`_seek_by_index`; in :data:`CHECKED_CODECS` only while two
        decoders agree); by decoding from the start in the others (and where the index lands
        too late); a frame just ahead by reading on."""
        if whence != 0:
            raise ValueError("FFmpegSound seeks from the start only")
        frame = max(0, int(frame))
        if not self._position <= frame <= self._position + READ_ON_FRAMES:
            if not self._seek_by_index(min(frame, self.frames - 1)) and frame < self._position:
                self._restart()                        # decode again from the start
        self._read_on(frame)
        return self._position

    def seek_near(self, frame: int) -> int:
        """Go to ``frame`` by the container's index, decoding from :data:`NEAR_PREROLL` frames
        before it (:meth:`seek` does so only where it is exact), and say which frame it is at: ``frame``
        where the container's timestamps count samples (MP4/M4A), near it where they are coarser
        (a millisecond in WMA) or the index lands later. What is read from there is what a read
        from the start gives once the decoder has settled (:data:`NEAR_PREROLL`).
        A moment near the start, or just ahead, is read on to instead. For drawing a waveform;
        ValueError (FFmpeg's words) when the container does not seek."""
        frame = max(0, int(frame))
        if self._position <= frame <= self._position + NEAR_PREROLL:
            self._read_on(frame)                       # as near as the preroll: read on to it
            return self._position
        if frame <= NEAR_PREROLL:                      # its start (the encoder's priming): from the start
            self._restart()
            self._read_on(frame)
            return self._position
        try:
            self._seek_container(frame)
        except Exception:
            self._restart()                            # a seek that failed half-way leaves nothing to read on from
            raise
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

    def near_frames(self) -> int | None:
        """The most frames :meth:`seek_near` decodes before the frame it lands on: its
        :data:`NEAR_PREROLL` and a packet either side of it (1024 frames of AAC, a WavPack block
        of up to seconds); None when the stream says nothing of its packets' length."""
        packet = self._packet_frames()
        return NEAR_PREROLL + 2 * packet if packet else None

    def _packet_frames(self) -> int:
        """Frames a packet decodes to: the codec's frame size, else the first packet's length
        (0 when neither is known, or the source is a file object, not opened twice)."""
        stream = self._container.streams.audio[0]
        if stream.codec_context.frame_size:
            return int(stream.codec_context.frame_size)
        if not isinstance(self._source, str):
            return 0
        with _open(self._av, self._source) as container:
            first = container.streams.audio[0]
            for packet in container.demux(first):
                if packet.duration and packet.time_base:
                    return int(round(packet.duration * packet.time_base * self.samplerate))
                if packet.size:
                    return 0
        return 0

    # -- decoding ---------------------------------------------------------------------------
    def _restart(self) -> None:
        """Back to the start: the container opened again, nothing decoded."""
        self._container.close()
        self._container = _open(self._av, self._source)
        self._frames_decoded = self._decode()
        self._pending = np.zeros((0, self.channels), np.float32)
        self._position = 0

    def _read_on(self, frame: int) -> None:
        """Decode on from where it is up to ``frame`` (or the end)."""
        while self._position < frame:
            if not len(self.read(min(frame - self._position, 1 << 16), dtype="float32", always_2d=True)):
                break

    def _seek_container(self, frame: int) -> None:
        """:meth:`seek_near` by the index: the container sought to the packet at or before
        :data:`NEAR_PREROLL` frames before ``frame``, then the frames decoded before ``frame``
        (by their timestamps) dropped unread."""
        stream = self._container.streams.audio[0]
        if not stream.time_base:
            raise ValueError("the stream has no time base to seek by")
        start, scale = stream.start_time or 0, float(stream.time_base) * self.samplerate
        try:
            self._container.seek(start + int((frame - NEAR_PREROLL) / scale), stream=stream)
        except self._av.error.FFmpegError as e:
            raise ValueError(getattr(e, "strerror", None) or str(e)) from e
        decoded = self._decoded()
        self._pending, self._position = np.zeros((0, self.channels), np.float32), frame
        for got in decoded:
            if got.pts is None:
                raise ValueError("decoded audio without timestamps to seek by")
            at = round((got.pts - start) * scale)
            if at + got.samples > frame:
                cut = max(0, frame - at)
                self._pending, self._position = self._block(got)[cut:], at + cut
                break
        self._frames_decoded = self._decode(decoded)

    def _seek_by_index(self, frame: int) -> bool:
        """:meth:`seek` by the container's index: the container sought to the packet at or before
        the codec's :data:`SEEK_PREROLL_FRAMES` before ``frame``, decoded from there and the
        frames before ``frame`` dropped, each placed by its timestamp on the timeline of a decode
        from the start (:meth:`_timeline`); whether it got there. False, nothing changed, where
        :meth:`_seek_preroll` says no or ``frame`` is within the preroll of the start; False, back
        at the start, where the index landed later than the preroll, a decoded frame has no
        timestamp (an Ogg file's last page), the stream ends before ``frame``, FFmpeg's seek
        fails or, in :data:`CHECKED_CODECS`, the two decoders part before ``frame`` is read
        (afterwards: :meth:`_checked_blocks`)."""
        preroll = self._seek_preroll()
        if preroll is None or frame <= preroll:
            return False
        timeline = self._timeline()
        if timeline is None:
            return False
        stream = self._container.streams.audio[0]
        scale, (ref_pts, ref_frame) = float(stream.time_base) * self.samplerate, timeline
        try:
            self._container.seek(ref_pts + (frame - preroll - ref_frame) * _ticks_per_frame(stream, self.samplerate),
                                 stream=stream)
            checked = str(stream.codec_context.name) in CHECKED_CODECS
            decoded, settled_from = self._checked_decoded() if checked else self._decoded(), frame - preroll
            for got in decoded:
                at = ref_frame + round((got.pts - ref_pts) * scale) if got.pts is not None else frame + 1
                if at > settled_from:                  # landed too late for the decoder to settle
                    break
                settled_from = frame
                if at + got.samples > frame:
                    block = self._block(got)
                    self._pending, self._position = block[frame - at:], frame
                    self._frames_decoded = (self._checked_blocks(decoded, at + len(block)) if checked
                                            else self._decode(decoded))
                    return True
        except (ValueError, self._av.error.FFmpegError) as e:     # (_DecodersParted among them)
            log.debug("%s: FFmpeg's seek to frame %d failed (%s): decoding from the start", self.name, frame, e)
        self._restart()
        return False

    def _timeline(self) -> tuple[int, int] | None:
        """(timestamp, frame) of the second frame a decode from the start gives: where the
        timestamps of the frames after it place them (the first may be cut by more than its
        timestamp says: FFmpeg's Opus decoder drops its resampler's delay, 24 frames, from a SILK
        stream's first frame). Found once, in a second opening of the file; None where the
        stream has fewer than two frames or they have no timestamps."""
        if self._reference is None:
            found: tuple[int, int] | bool = False
            try:
                with _open(self._av, self._source) as container:
                    first = None
                    for got in container.decode(container.streams.audio[0]):
                        if first is not None:
                            found = (int(got.pts), first) if got.pts is not None else False
                            break
                        first = got.samples
            except (OSError, ValueError, self._av.error.FFmpegError) as e:    # read() says it, at that point
                log.debug("%s: its first frames do not decode (%s): sought by decoding from the start", self.name, e)
            self._reference = found
        return self._reference or None

    def _seek_preroll(self) -> int | None:
        """The frames :meth:`_seek_by_index` decodes before the frame sought in this stream's codec
        (:data:`SEEK_PREROLL_FRAMES`); None where it does not seek by the index: a codec not
        named there, timestamps coarser than a frame (Matroska's and WMA's milliseconds), a raw
        stream without an index (ADTS, AC-3 …), a file object (read whole, not sought), an AAC
        stream whose frames cannot be checked (:func:`_aac_noise_packet`: HE-AAC, more than
        two channels)."""
        stream = self._container.streams.audio[0]
        name = str(stream.codec_context.name)
        preroll = SEEK_PREROLL_FRAMES.get(name)
        if (preroll is None or self._decode_from_start or not isinstance(self._source, str) or not self.samplerate
                or _ticks_per_frame(stream, self.samplerate) is None
                or _estimates_length(self._container, stream)
                or (name in CHECKED_CODECS and _aac_noise_packet(stream) is None)):
            return None
        return preroll

    def _checked_decoded(self) -> Iterator[Any]:
        """The decoded frames of the first audio stream from where the container is, as
        :meth:`_decoded` gives them, each decoded by two new decoders, one of them with its random
        state moved on (:func:`_noise_drawn_decoder`): :class:`_DecodersParted` at the first frame
        the two decode differently (one with a noise band, whose samples only a decode from the
        start gives), or where the second decoder cannot be made."""
        stream = self._container.streams.audio[0]
        try:
            decoder, other = _new_decoder(self._av, stream), _noise_drawn_decoder(self._av, stream)
            for packet in self._container.demux(stream):           # its last, empty packet flushes both
                mine, theirs = decoder.decode(packet), other.decode(packet)
                if len(mine) != len(theirs):
                    raise _DecodersParted(f"{len(mine)} and {len(theirs)} frames of a packet")
                for got, check in zip(mine, theirs):
                    if got.samples != check.samples or not np.array_equal(got.to_ndarray(), check.to_ndarray()):
                        raise _DecodersParted(f"a frame at {got.pts} decoded two ways")
                    yield got
        except self._av.error.FFmpegError as e:
            raise ValueError(getattr(e, "strerror", None) or str(e)) from e

    def _checked_blocks(self, decoded: Iterator[Any], at: int) -> Iterator[np.ndarray]:
        """:meth:`_decode`'s blocks of the checked frames ``decoded`` (:meth:`_checked_decoded`),
        the first of them at frame ``at``; from where the two decoders part on, a decode from the
        start's (the container opened again), cut at the frame reached."""
        try:
            for frame in decoded:
                block = self._block(frame)
                yield block
                at += len(block)
        except _DecodersParted as e:
            log.debug("%s: %s at frame %d: decoding from the start", self.name, e, at)
            self._container.close()
            self._container = _open(self._av, self._source)
            for block in self._decode():
                if at < len(block):
                    yield block[at:]
                at = max(0, at - len(block))

    def _demuxed_frames(self) -> int:
        """The stream's length in frames as its packets say (demuxed, not decoded: each ADTS,
        AC-3, DTS, MPEG audio or AMR frame's header gives its length), the container opened again
        after; 0 when a packet does not say. A stream that breaks off is counted up to there
        (where decoding stops too). Each packet's length is rounded to whole frames: the raw
        AC-3 and DTS demuxers count in 90 kHz ticks, which a 44.1 kHz frame's 1536 or 512
        samples are not a whole number of (summed as ticks, an AC-3 of 4 s at 44.1 kHz came 39
        frames short of the 176,640 it decodes to)."""
        stream = self._container.streams.audio[0]
        total, time_base = 0, stream.time_base          # (read before the container is closed)
        per_tick = float(time_base) * self.samplerate if time_base else 0.0
        undecoded, silent, packets = _undecoded_amr_types(self._av, stream), 0, 0
        try:
            for packet in self._container.demux(stream):
                if packet.size and not packet.duration:
                    total = 0
                    break
                total += round((packet.duration or 0) * per_tick)
                packets += bool(packet.size)
                silent += bool(undecoded) and _amr_frame_type(packet) in undecoded
        except self._av.error.FFmpegError:
            pass                                       # read() raises it, in FFmpeg's words, at that point
        if silent:
            self.note = _amr_silence_note(silent, packets)
        self._container.close()
        self._container = _open(self._av, self._source)
        return int(total)

    def _vorbis_frames(self) -> int:
        """The length of an Ogg Vorbis stream in frames: its last granule position less the one
        it starts at. FFmpeg's Ogg demuxer places the first packet (which decodes to nothing) by the
        first page's granule position and the packets on it, except where that page is also the
        last (a short or quiet sound, all in one page): it then starts the packets at 0, a packet
        late, so the encoder's end trimming it works out drops that packet's frames of sound too
        (128 of a 1 s tone: it read 43,972 frames of 44,100); and where the granule positions
        start past 0, its start time (so its length) is a packet off. Where the stream is one
        page, it is read here without FFmpeg's end trimming and cut at its granule position, or
        at what it decodes to where that is less (a stream that starts past 0: the Vorbis
        spec's reading, and libsndfile's); else its start is the first packet's timestamp and
        duration. The container opened again after."""
        stream = self._container.streams.audio[0]
        first_page = _ogg_vorbis_first_audio_page(self._source)
        time_base = stream.time_base
        ticks = float(time_base) * self.samplerate if time_base else 0.0
        try:
            if first_page is not None and first_page[1]:         # the whole stream in one page
                self._trims_end = True
                decoded = sum(len(block) for block in self._decode())
                frames = min(decoded, first_page[0])             # (a Vorbis granule counts frames)
            else:                                               # FFmpeg's start less the first packet's
                packet, frames = next(iter(self._container.demux(stream)), None), self.frames
                if frames and packet is not None and packet.pts is not None and packet.duration and ticks:
                    start = max(0, round((packet.pts + packet.duration) * ticks))
                    frames = max(0, frames + round((stream.start_time or 0) * ticks) - start)
        except (ValueError, self._av.error.FFmpegError) as e:   # read() says it, at that point
            log.debug("%s: its Vorbis packets do not decode (%s): FFmpeg's length kept", self.name, e)
            self._trims_end, frames = False, self.frames
        self._container.close()
        self._container = _open(self._av, self._source)
        return frames

    def _count_frames(self) -> int:
        """The stream's length found by decoding it (for a container that does not say)."""
        with _open(self._av, self._source) as container:
            return sum(frame.samples for frame in container.decode(container.streams.audio[0]))

    def _decode(self, decoded: Iterator[Any] | None = None) -> Iterator[np.ndarray]:
        """(frames, channels) float32 blocks of ``decoded`` (default: :meth:`_decoded`), in order."""
        for frame in self._decoded() if decoded is None else decoded:
            yield self._block(frame)

    def _decoded(self) -> Iterator[Any]:
        """FFmpeg's decoded frames of the first audio stream from where the container is (by
        :func:`_preferred_decoder` where it names one); a stream that breaks off raises
        ValueError with FFmpeg's words for it."""
        stream = self._container.streams.audio[0]
        if self._trims_end:                            # the decoder's start skips applied in _block
            stream.codec_context.flags2 |= self._av.codec.context.Flags2.skip_manual
        try:
            decoder = _preferred_decoder(self._av, stream)
            undecoded = _undecoded_amr_types(self._av, stream) if decoder is None else frozenset()
            if decoder is None and not undecoded:
                yield from self._container.decode(stream)
            else:                                      # its last, empty packet flushes the decoder
                for packet in self._container.demux(stream):
                    if undecoded and _amr_frame_type(packet) in undecoded:
                        yield self._silence(packet)
                    else:
                        yield from (decoder or stream.codec_context).decode(packet)
        except self._av.error.FFmpegError as e:
            raise ValueError(getattr(e, "strerror", None) or str(e)) from e

    def _silence(self, packet: Any) -> Any:
        """A decoded frame of silence as long as the AMR ``packet`` (a frame FFmpeg's decoder cannot
        decode: :func:`_undecoded_amr_types`), placed at its timestamp. Where the file's opening did
        not count them (AMR in a container other than a raw ``.amr``), the first is logged."""
        if self.note is None:
            self.note = _amr_silence_note(None, None)
            log.warning("%s: %s", self.name, self.note)
        seconds = float(packet.duration * packet.time_base) if packet.duration and packet.time_base else AMR_FRAME_SECONDS
        frame = self._av.AudioFrame.from_ndarray(np.zeros((1, round(seconds * self.samplerate)), np.float32),
                                                 format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = self.samplerate, packet.pts, packet.time_base
        return frame

    def _block(self, frame: Any) -> np.ndarray:
        """A decoded frame's samples as (frames, channels) float32; where the decoder leaves its
        skips to the reader (:meth:`_vorbis_frames`), less the frames it says to skip at the start
        (those at the end are left to :meth:`read`'s cut at ``frames``)."""
        block = _float_frames(frame.to_ndarray(), frame.format.name, frame.format.is_planar, self.channels)
        return block[_start_skip(frame):] if self._trims_end else block


class _DecodersParted(ValueError):
    """The two decoders of :meth:`FFmpegSound._checked_decoded` decoded a frame differently."""


def _new_decoder(av: Any, stream: Any) -> Any:
    """A new decoder for ``stream``'s codec, set up as its own (its extradata, rate and layout)."""
    context = stream.codec_context
    decoder = av.CodecContext.create(str(context.name), "r")
    decoder.extradata = context.extradata
    decoder.sample_rate = context.sample_rate
    if context.layout:
        decoder.layout = context.layout
    return decoder


#: the syntax elements (ISO/IEC 14496-3 §4.4.2.1) :func:`_aac_noise_packet` writes: a single
#: channel element (SCE) for mono, a channel pair element (CPE) for stereo, then the end
_SCE, _CPE, _END = 0, 1, 7
#: an AAC individual channel stream of one long window whose one scale factor band is coded as
#: noise (PNS), as (value, bits): global gain, ics_info (reserved bit, window sequence, window
#: shape, max_sfb 1, no prediction), section data (codebook 13, NOISE_HCB, for one band), its
#: noise energy (9 bits), no pulse, TNS or gain control data; a noise band has no spectral data
#: the sample rates an AudioSpecificConfig's 4-bit index names (ISO/IEC 14496-3 §1.6.3.4)
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_NOISE_ICS = ((100, 8), (0, 1), (0, 2), (0, 1), (1, 6), (0, 1), (13, 4), (1, 5), (256, 9), (0, 1), (0, 1), (0, 1))


def _aac_noise_packet(stream: Any) -> bytes | None:
    """An AAC frame for ``stream``'s decoder whose one band is noise, so that decoding it draws
    from the decoder's random state (:func:`_noise_drawn_decoder`); None where ``stream`` is not
    AAC-LC (its AudioSpecificConfig's object type 2: not HE-AAC, whose SBR keeps more state that
    a seek loses) of one or two channels."""
    context = stream.codec_context
    config = bytes(context.extradata or b"")
    if len(config) < 2 or str(context.profile or "") != "LC" or config[0] >> 3 != 2:
        return None
    rate_index = (config[0] & 0x07) << 1 | config[1] >> 7     # after 5 bits of object type
    channels = (config[1] >> 3) & 0x0F                         # and 4 of the rate's index
    if (rate_index >= len(_AAC_RATES) or _AAC_RATES[rate_index] != context.sample_rate    # (implicit SBR
            or channels not in (1, 2) or channels != len(context.layout.channels if context.layout else ())):
        return None                                                                       # doubles it)
    fields = ([(_SCE, 3), (0, 4), *_NOISE_ICS] if channels == 1
              else [(_CPE, 3), (0, 4), (0, 1), *_NOISE_ICS, *_NOISE_ICS])    # (no common window)
    bits = "".join(format(value, f"0{n}b") for value, n in [*fields, (_END, 3)])
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def _noise_drawn_decoder(av: Any, stream: Any) -> Any:
    """A new decoder for ``stream`` (AAC) whose random state has been moved on from a new one's
    (and so from any other's that has decoded the same frames since it was new): it has decoded
    :func:`_aac_noise_packet` and been flushed. :class:`_DecodersParted` where that packet did not
    decode to noise (the state might not have moved)."""
    packet = _aac_noise_packet(stream)
    decoder = _new_decoder(av, stream)
    frames = decoder.decode(av.Packet(packet)) if packet is not None else []
    if not any(frame.to_ndarray().any() for frame in frames):
        raise _DecodersParted("the noise packet drew no noise")
    decoder.flush_buffers()
    return decoder


def _ticks_per_frame(stream: Any, rate: int) -> int | None:
    """How many of ``stream``'s time base ticks one frame at ``rate`` lasts, where that is a whole
    number (MP4/M4A and WavPack count frames, Ogg Opus 48 kHz samples, MP3 1/14,112,000 s);
    None where a tick is coarser or the ticks do not divide evenly."""
    if not stream.time_base or not rate:
        return None
    ticks = 1 / (stream.time_base * rate)
    return int(ticks) if ticks.denominator == 1 and ticks >= 1 else None


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


#: decoders taken instead of FFmpeg's own for a codec, where PyAV's FFmpeg carries them: FFmpeg's
#: AMR decoders cannot decode the comfort-noise (SID) frames an encoder with DTX writes in silences
#: ("Not yet implemented in FFmpeg"), which left such a recording unreadable; OpenCORE's do
_PREFERRED_DECODERS = {"amrnb": "libopencore_amrnb", "amrwb": "libopencore_amrwb"}


def _preferred_decoder(av: Any, stream: Any) -> Any:
    """A new decoder context of :data:`_PREFERRED_DECODERS` for ``stream``'s codec; None where
    there is none (FFmpeg's own decodes it then)."""
    name = _PREFERRED_DECODERS.get(str(stream.codec_context.name))
    if name is None:
        return None
    try:
        decoder = av.CodecContext.create(name, "r")
    except av.codec.codec.UnknownCodecError:        # a build without OpenCORE
        return None
    decoder.sample_rate = stream.codec_context.sample_rate
    return decoder


#: the frame types (bits 1–4 of an AMR frame's first byte: RFC 4867 §5.3) that FFmpeg's own AMR
#: decoders cannot decode, by codec: AMR-NB's comfort-noise (SID) frames 8–11, AMR-WB's 9, a lost
#: frame (WB 14), no data (15), the types reserved between. An encoder with DTX writes the SID
#: and no-data frames where it is quiet; FFmpeg's decoders fail on each ("Not yet implemented in
#: FFmpeg", "Invalid data found when processing input"): without OpenCORE (PyAV 18.1.1's wheel)
#: they are read as silence of their length (:meth:`FFmpegSound._silence`), not comfort noise
_UNDECODED_AMR_TYPES = {"amrnb": frozenset(range(8, 16)), "amrwb": frozenset(range(9, 16))}
#: how long one AMR frame lasts (seconds), whatever its type
AMR_FRAME_SECONDS = 0.02


def _undecoded_amr_types(av: Any, stream: Any) -> frozenset[int]:
    """The frame types of :data:`_UNDECODED_AMR_TYPES` for ``stream``'s codec where FFmpeg's own
    decoder reads it (no :func:`_preferred_decoder`); empty for any other stream."""
    kinds = _UNDECODED_AMR_TYPES.get(str(stream.codec_context.name), frozenset())
    return kinds if kinds and _preferred_decoder(av, stream) is None else frozenset()


def _amr_frame_type(packet: Any) -> int | None:
    """The frame type in an AMR ``packet``'s header byte (its first: RFC 4867 §5.3); None for
    an empty packet."""
    return (bytes(packet)[0] >> 3) & 0x0F if packet.size else None


def _amr_silence_note(silent: int | None, frames: int | None) -> str:
    """What a reader says of an AMR file whose ``silent`` frames of ``frames`` (None: uncounted)
    are read as silence (:data:`_UNDECODED_AMR_TYPES`)."""
    which = f"{silent} of its {frames} frames are" if silent is not None else "some of its frames are"
    return (f"{which} AMR silence frames (DTX's comfort noise or no data), which FFmpeg's own decoder "
            "cannot decode (PyAV's FFmpeg has no OpenCORE decoder): read as silence")


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


#: FFmpeg's demuxers for raw streams, which hold no length: ADTS (``.aac``), AC-3 and E-AC-3,
#: AMR, DTS. FFmpeg estimates one from the bit rate of the stream's start, far off where the rate
#: changes (VBR AAC with a quiet start; AMR, whose silence frames are 6 bytes, its speech 32; two
#: encodings joined end to end: an AC-3 of 4 s said 16.1 s, an AMR of 4 s 9.0 s, session 33; a
#: DTS of 8 s 18.7 s, session 42), and off by the rate's rounding where it does not: a DTS
#: header's nominal 1411.2 kbit/s is 1413 at 48 kHz (4.0051 s said for 4 s)
_ESTIMATING_DEMUXERS = frozenset({"aac", "ac3", "eac3", "amr", "dts"})
#: FFmpeg's MPEG audio demuxer, and the codecs whose raw streams in it are counted likewise (MPEG
#: layer I and II, ``.mp2``: 4 s said 14.1 s). An MP3's length it takes from a Xing or Info
#: header, where one is, which also says the encoder's delay that decoding drops: left as it is
_MPEG_AUDIO_DEMUXER, _COUNTED_MPEG_CODECS = "mp3", frozenset({"mp1", "mp2", "mp1float", "mp2float"})


def _estimates_length(container: Any, stream: Any) -> bool:
    """Whether ``container``'s length for ``stream`` is FFmpeg's estimate from the bit rate (a
    raw ADTS, AC-3, AMR, DTS or MPEG layer I/II stream)."""
    demuxers = set(str(container.format.name).split(","))
    if _MPEG_AUDIO_DEMUXER in demuxers:
        return str(stream.codec_context.name) in _COUNTED_MPEG_CODECS
    return bool(_ESTIMATING_DEMUXERS & demuxers)


#: FFmpeg's Ogg demuxer; an Opus stream in it starts with its encoder's pre-skip (``OpusHead``'s
#: bytes 10–11: 48 kHz samples the decoder drops) and may start at a granule position other than 0
_OGG_DEMUXER, _OPUS_HEAD = "ogg", b"OpusHead"


def _is_ogg_opus(container: Any, stream: Any) -> bool:
    """Whether ``stream`` is Opus in an Ogg file: FFmpeg's length for it (the last granule
    position) counts the pre-skip and any starting granule position, which decoding drops."""
    return (_OGG_DEMUXER in str(container.format.name).split(",")
            and str(stream.codec_context.name) in ("opus", "libopus"))


def _is_ogg_vorbis(container: Any, stream: Any) -> bool:
    """Whether ``stream`` is Vorbis in an Ogg file (:meth:`FFmpegSound._vorbis_frames`)."""
    return (_OGG_DEMUXER in str(container.format.name).split(",")
            and str(stream.codec_context.name) in ("vorbis", "libvorbis"))


def _ogg_vorbis_first_audio_page(source: str | BinaryIO) -> tuple[int, bool] | None:
    """:func:`engine.ogg_chain.vorbis_first_sound_page` of an Ogg file (a path, or bytes open);
    None where it cannot be read."""
    from engine.ogg_chain import vorbis_first_sound_page
    try:
        if isinstance(source, str):
            with open(source, "rb") as f:
                return vorbis_first_sound_page(f)
        source.seek(0)
        return vorbis_first_sound_page(source)
    except OSError:
        return None


def _start_skip(frame: Any) -> int:
    """The frames a decoded ``frame`` says to drop from its start (its skip-samples side data,
    there where the decoder leaves skipping to the caller); 0 where it says none."""
    side_data = frame.side_data
    for entry in side_data:         # PyAV 18.1.1 iterates its types (a mapping), earlier ones its entries
        data = entry if hasattr(entry, "type") else side_data[entry]
        if "SKIP_SAMPLES" in str(data.type).upper():
            return int.from_bytes(bytes(data)[:4], "little")
    return 0


def _opus_pre_skip(stream: Any, rate: int) -> int:
    """The frames at ``rate`` an Ogg Opus ``stream``'s header says the decoder drops at its start
    (0 when it has no ``OpusHead``)."""
    head = bytes(stream.codec_context.extradata or b"")
    if len(head) < 12 or not head.startswith(_OPUS_HEAD):
        return 0
    return int(round(int.from_bytes(head[10:12], "little") * rate / 48000))


def _itunes_sound_frames(smpb: str | None, frames: int) -> int | None:
    """The frames of sound an ``iTunSMPB`` tag (Apple's: hex words, the 2nd the priming, the
    3rd the padding, the 4th the sound's frames) says an AAC stream of ``frames`` frames holds,
    where the stream counts more than the sound, as far as the priming and padding go (an
    M4A without an edit list, as iTunes writes them); None otherwise (no tag, one that does
    not parse, or one left stale by an edit: a length it cannot be)."""
    words = (smpb or "").split()
    try:
        priming, padding, sound = (int(w, 16) for w in words[1:4])
    except ValueError:
        return None
    return sound if 0 < sound < frames <= sound + priming + padding else None


def _container_frames(container: Any, stream: Any, rate: int) -> int:
    """The stream's length in frames as the container gives it (0 when it does not say)."""
    if stream.duration and stream.time_base:
        return int(round(float(stream.duration * stream.time_base) * rate))
    if container.duration:
        return int(round(container.duration / 1_000_000 * rate))
    return 0
