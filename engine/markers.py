"""A sound file's named markers: what they are, how they are stored, and what is said of those left out.

A marker (:class:`Marker`) is a named point or region a file marks: a WAVE cue point
(engine.riff_metadata), an AIFF ``MARK`` entry (engine.aiff_metadata), an iXML sync point
(engine.ixml), a cue sheet's track (engine.cue_sheet, engine.tag_comments). A file keeps at most
:data:`MAX_MARKERS`; the catalog stores them as one ``markers`` value ("0:01.25 Door slam ·
0:03.50 Creak", :func:`_markers`; to the tenth before session 36), which :func:`parse_markers`
reads back, either way. Markers a reader leaves out (past the end of the audio, before the file's
start, after the first :data:`MAX_MARKERS`) are said in one note each (:func:`_report_left_out`).
engine.file_metadata.named_markers chooses a file's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from engine.cue_sheet import CueTrack
from engine.metadata_values import _report


#: most markers kept per file (a file with more is a marker track, not labelled takes)
MAX_MARKERS = 200


@dataclass(frozen=True)
class Marker:
    """A named marker of a WAVE file (a cue point) or an AIFF file (a MARK entry): where
    (seconds, to the sample), its name, and how long the region it starts is when the file says
    (a WAVE ``ltxt`` sample length; None for a point)."""

    at: float
    name: str
    length: float | None = None


def _cue_markers(tracks: list[CueTrack]) -> list[Marker]:
    """A cue sheet's tracks as markers (all of them: their readers keep the first
    :data:`MAX_MARKERS`, read_metadata saying so of the rest)."""
    return [Marker(t.at, t.name, t.length) for t in tracks]


MARKER_SEPARATOR = " · "
#: a stored marker: minutes, seconds to the hundredth (to the tenth in catalogs read before
#: session 36, which are read as they are), then its name (any text, digits and colons too)
_MARKER = re.compile(r"(\d+):(\d\d\.\d\d?) (.+)")


def marker_time(seconds: float) -> str:
    """A marker's time as the catalog stores it, ``m:ss.ff`` (minutes past 59 as they are,
    ``75:00.00``): rounded to the hundredth first, so 59.996 s is ``1:00.00``, not ``0:60.00``."""
    minutes, hundredths = divmod(int(round(max(0.0, seconds) * 100)), 6000)
    return f"{minutes}:{hundredths / 100:05.2f}"


def _markers(markers: list[Marker]) -> str:
    """The named cue points as ``"0:01.25 Door slam · 0:03.50 Creak"`` (:func:`marker_time`), in time order."""
    return MARKER_SEPARATOR.join(f"{marker_time(m.at)} {m.name.replace('·', ' ')}" for m in markers)


def parse_markers(text: str) -> list[tuple[float, str]]:
    """``(seconds, name)`` of the ``markers`` value read_metadata gives, in its order: times to
    the hundredth, or to the tenth as catalogs read before session 36 hold them."""
    out = []
    for part in text.split(MARKER_SEPARATOR):
        m = _MARKER.fullmatch(part.strip())
        if m:
            out.append((round(int(m.group(1)) * 60 + float(m.group(2)), 2), m.group(3)))
    return out


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


def _before_end(markers: list[Marker], end: float | None, kind: str, path: str | Path,
                problems: list[str] | None) -> list[Marker]:
    """``markers`` before ``end`` (seconds; None: all), those past it reported (:func:`_report_past_end`)."""
    if end is None:
        return markers
    _report_past_end(problems, path, kind, [m.name for m in markers if m.at >= end], end)
    return [m for m in markers if m.at < end]
