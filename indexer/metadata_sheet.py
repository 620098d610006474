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
do (indexer.user_tags). Only what a sheet changes is stored (:func:`_changed_fields`): a cell
saying what the file already shows is left out, and a row of such cells describes nothing, so
``sheet export`` imported back stores the user's edits alone; an export also records what each
of its cells held (engine.export_digest), so one imported after the files' own metadata changed
stores nothing for the cells still as exported (:func:`_as_exported`). An empty cell changes
nothing; a cell "-" clears its field (engine.file_metadata.SHEET_CLEARED): the file shows nothing
there, neither its own value nor an earlier sheet's, until the sheet is removed.

A ``UserTags`` column (``sheet export`` writes one) is no field: each cell is its file's whole list
of the user's own tags, set in the same transaction (indexer.user_tags.set_tags_in: tags not in
the cell taken off, the others added); an empty cell leaves the file's tags as they are (a sheet
from elsewhere wipes nothing) and a cell "-" takes them all off. They are the user's tags from
then on: :func:`remove_sheet` leaves them.

Where several sheets describe a file, the one imported last stands: its fields are the file's
``sheet:`` rows (with ``sheet:sheet`` and ``sheet:path`` naming it), and what the others say
is kept beside them, oldest first, as a JSON list in one ``sheet:shadowed`` row (read by this
module and engine.sheet_layers alone; engine.file_metadata.with_sheet leaves it out with the other
source keys, and ``sheet:`` rows travel with their files). Removing or re-importing a sheet takes its
layer (engine.sheet_layers.Layer) out of each file's stack, and the latest of the rest stands again:
removing the sheet imported last gives each file back what it had before that import.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, TypeVar

from sqlalchemy import bindparam, delete, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from engine.catalog import SQL_CHUNK as _SQL_CHUNK
from engine.catalog import File, FileMetadata, catalog_session, create_tables, has_table, set_meta, stored_metadata
from engine.errors import InvalidQuery
from engine.export_digest import TAGS_DIGEST_KEY, index_digest, read_digest, unedited
from engine.file_metadata import (SHEET_CLEARED, SHEET_NAME_KEY, SHEET_PATH_KEY, SHEET_PREFIX, SHEET_SHADOWED_KEY,
                                  is_cleared, shown_values)
from engine.layout import IndexLayout, existing_index
from engine.metadata_sheet import (EXPORT_DIGEST_KEY, FIELD_COLUMNS, USER_TAGS_KEY, SheetImport, match_rows,
                                   read_sheet, same_value)
from engine.sheet_layers import Layer, layers_of, sheet_counts_in, sheet_sources, sheets_described_in
from indexer.scan import normalize_root, under_roots
from indexer.user_tags import cell_tags, set_tags_in, tagged_files
from indexer.write import WriterLock

T = TypeVar("T")


def import_sheet(index: str | Path | None, sheet_path: str | Path, under: str | Path | None = None,
                 dry_run: bool = False) -> SheetImport:
    """Describe the indexed files (those under ``under`` when given) by the sheet at
    ``sheet_path``; what that sheet (the same file, by its absolute path) said before is
    replaced, and for a file it describes, its rows stand over any other sheet's (kept beneath,
    to stand again when this one is removed); a cell saying what the file already shows is not
    stored (:func:`_changed_fields`). One transaction under the index's writer lock;
    ``dry_run``: match and report, change nothing."""
    sheet = read_sheet(sheet_path)
    source = str(Path(sheet_path).resolve())
    layout = existing_index(index)
    with catalog_session(layout) as s:
        files = dict(s.execute(select(File.id, File.path)).all())
    if under is not None:
        root = normalize_root(under)
        files = {fid: p for fid, p in files.items() if under_roots(p, [root])}
        if not files:
            raise InvalidQuery(f"index {layout.root} holds no files under {root}")
    described, report = match_rows(sheet, files)
    digests = _export_digests(described, layout.root)
    tags, unedited_tags = _sheet_tags(sheet_path, described, files, digests)
    report.dry_run, report.export = dry_run, sheet.export
    if dry_run:
        with catalog_session(layout) as s:
            layers = _stacks(s, sorted(described)) if has_table(s, "file_metadata") else {}
            _changed_fields(s, described, report, (sheet.name, source), layers, sheet.export, digests)
            if report.sets_tags:
                _set_tags(s, report, described, tags, unedited_tags, dry_run=True)
        return report
    with WriterLock(layout.lock), catalog_session(layout, write=True) as s:
        create_tables(s.connection())          # a catalog from before file_metadata (its indexes) gains it
        named = _named_in(s, sheet.name)                  # may hold this sheet's layers
        wanted, alive = sorted(described), set()          # files an index run may have removed meanwhile
        for i in range(0, len(wanted), _SQL_CHUNK):
            alive.update(s.scalars(select(File.id).where(File.id.in_(wanted[i:i + _SQL_CHUNK]))))
        stacks = _stacks(s, sorted(named | alive))        # read once: the cells compare with them
        before = {fid for fid in named if any(_is_sheet(layer.source, sheet.name, source) for layer in stacks[fid])}
        changed = _changed_fields(s, {fid: described[fid] for fid in alive}, report, (sheet.name, source),
                                  stacks, sheet.export, digests)
        _write_stacks(s, {fid: [layer for layer in stack if not _is_sheet(layer.source, sheet.name, source)]
                          + ([Layer(sheet.name, source, changed[fid])] if fid in changed else [])
                          for fid, stack in stacks.items() if fid in before or fid in changed})
        if report.sets_tags:
            _set_tags(s, report, {fid: described[fid] for fid in alive},
                      {fid: t for fid, t in tags.items() if fid in alive}, unedited_tags)
        set_meta(s, metadata_replaced_at=time.time())
    return report


#: the metadata keys a sheet's columns give (engine.metadata_sheet.FIELD_COLUMNS)
_FIELD_KEYS = tuple(sorted(set(FIELD_COLUMNS.values())))


def _changed_fields(s: Session, described: dict[int, dict[str, str]], report: SheetImport,
                    source: tuple[str, str], stacks: dict[int, list[Layer]], export: bool,
                    digests: dict[int, dict[str, str]]) -> dict[int, dict[str, str]]:
    """File id → the fields of ``described`` (the sheet ``source``'s, name and path) that say
    something the file does not already show, for each file they leave some to: a cell equal
    (engine.metadata_sheet.same_value) to the file's own value of its field is left out, so a
    later change to the file's own metadata is not masked by a stale copy, and a row saying only
    what the file says describes nothing. ``stacks`` holds each file's sheet layers (:func:`_stacks`).
    Of soundsift's own export (``export``), whose cells echo what `sheet export` showed, a cell
    equal to what another sheet's rows standing beneath say is left out too, and a changed row's
    file keeps showing the rest of those rows (they are copied into its new layer, which stands
    over them); a cell holding what the export wrote in it (``digests``: :func:`_export_digests`)
    is no edit either: it keeps what this sheet said of that field, else is left out
    (:func:`_as_exported`). A cell "-" (engine.file_metadata.SHEET_CLEARED) clears its field where
    the file shows something under it (its own value or an earlier sheet's), else is left out.
    Counts the cells and the files left out in ``report`` (``files``: the files still described),
    the cells cleared, the cells kept of a field the file carries itself with another value
    (its own value is what is shown: ``own_first_cells``), and the fields of the sheet standing
    beneath that no longer show, this sheet's row standing over its row (``shadowed_cells``)."""
    ids = sorted(described)
    own = stored_metadata(s, ids, _FIELD_KEYS)
    changed: dict[int, dict[str, str]] = {}
    report.unchanged_cells = report.unchanged_files = report.own_first_cells = 0
    report.as_exported_cells = report.cleared_cells = report.shadowed_cells = report.shadowed_files = 0
    report.nothing_to_clear_cells = 0
    report.shadowed_fields = {}
    for fid in ids:
        mine = own.get(fid, {})
        stack = stacks.get(fid, [])
        below = [layer for layer in stack if not _is_sheet(layer.source, *source)]
        under = below[-1].fields if below else {}
        beneath = {k: v for k, v in under.items() if not same_value(v, mine.get(k))} if export else {}
        shown = shown_values(mine, under)               # what the file shows without this sheet
        compared = shown if export else {k: v for k, v in mine.items() if k in shown}     # not one cleared beneath
        cells = _as_exported(described[fid], digests.get(fid), stack, source)
        report.as_exported_cells += len(described[fid]) - len(cells)
        fields = {}
        for key, value in cells.items():
            if is_cleared(value):
                if key in shown:                        # "-" where nothing shows clears nothing
                    fields[key] = SHEET_CLEARED
                else:
                    report.nothing_to_clear_cells += 1
            elif not same_value(value, compared.get(key)):
                fields[key] = value
        report.unchanged_cells += len(described[fid]) - len(fields)
        report.cleared_cells += sum(1 for v in fields.values() if v == SHEET_CLEARED)
        report.own_first_cells += sum(1 for k, v in fields.items() if mine.get(k) and v != SHEET_CLEARED)
        if fields:
            changed[fid] = {**beneath, **fields}
            _count_shadowed(report, below, changed[fid], mine)
        else:
            report.unchanged_files += 1
    report.files = len(changed)
    return changed


def _count_shadowed(report: SheetImport, below: list[Layer], fields: dict[str, str], mine: dict[str, str]) -> None:
    """Count in ``report`` what the sheet standing beneath (``below``'s last layer) says of a file
    that no longer shows once ``fields`` stand over it: its fields the new layer leaves out, other
    than "-" and than a value the file carries itself (``mine``), which shows as before."""
    if not below:
        return
    hidden = sorted(k for k, v in below[-1].fields.items()
                    if k not in fields and not is_cleared(v) and not same_value(v, mine.get(k)))
    if hidden:
        report.shadowed_cells += len(hidden)
        report.shadowed_files += 1
        known = report.shadowed_fields.setdefault(below[-1].sheet, [])
        known.extend(k for k in hidden if k not in known)


def _as_exported(cells: dict[str, str], recorded: dict[str, str] | None, stack: list[Layer],
                 source: tuple[str, str]) -> dict[str, str]:
    """A row's ``cells`` without those holding what ``sheet export`` wrote in them (``recorded``:
    the row's engine.export_digest record; None: the row has none, every cell counts): the user
    left them alone, so they change nothing — a cell this sheet (``source``) stored a value for
    before keeps that value (``stack``: the file's layers), any other is left out, and a change
    to the file's own metadata since the export shows rather than the export's stale copy."""
    if not recorded:
        return dict(cells)
    said = next((layer.fields for layer in stack if _is_sheet(layer.source, *source)), {})
    out = {}
    for key, value in cells.items():
        if not unedited(recorded, key, value):
            out[key] = value
        elif key in said:
            out[key] = said[key]
    return out


def _export_digests(described: dict[int, dict[str, str]], root: Path) -> dict[int, dict[str, str]]:
    """File id → its row's record of what ``sheet export`` of the index at ``root`` wrote in each
    cell (engine.export_digest: key → digest), taken out of ``described``; a file whose row has
    none, or one of another index (whose cells are news to this one), is not among them."""
    digests, index = {}, index_digest(root)
    for fid, fields in described.items():
        cell = fields.pop(EXPORT_DIGEST_KEY, None)
        recorded = read_digest(cell, index) if cell else {}
        if recorded:
            digests[fid] = recorded
    return digests


def _sheet_tags(sheet_path: str | Path, described: dict[int, dict[str, str]], files: dict[int, str],
                digests: dict[int, dict[str, str]]) -> tuple[dict[int, list[str]], set[int]]:
    """File id → the user tags its UserTags cell gives it (indexer.user_tags.cell_tags: "-" none),
    taken out of ``described`` (tags are no sheet field: they are the file's own, kept when the
    sheet is removed); a file whose cell is empty, names no tag or holds what ``sheet export``
    wrote in it (``digests``: the tags then, however they were changed since) is not among them,
    and the last are the set returned beside. InvalidQuery naming the sheet and the file for a
    cell that cannot be tags."""
    tags: dict[int, list[str]] = {}
    as_exported: set[int] = set()
    for fid, fields in described.items():
        cell = fields.pop(USER_TAGS_KEY, None)
        if cell is None:
            continue
        if unedited(digests.get(fid, {}), TAGS_DIGEST_KEY, cell):
            as_exported.add(fid)
            continue
        try:
            found = cell_tags(cell)
        except InvalidQuery as e:
            raise InvalidQuery(f"{sheet_path}: the UserTags of {files[fid]}: {e}") from e
        if found is not None:
            tags[fid] = found
    return tags, as_exported


def _set_tags(s: Session, report: SheetImport, described: dict[int, dict[str, str]],
              tags: dict[int, list[str]], as_exported: set[int], dry_run: bool = False) -> None:
    """Set the user tags ``tags`` gives (indexer.user_tags.set_tags_in) and count in ``report``
    what changed, and the files the sheet describes that carry tags its cells leave empty (not
    those whose cell is as exported, ``as_exported``)."""
    done = set_tags_in(s, tags, dry_run=dry_run)
    report.tag_files, report.tags_added, report.tags_removed = done.files, done.added, done.removed
    report.tags_left = len(tagged_files(s, sorted(set(described) - set(tags) - as_exported)))


def remove_sheet(index: str | Path | None, name: str) -> int:
    """Take away what the sheet ``name`` said — its file name as ``sheet list`` shows it, or its
    path — and return how many files it described; where another sheet describes such a file
    too, the latest imported of those stands again. InvalidQuery when no file carries it, or
    when a bare name is that of several sheets (then its path tells which)."""
    layout = existing_index(index)
    with WriterLock(layout.lock), catalog_session(layout, write=True) as s:
        stacks = _stacks(s, sorted(_given_in(s, name)))      # read once: searched, then rewritten
        named = {layer.source for stack in stacks.values() for layer in stack if _names(layer.source, name)}
        if not named:
            known = sorted(sheet_counts_in(s))
            raise InvalidQuery(f"no file of index {layout.root} is described by a sheet named {name!r}"
                               + (f" (sheets: {', '.join(known)})" if known else " (no sheet was imported)"))
        if len(named) > 1:
            paths = sorted(str(path) for _, path in named if path)
            raise InvalidQuery(f"several sheets are named {name!r}: {', '.join(paths)}; give the path of "
                               "the one to remove")
        described = {fid: stack for fid, stack in stacks.items() if any(layer.source in named for layer in stack)}
        _write_stacks(s, {fid: [layer for layer in stack if layer.source not in named]
                          for fid, stack in described.items()})
        set_meta(s, metadata_replaced_at=time.time())
    return len(described)


def move_sheet_paths(index: str | Path | IndexLayout, moved: Callable[[str], str | None]) -> int:
    """Record each imported sheet at the path ``moved`` gives for its recorded one (None: it
    stays), standing and shadowed layers alike: after ``soundsift relocate``, a sheet that lay
    under the old folder is under the new one, and importing it again from there replaces its
    rows as importing it from the old place did. ``index``: as catalog_session takes it (the
    IndexLayout the caller holds). The caller holds the index's writer lock; one transaction.
    Returns the rows changed."""
    with catalog_session(index, write=True) as s:
        if not has_table(s, "file_metadata"):
            return 0
        changes = []
        for row_id, key, value in s.execute(select(FileMetadata.id, FileMetadata.key, FileMetadata.value)
                                            .where(FileMetadata.key.in_((SHEET_PATH_KEY, SHEET_SHADOWED_KEY)))):
            if key == SHEET_PATH_KEY:
                new = moved(value)
                if new is not None and new != value:
                    changes.append({"row": row_id, "value": new})
                continue
            layers = json.loads(value)
            for layer in layers:
                new = moved(layer["path"]) if layer.get("path") else None
                if new is not None:
                    layer["path"] = new
            made = json.dumps(layers, ensure_ascii=False)
            if made != value:
                changes.append({"row": row_id, "value": made})
        if changes:
            table = FileMetadata.__table__
            s.connection().execute(update(table).where(table.c.id == bindparam("row"))
                                   .values(value=bindparam("value")), changes)
        return len(changes)


def imported_sheets(s: Session) -> set[tuple[str, str | None]]:
    """(name, absolute path or None) of every sheet that describes some indexed file, its rows
    standing or shadowed by a later sheet's."""
    return {src for found in sheet_sources(s).values() for src in found}


def sheets_not_imported(catalog: Engine, spreadsheets: list[str]) -> list[str]:
    """The spreadsheets found among a library's files (indexer.scan) that no sheet imported into
    the catalog ``catalog`` is (by path; by name for sheets imported before their paths were
    kept), sorted: what `index` and `index --rebuild` suggest importing."""
    if not spreadsheets:
        return []
    with Session(catalog) as s:
        imported = imported_sheets(s)
    paths = {path for _, path in imported if path}
    unpathed = {name for name, path in imported if not path}
    return sorted(p for p in spreadsheets
                  if os.path.realpath(p) not in paths and os.path.basename(p) not in unpathed)


def sheets_describing(s: Session, paths: list[str]) -> dict[str, list[tuple[str, str | None]]]:
    """Indexed path → (name, absolute path or None) of each sheet that describes it, oldest first,
    the standing one last, for each of ``paths`` that a sheet describes: what leaves the index with
    those files' rows, and which sheet to import again to describe them once they are back."""
    if not paths or not has_table(s, "file_metadata"):
        return {}
    rows: dict[str, list[tuple[str, str]]] = {}
    for i in range(0, len(paths), _SQL_CHUNK):
        for path, key, value in s.execute(select(File.path, FileMetadata.key, FileMetadata.value)
                                          .join(FileMetadata, FileMetadata.file_id == File.id)
                                          .where(File.path.in_(paths[i:i + _SQL_CHUNK]),
                                                 FileMetadata.key.like(SHEET_PREFIX + "%"))
                                          .order_by(File.path, FileMetadata.id)):
            rows.setdefault(path, []).append((key, value))
    layers = {path: [layer.source for layer in layers_of(found)] for path, found in rows.items()}
    return {path: sources for path, sources in layers.items() if sources}


def _given_in(s: Session, given: str) -> set[int]:
    """The ids of the files the sheet ``given`` names (as :func:`_names` reads it: a path, or a
    bare file name) may describe, standing or shadowed (:func:`_named_in`)."""
    if os.sep in given or "/" in given:
        return _named_in(s, str(Path(given).expanduser().resolve()), SHEET_PATH_KEY)
    return _named_in(s, given)


def _named_in(s: Session, name: str, key: str = SHEET_NAME_KEY) -> set[int]:
    """The ids of the files a sheet of the file name ``name`` (of the path ``name`` with ``key``
    SHEET_PATH_KEY) may describe, standing or shadowed: those whose standing sheet has that name,
    or whose shadowed list names it (a superset of what one sheet of that name describes, found
    without reading their layers: :func:`_stacks` reads them once after)."""
    if not has_table(s, "file_metadata"):
        return set()
    quoted = {json.dumps(name, ensure_ascii=False), json.dumps(name)}      # as written, or escaped
    return set(s.scalars(select(FileMetadata.file_id).where(or_(
        (FileMetadata.key == key) & (FileMetadata.value == name),
        (FileMetadata.key == SHEET_SHADOWED_KEY)
        & or_(*(FileMetadata.value.contains(q, autoescape=True) for q in sorted(quoted)))))))


def _stacks(s: Session, file_ids: list[int]) -> dict[int, list[Layer]]:
    """File id → the :class:`Layer` of each sheet that describes it, oldest first, the standing
    one last (an empty list for a file none describes), for each of ``file_ids``, in chunks."""
    rows: dict[int, list[tuple[str, str]]] = {fid: [] for fid in file_ids}
    for i in range(0, len(file_ids), _SQL_CHUNK):
        for fid, key, value in s.execute(select(FileMetadata.file_id, FileMetadata.key, FileMetadata.value)
                                         .where(FileMetadata.file_id.in_(file_ids[i:i + _SQL_CHUNK]),
                                                FileMetadata.key.like(SHEET_PREFIX + "%"))
                                         .order_by(FileMetadata.id)):
            rows[fid].append((key, value))
    return {fid: layers_of(found) for fid, found in rows.items()}


def _write_stacks(s: Session, stacks: dict[int, list[Layer]]) -> None:
    """Store each file's layers (oldest first) in place of its ``sheet:`` rows: the last one's
    fields, name and path as its rows, the others as its :data:`SHEET_SHADOWED_KEY` list (one insert
    of many rows: a library's sheet describes tens of thousands of files)."""
    _clear_sheet_rows(s, sorted(stacks))
    rows = [{"file_id": fid, "key": key, "value": value}
            for fid, stack in stacks.items() for key, value in _stack_rows(stack)]
    if rows:
        s.connection().execute(insert(FileMetadata.__table__), rows)      # Core: no ORM bookkeeping


def _stack_rows(stack: list[Layer]) -> list[tuple[str, str]]:
    """The ``sheet:`` rows (key, value) of one file's layers, oldest first (none for none)."""
    if not stack:
        return []
    *shadowed, standing = stack
    rows = [(SHEET_PREFIX + key, value) for key, value in standing.fields.items()]
    rows.append((SHEET_NAME_KEY, standing.sheet))
    if standing.path is not None:
        rows.append((SHEET_PATH_KEY, standing.path))
    if shadowed:
        rows.append((SHEET_SHADOWED_KEY, json.dumps([{"sheet": layer.sheet, "path": layer.path, "fields": layer.fields}
                                               for layer in shadowed], ensure_ascii=False)))
    return rows


def _is_sheet(source: tuple[str, str | None], name: str, path: str) -> bool:
    """Whether ``source`` (a layer's sheet name and path) is the sheet ``name`` at ``path``:
    the same path, or the same name for rows stored without one (before session 24)."""
    return source[1] == path or (source[1] is None and source[0] == name)


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
    return _read_catalog(index, sheet_counts_in)


def sheets_described(index: str | Path | None) -> list[dict[str, str | int | None]]:
    """Each imported sheet as `sheet list --json` and `info --json` list it (:func:`sheets_described_in`)."""
    return _read_catalog(index, sheets_described_in)


def _read_catalog(index: str | Path | None, read: Callable[[Session], T]) -> T:
    """``read`` on a session of ``index``'s catalog, closed after."""
    with catalog_session(index) as s:
        return read(s)
