"""Chained Ogg files: two or more complete Ogg streams one after another in one file.

``cat a.ogg b.ogg > c.ogg`` makes one, as internet radio rips and some editors do; players play
every link. libsndfile reads only the first link, and FFmpeg reads all of them but misjudges the
length (an Opus chain's count keeps the pre-skip of every link but one: 312 frames from libopus
each; a Vorbis chain's is its last link's). :func:`ogg_links` finds the links from the Ogg page
headers alone (27 bytes and the lacing values of each page, never a page's data), and
:class:`ChainedOgg` reads them one after another as one sound, each link opened as a whole Ogg
file of its own (by whichever decoder engine.audio picks for it) through a :class:`ByteRange`
of the file.

A link begins at a page that begins a logical stream (its BOS flag) after a page that does not:
the BOS pages at the start of a multiplexed stream (Vorbis beside a Skeleton or a Theora stream)
are one link.
"""
from __future__ import annotations

import bisect
import io
import itertools
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable

import numpy as np
import soundfile as sf

#: an Ogg page header: capture pattern, version, flags, granule position, serial number, page
#: sequence number, CRC, number of lacing values (RFC 3533); then that many lacing values
_PAGE_HEADER = struct.Struct("<4sBBqIIIB")
_BEGINS_STREAM = 0x02
#: how far before the first frame of a link's last page its seek lands (as
#: engine.audio's ``_OGG_LAST_PAGE_MARGIN_SECONDS``: an Opus granule also counts its pre-skip)
LAST_PAGE_MARGIN_SECONDS = 0.1


@dataclass(frozen=True)
class OggLink:
    """One link of an Ogg file: its bytes ``[start, end)`` and the granule position that ends
    the page before its first stream's last page (where that page starts; None with under two
    pages that carry one)."""

    start: int
    end: int
    last_page_granule: int | None = None


def ogg_links(f: BinaryIO, size: int) -> list[OggLink]:
    """The links of the Ogg file open in ``f`` (``size`` bytes), from its page headers; [] for a
    file that does not start with an Ogg page (after an ID3v2 tag, which some taggers put before
    one: :func:`ogg_start`). Where the pages stop making sense (junk between links, a page cut
    short by a download resumed from the start, an ID3v1 tag or padding at the end), the next
    page is looked for from just after the last one that made sense (:func:`_next_page`), as
    players do; a link runs to where the next begins (or to the end of the file), and its
    decoder says what it makes of what it holds."""
    links: list[list[int]] = []                 # [start, serial, granule before last, last granule]
    at, begun, last = ogg_start(f), False, -1   # last: where the last page that made sense begins
    while at + _PAGE_HEADER.size <= size:
        page = _page_header(f, at)
        if page is None:
            if not links:
                break                           # no Ogg page where the file begins
            found = _next_page(f, last + 1, size)
            if found is None:
                break
            at = found
            continue
        flags, granule, serial, length = page
        if flags & _BEGINS_STREAM and not begun:
            links.append([at, serial, -1, -1])
        begun = bool(flags & _BEGINS_STREAM)
        if not links:                           # pages of a stream begun before the file (a radio
            last, at = at, at + length          # rip begun inside a song): no headers to decode them
            continue
        if serial == links[-1][1] and granule >= 0:
            links[-1][2:] = links[-1][3], granule
        last, at = at, at + length
    ends = [link[0] for link in links[1:]] + [size]
    return [OggLink(start, end, before if before >= 0 else None)
            for (start, _, before, _), end in zip(links, ends)]


def read_link_by_link(links: list[OggLink]) -> bool:
    """Whether an Ogg file of ``links`` (:func:`ogg_links`) is read as a :class:`ChainedOgg`:
    one of two links or more, or one whose stream starts past other bytes: an ID3v2 tag (which
    libsndfile refuses: "embedding not supported for this file format"), or pages of a stream
    begun before the file."""
    return len(links) > 1 or bool(links) and links[0].start > 0


def ogg_start(f: BinaryIO) -> int:
    """Where the first Ogg page of the file open in ``f`` would begin: 0, or the length of an
    ID3v2 tag before it (its 10-byte header, a synchsafe size, and a 10-byte footer where its
    flags say)."""
    f.seek(0)
    head = f.read(10)
    if len(head) < 10 or head[:3] != b"ID3" or any(b & 0x80 for b in head[6:10]):
        return 0
    size = int.from_bytes(bytes(head[6:10]), "big")
    size = (size & 0x7F) | (size >> 8 & 0x7F) << 7 | (size >> 16 & 0x7F) << 14 | (size >> 24 & 0x7F) << 21
    return 10 + size + (10 if head[5] & 0x10 else 0)


def _page_header(f: BinaryIO, at: int) -> tuple[int, int, int, int] | None:
    """The flags, granule position, serial number and whole length of the Ogg page at ``at``;
    None where no whole page header is there."""
    f.seek(at)
    head = f.read(_PAGE_HEADER.size + 255)
    if len(head) < _PAGE_HEADER.size:
        return None
    magic, version, flags, granule, serial, _, _, count = _PAGE_HEADER.unpack_from(head)
    if magic != b"OggS" or version != 0 or len(head) < _PAGE_HEADER.size + count:
        return None
    return flags, granule, serial, _PAGE_HEADER.size + count + sum(head[_PAGE_HEADER.size:_PAGE_HEADER.size + count])


#: how much of the file :func:`_next_page` reads at a time
_SEARCH_CHUNK = 1 << 20


def _next_page(f: BinaryIO, at: int, size: int) -> int | None:
    """Where the first Ogg page header at or after ``at`` begins; None where none does."""
    while at + _PAGE_HEADER.size <= size:
        f.seek(at)
        chunk = f.read(_SEARCH_CHUNK + 4)
        if len(chunk) < 5:
            return None
        hit = chunk.find(b"OggS\x00")
        while hit >= 0:
            if _page_header(f, at + hit) is not None:
                return at + hit
            hit = chunk.find(b"OggS\x00", hit + 1)
        at += _SEARCH_CHUNK
    return None


class ByteRange(io.RawIOBase):
    """Bytes ``[start, end)`` of the binary file ``raw`` as a file of their own (a link of a
    chained Ogg file, for a decoder to open as a whole file); closing it closes ``raw``."""

    def __init__(self, raw: BinaryIO, start: int, end: int, name: str) -> None:
        super().__init__()
        self._raw, self._start, self._end, self._at = raw, start, end, 0
        self.name = name

    def __repr__(self) -> str:
        return repr(self.name)                  # as a decoder's error names the file

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self._end - self._start - self._at))
        if not n:
            return 0
        self._raw.seek(self._start + self._at)
        got = self._raw.readinto(view[:n]) or 0
        self._at += got
        return got

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: self._end - self._start}[whence]
        self._at = max(0, base + offset)
        return self._at

    def tell(self) -> int:
        return self._at

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


@dataclass(frozen=True)
class LinkFormat:
    """What a link's decoder says of it: frames, rate, channels, subtype, its own metadata."""

    frames: int
    samplerate: int
    channels: int
    subtype: str
    metadata: dict[str, str]


def link_format(sound: Any) -> LinkFormat:
    """:class:`LinkFormat` of a link's open ``sound``."""
    return LinkFormat(int(sound.frames), int(sound.samplerate), int(sound.channels), str(sound.subtype),
                      dict(sound.copy_metadata()))


class ChainedOgg:
    """The links of a chained Ogg file read one after another as one sound, with the part of
    ``soundfile.SoundFile``'s interface soundsift uses. ``open_link(i)`` opens link ``i`` (a
    whole Ogg stream of its own) at its start and gives its sound and the file it reads (a
    :class:`ByteRange`), both closed with it; ``formats`` says what each holds (all at one
    rate, with one channel count: engine.audio checks). Only the link being read is open.
    ``note`` says what of the file is not read and why, if any of it is not.

    ``seek`` is as exact as a link's decoder's, except that a seek into a link's last page goes
    to before it and reads on (libsndfile's lands late there); engine.audio's ``go_to_frame``
    reads on from before the frame wanted, as in any Ogg file."""

    format = "OGG"

    def __init__(self, name: str, links: list[OggLink], formats: list[LinkFormat],
                 open_link: Callable[[int], tuple[Any, BinaryIO]], note: str | None = None) -> None:
        self.name, self.note = name, note
        self._links, self._formats, self._open_link = links, formats, open_link
        self.samplerate, self.channels = formats[0].samplerate, formats[0].channels
        self.subtype = formats[0].subtype
        self._starts = list(itertools.accumulate((f.frames for f in formats), initial=0))
        self.frames = self._starts[-1]
        self._current, self._position = 0, 0
        self._sound, self._file = open_link(0)

    @property
    def link_count(self) -> int:
        """How many links the file has."""
        return len(self._links)

    def read(self, frames: int = -1, dtype: str = "float64", always_2d: bool = False) -> np.ndarray:
        """The next ``frames`` frames (all that remain for -1), across links."""
        want = self.frames - self._position if frames < 0 else max(0, min(frames, self.frames - self._position))
        parts, have = [], 0
        while have < want:
            left = self._starts[self._current + 1] - self._position
            got = self._sound.read(min(want - have, left), dtype=dtype, always_2d=True) if left > 0 else None
            if got is None or not len(got):     # the link's end (or one before its decoder said)
                if not self._next_link():
                    break
                continue
            parts.append(got)
            have += len(got)
            self._position += len(got)
        out = np.concatenate(parts) if parts else np.zeros((0, self.channels), dtype)
        return out if always_2d or self.channels > 1 else out[:, 0]

    def seek(self, frame: int, whence: int = 0) -> int:
        """Go to ``frame`` (from the start; ``whence`` other than 0 is not supported)."""
        if whence != 0:
            raise ValueError("a chained Ogg file seeks from the start only")
        frame = max(0, min(int(frame), self.frames))
        link = min(bisect.bisect_right(self._starts, frame) - 1, len(self._links) - 1)
        if link != self._current:
            self._switch(link)
        local = frame - self._starts[link]
        before = self._last_page_frame(link)
        if isinstance(self._sound, sf.SoundFile) and before is not None and local > before:
            self._sound.seek(before)            # libsndfile's seek into a last page lands late
            self._position = self._starts[link] + before
            while self._position < frame and len(self.read(min(frame - self._position, 1 << 16))):
                pass
        else:
            self._sound.seek(local)
            self._position = frame
        return self._position

    def tell(self) -> int:
        return self._position

    def seekable(self) -> bool:
        return True

    def copy_metadata(self) -> dict[str, str]:
        """The first link's tags (a radio rip's later links name later songs: not the file's)."""
        return dict(self._formats[0].metadata)

    def close(self) -> None:
        try:
            self._sound.close()
        finally:
            self._file.close()

    def __enter__(self) -> "ChainedOgg":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _next_link(self) -> bool:
        """Open the next link at its start; False after the last."""
        if self._current + 1 >= len(self._links):
            return False
        self._switch(self._current + 1)
        self._position = self._starts[self._current]
        return True

    def _switch(self, link: int) -> None:
        opened = self._open_link(link)
        self.close()
        self._current, (self._sound, self._file) = link, opened

    def _last_page_frame(self, link: int) -> int | None:
        """The frame of ``link`` before which its seek must land: its last page's first frame,
        less :data:`LAST_PAGE_MARGIN_SECONDS` (None where its pages did not say)."""
        granule = self._links[link].last_page_granule
        if granule is None:
            return None
        per_granule = self.samplerate / 48000 if self._formats[link].subtype == "OPUS" else 1.0
        return max(0, int(granule * per_granule - LAST_PAGE_MARGIN_SECONDS * self.samplerate))
