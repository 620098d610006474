"""Exact re-ranking of a compressed index's candidates with the raw float16 vectors.

A PQ index ranks by approximate scores: the true neighbours are usually *among* its
top few hundred but not in its top 10. So a re-ranked search asks the compressed index
for ``k · factor`` candidates, re-scores each exactly against its raw vector, and keeps
the best ``k`` (the standard IVF-PQ + refine recipe, faiss's ``IndexRefine``, done
against a file on disk instead of vectors in memory).

The raw vectors are the writer's sidecar ``vectors-<gen>.raw.npy`` (indexer.retrain): a
numpy structured array of records ``(id int64, v float16[dim])``. It is opened with
``np.load(mmap_mode="r")``; a search touches only its candidates' records (dim·2 + 8
bytes each), so the raw vectors stay on disk / in the reclaimable page cache and the
index's RAM stays what the memory budget allowed.

id → row: the writer keeps the sidecar's records sorted by id, and they are exactly the
index's vectors, so a candidate's row is its rank among the catalog's (sorted) segment
ids, a ``searchsorted`` on an array the query layer holds anyway. Every record read
carries its id, so the guess is checked for free; a sidecar not in that order (one
written by an older version) falls back to a full id → row map built once.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

log = logging.getLogger(__name__)

#: a search function: (queries (nq, d) float32, n) → (scores, ids), each (nq, n), ids -1 padded
SearchFn = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
#: raw vectors by id: ids (sorted, unique) → float32 (len(ids), d)
VectorsFn = Callable[[np.ndarray], np.ndarray]


def sidecar_path(faiss_file: str | Path) -> Path:
    """``vectors-000012.faiss`` → ``vectors-000012.raw.npy`` (the raw vectors beside it)."""
    faiss_file = Path(faiss_file)
    return faiss_file.with_name(faiss_file.name.removesuffix(".faiss") + ".raw.npy")


class RawSidecar:
    """Raw vectors of one generation, memory-mapped, readable by vector id."""

    def __init__(self, path: str | Path, sorted_ids: np.ndarray | None = None) -> None:
        """``sorted_ids``: the index's vector ids in ascending order (e.g. the catalog's
        segment ids), used to find rows without reading the sidecar's id column."""
        self.path = Path(path)
        self.arr = np.load(self.path, mmap_mode="r")
        names = self.arr.dtype.names or ()
        if "id" not in names or "v" not in names:
            raise ValueError(f"{self.path} is not a raw-vector sidecar (fields {names}, want id, v)")
        self.dim = int(self.arr.dtype["v"].shape[0])
        self._sorted_ids = None if sorted_ids is None else np.asarray(sorted_ids, np.int64)
        if self._sorted_ids is not None and len(self._sorted_ids) != len(self.arr):
            self._sorted_ids = None                        # not the same set: map by the file
        self._map: tuple[np.ndarray, np.ndarray] | None = None   # (sorted ids, their rows)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.arr)

    def _full_map(self) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            if self._map is None:
                ids = np.asarray(self.arr["id"], np.int64)       # reads the whole file once
                order = np.argsort(ids, kind="stable")
                self._map = (ids[order], order)
                log.info("%s: rows not in id order; built an id → row map (%d ids)", self.path,
                         len(ids))
            return self._map

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """float32 raw vectors of ``ids`` (unique; sorted ids read the file in order)."""
        ids = np.asarray(ids, np.int64)
        if len(ids) == 0:
            return np.zeros((0, self.dim), np.float32)
        if self._map is None and self._sorted_ids is not None:
            rows = np.minimum(np.searchsorted(self._sorted_ids, ids), len(self.arr) - 1)
            rec = self.arr[rows]
            if np.array_equal(rec["id"], ids):
                return rec["v"].astype(np.float32)
        keys, order = self._full_map()
        pos = np.minimum(np.searchsorted(keys, ids), len(keys) - 1)
        if not np.array_equal(keys[pos], ids):
            missing = ids[keys[pos] != ids][:5].tolist()
            raise KeyError(f"{self.path} has no raw vector for ids {missing}; re-run "
                           "`soundsift index` to rewrite the index")
        return self.arr["v"][order[pos]].astype(np.float32)


def rerank(queries: np.ndarray, cand_ids: np.ndarray, vectors: VectorsFn,
           k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` (scores, ids) of each query among its candidates (ids -1 = none).

    Each distinct candidate is read once (sorted by id) and scored against every query
    in one matrix product.
    """
    q = np.ascontiguousarray(queries, np.float32)
    nq = len(q)
    valid = cand_ids >= 0
    uniq, inv = np.unique(cand_ids[valid], return_inverse=True)
    out_d = np.full((nq, k), -np.inf, np.float32)
    out_i = np.full((nq, k), -1, np.int64)
    if len(uniq) == 0:
        return out_d, out_i
    all_scores = q @ vectors(uniq).T                           # (nq, distinct candidates)
    scores = np.full(cand_ids.shape, -np.inf, np.float32)
    rows = np.nonzero(valid)[0]
    scores[valid] = all_scores[rows, inv]
    take = min(k, scores.shape[1])
    best = np.argsort(-scores, axis=1, kind="stable")[:, :take]
    d = np.take_along_axis(scores, best, axis=1)
    i = np.take_along_axis(cand_ids, best, axis=1)
    i[~np.isfinite(d)] = -1
    out_d[:, :take], out_i[:, :take] = d, i
    return out_d, out_i


def candidates(search: SearchFn, queries: np.ndarray, k: int, factor: int,
               limit: int | None = None) -> np.ndarray:
    """Ids of the ``k · factor`` candidates (at most ``limit``, at least ``k``) ``search``
    gives each query, -1 padded where it found fewer."""
    n = k * max(1, int(factor))
    if limit is not None:
        n = max(k, min(n, int(limit)))
    return search(queries, n)[1]


def reranked_search(search: SearchFn, queries: np.ndarray, k: int, factor: int,
                    vectors: VectorsFn, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``search`` for ``k · factor`` candidates (at most ``limit``), keep the exact top ``k``."""
    return rerank(queries, candidates(search, queries, k, factor, limit), vectors, k)


def rerank_factor(params: dict[str, Any] | None) -> int:
    """The re-rank factor stored in an index's search params (0: no re-ranking)."""
    return int((params or {}).get("rerank") or 0)


__all__ = ["sidecar_path", "RawSidecar", "rerank", "candidates", "reranked_search", "rerank_factor"]
