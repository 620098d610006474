"""The --json shapes 9a208c7's rule left (a file a command could not use is ``{"path", "reason"}``
in ``"errors"``; named things with counts are lists of records; a summary's key is always there):
`duplicates` printed a bare list of groups, without the files it could not decode or whether
Ctrl-C stopped it; `sheet import` of several sheets left the one it could not read out; `tag
--timeline` printed bare segments, without the file's `path` or `from_index`; `info`'s "sheets"
was keyed by name, or by path where two sheets shared a name."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from indexer import build_index
from tests.cli_width import wide_terminal
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from ui.cli import app

SR = 16000


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def is_error_list(errors: object) -> bool:
    """Whether ``errors`` is a list of {"path", "reason"} records, both non-empty strings."""
    return isinstance(errors, list) and all(
        set(e) == {"path", "reason"} and isinstance(e["path"], str) and isinstance(e["reason"], str)
        and e["reason"] for e in errors)


# -- 1. duplicates: an object with the groups, the files it could not decode, interrupted --------

@pytest.fixture
def copies(tmp_path: Path) -> tuple[Path, Path]:
    """A folder of a recording twice, a third copy that stops decoding once indexed (its bytes
    replaced by text of the same size) and an unrelated sound, indexed with the fake model:
    (the broken copy, the index)."""
    lib = tmp_path / "lib"
    signal = noise(2.0, SR, seed=3)
    for name in ("slam.wav", "slam copy.wav", "slam (1).wav"):
        write(lib / name, signal, SR)
    write(lib / "beep.wav", tone(660, 1.0, SR), SR)
    index = tmp_path / "idx"
    build_index([lib], index, FakeModel(), workers=0, progress=False)
    broken = lib / "slam (1).wav"
    broken.write_bytes(b"x" * broken.stat().st_size)
    return broken, index


def test_duplicates_json_is_an_object_listing_what_it_could_not_decode(copies):
    """A bare list of groups: an unreadable file was a warning on stderr only, and a script
    could not tell an interrupted search's groups from a whole one's."""
    broken, index = copies
    result = run("duplicates", "--index", index, "--json", "--no-progress")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == {"groups", "files", "candidates", "compared", "errors", "interrupted"}, document
    assert document["interrupted"] is False and document["files"] == 4
    assert document["compared"] == document["candidates"] > 0
    assert is_error_list(document["errors"]) and [e["path"] for e in document["errors"]] == [str(broken.resolve())]
    group, = document["groups"]
    assert sorted(Path(p).name for p in group["paths"]) == ["slam copy.wav", "slam.wav"]


def test_duplicates_json_of_no_file_is_the_same_object(tmp_path):
    """Filters that leave no file: the same keys, nothing in them."""
    lib = tmp_path / "lib"
    write(lib / "beep.wav", tone(660, 1.0, SR), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    result = run("duplicates", "--index", tmp_path / "idx", "--format", "mp3", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"groups": [], "files": 0, "candidates": 0, "compared": 0,
                                         "errors": [], "interrupted": False}


# -- 2. sheet import: a sheet it could not read is in "errors" ------------------------------------

@pytest.fixture
def sheets(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """An index of a tone, a sheet naming it, one with no file column and a path that does not
    exist: (index, good, no column, gone)."""
    lib = tmp_path / "lib"
    write(lib / "tone.wav", tone(440, 1.0, SR), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    good, no_column = tmp_path / "good.csv", tmp_path / "no_column.csv"
    good.write_text("Filename,Description\ntone.wav,A steady tone\n")
    no_column.write_text("Title,Description\nTone,A steady tone\n")
    return tmp_path / "idx", good, no_column, tmp_path / "gone.csv"


def test_sheet_import_json_lists_a_sheet_it_could_not_read(sheets):
    """Several sheets, one unreadable: its error was on stderr only, the JSON a list of the others."""
    index, good, no_column, gone = sheets
    result = run("sheet", "import", no_column, good, gone, "--index", index, "--json", "--dry-run")
    assert result.exit_code == 1, result.output                     # one failed: said by the exit code too
    document = json.loads(result.stdout)
    assert set(document) == {"sheets", "errors"}
    assert [r["sheet"] for r in document["sheets"]] == ["good.csv"]
    assert is_error_list(document["errors"])
    assert [e["path"] for e in document["errors"]] == [str(no_column), str(gone)]
    assert document["errors"][0]["reason"].startswith("no column names the files")
    assert document["errors"][1]["reason"].startswith("cannot read it")


def test_sheet_import_json_of_readable_sheets_has_no_errors_and_none_readable_prints_none(sheets):
    """One sheet, or all of them readable: "errors" is there, empty; none readable (one or
    several) stays the command's error with nothing on stdout, as README says."""
    index, good, no_column, gone = sheets
    one = run("sheet", "import", good, "--index", index, "--json", "--dry-run")
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout)["errors"] == [] and len(json.loads(one.stdout)["sheets"]) == 1
    for args in ([no_column], [no_column, gone]):
        failed = run("sheet", "import", *args, "--index", index, "--json")
        assert (failed.exit_code, failed.stdout) == (1, ""), failed.output


# -- 3. tag --timeline: the file's record, its segments in it -------------------------------------

def test_tag_timeline_json_is_the_files_record_with_its_segments(tmp_path, tiny_clap_dir):  # noqa: F811
    """A bare list of segments, with neither the file's path nor whether the stored vectors
    tagged it, which `tag`'s "files" records carry."""
    lib = tmp_path / "lib"
    sound = write(lib / "long.wav", tone(440, 12.0, SR), SR)
    index = tmp_path / "idx"
    build_index([lib], index, model=str(tiny_clap_dir), workers=0, progress=False)
    decoded = run("tag", sound, "--timeline", "-m", tiny_clap_dir, "--labels", "dog,rain", "--json")
    stored = run("tag", sound, "--timeline", "--index", index, "--labels", "dog,rain", "--json")
    for result, from_index in ((decoded, False), (stored, True)):
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        assert set(document) == {"path", "from_index", "segments"}, document
        assert document["path"] == str(sound) and document["from_index"] is from_index
        assert len(document["segments"]) >= 2
        assert all({"start", "end", "tags"} <= set(s) for s in document["segments"])
    files = json.loads(run("tag", sound, "-m", tiny_clap_dir, "--labels", "dog,rain", "--json").stdout)["files"]
    assert files[0]["path"] == json.loads(decoded.stdout)["path"]      # named as tag's own records name it


# -- 4. info: "sheets" as `sheet list --json` lists them ------------------------------------------

def test_info_json_sheets_are_the_records_sheet_list_prints(tmp_path):
    """`info --json` keyed "sheets" by file name, and by path once two sheets shared a name."""
    lib = (tmp_path / "Vendor").resolve()
    write(lib / "Vol1" / "door.wav", noise(1.0, SR, seed=1), SR)
    write(lib / "Vol2" / "rain.wav", noise(1.0, SR, seed=2), SR)
    index = tmp_path / "idx"
    build_index([lib], index, FakeModel(), workers=0, progress=False)
    one, two = lib / "Vol1" / "metadata.csv", lib / "Vol2" / "metadata.csv"
    one.write_text("Filename,Description\ndoor.wav,An oak door\n")
    two.write_text("Filename,Description\nrain.wav,Rain on a roof\n")
    for sheet in (one, two):
        assert run("sheet", "import", sheet, "--index", index).exit_code == 0
    info = run("info", "--index", index, "--json")
    assert info.exit_code == 0, info.output
    listed = json.loads(run("sheet", "list", "--index", index, "--json").stdout)
    assert json.loads(info.stdout)["sheets"] == listed
    assert sorted(r["path"] for r in listed) == [str(one), str(two)]
    table = " ".join(CliRunner(env=wide_terminal(one, two)).invoke(app, ["info", "--index", str(index)]).stdout.split())
    assert str(one) in table and str(two) in table                    # a person still sees them apart
