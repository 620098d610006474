"""A ``~`` left unexpanded in a place soundsift writes (a quoted ``--export '~/Session/rain'``, a
script's argument list, a path read from a config) is the home folder, as in every path it reads
(``--index '~/idx'``, ``--path-prefix``, the files given): not a folder named ``~`` made in the
current one (session 41: ``search … --export '~/Session/x'`` and ``sheet export '~/lib.csv'`` both
wrote into ``./~``)."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import tone, write
from engine.export import MANIFEST, export_hits
from engine.outputs import make_folder, output_file, output_folder
from engine.query import Hit
from engine.sheet_export import write_library_sheet

SR = 16_000


@pytest.fixture
def home_and_work(tmp_path, monkeypatch) -> tuple[Path, Path]:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    return home, work


def _hit(path: Path, duration: float) -> Hit:
    return Hit(path=str(path), start=0.0, end=duration, score=0.9, file_id=1, segment_id=1,
               duration=duration, format="WAV", sample_rate=SR, folder=str(path.parent))


def test_output_places_expand_the_home_folder(home_and_work):
    home, _ = home_and_work
    assert output_folder("~/Session/rain", "--export") == home / "Session" / "rain"
    assert output_file("~/sheets/lib.csv", "OUT") == home / "sheets" / "lib.csv"


def test_a_folder_made_for_output_is_in_the_home_folder(home_and_work):
    # eval --report and train --out check the place with output_folder, then make it here
    home, work = home_and_work
    assert make_folder("~/reports/eval") == home / "reports" / "eval"
    assert (home / "reports" / "eval").is_dir() and not (work / "~").exists()


def test_an_export_to_a_quoted_tilde_goes_home(home_and_work, tmp_path):
    home, work = home_and_work
    source = write(tmp_path / "beep.wav", tone(440, 1.0, SR), SR)
    result = export_hits([_hit(source, 1.0)], "~/Session/rain", query="beep")
    assert [w.path.parent for w in result.written] == [home / "Session" / "rain"]
    assert (home / "Session" / "rain" / MANIFEST).is_file()
    assert not (work / "~").exists()


def test_the_cli_export_finds_its_earlier_export_at_home(home_and_work, tmp_path, capsys):
    from ui.cli.results import export_results

    home, work = home_and_work
    source = write(tmp_path / "beep.wav", tone(440, 1.0, SR), SR)
    export_results([_hit(source, 1.0)], Path("~/picks"), False, 0.0, "beep")
    export_results([_hit(source, 1.0)], Path("~/picks"), False, 0.0, "beep again")
    err = capsys.readouterr().err
    assert "already holds an export of 1 file, last query 'beep'" in " ".join(err.split())
    assert sorted(p.name for p in (home / "picks").iterdir()) == ["01_beep (2).wav", "01_beep.wav", MANIFEST]
    assert not (work / "~").exists()


def test_a_sheet_written_to_a_quoted_tilde_goes_home(home_and_work):
    home, work = home_and_work
    written = write_library_sheet([], "~/lib.csv")
    assert written == home / "lib.csv" and written.is_file()
    assert not (work / "~").exists()
