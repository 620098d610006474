"""Crash safety: SIGKILL at 10 seeded random moments, and Ctrl-C (SIGINT).

Each round changes the library (rewrites, deletes, additions; seeded), starts an indexing
process that commits after every file, and kills it with SIGKILL at a random moment after
its imports (scan, decode, embed, or in the middle of a commit); every other round waits for
the run's first commit first, so some kills land after one on a machine however loaded. The
run knows the moment too, and starts no model call and no commit after it: on a loaded machine
the kill may land late, but never after the run has ended (it waits for the kill). After every kill the
index must open as one committed generation: FAISS ids == catalog segment ids, counts in
meta == rows, every file's segments follow the policy and its vectors are the model's
embedding of the content that was committed. A final run completes with every file on
disk exactly once, and a second one finds nothing to do.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import faiss
import numpy as np
import pytest
from sqlalchemy import select

from engine.audio import iter_segments
from engine.catalog import ErrorRow, File, SegmentRow, get_meta
from engine.layout import IndexLayout
from engine.query import SoundIndex
from engine.segments import SegmentPolicy
from indexer import build_index
from tests.conftest import catalog_session, chirp, noise, write
from tests.index_fakes import FakeModel

ROOT = Path(__file__).resolve().parents[1]
N_FILES = 12
KILLS = 10
SEED = 20240601

#: the run a test interrupts: marks "ready" after its imports and "done" at the end (in
#: files: decoder processes inherit stdout, so a pipe would stay open after a SIGKILL);
#: slow model calls (argv[4] seconds each), one decoder process, a commit after every file.
#: argv[5], the moment the test kills at (see :func:`start`): "" none, "ready+S" S seconds after
#: "ready", "commit+S" S seconds after the run's first commit. From then on a model call or a
#: commit waits for the kill (and says so in the log): the run cannot end before the kill lands.
#: An interrupted run writes its summary beside the log (".summary.json").
#: Ctrl-C raises KeyboardInterrupt in it as in a terminal, even when the test runner itself was
#: started with SIGINT ignored (a background job without job control passes SIG_IGN on).
SCRIPT = """
import json, pathlib, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from indexer import build_index
from indexer.runner import IndexInterrupted
from indexer.write import IndexWriter
from tests.index_fakes import FakeModel
after, _, seconds = sys.argv[5].partition("+")
due = [None]

def wait_for_the_kill(what):
    if due[0] is not None and time.monotonic() >= due[0]:
        print(f"kill due: {what} waits for it", file=sys.stderr, flush=True)
        time.sleep(120)

class Held(FakeModel):
    def embed_audio(self, waveforms):
        wait_for_the_kill("a model call")
        return super().embed_audio(waveforms)

real_commit = IndexWriter.commit
def commit(self, *args, **kwargs):
    wait_for_the_kill("a commit")
    generation = real_commit(self, *args, **kwargs)
    if after == "commit" and due[0] is None:
        due[0] = time.monotonic() + float(seconds)
    return generation
IndexWriter.commit = commit

if after == "ready":
    due[0] = time.monotonic() + float(seconds)
pathlib.Path(sys.argv[3] + ".ready").touch()
try:
    build_index([sys.argv[1]], sys.argv[2], Held(delay=float(sys.argv[4])), workers=1, batch_size=2,
                checkpoint_files=1, progress=False)
except IndexInterrupted as e:
    pathlib.Path(sys.argv[3] + ".summary.json").write_text(json.dumps(e.summary.to_dict()))
    raise
pathlib.Path(sys.argv[3] + ".done").touch()
"""


def sound(rng: np.random.Generator, sr: int) -> np.ndarray:
    seconds = float(rng.uniform(0.5, 4.5))
    f0 = float(rng.uniform(80, 2000))
    return chirp(f0, f0 * 3, seconds, sr) + noise(seconds, sr, seed=int(rng.integers(1 << 30)), amp=0.05)


def write_file(path: Path, rng: np.random.Generator) -> None:
    sr = int(rng.choice([16000, 22050, 44100]))
    write(path, sound(rng, sr), sr)


def mutate(lib: Path, rng: np.random.Generator, round_no: int) -> None:
    """Rewrite about half the files, delete one, add one (new content ⇒ new size and mtime)."""
    files = sorted(lib.iterdir())
    for p in rng.choice(files, size=len(files) // 2, replace=False):
        write_file(Path(p), rng)
    Path(rng.choice(files)).unlink()
    write_file(lib / f"r{round_no:02d}.{'wav' if round_no % 2 else 'flac'}", rng)


def start(lib: Path, idx: Path, log: Path, delay: float = 0.2, kill_at: str = "") -> subprocess.Popen:
    """Start an indexing process (``delay`` s per model call) and return once its imports are done.
    ``kill_at``: when the test kills it ("ready+S" or "commit+S"; SCRIPT), or "" (never: it runs
    to its end unless interrupted)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(lib), str(idx), str(log), str(delay), kill_at],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    ready = Path(str(log) + ".ready")
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.01)
    return proc


def generation(idx: Path) -> int:
    if not IndexLayout(idx).catalog.exists():
        return 0
    with catalog_session(idx) as s:
        return int(get_meta(s).get("generation", 0))


def wait_for_a_commit(idx: Path, before: int, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    """Return once the index's generation is past ``before``: the run ``proc`` has committed."""
    deadline = time.monotonic() + timeout
    while generation(idx) <= before:
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended or never committed"
        time.sleep(0.01)


def finished(log: Path) -> bool:
    return Path(str(log) + ".done").exists()


def check_consistent(idx: Path, lib: Path) -> dict[str, int]:
    """One committed generation, whole: returns path → number of segments."""
    layout = IndexLayout(idx)
    if not layout.catalog.exists():           # killed before the index was created (a loaded machine)
        assert not layout.root.exists() or not layout.vector_files()
        return {}
    with catalog_session(idx) as s:
        meta = get_meta(s)
        files = {f.id: (f.path, f.size, f.mtime_ns) for f in s.scalars(select(File))}
        segs = s.execute(select(SegmentRow.id, SegmentRow.file_id, SegmentRow.start, SegmentRow.end)
                         .order_by(SegmentRow.id)).all()
        n_errors = len(list(s.scalars(select(ErrorRow.id))))
    if not meta.get("vectors_file"):          # killed before the first commit
        assert not files and not segs
        return {}
    index = faiss.read_index(str(layout.root / meta["vectors_file"]))
    stored = np.sort(faiss.vector_to_array(index.id_map)) if index.ntotal else np.zeros(0, np.int64)
    assert stored.tolist() == [s.id for s in segs]
    assert meta["counts"]["files"] == len(files) and meta["counts"]["segments"] == len(segs)
    assert meta["counts"]["errors"] == n_errors
    by_file: dict[int, list] = {}
    for seg in segs:
        by_file.setdefault(seg.file_id, []).append(seg)
    model = FakeModel()
    policy = SegmentPolicy(window=model.window_seconds)
    for fid, (path, size, mtime) in files.items():
        rows = by_file.get(fid, [])
        assert rows, f"{path} has no segments"
        st = os.stat(path) if os.path.exists(path) else None
        if st is None or (st.st_size, st.st_mtime_ns) != (size, mtime):
            continue                           # changed on disk since: the next run's job
        want = list(iter_segments(path, model.sample_rate, policy))
        assert [x for r in rows for x in (r.start, r.end)] == pytest.approx(
            [x for w in want for x in (w.start, w.end)])
        got = np.stack([index.reconstruct(int(r.id)) for r in rows])
        np.testing.assert_allclose(got, model.embed_audio([w.waveform for w in want]), atol=1e-5)
    with SoundIndex.open(idx, model=FakeModel()) as si:   # and a reader opens it
        assert si.info()["vectors"] == len(segs)
    return {files[fid][0]: len(v) for fid, v in by_file.items()}


@pytest.fixture
def library(tmp_path) -> Path:
    lib = tmp_path / "lib"
    lib.mkdir()
    rng = np.random.default_rng(SEED)
    for i in range(N_FILES):
        write_file(lib / f"f{i:02d}.{'wav' if i % 2 else 'flac'}", rng)
    return lib.resolve()


def test_sigkill_at_ten_random_moments_then_rerun_completes(library, tmp_path):
    idx = tmp_path / "idx"
    rng = np.random.default_rng(SEED)
    moments = rng.uniform(0.0, 1.2, KILLS)           # seconds after the process is ready
    killed_mid_work = advanced = 0
    for i, delay in enumerate(moments):
        before = generation(idx)
        if i:
            mutate(library, rng, i)
        log = tmp_path / f"kill{i}.log"
        if i % 2:       # after the run's first commit, however long a loaded machine takes to it
            proc = start(library, idx, log, kill_at=f"commit+{delay / 10}")
            wait_for_a_commit(idx, before, proc)
            time.sleep(delay / 10)
        else:           # (0.171 s of these: before any commit, which follows a 0.2 s model call)
            proc = start(library, idx, log, kill_at=f"ready+{delay}")
            time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        killed_mid_work += not finished(log)
        check_consistent(idx, library)
        advanced += generation(idx) > before
    assert killed_mid_work == KILLS                  # every kill landed before the run ended
    assert 0 < advanced < KILLS                      # some after a commit, some before any

    s = build_index([library], idx, FakeModel(), workers=1, progress=False)
    assert s.failed == 0
    segments = check_consistent(idx, library)
    assert sorted(segments) == sorted(str(p) for p in library.iterdir())   # each file once
    layout = IndexLayout(idx)
    assert layout.vector_files() == [layout.vectors_file(s.generation)]   # orphans gone
    assert not list(layout.root.glob("*.tmp"))
    again = build_index([library], idx, FakeModel(), workers=1, progress=False)
    assert (again.added, again.updated, again.removed) == (0, 0, 0)
    assert again.unchanged == len(segments)


def test_ctrl_c_commits_finished_files_and_stops(library, tmp_path):
    idx = tmp_path / "idx"
    log_path = tmp_path / "int.log"
    # 1 s per model call: the rest of the run takes many seconds after the first commit, so
    # the SIGINT lands mid-run even when this process is descheduled for a while (once, under
    # a loaded full suite, the whole run finished before it at 0.2 s per call)
    proc = start(library, idx, log_path, delay=1.0)
    layout = IndexLayout(idx)
    deadline = time.monotonic() + 30
    while not layout.index_json.exists() and time.monotonic() < deadline:
        time.sleep(0.02)                              # the first commit has happened
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    log = log_path.read_text()
    assert proc.returncode != 0 and not finished(log_path), log[-2000:]
    assert "interrupted" in log and "run the same command again" in log
    segments = check_consistent(idx, library)
    assert 0 < len(segments) < N_FILES
    assert not any(IndexLayout(idx).root.glob("*.tmp"))
    summary = json.loads(Path(str(log_path) + ".summary.json").read_text())   # what was kept, said
    assert summary["interrupted"] is True
    assert summary["added"] == summary["totals"]["files"] == len(segments)
    assert summary["generation"] == generation(idx) and summary["failed"] == 0
    s = build_index([library], idx, FakeModel(), workers=1, progress=False)
    assert s.added == N_FILES - len(segments) and s.unchanged == len(segments)
    assert sorted(check_consistent(idx, library)) == sorted(str(p) for p in library.iterdir())
