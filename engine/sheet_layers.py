"""Which library sheets describe the catalog's files, read from their ``sheet:`` rows (read only).

Where several sheets describe a file, the one imported last stands: its fields are the file's
``sheet:`` rows (with ``sheet:sheet`` and ``sheet:path`` naming it) and what the others say is kept
beside them, oldest first, as a JSON list in one ``sheet:shadowed`` row (engine.file_metadata).
A file's :class:`Layer` list is that stack, oldest first, the standing one last. Writing the rows
(import, remove, relocate) is indexer.metadata_sheet's job; `info --json`, `sheet list` and
``GET /info`` read them here.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.catalog import FileMetadata, has_table
from engine.file_metadata import SHEET_NAME_KEY, SHEET_PATH_KEY, SHEET_PREFIX, SHEET_SHADOWED_KEY, SHEET_SOURCE_KEYS


@dataclass
class Layer:
    """What one sheet says of one file: the sheet's file name, its absolute path (None for rows
    stored before session 24, which have the name alone) and its fields (key → value, the
    ``sheet:`` prefix left off)."""

    sheet: str
    path: str | None
    fields: dict[str, str]

    @property
    def source(self) -> tuple[str, str | None]:
        """The sheet as (name, path), as indexer.metadata_sheet and :func:`sheet_counts_in` know it."""
        return self.sheet, self.path


def layers_of(rows: list[tuple[str, str]]) -> list[Layer]:
    """A file's layers, oldest first, from its ``sheet:`` rows (key, value): the shadowed ones
    of its ``sheet:shadowed`` list, then the standing sheet's."""
    shadowed: list[Layer] = []
    name, path, fields = None, None, {}
    for key, value in rows:
        if key == SHEET_SHADOWED_KEY:
            shadowed = [Layer(layer["sheet"], layer["path"], layer["fields"]) for layer in json.loads(value)]
        elif key == SHEET_PATH_KEY:
            path = value
        elif key == SHEET_NAME_KEY:
            name = value
        else:
            fields[key[len(SHEET_PREFIX):]] = value
    if name is None and path is None and not fields:
        return shadowed
    return [*shadowed, Layer(name if name is not None else os.path.basename(path or ""), path, fields)]


def sheet_sources(s: Session) -> dict[int, list[tuple[str, str | None]]]:
    """File id → (name, absolute path or None) of each sheet that describes it, oldest first,
    the standing one last, for every described file (none for a catalog from before file
    metadata was stored)."""
    if not has_table(s, "file_metadata"):
        return {}
    rows: dict[int, list[tuple[str, str]]] = {}
    for fid, key, value in s.execute(select(FileMetadata.file_id, FileMetadata.key, FileMetadata.value)
                                     .where(FileMetadata.key.in_(SHEET_SOURCE_KEYS))):
        rows.setdefault(fid, []).append((key, value))
    layers = {fid: [layer.source for layer in layers_of(found)] for fid, found in rows.items()}
    return {fid: sources for fid, sources in layers.items() if sources}


def sheets_described_in(s: Session) -> list[dict[str, str | int | None]]:
    """Each imported sheet on an open session of the catalog, a record ``{"sheet", "path", "files"}``:
    its file name, its absolute path (None for one imported before paths were kept) and how many
    indexed files it describes (those whose standing sheet it is), most first, then by name and path."""
    counts = sorted(_described_counts(s).items(), key=lambda item: (-item[1], item[0][0], item[0][1] or ""))
    return [{"sheet": name, "path": path, "files": n} for (name, path), n in counts]


def sheet_counts_in(s: Session) -> dict[str, int]:
    """Each imported sheet → how many indexed files it describes, most first, on an open session
    of the catalog (none for a catalog from before file metadata was stored). A sheet is listed by
    its file name, or by its path where several imported sheets share that name. A file counts for
    the sheet whose rows stand (the one imported last of those that describe it)."""
    counts = _described_counts(s)
    names: dict[str, int] = {}
    for name, _ in counts:
        names[name] = names.get(name, 0) + 1
    shown = {(path or name) if names[name] > 1 else name: n for (name, path), n in counts.items()}
    return dict(sorted(shown.items(), key=lambda item: (-item[1], item[0])))


def _described_counts(s: Session) -> dict[tuple[str, str | None], int]:
    """(name, path) → the files whose standing sheet it is (the one imported last of those that
    describe each)."""
    counts: dict[tuple[str, str | None], int] = {}
    for sources in sheet_sources(s).values():
        counts[sources[-1]] = counts.get(sources[-1], 0) + 1
    return counts
