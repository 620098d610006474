"""The warning of notes a rebuild drops (indexer.rebuild._warn_of_dropped, worded by
indexer.runner.warn_of_dropped_notes) names the sheet to import again (session 39): a file's
``sheet:`` rows written into the catalog by hand, with neither the sheet's name nor its path,
made it advise `soundsift sheet import ''` and label the file "sheet ". Such rows name no sheet
file, so the warning says they cannot be imported again, and why; a real sheet beside them is
still named.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from sqlalchemy import select

from engine.catalog import File, FileMetadata
from engine.file_metadata import SHEET_PREFIX
from indexer import build_index
from tests.conftest import catalog_session, noise, write
from tests.index_fakes import FakeModel, WideModel

SR = 16000


def hand_made_rows(idx: Path, path: Path) -> None:
    """``sheet:`` fields on the indexed file at ``path`` with no sheet name nor path beside them,
    as someone writing the catalog by hand (not `soundsift sheet import`) leaves them."""
    with catalog_session(idx, write=True) as s:
        fid = s.scalar(select(File.id).where(File.path == str(path)))
        s.add_all([FileMetadata(file_id=fid, key=SHEET_PREFIX + "Description", value="door slam, hand typed"),
                   FileMetadata(file_id=fid, key=SHEET_PREFIX + "Category", value="Doors")])


def dropped_warning(lib: Path, idx: Path, caplog) -> str:
    """The one warning of dropped notes a rebuild of ``lib`` into ``idx`` gives."""
    with caplog.at_level(logging.INFO, logger="indexer"):
        build_index([lib], idx, WideModel(name="wide", fingerprint="wide-v1"), workers=0, progress=False,
                    rebuild=True)
    warned = [r.getMessage() for r in caplog.records
              if r.levelno == logging.WARNING and "gone from the library" in r.getMessage()]
    assert len(warned) == 1, warned
    return warned[0]


def library(tmp_path: Path) -> tuple[Path, Path]:
    lib = (tmp_path / "lib").resolve()
    for i in range(3):
        write(lib / f"door_{i}.wav", noise(1.0 + 0.25 * i, SR, seed=i), SR)
    idx = tmp_path / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    return lib, idx


def test_rows_naming_no_sheet_are_said_to_be_beyond_reimport_not_advised_as_an_empty_name(tmp_path, caplog):
    lib, idx = library(tmp_path)
    hand_made_rows(idx, lib / "door_0.wav")
    (lib / "door_0.wav").unlink()

    said = dropped_warning(lib, idx, caplog)

    assert "sheet import ''" not in said and "sheet import  " not in said
    assert "sheet )" not in said and "sheet ," not in said
    assert f"{lib / 'door_0.wav'} (sheet rows naming no sheet file)" in said
    assert "--index" not in said                         # no sheet import is advised: there is no sheet
    assert "cannot be imported again" in said and "no sheet file" in said


def test_a_real_sheet_beside_rows_naming_none_is_still_named(tmp_path, caplog):
    from indexer.metadata_sheet import import_sheet
    lib, idx = library(tmp_path)
    sheet = lib / "metadata.csv"
    sheet.write_text("Filename,Description\ndoor_1.wav,Door 1 creaks\n")
    import_sheet(idx, sheet)
    hand_made_rows(idx, lib / "door_0.wav")
    for i in (0, 1):
        os.unlink(lib / f"door_{i}.wav")

    said = dropped_warning(lib, idx, caplog)

    assert f"{lib / 'door_1.wav'} (sheet metadata.csv)" in said
    assert f"{lib / 'door_0.wav'} (sheet rows naming no sheet file)" in said
    assert f"`soundsift sheet import {sheet} --index {idx}`" in said
    assert "sheet import ''" not in said
    assert "cannot be imported again" in said
