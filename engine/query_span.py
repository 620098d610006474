"""A query's span against its audio's length: an end past the audio's end is cut to that end,
with a note saying so (``soundsift similar --end``, the HTTP API's ``/similar`` and ``/audio``
``end``), and
times as the CLI, the page and the notes write them (:func:`clock`)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from engine.query import SoundIndex

log = logging.getLogger(__name__)

#: seconds an end may lie past the audio's end unremarked (times are shown to the hundredth)
END_SLACK = 0.005


class SpanEnd(NamedTuple):
    """Where a query's span ends: ``end`` to search by (None: the audio's end), ``shown`` to
    show (the audio's length when cut), and the ``note`` saying it was cut (None when not)."""

    end: float | None
    shown: float | None
    note: str | None


def clock(seconds: float) -> str:
    """``m:ss.ff``, or ``h:mm:ss.ff`` from an hour on, as matches are shown (and --start/--end
    read them); rounded to the hundredth first, so 59.999 s is ``1:00.00``, not ``0:60.00``."""
    hundredths = int(round(max(0.0, seconds) * 100))
    m, s = divmod(hundredths, 6000)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s / 100:05.2f}" if h else f"{m}:{s / 100:05.2f}"


def cut_to_length(name: str, start: float | None, end: float | None, seconds: float | None,
                  end_param: str = "end", then: str = "more like") -> SpanEnd:
    """The span ``start``–``end`` of the audio ``name`` (``seconds`` long; None: not known) as
    searched: an ``end`` past its end is cut to its end, and the note says so, calling the end
    ``end_param`` (``--end`` on the command line) and the span kept ``then`` it (``more like``
    for a search; ``sending`` for the HTTP API's ``/audio``). A start past the end is left to
    the search, which refuses it; an unknown length leaves the span as given."""
    if end is None or seconds is None or end <= seconds + END_SLACK or (start or 0.0) >= seconds:
        return SpanEnd(end, end, None)
    return SpanEnd(None, seconds, f"{name} is {clock(seconds)} long, so {end_param} {clock(end)} is past its end: "
                                  f"{then} {clock(start or 0.0)}–{clock(seconds)}")


def file_seconds(index: SoundIndex, path_or_file_id: str | Path | int) -> float | None:
    """The length in seconds of a file to search ``index`` by: an indexed one's as its catalog
    holds it (a path or file id), any other's from its header; None when that cannot be read
    (the search that follows says why)."""
    from engine.audio import probe
    from engine.errors import UnreadableAudio
    file_id = path_or_file_id if isinstance(path_or_file_id, int) else index.file_id_for_path(path_or_file_id)
    if file_id is not None:
        return float(index.get_file(file_id)["duration"])
    if not Path(path_or_file_id).is_file():
        return None
    try:
        return probe(path_or_file_id).duration
    except UnreadableAudio as e:
        log.debug("%s: no length from its header (%s); the search reads it", path_or_file_id, e)
        return None
