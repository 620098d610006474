"""A collapsed search on an exact index ranks once where its first ranking told enough: the
fewest candidates that hold ``k`` recordings are taken from what FAISS's first ranking knows for
certain (engine.query_copies.planned, :meth:`engine.query_copies.Rankings.told`), not from a
longer guess asked of FAISS again; and it returns what it did (what asking FAISS for each length,
and collapsing every candidate at once, return)."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.filters import Filters
from engine.query import SoundIndex
from engine.query_copies import Rankings, planned
from indexer import build_index
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_copies_cost38 import FILTERS, SR, every_recording, shown
from tests.test_copies_cost39 import by_length, rankings  # noqa: F401  (fixtures)
from tests.ui_library import left_unchanged

pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def take_of_ten(tmp_path_factory) -> Iterator[tuple[Path, Path]]:
    """A take under ten names, a tone and thirty noises, each of one segment, indexed once per
    module: its tests only search them, and leaving checks that none changed them."""
    tmp_path = tmp_path_factory.mktemp("take_of_ten")
    lib = (tmp_path / "lib").resolve()
    take = write(lib / "Takes" / "take.wav", tone(330, 2.0, SR), SR)
    for i in range(9):
        (lib / f"Pack {i}").mkdir()
        shutil.copyfile(take, lib / f"Pack {i}" / "take.wav")
    write(lib / "Tones" / "mid.wav", tone(1200, 2.0, SR), SR)
    for i in range(30):
        write(lib / "Noise" / f"rain {i:02d}.wav", noise(2.0, SR, seed=i), SR)
    with pytest.MonkeyPatch.context() as m:
        m.setenv("SOUNDSIFT_CACHE", str(tmp_path / "cache"))      # as private_cache does for a test
        build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    with left_unchanged(tmp_path, "the shared index"):
        yield lib, tmp_path / "idx"


def test_the_fewest_candidates_the_first_ranking_told_are_taken(take_of_ten, rankings, by_length):
    """From the take, k = 4: its top 5 hold one recording (five of its names), so the search before
    guessed 31 candidates and asked FAISS for them, past the 26 or so its ranking of 5 told (26
    segments fetched); the 13 that hold four recordings, the last below the fourth, were among
    them. Every k ranks once, and returns what it did."""
    lib, idx = take_of_ten
    with SoundIndex.open(idx, model=FakeModel()) as index:
        vector = index.file_vector(str(lib / "Takes" / "take.wav"))
        for k in range(1, 8):
            rankings.clear()
            hits = index.search_vectors(vector, k=k)
            assert rankings == [k + 1], k                           # (before, k = 4: [5, 31])
            assert len(hits) == k and len(hits[0].copies) == 9
            assert shown(hits) == shown(by_length(lambda: index.search_vectors(vector, k=k)))
            assert shown(hits) == shown(every_recording(index, vector, k))


@pytest.mark.parametrize("k", [1, 3, 4, 12])
def test_searches_return_what_they_did(take_of_ten, by_length, k):
    lib, idx = take_of_ten
    with SoundIndex.open(idx, model=FakeModel()) as index:
        for path in sorted(str(p) for p in lib.rglob("*.wav"))[::3]:
            vector = index.file_vector(path)
            packs, one_pack = Filters(path_prefix=f"{lib}/Pack"), Filters(path_prefix=f"{lib}/Pack 1/")
            for f in (*(f for f in FILTERS if f is None or not f.path_prefix), packs, one_pack):
                hits = index.search_vectors(vector, k=k, filters=f)
                assert shown(hits) == shown(by_length(lambda: index.search_vectors(vector, k=k, filters=f)))
                assert shown(hits) == shown(every_recording(index, vector, k, filters=f)), (path, f)
            like = index.similar_to_file(path, k=k)
            assert shown(like) == shown(by_length(lambda: index.similar_to_file(path, k=k)))


def _spans(scores: list[float]) -> list[tuple[float, float, float]]:
    return [(s, 0.0, 2.0) for s in scores]


def test_planned_takes_the_fewest_told_and_asks_no_more():
    """A ranking told past its length: the fewest entries holding k that differ, the last below
    the k-th, are taken where it told them; a ranking told only its length grows as before."""
    told = _spans([1.0] * 5 + [0.9, 0.8, 0.8, 0.7, 0.6, 0.5] + [0.4] * 10)
    asked: list[int] = []

    def rank(n: int) -> list[tuple[float, float, float]]:
        asked.append(n)
        return told
    assert planned(rank, 3) == 9 and asked == [4]          # 1.0 ×5, 0.9, 0.8 ×2 and 0.7 below
    asked.clear()
    assert planned(rank, 4) == 10 and asked == [5]
    asked.clear()
    assert planned(lambda n: asked.append(n) or told[:n], 3) == 20 and asked == [4, 20]     # as before


def test_told_gives_what_the_ranking_knows_only_where_the_index_is_exact():
    def rank(n: int) -> list:
        return [(key, (1.0 - key / 100, key)) for key in range(min(n + 5, 30))]
    exact = Rankings(rank, exact=True)
    assert exact.told(4) == rank(4) and exact(4) == rank(4)[:4]
    assert exact.told(9) == rank(4) and exact(9) == rank(9)[:9] and exact.asked == [4]
    assert exact.told(10) == rank(10) and exact.asked == [4, 10]
    each = Rankings(rank)
    assert each.told(4) == rank(4)[:4] and each.told(9) == rank(9)[:9] and each.asked == [4, 9]
