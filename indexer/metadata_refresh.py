"""Read the embedded metadata of already indexed files again when the reader has learnt more.

Metadata is read when a file is indexed, so an index built before soundsift read a kind of
metadata (INFO and bext since session 18, iXML since session 19, markers since sessions 20 and
22, cue sheets since session 23) would gain it only as its files change. Reading metadata costs well under a millisecond a file, embedding far more, so the
next `soundsift index` run reads every unchanged file's metadata again instead, once, and the
catalog records the reader version (meta ``metadata_reader``) so later runs skip it. The file's
content fingerprint (indexer.moves) is taken again with it, so indexes from before session 22
gain theirs in the same pass.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.catalog import File
from engine.file_metadata import READER_VERSION, content_fingerprint, read_metadata
from engine.wording import count
from indexer.write import IndexWriter

log = logging.getLogger(__name__)


def refresh_metadata(writer: IndexWriter, busy: set[str], moved: Mapping[str, str] | None = None) -> int:
    """Re-read the metadata of every indexed file not in ``busy`` (paths this run adds, changes
    or removes: they are read, or dropped, anyway) when the catalog's reader is older than
    :data:`READER_VERSION`; returns how many files were read. ``moved``: indexed path → where
    the file is now (indexer.moves), read there. The catalog is marked current only when every
    file could be read; one that cannot keeps what it had, with a warning."""
    if int(writer.meta.get("metadata_reader", 0)) >= READER_VERSION:
        return 0
    with Session(writer.engine) as s:
        paths = [p for p in s.scalars(select(File.path)) if p not in busy]
    if paths:
        log.info("reading the embedded metadata of %s again (this version also reads "
                 "iXML and FLAC's UCS fields, WAV and AIFF markers, cue sheets …)", count(len(paths), "indexed file"))
    started = time.perf_counter()
    found: dict[str, tuple[tuple[str, str], ...]] = {}
    missed: list[str] = []
    moved = moved or {}
    for path in paths:
        notes: list[str] = []
        where = moved.get(path, path)
        try:
            if not os.path.isfile(where):
                raise FileNotFoundError("not found: deleted, renamed or on a drive not mounted now")
            read = read_metadata(where, notes)
            read["fingerprint"] = content_fingerprint(where)      # indexer.moves (none before session 22)
            found[path] = tuple(sorted(read.items()))
        except Exception as e:  # a file we cannot read now keeps what it had; said below
            missed.append(f"{where}: {e}")
        for note in notes:
            log.warning("%s: %s", where, note)
    if missed:
        log.warning("embedded metadata of %s not read again (%s what %s had; the next run tries "
                    "again), e.g. %s", count(len(missed), "indexed file"),
                    *(("it keeps", "it") if len(missed) == 1 else ("they keep", "they")), missed[0])
    writer.replace_metadata(found, None if missed else READER_VERSION)
    if paths:
        log.info("embedded metadata of %s read again in %.1f s", count(len(found), "file"),
                 time.perf_counter() - started)
    return len(found)
