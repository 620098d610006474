"""One hit per recording: hits that are one recording under several names collapse into one,
which lists the others as its ``copies``.

Two hits are one recording only where that is certain, never from their scores alone: names of
one file on disk (hard links: the same device and inode) or files of the same size whose bytes
are all the same (SHA-256, engine.towers.cache.cached_file_sha256). Only hits that already tie on
duration, matched span and score (within :data:`engine.query_hits._TIE`, the rounding of
identical vectors: the indexer gives copies the first name's vectors, indexer.same_file) are
looked at, are stat'ed, and only those of them that share a size with another file on disk are
hashed, each at most once per search (:class:`SameRecording`) and read only the first time in
the process while the file is unchanged (the digest is kept by path, device, inode, size, mtime
and ctime: the page and the HTTP server search again and again). A hit that cannot be stat'ed
or read stays a hit of its own (logged).

Which name leads: the first in the search's order, unless it is marked as a copy
(engine.keeper.is_copy_name: ``x (1).wav``, ``Copy of x.wav`` …) and another is not; a file
searched by ("more like this") always leads its own recording. The search asks for more
candidates until ``k`` recordings are certain (:func:`distinct_recordings`).
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import replace
from typing import Callable, Sequence

from engine.keeper import is_copy_name
from engine.query_hits import _TIE, Hit
from engine.towers.cache import cached_file_sha256

log = logging.getLogger(__name__)


class SameRecording:
    """Tells which of some paths are one recording (hard links, byte-identical copies); each path
    is stat'ed and hashed at most once (one instance per search; digests outlive it:
    :func:`engine.towers.cache.cached_file_sha256`)."""

    def __init__(self) -> None:
        self._stat: dict[str, tuple[int, int, int] | None] = {}   # path → (device, inode, size)
        self._digest: dict[str, str | None] = {}
        self.read = 0               # digests looked up (read unless the process keeps them; for tests)

    def _file(self, path: str) -> tuple[int, int, int] | None:
        if path not in self._stat:
            try:
                st = os.stat(path)
                self._stat[path] = (st.st_dev, st.st_ino, st.st_size)
            except OSError as e:
                log.warning("%s: cannot be compared with the hits it ties with (%s); listed as a hit of "
                            "its own", path, e.strerror or e)
                self._stat[path] = None
        return self._stat[path]

    def _sha256(self, path: str) -> str | None:
        if path not in self._digest:
            try:
                self._digest[path] = cached_file_sha256(path)
                self.read += 1
            except OSError as e:
                log.warning("%s: its bytes cannot be read to compare it with the hits it ties with (%s); "
                            "listed as a hit of its own", path, e.strerror or e)
                self._digest[path] = None
        return self._digest[path]

    def groups(self, paths: Sequence[str]) -> list[list[int]]:
        """Positions of ``paths`` grouped into recordings, in order (each group ascending, groups
        by their first position); a path that cannot be stat'ed or read is a group of its own."""
        by_inode: dict[tuple[int, int], list[int]] = {}     # names of one file on disk
        size_of: dict[tuple[int, int], int] = {}
        apart: list[list[int]] = []                         # groups no other file joins
        for i, path in enumerate(paths):
            found = self._file(path)
            if found is None:
                apart.append([i])
                continue
            by_inode.setdefault(found[:2], []).append(i)
            size_of[found[:2]] = found[2]
        shared = Counter(size_of.values())
        by_bytes: dict[tuple[int, str], list[int]] = {}
        for inode, names in by_inode.items():
            size = size_of[inode]
            digest = self._sha256(paths[names[0]]) if shared[size] > 1 else None
            if digest is None:
                apart.append(names)
            else:
                by_bytes.setdefault((size, digest), []).extend(names)
        return sorted([sorted(g) for g in (*by_bytes.values(), *apart)], key=lambda g: g[0])


def _ties(hits: Sequence[Hit]) -> list[list[int]]:
    """Positions of ``hits`` grouped by duration, matched span and score (within :data:`_TIE`):
    the only hits that may be one recording; groups of one left out."""
    buckets: dict[tuple[float, float, float], list[list[int]]] = {}
    for i, h in enumerate(hits):
        same_span = buckets.setdefault((h.duration, h.start, h.end), [])
        for tie in same_span:
            if abs(hits[tie[0]].score - h.score) <= _TIE:
                tie.append(i)
                break
        else:
            same_span.append([i])
    return [tie for ties in buckets.values() for tie in ties if len(tie) > 1]


def _leader(hits: Sequence[Hit], group: list[int], first: Sequence[int]) -> int:
    """The position of the hit that leads the recording ``group``: a file searched by (of
    ``first``), else the first whose name is not marked as a copy, else the first."""
    for wanted in first:
        for i in group:
            if hits[i].file_id == wanted:
                return i
    return next((i for i in group if not is_copy_name(hits[i].path)), group[0])


def collapse_copies(hits: Sequence[Hit], same: SameRecording, first: Sequence[int] = (),
                    extra: Sequence[Hit] = (), k: int | None = None) -> list[Hit]:
    """``hits`` with each recording once, at the place of its first hit, its leader
    (:func:`_leader`) listing the other names as ``copies`` (in the hits' order), with the best
    ``keywords`` (BM25) of its names: the words that placed it may be in a copy's name. ``extra``:
    more candidates (a keyword search's sound side) only ever listed as copies of a hit, never
    hits. ``k``: only the first ``k`` recordings are wanted (ties after them are not looked at)."""
    given = list(hits)
    known = {(h.file_id, h.segment_id) for h in given}
    pool = given + [h for h in extra if (h.file_id, h.segment_id) not in known]
    ties = _ties(pool)
    tie_of = {i: t for t, tie in enumerate(ties) for i in tie}
    lead: dict[int, list[int]] = {}                 # a group's first hit's position → the group
    dropped: set[int] = set()
    out: list[Hit] = []
    for i, h in enumerate(given):
        if k is not None and len(out) >= k:
            break
        if (t := tie_of.pop(i, None)) is not None and ties[t]:
            for group in same.groups([pool[j].path for j in ties[t]]):
                members = [ties[t][j] for j in group]
                shown = [m for m in members if m < len(given)]
                if len(members) > 1 and shown:
                    lead[shown[0]] = members
                    dropped.update(members)
            ties[t] = []                            # looked at once
        if i in lead:
            members = lead[i]
            head = _leader(pool, members, first)
            words = [pool[m].keywords for m in members if pool[m].keywords is not None]
            out.append(replace(pool[head], copies=[pool[m].path for m in members if m != head],
                               keywords=max(words) if words else pool[head].keywords))
        elif i not in dropped:
            out.append(h)
    return out


def distinct_recordings(search: Callable[[int], list[Hit]], k: int, first: Sequence[int] = (),
                        by_score: bool = True, extra: Sequence[Hit] = ()) -> list[Hit]:
    """The top ``k`` recordings: ``search(n)`` (the top ``n`` hits) collapsed
    (:func:`collapse_copies`), ``n`` growing from ``k + 1`` until ``k`` recordings are found and,
    for hits ranked ``by_score``, the last candidate scores below the ``k``-th recording (so none
    of its copies is left unseen), or the search has no more candidates. One
    :class:`SameRecording` serves every round."""
    same = SameRecording()
    n = k + 1
    while True:
        hits = search(n)
        kept = collapse_copies(hits, same, first, extra, k)
        if len(hits) < n or (len(kept) >= k and (not by_score or hits[-1].score < kept[k - 1].score - _TIE)):
            return kept
        # short of k: as many more as the copies found so far suggest (at least twice as many)
        n = max(2 * n, -(-n * (k + 1) // max(1, len(kept))) * 5 // 4)


def led_by(own: Hit, hits: Sequence[Hit], is_own: Callable[[Hit], bool]) -> list[Hit]:
    """``own`` (the file searched by) ahead of ``hits``, without those ``is_own`` says are its own
    (they give it their copies); a hit whose recording holds ``own`` (it lists ``own`` among its
    copies) gives ``own`` its other names."""
    rest: list[Hit] = []
    copies: list[str] = list(own.copies)
    for h in hits:
        if is_own(h):
            copies += [c for c in h.copies if c not in copies]
        elif own.path in h.copies:
            copies += [p for p in (h.path, *h.copies) if p != own.path and p not in copies]
        else:
            rest.append(h)
    return [replace(own, copies=copies), *rest]
