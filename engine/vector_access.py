"""Reading a FAISS index of any type the indexer may build: search parameters, stored vectors.

Exact ``IDMap2,Flat``, ``IVF…,Flat``/``SQ8`` and ``OPQ…,IVF…,PQ…`` (engine.index_choice)
differ in two ways the query layer cares about:

* search-time parameters: an IVF index takes ``SearchParametersIVF`` (``nprobe`` and the
  id selector), an OPQ-wrapped one nests them in ``SearchParametersPreTransform``, a flat
  one takes plain ``SearchParameters``;
* reading vectors back: IDMap2 keeps an id → row map, IVF needs its direct map built
  first (in memory; the file stays read-only). PQ/SQ vectors come back approximately.
"""
from __future__ import annotations

import threading
from typing import Any

import numpy as np

_direct_map_lock = threading.Lock()


def _ivf(index: Any) -> Any:
    import faiss
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def search_parameters(index: Any, selector: Any = None, params: dict[str, Any] | None = None) -> Any:
    """FAISS search parameters for ``index`` with an optional id ``selector`` and ``nprobe``.

    None when there is nothing to set (the index's own defaults apply).
    """
    import faiss
    nprobe = (params or {}).get("nprobe")
    if selector is None and nprobe is None:
        return None
    idx = faiss.downcast_index(index)
    if _ivf(idx) is None:
        return faiss.SearchParameters(sel=selector) if selector is not None else None
    ivf_params = faiss.SearchParametersIVF()
    if selector is not None:
        ivf_params.sel = selector
    if nprobe is not None:
        ivf_params.nprobe = int(nprobe)
    if isinstance(idx, faiss.IndexPreTransform):
        outer = faiss.SearchParametersPreTransform()
        outer.index_params = ivf_params
        outer.referenced_objects = [ivf_params]  # keep the nested object alive
        if selector is not None:
            outer.sel = selector
        return outer
    return ivf_params


def probe_range(index: Any) -> tuple[int, int] | None:
    """``(nprobe, nlist)`` of an IVF index as stored (its default lists probed, its lists in
    all); None for an index without inverted lists (an exact one)."""
    import faiss
    ivf = _ivf(faiss.downcast_index(index))
    return None if ivf is None else (int(ivf.nprobe), int(ivf.nlist))


def reconstruct(index: Any, ids: np.ndarray) -> np.ndarray:
    """Stored vectors (len(ids), d) of the given vector ids."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    try:
        return np.asarray(index.reconstruct_batch(ids), dtype=np.float32)
    except RuntimeError:
        ivf = _ivf(index)
        if ivf is None:
            raise
        import faiss
        with _direct_map_lock:
            if ivf.direct_map.type == faiss.DirectMap.NoMap:
                ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # id → (list, offset), in memory
        return np.asarray(index.reconstruct_batch(ids), dtype=np.float32)


def all_vectors(index: Any, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of every stored vector; ``ids`` are the catalog's segment ids."""
    import faiss
    idx = faiss.downcast_index(index)
    if isinstance(idx, faiss.IndexIDMap2) or isinstance(idx, faiss.IndexIDMap):
        stored = faiss.vector_to_array(idx.id_map).astype(np.int64)
        inner = faiss.downcast_index(idx.index)
        return stored, np.asarray(inner.reconstruct_n(0, inner.ntotal), np.float32)
    ids = np.asarray(ids, dtype=np.int64)
    return ids, reconstruct(index, ids)
