"""A list option given a value that lists nothing (`--tagged "$TAG"` with the variable empty, `--not
,`) is one error line naming the option, exit code 1, as the HTTP API answers `tagged=,` with a 400
(ui.http_request.Query.listed): before session 41 the value was dropped and the search ran over
every file, unfiltered or with nothing excluded, without a word."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from indexer import build_index
from tests.conftest import noise, tone, write
from ui.cli import app

SR = 16_000


@pytest.fixture
def index_dir(tmp_path, tiny_clap_dir):
    lib = (tmp_path / "lib").resolve()
    write(lib / "hiss.wav", noise(1.0, SR, seed=2), SR)
    write(lib / "tone.flac", tone(440, 1.0, SR), SR)
    idx = tmp_path / "idx"
    build_index([lib], idx, str(tiny_clap_dir), workers=0, progress=False)
    return idx


def _run(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.mark.parametrize("option, value", [("--tagged", ""), ("--format", ","), ("--category", " "),
                                           ("--sample-rate", ", ,"), ("--channels", '""'), ("--not", " , ")])
def test_search_refuses_a_list_option_that_lists_nothing(index_dir, option, value):
    result = _run("search", "hiss", "--index", str(index_dir), "-k", "5", "--json", option, value)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    line = " ".join(result.stderr.split())
    assert line.startswith(f"error: {option} {value!r} lists nothing (only commas, quotes or spaces)")
    assert f"leave {option} out" in line


def test_similar_and_duplicates_refuse_it_too_and_real_values_still_work(index_dir, tmp_path):
    hiss = str(tmp_path / "lib" / "hiss.wav")
    assert _run("similar", hiss, "--index", str(index_dir), "--tagged", "").exit_code == 1
    assert _run("duplicates", "--index", str(index_dir), "--format", ",").exit_code == 1
    kept = _run("search", "hiss", "--index", str(index_dir), "-k", "5", "--json", "--format", "flac,",
                "--not", "thunder,")
    assert kept.exit_code == 0, kept.output
    assert '"format": "FLAC"' in kept.stdout and '"format": "WAV"' not in kept.stdout
