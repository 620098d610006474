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

A file cut short inside a page (a download or copy stopped) is read the same way: libsndfile and
FFmpeg drop a page they cannot read whole, with every packet on it (up to 255: seconds of a quiet
Vorbis tone, about a second of the pages libsndfile writes), so its last link is read as its
complete pages followed by that page rebuilt with the Vorbis or Opus packets it holds whole
(:func:`rebuilt_cut_page`, its granule position counted from them), and :attr:`OggLink.cut_at`
says where the file was cut. A file cut short just after a whole page is read as it is (each
decoder reads its whole pages), but its last page does not end its stream (its end-of-stream flag,
which every stream's last page carries, is not set): :attr:`OggLink.cut_after` says where it ends.
"""
from __future__ import annotations

import bisect
import io
import itertools
import struct
from dataclasses import dataclass, replace
from typing import Any, BinaryIO, Callable, Iterator

import numpy as np
import soundfile as sf

#: an Ogg page header: capture pattern, version, flags, granule position, serial number, page
#: sequence number, CRC, number of lacing values (RFC 3533); then that many lacing values
_PAGE_HEADER = struct.Struct("<4sBBqIIIB")
_BEGINS_STREAM, _ENDS_STREAM = 0x02, 0x04
#: how far before the first frame of a link's last page its seek lands (as
#: engine.audio's ``_OGG_LAST_PAGE_MARGIN_SECONDS``: an Opus granule also counts its pre-skip)
LAST_PAGE_MARGIN_SECONDS = 0.1


@dataclass(frozen=True)
class OggLink:
    """One link of an Ogg file: its bytes ``[start, end)`` and the granule position that ends
    the page before its first stream's last page (where that page starts; None with under two
    pages that carry one). In a file cut short inside a page, its last link also has ``cut_at``
    (where that page begins: ``end`` is there) and ``tail``, the page rebuilt with the packets it
    holds whole (b"" where none are, or the stream is neither Vorbis nor Opus), read after
    ``end`` (:func:`rebuilt_cut_page`). In a file cut short just after a whole page, one that
    does not end its stream (no end-of-stream flag), its last link has ``cut_after``: where that
    page ends."""

    start: int
    end: int
    last_page_granule: int | None = None
    cut_at: int | None = None
    tail: bytes = b""
    cut_after: int | None = None


def ogg_links(f: BinaryIO, size: int) -> list[OggLink]:
    """The links of the Ogg file open in ``f`` (``size`` bytes), from its page headers; [] for a
    file that does not start with an Ogg page (after an ID3v2 tag, which some taggers put before
    one: :func:`ogg_start`). Where the pages stop making sense (junk between links, a page cut
    short by a download resumed from the start, an ID3v1 tag or padding at the end), the next
    page is looked for from just after the last one that made sense (:func:`_next_page`), as
    players do; a link runs to where the next begins (or to the end of the file), and its
    decoder says what it makes of what it holds. A page the file's end cuts short (but one that
    begins a stream), or a page header after one that does not end its stream, ends the last
    link where it begins (:attr:`OggLink.cut_at`; :func:`rebuilt_cut_page`); a last whole page that
    does not end its stream (a file cut short just after it) gives it :attr:`OggLink.cut_after`."""
    links: list[list[int]] = []                 # [start, serial, granule before last, last granule]
    at, begun, last = ogg_start(f), False, -1   # last: where the last page that made sense begins
    cut = None                                  # where a page cut short by the file's end begins
    ended = False                               # whether the last page ends its stream (EOS)
    last_end = 0                                # where the last page that made sense ends
    while at < size:
        page = _page_header(f, at) if at + _PAGE_HEADER.size <= size else None
        if page is None:
            if links and not ended and _begins_page(f, at, size):
                cut = at                        # a page header the end of the file cuts short
                break
            if not links or at + _PAGE_HEADER.size > size:
                break                           # no Ogg page where the file begins; trailing bytes
            found = _next_page(f, last + 1, size)
            if found is None:
                break
            at = found
            continue
        flags, granule, serial, length = page
        if at + length > size and links and not flags & _BEGINS_STREAM:
            cut = at                            # a page the end of the file cuts short (one that
            break                               # begins a stream begins a link: its decoder says)
        ended = bool(flags & _ENDS_STREAM)
        if flags & _BEGINS_STREAM and not begun:
            links.append([at, serial, -1, -1])
        begun = bool(flags & _BEGINS_STREAM)
        if not links:                           # pages of a stream begun before the file (a radio
            last, at = at, at + length          # rip begun inside a song): no headers to decode them
            continue
        if serial == links[-1][1] and granule >= 0:
            links[-1][2:] = links[-1][3], granule
        last, at = at, at + length
        last_end = at
    ends = [link[0] for link in links[1:]] + [size]
    found = [OggLink(start, end, before if before >= 0 else None)
             for (start, _, before, _), end in zip(links, ends)]
    if cut is not None and cut > found[-1].start:
        tail = rebuilt_cut_page(f, found[-1].start, cut, size)
        before = links[-1][3] if tail else links[-1][2]     # the rebuilt page is the last
        found[-1] = OggLink(found[-1].start, cut, before if before >= 0 else None, cut, tail)
    elif cut is None and found and not ended:   # the file's last whole page does not end its stream
        found[-1] = replace(found[-1], cut_after=last_end)
    return found


def read_link_by_link(links: list[OggLink]) -> bool:
    """Whether an Ogg file of ``links`` (:func:`ogg_links`) is read as a :class:`ChainedOgg`:
    one of two links or more, one whose stream starts past other bytes (an ID3v2 tag, which
    libsndfile refuses: "embedding not supported for this file format", or pages of a stream
    begun before the file), or one cut short inside a page or after one
    (:attr:`OggLink.cut_at`, :attr:`OggLink.cut_after`: its reader says so)."""
    return len(links) > 1 or bool(links) and (links[0].start > 0 or links[0].cut_at is not None
                                              or links[0].cut_after is not None)


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


#: the start of a Vorbis identification header, the first packet of a Vorbis stream
VORBIS_ID = b"\x01vorbis"


def vorbis_first_sound_page(f: BinaryIO, max_pages: int = 64) -> tuple[int, bool] | None:
    """(granule position, whether it ends the stream) of the first page of the Ogg file open in
    ``f`` whose Vorbis stream's granule position is past 0 (the first to end a packet of sound),
    looking at most ``max_pages`` pages from the file's start; None where they do not say (no
    Vorbis stream among them, a page cut short)."""
    serial, at = None, 0
    for _ in range(max_pages):
        page = _page_header(f, at)
        if page is None:
            return None
        flags, granule, page_serial, length = page
        if serial is None and flags & _BEGINS_STREAM:
            f.seek(at)
            whole = f.read(length)                  # (a stream's first page: its id header, small)
            if whole[_PAGE_HEADER.size + whole[_PAGE_HEADER.size - 1]:].startswith(VORBIS_ID):
                serial = page_serial
        elif serial == page_serial and granule > 0:
            return granule, bool(flags & _ENDS_STREAM)
        at += length
    return None


def _begins_page(f: BinaryIO, at: int, size: int) -> bool:
    """Whether the bytes from ``at`` to the file's end (``size``) are the start of an Ogg page
    header, too short to be a whole one."""
    f.seek(at)
    head = f.read(min(size - at, _PAGE_HEADER.size + 255))
    if not head or not (head.startswith(b"OggS\x00") or b"OggS\x00".startswith(head)):
        return False
    return len(head) < _PAGE_HEADER.size or len(head) < _PAGE_HEADER.size + head[26]


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


def rebuilt_cut_page(f: BinaryIO, start: int, cut: int, size: int) -> bytes:
    """The page at ``cut`` of the Ogg file open in ``f`` (``size`` bytes), which the file's end
    cuts short, rebuilt with the packets it holds whole: the same header with only their lacing
    values, the end-of-stream flag, a granule position counted from those packets (Opus: each
    packet's TOC; Vorbis: each packet's block size, by the modes of its setup header) and its
    CRC; b"" where it holds no whole packet of sound, its stream is neither Vorbis nor Opus, or
    its packets cannot be counted. Reads the page headers of the link from ``start``, and the
    data of its stream's header pages and of the last :data:`_PAGES_BEFORE_CUT` pages before
    the cut (only a file cut short comes here)."""
    head = _page_header(f, cut) if cut + _PAGE_HEADER.size <= size else None
    if head is None:
        return b""
    serial = head[2]
    pages: list[tuple[int, int, int]] = []      # (where, length, granule) of the stream's pages
    at = start
    while at < cut:
        page = _page_header(f, at)
        if page is None:                        # junk between pages: as ogg_links, look on
            found = _next_page(f, at + 1, cut)
            if found is None:
                return b""
            at = found
            continue
        if page[2] == serial:
            pages.append((at, page[3], page[1]))
        at += page[3]
    stream = _StreamPackets()
    for i, (at, length, granule) in enumerate(pages):
        if stream.headers_read() and i < len(pages) - _PAGES_BEFORE_CUT:
            stream.pass_over(granule)           # (its packets of sound: only the last ones count)
            continue
        f.seek(at)
        stream.add_page(f.read(length))
    f.seek(cut)
    return stream.rebuilt(f.read(size - cut))


#: how many pages before a cut page are read for the block size of the last packet of sound
#: before it (Vorbis; a packet can go on over pages)
_PAGES_BEFORE_CUT = 4


def _ogg_crc(data: bytes) -> int:
    """The CRC-32 of an Ogg page (polynomial 0x04C11DB7, not reflected, from 0)."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[(crc >> 24) ^ byte]
    return crc


def _crc_entry(i: int) -> int:
    r = i << 24
    for _ in range(8):
        r = ((r << 1) ^ 0x04C11DB7 if r & 0x80000000 else r << 1) & 0xFFFFFFFF
    return r


_CRC_TABLE = [_crc_entry(i) for i in range(256)]
#: how many header packets begin a stream of each codec a cut page is rebuilt for
_HEADER_PACKETS = {"vorbis": 3, "opus": 2}
#: an Opus TOC byte's frame length in 48 kHz samples, by its configuration (RFC 6716, 3.1)
_OPUS_FRAME = ([480, 960, 1920, 2880] * 3 + [480, 960] * 2 + [120, 240, 480, 960] * 4)


class _StreamPackets:
    """The packets of one logical Ogg stream, page by page, as far as a rebuilt page's granule
    position needs them: which codec, its header packets, the last granule position, the packet
    that goes on to the next page, and (Vorbis) the block size of the last packet of sound."""

    def __init__(self) -> None:
        self.granule, self.count = 0, 0
        self.partial: bytes | None = None       # a packet that goes on to the next page
        self.codec: str | None = None
        self.blocksizes: tuple[int, int] = (0, 0)
        self.modes: list[bool] | None = None    # Vorbis: each mode's block flag
        self.previous = 0                       # Vorbis: the last packet of sound's block size

    def headers_read(self) -> bool:
        """Whether the stream's header packets are all read (or it is neither Vorbis nor Opus)."""
        return self.count >= _HEADER_PACKETS.get(self.codec or "", 1)

    def pass_over(self, granule: int) -> None:
        """Pass over a page of sound with this granule position without reading its packets."""
        self.partial, self.previous = None, 0
        if granule >= 0:
            self.granule = granule

    def add_page(self, page: bytes) -> None:
        """Take in a whole page of the stream."""
        granule, laces, body = _page_parts(page)
        for packet, whole in _packets(laces, body, page[5] & 0x01, self.partial):
            if whole:
                self.partial = None
                self._packet(packet)
            else:
                self.partial = packet
        if granule >= 0:
            self.granule = granule

    def rebuilt(self, page: bytes) -> bytes:
        """The page ``page`` (cut short by the file's end) holding only the packets it holds
        whole, with the granule position they end at; b"" where that cannot be said."""
        count = page[26]
        laces = page[_PAGE_HEADER.size:_PAGE_HEADER.size + count]
        body = page[_PAGE_HEADER.size + count:]
        kept, used, granule = 0, 0, self.granule
        for packet, whole in _packets(laces, body, page[5] & 0x01, self.partial, whole_only=True):
            samples = self._packet(packet)
            if samples is None:
                return b""
            granule += samples
            kept, used = packet.laces_end, packet.bytes_end
        if not kept or self.count <= _HEADER_PACKETS.get(self.codec or "", 1):
            return b""                          # no whole packet of sound (or headers cut short)
        header = bytearray(page[:_PAGE_HEADER.size])
        header[5] = (page[5] & 0x01) | 0x04     # continued or not; the end of the stream
        struct.pack_into("<q", header, 6, granule)
        struct.pack_into("<I", header, 22, 0)
        header[26] = kept
        out = bytes(header) + bytes(laces[:kept]) + bytes(body[:used])
        return out[:22] + struct.pack("<I", _ogg_crc(out)) + out[26:]

    def _packet(self, packet: bytes) -> int | None:
        """Take in a whole packet; the samples it adds to the granule position (None where its
        stream is neither Vorbis nor Opus, or its headers did not say enough)."""
        self.count += 1
        if self.count == 1:
            self.codec = ("vorbis" if packet.startswith(VORBIS_ID) and len(packet) > 28
                          else "opus" if packet[:8] == b"OpusHead" else None)
            if self.codec == "vorbis":
                self.blocksizes = (1 << (packet[28] & 0x0F), 1 << (packet[28] >> 4))
            return 0
        if self.codec == "opus":
            return 0 if self.count == 2 else _opus_samples(packet)
        if self.codec != "vorbis":
            return None
        if self.count <= 3:
            if self.count == 3:
                self.modes = _vorbis_modes(bytes(packet))
            return 0
        if not self.modes:
            return None
        if not packet or packet[0] & 1:         # empty, or not a packet of sound: decodes to nothing
            return 0
        mode = (packet[0] >> 1) & ((1 << (len(self.modes) - 1).bit_length()) - 1)
        if mode >= len(self.modes):
            return None
        size = self.blocksizes[self.modes[mode]]
        samples = (self.previous + size) // 4 if self.previous else 0
        self.previous = size
        return samples


class _Packet(bytes):
    """A packet's bytes, and where it ends in its page's lacing values and body."""

    laces_end: int
    bytes_end: int


def _page_parts(page: bytes) -> tuple[int, bytes, bytes]:
    """A whole page's granule position, lacing values and body."""
    count = page[26]
    granule = struct.unpack_from("<q", page, 6)[0]
    return granule, page[_PAGE_HEADER.size:_PAGE_HEADER.size + count], page[_PAGE_HEADER.size + count:]


def _packets(laces: bytes, body: bytes, continued: int, partial: bytes | None,
             whole_only: bool = False) -> Iterator[tuple[_Packet, bool]]:
    """The packets a page's lacing values and ``body`` end (whole: True) and the one it leaves to
    go on (False); on a ``continued`` page, ``partial`` (the packet begun on the pages before)
    in front of the first, which is passed over where that is None (its start not read); with
    ``whole_only``, only those whose bytes are all in ``body`` (a page cut short)."""
    at, start = 0, 0
    head: bytes | None = (partial if continued else b"")
    for i, lace in enumerate(laces):
        at += lace
        if lace == 255:
            continue
        if at > len(body):
            return                              # (a page cut short: the rest is not there)
        if head is not None:
            packet = _Packet(head + body[start:at])
            packet.laces_end, packet.bytes_end = i + 1, at
            yield packet, True
        start, head = at, b""
    if laces and laces[-1] == 255 and not whole_only and head is not None and at <= len(body):
        packet = _Packet(head + body[start:at])
        packet.laces_end, packet.bytes_end = len(laces), at
        yield packet, False


def _opus_samples(packet: bytes) -> int | None:
    """The 48 kHz samples an Opus packet decodes to, from its TOC byte (RFC 6716, 3.1); 0 for
    an empty packet, None for one whose frame count is not there."""
    if not packet:
        return 0
    toc = packet[0]
    frames = (1, 2, 2)[toc & 3] if toc & 3 != 3 else (packet[1] & 0x3F if len(packet) > 1 else None)
    return None if frames is None else frames * _OPUS_FRAME[toc >> 3]


def _vorbis_modes(setup: bytes) -> list[bool] | None:
    """The block flag of each mode of a Vorbis setup header, read back from its end (the modes
    are its last field: 6 bits of their count less one, then 41 bits each, then the framing
    bit), as FFmpeg's Vorbis parser does; None where they do not read right."""
    bits = int.from_bytes(setup, "little")
    end = bits.bit_length() - 1                 # the framing bit
    if end < 0:
        return None

    def field(at: int, width: int) -> int:
        return bits >> at & ((1 << width) - 1)

    found = None
    for n in range(1, 65):
        first = end - 41 * n
        if first - 6 < 0:
            break
        mode = first                            # the n-th mode from the end
        if field(mode + 1, 16) or field(mode + 17, 16) or field(mode + 33, 8) > 63:
            break
        if field(first - 6, 6) == n - 1:
            found = n
    if found is None:
        return None
    first = end - 41 * found
    return [bool(field(first + 41 * i, 1)) for i in range(found)]


class ByteRange(io.RawIOBase):
    """Bytes ``[start, end)`` of the binary file ``raw``, then ``tail`` (a page rebuilt:
    :attr:`OggLink.tail`), as a file of their own (a link of a chained Ogg file, for a decoder
    to open as a whole file); closing it closes ``raw``."""

    def __init__(self, raw: BinaryIO, start: int, end: int, name: str, tail: bytes = b"") -> None:
        super().__init__()
        self._raw, self._start, self._end, self._at, self._tail = raw, start, end, 0, tail
        self.name = name

    def __repr__(self) -> str:
        return repr(self.name)                  # as a decoder's error names the file

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        length = self._end - self._start
        n = max(0, min(len(view), length - self._at))
        if not n:
            tail = self._tail[max(0, self._at - length):][:len(view)]
            view[:len(tail)] = tail
            self._at += len(tail)
            return len(tail)
        self._raw.seek(self._start + self._at)
        got = self._raw.readinto(view[:n]) or 0
        self._at += got
        return got

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        length = self._end - self._start + len(self._tail)
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._at, io.SEEK_END: length}[whence]
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
