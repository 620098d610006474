"""``soundsift sheet``: what a library's spreadsheet says of its files, stored with them.

:mod:`engine.metadata_sheet` reads a sheet (the BBC archive's CSV, a Soundminer or BaseHead
export …) and matches its rows to files; :func:`import_sheet` stores the fields each indexed
file gets beside its own metadata (keys prefixed ``sheet:``, engine.file_metadata): keyword
search reads them, ``--category`` filters by them, the page's card and
``SoundIndex.get_file`` show them, and where the file carries the same field itself, the file's
own value is shown first. ``--under FOLDER`` keeps to one library's files. The rows stay with
their files when they are moved, renamed, edited or re-embedded, and when the index is rebuilt
or relocated; importing a sheet again (same file name) replaces what it said, and
:func:`remove_sheet` takes it away. Writes take the index's writer lock, as the user's own tags
do (indexer.user_tags).
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.catalog import SQL_CHUNK as _SQL_CHUNK
from engine.catalog import File, FileMetadata, has_table, open_catalog, set_meta
from engine.errors import InvalidQuery
from engine.file_metadata import SHEET_NAME_KEY, SHEET_PATH_KEY, SHEET_PREFIX, SHEET_SOURCE_KEYS
from engine.layout import existing_index
from engine.metadata_sheet import SheetImport, match_rows, read_sheet
from indexer.scan import normalize_root, under_roots
from indexer.write import WriterLock


def import_sheet(index: str | Path | None, sheet_path: str | Path, under: str | Path | None = None,
                 dry_run: bool = False) -> SheetImport:
    """Describe the indexed files (those under ``under`` when given) by the sheet at
    ``sheet_path``; what that sheet (the same file, by its absolute path) said before is
    replaced, and for a file it describes, what any other sheet said. One transaction under the
    index's writer lock; ``dry_run``: match and report, change nothing."""
    sheet = read_sheet(sheet_path)
    source = str(Path(sheet_path).resolve())
    layout = existing_index(index)
    engine = open_catalog(layout.catalog, create=True)        # a catalog from before file_metadata gains it
    try:
        with Session(engine) as s:
            files = dict(s.execute(select(File.id, File.path)).all())
        if under is not None:
            root = normalize_root(under)
            files = {fid: p for fid, p in files.items() if under_roots(p, [root])}
            if not files:
                raise InvalidQuery(f"index {layout.root} holds no files under {root}")
        described, report = match_rows(sheet, files)
        report.dry_run = dry_run
        if dry_run:
            return report
        with WriterLock(layout.lock), Session(engine) as s, s.begin():
            before = {fid for fid, (name, path) in _sheet_sources(s).items()
                      if path == source or (path is None and name == sheet.name)}   # (unpathed: before session 24)
            _clear_sheet_rows(s, sorted(before | set(described)))
            wanted, alive = sorted(described), set()          # files an index run may have removed meanwhile
            for i in range(0, len(wanted), _SQL_CHUNK):
                alive.update(s.scalars(select(File.id).where(File.id.in_(wanted[i:i + _SQL_CHUNK]))))
            s.add_all(FileMetadata(file_id=fid, key=SHEET_PREFIX + key, value=value)
                      for fid, fields in described.items() if fid in alive
                      for key, value in {**fields, "sheet": sheet.name, "path": source}.items())
            set_meta(s, metadata_replaced_at=time.time())
    finally:
        engine.dispose()
    return report


def remove_sheet(index: str | Path | None, name: str) -> int:
    """Take away what the sheet ``name`` said — its file name as ``sheet list`` shows it, or its
    path — and return how many files it described. InvalidQuery when no file carries it, or when
    a bare name is that of several sheets (then its path tells which)."""
    layout = existing_index(index)
    engine = open_catalog(layout.catalog)
    try:
        with WriterLock(layout.lock), Session(engine) as s, s.begin():
            sources = _sheet_sources(s)
            ids = sorted(fid for fid, source in sources.items() if _names(source, name))
            if not ids:
                known = sorted(sheet_counts_in(s))
                raise InvalidQuery(f"no file of index {layout.root} is described by a sheet named {name!r}"
                                   + (f" (sheets: {', '.join(known)})" if known else " (no sheet was imported)"))
            paths = sorted({str(sources[fid][1]) for fid in ids if sources[fid][1]})
            if len({sources[fid] for fid in ids}) > 1:
                raise InvalidQuery(f"several sheets are named {name!r}: {', '.join(paths)}; give the path of "
                                   "the one to remove")
            _clear_sheet_rows(s, ids)
            set_meta(s, metadata_replaced_at=time.time())
    finally:
        engine.dispose()
    return len(ids)


def imported_sheets(s: Session) -> set[tuple[str, str | None]]:
    """(name, absolute path or None) of every sheet that describes some indexed file."""
    return set(_sheet_sources(s).values())


def _sheet_sources(s: Session) -> dict[int, tuple[str, str | None]]:
    """File id → (name, absolute path or None) of the sheet that describes it (no path for rows
    imported before session 24), for every described file."""
    if not has_table(s, "file_metadata"):
        return {}
    found: dict[int, dict[str, str]] = {}
    for fid, key, value in s.execute(select(FileMetadata.file_id, FileMetadata.key, FileMetadata.value)
                                     .where(FileMetadata.key.in_(SHEET_SOURCE_KEYS))):
        found.setdefault(fid, {})[key] = value
    return {fid: (keys.get(SHEET_NAME_KEY, os.path.basename(keys.get(SHEET_PATH_KEY, ""))), keys.get(SHEET_PATH_KEY))
            for fid, keys in found.items()}


def _names(source: tuple[str, str | None], given: str) -> bool:
    """Whether ``given`` (a sheet's file name, or a path to it) names the sheet ``source``."""
    name, path = source
    if os.sep in given or "/" in given:
        return path is not None and path == str(Path(given).expanduser().resolve())
    return name == given


def _clear_sheet_rows(s: Session, file_ids: list[int]) -> None:
    """Delete what any sheet said of the files ``file_ids`` (their ``sheet:`` rows), in chunks."""
    for i in range(0, len(file_ids), _SQL_CHUNK):
        s.execute(delete(FileMetadata).where(FileMetadata.file_id.in_(file_ids[i:i + _SQL_CHUNK]),
                                             FileMetadata.key.like(SHEET_PREFIX + "%")))


def sheet_counts(index: str | Path | None) -> dict[str, int]:
    """Each imported sheet (file name) → how many indexed files it describes, most first."""
    layout = existing_index(index)
    engine = open_catalog(layout.catalog)
    try:
        with Session(engine) as s:
            return sheet_counts_in(s)
    finally:
        engine.dispose()


def sheet_counts_in(s: Session) -> dict[str, int]:
    """:func:`sheet_counts` on an open session of the catalog (none for a catalog from before
    file metadata was stored). A sheet is listed by its file name, or by its path where several
    imported sheets share that name."""
    counts: dict[tuple[str, str | None], int] = {}
    for source in _sheet_sources(s).values():
        counts[source] = counts.get(source, 0) + 1
    names: dict[str, int] = {}
    for name, _ in counts:
        names[name] = names.get(name, 0) + 1
    shown = {(path or name) if names[name] > 1 else name: n for (name, path), n in counts.items()}
    return dict(sorted(shown.items(), key=lambda item: (-item[1], item[0])))
