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
candidates until ``k`` recordings are certain (:func:`distinct_recordings`): how many, FAISS's
ranking tells before any hit is built (:func:`planned`: names of one recording score exactly
alike; on a flat index mostly from its first ranking, :class:`Rankings`), and each hit is built
once (:class:`HitsOnce`). A keyword search's copies that neither of its sides met are found by
their stored vectors (:func:`tied_segments`).
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np

from engine.keeper import is_copy_name
from engine.query_hits import _TIE, Hit
from engine.towers.cache import cached_file_sha256

log = logging.getLogger(__name__)


class SameRecording:
    """Tells which of some paths are one recording (hard links, byte-identical copies); each path
    is stat'ed and hashed at most once (one instance per search; digests outlive it:
    :func:`engine.towers.cache.cached_file_sha256`)."""

    def __init__(self) -> None:
        self._stat: dict[str, os.stat_result | None] = {}
        self._digest: dict[str, str | None] = {}
        self.read = 0               # digests looked up (read unless the process keeps them; for tests)

    def _file(self, path: str) -> tuple[int, int, int] | None:
        """``path``'s (device, inode, size), stat'ed once (None, logged, where it cannot be)."""
        if path not in self._stat:
            try:
                self._stat[path] = os.stat(path)
            except OSError as e:
                log.warning("%s: cannot be compared with the hits it ties with (%s); listed as a hit of "
                            "its own", path, e.strerror or e)
                self._stat[path] = None
        st = self._stat[path]
        return None if st is None else (st.st_dev, st.st_ino, st.st_size)

    def _sha256(self, path: str) -> str | None:
        """``path``'s SHA-256 (kept digests found by its stat here), None (logged) where unread."""
        if path not in self._digest:
            try:
                self._digest[path] = cached_file_sha256(path, self._stat.get(path))
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


#: one entry of a ranking: (key: file id, or segment id; (score, segment id))
Ranked = tuple[int, tuple[float, int]]


class HitsOnce:
    """The hits of a ranking that grows from round to round (:func:`distinct_recordings`), each
    entry built once: ``build`` (a ranking's hits, with their catalog lookups; an entry it drops,
    a file the catalog lost, is no hit) runs only on the entries no earlier round had. ``per_file``:
    a hit is its entry's by file id, else by segment id (``build`` may move a hit to another
    segment of its file: a keyword search's marker)."""

    def __init__(self, build: Callable[[list[Ranked]], list[Hit]], per_file: bool = True) -> None:
        self._build = build
        self._per_file = per_file
        self._hits: dict[Ranked, Hit | None] = {}

    def __call__(self, top: Sequence[Ranked]) -> list[Hit]:
        """The hits of ``top``, in its order."""
        new = list(dict.fromkeys(e for e in top if e not in self._hits))
        if new:
            made = {h.file_id if self._per_file else h.segment_id: h for h in self._build(new)}
            self._hits.update((e, made.get(e[0])) for e in new)
        return [h for h in (self._hits[e] for e in top) if h is not None]


class Rankings:
    """A search's rankings by length (``rank(n)``: its top ``n`` entries, best first), each
    asked once. ``exact``: the index ranks exactly (:func:`exact_ranking`) and ``rank(n)`` may
    give more than ``n`` (the entries FAISS's ranking of ``n`` tells for certain,
    engine.query_faiss.rank_segments ``spare``): a ranking is then cut from one asked before
    where that holds enough entries, or fewer than were asked for (every entry there is), and a
    top ``k`` full of copies (:func:`planned` asks for more) is mostly ranked once: :meth:`told`
    gives :func:`planned` every entry a ranking knows, so it takes the fewest that hold ``k``
    recordings where they are known rather than asking FAISS for a longer guess. Where it must
    ask again, ``rank`` sizes that ranking's fetch from what the first one's scans learned
    (engine.query_faiss.Scans: one FAISS scan, not a small one and a fourfold one)."""

    def __init__(self, rank: Callable[[int], list[Ranked]], exact: bool = False) -> None:
        self._rank = rank
        self._exact = exact
        self._by_length: dict[int, list[Ranked]] = {}       # asked for → given
        self.asked: list[int] = []          # the lengths asked of ``rank``, in order (for tests)

    def __call__(self, n: int) -> list[Ranked]:
        """The top ``n`` entries."""
        return self.told(n)[:n]

    def told(self, n: int) -> list[Ranked]:
        """The top ``n`` entries and, where the index is exact, those after them that the ranking
        serving them told for certain (none asked of FAISS for them)."""
        if n not in self._by_length and self._exact:
            for asked, got in self._by_length.items():
                if len(got) >= n or len(got) < asked:
                    return got
        if n not in self._by_length:
            self.asked.append(n)
            self._by_length[n] = self._rank(n)
        return self._by_length[n] if self._exact else self._by_length[n][:n]


def exact_ranking(snap: Any) -> bool:
    """Whether the snapshot ``snap`` ranks exactly on the CPU: a flat index (no inverted lists to
    probe, no GPU copy), scores straight from FAISS (not re-ranked). Its top ``n``
    (engine.query_faiss.rank_segments) then hold every key that scores above the ``n``-th, as
    the first ``n`` of its top ``m > n`` do: the two differ at most in which keys tied with the
    ``n``-th they hold (FAISS keeps any of equal scores), where no collapsed search stops (it asks
    for more while its last candidate ties with a recording it returns, :func:`distinct_recordings`)."""
    from engine.vector_access import probe_range
    return snap.index is not None and probe_range(snap.index) is None and not snap.rerank and snap.gpu is None


def _more(scores: Sequence[float], recordings: int, n: int, k: int) -> int:
    """How many candidates to ask for after ``n`` (scoring ``scores``, best first) held
    ``recordings``: short of ``k``, as many more as the copies found so far suggest (at least
    twice as many); else (the last candidate ties with the ``k``-th recording: more of its names
    may follow) ``n`` and twice the candidates tied with the last, at least ``k + 1`` more."""
    if recordings < k:
        return max(2 * n, -(-n * (k + 1) // max(1, recordings)) * 5 // 4)
    tied = sum(1 for s in scores if abs(s - scores[-1]) <= _TIE)
    return n + max(k + 1, 2 * tied)


def _enough(found: Sequence[tuple[float, float, float]], k: int) -> int | None:
    """The fewest of ``found`` ((score, start, end), best first) whose top holds ``k`` that
    differ, the last scoring below the ``k``-th (:func:`planned`); None where all do not."""
    differ: dict[tuple[float, float, float], None] = {}
    kth: float | None = None
    for m, entry in enumerate(found, 1):
        if kth is None:
            differ.setdefault(entry)
            if len(differ) == k:
                kth = entry[0]
        elif entry[0] < kth - _TIE:
            return m
    return None


def planned(rank: Callable[[int], Sequence[tuple[float, float, float]]], k: int) -> int:
    """How many candidates :func:`distinct_recordings` starts from, told by the ranking alone,
    before any hit is built: ``n`` grows from ``k + 1`` as there (:func:`_more`) until the top
    ``n`` of ``rank(n)`` ((score, start, end), best first) hold ``k`` that differ (names of one
    recording share its vectors, so one ranking scores them exactly alike: more than one may be
    one recording only where all three are equal), the last scoring below the ``k``-th, or
    ``rank`` has no more. ``rank(n)`` may also give entries after the top ``n`` that it knows
    (:meth:`Rankings.told`): the fewest of them that hold enough are then taken without asking
    for more. Without copies: ``k + 1``, as before; a guess, never a decision (each round checks
    the hits themselves)."""
    n = k + 1
    while True:
        found = rank(n)
        if len(found) < n:
            return n
        enough = _enough(found, k)
        if enough is not None:
            return max(n, enough)
        top = found[:n]
        n = _more([score for score, _, _ in top], len(dict.fromkeys(top)), n, k)


def distinct_recordings(search: Callable[[int], list[Hit]], k: int, first: Sequence[int] = (),
                        by_score: bool = True, extra: Sequence[Hit] = (), start: int | None = None) -> list[Hit]:
    """The top ``k`` recordings: ``search(n)`` (the top ``n`` hits) collapsed
    (:func:`collapse_copies`), ``n`` growing from ``start`` (default ``k + 1``; :func:`planned`
    tells one from the ranking) until ``k`` recordings are found and, for hits ranked
    ``by_score``, the last candidate scores below the ``k``-th recording (so none of its copies
    is left unseen), or the search has no more candidates (:func:`_more`). One
    :class:`SameRecording` serves every round (a ``search`` that builds each hit once:
    :class:`HitsOnce`)."""
    same = SameRecording()
    n = max(k + 1, start or 0)
    while True:
        hits = search(n)
        kept = collapse_copies(hits, same, first, extra, k)
        if len(hits) < n or (len(kept) >= k and (not by_score or hits[-1].score < kept[k - 1].score - _TIE)):
            return kept
        n = _more([h.score for h in hits], len(kept), n, k)


def tied_segments(snap: Any, seg: int, allowed: np.ndarray | None, limit: int = 4096) -> list[int]:
    """The segments of the snapshot ``snap`` at segment ``seg``'s span (the same start and end;
    of those ``allowed``: sorted ids a filter keeps; None: all) whose stored vectors are
    ``seg``'s own (scoring against it as it does itself, within :data:`_TIE`): a copy's, the
    indexer gives it the first name's segments and vectors; ``seg`` among them. Read from the
    stored vectors where at most ``limit`` segments share the span, else FAISS's ranking among
    them (engine.query_faiss.rank_segments), more asked for while all it gave tie. Empty where
    ``allowed`` leaves ``seg`` out."""
    from engine.query_faiss import rank_segments
    row = snap.rows(np.array([seg], dtype=np.int64))[0]
    ids = snap.seg_ids[(snap.seg_start == snap.seg_start[row]) & (snap.seg_end == snap.seg_end[row])]
    if allowed is not None:
        ids = ids[np.isin(ids, allowed)]
    if seg not in ids:
        return []
    vector = snap.vectors(np.array([seg], dtype=np.int64))
    if len(ids) <= limit:
        scores = snap.vectors(ids).astype(np.float64) @ vector[0].astype(np.float64)
        return ids[np.abs(scores - scores[ids == seg][0]) <= _TIE].tolist()
    n = 16
    while True:
        top = dict((key, score) for key, (score, _) in rank_segments(snap, vector, n, False, ids))
        if seg in top:
            tied = [key for key, score in top.items() if abs(score - top[seg]) <= _TIE]
            if len(top) < n or len(tied) < n:
                return tied
        elif len(top) < n:          # an approximate index that does not find it
            return []
        n *= 4                      # all tie, or more tie with it than were asked for


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
