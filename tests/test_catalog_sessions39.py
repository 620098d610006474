"""The last hand-opened catalog sessions (helper 149): ``soundsift sheet import``
(indexer.metadata_sheet.import_sheet), the sheet paths a relocation moves (move_sheet_paths) and
the old catalog a rebuild carries tags over from (indexer.rebuild.carry_over) open the catalog by
engine.catalog.catalog_session: the engine disposed on every path, errors half-way included, and
a dry run of an import changes nothing, a catalog from before ``file_metadata`` included."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

import indexer.metadata_sheet as metadata_sheet
import indexer.rebuild as rebuilding
from engine.catalog import FileMetadata, catalog_session, has_table, open_catalog
from engine.file_metadata import SHEET_PATH_KEY
from engine.layout import IndexLayout
from indexer.metadata_sheet import import_sheet, move_sheet_paths
from query_fixtures import FileSpec, write_index
from tests.test_catalog_session43 import catalog_handles

PATHS = ("/lib/door.wav", "/lib/rain.wav")


@pytest.fixture
def idx(tmp_path: Path) -> Path:
    """A two-file index."""
    rng = np.random.default_rng(0)
    write_index(tmp_path / "idx", [FileSpec(p, rng.standard_normal((1, 8))) for p in PATHS])
    return tmp_path / "idx"


@pytest.fixture
def sheet(tmp_path: Path) -> Path:
    path = tmp_path / "sheets" / "library.csv"
    path.parent.mkdir()
    path.write_text("Filename,Description\ndoor.wav,A door slams\nrain.wav,Rain on a roof\n")
    return path


def sheet_rows(idx: Path) -> list[tuple[int, str, str]]:
    with catalog_session(idx) as s:
        if not has_table(s, "file_metadata"):
            return []
        return sorted(tuple(row) for row in s.execute(select(FileMetadata.file_id, FileMetadata.key, FileMetadata.value)).all())


def without_file_metadata(idx: Path) -> None:
    """The catalog as soundsift wrote it before the file_metadata table."""
    db = sqlite3.connect(IndexLayout(idx).catalog)
    try:
        with db:
            db.execute("DROP TABLE file_metadata")
    finally:
        db.close()


def test_an_import_stores_its_rows_and_leaves_no_handle_open(idx, sheet):
    report = import_sheet(idx, sheet)
    assert report.files == 2
    assert ("A door slams" in {value for _, _, value in sheet_rows(idx)})
    assert catalog_handles(idx) == []


def test_an_import_that_fails_half_way_writes_nothing_and_leaves_no_handle_open(idx, sheet, monkeypatch):
    write_stacks = metadata_sheet._write_stacks

    def half_way(s, stacks):
        write_stacks(s, stacks)         # written in its transaction, then the disk fails
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(metadata_sheet, "_write_stacks", half_way)
    with pytest.raises(OSError, match="No space left"):
        import_sheet(idx, sheet)
    assert catalog_handles(idx) == []
    assert sheet_rows(idx) == []        # rolled back


def test_an_import_under_a_folder_without_files_leaves_no_handle_open(idx, sheet, tmp_path):
    from engine.errors import InvalidQuery
    with pytest.raises(InvalidQuery, match="holds no files under"):
        import_sheet(idx, sheet, under=tmp_path / "elsewhere")
    assert catalog_handles(idx) == []


def test_a_dry_run_on_a_catalog_from_before_file_metadata_changes_nothing(idx, sheet):
    """The import opened the catalog to create its missing tables before even a dry run
    ("match and report, change nothing") had matched a row: the dry run added file_metadata.
    The tables are made in the import's own transaction, under the writer lock."""
    without_file_metadata(idx)
    assert import_sheet(idx, sheet, dry_run=True).files == 2
    with catalog_session(idx) as s:
        assert not has_table(s, "file_metadata"), "a dry run created a table"
    assert import_sheet(idx, sheet).files == 2              # the real one makes it, as it did
    assert {value for _, key, value in sheet_rows(idx) if key == SHEET_PATH_KEY} == {str(sheet.resolve())}
    assert catalog_handles(idx) == []


def test_moving_sheet_paths_takes_the_index_and_leaves_no_handle_open(idx, sheet, tmp_path):
    import_sheet(idx, sheet)
    moved_to = str(tmp_path / "moved" / "library.csv")
    assert move_sheet_paths(IndexLayout(idx), lambda p: moved_to if p == str(sheet.resolve()) else None) == 2
    assert {value for _, key, value in sheet_rows(idx) if key == SHEET_PATH_KEY} == {moved_to}
    assert catalog_handles(idx) == []

    def failing(path: str) -> str:
        raise ValueError("a bad path")
    with pytest.raises(ValueError, match="a bad path"):
        move_sheet_paths(IndexLayout(idx), failing)
    assert catalog_handles(idx) == []
    assert {value for _, key, value in sheet_rows(idx) if key == SHEET_PATH_KEY} == {moved_to}


def test_moving_sheet_paths_in_a_catalog_from_before_file_metadata_moves_none(idx):
    without_file_metadata(idx)
    assert move_sheet_paths(IndexLayout(idx), lambda p: "/elsewhere") == 0
    assert catalog_handles(idx) == []


def test_carrying_over_reads_the_old_index_and_leaves_no_handle_open(idx, sheet, tmp_path, monkeypatch):
    """The sheet's rows follow their files into a new catalog (the rebuild's, its writer's
    engine, which stays the caller's); the old catalog is closed, after an error too."""
    import_sheet(idx, sheet)
    rng = np.random.default_rng(1)
    write_index(tmp_path / "new", [FileSpec(p, rng.standard_normal((1, 8))) for p in PATHS])
    new_engine = open_catalog(IndexLayout(tmp_path / "new").catalog)
    try:
        rebuilding.carry_over(IndexLayout(idx), new_engine)
        assert catalog_handles(idx) == []
        assert len(sheet_rows(tmp_path / "new")) == len(sheet_rows(idx)) > 0

        def broken(conn, name):
            raise sqlite3.DatabaseError("database disk image is malformed")
        monkeypatch.setattr(rebuilding, "has_table", broken)
        with pytest.raises(sqlite3.DatabaseError, match="malformed"):
            rebuilding.carry_over(IndexLayout(idx), new_engine)
        assert catalog_handles(idx) == []
    finally:
        new_engine.dispose()
