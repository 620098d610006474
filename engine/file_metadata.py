"""The descriptions a sound file carries inside it.

Sound-effects libraries write what a file holds into the file: a title and a comment (WAV INFO,
AIFF, FLAC and Ogg Vorbis comments, MP3 ID3 — all read by libsndfile); in Broadcast WAV, the
``bext`` chunk's 256-character Description and its Originator; and in the WAV ``iXML`` chunk the
fields library tools write there — Soundminer's and BaseHead's ``USER`` block (DESCRIPTION,
CATEGORY, SUBCATEGORY, CATID, FXNAME, KEYWORDS …, the Universal Category System's fields), the
Audio Standards Working Group's ``ASWG`` block, and Steinberg MediaBay's ``ATTR_LIST``
(MediaComment, MediaCategoryPost …), and its ``SYNC_POINT_LIST`` (a field recorder's named
cues, as markers); the same UCS names as a FLAC or Ogg file's Vorbis comments and an MP3's
ID3v2 user text (TXXX) frames. The indexer stores them in the catalog (``file_metadata``)
and keyword search reads the descriptive ones (:data:`SEARCHED_KEYS`).
"""
from __future__ import annotations

import io
import logging
import math
import os
import re
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from engine.audio import open_sound
from engine.ffmpeg_audio import FFMPEG_EXTENSIONS, FFmpegSound
from engine.cue_sheet import CueTrack, cue_tracks, flac_cuesheet_block, sidecar_tracks
from engine.text_encoding import UTF16_BOMS, decode_text, one_line

log = logging.getLogger(__name__)

#: keys whose values describe the sound (keyword search reads these; "software", "date",
#: "tracknumber", "copyright" and "license" are stored but not searched)
SEARCHED_KEYS = ("title", "description", "comment", "album", "genre", "artist", "originator",
                 "category", "subcategory", "catid", "keywords", "library", "designer", "note",
                 "location", "markers")
#: what a library's metadata spreadsheet says of a file (indexer.metadata_sheet) is stored under
#: its key with this prefix, apart from what the file says: re-reading the file leaves it, and
#: where the file says nothing under a key, the sheet's value stands in (:func:`with_sheet`)
SHEET_PREFIX = "sheet:"
#: the file name of the sheet that described a file
SHEET_NAME_KEY = SHEET_PREFIX + "sheet"
#: … and its absolute path: two sheets of one name in two folders (a vendor's metadata.csv in each
#: volume) are two sheets (rows from before session 24 have only the name)
SHEET_PATH_KEY = SHEET_PREFIX + "path"
#: what the sheets imported before the standing one said of a file, oldest first (a JSON list,
#: indexer.metadata_sheet): they stand again when the later sheet is removed
SHEET_SHADOWED_KEY = SHEET_PREFIX + "shadowed"
#: the keys that say which sheet described a file, not what it said
SHEET_SOURCE_KEYS = (SHEET_NAME_KEY, SHEET_PATH_KEY, SHEET_SHADOWED_KEY)
#: the keys keyword search reads: the searched ones a file carries and the same from a sheet
SEARCHED_KEYS_WITH_SHEETS = SEARCHED_KEYS + tuple(SHEET_PREFIX + k for k in SEARCHED_KEYS)
#: the keys a category filter matches (a library's category, or its UCS CatID), from the file or a sheet
CATEGORY_FILTER_KEYS = ("category", "catid", SHEET_PREFIX + "category", SHEET_PREFIX + "catid")


#: what a file's one-line description is made of (:func:`about_line`), in this order
ABOUT_KEYS = ("title", "description", "comment")
#: a library's category for the file, shown before them
CATEGORY_KEYS = ("category", "subcategory")
#: every key an about line reads, from the file or a library sheet
ABOUT_LINE_KEYS = (*ABOUT_KEYS, *CATEGORY_KEYS, *(SHEET_PREFIX + k for k in (*ABOUT_KEYS, *CATEGORY_KEYS)))
#: longest about line (characters; the catalog and JSON keep the whole text)
ABOUT_CHARS = 280


def about_line(found: dict[str, str], limit: int = ABOUT_CHARS) -> str:
    """One line saying what a file is, from its metadata (after :func:`with_sheet`): the
    category when there is one, then the distinct title, description and comment, then its
    named markers when ``found`` holds them ("DOORS / WOOD: Door creak — … — markers 0:01.2
    Creak"), cut at a word to ``limit`` characters; "" when it says nothing."""
    parts = [found[k] for k in ABOUT_KEYS if found.get(k)]
    if found.get("markers"):
        parts.append(f"markers {found['markers']}")
    about = " — ".join(dict.fromkeys(parts))
    category = " / ".join(dict.fromkeys(found[k] for k in CATEGORY_KEYS if found.get(k)))
    return cut_at_word(f"{category}: {about}" if category and about else category or about, limit)


def cut_at_word(line: str, limit: int) -> str:
    """``line``, or its first words up to ``limit`` characters and " …"."""
    if len(line) <= limit:
        return line
    return line[:limit].rsplit(" ", 1)[0].rstrip(" ,;:—") + " …"


def with_sheet(found: dict[str, str]) -> dict[str, str]:
    """A file's stored metadata (key → value) with a sheet's values under their plain keys where
    the file itself says nothing under that key; the sheet keys themselves left out."""
    out = {k: v for k, v in found.items() if not k.startswith(SHEET_PREFIX)}
    for key, value in found.items():
        if key.startswith(SHEET_PREFIX) and key not in SHEET_SOURCE_KEYS:
            out.setdefault(key[len(SHEET_PREFIX):], value)
    return out


#: what read_metadata reads: 1 libsndfile's fields, bext and LIST/INFO (session 18); 2 also the
#: iXML chunk and FLAC Vorbis comments with UCS names (session 19); 3 also a WAV's named cue markers
#: (session 20); 4 also an AIFF's named markers (session 22); 5 also cue sheets (a FLAC's and a
#: sidecar ``.cue``, session 23); 6 also Ogg Vorbis/Opus/FLAC comments with UCS names and a
#: ``CUESHEET``, an MP3's ID3v2 TXXX frames with UCS names, a WAV's or AIFF's ID3 chunk, and a
#: WAV's iXML sync points as markers (session 24); 7 sets tool stamps ("Processed by SoX") aside
#: as ``software`` instead of a comment (session 26); 8 reads a WAV's or AIFF's chunk text written in
#: Windows-1252 or UTF-16 (an AIFF's in Mac OS Roman) as such, keeps no control characters or markers past
#: the audio, takes a field recorder's bext settings for no description, and reads the comments of a FLAC
#: behind an ID3v2 tag (session 31); 9 reads Vorbis comments written in Latin-1 or Windows-1252 as
#: such, gives a file only its own tracks of an embedded cue sheet naming several files, and finds a
#: WAV's or AIFF's ID3 chunk, and an AIFF's text and markers, after an odd-sized chunk without its
#: pad byte (session 31); 10 places a WAV's cue points written by dwPosition alone (:func:`_cue_points`;
#: session 32); 11 places a WAV's cue points by their dwBlockStart too, and counts an ADPCM or GSM
#: WAV's frames by its blocks' (its markers were all "past the end" before; session 33); 12 places a WAV's
#: ABSOLUTE iXML sync points by the iXML chunk's own time reference where it has no bext chunk (they
#: were left out; session 33). An index
#: whose files were read by an older reader reads them again on its next `soundsift index` run
#: (indexer.metadata_refresh).
READER_VERSION = 12
#: comments written by a tool on every file it touches (7: set aside as ``software``)
TOOL_STAMP = re.compile(r"processed by sox", re.IGNORECASE)
#: most markers kept per file (a file with more is a marker track, not labelled takes)
MAX_MARKERS = 200
#: keys the indexer stores beside what a file says: its levels, measured while decoding (engine.loudness)
LEVEL_KEYS = ("peak_dbfs", "loudness_lufs")
#: the sidecar cue sheet a file's segments were cut with (engine.cue_sheet.sidecar_state): kept
#: until the file is embedded again, so an added, edited or removed sheet is noticed
CUE_SHEET_KEY = "cue_sheet"
#: everything the indexer stores beside what a file says: its levels, its content fingerprint
#: (:func:`content_fingerprint`, which tells a moved file from another of the same size and time)
#: and its sidecar cue sheet's state
INDEXER_KEYS = (*LEVEL_KEYS, "fingerprint", CUE_SHEET_KEY)
#: bytes read at each of a file's start, middle and end for its fingerprint
FINGERPRINT_BLOCK = 16_384
#: longest value kept (characters)
MAX_VALUE = 2000
#: chunks walked at most when looking for bext, LIST/INFO and iXML (a WAV has a handful)
_MAX_CHUNKS = 64
#: largest LIST or iXML chunk read (an iXML chunk is a few kB; anything far larger is not metadata)
_MAX_TEXT_CHUNK = 1 << 20


#: what libsndfile gives for chunk text it does not decode: U+FFFD for bytes that are not UTF-8,
#: control characters for UTF-16 (its NUL bytes) — read again from the chunk then
_GARBLED = re.compile(r"[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f]")

#: RIFF LIST/INFO ids → the keys libsndfile gives them
INFO_KEYS = {b"INAM": "title", b"ICMT": "comment", b"IART": "artist", b"IPRD": "album",
             b"IGNR": "genre", b"ICOP": "copyright", b"ISFT": "software", b"ICRD": "date"}


def read_metadata(path: str | Path, problems: list[str] | None = None) -> dict[str, str]:
    """Non-empty metadata of ``path``: libsndfile's string fields, a BWF's bext
    ``description``/``originator``, a WAV's iXML fields (:func:`ixml_fields`), a FLAC's
    UCS-named Vorbis comments, an Ogg file's and an MP3's UCS-named ID3 TXXX frames
    (:func:`comment_fields`) and the file's named markers
    (:func:`named_markers`: its own, else its cue sheet's tracks). libsndfile
    decodes every string as UTF-8; a WAV INFO value written in Latin-1 (common in older
    libraries) comes back with U+FFFD where its accents were, so such values are read again
    from the RIFF chunk with a Latin-1 fallback. A value that is the start of a longer one
    from another chunk (bext's 256 characters of an iXML description) gives way to it.

    A part that cannot be read (an iXML chunk that is not XML) is left out and its reason
    appended to ``problems``, or logged as a warning when no list is given. Raises what
    soundfile raises for a file it cannot open."""
    out: dict[str, str] = {}
    garbled = set()                             # libsndfile's values it could not decode
    with open_sound(path) as f:
        for key, value in f.copy_metadata().items():
            if _GARBLED.search(str(value)):
                garbled.add(key)
            _put(out, key, value)
        tags = f.tags if isinstance(f, FFmpegSound) else None
        duration = f.frames / f.samplerate if f.frames > 0 and f.samplerate > 0 else None
    with open(path, "rb") as f:                 # one open for the containers' own chunks
        riff = _riff_walk(f, path, problems)
        f.seek(0)
        comments = _comment_walk(f) if tags is None else _tag_fields(tags, os.path.basename(str(path)))
        f.seek(0)
        aiff, aiff_texts, aiff_end = _aiff_walk(f)
        f.seek(0)
        id3 = container_id3(f)
    if id3 is not None:                         # a WAV's or AIFF's ID3 chunk, which libsndfile does not read
        for key, value in id3_standard_fields(io.BytesIO(id3)).items():
            if key not in out:
                _put(out, key, value)
        sheet = _ucs_comments(id3_user_texts(io.BytesIO(id3)), comments)
        if sheet and not comments.marker_list:
            comments.marker_list = _cue_markers(cue_tracks(sheet, os.path.basename(str(path))))
    if not riff.marker_list:                    # none past the audio: libsndfile's length, or an AIFF's COMM if less
        end = min((e for e in (duration, aiff_end) if e is not None), default=None)
        kind = "AIFF marker"
        found = _before_end(aiff, end, kind, path, problems)
        if not found:
            kind = "cue sheet track"
            try:
                found = comments.marker_list or _cue_markers(sidecar_tracks(path))
            except (OSError, ValueError) as e:
                found = []
                _report(problems, path, f"cue sheet not read ({e})")
            found = _before_end(found, duration, kind, path, problems)
        if found:
            _put(out, "markers", _markers(_first_markers(found, kind, path, problems)))
    for key, value in {**aiff_texts, **riff}.items():      # a WAV's or AIFF's text libsndfile read as UTF-8
        if key not in out or key in garbled:
            _put(out, key, value)
    for key in garbled & comments.standard.keys():          # a Vorbis comment written in Latin-1
        _put(out, key, comments.standard[key])
    for key, value in {**comments, **riff.ixml}.items():
        if key not in out or value.startswith(out[key]):
            _put(out, key, value)
    _set_tool_stamps_aside(out)
    return out


def _set_tool_stamps_aside(out: dict[str, str]) -> None:
    """Move a tool's stamp out of the describing keys into ``software`` (stored, not searched):
    SoX writes "Processed by SoX" as the comment of every file it converts, which is not a
    description, a search hit or a training caption."""
    for key in ABOUT_KEYS:
        if key in out and TOOL_STAMP.fullmatch(out[key]):
            stamp = out.pop(key)
            out.setdefault("software", stamp)


def content_fingerprint(path: str | Path) -> str:
    """A short hash of a file's bytes at its start, middle and end (:data:`FINGERPRINT_BLOCK`
    each) and its size: the same after a move or rename, different for another recording of the
    same size, format and length (48 kB read, whatever the file's size)."""
    import hashlib
    h = hashlib.blake2b(digest_size=12)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        h.update(str(size).encode())
        for at in sorted({0, max(0, size // 2 - FINGERPRINT_BLOCK // 2), max(0, size - FINGERPRINT_BLOCK)}):
            f.seek(at)
            h.update(f.read(FINGERPRINT_BLOCK))
    return h.hexdigest()


def _put(out: dict[str, str], key: str, value: object) -> None:
    """``value`` under ``key`` on one line (control characters as spaces), cut to
    :data:`MAX_VALUE` characters; nothing when it is empty."""
    text = one_line(str(value))
    if text:
        out[str(key)] = text[:MAX_VALUE]


def _put_first(out: dict[str, str], key: str, value: object) -> None:
    """:func:`_put` unless ``key`` already has a value (the first one a block gives wins) or
    ``value`` is None (an element without text)."""
    if key not in out and value is not None:
        _put(out, key, value)


@dataclass(frozen=True)
class Marker:
    """A named marker of a WAVE file (a cue point) or an AIFF file (a MARK entry): where
    (seconds, to the sample), its name, and how long the region it starts is when the file says
    (a WAVE ``ltxt`` sample length; None for a point)."""

    at: float
    name: str
    length: float | None = None


class RiffFields(dict):
    """The bext and LIST/INFO fields of a WAVE file and its named cue markers (the dict), its
    iXML fields apart (``ixml``), since the two can say the same thing and read_metadata ranks them,
    and the markers to the sample (``marker_list``, in time order, at most :data:`MAX_MARKERS`)."""

    def __init__(self) -> None:
        super().__init__()
        self.ixml: dict[str, str] = {}
        self.marker_list: list[Marker] = []


def riff_fields(path: str | Path, problems: list[str] | None = None) -> RiffFields:
    """What a RIFF/RF64 WAVE file's bext chunk (``description``, ``originator``) and LIST/INFO
    chunk (:data:`INFO_KEYS`) say, decoded as UTF-8 where they decode, else Latin-1, and in
    ``.ixml`` what its iXML chunk says (empty for any other file). Chunk sizes are trusted
    only as far as the file goes; an RF64 file's data chunk is stepped over by the size its
    ds64 chunk gives, so chunks after the audio (where iXML often is) are read there too. An
    unreadable iXML chunk is reported as read_metadata says."""
    with open(path, "rb") as f:
        return _riff_walk(f, path, problems)


def _riff_walk(f: BinaryIO, path: str | Path, problems: list[str] | None) -> RiffFields:
    """:func:`riff_fields` of the open file ``f``, read from its start."""
    out = RiffFields()
    head = f.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return out
    rate, cue_body, names, lengths = 0, b"", {}, {}
    time_reference: int | None = None                 # bext's, in samples since midnight
    ixml_reference: tuple[int, float | None] | None = None   # the iXML chunk's own (ixml_time_reference)
    blocks, data_size, fact_frames, sync_points = (0, 0), None, None, []
    for cid, size in _chunk_heads(f):
        if cid == b"bext":
            body = f.read(min(size, 346))
            out.update(_bext_description(_text(body[:256])), originator=_text(body[256:288]))
            if len(body) >= 346:              # TimeReference: the samples since midnight at the file's start
                time_reference = struct.unpack("<Q", body[338:346])[0]
        elif cid == b"LIST" and size <= _MAX_TEXT_CHUNK:
            body = f.read(size)
            out.update(_info(body))
            names.update(_labels(body))
            lengths.update(_region_lengths(body))
        elif cid == b"fmt " and size >= 8:
            body = f.read(size)
            rate, blocks = struct.unpack("<I", body[4:8])[0], _wave_blocks(body)
        elif cid == b"fact" and size >= 4:      # a compressed WAV's length in frames
            fact_frames = struct.unpack("<I", f.read(4))[0]
        elif cid == b"cue " and size <= _MAX_TEXT_CHUNK:
            cue_body = f.read(size)             # placed once the fmt chunk, wherever it is, says how
        elif cid == b"iXML" and size <= _MAX_TEXT_CHUNK:
            try:
                root = _parse_xml(f.read(size).split(b"\x00", 1)[0])
                out.ixml, sync_points = _ixml_fields(root), ixml_sync_points(root)
                ixml_reference = ixml_time_reference(root)
            except ValueError as e:
                _report(problems, path, f"iXML chunk not read ({e})")
        elif cid == b"data":
            data_size = size
    frames = _wave_frames(data_size, blocks, fact_frames)
    cues, unplaced = _cue_points(cue_body, blocks)
    if rate and names and (cues or unplaced):   # a cue past the audio (left by a trim) marks nothing
        _report_unplaced(problems, path, [(names[cue], why) for cue, why in sorted(unplaced.items()) if cue in names])
        named = sorted((offset, cue) for cue, offset in cues.items() if cue in names)
        if frames is not None:
            _report_past_end(problems, path, "cue marker", [names[cue] for offset, cue in named if offset >= frames],
                             frames / rate)
        named = [(offset, cue) for offset, cue in named if frames is None or offset < frames]
        out.marker_list = _first_markers([Marker(offset / rate, names[cue], lengths[cue] / rate
                                                 if lengths.get(cue) else None) for offset, cue in named],
                                         "cue marker", path, problems)
    elif rate and sync_points:              # a field recorder's cues: an iXML SYNC_POINT_LIST
        reference = ((time_reference, "bext") if time_reference is not None
                     else (_at_rate(*ixml_reference, rate), "iXML") if ixml_reference is not None else None)
        out.marker_list = _first_markers(_placed_sync_points(sync_points, rate, frames, reference, path, problems),
                                         "iXML sync point", path, problems)
    if out.marker_list:
        out.update(markers=_markers(out.marker_list))
    return out


def _placed_sync_points(points: list[tuple[int, str, int, bool]], rate: int, frames: int | None,
                        reference: tuple[int, str] | None, path: str | Path,
                        problems: list[str] | None) -> list[Marker]:
    """The iXML sync ``points`` (:func:`ixml_sync_points`) of a WAV of ``frames`` frames (None: not
    known) at ``rate`` as markers in time order: RELATIVE ones from the file's start, ABSOLUTE
    ones from midnight less the file's time ``reference`` (samples since midnight, and the chunk
    that gave it: "bext", else "iXML"). One note each (:func:`_report`) for those left out: past
    the end of the audio, before the file's start (an ABSOLUTE point earlier than the time
    reference), and ABSOLUTE ones in a file with no time reference."""
    time_reference, source = reference if reference is not None else (None, "")
    unreferenced = [name for _, name, _, relative in points if not relative and time_reference is None]
    _report_left_out(problems, path, "ABSOLUTE iXML sync point", unreferenced,
                     why="the file has no bext or iXML time reference to place them by")
    named = sorted((at if relative else at - time_reference, name, length)
                   for at, name, length, relative in points if relative or time_reference is not None)
    why = ("" if time_reference is None
           else f"earlier than its {source} time reference, {_time_of_day(time_reference / rate)}")
    _report_left_out(problems, path, "iXML sync point", [name for at, name, _ in named if at < 0],
                     "before the file's start", why)
    if frames is not None:
        _report_past_end(problems, path, "iXML sync point", [name for at, name, _ in named if at >= frames],
                         frames / rate)
    return [Marker(at / rate, name, length / rate if length else None) for at, name, length in named
            if at >= 0 and (frames is None or at < frames)]


def _at_rate(samples: int, counted_at: float | None, rate: int) -> int:
    """``samples`` counted at ``counted_at`` Hz (None: at ``rate``) as samples at ``rate``."""
    return samples if counted_at in (None, rate) else round(samples * rate / counted_at)


def _time_of_day(seconds: float) -> str:
    """Seconds since midnight as ``hh:mm:ss.sss`` (a bext time reference)."""
    minutes, ms = divmod(round(seconds * 1000), 60_000)     # rounded first: never "…:60.000"
    return f"{minutes // 60:02d}:{minutes % 60:02d}:{ms / 1000:06.3f}"


#: a line of the settings a field recorder writes as its bext description ("sSPEED=023.976-ND",
#: "sTAKE=001", "sNOTE=door slam": Sound Devices; "zTAKE=…": Zoom), one setting a line
_RECORDER_LINE = re.compile(r"[a-z][A-Z][A-Z0-9_]*=.*")


def _bext_description(text: str) -> dict[str, str]:
    """What a bext description says: itself as ``description``, or, where it is a field
    recorder's settings one a line (:data:`_RECORDER_LINE`) — speed, take, user bits, track
    names; not a description of the sound — only the recordist's note (``sNOTE``) as ``note``."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or not all(_RECORDER_LINE.fullmatch(line) for line in lines):
        return {"description": text}
    notes = [value for key, _, value in (line.partition("=") for line in lines) if key[1:] == "NOTE"]
    return {"note": notes[0]} if notes else {}


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


def named_markers(source: str | Path | BinaryIO) -> list[Marker]:
    """The named markers of a WAVE file (cue points), an AIFF/AIFC file (its MARK chunk) or a
    FLAC or Ogg file (its cue sheet: the ``CUESHEET`` comment, else a FLAC metadata block's
    numbered tracks), to the sample, in time order; for a path without any, the tracks of its sidecar
    ``.cue`` (engine.cue_sheet). A path or an open binary file (an upload: no sidecar).
    What else the file holds is read_metadata's to report, so its problems are not said here.
    OSError when it cannot be read, ValueError for a damaged chunk or cue sheet."""
    if isinstance(source, (str, Path)):
        if os.path.splitext(str(source))[1].lower() in FFMPEG_EXTENSIONS:     # its tags, read by FFmpeg
            try:
                with FFmpegSound(str(source)) as f:
                    found = _tag_fields(f.tags, os.path.basename(str(source))).marker_list
            except (OSError, ValueError):
                raise
            except Exception as e:                 # PyAV's errors for a file it cannot open
                raise ValueError(f"not readable ({e})") from e
        else:
            with open(source, "rb") as f:
                found = named_markers(f)
        return (found or _cue_markers(sidecar_tracks(source)))[:MAX_MARKERS]
    try:
        found = _riff_walk(source, "upload", []).marker_list
        if not found:
            source.seek(0)
            found = aiff_markers(source)
        if not found:
            source.seek(0)
            found = _comment_walk(source).marker_list
    except struct.error as e:       # a chunk cut shorter than its fields
        raise ValueError(f"a damaged marker chunk ({e})") from e
    return found[:MAX_MARKERS]


def _cue_markers(tracks: list[CueTrack]) -> list[Marker]:
    """A cue sheet's tracks as markers (all of them: their readers keep the first
    :data:`MAX_MARKERS`, read_metadata saying so of the rest)."""
    return [Marker(t.at, t.name, t.length) for t in tracks]


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


#: WAV format tags whose block (nBlockAlign bytes) holds one frame: PCM, IEEE float, A-law, µ-law
_FRAME_BLOCK_TAGS = frozenset({0x0001, 0x0003, 0x0006, 0x0007})
#: WAV format tags whose fmt chunk gives the frames a block holds (wSamplesPerBlock, after cbSize):
#: Microsoft ADPCM, IMA ADPCM, GSM 6.10 (the block-coded formats libsndfile reads in a WAV)
_SAMPLES_PER_BLOCK_TAGS = frozenset({0x0002, 0x0011, 0x0031})
_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


def _wave_blocks(fmt: bytes) -> tuple[int, int]:
    """(bytes a block, frames a block) of a WAV's ``fmt`` chunk body: its nBlockAlign, and 1 for
    PCM, float, A-law and µ-law (an extensible fmt's subformat too), its wSamplesPerBlock for
    ADPCM and GSM 6.10; frames 0 where the chunk does not say (MPEG in a WAV: a frame of its own
    size, not a block), bytes 0 for a chunk too short to say."""
    if len(fmt) < 14:
        return 0, 0
    tag, align = struct.unpack_from("<H", fmt)[0], struct.unpack_from("<H", fmt, 12)[0]
    if tag == _WAVE_FORMAT_EXTENSIBLE:
        tag = struct.unpack_from("<H", fmt, 24)[0] if len(fmt) >= 40 else 0    # the subformat GUID's tag
        return align, 1 if tag in _FRAME_BLOCK_TAGS else 0
    if tag in _FRAME_BLOCK_TAGS:
        return align, 1
    if tag in _SAMPLES_PER_BLOCK_TAGS and len(fmt) >= 20 and struct.unpack_from("<H", fmt, 16)[0] >= 2:
        return align, struct.unpack_from("<H", fmt, 18)[0]
    return align, 0


def _wave_frames(data_size: int | None, blocks: tuple[int, int], fact_frames: int | None) -> int | None:
    """A WAV's length in frames, by its data chunk's size (``data_size``; a streamed WAV may say
    0) and its ``blocks`` (:func:`_wave_blocks`), or for a compressed one by its ``fact`` chunk
    where it has one; None where neither says."""
    size, per_block = blocks
    if per_block != 1 and fact_frames:
        return fact_frames
    if not data_size or not size or not per_block:
        return None
    if per_block == 1:                                  # a frame cut short is none (libsndfile's count)
        return data_size // size
    return -(-data_size // size) * per_block            # a last ADPCM block cut short still holds frames


def _cue_points(body: bytes, blocks: tuple[int, int] = (0, 0)) -> tuple[dict[int, int], dict[int, str]]:
    """Cue point id → the frame it marks, from a ``cue `` chunk's body, and cue point id → why
    the file does not place it. The RIFF spec puts a point in the block (of the WAV's ``blocks``,
    :func:`_wave_blocks`) that starts dwBlockStart bytes into the data chunk, dwSampleOffset
    frames into it: for PCM the block is a frame and dwBlockStart 0, so dwSampleOffset is the
    frame; for ADPCM a block holds hundreds. dwPosition is the point's place in the play order
    (the same frame without a playlist); most editors write both, some only dwPosition. So a
    point is where dwBlockStart and dwSampleOffset say, unless both are 0 for every point while
    some dwPosition is not: then where its dwPosition says. A dwSampleOffset past its block's
    frames that falls in that block is taken as counted from the data's start (a writer that
    filled in both from there). Not placed: a point in a silence (``slnt``) chunk of a wave list
    (a form libsndfile does not read), or in a block the file's format or its numbers do not
    place. dwChunkStart is not read: the file has one data chunk, the point is in it."""
    if len(body) < 4:
        return {}, {}
    count = struct.unpack("<I", body[:4])[0]
    points = [struct.unpack("<II4sIII", body[at:at + 24])
              for at in range(4, min(len(body), 4 + 24 * count) - 23, 24)]
    by_position = all(point[4] == 0 and point[5] == 0 for point in points) and any(point[1] for point in points)
    placed: dict[int, int] = {}
    unplaced: dict[int, str] = {}
    for cue, position, chunk, _chunk_start, block_start, offset in points:
        if chunk.lower() == b"slnt":
            unplaced[cue] = "in a silence ('slnt') chunk of a wave list, which soundsift does not read"
        elif by_position:
            placed[cue] = position
        elif block_start == 0:
            placed[cue] = offset
        else:
            at = _in_block(block_start, offset, blocks)
            if isinstance(at, int):
                placed[cue] = at
            else:
                unplaced[cue] = at
    return placed, unplaced


def _in_block(block_start: int, offset: int, blocks: tuple[int, int]) -> int | str:
    """The frame ``offset`` frames into the block ``block_start`` bytes into the data chunk (of
    ``blocks``: bytes and frames a block), or why there is none."""
    size, per_block = blocks
    if not size or not per_block:
        return f"dwBlockStart {block_start} in a format whose fmt chunk gives no frames a block"
    if block_start % size:
        return f"dwBlockStart {block_start} is not where one of its {size}-byte blocks starts"
    first = block_start // size * per_block
    if offset < per_block:
        return first + offset
    if first <= offset < first + per_block:             # counted from the data's start, not the block's
        return offset
    return f"dwSampleOffset {offset} is not in the block at dwBlockStart {block_start}"


def _labels(body: bytes) -> dict[int, str]:
    """Cue point id → its name, from an ``adtl`` LIST's ``labl`` (else ``note``, else ``ltxt``) texts."""
    if body[:4] != b"adtl":
        return {}
    found: dict[bytes, dict[int, str]] = {b"labl": {}, b"note": {}, b"ltxt": {}}
    for cid, sub in _subchunks(body):
        if cid in found and len(sub) >= 4:
            text = _text(sub[20:] if cid == b"ltxt" else sub[4:])
            if text:
                found[cid].setdefault(struct.unpack("<I", sub[:4])[0], text)
    return {**found[b"ltxt"], **found[b"note"], **found[b"labl"]}


def _subchunks(body: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(id, body) of each sub-chunk of a LIST chunk's ``body`` after its 4-letter list type, as
    far as it goes. An odd-sized one is followed by a pad byte, except where its writer left that
    out (the next id follows at once: the byte is not NUL), which would lose every later one."""
    at = 4
    while at + 8 <= len(body):
        cid, size = body[at:at + 4], struct.unpack("<I", body[at + 4:at + 8])[0]
        yield cid, body[at + 8:at + 8 + size]
        at += 8 + size
        if size & 1 and body[at:at + 1] == b"\x00":
            at += 1


def _region_lengths(body: bytes) -> dict[int, int]:
    """Cue point id → the sample length of the region it starts, from an ``adtl`` LIST's ``ltxt``."""
    if body[:4] != b"adtl":
        return {}
    out: dict[int, int] = {}
    for cid, sub in _subchunks(body):
        if cid == b"ltxt" and len(sub) >= 8:
            cue, length = struct.unpack("<II", sub[:8])
            out.setdefault(cue, length)
    return out


MARKER_SEPARATOR = " · "
_MARKER = re.compile(r"(\d+):(\d\d\.\d) (.+)")


def _markers(markers: list[Marker]) -> str:
    """The named cue points as ``"0:01.2 Door slam · 0:03.5 Creak"``, in time order."""
    return MARKER_SEPARATOR.join(f"{int(m.at // 60)}:{m.at % 60:04.1f} {m.name.replace('·', ' ')}"
                                 for m in markers)


def parse_markers(text: str) -> list[tuple[float, str]]:
    """``(seconds, name)`` of the ``markers`` value read_metadata gives, in its order."""
    out = []
    for part in text.split(MARKER_SEPARATOR):
        m = _MARKER.fullmatch(part.strip())
        if m:
            out.append((int(m.group(1)) * 60 + float(m.group(2)), m.group(3)))
    return out


def _report(problems: list[str] | None, path: str | Path, reason: str) -> None:
    """``reason`` onto the caller's list (which says whose file it is), else a warning naming the file."""
    if problems is None:
        log.warning("%s: %s", path, reason)
    else:
        problems.append(reason)


#: markers named at most in the note on those past the end of the audio
PAST_END_NAMED = 5


def _report_past_end(problems: list[str] | None, path: str | Path, kind: str, names: list[str], end: float) -> None:
    """One note (:func:`_report`) on the ``kind`` markers left out for being past the end of the
    audio (``end`` seconds; left by a trim): how many, and the first :data:`PAST_END_NAMED` names
    in time order. Nothing when ``names`` is empty."""
    _report_left_out(problems, path, kind, names, f"past the end of the audio ({end:.2f} s)")


def _report_left_out(problems: list[str] | None, path: str | Path, kind: str, names: list[str], where: str = "",
                     why: str = "") -> None:
    """One note (:func:`_report`) on the ``kind`` markers left out, ``where`` they are and ``why``
    (either may be ""): how many, and the first :data:`PAST_END_NAMED` of their ``names``
    ("2 iXML sync point(s) before the file's start left out (…): Slate, Clap"). Nothing when
    ``names`` is empty."""
    if names:
        more = " …" if len(names) > PAST_END_NAMED else ""
        said = " ".join(part for part in (f"{len(names)} {kind}(s)", where, "left out") if part)
        _report(problems, path, f"{said}{f' ({why})' if why else ''}: {', '.join(names[:PAST_END_NAMED])}{more}")


def _first_markers(markers: list[Marker], kind: str, path: str | Path, problems: list[str] | None) -> list[Marker]:
    """The first :data:`MAX_MARKERS` of ``markers`` (in time order); those after them reported
    in one note (:func:`_report`)."""
    _report_left_out(problems, path, kind, [m.name for m in markers[MAX_MARKERS:]], f"after the first {MAX_MARKERS}",
                     f"a file keeps at most {MAX_MARKERS} markers")
    return markers[:MAX_MARKERS]


def _report_unplaced(problems: list[str] | None, path: str | Path, unplaced: list[tuple[str, str]]) -> None:
    """One note (:func:`_report`) on the named cue points the file does not place ((name, why)
    pairs, :func:`_cue_points`), their reasons each said once."""
    reasons = "; ".join(dict.fromkeys(why for _, why in unplaced))
    _report_left_out(problems, path, "cue marker", [name for name, _ in unplaced],
                     why=f"the file does not place them: {reasons}")


def _before_end(markers: list[Marker], end: float | None, kind: str, path: str | Path,
                problems: list[str] | None) -> list[Marker]:
    """``markers`` before ``end`` (seconds; None: all), those past it reported (:func:`_report_past_end`)."""
    if end is None:
        return markers
    _report_past_end(problems, path, kind, [m.name for m in markers if m.at >= end], end)
    return [m for m in markers if m.at < end]


#: iXML USER (Soundminer, BaseHead: the UCS fields) and ASWG element names, lower-cased, and
#: Steinberg MediaBay attribute names → soundsift's keys
IXML_KEYS = {
    "description": "description", "category": "category", "subcategory": "subcategory",
    "catid": "catid", "fxname": "title", "tracktitle": "title", "keywords": "keywords",
    "library": "library", "designer": "designer", "notes": "note", "location": "location",
    "genre": "genre", "songtitle": "title",
}
STEINBERG_KEYS = {
    "MediaComment": "description", "MediaCategoryPost": "category",
    "MusicalCategory": "subcategory", "MediaTrackTitle": "title", "MediaLibrary": "library",
    "MediaLibraryName": "library", "MediaArtist": "designer",
    "MediaRecordingLocation": "location", "MediaGenre": "genre",
}


def ixml_fields(body: bytes) -> dict[str, str]:
    """The descriptive fields of an iXML chunk (:data:`IXML_KEYS`, :data:`STEINBERG_KEYS`, and
    the production recorder's top-level NOTE as ``note``), first value of each key winning.
    The USER block may also be free text (the iXML spec's form): it becomes ``note`` then.
    Raises ValueError when the chunk is not well-formed XML."""
    return _ixml_fields(_parse_xml(body.split(b"\x00", 1)[0]))


def _ixml_fields(root: ET.Element) -> dict[str, str]:
    """:func:`ixml_fields` of a parsed iXML document."""
    out: dict[str, str] = {}
    for block in root.iter():
        tag = block.tag.upper() if isinstance(block.tag, str) else ""
        if tag in ("USER", "ASWG"):
            children = list(block)
            for child in children:
                key = IXML_KEYS.get(str(child.tag).lower())
                if key:
                    _put_first(out, key, child.text)
            if tag == "USER" and not children:
                _put_first(out, "note", block.text)
        elif tag == "ATTR":                 # Steinberg: NAME/VALUE as children or attributes
            name = block.get("NAME") or block.findtext("NAME") or ""
            value = block.get("VALUE") if block.get("VALUE") is not None else block.findtext("VALUE")
            key = STEINBERG_KEYS.get(name.strip())
            if key:
                _put_first(out, key, value)
    _put_first(out, "note", root.findtext("NOTE"))
    return out


def ixml_sync_points(root: ET.Element) -> list[tuple[int, str, int, bool]]:
    """The named cues of an iXML ``SYNC_POINT_LIST`` (what production and field recorders
    write when the recordist presses a cue button and names it): (sample offset, its
    ``SYNC_POINT_COMMENT``, its ``SYNC_POINT_EVENT_DURATION`` in samples or 0, whether the
    offset counts from the file's start — ``RELATIVE`` — rather than from midnight like the
    bext time reference — ``ABSOLUTE``). Cues without a comment are left out: a marker needs a
    name; a cue whose numbers do not parse is left out too."""
    out = []
    for point in root.iter("SYNC_POINT"):
        name = " ".join((point.findtext("SYNC_POINT_COMMENT") or "").split())
        if not name:
            continue
        try:
            at = (int(point.findtext("SYNC_POINT_HIGH") or 0) << 32) | int(point.findtext("SYNC_POINT_LOW") or 0)
            length = int(point.findtext("SYNC_POINT_EVENT_DURATION") or 0)
        except ValueError:
            continue
        relative = (point.findtext("SYNC_POINT_TYPE") or "RELATIVE").strip().upper() != "ABSOLUTE"
        out.append((at, name, max(length, 0), relative))
    return out


#: where an iXML chunk says its file starts, in the order read (parent, high, low, and the element
#: giving the rate the samples are counted at; None: the file's): BEXT's copy of the bext
#: TimeReference, then SPEED's timestamp (iXML spec 1.x-3.x, ixml.info / gallery.co.uk/ixml:
#: BWF_TIME_REFERENCE_LOW/HIGH, TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO/HI at TIMESTAMP_SAMPLE_RATE)
IXML_TIME_REFERENCES = (("BEXT", "BWF_TIME_REFERENCE_HIGH", "BWF_TIME_REFERENCE_LOW", None),
                        ("SPEED", "TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI", "TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO",
                         "TIMESTAMP_SAMPLE_RATE"))
_SAMPLE_COUNT = re.compile(r"[0-9]+")


def ixml_time_reference(root: ET.Element) -> tuple[int, float | None] | None:
    """Where a parsed iXML document says its file starts: (samples since midnight, the rate
    they are counted at, None for the file's), from the first of :data:`IXML_TIME_REFERENCES`
    whose low element holds a sample count (a missing high element counts as 0); None when
    none does. What a reader falls back on where a WAV has no bext chunk."""
    for parent, high_name, low_name, rate_name in IXML_TIME_REFERENCES:
        block = root.find(f".//{parent}")
        if block is None:
            continue
        low, high = (block.findtext(low_name) or "").strip(), (block.findtext(high_name) or "0").strip()
        if not (_SAMPLE_COUNT.fullmatch(low) and _SAMPLE_COUNT.fullmatch(high)):
            continue
        counted_at, text = None, block.findtext(rate_name) if rate_name else None
        if text is not None:
            try:
                counted_at = float(text)
            except ValueError:
                continue
            if not (math.isfinite(counted_at) and counted_at > 0):
                continue
        return (int(high) << 32) + int(low), counted_at
    return None


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
    head = f.read(10)
    end = 10 + _syncsafe(head[6:10]) + (10 if head[5:6] and head[5] & 0x10 else 0) if len(head) == 10 else 0
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


def _parse_xml(raw: bytes) -> ET.Element:
    """The XML in ``raw``, as declared; bytes that are not UTF-8 and do not parse as declared
    (older tools write Latin-1 under a UTF-8 declaration, or none) are read as Latin-1. Space
    before the XML declaration and whatever follows the iXML document's end (``</BWFXML>``: a
    writer's padding) are left out. ValueError when neither parses."""
    raw = raw.strip()
    end = raw.rfind(b"</BWFXML>")
    if end >= 0:
        raw = raw[:end + len(b"</BWFXML>")]
    try:
        return ET.fromstring(raw)
    except ET.ParseError as e:
        error = e
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return ET.fromstring(re.sub(r"^<\?xml[^>]*\?>", "", raw.decode("latin-1")))
        except ET.ParseError:
            pass
    raise ValueError(f"not well-formed XML: {error}")


def _info(body: bytes) -> dict[str, str]:
    """The INFO_KEYS of a LIST chunk's body when it is an INFO list."""
    out: dict[str, str] = {}
    if body[:4] != b"INFO":
        return out
    for cid, sub in _subchunks(body):
        if cid in INFO_KEYS:
            out[INFO_KEYS[cid]] = _text(sub)
    return out


def _text(raw: bytes) -> str:
    """A RIFF chunk's string (bext, INFO, a cue label), up to its first NUL
    (a fixed-width field is NUL-padded): UTF-16 where it starts with a byte-order mark (ended
    by a NUL character), else UTF-8 where it decodes, else Windows-1252 (what Windows tools
    write: "Rock’n’roll", "Door – slam"), else Latin-1 (engine.text_encoding.decode_text)."""
    if raw[:2] in UTF16_BOMS:                 # whole characters, up to a NUL character
        raw = _split_on(raw[:len(raw) - len(raw) % 2], b"\x00\x00")[0]
    else:
        raw = raw.split(b"\x00", 1)[0]
    return decode_text(raw).strip()
