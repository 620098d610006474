"""HTTP byte ranges (RFC 9110 §14): which part of an answer a ``Range`` header asks for.

A browser's ``<audio>`` element asks for parts of a long WAV (``Range: bytes=1048576-``) to seek
in it before it has all of it; ``soundsift serve`` answers them for ``/audio``. One range is
served; a header asking for several, for another unit, or not following the grammar is ignored
(the whole answer is sent, as RFC 9110 allows). :func:`etag_listed` reads ``If-None-Match``,
with which a browser revalidates what it keeps (304 when its ETag is listed).
"""
from __future__ import annotations

import re
from typing import NamedTuple

#: ``bytes=first-last``, ``bytes=first-`` or ``bytes=-suffix``, with optional white space
_ONE_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.IGNORECASE)


class ByteRange(NamedTuple):
    """Bytes ``first``–``last`` (inclusive, as in ``Content-Range``) of an answer of ``total``."""

    first: int
    last: int
    total: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def content_range(self) -> str:
        return f"bytes {self.first}-{self.last}/{self.total}"


class Unsatisfiable(Exception):
    """A range that starts past the end of the answer (416, ``Content-Range: bytes */total``)."""

    def __init__(self, header: str, total: int) -> None:
        super().__init__(f"the range {header.strip()!r} is outside the {total} bytes of this answer")
        self.total = total


def requested_range(header: str | None, total: int) -> ByteRange | None:
    """The one range ``header`` (a ``Range`` value) asks of an answer ``total`` bytes long; None
    for no header or one to ignore (the whole answer). A last byte past the end is the end; a
    range that starts past it, or an empty suffix, raises :class:`Unsatisfiable`."""
    if header is None:
        return None
    m = _ONE_RANGE.fullmatch(header)
    if m is None:                        # several ranges, another unit, or not the grammar
        return None
    first, last = m.group(1), m.group(2)
    if not first and not last:
        return None
    if not first:                        # the last N bytes
        suffix = int(last)
        if suffix == 0 or total == 0:
            raise Unsatisfiable(header, total)
        return ByteRange(max(0, total - suffix), total - 1, total)
    start = int(first)
    if last and int(last) < start:       # not a valid range: ignored
        return None
    if start >= total:
        raise Unsatisfiable(header, total)
    return ByteRange(start, min(int(last), total - 1) if last else total - 1, total)


def etag_listed(header: str | None, tag: str) -> bool:
    """Whether ``header`` (an ``If-None-Match`` value: ``*`` or a comma-separated list of ETags)
    names ``tag``, compared weakly (``W/"x"`` names ``"x"``) as RFC 9110 §13.1.2 says; False for
    no header."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    return any(_opaque(listed) == _opaque(tag) for listed in _ETAG.findall(header))


#: one entity tag in a list: optionally weak, then a quoted string (which may hold commas)
_ETAG = re.compile(r'(?:W/)?"[^"]*"')


def _opaque(tag: str) -> str:
    """An entity tag without its weakness indicator."""
    return tag.strip().removeprefix("W/")
