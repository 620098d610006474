"""A damaged index (session 39, helper 178): a catalog.db truncated, cut short, overwritten by other
bytes, stripped of a table or column, or written by a newer soundsift, and a vectors file missing or
cut short, give every surface (search, similar, info, tag --index, index, serve, the page's loader)
one line naming the file and what to do, exit 1, no traceback; `index` writes nothing over them.
Before, the catalog's damage was SQLAlchemy's raw DatabaseError ("file is not a database") with a
traceback, `index` made a new catalog over an emptied one (deleting the vectors), and a vectors
file cut short was "missing; re-run `soundsift index`", which then said the index was up to date."""
from __future__ import annotations

import logging
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import noise, tone, write
from ui.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_clap_dir):
    """(library, a finished index of it) made with the tiny CLAP model."""
    root = tmp_path_factory.mktemp("damaged")
    lib, idx = root / "lib", root / "idx"
    write(lib / "a.wav", tone(440, 1.0, 16000), 16000)
    write(lib / "b.wav", noise(1.0, 16000), 16000)
    root_logger = logging.getLogger()       # set up before any test's _restore_root_logger: undone here
    level, handlers = root_logger.level, list(root_logger.handlers)
    try:
        done = runner.invoke(app, ["index", str(lib), "--index", str(idx), "--model", str(tiny_clap_dir), "-j", "0"])
    finally:
        for handler in [h for h in root_logger.handlers if h not in handlers]:
            root_logger.removeHandler(handler)
        root_logger.setLevel(level)
    assert done.exit_code == 0, done.output
    return lib, idx


def _copy(built, tmp_path: Path) -> Path:
    idx = tmp_path / "idx"
    shutil.copytree(built[1], idx)
    return idx


def _sql(idx: Path, *statements: str) -> None:
    con = sqlite3.connect(idx / "catalog.db")
    for statement in statements:
        con.execute(statement)
    con.commit()
    con.close()


def _vectors(idx: Path) -> Path:
    return next(idx.glob("vectors-*.faiss"))


def _cut_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


CATALOG_DAMAGE = {
    "emptied": (lambda idx: (idx / "catalog.db").write_bytes(b""), r"catalog\.db is empty \(0 bytes"),
    "cut in half": (lambda idx: _cut_half(idx / "catalog.db"),
                    r"catalog\.db is damaged \(database disk image is malformed"),
    "overwritten by text": (lambda idx: (idx / "catalog.db").write_text("not a database\n" * 100),
                            r"catalog\.db is not an SQLite database"),
    "no meta table": (lambda idx: _sql(idx, "DROP TABLE meta"),
                      r"catalog\.db is not a soundsift catalog \(no meta table"),
    "a column renamed": (lambda idx: _sql(idx, 'ALTER TABLE segments RENAME COLUMN "end" TO stop'),
                         r"catalog\.db is not a catalog this soundsift reads \(no segments\.end"),
    "a newer schema": (lambda idx: _sql(idx, "INSERT OR REPLACE INTO meta VALUES ('schema_version', '2')"),
                       r"catalog\.db was written by a newer soundsift \(catalog schema 2"),
}

VECTORS_DAMAGE = {
    "vectors missing": (lambda idx: _vectors(idx).unlink(), r"vectors-\d+\.faiss is missing"),
    "vectors cut in half": (lambda idx: _cut_half(_vectors(idx)), r"vectors-\d+\.faiss cannot be read as FAISS"),
    "vectors overwritten": (lambda idx: _vectors(idx).write_text("not faiss"),
                            r"vectors-\d+\.faiss cannot be read as FAISS"),
}


def _commands(lib: Path, idx: Path) -> dict[str, list[str]]:
    return {"search": ["search", "dog", "--index", str(idx)],
            "similar": ["similar", str(lib / "a.wav"), "--index", str(idx)],
            "info": ["info", "--index", str(idx)],
            "tag": ["tag", str(lib / "a.wav"), "--index", str(idx), "--labels", "dog,rain"],
            "index": ["index", str(lib), "--index", str(idx), "-j", "0"],
            "serve": ["serve", "--index", str(idx), "--port", "0"]}


def _state(idx: Path) -> dict[str, bytes]:
    """What a command must not change: the catalog, the vectors and index.json."""
    return {p.name: p.read_bytes() for p in idx.iterdir()
            if p.name in ("catalog.db", "index.json") or p.suffix == ".faiss"}


def _one_clear_line(done, idx: Path, pattern: str) -> None:
    assert isinstance(done.exception, SystemExit), done.exception          # a traceback is another exception
    assert done.exit_code == 1, done.output
    said = " ".join(done.stderr.split())
    assert said.startswith("error: "), done.stderr
    assert re.search(rf"{re.escape(str(idx))}/{pattern}", said), said
    assert "Traceback" not in done.output and "sqlalchemy" not in said.lower()


@pytest.mark.parametrize("damage", list(CATALOG_DAMAGE))
def test_a_damaged_catalog_is_one_line_on_every_command_and_index_writes_nothing(built, tmp_path, damage):
    idx = _copy(built, tmp_path)
    make, pattern = CATALOG_DAMAGE[damage]
    make(idx)
    before = _state(idx)
    for name, args in _commands(built[0], idx).items():
        done = runner.invoke(app, args)
        _one_clear_line(done, idx, pattern)
        assert "restore it" in done.stderr or "upgrade" in done.stderr, (name, done.stderr)
    assert _state(idx) == before          # `index` made no new catalog over it, deleted no vectors


@pytest.mark.parametrize("damage", list(VECTORS_DAMAGE))
def test_a_damaged_vectors_file_names_it_and_the_rebuild_and_index_refuses_it(built, tmp_path, damage):
    idx = _copy(built, tmp_path)
    make, pattern = VECTORS_DAMAGE[damage]
    make(idx)
    before = _state(idx)
    for name, args in _commands(built[0], idx).items():
        if name == "info":             # reads the catalog alone: still answers what the index holds
            continue
        done = runner.invoke(app, args)
        _one_clear_line(done, idx, pattern)
        assert "--rebuild" in done.stderr, (name, done.stderr)
    assert _state(idx) == before


def test_the_rebuild_the_message_names_repairs_a_damaged_vectors_file(built, tmp_path, tiny_clap_dir):
    idx = _copy(built, tmp_path)
    _cut_half(_vectors(idx))
    done = runner.invoke(app, ["index", str(built[0]), "--index", str(idx), "--model", str(tiny_clap_dir),
                               "--rebuild", "-j", "0"])
    assert done.exit_code == 0, done.output
    assert runner.invoke(app, ["search", "dog", "--index", str(idx)]).exit_code == 0


@pytest.mark.parametrize("damage", ["overwritten by text", "vectors cut in half"])
def test_the_page_loader_raises_the_same_clear_error(built, tmp_path, damage):
    from engine.errors import IndexUnreadable
    from ui.components import server

    idx = _copy(built, tmp_path)
    make, pattern = {**CATALOG_DAMAGE, **VECTORS_DAMAGE}[damage]
    make(idx)
    with pytest.raises(IndexUnreadable, match=pattern):
        server.open_index(str(idx), None)
    from ui.components import resources          # what the page calls (ui.app.main shows the error)
    with pytest.raises(IndexUnreadable, match=pattern):
        resources.sound_index(str(idx), None)


def test_a_catalog_session_on_a_damaged_catalog_names_it(built, tmp_path):
    """The lowest shared place: every reader and writer opens the catalog through open_catalog."""
    from engine.catalog import catalog_session
    from engine.errors import IndexUnreadable

    idx = _copy(built, tmp_path)
    (idx / "catalog.db").write_text("not a database\n" * 100)
    with pytest.raises(IndexUnreadable, match=r"catalog\.db is not an SQLite database .* from a backup"):
        with catalog_session(idx):
            pass


def test_a_new_catalog_records_its_schema_version(tmp_path):
    from engine.catalog import SCHEMA_VERSION, catalog_session, get_meta, open_catalog

    open_catalog(tmp_path / "catalog.db", create=True).dispose()
    with catalog_session(tmp_path) as s:
        assert get_meta(s)["schema_version"] == SCHEMA_VERSION


def test_an_empty_catalog_alone_in_its_folder_is_still_made_anew_by_a_writer(tmp_path):
    """What a writer killed while an older soundsift made the tables left: no vectors, no
    index.json beside it, nothing to lose; the next index run's writer makes the catalog (as before)."""
    from engine.catalog import open_catalog

    (tmp_path / "catalog.db").write_bytes(b"")
    open_catalog(tmp_path / "catalog.db", create=True).dispose()
    with sqlite3.connect(tmp_path / "catalog.db") as con:
        assert con.execute("SELECT count(*) FROM sqlite_master WHERE name = 'meta'").fetchone() == (1,)


def test_a_log_left_by_a_crash_does_not_count_as_damage(built, tmp_path):
    """Junk -wal/-shm files (a crash, a sync tool) are SQLite's to ignore: searching goes on."""
    import os

    idx = _copy(built, tmp_path)
    (idx / "catalog.db-wal").write_bytes(os.urandom(5000))
    (idx / "catalog.db-shm").write_bytes(os.urandom(32768))
    done = runner.invoke(app, ["search", "dog", "--index", str(idx)])
    assert done.exit_code == 0, done.output
