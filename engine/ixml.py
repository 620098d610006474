"""What a WAV's iXML chunk says: its descriptive fields, its named sync points and its time reference.

The fields library tools write there (:data:`IXML_KEYS`): Soundminer's and BaseHead's ``USER``
block (DESCRIPTION, CATEGORY, SUBCATEGORY, CATID, FXNAME, KEYWORDS …, the Universal Category
System's fields), the Audio Standards Working Group's ``ASWG`` block, Steinberg MediaBay's
``ATTR_LIST`` (:data:`STEINBERG_KEYS`) and a production recorder's ``NOTE``; its
``SYNC_POINT_LIST`` (a field recorder's named cues), placed as markers (engine.markers) from the
file's start or by its time reference; and that time reference itself, which the iXML chunk
repeats where a WAV has no bext chunk (iXML spec 1.x-3.x, ixml.info / gallery.co.uk/ixml).
engine.riff_metadata finds the chunk; engine.wav_chunks rewrites an excerpt's.
"""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import NamedTuple

from engine.markers import Marker, _report_left_out, _report_past_end
from engine.metadata_values import _put_first


class SyncPoint(NamedTuple):
    """A named cue of an iXML ``SYNC_POINT_LIST`` (:func:`ixml_sync_points`)."""

    at: int                 #: samples from the file's start (RELATIVE) or from midnight (ABSOLUTE)
    name: str               #: its SYNC_POINT_COMMENT, blanks collapsed
    length: int             #: its SYNC_POINT_EVENT_DURATION in samples, 0 for none
    relative: bool          #: RELATIVE (the default) rather than ABSOLUTE
    unreadable: str = ""    #: why its numbers cannot be read ("" when they can): it is left out


def _placed_sync_points(points: list[SyncPoint], rate: int, frames: int | None,
                        reference: tuple[int, str] | None, path: str | Path,
                        problems: list[str] | None) -> list[Marker]:
    """The iXML sync ``points`` (:func:`ixml_sync_points`) of a WAV of ``frames`` frames (None: not
    known) at ``rate`` as markers in time order: RELATIVE ones from the file's start, ABSOLUTE
    ones from midnight less the file's time ``reference`` (samples since midnight, and the chunk
    that gave it: "bext", else "iXML"). One note each (:func:`_report`) for those left out: those
    whose numbers are not sample counts, past the end of the audio, ABSOLUTE ones earlier than
    the time reference, and ABSOLUTE ones in a file with no time reference."""
    time_reference, source = reference if reference is not None else (None, "")
    unreadable = [p for p in points if p.unreadable]
    reasons = list(dict.fromkeys(p.unreadable for p in unreadable))
    _report_left_out(problems, path, "iXML sync point", [p.name for p in unreadable],
                     why=reasons[0] + (" …" if len(reasons) > 1 else "") if reasons else "")
    points = [p for p in points if not p.unreadable]
    unreferenced = [p.name for p in points if not p.relative and time_reference is None]
    _report_left_out(problems, path, "ABSOLUTE iXML sync point", unreferenced,
                     why="the file has no bext or iXML time reference to place them by")
    named = sorted((at if relative else at - time_reference, name, length, relative)
                   for at, name, length, relative, _ in points if relative or time_reference is not None)
    if time_reference is not None:      # only an ABSOLUTE point can be: a RELATIVE one's count is not negative
        why = f"earlier than its {source} time reference, {_time_of_day(time_reference / rate)}"
        _report_left_out(problems, path, "iXML sync point", [name for at, name, _, _ in named if at < 0],
                         "before the file's start", why)
    if frames is not None:
        _report_past_end(problems, path, "iXML sync point", [name for at, name, _, _ in named if at >= frames],
                         frames / rate)
    return [Marker(at / rate, name, length / rate if length else None) for at, name, length, _ in named
            if at >= 0 and (frames is None or at < frames)]


def _time_of_day(seconds: float) -> str:
    """Seconds since midnight as ``hh:mm:ss.sss`` (a bext time reference)."""
    minutes, ms = divmod(round(seconds * 1000), 60_000)     # rounded first: never "…:60.000"
    return f"{minutes // 60:02d}:{minutes % 60:02d}:{ms / 1000:06.3f}"


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


def ixml_sync_points(root: ET.Element) -> list[SyncPoint]:
    """The named cues of an iXML ``SYNC_POINT_LIST`` (what production and field recorders
    write when the recordist presses a cue button and names it): the sample count
    ``SYNC_POINT_HIGH``/``LOW`` give, its ``SYNC_POINT_COMMENT``, its ``SYNC_POINT_EVENT_DURATION``
    in samples or 0, whether the count is from the file's start — ``RELATIVE`` — rather than
    from midnight like the bext time reference — ``ABSOLUTE``. Cues without a comment are left
    out: a marker needs a name. A cue whose numbers are not sample counts (unsigned decimal
    integers, as the spec's 32-bit halves are: "-4000" or "n/a" is not one) comes back with
    why, to be left out with a note (:func:`_placed_sync_points`)."""
    out = []
    for point in root.iter("SYNC_POINT"):
        name = " ".join((point.findtext("SYNC_POINT_COMMENT") or "").split())
        if not name:
            continue
        relative = (point.findtext("SYNC_POINT_TYPE") or "RELATIVE").strip().upper() != "ABSOLUTE"
        try:
            at = (_sample_count(point, "SYNC_POINT_HIGH") << 32) | _sample_count(point, "SYNC_POINT_LOW")
            length = _sample_count(point, "SYNC_POINT_EVENT_DURATION")
        except ValueError as e:
            out.append(SyncPoint(0, name, 0, relative, str(e)))
            continue
        out.append(SyncPoint(at, name, length, relative))
    return out


def _sample_count(point: ET.Element, name: str) -> int:
    """The sample count the ``name`` element of ``point`` holds, 0 where it has none or it is
    empty. ValueError naming the element and its text when that is not a count."""
    text = (point.findtext(name) or "").strip()
    if not text:
        return 0
    if not _SAMPLE_COUNT.fullmatch(text):
        raise ValueError(f"{name} holds {text[:40]!r}, not a sample count")
    return int(text)


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
