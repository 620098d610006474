"""`soundsift index` and `soundsift info` on a tiny random CLAP folder (the real HF backend)."""
from __future__ import annotations

import json
import re
import os

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import catalog_session, chirp, noise, tone, write
from ui.cli import app


def run(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result


@pytest.fixture
def lib(tmp_path):
    lib = tmp_path / "lib"
    write(lib / "tone.wav", tone(440, 1.0, 44100), 44100)
    write(lib / "sweep.flac", chirp(100, 6000, 2.0, 22050), 22050)
    write(lib / "stereo.ogg", np.stack([noise(1.0, 48000), noise(1.0, 48000, seed=1)], 1), 48000)
    (lib / "broken.wav").write_text("not audio")
    return lib


def test_index_then_info_json(lib, tmp_path, tiny_clap_dir):  # noqa: F811
    idx = str(tmp_path / "idx")
    r = run("index", str(lib), "--index", idx, "--model", str(tiny_clap_dir), "--workers", "1", "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert (s["added"], s["updated"], s["removed"], s["unchanged"], s["failed"]) == (3, 0, 0, 0, 1)
    assert {"scan", "decode", "resample", "embed", "write"} <= set(s["timings"])
    assert s["errors"][0]["path"].endswith("broken.wav")
    assert s["n_segments"] == 3                   # every file is shorter than the 10 s window

    # a re-run without --model uses the index's own model and embeds nothing
    r = run("index", str(lib), "--index", idx, "--workers", "0", "--json")
    assert r.exit_code == 0, r.output
    s2 = json.loads(r.stdout)
    assert (s2["added"], s2["unchanged"], s2["n_segments"]) == (0, 3, 0)

    r = run("info", "--index", idx, "--json")
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["counts"] == {"files": 3, "segments": 3, "errors": 1, "described": 0, "marked": 0,
                              "silent_left_out": 0, "files_of_silence": 0, "silence_not_judged": 0,
                              "metadata_not_reread": 0}
    assert info["model_name"] == str(tiny_clap_dir.resolve()) and info["dim"] == 32
    assert info["sample_rate"] == 48000 and info["index_type"] == "Flat"
    assert info["faiss_factory"] == "IDMap2,Flat" and info["recall_at_10"] == 1.0
    assert info["index_params"] == {}
    assert info["total_duration"] == pytest.approx(4.0, abs=0.01)
    assert sorted(f["format"] for f in info["formats"]) == ["FLAC", "OGG", "WAV"]
    assert info["sample_rates"] == [{"sample_rate": r, "files": 1} for r in (22050, 44100, 48000)]
    assert info["channels"] == [{"channels": 1, "files": 2}, {"channels": 2, "files": 1}]
    assert info["loudness"]["measured_files"] == 3
    assert -40 < info["loudness"]["quietest_lufs"] < info["loudness"]["loudest_lufs"] < 0
    assert info["errors"][0]["path"].endswith("broken.wav") and info["errors"][0]["reason"]
    assert os.path.isfile(os.path.join(idx, info["vectors_file"]))

    r = run("info", "--index", idx)                 # the readable tables
    assert r.exit_code == 0 and "broken.wav" in r.stdout and "FLAC" in r.stdout
    assert re.search(r"22\.05 kHz │\s+1 │\s+mono │\s+2", r.stdout) and re.search(r"stereo │\s+1", r.stdout)
    assert re.search(r"loudness\s+│ -\d+\.\d … -\d+\.\d LUFS\s+│", r.stdout)
    assert "one per marked take" in " ".join(re.sub(r"[│┃]", " ", r.stdout).split())
    from sqlalchemy import delete

    from engine.catalog import FileMetadata
    with catalog_session(idx, write=True) as s:     # one file indexed before levels were measured
        first = s.query(FileMetadata.file_id).filter(FileMetadata.key == "loudness_lufs").first()[0]
        s.execute(delete(FileMetadata).where(FileMetadata.file_id == first, FileMetadata.key == "loudness_lufs"))
    r = run("info", "--index", idx)
    cells = " ".join(re.sub(r"[│┃]", " ", r.stdout).split())      # the table may wrap the row
    assert "(2 of 3 files measured; `soundsift index … --rebuild` measures the others)" in cells


def test_index_with_another_model_is_a_clear_error(lib, tmp_path, tiny_clap_dir):  # noqa: F811
    from tests.index_fakes import FakeModel
    from indexer import build_index

    idx = tmp_path / "idx"
    build_index([lib / "tone.wav"], idx, FakeModel(), workers=0, progress=False)
    r = run("index", str(lib), "--index", str(idx), "--model", str(tiny_clap_dir))
    assert r.exit_code == 1
    assert "fake" in r.output and "--index" in r.output and "Traceback" not in r.output


def test_a_mistyped_path_is_one_line_and_exit_1_with_no_index_made(tmp_path):
    r = run("index", str(tmp_path / "Sonds"), "--index", str(tmp_path / "idx"))
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "Sonds: no such file or folder; no index was created" in " ".join(r.stderr.split())
    assert not (tmp_path / "idx").exists()


def test_info_on_a_missing_index(tmp_path):
    r = run("info", "--index", str(tmp_path / "nothing"))
    assert r.exit_code == 1 and "soundsift index" in r.output


def test_a_missing_named_index_says_where_names_are_looked_up(tmp_path, monkeypatch):
    monkeypatch.delenv("SOUNDSIFT_INDEX_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    said = " ".join(run("info", "--index", "mylib").output.split())
    assert f"no index at {tmp_path / 'indexes' / 'mylib'} (a bare name is a folder under" in said
    assert "$SOUNDSIFT_INDEX_HOME" in said and "current folder" in said
    said = " ".join(run("info", "--index", str(tmp_path / "mylib")).output.split())
    assert "bare name" not in said                   # a path is used as given


def test_an_interrupted_run_exits_130_and_json_says_what_was_kept(tmp_path, monkeypatch):
    import indexer
    from indexer.runner import IndexInterrupted, IndexSummary

    kept = IndexSummary(index=str(tmp_path / "idx"), added=4, interrupted=True, generation=2,
                        totals={"files": 4, "segments": 5, "errors": 0})

    def stopped(*args, **kwargs):
        raise IndexInterrupted(kept)
    monkeypatch.setattr(indexer, "build_index", stopped)
    r = run("index", str(tmp_path), "--index", str(tmp_path / "idx"), "--json")
    assert r.exit_code == 130
    s = json.loads(r.stdout)
    assert s["interrupted"] is True and s["added"] == 4 and s["totals"]["files"] == 4
    r = run("index", str(tmp_path), "--index", str(tmp_path / "idx"))
    assert r.exit_code == 130 and r.stdout == ""      # the run's warning said it on stderr


@pytest.mark.parametrize("cmd", ["index", "info"])
def test_help(cmd):
    r = run(cmd, "--help")
    assert r.exit_code == 0 and "--index" in r.output and "--json" in r.output


def test_memory_budget_option(lib, tmp_path):
    r = run("index", str(lib), "--index", str(tmp_path / "idx"), "--memory-budget", "lots")
    assert r.exit_code == 1 and "memory budget" in r.output and "4G" in r.output     # one line, README's rule
    assert not (tmp_path / "idx").exists()
    r = run("index", "--help")
    assert "--memory-budget" in r.output


def test_index_and_search_a_library_with_the_bundled_fast_model(tmp_path):
    """soundsift-fast end to end through the CLI: 16 kHz index, text search finds the right file."""
    lib = tmp_path / "lib"
    write(lib / "hum.wav", tone(440, 3.0, 44100, amp=0.3), 44100)
    write(lib / "hiss.flac", noise(3.0, 48000, seed=3, amp=0.3), 48000)
    beeps = tone(1000, 3.0, 22050, amp=0.3) * (np.arange(3 * 22050) % 11025 < 3300)   # 0.15 s on, 0.35 s off
    write(lib / "beeps.ogg", beeps, 22050)
    idx = str(tmp_path / "idx")
    r = run("index", str(lib), "--index", idx, "--model", "soundsift-fast", "--workers", "0", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["added"] == 3
    info = json.loads(run("info", "--index", idx, "--json").stdout)
    assert (info["model_name"], info["sample_rate"], info["dim"]) == ("soundsift-fast", 16000, 905)
    for query, expected in (("white noise", "hiss.flac"), ("a sine wave", "hum.wav"), ("beeping", "beeps.ogg")):
        r = run("search", query, "--index", idx, "-k", "3", "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)[0]["path"].endswith(expected), (query, r.stdout)


def test_a_file_name_with_control_characters_cannot_drive_the_terminal(tmp_path, tiny_clap_dir):  # noqa: F811
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "esc\x1b[2Jbad.wav").write_text("not audio")        # its warning names it
    r = run("index", str(lib), "--index", str(tmp_path / "idx"), "--model", str(tiny_clap_dir), "--workers", "0")
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.stderr and "esc\\x1b[2Jbad.wav" in r.stderr


def test_info_before_the_first_commit_says_so(tmp_path):
    """A catalog made by a first run that has not committed yet (or was killed before its first
    checkpoint) has no model, vectors file or generation: info says that instead of "None" rows."""
    from engine.catalog import open_catalog
    from engine.layout import IndexLayout

    idx = tmp_path / "idx"
    idx.mkdir()
    open_catalog(IndexLayout(idx).catalog, create=True).dispose()
    r = run("info", "--index", str(idx))
    said = " ".join(r.output.split())
    assert r.exit_code == 0, r.output
    assert "no commit yet" in said and "None" not in said
    info = json.loads(run("info", "--index", str(idx), "--json").output)
    assert info["generation"] is None and info["counts"]["files"] == 0
