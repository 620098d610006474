"""What :class:`engine.query.SoundIndex` reads from the catalog besides search hits, each in the
caller's read transaction: a file by path or id, the files' records and recorded states, failed
files, what the filters can choose from, the index's counts, and one vector per file."""
from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sqlalchemy import Float, cast, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from engine.audio import is_audio_name
from engine.catalog import SQL_CHUNK, ErrorRow, File, FileMetadata, SegmentRow, Tag, has_table
from engine.errors import InvalidQuery
from engine.file_metadata import CUT_SHORT_KEY, INDEXER_KEYS, LEVEL_KEYS, SHEET_NAME_KEY, SHEET_PREFIX, with_sheet
from engine.filters import Filters, has_extension, path_starts, starts_with
from engine.folder_paths import on_disk_spelling, under_roots
from engine.layout import IndexLayout
from engine.loudness import SILENCE_DB, level_number
from engine.metadata_shown import shown_rows
from engine.models.base import l2_normalize
from engine.query_faiss import _describe
from engine.query_hits import FileVectors, header_seconds
from engine.query_snapshot import _Snapshot
from engine.system_files import is_appledouble, system_folder_of
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
    indexed (the reason its error row gives), a folder holding none, a file without an audio
    extension or a macOS ``._*`` metadata file (which the walk of its folder passes over), one in a
    hidden or system folder that no indexed file is under (which a walk passes over whole), or
    one never indexed.
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
    if not is_audio_name(given):            # the walk of its folder passes it over (indexer.scan)
        extension = os.path.splitext(given)[1]
        what = f"{extension!r} is not an audio extension" if extension else "it has no extension"
        return f"not a sound file soundsift indexes ({what}: indexing its folder passes it over)"
    if is_appledouble(given, os.path.basename(given)):     # passed over as a system file (indexer.scan)
        return ("not a sound file soundsift indexes (a macOS metadata file or resource fork, ._*, "
                "which indexing its folder passes over as a system file)")
    folder = system_folder_of(given)
    if folder is not None and not _indexes_under(conn, folder):    # passed over as a whole (indexer.scan)
        return (f"not a sound file soundsift indexes (it is in {folder}, a hidden or system folder, "
                "which indexing a folder above it passes over)")
    return "not in the index (index it first)"


def _indexes_under(conn: Connection | Session, folder: str) -> bool:
    """Whether the catalog holds a file under ``folder``: one indexed from it, as a root of its
    own or by name, where a walk from above passes it over."""
    return conn.execute(select(File.id).where(path_starts(folder.rstrip(os.sep) + os.sep)).limit(1)).first() is not None


def failed_reason(conn: Connection | Session, paths: Sequence[str]) -> str | None:
    """Why the file the catalog keeps as one of ``paths`` (spellings of one path) could not be
    indexed: its error row's reason on one line; None where it has no error row."""
    reason = conn.scalars(select(ErrorRow.reason).where(ErrorRow.path.in_(list(paths)))).first()
    return None if reason is None else " ".join(str(reason).split())


def path_spellings(path: str | Path, resolved: bool = True) -> list[str]:
    """The catalog paths ``path`` may name: as typed, absolute, and (``resolved``) with links
    resolved."""
    p = Path(path).expanduser()
    return list(dict.fromkeys([str(path), str(p.absolute()), *([str(p.resolve())] if resolved else [])]))


def other_normal_form(conn: Connection, candidates: list[str], typed: str) -> int | None:
    """The indexed file that ``candidates`` (the spellings of the path ``typed``) name in their
    other Unicode normal form: "é" typed composed (NFC) for a file indexed from a macOS HFS+
    disk decomposed (NFD, "e" + U+0301), or the reverse. None where there is none, or where
    ``typed`` opens another file than the indexed one (Linux keeps the two spellings apart;
    APFS opens either). A path whose names mix the two forms (a folder named composed here
    holding files copied decomposed from an HFS+ disk) is found by its spelling on disk
    (:func:`engine.folder_paths.on_disk_spelling`), name by name."""
    spellings = dict.fromkeys([*(form for c in candidates for form in normal_forms(c)),
                               *([on_disk_spelling(typed)] if not typed.isascii() else [])])
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
    """:meth:`engine.query.SoundIndex.file_states` of the index at ``root``, read in ``conn``:
    the given ``paths`` looked up by their spellings (:func:`path_spellings`), :data:`SQL_CHUNK` of
    them a query; one by one only a file id, and a path none of its spellings names (a query where
    it has another Unicode normal form: :func:`other_normal_form`)."""
    if paths is None:
        return {str(p): (int(size), int(mtime)) for p, size, mtime in
                conn.execute(select(File.path, File.size, File.mtime_ns))}
    texts = [given for given in paths if isinstance(given, (str, Path))]
    spelled = {str(given): path_spellings(given, resolved=False) for given in texts}
    held = _states_at(conn, [s for spellings in spelled.values() for s in spellings])
    # links resolved only for the paths no other spelling names (a realpath each: 0.9 s at 40,000)
    for given in [g for g in texts if not any(s in held for s in spelled[str(g)])]:
        spelled[str(given)] = path_spellings(given)
    held.update(_states_at(conn, [s for spellings in spelled.values() for s in spellings if s not in held]))
    found = {}
    for given in paths:
        spellings = spelled.get(str(given)) if isinstance(given, (str, Path)) else None
        state = next((held[s] for s in spellings or () if s in held), None)
        if state is None:
            state = _state_elsewhere(conn, root, given, spellings)
        if state is not None:
            found[str(given)] = state
    return found


def _states_at(conn: Connection, paths: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Catalog path → ``(size, mtime_ns)`` of the files kept at ``paths`` (:func:`rows_at`)."""
    return {r.path: (int(r.size), int(r.mtime_ns)) for r in rows_at(conn, paths)} if paths else {}


def _state_elsewhere(conn: Connection, root: Path, given: str | Path | int,
                     spellings: list[str] | None) -> tuple[int, int] | None:
    """``(size, mtime_ns)`` of the file ``given`` names that none of its ``spellings`` is: a file
    id (``spellings`` None), a path in the other Unicode normal form (:func:`other_normal_form`);
    None where it names none."""
    if spellings is None:
        try:
            file_id: int | None = resolve_file(conn, root, given)
        except InvalidQuery:
            return None
    else:
        file_id = other_normal_form(conn, spellings, str(Path(given).expanduser().absolute()))
    if file_id is None:
        return None
    size, mtime = conn.execute(select(File.size, File.mtime_ns).where(File.id == file_id)).one()
    return int(size), int(mtime)


def rows_at(conn: Connection, paths: Sequence[str], conditions: Sequence[Any] = ()) -> list[Any]:
    """The catalog rows (``id``, ``path``, ``duration``, ``size``, ``mtime_ns``) of the files kept
    at ``paths`` (exactly as the catalog keeps them) that meet ``conditions`` (SQL, as
    Filters.conditions gives), read :data:`SQL_CHUNK` paths a query."""
    wanted = list(dict.fromkeys(paths))
    query = select(File.id, File.path, File.duration, File.size, File.mtime_ns).where(*conditions)
    return [row for i in range(0, len(wanted), SQL_CHUNK)
            for row in conn.execute(query.where(File.path.in_(wanted[i:i + SQL_CHUNK])))]


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
    header_duration = header_seconds(embedded.get(CUT_SHORT_KEY))     # a file cut short, as its hits say
    return {"file_id": int(f.id), "path": f.path, "folder": os.path.dirname(f.path),
            "size": int(f.size), "duration": float(f.duration), "format": f.format,
            "subtype": f.subtype, "sample_rate": int(f.sample_rate), "channels": int(f.channels),
            "segments": [{"segment_id": int(s.id), "start": float(s.start), "end": float(s.end)}
                         for s in segs],
            "metadata": {k: v for k, v in with_sheet(embedded).items() if k not in INDEXER_KEYS},
            "levels": {k: level_number(embedded[k]) for k in LEVEL_KEYS if k in embedded},
            **({"sheet": embedded[SHEET_NAME_KEY]} if SHEET_NAME_KEY in embedded else {}),
            **({"header_duration": header_duration} if header_duration is not None else {})}


def get_file_and_state(conn: Connection, root: Path, file_id: int) -> tuple[dict[str, Any], tuple[int, int]]:
    """:func:`get_file`'s record of ``file_id`` and its ``(size, mtime_ns)`` as indexed, both read
    in ``conn``'s transaction (:meth:`engine.query.SoundIndex.get_file_and_state`)."""
    record = get_file(conn, root, file_id)
    size, mtime = conn.execute(select(File.size, File.mtime_ns).where(File.id == int(file_id))).one()
    return record, (int(size), int(mtime))


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


def loudness_range(conn: Connection | Session) -> tuple[int, int, float | None, float | None]:
    """(files measured, of them silent or under the −70 LUFS gate — stored as
    engine.loudness.SILENCE_DB —, quietest and loudest loudness of the others) of a catalog:
    what `soundsift info` and :func:`facets` say of loudness ((0, 0, None, None) for a catalog
    older than file_metadata)."""
    if not has_table(conn, "file_metadata"):
        return 0, 0, None, None
    value = cast(FileMetadata.value, Float)
    measured = FileMetadata.key == "loudness_lufs"
    silent = value <= SILENCE_DB
    n, n_silent = conn.execute(select(func.count(), func.count().filter(silent)).where(measured)).one()
    quietest, loudest = conn.execute(select(func.min(value), func.max(value)).where(measured, ~silent)).one()
    return int(n or 0), int(n_silent or 0), quietest, loudest


def facets(conn: Connection) -> dict[str, Any]:
    """:meth:`engine.query.SoundIndex.facets`, read in ``conn``: ``loudness`` is the range of
    the measured files (:func:`loudness_range`), ``silent_files`` those it leaves out, silent or
    under the −70 LUFS gate (a loudness filter counts them below any range)."""
    formats = sorted(conn.execute(select(File.format).distinct()).scalars())
    rates = sorted(conn.execute(select(File.sample_rate).distinct()).scalars())
    channels = sorted(conn.execute(select(File.channels).distinct()).scalars())
    lo, hi = conn.execute(select(func.min(File.duration), func.max(File.duration))).one()
    categories = (sorted(conn.execute(select(FileMetadata.value)
                                      .where(FileMetadata.key.in_(("category", SHEET_PREFIX + "category")),
                                             shown_rows())
                                      .distinct()).scalars(), key=str.upper)
                  if has_table(conn, "file_metadata") else [])
    _, silent, quietest, loudest = loudness_range(conn)
    return {"formats": formats, "sample_rates": [int(r) for r in rates], "channels": [int(c) for c in channels],
            "min_duration": float(lo or 0.0), "max_duration": float(hi or 0.0), "categories": categories,
            "loudness": None if quietest is None else (float(quietest), float(loudest)),
            "silent_files": silent}


def info(conn: Connection, snap: _Snapshot, root: Path, meta: dict[str, Any],
         full: bool = False) -> dict[str, Any]:
    """:meth:`engine.query.SoundIndex.info` of the index at ``root`` (its meta ``meta``), from
    ``snap`` and ``conn``. ``full``: with every key of ``soundsift info --json`` too
    (engine.catalog_info.catalog_info, read in ``conn``'s transaction: the same snapshot) and its value
    there (``index`` absolute, as it prints it), but for ``errors``, which stays the count here (the
    latest error rows, ``info --json``'s ``errors``, are ``latest_errors``), and ``index_type``,
    which for an index recording none is still described from its FAISS file here."""
    n_err = int(conn.execute(select(func.count(ErrorRow.id))).scalar() or 0)
    own = {
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
    if not full:
        return own
    summary = catalog_summary(conn, root, snap.key[0])
    return {**own, **summary, "errors": own["errors"], "index_type": own["index_type"],
            "latest_errors": summary["errors"]}


#: the ``Connection.info`` key under which a catalog connection keeps the last
#: :func:`catalog_summary` it read, with the state it read it in
SUMMARY_HELD = "soundsift.catalog_summary"


def catalog_summary(conn: Connection, root: Path, vectors_file: Any) -> dict[str, Any]:
    """engine.catalog_info.catalog_info of the index at ``root`` (whose vectors file is ``vectors_file``,
    as the meta names it), read in ``conn``'s transaction; or, when nothing it reads can have
    changed since this connection last read it, a copy of that answer (``GET /info`` on a
    40,050-file index: 0.8 ms, not a catalog read of 128 ms each time; benchmarks/info_cache.py).
    Each pooled connection keeps its own, so a state is read once per connection that answers.

    The catalog's state is SQLite's ``PRAGMA data_version``: between two read transactions of one
    connection it changes whenever another connection, of this process or another, committed in
    between (an index run, ``tags add``, ``sheet import``, any other program). It is the
    connection's own, so the answer is kept with the connection (``Connection.info``: it stays
    with the pooled connection and goes with it), and the query layer never writes on its
    connections (their own commits are the ones it misses). index.json (``versions``) and the
    vectors file (``vectors_bytes``), read beside the catalog, are stamped by ``stat`` before they
    are read: one changed in between costs a read next time, never a stale answer."""
    state = (conn.exec_driver_sql("PRAGMA data_version").scalar(), _file_stamp(IndexLayout(root).index_json),
             _file_stamp(root / str(vectors_file)) if vectors_file else None)
    held = conn.info.get(SUMMARY_HELD)
    if held is not None and held[0] == state:
        return copy.deepcopy(held[1])           # a caller may change its answer; the held one stays
    from engine.catalog_info import catalog_info    # (not above: it reads loudness_range from here)
    with Session(bind=conn) as s:               # joins conn's read transaction, ends nothing
        summary = catalog_info(s, IndexLayout(root))
    conn.info[SUMMARY_HELD] = (state, copy.deepcopy(summary))
    return summary


def _file_stamp(path: Path) -> tuple[int, ...] | None:
    """What changes when the file at ``path`` is replaced or written (kind, inode, size, mtime_ns);
    None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mode, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def file_vectors(conn: Connection, snap: _Snapshot, root: Path, meta: dict[str, Any],
                 filters: Filters | None = None, paths: Sequence[str] | None = None) -> FileVectors:
    """:meth:`engine.query.SoundIndex.file_vectors` of the index at ``root`` (its meta ``meta``),
    from ``snap`` and ``conn``; given ``paths``, of only the files kept at them (:func:`rows_at`),
    whose segments' vectors alone are read (every stored vector otherwise, read in one go)."""
    dim = int(meta.get("dim") or (snap.index.d if snap.index is not None else 0))
    none = FileVectors(np.zeros(0, np.int64), [], np.zeros((0, dim), np.float32), np.zeros(0),
                       np.zeros(0, np.int64))
    conditions = []
    if filters is not None and filters.active:
        filters.check_catalog(conn, root)       # InvalidQuery for a catalog that cannot answer them
        conditions = filters.conditions()
    if snap.ntotal == 0:
        return none
    if paths is not None:
        files = {int(r.id): r for r in rows_at(conn, paths, conditions)}
        ids = snap.seg_ids[np.isin(snap.seg_file, np.fromiter(files, np.int64, len(files)))]
        if not len(ids):
            return none
        vecs = snap.vectors(ids)
    else:
        files = {int(r.id): r for r in conn.execute(select(File.id, File.path, File.duration, File.size)
                                                    .where(*conditions))}
        if snap.raw is not None:
            ids, vecs = snap.seg_ids, snap.raw.vectors(snap.seg_ids)
        else:
            ids, vecs = all_vectors(snap.index, snap.seg_ids)
        keep = np.isin(ids, snap.seg_ids)
        ids, vecs = ids[keep], vecs[keep]
    uniq, sums = _summed_per_file(snap.seg_file[snap.rows(ids)], vecs)
    rows = [files[int(f)] for f in uniq if int(f) in files]
    present = [i for i, f in enumerate(uniq) if int(f) in files]
    return FileVectors(uniq[present].astype(np.int64), [r.path for r in rows],
                       l2_normalize(sums[present]), np.array([float(r.duration) for r in rows]),
                       np.array([int(r.size) for r in rows], np.int64))


def _summed_per_file(fids: np.ndarray, vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted file ids among ``fids`` (each vector's file) and each one's vectors summed."""
    uniq, inv = np.unique(fids, return_inverse=True)
    # each file's segments summed as one run of rows: 0.8 s at 40,000 files, np.add.at 2.0 s
    order = np.argsort(inv, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(inv[order]) != 0])
    return uniq, np.add.reduceat(vecs[order].astype(np.float64), starts, axis=0)
