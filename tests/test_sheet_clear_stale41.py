"""Library sheets, session 41: a cell "-" clears its field (the file's own value and an earlier
sheet's hidden from search, the category filter, the card and the next export, until the sheet is
removed), and an old `sheet export` imported after the files' own metadata changed stores nothing
for the cells still holding what the export wrote (its ExportDigest column records them)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.filters import Filters
from engine.query import SoundIndex
from indexer.metadata_sheet import import_sheet, remove_sheet
from indexer.user_tags import add_tags
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_bad_inputs import pcm16, wav_bytes
from tests.test_file_metadata import bext_chunk
from tests.test_sheet_roundtrip40 import exported, index, sheet_fields, sheet_rows, titled
from tests.test_sheet_user_tags40 import read_csv, write_csv
from ui.cli import app

run = CliRunner().invoke


def bwf(path: Path, description: str, seed: int = 7) -> Path:
    """A Broadcast WAV whose bext chunk carries ``description`` (its mtime moved on, so an index
    run reads it again)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes(pcm16(noise(1.0, 16000, seed=seed, amp=0.2)),
                               extra_chunks=bext_chunk(description.encode())))
    stamp = os.stat(path).st_mtime + 10
    os.utime(path, (stamp, stamp))
    return path


@pytest.fixture
def library(tmp_path) -> tuple[Path, Path]:
    lib = (tmp_path / "Library").resolve()
    bwf(lib / "storm_01.wav", "Thunder rolling over the hills")
    titled(lib / "Doors" / "door.wav", "Door creak", "Old oak door, slow")
    write(lib / "beep.wav", tone(1000, 0.5, 16000), 16000)
    idx = tmp_path / "idx"
    index(lib, idx)
    return lib, idx


def export_cells(idx: Path, sheet: Path) -> dict[str, dict[str, str]]:
    done = run(app, ["sheet", "export", str(sheet), "--index", str(idx)])
    assert done.exit_code == 0, done.output
    return {Path(r["Pathname"]).name: r for r in read_csv(sheet)}


def keyword_hits(idx: Path, words: str) -> set[str]:
    """The names of the files keyword search finds by ``words`` (their words, not their sound)."""
    with SoundIndex.open(idx, model=FakeModel()) as si:
        return {Path(h.path).name for h in si.search_text(words, k=3, keywords=True) if h.keywords > 0}


def shown(idx: Path, name: str) -> dict[str, str]:
    """The metadata the card and --json show for the file ``name``."""
    with SoundIndex.open(idx, model=FakeModel()) as si:
        hit = next(h for h in si.search_text("x", k=3) if Path(h.path).name == name)
        return si.get_file(hit.file_id)["metadata"]


def about(idx: Path, name: str) -> str | None:
    """The about line a search hit carries for the file ``name`` (the table's "about" column)."""
    with SoundIndex.open(idx, model=FakeModel()) as si:
        return next(h.about for h in si.search_text("x", k=3) if Path(h.path).name == name)


def test_a_dash_clears_a_files_own_description_until_the_sheet_is_removed(library, tmp_path):
    """Export, "-" in the Description of a file whose bext chunk describes it: keyword search no
    longer finds it by those words, the card shows no description, the next export writes "-"
    (and importing that back keeps it cleared); `sheet remove` gives the description back."""
    lib, idx = library
    assert keyword_hits(idx, "thunder hills") == {"storm_01.wav"}
    sheet = tmp_path / "library.csv"
    cells = export_cells(idx, sheet)
    assert cells["storm_01.wav"]["Description"] == "Thunder rolling over the hills"
    cells["storm_01.wav"]["Description"] = "-"
    write_csv(sheet, list(cells.values()))
    done = run(app, ["sheet", "import", str(sheet), "--index", str(idx), "--json"])
    assert done.exit_code == 0, done.output
    assert keyword_hits(idx, "thunder hills") == set()
    assert "description" not in shown(idx, "storm_01.wav") and about(idx, "storm_01.wav") is None
    assert exported(idx)["storm_01.wav"]["Description"] == "-"
    assert sheet_fields(idx) == {"storm_01.wav": {"description": "-"}}
    report = json.loads(done.stdout)["sheets"][0]
    assert (report["files"], report["cleared_cells"], report["own_first_cells"]) == (1, 1, 0)
    export_cells(idx, sheet)                              # the round trip keeps it cleared
    assert import_sheet(idx, sheet).files == 1
    assert sheet_fields(idx) == {"storm_01.wav": {"description": "-"}}
    assert keyword_hits(idx, "thunder") == set()

    assert remove_sheet(idx, "library.csv") == 1
    assert sheet_rows(idx) == {}
    assert keyword_hits(idx, "thunder hills") == {"storm_01.wav"}
    assert shown(idx, "storm_01.wav")["description"] == "Thunder rolling over the hills"
    assert about(idx, "storm_01.wav") == "Thunder rolling over the hills"


def test_a_dash_in_another_tools_sheet_clears_the_file_and_an_earlier_sheet(library, tmp_path):
    """A vendor's sheet (no export columns): "-" hides the file's own description, and an earlier
    sheet's category from the category filter, the categories listed and the card; a "-" where
    nothing shows is left out; removing the sheet gives both back."""
    lib, idx = library
    first = tmp_path / "first.csv"
    first.write_text("Filename,Category\nstorm_01.wav,WEATHER\nbeep.wav,UI\n")
    import_sheet(idx, first)
    vendor = tmp_path / "vendor.csv"
    vendor.write_text("Filename,Description,Category\nstorm_01.wav,-,-\nbeep.wav,-,\n")
    report = import_sheet(idx, vendor)
    assert keyword_hits(idx, "thunder hills") == set()
    with SoundIndex.open(idx, model=FakeModel()) as si:
        assert si.search_text("x", k=3, filters=Filters(categories=("weather",))) == []
        assert "WEATHER" not in si.facets()["categories"] and "-" not in si.facets()["categories"]
    info = run(app, ["info", "--index", str(idx), "--json"])
    assert info.exit_code == 0, info.output
    assert [c["category"] for c in json.loads(info.stdout)["categories"]] == ["UI"]
    row = exported(idx)["storm_01.wav"]
    assert (row["Description"], row["Category"]) == ("-", "-")
    assert sheet_fields(idx)["storm_01.wav"] == {"description": "-", "category": "-"}
    assert report.export is False
    assert (report.files, report.cleared_cells, report.unchanged_cells) == (1, 2, 1)   # beep shows no description

    assert remove_sheet(idx, "vendor.csv") == 1
    assert keyword_hits(idx, "thunder hills") == {"storm_01.wav"}
    with SoundIndex.open(idx, model=FakeModel()) as si:
        found = si.search_text("x", k=3, filters=Filters(categories=("weather",)))
        assert [Path(h.path).name for h in found] == ["storm_01.wav"]


def test_an_old_export_imported_after_the_files_changed_stores_only_its_edits(library, tmp_path):
    """Export; the files' own metadata change (re-tagged in another application) and are indexed
    again; the old export imported unedited stores nothing and the new metadata shows (a stale
    copy would have given the door back its old title and made the storm findable by its old
    words); the same export with one cell edited stores that cell alone."""
    lib, idx = library
    sheet = tmp_path / "library.csv"
    old = export_cells(idx, sheet)
    bwf(lib / "storm_01.wav", "Rain on a tin roof")
    titled(lib / "Doors" / "door.wav", None, "Oak door, re-tagged in the DAW")
    os.utime(lib / "Doors" / "door.wav", (1e9, 1e9))
    index(lib, idx)

    done = run(app, ["sheet", "import", str(sheet), "--index", str(idx), "--json"])
    assert done.exit_code == 0, done.output
    assert sheet_rows(idx) == {}
    assert keyword_hits(idx, "thunder hills") == set()
    assert "title" not in shown(idx, "door.wav")
    assert shown(idx, "door.wav")["comment"] == "Oak door, re-tagged in the DAW"
    assert shown(idx, "storm_01.wav")["description"] == "Rain on a tin roof"
    report = json.loads(done.stdout)["sheets"][0]
    assert (report["files"], report["unchanged_cells"], report["as_exported_cells"]) == (0, 3, 3)
    assert old["storm_01.wav"]["ExportDigest"].startswith("index:")
    assert old["storm_01.wav"]["ExportDigest"].split()[1].startswith("description:")

    old["door.wav"]["Category"] = "DOORS"                # an edit of the same old export is stored
    write_csv(sheet, list(old.values()))
    report = import_sheet(idx, sheet)
    assert sheet_fields(idx) == {"door.wav": {"category": "DOORS"}}
    assert "title" not in shown(idx, "door.wav")
    assert (report.files, report.as_exported_cells) == (1, 3)


def test_an_old_exports_tags_cell_left_alone_keeps_the_tags_added_since(library, tmp_path):
    """A UserTags cell still listing the tags the file had at export keeps those added since;
    one edited sets the file's tags to it, as before."""
    lib, idx = library
    add_tags(idx, [str(lib / "beep.wav"), str(lib / "Doors" / "door.wav")], ["ep3"])
    sheet = tmp_path / "library.csv"
    cells = export_cells(idx, sheet)
    add_tags(idx, [str(lib / "beep.wav"), str(lib / "Doors" / "door.wav")], ["keeper"])
    cells["door.wav"]["UserTags"] = "ep3, creaky"
    write_csv(sheet, list(cells.values()))
    report = import_sheet(idx, sheet)
    assert (report.tag_files, report.tags_added, report.tags_removed, report.tags_left) == (1, 1, 1, 0)
    tagged = run(app, ["tags", "list", "--index", str(idx), "--json"])
    assert sorted((t["tag"], t["files"]) for t in json.loads(tagged.stdout)) == [
        ("creaky", 1), ("ep3", 2), ("keeper", 1)]


def test_a_reexported_edit_imported_unedited_is_kept(library, tmp_path):
    """An edit imported, then the sheet exported again to the same file and imported unedited:
    its cell holds what the export wrote, so this sheet's edit stays as it was."""
    lib, idx = library
    sheet = tmp_path / "library.csv"
    cells = export_cells(idx, sheet)
    cells["beep.wav"]["Description"] = "A short UI beep"
    write_csv(sheet, list(cells.values()))
    import_sheet(idx, sheet)
    export_cells(idx, sheet)
    report = import_sheet(idx, sheet)
    assert report.files == 1
    assert sheet_fields(idx) == {"beep.wav": {"description": "A short UI beep"}}


def test_a_sheet_without_the_record_compares_as_before(library, tmp_path):
    """The old export without its ExportDigest column: its stale cells are edits again (what a
    sheet from before session 41 does)."""
    lib, idx = library
    sheet = tmp_path / "library.csv"
    old = export_cells(idx, sheet)
    titled(lib / "Doors" / "door.wav", None, "Oak door, re-tagged in the DAW")
    os.utime(lib / "Doors" / "door.wav", (1e9, 1e9))
    index(lib, idx)
    write_csv(sheet, [{k: v for k, v in row.items() if k != "ExportDigest"} for row in old.values()])
    import_sheet(idx, sheet)
    assert sheet_fields(idx) == {"door.wav": {"title": "Door creak", "comment": "Old oak door, slow"}}


def test_the_digest_survives_a_workbook_round_trip(library, tmp_path):
    """An .xlsx export read back: the ExportDigest cells are text as written."""
    from engine.export_digest import index_digest, read_digest
    from engine.metadata_sheet import read_sheet
    lib, idx = library
    book = tmp_path / "library.xlsx"
    assert run(app, ["sheet", "export", str(book), "--index", str(idx)]).exit_code == 0
    rows = {Path(value).name: fields for value, fields in read_sheet(book).rows}
    assert set(read_digest(rows["door.wav"]["export digest"], index_digest(idx))) == {"title", "comment"}
    assert read_digest(rows["door.wav"]["export digest"], index_digest(tmp_path)) == {}     # another index


def test_an_export_read_into_another_index_carries_its_cells_there(library, tmp_path):
    """The record names the index exported from: read into another index of the same files, the
    export's cells (a sheet's description, a "-") are news there and are stored, as before."""
    lib, idx = library
    vendor = tmp_path / "vendor.csv"
    vendor.write_text("Filename,Description\nbeep.wav,A short UI beep\nstorm_01.wav,-\n")
    import_sheet(idx, vendor)
    sheet = tmp_path / "library.csv"
    export_cells(idx, sheet)
    other = tmp_path / "other"
    index(lib, other)
    report = import_sheet(other, sheet)
    assert keyword_hits(other, "thunder hills") == set()
    assert sheet_fields(other) == {"beep.wav": {"description": "A short UI beep"},
                                   "storm_01.wav": {"description": "-"}}
    assert (report.files, report.as_exported_cells, report.cleared_cells) == (2, 0, 1)


def test_importing_an_export_again_reads_each_files_layers_once(library, tmp_path, monkeypatch):
    """Importing a sheet over its earlier import parses each described file's sheet layers once
    (they were read for which files the sheet described, then again to compare and rewrite)."""
    import indexer.metadata_sheet as sheets
    lib, idx = library
    vendor = tmp_path / "vendor.csv"
    vendor.write_text("Filename,Description\nbeep.wav,Beep\nstorm_01.wav,Storm\ndoor.wav,Door\n")
    import_sheet(idx, vendor)
    other = tmp_path / "other.csv"
    other.write_text("Filename,Category\nbeep.wav,UI\n")
    import_sheet(idx, other)                 # beep's vendor layer now shadowed
    parsed = []
    real = sheets.layers_of
    monkeypatch.setattr(sheets, "layers_of", lambda rows: parsed.append(rows) or real(rows))
    assert import_sheet(idx, vendor).files == 3
    assert len(parsed) == 3
    assert sheet_fields(idx)["beep.wav"] == {"description": "Beep"}


def test_a_dash_in_the_sheet_captions_are_made_from_leaves_the_field_out(tmp_path):
    """`caption --source metadata --sheet`: a "-" cell is no caption, and the file's own value of
    that field is left out too, as search leaves it out."""
    from trainer.caption_loop import described_files
    storm = bwf(tmp_path / "storm_01.wav", "Thunder rolling over the hills")
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("Filename,Description,Title\nstorm_01.wav,-,Distant storm\n")
    done, errors = described_files([storm], sheet=sheet)
    assert errors == [] and done[0].captions == ["Distant storm"]
