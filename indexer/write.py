"""Stage 4: commit batches of work to the FAISS file and the SQLite catalog.

Protocol (one writer at a time, under an fcntl lock on ``.lock``):

1. write the next generation's vectors to ``vectors-<gen+1>.faiss`` (previous vectors,
   minus the segments of removed/changed files, plus the new ones), atomically;
2. then, in ONE SQLite transaction, apply every catalog change of the batch and point
   ``meta.vectors_file`` at the new file;
3. then delete the previous generation's file (readers that opened it keep their copy)
   and rewrite ``index.json``.

Step 1 also decides the index type (engine.index_choice, from the vector count after
the batch, the dim and the memory budget). When it differs from the type on disk the
vectors are rebuilt as the new type (trained on a seeded sample; see indexer.retrain),
and an IVF index's ``nprobe`` is re-measured at every commit that changes its vectors so
recall@10 against exact search stays ≥ 0.95. Lossy types also write a float16 sidecar
``vectors-<gen>.raw.npy`` (the raw vectors a later rebuild needs).

A crash before step 2 leaves an orphan FAISS file that the next writer deletes; a crash
after it leaves a complete new generation. Segment ids (= vector ids) are allocated from
the catalog's AUTOINCREMENT counter, so ids written to an orphan file are simply reused
by the next attempt and never point at the wrong segment.
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import platform
import sqlite3
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np
from sqlalchemy import and_, delete, func, null, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from engine.audio import AudioInfo
from engine.catalog import (Caption, ErrorRow, File, FileMetadata, SegmentRow, Tag, get_meta, has_table,
                            open_catalog, set_meta)
from engine.errors import IndexBusy, IndexNotFound, IndexReadOnly
from engine.file_metadata import CUE_SHEET_KEY, CUT_SHORT_KEY, LEVEL_KEYS, SHEET_PREFIX, SILENCE_KEYS
from engine.index_choice import IndexChoice, choose_index, default_memory_budget, needs_rebuild
from engine.layout import READ_ONLY_ERRNOS, IndexLayout, lock_holder, read_only_error, require_writable
from engine.models.base import l2_normalize
from engine.durable import replace_durably
from engine.vectors import (LENGTH_KEY, LENGTH_OF_KEY, check_length, check_readable, gpu_count, new_index,
                            recorded_length, unreadable_vectors, write_index_atomic)
from indexer.moves import Header, Move
from indexer.scan import ScannedFile

log = logging.getLogger(__name__)

METRIC = "inner_product"
#: index kind (engine.index_choice) → the ``index_type`` shown by `soundsift info`
INDEX_TYPES = {"flat": "Flat", "ivf-flat": "IVF-Flat", "ivf-sq8": "IVF-SQ8",
               "opq-ivf-pq": "OPQ-IVF-PQ"}


@dataclass
class IndexedFile:
    """A file decoded and embedded in this run, ready to be committed."""

    path: str
    size: int
    mtime_ns: int
    info: AudioInfo
    duration: float                     # seconds of audio decoded
    segments: list[tuple[float, float]]
    vectors: np.ndarray                 # (len(segments), dim) float32


#: tags and captions soundsift made from a file's audio or its description (trainer.caption_loop):
#: a file whose content changed loses them (`soundsift caption --index` makes them again), while
#: the rest, the user's own, stays with it
DERIVED_TAG_SOURCES = frozenset({"yamnet", "zeroshot"})
DERIVED_CAPTION_SOURCES = frozenset({"blat", "metadata"})


@dataclass
class Changes:
    """One checkpoint's worth of catalog changes."""

    add: list[IndexedFile] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)          # paths whose rows go
    errors: dict[str, str] = field(default_factory=dict)     # path → reason (replaced)
    clear_errors: list[str] = field(default_factory=list)    # paths whose error rows go
    moves: list[Move] = field(default_factory=list)          # files at a new path (rows kept)
    absorb: dict[str, str] = field(default_factory=dict)     # old path → an indexed path that
                                                             # takes its tags and captions; old goes
    keep: dict[str, bool] = field(default_factory=dict)      # path of an added file indexed before →
                                                             # its tags and captions stay: all (True:
                                                             # the same audio), or the user's (False)
    inherit: dict[str, str] = field(default_factory=dict)   # path of an added file → the path of the
                                                             # file it re-encodes (indexer.reencodes),
                                                             # removed in the same commit: its tags,
                                                             # captions and sheet rows, all of them
    drop_segments: list[int] = field(default_factory=list)   # ids of stored segments whose rows and
                                                             # vectors go, their files staying
                                                             # (indexer.silence_refresh)
    file_rows: dict[str, dict[str, str | None]] = field(default_factory=dict)   # indexed path → key →
                                                             # the indexer's row set to value (None: gone)

    def __bool__(self) -> bool:
        return bool(self.add or self.remove or self.errors or self.clear_errors or self.moves
                    or self.absorb or self.drop_segments or self.file_rows or self.inherit)


def package_versions() -> dict[str, str]:
    """Versions recorded in index.json (read from metadata: nothing heavy is imported)."""
    out = {"python": platform.python_version()}
    for dist in ("soundsift", "faiss-cpu", "faiss-gpu", "torch", "transformers", "soundfile", "soxr"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


class WriterLock:
    """An exclusive, non-blocking fcntl lock on the index's ``.lock`` file.

    ``with WriterLock(layout.lock): …`` holds it for a block (IndexBusy when another holds it).
    Every writer takes it before it writes anything, so a folder that cannot be written (a
    read-only mount or share) is refused here, with IndexReadOnly and nothing written.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def __enter__(self) -> "WriterLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        require_writable(self.path.parent, self.path.name)    # a writable .lock in a read-only folder too
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            if e.errno in READ_ONLY_ERRNOS:
                raise read_only_error(self.path.parent, self.path.name, e) from e
            raise
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = lock_holder(fd)
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                who = f" (process {holder})" if holder else ""
                raise IndexBusy(
                    f"index {self.path.parent} is being written by another process{who}; "
                    "run this again when that one finishes (searches work meanwhile)") from e
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def human_size(n_bytes: float) -> str:
    """Bytes for people: ``512 B``, ``20.6 KiB``, ``1.5 GiB``."""
    value, unit = float(n_bytes), "B"
    for bigger in ("KiB", "MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"


class IndexWriter:
    """The single writer of one index: holds the lock, the catalog and the live vectors."""

    def __init__(self, layout: IndexLayout, memory_budget: int | None = None,
                 chooser: Callable[..., IndexChoice] = choose_index, *,
                 after_generation: int = 0) -> None:
        """``after_generation``: a new index's first commit is generation after_generation + 1
        (a rebuild continues the numbering of the index it replaces, so a reader that has the
        old one open sees a new generation, never a same-named vectors file of other content).
        """
        self.layout = layout
        self._after_generation = int(after_generation)
        self._lock = WriterLock(layout.lock)
        self.engine = None
        self._index = None                     # faiss index of the current generation
        self.meta: dict[str, Any] = {}
        self.seconds = 0.0                     # time spent committing
        self.memory_budget = int(memory_budget) if memory_budget else default_memory_budget()
        self._warned_budget = False
        self.chooser = chooser                 # (n, dim, budget, gpu) → IndexChoice
        self.retrain_seconds = 0.0             # part of ``seconds`` spent rebuilding/tuning

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> "IndexWriter":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Make the index folder if needed, take the writer lock and open the catalog (IndexBusy,
        IndexReadOnly: nothing was written)."""
        try:
            self.layout.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            if e.errno not in READ_ONLY_ERRNOS:
                raise
            why = (e.strerror or str(e)).lower()
            raise IndexReadOnly(f"index {self.layout.root}: cannot create its folder ({why}); "
                                "index into a folder you can write") from e
        self._lock.acquire()
        try:
            self.engine = open_catalog(self.layout.catalog, create=True)
            with Session(self.engine) as s:
                self.meta = get_meta(s)
            self._check_vectors_present()
            self._delete_orphans()
            self._remove_killed_rebuilds()
        except BaseException:
            self.close()
            raise

    def _check_vectors_present(self) -> None:
        """IndexUnreadable when the vectors file the catalog names is gone (while it holds segments)
        or does not open as FAISS: a run would fail at its first commit, or commit nothing and say
        the index is up to date while no search can read it; also when it is not the length its
        commit recorded (engine.vectors.check_length)."""
        path = self.vectors_path
        if path is None:
            return
        if path.is_file():
            check_readable(path, recorded_length(self.meta))
        elif int(self.meta.get("counts", {}).get("segments", 0)):
            raise unreadable_vectors(path)

    def close(self) -> None:
        self.close_catalog()
        self._lock.release()

    def close_catalog(self) -> None:
        """Close the catalog but keep holding the lock (a rebuild moves the folder under it)."""
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None

    def _reload_meta(self) -> None:
        """Re-read meta from the catalog (what is committed, whatever happened in memory)."""
        if self.engine is not None:
            with Session(self.engine) as s:
                self.meta = get_meta(s)

    @property
    def generation(self) -> int:
        return int(self.meta.get("generation", self._after_generation))

    @property
    def vectors_path(self) -> Path | None:
        name = self.meta.get("vectors_file")
        return self.layout.root / name if name else None

    @property
    def sidecar_path(self) -> Path | None:
        """The raw-vector sidecar of the current generation, if it has one."""
        from indexer.retrain import sidecar_path
        path = self.vectors_path
        side = sidecar_path(path) if path is not None else None
        return side if side is not None and side.is_file() else None

    def _delete_orphans(self) -> None:
        """Remove FAISS files, sidecars and temporaries that no committed generation names."""
        from indexer.retrain import sidecar_path
        keep = self.vectors_path
        keep_names = {keep.name, sidecar_path(keep).name} if keep is not None else set()
        root = self.layout.root
        for p in (list(self.layout.vector_files()) + list(root.glob("vectors-*.faiss.tmp"))
                  + list(root.glob("vectors-*.raw.npy")) + list(root.glob("vectors-*.raw.npy.tmp"))):
            if p.name not in keep_names:
                log.info("removing %s left by an interrupted run", p.name)
                p.unlink(missing_ok=True)

    def _remove_killed_rebuilds(self) -> None:
        """Remove the folders a killed ``--rebuild`` of this index left beside it (a whole copy of
        the index each; indexer.rebuild.remove_stale_siblings, the rebuild's own cleanup), now
        that this writer holds the index's lock; a live process's folder stays."""
        from indexer.rebuild import remove_stale_siblings
        remove_stale_siblings(Path(os.path.realpath(self.layout.root)))

    def _discard_uncommitted(self, new_file: Path) -> None:
        """Delete ``new_file`` (and its sidecar) after a failed step 2, unless the catalog names
        it after all (the transaction committed before the error); when that cannot be read, the
        file stays for the next writer's :meth:`_delete_orphans`."""
        from indexer.retrain import sidecar_path
        try:
            with Session(self.engine) as s:
                committed = get_meta(s).get("vectors_file")
        except Exception as e:       # noqa: BLE001 - best effort: the error being raised matters more
            log.debug("%s stays for the next writer: the catalog could not be read (%s)", new_file.name, e)
            return
        if committed != new_file.name:
            for p in (new_file, sidecar_path(new_file)):
                try:
                    p.unlink(missing_ok=True)
                except OSError as e:
                    log.debug("%s stays for the next writer: %s", p.name, e)

    # -- reads ---------------------------------------------------------------------------
    def catalog_state(self) -> dict[str, tuple[int, int]]:
        """Every indexed file: path → (size, mtime_ns)."""
        with Session(self.engine) as s:
            return {p: (size, mt) for p, size, mt in s.execute(select(File.path, File.size, File.mtime_ns))}

    def error_paths(self) -> list[str]:
        with Session(self.engine) as s:
            return list(s.scalars(select(ErrorRow.path)))

    def error_reasons(self) -> dict[str, str]:
        """Every error row: path → reason."""
        with Session(self.engine) as s:
            return dict(s.execute(select(ErrorRow.path, ErrorRow.reason)).all())

    def users_notes(self, paths: list[str]) -> dict[str, list[str]]:
        """The user's own tags (labels) and captions (``"caption: …"``) on each of ``paths`` that
        has any: what would be lost with the file's rows (derived ones are made again)."""
        return catalog_users_notes(self.engine, paths)

    def headers(self, paths: list[str]) -> dict[str, Header]:
        """The audio header the catalog holds for each of ``paths`` that is indexed, with its
        content fingerprint where it has one (files indexed since session 22)."""
        return catalog_headers(self.engine, paths)

    def copies_read_exactly(self) -> bool:
        """Whether :meth:`indexed_copies` can read stored vectors back as they were embedded: an
        exact ``IDMap2,Flat`` index (IVF needs a direct map it does not keep; SQ8 and PQ, and their
        float16 sidecars, hold them rounded)."""
        return self.meta.get("index_kind", "flat") == "flat"

    def indexed_copies(self, names: list[tuple[str, ScannedFile]], dim: int) -> list[IndexedFile]:
        """Each pair (indexed path, ScannedFile of another name of that file on disk) as the name is
        indexed (indexer.same_file): the indexed file's header, segments, stored vectors and the
        metadata read from it (not the ``sheet:`` rows a library sheet gave its path); only where
        :meth:`copies_read_exactly`."""
        from engine.vector_access import reconstruct
        index = self._live_index(dim)
        out = []
        with Session(self.engine) as s:
            for path, other in names:
                row = s.scalar(select(File).where(File.path == path))
                segs = s.execute(select(SegmentRow.id, SegmentRow.start, SegmentRow.end)
                                 .where(SegmentRow.file_id == row.id).order_by(SegmentRow.id)).all()
                pairs = s.execute(select(FileMetadata.key, FileMetadata.value)
                                  .where(FileMetadata.file_id == row.id, FileMetadata.key.not_like(SHEET_PREFIX + "%"))
                                  .order_by(FileMetadata.id)).all()
                info = AudioInfo(other.path, int(round(row.duration * row.sample_rate)), row.sample_rate,
                                 row.channels, row.format, row.subtype or "", tuple(map(tuple, pairs)))
                ids = np.asarray([i for i, _, _ in segs], np.int64)
                vectors = reconstruct(index, ids) if len(ids) else np.zeros((0, dim), np.float32)
                out.append(IndexedFile(other.path, other.size, other.mtime_ns, info, row.duration,
                                       [(a, b) for _, a, b in segs], vectors))
        return out

    def file_vectors(self, paths: list[str], dim: int) -> dict[str, np.ndarray]:
        """Each indexed path of ``paths`` that has stored segments → its unit file vector (the
        mean of their vectors, re-normalised): read exactly from an exact index, from the float16
        sidecar of a compressed one; none where they cannot be read (said at debug level)."""
        from indexer.retrain import raw_from_index, read_sidecar, vectors_by_id
        rows: list[tuple[str, int]] = []
        with Session(self.engine) as s:
            for i in range(0, len(paths), 500):
                rows += s.execute(select(File.path, SegmentRow.id).join(SegmentRow, SegmentRow.file_id == File.id)
                                  .where(File.path.in_(paths[i:i + 500]))).all()
        if not rows:
            return {}
        try:
            side = self.sidecar_path
            raw = read_sidecar(side) if side is not None else raw_from_index(self._live_index(dim))
        except (ValueError, OSError) as e:
            log.debug("%s: stored vectors not read (%s)", self.layout.root, e)
            return {}
        ids = np.asarray([i for _, i in rows], np.int64)
        vectors = vectors_by_id(raw)(ids)
        found = np.isin(ids, raw.ids)
        by_path: dict[str, list[int]] = {}
        for row, (path, _) in enumerate(rows):
            by_path.setdefault(path, []).append(row)
        return {path: l2_normalize(vectors[r].mean(axis=0)) for path, r in by_path.items() if found[r].all()}

    @classmethod
    def stored_file_vectors(cls, layout: IndexLayout, paths: list[str], dim: int) -> dict[str, np.ndarray]:
        """:meth:`file_vectors` of the index at ``layout`` read without taking its lock: the index a
        rebuild replaces, whose lock the rebuild holds (indexer.rebuild)."""
        reader = cls(layout)
        reader.engine = open_catalog(layout.catalog)
        try:
            reader._reload_meta()
            return reader.file_vectors(paths, dim)
        finally:
            reader.close_catalog()
            reader._index = None

    # -- the commit ----------------------------------------------------------------------
    def _live_index(self, dim: int):
        if self._index is None:
            path = self.vectors_path
            if path is not None and path.is_file():
                import faiss
                try:
                    check_length(path, recorded_length(self.meta))
                    self._index = faiss.read_index(str(path))  # writable copy in memory
                except (RuntimeError, OSError) as e:
                    raise unreadable_vectors(path) from e
            elif path is not None and int(self.meta.get("counts", {}).get("segments", 0)):
                raise unreadable_vectors(path)
            else:
                self._index = new_index(dim)
        return self._index

    def commit(self, changes: Changes, meta: dict[str, Any]) -> int:
        """Apply ``changes`` as the next generation; returns the generation now committed.

        A commit that changes only error rows keeps the current vectors file and generation.

        ``meta`` holds the model keys (model_name, model_fingerprint, dim, sample_rate,
        segment_policy) written with every commit.
        """
        t0 = time.perf_counter()
        try:
            return self._commit(changes, meta)
        except BaseException:
            self._index = None      # the in-memory vectors may be ahead of the catalog: reload
            self._reload_meta()     # and the catalog may be ahead of self.meta (e.g. Ctrl-C in step 3)
            raise
        finally:
            self.seconds += time.perf_counter() - t0

    def _commit(self, changes: Changes, meta: dict[str, Any]) -> int:
        dim = int(meta["dim"])
        index = self._live_index(dim)
        # a move keeps the vectors but is a new generation all the same: readers hold paths per generation
        vectors_change = (bool(changes.add or changes.remove or changes.moves or changes.absorb
                               or changes.drop_segments) or self.vectors_path is None)
        gen = self.generation + 1 if vectors_change else self.generation
        new_file = self.layout.vectors_file(gen)
        gone_paths = sorted(set(changes.remove) | {f.path for f in changes.add} | set(changes.absorb))
        with Session(self.engine) as s:
            gone_ids = sorted(set(_segment_ids_of(s, gone_paths))
                              | set(_existing_segment_ids(s, changes.drop_segments)))
            next_id = _next_segment_id(s)
        # step 1: the vectors of generation gen, written beside the current file
        if gone_ids:
            index.remove_ids(np.asarray(gone_ids, dtype=np.int64))
        seg_id = next_id
        ids_per_file = []
        for f in changes.add:
            ids = np.arange(seg_id, seg_id + len(f.segments), dtype=np.int64)
            seg_id += len(f.segments)
            ids_per_file.append(ids)
        new_ids = np.concatenate(ids_per_file) if ids_per_file else np.zeros(0, np.int64)
        new_vecs = (np.ascontiguousarray(np.concatenate([f.vectors for f in changes.add]),
                                         dtype=np.float32).reshape(-1, dim)
                    if changes.add else np.zeros((0, dim), np.float32))
        if len(new_ids):            # one call: per-call overhead is large for IVF types
            index.add_with_ids(new_vecs, new_ids)
        index_meta = {k: self.meta[k] for k in INDEX_META_KEYS if k in self.meta}
        written: dict[str, Any] = {}     # the new file's length and name, which readers compare (engine.vectors)
        if vectors_change:          # only error rows changed: the vectors file (and its length) stays
            try:
                index, index_meta = self._arrange(index, dim, gen, new_file,
                                                  np.asarray(gone_ids, np.int64), new_ids, new_vecs)
                self._index = index
                written[LENGTH_KEY] = write_index_atomic(index, new_file)
                written[LENGTH_OF_KEY] = new_file.name
            except Exception:
                self._discard_uncommitted(new_file)    # a lossy type's sidecar, already written
                raise
        # step 2: one transaction makes it the committed generation
        try:
            with Session(self.engine) as s, s.begin():
                if changes.absorb:
                    _absorb(s, changes.absorb)
                kept = _kept_rows(s, changes.keep)
                if changes.inherit:     # read before the old rows go below
                    taken = _kept_rows(s, dict.fromkeys(changes.inherit.values(), True))
                    kept.update({new: taken[old] for new, old in changes.inherit.items() if old in taken})
                if gone_paths:
                    s.execute(delete(File).where(File.path.in_(gone_paths)))
                if changes.moves:
                    _move(s, changes.moves)
                for i in range(0, len(changes.drop_segments), 500):
                    s.execute(delete(SegmentRow).where(SegmentRow.id.in_(changes.drop_segments[i:i + 500])))
                if changes.file_rows:
                    _set_file_rows(s, changes.file_rows)
                for f, ids in zip(changes.add, ids_per_file):
                    row = File(path=f.path, size=f.size, mtime_ns=f.mtime_ns, duration=f.duration,
                               sample_rate=f.info.sample_rate, channels=f.info.channels,
                               format=f.info.format, subtype=f.info.subtype, indexed_at=time.time())
                    s.add(row)
                    s.flush()
                    s.add_all(SegmentRow(id=int(i), file_id=row.id, start=a, end=b)
                              for i, (a, b) in zip(ids, f.segments))
                    s.add_all(FileMetadata(file_id=row.id, key=k, value=v) for k, v in f.info.metadata)
                    tags, captions, sheet = kept.get(f.path, ((), (), ()))
                    s.add_all(Tag(file_id=row.id, label=label, score=score, source=source) for label, score, source in tags)
                    s.add_all(Caption(file_id=row.id, text=text_, source=source) for text_, source in captions)
                    s.add_all(FileMetadata(file_id=row.id, key=k, value=v) for k, v in sheet)
                cleared = set(changes.clear_errors) | {f.path for f in changes.add} | {m.new for m in changes.moves}
                if cleared:
                    s.execute(delete(ErrorRow).where(ErrorRow.path.in_(sorted(cleared))))
                for path, reason in changes.errors.items():
                    _set_error(s, path, reason)
                s.flush()
                counts = _counts(s)
                new_meta = dict(meta, vectors_file=new_file.name, generation=gen, counts=counts,
                                metric=METRIC, updated_at=time.time(), **index_meta, **written)
                set_meta(s, **new_meta)
        except BaseException as e:
            # rolled back: the file written in step 1 is no generation's; on a full disk it holds
            # the space the next attempt needs, so it goes now rather than at the next open
            if vectors_change and isinstance(e, Exception):
                self._discard_uncommitted(new_file)
            if isinstance(e, DBAPIError) and _disk_full(e):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.layout.catalog)) from e
            raise
        # step 3: the old generation is garbage; index.json mirrors the catalog
        old = self.vectors_path
        self.meta.update(new_meta)
        # the commit is complete and durable: a refusal now (the folder made read-only, a full
        # disk) is said, not raised, so the run does not stop as if this generation were lost;
        # the next writer removes what is left (_delete_orphans), the next commit rewrites index.json
        try:
            if old is not None and old != new_file:
                from indexer.retrain import sidecar_path
                old.unlink(missing_ok=True)
                sidecar_path(old).unlink(missing_ok=True)
            self.write_index_json()
        except OSError as e:
            log.warning("%s: generation %d is committed, but %s: %s", self.layout.root, gen,
                        "tidying up after it failed", f"{e.filename + ': ' if e.filename else ''}"
                        f"{(e.strerror or str(e)).lower()}")
        if index.ntotal != counts["segments"]:
            raise RuntimeError(f"{new_file}: {index.ntotal} vectors but the catalog holds "
                               f"{counts['segments']} segments; this is a bug, please report it")
        return gen

    def replace_metadata(self, found: dict[str, tuple[tuple[str, str], ...]], reader: int | None) -> None:
        """Replace the embedded metadata of indexed files (path → (key, value) pairs) in one
        transaction, without touching vectors or the generation; ``reader``: the metadata
        reader version every indexed file has now been read with (None: not all of them).
        What the file says (and its fingerprint) is replaced; its measured levels, the state of
        the cue sheet its segments were cut with, its silence (SILENCE_KEYS), whether it was cut
        short (CUT_SHORT_KEY) and what an imported library sheet says stay."""
        kept = (*LEVEL_KEYS, CUE_SHEET_KEY, *SILENCE_KEYS, CUT_SHORT_KEY)
        self._replace_file_metadata(found, and_(FileMetadata.key.not_in(kept),
                                                FileMetadata.key.not_like(SHEET_PREFIX + "%")),
                                    {} if reader is None else {"metadata_reader": reader})

    def replace_levels(self, found: dict[str, dict[str, float]]) -> None:
        """Store the measured peak and loudness (engine.loudness; path → levels) of indexed files
        in one transaction, without touching vectors or the generation."""
        self._replace_file_metadata({path: tuple((k, f"{v:.1f}") for k, v in levels.items() if k in LEVEL_KEYS)
                                     for path, levels in found.items()}, FileMetadata.key.in_(LEVEL_KEYS), {})

    def _replace_file_metadata(self, found: dict[str, tuple[tuple[str, str], ...]], replaced: Any,
                               meta: dict[str, Any]) -> None:
        """The rows of indexed files whose key matches ``replaced`` become ``found``'s pairs (path →
        (key, value) pairs), and ``meta`` is set, in one transaction; stamps ``metadata_replaced_at``
        so readers redo what they derived from the rows (word index, filters, the page)."""
        with Session(self.engine) as s, s.begin():
            ids = dict(s.execute(select(File.path, File.id).where(File.path.in_(sorted(found)))).all())
            if ids:
                s.execute(delete(FileMetadata).where(FileMetadata.file_id.in_(sorted(ids.values())), replaced))
                s.add_all(FileMetadata(file_id=ids[path], key=k, value=v)
                          for path, pairs in found.items() if path in ids for k, v in pairs)
            stamp = {"metadata_replaced_at": time.time(), **meta}
            set_meta(s, **stamp)
        self.meta.update(stamp)

    def update_meta(self, **values: Any) -> None:
        """Set meta keys in one transaction, without touching vectors or the generation."""
        with Session(self.engine) as s, s.begin():
            set_meta(s, **values)
        self.meta.update(values)

    def _warn_if_over_budget(self, n: int, choice: IndexChoice) -> None:
        """One warning per run when even the chosen (most compact fitting) index exceeds the budget."""
        need = n * choice.bytes_per_vector
        if need > self.memory_budget and not self._warned_budget:
            self._warned_budget = True
            log.warning("%s: %d vectors need about %s as %s, more than the memory budget of %s; "
                        "nothing smaller is built, so raise --memory-budget", self.layout.root, n,
                        human_size(need), INDEX_TYPES.get(choice.kind, choice.kind), human_size(self.memory_budget))

    def _arrange(self, index: Any, dim: int, gen: int, new_file: Path, gone_ids: np.ndarray,
                 new_ids: np.ndarray, new_vecs: np.ndarray) -> tuple[Any, dict[str, Any]]:
        """Choose the index type for the new vector count; rebuild and tune as needed.

        ``index`` already holds the batch's changes. Returns the index to write and the
        meta keys describing it (INDEX_META_KEYS).
        """
        from indexer import retrain
        t0 = time.perf_counter()
        n = int(index.ntotal)
        choice = self.chooser(n, dim, self.memory_budget, gpu_count() > 0)
        self._warn_if_over_budget(n, choice)
        current = self.meta.get("faiss_factory")
        current_kind = self.meta.get("index_kind", "flat")
        rebuild = needs_rebuild(current, choice)
        raw = None
        if choice.kind in retrain.LOSSY_KINDS or current_kind in retrain.LOSSY_KINDS:
            old_side = self.sidecar_path
            if old_side is not None:
                old_raw, gone = retrain.read_sidecar(old_side), gone_ids
            elif current_kind in retrain.LOSSY_KINDS:
                raise IndexNotFound(
                    f"{self.layout.root}: the raw vectors ({retrain.sidecar_path(self.vectors_path)}) "
                    "of this compressed index are missing; delete the index folder and index again")
            else:   # the index on disk is exact and already holds this batch
                old_raw, gone, new_ids = retrain.raw_from_index(index), np.zeros(0, np.int64), new_ids[:0]
                new_vecs = new_vecs[:0]
            raw = retrain.write_sidecar(retrain.sidecar_path(new_file), old_raw, gone, new_ids,
                                        new_vecs, dim)
        trained = int(self.meta.get("trained_on", 0))
        if rebuild:
            log.info("%s: %d vectors → rebuilding as %s (was %s)", self.layout.root, n,
                     choice.factory, current or "IDMap2,Flat")
            if raw is None:
                raw = retrain.raw_from_index(index)
            index = new_index(dim) if choice.kind == "flat" else retrain.build(choice, dim, raw, seed=gen)
            if choice.kind == "flat":
                for ids, vecs in raw.chunks():
                    index.add_with_ids(np.ascontiguousarray(vecs), ids)
            trained = n if choice.nlist else 0
        # exact search finds the true neighbours (recall 1); with no vectors nothing was searched
        params, recall = {}, (1.0 if n else None)
        if choice.nlist:
            if raw is None:
                raw = retrain.raw_from_index(index)
            previous = None if rebuild else self.meta.get("index_params")
            params, recall = retrain.tune(index, choice, raw, seed=gen, previous=previous)
        self.retrain_seconds += time.perf_counter() - t0
        return index, {"index_type": INDEX_TYPES.get(choice.kind, choice.kind),
                       "index_kind": choice.kind, "faiss_factory": choice.factory,
                       "index_params": params, "recall_at_10": None if recall is None else round(recall, 4),
                       "trained_on": trained, "memory_budget": self.memory_budget}

    def write_index_json(self) -> None:
        """Write index.json atomically (a human-readable mirror of the catalog's meta)."""
        keys = ("model_name", "model_fingerprint", "dim", "sample_rate", "segment_policy",
                "metric", *INDEX_META_KEYS, "counts", "generation", "vectors_file", "updated_at")
        doc = {k: self.meta.get(k) for k in keys}
        doc["versions"] = package_versions()
        path = self.layout.index_json
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        replace_durably(tmp, path)


#: meta keys that describe the FAISS index (written by every vector-changing commit)
INDEX_META_KEYS = ("index_type", "index_kind", "faiss_factory", "index_params", "recall_at_10",
                   "trained_on", "memory_budget")


def catalog_headers(engine: Engine, paths: list[str]) -> dict[str, Header]:
    """:meth:`IndexWriter.headers` of the catalog behind ``engine`` (also one no writer holds
    open: the index a rebuild replaces, indexer.rebuild, which may be from before file_metadata:
    then no file has a fingerprint)."""
    out = {}
    with Session(engine) as s:
        stored = has_table(s, "file_metadata")
        for i in range(0, len(paths), 500):
            query = select(File.path, File.sample_rate, File.channels, File.format, File.subtype, File.duration,
                           FileMetadata.value if stored else null().label("value"))
            if stored:
                query = query.outerjoin(FileMetadata, (FileMetadata.file_id == File.id)
                                                      & (FileMetadata.key == "fingerprint"))
            rows = s.execute(query.where(File.path.in_(paths[i:i + 500])))
            out.update({r.path: Header(r.sample_rate, r.channels, r.format, r.subtype or "", r.duration,
                                       r.value) for r in rows})
    return out


def catalog_users_notes(engine: Engine, paths: list[str]) -> dict[str, list[str]]:
    """:meth:`IndexWriter.users_notes` of the catalog behind ``engine`` (also one no writer holds
    open: the index a rebuild replaces, indexer.rebuild)."""
    out: dict[str, list[str]] = {}
    with Session(engine) as s:
        for i in range(0, len(paths), 500):
            chunk = paths[i:i + 500]
            for path, label in s.execute(select(File.path, Tag.label).join(Tag, Tag.file_id == File.id)
                                         .where(File.path.in_(chunk), Tag.source.not_in(DERIVED_TAG_SOURCES))
                                         .order_by(File.path, Tag.label)):
                out.setdefault(path, []).append(label)
            captions = (select(File.path, Caption.text).join(Caption, Caption.file_id == File.id)
                        .where(File.path.in_(chunk), Caption.source.not_in(DERIVED_CAPTION_SOURCES))
                        .order_by(File.path, Caption.id))
            for path, caption in s.execute(captions):
                out.setdefault(path, []).append(f"caption: {caption}")
    return out


def _disk_full(e: DBAPIError) -> bool:
    """Whether SQLite refused a write because the disk (or the quota) is full: SQLITE_FULL,
    "database or disk is full"."""
    code = getattr(e.orig, "sqlite_errorcode", None)
    return code == getattr(sqlite3, "SQLITE_FULL", 13) or "disk is full" in str(e.orig)


def _set_error(s: Session, path: str, reason: str) -> None:
    """Insert or replace the error row of ``path`` (one row per path: the latest attempt)."""
    row = s.scalar(select(ErrorRow).where(ErrorRow.path == path))
    if row is None:
        s.add(ErrorRow(path=path, reason=reason, at=time.time()))
    else:
        row.reason, row.at = reason, time.time()


def _move(s: Session, moves: list[Move]) -> None:
    """Give files their new paths (and modification times) in two steps, so a new path that is
    another moved file's old one never meets the unique constraint (the interim names are not
    absolute paths)."""
    by_old = {m.old: m for m in moves}
    olds = sorted(by_old)
    ids: dict[str, int] = {}
    for i in range(0, len(olds), 500):
        ids.update(s.execute(select(File.path, File.id).where(File.path.in_(olds[i:i + 500]))).all())
    for fid in ids.values():
        s.execute(update(File).where(File.id == fid).values(path=f"moving:{fid}"))
    for old, fid in ids.items():
        m = by_old[old]
        s.execute(update(File).where(File.id == fid).values(path=m.new, mtime_ns=m.mtime_ns))


def _kept_rows(s: Session, keep: dict[str, bool]) -> dict[str, tuple[list, list, list]]:
    """The tags ((label, score, source)), captions ((text, source)) and library-sheet metadata
    ((key, value)) of the indexed files in ``keep`` that stay with them when they are embedded
    again: all, or only the user's (:data:`DERIVED_TAG_SOURCES` and
    :data:`DERIVED_CAPTION_SOURCES` left out; a sheet's rows always stay)."""
    out: dict[str, tuple[list, list, list]] = {}
    paths = sorted(keep)
    for i in range(0, len(paths), 500):
        ids = dict(s.execute(select(File.id, File.path).where(File.path.in_(paths[i:i + 500]))).all())
        for fid, label, score, source in s.execute(select(Tag.file_id, Tag.label, Tag.score, Tag.source)
                                                   .where(Tag.file_id.in_(sorted(ids)))):
            if keep[ids[fid]] or source not in DERIVED_TAG_SOURCES:
                out.setdefault(ids[fid], ([], [], []))[0].append((label, score, source))
        for fid, text_, source in s.execute(select(Caption.file_id, Caption.text, Caption.source)
                                            .where(Caption.file_id.in_(sorted(ids)))):
            if keep[ids[fid]] or source not in DERIVED_CAPTION_SOURCES:
                out.setdefault(ids[fid], ([], [], []))[1].append((text_, source))
        for fid, key, value in s.execute(select(FileMetadata.file_id, FileMetadata.key, FileMetadata.value)
                                         .where(FileMetadata.file_id.in_(sorted(ids)),
                                                FileMetadata.key.like(SHEET_PREFIX + "%"))):
            out.setdefault(ids[fid], ([], [], []))[2].append((key, value))
    return out


def _absorb(s: Session, absorb: dict[str, str]) -> None:
    """Copy the tags and captions of each old path's file onto the file indexed at its new path
    (rows it holds already are not doubled), and what a library sheet said of it unless a sheet
    describes the new one already; the old file's rows go with it afterwards."""
    paths = sorted(set(absorb) | set(absorb.values()))
    ids = dict(s.execute(select(File.path, File.id).where(File.path.in_(paths))).all())
    for old, new in absorb.items():
        if old not in ids or new not in ids:
            continue
        have = set(s.execute(select(Tag.label, Tag.source).where(Tag.file_id == ids[new])).all())
        for label, score, source in s.execute(select(Tag.label, Tag.score, Tag.source)
                                              .where(Tag.file_id == ids[old])).all():
            if (label, source) not in have:
                s.add(Tag(file_id=ids[new], label=label, score=score, source=source))
        have_c = set(s.execute(select(Caption.text, Caption.source).where(Caption.file_id == ids[new])).all())
        for text_, source in s.execute(select(Caption.text, Caption.source).where(Caption.file_id == ids[old])).all():
            if (text_, source) not in have_c:
                s.add(Caption(file_id=ids[new], text=text_, source=source))
        sheet = FileMetadata.key.like(SHEET_PREFIX + "%")       # a library sheet's fields, unless it has some
        if s.scalar(select(func.count()).select_from(FileMetadata).where(FileMetadata.file_id == ids[new], sheet)) == 0:
            s.add_all(FileMetadata(file_id=ids[new], key=k, value=v) for k, v in s.execute(
                select(FileMetadata.key, FileMetadata.value).where(FileMetadata.file_id == ids[old], sheet)))


def _segment_ids_of(s: Session, paths: list[str]) -> list[int]:
    ids: list[int] = []
    for i in range(0, len(paths), 500):
        chunk = paths[i:i + 500]
        ids += s.scalars(select(SegmentRow.id).join(File).where(File.path.in_(chunk)))
    return ids


def _existing_segment_ids(s: Session, ids: list[int]) -> list[int]:
    """Those of ``ids`` the catalog holds (a segment whose file goes too is removed once)."""
    out: list[int] = []
    for i in range(0, len(ids), 500):
        out += s.scalars(select(SegmentRow.id).where(SegmentRow.id.in_(ids[i:i + 500])))
    return out


def _set_file_rows(s: Session, rows: dict[str, dict[str, str | None]]) -> None:
    """Set the indexer's rows of indexed files (path → key → value; None: the row goes); a path
    not indexed (gone in the same commit) is passed over."""
    paths = sorted(rows)
    ids: dict[str, int] = {}
    for i in range(0, len(paths), 500):
        ids.update(s.execute(select(File.path, File.id).where(File.path.in_(paths[i:i + 500]))).all())
    for path, pairs in rows.items():
        if path not in ids:
            continue
        s.execute(delete(FileMetadata).where(FileMetadata.file_id == ids[path], FileMetadata.key.in_(sorted(pairs))))
        s.add_all(FileMetadata(file_id=ids[path], key=k, value=v) for k, v in pairs.items() if v is not None)


def _next_segment_id(s: Session) -> int:
    """The id SQLite's AUTOINCREMENT would hand out next (never a reused one)."""
    seq = s.execute(text("SELECT seq FROM sqlite_sequence WHERE name = 'segments'")).scalar()
    top = s.scalar(select(func.max(SegmentRow.id)))
    return max(int(seq or 0), int(top or 0)) + 1


def _counts(s: Session) -> dict[str, Any]:
    return {
        "files": int(s.scalar(select(func.count()).select_from(File)) or 0),
        "segments": int(s.scalar(select(func.count()).select_from(SegmentRow)) or 0),
        "errors": int(s.scalar(select(func.count()).select_from(ErrorRow)) or 0),
        "duration": float(s.scalar(select(func.coalesce(func.sum(File.duration), 0.0))) or 0.0),
    }
