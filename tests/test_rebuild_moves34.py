"""`soundsift index … --rebuild` keeps what an index run keeps (session 34): the tags, captions and
library-sheet rows of files moved or renamed since the last run follow them (found as an index
run finds them: indexer.moves), and files the index holds that cannot be read this time are not
dropped with their tags: the rebuild is refused, naming them, and the index stays as it was.

FakeModel and WideModel (tests/index_fakes.py, tests/test_index_rebuild.py) stand in for the old
and the new model.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from sqlalchemy import select

from engine.catalog import Caption, File, FileMetadata, Tag
from engine.errors import RebuildFailed
from engine.file_metadata import SHEET_PREFIX
from indexer import build_index
from tests.conftest import catalog_session, chirp, noise, tone, write
from tests.test_index_rebuild import model_a as old_model, model_b as new_model

SR = 16000


@pytest.fixture
def lib(tmp_path) -> Path:
    """Three recordings of different lengths (so different sizes), indexed by name below."""
    lib = (tmp_path / "lib").resolve()
    write(lib / "door.wav", chirp(200, 3000, 1.0, SR), SR)
    write(lib / "sub" / "wind.wav", noise(1.5, SR, seed=1), SR)
    write(lib / "beep.wav", tone(440, 2.0, SR), SR)
    return lib


def annotate(idx: Path, name: str, word: str) -> None:
    """What a user and a library sheet say of the file named ``name``: a user tag and caption, a
    YAMNet tag and a sheet description, each carrying ``word``."""
    with catalog_session(idx, write=True) as s:
        fid = next(i for i, p in s.execute(select(File.id, File.path)) if Path(p).name == name)
        s.add_all([Tag(file_id=fid, label=f"{word} tag", score=1.0, source="user"),
                   Tag(file_id=fid, label=f"{word} yamnet", score=0.5, source="yamnet"),
                   Caption(file_id=fid, text=f"{word} caption", source="user"),
                   FileMetadata(file_id=fid, key=SHEET_PREFIX + "description", value=f"{word} sheet")])


def notes(idx: Path, lib: Path) -> dict[str, set[str]]:
    """Every indexed file (path under ``lib``) → its tags, captions and sheet rows, as text."""
    with catalog_session(idx) as s:
        out: dict[str, set[str]] = {os.path.relpath(p, lib): set() for p in s.scalars(select(File.path))}
        for path, label in s.execute(select(File.path, Tag.label).join(Tag)):
            out[os.path.relpath(path, lib)].add(label)
        for path, text in s.execute(select(File.path, Caption.text).join(Caption)):
            out[os.path.relpath(path, lib)].add(text)
        for path, value in s.execute(select(File.path, FileMetadata.value).join(FileMetadata)
                                     .where(FileMetadata.key.like(SHEET_PREFIX + "%"))):
            out[os.path.relpath(path, lib)].add(value)
        return out


def built(lib: Path, tmp_path: Path) -> Path:
    idx = tmp_path / "idx"
    build_index([lib], idx, old_model(), workers=0, progress=False)
    for name, word in (("door.wav", "door"), ("wind.wav", "wind"), ("beep.wav", "beep")):
        annotate(idx, name, word)
    return idx


def every(word: str) -> set[str]:
    return {f"{word} tag", f"{word} yamnet", f"{word} caption", f"{word} sheet"}


def rebuild(lib: Path, idx: Path):
    return build_index([lib], idx, new_model(), workers=0, progress=False, rebuild=True)


def leftovers(idx: Path) -> list[str]:
    return sorted(p.name for p in idx.parent.iterdir() if p.name.startswith(idx.name + "."))


# -- 1. moved or renamed files keep their tags, captions and sheet rows --------------------------
def test_files_moved_or_renamed_since_keep_their_notes_through_a_rebuild(lib, tmp_path, caplog):
    idx = built(lib, tmp_path)
    (lib / "sorted").mkdir()
    os.rename(lib / "door.wav", lib / "sorted" / "door.wav")            # moved (mv keeps size and time)
    os.rename(lib / "sub" / "wind.wav", lib / "sub" / "wind_02.wav")    # renamed

    with caplog.at_level(logging.INFO, logger="indexer"):
        s = rebuild(lib, idx)

    assert notes(idx, lib) == {"sorted/door.wav": every("door"), "sub/wind_02.wav": every("wind"),
                               "beep.wav": every("beep")}
    # counted as an index run counts them: moved, not added and removed
    assert (s.added, s.updated, s.removed, s.moved, s.failed) == (0, 1, 0, 2, 0)
    assert s.carried_over == {"tags": 6, "captions": 3}
    assert s.not_carried_over == {"tags": 0, "captions": 0}
    assert f"{idx}: rebuilding 3 files: 1 indexed before (0 changed since), 0 new, 2 moved or renamed, " \
           "0 indexed files not found" in caplog.text
    assert "2 files moved or renamed since the index was last run kept 4 tags and 2 captions" in caplog.text
    assert leftovers(idx) == []


def test_a_rebuild_still_drops_what_was_really_deleted(lib, tmp_path):
    """A file deleted (not moved) leaves with its rows; a new file of another size is no move."""
    idx = built(lib, tmp_path)
    (lib / "beep.wav").unlink()
    write(lib / "beep2.wav", tone(440, 2.5, SR), SR)

    s = rebuild(lib, idx)

    assert notes(idx, lib) == {"door.wav": every("door"), "sub/wind.wav": every("wind"), "beep2.wav": set()}
    assert (s.added, s.updated, s.removed, s.moved) == (1, 2, 1, 0)


def test_two_files_that_swapped_names_keep_their_own_notes(lib, tmp_path):
    """By path each would keep the other's user tags and captions (an 'edit in place')."""
    idx = built(lib, tmp_path)
    os.rename(lib / "door.wav", lib / "swap.tmp")
    os.rename(lib / "beep.wav", lib / "door.wav")
    os.rename(lib / "swap.tmp", lib / "beep.wav")

    s = rebuild(lib, idx)

    assert notes(idx, lib) == {"door.wav": every("beep"), "beep.wav": every("door"), "sub/wind.wav": every("wind")}
    assert (s.added, s.updated, s.removed, s.moved) == (0, 1, 0, 2)


def test_a_file_moved_over_an_indexed_one_brings_its_notes_and_the_other_s_go(lib, tmp_path):
    """`mv door.wav beep.wav`: beep.wav's recording is gone, door's rows take its path."""
    idx = built(lib, tmp_path)
    os.replace(lib / "door.wav", lib / "beep.wav")

    s = rebuild(lib, idx)

    assert notes(idx, lib) == {"beep.wav": every("door"), "sub/wind.wav": every("wind")}
    assert (s.added, s.updated, s.removed, s.moved) == (0, 1, 1, 1)


# -- 2. indexed files that cannot be read this time are not dropped -----------------------------
def test_a_rebuild_refuses_to_drop_indexed_files_that_do_not_read_now(lib, tmp_path):
    idx = built(lib, tmp_path)
    (lib / "never_read.wav").write_bytes(b"not audio either")      # never indexed: no loss, just a failure
    before = notes(idx, lib)
    (lib / "beep.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVE broken by a bad copy")

    with pytest.raises(RebuildFailed) as e:
        rebuild(lib, idx)

    msg = str(e.value)
    assert f"1 indexed file could not be read this time: {lib / 'beep.wav'} (" in msg
    assert str(lib / "never_read.wav") not in msg
    assert "would drop it with its tags and captions" in msg and "the index is unchanged" in msg
    assert notes(idx, lib) == before and leftovers(idx) == []

    (lib / "beep.wav").unlink()             # the user lets it go: the rebuild goes through without it
    s = rebuild(lib, idx)
    assert (s.added, s.updated, s.removed, s.failed) == (0, 2, 1, 1)
    assert s.errors == [{"path": str(lib / "never_read.wav"), "reason": s.errors[0]["reason"]}]
    assert set(notes(idx, lib)) == {"door.wav", "sub/wind.wav"}


def test_a_moved_file_that_does_not_read_now_is_not_dropped_either(lib, tmp_path, monkeypatch):
    """Found moved by its header and fingerprint, but failing to decode (a bad sector past the
    header): refused as well, the index as it was."""
    from indexer import decode
    idx = built(lib, tmp_path)
    os.rename(lib / "sub" / "wind.wav", lib / "wind.wav")
    before = notes(idx, lib)
    real = decode.iter_segments

    def iter_segments(path, *args, **kwargs):
        if path == str(lib / "wind.wav"):
            raise OSError("read error at 1.2 s")
        return real(path, *args, **kwargs)
    monkeypatch.setattr(decode, "iter_segments", iter_segments)

    with pytest.raises(RebuildFailed, match=r"1 indexed file could not be read this time: .*wind\.wav "
                                            r"\(decoding failed: OSError: read error at 1\.2 s\)"):
        rebuild(lib, idx)
    assert notes(idx, lib) == before and leftovers(idx) == []


# -- what the command says ----------------------------------------------------------------------
def test_the_command_says_what_moved_and_what_could_not_be_read(lib, tmp_path, tiny_clap_dir):
    from typer.testing import CliRunner

    from ui.cli import app
    idx = tmp_path / "idx"
    args = ["index", str(lib), "--index", str(idx), "--model", str(tiny_clap_dir), "--workers", "0"]
    assert CliRunner().invoke(app, args).exit_code == 0
    annotate(idx, "wind.wav", "wind")
    os.rename(lib / "sub" / "wind.wav", lib / "wind.wav")

    r = CliRunner().invoke(app, args + ["--rebuild"])
    assert r.exit_code == 0, r.output
    assert "moved or renamed" in r.stdout and "1 (kept their tags and captions)" in r.stdout
    assert notes(idx, lib)["wind.wav"] == every("wind")

    (lib / "wind.wav").write_bytes(b"garbage")
    r = CliRunner().invoke(app, args + ["--rebuild", "--json"])
    assert r.exit_code == 1 and not r.stdout
    said = " ".join(r.stderr.split())
    assert f"1 indexed file could not be read this time: {lib / 'wind.wav'} (" in said, said
    assert "the index is unchanged" in said and "Traceback" not in r.output
    assert notes(idx, lib)["wind.wav"] == every("wind")
