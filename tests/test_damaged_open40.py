"""A damaged index, the leftovers of session 39 (helper 180, session 40):

* `soundsift info` on an index whose vectors file is missing, emptied, cut short or overwritten
  printed what the catalog holds and exited 0, so a script could not tell; it still prints that,
  then the one line naming the file, exit 1 (`--json`: still parseable, with an "error").
* `make demo` (ui/demo.py) on a damaged or half-written index.json gave json's traceback.
* a catalog emptied, cut short or overwritten *in place* while `soundsift serve` or the page held
  the index open surfaced SQLAlchemy's DatabaseError (a 500 with a logged traceback, the page's
  exception); now a 503 with the JSON error naming the file (the page: one message), and once the
  file is restored the next request is answered again, without a restart.
* the damaged index in a folder that cannot be written (chmod 555, read by a process without
  root's permission override) had no test.
* found on the way: a vectors file cut inside a header field crashed the process reading it
  (faiss's memory-mapped reader, SIGSEGV: `serve` and the page with it), and one cut inside its
  last id was read as whole; both are named as any other cut-short vectors file.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import chirp, noise, tone, write
from tests.index_fakes import FakeModel, drop_read_override
from tests.test_damaged_catalog39 import _cut_half, _vectors
from tests.test_server import serving
from ui.cli import app

ROOT = Path(__file__).resolve().parents[1]
SR = 16_000
runner = CliRunner()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """(library, index of its three files) made with the fake model (no torch)."""
    base = tmp_path_factory.mktemp("damaged40")
    lib = (base / "lib").resolve()
    write(lib / "door_slam.wav", noise(1.5, SR, seed=1), SR)
    write(lib / "creak.wav", chirp(200, 900, 2.0, SR), SR)
    write(lib / "beep.wav", tone(880, 3.0, SR), SR)
    build_index([lib], base / "idx", FakeModel(), workers=0, progress=False)
    return lib, base / "idx"


@pytest.fixture
def idx(built, tmp_path) -> Path:
    """A copy of the built index, to damage."""
    copy = tmp_path / "idx"
    shutil.copytree(built[1], copy)
    return copy


#: damage to the catalog done in place (same file: what an open engine keeps reading), and the
#: words naming it
CATALOG_DAMAGE = {
    "emptied": (lambda cat: cat.write_bytes(b""), r"catalog\.db is (empty \(0 bytes|damaged \(database disk)"),
    "cut in half": (_cut_half, r"catalog\.db is damaged \(database disk image is malformed"),
    "overwritten by text": (lambda cat: cat.write_text("not a database\n" * 100),
                            r"catalog\.db is (not an SQLite database|damaged \(database disk)"),
}

VECTORS_DAMAGE = {
    "missing": (lambda v: v.unlink(), r"vectors-\d+\.faiss is missing"),
    "emptied": (lambda v: v.write_bytes(b""), r"vectors-\d+\.faiss cannot be read as FAISS vectors \(0 bytes"),
    "cut in half": (_cut_half, r"vectors-\d+\.faiss cannot be read as FAISS vectors \(\d+ bytes"),
    "overwritten": (lambda v: v.write_text("not faiss"), r"vectors-\d+\.faiss cannot be read as FAISS"),
}


# --- info on damaged vectors ---------------------------------------------------------------

@pytest.mark.parametrize("damage", list(VECTORS_DAMAGE))
def test_info_on_damaged_vectors_shows_the_catalog_then_fails_naming_the_file(idx, damage):
    make, pattern = VECTORS_DAMAGE[damage]
    make(_vectors(idx))
    done = runner.invoke(app, ["info", "--index", str(idx)])
    assert isinstance(done.exception, SystemExit) and done.exit_code == 1, done.output
    said = " ".join(done.stderr.split())
    assert said.startswith("error: ") and re.search(rf"{re.escape(str(idx))}/{pattern}", said), said
    assert "--rebuild" in said and "Traceback" not in done.output
    assert re.search(r"files\s+│\s+3", done.stdout), done.stdout          # what the catalog holds, still shown
    assert ("(missing)" if damage == "missing" else ", unreadable)") in done.stdout

    as_json = runner.invoke(app, ["info", "--index", str(idx), "--json"])
    assert as_json.exit_code == 1, as_json.output
    info = json.loads(as_json.stdout)                   # parseable, and says what is wrong
    assert info["counts"]["files"] == 3
    assert re.search(pattern, info["error"]) and info["error"] in " ".join(as_json.stderr.split())


def test_info_on_a_sound_index_has_no_error_and_exits_0(idx):
    done = runner.invoke(app, ["info", "--index", str(idx), "--json"])
    assert done.exit_code == 0, done.output
    assert "error" not in json.loads(done.stdout)
    assert "unreadable" not in runner.invoke(app, ["info", "--index", str(idx)]).stdout


# --- the demo's index.json -----------------------------------------------------------------

@pytest.mark.parametrize("written", ['{"model_name": "soundsift-ba', "", "[1, 2]"])
def test_the_demo_names_a_damaged_index_json_in_one_line(tmp_path, monkeypatch, capsys, written):
    from engine.layout import INDEX_HOME_ENV
    from ui import demo

    monkeypatch.setenv(INDEX_HOME_ENV, str(tmp_path / "home"))
    folder = tmp_path / "home" / "demo"
    folder.mkdir(parents=True)
    (folder / "index.json").write_text(written)
    monkeypatch.setattr(demo, "generate", lambda: [])
    ran: list[list[str]] = []
    monkeypatch.setattr(demo, "_run", ran.append)
    with pytest.raises(SystemExit) as stopped:
        demo.main([])
    assert stopped.value.code == 1 and ran == []          # nothing indexed over it
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {folder / 'index.json'} cannot be read ("), err
    assert f"delete the folder {folder}" in err[0]


def test_the_demo_stops_with_a_failed_command_s_status_and_no_traceback(monkeypatch, capfd):
    from ui import demo

    monkeypatch.setattr(sys, "executable", shutil.which("false") or "/bin/false")
    with pytest.raises(SystemExit) as stopped:
        demo._run(["info"])
    assert stopped.value.code == 1
    assert "Traceback" not in capfd.readouterr().err


# --- a catalog damaged while serve holds it open ---------------------------------------------

def _request(url: str) -> tuple[int, dict | list, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, json.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), dict(e.headers)


@pytest.mark.parametrize("damage", list(CATALOG_DAMAGE))
def test_serve_answers_a_catalog_damaged_in_place_with_a_503_naming_it_and_recovers(idx, damage, caplog):
    make, pattern = CATALOG_DAMAGE[damage]
    catalog = idx / "catalog.db"
    good = catalog.read_bytes()
    with SoundIndex.open(idx, model=FakeModel()) as index, serving(index) as url:
        status, before, _ = _request(f"{url}/search?q=door&k=3")
        assert status == 200 and len(before) == 3
        make(catalog)
        with caplog.at_level(logging.WARNING, logger="ui.server"):
            for route in ("/search?q=door&k=3", "/info", "/files/1"):
                status, body, headers = _request(url + route)
                assert status == 503, (route, body)
                assert re.search(rf"{re.escape(str(idx))}/{pattern}", body["error"]), body
                assert "restore it" in body["error"] and "sqlalchemy" not in body["error"].lower()
                assert headers.get("Retry-After")
        logged = [r for r in caplog.records if r.name == "ui.server"]
        assert logged and all(r.exc_info is None and "catalog.db" in r.getMessage() for r in logged)
        catalog.write_bytes(good)                   # restored in place: answered again, no restart
        status, after, _ = _request(f"{url}/search?q=door&k=3")
        assert status == 200 and [h["path"] for h in after] == [h["path"] for h in before]


def test_a_catalog_swapped_for_a_damaged_file_is_named_too(idx):
    """Not in place: a new file moved over it (a new inode, which the live catalog reopens)."""
    from engine.errors import IndexUnreadable

    with SoundIndex.open(idx, model=FakeModel()) as index:
        good = (idx / "catalog.db").read_bytes()
        (idx / "bad").write_text("not a database\n" * 100)
        os.replace(idx / "bad", idx / "catalog.db")
        with pytest.raises(IndexUnreadable, match=r"catalog\.db is not an SQLite database"):
            index.search_text("door")
        (idx / "good").write_bytes(good)
        os.replace(idx / "good", idx / "catalog.db")
        assert len(index.search_text("door", k=3)) == 3


# --- a catalog damaged while the page holds it open ------------------------------------------

@pytest.fixture(scope="module")
def page_index(tmp_path_factory, tiny_clap_dir) -> Path:  # noqa: F811
    """An index of two files made with the tiny CLAP model, which the page loads by itself."""
    base = tmp_path_factory.mktemp("page40")
    write(base / "lib" / "beep.wav", tone(880, 1.5, SR), SR)
    write(base / "lib" / "hiss.wav", noise(1.5, SR, seed=2), SR)
    build_index([base / "lib"], base / "index", model=str(tiny_clap_dir), workers=0, progress=False)
    return base / "index"


def test_the_page_shows_one_message_for_a_catalog_damaged_in_place_and_recovers(page_index, tmp_path, monkeypatch):
    from tests.ui_library import page_on

    copy = tmp_path / "index"
    shutil.copytree(page_index, copy)
    catalog = copy / "catalog.db"
    good = catalog.read_bytes()
    app_test = page_on(copy, monkeypatch).run()
    assert not app_test.exception and not app_test.error
    catalog.write_text("not a database\n" * 100)
    app_test.run()
    assert not app_test.exception, [e.value for e in app_test.exception]
    assert len(app_test.error) == 1, [e.value for e in app_test.error]
    said = app_test.error[0].value
    assert re.search(rf"{re.escape(str(copy))}/catalog\.db is (not an SQLite database|damaged)", said), said
    assert "restore it" in said
    catalog.write_bytes(good)
    app_test.run()
    assert not app_test.exception and not app_test.error


# --- a damaged index in a folder that cannot be written -----------------------------------------

CHILD = """
import errno, json, sys
from pathlib import Path
from typer.testing import CliRunner
from ui.cli import app
out = {}
for folder in sys.argv[1:]:
    try:                              # the folder really cannot be written by this process
        (Path(folder) / "probe").touch()
        out[folder] = "writable"
        continue
    except PermissionError:
        pass
    out[folder] = {name: [done.exit_code, " ".join(done.stderr.split()), type(done.exception).__name__]
                   for name, done in ((name, CliRunner().invoke(app, [*args, "--index", folder]))
                                      for name, args in {"info": ["info"], "search": ["search", "a door"],
                                                         "tags": ["tags", "list"]}.items())}
print(json.dumps(out))
"""


def _newer_schema(cat: Path) -> None:
    with sqlite3.connect(cat) as con:
        con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', '99')")
    con.close()


READ_ONLY_DAMAGE = {
    "catalog emptied": (lambda idx: (idx / "catalog.db").write_bytes(b""), r"catalog\.db is empty \(0 bytes"),
    "catalog cut in half": (lambda idx: _cut_half(idx / "catalog.db"), r"catalog\.db is damaged \(database disk"),
    "catalog overwritten": (lambda idx: (idx / "catalog.db").write_text("not a database\n" * 100),
                            r"catalog\.db is not an SQLite database"),
    "catalog newer": (lambda idx: _newer_schema(idx / "catalog.db"),
                      r"catalog\.db was written by a newer soundsift \(catalog schema 99"),
    "vectors missing": (lambda idx: _vectors(idx).unlink(), r"vectors-\d+\.faiss is missing"),
    "vectors overwritten": (lambda idx: _vectors(idx).write_text("not faiss"),
                            r"vectors-\d+\.faiss cannot be read as FAISS"),
}


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_a_damaged_index_in_a_folder_that_cannot_be_written(built, tmp_path):
    """chmod 555, read by a child process without root's permission override (any user, root
    too: tests.index_fakes.drop_read_override), so the catalog is opened the read-only way
    (engine.catalog._read_only_engine): every damage is still named, exit 1, nothing written."""
    folders = {}
    for damage, (make, _) in READ_ONLY_DAMAGE.items():
        folders[damage] = tmp_path / damage.replace(" ", "_")
        shutil.copytree(built[1], folders[damage])
        make(folders[damage])
    before = {damage: _listing(folder) for damage, folder in folders.items()}
    for folder in folders.values():
        folder.chmod(0o555)
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, *map(str, folders.values())], cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
                              preexec_fn=drop_read_override, timeout=300)
    finally:
        for folder in folders.values():
            folder.chmod(0o755)
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    for damage, folder in folders.items():
        pattern = READ_ONLY_DAMAGE[damage][1]
        answers = got[str(folder)]
        assert answers != "writable"
        for command, (code, said, raised) in answers.items():
            if command == "tags" and damage.startswith("vectors"):     # reads the catalog alone: answers
                assert code == 0, (damage, said)
                continue
            assert (code, raised) == (1, "SystemExit"), (damage, command, said)
            assert said.startswith("error: ") and re.search(rf"{re.escape(str(folder))}/{pattern}", said), \
                (damage, command, said)
            assert "read-only" not in said, (damage, command, said)     # the damage, not the folder, is named
        assert _listing(folder) == before[damage], damage


# --- a vectors file cut inside its header ---------------------------------------------------

CUT_HEADER = """
import sys
import numpy as np
from engine import vectors
from engine.errors import IndexUnreadable
index = vectors.new_index(8)
index.add_with_ids(np.eye(8, dtype="float32")[:3], np.arange(3, dtype="int64"))
vectors.write_index_atomic(index, sys.argv[1])
data = open(sys.argv[1], "rb").read()
open(sys.argv[1], "wb").write(data[:int(sys.argv[2])])
try:
    vectors.check_readable(sys.argv[1])
except IndexUnreadable as e:
    print(e)
"""


@pytest.mark.parametrize("cut", [28, 65])
def test_a_vectors_file_cut_inside_its_header_is_named_not_a_crash(tmp_path, cut):
    """faiss's memory-mapped reader crashed the process (SIGSEGV: serve and the page with it) on a
    file cut inside a header field (an IDMap2,Flat file at bytes 25–31 or 62–68); run in a child
    so that a crash fails this test instead of ending the run."""
    path = tmp_path / "vectors-000001.faiss"
    done = subprocess.run([sys.executable, "-c", CUT_HEADER, str(path), str(cut)], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert re.match(rf"{re.escape(str(path))} cannot be read as FAISS vectors \({cut} bytes", done.stdout), done.stdout


CUT_TAIL = """
import sys
import numpy as np
from engine import vectors
from engine.errors import IndexUnreadable
index = vectors.new_index(64)
index.add_with_ids(np.random.default_rng(0).standard_normal((40, 64)).astype("float32"), np.arange(40, dtype="int64"))
vectors.write_index_atomic(index, sys.argv[1])
data = open(sys.argv[1], "rb").read()
vectors.check_readable(sys.argv[1])                   # whole, it reads
open(sys.argv[1], "wb").write(data[:-int(sys.argv[2])])
try:
    vectors.check_readable(sys.argv[1])
except IndexUnreadable as e:
    print(e)
"""


@pytest.mark.parametrize("short_by", [3, 7])
def test_a_vectors_file_cut_inside_its_last_id_is_named_not_read(tmp_path, short_by):
    """faiss's memory-mapped reader loaded such a file (its last id read past the end), so
    searches went on from it."""
    path = tmp_path / "vectors-000001.faiss"
    done = subprocess.run([sys.executable, "-c", CUT_TAIL, str(path), str(short_by)], cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert re.match(rf"{re.escape(str(path))} cannot be read as FAISS vectors \(\d+ bytes", done.stdout), done.stdout
