"""`soundsift index … --rebuild`, audit of session 34: symbolic links out of the library, and what
the run says it embeds against what its summary counts.

The tiny random CLAP (tests/tiny_models.py) builds and rebuilds the indexes, as a user's run would.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from engine.catalog import File
from engine.errors import RebuildFailed
from indexer import build_index
from tests.conftest import catalog_session, chirp, noise, tone, write
from ui.cli import app

SR = 16000


def indexed(idx: Path) -> set[str]:
    with catalog_session(idx) as s:
        return set(s.scalars(select(File.path)))


def leftovers(idx: Path) -> list[str]:
    return sorted(p.name for p in idx.parent.iterdir() if p.name.startswith(idx.name + "."))


@pytest.fixture
def linked_lib(tmp_path) -> tuple[Path, Path]:
    """``lib`` with a file of its own, a link to an audio file outside it and a link to a folder
    outside it (a name in CJK, as in the audit); returns (lib, the folder outside)."""
    outside = (tmp_path / "outside").resolve()
    write(outside / "outside_tone.wav", tone(660, 1.0, SR), SR)
    write(outside / "shared" / "far.wav", chirp(200, 900, 1.0, SR), SR)
    lib = (tmp_path / "lib2").resolve()
    write(lib / "own.wav", noise(1.0, SR, seed=3), SR)
    (lib / "链接").mkdir()
    os.symlink(outside / "outside_tone.wav", lib / "链接" / "outside.wav")
    os.symlink(outside / "shared", lib / "链接" / "shared")
    return lib, outside


def test_a_rebuild_keeps_the_files_its_folder_reaches_through_links(linked_lib, tmp_path, tiny_clap_dir):
    lib, outside = linked_lib
    idx = tmp_path / "idx"
    build_index([lib], idx, str(tiny_clap_dir), workers=0, progress=False)
    held = {str(lib / "own.wav"), str(outside / "outside_tone.wav"), str(outside / "shared" / "far.wav")}
    assert indexed(idx) == held             # kept by their resolved paths, outside lib

    s = build_index([lib], idx, str(tiny_clap_dir), workers=0, progress=False, rebuild=True)

    assert s.rebuild and (s.added, s.updated, s.removed, s.failed) == (0, 3, 0, 0)
    assert indexed(idx) == held and leftovers(idx) == []


def test_a_rebuild_still_refuses_what_its_folder_does_not_reach(linked_lib, tmp_path, tiny_clap_dir):
    """A file beside a link's target that the link does not reach, indexed from its own folder,
    is outside the given paths; a file deleted in a linked folder is simply gone."""
    lib, outside = linked_lib
    write(outside / "beside.wav", tone(330, 1.0, SR), SR)
    idx = tmp_path / "idx"
    build_index([lib], idx, str(tiny_clap_dir), workers=0, progress=False)
    build_index([outside / "beside.wav"], idx, str(tiny_clap_dir), workers=0, progress=False)
    (outside / "shared" / "far.wav").unlink()           # gone from the linked folder: no loss to refuse
    before = indexed(idx)

    with pytest.raises(RebuildFailed, match=r"also holds 1 file outside the given paths \(in "
                                            + re.escape(str(outside)) + r"\)"):
        build_index([lib], idx, str(tiny_clap_dir), workers=0, progress=False, rebuild=True)
    assert indexed(idx) == before and leftovers(idx) == []

    s = build_index([lib, outside / "beside.wav"], idx, str(tiny_clap_dir), workers=0, progress=False,
                    rebuild=True)
    assert (s.added, s.updated, s.removed) == (0, 3, 1)
    assert indexed(idx) == {str(lib / "own.wav"), str(outside / "outside_tone.wav"), str(outside / "beside.wav")}


def test_a_dangling_link_into_the_index_is_refused_as_a_drive_that_may_be_unmounted(
        linked_lib, tmp_path, tiny_clap_dir):
    lib, outside = linked_lib
    idx = tmp_path / "idx"
    build_index([lib], idx, str(tiny_clap_dir), workers=0, progress=False)
    before = indexed(idx)
    (outside / "outside_tone.wav").rename(tmp_path / "away.wav")    # as when its drive is not mounted

    with pytest.raises(RebuildFailed, match=r"holds 1 file reached through symbolic links whose targets "
                                            r"are missing \(.*链接/outside.wav → .*outside_tone.wav\).*"
                                            r"Nothing was changed"):
        build_index([lib], idx, str(tiny_clap_dir), workers=0, progress=False, rebuild=True)
    assert indexed(idx) == before and leftovers(idx) == []


def test_the_rebuild_says_what_it_embeds_as_its_summary_counts_it(tmp_path, tiny_clap_dir):
    """The audit: `added: 1, unchanged: 0` for 49 rebuilt files while the log said "54 new" (the
    files were counted against the empty folder the new index is built in)."""
    lib = (tmp_path / "lib").resolve()
    write(lib / "keep.wav", tone(440, 1.0, SR), SR)
    write(lib / "edited.wav", noise(1.0, SR, seed=1), SR)
    write(lib / "gone.wav", chirp(300, 600, 1.0, SR), SR)
    (lib / "bad.wav").write_text("not audio")
    idx = tmp_path / "idx"
    build_index([lib], idx, str(tiny_clap_dir), workers=0, progress=False)
    (lib / "gone.wav").unlink()
    write(lib / "edited.wav", noise(1.5, SR, seed=2), SR)
    write(lib / "new.wav", chirp(500, 2000, 1.0, SR), SR)

    r = CliRunner().invoke(app, ["index", str(lib), "--index", str(idx), "--model", str(tiny_clap_dir),
                                 "--rebuild", "--workers", "0", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    # against the index it replaces: 2 files it held embedded again, 1 it did not, 1 it held gone
    assert (s["added"], s["updated"], s["removed"], s["moved"], s["unchanged"], s["failed"]) == (1, 2, 1, 0, 0, 1)
    lines = [line for line in r.stderr.splitlines() if line.startswith("INFO indexer.")]
    said = [line for line in lines if ": rebuilding 4 files:" in line]
    assert said == [f"INFO indexer.rebuild: {idx}: rebuilding 4 files: 2 indexed before (1 changed since), "
                    "1 new (and 1 that failed before, tried again), 1 indexed file not found, 0 unusable "
                    "entries"], lines
    assert not [line for line in lines if " new" in line and line not in said], lines


def test_files_in_a_linked_folder_that_cannot_be_listed_are_not_dropped(linked_lib, tmp_path, tiny_clap_dir,
                                                                         monkeypatch):
    """Reached through a link, an unreadable folder is named as walked (lib2/链接/shared) while its
    files are indexed by their resolved paths (outside/shared/…): they are still refused."""
    from indexer import rebuild as rebuilding
    from indexer.scan import ScanError
    lib, outside = linked_lib
    idx = tmp_path / "idx"
    build_index([lib], idx, str(tiny_clap_dir), workers=0, progress=False)
    before = indexed(idx)
    shared = str(lib / "链接" / "shared")
    real_scan = rebuilding.scan

    def scan_without_shared(paths):         # as when outside/shared turns unreadable
        result = real_scan(paths)
        result.files = {p: f for p, f in result.files.items() if not p.startswith(str(outside / "shared"))}
        result.errors.append(ScanError(shared, "cannot list folder: permission denied", folder=True))
        return result
    monkeypatch.setattr(rebuilding, "scan", scan_without_shared)
    with pytest.raises(RebuildFailed, match=r"could not list .*链接/shared \(cannot list folder: permission "
                                            r"denied; 1 indexed file\).*the index is unchanged"):
        build_index([lib], idx, str(tiny_clap_dir), workers=0, progress=False, rebuild=True)
    assert indexed(idx) == before and leftovers(idx) == []
