"""A library sheet's UserTags column (`soundsift sheet export` writes it, `sheet import` reads it
back): a cell is the file's whole list of user tags, as exported; an empty cell leaves a file's
tags as they are, a cell "-" takes them off. And `index` names the hidden or system folders it
did not scan."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.errors import InvalidQuery
from engine.filters import Filters
from engine.query import SoundIndex
from indexer.metadata_sheet import import_sheet, sheet_counts
from indexer.user_tags import add_tags, tag_counts
from tests.cli_width import wide_terminal
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_user_tags import indexed  # noqa: F401  (the library: four files in two folders)
from ui.cli import app

run = CliRunner().invoke


def user_tags(idx: Path) -> dict[str, list[str]]:
    """File name → its user tags, sorted (only files that have some)."""
    with SoundIndex.open(idx, model=FakeModel()) as si:
        files = si.file_vectors().paths
    out = {}
    for tag in tag_counts(idx):
        for path in tagged(idx, tag, files[0]):
            out.setdefault(path, []).append(tag)
    return {name: sorted(tags) for name, tags in sorted(out.items())}


def tagged(idx: Path, tag: str, first: str) -> list[str]:
    """`similar --tagged TAG`'s file names, sorted."""
    with SoundIndex.open(idx, model=FakeModel()) as si:
        return sorted(Path(h.path).name for h in si.similar_to_file(first, k=10, filters=Filters(tags=(tag,))))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_export_edit_import_sets_the_tags_the_cells_list(indexed, tmp_path):  # noqa: F811
    """The round trip a sound designer makes: export, tag in the spreadsheet (add to one, change
    another's list, "-" on a third, leave a fourth's cell empty), import: `tags list` and
    `--tagged` show exactly the sheet's tags; importing it again changes nothing; `sheet remove`
    leaves them (they are the user's tags)."""
    lib, idx = indexed
    add_tags(idx, [lib / "Whooshes"], ["keeper", "ep3"])
    add_tags(idx, [lib / "beep.wav"], ["ui"])
    sheet = tmp_path / "library.csv"
    done = run(app, ["sheet", "export", str(sheet), "--index", str(idx)])
    assert done.exit_code == 0, done.output
    rows = read_csv(sheet)
    cells = {Path(r["Pathname"]).name: r for r in rows}
    assert cells["whoosh_fast.wav"]["UserTags"] == "keeper, ep3"
    cells["whoosh_fast.wav"]["UserTags"] = "keeper, Transition"          # ep3 off, Transition on
    cells["whoosh_slow.wav"]["UserTags"] = "-"                           # every tag off
    cells["room_tone.wav"]["UserTags"] = "ambience, \"Inside, small room\""   # a tag holding a comma
    cells["beep.wav"]["UserTags"] = ""                                   # no opinion: "ui" stays
    cells["beep.wav"]["Description"] = "A UI beep"                      # a description: the sheet describes beep.wav
    write_csv(sheet, rows)

    done = run(app, ["sheet", "import", str(sheet), "--index", str(idx), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)["sheets"][0]
    assert "UserTags" not in report["unused_columns"] and report["columns"]["UserTags"] == "user tags"
    assert (report["tag_files"], report["tags_added"], report["tags_removed"], report["tags_left"]) == (3, 3, 3, 1)
    assert user_tags(idx) == {"beep.wav": ["ui"], "room_tone.wav": ["Inside, small room", "ambience"],
                              "whoosh_fast.wav": ["Transition", "keeper"]}
    listed = run(app, ["tags", "list", "--index", str(idx), "--json"])
    assert sorted((t["tag"], t["files"]) for t in json.loads(listed.stdout)) == [
        ("Inside, small room", 1), ("Transition", 1), ("ambience", 1), ("keeper", 1), ("ui", 1)]
    found = run(app, ["similar", str(lib / "beep.wav"), "--index", str(idx), "--tagged", "transition", "--json"])
    assert found.exit_code == 0, found.output
    assert [Path(h["path"]).name for h in json.loads(found.stdout)] == ["whoosh_fast.wav"]

    again = run(app, ["sheet", "import", str(sheet), "--index", str(idx)])
    assert again.exit_code == 0, again.output
    assert "your tags: no change" in " ".join(again.stdout.split())
    assert ("note: 1 file with tags has an empty UserTags cell, so its tags stay as they are (a cell holding "
            '"-" takes a file\'s tags off)') in " ".join(again.stderr.split())
    assert user_tags(idx)["whoosh_fast.wav"] == ["Transition", "keeper"]

    removed = run(app, ["sheet", "remove", "library.csv", "--index", str(idx)])
    assert removed.exit_code == 0, removed.output
    assert user_tags(idx) == {"beep.wav": ["ui"], "room_tone.wav": ["Inside, small room", "ambience"],
                              "whoosh_fast.wav": ["Transition", "keeper"]}


def test_a_workbook_round_trip_and_a_dry_run(indexed, tmp_path):  # noqa: F811
    """An .xlsx export edited in openpyxl: --dry-run counts what would change and changes nothing;
    the import then does it, and what it says matches; a tag that differs only in case is the
    tag the file has already (as `tags add` takes it)."""
    from openpyxl import load_workbook
    lib, idx = indexed
    add_tags(idx, [lib / "beep.wav"], ["UI", '12" vinyl'])
    book_path = tmp_path / "library.xlsx"
    assert run(app, ["sheet", "export", str(book_path), "--index", str(idx)]).exit_code == 0
    book = load_workbook(book_path)
    sheet = book.active
    header = [c.value for c in sheet[1]]
    name, tags = header.index("Filename"), header.index("UserTags")
    for row in sheet.iter_rows(min_row=2):
        if row[name].value == "beep.wav":
            assert row[tags].value == 'UI, "12"" vinyl"'                 # as `tags add` reads it back
            row[tags].value = 'ui, "12"" vinyl", menu'
        if row[name].value == "whoosh_slow.wav":
            row[tags].value = "whoosh"
    book.save(book_path)
    dry = run(app, ["sheet", "import", str(book_path), "--index", str(idx), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "your tags: would change on 2 files (2 added, 0 removed)" in " ".join(dry.stdout.split())
    assert user_tags(idx) == {"beep.wav": ['12" vinyl', "UI"]}
    report = import_sheet(idx, book_path)
    assert (report.tag_files, report.tags_added, report.tags_removed) == (2, 2, 0)
    assert user_tags(idx) == {"beep.wav": ['12" vinyl', "UI", "menu"], "whoosh_slow.wav": ["whoosh"]}


def test_a_quote_doubled_inside_a_quoted_cell_is_one_quote(tmp_path):
    """Excel and `sheet export` double a quote inside a quoted cell; the separator sniffer may say
    they do not, and 'Room tone, ""Inside, small room""' was read as two cells, 'Room tone, "Inside'
    and ' small room' and three quotes (a tag list's quoted tag, a description quoting a name)."""
    from engine.metadata_sheet import read_sheet
    sheet = tmp_path / "quotes.csv"
    sheet.write_text('Filename,Description,Notes\n'
                     'room.wav,"Room tone, ""Inside, small room""",x\n'
                     'whoosh.wav,"Whoosh, fast",y\n')
    assert read_sheet(sheet).rows == [
        ("room.wav", {"description": 'Room tone, "Inside, small room"', "note": "x"}),
        ("whoosh.wav", {"description": "Whoosh, fast", "note": "y"})]


def test_a_sheet_from_elsewhere_with_an_empty_usertags_column_wipes_nothing(indexed, tmp_path):  # noqa: F811
    """A sheet of descriptions whose UserTags column is empty (another tool's, another index's
    export of untagged files) describes the files and leaves their tags as they are."""
    lib, idx = indexed
    add_tags(idx, [lib], ["keeper"])
    sheet = tmp_path / "vendor.csv"
    sheet.write_text("Filename,Description,UserTags\n"
                     "whoosh_fast.wav,Fast whoosh,\n"
                     "beep.wav,A beep,\n")
    report = import_sheet(idx, sheet)
    assert report.files == 2 and report.sets_tags
    assert (report.tag_files, report.tags_added, report.tags_removed, report.tags_left) == (0, 0, 0, 2)
    assert tag_counts(idx) == {"keeper": 4}


def test_a_cell_that_cannot_be_tags_names_the_sheet_and_file_and_changes_nothing(indexed, tmp_path):  # noqa: F811
    """A tag longer than `tags add` stores: one error naming the sheet, the file and why, and
    nothing of the sheet is imported (its other rows' tags neither)."""
    lib, idx = indexed
    sheet = tmp_path / "tags.csv"
    sheet.write_text("Filename,Description,UserTags\nwhoosh_fast.wav,Fast whoosh,keeper\n"
                     f"beep.wav,A beep,{'x' * 150}\n")
    with pytest.raises(InvalidQuery) as e:
        import_sheet(idx, sheet)
    assert str(e.value).startswith(f"{sheet}: the UserTags of {lib / 'beep.wav'}: tag 'xxx")
    assert "tags are at most 100" in str(e.value)
    assert tag_counts(idx) == {} and sheet_counts(idx) == {}
    done = run(app, ["sheet", "import", str(sheet), "--index", str(idx)])
    assert done.exit_code == 1 and "the UserTags of" in " ".join(done.stderr.split())


def test_index_names_the_hidden_or_system_folders_it_did_not_scan(tmp_path, tiny_clap_dir):
    """`index` said "not scanned: 1 hidden or system folder" and not which: it names the first
    three, then how many more, and --json lists them all (the counts keep their key)."""
    lib = (tmp_path / "Library").resolve()
    write(lib / "beep.wav", tone(1000, 0.5, 16000), 16000)
    for folder in (".Trashes", ".git", "$RECYCLE.BIN", "Doors/.Spotlight-V100"):
        write(lib / folder / "hidden.wav", tone(500, 0.5, 16000), 16000)
    idx = tmp_path / "idx"
    done = run(app, ["index", str(lib), "--index", str(idx), "--model", str(tiny_clap_dir), "-j", "0"],
               env=wide_terminal(lib, lib, lib, idx))
    assert done.exit_code == 0, done.output
    said = " ".join(done.stdout.split())
    assert (f"4 hidden or system folders ({lib / '$RECYCLE.BIN'}, {lib / '.Trashes'}, {lib / '.git'} "
            "and 1 more)") in said
    write(lib / "Doors" / "door.wav", noise(0.5, 16000, seed=2), 16000)
    done = run(app, ["index", str(lib), "--index", str(idx), "--json"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert summary["skipped"] == {"hidden or system folders": 4}
    assert summary["skipped_folders"] == [str(lib / "$RECYCLE.BIN"), str(lib / ".Trashes"), str(lib / ".git"),
                                          str(lib / "Doors" / ".Spotlight-V100")]
    from indexer.scan import SKIPPED_FOLDERS, SKIPPED_METADATA, describe_skipped
    assert describe_skipped({SKIPPED_METADATA: 2, SKIPPED_FOLDERS: 1}, [str(lib / ".git")]) == (
        f"2 macOS metadata files (._*), 1 hidden or system folder ({lib / '.git'})")
