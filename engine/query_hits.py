"""What a search answers: :class:`Hit` (a file and its best-matching span), :class:`FileVectors`
(one vector per file) and how a hit's score is reported and the query file placed among ties."""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from engine.file_metadata import CUT_SHORT_KEY

log = logging.getLogger(__name__)


@dataclass
class Hit:
    """One search result: a file and its best-matching span (seconds).

    ``score``: the cosine of the query and the matched segment, in [-1, 1] (:func:`_reported`);
    a text search with excluded sounds scores cos − weight · Σ cos instead, which can pass 1."""

    path: str
    start: float
    end: float
    score: float
    file_id: int
    segment_id: int
    duration: float
    format: str
    sample_rate: int
    folder: str = field(default="")
    keywords: float | None = None     # BM25 of the query's words in its path, metadata, tags, captions
    same_recording: bool | None = None   # "more like this": the query's recording (engine.duplicates.copies_of)
    marker: str | None = None         # the named marker of the take the hit is (a segment starting at it),
    marker_at: float | None = None    # or one the query's words found (keyword search); its time (seconds)
    about: str | None = None          # what the file says it is, or a library sheet says of it (one line)
    missing: bool | None = None       # True: not on disk now (moved without relocate, an unmounted drive)
    header_duration: float | None = None   # a file cut short when indexed: the seconds its header says
    copies: list[str] = field(default_factory=list)   # other names of this recording (engine.query_copies)
    size: int | None = None           # the file as it was indexed: bytes and modification time (ns), the
    mtime_ns: int | None = None       # state the indexer compares (engine.file_state); export checks it

    def __post_init__(self) -> None:
        if not self.folder:
            self.folder = os.path.dirname(self.path)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: path, start, end, score, file_id, segment_id, duration, format, …
        (``keywords`` only from a keyword search, ``same_recording`` only where it was checked,
        ``marker`` and ``marker_at`` only where the hit is a marked take or a keyword search found
        a named marker, ``about`` only where the file or a library sheet describes it, ``missing``
        only for a file not on disk now, ``header_duration`` only for a file cut short (its audio,
        ``duration``, ends before the seconds its header says); ``copies`` always: the other names
        of its recording, hard links and byte-identical copies, that the search collapsed into it,
        ``[]`` when none).
        ``size`` and ``mtime_ns`` are not in it: they are what export checks the file against."""
        d = asdict(self)
        del d["size"], d["mtime_ns"]
        for optional in ("keywords", "same_recording", "marker", "marker_at", "about", "missing", "header_duration"):
            if d[optional] is None:
                del d[optional]
        return d


def header_seconds(value: str | None) -> float | None:
    """A cut-short file's stored header duration (engine.file_metadata.CUT_SHORT_KEY row) in
    seconds, as :attr:`Hit.header_duration` and a file record (engine.query_catalog.get_file) give
    it; None for a whole file, or a row that is not a number (said in the log, not raised)."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        log.warning("a stored %s of %r is not a number: left out", CUT_SHORT_KEY, value)
        return None


@dataclass
class FileVectors:
    """One unit vector per file (mean of its segment vectors), for maps of the library, with
    each file's duration (seconds) and size (bytes) as the catalog has them."""

    file_ids: np.ndarray
    paths: list[str]
    vectors: np.ndarray
    durations: np.ndarray
    sizes: np.ndarray


#: scores this close count as a tie (float rounding of identical vectors)
_TIE = 1e-6


def _reported(score: float, cosine: bool) -> float:
    """A hit's score as it is reported (table, --json, the HTTP API, the page): with ``cosine``,
    ``score`` clamped to [-1, 1].

    ``cosine``: the query is unit vectors, as the stored ones are, so every score is a cosine,
    which cannot leave [-1, 1]; float rounding takes it past 1 all the same (float32 inner
    products of normalised vectors: 1.0000001 for a file found by its own vectors; float16 or
    SQ8-rounded stored vectors by up to about 1e-3), and a cosine over 1 reads as a bug. The
    clamp is applied once the hits are ranked, so the order stays the one the unclamped scores
    gave (ties, and the query file's place among them, are :func:`_query_file_first`'s).
    Without ``cosine`` (a text search with excluded sounds scores cos − weight · Σ cos, which
    may lie past ±1 without any rounding) the score is left as it is."""
    return min(1.0, max(-1.0, score)) if cosine else score


def _query_file_first(hits: list[Hit], file_id: int) -> list[Hit]:
    """``hits`` with the query file's own hit ahead of the hits it ties with (a byte-identical
    copy scores 1.000 too, and FAISS orders ties by id), so "more like this" starts with itself."""
    for i, hit in enumerate(hits):
        if hit.file_id == file_id:
            first = next(j for j, h in enumerate(hits) if h.score <= hit.score + _TIE)
            return hits[:first] + [hit] + hits[first:i] + hits[i + 1:]
    return hits
