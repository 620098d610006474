"""Times as the page writes them: a card's duration and match, a marker, a player's excerpt, a
download's span. One format for one span, as the CLI shows matches (engine.query_span.clock)."""
from __future__ import annotations

from engine.markers import MARKER_SEPARATOR, parse_markers
from engine.query_span import clock

#: below this many seconds a time gets hundredths (it would read "1.0 s" from here on)
SHORT = 0.995


def seconds_text(seconds: float) -> str:
    """``12.3 s`` under a minute (as rounded to the tenth), ``0.05 s`` under a second (a 30 ms click
    is not "0.0 s"), else ``m:ss.ff`` / ``h:mm:ss.ff`` as the CLI shows times (not "3600.0 s" for
    an hour-long file)."""
    if round(seconds, 1) >= 60:
        return clock(seconds)
    return f"{seconds:.2f} s" if seconds < SHORT else f"{seconds:.1f} s"


def stop_text(seconds: float) -> str:
    """A slider's stop: ``0.5 s``, ``45 s`` under a minute, else a clock without the hundredths a
    whole second does not need, ``1:30``, ``1:00:00`` (``1:00:00.50`` when there are some)."""
    if seconds < 60:
        return f"{seconds:g} s"
    text = clock(seconds)
    return text[:-3] if text.endswith(".00") else text


def span_text(start: float, end: float) -> str:
    """A span as cards, headings and downloads show it: ``2.0–12.0 s`` within the first minute,
    ``0.00–0.05 s`` within the first second, else both ends as a clock, ``0:55.00–1:05.00`` (not
    "55.0 s–1:05.00")."""
    if round(end, 1) >= 60:
        return f"{clock(start)}–{clock(end)}"
    return f"{start:.2f}–{end:.2f} s" if end < SHORT else f"{start:.1f}–{end:.1f} s"


def excerpt_note(offset: float | None, seconds: float, duration: float) -> str | None:
    """What a card says under a player given an excerpt of ``seconds`` from ``offset`` s of a file of
    ``duration`` s (ui.components.player): which part of the file it plays, since the player counts
    from 0:00; None when it plays the whole file (a short AIFF converted to WAV) or no excerpt."""
    if offset is None:
        return None
    end = min(float(duration), float(offset) + float(seconds))
    if offset <= 0 and end >= duration:
        return None
    return f"excerpt {span_text(offset, end)} of the file"


def marker_text(seconds: float) -> str:
    """A named marker's time as a card lists it and a search's badge says it: to the hundredth,
    as the catalog keeps it (engine.markers.marker_time) and the CLI's marker column writes it,
    ``2.25 s`` under a minute, else a clock, ``1:01.50`` (59.996 s is ``1:00.00``, as stored)."""
    if round(seconds * 100) >= 6000:
        return clock(seconds)
    return f"{round(seconds * 100) / 100:.2f} s"


def markers_text(stored: str) -> str:
    """A file's named markers as its card lists them: the catalog's value (engine.markers,
    ``0:01.25 Door slam · 0:03.50 Creak``, to the hundredth; to the tenth in a catalog read before
    session 36) with each time as :func:`marker_text` writes it, ``1.25 s Door slam · 3.50 s Creak``
    (the badge of a marker a search found reads "at 1.25 s"), every one a clock,
    ``0:03.20 Start · 1:01.50 Gate latch``, when the last reaches a minute (as :func:`span_text`
    writes a span); a value it cannot read, as stored."""
    found = parse_markers(stored)
    if not found:
        return stored
    as_clock = round(max(at for at, _ in found) * 100) >= 6000
    return MARKER_SEPARATOR.join(f"{clock(at) if as_clock else marker_text(at)} {name}" for at, name in found)


def with_marker_times(found: dict[str, str]) -> dict[str, str]:
    """A file's stored metadata (key → value) with its ``markers`` as :func:`markers_text` writes them."""
    if not found.get("markers"):
        return found
    return {**found, "markers": markers_text(found["markers"])}
