"""Tagging a few files of a large index reads only their catalog rows and stored vectors, in a
few statements however many files are tagged: counted (SQL statements, vectors read), never
timed (benchmarks/tag_at_scale.py times it at 40,000 files)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from engine import query_catalog
from engine.filters import Filters
from engine.query import SoundIndex
from engine.query_snapshot import _Snapshot
from engine.tagging import tag_files
from indexer import build_index
from tests.conftest import chirp, noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_scale_commands35 import counted

SR = 8000
LABELS = ["tone", "noise"]


def _sound(i: int, seconds: float = 0.3):
    kind = i % 3
    if kind == 0:
        return tone(200 + 37 * i, seconds, SR)
    if kind == 1:
        return noise(seconds, SR, seed=i)
    return chirp(100 + 11 * i, 2000, seconds, SR)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Path, Path]:
    """30 files indexed with the fake model, ``long.wav`` (5 s) cut into several segments."""
    lib = tmp_path_factory.mktemp("tag_scale_lib").resolve()
    for i in range(29):
        write(lib / f"part_{i // 10}" / f"f_{i:02d}.wav", _sound(i), SR)
    write(lib / "part_0" / "long.wav", _sound(3, seconds=5.0), SR)
    idx = lib.parent / (lib.name + "_idx")
    build_index([str(lib)], idx, FakeModel(), workers=0, progress=False)
    return lib, idx


def _files(lib: Path) -> list[Path]:
    return sorted(lib.rglob("*.wav"))


@pytest.fixture()
def vectors_read(monkeypatch) -> list[int]:
    """How many stored vectors each read of the snapshot (or of every vector at once) returned."""
    seen: list[int] = []
    snap_vectors, every = _Snapshot.vectors, query_catalog.all_vectors

    def spied_vectors(self, ids):
        out = snap_vectors(self, ids)
        seen.append(len(out))
        return out

    def spied_every(index, ids):
        got, vecs = every(index, ids)
        seen.append(len(vecs))
        return got, vecs

    monkeypatch.setattr(_Snapshot, "vectors", spied_vectors)
    monkeypatch.setattr(query_catalog, "all_vectors", spied_every)
    return seen


def _whole_table_reads(statements: list[str]) -> list[str]:
    """The statements that read every row of the files table (no WHERE)."""
    return [st for st in statements if re.search(r"\bFROM files\s*$", st.strip())]


def test_tagging_one_indexed_file_reads_only_its_row_and_vectors(library, vectors_read):
    """`soundsift tag FILE --index` read every file's vector and every file's size and mtime
    (40,000 of each at 40,000 files, 495 MB at its peak) to tag one."""
    lib, idx = library
    given = lib / "part_0" / "long.wav"
    with SoundIndex.open(idx, model=FakeModel()) as si:
        si.refresh()
        snap = si._snap
        own = int(np.sum(snap.seg_file == si.file_id_for_path(given)))
        assert own > 1 and len(snap.seg_ids) > 30           # several segments; 30 files' worth more
        vectors_read.clear()
        with counted() as statements:
            tagged, errors = tag_files([given], LABELS, index=si, top=2)
    assert errors == [] and [t.from_index for t in tagged] == [True]
    assert sum(vectors_read) == own, vectors_read
    assert not _whole_table_reads(statements), _whole_table_reads(statements)


def test_tagging_many_files_takes_the_statements_of_tagging_few(library, vectors_read):
    """No statement per file: 30 files are looked up in as many statements as 2."""
    lib, idx = library
    files = _files(lib)
    with SoundIndex.open(idx, model=FakeModel()) as si:
        si.refresh()
        with counted() as few:
            tag_files(files[:2], LABELS, index=si, top=2)
        vectors_read.clear()
        with counted() as many:
            tagged, errors = tag_files(files, LABELS, index=si, top=2)
        assert sum(vectors_read) == len(si._snap.seg_ids)     # each file's own, once
    assert errors == [] and all(t.from_index for t in tagged) and len(tagged) == 30
    assert len(many) == len(few), (len(few), len(many))
    assert not _whole_table_reads(many)


def test_paths_are_looked_up_a_chunk_a_statement(library, monkeypatch):
    """Given more paths than one IN list holds, each chunk is one statement and every file is
    still found, with the vector the whole index's read gives it."""
    lib, idx = library
    files = [str(f) for f in _files(lib)]
    with SoundIndex.open(idx, model=FakeModel()) as si:
        every = si.file_vectors()
        monkeypatch.setattr(query_catalog, "SQL_CHUNK", 7)
        with counted() as statements:
            some = si.file_vectors(paths=files)
        lookups = [st for st in statements if re.search(r"\bfiles\.path IN\b", st)]
        assert len(lookups) == 5                             # 30 paths, 7 a statement
        assert some.paths == every.paths
        assert np.allclose(some.vectors, every.vectors, atol=1e-6)
        assert np.array_equal(some.durations, every.durations) and np.array_equal(some.sizes, every.sizes)
        states = si.file_states(files)
        assert states == si.file_states()


def test_file_vectors_of_paths_leaves_out_what_the_index_does_not_hold(library, tmp_path):
    lib, idx = library
    outside = tmp_path / "never_indexed.wav"
    write(outside, _sound(5), SR)
    one = str(lib / "part_1" / "f_12.wav")
    with SoundIndex.open(idx, model=FakeModel()) as si:
        fv = si.file_vectors(paths=[one, str(outside), one])
        assert fv.paths == [one] and fv.vectors.shape == (1, FakeModel.dim)
        assert np.allclose(fv.vectors[0], si.file_vector(one), atol=1e-6)
        assert si.file_vectors(paths=[str(outside)]).paths == []
        assert si.file_vectors(paths=one).paths == [one]            # one path is one item
        kept = si.file_vectors(Filters(path_prefix=str(lib / "part_2")), paths=[one, str(lib / "part_2" / "f_20.wav")])
        assert kept.paths == [str(lib / "part_2" / "f_20.wav")]


def test_file_states_of_many_paths_takes_a_few_statements(library, tmp_path, monkeypatch):
    """SoundIndex.file_states(paths) looked each path up on its own (two statements a path at
    least); spellings as typed (relative), through a link and unknown paths still answer as
    before."""
    lib, idx = library
    files = _files(lib)
    link = tmp_path / "shortcut.wav"
    link.symlink_to(files[4])
    monkeypatch.chdir(lib)
    relative = os.path.relpath(files[7], lib)
    asked = [str(f) for f in files] + [relative, str(link), str(tmp_path / "none.wav")]
    with SoundIndex.open(idx, model=FakeModel()) as si:
        every = si.file_states()
        with counted() as statements:
            states = si.file_states(asked)
    assert len(statements) <= 6, len(statements)
    assert states == {**{str(f): every[str(f)] for f in files},
                      relative: every[str(files[7])], str(link): every[str(files[4])]}


def test_an_indexed_file_edited_since_is_still_decoded(library):
    """Its recorded state is read with its vector: a file touched since it was indexed (another
    mtime) is tagged from its audio, its neighbour from its stored vector."""
    lib, idx = library
    given = lib / "part_2" / "f_21.wav"
    with SoundIndex.open(idx, model=FakeModel()) as si:
        before = os.stat(given)
        try:
            os.utime(given, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
            tagged, errors = tag_files([given, lib / "part_2" / "f_22.wav"], LABELS, index=si, top=2)
        finally:
            os.utime(given, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert errors == [] and [t.from_index for t in tagged] == [False, True]


@pytest.mark.parametrize("budget", [None, 40_000], ids=["ivf-flat", "opq-ivf-pq"])
def test_file_vectors_of_paths_from_an_ivf_or_compressed_index(tmp_path, budget):
    """An IVF index reads the files' vectors by id (its direct map), a compressed one from its raw
    sidecar: the same vectors the whole index's read gives them."""
    from test_index_retrain import commit, files
    from test_query_rerank import TextModel

    root = tmp_path / "idx"
    held = files("a", 300, 10, seed=21)
    meta = commit(root, held) if budget is None else commit(root, held, budget=budget)
    assert meta["index_kind"] == ("ivf-flat" if budget is None else "opq-ivf-pq"), meta["index_kind"]
    some = [f.path for f in held[::37]]
    with SoundIndex.open(root, model=TextModel()) as si:
        every = si.file_vectors()
        fv = si.file_vectors(paths=some)
    rows = [every.paths.index(p) for p in fv.paths]
    assert sorted(fv.paths) == sorted(some)
    assert np.allclose(fv.vectors, every.vectors[rows], atol=1e-5)


def test_a_catalog_path_through_a_link_made_since_still_tags_from_its_stored_vector(tmp_path):
    """A folder moved after indexing and linked back at its old place: the catalog's paths now
    resolve to the new place, where the file is given; its stored vector is found by resolving
    the catalog's paths (the one case that reads them all)."""
    lib = (tmp_path / "lib").resolve()
    for i in range(3):
        write(lib / "old" / f"f_{i}.wav", _sound(i), SR)
    write(lib / "other" / "g.wav", _sound(7), SR)
    idx = tmp_path / "idx"
    build_index([str(lib)], idx, FakeModel(), workers=0, progress=False)
    (lib / "old").rename(lib / "new")
    (lib / "old").symlink_to(lib / "new", target_is_directory=True)
    with SoundIndex.open(idx, model=FakeModel()) as si:
        tagged, errors = tag_files([lib / "new" / "f_1.wav", lib / "other" / "g.wav"], LABELS, index=si, top=2)
    assert errors == [] and [t.from_index for t in tagged] == [True, True]
