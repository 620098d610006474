"""A search's FAISS calls run on one OpenMP thread (FAISS's default count made a flat index's
one-query search wait on its workers: benchmarks/faiss_threads.py), set in the searching thread
only: another thread's count, and the searching thread's own after the search, are unchanged;
the hits are the same as with FAISS's default count."""
from __future__ import annotations

import threading
from pathlib import Path

import faiss
import pytest

import engine.query_faiss
from engine.query import Filters, SoundIndex
from indexer import build_index
from tests import conftest
from tests.conftest import chirp, noise, tone, write
from tests.index_fakes import FakeModel

pytestmark = pytest.mark.usefixtures("private_cache")

SR = 16_000


@pytest.fixture
def index_dir(tmp_path) -> Path:
    """A flat index of tones, chirps and noises, two of them under ``Pack/``."""
    lib = (tmp_path / "lib").resolve()
    (lib / "Pack").mkdir(parents=True)
    for i in range(4):
        write(lib / f"tone {i}.wav", tone(200 + 150 * i, 2.0 + i, SR), SR)
        write(lib / f"noise {i}.wav", noise(1.5 + i, SR, seed=i), SR)
    write(lib / "Pack" / "up.wav", chirp(100, 3000, 3.0, SR), SR)
    write(lib / "Pack" / "down.wav", chirp(3000, 100, 7.0, SR), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    return tmp_path / "idx"


def pack(index_dir: Path) -> Filters:
    """A filter keeping the files under the library's ``Pack/``."""
    return Filters(path_prefix=str(index_dir.parent / "lib" / "Pack") + "/")


def in_thread(fn, *args):
    """``fn(*args)`` run in a new thread; its result (or its exception, raised here)."""
    out: dict = {}

    def run() -> None:
        try:
            out["value"] = fn(*args)
        except BaseException as e:       # re-raised in the test's thread
            out["error"] = e
    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    if "error" in out:
        raise out["error"]
    return out["value"]


def test_a_search_uses_one_faiss_thread_in_its_own_thread_only(index_dir, monkeypatch):
    """During a one-query search of the index the searching thread's FAISS count is 1 (a
    ``similar`` search with the file's several segments keeps its own, 3); a thread that set
    its own count to 3 still reads 3 meanwhile; after the search the searcher's count is its
    own again (3)."""
    seen: list[tuple[int, int]] = []
    other_set, other_read, other_value = threading.Event(), threading.Event(), {}

    def other() -> None:
        faiss.omp_set_num_threads(3)
        other_set.set()
        other_read.wait(30)
        other_value["n"] = faiss.omp_get_max_threads()

    with SoundIndex.open(index_dir, model=FakeModel()) as index:
        index.search_text("a tone", k=3)              # loads the snapshot
        cls = type(index._snap.index)
        original = cls.search

        def search(self, *args, **kwargs):
            watcher = threading.Thread(target=other)
            if not other_set.is_set():
                watcher.start()
                other_set.wait(30)
            seen.append((faiss.omp_get_max_threads(), len(args[0])))
            other_read.set()
            if watcher.is_alive():
                watcher.join(30)
            return original(self, *args, **kwargs)
        monkeypatch.setattr(cls, "search", search)

        def searching() -> tuple[list, int]:
            faiss.omp_set_num_threads(3)
            hits = index.search_text("a tone", k=3) + index.search_text(
                "a chirp", k=2, filters=pack(index_dir))
            index.similar_to_file(index_dir.parent / "lib" / "Pack" / "down.wav", k=2)
            return hits, faiss.omp_get_max_threads()
        hits, after = in_thread(searching)
    assert {Path(h.path).parent.name for h in hits[3:]} == {"Pack"}
    assert hits and seen
    assert {rows > 1 for _, rows in seen} == {False, True}
    assert [n for n, rows in seen] == [1 if rows == 1 else 3 for _, rows in seen]
    assert other_value["n"] == 3
    assert after == 3


@pytest.mark.parametrize("filters", [None, "Pack", Filters(min_duration=3.0)])
@pytest.mark.parametrize("per_file", [True, False])
def test_hits_are_those_of_faiss_default_thread_count(index_dir, monkeypatch, filters, per_file):
    """The same paths, segments and scores whether the search runs on one FAISS thread or on
    FAISS's default count, two at least (a pytest-xdist worker's own default may be one:
    tests/conftest.py). ``"Pack"``: the files under the library's ``Pack/``."""
    if filters == "Pack":
        filters = pack(index_dir)

    def hits(threads: int = 0) -> list[tuple[str, float, float]]:
        def search() -> list:
            if threads:
                faiss.omp_set_num_threads(threads)      # this new thread's own count
            assert faiss.omp_get_max_threads() == (threads or conftest.FAISS_THREADS_AT_START)
            return index.search_text("a bright tone", k=6, filters=filters, per_file=per_file)
        with SoundIndex.open(index_dir, model=FakeModel()) as index:
            return [(h.path, h.start, h.score) for h in in_thread(search)]
    one = hits()
    monkeypatch.setattr(engine.query_faiss, "ONE_THREAD_MAX_QUERIES", 0)
    default = hits(max(2, conftest.FAISS_THREADS_AT_START))
    assert one and one == default
