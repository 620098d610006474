"""Library metadata sheets: read a library's spreadsheet and match its rows to sound files.

Many sound libraries describe their files in a spreadsheet beside them instead of inside them:
the BBC Sound Effects archive's CSV (``location``, ``description``, ``category``, ``CDName`` …,
its files named by number), Soundminer and BaseHead exports (``Filename``, ``Description``,
``Category``, ``SubCategory``, ``CatID``, ``FXName``, ``Keywords`` …), a vendor's metadata sheet,
often an Excel or OpenDocument workbook. :func:`read_sheet` reads one (comma-, semicolon- or
tab-separated text in UTF-8, UTF-16 or Windows-1252, or the worksheets of an .xlsx or .ods workbook)
and :func:`match_rows` gives each file the fields of the rows that name it.

A row names its file in its file column (of :data:`FILE_COLUMNS`, the first whose values
mostly end in an audio extension, one of paths before one of bare names). How well a row names
an indexed file is its :func:`match_score`: the same full path, then the more trailing folders
in common (a sheet written on another machine: ``D:\\SFX\\Doors\\creak.wav`` against
``/mnt/sfx/Doors/creak.wav``; a ``file://`` URL, as a DAW's or Soundminer's export writes,
is the path it names), then the same file name rather than only the same name before
its extension (A–Z case aside). A bare name (a Soundminer ``Filename`` column) matches every
file of that name, else of that name with another extension, as a library converted to FLAC
keeps its sheet; a path matches the files of its name, and those of its name with another
extension only where they share at least its last folder: a path whose folder and file name
both differ from an indexed file's names another file (``new/hello.mp3`` is not
``speech/hello.wav``). A row goes to the files it names best (several where they tie: the same
name in several folders), and a file several rows name takes the fields of those that name it
best (the first of them a key where they tie), so an exact path outranks a longer trailing
path, which outranks a name alone, whatever the rows' order. The columns :data:`FIELD_COLUMNS`
knows become metadata keys (engine.file_metadata), a ``UserTags`` column's cells the files' own
tags (:data:`USER_TAGS_KEY`); the indexer stores them with the indexed
files (indexer.metadata_sheet, ``soundsift sheet import``) and ``soundsift caption --source
metadata --sheet`` turns their descriptions into training captions.
"""
from __future__ import annotations

import csv
import io
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote_to_bytes

from engine.audio import AUDIO_EXTENSIONS
from engine.errors import InvalidQuery
from engine.export_digest import DIGEST_COLUMN
from engine.metadata_values import MAX_VALUE
from engine.text_encoding import UTF16_BOMS, decode_text, one_line
from engine.workbook import UNREADABLE_WORKBOOKS, WORKBOOK_SUFFIXES, from_csv_text, workbook_tables

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
#: the column (normalised) of the user's own tags, as ``soundsift sheet export`` writes them
#: (engine.sheet_export: "keeper, ep3", a tag holding a comma in double quotes), and the key its
#: cells are kept under in a row's fields: not a metadata key (indexer.metadata_sheet sets the
#: file's tags from it, indexer.user_tags, and stores it nowhere else)
USER_TAGS_COLUMN = "usertags"
USER_TAGS_KEY = "user tags"
#: the column (normalised) of what each cell held when ``sheet export`` wrote the row
#: (engine.export_digest), and the key its cell is kept under in a row's fields (no metadata key)
EXPORT_DIGEST_COLUMN = DIGEST_COLUMN.lower()
EXPORT_DIGEST_KEY = "export digest"
#: columns (normalised) only ``soundsift sheet export`` writes (engine.sheet_export.EXPORT_COLUMNS):
#: a sheet holding one is soundsift's own export, whose cells echo what the files showed
#: (:attr:`Sheet.export`)
EXPORT_ONLY_COLUMNS = (USER_TAGS_COLUMN, "storedtags", "zeroshottags", EXPORT_DIGEST_COLUMN)
#: the keys of a row's fields that are no metadata (indexer.metadata_sheet takes them out)
NOT_STORED_KEYS = (USER_TAGS_KEY, EXPORT_DIGEST_KEY)
#: largest sheet read (the BBC archive's 33,000 rows are 5 MB)
MAX_SHEET_BYTES = 200 << 20
#: how far down a sheet its header row is looked for (vendors put a title and a blank row above it)
HEADER_ROWS = 20


@dataclass
class Sheet:
    """A sheet read: its rows as (file value, {key: value}), the file column, the columns used
    (column → key) and the columns left unused."""

    name: str
    rows: list[tuple[str, dict[str, str]]]
    file_column: str
    used: dict[str, str]
    unused: list[str]
    worksheets: list[str] = field(default_factory=list)     # a workbook's worksheets read
    skipped: list[str] = field(default_factory=list)        # … and those without a file column
    export: bool = False                                    # a column of EXPORT_ONLY_COLUMNS: soundsift's export


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
    worksheets: list[str] = field(default_factory=list)
    skipped_worksheets: list[str] = field(default_factory=list)
    dry_run: bool = False
    # the user's own tags a UserTags column set (indexer.user_tags.TagsSet's counts)
    tag_files: int = 0                                       # files whose tags it changed
    tags_added: int = 0
    tags_removed: int = 0
    tags_left: int = 0                                       # files with tags whose UserTags cell is empty
    # cells left out as what the file already shows (indexer.metadata_sheet: only changes are stored)
    unchanged_cells: int = 0
    unchanged_files: int = 0                                 # matched files whose row changed nothing
    own_first_cells: int = 0                                 # cells stored of fields the file carries itself
    as_exported_cells: int = 0                               # of unchanged_cells: as `sheet export` wrote them
    nothing_to_clear_cells: int = 0                          # of unchanged_cells: "-" where the file shows nothing
    cleared_cells: int = 0                                   # cells "-" stored: the field shows nothing
    # an earlier sheet's fields that no longer show, as this sheet's rows stand over that sheet's
    shadowed_cells: int = 0
    shadowed_files: int = 0
    shadowed_fields: dict[str, list[str]] = field(default_factory=dict)   # that sheet's name → the fields
    export: bool = False                                     # soundsift's own export (Sheet.export)

    @property
    def sets_tags(self) -> bool:
        """Whether the sheet has a UserTags column (its cells set the files' own tags)."""
        return USER_TAGS_KEY in self.columns.values()

    def to_dict(self) -> dict[str, Any]:
        return {"sheet": self.sheet, "rows": self.rows, "matched_rows": self.matched_rows, "files": self.files,
                "shared_rows": self.shared_rows, "unmatched": len(self.unmatched),
                "unmatched_examples": self.unmatched[:20], "file_column": self.file_column,
                "columns": self.columns, "unused_columns": self.unused_columns, "worksheets": self.worksheets,
                "skipped_worksheets": self.skipped_worksheets, "dry_run": self.dry_run,
                "tag_files": self.tag_files, "tags_added": self.tags_added, "tags_removed": self.tags_removed,
                "tags_left": self.tags_left, "unchanged_cells": self.unchanged_cells,
                "unchanged_files": self.unchanged_files, "own_first_cells": self.own_first_cells,
                "as_exported_cells": self.as_exported_cells,
                "nothing_to_clear_cells": self.nothing_to_clear_cells, "cleared_cells": self.cleared_cells,
                "shadowed_cells": self.shadowed_cells, "shadowed_files": self.shadowed_files,
                "export": self.export}


def _normalise(column: str) -> str:
    """A column name as :data:`FILE_COLUMNS` and :data:`FIELD_COLUMNS` spell it: lower case,
    without any space (a no-break space too), ``_``, ``-``, ``.`` or byte-order mark."""
    return "".join(ch for ch in column.lower() if not ch.isspace() and ch not in "_-.\ufeff")


def _is_audio_name(value: str) -> bool:
    return os.path.splitext(value.strip())[1].lower() in AUDIO_EXTENSIONS


def read_sheet(path: str | Path) -> Sheet:
    """The rows of the sheet at ``path``: CSV or tab-separated text, or a workbook (.xlsx,
    .ods; engine.workbook) whose worksheets with a file column are read one after another
    (one per category is common; a "Read me" worksheet without one is skipped). The header
    row is the first of the top :data:`HEADER_ROWS` rows that names a file column (a title
    above it is passed over). InvalidQuery naming the sheet when it cannot be read, has no
    header row, or no column names a file."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_SHEET_BYTES:
            raise InvalidQuery(f"{path}: larger than {MAX_SHEET_BYTES >> 20} MB; not a metadata sheet")
        suffix = path.suffix.lower()
        if suffix in WORKBOOK_SUFFIXES or suffix in UNREADABLE_WORKBOOKS:
            tables = workbook_tables(path)
        else:
            raw = path.read_bytes()
            if _is_binary(raw):
                what = "binary data, an audio file" if _is_audio_name(path.name) else "binary data"
                raise InvalidQuery(f"{path}: not a spreadsheet ({what}); give a CSV or tab-separated "
                                   "text file, or an .xlsx or .ods workbook")
            tables = [("", _text_table(decode_text(raw)))]
    except OSError as e:
        raise InvalidQuery(f"{path}: cannot read it ({e.strerror or e})") from e
    found = [(name, table, _header(table)) for name, table in tables]
    read = [(name, table, head) for name, table, head in found if head is not None]
    if not read:
        raise _no_file_column(path, tables)
    rows: list[tuple[str, dict[str, str]]] = []
    used: dict[str, str] = {}
    unused: list[str] = []
    export = False
    for _, table, (at, column) in read:
        header = [c.strip() for c in table[at]]
        names = [_normalise(c) for c in header]
        export = export or any(n in EXPORT_ONLY_COLUMNS for n in names)
        keys = {i: FIELD_COLUMNS[n] for i, n in enumerate(names) if i != column and n in FIELD_COLUMNS}
        keys.update({i: USER_TAGS_KEY for i, n in enumerate(names) if i != column and n == USER_TAGS_COLUMN})
        keys.update({i: EXPORT_DIGEST_KEY for i, n in enumerate(names) if i != column and n == EXPORT_DIGEST_COLUMN})
        for row in table[at + 1:]:
            value = from_csv_text(row[column].strip()) if column < len(row) else ""     # a name as written
            if not value:
                continue
            fields: dict[str, str] = {}
            for i, key in keys.items():
                text_ = _cell(row[i]) if i < len(row) else ""
                if key not in NOT_STORED_KEYS:  # a tag list is not cut: a tag cut in two would be stored
                    text_ = text_[:MAX_VALUE]
                if text_:
                    fields.setdefault(key, text_)
            rows.append((value, fields))
        for i, key in keys.items():
            used.setdefault(header[i], key)
        unused += [h for i, h in enumerate(header) if i != column and i not in keys and h and h not in unused]
    first_table, (first_at, first_column) = read[0][1], read[0][2]
    return Sheet(path.name, rows, first_table[first_at][first_column].strip(), used,
                 [h for h in unused if h not in used],
                 worksheets=[name for name, _, _ in read if name],
                 skipped=[name for name, _, head in found if head is None and name], export=export)


def comparable(value: str) -> str:
    """A value as a sheet's cell compares with what a file shows (:func:`same_value`): on one line,
    cut as a cell is (:func:`read_sheet`), accents composed."""
    return unicodedata.normalize("NFC", one_line(value)[:MAX_VALUE])


def same_value(cell: str, shown: str | None) -> bool:
    """Whether a sheet's cell says what the file already shows for its field (``shown``, None for
    nothing): the same text once both are on one line (a line break, a run of spaces, a control
    character as one space; the ends stripped) and cut as a cell is, accents composed (a Mac's
    decomposed "é" is the typed one) — case counts: "door" for "Door" is an edit. As
    ``sheet export`` writes a value and :func:`read_sheet` reads it back, the two are the same."""
    return shown is not None and comparable(cell) == comparable(shown)


#: the line Excel reads the separator from, before the header ("sep=;", written for Excel in
#: countries whose decimal comma makes ";" the separator)
_SEPARATOR_LINE = re.compile(r'\ufeff?"?sep=([^\r\n"])[^\r\n]*(\r\n|\r|\n)', re.IGNORECASE)


def _cell(text: str) -> str:
    """A cell's text as a value: on one line (a line break inside a quoted cell, a control
    character, as a space) and without the mark a CSV writer put before text a spreadsheet would
    run as a formula (engine.workbook.from_csv_text: ``sheet export`` writes "'=…")."""
    return from_csv_text(one_line(text))


def _text_table(text: str) -> list[list[str]]:
    """The non-empty rows of comma-, semicolon-, tab- or bar-separated text (the separator
    Excel's "sep=;" first line names, else the one the text shows); a quoted cell may hold line
    breaks (Excel writes a cell's several lines so)."""
    said = _SEPARATOR_LINE.match(text)
    if said:
        text, dialect = text[said.end():], _with_delimiter(said.group(1))
    else:
        try:
            dialect = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|")
            if dialect.escapechar is None:      # a quote in a quoted cell is doubled, as Excel and `sheet export` write
                dialect.doublequote = True      # it (the sniffer rarely sees it so: 'a, ""b""' read as 'a, "b')
        except csv.Error:
            dialect = csv.excel_tab if "\t" in text.split("\n", 1)[0] else csv.excel
    lines = io.StringIO(text, newline="")         # each line keeps its end: csv reads quoted line breaks
    return [row for row in csv.reader(lines, dialect) if any(c.strip() for c in row)]


def _with_delimiter(delimiter: str) -> type[csv.Dialect]:
    """Excel's CSV dialect with another separator."""
    return type("SaidDialect", (csv.excel,), {"delimiter": delimiter})


def _header(table: list[list[str]]) -> tuple[int, int] | None:
    """(header row, file column) of a table: the first of its top rows with a file column
    (:func:`_file_column`) and rows under it; None when there is none."""
    for at in range(min(HEADER_ROWS, len(table) - 1)):
        column = _file_column([_normalise(c) for c in table[at]], table[at + 1:])
        if column is not None:
            return at, column
    return None


def _no_file_column(path: Path, tables: list[tuple[str, list[list[str]]]]) -> InvalidQuery:
    """The error for a sheet none of whose tables has a file column, naming what it has."""
    wanted = ", ".join(FILE_COLUMNS[:6])
    if not any(len(table) >= 2 for _, table in tables):
        return InvalidQuery(f"{path}: no header row and rows under it (is it a CSV, tab-separated or "
                            "spreadsheet file with a header row?)")
    seen = "; ".join(f"{name + ': ' if name else ''}{', '.join(c.strip() for c in table[0] if c.strip())}"
                     for name, table in tables if table)
    return InvalidQuery(f"{path}: no column names the files (one of {wanted} …); its columns are {seen}")


def _file_column(names: list[str], rows: list[list[str]]) -> int | None:
    """The column naming each row's file: of the FILE_COLUMNS present whose values mostly end in
    an audio extension, the first whose values are mostly paths (a Soundminer export's
    Pathname beside its Filename tells same-named files apart), else the first of them; else the
    first of FILE_COLUMNS that is not a description's column."""
    present = [names.index(n) for n in FILE_COLUMNS if n in names]
    audio = []
    for i in present:
        values = [r[i] for r in rows if i < len(r) and r[i].strip()]
        if values and sum(map(_is_audio_name, values)) >= len(values) / 2:
            if sum(len(_parts(v)) > 1 for v in values) >= len(values) / 2:
                return i
            audio.append(i)
    if audio:
        return audio[0]
    plain = [i for i in present if names[i] not in ("location", "name")]
    return plain[0] if plain else None


def _parts(value: str) -> tuple[str, ...]:
    """A file value's folders and name, A–Z case aside, either slash, without the "." of a
    relative path (``./Doors/creak.wav``, ``.\\creak.wav`` name what ``Doors/creak.wav`` and
    ``creak.wav`` do), a ``file://`` URL as the path it names (:func:`url_path`), accents
    composed: a Mac's disk (HFS+) keeps "ü" as "u" and a combining diaeresis, the sheet typed
    on Windows as one character."""
    value = unicodedata.normalize("NFC", url_path(value))
    return tuple(p for p in value.replace("\\", "/").lower().split("/") if p and p != ".")


#: a ``file:`` URL: its host (none, ``localhost`` or a server) and its path
_FILE_URL = re.compile(r"file:(?://([^/]*))?(/.*)?", re.IGNORECASE | re.DOTALL)
#: a Windows drive at a URL path's start (``/C:/``, or the old ``/C|/``)
_URL_DRIVE = re.compile(r"/([A-Za-z])[:|](?=/|$)")


def url_path(value: str) -> str:
    """``value`` as a path where it is a ``file:`` URL (a DAW's or Soundminer's export names its
    files so): percent-escapes decoded (UTF-8, else Windows-1252: engine.text_encoding), no host
    for ``localhost`` or none, a server as a UNC path's (``//server/share/…``), a Windows drive
    without the slash before it (``file:///C:/SFX/a.wav`` is ``C:/SFX/a.wav``); any other value
    as it is."""
    m = _FILE_URL.fullmatch(value.strip())
    if not m:
        return value
    host, path = m.group(1) or "", decode_text(unquote_to_bytes(m.group(2) or ""))
    drive = _URL_DRIVE.match(path)
    if drive:
        path = f"{drive.group(1)}:{path[drive.end():]}"
    return path if host.lower() in ("", "localhost") else f"//{host}{path}"


#: how well a row names an indexed file (:func:`match_score`): (the same full path, trailing folders
#: in common, the same file name and not only the same stem); the larger the more specific
Specificity = tuple[bool, int, bool]


def _is_binary(raw: bytes) -> bool:
    """Whether ``raw`` is not text: NUL bytes in its first 4 kB, unless it opens with a UTF-16
    byte-order mark (Excel's "Unicode Text", which is text with a NUL in every other byte)."""
    return b"\x00" in raw[:4096] and raw[:2] not in UTF16_BOMS


def match_rows(sheet: Sheet, files: dict[int, str]) -> tuple[dict[int, dict[str, str]], SheetImport]:
    """The fields each indexed file (id → path) gets from ``sheet``, and the counts of the match.
    Each row goes to the files it names best (:func:`match_score`); a file several rows name
    takes the fields of the rows naming it best, in the sheet's order (the first of them a key)."""
    parts = {fid: _parts(p) for fid, p in files.items()}
    by_stem: dict[str, list[int]] = {}
    for fid, path in parts.items():
        if path:
            by_stem.setdefault(_stem(path[-1]), []).append(fid)
    report = SheetImport(sheet.name, columns=dict(sheet.used), unused_columns=list(sheet.unused),
                         file_column=sheet.file_column, worksheets=list(sheet.worksheets),
                         skipped_worksheets=list(sheet.skipped))
    claims: dict[int, tuple[Specificity, list[int]]] = {}     # file → its best rows' score and numbers
    for at, (value, _) in enumerate(sheet.rows):
        report.rows += 1
        row = _parts(value)
        if not row:
            continue
        found = _best_files(row, by_stem.get(_stem(row[-1]), []), parts)
        if not found:
            report.unmatched.append(value)
            continue
        report.matched_rows += 1
        report.shared_rows += len(found) > 1
        for fid, score in found.items():
            best = claims.get(fid)
            if best is None or score > best[0]:
                claims[fid] = (score, [at])
            elif score == best[0]:
                best[1].append(at)
    out = {fid: _merged([sheet.rows[at][1] for at in rows]) for fid, (_, rows) in claims.items()}
    report.files = len(out)
    return out, report


def match_score(row: tuple[str, ...], path: tuple[str, ...]) -> Specificity | None:
    """How well a row's file value names an indexed file, both as :func:`_parts`; None when it
    does not: the names differ (beyond an extension the row leaves off or names otherwise), or
    the row is a path whose file name and last folder both differ from the file's."""
    name, other = row[-1], path[-1]
    same_name = name == other or (not _is_audio_name(name) and name == _stem(other))
    if not same_name and _stem(name) != _stem(other):
        return None
    tail = _common_tail(path, row)
    if not same_name and len(row) > 1 and tail == 0:
        return None
    return row == path, tail, same_name


def _best_files(row: tuple[str, ...], candidates: list[int],
                parts: dict[int, tuple[str, ...]]) -> dict[int, Specificity]:
    """Of the ``candidates`` (file ids; their paths as :func:`_parts` in ``parts``), those the
    row names best, with that :func:`match_score`; none when it names none of them."""
    scores = {fid: score for fid in candidates if (score := match_score(row, parts[fid])) is not None}
    if not scores:
        return {}
    best = max(scores.values())
    return {fid: score for fid, score in scores.items() if score == best}


def _merged(rows: list[dict[str, str]]) -> dict[str, str]:
    """The fields of several rows naming one file equally well: the first row's value of a key."""
    out: dict[str, str] = {}
    for fields in rows:
        for key, text_ in fields.items():
            out.setdefault(key, text_)
    return out


def _stem(name: str) -> str:
    """A file name without its audio extension (a name without one as it is)."""
    return os.path.splitext(name)[0] if _is_audio_name(name) else name


def _common_tail(path: tuple[str, ...], other: tuple[str, ...]) -> int:
    """How many trailing folders two paths share, their file names aside: a sheet written on
    another machine names its files by paths that end like the local ones."""
    n = 0
    while n + 1 < min(len(path), len(other)) and path[-2 - n] == other[-2 - n]:
        n += 1
    return n
