"""An index in a folder that cannot be written (a read-only mount or share, a folder the user may
not write): every read answers as on a writable copy, every write is refused with IndexReadOnly
and nothing on disk changes.

Root writes through permissions, and these tests may run as root, so most of them make the
folder read-only at the OS boundary (:func:`make_read_only`: ``os.access`` says it cannot be
written, and opening, creating, replacing or removing anything in it from Python fails with
EROFS, as on a read-only mount), while SQLite reads the real files: a catalog opened the usual
way would create its -shm and -wal there, which the before/after listing of the folder (names,
sizes, times, contents, and the folder's own time) catches. Two tests use a real unwritable
folder: one chmods it and runs a child process without root's permission override (it runs for
any user); one bind-mounts it read-only, the audit's repro, only where root may mount.
"""
from __future__ import annotations

import builtins
import errno
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from typer.testing import CliRunner

from engine.catalog import open_catalog, read_only_mode
from engine.errors import IndexReadOnly
from engine.layout import IndexLayout
from engine.query import SoundIndex
from indexer import build_index
from indexer.info import index_info
from indexer.metadata_sheet import import_sheet
from indexer.relocate import relocate
from indexer.user_tags import add_tags, remove_tags, tag_counts
from indexer.write import IndexWriter
from tests.conftest import chirp, noise, tone, write
from tests.index_fakes import FakeModel, drop_read_override
from ui.cli import app

ROOT = Path(__file__).resolve().parents[1]
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


# --- the library, its index, and what reading it gives -------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """(library, index) of four files, one with a user tag and one described by a sheet."""
    base = tmp_path_factory.mktemp("readonly")
    lib = (base / "lib").resolve()
    write(lib / "beep.wav", tone(1000, 1.0, 16000), 16000)
    write(lib / "hum.wav", tone(120, 2.0, 16000), 16000)
    write(lib / "sweep.wav", chirp(200, 4000, 3.0, 16000), 16000)
    write(lib / "room" / "hiss.wav", noise(2.5, 16000, seed=3, amp=0.1), 16000)
    idx = base / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    add_tags(idx, [lib / "beep.wav"], ["favourite"])
    sheet = base / "sheet.csv"
    sheet.write_text("File,Description\nhum.wav,a low mains hum\n")
    import_sheet(idx, sheet)
    return lib, idx


@pytest.fixture
def copies(built, tmp_path) -> tuple[Path, Path, Path]:
    """(library, writable copy, copy to make read-only) of the built index, times kept."""
    lib, idx = built
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    shutil.copytree(idx, rw)
    shutil.copytree(idx, ro)
    return lib, rw, ro


def answers(idx: Path, lib: Path) -> dict[str, Any]:
    """What reading the index gives: info (catalog and SoundIndex), a text search, "more like
    this", the user's tags and a keyword search (through the tags and the sheet's words)."""
    with SoundIndex.open(idx, model=FakeModel()) as si:
        info = {k: v for k, v in si.info().items() if k != "index"}
        search = [(h.path, round(h.score, 6)) for h in si.search_text("a beep", k=4)]
        similar = [(h.path, round(h.score, 6)) for h in si.similar_to_file(lib / "sweep.wav", k=4)]
        keywords = [h.path for h in si.search_text("mains hum favourite", k=2, keywords=True)]
    return {"info": info, "catalog_info": {k: v for k, v in index_info(idx).items() if k != "index"},
            "search": search, "similar": similar, "tags": tag_counts(idx), "keywords": keywords}


def disk_state(folder: Path) -> dict[str, Any]:
    """Every entry of ``folder`` (name → size, modification time, SHA-256) and the folder's own
    modification time, which a file created and removed again changes too."""
    state: dict[str, Any] = {".": folder.stat().st_mtime_ns}
    for p in sorted(folder.iterdir()):
        st = p.stat()
        state[p.name] = (st.st_size, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return state


# --- a folder made read-only at the OS boundary --------------------------------------------

def _inside(path: Any, folder: str) -> bool:
    """Whether ``path`` (as given: a symlink to the folder is another path) lies in ``folder``."""
    if isinstance(path, int):
        return False
    p = os.path.abspath(os.fsdecode(os.fspath(path)))
    return p == folder or p.startswith(folder + os.sep)


def _refuse(path: Any) -> OSError:
    return OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(os.fspath(path)))


def make_read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Make ``folder`` behave as on a read-only mount for this process's Python code."""
    where = os.path.abspath(folder)
    real_access, real_os_open, real_open, real_statvfs = os.access, os.open, builtins.open, os.statvfs

    def access(path: Any, mode: int, *args: Any, **kw: Any) -> bool:
        if mode & os.W_OK and _inside(path, where):
            return False
        return real_access(path, mode, *args, **kw)

    def os_open(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if flags & WRITE_FLAGS and _inside(path, where):
            raise _refuse(path)
        return real_os_open(path, flags, *args, **kw)

    def open_(file: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
        if any(c in mode for c in "wax+") and _inside(file, where):
            raise _refuse(file)
        return real_open(file, mode, *args, **kw)

    def statvfs(path: Any) -> os.statvfs_result:
        found = real_statvfs(path)
        if not _inside(path, where):
            return found
        fields = list(found)
        fields[8] |= os.ST_RDONLY                    # f_flag: mounted read-only
        return os.statvfs_result(fields)

    def refusing(real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*paths: Any, **kw: Any) -> Any:
            for p in paths:
                if _inside(p, where):
                    raise _refuse(p)
            return real(*paths, **kw)
        return call

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "statvfs", statvfs)
    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)
    for name in ("mkdir", "unlink", "remove", "rmdir", "replace", "rename", "truncate", "utime"):
        monkeypatch.setattr(os, name, refusing(getattr(os, name)))


def refused_writes(lib: Path, idx: Path, tmp: Path) -> dict[str, str]:
    """Each write soundsift offers, tried on ``idx``: name → the IndexReadOnly message (or what
    else happened, which the tests reject)."""
    sheet = tmp / "refused.csv"
    sheet.write_text("File,Description\nbeep.wav,a short beep\n")
    (tmp / "moved").mkdir(exist_ok=True)
    shutil.copy(lib / "beep.wav", tmp / "moved" / "beep.wav")
    write(tmp / "new_lib" / "new.wav", tone(700, 1.0, 16000), 16000)
    writes: dict[str, Callable[[], Any]] = {
        "index": lambda: build_index([lib, tmp / "new_lib"], idx, FakeModel(), workers=0, progress=False),
        "rebuild": lambda: build_index([lib], idx, FakeModel(), workers=0, progress=False, rebuild=True),
        "tags add": lambda: add_tags(idx, [lib / "hum.wav"], ["loud"]),
        "tags remove": lambda: remove_tags(idx, [lib / "beep.wav"], ["favourite"]),
        "sheet import": lambda: import_sheet(idx, sheet),
        "relocate": lambda: relocate(idx, lib, tmp / "moved"),
        "writer": lambda: IndexWriter(IndexLayout(idx)).open(),
    }
    out = {}
    for name, attempt in writes.items():
        try:
            attempt()
            out[name] = "written"
        except IndexReadOnly as e:
            out[name] = str(e)
        except Exception as e:      # reported, and rejected by the callers' assertions
            out[name] = f"{type(e).__name__}: {e}"
    return out


def assert_refused(refused: dict[str, str], idx: Path, why: str) -> None:
    """Every write was refused, saying which folder, ``why`` and what was not written."""
    start = f"index {idx}: the folder is read-only ({why}; cannot write .lock); "
    for name, message in refused.items():
        assert message.startswith(start), (name, message)


# --- simulated read-only folder ------------------------------------------------------------

def test_reads_answer_as_on_a_writable_copy_and_write_nothing(copies, monkeypatch):
    lib, rw, ro = copies
    expected = answers(rw, lib)
    assert expected["tags"] == {"favourite": 1} and len(expected["search"]) == 4
    assert expected["keywords"][0] in (str(lib / "hum.wav"), str(lib / "beep.wav"))
    make_read_only(monkeypatch, ro)
    before = disk_state(ro)
    assert answers(ro, lib) == expected
    assert disk_state(ro) == before


def test_the_catalog_is_opened_immutable_without_a_log(copies, monkeypatch):
    """No -wal: immutable, no -shm or -wal made; a folder name SQLite's URI must escape is read."""
    _, _, plain = copies
    ro = plain.rename(plain.with_name("share ?#%20 drive"))
    make_read_only(monkeypatch, ro)
    before = disk_state(ro)
    engine = open_catalog(IndexLayout(ro).catalog)
    try:
        assert read_only_mode(engine) == "immutable"
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM files").scalar() == 4
            with pytest.raises(Exception, match="readonly database"):
                conn.exec_driver_sql("DELETE FROM tags")
    finally:
        engine.dispose()
    assert disk_state(ro) == before


def test_a_catalog_with_a_writer_is_read_through_its_log(copies, monkeypatch):
    """A writer with the catalog open (through another path) leaves a -wal: the reader must read
    it (``mode=ro``), not ignore it as an immutable one would, and see each commit."""
    _, _, ro = copies
    writer = sqlite3.connect(IndexLayout(ro).catalog)
    try:
        writer.execute("DELETE FROM tags")
        writer.commit()
        make_read_only(monkeypatch, ro)
        engine = open_catalog(IndexLayout(ro).catalog)
        try:
            assert read_only_mode(engine) == "ro"
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SELECT count(*) FROM tags").scalar() == 0
            writer.execute("DELETE FROM files WHERE path LIKE '%hiss.wav'")
            writer.commit()
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SELECT count(*) FROM files").scalar() == 3
        finally:
            engine.dispose()
    finally:
        writer.close()


def test_an_open_index_follows_a_writer_through_another_path(copies, monkeypatch, tmp_path):
    """A read-only view (here: the folder's own path) of a folder written through another (a
    symlink): the reader opened immutable reopens when the writer changed the catalog."""
    lib, _, ro = copies
    other_path = tmp_path / "writable_path"
    other_path.symlink_to(ro, target_is_directory=True)
    make_read_only(monkeypatch, ro)
    with SoundIndex.open(ro, model=FakeModel()) as si:
        assert read_only_mode(si._catalog.engine) == "immutable"
        assert si.info()["files"] == 4
        write(tmp_path / "more" / "new.wav", tone(700, 1.0, 16000), 16000)
        build_index([lib, tmp_path / "more"], other_path, FakeModel(), workers=0, progress=False)
        assert si.info()["files"] == 5
        assert str(tmp_path / "more" / "new.wav") in [h.path for h in si.search_text("beep", k=5)]


def test_writes_are_refused_and_change_nothing(copies, monkeypatch, tmp_path):
    lib, _, ro = copies
    make_read_only(monkeypatch, ro)
    before = disk_state(ro)
    refused = refused_writes(lib, ro, tmp_path)
    assert set(refused) == {"index", "rebuild", "tags add", "tags remove", "sheet import", "relocate", "writer"}
    assert_refused(refused, ro, "read-only file system")
    assert disk_state(ro) == before
    sheet = tmp_path / "refused.csv"
    assert import_sheet(ro, sheet, dry_run=True).dry_run        # a dry run only reads: it works
    assert disk_state(ro) == before


def test_a_new_index_in_a_read_only_folder_is_refused(tmp_path, monkeypatch):
    parent = tmp_path / "share"
    parent.mkdir()
    write(tmp_path / "lib" / "a.wav", tone(440, 1.0, 16000), 16000)
    make_read_only(monkeypatch, parent)
    with pytest.raises(IndexReadOnly, match=rf"index {parent / 'idx'}: cannot create its folder \(read-only"):
        build_index([tmp_path / "lib"], parent / "idx", FakeModel(), workers=0, progress=False)
    assert list(parent.iterdir()) == []


def test_cli_reads_work_and_writes_fail_with_one_line(copies, monkeypatch):
    lib, rw, ro = copies
    runner = CliRunner()
    expected = runner.invoke(app, ["info", "--index", str(rw), "--json"])
    assert expected.exit_code == 0, expected.output
    make_read_only(monkeypatch, ro)
    before = disk_state(ro)
    info = runner.invoke(app, ["info", "--index", str(ro), "--json"])
    assert info.exit_code == 0, info.output
    assert {**json.loads(info.stdout), "index": None} == {**json.loads(expected.stdout), "index": None}
    listed = runner.invoke(app, ["tags", "list", "--index", str(ro), "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout) == [{"tag": "favourite", "files": 1}], listed.output
    for args in (["tags", "add", "loud", str(lib / "hum.wav")], ["index", str(lib)]):
        result = runner.invoke(app, [*args, "--index", str(ro)])
        assert result.exit_code == 1, result.output
        assert result.stderr.strip().splitlines() == [
            f"error: index {ro}: the folder is read-only (read-only file system; cannot write .lock); "
            "searching it works, but to change it copy it to a folder you can write, or index into one"]
        assert "Traceback" not in result.output
    assert disk_state(ro) == before


# --- a real unwritable folder ---------------------------------------------------------------

CHILD = """
import json, sys
from pathlib import Path
from tests.test_index_readonly import answers, refused_writes
idx, lib, tmp = (Path(a) for a in sys.argv[1:4])
print(json.dumps({"answers": answers(idx, lib), "refused": refused_writes(lib, idx, tmp)}))
"""


def test_a_folder_without_write_permission(copies, tmp_path):
    """chmod 555, read and written by a process without root's permission override (any user)."""
    lib, rw, ro = copies
    expected = json.loads(json.dumps(answers(rw, lib)))          # as JSON gives it back
    before = disk_state(ro)
    ro.chmod(0o555)
    try:
        r = subprocess.run([sys.executable, "-c", CHILD, str(ro), str(lib), str(tmp_path)], cwd=ROOT,
                           env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True,
                           preexec_fn=drop_read_override, timeout=300)
    finally:
        ro.chmod(0o755)
    assert r.returncode == 0, r.stderr[-3000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["answers"] == expected
    assert len(got["refused"]) == 7
    assert_refused(got["refused"], ro, "no write permission")
    assert disk_state(ro) == before


@pytest.fixture
def bind_mounted(copies, tmp_path):
    """The read-only copy bind-mounted read-only (root and a usable ``mount`` only)."""
    lib, rw, ro = copies
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a read-only bind mount needs root and mount(8); the simulated tests cover this")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run(["mount", "--bind", str(ro), str(mnt)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here ({done.stderr.strip()}); the simulated tests cover this")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(mnt)], check=True, capture_output=True)
        yield lib, rw, mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_a_read_only_bind_mount(bind_mounted, tmp_path):
    """The audit's repro: root, a read-only mount (no -shm or -wal there, none can be made)."""
    lib, rw, mnt = bind_mounted
    with pytest.raises(OSError) as refused:
        (mnt / "probe").touch()
    assert refused.value.errno == errno.EROFS
    with pytest.raises(sqlite3.OperationalError, match="unable to open database file"):
        sqlite3.connect(f"file:{IndexLayout(mnt).catalog}?mode=ro", uri=True).execute("SELECT 1 FROM meta")
    before = disk_state(mnt)
    assert answers(mnt, lib) == answers(rw, lib)
    refused = refused_writes(lib, mnt, tmp_path)
    assert len(refused) == 7
    assert_refused(refused, mnt, "read-only file system")
    assert disk_state(mnt) == before
