"""soundsift's own sheet export imported back into its index (`sheet export`, edit, `sheet import`):
only the cells the user changed are stored; a cell saying what the file already shows (its own
metadata, or an earlier sheet's) is left out, a row of such cells describes nothing, and the
report counts what was left out."""
from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import pytest
import soundfile as sf
from sqlalchemy import select
from typer.testing import CliRunner

from engine.catalog import File, FileMetadata, catalog_session
from engine.sheet_export import library_rows
from indexer import build_index
from indexer.metadata_sheet import import_sheet, remove_sheet, sheet_counts
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_sheet_user_tags40 import read_csv, write_csv
from ui.cli import app

run = CliRunner().invoke


def titled(path: Path, title: str | None, comment: str | None, seed: int = 1) -> Path:
    """A WAV carrying its own title and comment (a DAW's or Soundminer's tags), None: left out."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(str(path), "w", 16000, 1) as f:
        if title is not None:
            f.title = title
        if comment is not None:
            f.comment = comment
        f.write(noise(1.0, 16000, seed=seed, amp=0.2))
    return path


def index(lib: Path, idx: Path) -> None:
    build_index([str(lib)], idx, FakeModel(), workers=0, progress=False)


@pytest.fixture
def indexed(tmp_path) -> tuple[Path, Path]:
    lib = (tmp_path / "Library").resolve()
    titled(lib / "Doors" / "door.wav", "Door creak", "Old oak door, slow")
    write(lib / "rain.wav", noise(2.0, 16000, seed=3, amp=0.1), 16000)
    write(lib / "beep.wav", tone(1000, 0.5, 16000), 16000)
    idx = tmp_path / "idx"
    index(lib, idx)
    return lib, idx


def sheet_rows(idx: Path) -> dict[str, dict[str, str]]:
    """File name → its ``sheet:`` rows (key → value), for the files that have some."""
    with catalog_session(idx) as s:
        found = s.execute(select(File.path, FileMetadata.key, FileMetadata.value)
                          .join(FileMetadata, FileMetadata.file_id == File.id)
                          .where(FileMetadata.key.like("sheet:%"))).all()
    out: dict[str, dict[str, str]] = {}
    for path, key, value in found:
        out.setdefault(Path(path).name, {})[key] = value
    return out


def sheet_fields(idx: Path) -> dict[str, dict[str, str]]:
    """File name → the fields its standing sheet gives it (the source keys left out)."""
    return {name: {k[len("sheet:"):]: v for k, v in rows.items() if k not in ("sheet:sheet", "sheet:path",
                                                                            "sheet:shadowed")}
            for name, rows in sheet_rows(idx).items()}


def exported(idx: Path) -> dict[str, dict[str, str]]:
    """File name → its `sheet export` row."""
    return {r["Filename"]: r for r in library_rows(idx)}


def export_csv(idx: Path, sheet: Path) -> dict[str, dict[str, str]]:
    done = run(app, ["sheet", "export", str(sheet), "--index", str(idx)])
    assert done.exit_code == 0, done.output
    return {Path(r["Pathname"]).name: r for r in read_csv(sheet)}


def import_json(idx: Path, sheet: Path) -> dict:
    done = run(app, ["sheet", "import", str(sheet), "--index", str(idx), "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)["sheets"][0]


def test_an_edited_export_stores_only_what_was_changed(indexed, tmp_path):
    """Export, change one Description and one UserTags cell, import: the sheet layer holds that
    one field of that one file, the tags change, `sheet list` shows one file described; a second
    import changes nothing; the file's own metadata changed later is what shows (not masked)."""
    lib, idx = indexed
    sheet = tmp_path / "library.csv"
    cells = export_csv(idx, sheet)
    assert (cells["door.wav"]["FXName"], cells["door.wav"]["Comment"]) == ("Door creak", "Old oak door, slow")
    cells["beep.wav"]["Description"] = "A short UI beep"
    cells["door.wav"]["UserTags"] = "keeper"
    write_csv(sheet, list(cells.values()))

    report = import_json(idx, sheet)
    assert sheet_fields(idx) == {"beep.wav": {"description": "A short UI beep"}}
    listed = run(app, ["sheet", "list", "--index", str(idx)])
    assert listed.exit_code == 0 and listed.stdout.strip() == "library.csv: 1 file"
    assert (report["files"], report["matched_rows"], report["unchanged_files"]) == (1, 3, 2)
    assert report["unchanged_cells"] == 2 and report["export"] is True        # door's FXName and Comment
    assert (report["tag_files"], report["tags_added"]) == (1, 1)
    tagged = run(app, ["tags", "list", "--index", str(idx), "--json"])
    assert [(t["tag"], t["files"]) for t in json.loads(tagged.stdout)] == [("keeper", 1)]

    before = sheet_rows(idx)
    again = import_json(idx, sheet)
    assert (again["files"], again["unchanged_cells"], again["tag_files"]) == (1, 2, 0)
    assert sheet_rows(idx) == before

    titled(lib / "Doors" / "door.wav", None, "Oak door, re-tagged in the DAW")      # the title cleared
    os.utime(lib / "Doors" / "door.wav", (1e9, 1e9))
    index(lib, idx)
    row = exported(idx)["door.wav"]
    assert (row["FXName"], row["Comment"]) == ("", "Oak door, re-tagged in the DAW")
    assert exported(idx)["beep.wav"]["Description"] == "A short UI beep"


def test_an_unedited_export_stores_nothing_and_says_so(indexed, tmp_path):
    lib, idx = indexed
    sheet = tmp_path / "library.csv"
    export_csv(idx, sheet)
    done = run(app, ["sheet", "import", str(sheet), "--index", str(idx)])
    assert done.exit_code == 0, done.output
    said = " ".join(done.stdout.split())
    assert "library.csv: described 0 indexed files from 3 of 3 rows" in said
    assert ("unchanged: 2 cells left out, already what the files show (their own metadata or an earlier "
            "sheet's); 3 matched files changed nothing") in said
    assert ("library.csv describes no indexed file: every row it matched says only what the file already "
            "shows, so nothing of it is stored and `sheet list` does not list it") in said
    assert "UserTags cells changed" not in said                         # no tag changed either
    assert sheet_rows(idx) == {}
    assert sheet_counts(idx) == {}
    listed = run(app, ["sheet", "list", "--index", str(idx)])
    assert listed.stdout.startswith("no sheet imported")

    cells = export_csv(idx, sheet)                                      # only a tag edited: the tags change
    cells["rain.wav"]["UserTags"] = "wet"
    write_csv(sheet, list(cells.values()))
    dry = run(app, ["sheet", "import", str(sheet), "--index", str(idx), "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.stdout)["sheets"][0]
    assert (report["files"], report["unchanged_cells"], report["unchanged_files"], report["tag_files"]) == (0, 2, 3, 1)
    done = run(app, ["sheet", "import", str(sheet), "--index", str(idx)])
    assert done.exit_code == 0, done.output
    assert ("does not list it, though its UserTags cells changed your tags" in " ".join(done.stdout.split()))
    tagged = run(app, ["tags", "list", "--index", str(idx), "--json"])
    assert [(t["tag"], t["files"]) for t in json.loads(tagged.stdout)] == [("wet", 1)]
    assert sheet_rows(idx) == {}


def test_computed_columns_are_never_stored(indexed, tmp_path):
    """Duration, rate, levels, markers, stored and zero-shot tags and the Sheet column are what
    the index measured or made, not metadata: editing them stores nothing."""
    lib, idx = indexed
    sheet = tmp_path / "library.csv"
    cells = export_csv(idx, sheet)
    for row in cells.values():
        row.update({"Duration": "9.999", "SampleRate": "48000", "Channels": "2", "Format": "MP3",
                    "PeakdBFS": "-1.0", "LoudnessLUFS": "-14.0", "Markers": "0:01.00 Slam",
                    "StoredTags": "Speech", "ZeroShotTags": "hiss", "Sheet": "other.csv"})
    write_csv(sheet, list(cells.values()))
    report = import_json(idx, sheet)
    assert report["files"] == 0 and sheet_rows(idx) == {}
    assert {"Duration", "SampleRate", "PeakdBFS", "LoudnessLUFS", "Markers", "StoredTags", "ZeroShotTags",
            "Sheet"} <= set(report["unused_columns"])


def test_a_workbook_export_compares_equal_to_what_it_exported(indexed, tmp_path):
    """An .xlsx export (numbers as numbers, a description with a line break and one starting like
    a formula) read back unedited stores nothing."""
    lib, idx = indexed
    titled(lib / "formula.wav", "=SUM(A1) -6 dB", "Two lines\nof comment  with   spaces", seed=5)
    index(lib, idx)
    workbook = tmp_path / "library.xlsx"
    assert run(app, ["sheet", "export", str(workbook), "--index", str(idx)]).exit_code == 0
    report = import_sheet(idx, workbook)
    assert sheet_rows(idx) == {}
    assert (report.files, report.unchanged_cells, report.export) == (0, 4, True)


def test_an_earlier_sheet_keeps_showing_beside_the_edit(indexed, tmp_path):
    """A vendor's sheet imported first: the export's cells echoing it are left out, the edited row's
    file keeps the vendor's other fields (its album, which the export has no column for, too),
    `sheet list` counts the export for the edited file alone, and removing the export gives the
    vendor's description back."""
    lib, idx = indexed
    vendor = tmp_path / "vendor.csv"
    vendor.write_text("Filename,Description,Category,CDName\n"
                      "rain.wav,Rain on a roof,WEATHER,Storms\n"
                      "beep.wav,Beep,UI,Blips\n")
    assert import_sheet(idx, vendor).files == 2
    sheet = tmp_path / "library.csv"
    cells = export_csv(idx, sheet)
    assert (cells["rain.wav"]["Description"], cells["rain.wav"]["Sheet"]) == ("Rain on a roof", "vendor.csv")
    cells["rain.wav"]["Description"] = "Heavy rain on a tin roof"
    write_csv(sheet, list(cells.values()))
    report = import_sheet(idx, sheet)
    assert sheet_counts(idx) == {"library.csv": 1, "vendor.csv": 1}
    # left out: rain's Category, beep's Description and Category, door's FXName and Comment
    assert (report.files, report.unchanged_cells, report.unchanged_files) == (1, 5, 2)
    assert sheet_fields(idx)["rain.wav"] == {"description": "Heavy rain on a tin roof", "category": "WEATHER",
                                             "album": "Storms"}
    assert sheet_fields(idx)["beep.wav"] == {"description": "Beep", "category": "UI", "album": "Blips"}
    before = sheet_rows(idx)
    assert import_sheet(idx, sheet).files == 1 and sheet_rows(idx) == before      # again: no change
    assert remove_sheet(idx, "library.csv") == 1
    assert sheet_fields(idx)["rain.wav"] == {"description": "Rain on a roof", "category": "WEATHER",
                                             "album": "Storms"}


def test_another_tools_sheet_leaves_out_only_the_files_own_values(indexed, tmp_path):
    """A sheet that is no export (no column only soundsift writes): a cell equal to the file's own
    value is not stored, a row of only such cells describes nothing; what another sheet said is
    stored again (each sheet says its own, and removing one leaves the other's)."""
    lib, idx = indexed
    (tmp_path / "first.csv").write_text("Filename,Description\nrain.wav,Rain on a roof\n")
    import_sheet(idx, tmp_path / "first.csv")
    sheet = tmp_path / "vendor.csv"
    sheet.write_text("Filename,FXName,Comment,Description\n"
                     "door.wav,Door creak,Old oak door slow,Creaky door\n"
                     "rain.wav,,,Rain on a roof\n"
                     "beep.wav,,,\n")
    report = import_sheet(idx, sheet)
    assert sheet_fields(idx) == {"door.wav": {"comment": "Old oak door slow", "description": "Creaky door"},
                                 "rain.wav": {"description": "Rain on a roof"}}
    assert report.export is False
    assert (report.files, report.unchanged_cells, report.unchanged_files) == (2, 1, 1)   # door's FXName; beep
    assert sheet_counts(idx) == {"vendor.csv": 2}
    remove_sheet(idx, "vendor.csv")
    assert sheet_fields(idx) == {"rain.wav": {"description": "Rain on a roof"}}


def test_what_counts_as_the_same_value():
    from engine.metadata_sheet import same_value
    assert same_value("Door creak", "Door creak")
    assert same_value("Door  creak ", "Door creak\n")                       # whitespace as export's cell reads it
    assert same_value("Two lines of text", "Two lines\r\nof text")
    assert same_value(unicodedata.normalize("NFD", "Tür knarrt"), "Tür knarrt")
    assert not same_value("door creak", "Door creak")                        # a case fix is an edit
    assert not same_value("Door creak", None) and not same_value("Door creak", "")
    assert not same_value("12", "12.0")


def test_an_export_is_known_by_its_own_columns(tmp_path):
    from engine.metadata_sheet import read_sheet
    (tmp_path / "a.csv").write_text("Filename,Description,StoredTags\nrain.wav,Rain,Speech\n")
    (tmp_path / "b.csv").write_text("Filename,Description,Tags\nrain.wav,Rain,wet\n")
    assert read_sheet(tmp_path / "a.csv").export and not read_sheet(tmp_path / "b.csv").export


def test_an_edit_of_a_field_the_file_carries_itself_is_stored_with_a_note(indexed, tmp_path):
    """FXName edited where the file has its own title: the edit is stored (search finds it), and a
    note says the file's own title is still what shows."""
    lib, idx = indexed
    sheet = tmp_path / "library.csv"
    cells = export_csv(idx, sheet)
    cells["door.wav"]["FXName"] = "Door creak, long"
    write_csv(sheet, list(cells.values()))
    done = run(app, ["sheet", "import", str(sheet), "--index", str(idx), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)["sheets"][0]
    assert (report["files"], report["unchanged_cells"], report["own_first_cells"]) == (1, 1, 1)
    assert sheet_fields(idx) == {"door.wav": {"title": "Door creak, long"}}
    assert ("note: library.csv: 1 changed cell is of a field the file carries itself with another value: search "
            "finds the sheet's too, but the file's own value is what the card, --json and `sheet export` show"
            ) in " ".join(done.stderr.split())
    assert exported(idx)["door.wav"]["FXName"] == "Door creak"
