"""What one hit per recording costs, and that making it cheaper changed no result.

A kept digest (engine.towers.cache.cached_file_sha256): a path is resolved only the first time it
names a file in one state, not at every lookup, and a file rewritten in place, replaced, or named
through a link that now names another file is still hashed again, while a link to a file already
read shares its digest.

A collapsed search on an exact index ranks once (engine.query_copies.Rankings): a top k full of
copies no longer asks FAISS a second time, and every search returns what asking FAISS for each
length returned (vector, segment, "more like this" and keyword searches, filters, several k)."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import engine.query
import engine.query_copies
import engine.towers.cache as cache
from engine.filters import Filters
from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_copies_cost38 import FILTERS, SR, every_recording, indexed, shown  # noqa: F401  (indexed: a fixture)

pytestmark = pytest.mark.usefixtures("private_cache")


def sha256(path: Path) -> str:
    """The digest, read here (not through the cache module)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def settled(monkeypatch):
    """Files written by the test count as settled (the digest of a file changed in the last 3 s
    is not kept)."""
    monkeypatch.setattr(cache, "RECENT_CHANGE_NS", 0)


@pytest.fixture
def read(monkeypatch) -> list[str]:
    """Names of the files ``cache.file_sha256`` reads from now on."""
    names: list[str] = []
    real = cache.file_sha256
    monkeypatch.setattr(cache, "file_sha256", lambda path, *a: names.append(Path(path).name) or real(path, *a))
    return names


@pytest.fixture
def resolved(monkeypatch) -> list[str]:
    """Paths ``os.path.realpath`` resolves from now on."""
    paths: list[str] = []
    real = os.path.realpath

    def counting(path, *a, **kw):
        paths.append(os.fspath(path))
        return real(path, *a, **kw)
    monkeypatch.setattr(os.path, "realpath", counting)
    return paths


def test_a_kept_digest_is_found_without_resolving_the_path_again(tmp_path, settled, read, resolved):
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    path = deep / "take.wav"
    path.write_bytes(b"take" * 1000)
    first = cache.cached_file_sha256(path)
    assert resolved == [str(path)]
    for _ in range(3):
        assert cache.cached_file_sha256(path) == first
        assert cache.cached_file_sha256(str(path)) == first
    assert read == ["take.wav"] and resolved == [str(path)]           # (before: resolved at each call)


def test_a_file_rewritten_in_place_is_hashed_again(tmp_path, settled, read):
    """The same inode, size and mtime; its ctime tells."""
    path = tmp_path / "take.wav"
    path.write_bytes(b"one" * 1000)
    first = cache.cached_file_sha256(path)
    old = path.stat()
    with open(path, "r+b") as f:
        f.write(b"two")
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))
    assert path.stat().st_ino == old.st_ino and path.stat().st_size == old.st_size
    second = cache.cached_file_sha256(path)
    assert second != first and second == sha256(path)
    assert cache.cached_file_sha256(path) == second and read == ["take.wav"] * 2


def test_a_replaced_file_is_hashed_again(tmp_path, settled, read):
    path = tmp_path / "take.wav"
    path.write_bytes(b"one" * 1000)
    first = cache.cached_file_sha256(path)
    old = path.stat()
    new = tmp_path / "new.wav"
    new.write_bytes(b"two" * 1000)
    os.utime(new, ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(new, path)                                             # another inode under the name
    assert cache.cached_file_sha256(path) == sha256(path) != first
    assert read == ["take.wav"] * 2


def test_links_share_the_digest_of_the_file_they_name_now(tmp_path, settled, read, resolved):
    """A link to a file read shares its digest (not read again, resolved once); a link turned to
    another file, or a folder link turned to another folder, gets that file's; hard links stay
    two paths (each read)."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    a, b = tmp_path / "one" / "take.wav", tmp_path / "two" / "take.wav"
    a.write_bytes(b"one" * 1000)
    b.write_bytes(b"two" * 1000)
    want_a, want_b = cache.cached_file_sha256(a), cache.cached_file_sha256(b)
    link, folder = tmp_path / "link.wav", tmp_path / "folder"
    os.symlink(a, link)
    os.symlink(tmp_path / "one", folder)
    assert cache.cached_file_sha256(link) == want_a and cache.cached_file_sha256(folder / "take.wav") == want_a
    resolved.clear()
    assert cache.cached_file_sha256(link) == want_a and resolved == []
    assert read == ["take.wav"] * 2
    link.unlink()
    os.symlink(b, link)
    folder.unlink()
    os.symlink(tmp_path / "two", folder)
    assert cache.cached_file_sha256(link) == want_b and cache.cached_file_sha256(folder / "take.wav") == want_b
    assert read == ["take.wav"] * 2                                   # b's digest was kept
    hard = tmp_path / "hard.wav"
    os.link(a, hard)
    assert cache.cached_file_sha256(hard) == want_a and read == ["take.wav"] * 2 + ["hard.wav"]


def test_a_path_whose_digest_went_is_read_again(tmp_path, settled, read, monkeypatch):
    monkeypatch.setattr(cache, "DIGEST_CACHE_SIZE", 1)
    x, y = tmp_path / "x.wav", tmp_path / "y.wav"
    x.write_bytes(b"x" * 100)
    y.write_bytes(b"y" * 100)
    for p in (x, y, x, x):
        assert cache.cached_file_sha256(p) == sha256(p)
    assert read == ["x.wav", "y.wav", "x.wav"] and len(cache._resolved) <= 1


# --- a collapsed search ranks once on an exact index, and returns what it did -----------------

@pytest.fixture
def rankings(monkeypatch) -> list[int]:
    """The lengths FAISS's ranking is asked for (engine.query.rank_segments) from now on."""
    asked: list[int] = []
    rank = engine.query.rank_segments

    def counting(snap, q, n, *a, **kw):
        asked.append(n)
        return rank(snap, q, n, *a, **kw)
    monkeypatch.setattr(engine.query, "rank_segments", counting)
    return asked


@pytest.fixture
def by_length(monkeypatch):
    """A function that runs a search as before: each length of the ranking asked of FAISS."""
    def run(search):
        with monkeypatch.context() as m:
            m.setattr(engine.query, "exact_ranking", lambda snap: False, raising=False)   # (the code before: as it is)
            return search()
    return run


def test_a_top_k_full_of_copies_is_ranked_once(indexed, rankings):
    """The tone's top 6 candidates hold three recordings (its four names, flipped.wav, another):
    before, FAISS ranked 6, then 15; now the ranking of 6 tells the 15 too (its fetched segments
    hold them). Without copies, one ranking of 6, as before."""
    lib, idx = indexed
    with SoundIndex.open(idx, model=FakeModel()) as index:
        vector = index.file_vector(str(lib / "Tones" / "tone 0.wav"))
        rankings.clear()
        hits = index.search_vectors(vector, k=5)
        assert rankings == [6] and len(hits) == 5
        rankings.clear()
        assert shown(index.search_vectors(vector, k=5, collapse_copies=False)) and rankings == [5]


def test_rankings_are_cut_from_longer_ones_only_where_the_index_is_exact():
    """A ranking of n that told more (here: n + 5, of 30 entries in all) serves every length up
    to that; one shorter than asked for holds every entry."""
    from engine.query_copies import Rankings

    def rank(n: int) -> list:
        return [(key, (1.0 - key / 100, key)) for key in range(min(n + 5, 30))]
    exact = Rankings(rank, exact=True)
    assert exact(4) == rank(4)[:4] and exact(9) == rank(9)[:9] and exact(7) == rank(7)[:7]
    assert exact(10) == rank(10)[:10] and exact(40) == rank(40) and exact(1000) == rank(1000)
    assert exact.asked == [4, 10, 40]
    each = Rankings(rank)
    for n in (4, 9, 7, 9):
        assert each(n) == rank(n)[:n]
    assert each.asked == [4, 9, 7]


def test_only_a_flat_index_on_the_cpu_ranks_exactly():
    import faiss

    from engine.query_copies import exact_ranking
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 8)).astype(np.float32)
    flat = faiss.index_factory(8, "IDMap2,Flat", faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.index_factory(8, "IVF4,Flat", faiss.METRIC_INNER_PRODUCT)
    ivf.train(x)

    def snap(index, rerank=0, gpu=None):
        return SimpleNamespace(index=index, rerank=rerank, gpu=gpu)
    assert exact_ranking(snap(flat))
    assert not exact_ranking(snap(ivf)) and not exact_ranking(snap(None))
    assert not exact_ranking(snap(flat, rerank=4)) and not exact_ranking(snap(flat, gpu=object()))


@pytest.mark.parametrize("k", [1, 3, 20])
def test_searches_return_what_they_did(indexed, by_length, k):
    lib, idx = indexed
    with SoundIndex.open(idx, model=FakeModel()) as index:
        for path in sorted(str(p) for p in lib.rglob("*.wav")):
            vector = index.file_vector(path)
            for f in FILTERS:
                if f is not None and f.path_prefix:
                    f = Filters(path_prefix=str(lib / f.path_prefix) + "/")
                hits = index.search_vectors(vector, k=k, filters=f)
                assert shown(hits) == shown(by_length(lambda: index.search_vectors(vector, k=k, filters=f)))
                assert shown(hits) == shown(every_recording(index, vector, k, filters=f)), (path, f)
            segments = index.search_vectors(vector, k=k, per_file=False)
            assert shown(segments) == shown(by_length(lambda: index.search_vectors(vector, k=k, per_file=False)))
            like = index.similar_to_file(path, k=k)
            assert shown(like) == shown(by_length(lambda: index.similar_to_file(path, k=k)))
            text = index.search_text(Path(path).stem, k=k, keywords=True)
            assert shown(text) == shown(by_length(lambda: index.search_text(Path(path).stem, k=k, keywords=True)))


def test_twenty_names_of_one_take_at_every_cut(tmp_path, by_length, rankings):
    """Twenty names of one take (they tie exactly: FAISS keeps any of them at a cut), a second
    take under three, and noises: every k, from the take and from a noise, returns what it did,
    asking FAISS no more often (less, where the first ranking told enough)."""
    lib = (tmp_path / "lib").resolve()
    take = write(lib / "take.wav", tone(330, 2.0, SR), SR)
    for i in range(19):
        shutil.copyfile(take, lib / f"take {i:02d}.wav")
    other = write(lib / "other.wav", tone(440, 2.0, SR), SR)
    for i in range(2):
        shutil.copyfile(other, lib / f"other {i}.wav")
    for i in range(8):
        write(lib / f"rain {i}.wav", noise(2.0, SR, seed=i), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    fewer: list[int] = []
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        for query in (take, lib / "rain 3.wav"):
            vector = index.file_vector(str(query))
            for k in range(1, 12):
                rankings.clear()
                hits = index.search_vectors(vector, k=k)
                now = len(rankings)
                assert shown(hits) == shown(by_length(lambda: index.search_vectors(vector, k=k)))
                fewer.append(len(rankings) - 2 * now)       # the search before's rankings less today's
                assert shown(hits) == shown(every_recording(index, vector, k))
                assert sum(1 + len(h.copies) for h in hits if Path(h.path).stem.startswith("take")) in (0, 20)
    assert min(fewer) >= 0 and max(fewer) > 0
