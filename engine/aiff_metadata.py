"""What an AIFF or AIFC file says in its own chunks: its named markers and its text.

Its ``MARK`` chunk's named markers, placed by the ``COMM`` chunk's sample rate (none past its
frames), and its text chunks (:data:`AIFF_TEXT_KEYS`: ``NAME``, ``AUTH``, ``(c) ``, ``ANNO``),
UTF-8 where they decode, else Mac OS Roman, as the classic Mac tools that wrote most AIFF
libraries did. The chunks are walked by engine.iff_chunks (a pad byte its writer left out, too).
"""
from __future__ import annotations

import struct
from typing import BinaryIO

from engine.iff_chunks import _MAX_TEXT_CHUNK, _chunk_heads
from engine.markers import MAX_MARKERS, Marker
from engine.metadata_values import _put_first


def aiff_markers(f: BinaryIO) -> list[Marker]:
    """The named markers of the open AIFF or AIFC file ``f`` (its ``MARK`` chunk, placed by the
    ``COMM`` chunk's sample rate; none past its frames), in time order, at most
    :data:`MAX_MARKERS`; none for any other file. Chunk sizes are trusted only as far as the
    file goes."""
    markers, _, end = _aiff_walk(f)
    return [m for m in markers if end is None or m.at < end][:MAX_MARKERS]


#: AIFF text chunks → the keys libsndfile gives them
AIFF_TEXT_KEYS = {b"NAME": "title", b"AUTH": "artist", b"(c) ": "copyright", b"ANNO": "comment"}


def _aiff_walk(f: BinaryIO) -> tuple[list[Marker], dict[str, str], float | None]:
    """The named markers of the open AIFF or AIFC file ``f`` in time order, those past its end
    too (its callers leave them out: read_metadata says so), what its text chunks say
    (:data:`AIFF_TEXT_KEYS`, the first of each; UTF-8 where it decodes, else Mac OS Roman, as
    the classic Mac tools that wrote most AIFF libraries did), and its length in seconds by
    ``COMM`` (None when not known)."""
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"FORM" or head[8:12] not in (b"AIFF", b"AIFC"):
        return [], {}, None
    rate, points, frames, texts = 0.0, [], None, {}
    for cid, size in _chunk_heads(f, big_endian=True):     # a pad byte its writer left out, too
        if cid == b"COMM" and size >= 18:
            body = f.read(size)
            rate = _extended(body[8:18]) if len(body) >= 18 else 0.0
            frames = struct.unpack(">I", body[2:6])[0] if len(body) >= 6 else None
        elif cid == b"MARK" and size <= _MAX_TEXT_CHUNK:
            points = _mark_points(f.read(size))
        elif cid in AIFF_TEXT_KEYS and size <= _MAX_TEXT_CHUNK:
            _put_first(texts, AIFF_TEXT_KEYS[cid], _mac_text(f.read(size)))
    if rate <= 0:
        return [], texts, None
    named = sorted((at, name) for at, name in points if name)
    return [Marker(at / rate, name) for at, name in named], texts, None if frames is None else frames / rate


def _mac_text(raw: bytes) -> str:
    """An AIFF string (a text chunk, a marker's name), up to a NUL: UTF-8 where it decodes, else
    Mac OS Roman."""
    raw = raw.split(b"\x00", 1)[0]
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return raw.decode("mac_roman").strip()


def _extended(b: bytes) -> float:
    """An 80-bit IEEE 754 extended float (the AIFF sample rate)."""
    exponent = ((b[0] & 0x7F) << 8) | b[1]
    mantissa = int.from_bytes(b[2:10], "big")
    if exponent == 0 and mantissa == 0:
        return 0.0
    value = mantissa * 2.0 ** (exponent - 16383 - 63)
    return -value if b[0] & 0x80 else value


def _mark_points(body: bytes) -> list[tuple[int, str]]:
    """(sample frame, name) of a ``MARK`` chunk's markers, as far as the chunk goes."""
    if len(body) < 2:
        return []
    count, at, out = struct.unpack(">H", body[:2])[0], 2, []
    for _ in range(count):
        if at + 7 > len(body):
            break
        position, length = struct.unpack(">I", body[at + 2:at + 6])[0], body[at + 6]
        out.append((position, _mac_text(body[at + 7:at + 7 + length])))
        at += 7 + length + (0 if length % 2 else 1)      # the Pascal string pads to an even size
    return out
