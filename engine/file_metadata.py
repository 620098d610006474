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

This module is the reader that puts a file's metadata together (:func:`read_metadata`,
:func:`named_markers`) and says what the catalog keeps of it (the keys, :func:`about_line`,
:func:`with_sheet`, :data:`READER_VERSION`, :func:`content_fingerprint`); each container is read
by its own module: engine.riff_metadata (a WAV's bext, LIST/INFO and cue points),
engine.ixml (its iXML chunk), engine.aiff_metadata (an AIFF's markers and text),
engine.tag_comments (Vorbis comments, ID3 tags, embedded cue sheets), engine.iff_chunks (the
chunk walk they share), engine.markers (the markers they give) and engine.metadata_values (how
a value is kept and a problem said).
"""
from __future__ import annotations

import io
import os
import re
import struct
from pathlib import Path
from typing import BinaryIO

from engine.aiff_metadata import _aiff_walk, aiff_markers
from engine.audio import open_sound
from engine.cue_sheet import cue_tracks, sidecar_tracks
from engine.ffmpeg_audio import FFMPEG_EXTENSIONS, FFmpegSound
from engine.markers import MAX_MARKERS, _before_end, _cue_markers, _first_markers, _markers
from engine.metadata_values import _put, _report
from engine.riff_metadata import _riff_walk
from engine.tag_comments import (_comment_walk, _tag_fields, _ucs_comments, container_id3, id3_standard_fields,
                                 id3_user_texts)

# Names that live in the modules above and are imported from here still (by tests, and callers
# from before session 33): Marker, MAX_MARKERS and parse_markers (engine.markers), MAX_VALUE
# (engine.metadata_values), riff_fields (engine.riff_metadata), ixml_fields (engine.ixml),
# aiff_markers (engine.aiff_metadata), comment_fields, CommentFields, ogg_comments and
# id3_user_texts (engine.tag_comments), wave_chunks and WaveChunk (engine.iff_chunks).
# read_metadata and named_markers look _comment_walk up here: a test that patches it patches it here.
from engine.iff_chunks import WaveChunk, wave_chunks  # noqa: F401  (re-exported)
from engine.ixml import ixml_fields  # noqa: F401  (re-exported)
from engine.markers import Marker, parse_markers  # noqa: F401  (re-exported)
from engine.metadata_values import MAX_VALUE  # noqa: F401  (re-exported)
from engine.riff_metadata import riff_fields  # noqa: F401  (re-exported)
from engine.tag_comments import CommentFields, comment_fields, ogg_comments  # noqa: F401  (re-exported)


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
#: a sheet's value that clears its field (a cell holding just "-"): the file shows nothing under
#: that key, neither its own value nor an earlier sheet's (:func:`with_sheet`,
#: engine.metadata_shown for the catalog's queries), until the sheet is removed
SHEET_CLEARED = "-"
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
    named markers when ``found`` holds them ("DOORS / WOOD: Door creak — … — markers 0:01.25
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
    the file itself says nothing under that key, and without the keys the sheet clears
    (:data:`SHEET_CLEARED`); the sheet keys themselves left out."""
    return shown_values({k: v for k, v in found.items() if not k.startswith(SHEET_PREFIX)}, sheet_fields(found))


def sheet_fields(found: dict[str, str]) -> dict[str, str]:
    """The fields (plain key → value) the standing sheet gives a file, of its stored metadata
    ``found``."""
    return {k[len(SHEET_PREFIX):]: v for k, v in found.items()
            if k.startswith(SHEET_PREFIX) and k not in SHEET_SOURCE_KEYS}


def shown_values(own: dict[str, str], sheet: dict[str, str]) -> dict[str, str]:
    """What a file shows (key → value): its ``own`` metadata first, a sheet's fields (``sheet``,
    plain keys) where it says nothing, and neither under a key the sheet clears."""
    out = dict(own)
    for key, value in sheet.items():
        if is_cleared(value):
            out.pop(key, None)
        else:
            out.setdefault(key, value)
    return out


def is_cleared(value: str | None) -> bool:
    """Whether a sheet's value (or cell) clears its field (:data:`SHEET_CLEARED`)."""
    return value is not None and value.strip() == SHEET_CLEARED


def cleared_keys(sheet: dict[str, str]) -> set[str]:
    """The keys of a sheet's fields (plain key → value, :func:`sheet_fields`) that it clears."""
    return {k for k, v in sheet.items() if is_cleared(v)}


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
#: were left out; session 33); 13 keeps a WAV's markers up to the frames libsndfile decodes (an ADPCM
#: or GSM WAV's fact chunk says fewer: the last block's padding; a WAV cut short holds fewer than its
#: data chunk says), and takes a WAV's iXML sync points where none of its named cue points is placed
#: (session 33); 14 stores markers to the hundredth, "0:01.25 Door slam" (to the tenth before;
#: engine.markers, session 36). An index
#: whose files were read by an older reader reads them again on its next `soundsift index` run
#: (indexer.metadata_refresh).
READER_VERSION = 14
#: comments written by a tool on every file it touches (7: set aside as ``software``)
TOOL_STAMP = re.compile(r"processed by sox", re.IGNORECASE)


#: keys the indexer stores beside what a file says: its levels, measured while decoding (engine.loudness)
LEVEL_KEYS = ("peak_dbfs", "loudness_lufs")
#: the sidecar cue sheet a file's segments were cut with (engine.cue_sheet.sidecar_state): kept
#: until the file is embedded again, so an added, edited or removed sheet is noticed
CUE_SHEET_KEY = "cue_sheet"
#: how many of a file's segments were left out as digital silence (engine.segments.without_silence),
#: "1" for a file of silence throughout, and where its marked takes left out as silence start
#: (sample offsets at the model's rate, space-separated; "" for none): stored for each file
#: embedded or judged (indexer.silence_refresh), since session 39, the last since session 40 (since
#: session 41 only for a file with a ``markers`` row or a silent take; session 40 stored "" for
#: every other file too, read alike). A file without the first was indexed before and is not judged
#: yet; one with named markers but without the last was judged when a silent marked take was kept
SILENCE_KEYS = ("silent_left_out", "silence_throughout", "silent_takes")
#: of a file cut short (its audio ends before its header says: an interrupted copy or download;
#: indexer.decode), the seconds its header says, to the hundredth; no row for a whole file. Stored
#: since session 42: a file indexed before has none until it is embedded again
CUT_SHORT_KEY = "header_duration"
#: everything the indexer stores beside what a file says: its levels, its content fingerprint
#: (:func:`content_fingerprint`, which tells a moved file from another of the same size and time),
#: its sidecar cue sheet's state, its silence and whether it is cut short
INDEXER_KEYS = (*LEVEL_KEYS, "fingerprint", CUE_SHEET_KEY, *SILENCE_KEYS, CUT_SHORT_KEY)
#: bytes read at each of a file's start, middle and end for its fingerprint
FINGERPRINT_BLOCK = 16_384


#: what libsndfile gives for chunk text it does not decode: U+FFFD for bytes that are not UTF-8,
#: control characters for UTF-16 (its NUL bytes) — read again from the chunk then
_GARBLED = re.compile(r"[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f]")


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
