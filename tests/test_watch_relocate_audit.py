"""Audit of watch / moves / relocate as a sound designer hits them (regressions found then)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from indexer import build_index
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_index_moves import label, rows

SR = 16_000


def _index(paths, idx: Path) -> None:
    build_index([str(p) for p in paths], idx, FakeModel(), workers=0, progress=False)


def test_relocate_old_named_through_a_dangling_symbolic_link(tmp_path):
    # ~/Sounds was a link to the drive; the catalog holds the drive's paths. The drive is now
    # mounted elsewhere (the link dangles) and the user names the folder as they always did.
    drive = (tmp_path / "Volumes" / "SFX" / "Sounds").resolve()
    write(drive / "Doors" / "slam.wav", noise(1.0, SR, seed=1), SR)
    write(drive / "rain.wav", tone(300, 1.5, SR), SR)
    link = tmp_path / "home" / "Sounds"
    link.parent.mkdir()
    link.symlink_to(drive)
    idx = tmp_path / "idx"
    _index([link], idx)
    label(idx, drive / "rain.wav", "fav", "heavy rain")
    moved = (tmp_path / "media" / "SFX" / "Sounds").resolve()
    moved.parent.mkdir(parents=True)
    shutil.move(str(drive), str(moved))
    assert not link.exists() and link.is_symlink()

    from indexer.relocate import relocate
    plan = relocate(idx, link, moved)

    assert plan.old == str(drive) and len(plan.renames) == 2 and not plan.missing
    after = rows(idx)
    assert sorted(after) == [str(moved / "Doors" / "slam.wav"), str(moved / "rain.wav")]
    assert after[str(moved / "rain.wav")]["tags"] == [("fav", "user")]


def test_relocate_old_named_through_a_live_symbolic_link_dry_run_changes_nothing(tmp_path):
    lib = (tmp_path / "lib").resolve()
    write(lib / "a.wav", tone(500, 1.0, SR), SR)
    os.symlink(lib, tmp_path / "liblink")
    idx = tmp_path / "idx"
    _index([lib], idx)
    shutil.copytree(lib, tmp_path / "copy")
    before = rows(idx)

    from indexer.relocate import relocate
    plan = relocate(idx, tmp_path / "liblink", tmp_path / "copy", dry_run=True)

    assert plan.renames == {str(lib / "a.wav"): str((tmp_path / "copy" / "a.wav").resolve())}
    assert rows(idx) == before and plan.generation == 0
