"""What a RIFF/RF64 WAVE file says in its own chunks, beside what libsndfile reads of it.

The Broadcast WAV ``bext`` chunk's 256-character Description (or, where it holds a field
recorder's settings, the recordist's note) and its Originator; the ``LIST``/``INFO`` fields
(:data:`INFO_KEYS`), decoded as the tool that wrote them did (UTF-16, UTF-8, Windows-1252,
Latin-1: :func:`_text`); the iXML chunk's fields (engine.ixml), kept apart; and the file's
named markers: its ``cue `` points, placed by the fmt chunk's blocks as the RIFF spec says
(:func:`_cue_points`) and named by an ``adtl`` LIST's ``labl``/``note``/``ltxt`` texts, else (no
named cue point placed) its iXML sync points placed by the bext (else iXML) time reference.
engine.file_metadata.read_metadata ranks these against libsndfile's values; the chunks are walked
by engine.iff_chunks.
"""
from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from typing import BinaryIO, Iterator

from engine.iff_chunks import _MAX_TEXT_CHUNK, _chunk_heads
from engine.ixml import _ixml_fields, _parse_xml, _placed_sync_points, ixml_sync_points, ixml_time_reference
from engine.markers import Marker, _first_markers, _markers, _report_left_out, _report_past_end
from engine.metadata_values import _report
from engine.tag_comments import _split_on
from engine.text_encoding import UTF16_BOMS, decode_text


#: RIFF LIST/INFO ids → the keys libsndfile gives them
INFO_KEYS = {b"INAM": "title", b"ICMT": "comment", b"IART": "artist", b"IPRD": "album",
             b"IGNR": "genre", b"ICOP": "copyright", b"ISFT": "software", b"ICRD": "date"}


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
        elif cid == b"data":                    # as far as the file goes (a file cut short: libsndfile's count)
            here = f.tell()
            data_size = min(size, f.seek(0, os.SEEK_END) - here)
            f.seek(here)
    frames = _wave_frames(data_size, blocks, fact_frames)
    cues, unplaced = _cue_points(cue_body, blocks)
    named = sorted((offset, cue) for cue, offset in cues.items() if cue in names)
    if rate:
        _report_unplaced(problems, path, [(names[cue], why) for cue, why in sorted(unplaced.items()) if cue in names])
    if rate and named:                      # a cue past the audio (left by a trim) marks nothing
        if frames is not None:
            _report_past_end(problems, path, "cue marker", [names[cue] for offset, cue in named if offset >= frames],
                             frames / rate)
        named = [(offset, cue) for offset, cue in named if frames is None or offset < frames]
        out.marker_list = _first_markers([Marker(offset / rate, names[cue], lengths[cue] / rate
                                                 if lengths.get(cue) else None) for offset, cue in named],
                                         "cue marker", path, problems)
    elif rate and sync_points:              # a field recorder's cues (an iXML SYNC_POINT_LIST): no named cue placed
        reference = ((time_reference, "bext") if time_reference is not None
                     else (_at_rate(*ixml_reference, rate), "iXML") if ixml_reference is not None else None)
        out.marker_list = _first_markers(_placed_sync_points(sync_points, rate, frames, reference, path, problems),
                                         "iXML sync point", path, problems)
    if out.marker_list:
        out.update(markers=_markers(out.marker_list))
    return out


def _at_rate(samples: int, counted_at: float | None, rate: int) -> int:
    """``samples`` counted at ``counted_at`` Hz (None: at ``rate``) as samples at ``rate``."""
    return samples if counted_at in (None, rate) else round(samples * rate / counted_at)


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
    """A WAV's length in frames as libsndfile decodes it (the length soundsift gives the file), by
    its data chunk's size (``data_size``, as far as the file goes; a streamed WAV may say 0) and
    its ``blocks`` (:func:`_wave_blocks`); for a compressed one whose blocks do not say, by its
    ``fact`` chunk; None where neither says. libsndfile decodes an ADPCM or GSM 6.10 WAV's every
    block, the last one whole, and reads no fact chunk: the fact count (the samples encoded, per
    the RIFF spec) falls short of the decoded length by the last block's padding, up to a block
    (GSM 6.10: 16104 in a fact chunk, 16640 frames decoded), and a file cut short holds less."""
    size, per_block = blocks
    if data_size and size and per_block == 1:           # a frame cut short is none (libsndfile's count)
        return data_size // size
    if data_size and size and per_block:                # a last block cut short is decoded whole
        return -(-(data_size + data_size % 2) // size) * per_block     # an odd size's pad byte counted too
    return fact_frames if per_block != 1 and fact_frames else None


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


def _report_unplaced(problems: list[str] | None, path: str | Path, unplaced: list[tuple[str, str]]) -> None:
    """One note (:func:`_report`) on the named cue points the file does not place ((name, why)
    pairs, :func:`_cue_points`), their reasons each said once."""
    reasons = "; ".join(dict.fromkeys(why for _, why in unplaced))
    _report_left_out(problems, path, "cue marker", [name for name, _ in unplaced],
                     why=f"the file does not place them: {reasons}")


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
