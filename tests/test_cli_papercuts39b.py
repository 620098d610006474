"""Session 39 papercuts of the search CLI: a bare --index name that is an index folder here, a
second --export into one folder, and result tables at 80 columns splitting file names."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import ui.cli.results as results
from engine.query_hits import Hit
from tests.conftest import tone, write
from ui.cli import app


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def said(result) -> str:
    return " ".join(result.output.split())


# ---------------------------------------------------------------- 1. --index idx with ./idx an index


@pytest.fixture
def index_here(tmp_path, monkeypatch):
    """A real index at ./idx of the current folder (built with the fake model), none under indexes/."""
    from indexer import build_index
    from tests.index_fakes import FakeModel

    monkeypatch.delenv("SOUNDSIFT_INDEX_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "lib" / "tone.wav", tone(440, 1.0, 16000), 16000)
    build_index([tmp_path / "lib" / "tone.wav"], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    return tmp_path


@pytest.mark.parametrize("command", [("info",), ("search", "dog"), ("tags", "list")])
def test_a_bare_name_that_is_an_index_folder_here_says_to_pass_its_path(index_here, command):
    r = run(*command, "--index", "idx")
    assert r.exit_code == 1 and "Traceback" not in r.output
    text = said(r)
    assert f"no index at {index_here / 'indexes' / 'idx'} (a bare name is a folder under" in text
    assert "./idx is an index folder: pass --index ./idx" in text
    assert "build one with" not in text                  # it exists: building another is not the advice


def test_the_hint_is_only_given_where_the_folder_here_holds_an_index(index_here):
    (index_here / "plain").mkdir()
    (index_here / "plain" / "notes.txt").write_text("not an index")
    text = said(run("info", "--index", "plain"))
    assert "is an index folder" not in text and "build one with" in text
    assert "is an index folder" not in said(run("info", "--index", "nothing"))


# ---------------------------------------------------------------- 2. a second --export into one folder


def _hit(path: Path, rank: int) -> Hit:
    return Hit(path=str(path), start=0.0, end=1.0, score=0.5, file_id=rank, segment_id=rank, duration=1.0,
               format="WAV", sample_rate=16000, folder=str(path.parent))


@pytest.fixture
def stderr(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr(results, "err_console", Console(file=buf, markup=False, width=200))
    return buf


def test_a_second_export_into_a_folder_names_the_export_already_there(tmp_path, stderr):
    dog = write(tmp_path / "lib" / "dog.wav", tone(440, 1.0, 16000), 16000)
    rain = write(tmp_path / "lib" / "rain.wav", tone(220, 1.0, 16000), 16000)
    out = tmp_path / "session"
    results.export_results([_hit(dog, 1)], out, False, 0.0, "dog barking")
    assert "already holds" not in stderr.getvalue()              # a new folder: nothing to say
    results.export_results([_hit(rain, 1)], out, False, 0.0, "=rain")
    note = " ".join(stderr.getvalue().split())
    assert "already holds an export of 1 file, last query 'dog barking'" in note
    assert "soundsift-export.csv's query column" in note
    assert sorted(p.name for p in out.glob("*.wav")) == ["01_dog.wav", "01_rain.wav"]
    with open(out / "soundsift-export.csv", newline="", encoding="utf-8") as f:
        assert [row["query"] for row in csv.DictReader(f)] == ["dog barking", "'=rain"]
    results.export_results([_hit(dog, 1)], out, False, 0.0, "again")
    note = " ".join(stderr.getvalue().split())
    assert "an export of 2 files, last query '=rain'" in note     # the formula mark is not the query's


# ---------------------------------------------------------------- 3. tables at 80 columns

FOLDERS = ["/home/ana/Sounds/datasets/gcompris", "/home/ana/Sounds/datasets/gcompris/animals/farm",
           "/media/ana/SFX_Library_2019/Foley/Footsteps/Gravel", "/srv/sfx/a/bb/ccc/dddd/eeeee/ffffff"]
NAMES = ["dog-barking-01.wav", "horse_neigh_far.flac", "footsteps-gravel-slow.wav", "rain.wav"]


def _table(width: int, hits: list[Hit]) -> list[str]:
    buf = io.StringIO()
    console = Console(file=buf, width=width, markup=False, soft_wrap=True)   # as ui.cli.common.out_console
    original = results.out_console
    results.out_console = console
    try:
        results.show_hits(hits, False, "search 'dog'")
    finally:
        results.out_console = original
    return buf.getvalue().splitlines()


def _path_cells(lines: list[str], column: int) -> list[list[str]]:
    """Per result, the lines of one column of a rendered table."""
    rows: list[list[str]] = []
    for line in lines:
        if not line.startswith("│"):
            continue
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells[0]:
            rows.append([])
        rows[-1].append(cells[column])
    return rows


def _hits() -> list[Hit]:
    return [Hit(path=f"{folder}/{name}", start=0.0, end=1.0, score=0.9 - i / 10, file_id=i, segment_id=i,
                duration=1.0, format="WAV", sample_rate=48000, folder=folder)
            for i, (folder, name) in enumerate(zip(FOLDERS, NAMES))]


@pytest.mark.parametrize("width", [80, 72])
def test_an_80_column_table_wraps_paths_after_a_slash_never_inside_a_name(width):
    lines = _table(width, _hits())
    assert max(map(len, lines)) <= width
    cells = _path_cells(lines, 2)
    assert len(cells) == len(NAMES)
    for folder, name, cell in zip(FOLDERS, NAMES, cells):
        assert cell[-1].endswith(name), cell                          # the file name on one line, whole
        assert "".join(cell) == f"{folder}/{name}"                    # nothing lost, nothing added
        assert all(line.endswith("/") for line in cell[:-1]), cell    # each cut after a separator


def test_a_wide_table_keeps_file_names_and_folder_names_whole():
    hits = _hits()
    hits[0] = Hit(path=f"{FOLDERS[0]}/dog-barking-in-the-yard-distant.wav", start=0.0, end=1.0, score=0.9,
                  file_id=0, segment_id=0, duration=1.0, format="WAV", sample_rate=48000, folder=FOLDERS[0],
                  copies=(f"/mnt/backup{FOLDERS[0]}/dog-barking-in-the-yard-distant.wav",))
    lines = _table(120, hits)
    assert max(map(len, lines)) <= 120
    names, folders = _path_cells(lines, 2), _path_cells(lines, 3)
    assert names[0][0] == "dog-barking-in-the-yard-distant.wav"
    for name, cell in zip(NAMES[1:], names[1:]):
        assert cell[0] == name
    for folder, cell in zip(FOLDERS, folders):
        parts = [p for line in cell for p in line.split("/") if p]
        assert parts == [p for p in folder.split("/") if p], cell   # every folder name on one line


def test_a_name_wider_than_the_column_starts_a_line_and_breaks_after_a_dash():
    long = "a-very-long-recording-name-of-a-door-slam-in-a-big-hall-with-echo.wav"
    hits = [Hit(path=f"/sfx/[draft]/{long}", start=0.0, end=1.0, score=0.5, file_id=1, segment_id=1,
                duration=1.0, format="WAV", sample_rate=48000, folder="/sfx/[draft]")]
    cell = _path_cells(_table(60, hits), 2)[0]
    assert cell[0] == "/sfx/[draft]/"
    assert "".join(cell[1:]) == long and all(line.endswith("-") for line in cell[1:-1]), cell


def test_json_keeps_full_paths(capsys):
    results.show_hits(_hits(), True, "search 'dog'")
    import json
    assert [h["path"] for h in json.loads(capsys.readouterr().out)] == [f"{f}/{n}" for f, n in zip(FOLDERS, NAMES)]
