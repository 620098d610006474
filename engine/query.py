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
5. *One hit per recording* (the default; ``collapse_copies=False`` turns it off): hits that are
   hard links or byte-identical copies of one file become one, listing the others as ``copies``,
   and more candidates are fetched until ``k`` recordings are certain (engine.query_copies): how
   many, FAISS's ranking tells before any hit is built (copies score exactly alike), each built once.

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

The parts live beside this module, each with one job: engine.query_inputs (checks of what a
caller gives), engine.query_hits (Hit, FileVectors, reported scores), engine.query_snapshot (a
generation's snapshot, the read transaction, reloading), engine.query_faiss (FAISS searches of a
snapshot), engine.query_keywords (the keyword side of a text search), engine.query_markers
(named markers on hits) and engine.query_catalog (files, failed files, facets, info, one vector
per file). Every name they took from here can still be imported from here.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Connection

from engine import query_catalog, zeroshot
from engine.catalog import SQL_CHUNK as _SQL_CHUNK
from engine.catalog import File, stored_metadata
from engine.errors import IndexBusy, IndexNotFound, InvalidQuery, ModelMismatch
from engine.file_metadata import ABOUT_LINE_KEYS, CUT_SHORT_KEY, about_line, with_sheet
from engine.filters import Filters
from engine.layout import IndexLayout, missing_index, resolve_index_dir
from engine.live_catalog import CatalogHandle, LiveCatalog
from engine.models.base import AudioTextModel, l2_normalize
from engine.query_catalog import allowed_segments, resolve_file
from engine.query_defaults import EXCLUDE_WEIGHT
from engine.query_copies import (HitsOnce, Rankings, SameRecording, collapse_copies, distinct_recordings, exact_ranking,
                                 led_by, planned, tied_segments)
from engine.query_faiss import Scans, rank_segments
from engine.query_hits import _TIE, FileVectors, Hit, _query_file_first, _reported, header_seconds
from engine.query_inputs import _check_filters, _check_k, _check_rate, _one_or_many, excluded_texts, query_matrix
from engine.query_keywords import fused_ranking
from engine.query_markers import _markers_of, name_takes, place_at_markers, score_exactly
from engine.query_snapshot import (_all_meta, _finished_meta, _generation_key, _QueryModelChanged, _ReadTxn, _Replaced,
                                   _Snapshot, _VectorsGone, load_snapshot)
from engine.segments import SegmentPolicy

__all__ = ["SoundIndex", "Hit", "Filters", "FileVectors", "IndexClosed"]

log = logging.getLogger(__name__)

#: most stored segments of one file used as queries by similar_to_file (evenly spaced)
MAX_QUERY_SEGMENTS = 32
#: files taken from each side (sound, keywords) before a keyword search fuses them (at least 5 k)
KEYWORD_POOL = 100
_RELOAD_RETRIES = 3


class IndexClosed(IndexNotFound):
    """A :class:`SoundIndex` was used after :meth:`SoundIndex.close` (or its ``with`` block)."""


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
        self._text_only = False            # load models for text queries only (SoundIndex.open)
        self._mismatch: str | None = None  # why the caller's model no longer fits a rebuilt index
        self._snap: _Snapshot | None = None
        self._lock = threading.RLock()
        self._allowed_cache: dict[tuple[Any, Filters], np.ndarray] = {}
        self._closed = False

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, index: str | Path | None = None,
             model: AudioTextModel | str | Path | None = None, *, text_only: bool = False) -> "SoundIndex":
        """Open the index ``index`` (a name under indexes/, or a folder; default 'default').

        ``model``: an AudioTextModel, or a name/path for :func:`engine.models.load_model`;
        by default the model that built the index, loaded on first use (and the new one
        after a rebuild). A model whose fingerprint differs from the index's raises
        :class:`ModelMismatch`, at open and after a rebuild to another model.
        ``text_only``: models are loaded with ``load_model(…, text_only=True)``, for a one-shot
        command whose queries are texts (the same vectors, without importing torch where the
        model allows; audio still works, loading the rest then).
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
            self._text_only = text_only
            if model is not None:
                if not isinstance(model, AudioTextModel):
                    model = self._load_model(model)
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
                model = self._load_model(self.meta.get("model_name"))
                self._check_model(model)
                self._model = model
            return self._model

    def _load_model(self, name: str | Path | None) -> AudioTextModel:
        from engine.models import load_model
        return load_model(name, text_only=True) if self._text_only else load_model(name)

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
            self._snap = load_snapshot(conn, self.root, key, meta)
            self.meta = meta
            self._allowed_cache.clear()
            log.debug("opened generation %s of %s (%d vectors)", key[1], self.root, self._snap.ntotal)
            return self._snap

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
            from engine.vectors import unreadable_vectors
            raise unreadable_vectors(str(last)) from last
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
                    exclude_weight: float = EXCLUDE_WEIGHT, collapse_copies: bool = True) -> list[Hit]:
        """Files (or segments, with ``per_file=False``) best matching ``text``.

        ``collapse_copies`` (the default): the names of one recording (hard links, byte-identical
        copies) are one hit, listing the others as ``copies``, and ``k`` recordings are returned
        (engine.query_copies); False: each name is a hit of its own.

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
        k, filters = _check_k(k), _check_filters(filters)
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
                                     cosine=not (unwanted and exclude_weight), collapse=collapse_copies)

    def _keyword_search(self, conn: Connection, snap: _Snapshot, text: str, q: np.ndarray, k: int,
                        filters: Filters | None, unwanted: Sequence[str] = (), cosine: bool = True,
                        collapse: bool = False) -> list[Hit]:
        """The fused ranking of :meth:`search_text` with ``keywords``, in one snapshot; files
        whose words match an ``unwanted`` text are left out of the keyword side. ``cosine``:
        the hits' scores are cosines (:func:`_reported`). ``collapse``: one hit per recording
        (engine.query_copies), its copies also found among the sound side's files (placed at
        their markers as the hits are, so a leader found there names the marker too)."""
        if k < 1:
            raise InvalidQuery(f"k must be ≥ 1, got {k}")
        pool = max(KEYWORD_POOL, 5 * k)
        by_sound = self._search(conn, snap, q, pool, filters, per_file=True, cosine=False)   # ranked as found
        allowed = None
        if filters is not None and filters.active:
            allowed = np.unique(snap.seg_file[snap.rows(self._allowed(conn, snap, filters))])

        bm25: dict[int, float] = {}

        def built(top: list[tuple[int, tuple[float, int]]]) -> list[Hit]:
            hits = self._hits(conn, snap, top, per_file=True, cosine=cosine)
            for h in hits:
                h.keywords = float(bm25.get(h.file_id, 0.0))
            # scored alike, from FAISS or the stored vectors (the keyword side's), so copies tie
            score_exactly(snap, hits, q[0], cosine)
            # a marker word every file holds scores 0 yet names the take
            place_at_markers(conn, snap, hits, text, q[0], cosine)
            return hits
        build = HitsOnce(built)         # a collapsed search's rounds build each hit once

        def fused(n: int) -> list[Hit]:
            top, scores = fused_ranking(conn, snap, text, q[0], n, pool, by_sound, allowed, unwanted)
            bm25.update(scores)
            return build(top)
        if not collapse:
            return fused(k)
        sound = [replace(h) for h in by_sound]          # by_sound ranks every round: left as found
        score_exactly(snap, sound, q[0], cosine)        # scored as the hits are
        # placed as the hits are: a copy's leader may come from here, and ties only where the spans match
        place_at_markers(conn, snap, sound, text, q[0], cosine)
        last: list[Hit] = []

        def fused_kept(n: int) -> list[Hit]:
            last[:] = fused(n)
            return last
        kept = distinct_recordings(fused_kept, k, by_score=False, extra=sound)
        outside = self._copies_outside(conn, snap, kept, last, by_sound, pool, filters, text, q[0], cosine)
        # the last round again, with the names neither side met: they only ever join a recording
        return collapse_copies(last, SameRecording(), (), [*sound, *outside], k) if outside else kept

    def _copies_outside(self, conn: Connection, snap: _Snapshot, kept: Sequence[Hit], met: Sequence[Hit],
                        by_sound: Sequence[Hit], pool: int, filters: Filters | None, text: str,
                        q: np.ndarray, cosine: bool) -> list[Hit]:
        """Candidates for names of the keyword search's recordings ``kept`` that neither its fused
        candidates ``met`` nor the sound side's ``pool`` best files ``by_sound`` hold: a hit the
        words brought in from below the pool has its copies' sound score, so they are below it
        too. Found as the segments at the hit's span whose stored vectors are its own
        (:func:`engine.query_copies.tied_segments`), among those ``filters`` allow; only their
        files' rows are read. Scored and placed at markers as the hits are (``q``, ``text``,
        ``cosine``); none where the pool holds every allowed file."""
        if len(by_sound) < pool:
            return []
        floor = min(h.score for h in by_sound)
        pooled = {h.file_id: h.score for h in by_sound}
        known = pooled.keys() | {h.file_id for h in met}
        allowed = self._allowed(conn, snap, filters) if filters is not None and filters.active else None
        found: dict[int, tuple[float, int]] = {}
        for h in kept:
            if pooled.get(h.file_id, -np.inf) > floor + _TIE:
                continue                    # above the pool's last: its copies are in the pool
            segs = np.array(tied_segments(snap, h.segment_id, allowed), dtype=np.int64)
            for fid, seg in zip(snap.seg_file[snap.rows(segs)].tolist(), segs.tolist()):
                if fid not in known and fid not in found:
                    found[fid] = (h.score, seg)
        if not found:
            return []
        hits = self._hits(conn, snap, list(found.items()), per_file=True, cosine=cosine)
        score_exactly(snap, hits, q, cosine)
        place_at_markers(conn, snap, hits, text, q, cosine)
        return hits

    def search_audio(self, path_or_waveform: zeroshot.AudioInput, k: int = 10,
                     filters: Filters | None = None, per_file: bool = True,
                     sample_rate: int | None = None, start: float | None = None,
                     end: float | None = None, collapse_copies: bool = True) -> list[Hit]:
        """Files most like the given audio (its segment vectors' mean, re-normalised); with
        ``start``/``end`` (seconds), like that part of it. ``collapse_copies``: as
        :meth:`search_text`'s."""
        k, filters = _check_k(k), _check_filters(filters)
        _check_rate(path_or_waveform, sample_rate)
        zeroshot.check_span(start, end)
        if start is None and end is None:
            return self._search_embedded(
                lambda model: self._audio_vector(model, path_or_waveform, sample_rate), k, filters, per_file,
                collapse=collapse_copies)

        def embed(model: AudioTextModel) -> np.ndarray:
            wave, rate = zeroshot.excerpt(model, path_or_waveform, sample_rate, start, end)
            return self._audio_vector(model, wave, rate)
        return self._search_embedded(embed, k, filters, per_file, collapse=collapse_copies)

    def similar_to_file(self, path_or_file_id: str | Path | int, k: int = 10,
                        filters: Filters | None = None, per_file: bool = True,
                        start: float | None = None, end: float | None = None,
                        collapse_copies: bool = True) -> list[Hit]:
        """"More like this" for an indexed file, from its stored vectors (it comes first, score 1).

        With ``start``/``end`` (seconds), more like that moment: the stored vectors of its
        segments inside the span are the query (nothing is decoded; a hit's ``start``/``end``
        give exactly the segment it matched). A span holding no whole segment (shorter than one,
        or straddling two) is decoded from the file and embedded, as :meth:`search_audio` does an
        excerpt, so a 1 s door slam in a long field recording is the query, not the 10 s windows
        around it; the file comes first as its stored segment holding most of the span (score 1:
        the moment is its own). Such a span needs at least :data:`engine.zeroshot.MIN_SPAN` s.
        When the file cannot be decoded now (moved, deleted or unreadable since it was indexed),
        its stored segments overlapping the span are the query instead, with a logged warning.

        ``collapse_copies``: as :meth:`search_text`'s; the file's own hard links and byte-identical
        copies are listed as ``copies`` of its own hit, which leads whatever its name."""
        k, filters = _check_k(k), _check_filters(filters)
        zeroshot.check_span(start, end)

        def run(conn: Connection, snap: _Snapshot) -> list[Hit] | tuple[int, str, float, float]:
            file_id = resolve_file(conn, self.root, path_or_file_id)
            mine = snap.seg_file == file_id
            ids = snap.seg_ids[mine]
            if len(ids) == 0 or snap.index is None:
                raise InvalidQuery(f"file {path_or_file_id} has no vectors in index {self.root}")
            if start is not None or end is not None:
                a, b = start or 0.0, np.inf if end is None else end
                seg_start, seg_end = snap.seg_start[mine], snap.seg_end[mine]
                path, length = conn.execute(select(File.path, File.duration).where(File.id == file_id)).one()
                length = float(seg_end.max()) if length is None else float(length)   # segments of silence left out
                if a >= length:
                    raise InvalidQuery(f"{path} is {length:.2f} s long; the start time {a:g} s is past its end")
                inside = (seg_start >= a - 1e-6) & (seg_end <= b + 1e-6)
                if not inside.any():    # a moment inside the file: decoded (_similar_to_moment)
                    return file_id, str(path), a, min(b, length)
                ids = ids[inside]
            return self._similar_to_segments(conn, snap, file_id, ids, k, filters, per_file, collapse_copies)
        found = self._with_snapshot(run)
        return found if isinstance(found, list) else self._similar_to_moment(*found, k, filters, per_file,
                                                                             collapse_copies)

    def _similar_to_segments(self, conn: Connection, snap: _Snapshot, file_id: int, ids: np.ndarray,
                             k: int, filters: Filters | None, per_file: bool, collapse: bool = False) -> list[Hit]:
        """Search by the stored vectors of the segments ``ids`` (evenly spaced, at most
        :data:`MAX_QUERY_SEGMENTS`), the file ``file_id`` first; ``collapse``: one hit per recording."""
        if len(ids) > MAX_QUERY_SEGMENTS:
            ids = ids[np.linspace(0, len(ids) - 1, MAX_QUERY_SEGMENTS).round().astype(int)]
        return self._search(conn, snap, snap.vectors(ids), k, filters, per_file, first=(file_id,), collapse=collapse)

    @staticmethod
    def _moment_segments(snap: _Snapshot, file_id: int, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
        """The ids of file ``file_id``'s stored segments overlapping ``a``–``b`` s, and the seconds
        of the span each holds."""
        mine = snap.seg_file == file_id
        held = np.minimum(snap.seg_end[mine], b) - np.maximum(snap.seg_start[mine], a)
        return snap.seg_ids[mine][held > 0], held[held > 0]

    @staticmethod
    def _nearest_segment(snap: _Snapshot, file_id: int, a: float, b: float) -> np.ndarray:
        """The id of file ``file_id``'s stored segment nearest in time to ``a``–``b`` s (the first
        of those as near), as an array of one; for a moment no segment overlaps: digital silence
        left out of a file with sound elsewhere (engine.segments.without_silence)."""
        mine = snap.seg_file == file_id
        gap = np.maximum(snap.seg_start[mine] - b, a - snap.seg_end[mine])
        return snap.seg_ids[mine][np.argsort(gap, kind="stable")[:1]]

    def _similar_to_moment(self, file_id: int, path: str, a: float, b: float, k: int,
                           filters: Filters | None, per_file: bool, collapse: bool = False) -> list[Hit]:
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

        def overlapping(why: str) -> list[Hit]:
            """The search by the stored segments overlapping the moment, since the file ``why``
            (warned); refused, named, when none does: a moment of digital silence left out."""
            def run(conn: Connection, snap: _Snapshot) -> list[Hit]:
                ids = self._moment_segments(snap, file_id, a, b)[0]
                if len(ids) == 0:
                    raise InvalidQuery(f"{path} {why}, and its moment {a:g}–{b:g} s is digital silence the index "
                                       "left out (no stored segment holds it): nothing to search by; give a span "
                                       "holding its sound, or index the file again where it is now")
                log.warning("%s %s: more like its moment %g–%g s searches by its stored segments overlapping it",
                            path, why, a, b)
                return self._similar_to_segments(conn, snap, file_id, ids, k, filters, per_file, collapse)
            return self._with_snapshot(run)

        if not Path(path).is_file():
            return overlapping("is not on disk now (moved or deleted since it was indexed)")
        try:
            hits = self._search_embedded(embed, k, filters, per_file, collapse=collapse)
        except UnreadableAudio as e:
            return overlapping(f"cannot be decoded now ({e.reason})")
        return self._with_snapshot(lambda conn, snap: self._moment_first(
            conn, snap, hits, file_id, a, b, query[0], k, filters, per_file))

    def _moment_first(self, conn: Connection, snap: _Snapshot, hits: list[Hit], file_id: int, a: float,
                      b: float, query: np.ndarray, k: int, filters: Filters | None, per_file: bool) -> list[Hit]:
        """``hits`` (at most ``k``) led by the query file's own hit, as :meth:`similar_to_file`
        gives it: its stored segment holding most of ``a``–``b`` s (of those, the one closest to
        ``query``; none holding any, a moment of left-out silence: the one nearest it), score 1;
        unless ``filters`` leave the file out."""
        ids, held = self._moment_segments(snap, file_id, a, b)
        if len(ids) == 0:           # the moment is digital silence the indexer left out: the nearest
            ids = self._nearest_segment(snap, file_id, a, b)
            held = np.zeros(len(ids))
        if filters is not None and filters.active:
            keep = np.isin(ids, self._allowed(conn, snap, filters))
            ids, held = ids[keep], held[keep]
        if len(ids) == 0:           # filtered out (or gone from the index since the search)
            return hits
        closeness = snap.vectors(ids) @ np.asarray(query, np.float32).reshape(-1)
        best = int(ids[np.lexsort((-closeness, -np.round(held, 6)))[0]])
        own = self._hits(conn, snap, [(file_id, (1.0, best))], per_file, cosine=True)
        if not own:                 # the catalog lost the file (logged by _hits)
            return hits
        return led_by(own[0], hits, lambda h: h.file_id == file_id if per_file else h.segment_id == best)[:k]

    def similar_to_files(self, examples: Sequence[str | Path | int], k: int = 10, filters: Filters | None = None,
                         per_file: bool = True, collapse_copies: bool = True) -> list[Hit]:
        """"More like these": files that sound like the examples together. The query is the mean
        of the examples' unit vectors (an indexed file's from its stored segment vectors, any
        other file embedded now), so what they share counts most. Paths or file ids (one
        path or id alone is one example). An indexed example comes ahead of the hits it ties
        with (a byte-identical copy of it), the first given foremost. ``collapse_copies``: as
        :meth:`similar_to_file`'s. An example no audio can come from is the query's InvalidQuery,
        naming it, as every unusable example is (an id not in the index, a file that cannot be
        decoded): a folder or a path that does not exist is said before any example is embedded.
        Nothing is left out unsaid: ``soundsift similar`` leaves such examples out itself, warning."""
        k, filters = _check_k(k), _check_filters(filters)
        examples = _one_or_many(examples)
        if len(examples) == 0:
            raise InvalidQuery("give at least one example to search by")
        indexed: dict[int, int] = {}          # position → file id
        with self._read() as conn:
            for i, e in enumerate(examples):
                if isinstance(e, (int, np.integer)):
                    indexed[i] = resolve_file(conn, self.root, e)
                else:
                    try:
                        indexed[i] = resolve_file(conn, self.root, str(e))
                    except InvalidQuery:
                        pass                   # not in the index: embedded below
        for i, e in enumerate(examples):
            if i not in indexed:       # a folder worded as `soundsift similar` words it
                zeroshot.check_audio_path(e, "is a folder, not a sound file (name the files in it)")

        def embed(model: AudioTextModel) -> np.ndarray:
            outside = [self._audio_vector(model, e, None) for i, e in enumerate(examples) if i not in indexed]
            stored = self._with_snapshot(lambda conn, snap: [self._file_vector(snap, f) for f in indexed.values()])
            return l2_normalize(np.mean(np.vstack([*stored, *outside]), axis=0))
        return self._search_embedded(embed, k, filters, per_file, first=list(indexed.values()),
                                     collapse=collapse_copies)

    def file_vector(self, path_or_file_id: str | Path | int) -> np.ndarray:
        """An indexed file's unit vector from its stored segment vectors (nothing is decoded)."""
        return self._with_snapshot(
            lambda conn, snap: self._file_vector(snap, resolve_file(conn, self.root, path_or_file_id)))

    @staticmethod
    def _file_vector(snap: _Snapshot, file_id: int) -> np.ndarray:
        """A file's unit vector: the mean of its stored segment vectors, re-normalised."""
        ids = snap.seg_ids[snap.seg_file == file_id]
        if len(ids) == 0:
            raise InvalidQuery(f"file id {file_id} has no vectors in this index")
        return l2_normalize(snap.vectors(ids).mean(axis=0))

    def segment_vector(self, segment_id: int) -> np.ndarray:
        """One stored segment's vector (a hit's ``segment_id``: the section it matched), as
        :meth:`file_segments` gives it; InvalidQuery when the index no longer holds that segment
        (its file re-indexed or removed since the search)."""
        def run(conn: Connection, snap: _Snapshot) -> np.ndarray:
            ids = np.array([int(segment_id)], np.int64)
            row = snap.rows(ids)
            if len(snap.seg_ids) == 0 or row[0] >= len(snap.seg_ids) or snap.seg_ids[row[0]] != ids[0]:
                raise InvalidQuery(f"segment id {int(segment_id)} is not in this index (re-indexed since?)")
            return snap.vectors(ids)[0]
        return self._with_snapshot(run)

    def search_vectors(self, queries: np.ndarray, k: int = 10, filters: Filters | None = None,
                       per_file: bool = True, collapse_copies: bool = True) -> list[Hit]:
        """Search by vector(s), one (1-D) or rows (2-D); with several, a segment scores its best
        match to any. Each is scaled to unit length first, so scores are cosines, clamped to
        [-1, 1] (:func:`_reported`). InvalidQuery for NaN/Inf, an all-zero vector, no rows, or
        another width than the index's. ``collapse_copies``: as :meth:`search_text`'s."""
        k, filters = _check_k(k), _check_filters(filters)
        return self._search_query(query_matrix(queries), k, filters, per_file, fingerprint=None,
                                  collapse=collapse_copies)

    def _search_embedded(self, embed: Callable[[AudioTextModel], np.ndarray], k: int,
                         filters: Filters | None, per_file: bool, words: str | None = None,
                         unwanted_words: Sequence[str] = (), cosine: bool = True,
                         first: Sequence[int] = (), collapse: bool = False) -> list[Hit]:
        """Search by the query ``embed(model)`` makes with the index's model; made again with
        the new model when a rebuild swaps in another one between embedding and searching.
        ``words``: fuse with a keyword search for them, without files matching ``unwanted_words``
        (:meth:`search_text`). ``cosine``: the query is unit vectors (:func:`_reported`).
        ``first``: the indexed files searched by, ahead of their ties (:meth:`_query_files_first`).
        ``collapse``: one hit per recording (engine.query_copies)."""
        for _ in range(_RELOAD_RETRIES):
            model = self.model
            try:
                return self._search_query(embed(model), k, filters, per_file,
                                          fingerprint=str(model.fingerprint), words=words,
                                          unwanted_words=unwanted_words, cosine=cosine, first=first,
                                          collapse=collapse)
            except _QueryModelChanged:
                log.info("%s: the index changed model during a query; embedding it again", self.root)
        raise IndexBusy(f"index {self.root} changed model {_RELOAD_RETRIES} times during one query "
                        "(is it being rebuilt over and over?); search again")

    def _search_query(self, queries: np.ndarray, k: int, filters: Filters | None, per_file: bool,
                      fingerprint: str | None, words: str | None = None,
                      unwanted_words: Sequence[str] = (), cosine: bool = True,
                      first: Sequence[int] = (), collapse: bool = False) -> list[Hit]:
        """Search by query vectors made by the model with ``fingerprint`` (None: unknown);
        with ``words``, fused with a keyword search for them. ``cosine``: the queries are unit
        vectors, their scores cosines (:func:`_reported`). ``first``, ``collapse``: as
        :meth:`_search`'s."""
        from engine.vectors import as_query
        q = as_query(queries)

        def run(conn: Connection, snap: _Snapshot) -> list[Hit]:
            if fingerprint is not None and fingerprint != snap.fingerprint:
                raise _QueryModelChanged()
            if snap.dim is not None and q.shape[1] != snap.dim:
                raise InvalidQuery(f"query vectors have {q.shape[1]} dims; index {self.root} "
                                   f"holds {snap.dim}-dim vectors")
            if words is not None:
                return self._keyword_search(conn, snap, words, q, k, filters, unwanted_words, cosine, collapse)
            return self._search(conn, snap, q, k, filters, per_file, cosine, first, collapse)
        return self._with_snapshot(run)

    def allowed_segment_ids(self, filters: Filters) -> np.ndarray:
        """Sorted ids of the segments whose files ``filters`` keeps."""
        return self._with_snapshot(lambda conn, snap: self._allowed(conn, snap, filters))

    def _allowed(self, conn: Connection, snap: _Snapshot, filters: Filters) -> np.ndarray:
        """Sorted segment ids of the files ``filters`` keeps (cached per generation, and per state
        of what changes between generations: tags for a tag filter, the files' metadata and
        measured levels for a category or loudness filter)."""
        return allowed_segments(conn, snap, self.root, filters, self._allowed_cache)

    def _search(self, conn: Connection, snap: _Snapshot, q: np.ndarray, k: int,
                filters: Filters | None, per_file: bool, cosine: bool = True,
                first: Sequence[int] = (), collapse: bool = False) -> list[Hit]:
        """The top ``k`` hits (files, or segments without ``per_file``) for the query vectors
        ``q``, ranked by their scores as FAISS gives them; ``cosine``: the query is unit vectors,
        and the hits report their scores clamped to [-1, 1] (:func:`_reported`). ``first``: the
        ids of the indexed files searched by, each ahead of the hits it ties with
        (:meth:`_query_files_first`), each leading its recording. ``collapse``: the top ``k``
        recordings, each name of one listed as ``copies`` of its hit
        (engine.query_copies.distinct_recordings), the filter applied first."""
        if k < 1:
            raise InvalidQuery(f"k must be ≥ 1, got {k}")
        allowed = self._allowed(conn, snap, filters) if filters is not None and filters.active else None

        # a collapsed search's rounds rank once where the index is exact (mostly), and build each hit once
        exact = collapse and exact_ranking(snap)
        scans = Scans() if exact else None          # one ranking's scans size the next one's fetch
        ranking = Rankings(lambda n: rank_segments(snap, q, n, per_file, allowed, spare=exact, scans=scans), exact)
        build = HitsOnce(lambda top: self._hits(conn, snap, top, per_file, cosine=cosine), per_file)

        def spans(n: int) -> list[tuple[float, float, float]]:     # the top n, and any more it told
            told = ranking.told(n)
            rows = snap.rows(np.array([seg for _, (_, seg) in told], dtype=np.int64))
            return list(zip([score for _, (score, _) in told], snap.seg_start[rows].tolist(),
                            snap.seg_end[rows].tolist()))

        def ranked(n: int) -> list[Hit]:
            hits = build(ranking(n))
            return self._query_files_first(conn, snap, hits, q, n, allowed, per_file, cosine, first) if first else hits
        if not collapse:
            return ranked(k)
        # as many candidates as the ranking's ties ask for, before any hit is built
        return distinct_recordings(ranked, k, first, start=planned(spans, k))

    def _query_files_first(self, conn: Connection, snap: _Snapshot, hits: list[Hit], q: np.ndarray, k: int,
                           allowed: np.ndarray | None, per_file: bool, cosine: bool,
                           files: Sequence[int]) -> list[Hit]:
        """``hits`` (the top ``k``) with each query file of ``files`` ahead of the hits it ties
        with, the first one foremost (:func:`_query_file_first`), before the list is cut to ``k``:
        a byte-identical copy scores 1.000 too, and FAISS orders ties by id, so the top ``k``
        may hold the copy and not the file searched by. A query file missing from ``hits`` is
        found by a search of its own segments (those ``allowed`` keeps; none: the filter leaves
        it out) and placed by its score, so it is cut again when it does not tie."""
        order = list(dict.fromkeys(int(f) for f in files))
        found = {h.file_id for h in hits}
        for file_id in order:
            if file_id in found:
                continue
            own = np.sort(snap.seg_ids[snap.seg_file == file_id])
            if allowed is not None:
                own = own[np.isin(own, allowed)]
            if len(own):
                hits = hits + self._hits(conn, snap, rank_segments(snap, q, 1, per_file, own), per_file,
                                         cosine=cosine)
        for file_id in reversed(order):
            hits = _query_file_first(hits, file_id)
        return hits[:k]

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
                "SELECT id, path, duration, format, sample_rate, size, mtime_ns FROM files WHERE id IN "
                f"({','.join('?' * len(chunk))})", chunk).fetchall())
        hits = []
        for (_, (score, seg)), row, fid in zip(top, rows, file_ids):
            f = files.get(int(fid))
            if f is None:  # the catalog lost the file: a broken commit; skip it, loudly
                log.warning("%s: segment %d points at missing file %d", self.root, seg, fid)
                continue
            _, path, duration, fmt, rate, size, mtime_ns = f
            hits.append(Hit(path=path, start=float(snap.seg_start[row]), end=float(snap.seg_end[row]),
                            score=_reported(score, cosine), file_id=int(fid), segment_id=seg,
                            duration=float(duration), format=str(fmt), sample_rate=int(rate),
                            size=int(size), mtime_ns=int(mtime_ns)))
        fields = stored_metadata(conn, [h.file_id for h in hits], ("markers", CUT_SHORT_KEY, *ABOUT_LINE_KEYS))
        name_takes(snap, hits, _markers_of(fields))     # (one lookup above)
        on_disk = {p: os.path.exists(p) for p in {h.path for h in hits}}
        for h in hits:      # what the file (or a library sheet) says it is: category, title, description
            said = {k: v for k, v in fields.get(h.file_id, {}).items() if k not in ("markers", CUT_SHORT_KEY)}
            h.about = about_line(with_sheet(said)) or None
            h.missing = None if on_disk[h.path] else True
            h.header_duration = header_seconds(fields.get(h.file_id, {}).get(CUT_SHORT_KEY))
        return hits

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
        texts = zeroshot.listed_texts(texts, "rank_texts", "text")     # before the audio is decoded
        model = self.model                 # one model for both sides, even across a rebuild
        return zeroshot.rank_texts(model, self._audio_vector(model, audio, sample_rate), texts)

    def tag(self, audio: zeroshot.AudioInput, labels: Sequence[str] | None = None, top: int = 5,
            template: str = zeroshot.DEFAULT_TEMPLATE,
            sample_rate: int | None = None) -> list[dict[str, Any]]:
        """Zero-shot tags ``{"label", "score", "cosine"}`` best first (see engine.zeroshot).
        ``labels``: None for the default vocabulary; one string is one label; an empty list is
        an InvalidQuery, as it is for :meth:`rank_texts`.
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
        model = self.model
        labels = default_labels(model) if labels is None else zeroshot.listed_texts(
            labels, "tag", "label", "; leave labels out (None) for the default vocabulary")
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
    def file_segments(self, path_or_file_id: str | Path | int) -> tuple[list[Hit], np.ndarray]:
        """An indexed file's stored segments in time order (as hits, score 0; a marked take named
        as in a search) and their vectors (n, dim)."""
        def run(conn: Connection, snap: _Snapshot) -> tuple[list[Hit], np.ndarray]:
            file_id = resolve_file(conn, self.root, path_or_file_id)
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
                return resolve_file(conn, self.root, str(path))
            except InvalidQuery:
                return None

    def failed_reason(self, path: str | Path) -> str | None:
        """Why ``path`` (not in the index) could not be indexed: its error row's reason, or None."""
        with self._read() as conn:
            return query_catalog.failed_reason(conn, query_catalog.path_spellings(path))

    def why_not_indexed(self, path: str | Path) -> str:
        """Why ``path`` names no indexed file, in words (engine.query_catalog.why_not_indexed): no
        such file, one that could not be indexed (its error row's reason), a folder, or one never
        indexed."""
        with self._read() as conn:
            return query_catalog.why_not_indexed(conn, path, query_catalog.path_spellings(path))

    def file_states(self, paths: Sequence[str | Path] | None = None) -> dict[str, tuple[int, int]]:
        """Each indexed file's ``(size, mtime_ns)`` as the catalog recorded it when the file was
        indexed: every file's, under its catalog path; or, given ``paths``, theirs under the path
        as given, each found as every look-up by path finds it (relative, through links, in the
        other Unicode normal form; a few hundred paths a query); paths not indexed are left out."""
        with self._read() as conn:
            return query_catalog.file_states(conn, self.root, paths)

    def get_file(self, file_id: int) -> dict[str, Any]:
        """Catalog record of one file: path, size, duration, format, rate, channels, segments,
        the metadata it carries (title, comment, bext description …; where it says nothing under
        a key, what an imported library sheet says, and ``sheet`` names that sheet), its
        ``levels`` measured when it was indexed (``peak_dbfs``, ``loudness_lufs``; empty for
        files indexed before) and, for a file cut short, ``header_duration`` as its hits carry it."""
        with self._read() as conn:
            return query_catalog.get_file(conn, self.root, file_id)

    def get_file_and_state(self, file_id: int) -> tuple[dict[str, Any], tuple[int, int]]:
        """:meth:`get_file`'s record and the file's ``(size, mtime_ns)`` when it was indexed (as
        :meth:`file_states` gives it), read in one transaction: a commit (a re-index of the file)
        cannot land between the two."""
        with self._read() as conn:
            return query_catalog.get_file_and_state(conn, self.root, file_id)

    def errors(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Files that could not be indexed: ``{"path", "reason", "at"}``, newest first."""
        with self._read() as conn:
            return query_catalog.errors(conn, limit)

    def why_no_file(self, filters: Filters) -> list[str]:
        """The values of ``filters`` no indexed file has (:meth:`Filters.unavailable`), for a
        search that found nothing: a path prefix no file's path starts with, a format, rate,
        category or tag the index does not hold, a duration or loudness beyond every file's."""
        facets = self.facets()
        with self._read() as conn:
            tags, extensions = query_catalog.held_by_index(conn, filters)
            unheld = query_catalog.unheld_prefix(conn, filters)
        return filters.unavailable(facets, tags, extensions, unheld)

    def facets(self) -> dict[str, Any]:
        """What the filters can choose from: formats, sample rates, channel counts, duration
        range, the library categories files carry (empty when none does), the range of
        measured loudness (LUFS; None when no file was measured) and ``silent_files``, those
        silent or under the −70 LUFS gate, which that range leaves out."""
        with self._read() as conn:
            return query_catalog.facets(conn)

    def info(self, full: bool = False) -> dict[str, Any]:
        """Counts, model, fingerprint, dim, index type, generation, failed-file count; ``full``:
        and every key of ``soundsift info --json`` (engine.query_catalog.info), all read in one
        transaction (that part kept from the last call until the catalog changes:
        engine.query_catalog.catalog_summary)."""
        return self._with_snapshot(lambda conn, snap: query_catalog.info(conn, snap, self.root, self.meta, full))

    def file_vectors(self, filters: Filters | None = None,
                     paths: Sequence[str | Path] | None = None) -> FileVectors:
        """Every file's mean segment vector (unit length), duration and size: for the UI's
        library map, tagging from stored vectors and finding duplicates. ``filters``: only the
        files they keep. ``paths``: only the files the catalog keeps at these paths (as it keeps
        them: absolute, links resolved; others are left out), whose vectors alone are read, a few
        hundred paths a query: tagging a few files of a large index reads only theirs."""
        filters = _check_filters(filters)
        wanted = None if paths is None else [str(p) for p in _one_or_many(paths)]
        return self._with_snapshot(
            lambda conn, snap: query_catalog.file_vectors(conn, snap, self.root, self.meta, filters, wanted))
