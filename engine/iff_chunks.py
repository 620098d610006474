"""The chunks of a RIFF, RF64, Sony Wave64 or AIFF/AIFC sound file, walked as far as the file holds them.

:func:`_chunk_heads` gives each chunk's id and size with the file at its body: an RF64 data
chunk's size from its ds64 chunk, a Wave64 chunk named by its GUID, an AIFF's big-endian sizes,
a RIFF pad byte its writer left out stepped over. :func:`wave_chunks` gives the first chunk of
each wanted id of a WAVE file (what engine.wav_chunks carries into an excerpt). The readers of a
file's own metadata walk it with these: engine.riff_metadata, engine.aiff_metadata and
engine.tag_comments (a WAV's or AIFF's ID3 chunk).
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator


#: chunks walked at most when looking for bext, LIST/INFO and iXML (a WAV has a handful)
_MAX_CHUNKS = 64
#: largest LIST or iXML chunk read (an iXML chunk is a few kB; anything far larger is not metadata)
_MAX_TEXT_CHUNK = 1 << 20


#: Sony Wave64 names a chunk by a GUID: a RIFF chunk's four letters, then these 12 bytes
#: (``fmt ``, ``bext``, ``data`` …); its file and form GUIDs are these two
_W64_SUFFIX = bytes.fromhex("f3acd3118cd100c04f8edb8a")
_W64_RIFF = b"riff" + bytes.fromhex("2e91cf11a5d628db04c10000")
_W64_WAVE = b"wave" + _W64_SUFFIX


@dataclass(frozen=True)
class WaveChunk:
    """A chunk of a WAVE file: its id, the size its header gives, and its body as far as the
    file holds it (shorter than ``size`` when the file ends inside it; empty when it is larger
    than :func:`wave_chunks` reads)."""

    cid: bytes
    size: int
    body: bytes


def wave_chunks(path: str | Path, wanted: tuple[bytes, ...], limit: int = _MAX_TEXT_CHUNK) -> dict[bytes, WaveChunk]:
    """The first chunk of each id in ``wanted`` (``b"fmt "``, ``b"bext"``, ``b"iXML"`` …) of a
    RIFF, RF64 or Sony Wave64 WAVE file, before or after its audio (an RF64 file's data chunk
    is stepped over by the size its ds64 chunk gives); {} for any other file. A chunk larger
    than ``limit`` bytes comes with an empty body. OSError when the file cannot be read."""
    with open(path, "rb") as f:
        head = f.read(40)
        if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
            f.seek(12)
            return _wave_chunks(f, wanted, limit, wave64=False)
        if head[:16] == _W64_RIFF and head[24:40] == _W64_WAVE:
            return _wave_chunks(f, wanted, limit, wave64=True)
    return {}


def _wave_chunks(f: BinaryIO, wanted: tuple[bytes, ...], limit: int, wave64: bool) -> dict[bytes, WaveChunk]:
    """:func:`wave_chunks` of the open file ``f``, at its first chunk."""
    found: dict[bytes, WaveChunk] = {}
    for cid, size in _chunk_heads(f, wave64):
        if cid in wanted and cid not in found:
            body = f.read(size) if size <= limit else b""
            found[cid] = WaveChunk(cid, size, body)
            if len(body) < size and size <= limit:     # the file ends inside it
                break
            if len(found) == len(set(wanted)):
                break
    return found


def _chunk_heads(f: BinaryIO, wave64: bool = False, big_endian: bool = False) -> Iterator[tuple[bytes, int]]:
    """The chunks of a RIFF or RF64 (or, ``wave64``, Sony Wave64; or, ``big_endian``, an AIFF or
    AIFC) file from ``f``'s place
    (past its form header), as ``(id, size)`` with ``f`` at the chunk's body: whatever the caller
    reads of it, the next comes from the chunk after. An RF64 data chunk's size is its ds64
    chunk's (ds64 itself is not given); a Wave64 id is its GUID's four letters where the GUID
    is a RIFF id's. An odd-sized chunk's pad byte is stepped over where it is a NUL (a writer that
    leaves it out has the next chunk's id there). Ends at the file's end, at a size it cannot
    know or that reaches past the file's end (a chunk cut short is still given: its body is what
    the file holds), or after :data:`_MAX_CHUNKS`."""
    data_size64: int | None = None
    here = f.tell()
    file_size = f.seek(0, os.SEEK_END)                  # a file object or bytes in memory alike
    f.seek(here)
    for _ in range(_MAX_CHUNKS):
        if wave64:          # a 16-byte GUID and a 64-bit size counting the 24-byte head; 8-byte aligned
            head = f.read(24)
            if len(head) < 24:
                return
            size = struct.unpack("<Q", head[16:24])[0] - 24
            cid = head[:4] if head[4:16] == _W64_SUFFIX else head[:16]
            pad = -size % 8
        else:
            head = f.read(8)
            if len(head) < 8:
                return
            cid, size = head[:4], struct.unpack(">I" if big_endian else "<I", head[4:])[0]
            if size == 0xFFFFFFFF:                 # a size kept in ds64 (the data chunk's, in RF64)
                if cid != b"data" or data_size64 is None:
                    return
                size = data_size64
            pad = size & 1
        if size < 0:
            return
        start = f.tell()
        if start + size > file_size:                    # cut short, or a size no file has: the last
            if not (cid == b"ds64" and not wave64):
                yield cid, size
            return
        if cid == b"ds64" and not wave64 and size >= 16:    # RF64: the 64-bit sizes, the data chunk's second
            body = f.read(size)
            data_size64 = struct.unpack("<Q", body[8:16])[0] if len(body) >= 16 else None
        else:
            yield cid, size
        if pad == 1 and not wave64:                     # a RIFF pad byte, unless its writer left it out
            f.seek(start + size)
            pad = 0 if f.read(1) not in (b"\x00", b"") else 1
        f.seek(start + size + pad)
