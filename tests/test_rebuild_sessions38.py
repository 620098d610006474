"""The rebuild reads the index it replaces through engine.catalog.catalog_session (session 38):
the moves it looks for (indexer.rebuild.find_rebuild_moves: the old catalog's audio headers) and
the warning of dropped notes (_warn_of_dropped) close the old catalog on every path, and a
catalog from before ``file_metadata`` (no fingerprints stored) is rebuilt with its moved files'
tags following them: the header read failed with "no such table: file_metadata".

The rebuild writer's own engine (IndexWriter.engine) stays the writer's: it made the new catalog,
writes it through the whole run and is closed by the writer before the swap.
"""
from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import pytest

import indexer.rebuild as rebuilding
import indexer.runner as runner
from engine.layout import IndexLayout
from indexer.scan import scan
from tests.test_catalog_session43 import catalog_handles
from tests.test_catalog_sessions39 import without_file_metadata
from tests.test_rebuild_moves34 import built, every, leftovers, lib, notes, rebuild  # noqa: F401 (lib: fixture)


def moved_and_deleted(lib: Path) -> None:
    """door.wav moved into sorted/ (mv keeps size and time), beep.wav deleted."""
    (lib / "sorted").mkdir()
    os.rename(lib / "door.wav", lib / "sorted" / "door.wav")
    (lib / "beep.wav").unlink()


def the_walk(lib: Path, idx: Path) -> tuple[IndexLayout, rebuilding._OldIndex, rebuilding.Diff]:
    """What the rebuild knows before it looks for moves: the old index and the walk against it."""
    live = IndexLayout(idx)
    old = rebuilding._read_old(live)
    return live, old, rebuilding._plan_against_old(old, [lib], scan([lib]))


def test_a_catalog_from_before_file_metadata_is_rebuilt_with_its_moved_files_notes(lib, tmp_path, caplog):
    idx = built(lib, tmp_path)
    without_file_metadata(idx)          # the sheet rows go with the table: tags and captions stay
    moved_and_deleted(lib)

    with caplog.at_level(logging.WARNING, logger="indexer"):
        s = rebuild(lib, idx)

    no_sheet = {word: every(word) - {f"{word} sheet"} for word in ("door", "wind")}
    assert notes(idx, lib) == {"sorted/door.wav": no_sheet["door"], "sub/wind.wav": no_sheet["wind"]}
    assert (s.added, s.updated, s.removed, s.moved) == (0, 1, 1, 1)
    assert f"{lib / 'beep.wav'} (beep tag, caption: beep caption)" in caplog.text     # the user's notes it drops
    assert leftovers(idx) == [] and catalog_handles(idx) == []


def test_finding_moves_closes_the_old_catalog_also_when_reading_it_fails(lib, tmp_path, monkeypatch):
    idx = built(lib, tmp_path)
    moved_and_deleted(lib)
    live, old, plan = the_walk(lib, idx)

    moves, replaced = rebuilding.find_rebuild_moves(live, old, plan)
    assert [(m.old, m.new) for m in moves] == [(str(lib / "door.wav"), str(lib / "sorted" / "door.wav"))]
    assert replaced == {} and catalog_handles(idx) == []

    def broken(engine, paths):
        raise sqlite3.DatabaseError("database disk image is malformed")
    monkeypatch.setattr(rebuilding, "catalog_headers", broken)
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):
        rebuilding.find_rebuild_moves(live, old, plan)
    assert catalog_handles(idx) == []


def test_the_warning_of_dropped_notes_closes_the_old_catalog_also_when_it_fails(lib, tmp_path, monkeypatch,
                                                                                 caplog):
    idx = built(lib, tmp_path)
    moved_and_deleted(lib)
    live, old, plan = the_walk(lib, idx)
    moves, replaced = rebuilding.find_rebuild_moves(live, old, plan)

    with caplog.at_level(logging.WARNING, logger="indexer"):
        rebuilding._warn_of_dropped(idx, live, old, plan, moves, replaced)
    assert f"{lib / 'beep.wav'} (beep tag, caption: beep caption, sheet" in caplog.text
    assert str(lib / "door.wav") not in caplog.text          # moved, not dropped
    assert catalog_handles(idx) == []

    def broken(*args, **kwargs):
        raise sqlite3.DatabaseError("database disk image is malformed")
    monkeypatch.setattr(runner, "warn_of_dropped_notes", broken)
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):
        rebuilding._warn_of_dropped(idx, live, old, plan, moves, replaced)
    assert catalog_handles(idx) == []
