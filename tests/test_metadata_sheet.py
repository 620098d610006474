"""Library metadata sheets (indexer.metadata_sheet, `soundsift sheet`): a library's spreadsheet
describes the indexed files it names; keyword search, the category filter, get_file and the
page's card read it, and it stays with the files through re-reads, edits, moves and rebuilds."""
from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from engine.errors import InvalidQuery
from engine.filters import Filters
from engine.query import SoundIndex
from indexer import build_index
from engine.metadata_sheet import read_sheet
from indexer.metadata_sheet import import_sheet, remove_sheet, sheet_counts
from tests.cli_width import wide_terminal
from tests.conftest import catalog_session, noise, tone, write
from tests.index_fakes import FakeModel
from ui.cli import app

#: the BBC Sound Effects archive's layout: numbered files, the descriptions in a CSV
BBC = ('"location","description","secs","category","CDNumber","CDName","tracknum"\r\n'
       '"07076051.wav","Skylark singing high above a meadow, early morning.","3","Nature: Birds","EC117B",'
       '"British Birds","1"\r\n'
       '"07076052.wav","Steam train departing from a station, whistle.","2","Transport: Trains","EC118A",'
       '"Railways","4"\r\n'
       '"07076099.wav","Not in this library.","2","Misc","X","X","1"\r\n')


@pytest.fixture
def lib(tmp_path):
    lib = (tmp_path / "BBC").resolve()
    write(lib / "07076051.wav", noise(3.0, 16000, seed=1), 16000)
    write(lib / "07076052.wav", tone(300, 2.0, 16000), 16000)
    write(lib / "other.wav", tone(500, 1.0, 16000), 16000)
    return lib


def index(lib, idx, **kw):
    return build_index([lib], idx, FakeModel(), workers=0, progress=False, **kw)


def test_sheet_layouts_are_read(tmp_path):
    bbc = tmp_path / "BBCSoundEffects.csv"
    bbc.write_bytes(BBC.replace("early morning", "café terrace").encode("cp1252"))
    sheet = read_sheet(bbc)
    assert sheet.file_column == "location"                   # its values are file names: the file column
    assert sheet.used == {"description": "description", "category": "category", "CDName": "album"}
    assert sheet.unused == ["secs", "CDNumber", "tracknum"]
    assert sheet.rows[0] == ("07076051.wav", {"description": "Skylark singing high above a meadow, café terrace.",
                                              "category": "Nature: Birds", "album": "British Birds"})
    export = tmp_path / "soundminer.txt"                       # a tab-separated export, Location a place
    export.write_text("Filename\tFXName\tDescription\tCategory\tSubCategory\tCatID\tKeywords\tLocation\tMicrophone\n"
                      "DOOR_Wood_01.wav\tDoor wood slam\tHeavy oak door slams shut\tDOORS\tWOOD\tDOORWood\t"
                      "slam, oak\tBerlin\tMKH416\n")
    sheet = read_sheet(export)
    assert sheet.file_column == "Filename" and sheet.unused == ["Microphone"]
    assert sheet.rows == [("DOOR_Wood_01.wav", {"title": "Door wood slam", "description": "Heavy oak door slams shut",
                                                "category": "DOORS", "subcategory": "WOOD", "catid": "DOORWood",
                                                "keywords": "slam, oak", "location": "Berlin"})]
    unicode_text = tmp_path / "export.txt"                     # Excel's "Unicode Text": UTF-16, tabs
    unicode_text.write_bytes("Filename\tDescription\r\nTür_01.wav\tTür knarrt\r\n".encode("utf-16"))
    assert read_sheet(unicode_text).rows == [("Tür_01.wav", {"description": "Tür knarrt"})]
    semicolons = tmp_path / "excel.csv"                        # Excel's CSV where ',' is the decimal mark
    semicolons.write_text("File;Description;Duration\nrain.wav;Rain on a tin roof, heavy;12,5\n")
    assert read_sheet(semicolons).rows == [("rain.wav", {"description": "Rain on a tin roof, heavy"})]
    nameless = tmp_path / "nameless.csv"
    nameless.write_text("Description,Category\nA door,DOORS\n")
    with pytest.raises(InvalidQuery, match=r"nameless.csv: no column names the files .*Description, Category"):
        read_sheet(nameless)
    sound = write(tmp_path / "hello.wav", tone(440, 0.2, 16000), 16000)       # given by mistake
    with pytest.raises(InvalidQuery, match=r"hello.wav: not a spreadsheet \(binary data, an audio file\); give a CSV"):
        read_sheet(sound)
    broken = tmp_path / "meta.xlsx"
    broken.write_bytes(b"PK\x03\x04")
    with pytest.raises(InvalidQuery, match="meta.xlsx: not a readable Excel workbook"):
        read_sheet(broken)
    old_excel = tmp_path / "meta.xls"
    old_excel.write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(InvalidQuery, match=r"meta.xls: an Excel 97–2003 workbook; save it as .xlsx, .ods or CSV"):
        read_sheet(old_excel)


def test_a_vendor_workbook_is_read_worksheet_by_worksheet(tmp_path):
    import datetime as dt
    from openpyxl import Workbook
    book = Workbook()
    readme = book.active
    readme.title = "Read me"
    readme.append(["Cinematic Doors by a vendor. Licence: see EULA.pdf"])
    readme.append(["Files", 2])
    doors = book.create_sheet("Doors")
    doors.append(["Cinematic Doors — metadata"])               # a title and a blank row above the header
    doors.append([])
    doors.append(["Filename", "Description", "Category", "Duration", "Recorded"])
    doors.append(["DOOR_Oak_01.wav", "Heavy oak door\nslams shut", "DOORS", 12.0, dt.datetime(2024, 5, 17)])
    doors.append(["DOOR_Oak_02.wav", "=UPPER(B4)", "DOORS", 3.5, None])   # a formula: its cached value (none here)
    metal = book.create_sheet("Metal")
    metal.append(["File Name", "FX Name", "Category"])          # another worksheet, its own column names
    metal.append(["MTL_Hit_01.wav", "Metal hit", "METAL"])
    metal.append([None, "a row naming no file", None])
    metal.cell(row=1, column=5000, value="a note far off to the right")    # wider than any sheet needs
    path = tmp_path / "Cinematic Doors.xlsx"
    book.save(path)
    sheet = read_sheet(path)
    assert sheet.worksheets == ["Doors", "Metal"] and sheet.skipped == ["Read me"]
    assert sheet.file_column == "Filename"
    assert sheet.used == {"Description": "description", "Category": "category", "FX Name": "title"}
    assert sheet.unused == ["Duration", "Recorded"]
    assert sheet.rows == [("DOOR_Oak_01.wav", {"description": "Heavy oak door slams shut", "category": "DOORS"}),
                          ("DOOR_Oak_02.wav", {"category": "DOORS"}),
                          ("MTL_Hit_01.wav", {"title": "Metal hit", "category": "METAL"})]
    from engine.workbook import workbook_tables
    tables = dict(workbook_tables(path))
    assert tables["Doors"][2][3:] == ["12", "2024-05-17"]      # whole numbers and dates as a user sees them
    from engine.workbook import MAX_COLUMNS
    assert len(tables["Metal"][0]) == MAX_COLUMNS             # read no wider than that
    readme_only = Workbook()
    readme_only.active.append(["Description", "Category"])
    readme_only.active.append(["A door", "DOORS"])
    readme_only.save(tmp_path / "nofiles.xlsx")
    with pytest.raises(InvalidQuery, match=r"nofiles.xlsx: no column names the files .*Sheet: Description, Category"):
        read_sheet(tmp_path / "nofiles.xlsx")


def test_an_opendocument_sheet_is_read(tmp_path):
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.office import Annotation
    from odf.table import CoveredTableCell, Table, TableCell, TableRow
    from odf.teletype import addTextToElement
    from odf.text import P

    def cell(text="", **kw):
        c = TableCell(valuetype="string", **kw) if text else TableCell(**kw)
        if text:
            p = P()
            addTextToElement(p, text)                           # spaces, tabs, breaks as ODF writes them
            c.addElement(p)
        return c

    def row(*cells, **kw):
        r = TableRow(**kw)
        for c in cells:
            r.addElement(c)
        return r

    doc = OpenDocumentSpreadsheet()
    notes = Table(name="Notes")
    notes.addElement(row(cell("Recorded in 2024")))
    doc.spreadsheet.addElement(notes)
    sounds = Table(name="Sounds")
    sounds.addElement(row(cell("Soundfile"), cell(numbercolumnsrepeated=2), cell("Description"), cell("Keywords")))
    commented = cell("rain_tin.flac")
    note = Annotation()
    note.addElement(P(text="checked by the librarian"))       # a comment on the cell is not its text
    commented.addElement(note)
    sounds.addElement(row(commented, cell(numbercolumnsrepeated=2),
                          cell("Rain on a tin roof,  heavy\tand\nsteady"), cell("rain, roof")))
    sounds.addElement(row(cell(numbercolumnsrepeated=1024), numberrowsrepeated=1000000))   # what Calc writes
    sounds.addElement(row(cell("wind.flac"), CoveredTableCell(numbercolumnsrepeated=2), cell("Wind"),
                          cell("gust", numbercolumnsrepeated=2)))
    doc.spreadsheet.addElement(sounds)
    path = tmp_path / "library.ods"
    doc.save(str(path))
    from engine.workbook import workbook_tables
    tables = dict(workbook_tables(path))
    assert tables["Sounds"] == [["Soundfile", "", "", "Description", "Keywords"],
                                ["rain_tin.flac", "", "", "Rain on a tin roof,  heavy and steady", "rain, roof"],
                                ["wind.flac", "", "", "Wind", "gust", "gust"]]
    sheet = read_sheet(path)
    assert (sheet.worksheets, sheet.skipped, sheet.file_column) == (["Sounds"], ["Notes"], "Soundfile")
    assert sheet.rows == [("rain_tin.flac", {"description": "Rain on a tin roof, heavy and steady",
                                             "keywords": "rain, roof"}),
                          ("wind.flac", {"description": "Wind", "keywords": "gust"})]
    (tmp_path / "broken.ods").write_bytes(b"not a zip")
    with pytest.raises(InvalidQuery, match="broken.ods: not a readable OpenDocument spreadsheet"):
        read_sheet(tmp_path / "broken.ods")


def test_a_sheet_describes_numbered_files_for_search_filters_and_the_card(lib, tmp_path):
    idx = tmp_path / "idx"
    index(lib, idx)
    sheet = tmp_path / "BBCSoundEffects.csv"
    sheet.write_text(BBC)
    dry = import_sheet(idx, sheet, dry_run=True)
    assert (dry.rows, dry.matched_rows, dry.files, dry.unmatched) == (3, 2, 2, ["07076099.wav"])
    with SoundIndex.open(idx, model=FakeModel()) as si:
        assert si.search_text("skylark", k=1, keywords=True)[0].keywords == 0      # a dry run changes nothing
        report = import_sheet(idx, sheet)
        assert report.files == 2
        hit = si.search_text("skylark meadow", k=1, keywords=True)[0]           # the open index sees it
        assert hit.path == str(lib / "07076051.wav") and hit.keywords > 0
        record = si.get_file(hit.file_id)
        assert record["metadata"]["description"].startswith("Skylark singing")
        assert record["metadata"]["album"] == "British Birds" and record["sheet"] == "BBCSoundEffects.csv"
        trains = si.search_text("x", k=5, filters=Filters(categories=("transport: trains",)))
        assert [h.path for h in trains] == [str(lib / "07076052.wav")]
        assert "Nature: Birds" in si.facets()["categories"]
    from ui.components.library import Library
    card = Library(idx).files([hit.file_id])[hit.file_id]
    assert card.about.startswith("Nature: Birds: Skylark singing high above a meadow")
    assert sheet_counts(idx) == {"BBCSoundEffects.csv": 2}
    from indexer.info import index_info
    assert index_info(idx)["counts"]["described"] == 2
    assert [(r["sheet"], r["files"]) for r in index_info(idx)["sheets"]] == [("BBCSoundEffects.csv", 2)]


def test_what_the_file_says_comes_first_and_paths_pick_the_folder(tmp_path):
    import soundfile as sf
    lib = (tmp_path / "Lib").resolve()
    for folder in ("Doors", "Windows"):
        write(lib / folder / "creak_01.wav", noise(1.0, 16000, seed=len(folder)), 16000)
    with sf.SoundFile(str(lib / "titled.wav"), "w", 16000, 1) as f:
        f.title = "Title the file carries"
        f.write(tone(440, 0.5, 16000))
    write(lib / "converted.flac", tone(220, 0.5, 16000), 16000, format="FLAC")
    idx = tmp_path / "idx"
    index(lib, idx)
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("Path,Title,Description\n"
                     "Doors/creak_01.wav,Door creak,An old door creaks open\n"
                     "titled.wav,Title from the sheet,A tone\n"
                     "converted.wav,Converted,A sheet made before the library was converted to FLAC\n")
    report = import_sheet(idx, sheet)
    assert (report.files, report.shared_rows, report.unmatched) == (3, 0, [])
    with SoundIndex.open(idx, model=FakeModel()) as si:
        by_path = {h.path: si.get_file(h.file_id)["metadata"] for h in si.search_text("x", k=10)}
    assert by_path[str(lib / "Doors" / "creak_01.wav")]["title"] == "Door creak"
    assert "title" not in by_path[str(lib / "Windows" / "creak_01.wav")]       # the path named Doors only
    assert by_path[str(lib / "titled.wav")] == {"title": "Title the file carries", "description": "A tone"}
    assert by_path[str(lib / "converted.flac")]["title"] == "Converted"
    # a bare name matches the file of that name in every folder
    (tmp_path / "names.csv").write_text("Filename,Description\ncreak_01.wav,A creak\n")
    shared = import_sheet(idx, tmp_path / "names.csv")
    assert (shared.files, shared.shared_rows) == (2, 1)
    assert sheet_counts(idx) == {"names.csv": 2, "sheet.csv": 2}   # the newer sheet describes the creaks now
    with pytest.raises(InvalidQuery, match="holds no files under"):
        import_sheet(idx, sheet, under=tmp_path / "Other")


def test_a_sheet_stays_with_its_files_and_goes_when_removed(lib, tmp_path):
    idx = tmp_path / "idx"
    index(lib, idx)
    sheet = tmp_path / "BBCSoundEffects.csv"
    sheet.write_text(BBC)
    import_sheet(idx, sheet)

    def skylark() -> str | None:
        with SoundIndex.open(idx, model=FakeModel()) as si:
            hits = [h for h in si.search_text("meadow", k=3, keywords=True) if h.keywords > 0]
            return hits[0].path if hits else None
    from engine.catalog import Meta, set_meta                   # an older metadata reader: read again
    with catalog_session(idx, write=True) as s:
        s.query(Meta).filter(Meta.key == "metadata_reader").delete()
        set_meta(s, metadata_reader=1)
    assert index(lib, idx).metadata_reread == 3 and skylark() == str(lib / "07076051.wav")
    write(lib / "07076051.wav", noise(2.5, 16000, seed=3), 16000)            # edited in place
    assert index(lib, idx).updated == 1 and skylark() == str(lib / "07076051.wav")
    os.rename(lib / "07076051.wav", lib / "skylark.wav")                      # renamed
    assert index(lib, idx).moved == 1 and skylark() == str(lib / "skylark.wav")
    assert index(lib, idx, rebuild=True).rebuild and skylark() == str(lib / "skylark.wav")

    import_sheet(idx, sheet)                  # imported again: the renamed file is no longer named by it
    assert skylark() is None and sheet_counts(idx) == {"BBCSoundEffects.csv": 1}
    assert remove_sheet(idx, "BBCSoundEffects.csv") == 1 and sheet_counts(idx) == {}
    with pytest.raises(InvalidQuery, match="no file .* is described by a sheet named 'BBC.csv' .no sheet"):
        remove_sheet(idx, "BBC.csv")


def test_sheet_commands(lib, tmp_path):
    idx = tmp_path / "idx"
    index(lib, idx)
    sheet = tmp_path / "BBCSoundEffects.csv"
    sheet.write_text(BBC)
    run = CliRunner().invoke
    done = run(app, ["sheet", "import", str(sheet), "--index", str(idx)], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.stderr
    assert "BBCSoundEffects.csv: described 2 indexed files from 2 of 3 rows (files named in column 'location')" in done.stdout
    assert "columns not used: secs, CDNumber, tracknum" in done.stdout
    assert "no indexed file for 1 row, e.g. 07076099.wav" in done.stderr
    listed = run(app, ["sheet", "list", "--index", str(idx), "--json"])
    assert json.loads(listed.stdout) == [{"sheet": "BBCSoundEffects.csv", "path": str(sheet.resolve()), "files": 2}]
    (tmp_path / "none.csv").write_text("Filename,Description\nnothing.wav,Nothing\n")
    none = run(app, ["sheet", "import", str(tmp_path / "none.csv"), "--index", str(idx), "--json"])
    assert none.exit_code == 1 and json.loads(none.stdout)["sheets"][0]["matched_rows"] == 0
    gone = run(app, ["sheet", "remove", "BBCSoundEffects.csv", "--index", str(idx)])
    assert gone.exit_code == 0 and "removed from 2 files" in gone.stdout
    bad = run(app, ["sheet", "import", str(tmp_path / "missing.csv"), "--index", str(idx)])
    assert bad.exit_code == 1 and "missing.csv: cannot read it" in bad.stderr
    # several at once: one that cannot be used is said, the others are imported
    (tmp_path / "trains.csv").write_text("location,description\n07076052.wav,A steam train\n")
    (tmp_path / "nameless.csv").write_text("Description,Category\nA door,DOORS\n")
    several = run(app, ["sheet", "import", str(tmp_path / "nameless.csv"), str(tmp_path / "trains.csv"),
                        "--index", str(idx), "--json"])
    assert several.exit_code == 1 and "nameless.csv: no column names the files" in " ".join(several.stderr.split())
    assert [r["sheet"] for r in json.loads(several.stdout)["sheets"]] == ["trains.csv"]
    assert sheet_counts(idx)["trains.csv"] == 1
    from openpyxl import Workbook                             # a vendor's workbook: the same rows, two worksheets
    book = Workbook()
    book.active.title = "Read me"
    book.active.append(["BBC Sound Effects, selected"])
    listing = book.create_sheet("Birds and trains")
    for line in BBC.strip().split("\r\n"):
        listing.append([field.strip('"') for field in line.split('","')])
    book.save(tmp_path / "BBC.xlsx")
    done = run(app, ["sheet", "import", str(tmp_path / "BBC.xlsx"), "--index", str(idx)], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.stderr
    assert "BBC.xlsx: described 2 indexed files from 2 of 3 rows" in done.stdout
    assert "worksheets read: Birds and trains; skipped, no file column: Read me" in done.stdout
    with SoundIndex.open(idx, model=FakeModel()) as si:
        hit = si.search_text("steam train", k=1, keywords=True)[0]
        assert hit.path == str(lib / "07076052.wav") and si.get_file(hit.file_id)["sheet"] == "BBC.xlsx"


def test_a_relocation_that_merges_rows_keeps_what_the_sheet_said(lib, tmp_path):
    """The library indexed again at its new place before `soundsift relocate`: the old rows merge
    into the new ones, and the sheet's fields come along."""
    import shutil

    from indexer.relocate import relocate
    idx = tmp_path / "idx"
    index(lib, idx)
    sheet = tmp_path / "BBCSoundEffects.csv"
    sheet.write_text(BBC)
    import_sheet(idx, sheet, under=lib)
    moved = (tmp_path / "SFX").resolve()
    shutil.copytree(lib, moved)
    index(moved, idx)
    shutil.rmtree(lib)
    plan = relocate(idx, lib, moved)
    assert len(plan.merged) == 3
    with SoundIndex.open(idx, model=FakeModel()) as si:
        hit = si.search_text("meadow", k=1, keywords=True)[0]
        assert hit.path == str(moved / "07076051.wav") and hit.keywords > 0
        assert si.get_file(hit.file_id)["sheet"] == "BBCSoundEffects.csv"
    assert sheet_counts(idx) == {"BBCSoundEffects.csv": 2}


def test_hits_say_what_the_files_are(lib, tmp_path, tiny_clap_dir):
    """A hit carries its file's about line (category, title, description: the file's own, else
    the sheet's): the table's "about" column on a wide terminal, "about" in JSON."""
    idx = tmp_path / "idx"
    build_index([lib], idx, str(tiny_clap_dir), workers=0, progress=False)
    sheet = tmp_path / "BBCSoundEffects.csv"
    sheet.write_text(BBC)
    import_sheet(idx, sheet)
    run = CliRunner().invoke
    table = run(app, ["search", "skylark", "-w", "--index", str(idx), "-k", "3"], env=wide_terminal(lib))
    assert table.exit_code == 0, table.stderr
    assert "about" in table.stdout and "Nature: Birds: Skylark singing high above a meadow" in table.stdout
    hits = json.loads(run(app, ["search", "steam", "-w", "--index", str(idx), "-k", "3", "--json"]).stdout)
    about = {os.path.basename(h["path"]): h.get("about") for h in hits}
    assert about == {"07076052.wav": "Transport: Trains: Steam train departing from a station, whistle.",
                     "07076051.wav": "Nature: Birds: Skylark singing high above a meadow, early morning.",
                     "other.wav": None}
    narrow = run(app, ["search", "skylark", "-w", "--index", str(idx), "-k", "3"], env={"COLUMNS": "90"})
    assert narrow.exit_code == 0 and "Skylark singing" not in narrow.stdout


def test_paths_written_on_another_machine_match_by_their_ends():
    """A Soundminer export made on Windows names files by absolute paths there: the file name
    finds the candidates, the folders they share with the row's path pick among them."""
    from engine.metadata_sheet import Sheet, match_rows
    files = {1: "/home/me/SFX/Doors/Wood/creak_01.wav", 2: "/home/me/SFX/Windows/creak_01.wav",
             3: "/home/me/SFX/Doors/slam.flac"}
    sheet = Sheet("export.csv", [("D:\\Libraries\\SFX\\Doors\\Wood\\creak_01.wav", {"title": "Door creak"}),
                                 ("D:\\Libraries\\SFX\\Doors\\slam.wav", {"title": "Door slam"}),
                                 ("D:\\Libraries\\SFX\\Gone\\missing.wav", {"title": "Missing"})],
                  "FilePath", {"Title": "title"}, [])
    fields, report = match_rows(sheet, files)
    assert fields == {1: {"title": "Door creak"}, 3: {"title": "Door slam"}}
    assert (report.matched_rows, report.shared_rows, report.unmatched) == (2, 0, ["D:\\Libraries\\SFX\\Gone\\missing.wav"])


def test_a_sheet_for_a_large_library_imports_in_chunks(lib, tmp_path, monkeypatch):
    """More files than one SQLite query takes as parameters (32,766 in many builds; this one is
    held to 999 here): the import asks in chunks."""
    import sqlite3
    import time as clock

    from sqlalchemy import insert

    import engine.catalog
    from engine.catalog import File
    idx = tmp_path / "idx"
    index(lib, idx)
    n = 2_500
    with catalog_session(idx, write=True) as s:           # catalog rows only: the import reads no audio
        s.execute(insert(File), [{"path": f"/archive/{i:08d}.wav", "size": 1, "mtime_ns": 1, "duration": 1.0,
                                  "sample_rate": 44100, "channels": 1, "format": "WAV", "subtype": "PCM_16",
                                  "indexed_at": clock.time()} for i in range(n)])
    pragmas = engine.catalog._sqlite_pragmas

    def held_to_999(dbapi_conn, record):
        pragmas(dbapi_conn, record)
        dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)
    monkeypatch.setattr(engine.catalog, "_sqlite_pragmas", held_to_999)
    sheet = tmp_path / "BBCSoundEffects.csv"
    sheet.write_text("location,description\n" + "".join(f"{i:08d}.wav,Sound number {i}\n" for i in range(n)))
    assert import_sheet(idx, sheet).files == n
    assert sheet_counts(idx) == {"BBCSoundEffects.csv": n}
    assert remove_sheet(idx, "BBCSoundEffects.csv") == n


def test_the_index_exports_its_own_sheet_and_another_index_reads_it(lib, tmp_path, tiny_clap_dir):
    """`soundsift sheet export`: one row per file with what the index knows (the file's and the
    sheet's descriptions, levels, the user's tags, zero-shot tags from the stored vectors); its
    .xlsx read back by `sheet import` describes a copy of the library in another folder, file
    for file by the Pathname column, though two copies share a name."""
    import csv
    import shutil
    from engine.query import SoundIndex
    from engine.tagging import tag_files
    from indexer.user_tags import add_tags
    write(lib / "Birds" / "07076051.wav", noise(1.0, 16000, seed=7), 16000)    # a second file of that name
    idx = tmp_path / "idx"
    build_index([lib], idx, str(tiny_clap_dir), workers=0, progress=False)
    (tmp_path / "described.csv").write_text(                                   # paths tell the two apart
        "location,description,category\n"
        "BBC/07076051.wav,\"Skylark singing high above a meadow, café terrace.\",Nature: Birds\n"
        "BBC/Birds/07076051.wav,A second skylark further off,Nature: Birds\n")
    assert import_sheet(idx, tmp_path / "described.csv").shared_rows == 0
    add_tags(idx, [str(lib / "other.wav")], ["keeper", "ep3"])
    run = CliRunner().invoke
    out = tmp_path / "export.csv"
    done = run(app, ["sheet", "export", str(out), "--index", str(idx), "--zero-shot", "2", "--labels",
                     "hiss,tone,birdsong", "--min-score", "0"])
    assert done.exit_code == 0, done.output
    assert "wrote 4 files" in done.stdout
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")                        # a BOM: Excel reads the accents
    with open(out, encoding="utf-8-sig", newline="") as f:
        rows = {r["Pathname"]: r for r in csv.DictReader(f)}
    assert list(rows) == sorted(rows)                                           # path order
    bird = rows[str(lib / "07076051.wav")]
    assert (bird["Filename"], bird["Description"], bird["Category"], bird["Sheet"]) == (
        "07076051.wav", "Skylark singing high above a meadow, café terrace.", "Nature: Birds", "described.csv")
    assert (bird["SampleRate"], bird["Channels"], bird["Duration"]) == ("16000", "1", "3.000")
    assert float(bird["PeakdBFS"]) <= 0 and float(bird["LoudnessLUFS"]) < 0
    assert rows[str(lib / "other.wav")]["UserTags"] == "keeper, ep3"
    assert rows[str(lib / "Birds" / "07076051.wav")]["Description"] == "A second skylark further off"
    assert rows[str(lib / "07076052.wav")]["Description"] == ""
    with SoundIndex.open(idx) as si:                                            # the same tags `soundsift tag` gives
        tagged, _ = tag_files(list(rows), ["hiss", "tone", "birdsong"], index=si, top=2)
    assert {t.path: ", ".join(x["label"] for x in t.tags) for t in tagged} == {
        p: r["ZeroShotTags"] for p, r in rows.items()}
    assert all(len(r["ZeroShotTags"].split(", ")) == 2 for r in rows.values())
    choosy = run(app, ["sheet", "export", str(out), "--index", str(idx), "--zero-shot", "2", "--labels",
                       "hiss,tone,birdsong", "--min-score", "0.99", "--path-prefix", str(lib / "Birds")])
    assert choosy.exit_code == 0 and "wrote 1 file to" in choosy.stdout
    with open(out, encoding="utf-8-sig", newline="") as f:
        assert [r["ZeroShotTags"] for r in csv.DictReader(f)] == [""]          # none that sure of three labels

    workbook = tmp_path / "library.xlsx"
    assert run(app, ["sheet", "export", str(workbook), "--index", str(idx)]).exit_code == 0
    copy = (tmp_path / "Elsewhere" / "BBC").resolve()                          # the library on another disk
    shutil.copytree(lib, copy)
    other = tmp_path / "other_idx"
    index(copy, other)
    report = import_sheet(other, workbook)
    assert (report.file_column, report.files, report.shared_rows) == ("Pathname", 2, 0)    # not by Filename
    assert report.matched_rows == 4          # the rows saying nothing the files lack describe nothing
    assert report.columns["Description"] == "description" and report.columns["UserTags"] == "user tags"
    assert (report.tag_files, report.tags_added) == (1, 2)                     # other.wav's "keeper, ep3"
    with SoundIndex.open(other, model=FakeModel()) as si:
        described = {h.path: si.get_file(h.file_id)["metadata"].get("description")
                     for h in si.search_text("x", k=10)}
    assert described[str(copy / "07076051.wav")] == "Skylark singing high above a meadow, café terrace."
    assert described[str(copy / "Birds" / "07076051.wav")] == "A second skylark further off"
    assert described[str(copy / "07076052.wav")] is None

    refused = run(app, ["sheet", "export", str(tmp_path / "sheet.pdf"), "--index", str(idx)])
    assert refused.exit_code == 1 and "write the sheet as one of .csv" in refused.stderr
    folder = run(app, ["sheet", "export", str(tmp_path), "--index", str(idx)])
    assert folder.exit_code == 1 and "is a folder" in folder.stderr
    loose = run(app, ["sheet", "export", str(out), "--index", str(idx), "--labels", "hiss"])
    assert loose.exit_code == 1 and "give --zero-shot N too" in loose.stderr
    nested = tmp_path / "new" / "folder" / "sheet.tsv"                         # its folder is made
    assert run(app, ["sheet", "export", str(nested), "--index", str(idx)]).exit_code == 0
    assert nested.read_bytes().decode("utf-8-sig").startswith("Filename\tPathname\t")
    (tmp_path / "a_file").write_text("x")
    blocked = run(app, ["sheet", "export", str(tmp_path / "a_file" / "sheet.csv"), "--index", str(idx)])
    assert blocked.exit_code == 1 and "a_file is a file, not a folder" in blocked.stderr


def test_a_damaged_workbook_is_one_clear_error(tmp_path):
    """An .ods whose repeat count is not a number, an .xlsx that is a zip of something else:
    InvalidQuery naming the file, not a traceback."""
    import zipfile
    ods = tmp_path / "odd.ods"
    with zipfile.ZipFile(ods, "w") as z:
        z.writestr("content.xml", '<?xml version="1.0"?><office:document-content '
                   'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
                   'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
                   'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:spreadsheet>'
                   '<table:table table:name="S"><table:table-row><table:table-cell table:number-columns-repeated="x">'
                   '<text:p>a</text:p></table:table-cell></table:table-row></table:table>'
                   '</office:spreadsheet></office:body></office:document-content>')
    with pytest.raises(InvalidQuery, match=r"odd.ods: not a readable OpenDocument spreadsheet \(ValueError"):
        read_sheet(ods)
    xlsx = tmp_path / "odd.xlsx"
    with zipfile.ZipFile(xlsx, "w") as z:
        z.writestr("readme.txt", "not a workbook")
    with pytest.raises(InvalidQuery, match=r"odd.xlsx: not a readable Excel workbook"):
        read_sheet(xlsx)


def test_an_index_run_points_at_spreadsheets_not_imported(lib, tmp_path, capsys):
    """A library's CSV lying among its files: the run's summary names it until it is imported."""
    (lib / "BBCSoundEffects.csv").write_text(BBC)
    (lib / "._BBCSoundEffects.csv").write_bytes(b"\x00\x05\x16\x07")          # macOS's companion: not a sheet
    idx = tmp_path / "idx"
    summary = index(lib, idx)
    assert summary.sheets_not_imported == [str(lib / "BBCSoundEffects.csv")]
    from ui.cli.cmd_index import _print_summary
    _print_summary(summary.to_dict())                                          # what `soundsift index` prints
    printed = " ".join(capsys.readouterr().err.split())                     # a note: stderr
    assert "spreadsheets among the files, not imported as library sheets: BBCSoundEffects.csv" in printed
    assert f"soundsift sheet import SHEET --index {idx}" in printed
    import_sheet(idx, lib / "BBCSoundEffects.csv")
    assert index(lib, idx).sheets_not_imported == []


def test_sheets_of_one_name_in_two_folders_are_two_sheets(tmp_path):
    """A vendor's metadata.csv in each volume: importing the second keeps what the first said;
    each is re-imported or removed on its own (by path when the name is ambiguous); rows an older
    soundsift stored with the name alone are replaced by the next import of a sheet so named."""
    lib = (tmp_path / "Vendor").resolve()
    write(lib / "Vol1" / "door.wav", noise(1.0, 16000, seed=1), 16000)
    write(lib / "Vol2" / "rain.wav", noise(1.0, 16000, seed=2), 16000)
    idx = tmp_path / "idx"
    index(lib, idx)
    one, two = lib / "Vol1" / "metadata.csv", lib / "Vol2" / "metadata.csv"
    one.write_text("Filename,Description\ndoor.wav,An oak door\n")
    two.write_text("Filename,Description\nrain.wav,Rain on a roof\n")
    import_sheet(idx, one)
    import_sheet(idx, two)
    assert sheet_counts(idx) == {str(one): 1, str(two): 1}

    def described():
        with SoundIndex.open(idx, model=FakeModel()) as si:
            return {os.path.basename(h.path): (si.get_file(h.file_id)["metadata"], si.get_file(h.file_id).get("sheet"))
                    for h in si.search_text("x", k=10)}
    assert described() == {"door.wav": ({"description": "An oak door"}, "metadata.csv"),
                           "rain.wav": ({"description": "Rain on a roof"}, "metadata.csv")}
    one.write_text("Filename,Description\ndoor.wav,A heavy oak door\n")
    import_sheet(idx, one)                                                     # replaces Vol1's only
    assert described()["door.wav"][0] == {"description": "A heavy oak door"}
    assert described()["rain.wav"][0] == {"description": "Rain on a roof"}
    with pytest.raises(InvalidQuery, match="several sheets are named 'metadata.csv'.*give the path"):
        remove_sheet(idx, "metadata.csv")
    assert remove_sheet(idx, str(one)) == 1
    assert sheet_counts(idx) == {"metadata.csv": 1}                             # unambiguous again
    assert "description" not in described()["door.wav"][0]
    # rows from before paths were kept: the same sheet's next import replaces them
    from engine.catalog import FileMetadata
    from engine.file_metadata import SHEET_PATH_KEY
    with catalog_session(idx, write=True) as s_:
        s_.query(FileMetadata).filter(FileMetadata.key == SHEET_PATH_KEY).delete()
    assert sheet_counts(idx) == {"metadata.csv": 1}
    two.write_text("Filename,Description\nnothing.wav,x\n")                   # now describes no indexed file
    import_sheet(idx, two)                                # unpathed rows of that name: replaced, as before
    assert described()["rain.wav"][0] == {} and sheet_counts(idx) == {}


def test_a_path_naming_another_folder_and_extension_matches_no_file():
    """A row's full path whose folder and file name both differ from an indexed file's names
    another file, not a same-stem one elsewhere; a bare name, or a path sharing the folder, still
    finds the file converted to another format."""
    from engine.metadata_sheet import Sheet, match_rows
    files = {1: "/tmp/audit/lib/speech/hello.wav", 2: "/mnt/sfx/Doors/creak.flac"}

    def matched(*values: str) -> tuple[dict[int, dict[str, str]], list[str]]:
        rows = [(v, {"description": v}) for v in values]
        fields, report = match_rows(Sheet("s.csv", rows, "Pathname", {}, []), files)
        return fields, report.unmatched
    assert matched("/tmp/audit/lib/new/hello.mp3") == ({}, ["/tmp/audit/lib/new/hello.mp3"])
    assert matched("hello.mp3") == ({1: {"description": "hello.mp3"}}, [])              # a bare name: converted
    assert matched("/Volumes/SFX/speech/hello.mp3")[0] == {1: {"description": "/Volumes/SFX/speech/hello.mp3"}}
    assert matched("/Volumes/SFX/new/hello.wav")[0] == {1: {"description": "/Volumes/SFX/new/hello.wav"}}  # its name
    assert matched("D:\\SFX\\Doors\\creak.wav")[0] == {2: {"description": "D:\\SFX\\Doors\\creak.wav"}}
    assert matched("D:\\SFX\\Windows\\creak.wav") == ({}, ["D:\\SFX\\Windows\\creak.wav"])


def test_the_row_naming_a_file_most_exactly_wins_whatever_the_order():
    """Several rows naming one file: its exact path outranks a longer trailing path, which
    outranks a name alone, which outranks the name with another extension, in either order of
    the rows; rows naming it equally well give it their fields, the first row a key."""
    from engine.metadata_sheet import Sheet, match_rows
    files = {1: "/lib/SFX/Doors/creak.wav", 2: "/lib/SFX/Windows/creak.wav"}
    rows = [("creak.flac", {"description": "converted name"}),               # least specific first
            ("creak.wav", {"description": "name"}),
            ("/Volumes/Backup/Doors/creak.wav", {"description": "one folder"}),
            ("/Volumes/Backup/SFX/Doors/creak.wav", {"description": "two folders"}),
            ("/lib/SFX/Doors/creak.wav", {"description": "exact"}),
            ("/lib/SFX/Doors/creak.wav", {"description": "exact again", "title": "Creak"})]
    for order in (rows, rows[::-1]):
        fields, report = match_rows(Sheet("s.csv", order, "Pathname", {}, []), files)
        first = "exact" if order is rows else "exact again"
        assert fields == {1: {"description": first, "title": "Creak"}, 2: {"description": "name"}}
        assert (report.matched_rows, report.shared_rows, report.unmatched) == (6, 2, [])
    for kept in (4, 3, 2):                  # without the better rows: the best of the rest stands
        for order in (rows[:kept], rows[:kept][::-1]):
            fields, _ = match_rows(Sheet("s.csv", order, "Pathname", {}, []), files)
            assert fields == {1: rows[kept - 1][1], 2: {"description": "name"}}
    fields, _ = match_rows(Sheet("s.csv", rows[:1], "Filename", {}, []), files)
    assert fields == {1: {"description": "converted name"}, 2: {"description": "converted name"}}


def test_a_row_for_a_file_not_indexed_describes_no_other(tmp_path):
    """`sheet import` of a row naming /…/new/hello.mp3 when only /…/speech/hello.wav is indexed:
    no file described; an exported sheet read back with such a row added, and a bare name's row
    before the paths, describes each file by its own row."""
    import csv
    lib = (tmp_path / "lib").resolve()
    write(lib / "speech" / "hello.wav", noise(1.0, 16000, seed=1), 16000)
    write(lib / "speech" / "bye.wav", tone(300, 1.0, 16000), 16000)
    write(lib / "music" / "hello.wav", tone(600, 1.0, 16000), 16000)
    idx = tmp_path / "idx"
    index(lib, idx)

    def described() -> dict[str, str | None]:
        with SoundIndex.open(idx, model=FakeModel()) as si:
            return {os.path.relpath(h.path, lib): si.get_file(h.file_id)["metadata"].get("description")
                    for h in si.search_text("x", k=10)}
    sheet = tmp_path / "copy.csv"
    sheet.write_text(f"Pathname,Description\n{lib}/new/hello.mp3,MP3 COPY DESCRIPTION\n")
    run = CliRunner().invoke
    done = run(app, ["sheet", "import", str(sheet), "--index", str(idx)], env={"COLUMNS": "200"})
    assert done.exit_code == 1 and "described 0 indexed files from 0 of 1 row " in done.stdout
    assert set(described().values()) == {None}

    (tmp_path / "first.csv").write_text("Filename,Description\nhello.wav,Hello\nbye.wav,Bye\n")
    import_sheet(idx, tmp_path / "first.csv")
    rt = tmp_path / "rt.csv"
    assert run(app, ["sheet", "export", str(rt), "--index", str(idx)]).exit_code == 0
    with open(rt, encoding="utf-8-sig", newline="") as f:
        exported = list(csv.DictReader(f))
    for row in exported:
        row["Description"] += f" ({os.path.basename(os.path.dirname(row['Pathname']))})"
    bare = {**exported[0], "Filename": "hello.wav", "Pathname": "hello.wav", "Description": "BARE NAME"}
    mp3 = {**exported[0], "Filename": "hello.mp3", "Pathname": f"{lib}/new/hello.mp3", "Description": "MP3 COPY"}
    with open(rt, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(exported[0]))
        writer.writeheader()
        writer.writerows([bare, *exported, mp3])
    report = import_sheet(idx, rt)
    assert (report.file_column, report.files, report.unmatched) == ("Pathname", 3, [f"{lib}/new/hello.mp3"])
    assert described() == {"speech/hello.wav": "Hello (speech)", "speech/bye.wav": "Bye (speech)",
                           "music/hello.wav": "Hello (music)"}


def test_removing_a_sheet_gives_back_what_the_others_said(tmp_path):
    """Two sheets describing one file: the one imported later stands (search and get_file read
    it alone); removing it gives the file back the earlier one's rows, `sheet list` its counts
    from before, even after the file was renamed; removing the shadowed one leaves the standing
    one as it is, and re-importing a sheet makes it the later one."""
    lib = (tmp_path / "lib").resolve()
    write(lib / "speech" / "hello.wav", noise(1.0, 16000, seed=1), 16000)
    write(lib / "speech" / "bye.wav", tone(300, 1.0, 16000), 16000)
    idx = tmp_path / "idx"
    index(lib, idx)
    s1, s2 = tmp_path / "s1.csv", tmp_path / "s2.csv"
    s1.write_text("Filename,Description,Category\nhello.wav,Skylark over a meadow,BIRDS\nbye.wav,Steam train,TRAINS\n")
    s2.write_text("Filename,Description\nhello.flac,Church bell ringing\n")             # by its stem

    def hello() -> tuple[dict[str, str], str | None, bool]:
        """hello.wav's metadata and sheet, and whether keyword search finds it by "skylark"."""
        with SoundIndex.open(idx, model=FakeModel()) as si:
            found = {os.path.basename(h.path): si.get_file(h.file_id) for h in si.search_text("x", k=10)}
            skylark = [h for h in si.search_text("skylark", k=3, keywords=True) if h.keywords > 0]
        name = next(n for n in found if n.startswith("hello"))
        return found[name]["metadata"], found[name].get("sheet"), bool(skylark)
    import_sheet(idx, s1)
    before = (hello(), sheet_counts(idx))
    assert before == (({"description": "Skylark over a meadow", "category": "BIRDS"}, "s1.csv", True), {"s1.csv": 2})
    import_sheet(idx, s2)
    assert hello() == ({"description": "Church bell ringing"}, "s2.csv", False)
    assert sheet_counts(idx) == {"s1.csv": 1, "s2.csv": 1}
    assert remove_sheet(idx, "s2.csv") == 1
    assert (hello(), sheet_counts(idx)) == before

    import_sheet(idx, s2)
    os.rename(lib / "speech" / "hello.wav", lib / "speech" / "hello_renamed.wav")   # the rows follow the file
    assert index(lib, idx).moved == 1
    assert remove_sheet(idx, "s2.csv") == 1
    assert hello() == before[0][:2] + (True,) and sheet_counts(idx) == {"s1.csv": 2}
    os.rename(lib / "speech" / "hello_renamed.wav", lib / "speech" / "hello.wav")
    assert index(lib, idx).moved == 1

    import_sheet(idx, s2)
    assert remove_sheet(idx, "s1.csv") == 2                                  # the shadowed one goes
    assert hello() == ({"description": "Church bell ringing"}, "s2.csv", False)
    assert sheet_counts(idx) == {"s2.csv": 1}
    import_sheet(idx, s1)
    import_sheet(idx, s2)
    import_sheet(idx, s1)                                                    # imported again: the later one
    assert hello()[1] == "s1.csv" and sheet_counts(idx) == {"s1.csv": 2}
    assert remove_sheet(idx, "s1.csv") == 2
    assert hello() == ({"description": "Church bell ringing"}, "s2.csv", False)
    assert remove_sheet(idx, "s2.csv") == 1 and sheet_counts(idx) == {} and hello() == ({}, None, False)


def test_a_sheet_among_the_files_moves_with_them_on_relocate(lib, tmp_path):
    """A library's own CSV, imported from inside it: after the library is copied elsewhere and
    `soundsift relocate`d, the index knows the sheet at its new place (the next run does not
    call it "not imported", and importing it again there replaces its rows), shadowed layers too."""
    import shutil

    from indexer.metadata_sheet import imported_sheets
    from indexer.relocate import relocate
    (lib / "BBCSoundEffects.csv").write_text(BBC)
    (lib / "older.csv").write_text(BBC.replace("meadow", "pasture"))
    idx = tmp_path / "idx"
    index(lib, idx)
    import_sheet(idx, lib / "older.csv")
    import_sheet(idx, lib / "BBCSoundEffects.csv")          # stands over older.csv, which is kept beneath
    moved = (tmp_path / "SFX").resolve()
    shutil.copytree(lib, moved)
    relocate(idx, lib, moved)
    with catalog_session(idx) as s:
        assert imported_sheets(s) == {("BBCSoundEffects.csv", str(moved / "BBCSoundEffects.csv")),
                                      ("older.csv", str(moved / "older.csv"))}
    shutil.rmtree(lib)
    assert index(moved, idx).sheets_not_imported == []
    import_sheet(idx, moved / "BBCSoundEffects.csv")        # the same sheet: its rows replaced, not doubled
    assert sheet_counts(idx) == {"BBCSoundEffects.csv": 2}
    remove_sheet(idx, "BBCSoundEffects.csv")                # older.csv stands again, at its new place
    assert sheet_counts(idx) == {"older.csv": 2}
