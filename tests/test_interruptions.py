"""Indexing under interruption and refusal: SIGTERM, a full disk, a writer killed while it made
a new catalog, a commit whose tidying-up is refused.

The full disk is real where it can be without mounting anything: ``RLIMIT_FSIZE`` (in a child
process, SIGXFSZ ignored) makes the kernel refuse writes past a size with EFBIG, the same path
through the C library as ENOSPC; SQLite's ``max_page_count`` makes it answer SQLITE_FULL ("database
or disk is full") exactly as on a full disk.
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import faiss
import numpy as np
import pytest
from sqlalchemy import event, select

from engine.audio import AudioInfo
from engine.catalog import Base, File, SegmentRow, get_meta
from engine.errors import IndexNotFound
from engine.layout import IndexLayout
from engine.vectors import new_index, write_index_atomic
from indexer import build_index
from indexer.info import index_info
from indexer.interrupts import remembered
from indexer.runner import check_new_index_location
from indexer.write import Changes, IndexedFile, IndexWriter
from tests.conftest import catalog_session, chirp, write
from tests.index_fakes import FakeModel

ROOT = Path(__file__).resolve().parents[1]
N_FILES = 8
META = {"model_name": "fake", "model_fingerprint": "fake-v1", "dim": FakeModel.dim,
        "sample_rate": FakeModel.sample_rate, "segment_policy": {"window": 2.0}}


def run_child(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def added(path: str, n_segments: int, seed: int) -> IndexedFile:
    """A file to commit: ``n_segments`` random unit vectors."""
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n_segments, FakeModel.dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    info = AudioInfo(path, frames=16000 * n_segments, sample_rate=16000, channels=1, format="WAV",
                     subtype="PCM_16")
    return IndexedFile(path, 100 + seed, 1_000 + seed, info, float(n_segments),
                       [(float(i), float(i + 1)) for i in range(n_segments)], vecs)


def committed(idx: Path) -> tuple[dict, list[int], np.ndarray]:
    """The catalog's meta, its segment ids and the ids in the vectors file it names."""
    with catalog_session(idx) as s:
        meta = get_meta(s)
        seg_ids = list(s.scalars(select(SegmentRow.id).order_by(SegmentRow.id)))
    index = faiss.read_index(str(idx / meta["vectors_file"]))
    ids = np.sort(faiss.vector_to_array(index.id_map)) if index.ntotal else np.zeros(0, np.int64)
    return meta, seg_ids, ids


# -- the vectors file on a disk that fills up --------------------------------------------

WRITE_UNDER_LIMIT = """
import json, os, resource, signal, sys
import faiss, numpy as np
from engine.vectors import write_index_atomic
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)       # a refused write is EFBIG, not a killed process
folder = sys.argv[1]
index = faiss.IndexIDMap2(faiss.IndexFlatIP(64))
index.add_with_ids(np.random.default_rng(0).random((300, 64), dtype=np.float32), np.arange(300))
faiss.write_index(index, os.path.join(folder, "whole.faiss"))     # how long the file is
size = os.path.getsize(os.path.join(folder, "whole.faiss"))
target = os.path.join(folder, "vectors-000002.faiss")
resource.setrlimit(resource.RLIMIT_FSIZE, (size - int(sys.argv[2]), resource.RLIM_INFINITY))
try:
    write_index_atomic(index, target)
    out = {"raised": None}
except BaseException as e:
    out = {"raised": type(e).__name__, "errno": getattr(e, "errno", None),
           "filename": getattr(e, "filename", None)}
out["listing"] = sorted(os.listdir(folder))
out["target_size"] = os.path.getsize(target) if os.path.exists(target) else None
print(json.dumps(out))
"""


@pytest.mark.parametrize("short_by", [100, 40_000], ids=["last-flush", "mid-file"])
def test_vectors_write_refused_raises_oserror_and_leaves_no_file(tmp_path, short_by):
    """Refused 100 bytes before the end (when faiss's writer flushes its last buffer while closing
    the file) it printed the error and went on: a short file was renamed into place as the new
    generation, unreadable, and the commit deleted the previous one. Refused mid-file it raised a
    C++ RuntimeError, a traceback in the CLI, leaving the .tmp on the full disk."""
    r = run_child(WRITE_UNDER_LIMIT, str(tmp_path), str(short_by))
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["raised"] == "OSError", out
    assert out["errno"] == errno.EFBIG
    assert out["filename"] == str(tmp_path / "vectors-000002.faiss.tmp")
    assert out["listing"] == ["whole.faiss"] and out["target_size"] is None   # nothing half-written left


def test_vectors_write_round_trips(tmp_path):
    index = new_index(16)
    vecs = np.random.default_rng(1).random((50, 16), dtype=np.float32)
    index.add_with_ids(vecs, np.arange(100, 150))
    write_index_atomic(index, tmp_path / "v.faiss")
    back = faiss.read_index(str(tmp_path / "v.faiss"))
    assert back.ntotal == 50 and not list(tmp_path.glob("*.tmp"))
    np.testing.assert_array_equal(back.reconstruct(120), vecs[20])


# -- the catalog on a disk that fills up -------------------------------------------------

def full_after_now(writer: IndexWriter) -> None:
    """From now on every connection of ``writer`` finds the catalog file full (SQLITE_FULL)."""
    engine = writer.engine
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
    engine.dispose()

    @event.listens_for(engine, "connect")
    def _full(dbapi_conn, _record):
        dbapi_conn.execute(f"PRAGMA max_page_count={int(pages)}")


def test_catalog_full_is_oserror_and_the_new_vectors_file_goes(tmp_path):
    """SQLite's "database or disk is full" during step 2 was an SQLAlchemy OperationalError (a
    traceback in the CLI) and left the rolled-back generation's vectors file on the full disk."""
    idx = tmp_path / "idx"
    with IndexWriter(IndexLayout(idx)) as w:
        w.commit(Changes(add=[added(f"/lib/a{i}.wav", 2, i) for i in range(3)]), META)
        full_after_now(w)
        with pytest.raises(OSError) as caught:
            w.commit(Changes(add=[added(f"/lib/b{i:03d}.wav", 3, 10 + i) for i in range(300)]), META)
        assert caught.value.errno == errno.ENOSPC
        assert caught.value.filename == str(IndexLayout(idx).catalog)
        assert w.generation == 1
    assert sorted(p.name for p in idx.glob("vectors-*")) == ["vectors-000001.faiss"]
    meta, seg_ids, ids = committed(idx)
    assert meta["generation"] == 1 and seg_ids == ids.tolist() and len(seg_ids) == 6
    with IndexWriter(IndexLayout(idx)) as w:        # room again: the same work commits
        assert w.commit(Changes(add=[added("/lib/c.wav", 2, 99)]), META) == 2
    meta, seg_ids, ids = committed(idx)
    assert seg_ids == ids.tolist() and len(seg_ids) == 8


def test_refused_tidying_after_a_commit_does_not_fail_it(tmp_path, monkeypatch, caplog):
    """Step 3 (delete the previous generation's file, rewrite index.json) comes after the commit
    is durable; a refusal there (the folder made read-only mid-run, a full disk) stopped the run
    with an error naming the old file, as if the generation were lost."""
    idx = tmp_path / "idx"
    with IndexWriter(IndexLayout(idx)) as w:
        w.commit(Changes(add=[added("/lib/a.wav", 2, 1)]), META)

        def refused() -> None:
            raise OSError(errno.ENOSPC, "No space left on device", str(idx / "index.json.tmp"))
        monkeypatch.setattr(w, "write_index_json", refused)
        with caplog.at_level("WARNING"):
            assert w.commit(Changes(add=[added("/lib/b.wav", 3, 2)]), META) == 2
        assert "generation 2 is committed" in caplog.text and "no space left on device" in caplog.text
        monkeypatch.undo()
        assert w.commit(Changes(add=[added("/lib/c.wav", 1, 3)]), META) == 3
    meta, seg_ids, ids = committed(idx)
    assert meta["generation"] == 3 and seg_ids == ids.tolist() and len(seg_ids) == 6
    assert json.loads((idx / "index.json").read_text())["generation"] == 3


# -- a writer killed while it made a new catalog -----------------------------------------

def test_new_catalog_appears_with_its_tables_or_not_at_all(tmp_path, monkeypatch):
    """Killed between SQLite creating catalog.db and creating its tables, a first run left a
    catalog without tables: `info` and `search` then failed with a traceback ("no such table:
    meta") instead of saying there is no index yet."""
    idx = tmp_path / "idx"
    layout = IndexLayout(idx)

    def killed(bind, *args, **kwargs):          # SQLite has made the file, not yet the tables
        with bind.connect() as conn:
            conn.exec_driver_sql("CREATE TABLE half (x)")
            conn.commit()
        raise SystemExit("killed while making the tables")
    monkeypatch.setattr(Base.metadata, "create_all", killed)
    with pytest.raises(SystemExit):
        IndexWriter(layout).open()
    monkeypatch.undo()
    assert not layout.catalog.exists()
    with pytest.raises(IndexNotFound):
        index_info(str(idx))
    check_new_index_location(layout)            # what it left is soundsift's own, not foreign files
    with IndexWriter(layout) as w:              # and the next run makes the index there
        assert w.commit(Changes(add=[added("/lib/a.wav", 2, 1)]), META) == 1
    assert not list(idx.glob("catalog.db.new*"))
    assert index_info(str(idx))["counts"]["files"] == 1


# -- SIGTERM ------------------------------------------------------------------------------

#: an indexing run that commits only at its end (so finished files live in memory), one decoder
#: process, one segment a model call; it touches "<log>.embedded-<n>" after each call and writes
#: its summary beside the log when it is interrupted. SIGTERM is Python's default (end at once).
TERM_SCRIPT = """
import json, pathlib, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_DFL)
from indexer import build_index
from indexer.runner import IndexInterrupted
from tests.index_fakes import FakeModel

class Marking(FakeModel):
    def embed_audio(self, waveforms):
        out = super().embed_audio(waveforms)
        pathlib.Path(f"{sys.argv[3]}.embedded-{len(self.calls)}").touch()
        return out

try:
    build_index([sys.argv[1]], sys.argv[2], Marking(delay=0.3), workers=1, batch_size=1,
                checkpoint_files=10_000, checkpoint_seconds=10_000, progress=False)
except IndexInterrupted as e:
    pathlib.Path(sys.argv[3] + ".summary.json").write_text(json.dumps(e.summary.to_dict()))
    raise
pathlib.Path(sys.argv[3] + ".done").touch()
"""


@pytest.fixture
def library(tmp_path) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir()
    for i in range(N_FILES):                    # 1.0–1.7 s: one segment each
        write(lib / f"f{i}.wav", chirp(200 + 150 * i, 900 + 150 * i, 1.0 + 0.1 * i, 16000), 16000)
    return lib.resolve()


def test_sigterm_commits_the_finished_files_like_ctrl_c(library, tmp_path):
    """``kill PID`` (and ``timeout``, a service manager, a container stopping) ended a one-shot
    run at once, like kill -9: every file embedded since the last checkpoint was thrown away,
    without a message. It now stops as Ctrl-C does: what is finished is committed and said."""
    idx, log_path = tmp_path / "idx", tmp_path / "term.log"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open(log_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", TERM_SCRIPT, str(library), str(idx), str(log_path)],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    third = Path(f"{log_path}.embedded-3")      # files 1 and 2 are finished (one decoder: in order)
    deadline = time.monotonic() + 120
    while not third.exists():
        assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-2000:]
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    log = log_path.read_text()
    assert proc.returncode != 0 and not Path(f"{log_path}.done").exists(), log[-2000:]
    summary_path = Path(f"{log_path}.summary.json")
    assert summary_path.exists(), f"no summary: the run was ended on the spot (exit {proc.returncode})"
    summary = json.loads(summary_path.read_text())
    assert summary["interrupted"] is True and "run the same command again" in log
    meta, seg_ids, ids = committed(idx)
    kept = summary["totals"]["files"]
    assert 2 <= kept < N_FILES and summary["added"] == kept and meta["counts"]["files"] == kept
    assert seg_ids == ids.tolist() and len(seg_ids) == kept
    s = build_index([library], idx, FakeModel(), workers=0, progress=False)
    assert s.added == N_FILES - kept and s.unchanged == kept
    meta, seg_ids, ids = committed(idx)
    with catalog_session(idx) as sess:
        paths = sorted(sess.scalars(select(File.path)))
    assert paths == sorted(str(p) for p in library.iterdir()) and seg_ids == ids.tolist()


def test_a_sigterm_handler_of_its_own_is_left_alone():
    """A program embedding the indexer may set its own SIGTERM handler, "finish the
    run, then stop"; an ignored SIGTERM stays ignored. Only Python's default is taken over, and
    only while the run works."""
    before = signal.getsignal(signal.SIGTERM)
    try:
        def own(signum, frame):
            pass
        for handler in (own, signal.SIG_IGN):
            signal.signal(signal.SIGTERM, handler)
            with remembered():
                assert signal.getsignal(signal.SIGTERM) is handler
            assert signal.getsignal(signal.SIGTERM) is handler
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        with remembered():
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, before)
