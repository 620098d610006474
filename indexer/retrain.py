"""Rebuilding the vectors of an index as the type engine.index_choice picks, and tuning it.

Raw vectors are needed to train and fill a new index. Where they come from:

* an exact index (``IDMap2,Flat`` or ``IVF…,Flat``) holds them itself, bit for bit;
* a lossy one (``IVF…,SQ8``, ``OPQ…,IVF…,PQ…``) does not, so each generation of such an
  index keeps a *sidecar* ``vectors-<gen>.raw.npy`` beside its FAISS file: one structured
  numpy array of (segment id int64, vector float16), read memory-mapped, updated by
  streaming the previous sidecar minus removed ids plus new rows. float16 costs
  2·dim + 8 bytes per vector (1032 B at 512-d, half of float32) and its rounding error
  (≈3e-4 relative) is far below what SQ8/PQ lose, so retraining from it loses nothing
  that matters; exact indexes never read it.

After a (re)build, and at every commit that changes the vectors of an IVF index,
``nprobe`` is set by measurement: a seeded sample of the index's own vectors is
searched, exact top-10 comes from brute force over the raw vectors (each query's match
with itself is left out on both sides: it would inflate recall by up to 0.1), and
:func:`engine.index_choice.tune_nprobe` picks the smallest nprobe reaching recall@10 ≥ 0.95
(plus ``TUNING_MARGIN``). At a commit that does not rebuild, the previous params are measured
first and kept while they reach the target; when they miss, nprobe grows from them. PQ
indexes are searched with exact re-ranking from the sidecar (engine.rerank), so
:func:`engine.index_choice.tune_reranked` picks nprobe *and* the re-rank factor by the
recall of the re-ranked search.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterator

import faiss
import numpy as np

from engine.index_choice import (TARGET_RECALL, TUNING_MARGIN, IndexChoice, warm_start,
                                 recall_at_k, tune_nprobe, tune_reranked)
from engine.rerank import sidecar_path
from engine.durable import replace_durably
from engine.vectors import gpu_count

log = logging.getLogger(__name__)

LOSSY_KINDS = frozenset({"ivf-sq8", "opq-ivf-pq"})
#: kinds searched with exact re-ranking from the sidecar (engine.rerank): PQ alone ranks
#: too coarsely to reach recall@10 ≥ 0.95 (≈ 0.22 at 200k × 512 with 64 B codes)
RERANKED_KINDS = frozenset({"opq-ivf-pq"})
CHUNK = 65536
TUNE_QUERIES = 256
K = 10
#: when a previous commit's nprobe misses: grow it by this factor per step (not 2×) and stop the
#: bisection within this fraction above the smallest nprobe that reaches the target (not at it)
WARM_GROWTH, WARM_TOLERANCE = 1.25, 0.05


class RawVectors:
    """Every vector of an index with its id, readable in chunks or by row."""

    def __init__(self, ids: np.ndarray, dim: int) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        self.dim = int(dim)

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, a: int, b: int) -> np.ndarray:
        """float32 vectors of rows a..b."""
        raise NotImplementedError

    def take(self, rows: np.ndarray) -> np.ndarray:
        """float32 vectors of the given (sorted) rows."""
        return np.concatenate([self.rows(int(r), int(r) + 1) for r in rows]) if len(rows) else \
            np.zeros((0, self.dim), np.float32)

    def chunks(self, size: int = CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, float32 vectors) in order, ``size`` rows at a time."""
        for a in range(0, len(self), size):
            b = min(len(self), a + size)
            yield self.ids[a:b], self.rows(a, b)


class _ArrayVectors(RawVectors):
    def __init__(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        super().__init__(ids, vectors.shape[1])
        self.vectors = vectors

    def rows(self, a: int, b: int) -> np.ndarray:
        return np.ascontiguousarray(self.vectors[a:b], dtype=np.float32)

    def take(self, rows: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(self.vectors[np.asarray(rows, np.int64)], dtype=np.float32)


class _FlatVectors(RawVectors):
    """The storage of an ``IDMap2,Flat`` index (no copy until a chunk is asked for)."""

    def __init__(self, idmap: Any) -> None:
        self.inner = faiss.downcast_index(idmap.index)
        super().__init__(faiss.vector_to_array(idmap.id_map), self.inner.d)

    def rows(self, a: int, b: int) -> np.ndarray:
        return self.inner.reconstruct_n(a, b - a) if b > a else np.zeros((0, self.dim), np.float32)

    def take(self, rows: np.ndarray) -> np.ndarray:
        rows = np.ascontiguousarray(rows, dtype=np.int64)
        return self.inner.reconstruct_batch(rows) if len(rows) else np.zeros((0, self.dim), np.float32)


class _IVFFlatVectors(RawVectors):
    """The inverted lists of an ``IVF…,Flat`` index, read list by list (no full copy)."""

    def __init__(self, ivf: Any) -> None:
        self.inv = ivf.invlists
        self.sizes = np.array([self.inv.list_size(i) for i in range(ivf.nlist)], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)])
        ids = [faiss.rev_swig_ptr(self.inv.get_ids(i), int(n)).copy()
               for i, n in enumerate(self.sizes) if n]
        super().__init__(np.concatenate(ids) if ids else np.zeros(0, np.int64), ivf.d)

    def _list(self, lst: int) -> np.ndarray:
        n = int(self.sizes[lst])
        codes = faiss.rev_swig_ptr(self.inv.get_codes(lst), n * self.inv.code_size)
        return codes.view(np.float32).reshape(n, self.dim)

    def rows(self, a: int, b: int) -> np.ndarray:
        out = np.empty((max(0, b - a), self.dim), np.float32)
        lst = int(np.searchsorted(self.offsets, a, side="right")) - 1
        pos = a
        while pos < b:
            lo, hi = self.offsets[lst], self.offsets[lst + 1]
            if hi > pos:
                take = min(b, hi) - pos
                out[pos - a:pos - a + take] = self._list(lst)[pos - lo:pos - lo + take]
                pos += take
            lst += 1
        return out

    def take(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        lists = np.searchsorted(self.offsets, rows, side="right") - 1
        out = np.empty((len(rows), self.dim), np.float32)
        for lst in np.unique(lists):
            sel = lists == lst
            out[sel] = self._list(int(lst))[rows[sel] - self.offsets[lst]]
        return out


def raw_from_index(index: Any) -> RawVectors:
    """Raw vectors of an exact index (``IDMap2,Flat`` or ``IVF…,Flat``)."""
    idx = faiss.downcast_index(index)
    if isinstance(idx, (faiss.IndexIDMap2, faiss.IndexIDMap)) and isinstance(
            faiss.downcast_index(idx.index), faiss.IndexFlat):
        return _FlatVectors(idx)
    if isinstance(idx, faiss.IndexIVFFlat):
        return _IVFFlatVectors(idx)
    raise ValueError(f"{type(idx).__name__} does not hold its vectors exactly; read the sidecar")


# --- the float16 sidecar of lossy indexes ------------------------------------------------

def _sidecar_dtype(dim: int) -> np.dtype:
    return np.dtype([("id", "<i8"), ("v", "<f2", (dim,))])


class _SidecarVectors(RawVectors):
    def __init__(self, arr: np.ndarray) -> None:
        self.arr = arr
        super().__init__(np.asarray(arr["id"]), arr.dtype["v"].shape[0])

    def rows(self, a: int, b: int) -> np.ndarray:
        return self.arr["v"][a:b].astype(np.float32)

    def take(self, rows: np.ndarray) -> np.ndarray:
        return self.arr["v"][np.asarray(rows, np.int64)].astype(np.float32)


def read_sidecar(path: Path) -> RawVectors:
    """The raw vectors of a lossy generation (memory-mapped)."""
    return _SidecarVectors(np.load(path, mmap_mode="r"))


def write_sidecar(path: Path, old: RawVectors | None, gone_ids: np.ndarray,
                  new_ids: np.ndarray, new_vectors: np.ndarray, dim: int) -> RawVectors:
    """Write ``old`` minus ``gone_ids`` plus the new rows to ``path`` (atomically), streaming.

    Records are in ascending id order (what engine.rerank relies on to find a vector's
    row without reading the id column). New segment ids are always larger than the ones
    already stored, so an ordered ``old`` is streamed as it is; otherwise (``old`` read
    from an IVF index's lists, or an older unordered sidecar) rows are written in id order.
    """
    gone = np.asarray(gone_ids, np.int64)
    new_ids = np.asarray(new_ids, np.int64)
    keep_masks = []
    n_old = 0
    if old is not None:
        for a in range(0, len(old), CHUNK):
            m = ~np.isin(old.ids[a:a + CHUNK], gone)
            keep_masks.append(m)
            n_old += int(m.sum())
    n = n_old + len(new_ids)
    kept_ids = old.ids[np.concatenate(keep_masks)] if keep_masks else np.zeros(0, np.int64)
    all_ids = np.concatenate([kept_ids, new_ids])
    in_order = bool(np.all(np.diff(all_ids) > 0))
    tmp = path.with_name(path.name + ".tmp")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=_sidecar_dtype(dim), shape=(n,))
    if in_order:
        pos = 0
        if old is not None:
            for i, a in enumerate(range(0, len(old), CHUNK)):
                m = keep_masks[i]
                k = int(m.sum())
                out["id"][pos:pos + k] = old.ids[a:a + CHUNK][m]
                out["v"][pos:pos + k] = old.rows(a, min(len(old), a + CHUNK))[m]
                pos += k
        out["id"][pos:] = new_ids
        out["v"][pos:] = new_vectors
    else:
        kept_rows = (np.nonzero(np.concatenate(keep_masks))[0] if keep_masks
                     else np.zeros(0, np.int64))
        order = np.argsort(all_ids, kind="stable")
        new_vectors = np.asarray(new_vectors).reshape(-1, dim)
        for a in range(0, n, CHUNK):
            sel = order[a:a + CHUNK]
            chunk = np.empty((len(sel), dim), np.float32)
            from_old = sel < n_old
            src = kept_rows[sel[from_old]]
            perm = np.argsort(src)
            dest = np.nonzero(from_old)[0]
            chunk[dest[perm]] = old.take(src[perm]) if len(src) else chunk[:0]
            chunk[~from_old] = new_vectors[sel[~from_old] - n_old]
            out["id"][a:a + len(sel)] = all_ids[sel]
            out["v"][a:a + len(sel)] = chunk
    out.flush()
    del out
    replace_durably(tmp, path)
    return read_sidecar(path)


def vectors_by_id(raw: RawVectors):
    """``ids → float32 vectors`` over ``raw`` (any row order), for re-ranking."""
    order = np.argsort(raw.ids, kind="stable")
    keys = raw.ids[order]

    def fetch(ids: np.ndarray) -> np.ndarray:
        rows = order[np.minimum(np.searchsorted(keys, ids), len(keys) - 1)]
        return raw.take(rows)
    return fetch


# --- build and tune --------------------------------------------------------------------

def training_rows(n: int, train_size: int, seed: int) -> np.ndarray:
    """The sorted rows :func:`build` trains on (a seeded sample of ``train_size`` of ``n``)."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, min(n, max(train_size, 1)), replace=False))


def build(choice: IndexChoice, dim: int, raw: RawVectors, seed: int = 0) -> Any:
    """A new index of ``choice.factory`` trained on a seeded sample of ``raw``, holding all of it."""
    index = faiss.index_factory(dim, choice.factory, faiss.METRIC_INNER_PRODUCT)
    _set_opq_niter(index)
    if not index.is_trained:
        rows = training_rows(len(raw), choice.train_size, seed)
        if gpu_count() > 0:       # k-means on the GPU; the index itself stays on the CPU
            ivf = faiss.extract_index_ivf(index)
            ivf.clustering_index = faiss.index_cpu_to_all_gpus(faiss.IndexFlatL2(ivf.d))
        index.train(raw.take(rows))
    for ids, vecs in raw.chunks():
        index.add_with_ids(np.ascontiguousarray(vecs), ids)
    return index


def _set_opq_niter(index: Any) -> None:
    """Train an OPQ rotation with engine.index_choice.OPQ_NITER iterations."""
    from engine import index_choice
    idx = faiss.downcast_index(index)
    if isinstance(idx, faiss.IndexPreTransform):
        for i in range(idx.chain.size()):
            vt = faiss.downcast_VectorTransform(idx.chain.at(i))
            if isinstance(vt, faiss.OPQMatrix):
                vt.niter = int(index_choice.OPQ_NITER)


def exact_top_k(queries: np.ndarray, raw: RawVectors, k: int = K) -> np.ndarray:
    """Ids of the exact top-k (inner product) of ``queries`` among ``raw``, by brute force."""
    heap = faiss.ResultHeap(len(queries), k, keep_max=True)
    for ids, vecs in raw.chunks():
        D, I = faiss.knn(queries, vecs, min(k, len(ids)), metric=faiss.METRIC_INNER_PRODUCT)
        if I.shape[1] < k:                                   # a chunk smaller than k
            pad = k - I.shape[1]
            D = np.hstack([D, np.full((len(D), pad), -np.inf, np.float32)])
            I = np.hstack([I, np.full((len(I), pad), -1, np.int64)])
        heap.add_result(D, np.where(I >= 0, ids[np.maximum(I, 0)], -1))
    heap.finalize()
    return heap.I


def tune(index: Any, choice: IndexChoice, raw: RawVectors, seed: int = 0,
         n_queries: int = TUNE_QUERIES, previous: dict[str, Any] | None = None) -> tuple[dict[str, Any], float]:
    """(search params, measured recall@10) for ``index`` over the vectors ``raw``.

    Exact indexes need nothing and have recall 1. For IVF types the queries are a seeded
    sample of the index's own vectors, the truth comes from brute force. ``previous``: the
    params this index (same type, not rebuilt since) was searched with; they are measured
    first and kept when they still reach the target, so a commit that adds a few vectors
    costs one search of the queries instead of a whole sweep (at 300k random 521-d vectors
    in IVF2048: 22 searches, 60 s); when they miss, nprobe grows from there in steps of
    :data:`WARM_GROWTH` and is kept within :data:`WARM_TOLERANCE` of the smallest that reaches the
    target (a few searches instead of a bisection to the exact integer).
    """
    if choice.nlist == 0 or len(raw) == 0:
        return {}, 1.0
    rng = np.random.default_rng(seed + 1)
    pool = np.arange(len(raw))
    if choice.train_size and len(raw) - choice.train_size >= n_queries:
        # queries the quantizers were not fitted to (their own training points would
        # score optimistically: measured ~0.01 higher recall at 200k × 512)
        pool = np.setdiff1d(pool, training_rows(len(raw), choice.train_size, seed))
    rows = np.sort(rng.choice(pool, min(n_queries, len(pool)), replace=False))
    queries = np.ascontiguousarray(raw.take(rows))
    truth = exact_top_k(queries, raw, K + 1)          # the query itself is left out of both
    missed = None                                      # previous params, measured just now below target
    if (previous and int(previous.get("nprobe", 0)) > 0
            and (choice.kind not in RERANKED_KINDS or "rerank" in previous)):
        recall = _recall_with(index, choice, raw, queries, truth, raw.ids[rows], previous)
        if recall >= TARGET_RECALL + TUNING_MARGIN:
            return dict(previous), recall
        missed = previous
    if choice.kind in RERANKED_KINDS:                  # searched with exact re-ranking
        params, recall = tune_reranked(index, queries, truth, choice.nlist, len(raw),
                                       vectors_by_id(raw), k=K,
                                       target=TARGET_RECALL + TUNING_MARGIN,
                                       self_ids=raw.ids[rows], missed=missed,
                                       growth=WARM_GROWTH, tolerance=WARM_TOLERANCE)
        nprobe = params["nprobe"]
    else:
        known_miss, start, warm = 0, 1, {}
        if missed is not None:                         # not searched again; small steps from there
            known_miss, start = warm_start(missed["nprobe"], WARM_GROWTH, choice.nlist)
            warm = {"growth": WARM_GROWTH, "tolerance": WARM_TOLERANCE}
        nprobe, recall = tune_nprobe(index, queries, truth, start=start, nlist=choice.nlist, k=K,
                                     target=TARGET_RECALL + TUNING_MARGIN, self_ids=raw.ids[rows],
                                     known_miss=known_miss, **warm)
        params = {"nprobe": int(nprobe)}
    if recall < TARGET_RECALL:
        log.warning("%s reaches recall@10 %.3f < %.2f even with nprobe = %d; a larger memory "
                    "budget (--memory-budget) allows a more exact index type", choice.factory,
                    recall, TARGET_RECALL, nprobe)
    return params, float(recall)


def _recall_with(index: Any, choice: IndexChoice, raw: RawVectors, queries: np.ndarray,
                 truth: np.ndarray, self_ids: np.ndarray, params: dict[str, Any]) -> float:
    """Recall@10 of ``index`` searched with ``params`` (nprobe, and the re-rank factor of a
    re-ranked kind); the index's ``nprobe`` is left at ``params["nprobe"]``."""
    from engine.index_choice import without_self
    from engine.rerank import reranked_search

    faiss.extract_index_ivf(index).nprobe = int(params["nprobe"])
    if choice.kind in RERANKED_KINDS and "rerank" in params:
        ids = reranked_search(lambda q, n: index.search(q, n), queries, K + 1, int(params["rerank"]),
                              vectors_by_id(raw), limit=len(raw))[1]
    else:
        ids = index.search(queries, K + 1)[1]
    return recall_at_k(without_self(ids, self_ids, K), without_self(truth, self_ids, K), K)


__all__ = ["LOSSY_KINDS", "RERANKED_KINDS", "RawVectors", "raw_from_index", "sidecar_path",
           "read_sidecar", "write_sidecar", "vectors_by_id", "build", "exact_top_k", "tune", "recall_at_k"]
