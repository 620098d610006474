"""Named markers on hits: a hit that is the take a file's named marker begins is named after
it, and a keyword search moves a hit to the segment around a marker its words name."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sqlalchemy.engine import Connection

from engine.catalog import stored_metadata
from engine.query_hits import Hit, _reported
from engine.query_snapshot import _Snapshot

#: seconds between a stored marker time and the start of the take it begins: stored to the
#: hundredth since session 36, to 0.1 s in a catalog no index run has re-read since (engine.markers)
MARKER_TOLERANCE = 0.06


def _markers_of(fields: dict[int, dict[str, str]]) -> dict[int, list[tuple[float, str]]]:
    """File id → its named markers ((seconds, name), in time order; engine.markers.
    parse_markers) from :func:`engine.catalog.stored_metadata`' rows, for the files that have some."""
    from engine.markers import parse_markers
    return {fid: parse_markers(f["markers"]) for fid, f in fields.items() if f.get("markers")}


def _stored_markers(conn: Connection, file_ids: Sequence[int]) -> dict[int, list[tuple[float, str]]]:
    """File id → its named markers as the catalog stored them, for the files that have some."""
    return _markers_of(stored_metadata(conn, file_ids, ("markers",)))


def name_takes(snap: _Snapshot, hits: list[Hit], found: dict[int, list[tuple[float, str]]]) -> None:
    """A hit that is the take one of its file's named markers (``found``: file id → (seconds,
    name)) begins (engine.segments.take_bounds: the shortest of the file's segments starting
    at the marker; a regular window there is the take only when no shorter segment starts
    there) gets that marker's name and time."""
    for h in hits:
        near = [(abs(at - h.start), at, name) for at, name in found.get(h.file_id, [])
                if abs(at - h.start) <= MARKER_TOLERANCE]
        if not near:
            continue
        same_start = (snap.seg_file == h.file_id) & (np.abs(snap.seg_start - h.start) < 1e-6)
        if h.end <= float(snap.seg_end[same_start].min()) + 1e-6:
            _, _, h.marker = min(near)      # the take's start is the marker's time to the sample
            h.marker_at = h.start


def score_exactly(snap: _Snapshot, hits: Sequence[Hit], q: np.ndarray, cosine: bool = True) -> None:
    """Each hit's score: its segment's stored vector · ``q``, in float64 (:func:`_reported`), so
    hits of identical vectors score alike however they were found: FAISS's scores are an SQ8/PQ
    index's approximations, and even a flat one rounds its sums otherwise than numpy, which an
    excluded text's large scores carry past the copies' tie (1e-6)."""
    if not hits:
        return
    scores = snap.vectors(np.array([h.segment_id for h in hits], dtype=np.int64)).astype(np.float64) \
        @ np.asarray(q, dtype=np.float64)
    for h, score in zip(hits, scores.tolist()):
        h.score = _reported(score, cosine)


def place_at_markers(conn: Connection, snap: _Snapshot, hits: list[Hit], text: str, q: np.ndarray,
                     cosine: bool = True) -> None:
    """Hits whose file has a named marker sharing words with ``text`` (a word written
    together counting as its parts: "GATELATCH" for "gate latch") move to the segment
    around that marker (the one whose middle is nearest it; the most words in common, then the
    earliest marker), with that segment's cosine as score (:func:`score_exactly`)."""
    from engine.keywords import terms_with_parts
    wanted = terms_with_parts(text, join=True)      # "gate latch" also as gatelatch
    if not hits or not wanted:
        return
    found = _stored_markers(conn, [h.file_id for h in hits])
    for h in hits:
        scored = [(len(wanted & terms_with_parts(name)), -at, name) for at, name in found.get(h.file_id, [])]
        if not scored or max(scored)[0] == 0:
            continue
        _, minus_at, name = max(scored)
        at = -minus_at
        mask = snap.seg_file == h.file_id
        ids, starts, ends = snap.seg_ids[mask], snap.seg_start[mask], snap.seg_end[mask]
        around = (starts <= at + MARKER_TOLERANCE) & (at <= ends)
        if not around.any():                # a marker past the audio (a file changed since)
            continue
        at_take = around & (np.abs(starts - at) <= MARKER_TOLERANCE)     # the take it starts:
        if at_take.any():                   # the shortest segment starting there
            cand = np.flatnonzero(at_take)
            i = int(cand[np.lexsort((ends[cand], np.abs(starts[cand] - at)))[0]])
        else:
            i = int(np.flatnonzero(around)[np.argmin(np.abs((starts + ends)[around] / 2 - at))])
        h.start, h.end, h.segment_id = float(starts[i]), float(ends[i]), int(ids[i])
        score_exactly(snap, [h], q, cosine)
        h.marker, h.marker_at = name, float(starts[i]) if at_take.any() else float(at)
