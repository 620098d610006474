"""FAISS searches of one snapshot: the top files (or segments) for query vectors, allowed
segments passed as an id selector, the probed IVF lists widened while they hold too few of them,
re-ranked where the index is compressed; and the stored vectors' best segment per file."""
from __future__ import annotations

import logging
import math
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from engine.query_snapshot import _Snapshot
from engine.rerank import candidates, rerank
from engine.vector_access import probe_range, search_parameters

#: the query layer's logger (engine.query's, as before these parts moved out of it)
log = logging.getLogger("engine.query")

#: CPU searches of at most this many query vectors (one: a text or sound query; ``similar``
#: searches with a file's segments) run on one FAISS (OpenMP) thread. At FAISS's default count
#: a flat index's one-query search waits on its OpenMP workers: 2 cores, 905-d, default ÷ one
#: thread 1.65–6 idle and 3.5 loaded at 40,000 vectors, 3.1 at 400,000, 2.6 with 4 threads
#: searching at once; IVF-Flat/SQ8 and 2,000 vectors alike (0.9–1.2). Batches of 8 were mixed
#: (0.5–16; flat 400,000 loaded 0.63), so they keep the default (benchmarks/faiss_threads.py)
ONE_THREAD_MAX_QUERIES = 1


@contextmanager
def one_omp_thread() -> Iterator[None]:
    """FAISS's parallel regions started by the calling thread use one thread, until the block
    ends. OpenMP's thread count (``omp_set_num_threads``) is a setting of the calling thread
    (libgomp keeps it per thread): the server's other searching threads, and indexing,
    duplicate finding or training elsewhere in the process keep their own count."""
    import faiss
    before = faiss.omp_get_max_threads()
    if before == 1:
        yield
        return
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class Scans:
    """What one query's FAISS scans of files learned: the most segments fetched and how many
    files they ranked for certain (:func:`rank_segments`). A later ranking of the same query on
    an exact index (a collapsed search asking for more, engine.query_copies.Rankings) starts
    from a fetch sized by that instead of by the library's average segments per file: near a
    query with copies each file holds several of the top segments, and a fetch sized by the
    average was scanned again, four times larger. (A search of segments fetches what it asks
    for: fetching more, to be told more, cost more than the third ranking it saved, 6 of 200
    searches at k 10, benchmarks/search_copies.py ``--segments``.)"""

    def __init__(self) -> None:
        self.fetched = 0            # the most segments one scan fetched
        self.certain = 0            # the files that scan ranked for certain

    def note(self, fetch: int, certain: int) -> None:
        """One scan fetched ``fetch`` segments that ranked ``certain`` files for certain."""
        if fetch > self.fetched:
            self.fetched, self.certain = fetch, certain

    def first_fetch(self, k: int, default: int) -> int:
        """The segments to fetch first for ``k`` files: four times those the largest scan so far
        fetched per file it ranked for certain (deeper, more of each file's segments rank
        ahead of the next file's best: 1.3 to 2.7 times as many at 20,350 files, 9 segments
        each near the query, benchmarks/search_copies.py), never fewer than ``default``."""
        if not self.fetched or self.certain >= k:
            return default
        return max(default, -(-4 * k * self.fetched // max(1, self.certain)))


def rank_segments(snap: _Snapshot, q: np.ndarray, k: int, per_file: bool,
                  allowed: np.ndarray | None, spare: bool = False,
                  scans: Scans | None = None) -> list[tuple[int, tuple[float, int]]]:
    """The top ``k`` (key, (score, segment id)) for the query vectors ``q``, best first, by
    their scores as FAISS gives them: keys are file ids (``per_file``: each file's best
    segment) or segment ids. ``allowed``: the sorted ids of the segments a filter keeps (None:
    every segment). ``spare``: also the keys after the top ``k`` that the segments fetched rank
    for certain (each scoring at least every segment not fetched), at no further cost.
    ``scans``: the query's scans so far (an exact index only), noted here and sizing the first
    fetch of files (:class:`Scans`)."""
    import faiss
    n_allowed = snap.ntotal
    if allowed is not None:
        n_allowed = len(allowed)
        selector = faiss.IDSelectorBatch(allowed)
    else:
        selector = None
    if n_allowed == 0 or snap.index is None:
        return []
    nprobe: int | None = None          # meta's, until the probed lists hold too few items
    search = searcher(snap, selector, n_allowed)
    if per_file:
        avg = max(1.0, len(snap.seg_ids) / max(1, snap.n_files))
        fetch = int(k * avg * 2) + 16
        fetch = min(n_allowed, scans.first_fetch(k, fetch) if scans is not None else fetch)
    else:
        fetch = min(n_allowed, k)
    while True:
        D, I, found, wanted = search(q, fetch)
        if found < wanted:     # the lists probed held fewer allowed items than needed
            wider = wider_probe(snap, nprobe, 4.0 if found == 0 else 1.25 * wanted / found)
            if wider is not None:
                nprobe = wider
                search = searcher(snap, selector, n_allowed, nprobe)
                continue
        keys, scores, ids = best_ranked(snap, D, I, per_file)
        # every unseen item scores ≤ the fetch-th score of each query
        full = I[:, -1] >= 0
        threshold = D[full, -1].max() if full.any() else -np.inf
        certain = int(np.count_nonzero(scores >= threshold))
        if scans is not None:
            scans.note(fetch, certain)
        if not per_file or certain >= k or fetch >= n_allowed:
            break
        fetch = min(n_allowed, fetch * 4)
    m = max(k, certain) if spare else k
    return list(zip(keys[:m].tolist(), zip(scores[:m].tolist(), ids[:m].tolist())))


def tuned_nprobe(snap: _Snapshot) -> tuple[int, int] | None:
    """``(nprobe, nlist)``: the lists an IVF index probes as tuned (meta's, else the
    file's) and all its lists; None for an index without lists."""
    probes = probe_range(snap.index)
    if probes is None:
        return None
    stored, nlist = probes
    return int(snap.params.get("nprobe") or stored), nlist


def wider_probe(snap: _Snapshot, nprobe: int | None, grow: float) -> int | None:
    """The next ``nprobe`` of an IVF index whose probed lists (``nprobe``; None: the tuned
    value) held too few allowed items: about ``grow`` × more (1.25–4×, at least one more),
    up to every list; None when the index has no lists or all were probed already.

    nprobe is tuned for recall on the whole index: a filter keeping few files (or a
    per-file search asking for many segments) can find too few of its items, or none, in
    the lists nearest the query, though more exist in the others."""
    tuned = tuned_nprobe(snap)
    if tuned is None:
        return None
    current, nlist = nprobe or tuned[0], tuned[1]
    if current >= nlist:
        return None
    return min(nlist, max(current + 1, math.ceil(current * min(4.0, max(1.25, grow)))))


def searcher(snap: _Snapshot, selector: Any, n_allowed: int, nprobe: int | None = None) -> Any:
    """``(queries, n) → (scores, ids, found, wanted)`` for this snapshot: GPU copy when
    unfiltered, else the CPU index with the id selector; re-ranked where the index wants it
    (from ``n · rerank`` candidates, at most ``n_allowed``). ``found``: the fewest items (or
    candidates to re-rank) the index gave a query; ``wanted``: how many it should have: ``n``,
    and for a filtered re-ranked search half the candidates the tuned nprobe's lists hold
    on average (the pool the tuning measured recall with; a filter keeping a share of the
    files finds that share of it in those lists). ``nprobe``: lists to probe instead of the
    tuned value (on the CPU copy). A CPU search of one query runs on one FAISS thread
    (:func:`one_omp_thread`)."""
    if selector is None and snap.gpu is not None and nprobe is None:
        def base(q: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
            with snap.gpu_lock:            # faiss GPU resources are not thread-safe
                return snap.gpu.search(q, n)
    else:
        params = search_parameters(snap.index, selector,
                                   snap.params if nprobe is None else {**snap.params, "nprobe": nprobe})

        def base(q: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
            if len(q) > ONE_THREAD_MAX_QUERIES:
                return snap.index.search(q, n, params=params)
            with one_omp_thread():
                return snap.index.search(q, n, params=params)
    factor = snap.rerank
    tuned = tuned_nprobe(snap) if factor and selector is not None else None
    # half the candidates the tuned lists hold on average: lists vary in size, and a filter
    # keeping most files should not probe more lists for that alone
    pool = math.ceil(tuned[0] * snap.ntotal / tuned[1] / 2) if tuned else 0

    def search(q: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, int, int]:
        if not factor:
            D, I = base(q, n)
            return D, I, int((I >= 0).sum(axis=1).min()), n
        cand = candidates(base, q, n, factor, limit=n_allowed)
        found = int((cand >= 0).sum(axis=1).min())
        return (*rerank(q, cand, snap.raw.vectors, n), found, max(n, min(cand.shape[1], pool)))
    return search


def best_ranked(snap: _Snapshot, D: np.ndarray, I: np.ndarray,
                per_file: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each key's (file id, or segment id) best score and its segment id among FAISS's
    ``D``, ``I`` (of any of the queries), best first, keys of one score by id: (keys, scores,
    segment ids) as arrays (no Python object per entry: 8-dim FAISS costs less than them)."""
    valid = I >= 0
    ids, scores = I[valid], D[valid]
    rows = np.minimum(snap.rows(ids), max(0, len(snap.seg_ids) - 1))
    known = snap.seg_ids[rows] == ids if len(snap.seg_ids) else np.zeros(len(ids), bool)
    if not known.all():   # vectors without a catalog row: never report a wrong file
        log.warning("ignoring %d vector ids missing from the catalog", int((~known).sum()))
        ids, scores, rows = ids[known], scores[known], rows[known]
    order = np.argsort(-scores, kind="stable")
    ids, scores, rows = ids[order], scores[order], rows[order]
    keys = snap.seg_file[rows] if per_file else ids
    _, first = np.unique(keys, return_index=True)
    first = first[np.lexsort((keys[first], -scores[first]))]
    return keys[first], scores[first], ids[first]


def best_segments(snap: _Snapshot, file_ids: np.ndarray, q: np.ndarray) -> dict[int, tuple[float, int]]:
    """file id → (best cosine with ``q``, its segment id), from the stored vectors."""
    mask = np.isin(snap.seg_file, file_ids)
    if not mask.any() or snap.index is None:
        return {}
    ids, files = snap.seg_ids[mask], snap.seg_file[mask]
    cos = snap.vectors(ids) @ q
    order = np.lexsort((-cos, files))                     # by file, best segment first
    keys, first = np.unique(files[order], return_index=True)
    return {int(f): (float(cos[order][i]), int(ids[order][i])) for f, i in zip(keys, first)}


def _describe(index: Any) -> str:
    """A short name of a FAISS index's structure, e.g. 'IDMap2,FlatIP'."""
    if index is None:
        return "empty"
    import faiss
    parts, cur = [], faiss.downcast_index(index)
    while cur is not None:
        parts.append(type(cur).__name__.removeprefix("Index"))
        inner = getattr(cur, "index", None)
        cur = faiss.downcast_index(inner) if inner is not None else None
    return ",".join(parts)
