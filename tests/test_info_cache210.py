"""``GET /info`` reads ``soundsift info --json``'s part of its answer once per catalog state
(helper 210, session 41).

Since session 41 /info carried every key of ``info --json`` (engine.catalog_info.catalog_info), read
again on every request: ~150 ms a request on a 40,000-file index, which a dashboard polling /info
paid each time. engine.query_catalog.catalog_summary now keeps that part with the catalog
connection, until SQLite says another connection committed (``PRAGMA data_version``) or index.json
or the vectors file changed; these tests hold it to never serving an answer older than a commit.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import engine.catalog_info
from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import tone, write
from tests.index_fakes import FakeModel
from tests.test_http_info_schema198 import built  # noqa: F401 (the fixture: two sounds and a broken file)
from tests.test_server import get, serving

ROOT = Path(__file__).resolve().parents[1]
SR = 16_000




@pytest.fixture
def counted(monkeypatch) -> list[int]:
    """engine.catalog_info.catalog_info, counting its calls (one list item each)."""
    calls: list[int] = []
    summary = engine.catalog_info.catalog_info

    def counting(*args, **kwargs):
        calls.append(1)
        return summary(*args, **kwargs)

    monkeypatch.setattr(engine.catalog_info, "catalog_info", counting)
    return calls


def _info(url: str) -> dict:
    status, body, _ = get(f"{url}/info")
    assert status == 200, body
    assert isinstance(body, dict)
    return body


def test_a_second_info_with_nothing_changed_reads_the_catalog_once(built, counted):
    lib, idx = built
    with SoundIndex.open(idx, model=FakeModel()) as index, serving(index) as url:
        first = _info(url)
        second = _info(url)
        third = _info(url)
    assert len(counted) == 1, f"catalog_info ran {len(counted)} times for 3 requests with nothing changed"
    assert first == second == third
    assert first["counts"]["files"] == 2 and first["latest_errors"][0]["path"] == str(lib / "broken.wav")


def test_a_changed_answer_is_never_the_callers_to_spoil(built, counted):
    """What info(full=True) returns is the caller's: changing it changes no later answer."""
    _, idx = built
    with SoundIndex.open(idx, model=FakeModel()) as index:
        first = index.info(full=True)
        expected = json.loads(json.dumps(first))
        first["counts"]["files"] = 99
        first["formats"].clear()
        assert index.info(full=True) == expected
    assert len(counted) == 1


def test_a_tag_added_by_another_process_shows_in_the_next_info(built, counted):
    lib, idx = built
    with SoundIndex.open(idx, model=FakeModel()) as index, serving(index) as url:
        before = _info(url)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run([sys.executable, "-m", "ui.cli", "tags", "add", "whoosh", str(lib / "beep.wav"),
                               "--index", str(idx)], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        after = _info(url)
    assert after["version"] != before["version"]            # the tag's commit is a new state
    assert len(counted) == 2, "the catalog was not read again after another process's commit"
    with sqlite3.connect(idx / "catalog.db") as db:
        assert db.execute("SELECT label FROM tags").fetchall() == [("whoosh",)]


def test_rows_changed_by_another_program_show_without_any_stamp(built, counted):
    """A program that changes rows and stamps nothing in the meta table (so the index's version
    stays): the next /info reads the catalog again all the same."""
    lib, idx = built
    with SoundIndex.open(idx, model=FakeModel()) as index, serving(index) as url:
        before = _info(url)
        with sqlite3.connect(idx / "catalog.db") as other:
            other.execute("UPDATE files SET format = 'AIFF' WHERE path = ?", (str(lib / "beep.wav"),))
            other.execute("DELETE FROM errors")
        after = _info(url)
        again = _info(url)
    assert "AIFF" not in {f["format"] for f in before["formats"]} and before["latest_errors"]
    assert "AIFF" in {f["format"] for f in after["formats"]}
    assert after["latest_errors"] == [] and after["counts"]["errors"] == after["errors"] == 0
    assert after == again
    assert len(counted) == 2


def test_an_index_run_shows_in_the_next_info(built, counted):
    lib, idx = built
    with SoundIndex.open(idx, model=FakeModel()) as index, serving(index) as url:
        before = _info(url)
        write(lib / "hum.wav", tone(120, 2.0, SR), SR)
        build_index([lib], idx, FakeModel(), workers=0, progress=False)
        after = _info(url)
    assert (before["counts"]["files"], after["counts"]["files"]) == (2, 3)
    assert after["generation"] > before["generation"]
    assert after["vectors_file"] != before["vectors_file"] and after["vectors_bytes"]
    assert len(counted) == 2


def test_index_json_changed_beside_the_catalog_shows_in_the_next_info(built, counted):
    _, idx = built
    with SoundIndex.open(idx, model=FakeModel()) as index, serving(index) as url:
        before = _info(url)
        doc = json.loads((idx / "index.json").read_text())
        doc["versions"] = {"soundsift": "0.0-test"}
        (idx / "index.json").write_text(json.dumps(doc))
        after = _info(url)
    assert before["versions"] != {"soundsift": "0.0-test"} and after["versions"] == {"soundsift": "0.0-test"}
    assert len(counted) == 2
