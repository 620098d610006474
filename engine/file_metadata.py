"""The descriptions a sound file carries inside it.

Sound-effects libraries write what a file holds into the file: a title and a comment (WAV INFO,
AIFF, FLAC and Ogg Vorbis comments, MP3 ID3 — all read by libsndfile) and, in Broadcast WAV, the
``bext`` chunk's 256-character Description and its Originator. The indexer stores them in the
catalog (``file_metadata``) and keyword search reads the descriptive ones
(:data:`SEARCHED_KEYS`).
"""
from __future__ import annotations

import struct
from pathlib import Path

import soundfile as sf

#: keys whose values describe the sound (keyword search reads these; "software", "date",
#: "tracknumber", "copyright" and "license" are stored but not searched)
SEARCHED_KEYS = ("title", "description", "comment", "album", "genre", "artist", "originator")
#: longest value kept (characters)
MAX_VALUE = 2000
#: chunks walked at most when looking for bext (a WAV has a handful)
_MAX_CHUNKS = 64


def read_metadata(path: str | Path) -> dict[str, str]:
    """Non-empty metadata of ``path``: libsndfile's string fields and a BWF's bext
    ``description``/``originator``. Raises what soundfile raises for a file it cannot open."""
    out: dict[str, str] = {}
    with sf.SoundFile(str(path)) as f:
        for key, value in f.copy_metadata().items():
            _put(out, key, value)
    for key, value in bext_fields(path).items():
        _put(out, key, value)
    return out


def _put(out: dict[str, str], key: str, value: object) -> None:
    text = " ".join(str(value).replace("\x00", " ").split())
    if text:
        out[str(key)] = text[:MAX_VALUE]


def bext_fields(path: str | Path) -> dict[str, str]:
    """``description`` and ``originator`` from a RIFF/RF64 WAVE file's bext chunk ({} without one)."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return {}
        for _ in range(_MAX_CHUNKS):
            chunk = f.read(8)
            if len(chunk) < 8:
                return {}
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"bext":
                body = f.read(min(size, 288))
                return {"description": _text(body[:256]), "originator": _text(body[256:288])}
            if size == 0xFFFFFFFF:           # an RF64 size kept in ds64: nothing walkable beyond
                return {}
            f.seek(size + (size & 1), 1)
    return {}


def _text(raw: bytes) -> str:
    """A fixed-width bext string: NUL-padded, UTF-8 where it decodes, else Latin-1."""
    raw = raw.split(b"\x00", 1)[0]
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return raw.decode("latin-1").strip()
