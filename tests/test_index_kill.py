"""Crash safety: an indexing process killed with SIGKILL leaves a complete, readable index,
and a re-run finishes the work with every file exactly once."""
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
from sqlalchemy.orm import Session

from engine.audio import decode
from engine.catalog import File, SegmentRow, get_meta, open_catalog
from engine.layout import IndexLayout
from engine.segments import SegmentPolicy, segment_bounds
from indexer import build_index
from tests.conftest import chirp, noise, write
from tests.index_fakes import FakeModel

ROOT = Path(__file__).resolve().parents[1]
N_FILES = 14

#: the run a test kills: slow model calls, one decoder process, a commit every 2 files
SCRIPT = """
import sys
from indexer import build_index
from tests.index_fakes import FakeModel
build_index([sys.argv[1]], sys.argv[2], FakeModel(delay=0.15), workers=1, batch_size=2,
            checkpoint_files=2, progress=False)
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    lib = tmp_path_factory.mktemp("killlib")
    for i in range(N_FILES):
        sr = (16000, 22050, 44100)[i % 3]
        x = chirp(100 + 50 * i, 4000, 1.5 + 0.5 * (i % 4), sr) + noise(1.5 + 0.5 * (i % 4), sr, seed=i, amp=0.05)
        write(lib / f"f{i:02d}.{'wav' if i % 2 else 'flac'}", x, sr)
    return lib.resolve()


def committed_state(idx: Path) -> tuple[int, dict[str, list[tuple[int, float, float]]], faiss.Index]:
    """(generation, path → segments, vectors) as a reader sees the index right now."""
    layout = IndexLayout(idx)
    eng = open_catalog(layout.catalog)
    with Session(eng) as s:
        meta = get_meta(s)
        rows = s.execute(select(File.path, SegmentRow.id, SegmentRow.start, SegmentRow.end)
                         .join(SegmentRow).order_by(SegmentRow.id)).all()
    eng.dispose()
    files: dict[str, list[tuple[int, float, float]]] = {}
    for path, sid, a, b in rows:
        files.setdefault(path, []).append((sid, a, b))
    index = faiss.read_index(str(layout.root / meta["vectors_file"]))
    return int(meta["generation"]), files, index


def assert_complete(idx: Path, expected_segments: dict[str, int]) -> dict[str, list]:
    """Every indexed file has exactly its policy's segments, and vectors == segments."""
    _, files, index = committed_state(idx)
    for path, segs in files.items():
        assert len(segs) == expected_segments[path], path
    ids = sorted(sid for segs in files.values() for sid, _, _ in segs)
    stored = np.sort(faiss.vector_to_array(index.id_map)) if index.ntotal else np.zeros(0, np.int64)
    assert stored.tolist() == ids
    return files


@pytest.fixture(scope="module")
def expected_segments(library) -> dict[str, int]:
    m = FakeModel()
    policy = SegmentPolicy(window=m.window_seconds)
    return {str(p): len(segment_bounds(len(decode(p, m.sample_rate)), m.sample_rate, policy))
            for p in sorted(library.iterdir())}


def index_json_generation(layout: IndexLayout) -> int:
    try:
        return int(json.loads(layout.index_json.read_text())["generation"])
    except (OSError, ValueError, KeyError):
        return 0


def run_and_kill(library: Path, idx: Path, after_generation: int, log: Path) -> None:
    """Start an indexing process; SIGKILL it once ``after_generation`` is committed."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    layout = IndexLayout(idx)
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(library), str(idx)], cwd=ROOT,
                                env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            while proc.poll() is None and index_json_generation(layout) < after_generation:
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the run ended before the kill: {log.read_text()[-2000:]}"


def test_sigkill_mid_run_then_rerun_completes(library, expected_segments, tmp_path):
    idx = tmp_path / "idx"
    for after in (1, 3):                     # kill once after each of two checkpoints
        run_and_kill(library, idx, after, tmp_path / f"kill{after}.log")
        gen, files, _ = committed_state(idx)
        assert gen >= after
        assert 0 < len(files) < N_FILES      # killed mid-run: some files, not all
        assert_complete(idx, expected_segments)
    run_and_kill(library, idx, 0, tmp_path / "kill0.log")   # kill right after start: nothing new committed
    assert_complete(idx, expected_segments)

    s = build_index([library], idx, FakeModel(), workers=1, progress=False)
    assert s.failed == 0 and s.removed == 0 and s.added + s.unchanged == N_FILES
    files = assert_complete(idx, expected_segments)
    assert sorted(files) == sorted(expected_segments)          # every file, exactly once
    layout = IndexLayout(idx)
    assert layout.vector_files() == [layout.vectors_file(s.generation)]   # orphans gone
    assert not list(layout.root.glob("*.tmp"))
    again = build_index([library], idx, FakeModel(), workers=1, progress=False)
    assert (again.added, again.updated, again.unchanged) == (0, 0, N_FILES)
