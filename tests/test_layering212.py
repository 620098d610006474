"""Layering clean-ups (helper 212, session 42): engine imports nothing from indexer, ui or trainer
(DESIGN.md: ``ui → engine``, ``indexer → engine``, ``trainer → engine``), imports inside functions
included; a model folder's ``model_type`` is read by one function (engine.models.factory.model_type_of);
the sheets a library holds but no import brought in are told by indexer.metadata_sheet; and
`sheet remove` reads the files' sheet layers once."""
from __future__ import annotations

import ast
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from engine.catalog import FileMetadata, open_catalog
from engine.errors import InvalidQuery, ModelUnavailable
from indexer.metadata_sheet import import_sheet, remove_sheet, sheet_counts
from tests.test_sheet_roundtrip40 import indexed, sheet_fields, sheet_rows  # noqa: F401 (indexed: the fixture)

ROOT = Path(__file__).resolve().parents[1]
#: the packages engine must not import (they import engine)
OUTSIDE = ("indexer", "ui", "trainer")


def imported_modules(source: str, package: str) -> list[str]:
    """Every module the Python ``source`` of a module of ``package`` (dotted) imports, at its top or
    inside a function or class, relative imports resolved; for ``from X import y``, both X and X.y
    (y may be a module)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[:len(parts) - node.level + 1] if node.level else []
            name = ".".join([*base, node.module] if node.module else base)
            found.append(name)
            found += [f"{name}.{alias.name}" for alias in node.names]
    return found


def engine_imports_outside() -> dict[str, list[str]]:
    """Each module file under engine/ → the modules of :data:`OUTSIDE` it imports (none listed: none)."""
    crossing: dict[str, list[str]] = {}
    for path in sorted((ROOT / "engine").rglob("*.py")):
        rel = path.relative_to(ROOT)
        names = imported_modules(path.read_text(encoding="utf-8"), ".".join(rel.parent.parts))
        outside = sorted({n for n in names if n.split(".")[0] in OUTSIDE})
        if outside:
            crossing[rel.as_posix()] = outside
    return crossing


def test_no_engine_module_imports_indexer_ui_or_trainer():
    assert engine_imports_outside() == {}


def test_the_check_sees_imports_in_functions_and_relative_ones_that_leave_engine():
    source = ("import numpy as np\n"
              "from ..query import SoundIndex\n"
              "def f():\n    from indexer.decode import START_METHOD\n"
              "class C:\n    def g(self):\n        import ui.cli.app\n"
              "from ...trainer import loop\n")
    names = imported_modules(source, "engine.models")
    assert {"numpy", "engine.query", "engine.query.SoundIndex", "indexer.decode", "ui.cli.app",
            "trainer", "trainer.loop"} <= set(names)
    assert not {n for n in imported_modules(source, "engine.models") if n.startswith("engine.models")}


def test_model_type_of_reads_the_folders_config(tmp_path):
    from engine.models.factory import BUNDLED, model_type_of
    assert model_type_of(BUNDLED["soundsift-fast"]) == "soundsift-clap"
    (tmp_path / "config.json").write_text('{"hidden_size": 8}')
    assert model_type_of(tmp_path) == ""
    with pytest.raises(OSError):
        model_type_of(tmp_path / "gone")


@pytest.mark.parametrize("config, said", [(b"{not json", "not valid JSON"), (b"\xff\xfe{}", "not valid JSON"),
                                          (b'["soundsift-clap"]', "not a JSON object")])
def test_a_config_that_does_not_read_is_named_by_load_model_and_left_alone_by_the_fingerprint_check(
        tmp_path, config, said):
    """load_model names the file and the reason (a list or undecodable bytes raised AttributeError
    or UnicodeDecodeError before); the check whether an index's model changed tells nothing."""
    from engine.models.factory import load_model
    from indexer.index_model import fingerprint_now
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_bytes(config)
    with pytest.raises(ModelUnavailable, match=said) as raised:
        load_model(folder)
    assert str(folder / "config.json") in str(raised.value)
    assert fingerprint_now(str(folder)) is None


def test_the_fingerprint_check_passes_over_a_model_of_another_backend(tmp_path):
    from indexer.index_model import fingerprint_now
    (tmp_path / "config.json").write_text('{"model_type": "clap"}')
    assert fingerprint_now(str(tmp_path)) is None
    assert fingerprint_now("soundsift-fast")        # read from its files, not loaded


def test_the_sheets_among_a_librarys_files_that_no_import_brought_in(indexed, tmp_path):
    from indexer.metadata_sheet import sheets_not_imported
    lib, idx = indexed
    imported, other = lib / "vendor.csv", lib / "notes.csv"
    imported.write_text("Filename,Description\nbeep.wav,Beep\n")
    other.write_text("Filename,Description\nrain.wav,Rain\n")
    import_sheet(idx, imported)
    catalog = open_catalog(idx / "catalog.db")
    try:
        assert sheets_not_imported(catalog, [str(other), str(imported)]) == [str(other)]
        assert sheets_not_imported(catalog, []) == []
    finally:
        catalog.dispose()


@contextmanager
def metadata_value_reads() -> Iterator[list[str]]:
    """The SELECTs run through a catalog session that fetch file_metadata values (what a file's
    sheet layers are read from), as SQL text, while the block runs."""
    reads: list[str] = []

    def seen(state) -> None:
        if state.is_select and any(getattr(c, "table", None) is FileMetadata.__table__ and c.name == "value"
                                   for c in state.statement.selected_columns):
            reads.append(str(state.statement))

    event.listen(Session, "do_orm_execute", seen)
    try:
        yield reads
    finally:
        event.remove(Session, "do_orm_execute", seen)


def test_removing_a_sheet_reads_the_files_sheet_layers_once(indexed, tmp_path):
    """They were read for every described file to find which ones the sheet describes, then again
    for those to rewrite them."""
    lib, idx = indexed
    vendor, other = tmp_path / "vendor.csv", tmp_path / "other.csv"
    vendor.write_text("Filename,Description\nbeep.wav,Beep\nrain.wav,Rain\ndoor.wav,Door\n")
    other.write_text("Filename,Category\nbeep.wav,UI\n")
    import_sheet(idx, vendor)
    import_sheet(idx, other)                     # beep's vendor layer is shadowed
    with metadata_value_reads() as reads:
        assert remove_sheet(idx, "vendor.csv") == 3
    assert len(reads) == 1, reads
    assert sheet_fields(idx) == {"beep.wav": {"category": "UI"}}
    assert sheet_counts(idx) == {"other.csv": 1}


def test_a_sheet_is_removed_by_its_path_when_it_was_imported_by_another_name(indexed, tmp_path):
    """A sheet imported through a link keeps the link's name and the real file's path: the path
    finds it, standing or shadowed."""
    lib, idx = indexed
    real = tmp_path / "sheets" / "real.csv"
    real.parent.mkdir()
    real.write_text("Filename,Description\nbeep.wav,Beep\nrain.wav,Rain\n")
    alias = tmp_path / "alias.csv"
    os.symlink(real, alias)
    import_sheet(idx, alias)
    later = tmp_path / "later.csv"
    later.write_text("Filename,Description\nrain.wav,Rain later\n")
    import_sheet(idx, later)                     # rain's alias.csv layer is shadowed
    assert sheet_counts(idx) == {"alias.csv": 1, "later.csv": 1}
    with pytest.raises(InvalidQuery, match="no file of index"):
        remove_sheet(idx, str(tmp_path / "elsewhere" / "real.csv"))
    assert remove_sheet(idx, str(real)) == 2
    assert sheet_counts(idx) == {"later.csv": 1}
    assert set(sheet_rows(idx)) == {"rain.wav"}
