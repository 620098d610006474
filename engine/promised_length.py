"""How long a container's header says its audio is, to notice a file cut short.

libsndfile counts a WAV's, AIFF's or AU's frames from the bytes actually present when the file
ends before its data chunk does, so its duration cannot tell a truncated copy (an interrupted
download or transfer) from a whole file. The data chunk's own size field can: this module reads
it, for WAV (RIFF, and RF64 through its ``ds64`` chunk), AIFF/AIFC (``SSND``) and AU.
"""
from __future__ import annotations

import os
import struct
from typing import BinaryIO

#: chunks walked at most before giving up on finding the data chunk
_MAX_CHUNKS = 64
#: a size field a streaming writer leaves unset ("until the end of the file")
_UNSET = (0, 0xFFFFFFFF)


def promised_seconds(path: str, frames: int, sample_rate: int) -> float:
    """The duration ``path``'s header promises, given the ``frames`` libsndfile found at
    ``sample_rate``: more than ``frames / sample_rate`` for a file whose data chunk runs past
    its end, else exactly that (also for formats and headers this module does not read)."""
    present = frames / sample_rate if sample_rate else 0.0
    try:
        with open(path, "rb") as f:
            found = _data_chunk(f)
            size = os.fstat(f.fileno()).st_size
    except (OSError, struct.error):
        return present
    if found is None or frames <= 0:
        return present
    start, declared = found
    available = size - start
    if declared in _UNSET or available <= 0 or declared <= available:
        return present
    return present * declared / available


def _data_chunk(f: BinaryIO) -> tuple[int, int] | None:
    """(offset of the first audio byte, bytes the header declares) or None."""
    head = f.read(12)
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return _riff_data(f, rf64=head[:4] == b"RF64")
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return _aiff_data(f)
    if head[:4] == b".snd":
        offset, size = struct.unpack(">II", head[4:12])
        return offset, size
    return None


def _riff_data(f: BinaryIO, rf64: bool) -> tuple[int, int] | None:
    big_size = None
    for _ in range(_MAX_CHUNKS):
        head = f.read(8)
        if len(head) < 8:
            return None
        cid, size = head[:4], struct.unpack("<I", head[4:])[0]
        if cid == b"ds64" and rf64:
            body = f.read(size)
            big_size = struct.unpack("<Q", body[8:16])[0]    # riff size, then data size
            f.seek(size % 2, os.SEEK_CUR)
            continue
        if cid == b"data":
            return f.tell(), big_size if (rf64 and size == 0xFFFFFFFF and big_size) else size
        f.seek(size + size % 2, os.SEEK_CUR)
    return None


def _aiff_data(f: BinaryIO) -> tuple[int, int] | None:
    for _ in range(_MAX_CHUNKS):
        head = f.read(8)
        if len(head) < 8:
            return None
        cid, size = head[:4], struct.unpack(">I", head[4:])[0]
        if cid == b"SSND":
            offset, _block = struct.unpack(">II", f.read(8))
            return f.tell() + offset, size - 8 - offset
        f.seek(size + size % 2, os.SEEK_CUR)
    return None
