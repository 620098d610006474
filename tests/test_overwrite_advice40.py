"""A file moved over an indexed one that a library sheet described (``mv a b``): b's recording is
gone, so the warning must not tell the user to import the sheet again "once the files are back" —
that would describe a's recording, now at b, with b's row. It says to edit or delete that row
first; a sheet-described file that was only deleted still gets the re-import advice."""
from __future__ import annotations

import logging
import os

from indexer.metadata_sheet import import_sheet
from tests.index_fakes import FakeModel
from tests.test_index_moves import index
from tests.test_index_overwrite import lib  # noqa: F401  (the fixture)


def _describe(idx, lib, sheet_dir, names):  # noqa: F811
    sheet = sheet_dir / "vendor.csv"
    sheet.write_text("Filename,Description\n" + "".join(f"{n},{n} as the vendor describes it\n" for n in names))
    assert import_sheet(idx, sheet).files == len(names)
    return sheet


def _warning(caplog) -> str:
    return " ".join(r.getMessage() for r in caplog.records if "gone from the library" in r.getMessage())


def test_an_overwritten_files_sheet_row_is_not_advised_for_reimport(lib, tmp_path, caplog):  # noqa: F811
    idx = tmp_path / "idx"
    index([lib], idx)
    _describe(idx, lib, tmp_path, ["b.wav"])
    os.replace(lib / "Doors" / "a.wav", lib / "b.wav")          # mv a b: b's recording is gone
    with caplog.at_level(logging.WARNING, logger="indexer.runner"):
        index([lib], idx, FakeModel())
    said = _warning(caplog)
    assert f"{lib / 'b.wav'} (sheet vendor.csv): overwritten by {lib / 'Doors' / 'a.wav'}, moved there" in said
    assert "once the files are back" not in said
    assert "edit or delete the row before importing its sheet again" in said


def test_a_deleted_files_sheet_is_still_advised_for_reimport(lib, tmp_path, caplog):  # noqa: F811
    idx = tmp_path / "idx"
    index([lib], idx)
    sheet = _describe(idx, lib, tmp_path, ["c.wav"])
    os.remove(lib / "c.wav")
    with caplog.at_level(logging.WARNING, logger="indexer.runner"):
        index([lib], idx, FakeModel())
    said = _warning(caplog)
    assert f"once the files are back, and they are described again: `soundsift sheet import {sheet}" in said
    assert "edit or delete the row" not in said
