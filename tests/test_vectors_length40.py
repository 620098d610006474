"""A vectors file cut short, whatever its index type (helper 187, session 40).

faiss's memory-mapped reader crashed the process (SIGSEGV, faiss 1.15.1) on an IVF file
(``IVF…,Flat``, ``IVF…,SQ8``, ``OPQ…,IVF…,PQ…``) cut inside a header field of its inverted lists
(a few bytes before or after their ``ilar`` tag, past the coarse quantizer: not a file small
enough to be read whole), and loaded one cut inside its last ids; the length check helper 180 made
(engine.vectors._safe_to_map) reads ``IDMap2,Flat`` headers only. Every commit now records the
length of the file it wrote (the catalog's ``vectors_bytes_written``) and every reader compares it
before faiss sees the file: `search`/`serve`/the page (engine.query_snapshot), `info`, the writer.
Readers run in a child process, so a crash fails a test instead of ending the run.
"""
from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

from engine.index_choice import IndexChoice
from engine.layout import IndexLayout
from indexer.info import index_info
from indexer.write import Changes, IndexWriter
from tests.test_index_retrain import META, files

ROOT = Path(__file__).resolve().parents[1]
KEY = "vectors_bytes_written"

#: index types the indexer builds for large libraries, with a coarse quantizer (64 lists of 32
#: floats: 8 KiB) that puts the inverted lists' header past what is read whole (4 KiB)
TYPES = {"ivf-flat": "IVF64,Flat", "ivf-sq8": "IVF64,SQ8"}


def _commit(root: Path, kind: str, add=(), errors=None) -> dict:
    choice = IndexChoice(factory=TYPES[kind], kind=kind, nlist=64, train_size=3000, params={"nprobe": 8})
    with IndexWriter(IndexLayout(root), chooser=lambda *a, **k: choice) as w:
        w.commit(Changes(add=list(add), errors=dict(errors or {})), META)
        return dict(w.meta)


@pytest.fixture(scope="module", params=list(TYPES))
def built(request, tmp_path_factory) -> Path:
    """An index of 3000 vectors of one IVF type, written by the indexer's own writer."""
    root = tmp_path_factory.mktemp(request.param) / "idx"
    meta = _commit(root, request.param, files("a", 300, 10, seed=1))
    assert meta["faiss_factory"] == TYPES[request.param]
    return root


@pytest.fixture
def idx(built, tmp_path) -> Path:
    copy = tmp_path / "idx"
    shutil.copytree(built, copy)
    return copy


def _vectors(idx: Path) -> Path:
    return next(idx.glob("vectors-*.faiss"))


def _cuts(path: Path) -> dict[str, int]:
    """Where to cut: inside the field before the inverted lists' tag, inside their code size
    (both crashed faiss's memory-mapped reader), inside the last id (which it loaded)."""
    data = path.read_bytes()
    lists = data.find(b"ilar")
    assert lists > 4096, lists
    return {"before the lists": lists - 5, "in the lists' header": lists + 14, "in the last id": len(data) - 3}


READ = """
import sys
from pathlib import Path
from engine.errors import IndexUnreadable
reader, root = sys.argv[1], Path(sys.argv[2])
try:
    if reader == "search":              # search, serve and the page: SoundIndex's snapshot
        from engine.query import SoundIndex
        SoundIndex.open(root).refresh()
    else:                               # the writer of `soundsift index`
        from engine.layout import IndexLayout
        from indexer.write import IndexWriter
        IndexWriter(IndexLayout(root)).open()
except IndexUnreadable as e:
    print(e)
    sys.exit(1)
print("read")
"""


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def _named(path: Path, cut: int) -> str:
    return rf"{re.escape(str(path))} cannot be read as FAISS vectors \({cut} bytes: truncated or overwritten\?\)"


def test_a_commit_records_the_length_of_the_file_it_wrote(built):
    meta = index_info(built)
    assert meta[KEY] == _vectors(built).stat().st_size == meta["vectors_bytes"]


@pytest.mark.parametrize("where", ["before the lists", "in the lists' header", "in the last id"])
@pytest.mark.parametrize("reader", ["search", "writer"])
def test_a_vectors_file_cut_short_is_one_line_not_a_crash(idx, reader, where):
    path = _vectors(idx)
    cut = _cuts(path)[where]
    path.write_bytes(path.read_bytes()[:cut])
    done = _run(["-c", READ, reader, str(idx)])
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr[-2000:])
    assert re.fullmatch(_named(path, cut) + r": restore it .* --rebuild`\n", done.stdout), done.stdout


@pytest.mark.parametrize("where", ["in the lists' header", "in the last id"])
def test_info_on_a_cut_vectors_file_exits_1_with_one_line(idx, where):
    path = _vectors(idx)
    cut = _cuts(path)[where]
    path.write_bytes(path.read_bytes()[:cut])
    done = _run(["-m", "ui.cli", "info", "--index", str(idx), "--json"])
    assert done.returncode == 1, (done.returncode, done.stderr[-2000:])
    assert re.match(_named(path, cut), json.loads(done.stdout)["error"])
    said = [line for line in done.stderr.splitlines() if line.strip()]
    assert said[0].startswith("error: ") and re.search(_named(path, cut), " ".join(done.stderr.split())), said
    assert "Traceback" not in done.stderr


def test_a_file_grown_since_its_commit_is_unreadable_too(idx):
    path = _vectors(idx)
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\0" * 16)
    done = _run(["-c", READ, "search", str(idx)])
    assert done.returncode == 1 and re.match(_named(path, size + 16), done.stdout), done.stdout


def test_an_index_committed_before_lengths_were_recorded_reads_as_before(idx):
    with sqlite3.connect(IndexLayout(idx).catalog) as db:
        db.execute("DELETE FROM meta WHERE key = ?", (KEY,))
    assert index_info(idx)[KEY] is None
    for reader in ("search", "writer"):
        done = _run(["-c", READ, reader, str(idx)])
        assert (done.returncode, done.stdout) == (0, "read\n"), (reader, done.stdout, done.stderr[-2000:])
    info = _run(["-m", "ui.cli", "info", "--index", str(idx), "--json"])
    assert info.returncode == 0 and "error" not in json.loads(info.stdout), info.stderr[-2000:]


def test_a_commit_of_error_rows_alone_keeps_the_file_and_its_length(idx):
    before = index_info(idx)
    kind = next(k for k, f in TYPES.items() if f == before["faiss_factory"])
    _commit(idx, kind, errors={"/lib/broken.wav": "not audio"})
    after = index_info(idx)
    assert (after["vectors_file"], after[KEY]) == (before["vectors_file"], before[KEY])
    assert after["counts"]["errors"] == before["counts"]["errors"] + 1


def test_write_index_atomic_returns_the_bytes_it_wrote(tmp_path):
    from engine.vectors import new_index, write_index_atomic
    index = new_index(8)
    index.add_with_ids(np.eye(8, dtype=np.float32), np.arange(8, dtype=np.int64))
    path = tmp_path / "v.faiss"
    assert write_index_atomic(index, path) == path.stat().st_size == len(faiss.serialize_index(index))
