"""How the readers of a file's metadata keep what it says, and say what they could not read.

A value is kept on one line (control characters as spaces: engine.text_encoding.one_line), cut
to :data:`MAX_VALUE` characters; where a block gives a key more than once, its first value wins
(:func:`_put_first`). What a reader leaves out of a file is said once (:func:`_report`): onto
the caller's list of problems, which says whose file it is, else as a warning naming the file,
logged as ``engine.file_metadata`` (where engine.file_metadata's readers have always logged it).
Used by engine.file_metadata, engine.markers, engine.ixml, engine.riff_metadata,
engine.aiff_metadata and engine.tag_comments.
"""
from __future__ import annotations

import logging
from pathlib import Path

from engine.text_encoding import one_line

log = logging.getLogger("engine.file_metadata")


#: longest value kept (characters)
MAX_VALUE = 2000


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


def _report(problems: list[str] | None, path: str | Path, reason: str) -> None:
    """``reason`` onto the caller's list (which says whose file it is), else a warning naming the file."""
    if problems is None:
        log.warning("%s: %s", path, reason)
    else:
        problems.append(reason)
