"""Which of the catalog's metadata rows a file shows, for the queries that read them in SQL.

A library sheet's cell "-" clears its field (engine.file_metadata.SHEET_CLEARED, stored as the
value of the field's ``sheet:`` key): the file then shows nothing under that key, neither its
own value nor the sheet's mark. :func:`shown_rows` is that rule as a condition on
``file_metadata`` rows (the category filter, the categories ``info`` and the page list, the count
of described files) and :func:`shown_pairs` the same on rows already read (the keyword index);
engine.file_metadata.with_sheet applies it to one file's metadata.
"""
from __future__ import annotations

from typing import Iterable

from sqlalchemy import ColumnElement, and_, exists, not_, or_, select
from sqlalchemy.orm import aliased

from engine.catalog import FileMetadata
from engine.file_metadata import SHEET_CLEARED, SHEET_PREFIX


def shown_rows(few: bool = False) -> ColumnElement[bool]:
    """A condition on :class:`FileMetadata` rows: the row is no sheet's clearing mark, and no
    sheet clears its key for its file. Few files have a field cleared: the files that do are one
    subquery, read once (SQLite keeps it as a look-up table), and only their rows are looked at
    one by one: on a synthetic 33,000-file catalog a subquery for every row made ``info``'s count
    of described files 6.6–10 times as slow, this 1.6–2.0 (benchmarks/metadata_shown.py, two
    runs). ``few``: the query's other conditions keep few rows (the category filter's values), so
    each is looked at alone, without reading the table for the cleared files (×1.13–1.17 there)."""
    clearing = aliased(FileMetadata)
    not_cleared = not_(exists().where(clearing.file_id == FileMetadata.file_id,
                                      clearing.key == SHEET_PREFIX + FileMetadata.key,
                                      clearing.value == SHEET_CLEARED))
    if not few:
        marks = aliased(FileMetadata)
        with_clears = select(marks.file_id).where(marks.value == SHEET_CLEARED, marks.key.like(SHEET_PREFIX + "%"))
        not_cleared = or_(FileMetadata.file_id.not_in(with_clears), not_cleared)
    return and_(not_(and_(FileMetadata.value == SHEET_CLEARED, FileMetadata.key.like(SHEET_PREFIX + "%"))),
                not_cleared)


def shown_pairs(rows: Iterable[tuple[int, str, str]]) -> list[tuple[int, str]]:
    """(file id, value) of the rows (file id, key, value) a file shows: a sheet's clearing mark
    and the values of the keys it clears left out (the rows of both keys are among ``rows``)."""
    rows = list(rows)
    cleared = {(fid, key[len(SHEET_PREFIX):]) for fid, key, value in rows
               if key.startswith(SHEET_PREFIX) and value == SHEET_CLEARED}
    if not cleared:
        return [(fid, value) for fid, _, value in rows]
    return [(fid, value) for fid, key, value in rows
            if (fid, key[len(SHEET_PREFIX):] if key.startswith(SHEET_PREFIX) else key) not in cleared]
