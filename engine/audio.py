"""Decoding: soundfile (FFmpeg for what libsndfile cannot read) → mono float32 → resampled to
the model's rate (soxr), streamed.

Files are read in blocks so memory stays bounded for hour-long recordings; segments
(engine.segments) are cut from the resampled stream as soon as they are complete.
Every failure becomes :class:`~engine.errors.UnreadableAudio` naming the file and why.
"""
from __future__ import annotations

import functools
import io
import logging
import os
import re
import struct
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Sequence

import numpy as np
import soundfile as sf
import soxr

from engine.errors import InvalidQuery, UnreadableAudio
from engine.ffmpeg_audio import FFMPEG_EXTENSIONS, VIDEO_EXTENSIONS, FFmpegSound
from engine.ogg_chain import (ByteRange, ChainedOgg, LinkFormat, OggLink, link_format, ogg_links, ogg_start,
                              read_link_by_link)
from engine.stderr_capture import StderrCapture, summarised
from engine.sound_designer import SD2_EXTENSION, is_sd2, open_sd2
from engine.segments import MIN_TAKE, SegmentPolicy, regular_take, take_bounds
from engine.system_files import is_appledouble, is_system_folder
from engine.tag_comments import id3v2_end

#: the containers libsndfile reads
SNDFILE_EXTENSIONS = frozenset({
    ".wav", ".wave", ".bwf", ".aif", ".aiff", ".aifc", ".flac", ".ogg", ".oga",
    ".opus", ".mp3", ".au", ".snd", ".caf", ".w64", ".rf64",
})
#: Ogg Speex's extension (speexenc's): an Ogg file, opened as the others are, read by FFmpeg as
#: libsndfile 1.2.2 refuses Speex (:func:`_begins_ogg`), as Speex in ``.ogg`` or ``.oga`` is
SPEEX_EXTENSION = ".spx"
#: extensions scanned by the indexer: libsndfile's, those FFmpeg reads (engine.ffmpeg_audio), Ogg
#: Speex and Sound Designer II (engine.sound_designer)
AUDIO_EXTENSIONS = SNDFILE_EXTENSIONS | FFMPEG_EXTENSIONS | {SPEEX_EXTENSION, SD2_EXTENSION}


def is_audio_name(name: str) -> bool:
    """True if ``name`` has one of :data:`AUDIO_EXTENSIONS` (case-insensitive): a file a walk of
    its folder indexes (indexer.scan)."""
    return os.path.splitext(name)[1].lower() in AUDIO_EXTENSIONS


#: libsndfile's container names as a user knows them: a WAVE_FORMAT_EXTENSIBLE file (what SoX
#: and many recorders write for 24-bit or multichannel audio) is a WAV
CONTAINER_NAMES = {"WAVEX": "WAV"}

BLOCK_SECONDS = 20.0
#: how the note on a sound that breaks off says where its audio ends (:func:`iter_blocks`, an Ogg
#: file cut short), so a reader of its ``notes`` tells it from what a decoder printed meanwhile
STOPPED_AT = "decoding stopped at"

log = logging.getLogger(__name__)


def audio_files(paths: Iterable[str | Path], missing: list[Path] | None = None) -> list[Path]:
    """The audio files named by ``paths`` (files, or folders searched recursively), absolute,
    in the given order with each folder's files sorted; :class:`InvalidQuery` for a path that
    does not exist, unless ``missing`` is a list: such a path is then added to it, as given, and
    the rest are gathered (``soundsift tag a.wav gone.wav`` says so and tags a.wav). Inside
    folders, what operating systems leave (engine.system_files: macOS's ``._`` files, hidden and
    recycle folders) is passed over, as the indexer's scan does (which also records unreadable
    folders)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = []
            for folder, subfolders, names in os.walk(p):
                subfolders[:] = [d for d in subfolders if not is_system_folder(d)]
                found += [Path(folder) / n for n in names
                          if os.path.splitext(n)[1].lower() in AUDIO_EXTENSIONS
                          and not is_appledouble(os.path.join(folder, n), n)]
            out += sorted(f for f in found if f.is_file())
        elif p.is_file():
            out.append(p)
        elif missing is not None:
            missing.append(p)
        else:
            raise InvalidQuery(f"{p}: no such file or folder")
    return list(dict.fromkeys(Path(os.path.abspath(f)) for f in out))    # a file named twice (lib, lib/../lib/x.wav): once


@dataclass(frozen=True)
class AudioInfo:
    """What the container header says about a file."""

    path: str
    frames: int
    sample_rate: int
    channels: int
    format: str
    subtype: str
    metadata: tuple[tuple[str, str], ...] = ()     # (key, value) the file carries (the indexer reads it)

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


@dataclass(frozen=True)
class Segment:
    """A piece of a file at the model's rate; times in seconds from the file's start."""

    start: float
    end: float
    waveform: np.ndarray


class _StreamSoundFile(sf.SoundFile):
    """A SoundFile read through a Python file object it owns (and closes with itself)."""

    def __init__(self, path: str) -> None:
        self._stream = open(path, "rb")
        try:
            super().__init__(self._stream)
        except BaseException:
            self._stream.close()
            raise

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._stream.close()


def appledouble_twin(path: str) -> str:
    """Where macOS keeps ``path``'s Finder metadata on a drive without its own: ``._<name>``."""
    folder, name = os.path.split(path)
    return os.path.join(folder, "._" + name)


def open_sound(path: str | Path) -> sf.SoundFile | FFmpegSound | ChainedOgg:
    """``soundfile.SoundFile(path)`` for reading, also beside macOS's ``._<name>`` files; for the
    formats libsndfile does not read (``.m4a``, ``.wv`` …: :data:`FFMPEG_EXTENSIONS`) and for
    a video's sound (a query clip: ``VIDEO_EXTENSIONS``) an
    :class:`~engine.ffmpeg_audio.FFmpegSound`, which reads the same way, as for a file libsndfile
    refuses that FFmpeg reads and an Ogg Opus file libsndfile would read late
    (:func:`_opus_frames_misread`); for a Sound Designer II
    file an :class:`~engine.sound_designer.Sd2SoundFile` (its resource fork found beside it or in
    an unpacked zip's ``__MACOSX``; :class:`UnreadableAudio` when it is nowhere); for a chained
    Ogg file (``cat a.ogg b.ogg``), or one cut short inside a page or just after one, a
    :class:`~engine.ogg_chain.ChainedOgg` reading every link (:func:`_chain`).

    Given a path to a file it does not recognise at once (an MP3 among them), libsndfile looks for
    a Sound Designer II resource fork in ``._<name>`` and, finding the AppleDouble file macOS
    writes there on exFAT and network drives, fails ("bad resource fork") instead of reading the
    MP3. When that twin exists the file is opened again as a plain stream, which libsndfile reads
    without looking beside it.

    Inside :func:`relaying_decoder_output`, what a decoder prints while the file is opened
    (libmpg123's "Warning: Xing stream size off …" for a cut MP3) is logged under its name;
    so it is in :func:`read_frames`, :func:`skip_frames` and :func:`go_to_frame`.
    """
    p = str(path)
    with _relayed(p):
        return _open_sound(p)


def _open_sound(p: str) -> sf.SoundFile | FFmpegSound | ChainedOgg:
    """:func:`open_sound` itself."""
    if os.path.splitext(p)[1].lower() in FFMPEG_EXTENSIONS | VIDEO_EXTENSIONS or _aac_whatever_its_name(p):
        return FFmpegSound(p)
    if is_sd2(p):
        return open_sd2(p)
    chain = _file_chain(p)
    if chain is not None:
        return _open_chain(p, chain, lambda: open(p, "rb"))
    try:
        return _unless_misread(p, sf.SoundFile(_openable(p)))
    except sf.LibsndfileError as e:
        if e.code in (UNSUPPORTED_ENCODING, MALFORMED_FILE) or _begins_ogg(p):  # a container libsndfile
            return _through_ffmpeg(p, e, say_both=True)   # knows, around a codec or data it will not take
        if os.path.isfile(appledouble_twin(p)):
            pass                                # read as a stream, below
        elif e.code == UNRECOGNISED_FORMAT:     # an M4A named .mp3, say: FFmpeg may know it
            return _through_ffmpeg(p, e)
        else:
            raise
    except Exception:
        if not os.path.isfile(appledouble_twin(p)):
            raise
    log.debug("%s: opened as a stream (libsndfile stumbles on the ._ file beside it)", p)
    return _StreamSoundFile(p)


def open_sound_bytes(data: bytes, name: str) -> sf.SoundFile | FFmpegSound | ChainedOgg:
    """A file's bytes in memory (an uploaded query clip, a WebDataset shard's member, a corpus
    source's file) opened as :func:`open_sound` opens a file called ``name``: by FFmpeg for its
    extensions and AAC whatever its name, else by libsndfile, and by FFmpeg where libsndfile
    refuses the bytes or would read an Ogg Opus stream late. Where neither reads them,
    libsndfile's error as :func:`open_sound` raises it (FFmpeg's reason beside it for a
    container libsndfile knows; FFmpeg's alone for a name FFmpeg reads); a chained Ogg stream
    as :func:`open_sound` reads one."""
    if os.path.splitext(name)[1].lower() in FFMPEG_EXTENSIONS | VIDEO_EXTENSIONS or _holds_aac(io.BytesIO(data)):
        return FFmpegSound(io.BytesIO(data), name)
    links = ogg_links(io.BytesIO(data), len(data))
    if read_link_by_link(links):
        return _open_chain(name, _chain(name, links, lambda: io.BytesIO(data)), lambda: io.BytesIO(data))
    return _open_stream(io.BytesIO(data), name)


def _open_stream(source: BinaryIO, name: str) -> sf.SoundFile | FFmpegSound:
    """The sound in the binary file ``source`` (read from its start) called ``name``: by
    libsndfile, or by FFmpeg where libsndfile refuses it or would read an Ogg Opus stream late."""
    try:
        return _unless_misread(source, sf.SoundFile(source), name)
    except sf.LibsndfileError as e:             # (bytes: its reason is the data's, never the file system's)
        source.seek(0)
        begins_ogg = source.read(4) == b"OggS"  # (FFmpeg's reason beside it, as for a file: _begins_ogg)
        refused = _data_refusal(e, source)      # (read from its start)
        source.seek(0)
        return _through_ffmpeg(source, refused, name=name,
                               say_both=e.code in (UNSUPPORTED_ENCODING, MALFORMED_FILE) or begins_ogg)


@dataclass(frozen=True)
class _Chain:
    """A chained Ogg file's links that are read, what each holds, and whether all are read by
    FFmpeg (:func:`_chain`)."""

    links: tuple[OggLink, ...]
    formats: tuple[LinkFormat, ...]
    by_ffmpeg: bool
    note: str | None = None             # what of the file is not read (links before or after ``links``), and why


def _begins_ogg(p: str) -> bool:
    """Whether the file ``p`` begins with an Ogg page: any error libsndfile gives for one is its
    reader's of what is inside (1.2.2 fails on the Ogg FLAC FFmpeg writes, "unknown error in flac
    decoder", and on a Skeleton stream before the sound's, "File contains data in an
    unimplemented format"), so FFmpeg is asked too."""
    try:
        with open(p, "rb") as f:
            return f.read(4) == b"OggS"
    except OSError:
        return False


def _file_chain(p: str) -> _Chain | None:
    """The links of the file ``p`` where it is a chained Ogg file, or an Ogg file whose first
    link starts past other bytes (:func:`engine.ogg_chain.read_link_by_link`; :func:`_chain`);
    None for any other file, or one that cannot be read (its decoder then says why)."""
    try:
        st = os.stat(p)
    except OSError:
        return None
    return _chain_of_file(p, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _chain_of_file(path: str, size: int, mtime_ns: int) -> _Chain | None:
    """:func:`_file_chain`, found once per file version (``size``, ``mtime_ns``: the cache key),
    not at every opening of it (a probe, the reading, a preview): the page headers of an Ogg
    file (engine.ogg_chain.ogg_links), and each link of a chain opened once."""
    try:
        with open(path, "rb", buffering=0) as raw:
            links = ogg_links(raw, size)
    except OSError:
        return None
    return _chain(path, links, lambda: open(path, "rb")) if read_link_by_link(links) else None


def _open_link(name: str, link: OggLink, raw: Any, ffmpeg: bool = False) -> tuple[Any, BinaryIO]:
    """A link of the chained Ogg file ``name`` (``raw()`` opens its bytes anew) opened as a file
    of its own (:func:`_open_stream`; by FFmpeg where ``ffmpeg``), and the bytes it reads."""
    view = ByteRange(raw(), link.start, link.end, name, link.tail)
    try:
        return (_ffmpeg_sound(view, name) if ffmpeg else _open_stream(view, name)), view
    except BaseException:
        view.close()
        raise


def _chain(name: str, links: Sequence[OggLink], raw: Any) -> _Chain:
    """The links of the chained Ogg file ``name`` to read, each opened once to see what it holds.
    Links must share a rate and channel count; Opus links that do not share a rate (libsndfile
    decodes each at the rate its encoder was given, FFmpeg one libsndfile refuses at 48 kHz)
    are all read by FFmpeg, at Opus's 48 kHz; any others are :class:`UnreadableAudio` naming
    the two that differ. A link neither decoder opens (a recording stopped just as a link began)
    ends the chain: the links before it are read, and the chain's note says so (:func:`iter_blocks`
    gives it). Links neither opens before the first one that opens (a recording begun in a link,
    its headers lost), and Ogg pages before the first link, are passed over, as players do, and
    the note says so too; the first link's error is raised as it is where no link opens. A file
    cut short inside a page is read up to the packets it holds whole, one cut short just after a
    page that does not end its stream as it is, and the note says where decoding stops
    (:func:`_cut_short_note`)."""
    unread: list[str] = []

    def formats(ffmpeg: bool) -> tuple[int, list[LinkFormat]]:
        found: list[LinkFormat] = []
        first, first_error = 0, None
        unread.clear()
        for i, link in enumerate(links):
            try:
                sound, view = _open_link(name, link, raw, ffmpeg)
            except Exception as e:
                if found:
                    unread.append(f"link {i + 1} of the {len(links)} of this chained Ogg file is not readable "
                                  f"({_short(e)}): read up to it")
                    break
                first_error = first_error or e
                if i + 1 == len(links):
                    raise first_error from None
                first = i + 1
                continue
            try:
                found.append(link_format(sound))
            finally:
                sound.close()
                view.close()
        if first:
            which = "link 1 of the" if first == 1 else f"links 1 to {first} of the"
            unread.insert(0, f"{which} {len(links)} of this chained Ogg file {'is' if first == 1 else 'are'} not "
                             f"readable ({_short(first_error)}): read from link {first + 1}")
        return first, found

    first, found = formats(False)
    by_ffmpeg = _differ(found) is not None and all(f.subtype == "OPUS" for f in found)
    if by_ffmpeg:
        first, found = formats(True)
    differ = _differ(found)
    if differ is not None:
        raise UnreadableAudio(name, f"a chained Ogg file whose links differ ({differ}): not read; "
                                    "convert it to one stream")
    cut_note = _cut_short_note(links, found, first)
    if cut_note:
        unread.append(cut_note)
    with raw() as f:
        headless = links[0].start - ogg_start(f)
    if headless > 0:
        unread.insert(0, f"its first {headless} bytes are Ogg pages of a stream begun before the file "
                         "(no headers to decode them): read from the first stream that begins in it")
    return _Chain(tuple(links[first:first + len(found)]), tuple(found), by_ffmpeg, "; ".join(unread) or None)


def _cut_short_note(links: Sequence[OggLink], found: Sequence[LinkFormat], first: int) -> str | None:
    """What :func:`iter_blocks` says of an Ogg file cut short inside a page (its last link's
    :attr:`~engine.ogg_chain.OggLink.cut_at`; read as its complete pages and that page's whole
    packets: engine.ogg_chain.rebuilt_cut_page) or just after one that does not end its stream
    (:attr:`~engine.ogg_chain.OggLink.cut_after`; read as it is): where decoding stops, as for
    any file cut short; None for one that is not, whose last link is not read, or where no audio
    is left before the cut (a link cut short inside its headers is not readable as audio: its
    decoder's reason)."""
    last = links[-1]
    if (last.cut_at is None and last.cut_after is None) or first + len(found) < len(links):
        return None
    frames = sum(f.frames for f in found)
    if frames <= 0:
        return None                             # (probe: "empty: the file holds no samples")
    where = (f"inside the Ogg page that begins at byte {last.cut_at}" if last.cut_at is not None else
             f"after the Ogg page that ends at byte {last.cut_after}, which does not end its stream")
    return (f"{STOPPED_AT} {frames / found[0].samplerate:.2f} s (the file is cut short {where}): "
            "keeping the audio before it")


def _open_chain(name: str, chain: _Chain, raw: Any) -> ChainedOgg:
    """The chained Ogg file ``name`` (``raw()`` opens its bytes anew) as one sound."""
    log.debug("%s: a chained Ogg file of %d links", name, len(chain.links))
    return ChainedOgg(name, list(chain.links), list(chain.formats),
                      lambda i: _open_link(name, chain.links[i], raw, chain.by_ffmpeg), chain.note)


def _differ(formats: Sequence[LinkFormat]) -> str | None:
    """Where the links of a chain first differ in rate or channels, in words; None where they agree."""
    first = formats[0]
    for i, f in enumerate(formats[1:], start=2):
        if (f.samplerate, f.channels) != (first.samplerate, first.channels):
            return (f"link 1: {first.samplerate} Hz, {first.channels} channel(s); "
                    f"link {i}: {f.samplerate} Hz, {f.channels} channel(s)")
    return None


def read_sound_bytes(data: bytes, name: str, notes: list[str] | None = None) -> tuple[np.ndarray, int]:
    """The whole of a file's bytes in memory called ``name`` (:func:`open_sound_bytes`) as
    frames × channels float32, and its sample rate: a file libsndfile reads right gives what
    ``soundfile.read`` gives, sample for sample. Bytes that break off after some audio decoded
    (an upload cut short, or damaged from some point) are read as a file of them is
    (:func:`iter_blocks`, by the same reader): the audio before the break is kept, and one line
    saying where and why goes to ``notes`` when given, else to this module's log as a warning;
    :class:`UnreadableAudio` where nothing before the break decodes."""
    sound = open_sound_bytes(data, name)
    try:
        info = header_info(name, sound)
    except BaseException:
        sound.close()
        raise
    # one read of all of it (frames + 1: the read that ends short, so the last), as before
    block = info.frames + 1 if info.frames > 0 else max(1024, int(BLOCK_SECONDS * info.sample_rate))
    blocks = [x for x, _ in _read_blocks(name, info, block, notes, None, sound=sound,
                                         reopen=lambda: open_sound_bytes(data, name))]
    return (blocks[0] if len(blocks) == 1 else np.concatenate(blocks)), info.sample_rate


def _openable(p: str) -> str | bytes:
    """``p`` as soundfile can open it: its bytes where the name is not valid in the file
    system's encoding (a Latin-1 name on a UTF-8 system, which Python holds with surrogate
    escapes and soundfile's own ``str.encode`` refuses), else the str itself."""
    if sys.platform == "win32":
        return p
    try:
        p.encode(sys.getfilesystemencoding())
    except UnicodeEncodeError:
        return os.fsencode(p)
    return p


def _aac_whatever_its_name(p: str) -> bool:
    """Whether the file ``p`` holds AAC that libsndfile's MP3 reader would take for MPEG audio
    (:func:`_holds_aac`)."""
    try:
        with open(p, "rb") as f:
            return _holds_aac(f)
    except OSError:
        return False                            # libsndfile gives the reason


def _holds_aac(f: BinaryIO) -> bool:
    """Whether the binary file ``f`` holds AAC that libsndfile's MP3 reader would take for MPEG
    audio, read from its first bytes once: an MP4/M4A file (an ``ftyp`` box: a download named
    .mp3, decoded as a garbled MPEG stream), or a raw AAC stream (ADTS: two frames in a row, after
    an ID3v2 tag if any; one named .mp3 is decoded as MPEG layer II noise). An MPEG audio frame
    header never has ADTS's layer bits (00, "reserved")."""
    head = f.read(12)
    if head[4:8] == b"ftyp":
        return True
    start = id3v2_end(head[:10])
    f.seek(start)
    frame = f.read(7)
    if not _adts_sync(frame):
        return False
    f.seek(start + ((frame[3] & 0x03) << 11 | frame[4] << 3 | frame[5] >> 5))
    return _adts_sync(f.read(2))


def _adts_sync(header: bytes) -> bool:
    """Whether ``header`` starts an ADTS frame: 12 sync bits, then layer 00."""
    return len(header) >= 2 and header[0] == 0xFF and header[1] & 0xF6 == 0xF0


#: libsndfile's SF_ERR_UNRECOGNISED_FORMAT ("Format not recognised"), SF_ERR_MALFORMED_FILE
#: ("Supported file format but file is malformed": an Ogg Opus file of one page that FFmpeg wrote
#: from audio whose timestamps do not start at 0, whose starting granule position libsndfile 1.2.2
#: calls ambiguous) and SF_ERR_UNSUPPORTED_ENCODING ("Supported file
#: format but unsupported encoding": ALAC in a CAF that FFmpeg wrote, for one); FFmpeg is asked
#: before any is given as the reason
UNRECOGNISED_FORMAT, MALFORMED_FILE, UNSUPPORTED_ENCODING = 1, 3, 4


#: libsndfile's SFE_BAD_FILE, "File does not exist or is not a regular file (possibly a pipe?)":
#: what 1.2.2's MP3 reader says of data it took for MPEG audio but cannot start decoding (and,
#: given a path, of a file named .mp3 it does not recognise), of a file that is there or of bytes
#: in memory alike (:func:`_mp3_start_reason` gives the true reason, else :data:`NOT_RECOGNISED`)
BAD_FILE = 7
#: the reason given for :data:`BAD_FILE` where what libsndfile refused does not begin as an MP3 does
NOT_RECOGNISED = "format not recognised: no audio stream found"


class DataRefused(sf.LibsndfileError):
    """libsndfile's refusal of bytes in memory (its code and prefix kept) in words true of them,
    where its own speak of a file that does not exist (:data:`BAD_FILE`)."""

    def __init__(self, code: int, prefix: str, reason: str) -> None:
        super().__init__(code, prefix)
        self.reason = reason
        self.args = (code, prefix, reason)                  # as it is built again from a pickle

    @property
    def error_string(self) -> str:
        return self.reason


def _data_refusal(e: sf.LibsndfileError, source: BinaryIO) -> sf.LibsndfileError:
    """``e``, libsndfile's refusal of the binary file ``source`` (a file's bytes in memory), as
    :class:`DataRefused` saying what is wrong with them where its words (:data:`BAD_FILE`) are
    of a file that does not exist, or where bytes that begin as an MP3 does are "not recognised"
    (too few for its MP3 reader to look at: :func:`_mp3_start_reason`); else ``e`` itself."""
    if e.code not in (BAD_FILE, UNRECOGNISED_FORMAT):
        return e
    size = source.seek(0, io.SEEK_END)
    source.seek(0)
    reason = _mp3_start_reason(source, size) or (NOT_RECOGNISED if e.code == BAD_FILE else None)
    return e if reason is None else DataRefused(e.code, e.prefix, reason)


def _mp3_start_reason(f: BinaryIO, size: int) -> str | None:
    """Why libsndfile's MP3 reader could not start decoding the ``size`` bytes of the binary file
    ``f`` (read from its start), where they begin as an MP3 does (an MPEG audio frame header,
    after an ID3v2 tag if any): cut short or damaged; None where they do not."""
    head = f.read(10)
    tag_end = id3v2_end(head)
    if tag_end and size < tag_end + 4:
        return (f"cut short: its {size} bytes end {'inside' if size < tag_end else 'after'} the ID3 tag "
                f"an MP3 begins with ({tag_end} bytes), before any audio")
    f.seek(tag_end)
    if not _mpeg_frame_header(f.read(4)):
        return None
    return (f"cut short or damaged: its {size} bytes begin as an MP3 does (an MPEG audio frame"
            f"{' after an ID3 tag' if tag_end else ''}), but no audio decodes from them")


def _mpeg_frame_header(header: bytes) -> bool:
    """Whether ``header`` (4 bytes) is an MPEG audio frame header: 11 sync bits, then a version,
    layer, bitrate and sample rate none of which is the "reserved" or "bad" value."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return False
    version, layer = header[1] >> 3 & 0x03, header[1] >> 1 & 0x03
    bitrate, rate = header[2] >> 4, header[2] >> 2 & 0x03
    return version != 1 and layer != 0 and bitrate != 15 and rate != 3


class RefusedByBoth(sf.LibsndfileError):
    """libsndfile's refusal of a file in a container it knows, with FFmpeg's reason for not
    reading it either: "… file is malformed. (FFmpeg: End of file)"."""

    def __init__(self, code: int, prefix: str, ffmpeg_reason: str) -> None:
        super().__init__(code, prefix)
        self.ffmpeg_reason = ffmpeg_reason
        self.args = (code, prefix, ffmpeg_reason)           # as it is built again from a pickle

    def __str__(self) -> str:
        return f"{super().__str__()} (FFmpeg: {self.ffmpeg_reason})"


def _through_ffmpeg(p: str | BinaryIO, refused: sf.LibsndfileError, say_both: bool = False,
                    name: str | None = None) -> FFmpegSound:
    """``p`` (a path, or a file in memory called ``name``), which libsndfile refused (its format,
    its encoding or its data), read by FFmpeg; ``refused`` (libsndfile's reason) raised again when
    FFmpeg cannot read it either, or sees no rate or no samples; with FFmpeg's reason beside it
    (:class:`RefusedByBoth`) where ``say_both`` (a container libsndfile knows, so FFmpeg's reason
    says more than "not audio")."""
    try:
        found = _ffmpeg_sound(p, name)
    except Exception as e:                      # noqa: BLE001 — libsndfile's reason is the one to give
        log.debug("%s: FFmpeg cannot read it either (%s)", name or p, e)
        if say_both:
            raise RefusedByBoth(refused.code, refused.prefix, _short(e)) from None
        raise refused from None
    log.debug("%s: libsndfile does not read it (%s); read by FFmpeg", name or p, refused)
    return found


def _ffmpeg_sound(p: str | BinaryIO, name: str | None = None) -> FFmpegSound:
    """``p`` (a path, or a file in memory called ``name``) opened by FFmpeg; ValueError where
    FFmpeg's probe took bytes for a stream without a rate or channels, or finds no samples in a
    file (one in memory is not decoded twice to count them: its reader says so when it is empty)."""
    found = FFmpegSound(p, name)
    empty = found.frames <= 0 and isinstance(p, str)
    if found.samplerate <= 0 or found.channels <= 0 or empty:
        found.close()
        if empty and found.samplerate > 0:
            raise ValueError("no samples in it")
        raise ValueError(f"FFmpeg sees {found.channels} channels at {found.samplerate} Hz")
    return found


#: what libsndfile's log says of an Ogg Opus file it opened (SFC_GET_LOG_INFO, soundfile's
#: ``extra_info``): the encoder's pre-skip and the granule position the stream starts at
_PRE_SKIP_LOG = re.compile(r"^\s*Preskip\s*:\s*(\d+) samples", re.MULTILINE)
_GRANULE_OFFSET_LOG = re.compile(r"^\s*Granule pos offset\s*:\s*(\d+)\s*$", re.MULTILINE)


def _opus_frames_misread(f: Any) -> int:
    """How many 48 kHz samples of the encoder's pre-skip libsndfile leaves at the start of the Ogg
    Opus file open in ``f`` (0 for any other sound).

    libsndfile drops the pre-skip while the decoded position, counted from the stream's first
    granule position, is below it: right for a stream that starts at 0, but one that starts later
    (what FFmpeg writes for audio whose first timestamp is not 0: an MP3's priming, a cut from
    the middle of a recording) keeps up to all of the pre-skip (312 samples from libopus: 6.5 ms)
    and drops as much of its end, so every moment is read that much late (libsndfile 1.2.2)."""
    if getattr(f, "format", None) != "OGG" or getattr(f, "subtype", None) != "OPUS":
        return 0
    log_text = str(getattr(f, "extra_info", "") or "")
    pre_skip, offset = _PRE_SKIP_LOG.findall(log_text), _GRANULE_OFFSET_LOG.findall(log_text)
    if not pre_skip or not offset:
        return 0
    return min(int(pre_skip[-1]), int(offset[-1]))


def _unless_misread(p: str | BinaryIO, f: sf.SoundFile, name: str | None = None) -> sf.SoundFile | FFmpegSound:
    """``f`` (``p``, a path or a file in memory called ``name``, just opened by libsndfile), ready
    to read from its start. Where libsndfile would misread it as opened
    (:func:`_opus_frames_misread`), ``f`` sought to frame 0 first: libsndfile then drops the
    pre-skip right, and reads every sample an encoding of the same audio from granule 0 gives,
    at the rate the encoder was given (the Ogg Opus files of tests/test_opus_fallback40.py and
    benchmarks/offset_opus.py); ``p`` read by FFmpeg instead only where that seek fails, and
    ``f`` as it is when FFmpeg cannot read it either."""
    late = _opus_frames_misread(f)
    if not late:
        return f
    try:
        f.seek(0)
        log.debug("%s: sought to its start (libsndfile keeps %d samples of the Opus pre-skip before)", name or p, late)
        return f
    except Exception as e:                      # noqa: BLE001 — FFmpeg's reading instead
        log.debug("%s: libsndfile reads it %d samples late and cannot seek to its start (%s)", name or p, late, e)
    try:
        found = _ffmpeg_sound(p, name)
    except Exception as e:                      # noqa: BLE001 — libsndfile's reading, late as it is
        log.debug("%s: libsndfile reads it %d samples late and FFmpeg cannot (%s)", name or p, late, e)
        return f
    log.debug("%s: read by FFmpeg (libsndfile keeps %d samples of the Opus pre-skip)", name or p, late)
    f.close()
    return found


def header_info(name: str, f: Any) -> AudioInfo:
    """What the header of the sound open as ``f`` (called ``name``) says: :class:`AudioInfo`."""
    return AudioInfo(name, int(f.frames), int(f.samplerate), int(f.channels),
                     CONTAINER_NAMES.get(str(f.format), str(f.format)), str(f.subtype))


def probe(path: str | Path) -> AudioInfo:
    """Read the header of ``path``; raise UnreadableAudio if it is not usable audio."""
    p = str(path)
    try:
        with open_sound(p) as f:
            info = header_info(p, f)
    except UnreadableAudio:
        raise
    except Exception as e:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        check_openable(p)
        if os.path.isfile(p) and os.path.getsize(p) == 0:
            raise UnreadableAudio(p, "empty: the file is 0 bytes") from e
        raise UnreadableAudio(p, f"not readable as audio ({_clear_reason(p, e)})") from e
    if info.sample_rate <= 0:
        if os.path.isfile(p) and os.path.getsize(p) == 0:   # (FFmpeg opens an empty .dts or .ac3)
            raise UnreadableAudio(p, "empty: the file is 0 bytes")
        raise UnreadableAudio(p, f"invalid sample rate {info.sample_rate}")
    if info.channels <= 0:
        raise UnreadableAudio(p, "no audio channels")
    if info.frames == 0:
        raise UnreadableAudio(p, "empty: the file holds no samples")
    return info


def check_openable(path: str) -> None:
    """Raise UnreadableAudio with the OS's reason when ``path`` cannot be opened at all.

    libsndfile reports every open failure as "System error"; asking the OS gives the user the
    actual reason (permission denied, deleted or renamed since it was listed, a folder …).
    """
    try:
        with open(path, "rb"):
            pass
    except PermissionError as e:
        raise UnreadableAudio(path, "permission denied: make the file readable") from e
    except FileNotFoundError as e:
        raise UnreadableAudio(path, "not found: deleted or renamed since it was listed") from e
    except IsADirectoryError as e:
        raise UnreadableAudio(path, "is a folder, not a file") from e
    except OSError as e:
        raise UnreadableAudio(path, f"cannot be opened: {e.strerror or e}") from e


#: libsndfile's words for :data:`BAD_FILE`, although the file is there
_MISLEADING = "File does not exist or is not a regular file"


def _clear_reason(path: str, e: BaseException) -> str:
    """libsndfile's reason, except one that would send the user looking for a file that is right
    there: what is wrong with the file instead (:func:`_mp3_start_reason`, as for its bytes in
    memory, else :data:`NOT_RECOGNISED`)."""
    if _MISLEADING in str(e) and os.path.isfile(path):
        try:
            with open(path, "rb") as f:
                return _mp3_start_reason(f, os.fstat(f.fileno()).st_size) or NOT_RECOGNISED
        except OSError:                         # (gone or unreadable since libsndfile tried it)
            return NOT_RECOGNISED
    return _short(e)


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


_relaying = 0          # > 0 inside relaying_decoder_output()
_capturing = 0         # > 0 while fd 2 is captured for one file (_heard): calls inside add to that
_said: set[tuple[str, str]] = set()     # (file, line) logged as a warning in this relay: said once


@contextmanager
def relaying_decoder_output() -> Iterator[None]:
    """Inside this context, what C decoders print to stderr while a file is read (libmpg123's
    "Note: Illegal Audio-MPEG-Header …") is said under that file's name — its ``notes``, or
    this module's log (a warning for a file that decoded, debug detail for one that failed) —
    instead of as anonymous lines on the terminal; each file and line once while it lasts.

    stderr (fd 2) is process-wide and is redirected during each libsndfile call: use it where
    no other thread writes to stderr meanwhile (the command-line commands that decode in their
    own process; the indexer's decoder processes capture their stderr themselves). Outside it,
    a call about an MP3 in a process running one Python thread says them the same way
    (:func:`_bare_call`: ``probe(path)`` from a Python shell logs a cut MP3's "Warning: Xing
    stream size off …" as a warning of this module, at each call); with other threads about,
    they are left on stderr.
    """
    global _relaying
    _relaying += 1
    try:
        yield
    finally:
        _relaying -= 1
        if not _relaying:
            _said.clear()


@contextmanager
def _heard(lines: list[str] | None) -> Iterator[None]:
    """Capture fd 2 during the block into ``lines`` (nothing when ``lines`` is None)."""
    global _capturing
    if lines is None:
        yield
        return
    _capturing += 1
    try:
        with StderrCapture() as captured:
            try:
                yield
            finally:
                lines.extend(captured.take_lines())
    finally:
        _capturing -= 1


#: threads known never to write to stderr: tqdm's monitor (it only tunes its bars' refresh rate),
#: which stays once a bar was drawn (a model download, an index built)
_QUIET_THREADS = frozenset({"tqdm_monitor"})
#: the names of the sounds whose decoder prints: libmpg123, libsndfile's for MPEG audio (PyAV keeps
#: FFmpeg's log off; libFLAC, libvorbis and libopus print nothing). A capture opens a temporary
#: file each time: a bare call spends that on these alone
_TALKING_EXTENSIONS = frozenset({".mp3", ".mp2", ".mp1", ".mpga"})


def decoder_talks(path: str) -> bool:
    """Whether the decoder of ``path`` prints to stderr as it opens or reads it, by its name
    (:data:`_TALKING_EXTENSIONS`: MPEG audio): a caller reading files on threads reads these in
    one thread, where what is printed can be captured and said under the file's name."""
    return os.path.splitext(path)[1].lower() in _TALKING_EXTENSIONS


def _bare_call(path: str) -> bool:
    """Whether a call outside :func:`relaying_decoder_output` (a library user's ``probe(path)``)
    captures fd 2 for itself, for a sound whose decoder prints (:data:`_TALKING_EXTENSIONS`; MPEG
    audio under another name is left as it is): no capture is under way in this process (an
    indexer decoder process's own, which keeps the lines as the file's notes) and no other Python
    thread could write to stderr meanwhile (a server's, the page's, a progress bar's), so no line
    of theirs is taken for the file's and no two threads swap fd 2 about."""
    if StderrCapture.active or not decoder_talks(path):
        return False
    me = threading.current_thread()
    return all(t is me or t.name in _QUIET_THREADS for t in threading.enumerate())


def _says_heard(path: str) -> bool:
    """Whether what the decoders print about ``path`` is captured and said under its name here."""
    return bool(_relaying) or _bare_call(path)


@contextmanager
def _relayed(path: str) -> Iterator[None]:
    """Inside :func:`relaying_decoder_output`, or in a bare call (:func:`_bare_call`), what the
    decoders print during the block (opening ``path``, a read or a seek in it) is said under
    ``path`` (:func:`_say_heard`), unless a capture for the file is under way already
    (:func:`iter_blocks`' own, which says it once at the end); elsewhere the block runs as it is."""
    if _capturing or not _says_heard(path):
        yield
        return
    heard: list[str] = []
    try:
        with _heard(heard):
            yield
    except BaseException:
        _say_heard(path, heard, failed=True)
        raise
    _say_heard(path, heard, failed=False)


def _say_heard(path: str, heard: Sequence[str], failed: bool, notes: list[str] | None = None) -> None:
    """What the decoders printed about ``path`` (each distinct line once): debug detail for a file
    that failed, else to ``notes`` when given, else a warning in this module's log (once per file
    and line while :func:`relaying_decoder_output` lasts; at each call outside it)."""
    for line in summarised(heard):
        if failed:
            log.debug("%s: the decoder also said: %s", path, line)
        elif notes is not None:
            notes.append(line)
        elif (path, line) not in _said:
            if _relaying:
                _said.add((path, line))
            log.warning("%s: %s", path, line)


def _sound_name(f: Any) -> str:
    """The path of the open sound ``f`` (through its stream for one read as a stream)."""
    name = getattr(f, "name", None)
    return name if isinstance(name, str) else str(getattr(name, "name", name))


def iter_blocks(path: str | Path, target_sr: int, *, block_seconds: float = BLOCK_SECONDS,
                stats: dict[str, float] | None = None, notes: list[str] | None = None,
                levels: dict[str, float] | None = None, start_seconds: float = 0.0) -> Iterator[np.ndarray]:
    """Yield mono float32 blocks of ``path`` resampled to ``target_sr``, from ``start_seconds``
    on (the nearest frame at the file's own rate, reached by :func:`go_to_frame`: a file whose
    seek is exact is not read before it; the resampler starts there, so drop a few ms of what
    comes first).

    ``levels`` (optional) receives, once the stream ends, the recording's peak and loudness
    measured on its native channels (engine.loudness: ``peak_dbfs``, ``loudness_lufs``).

    ``stats`` (optional) accumulates seconds spent in "decode" and "resample". A stream
    that breaks off after some audio decoded (a truncated or damaged FLAC) ends where it
    broke: the audio before the break is kept, and one line saying where and why goes to
    ``notes`` when given, else to this module's logger as a warning. A stream that yields
    nothing at all raises UnreadableAudio; a ``start_seconds`` at or past the end its header
    gives raises InvalidQuery saying so, and one before it but past the audio the file holds (a
    FLAC, MP3 or ALAC cut short) :class:`StartPastAudio`, saying how much it holds. Inside
    :func:`relaying_decoder_output` (and in a bare call: :func:`_bare_call`), what the C
    decoders print meanwhile is said the same way.
    """
    p = str(path)
    heard: list[str] | None = [] if _says_heard(p) else None
    try:
        yield from _decoded_blocks(p, target_sr, block_seconds, stats, notes, heard, levels, start_seconds)
    except Exception as e:
        _say_heard(p, heard or [], failed=True)
        if isinstance(e, (UnreadableAudio, InvalidQuery)):
            raise
        raise UnreadableAudio(p, f"decoding failed ({_short(e)})") from e   # e.g. the resampler
    _say_heard(p, heard or [], failed=False, notes=notes)


def downmix(data: np.ndarray) -> np.ndarray:
    """The mean of the channels of frames × channels ``data`` (a view of a mono block's one
    channel). Added channel by channel: numpy's mean along a row of 6 interleaved samples is
    3× slower, and for up to 7 channels this is the same sum, bit for bit."""
    channels = data.shape[1]
    if channels == 1:
        return data[:, 0]
    mono = data[:, 0] + data[:, 1]
    for c in range(2, channels):
        mono += data[:, c]
    mono /= np.asarray(channels, mono.dtype)
    return mono


def _decoded_blocks(p: str, target_sr: int, block_seconds: float, stats: dict[str, float] | None,
                    notes: list[str] | None, heard: list[str] | None,
                    levels: dict[str, float] | None = None, start_seconds: float = 0.0) -> Iterator[np.ndarray]:
    """:func:`iter_blocks` itself; ``heard`` collects decoder output when it is a list."""
    with _heard(heard):
        info = probe(p)
    if levels is not None and start_seconds:
        raise ValueError("levels are measured on the whole recording, not from start_seconds")
    first = int(start_seconds * info.sample_rate)
    if first and 0 < info.frames <= first:
        raise InvalidQuery(f"{p} is {info.duration:.2f} s long; the start time {start_seconds:g} s is past its end")
    meter = None
    if levels is not None:
        from engine.loudness import LevelMeter
        meter = LevelMeter(info.sample_rate, info.channels)
    block = max(1024, int(block_seconds * info.sample_rate))
    resampler = (soxr.ResampleStream(info.sample_rate, target_sr, 1, dtype="float32", quality="HQ")
                 if info.sample_rate != target_sr else None)
    total = 0
    t = time.perf_counter()
    for data, last in _read_blocks(p, info, block, notes, heard, first, start_seconds):
        n = data.shape[0]
        mono = downmix(data)
        if n and not np.isfinite(mono).all():
            raise UnreadableAudio(p, "contains NaN or Inf samples")
        if meter is not None:
            meter.add(data)
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
    if total == 0:
        raise _start_past_audio(p, info, first, start_seconds, heard) or UnreadableAudio(
            p, "empty: the file holds no samples")
    if meter is not None:
        levels.update(meter.result())


class StartPastAudio(InvalidQuery):
    """A start time inside the length a file's header gives but past the audio the file holds
    (one cut short, or damaged from there on): how much it holds, and what its header says."""

    def __init__(self, path: str, start: float, held: float, promised: float) -> None:
        super().__init__(f"{path} holds {held:.2f} s of audio, though its header says {promised:.2f} s "
                         f"(the file is cut short or damaged there); the start time {start:g} s is past "
                         "the audio it holds")
        self.path, self.start, self.held, self.promised = path, start, held, promised

    def __reduce__(self) -> tuple[Any, tuple[str, float, float, float]]:
        return type(self), (self.path, self.start, self.held, self.promised)


def _start_past_audio(p: str, info: AudioInfo, first: int, start_seconds: float,
                      heard: list[str] | None) -> StartPastAudio | None:
    """:class:`StartPastAudio` where the audio ``p`` holds (the frames that decode from its
    start: :func:`_salvaged`) ends before frame ``first``, from which nothing was read; None
    where it does not (the reason for reading nothing lies elsewhere) or ``first`` is 0."""
    if not first:
        return None
    with _heard(heard):
        held = sum(x.shape[0] for x in _salvaged(p, 0))
    if held >= first:
        return None
    return StartPastAudio(p, start_seconds, held / info.sample_rate, info.duration)


#: read sizes (frames) when salvaging the audio before a break: each next size starts where
#: the previous one failed, so the salvage reaches the last decodable frame in few reads
SALVAGE_READS = (4096, 256, 16, 1)


def _read_blocks(p: str, info: AudioInfo, block: int, notes: list[str] | None,
                 heard: list[str] | None, first: int = 0,
                 start_seconds: float = 0.0, *, sound: Any = None,
                 reopen: Callable[[], Any] | None = None) -> Iterator[tuple[np.ndarray, bool]]:
    """(frames × channels float32, is-last) blocks of ``p`` from frame ``first`` on
    (:func:`go_to_frame`; ``start_seconds``, that frame as asked for, for
    :class:`StartPastAudio` where nothing decodes from there), salvaging what precedes a break.

    libsndfile fails a whole read when the stream breaks anywhere inside it, so after a
    failed read the file is reopened at the same frame and read in small pieces up to the
    break. Blocks are only yielded once read, so a break never duplicates or drops audio.
    ``reopen()`` opens the sound anew (by default the file ``p``: :func:`open_sound`; a file's
    bytes in memory: :func:`read_sound_bytes`); ``sound``, an opening of it already made, is
    read first instead of a new one (and closed here).
    """
    reopen = reopen or functools.partial(open_sound, p)
    total = 0
    try:
        if sound is None:
            with _heard(heard):
                sound = reopen()
        with sound as f:
            if isinstance(f, (ChainedOgg, FFmpegSound)) and f.note:    # (said outside the capture of fd 2)
                _note(p, f.note, notes)                               # (links unread; AMR silence frames)
            if first:
                with _heard(heard):
                    go_to_frame(f, first, block)
            while True:
                with _heard(heard):
                    data = _read(f, block)
                total += data.shape[0]
                last = data.shape[0] < block
                yield data, last
                if last:
                    return
    except Exception as e:
        error = e
    with _heard(heard):
        pieces = _salvage(p, first + total, reopen)
    reason = _short(error)
    kept = total + sum(x.shape[0] for x in pieces)
    if kept == 0:                       # (a start past where a FLAC cut short ends: said as such)
        raise (_start_past_audio(p, info, first, start_seconds, heard)
               or UnreadableAudio(p, f"decoding failed after 0 frames ({reason})")) from error
    for i, x in enumerate(pieces):
        yield x, i == len(pieces) - 1
    if not pieces:
        yield np.zeros((0, info.channels), np.float32), True
    message = (f"{STOPPED_AT} {(first + kept) / info.sample_rate:.2f} s of {info.duration:.2f} s "
               f"({reason}): keeping the audio before it")
    _note(p, message, notes)


def says_where_it_stopped(note: str) -> bool:
    """Whether a note of :func:`iter_blocks` says where a sound that breaks off stops
    (:data:`STOPPED_AT`), rather than being a line a decoder printed (libmpg123's "Warning: Xing
    stream size off …" of a cut MP3, said in the same ``notes`` in a bare call) or another note."""
    return STOPPED_AT in note


def _note(p: str, message: str, notes: list[str] | None) -> None:
    """``message`` about the file ``p`` added to ``notes`` when given, else a warning in this module's log."""
    if notes is not None:
        notes.append(message)
    else:
        log.warning("%s: %s", p, message)


def read_frames(f: Any, frames: int, dtype: str = "float32") -> np.ndarray:
    """Up to ``frames`` frames × channels of the open sound ``f`` from where it is, as ``dtype``
    (fewer at its end); a float32 read of an MP3 through :func:`_read_mp3`, so reads of any
    lengths add up to one whole read."""
    with _relayed(_sound_name(f)):
        return _read(f, frames) if dtype == "float32" else f.read(frames, dtype=dtype, always_2d=True)


def skip_frames(f: Any, frames: int, block: int) -> None:
    """Read ``frames`` frames of ``f`` from where it is and throw them away (``block`` at a
    time): how a sound whose seek is not sample-exact (an MP3, an Ogg file: :data:`EXACT_SEEK_FORMATS`)
    is moved on."""
    with _relayed(_sound_name(f)):
        while frames > 0:
            got = _read(f, min(block, frames)).shape[0]
            if got == 0:
                return
            frames -= got


#: a seek in a sound that does not seek exactly (an MP3, an Ogg file: :data:`EXACT_SEEK_FORMATS`)
#: goes this far before the frame wanted, and what lies between is read and thrown away. An MP3
#: seek decodes up to 13 MP3 frames wrong after it (0.94 s at 8 kHz): this much read gives what a
#: read from the start gives to float rounding (1.2e-7 at most over 8 random crops each of 61 MP3s
#: from libsndfile, LAME and FFmpeg; 1e-6 at most over 1,557 positions in a 4 s and a 60 s MP3,
#: session 31); an Opus decoder is settled and a Vorbis seek is outside the file's last page
#: (where libsndfile's lands 48–88 frames late), so both gave every sample a read from the start
#: gives, bit for bit, at 2,351 positions in 5–60 s files, their last frames included (session 31).
#: A last page can span more than this (2.5 s of a quiet tone), so a seek in an Ogg file also
#: lands before its last page (:func:`ogg_last_page_start`, session 32).
SEEK_PREROLL_SECONDS = 2.0


def go_to_frame(f: Any, frame: int, block: int = 1 << 16, at: int = 0) -> None:
    """Move the sound ``f``, now at frame ``at`` (0: just opened), to ``frame`` for what is read
    next to be what reading it from the start gives (to float rounding): a seek where that lands
    exactly (:func:`seeks_exactly`); else, when ``frame`` is at most :data:`SEEK_PREROLL_SECONDS`
    past ``at``, the frames between read and thrown away, ``block`` at a time; else a seek that
    far before it and the frames between read and thrown away. The one rule for the player,
    export (its blocks too: ``at`` is where the last read left the file), the block reader and
    training crops: a moment an hour into an Ogg or MP3 file costs a seek and two seconds of
    decoding, not the hour before it, and a just-opened MP3 is not sought to its start
    (libmpg123 then decodes a little differently)."""
    with _relayed(_sound_name(f)):
        if seeks_exactly(f):
            f.seek(frame)
            return
        preroll = int(SEEK_PREROLL_SECONDS * f.samplerate)
        if not at <= frame <= at + preroll:
            at = max(0, frame - preroll)
            last_page = ogg_last_page_start(f)
            if last_page is not None:       # libsndfile's seek into an Ogg file's last page lands late
                at = min(at, last_page)
            f.seek(at)
        skip_frames(f, frame - at, block)


#: how far an Ogg file's end is read to find its last two pages (a page is at most 65,307 bytes)
_OGG_TAIL_BYTES = 3 * 65_307
#: how far before the first frame of an Ogg file's last page a seek may land (an Opus granule
#: counts 48 kHz samples and its encoder's pre-skip: this covers both)
_OGG_LAST_PAGE_MARGIN_SECONDS = 0.1


def ogg_last_page_start(f: Any) -> int | None:
    """The frame before which a seek in the Ogg file ``f`` (open in libsndfile) must land: the
    first frame of its last page, less a margin. libsndfile's seek to a frame inside an Ogg
    file's last page lands late (48–88 frames in Vorbis; 32 in a 2.5 s last page of a quiet
    tone: a page of low-bit-rate audio can span seconds, longer than
    :data:`SEEK_PREROLL_SECONDS`). None for a file that is no Ogg or whose pages cannot be read."""
    if (getattr(f, "format", None) != "OGG" or not isinstance(getattr(f, "name", None), str)
            or isinstance(f, ChainedOgg)):      # (its seek keeps out of each link's last page itself)
        return None
    try:
        st = os.stat(f.name)
    except OSError:
        return None
    granule = _last_page_granule(f.name, st.st_size, st.st_mtime_ns)
    if granule is None:
        return None
    per_granule = f.samplerate / (48000 if getattr(f, "subtype", None) == "OPUS" else f.samplerate)
    start = int(granule * per_granule - _OGG_LAST_PAGE_MARGIN_SECONDS * f.samplerate)
    return max(0, start)


@functools.lru_cache(maxsize=256)
def _last_page_granule(path: str, size: int, mtime_ns: int) -> int | None:
    """The granule position that ends the page before an Ogg file's last one (where the last
    page starts), read from the file's end once per file version (``size``, ``mtime_ns``: the
    cache key), not at every seek of a preview, an export range or a training crop."""
    try:
        with open(path, "rb") as raw:
            raw.seek(max(0, size - _OGG_TAIL_BYTES))
            tail = raw.read()
    except OSError:
        return None
    granules = _page_granules(tail)
    return granules[-2] if len(granules) >= 2 else None


def _page_granules(data: bytes) -> list[int]:
    """The granule positions of the Ogg pages of the last logical stream in ``data`` (the end of
    a file), in order, pages without one (-1) left out."""
    pages: list[tuple[int, int]] = []           # (serial, granule)
    at = data.find(b"OggS")
    while at >= 0 and at + 27 <= len(data):
        version, = struct.unpack_from("<B", data, at + 4)
        if version == 0:
            granule, serial = struct.unpack_from("<qI", data, at + 6)
            pages.append((serial, granule))
        at = data.find(b"OggS", at + 4)
    if not pages:
        return []
    last_serial = pages[-1][0]
    return [g for serial, g in pages if serial == last_serial and g >= 0]


def _read(f: Any, frames: int) -> np.ndarray:
    """Up to ``frames`` frames × channels float32 of the open sound ``f`` from where it is
    (fewer at its end); an MP3 through :func:`_read_mp3`."""
    # _read_mp3 uses soundfile's cffi internals; a soundfile without them reads as f.read
    # (tests/test_mp3_blocks.py then fails)
    if isinstance(f, sf.SoundFile) and f.format == "MP3" and hasattr(sf, "_snd"):
        return _read_mp3(f, frames)
    return f.read(frames, dtype="float32", always_2d=True)


def _read_mp3(f: sf.SoundFile, frames: int) -> np.ndarray:
    """``f.read(frames)`` without the seek soundfile makes after every read.

    soundfile then seeks libsndfile to where the read ended (its own bookkeeping: libsndfile is
    there already). For an MP3 libsndfile hands that seek to libmpg123, which drops the frame it
    is decoding and decodes it again from a few frames back, not sample-exact: up to 0.4 off
    for the rest of that frame, a click at every block boundary (and "part2_3_length too large"
    on stderr). Without the seek, reads of any lengths add up to one whole read, sample for sample.
    """
    if f.seekable():                                   # as f.read: never past the end
        frames = max(0, min(frames, f.frames - f.tell()))
    out = np.empty((frames, f.channels), np.float32)
    if not frames:
        return out
    got = sf._snd.sf_readf_float(f._file, sf._ffi.cast("float *", sf._ffi.from_buffer(out)), frames)
    err = sf._snd.sf_error(f._file)
    if err:
        raise sf.LibsndfileError(err)              # as f.read raises it (a stream that breaks off)
    return out[:got]


#: containers whose seek lands on the exact frame (PCM, Sound Designer II's data fork among them,
#: and FLAC's seek table plus decoding); libsndfile's MP3 seek (libmpg123's) is up to 0.36 off
#: for the next 1–13 MP3 frames, even to a frame's first sample, and its Ogg seek is not exact
#: either (libsndfile 1.2.2; tests/test_audio_audit.py): into a Vorbis file's last page (its
#: last 0.02–0.4 s in the files measured) it lands 48–88 frames late, and after it an Opus
#: decoder is not settled (up to 1.6e-3 off at 18 % of the positions tried at 16 kHz, 2e-7 at
#: under 1 % at 48 kHz). Compressed streams are read up to the frame instead
EXACT_SEEK_FORMATS = {"WAV", "WAVEX", "RF64", "W64", "AIFF", "AIFC", "CAF", "AU", "SD2", "FLAC"}


def seeks_exactly(f: Any) -> bool:
    """Whether a seek in the open sound ``f`` lands on the exact frame: libsndfile's, in one of
    :data:`EXACT_SEEK_FORMATS`, and FFmpeg's (:meth:`FFmpegSound.seek`: by the container's
    index and decoding on to the frame, or decoding from the start where that is not exact)."""
    if isinstance(f, FFmpegSound):
        return True
    seekable = getattr(f, "seekable", None)
    return getattr(f, "format", None) in EXACT_SEEK_FORMATS and callable(seekable) and bool(seekable())


def _salvage(p: str, start: int, reopen: Callable[[], Any] | None = None) -> list[np.ndarray]:
    """The frames of ``p`` from ``start`` up to the last one that decodes (:func:`_salvaged`)."""
    return list(_salvaged(p, start, reopen))


def _salvaged(p: str, start: int, reopen: Callable[[], Any] | None = None) -> Iterator[np.ndarray]:
    """The frames of ``p`` from ``start`` up to the last one that decodes, a piece at a time;
    ``reopen()`` opens the sound each time (by default the file ``p``: :func:`open_sound`).

    The read that meets the break raises again (libsndfile then says only "Internal
    psf_fseek() failed."); it ends that read size's pass, and the caller reports the
    first failure's reason.
    """
    reopen = reopen or functools.partial(open_sound, p)
    at = start
    for size in SALVAGE_READS:
        try:
            with reopen() as f:
                go_to_frame(f, at)
                while True:
                    x = _read(f, size)
                    if x.shape[0]:
                        at += x.shape[0]
                        yield x
                    if x.shape[0] < size:
                        return                 # the end of the stream after all
        except Exception:  # the break itself: try smaller reads from here, then stop
            continue


def decode(path: str | Path, target_sr: int, stats: dict[str, float] | None = None,
           notes: list[str] | None = None) -> np.ndarray:
    """The whole of ``path`` as one mono float32 array at ``target_sr`` (``notes``: as :func:`iter_blocks`)."""
    blocks = list(iter_blocks(path, target_sr, stats=stats, notes=notes))
    out = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    if out.size == 0:
        raise UnreadableAudio(str(path), f"too short: not one sample left once resampled to {target_sr} Hz")
    return out


def measure_levels(path: str | Path, notes: list[str] | None = None) -> dict[str, float]:
    """The sample peak and integrated loudness of ``path`` (``{"peak_dbfs", "loudness_lufs"}``,
    engine.loudness), decoded at its own rate, without resampling; UnreadableAudio as
    :func:`iter_blocks` (``notes`` too)."""
    levels: dict[str, float] = {}
    for _ in iter_blocks(path, probe(path).sample_rate, notes=notes, levels=levels):
        pass
    return levels


def iter_segments(path: str | Path, target_sr: int, policy: SegmentPolicy,
                  stats: dict[str, float] | None = None, notes: list[str] | None = None,
                  levels: dict[str, float] | None = None,
                  markers: Sequence[tuple[float, float | None]] = ()) -> Iterator[Segment]:
    """Stream ``path`` and yield its segments by :func:`engine.segments.segment_bounds`, and one
    per take its named ``markers`` (``(at, region length or None)`` seconds) mark
    (:func:`engine.segments.take_bounds`), each as soon as its audio is in.

    Only about one window of audio is held at a time, whatever the file's length.
    ``stats``, ``notes`` and ``levels``: as :func:`iter_blocks`.
    """
    win = policy.window_samples(target_sr)
    hop = policy.hop_samples(target_sr)
    takes = take_bounds(markers, target_sr, policy) if markers else []
    buf = np.zeros(0, np.float32)
    buf_start = 0          # sample offset of buf[0] in the stream
    next_start = 0         # start of the next regular window
    last_end = 0           # end of the last emitted segment
    t = 0                  # next take to emit (takes are ordered by start)

    def take(a: int, b: int, n: int | None) -> Iterator[Segment]:
        if b - a >= MIN_TAKE * target_sr and not regular_take(a, b, n, target_sr, policy):
            yield Segment(a / target_sr, b / target_sr, buf[a - buf_start:b - buf_start].copy())

    for block in iter_blocks(path, target_sr, stats=stats, notes=notes, levels=levels):
        buf = np.concatenate([buf, block])
        while next_start + win <= buf_start + len(buf):
            a = next_start - buf_start
            yield Segment(next_start / target_sr, (next_start + win) / target_sr, buf[a:a + win].copy())
            last_end = next_start + win
            next_start += hop
        while t < len(takes) and takes[t][1] < buf_start + len(buf):    # ending at the end: below
            yield from take(*takes[t], None)
            t += 1
        # keep what the next window, the end-aligned tail or the next take could still need
        keep_from = min(next_start, buf_start + len(buf) - win,
                        takes[t][0] if t < len(takes) else next_start)
        if keep_from > buf_start:
            buf = buf[keep_from - buf_start:]
            buf_start = keep_from
    n = buf_start + len(buf)
    if n == 0:
        raise UnreadableAudio(str(path), f"too short: not one sample left once resampled to {target_sr} Hz")
    if last_end == 0:
        yield Segment(0.0, n / target_sr, buf.copy())
    elif last_end < n:
        yield Segment((n - win) / target_sr, n / target_sr, buf[len(buf) - win:].copy())
    for a, b in takes[t:]:               # the takes the file ends in (or before)
        if a < n:
            yield from take(a, min(b, n), n)
