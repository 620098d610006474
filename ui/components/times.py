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


def player_length_note(seconds: float) -> str | None:
    """What a card says beside a player of ``seconds`` of audio whose length the browser's clock
    cannot show: it counts whole seconds, and a 0.4 s click reads "0:00 / 0:00". Under a second,
    its length as the card's facts write it, ``plays 0.40 s`` (:func:`seconds_text`); else None."""
    if seconds >= 1:
        return None
    return f":material/timer: plays {seconds_text(seconds)}"


def player_label(name: str, seconds: float) -> str:
    """A card's player as a screen reader names it (the audio element's label): the file and
    how long the audio it plays is, ``dog_bark.wav, 1.5 s`` (:func:`seconds_text`)."""
    return f"{name}, {seconds_text(seconds)}"


def marker_text(seconds: float) -> str:
    """A named marker's time as a card lists it and a search's badge says it: to the hundredth,
    as the catalog keeps it (engine.markers.marker_time) and the CLI's marker column writes it,
    ``2.25 s`` under a minute, else a clock, ``1:01.50`` (59.996 s is ``1:00.00``, as stored)."""
    if round(seconds * 100) >= 6000:
        return clock(seconds)
    return f"{round(seconds * 100) / 100:.2f} s"


def take_times(found: list[tuple[float, str]], take: tuple[str, float] | None) -> list[tuple[float, str]]:
    """A file's stored markers (``found``: (seconds, name)) with the one a search named on it
    (``take``: the hit's marker and marker_at) at the take's time: the marker of that name
    nearest it within engine.query_markers.MARKER_TOLERANCE. A catalog read before session 36
    keeps "0:02.2 Door slam" where the take starts at 2.25 s; the card's list, its waveform's
    tick and the badge then write one value. ``found`` as it is when ``take`` is None or names
    none of them."""
    from engine.query_markers import MARKER_TOLERANCE
    if take is None:
        return found
    name, at = take
    near = [(abs(t - at), i) for i, (t, n) in enumerate(found) if n == name and abs(t - at) <= MARKER_TOLERANCE]
    if not near:
        return found
    _, i = min(near)
    return [(float(at), n) if j == i else (t, n) for j, (t, n) in enumerate(found)]


def markers_text(stored: str, take: tuple[str, float] | None = None) -> str:
    """A file's named markers as its card lists them: the catalog's value (engine.markers,
    ``0:01.25 Door slam · 0:03.50 Creak``, to the hundredth; to the tenth in a catalog read before
    session 36) with each time as :func:`marker_text` writes it, ``1.25 s Door slam · 3.50 s Creak``
    (the badge of a marker a search found reads "at 1.25 s"; that marker, ``take``, at the badge's
    time: :func:`take_times`), every one a clock, ``0:03.20 Start · 1:01.50 Gate latch``, when the
    last reaches a minute (as :func:`span_text` writes a span); a value it cannot read, as stored."""
    found = take_times(parse_markers(stored), take)
    if not found:
        return stored
    as_clock = round(max(at for at, _ in found) * 100) >= 6000
    return MARKER_SEPARATOR.join(f"{clock(at) if as_clock else marker_text(at)} {name}" for at, name in found)


def with_marker_times(found: dict[str, str], take: tuple[str, float] | None = None) -> dict[str, str]:
    """A file's stored metadata (key → value) with its ``markers`` as :func:`markers_text` writes them
    (``take``: the marker a search named on the file, at its time)."""
    if not found.get("markers"):
        return found
    return {**found, "markers": markers_text(found["markers"], take)}
