"""Which FAISS index to build: a pure function of (vectors, dim, memory budget, GPU).

Tiers (autofaiss-style), by vector count and by the memory the raw vectors need:
  * exact ``Flat`` while the library is small (≤ EXACT_MAX vectors): perfect recall;
  * ``IVF<nlist>,Flat`` in the middle, while raw float32 vectors fit the budget;
  * ``IVF<nlist>,SQ8`` when they don't but 1 byte per dimension does (4× smaller);
  * ``OPQ<m>,IVF<nlist>,PQ<m>`` when even that doesn't fit (dim/… bytes per vector).
All use inner product over L2-normalised vectors. The search parameter (``nprobe``)
starts at the value returned here and is then set by measurement
(:func:`tune_nprobe`) so recall@10 against exact search reaches the target.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

EXACT_MAX = 100_000
SQ8_BYTES_PER_DIM = 1
FLOAT_BYTES = 4
TARGET_RECALL = 0.95


@dataclass(frozen=True)
class IndexChoice:
    """A FAISS factory string plus the search parameters to start from."""

    factory: str
    kind: str                       # "flat" | "ivf-flat" | "ivf-sq8" | "opq-ivf-pq"
    nlist: int = 0
    train_size: int = 0             # vectors to train the coarse quantizer on (0: none)
    params: dict[str, Any] = field(default_factory=dict)
    gpu: bool = False
    bytes_per_vector: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _nlist(n: int) -> int:
    """About 4·√n lists, a power of two, between 256 and 65536."""
    return int(min(65536, max(256, 2 ** round(math.log2(4 * math.sqrt(max(n, 1)))))))


def _pq_m(dim: int) -> int:
    """PQ sub-quantizers: dim/8 (64 for 512-d), a divisor of dim, at most 96 for GPU."""
    m = max(1, dim // 8)
    while dim % m:
        m -= 1
    return m


def choose_index(n_vectors: int, dim: int, memory_budget: int, gpu: bool = False) -> IndexChoice:
    """The index type for ``n_vectors`` vectors of ``dim`` within ``memory_budget`` bytes."""
    if n_vectors < 0 or dim <= 0 or memory_budget <= 0:
        raise ValueError("n_vectors ≥ 0, dim > 0 and memory_budget > 0 are required")
    flat_bytes = n_vectors * dim * FLOAT_BYTES
    if n_vectors <= EXACT_MAX and flat_bytes <= memory_budget:
        return IndexChoice("IDMap2,Flat", "flat", gpu=gpu, bytes_per_vector=dim * FLOAT_BYTES + 8)
    nlist = _nlist(n_vectors)
    train = min(n_vectors, 64 * nlist)
    nprobe = max(8, nlist // 64)
    if flat_bytes <= memory_budget:
        return IndexChoice(f"IVF{nlist},Flat", "ivf-flat", nlist, train, {"nprobe": nprobe}, gpu,
                           dim * FLOAT_BYTES + 8)
    if n_vectors * dim * SQ8_BYTES_PER_DIM <= memory_budget:
        return IndexChoice(f"IVF{nlist},SQ8", "ivf-sq8", nlist, train, {"nprobe": nprobe}, gpu,
                           dim * SQ8_BYTES_PER_DIM + 8)
    m = _pq_m(dim)
    return IndexChoice(f"OPQ{m},IVF{nlist},PQ{m}", "opq-ivf-pq", nlist, train,
                       {"nprobe": nprobe * 2}, gpu, m + 8)


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean share of the exact top-k ids that the approximate search also returned."""
    hits = [len(set(f[:k]) & set(t[:k])) / k for f, t in zip(found, truth)]
    return float(np.mean(hits)) if hits else 1.0


def tune_nprobe(index: Any, queries: np.ndarray, truth_ids: np.ndarray, start: int, nlist: int,
                k: int = 10, target: float = TARGET_RECALL) -> tuple[int, float]:
    """Smallest power-of-two step of ``nprobe`` (from ``start``) reaching ``target`` recall@k.

    ``truth_ids`` are the exact top-k ids of ``queries`` (brute force on the same vectors).
    Returns (nprobe, measured recall); if even nprobe = nlist misses the target the
    best recall found is returned with it, for the caller to report honestly.
    """
    import faiss

    ivf = faiss.extract_index_ivf(index)
    nprobe = max(1, min(start, nlist))
    while True:
        ivf.nprobe = nprobe
        _, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        r = recall_at_k(ids, truth_ids, k)
        if r >= target or nprobe >= nlist:
            return nprobe, r
        nprobe = min(nlist, nprobe * 2)
