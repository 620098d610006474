"""Files that swap or rotate names keep their rows (indexer.moves.find_moves_among_changed): a path
whose new file is another path's old one is a move, not an edit, so the recording keeps its
vectors, tags and captions at its new path and nothing is embedded again. A real edit and a
copy beside a re-render stay what they were."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from engine.query import SoundIndex
from tests.conftest import chirp, noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_index_moves import index, label, rows


def rename_all(moves: dict[Path, Path]) -> None:
    """Rename at once (``mv a x; mv b a; mv x b``): through temporary names, times kept."""
    tmp = {old: old.with_name(old.name + ".moving") for old in moves}
    for old, t in tmp.items():
        os.rename(old, t)
    for old, new in moves.items():
        os.rename(tmp[old], new)


@pytest.fixture
def lib(tmp_path) -> Path:
    lib = (tmp_path / "Library").resolve()
    write(lib / "a.wav", tone(440, 1.0, 16000), 16000)
    write(lib / "b.wav", noise(1.5, 16000, seed=1), 16000)
    write(lib / "c.wav", chirp(200, 900, 2.0, 16000), 16000)
    for i, name in enumerate(("a.wav", "b.wav", "c.wav")):    # distinct times whatever the clock
        os.utime(lib / name, ns=(1_600_000_000_000_000_000 + i * 7_777_777_777,) * 2)
    return lib


def test_two_files_that_swap_names_keep_their_rows(lib, tmp_path):
    idx = tmp_path / "idx"
    first = index([lib], idx)
    label(idx, lib / "a.wav", "fav", "a clean 440 Hz tone")
    before = rows(idx)
    rename_all({lib / "a.wav": lib / "b.wav", lib / "b.wav": lib / "a.wav"})

    model = FakeModel()
    s = index([lib], idx, model)
    assert model.calls == []                                   # nothing embedded again
    assert (s.moved, s.added, s.updated, s.removed, s.unchanged, s.failed) == (2, 0, 0, 0, 1, 0)
    assert s.generation == first.generation + 1
    after = rows(idx)
    assert set(after) == set(before)
    assert after[str(lib / "b.wav")] == {**before[str(lib / "a.wav")], "mtime_ns": os.stat(lib / "b.wav").st_mtime_ns}
    assert after[str(lib / "a.wav")] == {**before[str(lib / "b.wav")], "mtime_ns": os.stat(lib / "a.wav").st_mtime_ns}
    assert after[str(lib / "b.wav")]["tags"] == [("fav", "user")]        # the tag follows the tone
    assert after[str(lib / "a.wav")]["tags"] == []

    with SoundIndex.open(idx, model=FakeModel()) as si:         # the vectors answer under the new paths
        for name in ("a.wav", "b.wav"):
            hit = si.similar_to_file(str(lib / name), k=1)[0]
            assert hit.path == str(lib / name) and hit.score == pytest.approx(1.0, abs=1e-5)

    model = FakeModel()                                        # and the next run sees nothing to do
    s = index([lib], idx, model)
    assert model.calls == [] and (s.moved, s.added, s.updated, s.unchanged) == (0, 0, 0, 3)


def test_three_files_that_rotate_names_keep_their_rows(lib, tmp_path):
    idx = tmp_path / "idx"
    index([lib], idx)
    label(idx, lib / "c.wav", "sweep", "a rising chirp")
    before = rows(idx)
    rotation = {lib / "a.wav": lib / "b.wav", lib / "b.wav": lib / "c.wav", lib / "c.wav": lib / "a.wav"}
    rename_all(rotation)

    model = FakeModel()
    s = index([lib], idx, model)
    assert model.calls == []
    assert (s.moved, s.added, s.updated, s.removed, s.unchanged) == (3, 0, 0, 0, 0)
    after = rows(idx)
    for old, new in rotation.items():
        assert {**after[str(new)], "mtime_ns": 0} == {**before[str(old)], "mtime_ns": 0}
    assert after[str(lib / "a.wav")]["tags"] == [("sweep", "user")]


def test_a_chain_through_a_taken_name_keeps_every_row(lib, tmp_path):
    """``mv b d; mv a b``: a is gone, b holds a's file, d is new and holds b's."""
    idx = tmp_path / "idx"
    index([lib], idx)
    label(idx, lib / "a.wav", "fav", "a clean 440 Hz tone")
    before = rows(idx)
    os.rename(lib / "b.wav", lib / "d.wav")
    os.rename(lib / "a.wav", lib / "b.wav")

    model = FakeModel()
    s = index([lib], idx, model)
    assert model.calls == [] and (s.moved, s.added, s.updated, s.removed) == (2, 0, 0, 0)
    after = rows(idx)
    assert set(after) == {str(lib / n) for n in ("b.wav", "c.wav", "d.wav")}
    assert after[str(lib / "b.wav")]["id"] == before[str(lib / "a.wav")]["id"]
    assert after[str(lib / "d.wav")]["id"] == before[str(lib / "b.wav")]["id"]
    assert after[str(lib / "b.wav")]["tags"] == [("fav", "user")]


def test_a_real_edit_stays_an_edit_and_keeps_the_users_tags(lib, tmp_path):
    idx = tmp_path / "idx"
    index([lib], idx)
    label(idx, lib / "a.wav", "fav", "a clean 440 Hz tone")
    write(lib / "a.wav", tone(440, 1.0, 16000, amp=0.25), 16000)       # re-rendered quieter
    model = FakeModel()
    s = index([lib], idx, model)
    assert model.calls and (s.updated, s.moved, s.added, s.removed, s.unchanged) == (1, 0, 0, 0, 2)
    assert rows(idx)[str(lib / "a.wav")]["tags"] == [("fav", "user")]


def test_an_edit_beside_a_swap_is_still_an_edit(lib, tmp_path):
    idx = tmp_path / "idx"
    index([lib], idx)
    label(idx, lib / "c.wav", "sweep", "a rising chirp")
    before = rows(idx)
    rename_all({lib / "a.wav": lib / "b.wav", lib / "b.wav": lib / "a.wav"})
    write(lib / "c.wav", chirp(300, 900, 2.0, 16000), 16000)
    model = FakeModel()
    s = index([lib], idx, model)
    assert model.calls and (s.moved, s.updated, s.added, s.removed) == (2, 1, 0, 0)
    after = rows(idx)
    assert after[str(lib / "b.wav")]["id"] == before[str(lib / "a.wav")]["id"]
    assert after[str(lib / "c.wav")]["tags"] == [("sweep", "user")]


def test_an_overwrite_moves_a_row_and_a_copy_beside_a_re_render_is_as_before(lib, tmp_path):
    """``mv a b`` over an indexed b is a move: a's row takes the path b (b's recording is gone, and
    its row with its tags); ``cp -p c e`` before c is re-rendered stays an edited c (its tags stay)
    and a new e."""
    idx = tmp_path / "idx"
    index([lib], idx)
    label(idx, lib / "b.wav", "rain", "steady noise")
    label(idx, lib / "c.wav", "sweep", "a rising chirp")
    before = rows(idx)
    os.replace(lib / "a.wav", lib / "b.wav")
    shutil.copy2(lib / "c.wav", lib / "e.wav")
    write(lib / "c.wav", chirp(300, 900, 2.0, 16000), 16000)
    model = FakeModel()
    s = index([lib], idx, model)
    assert (s.moved, s.updated, s.added, s.removed) == (1, 1, 1, 1) and model.calls
    after = rows(idx)
    assert after[str(lib / "b.wav")]["id"] == before[str(lib / "a.wav")]["id"]
    assert after[str(lib / "b.wav")]["tags"] == []
    assert after[str(lib / "c.wav")]["tags"] == [("sweep", "user")]
    assert after[str(lib / "e.wav")]["id"] != before[str(lib / "c.wav")]["id"]


def test_files_of_equal_size_and_time_that_swap_names_are_not_seen(lib, tmp_path):
    """The limit that stays: a run that trusts size and time cannot see two files of the same size and
    time swap names (their paths look unchanged); nothing is read to find out."""
    for name in ("a.wav", "b.wav"):
        write(lib / name, tone(440 if name == "a.wav" else 660, 1.0, 16000), 16000)
        os.utime(lib / name, ns=(1_600_000_000_000_000_000,) * 2)
    idx = tmp_path / "idx"
    index([lib], idx)
    before = rows(idx)
    rename_all({lib / "a.wav": lib / "b.wav", lib / "b.wav": lib / "a.wav"})
    s = index([lib], idx, FakeModel())
    assert (s.moved, s.unchanged) == (0, 3) and rows(idx) == before
