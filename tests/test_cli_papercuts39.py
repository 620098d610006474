"""Papercuts session 36 left (helper 152): `index -w` meant --workers where `search -w` means
--keywords (now `index -j`, `-w` kept with a warning); digital silence and recordings under the
loudness gate read as "−120 LUFS" (now "silent" / "under -70" for people, null in JSON, apart in
`info`); a bare `probe()` let libmpg123's lines through to stderr (now logged under the file)."""
from __future__ import annotations

import csv
import json
import logging
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.cli_width import wide_terminal
from tests.conftest import noise, tone, write
from ui.cli import app

runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


# -- `index -j` / `-w` ---------------------------------------------------------------------------

@pytest.fixture
def small_lib(tmp_path: Path) -> Path:
    lib = tmp_path / "lib"
    write(lib / "tone.wav", tone(440, 1.0, 16000), 16000)
    return lib


def test_index_help_offers_j_for_workers_and_no_longer_w():
    shown = runner.invoke(app, ["index", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    line = next(x for x in shown.stdout.splitlines() if "--workers" in x)
    assert "-j" in line.split() and "-w" not in line.split()
    assert "-w" not in shown.stdout.split()                      # -w is search's --keywords alone


def test_index_j_sets_the_workers(small_lib, tmp_path, tiny_clap_dir):  # noqa: F811
    done = run("index", small_lib, "--index", tmp_path / "idx", "--model", tiny_clap_dir, "-j", "0", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["workers"] == 0
    assert "deprecated" not in done.stderr


def test_index_w_still_works_and_says_to_write_j(small_lib, tmp_path, tiny_clap_dir):  # noqa: F811
    """A script's `index -w 0` must not break silently: it runs, and stderr names the new spelling."""
    done = run("index", small_lib, "--index", tmp_path / "idx", "--model", tiny_clap_dir, "-w", "0", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["workers"] == 0                 # stdout stays the JSON alone
    said = " ".join(done.stderr.split())
    assert "deprecated" in said and "-j 0" in said and "--keywords" in said


def test_index_w_and_j_together_is_a_usage_error(small_lib, tmp_path):
    done = run("index", small_lib, "--index", tmp_path / "idx", "-w", "1", "-j", "2")
    assert done.exit_code == 2 and "-w" in done.output
    assert not (tmp_path / "idx").exists()


# -- digital silence and the loudness gate -------------------------------------------------------

@pytest.fixture(scope="module")
def levels_index(tmp_path_factory):
    """An index (FakeModel) of digital silence, a room tone under the −70 LUFS gate and a tone."""
    from indexer import build_index
    from tests.index_fakes import FakeModel

    sr = 48_000
    root = tmp_path_factory.mktemp("levels")
    lib, idx = root / "lib", root / "idx"
    write(lib / "silence.wav", np.zeros(2 * sr), sr)
    write(lib / "hush.wav", 3e-5 * noise(2.0, sr), sr)                # about −90 dBFS RMS: every block gated out
    write(lib / "tone.wav", 0.1 * np.sin(2 * np.pi * 997 * np.arange(2 * sr) / sr), sr)
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    return lib, idx


def _file_ids(idx: Path, lib: Path) -> dict[str, int]:
    from engine.query import SoundIndex
    from tests.index_fakes import FakeModel

    with SoundIndex.open(idx, model=FakeModel()) as index:
        return {name: index.file_id_for_path(lib / name) for name in ("silence.wav", "hush.wav", "tone.wav")}


def test_file_records_give_null_for_what_was_not_measured(levels_index):
    """JSON (get_file, the HTTP server's /files/ID): null, not −120, for a level under the floor."""
    from engine.query import SoundIndex
    from tests.index_fakes import FakeModel

    lib, idx = levels_index
    ids = _file_ids(idx, lib)
    with SoundIndex.open(idx, model=FakeModel()) as index:
        levels = {name: index.get_file(fid)["levels"] for name, fid in ids.items()}
    assert levels["silence.wav"] == {"peak_dbfs": None, "loudness_lufs": None}
    assert levels["hush.wav"]["loudness_lufs"] is None and -90 < levels["hush.wav"]["peak_dbfs"] < -60
    assert levels["tone.wav"] == {"peak_dbfs": -20.0, "loudness_lufs": -23.0}


def test_loudness_filters_count_silence_below_any_range(levels_index):
    """Catalogs keep −120 as stored: `--max-loudness` keeps silent files, `--min-loudness` drops them."""
    from engine.filters import Filters
    from engine.query import SoundIndex
    from tests.index_fakes import FakeModel

    lib, idx = levels_index
    with SoundIndex.open(idx, model=FakeModel()) as index:
        def names(**bounds: float) -> list[str]:
            return sorted(Path(h.path).name for h in index.search_text("x", k=10, filters=Filters(**bounds)))
        assert names(max_loudness=-60) == ["hush.wav", "silence.wav"]
        assert names(min_loudness=-60) == ["tone.wav"]


def test_info_keeps_silent_files_out_of_the_loudness_range(levels_index):
    lib, idx = levels_index
    done = run("info", "--index", idx, "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["loudness"] == {"measured_files": 3, "silent_files": 2,
                                                   "quietest_lufs": -23.0, "loudest_lufs": -23.0}
    table = runner.invoke(app, ["info", "--index", str(idx)], env=wide_terminal(idx))
    assert table.exit_code == 0, table.output
    said = " ".join(table.stdout.split())
    assert "-23.0 … -23.0 LUFS, and 2 files silent or under -70" in said and "-120" not in said


def test_sheet_export_and_the_page_say_silent(levels_index, tmp_path):
    from openpyxl import load_workbook

    from ui.components.library import Library

    lib, idx = levels_index
    out = tmp_path / "sheet.csv"
    done = run("sheet", "export", out, "--index", idx)
    assert done.exit_code == 0, done.output
    with open(out, encoding="utf-8-sig", newline="") as f:
        rows = {Path(r["Pathname"]).name: r for r in csv.DictReader(f)}
    assert (rows["silence.wav"]["PeakdBFS"], rows["silence.wav"]["LoudnessLUFS"]) == ("silent", "silent")
    assert rows["hush.wav"]["LoudnessLUFS"] == "under -70" and float(rows["hush.wav"]["PeakdBFS"]) < -60
    assert (rows["tone.wav"]["PeakdBFS"], rows["tone.wav"]["LoudnessLUFS"]) == ("-20.0", "-23.0")

    book = tmp_path / "sheet.xlsx"
    assert run("sheet", "export", book, "--index", idx).exit_code == 0
    sheet = load_workbook(book).active
    header = [c.value for c in sheet[1]]
    cells = {r[header.index("Filename")]: r for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert cells["silence.wav"][header.index("LoudnessLUFS")] == "silent"
    assert cells["tone.wav"][header.index("LoudnessLUFS")] == -23.0              # numbers stay numbers

    ids = _file_ids(idx, lib)
    cards = Library(idx).files(list(ids.values()))
    assert cards[ids["silence.wav"]].levels == "silent"
    assert cards[ids["hush.wav"]].levels.startswith("under -70 LUFS · peak -")
    assert cards[ids["tone.wav"]].levels == "-23.0 LUFS · peak -20.0 dBFS"


# -- a bare probe() ------------------------------------------------------------------------------

def cut_mp3(path: Path) -> Path:
    """An MP3 of 3 s of tone cut to half its bytes: libmpg123 prints a Xing warning on opening it."""
    write(path, tone(440, 3.0, 44100), 44100)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


def test_a_bare_probe_logs_the_decoder_lines_under_the_file(tmp_path, capfd, caplog):
    """`probe(path)` from a Python shell (no relaying_decoder_output, no logging set up): what
    libmpg123 prints is a warning of engine.audio naming the file, not a raw line on stderr."""
    from engine.audio import decode, probe

    assert {t.name for t in threading.enumerate()} <= {"MainThread", "tqdm_monitor"}    # (tqdm's lingers)
    path = cut_mp3(tmp_path / "cut.mp3")
    capfd.readouterr()
    with caplog.at_level(logging.INFO, logger="engine.audio"):
        assert probe(path).sample_rate == 44100
        decode(path, 16000)
    assert capfd.readouterr().err == ""
    said = [r.getMessage() for r in caplog.records if r.name == "engine.audio" and r.levelno == logging.WARNING]
    assert len(said) == 2 and all(m.startswith(f"{path}: Warning: Xing stream size off") for m in said)


def test_a_probe_with_other_threads_about_leaves_stderr_alone(tmp_path, capfd, caplog):
    """fd 2 is process-wide: with another Python thread running (a server's), nothing is captured
    (that thread's own lines would be taken for the file's), as before."""
    from engine.audio import probe

    path = cut_mp3(tmp_path / "cut.mp3")
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        capfd.readouterr()
        probe(path)
    finally:
        stop.set()
        other.join()
    assert "Xing stream size off" in capfd.readouterr().err
    assert not [r for r in caplog.records if r.name == "engine.audio" and r.levelno >= logging.WARNING]


def test_inside_a_capture_the_lines_stay_the_captures(tmp_path, capfd, caplog):
    """An indexer decoder process captures its own stderr (the file's notes): probe leaves them to it."""
    from engine.audio import probe
    from engine.stderr_capture import StderrCapture

    path = cut_mp3(tmp_path / "cut.mp3")
    with StderrCapture() as captured:
        probe(path)
        lines = captured.take()
    assert lines and lines[0].startswith("Warning: Xing stream size off")
    assert not [r for r in caplog.records if r.name == "engine.audio" and r.levelno >= logging.WARNING]
