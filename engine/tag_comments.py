"""The tags of FLAC, Ogg and MP3 files (and a WAV's or AIFF's ID3 chunk): UCS fields and cue sheets.

libsndfile gives only a tag's standard keys (title, comment, artist …); this reads the rest:
a FLAC file's Vorbis comments (also one a tagger put an ID3v2 tag before) and an Ogg Vorbis,
Opus or FLAC stream's, an MP3's ID3v2.3/2.4 user text (``TXXX``) frames, and the tags FFmpeg
reads (an M4A's freeform atoms, APEv2 …), under the names library tools use for the Universal
Category System's fields (as engine.ixml's :data:`~engine.ixml.IXML_KEYS` maps them); the
standard Vorbis comments and ID3 frames where libsndfile could not decode or does not read
them (a WAV's or AIFF's ``id3 `` chunk, :func:`container_id3`); and an embedded cue sheet (a
``CUESHEET`` comment, a FLAC ``CUESHEET`` block: engine.cue_sheet) as markers (engine.markers).
"""
from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

from engine.cue_sheet import cue_tracks, flac_cuesheet_block
from engine.iff_chunks import _MAX_CHUNKS, _MAX_TEXT_CHUNK, _chunk_heads
from engine.ixml import IXML_KEYS
from engine.markers import Marker, _cue_markers
from engine.metadata_values import _put_first
from engine.text_encoding import decode_text


def comment_fields(path: str | Path) -> dict[str, str]:
    """A FLAC (also one a tagger put an ID3v2 tag before) or Ogg (Vorbis, Opus, FLAC) file's
    Vorbis comments, or an MP3's ID3v2 user text
    frames (``TXXX``), under the names library tools use for the UCS fields (CATEGORY,
    SUBCATEGORY, CATID, FXNAME, DESCRIPTION, KEYWORDS … as :data:`IXML_KEYS` maps them), first
    value of each key winning; {} for any other file. libsndfile gives only the standard keys
    (title, comment, artist …)."""
    with open(path, "rb") as f:
        return _comment_walk(f)


class CommentFields(dict):
    """A FLAC or Ogg file's UCS-named Vorbis comments (the dict), its cue sheet's tracks as
    markers (``marker_list``: the ``CUESHEET`` comment's, else a FLAC CUESHEET block's) and its
    standard comments (``standard``: :data:`VORBIS_STANDARD_KEYS`, for where libsndfile, which
    reads them as UTF-8 only, could not decode one)."""

    def __init__(self) -> None:
        super().__init__()
        self.marker_list: list[Marker] = []
        self.standard: dict[str, str] = {}


#: the standard Vorbis comment names libsndfile gives (as these keys)
VORBIS_STANDARD_KEYS = {"title": "title", "artist": "artist", "album": "album", "comment": "comment",
                        "genre": "genre", "copyright": "copyright", "date": "date", "license": "license"}


def _comment_walk(f: BinaryIO) -> CommentFields:
    """:func:`comment_fields` of the open file ``f``, read from its start, and its cue sheet
    (a sheet naming several files: the tracks of the one named as ``f`` is, :func:`_file_name`)."""
    magic = f.read(4)
    f.seek(0)
    if magic == b"fLaC":
        return _flac_walk(f)
    if magic[:3] == b"ID3" and _flac_after_id3(f):     # a tagger's ID3v2 tag before a FLAC stream
        out = _flac_walk(f)
        f.seek(0)
        _ucs_comments(id3_user_texts(f), out)          # the FLAC's own comments first
        return out
    if magic in (b"OggS", b"ID3\x03", b"ID3\x04"):
        out = CommentFields()
        entries = ogg_comments(f) if magic == b"OggS" else id3_user_texts(f)
        out.marker_list = _cue_markers(cue_tracks(_ucs_comments(entries, out), _file_name(f)))
        return out
    return CommentFields()


def _file_name(f: BinaryIO) -> str | None:
    """The file name of the open file ``f`` (what its embedded cue sheet's FILE lines are
    matched against, as a sidecar sheet's are: engine.cue_sheet.cue_tracks); None for bytes
    without one (an upload: a sheet naming several files then gives all their tracks)."""
    name = getattr(f, "name", None)
    return os.path.basename(name) if isinstance(name, str) and name else None


def _flac_after_id3(f: BinaryIO) -> bool:
    """Whether the open file ``f``, at its start an ID3v2 tag, holds a FLAC stream right after
    the tag (libFLAC, and so libsndfile, steps over such a tag); ``f`` is left at that stream
    when it does, at its start when not."""
    end = id3v2_end(f.read(10))
    f.seek(end)
    found = end > 0 and f.read(4) == b"fLaC"
    f.seek(end if found else 0)
    return found


def _tag_fields(tags: dict[str, str], audio_name: str | None = None) -> CommentFields:
    """The UCS-named fields and the cue sheet's markers of a file's tags as FFmpeg reads them
    (an M4A's freeform atoms, a WavPack or Monkey's Audio file's APEv2 tags …); a sheet naming
    several files gives the tracks of the one named ``audio_name``."""
    out = CommentFields()
    out.marker_list = _cue_markers(cue_tracks(_ucs_comments([f"{k}={v}" for k, v in tags.items()], out), audio_name))
    return out


def _ucs_comments(entries: list[str], out: CommentFields) -> str:
    """Put the UCS-named ``KEY=value`` entries of a Vorbis comment block (or an ID3 tag's TXXX
    frames) into ``out``, the standard ones into ``out.standard``; the text of its ``CUESHEET``
    entry ("" when none)."""
    sheet = ""
    for entry in entries:
        name, _, value = entry.partition("=")
        name = name.strip().lower()
        if name == "cuesheet":
            sheet = sheet or value
        key = IXML_KEYS.get(name)
        if key:
            _put_first(out, key, value)
        if name in VORBIS_STANDARD_KEYS:
            _put_first(out.standard, VORBIS_STANDARD_KEYS[name], value)
    return sheet


def _flac_walk(f: BinaryIO) -> CommentFields:
    """The comments and cue sheet of the open native FLAC file ``f``, read from its start (a
    ``CUESHEET`` comment naming several files: the tracks of the one named as ``f`` is)."""
    out = CommentFields()
    if f.read(4) != b"fLaC":
        return out
    rate, sheet, block = 0, "", []
    for _ in range(_MAX_CHUNKS):
        head = f.read(4)
        if len(head) < 4:
            break
        kind, size = head[0] & 0x7F, int.from_bytes(head[1:4], "big")
        if kind in (0, 4, 5):                          # a larger block is read as far as the limit
            body = f.read(min(size, _MAX_TEXT_CHUNK))
            f.seek(size - len(body), 1)
            if kind == 0 and len(body) >= 13:          # STREAMINFO: the sample rate, 20 bits
                rate = (body[10] << 12) | (body[11] << 4) | (body[12] >> 4)
            elif kind == 4:                            # VORBIS_COMMENT
                sheet = _ucs_comments(_vorbis_comments(body), out) or sheet
            else:                                      # CUESHEET
                block = flac_cuesheet_block(body, rate)
        else:
            f.seek(size, 1)
        if head[0] & 0x80:                             # the last metadata block
            break
    tracks = cue_tracks(sheet, _file_name(f)) if sheet else block
    out.marker_list = _cue_markers(tracks)
    return out


#: Ogg pages read at most while looking for a stream's comment header (it follows the first)
_MAX_OGG_PAGES = 64


def ogg_comments(f: BinaryIO) -> list[str]:
    """The ``KEY=value`` comments of the first logical stream of the open Ogg file ``f`` (its
    second packet: a Vorbis ``\\x03vorbis``, an Opus ``OpusTags`` or an Ogg FLAC comment
    header), read from its start across as many pages as it spans (as far as
    :data:`_MAX_TEXT_CHUNK`); [] for a file that is not Ogg or a stream of another codec."""
    serial, packets, current = None, [], bytearray()
    for _ in range(_MAX_OGG_PAGES):
        head = f.read(27)
        if len(head) < 27 or head[:4] != b"OggS":
            break
        lacing = f.read(head[26])
        body = f.read(sum(lacing))
        if serial is None:
            serial = head[14:18]
        if head[14:18] != serial:                      # a page of another, multiplexed stream
            continue
        at = 0
        for n in lacing:
            if len(current) < _MAX_TEXT_CHUNK:
                current += body[at:at + n]
            at += n
            if n < 255:                                # a packet ends at a segment under 255 bytes
                packets.append(bytes(current))
                current = bytearray()
        if len(packets) >= 2:
            break
    if len(packets) < 2:
        return []
    packet = packets[1]
    for prefix in (b"\x03vorbis", b"OpusTags"):
        if packet.startswith(prefix):
            return _vorbis_comments(packet[len(prefix):])
    if packets[0].startswith(b"\x7fFLAC") and packet[:1] and packet[0] & 0x7F == 4:
        return _vorbis_comments(packet[4:])             # Ogg FLAC: a metadata block, its 4-byte header first
    return []


def id3_user_texts(f: BinaryIO) -> list[str]:
    """The ``DESCRIPTION=value`` pairs of the ``TXXX`` frames of the ID3v2.3 or v2.4 tag at the
    start of the open file ``f`` (where Mp3tag, Soundminer and other taggers put fields ID3 has
    no frame for: CATEGORY, CatID, FXName …); [] when there is none. Compressed or encrypted
    frames are left out; the tag is read as far as :data:`_MAX_TEXT_CHUNK`."""
    out = []
    for frame, data in _id3_frames(f):
        pair = _id3_text_pair(data) if frame == b"TXXX" else None
        if pair:
            out.append(f"{pair[0]}={pair[1]}")
    return out


#: ID3v2 text frames → soundsift's keys (what libsndfile gives an MP3's; a WAV's or AIFF's ID3
#: chunk it does not read)
ID3_TEXT_FRAMES = {b"TIT2": "title", b"TPE1": "artist", b"TALB": "album", b"TCON": "genre",
                   b"TCOP": "copyright", b"TDRC": "date", b"TYER": "date", b"TSSE": "software"}


#: descriptions of the COMM frames a tool writes for itself, not a comment: iTunes' loudness
#: (``iTunNORM``), gapless (``iTunSMPB``, ``iTunPGAP``) and CD lookup (``iTunes_CDDB_…``) numbers
ID3_TOOL_COMMENTS = ("itun",)


def id3_standard_fields(f: BinaryIO) -> dict[str, str]:
    """The standard fields (:data:`ID3_TEXT_FRAMES`, and the comment ``COMM``) of the ID3v2 tag
    at the start of the open file ``f``, first frame of each key winning; the comment is the
    first COMM frame without a description, else the first with one, a tool's own numbers
    (:data:`ID3_TOOL_COMMENTS`) left out."""
    out: dict[str, str] = {}
    comments: list[tuple[str, str]] = []
    for frame, data in _id3_frames(f):
        if frame in ID3_TEXT_FRAMES:
            _put_first(out, ID3_TEXT_FRAMES[frame], ", ".join(v for v in _id3_strings(data) if v) or None)
        elif frame == b"COMM" and len(data) > 4:
            strings = _id3_strings(data[:1] + data[4:])          # encoding, language, description, text
            if len(strings) >= 2 and not strings[0].lower().startswith(ID3_TOOL_COMMENTS):
                comments.append((strings[0], ", ".join(v for v in strings[1:] if v)))
    plain = [text for description, text in comments if not description] or [text for _, text in comments]
    _put_first(out, "comment", next((text for text in plain if text), None))
    return out


def _id3_frames(f: BinaryIO) -> list[tuple[bytes, bytes]]:
    """(frame id, data) of each frame of the ID3v2.3 or v2.4 tag at the start of the open file
    ``f``, unsynchronisation and data length indicators undone; compressed or encrypted frames
    left out; [] when there is no such tag. Read as far as :data:`_MAX_TEXT_CHUNK`."""
    head = f.read(10)
    if len(head) < 10 or head[:3] != b"ID3" or head[3] not in (3, 4):
        return []
    version, flags = head[3], head[5]
    body = f.read(min(_syncsafe(head[6:10]), _MAX_TEXT_CHUNK))
    if version == 3 and flags & 0x80:                  # v2.3 unsynchronises the whole tag
        body = body.replace(b"\xff\x00", b"\xff")
    at = 0
    if flags & 0x40 and len(body) >= 4:                # an extended header first
        at = struct.unpack(">I", body[:4])[0] + 4 if version == 3 else _syncsafe(body[:4])
    out = []
    while at + 10 <= len(body) and body[at:at + 1] not in (b"\x00", b""):
        frame, raw_size, frame_flags = body[at:at + 4], body[at + 4:at + 8], body[at + 8:at + 10]
        size = struct.unpack(">I", raw_size)[0] if version == 3 else _syncsafe(raw_size)
        data, at = body[at + 10:at + 10 + size], at + 10 + size
        if not data:
            continue
        if version == 3:
            if frame_flags[1] & 0xC0:                  # compressed or encrypted
                continue
        else:
            if frame_flags[1] & 0x0C:
                continue
            if frame_flags[1] & 0x01:                  # a data length indicator before the data
                data = data[4:]
            if frame_flags[1] & 0x02 or flags & 0x80:     # unsynchronised: this frame, or the whole tag
                data = data.replace(b"\xff\x00", b"\xff")
        if data:
            out.append((frame, data))
    return out


def container_id3(f: BinaryIO) -> bytes | None:
    """The ID3 tag kept in an ``id3 `` / ``ID3 `` chunk of the open WAV (RIFF or RF64) or AIFF
    file ``f`` (where Mp3tag, foobar2000 and some DAWs tag them), read from its start, its
    chunks walked as :func:`_chunk_heads` walks them (a pad byte its writer left out, an RF64
    data chunk's size in ds64); None when it has none."""
    head = f.read(12)
    if len(head) < 12:
        return None
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        big_endian = False
    elif head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        big_endian = True
    else:
        return None
    for cid, size in _chunk_heads(f, big_endian=big_endian):
        if cid in (b"id3 ", b"ID3 ") and size <= _MAX_TEXT_CHUNK:
            return f.read(size)
    return None


def id3v2_end(head: bytes) -> int:
    """Where what follows an ID3v2 tag starts (its 10-byte header, its syncsafe size, and a footer
    where its flags say so), given a file's first 10 bytes ``head``; 0 when they hold no tag."""
    if len(head) < 10 or head[:3] != b"ID3":
        return 0
    return 10 + _syncsafe(head[6:10]) + (10 if head[5] & 0x10 else 0)


def _syncsafe(b: bytes) -> int:
    """An ID3v2 syncsafe integer (7 bits a byte)."""
    return (b[0] & 0x7F) << 21 | (b[1] & 0x7F) << 14 | (b[2] & 0x7F) << 7 | (b[3] & 0x7F)


#: ID3v2 text encodings → (codec, terminator)
_ID3_ENCODINGS = {0: ("latin-1", b"\x00"), 1: ("utf-16", b"\x00\x00"), 2: ("utf-16-be", b"\x00\x00"),
                  3: ("utf-8", b"\x00")}


def _id3_text_pair(data: bytes) -> tuple[str, str] | None:
    """(description, value) of a TXXX frame's data; several values (v2.4) joined by ", "."""
    strings = _id3_strings(data)
    if len(strings) < 2 or not strings[0]:
        return None
    return strings[0], ", ".join(v for v in strings[1:] if v)


def _id3_strings(data: bytes) -> list[str]:
    """The strings of an ID3v2 text frame's data (its encoding byte first), stripped; [] for an
    unknown encoding. In UTF-16 each string may carry its own byte-order mark; one without
    takes the first one's."""
    codec, end = _ID3_ENCODINGS.get(data[0], (None, b"")) if data else (None, b"")
    if codec is None:
        return []
    raw = _split_on(data[1:], end)
    bom = raw[0][:2] if codec == "utf-16" and raw and raw[0][:2] in (b"\xff\xfe", b"\xfe\xff") else b""
    return [(bom + p if bom and p[:2] not in (b"\xff\xfe", b"\xfe\xff") else p)
            .decode(codec, errors="replace").strip() for p in raw]


def _split_on(raw: bytes, end: bytes) -> list[bytes]:
    """``raw`` split at the ``end`` terminators that fall on a character boundary (UTF-16: an
    even offset), the empty piece after a final terminator dropped."""
    parts, start = [], 0
    for i in range(0, len(raw) - len(end) + 1, len(end)):
        if raw[i:i + len(end)] == end and i >= start:
            parts.append(raw[start:i])
            start = i + len(end)
    if start < len(raw):
        parts.append(raw[start:])
    return parts


def _vorbis_comments(body: bytes) -> list[str]:
    """The ``KEY=value`` entries of a Vorbis comment block (lengths trusted as far as it goes):
    UTF-8 as the format says, else Windows-1252, else Latin-1 (old taggers wrote their system's
    code page; engine.text_encoding.decode_text)."""
    if len(body) < 8:
        return []
    at = 4 + struct.unpack("<I", body[:4])[0]              # past the vendor string
    if at + 4 > len(body):
        return []
    count, at = struct.unpack("<I", body[at:at + 4])[0], at + 4
    entries = []
    for _ in range(min(count, 1024)):
        if at + 4 > len(body):
            break
        n, at = struct.unpack("<I", body[at:at + 4])[0], at + 4
        entries.append(decode_text(body[at:at + n]))
        at += n
    return entries
