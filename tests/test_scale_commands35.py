"""Commands and page views on a large library do a bounded number of catalog statements (or
hold a bounded number of options), however many files it holds: counted with an SQLAlchemy
event listener, never timed (benchmarks/commands_at_scale.py times them at 40,000 files)."""
from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from indexer import build_index
from indexer.user_tags import add_tags, tag_counts
from tests.conftest import chirp, noise, tone, write
from tests.index_fakes import FakeModel

SR = 8000


@contextmanager
def counted() -> Iterator[list[str]]:
    """Every SQL statement any catalog engine runs inside the block."""
    seen: list[str] = []

    def note(conn, cursor, statement, params, context, executemany):
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", note)


def _sound(i: int):
    kind = i % 3
    if kind == 0:
        return tone(200 + 37 * i, 0.3, SR)
    if kind == 1:
        return noise(0.3, SR, seed=i)
    return chirp(100 + 11 * i, 2000, 0.3, SR)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Path, Path]:
    """A folder of 4 files and one of 24 (and "Small2", which "Small/" does not hold), indexed
    with the fake model."""
    lib = tmp_path_factory.mktemp("scale_lib").resolve()
    for i in range(4):
        write(lib / "Small" / f"small_{i:02d}.wav", _sound(i), SR)
    write(lib / "Small2" / "not_small.wav", _sound(50), SR)
    for i in range(24):
        write(lib / "Large" / f"large_{i:02d}.wav", _sound(100 + i), SR)
    idx = lib.parent / (lib.name + "_idx")
    build_index([str(lib)], idx, FakeModel(), workers=0, progress=False)
    return lib, idx


def test_tagging_a_folder_costs_the_same_statements_for_4_or_24_files(library):
    """`soundsift tags add TAG FOLDER` read each file's tags and inserted its rows one file at a
    time: two statements a file, 80,000 for a folder of 40,000 (about two minutes)."""
    lib, idx = library
    with counted() as small:
        assert add_tags(idx, [lib / "Small"], ["keeper", "ep 3"]).changed == 8
    with counted() as large:
        assert add_tags(idx, [lib / "Large"], ["keeper", "ep 3"]).changed == 48
    assert len(large) == len(small), (len(small), len(large))
    with counted() as again:     # every file has them already: nothing added, as few statements
        change = add_tags(idx, [lib / "Large", lib / "Small"], ["KEEPER"])
    assert (change.files, change.changed) == (28, 0)
    assert len(again) <= len(small) + 1        # one look-up more: two folders given
    assert tag_counts(idx) == {"ep 3": 28, "keeper": 28}


def test_tagging_folders_reads_only_their_files(library):
    """A folder given to `tags add` was found by reading every indexed path and comparing it in
    Python, once per folder: `tags add TAG` with a library's 400 folders compared 16 million
    paths. Each folder is now a range of the path index: no statement reads the whole table."""
    lib, idx = library
    with counted() as seen:
        change = add_tags(idx, [lib / "Small", lib / "Large"], ["range"])
    assert (change.files, change.changed, change.not_indexed) == (28, 28, [])     # not Small2's file
    whole = [st for st in seen if re.search(r"\bFROM files\s*$", st.strip())]
    assert not whole, whole
    assert tag_counts(idx)["range"] == 28
    assert add_tags(idx, [lib / "Small2"], ["range"]).changed == 1


def test_tagging_one_indexed_file_resolves_only_its_path(library, monkeypatch):
    """`soundsift tag FILE --index` resolved the links of every indexed path to find FILE's
    stored vector: 0.9 s of its 1.1 s at 40,000 files. The catalog keeps resolved paths, so the
    other files' paths are looked at as they are."""
    import os

    from engine.query import SoundIndex
    from engine.tagging import tag_files

    lib, idx = library
    given = lib / "Large" / "large_03.wav"
    resolved: list[str] = []
    real = os.path.realpath

    def counting(path, *args, **kwargs):
        resolved.append(str(path))
        return real(path, *args, **kwargs)

    with SoundIndex.open(idx, model=FakeModel()) as si:
        monkeypatch.setattr(os.path, "realpath", counting)
        tagged, errors = tag_files([given], ["tone", "noise"], index=si, top=2)
        monkeypatch.undo()
    assert errors == [] and [t.from_index for t in tagged] == [True]
    others = {p for p in resolved if p != str(given) and p.startswith(str(lib))}
    assert not others, sorted(others)[:3]


def test_a_file_given_through_a_link_made_since_still_tags_from_its_stored_vector(library, tmp_path):
    from engine.query import SoundIndex
    from engine.tagging import tag_files

    lib, idx = library
    link = tmp_path / "shortcut.wav"
    link.symlink_to(lib / "Large" / "large_05.wav")
    with SoundIndex.open(idx, model=FakeModel()) as si:
        tagged, errors = tag_files([lib / "Small" / "small_01.wav", link], ["tone", "noise"], index=si, top=2)
    assert errors == [] and [t.from_index for t in tagged] == [True, True]
