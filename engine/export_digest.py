"""What each cell of a ``sheet export`` row held when it was written, kept in the row itself.

An export imported back long after it was written holds, in every cell the user left alone, what
the file showed then; the file's own metadata may have changed since (re-tagged in another
application, indexed again). ``sheet export`` writes an :data:`DIGEST_COLUMN` cell per row: which
index it was exported from and a short digest of each field it exported,
``index:5d0c… description:3fa2c19b0e title:…`` (:func:`row_digest`); ``sheet import`` into that
index reads it back (:func:`read_digest`) and takes a cell whose digest is the recorded one
(:func:`unedited`) for one the user did not edit, storing nothing for it (imported into another
index, every cell is news to it, as before). The record travels in its row as plain text (never
read as a number, a date or a formula), so it stays with its row whatever a spreadsheet does to
the sheet: sorting, filtering or deleting rows, saving CSV as a workbook or back, another file
name or folder (a hidden worksheet is lost when a workbook is saved as CSV, and a sidecar file
when the sheet is saved elsewhere). Values are compared as engine.metadata_sheet.comparable gives them
(a line break or a run of spaces as one space, accents composed), so a cell as a spreadsheet
read and wrote it is still the one exported.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

#: the column ``sheet export`` writes the digests in (engine.sheet_export.EXPORT_COLUMNS)
DIGEST_COLUMN = "ExportDigest"
#: the key the user's own tags (the UserTags cell) are recorded under
TAGS_DIGEST_KEY = "tags"
#: the key the index exported from is recorded under (:func:`index_digest`)
INDEX_DIGEST_KEY = "index"
#: one recorded cell: the field's key (letters) and its digest (hex)
_ENTRY = re.compile(r"([a-z]+):([0-9a-f]+)")


def cell_digest(value: str) -> str:
    """A short digest of a cell's value as engine.metadata_sheet.comparable gives it (ten hex
    digits: two cells of one file's field told apart but for one chance in a trillion)."""
    from engine.metadata_sheet import comparable
    return hashlib.blake2b(comparable(value).encode("utf-8"), digest_size=5).hexdigest()


def index_digest(root: str | Path) -> str:
    """A short digest naming the index at ``root`` (its folder, links resolved)."""
    return cell_digest(str(Path(root).resolve()))


def row_digest(index: str, fields: dict[str, str]) -> str:
    """The :data:`DIGEST_COLUMN` cell of a row of the index ``index`` (its :func:`index_digest`)
    whose fields (key → value as exported) are ``fields``: ``index:digest`` then ``key:digest`` of
    each non-empty field, space-separated (text a spreadsheet keeps as it is: never a number, a
    date or a formula)."""
    entries = {INDEX_DIGEST_KEY: index,
               **{key: cell_digest(value) for key, value in fields.items() if value}}
    return " ".join(f"{key}:{digest}" for key, digest in entries.items())


def read_digest(cell: str, index: str) -> dict[str, str]:
    """Key → digest of a :data:`DIGEST_COLUMN` cell, for an import into the index ``index`` (its
    :func:`index_digest`): none where the cell names another index (or none); what is not an
    entry is ignored."""
    entries = dict(_ENTRY.findall(cell.lower()))
    if entries.pop(INDEX_DIGEST_KEY, None) != index:
        return {}
    return entries


def unedited(recorded: dict[str, str], key: str, cell: str) -> bool:
    """Whether ``cell``, of the field ``key``, holds what the export wrote in it (``recorded``:
    the row's :func:`read_digest`; a field exported empty has no entry, so any text is an edit)."""
    return key in recorded and recorded[key] == cell_digest(cell)
