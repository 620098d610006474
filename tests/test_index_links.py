"""Files reached through symbolic links to places outside the library leave the index with the link.

The catalog keeps resolved paths, so such files lie outside the roots a run drops files under;
indexer.links remembers the links, and a run drops what it no longer reaches through its own.
"""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select

from engine.catalog import File
from indexer import build_index
from tests.conftest import catalog_session, tone, write
from tests.index_fakes import FakeModel

SR = 16000


def indexed(idx: Path) -> set[str]:
    with catalog_session(idx) as s:
        return set(s.scalars(select(File.path)))


def run(roots: list[Path], idx: Path):
    return build_index(roots, idx, FakeModel(), workers=0, progress=False)


def sound(path: Path, hz: int) -> Path:
    return write(path, tone(hz, 1.0, SR), SR).resolve()


def test_a_removed_link_and_a_deleted_target_take_their_files_out(tmp_path):
    lib, ext, idx = tmp_path / "lib", tmp_path / "ext", tmp_path / "idx"
    own = sound(lib / "own.wav", 300)
    linked = [sound(ext / "a.wav", 400), sound(ext / "b.wav", 500)]
    single = sound(tmp_path / "outside.wav", 600)
    os.symlink(ext, lib / "linked")
    os.symlink(single, lib / "one.wav")
    assert run([lib], idx).added == 4
    assert indexed(idx) == {str(own), str(single), *map(str, linked)}

    (lib / "linked").unlink()                   # the folder link goes: its files go
    s = run([lib], idx)
    assert (s.removed, s.unchanged) == (2, 2)
    assert indexed(idx) == {str(own), str(single)}

    single.unlink()                             # the target of a file link goes: the file goes
    s = run([lib], idx)
    assert s.removed == 1 and indexed(idx) == {str(own)}
    assert any(e["path"] == str((lib / "one.wav").absolute()) and "broken symbolic link" in e["reason"]
               for e in s.errors)
    assert run([lib], idx).removed == 0


def test_files_another_root_still_reaches_stay(tmp_path):
    a, b, shared, own_root, idx = (tmp_path / n for n in ("a", "b", "shared", "own", "idx"))
    sound(a / "a.wav", 300)
    sound(b / "b.wav", 350)
    kept = sound(shared / "s.wav", 400)
    mine = sound(own_root / "o.wav", 450)
    os.symlink(shared, a / "shared")
    os.symlink(shared, b / "shared")            # two libraries link the same folder
    os.symlink(own_root, a / "own")             # a folder also indexed as a root of its own
    run([a], idx)
    run([b], idx)
    run([own_root], idx)
    assert {str(kept), str(mine)} <= indexed(idx)
    (a / "shared").unlink()
    (a / "own").unlink()
    s = run([a], idx)
    assert s.removed == 0 and {str(kept), str(mine)} <= indexed(idx)
    (b / "shared").unlink()                     # the last link to it goes
    assert run([b], idx).removed == 1 and str(kept) not in indexed(idx)
    assert str(mine) in indexed(idx)


def test_a_library_given_through_a_link_of_its_own_is_the_same_library(tmp_path):
    real, ext, idx = tmp_path / "sfx", tmp_path / "ext", tmp_path / "idx"
    sound(real / "own.wav", 300)
    linked = sound(ext / "a.wav", 400)
    os.symlink(ext, real / "linked")
    os.symlink(real, tmp_path / "Sounds")        # ~/Sounds → /mnt/sfx
    run([tmp_path / "Sounds"], idx)
    assert str(linked) in indexed(idx)
    (real / "linked").unlink()
    assert run([real], idx).removed == 1 and str(linked) not in indexed(idx)
