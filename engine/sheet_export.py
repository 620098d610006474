"""Write what an index knows of its files as a library sheet, for a librarian's other tools.

Soundminer, BaseHead and a spreadsheet read a sheet with one row per file; :func:`library_rows`
gives each indexed file (those ``filters`` keep) its name and path, format, length, rate and
channels, the descriptions it carries or a library sheet gave it (FXName, Description, Category,
SubCategory, CatID, Keywords …), its named markers, measured levels, the user's own tags, the
tags a tagger stored (``soundsift caption --index``), and, on request, its zero-shot tags from
its stored vectors (no decoding). :func:`write_library_sheet` writes them as CSV (UTF-8 with a
byte-order mark, so Excel reads the accents), tab-separated text or an ``.xlsx`` workbook. A
description that starts like a formula ("=…", "+…", "-6 dB …", "@…") stays text: a text cell in
the workbook, and in CSV with the apostrophe Excel reads as "text" before it (which ``sheet
import`` takes off), so opening the sheet runs nothing a file or a vendor's sheet carried.
``soundsift sheet import`` reads such a sheet back (by its Pathname column), on this machine or
another, so descriptions and tags travel between indexes (its ``UserTags`` cells set the files'
own tags: indexer.metadata_sheet); read back into the same index, only the cells the user
changed are stored (engine.metadata_sheet.same_value: a cell as exported says what the file shows;
the ``ExportDigest`` column records what each cell held, engine.export_digest, so a cell left
alone stores nothing though the file changed since). A field a sheet clears is written "-", as
``sheet import`` reads it back.
"""
from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from sqlalchemy import select

from engine.catalog import SQL_CHUNK, USER_TAG_SOURCE, File, Tag, catalog_session, stored_metadata
from engine.errors import InvalidOutput, InvalidQuery
from engine.export_digest import DIGEST_COLUMN, TAGS_DIGEST_KEY, index_digest, row_digest
from engine.file_metadata import (LEVEL_KEYS, SHEET_CLEARED, SHEET_NAME_KEY, SHEET_PREFIX, cleared_keys, sheet_fields,
                                  with_sheet)
from engine.metadata_sheet import FIELD_COLUMNS
from engine.filters import Filters
from engine.layout import existing_index
from engine.loudness import SILENCE_DB, digitally_silent, level_text
from engine.outputs import make_folder, output_file
from engine.text_encoding import without_controls
from engine.workbook import as_csv_text
from engine.zeroshot import between_batches

#: stored metadata key → the column it is written under (Soundminer's and BaseHead's names)
METADATA_COLUMNS = {"title": "FXName", "description": "Description", "category": "Category",
                    "subcategory": "SubCategory", "catid": "CatID", "keywords": "Keywords",
                    "library": "Library", "designer": "Designer", "note": "Notes", "comment": "Comment",
                    "location": "RecordingLocation", "markers": "Markers"}
#: every column, in the order written
EXPORT_COLUMNS = ("Filename", "Pathname", "Duration", "SampleRate", "Channels", "Format",
                  *METADATA_COLUMNS.values(), "PeakdBFS", "LoudnessLUFS", "UserTags", "StoredTags",
                  "ZeroShotTags", "Sheet", DIGEST_COLUMN)
#: the metadata keys ``sheet import`` reads back from their columns (the digest records them)
_READ_BACK = frozenset(FIELD_COLUMNS.values())
#: what the sheet is written as, by the output's suffix
SHEET_FORMATS = {".csv": "comma-separated", ".tsv": "tab-separated", ".txt": "tab-separated", ".xlsx": "Excel"}
#: separator of several tags in one cell
TAG_SEPARATOR = ", "


def tag_cell(tags: Iterable[str]) -> str:
    """Tags as one cell: each once, separated by :data:`TAG_SEPARATOR`, one holding a comma in
    double quotes (and one holding a quote too, it doubled: ``keeper, "Walk, footsteps", "12"" vinyl"``),
    as ``sheet import`` reads a UserTags cell back (engine.vocabulary.split_list); no tag, an empty cell."""
    return TAG_SEPARATOR.join('"' + t.replace('"', '""') + '"' if "," in t or '"' in t else t
                              for t in dict.fromkeys(tags))


def check_sheet_output(path: str | Path) -> Path:
    """``path`` as a Path for :func:`write_library_sheet`; InvalidOutput for a folder or a suffix
    it does not write."""
    path = output_file(path, "OUT")
    if path.suffix.lower() not in SHEET_FORMATS:
        raise InvalidOutput(f"{path}: write the sheet as one of {', '.join(SHEET_FORMATS)}")
    return path


def library_rows(index: str | Path | None, filters: Filters | None = None, *, sound_index: Any = None,
                 zero_shot: int = 0, labels: Sequence[str] | None = None, min_score: float = 0.1,
                 template: str | None = None) -> list[dict[str, str]]:
    """One row (column → text, :data:`EXPORT_COLUMNS`) per indexed file that ``filters`` keep,
    in path order. With ``zero_shot`` > 0 and an open :class:`~engine.query.SoundIndex` of the
    same index as ``sound_index``, ``ZeroShotTags`` holds each file's best ``zero_shot`` labels
    (``labels``, default the model's vocabulary) whose score is at least ``min_score``."""
    layout = existing_index(index)
    with catalog_session(layout) as s:
        if filters is not None:
            filters.check_catalog(s, layout.root)
        query = select(File.id, File.path, File.duration, File.sample_rate, File.channels, File.format)
        if filters is not None and filters.active:
            query = query.where(*filters.conditions())
        files: list[Any] = []
        metadata: dict[int, dict[str, str]] = {}
        user: dict[int, list[str]] = defaultdict(list)
        stored: dict[int, list[tuple[float, str]]] = defaultdict(list)
        keys = [*METADATA_COLUMNS, *LEVEL_KEYS, SHEET_NAME_KEY, *(SHEET_PREFIX + k for k in METADATA_COLUMNS)]
        for batch in s.connection().execute(query.order_by(File.path)).partitions(SQL_CHUNK):
            between_batches("files read from the catalog")       # soundsift serve's /sheet stops here
            files += batch
        ids = sorted(int(f.id) for f in files)          # in id order: the look-ups read the catalog's pages in turn
        for i in range(0, len(ids), SQL_CHUNK):
            between_batches("files' metadata and tags")
            chunk = ids[i:i + SQL_CHUNK]
            metadata.update(stored_metadata(s, chunk, keys))
            for fid, label, score, source in s.execute(
                    select(Tag.file_id, Tag.label, Tag.score, Tag.source)
                    .where(Tag.file_id.in_(chunk)).order_by(Tag.id)):
                if source == USER_TAG_SOURCE:
                    user[fid].append(label)
                else:
                    stored[fid].append((-float(score), label))
    exported_from = index_digest(layout.root)
    zero = _zero_shot_tags(sound_index, filters, zero_shot, labels, min_score, template) if zero_shot else {}
    rows = []
    for n, f in enumerate(files):
        if n % SQL_CHUNK == 0:
            between_batches("sheet rows")
        found = metadata.get(int(f.id), {})
        described = with_sheet(found)
        cleared = cleared_keys(sheet_fields(found))         # "-": a sheet clears the field (read back so)
        fields = {key: SHEET_CLEARED if key in cleared else described.get(key, "") for key in METADATA_COLUMNS}
        tags = tag_cell(user.get(int(f.id), []))
        row = {"Filename": os.path.basename(f.path), "Pathname": f.path, "Duration": f"{float(f.duration):.3f}",
               "SampleRate": str(int(f.sample_rate)), "Channels": str(int(f.channels)), "Format": f.format,
               **{column: fields[key] for key, column in METADATA_COLUMNS.items()},
               "PeakdBFS": level_text(found.get("peak_dbfs")),
               "LoudnessLUFS": level_text(found.get("loudness_lufs"), digitally_silent(found)),
               "UserTags": tags,
               "StoredTags": tag_cell(label for _, label in sorted(stored.get(int(f.id), []))),
               "ZeroShotTags": tag_cell(zero.get(int(f.id), [])),
               "Sheet": found.get(SHEET_NAME_KEY, ""),
               DIGEST_COLUMN: row_digest(exported_from, {**{k: v for k, v in fields.items() if k in _READ_BACK},
                                                       TAGS_DIGEST_KEY: tags})}
        rows.append(row)
    return rows


def _zero_shot_tags(sound_index: Any, filters: Filters | None, top: int, labels: Sequence[str] | None,
                    min_score: float, template: str | None) -> dict[int, list[str]]:
    """File id → its best ``top`` zero-shot labels scoring at least ``min_score``, from the
    files' stored mean vectors."""
    if sound_index is None:
        raise InvalidQuery("zero-shot tags need the index opened with its model (sound_index)")
    from engine import zeroshot
    from engine.vocabulary import default_labels
    vectors = sound_index.file_vectors(filters)
    if not len(vectors.file_ids):
        return {}
    model = sound_index.model
    tagged = zeroshot.tag_many(model, np.asarray(vectors.vectors), list(labels) if labels else default_labels(model),
                               top, template or zeroshot.DEFAULT_TEMPLATE, min_score)
    return {int(fid): [t["label"] for t in tags] for fid, tags in zip(vectors.file_ids, tagged)}


def write_library_sheet(rows: list[dict[str, str]], path: str | Path) -> Path:
    """Write ``rows`` to ``path`` as its suffix says (:data:`SHEET_FORMATS`), every column of
    :data:`EXPORT_COLUMNS`, making its folder if need be; the file is written whole or not at all
    (a temporary file renamed). InvalidOutput saying why when it cannot be written."""
    path = check_sheet_output(path)
    part = path.with_name(path.name + ".part")
    data = sheet_bytes(rows, path.suffix)
    try:
        make_folder(path.parent)
        try:
            part.write_bytes(data)
            part.replace(path)
        finally:
            part.unlink(missing_ok=True)
    except OSError as e:
        raise InvalidOutput(f"{path}: cannot write the sheet there ({e.strerror or e})") from e
    return path


def sheet_bytes(rows: list[dict[str, str]], suffix: str = ".csv") -> bytes:
    """``rows`` as the bytes of a sheet of the kind ``suffix`` names (:data:`SHEET_FORMATS`)."""
    suffix = suffix.lower()
    if suffix not in SHEET_FORMATS:
        raise InvalidOutput(f"a sheet is written as one of {', '.join(SHEET_FORMATS)}, not {suffix!r}")
    if suffix == ".xlsx":
        from openpyxl import Workbook
        book = Workbook(write_only=True)
        sheet = book.create_sheet("soundsift")
        sheet.append(list(EXPORT_COLUMNS))
        for row in rows:
            sheet.append([_xlsx_cell(sheet, c, row[c]) for c in EXPORT_COLUMNS])
        buffer = io.BytesIO()
        book.save(buffer)
        return buffer.getvalue()
    text = io.StringIO(newline="")
    writer = csv.writer(text, dialect=csv.excel if suffix == ".csv" else csv.excel_tab)
    writer.writerow(EXPORT_COLUMNS)
    writer.writerows([_csv_cell(c, row[c]) for c in EXPORT_COLUMNS] for row in rows)
    return text.getvalue().encode("utf-8-sig")


#: the columns written as numbers in a workbook
_NUMERIC = {"Duration", "SampleRate", "Channels", "PeakdBFS", "LoudnessLUFS"}
#: what a level column says instead of a number (engine.loudness.level_text): a text cell
_LEVEL_WORDS = {level_text(SILENCE_DB, silent) for silent in (True, False)}


def _csv_cell(column: str, text: str) -> str:
    """A CSV or tab-separated cell: a number as it is, a text that a spreadsheet would run as a
    formula ("=…", "-6 dB …", "@…": a file's or a sheet's description) marked as text
    (engine.workbook.as_csv_text; ``sheet import`` takes the mark off)."""
    return text if column in _NUMERIC else as_csv_text(text)


def _xlsx_cell(sheet: Any, column: str, text: str) -> Any:
    """A workbook cell: a number for the numeric columns, else a text cell whatever it starts
    with (openpyxl takes a string starting with "=" for a formula), without the control
    characters a workbook cannot hold."""
    if column in _NUMERIC:
        return _number(column, text)
    text = without_controls(text)
    if not text.startswith("="):
        return text
    from openpyxl.cell import WriteOnlyCell
    cell = WriteOnlyCell(sheet, value=text)
    cell.data_type = "s"
    return cell


def _number(column: str, text: str) -> Any:
    if column in _NUMERIC and text and text not in _LEVEL_WORDS:
        value = float(text)
        return int(value) if value.is_integer() and column in ("SampleRate", "Channels") else value
    return text
