"""What one hit per recording costs, and that making it cheaper changed no result
(engine.query_copies): a collapsed search tells from FAISS's ranking how many candidates it needs
(:func:`engine.query_copies.planned`) and builds each hit once (:class:`HitsOnce`), and returns
exactly what the search did before (each round from ``k + 1``, every hit built again), and what
collapsing every candidate returns; a keyword hit's copy that neither side met is listed too."""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import engine.query
import engine.query_copies
from engine.filters import Filters
from engine.query import SoundIndex
from engine.query_copies import SameRecording, collapse_copies
from indexer import build_index
from tests.conftest import chirp, noise, tone, write
from tests.index_fakes import FakeModel
from tests.ui_library import left_unchanged

pytestmark = pytest.mark.usefixtures("private_cache")

SR = 16_000


def _library(lib: Path, copies: bool) -> None:
    """Twelve recordings of 2 s (one size: a tie is hashed) and two of 5 s (several segments);
    with ``copies``: a tone under four names (a hard link, a copy marked as one, a copy in a
    pack) and its negation (the same vectors, other bytes), a noise with a copy, a long chirp
    with a hard link and a copy."""
    for i in range(6):
        write(lib / "Tones" / f"tone {i}.wav", tone(200 + 150 * i, 2.0, SR), SR)
        write(lib / "Noise" / f"noise {i}.wav", noise(2.0, SR, seed=i), SR)
    write(lib / "Long" / "sweep.wav", chirp(100, 4000, 5.0, SR), SR)
    write(lib / "Long" / "hum.wav", tone(60, 5.0, SR), SR)
    if not copies:
        return
    a = lib / "Tones" / "tone 0.wav"
    (lib / "Pack").mkdir()
    (lib / "Links").mkdir()
    shutil.copyfile(a, lib / "Tones" / "Copy of tone 0.wav")
    shutil.copyfile(a, lib / "Pack" / "tone 0 backup.wav")
    os.link(a, lib / "Links" / "tone 0.wav")
    write(lib / "Tones" / "flipped.wav", -tone(200, 2.0, SR), SR)
    shutil.copyfile(lib / "Noise" / "noise 2.wav", lib / "Pack" / "noise 2.wav")
    os.link(lib / "Long" / "sweep.wav", lib / "Links" / "sweep.wav")
    shutil.copyfile(lib / "Long" / "sweep.wav", lib / "Pack" / "sweep copy.wav")


@pytest.fixture(scope="module", params=[True, False], ids=["copies", "no-copies"])
def indexed(request, tmp_path_factory) -> Iterator[tuple[Path, Path]]:
    """A library (:func:`_library`, with and without copies) and its index, built once per module:
    its tests only search them, and leaving checks that none changed them."""
    base = tmp_path_factory.mktemp("indexed")
    lib = (base / "lib").resolve()
    _library(lib, request.param)
    with pytest.MonkeyPatch.context() as m:
        m.setenv("SOUNDSIFT_CACHE", str(base / "cache"))          # as private_cache does for a test
        build_index([lib], base / "idx", FakeModel(), workers=0, progress=False)
    with left_unchanged(base, "the shared index"):
        yield lib, base / "idx"


class _Rebuilt:
    """The search before: every round's hits built again."""

    def __init__(self, build, per_file: bool = True) -> None:
        self._build = build

    def __call__(self, top):
        return self._build(list(top))


def _more_before(scores, recordings: int, n: int, k: int) -> int:
    """The growth of the search before."""
    return max(2 * n, -(-n * (k + 1) // max(1, recordings)) * 5 // 4)


@pytest.fixture
def as_before(monkeypatch):
    """A function that runs a search as the code before did it (from ``k + 1`` candidates, each
    round's hits built again, no copy looked for beyond both sides of a keyword search)."""
    def run(search):
        with monkeypatch.context() as m:          # (set where missing: the code before, run as it is)
            m.setattr(engine.query, "planned", lambda rank, k: k + 1, raising=False)
            m.setattr(engine.query, "HitsOnce", _Rebuilt, raising=False)
            m.setattr(engine.query_copies, "_more", _more_before, raising=False)
            m.setattr(SoundIndex, "_copies_outside", lambda *a, **kw: [], raising=False)
            return search()
    return run


def shown(hits) -> list[dict]:
    return [h.to_dict() for h in hits]


def every_recording(index: SoundIndex, vector: np.ndarray, k: int, **kw) -> list:
    """The top ``k`` recordings from every candidate collapsed at once."""
    every = index.search_vectors(vector, k=10_000, collapse_copies=False, **kw)
    return collapse_copies(every, SameRecording(), k=k)


FILTERS = [None, Filters(path_prefix="Pack"), Filters(formats=("wav",), max_duration=3.0)]


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 20])
def test_vector_searches_return_what_they_did_and_what_collapsing_every_candidate_does(indexed, as_before, k):
    lib, idx = indexed
    with SoundIndex.open(idx, model=FakeModel()) as index:
        files = sorted(str(p) for p in lib.rglob("*.wav"))
        for path in files:
            vector = index.file_vector(path)
            for f in FILTERS:
                if f is not None and f.path_prefix:
                    f = Filters(path_prefix=str(lib / f.path_prefix) + "/")
                hits = index.search_vectors(vector, k=k, filters=f)
                assert shown(hits) == shown(as_before(lambda: index.search_vectors(vector, k=k, filters=f)))
                assert shown(hits) == shown(every_recording(index, vector, k, filters=f)), (path, f)
            segments = index.search_vectors(vector, k=k, per_file=False)
            assert shown(segments) == shown(as_before(lambda: index.search_vectors(vector, k=k, per_file=False)))
            assert shown(segments) == shown(every_recording(index, vector, k, per_file=False))
            like = index.similar_to_file(path, k=k)
            assert shown(like) == shown(as_before(lambda: index.similar_to_file(path, k=k)))
            assert like[0].path == path


@pytest.mark.parametrize("k", [1, 3, 6])
@pytest.mark.parametrize("text", ["tone", "copy backup", "noise sweep"])
def test_keyword_searches_return_what_they_did(indexed, as_before, monkeypatch, k, text):
    """Both sides hold every file here (the sound side's pool is 5 k files at least, the
    library 14 to 21), so no copy lies outside them: the results are the same as before."""
    lib, idx = indexed
    with SoundIndex.open(idx, model=FakeModel()) as index:
        for exclude in ([], ["hum"]):
            hits = index.search_text(text, k=k, keywords=True, exclude=exclude)
            assert shown(hits) == shown(as_before(lambda: index.search_text(text, k=k, keywords=True,
                                                                           exclude=exclude)))


@pytest.fixture
def counted(monkeypatch) -> list[list]:
    """The entries each call of ``SoundIndex._hits`` (a hit's catalog lookups) was given."""
    calls: list[list] = []
    hits_of = SoundIndex._hits

    def counting(self, conn, snap, top, *a, **kw):
        calls.append(list(top))
        return hits_of(self, conn, snap, top, *a, **kw)
    monkeypatch.setattr(SoundIndex, "_hits", counting)
    return calls


def test_a_collapsed_search_builds_each_hit_once_in_one_round(indexed, counted):
    """The tone's top 6 candidates are three recordings (its four names; flipped.wav, the same
    vectors but other bytes; another): the search before built those 6 and then, in a second
    round, them again among 15; now FAISS's ranking tells, before any hit is built, the 11 that
    hold five recordings, the last below the fifth (the fewest its first ranking knows; 15 before),
    and each is built once. Without copies, the k + 1 the search always started
    from, in one round."""
    lib, idx = indexed
    with SoundIndex.open(idx, model=FakeModel()) as index:
        vector = index.file_vector(str(lib / "Tones" / "tone 0.wav"))
        counted.clear()
        hits = index.search_vectors(vector, k=5)
        every = index.search_vectors(vector, k=5, collapse_copies=False)
    given = [(key, seg) for key, (_, seg) in counted[0]]
    assert len(counted) == 2 and len(given) == len(set(given))      # one round, each hit once
    names = sum(1 + len(h.copies) for h in hits)
    assert len(hits) == 5 and len(given) >= names + 1
    if names == 5:                                                  # no copies
        assert len(given) == 6
    else:
        assert len(given) == 11
    assert hits[0].path == every[0].path


@pytest.fixture
def takes(tmp_path) -> tuple[Path, Path]:
    """``Keep/gate latch.wav`` (a low tone, named by the query) and its byte-identical copy
    ``Away/archive 1.wav``, under twelve noises the query's sound ranks above both. Returns
    (library, index)."""
    lib = (tmp_path / "lib").resolve()
    take = write(lib / "Keep" / "gate latch.wav", tone(150, 2.0, SR), SR)
    (lib / "Away").mkdir()
    shutil.copyfile(take, lib / "Away" / "archive 1.wav")
    for i in range(12):
        write(lib / "Keep" / f"rain {i}.wav", noise(2.0, SR, seed=i), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    return lib, tmp_path / "idx"


@pytest.mark.parametrize("text", ["rain 3", "rain"])
def test_keyword_hits_without_copies_below_the_pool_are_as_before(takes, monkeypatch, as_before, text):
    """The pool (10 files) holds fewer than the library (14): hits from below it are looked up,
    and where they have no copy, nothing changes."""
    monkeypatch.setattr(engine.query, "KEYWORD_POOL", 1)
    lib, idx = takes
    with SoundIndex.open(idx, model=FakeModel()) as index:
        for k in (1, 2, 3):
            hits = index.search_text(text, k=k, keywords=True)
            assert shown(hits) == shown(as_before(lambda: index.search_text(text, k=k, keywords=True)))


def test_a_keyword_hits_copy_neither_side_met_is_listed(takes, monkeypatch):
    """k=2 pools the sound's 10 best files (noises): ``gate latch.wav`` comes in by its name
    alone, and its copy by neither side; it is listed as its copy (before: not at all), and not
    where a filter leaves it out; so is ``archive 1.wav``'s. With k=3 the pool holds every file:
    the copy was listed before."""
    lib, idx = takes
    monkeypatch.setattr(engine.query, "KEYWORD_POOL", 1)
    latch, archive = str(lib / "Keep" / "gate latch.wav"), str(lib / "Away" / "archive 1.wav")
    with SoundIndex.open(idx, model=FakeModel()) as index:
        sound = index.search_text("gate latch", k=10, collapse_copies=False)
        hits = index.search_text("gate latch", k=2, keywords=True)
        every = index.search_text("gate latch", k=3, keywords=True)
        kept = index.search_text("gate latch", k=2, keywords=True,
                                 filters=Filters(path_prefix=str(lib / "Keep") + "/"))
        by_copy = index.search_text("archive", k=2, keywords=True)
    assert all(Path(h.path).name.startswith("rain") for h in sound)      # neither on the sound side
    assert [h.copies for h in hits if h.path == latch] == [[archive]]
    assert [h.copies for h in every if h.path == latch] == [[archive]]
    assert sum(archive in (h.path, *h.copies) for h in hits) == 1
    assert [h.copies for h in kept if h.path == latch] == [[]]
    assert [h.copies for h in by_copy if h.path == archive] == [[latch]]     # the other way round


def test_tied_segments_read_the_vectors_or_ask_faiss_alike(takes):
    """The names at a segment's span with its vectors: the copy and the file itself, not the
    noises at that span; FAISS's ranking (more segments share the span than ``limit``) finds the
    same; a filter that leaves the segment out finds none."""
    from engine.query_copies import tied_segments
    lib, idx = takes
    with SoundIndex.open(idx, model=FakeModel()) as index:
        latch = index.file_id_for_path(lib / "Keep" / "gate latch.wav")
        archive = index.file_id_for_path(lib / "Away" / "archive 1.wav")
        rain = index.file_id_for_path(lib / "Keep" / "rain 0.wav")

        def files(segs: list[int], snap) -> set[int]:
            return set(snap.seg_file[snap.rows(np.array(segs, dtype=np.int64))].tolist())

        def check(conn, snap):
            seg = int(snap.seg_ids[snap.seg_file == latch][0])
            rain_segs = snap.seg_ids[snap.seg_file == rain]
            assert files(tied_segments(snap, seg, None), snap) == {latch, archive}
            assert files(tied_segments(snap, seg, None, limit=0), snap) == {latch, archive}
            assert tied_segments(snap, seg, np.sort(rain_segs)) == []
            return True
        assert index._with_snapshot(check)


def test_tied_segments_ask_faiss_for_more_while_all_tie(tmp_path):
    """Twenty names of one take (more than FAISS is first asked for, 16): all are found, from
    the stored vectors and from FAISS alike, whichever of them is asked about."""
    from engine.query_copies import tied_segments
    lib = (tmp_path / "lib").resolve()
    take = write(lib / "take.wav", tone(330, 2.0, SR), SR)
    for i in range(19):
        shutil.copyfile(take, lib / f"take {i:02d}.wav")
    write(lib / "other.wav", noise(2.0, SR, seed=1), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        names = {index.file_id_for_path(p) for p in lib.glob("take*.wav")}

        def check(conn, snap):
            for file_id in sorted(names)[::6]:
                seg = int(snap.seg_ids[snap.seg_file == file_id][0])
                for limit in (4096, 0):
                    found = tied_segments(snap, seg, None, limit=limit)
                    assert set(snap.seg_file[snap.rows(np.array(found))].tolist()) == names
            return True
        assert index._with_snapshot(check)
