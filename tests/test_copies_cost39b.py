"""A collapsed search that asks FAISS's ranking a second time (a top k full of copies) sizes that
ranking's fetch from what the first one's scans learned (engine.query_faiss.Scans): no third FAISS
scan where the library's average segments per file (short files without copies) is far below the
segments near the query (long takes under four names each); the results stay what asking FAISS for
each length, and what collapsing every candidate, return."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import engine.query
import engine.query_faiss
from engine.query import SoundIndex
from tests.query_fixtures import FakeModel, FileSpec, write_index
from tests.test_copies_cost38 import every_recording, shown

pytestmark = pytest.mark.usefixtures("private_cache")

DIM = 8
TAKES = 8            # recordings of nine segments, each under four names
PADS = 300           # one-segment files without copies, all scoring below every take


def _unit(angle: float, axis: int = 1) -> np.ndarray:
    v = np.zeros(DIM, np.float32)
    v[0], v[axis] = np.cos(angle), np.sin(angle)
    return v


@pytest.fixture
def library(tmp_path) -> tuple[Path, Path]:
    """(library, index): :func:`write_library`."""
    return write_library(tmp_path)


def write_library(tmp_path: Path) -> tuple[Path, Path]:
    """Takes whose nine segments score in turn (take 0's all above take 1's …), each written under
    four names (byte-identical files: one recording), and :data:`PADS` short files of their own
    (each its own size). Returns (library, index)."""
    lib = (tmp_path / "lib").resolve()
    specs: list[FileSpec] = []
    bounds = [(i * 0.5, i * 0.5 + 1.0) for i in range(9)]
    for j in range(TAKES):
        vectors = np.stack([_unit(0.05 + 0.02 * j + 0.001 * s) for s in range(9)])
        for folder in ("Takes", "Pack A", "Pack B", "Backup"):
            path = lib / folder / f"take {j}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"take {j}".encode() * 500)
            specs.append(FileSpec(str(path), vectors, duration=5.0, bounds=bounds))
    for i in range(PADS):
        path = lib / "Pads" / f"pad {i:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"p" * (100 + i))
        specs.append(FileSpec(str(path), _unit(1.0 + i / PADS, axis=2)[None, :]))
    write_index(tmp_path / "idx", specs, dim=DIM)
    return lib, tmp_path / "idx"


@pytest.fixture
def counted(monkeypatch) -> list[int]:
    """The FAISS scans (index searches) of each ranking (engine.query.rank_segments call) from now on."""
    scans: list[int] = []
    rank, make = engine.query.rank_segments, engine.query_faiss.searcher

    def ranking(*a, **kw):
        scans.append(0)
        return rank(*a, **kw)

    def searcher(*a, **kw):
        search = make(*a, **kw)

        def scan(q, n):
            scans[-1] += 1
            return search(q, n)
        return scan
    monkeypatch.setattr(engine.query, "rank_segments", ranking)
    monkeypatch.setattr(engine.query_faiss, "searcher", searcher)
    return scans


def _by_length(monkeypatch, search):
    """``search()`` as asked of FAISS for each length (no index counted exact: nothing learned)."""
    with monkeypatch.context() as m:
        m.setattr(engine.query, "exact_ranking", lambda snap: False)
        return search()


def test_a_second_ranking_of_files_is_one_scan(library, counted, monkeypatch):
    """k 3: the top 4 files are take 0's four names, one recording, and the second ranking, of
    20 files, fetched 86 segments (the library's 1.8 per file, twice), which held fewer than 20
    files, then 344: three scans in all. Now the first scan's 30 segments for 4 files certain
    size it (four times: all 588), one scan; so at every k (where the first ranking scans twice
    already, 33 then 132 segments, its 132 for 16 files size the next)."""
    lib, idx = library
    with SoundIndex.open(idx, model=FakeModel(DIM)) as index:
        query = _unit(0.0)
        for k in range(1, TAKES + 5):
            counted.clear()
            hits = index.search_vectors(query, k=k)
            assert len(counted) == 2 and counted[1] == 1, (k, counted)
            assert [Path(h.path).parent.name for h in hits] == ["Takes"] * min(k, TAKES) + ["Pads"] * (k - TAKES)
            assert all(len(h.copies) == 3 for h in hits[:TAKES])
            assert shown(hits) == shown(_by_length(monkeypatch, lambda: index.search_vectors(query, k=k)))
            assert shown(hits) == shown(every_recording(index, query, k))


def test_a_scan_sizes_the_next_fetch_by_the_files_it_made_certain():
    """Four times the segments per certain file of the largest scan, never below the default,
    the default while nothing was scanned or the largest scan made enough certain."""
    from engine.query_faiss import Scans
    scans = Scans()
    assert scans.first_fetch(20, 56) == 56
    scans.note(30, 4)
    scans.note(12, 12)                  # a smaller scan does not replace the larger
    assert scans.first_fetch(20, 86) == 600 and scans.first_fetch(20, 700) == 700
    assert scans.first_fetch(4, 30) == 30
    scans.note(40, 0)
    assert scans.first_fetch(3, 10) == 480
