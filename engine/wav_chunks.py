"""What an excerpt of a WAVE recording keeps of its source: its channel layout, bext and iXML.

A field recording in Broadcast Wave says which channel is which (a WAVE_FORMAT_EXTENSIBLE
fmt chunk's channel mask), when it was made and where on the timecode it starts (the ``bext``
chunk's TimeReference, in samples since midnight) and what it holds (bext's Description and
Originator, the iXML chunk's scene, take, track names and the UCS fields library tools write in
its USER block). engine.export cuts excerpts with libsndfile, which writes none of that; this
module puts it back into libsndfile's header:

- the fmt chunk becomes WAVE_FORMAT_EXTENSIBLE with the source's mask (and its valid bits when
  the container is the same), for linear PCM, float, A-law and µ-law;
- bext is copied with its TimeReference moved to the excerpt's first frame, its loudness fields
  (version 2) set to "not used" (7FFFh, EBU Tech 3285: they measured the whole recording) and a
  CodingHistory line (EBU R 98) saying soundsift cut it; the UMID is kept, since it names the
  material the excerpt is a part of;
- iXML is copied byte for byte but for its sample counts: the timestamps (SPEED's TIMESTAMP_
  SAMPLES_SINCE_MIDNIGHT_HI/LO, BEXT's BWF_TIME_REFERENCE_HIGH/LOW) moved by the same frames, and
  the sync points that count from the file's start (RELATIVE) moved back, those outside the
  excerpt left out; a timestamp or sync point whose numbers cannot be moved (not sample counts,
  or SPEED's TIMESTAMP_SAMPLE_RATE not a rate) is left out alone, with a warning, the rest of
  the chunk kept (copied unmoved, it would say the excerpt starts where the recording does);
  and for its BEXT block's copy of bext, which says what bext
  does: the same CodingHistory line at the end of BWF_CODING_HISTORY and its loudness elements
  (BWF_LOUDNESS_VALUE …) emptied, an iXML reader's "not used".

Both new chunks go after fmt, where EBU Tech 3285 puts bext, so the header is still everything
before the data chunk (/audio's byte ranges count on it). A source chunk that cannot be used is
left out with one warning naming the file and the reason; the audio is exported all the same.
"""
from __future__ import annotations

import html
import logging
import math
import re
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from engine.iff_chunks import wave_chunks
from engine.markers import _report_left_out

log = logging.getLogger("soundsift.export")

WAVE_FORMAT_EXTENSIBLE = 0xFFFE
#: format tags an extensible fmt chunk can name by a KSDATAFORMAT_SUBTYPE GUID: PCM, IEEE
#: float, A-law, µ-law (the GUID is the tag, then :data:`_GUID_TAIL`)
_SUBFORMAT_TAGS = (1, 3, 6, 7)
_GUID_TAIL = bytes.fromhex("0000" "1000" "800000aa00389b71")
#: largest bext or iXML chunk carried over (as engine.file_metadata reads them)
MAX_CHUNK = 1 << 20
#: the bext chunk's fixed fields (EBU Tech 3285), before its CodingHistory
BEXT_FIXED = 602
_TIME_REFERENCE, _VERSION, _LOUDNESS = 338, 346, 412
#: what Tech 3285 v2 says a loudness field holds when it is "not being used"
LOUDNESS_NOT_USED = 0x7FFF


@dataclass(frozen=True)
class SourceChunks:
    """What an excerpt keeps of a WAVE source: its channel mask (None for none, or 0), the
    valid and container bits its extensible fmt chunk gives, and its bext and iXML chunks'
    bodies (None when it has none, or they could not be read)."""

    mask: int | None = None
    valid_bits: int = 0
    container_bits: int = 0
    bext: bytes | None = None
    ixml: bytes | None = None

    def __bool__(self) -> bool:
        return self.mask is not None or self.bext is not None or self.ixml is not None


def source_chunks(path: str | Path) -> SourceChunks:
    """The channel mask, bext and iXML of the RIFF, RF64 or Wave64 file ``path``, wherever they
    are (after the audio too); nothing for any other file. A bext or iXML chunk cut short by
    the end of the file, or larger than :data:`MAX_CHUNK`, is left out with a warning naming
    the file. OSError when the file cannot be read."""
    try:
        found = wave_chunks(path, (b"fmt ", b"bext", b"iXML"), MAX_CHUNK)
    except (ValueError, OverflowError, struct.error) as e:     # chunk heads no reader could follow
        _warn_once(f"{path}: its chunks cannot be walked ({e}); the excerpt keeps none of them")
        return SourceChunks()
    mask, valid, container = None, 0, 0
    fmt = found.get(b"fmt ")
    if fmt is not None and len(fmt.body) >= 24 and struct.unpack_from("<H", fmt.body)[0] == WAVE_FORMAT_EXTENSIBLE:
        container, valid, mask = struct.unpack_from("<H2xHI", fmt.body, 14)
    bodies = {}
    for cid, name in ((b"bext", "bext"), (b"iXML", "iXML")):
        chunk = found.get(cid)
        if chunk is None:
            continue
        if chunk.size > MAX_CHUNK:
            _warn_once(f"{path}: its {name} chunk ({chunk.size} bytes, more than {MAX_CHUNK}) is left out "
                       "of the excerpt")
        elif len(chunk.body) < chunk.size:
            _warn_once(f"{path}: its {name} chunk is cut short by the end of the file; it is left out of the excerpt")
        else:
            bodies[cid] = chunk.body
    return SourceChunks(mask or None, valid, container, bodies.get(b"bext"), bodies.get(b"iXML"))


#: warnings already given in this process (a player asks /audio for a preview several times, in
#: byte ranges: the same broken chunk is said once), at most this many remembered
_WARNED: OrderedDict[str, None] = OrderedDict()
_WARNED_MAX = 1024
_WARNED_LOCK = threading.Lock()


def _warn_once(message: str) -> None:
    """Log ``message`` as a warning unless this process already has (then at debug level)."""
    with _WARNED_LOCK:                  # the HTTP server's threads share it
        said = message in _WARNED
        if not said:
            _WARNED[message] = None
            if len(_WARNED) > _WARNED_MAX:
                _WARNED.popitem(last=False)
    if said:
        log.debug("%s (said before)", message)
    else:
        log.warning("%s", message)


def excerpt_header(path: str, header: bytes, source: SourceChunks, *, first: int, last: int,
                   rate: int, subtype: str) -> bytes:
    """libsndfile's WAV ``header`` (``RIFF`` … the data chunk's 8-byte head) of the excerpt of
    frames ``first``–``last`` of ``path`` in WAV ``subtype``, with what it keeps of ``source``:
    the fmt chunk made extensible with its mask, its bext and iXML moved to the excerpt after
    fmt. ``header`` itself when the source has none of them. A bext chunk that cannot be moved
    is left out, and of an iXML chunk the timestamps and sync points that cannot be
    (:func:`excerpt_ixml`), with a warning naming the file, what and why."""
    if not source:
        return header
    chunks, data_at = header_chunks(header)
    fmt = next(body for cid, body in chunks if cid == b"fmt ")
    channels, bits = struct.unpack_from("<H", fmt, 2)[0], struct.unpack_from("<H", fmt, 14)[0]
    extra = []
    line = coding_history_line(subtype, rate, bits, channels, first / rate, last / rate)
    if source.bext is not None:
        _keep(extra, path, b"bext", lambda: excerpt_bext(source.bext, first, line))
    if source.ixml is not None:
        notes: list[str] = []
        _keep(extra, path, b"iXML", lambda: excerpt_ixml(source.ixml, first, last - first, rate, line, notes))
        for note in notes:
            _warn_once(f"{path}: the excerpt's iXML chunk has {note}")
    made = bytearray()
    for cid, body in chunks:
        if cid == b"fmt ":
            made += _chunk(cid, extensible_fmt(fmt, source) if source.mask else body)
            for extra_id, extra_body in extra:
                made += _chunk(extra_id, extra_body)
        else:
            made += _chunk(cid, body)
    riff_size = struct.unpack_from("<I", header, 4)[0] + len(made) - (data_at - 12)
    return b"RIFF" + struct.pack("<I", riff_size) + b"WAVE" + bytes(made) + header[data_at:]


def _keep(extra: list[tuple[bytes, bytes]], path: str, cid: bytes, make: Callable[[], bytes]) -> None:
    """``(cid, make())`` onto ``extra``; a ValueError from ``make`` is warned of, the chunk left out."""
    try:
        extra.append((cid, make()))
    except ValueError as e:
        _warn_once(f"{path}: the excerpt is written without its {cid.decode()} chunk ({e})")


def header_chunks(header: bytes) -> tuple[list[tuple[bytes, bytes]], int]:
    """The chunks (id, body) of the WAV ``header`` before its data chunk, and where that data
    chunk's head is. RuntimeError for a header that is not RIFF WAVE chunks up to a data chunk
    (libsndfile wrote something soundsift does not know)."""
    chunks, pos = [], 12
    while pos + 8 <= len(header):
        cid, size = header[pos:pos + 4], struct.unpack_from("<I", header, pos + 4)[0]
        if cid == b"data":
            break
        chunks.append((cid, header[pos + 8:pos + 8 + size]))
        pos += 8 + size + (size & 1)
    if header[:4] != b"RIFF" or header[8:12] != b"WAVE" or header[pos:pos + 4] != b"data":
        raise RuntimeError(f"libsndfile wrote a WAV header soundsift does not know ({header[:64]!r})")
    return chunks, pos


def data_offset(wav: bytes) -> int:
    """Where the samples of the RIFF WAVE file ``wav`` start (past its data chunk's head)."""
    return header_chunks(wav)[1] + 8


def _chunk(cid: bytes, body: bytes) -> bytes:
    """A RIFF chunk: id, size, body, and a pad byte when the body's length is odd."""
    return cid + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) & 1)


def extensible_fmt(fmt: bytes, source: SourceChunks) -> bytes:
    """libsndfile's ``fmt`` body as WAVE_FORMAT_EXTENSIBLE with the source's channel mask (and
    its valid bits when its container is as wide); ``fmt`` itself for a format no subformat
    GUID names (ADPCM, GSM …: what the excerpt of such a source is written as)."""
    tag, channels, rate, byte_rate, align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag not in _SUBFORMAT_TAGS:
        log.debug("a %04Xh WAV has no extensible form; the excerpt keeps no channel mask", tag)
        return fmt
    valid = source.valid_bits if source.container_bits == bits and 0 < source.valid_bits <= bits else bits
    return (struct.pack("<HHIIHHHHI", WAVE_FORMAT_EXTENSIBLE, channels, rate, byte_rate, align, bits, 22,
                        valid, source.mask or 0) + struct.pack("<I", tag) + _GUID_TAIL)


def coding_history_line(subtype: str, rate: int, bits: int, channels: int, start: float, end: float) -> str:
    """The CodingHistory line (EBU R 98: algorithm, sampling frequency, word length, mode, text;
    CR LF at its end) saying soundsift cut the span ``start``–``end`` s out of the recording."""
    algorithm = "PCM" if subtype.startswith("PCM") or subtype in ("FLOAT", "DOUBLE") else subtype
    mode = {1: "mono", 2: "stereo"}.get(channels, "multi")
    return f"A={algorithm},F={rate},W={bits},M={mode},T=soundsift excerpt {start:.3f}-{end:.3f} s\r\n"


def excerpt_bext(body: bytes, first: int, line: str) -> bytes:
    """The source's bext chunk ``body`` for an excerpt starting at its frame ``first``: its
    TimeReference moved by ``first``, its loudness fields (version 2 and later) set to
    :data:`LOUDNESS_NOT_USED`, ``line`` appended to its CodingHistory; the rest as it was (a
    chunk short of the reserved bytes is completed with zeros). ValueError for a chunk too short
    to hold a TimeReference."""
    if len(body) < _VERSION:
        raise ValueError(f"its bext chunk is {len(body)} bytes, too short for a TimeReference "
                         f"({BEXT_FIXED} bytes of fixed fields)")
    fixed = bytearray(body[:BEXT_FIXED].ljust(BEXT_FIXED, b"\x00"))
    reference = struct.unpack_from("<Q", fixed, _TIME_REFERENCE)[0] + first
    if reference >= 1 << 64:
        raise ValueError("its bext TimeReference is past 64 bits once moved to the excerpt")
    struct.pack_into("<Q", fixed, _TIME_REFERENCE, reference)
    if struct.unpack_from("<H", fixed, _VERSION)[0] >= 2:      # measured over the whole recording
        struct.pack_into("<5H", fixed, _LOUDNESS, *[LOUDNESS_NOT_USED] * 5)
    history = body[BEXT_FIXED:].split(b"\x00", 1)[0]           # a NUL ends the text (and pads it)
    if history and not history.endswith(b"\r\n"):
        history = history.rstrip(b"\r\n") + b"\r\n"
    made = bytes(fixed) + history + line.encode("ascii")
    return made + b"\x00" * (len(made) & 1)                    # an even size: some readers need one


#: iXML's 64-bit sample counts, each as its (high, low) 32-bit elements, spelt as the iXML spec
#: (1.x to 3.x, ixml.info / gallery.co.uk/ixml) and its writers spell them: SPEED's timestamp ends
#: in _HI/_LO, BEXT's copy of the bext TimeReference in _HIGH/_LOW (Adobe XMP Toolkit's
#: iXMLMetadata.cpp, REAPER's WDL/metadata.h "IXML:BEXT:BWF_TIME_REFERENCE_HIGH"; no writer
#: found spells the latter _HI/_LO)
_IXML_TIMESTAMP = ("TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI", "TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO")
_IXML_TIME_REFERENCE = ("BWF_TIME_REFERENCE_HIGH", "BWF_TIME_REFERENCE_LOW")
#: the iXML BEXT block's copies of bext's version 2 loudness fields (EBU Tech 3285's names in
#: capitals after BWF_, as the iXML spec's BEXT list and its writers spell them: REAPER's
#: WDL/metadata.h, the iXML C++ writers' BEXT elements), a decimal text where they are written
_IXML_LOUDNESS = ("BWF_LOUDNESS_VALUE", "BWF_LOUDNESS_RANGE", "BWF_MAX_TRUE_PEAK_LEVEL",
                  "BWF_MAX_MOMENTARY_LOUDNESS", "BWF_MAX_SHORT_TERM_LOUDNESS")
#: the iXML BEXT block's copy of bext's CodingHistory: its text (group 2, entities left as they
#: are) between its tags, or an empty element written ``<BWF_CODING_HISTORY/>``
_IXML_CODING_HISTORY = re.compile(rb"(<BWF_CODING_HISTORY(?:\s[^>]*)?)(?:>([^<]*)</BWF_CODING_HISTORY\s*>|\s*/>)")
#: a CR or LF written as a character reference (``&#13;``, ``&#010;``, ``&#xA;`` …)
_LINE_END_REFERENCE = re.compile(rb"&#(?:0*1[03]|x0*[dDaA]);")
#: a SYNC_POINT element, with the blanks before it and the blanks and line end after it; each
#: try at one stops at the next SYNC_POINT tag, and starts where a run of blanks does, so a
#: writer's padding or a chunk of unclosed SYNC_POINTs is not scanned again from each byte
_SYNC_POINT = re.compile(rb"(?<![ \t])[ \t]*<SYNC_POINT(?:\s[^>]*)?>(?:[^<]|<(?!/?SYNC_POINT[\s>]))*"
                         rb"</SYNC_POINT\s*>[ \t]*(?:\r?\n)?")


def _element(name: str, markup: bool = False) -> re.Pattern[bytes]:
    """An iXML element ``<name>text</name>``: group 1 is its text, blanks around it left out.
    ``markup``: the text may hold markup too (a CDATA section, a comment, a child element: an
    XML reader does not read such an element as its bytes), up to the next tag of that name;
    a self-closing ``<name/>`` is no such element. Each run of blanks has one way to be matched
    (inside the text only when more text follows it, after it only right after a non-blank),
    so a long run is not scanned again from each of its bytes."""
    n = re.escape(name.encode())
    char = rb"(?:[^<\s]|<(?!/?" + n + rb"[\s>/]))" if markup else rb"[^<\s]"
    text = rb"((?:" + char + rb"(?:" + char + rb"|\s+(?=" + char + rb"))*)?)"
    opening = rb"<" + n + rb"(?:\s[^>]*)?" + (rb"(?<!/)>" if markup else rb">")
    return re.compile(opening + rb"\s*" + text + rb"(?:(?<=\S)\s+)?</" + n + rb"\s*>")


def excerpt_ixml(body: bytes, first: int, frames: int, rate: int, line: str = "",
                 notes: list[str] | None = None) -> bytes:
    """The source's iXML chunk ``body`` for the excerpt of ``frames`` frames from its frame
    ``first``, byte for byte but for its sample counts: TIMESTAMP_SAMPLES_SINCE_MIDNIGHT (in
    TIMESTAMP_SAMPLE_RATE samples, where it says) and BWF_TIME_REFERENCE_HIGH/LOW moved on, RELATIVE
    sync points moved back (those outside the excerpt left out, SYNC_POINT_COUNT lowered to
    match: :func:`_moved_sync_points`); and its BEXT block saying what the excerpt's bext chunk
    does, ``line`` the CodingHistory line bext gains (:func:`_excerpt_bext_copy`). What cannot
    be moved is left out, never copied as it was (the excerpt's timecode would be the
    recording's): a timestamp pair whose halves are not sample counts or do not fit once moved,
    SPEED's pair and its TIMESTAMP_SAMPLE_RATE where that is not a rate, a sync point whose
    numbers are not sample counts; each kind said in one note onto ``notes`` (a warning when
    None), the rest of the chunk kept."""
    body = _excerpt_bext_copy(body, line)
    left_out: list[tuple[str, str]] = []            # (element, why) of the timecode elements left out
    stamp = _element("TIMESTAMP_SAMPLE_RATE", markup=True).search(body)
    try:
        stamp_rate = _stamp_rate(stamp)
    except ValueError as e:                         # SPEED's timestamp counts samples at a rate no one knows
        highs, lows = _pair(body, *_IXML_TIMESTAMP)
        edits = _left_out(body, [stamp, *highs, *lows], str(e), left_out)
    else:
        stamp_shift = first if stamp_rate in (None, rate) else round(first * stamp_rate / rate)
        edits = _moved_pair(body, *_IXML_TIMESTAMP, stamp_shift, left_out)
    edits += _moved_pair(body, *_IXML_TIME_REFERENCE, first, left_out)
    _note_left_out(notes, "timecode element", left_out)
    return _moved_sync_points(_edited(body, edits), first, frames, notes)


def _stamp_rate(found: re.Match[bytes] | None) -> float | None:
    """The rate SPEED's timestamp counts samples at: the number the TIMESTAMP_SAMPLE_RATE element
    ``found`` holds, None where there is none. ValueError when it is not a positive number."""
    if found is None:
        return None
    text = found.group(1)
    try:
        stamp_rate = float(text)
    except ValueError:
        raise ValueError(f"TIMESTAMP_SAMPLE_RATE holds {_shown(text)}, not a number") from None
    if not (math.isfinite(stamp_rate) and stamp_rate > 0):
        raise ValueError(f"TIMESTAMP_SAMPLE_RATE is {stamp_rate:g}, not a sample rate")
    return stamp_rate


def _shown(text: bytes) -> str:
    """An element's ``text`` as a note quotes it: its first 40 bytes, as a Python string."""
    return repr(text[:40].decode("utf-8", "replace"))


def _note_left_out(notes: list[str] | None, kind: str, left_out: list[tuple[str, str]]) -> None:
    """One note onto ``notes`` (a warning when None) on the ``kind`` left out of the excerpt's
    iXML chunk, ``left_out`` their (name, why): how many, their names and the first reason
    (:func:`engine.markers._report_left_out`). Nothing when ``left_out`` is empty."""
    said: list[str] = [] if notes is None else notes
    reasons = list(dict.fromkeys(why for _, why in left_out))
    why = reasons[0] + (" …" if len(reasons) > 1 else "") if reasons else ""
    _report_left_out(said, "", kind, [name for name, _ in left_out], why=why)
    if notes is None and said:
        log.warning("the excerpt's iXML chunk has %s", said[0])


def _excerpt_bext_copy(body: bytes, line: str) -> bytes:
    """``body`` with its BEXT block saying of the excerpt what its bext chunk does, where it has
    the elements: ``line`` (a CodingHistory line, CR LF at its end; "": none) after the text of
    each BWF_CODING_HISTORY, on a line of its own (CR LF written as that text writes its own:
    as character references where it does, which an XML reader keeps), and the text of each
    loudness element (:data:`_IXML_LOUDNESS`: they measured the whole recording) taken out, as
    a writer leaves one it has no value for."""
    edits = [(found.span(1), b"") for name in _IXML_LOUDNESS for found in _element(name).finditer(body)
             if found.group(1)]
    body = _edited(body, edits)
    if not line:
        return body

    def appended(found: re.Match[bytes]) -> bytes:
        history = (found.group(2) or b"").lstrip()
        escaped = re.search(rb"&#(?:0*13|x0*[dD]);", history) is not None     # its CRs written so XML keeps them
        end = b"&#13;&#10;" if escaped else b"\r\n"
        history = _without_line_ends(history)
        text = (history + end if history else b"") + line.encode("ascii").replace(b"\r\n", end)
        return found.group(1) + b">" + text + b"</BWF_CODING_HISTORY>"

    return _IXML_CODING_HISTORY.sub(appended, body)


def _without_line_ends(text: bytes) -> bytes:
    """``text`` without the blanks and the CR and LF character references (``&#13;&#10;``,
    ``&#xA;`` …) at its end; in one pass back from the end, however long the text."""
    end = len(text)
    while True:
        while end and text[end - 1:end].isspace():
            end -= 1
        at = text.rfind(b"&#", 0, end)
        if at < 0 or not _LINE_END_REFERENCE.fullmatch(text, at, end):
            return text[:end]
        end = at


def _pair(body: bytes, high_name: str, low_name: str) -> tuple[list[re.Match[bytes]], list[re.Match[bytes]]]:
    """The ``high_name`` and the ``low_name`` elements of ``body``, in the order written, markup
    and all (:func:`_element`: one an XML reader reads otherwise is not copied unmoved)."""
    return (list(_element(high_name, markup=True).finditer(body)),
            list(_element(low_name, markup=True).finditer(body)))


def _moved_pair(body: bytes, high_name: str, low_name: str, shift: int,
                left_out: list[tuple[str, str]]) -> list[tuple[tuple[int, int], bytes]]:
    """The edits of ``body`` moving each ``high_name``/``low_name`` pair (a 64-bit sample count)
    by ``shift``; a low element without a high one is a 32-bit count, an empty high one 0 (as
    engine.ixml reads them). A pair that cannot be moved is left out, both its elements
    (:func:`_left_out`, onto ``left_out``): a half that is not a sample count, a count that does
    not fit once moved, and every pair when they do not match up."""
    highs, lows = _pair(body, high_name, low_name)
    if highs and len(highs) != len(lows):
        return _left_out(body, [*highs, *lows], f"{high_name} and {low_name} do not come in pairs", left_out)
    edits = []
    for i, low in enumerate(lows):
        high = highs[i] if highs else None
        try:
            value = (_count(high.group(1) or b"0", high_name) << 32 if high else 0) + _count(low.group(1), low_name)
            value += shift
            if not 0 <= value < (1 << 64 if high else 1 << 32):
                raise ValueError(f"{low_name} does not fit its fields once moved to the excerpt")
        except ValueError as e:
            edits += _left_out(body, [high, low], str(e), left_out)
            continue
        edits.append((low.span(1), str(value & 0xFFFFFFFF).encode()))
        if high:
            edits.append((high.span(1), str(value >> 32).encode()))
    return edits


def _count(text: bytes, name: str) -> int:
    """A sample count an element holds (decimal digits). ValueError otherwise."""
    if not re.fullmatch(rb"\d+", text):
        raise ValueError(f"{name} holds {_shown(text)}, not a sample count")
    return int(text)


def _left_out(body: bytes, elements: list[re.Match[bytes] | None], why: str,
              left_out: list[tuple[str, str]]) -> list[tuple[tuple[int, int], bytes]]:
    """The edits of ``body`` taking out its ``elements`` (None: none), each with its line where
    it stands alone on one; (its name, ``why``) onto ``left_out`` for each."""
    edits = []
    for found in elements:
        if found is not None:
            edits.append((_line_span(body, *found.span()), b""))
            left_out.append((found.group(0)[1:].split(b">", 1)[0].split()[0].decode("ascii", "replace"), why))
    return edits


def _line_span(body: bytes, start: int, end: int) -> tuple[int, int]:
    """The span ``start``–``end`` of ``body``, widened to its whole line (line end included)
    where nothing but blanks stands beside it there."""
    line_start = body.rfind(b"\n", 0, start) + 1
    line_end = body.find(b"\n", end)
    line_end = len(body) if line_end < 0 else line_end + 1
    if body[line_start:start].strip(b" \t") or body[end:line_end].strip(b" \t\r\n"):
        return start, end
    return line_start, line_end


def _edited(body: bytes, edits: list[tuple[tuple[int, int], bytes]]) -> bytes:
    """``body`` with each span replaced by its bytes; a span inside one before it is dropped (an
    element inside one taken out is taken out with it)."""
    out, at = bytearray(), 0
    for (start, end), text in sorted(edits):
        if start < at:
            continue
        out += body[at:start] + text
        at = end
    return bytes(out + body[at:])


def _moved_sync_points(body: bytes, first: int, frames: int, notes: list[str] | None = None) -> bytes:
    """``body`` with its RELATIVE sync points (the default, as engine.file_metadata reads them)
    moved back by ``first``, those that fall outside the ``frames`` of the excerpt left out and
    SYNC_POINT_COUNT lowered by as many (where it holds a count); ABSOLUTE ones (since midnight)
    stay as they are. A RELATIVE point whose numbers are not sample counts (as engine.ixml reads
    them: a missing or empty one is 0) is left out too, the rest of the chunk kept: one note onto
    ``notes`` names those points and the first reason (a warning when ``notes`` is None)."""
    removed, unreadable = 0, []

    def moved(point: re.Match[bytes]) -> bytes:
        nonlocal removed
        block = point.group(0)
        kind = _element("SYNC_POINT_TYPE").search(block)
        if kind is not None and kind.group(1).strip().upper() == b"ABSOLUTE":
            return block
        try:
            edited = _moved_sync_point(block, first, frames)
        except ValueError as e:
            unreadable.append((_sync_point_name(block), str(e)))
            edited = b""
        removed += not edited
        return edited

    body = _SYNC_POINT.sub(moved, body)
    _note_left_out(notes, "sync point", unreadable)
    count = _element("SYNC_POINT_COUNT").search(body)
    if removed and count is not None and count.group(1).isdigit():
        left = max(0, int(count.group(1)) - removed)
        body = _edited(body, [(count.span(1), str(left).encode())])
    return body


def _moved_sync_point(block: bytes, first: int, frames: int) -> bytes:
    """A RELATIVE SYNC_POINT ``block`` moved back by ``first``; b"" when it falls outside the
    ``frames`` of the excerpt. ValueError when its numbers are not sample counts or do not fit
    once moved."""
    high, low = _element("SYNC_POINT_HIGH").search(block), _element("SYNC_POINT_LOW").search(block)
    at = (_point_count(high, "SYNC_POINT_HIGH") << 32) + _point_count(low, "SYNC_POINT_LOW") - first
    if not 0 <= at < frames:
        return b""
    if high is None and at >= 1 << 32:
        raise ValueError("SYNC_POINT_LOW does not fit in 32 bits once moved to the excerpt")
    edits = [(found.span(1), str(value).encode())
             for found, value in ((low, at & 0xFFFFFFFF), (high, at >> 32)) if found is not None]
    return _edited(block, edits)


def _point_count(found: re.Match[bytes] | None, name: str) -> int:
    """The sample count a sync point's ``name`` element (``found``) holds, 0 where it has none or
    it is empty (as engine.ixml reads it). ValueError naming the element and its text otherwise."""
    text = found.group(1) if found is not None else b""
    if text and not text.isdigit():
        raise ValueError(f"{name} holds {text[:40].decode('utf-8', 'replace')!r}, not a sample count")
    return int(text or 0)


def _sync_point_name(block: bytes) -> str:
    """A SYNC_POINT ``block``'s SYNC_POINT_COMMENT, blanks collapsed, or "unnamed"."""
    comment = _element("SYNC_POINT_COMMENT").search(block)
    name = " ".join(html.unescape(comment.group(1).decode("utf-8", "replace")).split()) if comment else ""
    return name or "unnamed"
