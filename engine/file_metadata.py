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
#: chunks walked at most when looking for bext and LIST/INFO (a WAV has a handful)
_MAX_CHUNKS = 64


#: RIFF LIST/INFO ids → the keys libsndfile gives them
INFO_KEYS = {b"INAM": "title", b"ICMT": "comment", b"IART": "artist", b"IPRD": "album",
             b"IGNR": "genre", b"ICOP": "copyright", b"ISFT": "software", b"ICRD": "date"}


def read_metadata(path: str | Path) -> dict[str, str]:
    """Non-empty metadata of ``path``: libsndfile's string fields and a BWF's bext
    ``description``/``originator``. libsndfile decodes every string as UTF-8; a WAV INFO value
    written in Latin-1 (common in older libraries) comes back with U+FFFD where its accents
    were, so such values are read again from the RIFF chunk with a Latin-1 fallback.
    Raises what soundfile raises for a file it cannot open."""
    out: dict[str, str] = {}
    with sf.SoundFile(str(path)) as f:
        for key, value in f.copy_metadata().items():
            _put(out, key, value)
    riff = riff_fields(path)
    for key, value in riff.items():
        if key not in out or "\ufffd" in out[key]:
            _put(out, key, value)
    return out


def _put(out: dict[str, str], key: str, value: object) -> None:
    text = " ".join(str(value).replace("\x00", " ").split())
    if text:
        out[str(key)] = text[:MAX_VALUE]


def riff_fields(path: str | Path) -> dict[str, str]:
    """What a RIFF/RF64 WAVE file's bext chunk (``description``, ``originator``) and LIST/INFO
    chunk (:data:`INFO_KEYS`) say, decoded as UTF-8 where they decode, else Latin-1 ({} for
    any other file). Chunk sizes are trusted only as far as the file goes."""
    out: dict[str, str] = {}
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            return out
        for _ in range(_MAX_CHUNKS):
            chunk = f.read(8)
            if len(chunk) < 8:
                break
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if size == 0xFFFFFFFF:           # an RF64 size kept in ds64: nothing walkable beyond
                break
            if cid == b"bext":
                body = f.read(min(size, 288))
                out.update(description=_text(body[:256]), originator=_text(body[256:288]))
                f.seek(size - len(body) + (size & 1), 1)
            elif cid == b"LIST" and size <= 1 << 20:
                out.update(_info(f.read(size)))
                f.seek(size & 1, 1)
            else:
                f.seek(size + (size & 1), 1)
    return out


def _info(body: bytes) -> dict[str, str]:
    """The INFO_KEYS of a LIST chunk's body when it is an INFO list."""
    out: dict[str, str] = {}
    if body[:4] != b"INFO":
        return out
    at = 4
    while at + 8 <= len(body):
        cid, size = body[at:at + 4], struct.unpack("<I", body[at + 4:at + 8])[0]
        if cid in INFO_KEYS:
            out[INFO_KEYS[cid]] = _text(body[at + 8:at + 8 + size])
        at += 8 + size + (size & 1)
    return out


def _text(raw: bytes) -> str:
    """A fixed-width bext string: NUL-padded, UTF-8 where it decodes, else Latin-1."""
    raw = raw.split(b"\x00", 1)[0]
    try:
        return raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        return raw.decode("latin-1").strip()
