"""What :class:`engine.query.SoundIndex` reads from the catalog besides search hits, each in the
caller's read transaction: a file by path or id, the files' records and recorded states, failed
files, what the filters can choose from, the index's counts, and one vector per file."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sqlalchemy import Float, cast, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from engine.catalog import ErrorRow, File, FileMetadata, SegmentRow, Tag, has_table
from engine.errors import InvalidQuery
from engine.file_metadata import INDEXER_KEYS, LEVEL_KEYS, SHEET_NAME_KEY, SHEET_PREFIX, with_sheet
from engine.filters import Filters, has_extension, starts_with
from engine.folder_paths import under_roots
from engine.models.base import l2_normalize
from engine.query_faiss import _describe
from engine.query_hits import FileVectors
from engine.query_snapshot import _Snapshot
from engine.text_encoding import normal_forms
from engine.vector_access import all_vectors

#: the query layer's logger (engine.query's, as before these parts moved out of it)
log = logging.getLogger("engine.query")


def resolve_file(conn: Connection, root: Path, path_or_file_id: str | Path | int) -> int:
    """The file id of an indexed file given by id or path (relative, through links, in the other
    Unicode normal form); InvalidQuery naming the index at ``root`` when it holds no such file
    (with its error row's reason for a file it could not index)."""
    if isinstance(path_or_file_id, (bool, np.bool_)):
        raise InvalidQuery(f"a file is a path or a file id, not {path_or_file_id!r}")
    if isinstance(path_or_file_id, (int, np.integer)):
        found = conn.execute(select(File.id).where(File.id == int(path_or_file_id))).scalar()
    else:
        candidates = path_spellings(path_or_file_id)
        p = Path(path_or_file_id).expanduser()
        found = conn.execute(select(File.id).where(File.path.in_(candidates)).limit(1)).scalar()
        if found is None:
            found = other_normal_form(conn, candidates, str(p.absolute()))
        if found is None and (reason := failed_reason(conn, candidates)) is not None:
            raise InvalidQuery(f"{path_or_file_id} is not in index {root}: it could not be indexed: {reason}")
    if found is None:
        raise InvalidQuery(f"{path_or_file_id} is not in index {root}; index it first, "
                           "or search by its audio instead (`soundsift similar` does that)")
    return int(found)


def why_not_indexed(conn: Connection | Session, item: str | Path | int,
                    spellings: Sequence[str] | None = None) -> str:
    """Why ``item`` names no indexed file: no such id, no such file, a file that could not be
    indexed (the reason its error row gives), a folder holding none, or one never indexed.
    ``spellings``: the paths the catalog may keep ``item`` as (by default as typed, absolute and
    with links resolved)."""
    if isinstance(item, (int, np.integer)):
        return f"no indexed file has id {item}"
    given = os.path.abspath(os.path.expanduser(str(item)))
    if not os.path.lexists(given):
        return "no such file or folder"
    paths = list(dict.fromkeys(spellings or [given, os.path.realpath(given)]))
    if os.path.isdir(given):
        failed = sum(1 for (p,) in conn.execute(select(ErrorRow.path)) if under_roots(p, paths))
        if failed:
            return (f"no file under it is in the index; {failed} could not be indexed "
                    "(`soundsift info` lists them with their reasons)")
        return "no file under it is in the index (index it first)"
    reason = failed_reason(conn, paths)
    if reason is not None:
        return f"could not be indexed: {reason}"
    return "not in the index (index it first)"


def failed_reason(conn: Connection | Session, paths: Sequence[str]) -> str | None:
    """Why the file the catalog keeps as one of ``paths`` (spellings of one path) could not be
    indexed: its error row's reason on one line; None where it has no error row."""
    reason = conn.scalars(select(ErrorRow.reason).where(ErrorRow.path.in_(list(paths)))).first()
    return None if reason is None else " ".join(str(reason).split())


def path_spellings(path: str | Path) -> list[str]:
    """The catalog paths ``path`` may name: as typed, absolute, and with links resolved."""
    p = Path(path).expanduser()
    return list(dict.fromkeys([str(path), str(p.absolute()), str(p.resolve())]))


def other_normal_form(conn: Connection, candidates: list[str], typed: str) -> int | None:
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


def file_states(conn: Connection, root: Path,
                paths: Sequence[str | Path] | None = None) -> dict[str, tuple[int, int]]:
    """:meth:`engine.query.SoundIndex.file_states` of the index at ``root``, read in ``conn``."""
    if paths is None:
        return {str(p): (int(size), int(mtime)) for p, size, mtime in
                conn.execute(select(File.path, File.size, File.mtime_ns))}
    found = {}
    for given in paths:
        try:
            file_id = resolve_file(conn, root, given)
        except InvalidQuery:
            continue
        size, mtime = conn.execute(select(File.size, File.mtime_ns).where(File.id == file_id)).one()
        found[str(given)] = (int(size), int(mtime))
    return found


def allowed_segments(conn: Connection, snap: _Snapshot, root: Path, filters: Filters,
                     cache: dict[tuple[Any, ...], np.ndarray]) -> np.ndarray:
    """Sorted segment ids of the files ``filters`` keeps (cached in ``cache`` per generation, and
    per state of what changes between generations: tags for a tag filter, the files' metadata
    and measured levels for a category or loudness filter); InvalidQuery for a category filter
    on a catalog from before embedded metadata (of the index at ``root``)."""
    key: tuple[Any, ...] = (snap.key, filters)
    if filters.tags:
        key += tuple(conn.exec_driver_sql(
            "SELECT count(*), max(id), (SELECT value FROM meta WHERE key = 'tags_changed_at') "
            "FROM tags").fetchone())
    if filters.categories or filters.min_loudness is not None or filters.max_loudness is not None:
        key += tuple(conn.exec_driver_sql(
            "SELECT value FROM meta WHERE key = 'metadata_replaced_at'").fetchall())
    hit = cache.get(key)
    if hit is not None:
        return hit
    filters.check_catalog(conn, root)
    file_ids = np.fromiter(conn.execute(filters.file_ids_query()).scalars(), dtype=np.int64)
    allowed = snap.seg_ids[np.isin(snap.seg_file, file_ids)]
    if len(cache) > 32:
        cache.clear()
    cache[key] = allowed
    return allowed


def get_file(conn: Connection, root: Path, file_id: int) -> dict[str, Any]:
    """:meth:`engine.query.SoundIndex.get_file` of the index at ``root``, read in ``conn``."""
    f = conn.execute(select(File.id, File.path, File.size, File.duration, File.format,
                            File.subtype, File.sample_rate, File.channels)
                     .where(File.id == int(file_id))).first()
    if f is None:
        raise InvalidQuery(f"file id {file_id} is not in index {root}")
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


def errors(conn: Connection, limit: int | None = None) -> list[dict[str, Any]]:
    """:meth:`engine.query.SoundIndex.errors`, read in ``conn``."""
    stmt = select(ErrorRow.path, ErrorRow.reason, ErrorRow.at).order_by(ErrorRow.at.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    return [{"path": r.path, "reason": r.reason, "at": float(r.at)} for r in conn.execute(stmt)]


def held_by_index(conn: Connection, filters: Filters) -> tuple[list[str], list[str]]:
    """Every tag the index holds (none read when ``filters`` asks for no tag) and the formats
    ``filters`` asks for that some indexed file's name ends in (:meth:`Filters.unavailable`)."""
    tags = list(conn.execute(select(Tag.label).distinct()).scalars()) if filters.tags else []
    extensions = [f for f in filters.formats if conn.execute(
        select(File.id).where(has_extension(f)).limit(1)).first()]
    return tags, extensions


def unheld_prefix(conn: Connection, filters: Filters) -> str | None:
    """When no indexed file's path starts with ``filters``' path prefix, the folder every indexed
    file lies under (the common folder of the first and last paths in order, so of all; "" for an
    empty index); None when some file's does, or no prefix is asked for
    (:meth:`Filters.unavailable`)."""
    if not filters.path_prefix or conn.execute(
            select(File.id).where(starts_with(str(filters.path_prefix))).limit(1)).first():
        return None
    first, last = conn.execute(select(func.min(File.path), func.max(File.path))).one()
    if first is None:
        return ""
    common = os.path.commonprefix([first, last])
    return common[:common.rfind(os.sep) + 1] or os.sep


def facets(conn: Connection) -> dict[str, Any]:
    """:meth:`engine.query.SoundIndex.facets`, read in ``conn``."""
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


def info(conn: Connection, snap: _Snapshot, root: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """:meth:`engine.query.SoundIndex.info` of the index at ``root`` (its meta ``meta``), from
    ``snap`` and ``conn``."""
    n_err = int(conn.execute(select(func.count(ErrorRow.id))).scalar() or 0)
    return {
        "index": str(root),
        "model": meta.get("model_name"),
        "fingerprint": meta.get("model_fingerprint"),
        "dim": meta.get("dim"),
        "sample_rate": meta.get("sample_rate"),
        "segment_policy": meta.get("segment_policy"),
        "index_type": meta.get("index_type") or _describe(snap.index),
        "generation": meta.get("generation"),
        "vectors_file": meta.get("vectors_file"),
        "files": snap.n_files,
        "segments": len(snap.seg_ids),
        "vectors": snap.ntotal,
        "errors": n_err,
    }


def file_vectors(conn: Connection, snap: _Snapshot, root: Path, meta: dict[str, Any],
                 filters: Filters | None = None) -> FileVectors:
    """:meth:`engine.query.SoundIndex.file_vectors` of the index at ``root`` (its meta ``meta``),
    from ``snap`` and ``conn``."""
    query = select(File.id, File.path, File.duration, File.size)
    if filters is not None and filters.active:
        filters.check_catalog(conn, root)
        query = query.where(*filters.conditions())
    files = {int(r.id): r for r in conn.execute(query)}
    dim = int(meta.get("dim") or (snap.index.d if snap.index is not None else 0))
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
