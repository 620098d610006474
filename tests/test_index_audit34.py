"""Audit 34 of incremental indexing and `--watch` (indexer.runner, indexer.watch, `soundsift index`):
what a library sheet said of files that leave is named with the sheet to import again; a watch
retries a failed file when it changes, not whenever anything does; the summary says what really
ran; `--json` keeps its notes on stderr; `--memory-budget` is checked and said when not applied."""
from __future__ import annotations

import json
import logging
import os
import threading
import time

import pytest
from typer.testing import CliRunner

from engine.index_choice import parse_memory_budget, physical_memory
from indexer import build_index
from indexer.metadata_sheet import import_sheet, sheet_counts
from tests.conftest import catalog_session, noise, tone, write
from tests.index_fakes import FakeModel
from ui.cli import app

SR = 16_000


def index(lib, idx, **kw):
    return build_index([lib], idx, FakeModel(), workers=0, progress=False, **kw)


def doors_library(tmp_path):
    """A library whose three door files a vendor's metadata.csv describes, beside one it does not."""
    lib = (tmp_path / "lib2").resolve()
    doors = lib / "Foley" / "Doors"
    for i, seed in enumerate((1, 2, 3)):
        write(doors / f"door_{i}.wav", noise(1.0, SR, seed=seed), SR)
    write(lib / "rain.wav", tone(500, 1.0, SR), SR)
    sheet = lib / "metadata.csv"
    sheet.write_text("Filename,Description\n" + "".join(f"door_{i}.wav,Door {i} creaks\n" for i in range(3)))
    return lib, doors, sheet


def test_files_that_leave_name_the_sheet_that_described_them(tmp_path, caplog):
    lib, doors, sheet = doors_library(tmp_path)
    idx = tmp_path / "idx"
    index(lib, idx)
    assert import_sheet(idx, sheet).files == 3
    os.rename(doors, doors.with_name(".Doors_old"))          # a hidden folder: the walk skips it
    with caplog.at_level(logging.WARNING, logger="indexer.runner"):
        assert index(lib, idx).removed == 3
    said = " ".join(r.getMessage() for r in caplog.records if "gone from the library" in r.getMessage())
    assert "3 files gone from the library carried descriptions from a library sheet" in said
    assert f"{doors / 'door_0.wav'} (sheet metadata.csv)" in said
    assert f"`soundsift sheet import {sheet} --index {idx}`" in said
    assert "tags add" not in said                               # no tag of the user's was lost
    os.rename(doors.with_name(".Doors_old"), doors)
    assert index(lib, idx).added == 3
    assert import_sheet(idx, sheet).files == 3                  # as the warning said: described again
    assert sheet_counts(idx) == {"metadata.csv": 3}


def test_a_file_leaving_with_tags_and_sheet_rows_names_both(tmp_path, caplog):
    from indexer.user_tags import add_tags
    lib, doors, sheet = doors_library(tmp_path)
    idx = tmp_path / "idx"
    index(lib, idx)
    import_sheet(idx, sheet)
    add_tags(idx, [doors / "door_1.wav"], ["ep3"])
    (doors / "door_1.wav").unlink()
    with caplog.at_level(logging.WARNING, logger="indexer.runner"):
        index(lib, idx)
    said = " ".join(r.getMessage() for r in caplog.records if "gone from the library" in r.getMessage())
    assert "1 file gone from the library carried your tags, captions or library-sheet descriptions" in said
    assert f"{doors / 'door_1.wav'} (ep3, sheet metadata.csv)" in said
    assert "`soundsift tags add`" in said and "soundsift sheet import" in said


def wait_for(condition, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail (not hang) after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "the watcher did not get there"
        time.sleep(0.02)


def test_a_watch_retries_a_failed_file_when_it_changes_not_when_another_file_does(tmp_path, caplog):
    from indexer.watch import watch_index
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    write(lib / "dog.wav", tone(440, 1.0, SR), SR)
    (lib / "broken.wav").write_bytes(b"not audio")
    (lib / "cut.wav").write_bytes(b"RIFF....WAVE")
    os.symlink(lib / "nowhere.wav", lib / "dangling.wav")       # an entry the walk cannot use
    summaries, stop = [], threading.Event()
    watcher = threading.Thread(target=watch_index, args=([lib], idx, FakeModel()),
                               kwargs=dict(interval=0.05, on_run=summaries.append, stop=stop, workers=0,
                                           progress=False, settle=0.05))
    with caplog.at_level(logging.INFO):
        watcher.start()
        try:
            wait_for(lambda: len(summaries) == 1)
            assert (summaries[0].added, summaries[0].failed) == (1, 3)
            caplog.clear()
            os.replace(write(tmp_path / "staging" / "rain.wav", tone(900, 1.0, SR), SR), lib / "rain.wav")
            wait_for(lambda: len(summaries) == 2)
            assert (summaries[1].added, summaries[1].failed) == (1, 0)
            assert summaries[1].totals["errors"] == 3                 # their error rows stay
            said = [r.getMessage() for r in caplog.records]
            assert not [m for m in said if m.startswith("skipped ")]   # not warned about again
            assert not [m for m in said if "that failed before, tried again" in m]
            assert any("3 files that failed before and did not change since are not tried again" in m for m in said)
            caplog.clear()
            (lib / "broken.wav").write_bytes(b"still not audio, but another file")
            wait_for(lambda: len(summaries) == 3)
            assert (summaries[2].added, summaries[2].failed) == (0, 1)  # only the file that changed
            assert [e["path"] for e in summaries[2].errors] == [str(lib / "broken.wav")]
            assert summaries[2].totals["errors"] == 3
            caplog.clear()
            (lib / "cut.wav").unlink()
            wait_for(lambda: len(summaries) == 4)
            assert (summaries[3].failed, summaries[3].totals["errors"]) == (0, 2)   # gone: its row goes
        finally:
            stop.set()
            watcher.join(30)
    assert not watcher.is_alive()
    # a plain run tries every failed file again, as README says
    again = index(lib, idx)
    assert again.failed == 2


@pytest.fixture
def fake_model_cli(monkeypatch):
    """`soundsift index` with the FakeModel in place of the model it would load."""
    import indexer
    real = indexer.build_index
    monkeypatch.setattr(indexer, "build_index",
                        lambda paths, index=None, model=None, **kw: real(paths, index, FakeModel(), **kw))


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_the_summary_says_what_ran(tmp_path, fake_model_cli):
    lib, idx = tmp_path / "lib", str(tmp_path / "idx")
    write(lib / "dog.wav", tone(440, 1.0, SR), SR)
    first = run("index", str(lib), "--index", idx, "--workers", "0", "--no-progress")
    assert first.exit_code == 0, first.output
    said = " ".join(first.stdout.split())
    assert "decode and resample ran in this process (--workers 0)" in said
    assert "worker processes" not in said and "files/s" in said
    again = run("index", str(lib), "--index", idx, "--workers", "1", "--no-progress")
    said = " ".join(again.stdout.split())
    assert "nothing to embed" in said and "files/s" not in said and "real time" not in said
    assert "decode and resample" not in said                    # nothing was decoded
    write(lib / "cat.wav", tone(660, 1.0, SR), SR)
    third = run("index", str(lib), "--index", idx, "--workers", "1", "--no-progress", "--json")
    assert json.loads(third.stdout)["workers"] == 1


def test_json_keeps_the_note_on_stray_spreadsheets_on_stderr(tmp_path, fake_model_cli):
    lib, idx = tmp_path / "lib", str(tmp_path / "idx")
    write(lib / "dog.wav", tone(440, 1.0, SR), SR)
    (lib / "notes.csv").write_text("Filename,Description\ndog.wav,A dog\n")
    r = run("index", str(lib), "--index", idx, "--workers", "0", "--no-progress", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["sheets_not_imported"] == [str(lib / "notes.csv")]
    assert "note: spreadsheets among the files, not imported as library sheets: notes.csv" in " ".join(r.stderr.split())


@pytest.mark.parametrize("budget, said", [("lots", "is not a size"), ("200%", "at most 100%")])
def test_a_memory_budget_soundsift_cannot_use_is_one_line(tmp_path, budget, said):
    lib = tmp_path / "lib"
    write(lib / "dog.wav", tone(440, 1.0, SR), SR)
    r = run("index", str(lib), "--index", str(tmp_path / "idx"), "--memory-budget", budget)
    assert r.exit_code == 1 and "Usage" not in r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --memory-budget") and said in lines[0]
    assert not (tmp_path / "idx").exists()


def test_a_budget_from_the_environment_soundsift_cannot_use_is_one_line(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    write(lib / "dog.wav", tone(440, 1.0, SR), SR)
    monkeypatch.setenv("SOUNDSIFT_MEMORY_BUDGET", "300%")
    r = run("index", str(lib), "--index", str(tmp_path / "idx"))
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit)      # said, not a traceback
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: $SOUNDSIFT_MEMORY_BUDGET: memory budget '300%'")
    assert not (tmp_path / "idx").exists()


def test_a_budget_from_the_environment_is_one_line_in_every_command_that_writes_an_index(tmp_path, monkeypatch):
    """`index` checked $SOUNDSIFT_MEMORY_BUDGET before its work; `relocate` (which opens an index
    writer too) ended in a ValueError traceback."""
    lib, idx = (tmp_path / "lib").resolve(), tmp_path / "idx"
    write(lib / "dog.wav", tone(440, 1.0, SR), SR)
    index(lib, idx)
    os.rename(lib, tmp_path / "elsewhere")                      # the library moved: relocate it
    monkeypatch.setenv("SOUNDSIFT_MEMORY_BUDGET", "lots")
    r = run("relocate", str(lib), str(tmp_path / "elsewhere"), "--index", str(idx))
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output      # said, not a traceback
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: $SOUNDSIFT_MEMORY_BUDGET: memory budget 'lots'"), lines


def test_a_budget_over_all_memory_is_refused_and_all_of_it_is_taken():
    with pytest.raises(ValueError, match="at most 100%"):
        parse_memory_budget("150%")
    assert parse_memory_budget("100%") == physical_memory()


def test_a_budget_given_to_a_run_that_writes_no_vectors_is_said_not_applied(tmp_path, caplog):
    from engine.catalog import get_meta
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    write(lib / "dog.wav", tone(440, 1.0, SR), SR)
    index(lib, idx, memory_budget="1G")
    with caplog.at_level(logging.WARNING, logger="indexer.runner"):
        index(lib, idx, memory_budget="1G")                     # the budget it has: nothing to say
        assert not [r for r in caplog.records if "memory-budget" in r.getMessage()]
        index(lib, idx, memory_budget="2G")
    said = [r.getMessage() for r in caplog.records if "memory-budget" in r.getMessage()]
    assert said == ["--memory-budget 2.0 GiB was not applied: the index type is chosen when a run adds, "
                    "changes or removes files, and this one did none of that; the index keeps its budget of "
                    "1.0 GiB (`soundsift info`). Give it again on such a run"]
    with catalog_session(idx) as s:
        assert get_meta(s).get("memory_budget") == 1 << 30
    caplog.clear()
    write(lib / "cat.wav", tone(660, 1.0, SR), SR)
    with caplog.at_level(logging.WARNING, logger="indexer.runner"):
        index(lib, idx, memory_budget="2G")                     # a run that writes applies it
    assert not [r for r in caplog.records if "memory-budget" in r.getMessage()]
