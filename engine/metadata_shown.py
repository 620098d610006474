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

from engine.catalog import CLEARED_VALUE, FileMetadata
from engine.file_metadata import SHEET_CLEARED, SHEET_PREFIX


def shown_rows(few: bool = False) -> ColumnElement[bool]:
    """A condition on :class:`FileMetadata` rows: the row is no sheet's clearing mark, and no
    sheet clears its key for its file. Few files have a field cleared: whether any has is asked
    once, the files that do are one subquery, read once (SQLite keeps it as a look-up table), and
    only their rows are looked at one by one. These read the catalog's index of the cleared cells
    (``ix_file_metadata_cleared``, engine.catalog), not the whole table again: on a synthetic
    33,000-file catalog ``info``'s count of described files takes ×1.48 the time of the plain
    count with one file in 100 cleared, ×0.99 with none (×1.78 and ×1.33 on a catalog from before
    the index, read whole until a writer opens it; benchmarks/metadata_shown.py, one run each).
    ``few``: the query's other conditions keep few rows (the category filter's values), so each
    is looked at alone, without the subqueries."""
    clearing = aliased(FileMetadata)
    shown_here = and_(not_(and_(FileMetadata.value == CLEARED_VALUE, FileMetadata.key.like(SHEET_PREFIX + "%"))),
                      not_(exists().where(clearing.file_id == FileMetadata.file_id,
                                          clearing.key == SHEET_PREFIX + FileMetadata.key,
                                          clearing.value == CLEARED_VALUE)))
    if few:
        return shown_here
    marks = aliased(FileMetadata)
    is_mark = and_(marks.value == CLEARED_VALUE, marks.key.like(SHEET_PREFIX + "%"))
    return or_(not_(exists().where(is_mark)),                           # no file has a field cleared
               FileMetadata.file_id.not_in(select(marks.file_id).where(is_mark)),  # not this one
               shown_here)


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
