"""A vendor's sheet gave a file its category and keywords; a small correction sheet from another
tool, naming only its description, then stands over the vendor's row for that file (README
"Library metadata sheets": the later sheet's rows stand), so the category and keywords no longer
showed — `--category` stopped finding the file — and the import said nothing of it. The report
now counts those fields (``shadowed_cells``, ``shadowed_files``) and a note names them and the
sheet they came from."""
from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from indexer.metadata_sheet import import_sheet
from tests.conftest import tone, write
from tests.test_sheet_roundtrip40 import index
from ui.cli import app

run = CliRunner().invoke


def library(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Two files described by a vendor's sheet (category, keywords), indexed; the index and the sheet."""
    lib = (tmp_path / "Library").resolve()
    write(lib / "VP_001.wav", tone(300, 1.0, 16000), 16000)
    write(lib / "VP_002.wav", tone(600, 1.0, 16000), 16000)
    vendor = lib / "metadata.csv"
    vendor.write_text("Filename,Description,Category,Keywords\n"
                      "VP_001.wav,Low hum,AMBIENCE,hum drone\nVP_002.wav,High ping,UI,ping\n", encoding="utf-8")
    idx = tmp_path / "idx"
    index(lib, idx)
    assert import_sheet(idx, vendor).files == 2
    return lib, idx, vendor


def test_a_correction_sheet_says_which_earlier_fields_no_longer_show(tmp_path):
    lib, idx, _ = library(tmp_path)
    fix = tmp_path / "fixes.csv"
    fix.write_text("Filename,Description\nVP_001.wav,Low hum drone\n", encoding="utf-8")
    done = run(app, ["sheet", "import", str(fix), "--index", str(idx), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)["sheets"][0]
    assert (report["files"], report["shadowed_cells"], report["shadowed_files"]) == (1, 2, 1)
    said = " ".join(done.stderr.split())
    assert ("note: fixes.csv: its rows stand over an earlier sheet's for 1 file, so 2 fields that sheet gave it "
            "no longer show (metadata.csv: category, keywords)") in said


def test_a_sheet_giving_every_field_again_or_a_dry_run(tmp_path):
    """A sheet that names every field the earlier one gave hides nothing; --dry-run says what would."""
    lib, idx, _ = library(tmp_path)
    full = tmp_path / "full.csv"
    full.write_text("Filename,Description,Category,Keywords\nVP_002.wav,Ping,UI,ping high\n", encoding="utf-8")
    whole = import_sheet(idx, full)
    assert (whole.files, whole.shadowed_cells, whole.shadowed_files) == (1, 0, 0)
    fix = tmp_path / "fixes.csv"
    fix.write_text("Filename,Category\nVP_001.wav,DRONES\n", encoding="utf-8")
    dry = run(app, ["sheet", "import", str(fix), "--index", str(idx), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert ("its rows would stand over an earlier sheet's for 1 file, so 2 fields that sheet gave it would no "
            "longer show (metadata.csv: description, keywords)") in " ".join(dry.stderr.split())
