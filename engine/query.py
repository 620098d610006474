"""The query layer: :class:`SoundIndex` searches one index by text, by example, or by file.

How a search runs:

1. *Reload on change.* In one read transaction on the catalog, the meta keys
   ``vectors_file``/``generation`` are compared with the ones in memory; when a writer has
   committed a new generation, its FAISS file is opened (memory-mapped, read-only) and the
   segment table (id → file, start, end) is loaded into numpy arrays, both from the same
   snapshot. Nothing is reopened while the generation stays the same.
2. *Filters* (:class:`engine.filters.Filters`) become one SQL query for the allowed file
   ids; their segments are passed to FAISS as an ``IDSelectorBatch``, so the result is
   exactly the top-k among the allowed segments (an IVF index probes 4× more of its lists,
   up to all, while those probed hold fewer allowed segments than asked for).
3. *Per file* (the default): the best segment of each file wins and its start/end are
   reported. FAISS is asked for more segments than k, and for more again until k
   distinct files are certain (or the allowed segments are exhausted).
4. The hits' files are read in one SQL query.

Compressed (PQ) indexes are searched with *exact re-ranking* (engine.rerank): FAISS
returns ``k · rerank`` candidates (filters applied there, as an id selector), which are
re-scored against their raw float16 vectors, read memory-mapped from the generation's
sidecar, and the best ``k`` kept. ``nprobe`` and the factor ``rerank`` come from the
index's meta ``index_params`` (measured by the writer so recall@10 ≥ 0.95).

GPU: where faiss sees a CUDA GPU (engine.vectors.gpu_count() > 0; ``SOUNDSIFT_GPU=0``
turns it off) each generation is also copied to the GPU, which answers unfiltered
searches; filtered searches (id selectors) and reading stored vectors use the CPU copy.

Query vectors: text → ``model.embed_text``; audio → mean of its segment vectors,
re-normalised (engine.zeroshot); an *indexed* file ("more like this") → its stored
segment vectors, each used as a query, a candidate scoring its best match to any of
them, so the file itself comes first with score 1.

A *replaced* index (``soundsift index --rebuild`` renames a new folder into the index's
place, indexer.rebuild) is followed too: before each query, the folder and catalog at the
index's path are compared (two ``stat`` calls) with the ones opened. The open folder is
held by a file descriptor, so its inode number cannot be reused by a later folder. When
they differ, the catalog engine is disposed and the new one opened (a query finds the
path missing for a moment during the swap: it waits :attr:`SoundIndex.missing_waits`
before it raises IndexNotFound); a new model fingerprint in the meta means a new model:
the index's own is loaded when none was given at open, a given one that no longer
matches raises ModelMismatch on every query. Queries already running finish on the old
engine and vectors; one that embedded its query with the old model embeds it again.
"""
from __future__ import annotations

import json
import logging
import math
import os
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from sqlalchemy import Float, cast, func, select
from sqlalchemy.engine import Connection, Engine

from engine import zeroshot
from engine.catalog import SQL_CHUNK as _SQL_CHUNK
from engine.catalog import ErrorRow, File, FileMetadata, Meta, SegmentRow, Tag, has_table, stored_metadata
from engine.errors import IndexBusy, IndexNotFound, InvalidQuery, ModelMismatch
from engine.file_metadata import (ABOUT_LINE_KEYS, INDEXER_KEYS, LEVEL_KEYS, SEARCHED_KEYS_WITH_SHEETS, SHEET_NAME_KEY,
                                  SHEET_PREFIX, about_line, with_sheet)
from engine.filters import Filters, has_extension
from engine.layout import IndexLayout, missing_index, resolve_index_dir
from engine.live_catalog import CatalogHandle, LiveCatalog
from engine.models.base import AudioTextModel, l2_normalize
from engine.segments import SegmentPolicy
from engine.text_encoding import normal_forms
from engine.rerank import RawSidecar, candidates, rerank, rerank_factor, sidecar_path
from engine.vector_access import all_vectors, probe_range, reconstruct, search_parameters

__all__ = ["SoundIndex", "Hit", "Filters", "FileVectors", "IndexClosed"]

log = logging.getLogger(__name__)

#: most stored segments of one file used as queries by similar_to_file (evenly spaced)
MAX_QUERY_SEGMENTS = 32
#: files taken from each side (sound, keywords) before a keyword search fuses them (at least 5 k)
KEYWORD_POOL = 100
#: how much each excluded text's cosine is taken from a segment's score (search_text ``exclude``)
EXCLUDE_WEIGHT = 0.5
#: seconds between a stored marker time (kept to 0.1 s) and the start of the take it begins
MARKER_TOLERANCE = 0.06
_RELOAD_RETRIES = 3


class IndexClosed(IndexNotFound):
    """A :class:`SoundIndex` was used after :meth:`SoundIndex.close` (or its ``with`` block)."""


def _check_k(k: Any) -> int:
    """``k`` as an int ≥ 1 (an int or numpy integer, not a bool); InvalidQuery otherwise."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InvalidQuery(f"k must be a whole number ≥ 1, got {k!r}")
    if k < 1:
        raise InvalidQuery(f"k must be ≥ 1, got {k}")
    return int(k)


def _check_rate(audio: Any, sample_rate: Any) -> None:
    """InvalidQuery when a waveform query's ``sample_rate`` is not a positive whole number of Hz
    (a path's rate is read from the file; a given one is left to engine.zeroshot)."""
    if sample_rate is None or isinstance(audio, (str, Path)):
        return
    if (isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer))
            or sample_rate <= 0):
        raise InvalidQuery(f"sample_rate must be a whole number of Hz above 0, got {sample_rate!r}")


def _one_or_many(items: Any) -> list[Any]:
    """A list of ``items``; one string, path or id (not a sequence of them) is one item."""
    if isinstance(items, (str, Path, int, np.integer)):
        return [items]
    return list(items)


def query_matrix(queries: Any, dim: int | None = None) -> np.ndarray:
    """Query vectors (one 1-D vector or 2-D rows) as unit float32 rows; InvalidQuery when they
    are not numbers, not 1-D or 2-D, empty, hold NaN or Inf, or a row of zeros (no direction),
    or, given ``dim``, have another width."""
    try:
        q = np.asarray(queries)
    except (TypeError, ValueError) as e:
        raise InvalidQuery(f"query vectors must be a 1-D or 2-D array of numbers ({e})") from e
    if q.dtype.kind not in "biuf":
        raise InvalidQuery(f"query vectors must be real numbers, got an array of {q.dtype}")
    if q.ndim not in (1, 2):
        raise InvalidQuery(f"query vectors must be one vector (1-D) or rows of vectors (2-D), got shape {q.shape}")
    q = np.atleast_2d(q).astype(np.float32)
    if q.shape[0] == 0:
        raise InvalidQuery("no query vectors given")
    if dim is not None and q.shape[1] != dim:
        raise InvalidQuery(f"query vectors have {q.shape[1]} dims; the index holds {dim}-dim vectors")
    if not np.isfinite(q).all():
        raise InvalidQuery("query vectors hold NaN or Inf")
    norms = np.linalg.norm(q.astype(np.float64), axis=1)
    if not (norms > 0).all():
        raise InvalidQuery("a query vector is all zeros: it points nowhere")
    return np.ascontiguousarray((q / norms[:, None]).astype(np.float32))


def excluded_texts(texts: Sequence[str] | str | None) -> list[str]:
    """The excluded sounds of a search, each stripped, empty ones dropped; one string is one text."""
    if texts is None:
        return []
    if isinstance(texts, str):
        texts = [texts]
    return [t.strip() for t in texts if isinstance(t, str) and t.strip()]


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

    def __post_init__(self) -> None:
        if not self.folder:
            self.folder = os.path.dirname(self.path)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: path, start, end, score, file_id, segment_id, duration, format, …
        (``keywords`` only from a keyword search, ``same_recording`` only where it was checked,
        ``marker`` and ``marker_at`` only where the hit is a marked take or a keyword search found
        a named marker, ``about`` only where the file or a library sheet describes it, ``missing``
        only for a file not on disk now)."""
        d = asdict(self)
        for optional in ("keywords", "same_recording", "marker", "marker_at", "about", "missing"):
            if d[optional] is None:
                del d[optional]
        return d


@dataclass
class FileVectors:
    """One unit vector per file (mean of its segment vectors), for maps of the library, with
    each file's duration (seconds) and size (bytes) as the catalog has them."""

    file_ids: np.ndarray
    paths: list[str]
    vectors: np.ndarray
    durations: np.ndarray
    sizes: np.ndarray


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


def _generation_key(conn: Connection) -> tuple[Any, Any]:
    """(vectors_file, generation) of the last commit: one cheap query per search."""
    rows = dict(conn.exec_driver_sql(
        "SELECT key, value FROM meta WHERE key IN ('vectors_file', 'generation')").fetchall())
    return tuple(json.loads(rows[k]) if k in rows else None  # type: ignore[return-value]
                 for k in ("vectors_file", "generation"))


def _all_meta(conn: Connection) -> dict[str, Any]:
    return {key: json.loads(value) for key, value in conn.execute(select(Meta.key, Meta.value))}


def _markers_of(fields: dict[int, dict[str, str]]) -> dict[int, list[tuple[float, str]]]:
    """File id → its named markers ((seconds, name), in time order; engine.markers.
    parse_markers) from :func:`engine.catalog.stored_metadata`' rows, for the files that have some."""
    from engine.markers import parse_markers
    return {fid: parse_markers(f["markers"]) for fid, f in fields.items() if f.get("markers")}


def _stored_markers(conn: Connection, file_ids: Sequence[int]) -> dict[int, list[tuple[float, str]]]:
    """File id → its named markers as the catalog stored them, for the files that have some."""
    return _markers_of(stored_metadata(conn, file_ids, ("markers",)))


class SoundIndex:
    """A read-only view of one index: search by text, audio or indexed file; tag; info.

    Thread-safe for queries (the UI shares one instance); reopens the vectors by itself
    when ``soundsift index`` commits a new generation, and the whole index when
    ``soundsift index --rebuild`` replaces it (with the new model, when none was given).
    """

    def __init__(self, root: Path, catalog: LiveCatalog, handle: CatalogHandle,
                 meta: dict[str, Any], model: AudioTextModel | None = None) -> None:
        self.root = Path(root)
        self.layout = IndexLayout(self.root)
        self._catalog = catalog
        self._handle = handle              # the opened folder that ``meta`` and ``_snap`` belong to
        self.meta = meta
        self._model = model
        self._given_model = model          # the caller's model (None: the index's own)
        self._mismatch: str | None = None  # why the caller's model no longer fits a rebuilt index
        self._snap: _Snapshot | None = None
        self._lock = threading.RLock()
        self._allowed_cache: dict[tuple[Any, Filters], np.ndarray] = {}
        self._closed = False

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, index: str | Path | None = None,
             model: AudioTextModel | str | Path | None = None) -> "SoundIndex":
        """Open the index ``index`` (a name under indexes/, or a folder; default 'default').

        ``model``: an AudioTextModel, or a name/path for :func:`engine.models.load_model`;
        by default the model that built the index, loaded on first use (and the new one
        after a rebuild). A model whose fingerprint differs from the index's raises
        :class:`ModelMismatch`, at open and after a rebuild to another model.
        """
        root = resolve_index_dir(index)
        layout = IndexLayout(root)
        if not layout.catalog.is_file():
            raise missing_index(root, index)
        catalog = LiveCatalog(root)
        try:
            handle = catalog.handle()
            meta = _finished_meta(root, handle)
            self = cls(root, catalog, handle, meta)
            if model is not None:
                if not isinstance(model, AudioTextModel):
                    from engine.models import load_model
                    model = load_model(model)
                self._check_model(model)
                self._model = self._given_model = model
            self._with_snapshot(lambda conn, snap: None)
        except BaseException:
            catalog.close()
            raise
        return self

    def _check_model(self, model: AudioTextModel) -> None:
        message = self._mismatch_message(model, self.meta)
        if message:
            raise ModelMismatch(message)

    def _mismatch_message(self, model: AudioTextModel, meta: dict[str, Any]) -> str | None:
        """The ModelMismatch message when ``model`` cannot search the index ``meta`` describes."""
        want = str(meta.get("model_fingerprint"))
        if str(model.fingerprint) == want:
            return None
        from engine.mismatch import mismatch_message
        return mismatch_message(self.root, meta.get("model_name"), want, model, searching=True)

    @property
    def model(self) -> AudioTextModel:
        """The index's model, loaded on first use (and checked against the index)."""
        self._current()
        with self._lock:
            self._raise_mismatch()
            if self._model is None:
                from engine.models import load_model
                model = load_model(self.meta.get("model_name"))
                self._check_model(model)
                self._model = model
            return self._model

    @property
    def policy(self) -> SegmentPolicy:
        """The segment policy the index was built with."""
        pol = self.meta.get("segment_policy")
        if isinstance(pol, dict) and pol.get("window"):
            return SegmentPolicy(float(pol["window"]), float(pol["hop"]) if pol.get("hop") else None)
        return SegmentPolicy(float(self.model.window_seconds))

    def close(self) -> None:
        """Let go of the catalog and the vectors. Idempotent; any later use raises
        :class:`IndexClosed` (open the index again with :meth:`open`)."""
        if self._closed:
            return
        self._closed = True
        self._snap = None
        self._catalog.close()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called (or the ``with`` block ended)."""
        return self._closed

    def __enter__(self) -> "SoundIndex":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------ replaced index folder
    def _current(self) -> CatalogHandle:
        """The handle on the folder now at the index's path, adopted if it is a new one."""
        if self._closed:
            raise IndexClosed(f"index {self.root} was closed; open it again with SoundIndex.open")
        handle = self._catalog.handle()
        if handle is self._handle:
            return handle
        with self._lock:
            if handle.epoch > self._handle.epoch:
                self._adopt(handle)
            return self._handle

    def _adopt(self, handle: CatalogHandle) -> None:
        """Switch to a replaced index (caller holds the lock): its meta, snapshot and model."""
        meta = _finished_meta(self.root, handle)
        fingerprint = str(meta.get("model_fingerprint"))
        changed = fingerprint != str(self.meta.get("model_fingerprint"))
        if self._given_model is not None:
            message = self._mismatch_message(self._given_model, meta)
            self._mismatch = None if message is None else (
                f"index {self.root} was rebuilt while it was open here, and its model changed: "
                f"{message}")
        elif self._model is not None and str(self._model.fingerprint) != fingerprint:
            self._model = None             # the index's new model, loaded on first use
        self.meta = meta
        self._snap = None
        self._allowed_cache.clear()
        self._handle = handle
        log.info("%s: following the index now in its place (model %r%s)", self.root,
                 meta.get("model_name"), ", changed" if changed else "")

    def _raise_mismatch(self) -> None:
        if self._mismatch:
            raise ModelMismatch(self._mismatch)

    # ------------------------------------------------------------- generations
    def _read(self) -> Any:
        """A connection inside one read transaction (one consistent snapshot)."""
        return _ReadTxn(self._current().engine)

    def _refresh(self, conn: Connection, handle: CatalogHandle) -> _Snapshot:
        """Reopen vectors and segment table if a new generation was committed.

        Raises _Replaced when ``conn`` (of ``handle``) may belong to another index than the
        one adopted: the handle was superseded, or the catalog names another model.
        """
        key = _generation_key(conn)
        snap = self._snap
        if snap is not None and snap.key == key and handle is self._handle:
            return snap
        with self._lock:
            if handle is not self._handle:
                raise _Replaced()
            if self._snap is not None and self._snap.key == key:
                return self._snap
            meta = _all_meta(conn)
            if str(meta.get("model_fingerprint")) != str(self.meta.get("model_fingerprint")):
                raise _Replaced()          # a swapped-in folder not noticed yet: reopen
            self._snap = self._load(conn, key, meta)
            self.meta = meta
            self._allowed_cache.clear()
            log.debug("opened generation %s of %s (%d vectors)", key[1], self.root, self._snap.ntotal)
            return self._snap

    def _load(self, conn: Connection, key: tuple[Any, Any], meta: dict[str, Any]) -> _Snapshot:
        from engine.vectors import read_index
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
                path = self.root / path
            try:
                index = read_index(path, mmap=True)
                if rerank_factor(params) and sidecar_path(path).is_file():
                    raw = RawSidecar(sidecar_path(path), sorted_ids=seg_ids)
            except (RuntimeError, OSError) as e:
                raise _VectorsGone(str(path)) from e
            if rerank_factor(params) and raw is None:
                log.warning("%s: no raw vectors (%s) to re-rank with; scores are approximate",
                            self.root, sidecar_path(path).name)
        dim = meta.get("dim")
        snap = _Snapshot(key, str(meta.get("model_fingerprint")), None if dim is None else int(dim),
                         index, seg_ids, arr[:, 1].astype(np.int64),
                         arr[:, 2].copy(), arr[:, 3].copy(), n_files, params, raw)
        snap.gpu = _gpu_copy(index, params, str(meta.get("index_kind", "")))
        if snap.ntotal != len(snap.seg_ids):
            log.warning("%s: %d vectors but %d segments in the catalog", self.root, snap.ntotal,
                        len(snap.seg_ids))
        return snap

    def _with_snapshot(self, fn: Any) -> Any:
        """Run ``fn(conn, snap)`` inside one read transaction on a current snapshot.

        Retried (on the new folder, when the index was replaced meanwhile) when the
        snapshot's vectors file is gone or its catalog turns out to be another index's.
        """
        last: Exception | None = None
        for _ in range(_RELOAD_RETRIES):
            handle = self._current()
            self._raise_mismatch()
            try:
                with _ReadTxn(handle.engine) as conn:
                    return fn(conn, self._refresh(conn, handle))
            except _VectorsGone as e:
                last = e
            except _Replaced as e:
                last = e
                self._catalog.reopen(handle)
        if isinstance(last, _VectorsGone):
            raise IndexNotFound(f"vectors file {last} of index {self.root} is missing; "
                                "re-run `soundsift index` to repair the index") from last
        raise IndexBusy(f"index {self.root} was replaced {_RELOAD_RETRIES} times while one query "
                        "read it (is it being rebuilt over and over?); search again") from last

    def refresh(self) -> bool:
        """Check for a new generation now; True if one was loaded."""
        before = self._snap.key if self._snap else None
        self._with_snapshot(lambda conn, snap: None)
        return self._snap is not None and self._snap.key != before

    def version(self) -> str:
        """A short id of the index's committed state, for a client that keeps answers: it changes
        with every commit (``soundsift index``: a new generation, or only its error rows), a
        rebuild, and every change of tags, captions or file metadata in between (each writer
        stamps the meta table: ``updated_at``, ``tags_changed_at``, ``metadata_replaced_at``), and
        stays while none happens. One read of the meta table; read it before the answer it labels
        (a commit in between then labels a newer answer with the older id, never the reverse)."""
        import hashlib
        with self._read() as conn:
            rows = conn.exec_driver_sql("SELECT key, value FROM meta ORDER BY key").fetchall()
        return hashlib.sha256(json.dumps([list(r) for r in rows]).encode()).hexdigest()[:16]

    # ---------------------------------------------------------------- searching
    def search_text(self, text: str, k: int = 10, filters: Filters | None = None,
                    per_file: bool = True, keywords: bool = False, exclude: Sequence[str] = (),
                    exclude_weight: float = EXCLUDE_WEIGHT) -> list[Hit]:
        """Files (or segments, with ``per_file=False``) best matching ``text``.

        With ``keywords``, files whose path, embedded description, tags or captions hold the
        query's words rank up too: the sound match and a BM25 keyword match (engine.keywords) are fused by reciprocal
        rank, so a file found by its name alone can come first. Each hit keeps its cosine as
        ``score`` (its best segment) and gets its BM25 as ``keywords`` (0 without a word in common).

        ``exclude``: sounds not wanted ("rain", not "thunder"). A segment then scores
        cos(segment, text) − ``exclude_weight`` · Σ cos(segment, excluded text), exactly (one
        inner product with the query vector minus the weighted excluded vectors), and ``score``
        is that. With ``keywords``, files whose names and descriptions hold every word of an
        excluded text are left out of the keyword side.
        """
        if not isinstance(text, str):
            raise InvalidQuery(f"the search text must be a str, got {type(text).__name__}")
        if not text.strip():
            raise InvalidQuery("the search text is empty; describe the sound, e.g. \"dog barking\"")
        k = _check_k(k)
        if keywords and not per_file:
            raise InvalidQuery("keyword search ranks files; ask for the best segment per file")
        unwanted = excluded_texts(exclude)
        if not 0.0 <= exclude_weight <= 10.0:
            raise InvalidQuery(f"the weight of excluded sounds must lie in 0–10, got {exclude_weight}")

        def embed(model: AudioTextModel) -> np.ndarray:
            vectors = model.embed_text([text, *unwanted])
            return vectors[:1] - exclude_weight * vectors[1:].sum(axis=0, keepdims=True)
        return self._search_embedded(embed, k, filters, per_file, words=text if keywords else None,
                                     unwanted_words=unwanted if keywords else (),
                                     cosine=not (unwanted and exclude_weight))

    def _keyword_search(self, conn: Connection, snap: _Snapshot, text: str, q: np.ndarray, k: int,
                        filters: Filters | None, unwanted: Sequence[str] = (), cosine: bool = True) -> list[Hit]:
        """The fused ranking of :meth:`search_text` with ``keywords``, in one snapshot; files
        whose words match an ``unwanted`` text are left out of the keyword side. ``cosine``:
        the hits' scores are cosines (:func:`_reported`)."""
        from engine.keywords import fuse
        if k < 1:
            raise InvalidQuery(f"k must be ≥ 1, got {k}")
        pool = max(KEYWORD_POOL, 5 * k)
        by_sound = self._search(conn, snap, q, pool, filters, per_file=True, cosine=False)   # ranked as found
        allowed = None
        if filters is not None and filters.active:
            allowed = np.unique(snap.seg_file[snap.rows(self._allowed(conn, snap, filters))])
        word_index = self._keywords(conn, snap)
        kw_ids, kw_scores = word_index.scores(text, allowed)
        for term in unwanted:
            keep = ~np.isin(kw_ids, word_index.containing_all(term))
            kw_ids, kw_scores = kw_ids[keep], kw_scores[keep]
        if len(kw_ids) > pool:     # the pool, and every file tied with its last (up to 10 pools)
            tied = int(np.searchsorted(-kw_scores, -kw_scores[pool - 1], side="right"))
            kw_ids, kw_scores = kw_ids[:min(tied, 10 * pool)], kw_scores[:min(tied, 10 * pool)]
        bm25 = dict(zip(kw_ids.tolist(), kw_scores.tolist()))
        best = {h.file_id: (h.score, h.segment_id) for h in by_sound}
        best.update(self._best_segments(snap, kw_ids[~np.isin(kw_ids, list(best))], q[0]))
        # equal BM25 (names alike but for a number) keeps the sound's order, not the file ids'
        by_words = sorted((int(f) for f in kw_ids if int(f) in best),
                          key=lambda f: (-round(bm25[f], 9), -best[f][0], f))[:pool]
        order = fuse([h.file_id for h in by_sound], by_words)[:k]
        hits = self._hits(conn, snap, [(f, best[f]) for f in order], per_file=True, cosine=cosine)
        for h in hits:
            h.keywords = float(bm25.get(h.file_id, 0.0))
        self._place_at_markers(conn, snap, hits, text, q[0], cosine)   # a marker word every file holds scores 0 yet names the take
        return hits

    @staticmethod
    def _place_at_markers(conn: Connection, snap: _Snapshot, hits: list[Hit], text: str, q: np.ndarray,
                          cosine: bool = True) -> None:
        """Hits whose file has a named marker sharing words with ``text`` (a word written
        together counting as its parts: "GATELATCH" for "gate latch") move to the segment
        around that marker (the one whose middle is nearest it; the most words in common, then the
        earliest marker), with that segment's cosine as score (:func:`_reported`)."""
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
            h.score = _reported(float(snap.vectors(ids[i:i + 1])[0] @ q), cosine)
            h.marker, h.marker_at = name, float(starts[i]) if at_take.any() else float(at)

    @staticmethod
    def _best_segments(snap: _Snapshot, file_ids: np.ndarray, q: np.ndarray) -> dict[int, tuple[float, int]]:
        """file id → (best cosine with ``q``, its segment id), from the stored vectors."""
        mask = np.isin(snap.seg_file, file_ids)
        if not mask.any() or snap.index is None:
            return {}
        ids, files = snap.seg_ids[mask], snap.seg_file[mask]
        cos = snap.vectors(ids) @ q
        order = np.lexsort((-cos, files))                     # by file, best segment first
        keys, first = np.unique(files[order], return_index=True)
        return {int(f): (float(cos[order][i]), int(ids[order][i])) for f, i in zip(keys, first)}

    def _keywords(self, conn: Connection, snap: _Snapshot) -> Any:
        """The snapshot's KeywordIndex (paths, tags, captions, the descriptions files carry and
        the library sheets give them: engine.file_metadata.SEARCHED_KEYS_WITH_SHEETS), built on first use and again
        when tags, captions or file metadata change (``soundsift caption --index`` adds them
        between generations; an index run may read files' metadata again)."""
        from engine.keywords import KeywordIndex
        stamp = tuple(conn.exec_driver_sql(
            "SELECT (SELECT count(*) FROM tags), (SELECT max(id) FROM tags), "
            "(SELECT count(*) FROM captions), (SELECT max(id) FROM captions), "
            "(SELECT value FROM meta WHERE key = 'metadata_replaced_at'), "
            "(SELECT value FROM meta WHERE key = 'tags_changed_at')").fetchone())
        with snap.keyword_lock:
            if snap.keywords is None or snap.keywords[0] != stamp:
                docs = [(fid, os.path.splitext(path)[0])        # folders and name, not the extension
                        for fid, path in conn.exec_driver_sql("SELECT id, path FROM files")]
                docs += conn.exec_driver_sql("SELECT file_id, label FROM tags").fetchall()
                docs += conn.exec_driver_sql("SELECT file_id, text FROM captions").fetchall()
                if has_table(conn, "file_metadata"):     # catalogs from before it have none
                    docs += conn.exec_driver_sql(
                        "SELECT file_id, value FROM file_metadata WHERE key IN "
                        f"({','.join('?' * len(SEARCHED_KEYS_WITH_SHEETS))})", SEARCHED_KEYS_WITH_SHEETS).fetchall()
                snap.keywords = (stamp, KeywordIndex.build(docs))
            return snap.keywords[1]

    def search_audio(self, path_or_waveform: zeroshot.AudioInput, k: int = 10,
                     filters: Filters | None = None, per_file: bool = True,
                     sample_rate: int | None = None, start: float | None = None,
                     end: float | None = None) -> list[Hit]:
        """Files most like the given audio (its segment vectors' mean, re-normalised); with
        ``start``/``end`` (seconds), like that part of it."""
        k = _check_k(k)
        _check_rate(path_or_waveform, sample_rate)
        zeroshot.check_span(start, end)
        if start is None and end is None:
            return self._search_embedded(
                lambda model: self._audio_vector(model, path_or_waveform, sample_rate), k, filters, per_file)

        def embed(model: AudioTextModel) -> np.ndarray:
            wave, rate = zeroshot.excerpt(model, path_or_waveform, sample_rate, start, end)
            return self._audio_vector(model, wave, rate)
        return self._search_embedded(embed, k, filters, per_file)

    def similar_to_file(self, path_or_file_id: str | Path | int, k: int = 10,
                        filters: Filters | None = None, per_file: bool = True,
                        start: float | None = None, end: float | None = None) -> list[Hit]:
        """"More like this" for an indexed file, from its stored vectors (it comes first, score 1).

        With ``start``/``end`` (seconds), more like that moment: the stored vectors of its
        segments inside the span are the query (nothing is decoded; a hit's ``start``/``end``
        give exactly the segment it matched). A span holding no whole segment (shorter than one,
        or straddling two) is decoded from the file and embedded, as :meth:`search_audio` does an
        excerpt, so a 1 s door slam in a long field recording is the query, not the 10 s windows
        around it; the file comes first as its stored segment holding most of the span (score 1:
        the moment is its own). Such a span needs at least :data:`engine.zeroshot.MIN_SPAN` s.
        When the file cannot be decoded now (moved, deleted or unreadable since it was indexed),
        its stored segments overlapping the span are the query instead, with a logged warning."""
        k = _check_k(k)
        zeroshot.check_span(start, end)

        def run(conn: Connection, snap: _Snapshot) -> list[Hit] | tuple[int, str, float, float]:
            file_id = self._resolve_file(conn, path_or_file_id)
            mine = snap.seg_file == file_id
            ids = snap.seg_ids[mine]
            if len(ids) == 0 or snap.index is None:
                raise InvalidQuery(f"file {path_or_file_id} has no vectors in index {self.root}")
            if start is not None or end is not None:
                a, b = start or 0.0, np.inf if end is None else end
                seg_start, seg_end = snap.seg_start[mine], snap.seg_end[mine]
                overlap = (seg_end > a) & (seg_start < b)
                if not overlap.any():   # segments tile the file: only a start past its end is left
                    path = conn.execute(select(File.path).where(File.id == file_id)).scalar()
                    raise InvalidQuery(f"{path} is {float(seg_end.max()):.2f} s long; "
                                       f"the start time {a:g} s is past its end")
                inside = (seg_start >= a - 1e-6) & (seg_end <= b + 1e-6)
                if not inside.any():    # a moment inside the segments: decoded (_similar_to_moment)
                    path = conn.execute(select(File.path).where(File.id == file_id)).scalar()
                    return file_id, str(path), a, min(b, float(seg_end.max()))
                ids = ids[inside]
            return self._similar_to_segments(conn, snap, file_id, ids, k, filters, per_file)
        found = self._with_snapshot(run)
        return found if isinstance(found, list) else self._similar_to_moment(*found, k, filters, per_file)

    def _similar_to_segments(self, conn: Connection, snap: _Snapshot, file_id: int, ids: np.ndarray,
                             k: int, filters: Filters | None, per_file: bool) -> list[Hit]:
        """Search by the stored vectors of the segments ``ids`` (evenly spaced, at most
        :data:`MAX_QUERY_SEGMENTS`), the file ``file_id`` first."""
        if len(ids) > MAX_QUERY_SEGMENTS:
            ids = ids[np.linspace(0, len(ids) - 1, MAX_QUERY_SEGMENTS).round().astype(int)]
        return _query_file_first(self._search(conn, snap, snap.vectors(ids), k, filters, per_file), file_id)

    @staticmethod
    def _moment_segments(snap: _Snapshot, file_id: int, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
        """The ids of file ``file_id``'s stored segments overlapping ``a``–``b`` s, and the seconds
        of the span each holds."""
        mine = snap.seg_file == file_id
        held = np.minimum(snap.seg_end[mine], b) - np.maximum(snap.seg_start[mine], a)
        return snap.seg_ids[mine][held > 0], held[held > 0]

    def _similar_to_moment(self, file_id: int, path: str, a: float, b: float, k: int,
                           filters: Filters | None, per_file: bool) -> list[Hit]:
        """:meth:`similar_to_file` for the span ``a``–``b`` s of ``path`` that holds no whole
        segment: that excerpt decoded and embedded is the query; where it cannot be decoded now,
        the stored segments overlapping it are (a logged warning says why)."""
        from engine.errors import UnreadableAudio
        zeroshot.check_span_length(path, a, b, b - a)
        query: list[np.ndarray] = []

        def embed(model: AudioTextModel) -> np.ndarray:
            wave, rate = zeroshot.excerpt(model, path, None, a, b)
            query[:] = [self._audio_vector(model, wave, rate)]
            return query[0]

        def overlapping(conn: Connection, snap: _Snapshot) -> list[Hit]:
            ids = self._moment_segments(snap, file_id, a, b)[0]
            return self._similar_to_segments(conn, snap, file_id, ids, k, filters, per_file)

        if not Path(path).is_file():
            log.warning("%s is not on disk now (moved or deleted since it was indexed): more like its "
                        "moment %g–%g s searches by its stored segments overlapping it", path, a, b)
            return self._with_snapshot(overlapping)
        try:
            hits = self._search_embedded(embed, k, filters, per_file)
        except UnreadableAudio as e:
            log.warning("%s cannot be decoded now (%s): more like its moment %g–%g s searches by its "
                        "stored segments overlapping it", path, e.reason, a, b)
            return self._with_snapshot(overlapping)
        return self._with_snapshot(lambda conn, snap: self._moment_first(
            conn, snap, hits, file_id, a, b, query[0], k, filters, per_file))

    def _moment_first(self, conn: Connection, snap: _Snapshot, hits: list[Hit], file_id: int, a: float,
                      b: float, query: np.ndarray, k: int, filters: Filters | None, per_file: bool) -> list[Hit]:
        """``hits`` (at most ``k``) led by the query file's own hit, as :meth:`similar_to_file`
        gives it: its stored segment holding most of ``a``–``b`` s (of those, the one closest to
        ``query``), score 1; unless ``filters`` leave the file out."""
        ids, held = self._moment_segments(snap, file_id, a, b)
        if filters is not None and filters.active:
            keep = np.isin(ids, self._allowed(conn, snap, filters))
            ids, held = ids[keep], held[keep]
        if len(ids) == 0:           # filtered out (or gone from the index since the search)
            return hits
        closeness = snap.vectors(ids) @ np.asarray(query, np.float32).reshape(-1)
        best = int(ids[np.lexsort((-closeness, -np.round(held, 6)))[0]])
        own = self._hits(conn, snap, [(file_id, (1.0, best))], per_file, cosine=True)
        rest = [h for h in hits if (h.file_id != file_id if per_file else h.segment_id != best)]
        return (own + rest)[:k]

    def similar_to_files(self, examples: Sequence[str | Path | int], k: int = 10, filters: Filters | None = None,
                         per_file: bool = True) -> list[Hit]:
        """"More like these": files that sound like the examples together. The query is the mean
        of the examples' unit vectors (an indexed file's from its stored segment vectors, any
        other file embedded now), so what they share counts most. Paths or file ids (one
        path or id alone is one example)."""
        k = _check_k(k)
        examples = _one_or_many(examples)
        if len(examples) == 0:
            raise InvalidQuery("give at least one example to search by")
        indexed: dict[int, int] = {}          # position → file id
        with self._read() as conn:
            for i, e in enumerate(examples):
                if isinstance(e, (int, np.integer)):
                    indexed[i] = self._resolve_file(conn, e)
                else:
                    try:
                        indexed[i] = self._resolve_file(conn, str(e))
                    except InvalidQuery:
                        pass                   # not in the index: embedded below

        def embed(model: AudioTextModel) -> np.ndarray:
            outside = [self._audio_vector(model, e, None) for i, e in enumerate(examples) if i not in indexed]
            stored = self._with_snapshot(lambda conn, snap: [self._file_vector(snap, f) for f in indexed.values()])
            return l2_normalize(np.mean(np.vstack([*stored, *outside]), axis=0))
        return self._search_embedded(embed, k, filters, per_file)

    def file_vector(self, path_or_file_id: str | Path | int) -> np.ndarray:
        """An indexed file's unit vector from its stored segment vectors (nothing is decoded)."""
        return self._with_snapshot(lambda conn, snap: self._file_vector(snap, self._resolve_file(conn, path_or_file_id)))

    @staticmethod
    def _file_vector(snap: _Snapshot, file_id: int) -> np.ndarray:
        """A file's unit vector: the mean of its stored segment vectors, re-normalised."""
        ids = snap.seg_ids[snap.seg_file == file_id]
        if len(ids) == 0:
            raise InvalidQuery(f"file id {file_id} has no vectors in this index")
        return l2_normalize(snap.vectors(ids).mean(axis=0))

    def search_vectors(self, queries: np.ndarray, k: int = 10, filters: Filters | None = None,
                       per_file: bool = True) -> list[Hit]:
        """Search by vector(s), one (1-D) or rows (2-D); with several, a segment scores its best
        match to any. Each is scaled to unit length first, so scores are cosines, clamped to
        [-1, 1] (:func:`_reported`). InvalidQuery for NaN/Inf, an all-zero vector, no rows, or
        another width than the index's."""
        k = _check_k(k)
        return self._search_query(query_matrix(queries), k, filters, per_file, fingerprint=None)

    def _search_embedded(self, embed: Callable[[AudioTextModel], np.ndarray], k: int,
                         filters: Filters | None, per_file: bool, words: str | None = None,
                         unwanted_words: Sequence[str] = (), cosine: bool = True) -> list[Hit]:
        """Search by the query ``embed(model)`` makes with the index's model; made again with
        the new model when a rebuild swaps in another one between embedding and searching.
        ``words``: fuse with a keyword search for them, without files matching ``unwanted_words``
        (:meth:`search_text`). ``cosine``: the query is unit vectors (:func:`_reported`)."""
        for _ in range(_RELOAD_RETRIES):
            model = self.model
            try:
                return self._search_query(embed(model), k, filters, per_file,
                                          fingerprint=str(model.fingerprint), words=words,
                                          unwanted_words=unwanted_words, cosine=cosine)
            except _QueryModelChanged:
                log.info("%s: the index changed model during a query; embedding it again", self.root)
        raise IndexBusy(f"index {self.root} changed model {_RELOAD_RETRIES} times during one query "
                        "(is it being rebuilt over and over?); search again")

    def _search_query(self, queries: np.ndarray, k: int, filters: Filters | None, per_file: bool,
                      fingerprint: str | None, words: str | None = None,
                      unwanted_words: Sequence[str] = (), cosine: bool = True) -> list[Hit]:
        """Search by query vectors made by the model with ``fingerprint`` (None: unknown);
        with ``words``, fused with a keyword search for them. ``cosine``: the queries are unit
        vectors, their scores cosines (:func:`_reported`)."""
        from engine.vectors import as_query
        q = as_query(queries)

        def run(conn: Connection, snap: _Snapshot) -> list[Hit]:
            if fingerprint is not None and fingerprint != snap.fingerprint:
                raise _QueryModelChanged()
            if snap.dim is not None and q.shape[1] != snap.dim:
                raise InvalidQuery(f"query vectors have {q.shape[1]} dims; index {self.root} "
                                   f"holds {snap.dim}-dim vectors")
            if words is not None:
                return self._keyword_search(conn, snap, words, q, k, filters, unwanted_words, cosine)
            return self._search(conn, snap, q, k, filters, per_file, cosine)
        return self._with_snapshot(run)

    def allowed_segment_ids(self, filters: Filters) -> np.ndarray:
        """Sorted ids of the segments whose files ``filters`` keeps."""
        return self._with_snapshot(lambda conn, snap: self._allowed(conn, snap, filters))

    def _allowed(self, conn: Connection, snap: _Snapshot, filters: Filters) -> np.ndarray:
        """Sorted segment ids of the files ``filters`` keeps (cached per generation, and per state
        of what changes between generations: tags for a tag filter, the files' metadata and
        measured levels for a category or loudness filter)."""
        key: tuple[Any, ...] = (snap.key, filters)
        if filters.tags:
            key += tuple(conn.exec_driver_sql(
                "SELECT count(*), max(id), (SELECT value FROM meta WHERE key = 'tags_changed_at') "
                "FROM tags").fetchone())
        if filters.categories or filters.min_loudness is not None or filters.max_loudness is not None:
            key += tuple(conn.exec_driver_sql(
                "SELECT value FROM meta WHERE key = 'metadata_replaced_at'").fetchall())
        hit = self._allowed_cache.get(key)
        if hit is not None:
            return hit
        self._check_filters(conn, filters)
        file_ids = np.fromiter(conn.execute(filters.file_ids_query()).scalars(), dtype=np.int64)
        allowed = snap.seg_ids[np.isin(snap.seg_file, file_ids)]
        if len(self._allowed_cache) > 32:
            self._allowed_cache.clear()
        self._allowed_cache[key] = allowed
        return allowed

    def _check_filters(self, conn: Connection, filters: Filters) -> None:
        """InvalidQuery for a category filter on a catalog from before embedded metadata."""
        filters.check_catalog(conn, self.root)

    def _search(self, conn: Connection, snap: _Snapshot, q: np.ndarray, k: int,
                filters: Filters | None, per_file: bool, cosine: bool = True) -> list[Hit]:
        """The top ``k`` hits (files, or segments without ``per_file``) for the query vectors
        ``q``, ranked by their scores as FAISS gives them; ``cosine``: the query is unit vectors,
        and the hits report their scores clamped to [-1, 1] (:func:`_reported`)."""
        import faiss
        if k < 1:
            raise InvalidQuery(f"k must be ≥ 1, got {k}")
        n_allowed = snap.ntotal
        if filters is not None and filters.active:
            allowed = self._allowed(conn, snap, filters)
            n_allowed = len(allowed)
            selector = faiss.IDSelectorBatch(allowed)
        else:
            selector = None
        if n_allowed == 0 or snap.index is None:
            return []
        nprobe: int | None = None          # meta's, until the probed lists hold too few items
        search = self._searcher(snap, selector, n_allowed)
        if per_file:
            avg = max(1.0, len(snap.seg_ids) / max(1, snap.n_files))
            fetch = min(n_allowed, int(k * avg * 2) + 16)
        else:
            fetch = min(n_allowed, k)
        while True:
            D, I, found, wanted = search(q, fetch)
            if found < wanted:     # the lists probed held fewer allowed items than needed
                wider = self._wider_probe(snap, nprobe, 4.0 if found == 0 else 1.25 * wanted / found)
                if wider is not None:
                    nprobe = wider
                    search = self._searcher(snap, selector, n_allowed, nprobe)
                    continue
            best = self._best(snap, D, I, per_file)
            # every unseen item scores ≤ the fetch-th score of each query
            full = I[:, -1] >= 0
            threshold = float(D[full, -1].max()) if full.any() else -np.inf
            certain = sum(1 for s, _ in best.values() if s >= threshold)
            if not per_file or certain >= k or fetch >= n_allowed:
                break
            fetch = min(n_allowed, fetch * 4)
        top = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[:k]
        return self._hits(conn, snap, top, per_file, cosine=cosine)

    @staticmethod
    def _tuned_nprobe(snap: _Snapshot) -> tuple[int, int] | None:
        """``(nprobe, nlist)``: the lists an IVF index probes as tuned (meta's, else the
        file's) and all its lists; None for an index without lists."""
        probes = probe_range(snap.index)
        if probes is None:
            return None
        stored, nlist = probes
        return int(snap.params.get("nprobe") or stored), nlist

    @classmethod
    def _wider_probe(cls, snap: _Snapshot, nprobe: int | None, grow: float) -> int | None:
        """The next ``nprobe`` of an IVF index whose probed lists (``nprobe``; None: the tuned
        value) held too few allowed items: about ``grow`` × more (1.25–4×, at least one more),
        up to every list; None when the index has no lists or all were probed already.

        nprobe is tuned for recall on the whole index: a filter keeping few files (or a
        per-file search asking for many segments) can find too few of its items, or none, in
        the lists nearest the query, though more exist in the others."""
        tuned = cls._tuned_nprobe(snap)
        if tuned is None:
            return None
        current, nlist = nprobe or tuned[0], tuned[1]
        if current >= nlist:
            return None
        return min(nlist, max(current + 1, math.ceil(current * min(4.0, max(1.25, grow)))))

    @staticmethod
    def _searcher(snap: _Snapshot, selector: Any, n_allowed: int, nprobe: int | None = None) -> Any:
        """``(queries, n) → (scores, ids, found, wanted)`` for this snapshot: GPU copy when
        unfiltered, else the CPU index with the id selector; re-ranked where the index wants it
        (from ``n · rerank`` candidates, at most ``n_allowed``). ``found``: the fewest items (or
        candidates to re-rank) the index gave a query; ``wanted``: how many it should have: ``n``,
        and for a filtered re-ranked search half the candidates the tuned nprobe's lists hold
        on average (the pool the tuning measured recall with; a filter keeping a share of the
        files finds that share of it in those lists). ``nprobe``: lists to probe instead of the
        tuned value (on the CPU copy)."""
        if selector is None and snap.gpu is not None and nprobe is None:
            def base(q: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
                with snap.gpu_lock:            # faiss GPU resources are not thread-safe
                    return snap.gpu.search(q, n)
        else:
            params = search_parameters(snap.index, selector,
                                       snap.params if nprobe is None else {**snap.params, "nprobe": nprobe})

            def base(q: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
                return snap.index.search(q, n, params=params)
        factor = snap.rerank
        tuned = SoundIndex._tuned_nprobe(snap) if factor and selector is not None else None
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

    @staticmethod
    def _best(snap: _Snapshot, D: np.ndarray, I: np.ndarray,
              per_file: bool) -> dict[int, tuple[float, int]]:
        """key (file id, or segment id) → (best score, its segment id)."""
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
        return {int(keys[i]): (float(scores[i]), int(ids[i])) for i in first}

    def _hits(self, conn: Connection, snap: _Snapshot, top: list[tuple[int, tuple[float, int]]],
              per_file: bool, cosine: bool = False) -> list[Hit]:
        """Hits for ``top`` ((key, (score, segment id)), ranked), with their files' details;
        ``cosine``: the scores are cosines, reported clamped to [-1, 1] (:func:`_reported`)."""
        if not top:
            return []
        seg_ids = np.array([seg for _, (_, seg) in top], dtype=np.int64)
        rows = snap.rows(seg_ids)
        file_ids = snap.seg_file[rows]
        wanted = sorted(set(file_ids.tolist()))
        files = {}
        for i in range(0, len(wanted), _SQL_CHUNK):
            chunk = tuple(wanted[i:i + _SQL_CHUNK])
            files.update((r[0], r) for r in conn.exec_driver_sql(
                "SELECT id, path, duration, format, sample_rate FROM files WHERE id IN "
                f"({','.join('?' * len(chunk))})", chunk).fetchall())
        hits = []
        for (_, (score, seg)), row, fid in zip(top, rows, file_ids):
            f = files.get(int(fid))
            if f is None:  # the catalog lost the file: a broken commit; skip it, loudly
                log.warning("%s: segment %d points at missing file %d", self.root, seg, fid)
                continue
            _, path, duration, fmt, rate = f
            hits.append(Hit(path=path, start=float(snap.seg_start[row]), end=float(snap.seg_end[row]),
                            score=_reported(score, cosine), file_id=int(fid), segment_id=seg,
                            duration=float(duration),
                            format=str(fmt), sample_rate=int(rate)))
        fields = stored_metadata(conn, [h.file_id for h in hits], ("markers", *ABOUT_LINE_KEYS))   # one lookup
        self._name_takes(snap, hits, _markers_of(fields))
        on_disk = {p: os.path.exists(p) for p in {h.path for h in hits}}
        for h in hits:      # what the file (or a library sheet) says it is: category, title, description
            said = {k: v for k, v in fields.get(h.file_id, {}).items() if k != "markers"}
            h.about = about_line(with_sheet(said)) or None
            h.missing = None if on_disk[h.path] else True
        return hits

    @staticmethod
    def _name_takes(snap: _Snapshot, hits: list[Hit], found: dict[int, list[tuple[float, str]]]) -> None:
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

    # ------------------------------------------------------ audio and zero-shot
    def audio_vector(self, audio: zeroshot.AudioInput, sample_rate: int | None = None) -> np.ndarray:
        """Unit query vector of a file or waveform (mean of its segment vectors)."""
        _check_rate(audio, sample_rate)
        return self._audio_vector(self.model, audio, sample_rate)

    def _audio_vector(self, model: AudioTextModel, audio: zeroshot.AudioInput,
                      sample_rate: int | None) -> np.ndarray:
        return zeroshot.audio_query_vector(model, audio, sample_rate, self.policy)

    def rank_texts(self, audio: zeroshot.AudioInput, texts: Sequence[str],
                   sample_rate: int | None = None) -> list[tuple[str, float]]:
        """``(text, cosine)`` best first: which captions or labels fit ``audio`` (one string
        is one text)."""
        _check_rate(audio, sample_rate)
        texts = [texts] if isinstance(texts, str) else list(texts)
        model = self.model                 # one model for both sides, even across a rebuild
        return zeroshot.rank_texts(model, self._audio_vector(model, audio, sample_rate), texts)

    def tag(self, audio: zeroshot.AudioInput, labels: Sequence[str] | None = None, top: int = 5,
            template: str = zeroshot.DEFAULT_TEMPLATE,
            sample_rate: int | None = None) -> list[dict[str, Any]]:
        """Zero-shot tags ``{"label", "score", "cosine"}`` best first (see engine.zeroshot).
        ``labels``: None or empty for the default vocabulary; one string is one label.
        :meth:`tag_with_notes` also says when the scores say little."""
        return self.tag_with_notes(audio, labels, top, template, sample_rate)[0]

    def tag_with_notes(self, audio: zeroshot.AudioInput, labels: Sequence[str] | None = None, top: int = 5,
                       template: str = zeroshot.DEFAULT_TEMPLATE, sample_rate: int | None = None, *,
                       name: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
        """:meth:`tag`'s tags, and the notes ``soundsift tag``, the page and the HTTP API's /tag
        give with them when the scores say little (engine.tagging.tag_notes): one label (it scores
        1 for every sound) and a sound under 0.1 s (too short to be told apart); none when the
        scores can be read as they are. ``name``: what a note calls the sound (default: the
        path given, or "the waveform")."""
        from engine.tagging import COSINE_ADVICE, tag_notes
        from engine.vocabulary import default_labels
        _check_rate(audio, sample_rate)
        if isinstance(labels, str):
            labels = [labels]
        model = self.model
        labels = list(labels) if labels else default_labels(model)
        vector, seconds = self._audio_vector_and_seconds(model, audio, sample_rate)
        tags = zeroshot.tag(model, vector, labels, top, template)
        if name is None:
            name = str(audio) if isinstance(audio, (str, Path)) else "the waveform"
        return tags, tag_notes(labels, [(name, seconds)], COSINE_ADVICE)

    def _audio_vector_and_seconds(self, model: AudioTextModel, audio: zeroshot.AudioInput,
                                  sample_rate: int | None) -> tuple[np.ndarray, float]:
        """:meth:`_audio_vector`, and the seconds of audio it was made of (the end of its last
        segment: a file's length as decoded, a waveform's)."""
        if isinstance(audio, (str, Path)):
            return zeroshot.file_query_vector(model, audio, self.policy)
        spans, vectors = zeroshot.waveform_segment_vectors(model, audio, sample_rate, self.policy)
        return l2_normalize(vectors.mean(axis=0)), max(end for _, end in spans)

    # --------------------------------------------------------------- catalog
    def _resolve_file(self, conn: Connection, path_or_file_id: str | Path | int) -> int:
        if isinstance(path_or_file_id, (bool, np.bool_)):
            raise InvalidQuery(f"a file is a path or a file id, not {path_or_file_id!r}")
        if isinstance(path_or_file_id, (int, np.integer)):
            found = conn.execute(select(File.id).where(File.id == int(path_or_file_id))).scalar()
        else:
            candidates = [str(path_or_file_id)]
            p = Path(path_or_file_id).expanduser()
            for alt in (p.absolute(), p.resolve()):
                if str(alt) not in candidates:
                    candidates.append(str(alt))
            found = conn.execute(select(File.id).where(File.path.in_(candidates)).limit(1)).scalar()
            if found is None:
                found = self._other_normal_form(conn, candidates, str(p.absolute()))
        if found is None:
            raise InvalidQuery(f"{path_or_file_id} is not in index {self.root}; index it first, "
                               "or search by its audio instead (`soundsift similar` does that)")
        return int(found)

    @staticmethod
    def _other_normal_form(conn: Connection, candidates: list[str], typed: str) -> int | None:
        """The indexed file that ``candidates`` (the spellings of the path ``typed``) name in their
        other Unicode normal form: "é" typed composed (NFC) for a file indexed from a macOS HFS+
        disk decomposed (NFD, "e" + U+0301), or the reverse. None where there is none, or where
        ``typed`` opens another file than the indexed one (Linux keeps the two spellings apart;
        APFS opens either)."""
        spellings = dict.fromkeys(form for c in candidates for form in normal_forms(c))
        forms = [f for f in spellings if f not in candidates]
        if not forms:
            return None
        row = conn.execute(select(File.id, File.path).where(File.path.in_(forms)).limit(1)).first()
        if row is None:
            return None
        if os.path.lexists(typed):
            try:
                same = os.path.samefile(typed, row.path)
            except OSError as e:
                log.debug("%s is not taken for %s (%s)", row.path, typed, e)
                same = False
            if not same:
                log.debug("%s is another file than the indexed %s", typed, row.path)
                return None
        return int(row.id)

    def file_segments(self, path_or_file_id: str | Path | int) -> tuple[list[Hit], np.ndarray]:
        """An indexed file's stored segments in time order (as hits, score 0; a marked take named
        as in a search) and their vectors (n, dim)."""
        def run(conn: Connection, snap: _Snapshot) -> tuple[list[Hit], np.ndarray]:
            file_id = self._resolve_file(conn, path_or_file_id)
            mine = np.flatnonzero(snap.seg_file == file_id)
            mine = mine[np.lexsort((snap.seg_end[mine], snap.seg_start[mine]))]
            ids = snap.seg_ids[mine]
            hits = self._hits(conn, snap, [(file_id, (0.0, int(i))) for i in ids], per_file=False)
            return hits, snap.vectors(ids) if len(ids) else np.zeros((0, snap.dim or 0), np.float32)
        return self._with_snapshot(run)

    def file_id_for_path(self, path: str | Path) -> int | None:
        """The file id of an indexed path, or None."""
        with self._read() as conn:
            try:
                return self._resolve_file(conn, str(path))
            except InvalidQuery:
                return None

    def file_states(self, paths: Sequence[str | Path] | None = None) -> dict[str, tuple[int, int]]:
        """Each indexed file's ``(size, mtime_ns)`` as the catalog recorded it when the file was
        indexed: every file's, under its catalog path; or, given ``paths``, theirs under the path
        as given, each found as every look-up by path finds it (relative, through links, in the
        other Unicode normal form); paths not indexed are left out."""
        with self._read() as conn:
            if paths is None:
                return {str(p): (int(size), int(mtime)) for p, size, mtime in
                        conn.execute(select(File.path, File.size, File.mtime_ns))}
            found = {}
            for given in paths:
                try:
                    file_id = self._resolve_file(conn, given)
                except InvalidQuery:
                    continue
                size, mtime = conn.execute(select(File.size, File.mtime_ns).where(File.id == file_id)).one()
                found[str(given)] = (int(size), int(mtime))
            return found

    def get_file(self, file_id: int) -> dict[str, Any]:
        """Catalog record of one file: path, size, duration, format, rate, channels, segments,
        the metadata it carries (title, comment, bext description …; where it says nothing under
        a key, what an imported library sheet says, and ``sheet`` names that sheet) and its
        ``levels`` measured when it was indexed (``peak_dbfs``, ``loudness_lufs``; empty for
        files indexed before)."""
        with self._read() as conn:
            f = conn.execute(select(File.id, File.path, File.size, File.duration, File.format,
                                    File.subtype, File.sample_rate, File.channels)
                             .where(File.id == int(file_id))).first()
            if f is None:
                raise InvalidQuery(f"file id {file_id} is not in index {self.root}")
            segs = conn.execute(select(SegmentRow.id, SegmentRow.start, SegmentRow.end)
                                .where(SegmentRow.file_id == int(file_id)).order_by(SegmentRow.id)).all()
            embedded = (dict(conn.execute(select(FileMetadata.key, FileMetadata.value)
                                          .where(FileMetadata.file_id == int(file_id))
                                          .order_by(FileMetadata.key)).all())
                        if has_table(conn, "file_metadata") else {})
        return {"file_id": int(f.id), "path": f.path, "folder": os.path.dirname(f.path),
                "size": int(f.size), "duration": float(f.duration), "format": f.format,
                "subtype": f.subtype, "sample_rate": int(f.sample_rate), "channels": int(f.channels),
                "segments": [{"segment_id": int(s.id), "start": float(s.start), "end": float(s.end)}
                             for s in segs],
                "metadata": {k: v for k, v in with_sheet(embedded).items() if k not in INDEXER_KEYS},
                "levels": {k: float(embedded[k]) for k in LEVEL_KEYS if k in embedded},
                **({"sheet": embedded[SHEET_NAME_KEY]} if SHEET_NAME_KEY in embedded else {})}

    def errors(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Files that could not be indexed: ``{"path", "reason", "at"}``, newest first."""
        with self._read() as conn:
            stmt = select(ErrorRow.path, ErrorRow.reason, ErrorRow.at).order_by(ErrorRow.at.desc())
            if limit is not None:
                stmt = stmt.limit(limit)
            return [{"path": r.path, "reason": r.reason, "at": float(r.at)} for r in conn.execute(stmt)]

    def why_no_file(self, filters: Filters) -> list[str]:
        """The values of ``filters`` no indexed file has (:meth:`Filters.unavailable`), for a
        search that found nothing: a format, rate, category or tag the index does not hold, a
        duration or loudness beyond every file's."""
        facets = self.facets()
        with self._read() as conn:
            tags = list(conn.execute(select(Tag.label).distinct()).scalars()) if filters.tags else []
            extensions = [f for f in filters.formats if conn.execute(
                select(File.id).where(has_extension(f)).limit(1)).first()]
        return filters.unavailable(facets, tags, extensions)

    def facets(self) -> dict[str, Any]:
        """What the filters can choose from: formats, sample rates, channel counts, duration
        range, the library categories files carry (empty when none does) and the range of
        measured loudness (LUFS; None when no file was measured)."""
        with self._read() as conn:
            formats = sorted(conn.execute(select(File.format).distinct()).scalars())
            rates = sorted(conn.execute(select(File.sample_rate).distinct()).scalars())
            channels = sorted(conn.execute(select(File.channels).distinct()).scalars())
            lo, hi = conn.execute(select(func.min(File.duration), func.max(File.duration))).one()
            categories = (sorted(conn.execute(select(FileMetadata.value)
                                              .where(FileMetadata.key.in_(("category", SHEET_PREFIX + "category")))
                                              .distinct()).scalars(), key=str.upper)
                          if has_table(conn, "file_metadata") else [])
            quietest, loudest = (conn.execute(select(func.min(cast(FileMetadata.value, Float)),
                                                     func.max(cast(FileMetadata.value, Float)))
                                              .where(FileMetadata.key == "loudness_lufs")).one()
                                 if has_table(conn, "file_metadata") else (None, None))
        return {"formats": formats, "sample_rates": [int(r) for r in rates], "channels": [int(c) for c in channels],
                "min_duration": float(lo or 0.0), "max_duration": float(hi or 0.0), "categories": categories,
                "loudness": None if quietest is None else (float(quietest), float(loudest))}

    def info(self) -> dict[str, Any]:
        """Counts, model, fingerprint, dim, index type, generation, failed-file count."""
        def run(conn: Connection, snap: _Snapshot) -> dict[str, Any]:
            n_err = int(conn.execute(select(func.count(ErrorRow.id))).scalar() or 0)
            return {
                "index": str(self.root),
                "model": self.meta.get("model_name"),
                "fingerprint": self.meta.get("model_fingerprint"),
                "dim": self.meta.get("dim"),
                "sample_rate": self.meta.get("sample_rate"),
                "segment_policy": self.meta.get("segment_policy"),
                "index_type": self.meta.get("index_type") or _describe(snap.index),
                "generation": self.meta.get("generation"),
                "vectors_file": self.meta.get("vectors_file"),
                "files": snap.n_files,
                "segments": len(snap.seg_ids),
                "vectors": snap.ntotal,
                "errors": n_err,
            }
        return self._with_snapshot(run)

    def file_vectors(self, filters: Filters | None = None) -> FileVectors:
        """Every file's mean segment vector (unit length), duration and size: for the UI's
        library map, tagging from stored vectors and finding duplicates. ``filters``: only the
        files they keep."""
        def run(conn: Connection, snap: _Snapshot) -> FileVectors:
            query = select(File.id, File.path, File.duration, File.size)
            if filters is not None and filters.active:
                self._check_filters(conn, filters)
                query = query.where(*filters.conditions())
            files = {int(r.id): r for r in conn.execute(query)}
            dim = int(self.meta.get("dim") or (snap.index.d if snap.index is not None else 0))
            if snap.ntotal == 0:
                return FileVectors(np.zeros(0, np.int64), [], np.zeros((0, dim), np.float32),
                                   np.zeros(0), np.zeros(0, np.int64))
            if snap.raw is not None:
                ids, vecs = snap.seg_ids, snap.raw.vectors(snap.seg_ids)
            else:
                ids, vecs = all_vectors(snap.index, snap.seg_ids)
            keep = np.isin(ids, snap.seg_ids)
            ids, vecs = ids[keep], vecs[keep]
            fids = snap.seg_file[snap.rows(ids)]
            uniq, inv = np.unique(fids, return_inverse=True)
            # each file's segments summed as one run of rows: 0.8 s at 40,000 files, np.add.at 2.0 s
            order = np.argsort(inv, kind="stable")
            starts = np.flatnonzero(np.r_[True, np.diff(inv[order]) != 0])
            sums = np.add.reduceat(vecs[order].astype(np.float64), starts, axis=0)
            rows = [files[int(f)] for f in uniq if int(f) in files]
            present = [i for i, f in enumerate(uniq) if int(f) in files]
            return FileVectors(uniq[present].astype(np.int64), [r.path for r in rows],
                               l2_normalize(sums[present]), np.array([float(r.duration) for r in rows]),
                               np.array([int(r.size) for r in rows], np.int64))
        return self._with_snapshot(run)


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

