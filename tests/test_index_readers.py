"""Readers during a writer: searches keep answering while another process indexes.

An indexing process (build_index, a commit after every file) adds files, then updates
half of them, while this process searches the same index in a loop with one SoundIndex.
Every answer must come from one committed generation: no error, vectors == segments in
the snapshot, every hit names a file of the library and a segment the catalog holds.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from sqlalchemy import select

from engine.catalog import SegmentRow, get_meta
from engine.filters import Filters
from engine.layout import IndexLayout
from engine.query import SoundIndex
from tests.conftest import catalog_session, chirp, noise, write
from tests.index_fakes import FakeModel

ROOT = Path(__file__).resolve().parents[1]
N_FILES = 16

SCRIPT = """
import sys
from indexer import build_index
from tests.index_fakes import FakeModel
build_index([sys.argv[1]], sys.argv[2], FakeModel(delay=0.05), workers=1, batch_size=2,
            checkpoint_files=1, progress=False)
"""


def make_library(lib: Path, seed: int, names: list[str]) -> None:
    rng = np.random.default_rng(seed)
    for name in names:
        sr = int(rng.choice([16000, 22050]))
        seconds = float(rng.uniform(1.0, 4.0))
        write(lib / name, chirp(float(rng.uniform(100, 2000)), 4000, seconds, sr)
              + noise(seconds, sr, seed=int(rng.integers(1 << 30)), amp=0.05), sr)


def catalog_generation_and_segments(idx: Path) -> tuple[int, set[int]]:
    with catalog_session(idx) as s:
        return int(get_meta(s).get("generation", 0)), set(s.scalars(select(SegmentRow.id)))


def search_while(proc: subprocess.Popen, idx: Path, lib: Path, add_only: bool) -> set[int]:
    """Search in a loop until ``proc`` ends; returns the generations the reader saw."""
    rng = np.random.default_rng(1)
    paths = {str(p) for p in lib.iterdir()}
    seen: set[int] = set()
    with SoundIndex.open(idx, model=FakeModel()) as si:
        while True:
            running = proc.poll() is None
            q = rng.standard_normal(FakeModel.dim).astype(np.float32)
            q /= np.linalg.norm(q)
            hits = si.search_vectors(q, k=5)
            seg_hits = si.search_vectors(q, k=8, per_file=False,
                                         filters=Filters(formats=("WAV",)))
            info = si.info()
            seen.add(int(info["generation"]))
            assert info["vectors"] == info["segments"] > 0 and info["files"] >= len(hits)
            assert all(h.path in paths for h in hits + seg_hits)
            assert len({h.path for h in hits}) == len(hits)            # one hit per file
            if add_only:               # nothing is ever removed: the catalog still has them
                _, ids = catalog_generation_and_segments(idx)
                assert {h.segment_id for h in hits + seg_hits} <= ids
            if not running:
                return seen


def run_indexer(lib: Path, idx: Path, log: Path) -> subprocess.Popen:
    with open(log, "wb") as err:
        return subprocess.Popen([sys.executable, "-c", SCRIPT, str(lib), str(idx)], cwd=ROOT,
                                env=dict(os.environ, PYTHONPATH=str(ROOT)),
                                stdout=subprocess.DEVNULL, stderr=err)


def test_search_keeps_answering_while_the_index_is_written(tmp_path):
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    names = [f"s{i:02d}.wav" for i in range(N_FILES)]
    make_library(lib, 0, names[:2])
    first = run_indexer(lib, idx, tmp_path / "first.log")              # a first generation
    assert first.wait(timeout=120) == 0, (tmp_path / "first.log").read_text()[-2000:]
    make_library(lib, 1, names[2:])

    proc = run_indexer(lib, idx, tmp_path / "add.log")                 # adds, one commit each
    try:
        seen = search_while(proc, idx, lib, add_only=True)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.wait(timeout=60) == 0, (tmp_path / "add.log").read_text()[-2000:]
    assert len(seen) >= 3                    # the reader followed several commits
    gen, _ = catalog_generation_and_segments(idx)
    assert max(seen) <= gen

    make_library(lib, 2, names[::2])                                     # rewrite half: updates
    proc = run_indexer(lib, idx, tmp_path / "update.log")
    try:
        seen = search_while(proc, idx, lib, add_only=False)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.wait(timeout=60) == 0, (tmp_path / "update.log").read_text()[-2000:]
    assert len(seen) >= 3
    with SoundIndex.open(idx, model=FakeModel()) as si:                 # and it ends complete
        info = si.info()
        assert info["files"] == N_FILES and info["vectors"] == info["segments"]
        assert info["generation"] == catalog_generation_and_segments(idx)[0]
    assert IndexLayout(idx).vector_files() == [IndexLayout(idx).vectors_file(info["generation"])]
