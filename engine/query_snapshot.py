"""The snapshots :class:`engine.query.SoundIndex` answers from: one committed generation's
vectors (FAISS, memory-mapped; raw vectors for re-ranking; a GPU copy) and segment table, read
in one SQLite read transaction, and the signals that make a query read them again."""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from engine.catalog import File, Meta
from engine.errors import IndexNotFound
from engine.live_catalog import CatalogHandle
from engine.rerank import RawSidecar, rerank_factor, sidecar_path
from engine.vector_access import reconstruct

#: the query layer's logger (engine.query's, as before these parts moved out of it)
log = logging.getLogger("engine.query")


@dataclass
class _Snapshot:
    """Vectors and segment table of one committed generation."""

    key: tuple[Any, Any]
    fingerprint: str           # model fingerprint of the catalog this generation came from
    dim: int | None
    index: Any                 # faiss.Index or None for an empty index
    seg_ids: np.ndarray        # sorted segment ids (== vector ids)
    seg_file: np.ndarray       # file id of each segment, aligned with seg_ids
    seg_start: np.ndarray
    seg_end: np.ndarray
    n_files: int
    params: dict[str, Any] = field(default_factory=dict)   # meta index_params of this generation
    raw: RawSidecar | None = None      # raw vectors, for re-ranking (compressed indexes)
    gpu: Any = None                    # GPU copy of ``index`` for unfiltered searches
    gpu_lock: threading.Lock = field(default_factory=threading.Lock)
    keywords: Any = None               # (tags/captions/metadata stamp, engine.keywords.KeywordIndex), built on use
    keyword_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def rerank(self) -> int:
        """Re-rank factor (0: scores come straight from FAISS)."""
        return rerank_factor(self.params) if self.raw is not None else 0

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors of sorted segment ``ids``: raw ones where kept, else FAISS's."""
        return self.raw.vectors(ids) if self.raw is not None else reconstruct(self.index, ids)

    @property
    def ntotal(self) -> int:
        return 0 if self.index is None else int(self.index.ntotal)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Positions of segment ``ids`` in the aligned arrays."""
        return np.searchsorted(self.seg_ids, ids)



def _generation_key(conn: Connection) -> tuple[Any, Any]:
    """(vectors_file, generation) of the last commit: one cheap query per search."""
    rows = dict(conn.exec_driver_sql(
        "SELECT key, value FROM meta WHERE key IN ('vectors_file', 'generation')").fetchall())
    return tuple(json.loads(rows[k]) if k in rows else None  # type: ignore[return-value]
                 for k in ("vectors_file", "generation"))


def _all_meta(conn: Connection) -> dict[str, Any]:
    return {key: json.loads(value) for key, value in conn.execute(select(Meta.key, Meta.value))}


def load_snapshot(conn: Connection, root: Path, key: tuple[Any, Any], meta: dict[str, Any]) -> _Snapshot:
    """The snapshot of the generation ``key`` (vectors file, generation) of the index at ``root``,
    whose meta is ``meta``, read in ``conn``'s transaction; _VectorsGone when its vectors file
    cannot be read (a writer moved on)."""
    from engine.vectors import read_index, recorded_length
    rows = conn.exec_driver_sql('SELECT id, file_id, start, "end" FROM segments ORDER BY id').fetchall()
    # as plain tuples: numpy reads SQLAlchemy rows one item at a time (0.87 s for 40,247, not 0.02 s)
    arr = np.array([tuple(r) for r in rows], dtype=np.float64).reshape(-1, 4)
    n_files = int(conn.execute(select(func.count(File.id))).scalar() or 0)
    index = raw = None
    params = dict(meta.get("index_params") or {})
    seg_ids = arr[:, 0].astype(np.int64)
    if key[0]:
        path = Path(str(key[0]))
        if not path.is_absolute():
            path = root / path
        try:
            index = read_index(path, mmap=True, length=recorded_length(meta))
            if rerank_factor(params) and sidecar_path(path).is_file():
                raw = RawSidecar(sidecar_path(path), sorted_ids=seg_ids)
        except (RuntimeError, OSError) as e:
            raise _VectorsGone(str(path)) from e
        if rerank_factor(params) and raw is None:
            log.warning("%s: no raw vectors (%s) to re-rank with; scores are approximate",
                        root, sidecar_path(path).name)
    dim = meta.get("dim")
    snap = _Snapshot(key, str(meta.get("model_fingerprint")), None if dim is None else int(dim),
                     index, seg_ids, arr[:, 1].astype(np.int64),
                     arr[:, 2].copy(), arr[:, 3].copy(), n_files, params, raw)
    snap.gpu = _gpu_copy(index, params, str(meta.get("index_kind", "")))
    if snap.ntotal != len(snap.seg_ids):
        log.warning("%s: %d vectors but %d segments in the catalog", root, snap.ntotal,
                    len(snap.seg_ids))
    return snap


def _gpu_copy(index: Any, params: dict[str, Any], kind: str) -> Any:
    """A GPU copy of ``index`` for unfiltered searches, or None (no GPU, or it failed)."""
    from engine import vectors
    if index is None or vectors.gpu_count() == 0:
        return None
    try:
        return vectors.to_gpu(index, nprobe=params.get("nprobe"),
                              float16=kind == "opq-ivf-pq")   # PQ scores are re-ranked anyway
    except RuntimeError as e:
        log.warning("cannot copy the index to the GPU (%s); searching on the CPU",
                    str(e).splitlines()[0] if str(e) else type(e).__name__)
        return None


class _VectorsGone(Exception):
    """The vectors file named by a snapshot disappeared (a writer moved on): retry."""


class _Replaced(Exception):
    """The connection may read another index than the one adopted (a swap): reopen, retry."""


class _QueryModelChanged(Exception):
    """A query was embedded by a model the index no longer uses (it was just rebuilt): again."""


def _finished_meta(root: Path, handle: CatalogHandle) -> dict[str, Any]:
    """The meta of the catalog ``handle`` opened; IndexNotFound when it names no model."""
    with _ReadTxn(handle.engine) as conn:
        meta = _all_meta(conn)
    if not meta.get("model_fingerprint"):
        from engine.layout import writer_process
        writer = writer_process(root)
        if writer is not None:
            by = f" (process {writer})" if writer else ""
            raise IndexNotFound(f"{root} is being indexed for the first time{by}: search it once that run's "
                                "first checkpoint is committed (by default every 256 files or 60 s: "
                                "--checkpoint-files, --checkpoint-seconds)")
        raise IndexNotFound(f"{root} holds no finished index (its catalog names no model); "
                            "run `soundsift index` on it again")
    return meta


class _ReadTxn:
    """``with _ReadTxn(engine) as conn``: one explicit SQLite read transaction."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def __enter__(self) -> Connection:
        self._conn = self._engine.connect()
        self._conn.exec_driver_sql("BEGIN")
        return self._conn

    def __exit__(self, *exc: Any) -> None:
        try:
            self._conn.rollback()
        finally:
            self._conn.close()

