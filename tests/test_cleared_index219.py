"""Session 42 (h219): the rows a library sheet clears ("-") are found through the catalog's index
of them (``ix_file_metadata_cleared``), not by reading the whole ``file_metadata`` table again in
every query that leaves them out (``info``'s count of described files and its categories, the
page's category list, ``--category``); a catalog from before the index gains it when a writer
opens it, and one in a read-only folder answers the same without it."""
from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from engine.catalog import open_catalog
from engine.filters import Filters
from engine.layout import IndexLayout
from engine.query import SoundIndex
from indexer.metadata_sheet import import_sheet
from tests.conftest import tone, write
from tests.index_fakes import FakeModel
from tests.test_index_readonly import make_read_only
from tests.test_sheet_clear_stale41 import bwf
from tests.test_sheet_roundtrip40 import index, titled
from ui.cli import app

run = CliRunner().invoke
INDEX_NAME = "ix_file_metadata_cleared"


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """(library, index): the storm's own description cleared by a sheet, the beep's category
    given by one sheet and cleared by a later one, the door's category given."""
    base = tmp_path_factory.mktemp("cleared219")
    lib = (base / "Library").resolve()
    bwf(lib / "storm.wav", "Thunder rolling over the hills")
    titled(lib / "door.wav", "Door creak", None)
    write(lib / "beep.wav", tone(1000, 0.5, 16000), 16000)
    idx = base / "idx"
    index(lib, idx)
    first, later = base / "first.csv", base / "later.csv"
    first.write_text("File,Description,Category\nstorm.wav,-,\ndoor.wav,,DOORS\nbeep.wav,,TONES\n")
    later.write_text("File,Category\nbeep.wav,-\n")
    import_sheet(idx, first)
    import_sheet(idx, later)
    return lib, idx


def index_names(idx: Path) -> set[str]:
    with sqlite3.connect(IndexLayout(idx).catalog) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def without_the_index(idx: Path, copy: Path) -> Path:
    """A copy of the index at ``idx`` as a soundsift from before session 42 left it."""
    shutil.copytree(idx, copy)
    with sqlite3.connect(IndexLayout(copy).catalog) as conn:
        conn.execute(f"DROP INDEX IF EXISTS {INDEX_NAME}")
    assert INDEX_NAME not in index_names(copy)
    return copy


def answers(idx: Path) -> dict[str, Any]:
    """What the queries that leave the cleared rows out answer on the index at ``idx``."""
    done = run(app, ["info", "--index", str(idx), "--json"])
    assert done.exit_code == 0, done.output
    info = json.loads(done.stdout)
    with SoundIndex.open(idx, model=FakeModel()) as si:
        page_categories = si.facets()["categories"]
        found = {c: sorted(Path(h.path).name for h in si.search_text("x", k=3, filters=Filters(categories=[c])))
                 for c in ("DOORS", "TONES")}
    return {"described": info["counts"]["described"], "categories": info["categories"],
            "page_categories": page_categories, "found": found}


def test_the_cleared_rows_are_read_through_their_index(built):
    """Every statement that leaves cleared rows out looks them up in the index: none of its
    subqueries (on aliases of file_metadata) reads the table itself (each such read of the marks
    was a second pass over all of it)."""
    _, idx = built
    statements: list[tuple[str, Any]] = []

    def seen(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "file_metadata" in statement and "sheet:%" in parameters:     # shown_rows()'s pattern of the marks
            statements.append((statement, parameters))

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        answered = answers(idx)
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert answered["described"] == 2                       # the door's title; the storm's description cleared
    assert len(statements) >= 4                             # described, categories, page categories, filter
    with sqlite3.connect(IndexLayout(idx).catalog) as conn:
        for statement, parameters in statements:
            plan = conn.execute("EXPLAIN QUERY PLAN " + statement, parameters).fetchall()
            inner = [detail for *_, detail in plan if re.match(r"(SCAN|SEARCH) file_metadata_\d", detail)]  # its aliases
            assert inner, (statement, plan)
            assert all(INDEX_NAME in detail for detail in inner), (statement, plan)


def test_the_answers_are_those_of_a_catalog_without_the_index(built, tmp_path):
    """The index changes how the rows are found, not which: the same answers as on a copy that
    lacks it, and what the sheets say (TONES cleared, the storm's description cleared)."""
    _, idx = built
    with_index = answers(idx)
    assert with_index == answers(without_the_index(idx, tmp_path / "old"))
    assert with_index["categories"] == [{"category": "DOORS", "files": 1}]
    assert with_index["page_categories"] == ["DOORS"]
    assert with_index["found"] == {"DOORS": ["door.wav"], "TONES": []}


def test_a_catalog_from_before_the_index_gains_it_when_a_writer_opens_it(built, tmp_path):
    """An index run (open_catalog with create) and a sheet import add the index; a reader does not."""
    _, idx = built
    old = without_the_index(idx, tmp_path / "old")
    answers(old)
    assert INDEX_NAME not in index_names(old)
    open_catalog(IndexLayout(old).catalog, create=True).dispose()
    assert INDEX_NAME in index_names(old)
    other = without_the_index(idx, tmp_path / "other")
    sheet = tmp_path / "more.csv"
    sheet.write_text("File,Description\ndoor.wav,an old oak door\n")
    import_sheet(other, sheet)
    assert INDEX_NAME in index_names(other)


def test_a_read_only_catalog_without_the_index_answers_the_same(built, tmp_path, monkeypatch):
    _, idx = built
    expected = answers(idx)
    ro = without_the_index(idx, tmp_path / "ro")
    make_read_only(monkeypatch, ro)
    assert answers(ro) == expected
    monkeypatch.undo()
    assert INDEX_NAME not in index_names(ro)


def test_the_index_serves_the_value_a_sheet_clears_with():
    """engine.catalog spells the cleared value inline for its partial index (it imports nothing of
    engine.file_metadata): the two must stay one value."""
    from engine.catalog import CLEARED_VALUE
    from engine.file_metadata import SHEET_CLEARED
    assert CLEARED_VALUE.value == SHEET_CLEARED
