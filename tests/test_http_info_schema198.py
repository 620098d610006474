"""``soundsift serve`` agrees with the CLI, and a catalog changed in place answers 503 (helper 198,
session 41).

* ``GET /info`` answered ``files``/``model`` where ``soundsift info --json`` has ``counts.files``/
  ``model_name`` and more: it now carries every key of ``info --json`` too (its old keys kept), all
  read in one transaction.
* ``GET /audio/ID`` read the file's record and its indexed size/mtime (the 409 check) in two catalog
  reads: a re-index committing between them paired the old record with the new state.
* a catalog still SQLite but changed in place while served (a table dropped, a column renamed by
  another program) was a 500 with a traceback; now the 503 "index unreadable" answer of a damaged
  catalog, and answered again once restored, without a restart.
* tests.query_fixtures.write_index and benchmarks/query.py recorded no vectors length in their commit.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

import engine.catalog_info
import engine.query_catalog
from engine.catalog import catalog_session, get_meta
from engine.file_state import state_now
from engine.query import SoundIndex
from engine.vectors import LENGTH_KEY, LENGTH_OF_KEY, recorded_length
from indexer import build_index
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from tests.query_fixtures import FakeModel as QueryFakeModel
from tests.query_fixtures import FileSpec, write_index
from tests.test_server import get, serving
from ui.cli import app

ROOT = Path(__file__).resolve().parents[1]
SR = 16_000
runner = CliRunner()


@pytest.fixture
def built(tmp_path) -> tuple[Path, Path]:
    """(library, index) of two sounds and a file that could not be indexed, by the fake model."""
    lib = (tmp_path / "lib").resolve()
    write(lib / "beep.wav", tone(880, 3.0, SR), SR)
    write(lib / "hiss.wav", noise(2.0, SR, seed=3), SR)
    (lib / "broken.wav").write_bytes(b"RIFF not really a wave file")
    idx = (tmp_path / "idx").resolve()
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    return lib, idx


def _request(url: str) -> tuple[int, dict, dict]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


# --- /info carries every key of `soundsift info --json` -----------------------------------------

def test_info_route_has_every_key_of_info_json_with_its_value_and_keeps_its_own(built, monkeypatch):
    lib, idx = built
    monkeypatch.chdir(idx.parent)                   # served as ./idx: `index` is the absolute folder all the same
    result = runner.invoke(app, ["info", "--index", "./idx", "--json"])
    assert result.exit_code == 0, result.output
    cli = json.loads(result.stdout)
    with SoundIndex.open("./idx", model=FakeModel()) as index, serving(index) as url:
        status, served, _ = get(f"{url}/info")
    assert status == 200
    assert set(cli) <= set(served), set(cli) - set(served)
    # the one name the two use differently: the old /info counts errors, as clients read it
    assert {k: served[k] for k in cli if k != "errors"} == {k: v for k, v in cli.items() if k != "errors"}
    assert served["latest_errors"] == cli["errors"] and cli["errors"][0]["path"] == str(lib / "broken.wav")
    # the old keys, as they were
    assert (served["files"], served["segments"], served["errors"]) == (
        cli["counts"]["files"], cli["counts"]["segments"], cli["counts"]["errors"]) == (2, served["vectors"], 1)
    assert (served["model"], served["fingerprint"]) == (cli["model_name"], cli["model_fingerprint"])
    assert served["index"] == str(idx) and served["version"]


def test_info_reads_its_old_keys_and_the_cli_ones_in_one_transaction(built, monkeypatch):
    """A commit landing while /info is read (here: an error row added just before the `info --json`
    part is read) is seen by neither part, so its counts agree."""
    lib, idx = built
    summary = engine.catalog_info.catalog_info

    def commit_first(s, layout, errors_limit=20):
        with sqlite3.connect(idx / "catalog.db") as other:
            other.execute("INSERT INTO errors (path, reason, at) VALUES (?, ?, ?)", (str(lib / "late.wav"), "late", 1.0))
        return summary(s, layout, errors_limit)

    monkeypatch.setattr(engine.catalog_info, "catalog_info", commit_first)
    with SoundIndex.open(idx, model=FakeModel()) as index:
        info = index.info(full=True)
        assert info["errors"] == info["counts"]["errors"] == len(info["latest_errors"]) == 1
        assert index.info()["errors"] == 2          # the commit is there for the next read


# --- /audio reads the record and its indexed state at once -------------------------------------

def test_audio_compares_the_record_with_the_state_read_with_it(built, monkeypatch):
    """The file is cut shorter on disk, and a re-index's commit of its new size and mtime lands
    just after its record is read: the record (3 s) and the state must be of one commit, so the
    answer is the 409 of a changed file, not a span of the new file served by the old record."""
    lib, idx = built
    path = lib / "beep.wav"
    with SoundIndex.open(idx, model=FakeModel()) as index, serving(index) as url:
        file_id = index.file_id_for_path(str(path))
        write(path, tone(880, 1.0, SR), SR)                 # 1 s now; the catalog says 3 s
        size, mtime = state_now(path)
        record = engine.query_catalog.get_file
        committed = []

        def reindexed_after(conn, root, fid):
            found = record(conn, root, fid)
            if not committed:
                with sqlite3.connect(idx / "catalog.db") as other:
                    other.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE id = ?", (size, mtime, fid))
                committed.append(fid)
            return found

        monkeypatch.setattr(engine.query_catalog, "get_file", reindexed_after)
        status, body, kind = get(f"{url}/audio/{file_id}?start=0&end=3")
        assert committed == [file_id]
        assert (status, kind) == (409, "application/json"), (status, body if status != 200 else body[:44])
        assert body["error"].startswith(f"{path}: changed since it was indexed"), body


# --- a catalog whose tables change in place -----------------------------------------------------

def _drop_segments(catalog: Path) -> None:
    with sqlite3.connect(catalog) as other:
        other.execute("DROP TABLE segments")


def _rename_start(catalog: Path) -> None:
    with sqlite3.connect(catalog) as other:
        other.execute("ALTER TABLE segments RENAME COLUMN start TO begin_at")


@pytest.mark.parametrize("change, said, routes", [
    (_drop_segments, "no such table: segments", ("/files/1", "/info")),
    (_rename_start, "no such column: segments.start", ("/files/1",))])      # (/info counts rows alone)
def test_serve_answers_a_catalog_changed_in_place_with_a_503_and_recovers(built, change, said, routes, caplog):
    lib, idx = built
    catalog = idx / "catalog.db"
    kept = sqlite3.connect(":memory:")
    with SoundIndex.open(idx, model=FakeModel()) as index, serving(index) as url:
        status, before, _ = _request(f"{url}/files/1")
        assert status == 200 and before["segments"]
        with sqlite3.connect(catalog) as live:
            live.backup(kept)                       # what a backup holds
        change(catalog)                             # another process, another connection
        with caplog.at_level(logging.WARNING, logger="ui.server"):
            for route in routes:
                status, body, headers = _request(url + route)
                assert status == 503, (route, body)
                assert body["error"].startswith(f"{catalog} is not a catalog this soundsift reads any more ("), body
                assert said in body["error"] and "restore it" in body["error"], body
                assert "sqlalchemy" not in body["error"].lower() and headers.get("Retry-After")
        logged = [r for r in caplog.records if r.name == "ui.server"]
        assert logged and all(r.exc_info is None and "catalog.db" in r.getMessage() for r in logged)
        with sqlite3.connect(catalog) as live:
            kept.backup(live)                       # restored in place, through SQLite
        status, after, _ = _request(f"{url}/files/1")
        assert status == 200 and after == before
        assert _request(f"{url}/info")[0] == 200
    kept.close()


def test_a_query_s_own_unknown_table_is_not_taken_for_a_changed_catalog(built):
    """Only tables and columns of soundsift's schema count as lost: an unknown name is the query's
    mistake, and stays SQLAlchemy's error."""
    from sqlalchemy.exc import OperationalError
    lib, idx = built
    with SoundIndex.open(idx, model=FakeModel()) as index, index._read() as conn:
        with pytest.raises(OperationalError, match="no such table: nonesuch"):
            conn.exec_driver_sql("SELECT * FROM nonesuch")


# --- indexes written by the test fixture and the benchmark record their vectors' length --------

def test_write_index_records_the_vectors_length_as_the_indexer_does(tmp_path):
    import numpy as np
    write_index(tmp_path / "idx", [FileSpec("/lib/a.wav", np.eye(4, dtype=np.float32)[:2])])
    with catalog_session(tmp_path / "idx") as s:
        meta = get_meta(s)
    vectors = tmp_path / "idx" / meta["vectors_file"]
    assert meta[LENGTH_OF_KEY] == vectors.name
    assert recorded_length(meta) == meta[LENGTH_KEY] == vectors.stat().st_size


def test_the_query_benchmark_s_index_records_the_vectors_length(tmp_path):
    spec = importlib.util.spec_from_file_location("benchmark_query198", ROOT / "benchmarks" / "query.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.build(tmp_path / "idx", 30, QueryFakeModel())
    with catalog_session(tmp_path / "idx") as s:
        meta = get_meta(s)
    vectors = tmp_path / "idx" / meta["vectors_file"]
    assert meta[LENGTH_OF_KEY] == vectors.name
    assert recorded_length(meta) == meta[LENGTH_KEY] == vectors.stat().st_size
