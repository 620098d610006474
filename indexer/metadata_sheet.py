"""Library metadata sheets: what a library's spreadsheet says of its files, searchable.

Many sound libraries describe their files in a spreadsheet beside them instead of inside them:
the BBC Sound Effects archive's CSV (``location``, ``description``, ``category``, ``CDName`` …,
its files named by number), Soundminer and BaseHead exports (``Filename``, ``Description``,
``Category``, ``SubCategory``, ``CatID``, ``FXName``, ``Keywords`` …), a vendor's metadata
sheet saved from Excel. ``soundsift sheet import SHEET.csv`` reads one (comma-, semicolon- or
tab-separated; UTF-8 or Windows-1252), matches its rows to indexed files and stores the columns
it knows beside each file's own metadata (keys prefixed ``sheet:``, engine.file_metadata):
keyword search reads them, ``--category`` filters by them, the page's card and
``SoundIndex.get_file`` show them, and where the file carries the same field itself, the file's
own value is shown first.

A row names its file in the first file column (:data:`FILE_COLUMNS`, the first whose values
mostly end in an audio extension): a name matches every indexed file of that name (A–Z case
aside; else of that name with another extension, as a library converted to FLAC keeps its
sheet), a path (with ``/`` or ``\\``) the indexed files whose path ends with it. ``--under
FOLDER`` keeps to one library's files. The rows stay with their files when they are moved,
renamed, edited or re-embedded, and when the index is rebuilt or relocated; importing a sheet
again (same file name) replaces what it said, and ``soundsift sheet remove`` takes it away.
Writes take the index's writer lock, as the user's own tags do (indexer.user_tags).
"""
from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from engine.audio import AUDIO_EXTENSIONS
from engine.catalog import File, FileMetadata, open_catalog, set_meta
from engine.errors import InvalidQuery
from engine.file_metadata import MAX_VALUE, SHEET_NAME_KEY, SHEET_PREFIX
from engine.layout import existing_index
from indexer.scan import normalize_root, under_roots
from indexer.write import WriterLock

#: column names (lower case, without spaces, ``_``, ``-`` or ``.``) that may name a row's file,
#: most telling first
FILE_COLUMNS = ("filename", "file", "filepath", "path", "fullpath", "pathname", "soundfile", "audiofile",
                "location", "name")
#: column names (normalised likewise) → the metadata key their values are stored under
FIELD_COLUMNS = {
    "description": "description", "desc": "description", "fxdescription": "description",
    "longdescription": "description", "caption": "description",
    "title": "title", "fxname": "title", "tracktitle": "title", "name": "title",
    "category": "category", "subcategory": "subcategory", "catid": "catid",
    "keywords": "keywords", "keyword": "keywords", "tags": "keywords",
    "library": "library", "publisher": "library", "manufacturer": "library", "vendor": "library",
    "album": "album", "cdname": "album", "cdtitle": "album", "collection": "album",
    "designer": "designer", "creatorid": "designer", "creator": "designer", "recordist": "designer",
    "artist": "artist", "notes": "note", "note": "note", "comment": "comment", "comments": "comment",
    "location": "location", "recordinglocation": "location", "genre": "genre",
}
#: largest sheet read (the BBC archive's 33,000 rows are 5 MB)
MAX_SHEET_BYTES = 200 << 20
_SQL_CHUNK = 500


@dataclass
class Sheet:
    """A sheet read: its rows as (file value, {key: value}), the file column, the columns used
    (column → key) and the columns left unused."""

    name: str
    rows: list[tuple[str, dict[str, str]]]
    file_column: str
    used: dict[str, str]
    unused: list[str]


@dataclass
class SheetImport:
    """What :func:`import_sheet` did (or, with ``dry_run``, would do)."""

    sheet: str
    rows: int = 0                                            # rows that name a file
    matched_rows: int = 0                                    # rows that matched an indexed file
    files: int = 0                                           # indexed files now described by the sheet
    shared_rows: int = 0                                     # rows that matched several files
    unmatched: list[str] = field(default_factory=list)       # file values no indexed file has
    columns: dict[str, str] = field(default_factory=dict)    # column → key
    unused_columns: list[str] = field(default_factory=list)
    file_column: str = ""
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"sheet": self.sheet, "rows": self.rows, "matched_rows": self.matched_rows, "files": self.files,
                "shared_rows": self.shared_rows, "unmatched": len(self.unmatched),
                "unmatched_examples": self.unmatched[:20], "file_column": self.file_column,
                "columns": self.columns, "unused_columns": self.unused_columns, "dry_run": self.dry_run}


def _normalise(column: str) -> str:
    return "".join(ch for ch in column.lower() if ch not in " _-.\ufeff")


def _decode(raw: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            pass
    return raw.decode("latin-1")


def _is_audio_name(value: str) -> bool:
    return os.path.splitext(value.strip())[1].lower() in AUDIO_EXTENSIONS


def read_sheet(path: str | Path) -> Sheet:
    """The rows of the CSV/TSV sheet at ``path``. InvalidQuery naming the sheet when it cannot
    be read, has no header row, or no column names a file."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_SHEET_BYTES:
            raise InvalidQuery(f"{path}: larger than {MAX_SHEET_BYTES >> 20} MB; not a metadata sheet")
        text = _decode(path.read_bytes())
    except OSError as e:
        raise InvalidQuery(f"{path}: cannot read it ({e.strerror or e})") from e
    if path.suffix.lower() in (".xlsx", ".xls", ".ods", ".numbers"):
        raise InvalidQuery(f"{path}: a spreadsheet file; save it as CSV (comma- or tab-separated) and import that")
    try:
        dialect = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel_tab if "\t" in text.split("\n", 1)[0] else csv.excel
    table = [row for row in csv.reader(text.splitlines(), dialect) if any(c.strip() for c in row)]
    if len(table) < 2:
        raise InvalidQuery(f"{path}: no header row and rows under it (is it a CSV or tab-separated sheet?)")
    header = [c.strip() for c in table[0]]
    names = [_normalise(c) for c in header]
    column = _file_column(names, table[1:])
    if column is None:
        raise InvalidQuery(f"{path}: no column names the files (one of {', '.join(FILE_COLUMNS[:6])} …); "
                           f"its columns are {', '.join(header)}")
    used = {i: FIELD_COLUMNS[n] for i, n in enumerate(names) if i != column and n in FIELD_COLUMNS}
    rows = []
    for row in table[1:]:
        value = row[column].strip() if column < len(row) else ""
        if not value:
            continue
        fields: dict[str, str] = {}
        for i, key in used.items():
            text_ = " ".join(row[i].split())[:MAX_VALUE] if i < len(row) else ""
            if text_:
                fields.setdefault(key, text_)
        rows.append((value, fields))
    return Sheet(path.name, rows, header[column], {header[i]: key for i, key in used.items()},
                 [h for i, h in enumerate(header) if i != column and i not in used and h])


def _file_column(names: list[str], rows: list[list[str]]) -> int | None:
    """The column naming each row's file: the first of FILE_COLUMNS present whose values mostly
    end in an audio extension, else the first of them that is not a description's column."""
    present = [names.index(n) for n in FILE_COLUMNS if n in names]
    for i in present:
        values = [r[i] for r in rows if i < len(r) and r[i].strip()]
        if values and sum(map(_is_audio_name, values)) >= len(values) / 2:
            return i
    plain = [i for i in present if names[i] not in ("location", "name")]
    return plain[0] if plain else None


def _parts(value: str) -> tuple[str, ...]:
    return tuple(p for p in value.replace("\\", "/").lower().split("/") if p)


def match_rows(sheet: Sheet, files: dict[int, str]) -> tuple[dict[int, dict[str, str]], SheetImport]:
    """The fields each indexed file (id → path) gets from ``sheet`` (the first row naming a
    file wins a key), and the counts of the match."""
    by_name: dict[str, list[int]] = {}
    by_stem: dict[str, list[int]] = {}
    for fid, p in files.items():
        name = os.path.basename(p).lower()
        by_name.setdefault(name, []).append(fid)
        by_stem.setdefault(os.path.splitext(name)[0], []).append(fid)
    report = SheetImport(sheet.name, columns=dict(sheet.used), unused_columns=list(sheet.unused),
                         file_column=sheet.file_column)
    out: dict[int, dict[str, str]] = {}
    for value, fields in sheet.rows:
        report.rows += 1
        parts = _parts(value)
        if not parts:
            continue
        name = parts[-1]
        found = by_name.get(name) or by_stem.get(os.path.splitext(name)[0] if _is_audio_name(name) else name, [])
        if len(parts) > 1:          # a path: the files whose path ends with it (extension aside)
            found = [f for f in found if _ends_with(_parts(files[f]), parts)]
        if not found:
            report.unmatched.append(value)
            continue
        report.matched_rows += 1
        report.shared_rows += len(found) > 1
        for fid in found:
            target = out.setdefault(fid, {})
            for key, text_ in fields.items():
                target.setdefault(key, text_)
    report.files = len(out)
    return out, report


def _ends_with(path: tuple[str, ...], tail: tuple[str, ...]) -> bool:
    if len(tail) > len(path) or path[len(path) - len(tail):-1] != tail[:-1]:
        return False
    return path[-1] == tail[-1] or os.path.splitext(path[-1])[0] == os.path.splitext(tail[-1])[0]


def import_sheet(index: str | Path | None, sheet_path: str | Path, under: str | Path | None = None,
                 dry_run: bool = False) -> SheetImport:
    """Describe the indexed files (those under ``under`` when given) by the sheet at
    ``sheet_path``; what a sheet of the same name said before is replaced. One transaction
    under the index's writer lock; ``dry_run``: match and report, change nothing."""
    sheet = read_sheet(sheet_path)
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
            before = set(s.scalars(select(FileMetadata.file_id).where(FileMetadata.key == SHEET_NAME_KEY,
                                                                      FileMetadata.value == sheet.name)))
            cleared = sorted(before | set(described))
            for i in range(0, len(cleared), _SQL_CHUNK):
                s.execute(delete(FileMetadata).where(FileMetadata.file_id.in_(cleared[i:i + _SQL_CHUNK]),
                                                     FileMetadata.key.like(SHEET_PREFIX + "%")))
            alive = set(s.scalars(select(File.id).where(File.id.in_(sorted(described))))) if described else set()
            s.add_all(FileMetadata(file_id=fid, key=SHEET_PREFIX + key, value=value)
                      for fid, fields in described.items() if fid in alive
                      for key, value in {**fields, "sheet": sheet.name}.items())
            set_meta(s, metadata_replaced_at=time.time())
    finally:
        engine.dispose()
    return report


def remove_sheet(index: str | Path | None, name: str) -> int:
    """Take away what the sheet named ``name`` (its file name) said; returns how many files it
    described. InvalidQuery when no file carries it."""
    layout = existing_index(index)
    engine = open_catalog(layout.catalog)
    try:
        with WriterLock(layout.lock), Session(engine) as s, s.begin():
            ids = sorted(s.scalars(select(FileMetadata.file_id).where(FileMetadata.key == SHEET_NAME_KEY,
                                                                      FileMetadata.value == name)))
            if not ids:
                known = sorted(sheet_counts_in(s))
                raise InvalidQuery(f"no file of index {layout.root} is described by a sheet named {name!r}"
                                   + (f" (sheets: {', '.join(known)})" if known else " (no sheet was imported)"))
            for i in range(0, len(ids), _SQL_CHUNK):
                s.execute(delete(FileMetadata).where(FileMetadata.file_id.in_(ids[i:i + _SQL_CHUNK]),
                                                     FileMetadata.key.like(SHEET_PREFIX + "%")))
            set_meta(s, metadata_replaced_at=time.time())
    finally:
        engine.dispose()
    return len(ids)


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
    """:func:`sheet_counts` on an open session of the catalog."""
    rows = s.execute(select(FileMetadata.value, func.count()).where(FileMetadata.key == SHEET_NAME_KEY)
                     .group_by(FileMetadata.value).order_by(func.count().desc(), FileMetadata.value))
    return {name: int(n) for name, n in rows}
