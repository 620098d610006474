"""`soundsift sheet import --json` when sheets cannot be read: one unreadable sheet was the
command's error with nothing on stdout, several all unreadable printed ``[]`` and exit code 1, so a
script saw a different answer for the same failure by how many sheets it gave. As with `tag` of
files none of which can be read, nothing imported is the command's error, whatever the number."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.conftest import tone, write
from ui.cli import app

SR = 16000


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def said(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, tiny_clap_dir):  # noqa: F811
    """An index of one tone made with the tiny model, and a folder holding a sheet that names it,
    one with no file column and the path of one that does not exist: (index, good, no column, gone)."""
    from indexer import build_index
    lib = tmp_path_factory.mktemp("sheet_json_lib")
    write(lib / "tone.wav", tone(440, 1.0, SR), SR)
    index = tmp_path_factory.mktemp("sheet_json_idx") / "idx"
    build_index([lib], index=index, model=str(tiny_clap_dir), workers=0, progress=False)
    sheets = tmp_path_factory.mktemp("sheet_json_sheets")
    good, no_column = sheets / "good.csv", sheets / "no_column.csv"
    good.write_text("Filename,Description\ntone.wav,A steady tone\n")
    no_column.write_text("Title,Description\nTone,A steady tone\n")
    return index, good, no_column, sheets / "gone.csv"


def test_several_unreadable_sheets_are_the_commands_error_as_one_is(indexed):
    """Two unreadable sheets printed ``[]``: now, as for one, no JSON on stdout, each sheet's error
    and then the command's on stderr, exit code 1."""
    index, _, no_column, gone = indexed
    one = run("sheet", "import", no_column, "--index", index, "--json")
    several = run("sheet", "import", no_column, gone, "--index", index, "--json")
    assert (one.exit_code, one.stdout) == (1, ""), one.output
    assert (several.exit_code, several.stdout) == (1, ""), several.output
    assert "no column names the files" in said(one.stderr)
    errors = said(several.stderr)
    assert f"{no_column}: no column names the files" in errors and f"{gone}: cannot read it" in errors
    assert errors.endswith("error: none of the 2 sheets could be imported (errors above)"), errors
    plain = run("sheet", "import", no_column, gone, "--index", index)      # without --json: the same lines
    assert (plain.exit_code, plain.stdout) == (1, "") and said(plain.stderr) == errors


def test_a_sheet_imported_beside_an_unreadable_one_is_still_the_json_list(indexed):
    """One sheet imported and one not: the list of the one imported, exit code 1 for the other
    (listed in "errors", json_shapes35b)."""
    index, good, no_column, _ = indexed
    result = run("sheet", "import", no_column, good, "--index", index, "--json", "--dry-run")
    assert result.exit_code == 1, result.output
    assert [r["sheet"] for r in json.loads(result.stdout)["sheets"]] == ["good.csv"]
    assert "none of the" not in result.stderr
