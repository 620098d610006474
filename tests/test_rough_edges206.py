"""Four rough edges a sound designer met (helper 206, session 41):

1. ``search --not-weight`` without ``--not`` (HTTP ``not_weight`` without ``not``) was silently
   ignored; it is now one error naming both options (exit 1, HTTP 400).
2. ``tags add TAG readme.txt`` said "not in the index (index it first)", but a walk of the folder
   never takes a ``.txt`` file: it now says the file is not a sound file soundsift indexes.
3. An interrupted ``index --json`` printed ``"timings": {}``: it now gives the stages that ran.
4. A run that embedded nothing (only a failed file tried again) said "decode and resample ran in
   1 worker process, beside embed": it now says that nothing was embedded.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import noise, tone, write
from tests.index_fakes import CtrlCAtCall, FakeModel
from tests.test_server import get, serving
from ui.cli import app

SR = 16_000
STAGES = {"scan", "decode", "resample", "embed", "write", "decode_wait", "index_tuning"}


def _run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def _one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def fake_index(tmp_path) -> tuple[Path, Path]:
    """(library, index) of a beep and a hiss indexed with FakeModel, and a readme beside them."""
    lib = (tmp_path / "lib").resolve()
    write(lib / "beep.wav", tone(880, 2.0, SR), SR)
    write(lib / "hiss.wav", noise(2.0, SR, seed=3), SR)
    (lib / "readme.txt").write_text("sounds recorded in 2024\n")
    idx = tmp_path / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    return lib, idx


@pytest.fixture
def fake_model_cli(monkeypatch):
    """`soundsift index` with the model given here (FakeModel by default) in place of the one it would load."""
    import indexer
    real, use = indexer.build_index, {"model": FakeModel()}
    monkeypatch.setattr(indexer, "build_index",
                        lambda paths, index=None, model=None, **kw: real(paths, index, use["model"], **kw))
    return use


# --- 1. --not-weight without --not ----------------------------------------------------------------

def test_search_refuses_not_weight_without_not(tmp_path, tiny_clap_dir):
    lib = tmp_path / "lib"
    write(lib / "hiss.wav", noise(1.0, SR, seed=2), SR)
    write(lib / "tone.flac", tone(440, 1.0, SR), SR)
    idx = tmp_path / "idx"
    build_index([lib], idx, str(tiny_clap_dir), workers=0, progress=False)
    for weight in ("0.8", "0.5"):               # the default value given by hand too
        alone = _run("search", "rain", "--index", idx, "--not-weight", weight)
        assert alone.exit_code == 1, alone.output
        assert alone.stdout == ""
        line = _one_line(alone.stderr)
        assert line.startswith("error: --not-weight") and "no --not was given" in line
        assert "add --not TEXT, or leave --not-weight out" in line
    with_not = _run("search", "rain", "--index", idx, "--json", "--not", "thunder", "--not-weight", "0.8")
    assert with_not.exit_code == 0, with_not.output
    plain = _run("search", "rain", "--index", idx, "--json")
    assert plain.exit_code == 0, plain.output
    assert json.loads(with_not.stdout) != json.loads(plain.stdout)     # the weight is used with --not


def test_http_search_refuses_not_weight_without_not(fake_index):
    _, idx = fake_index
    with SoundIndex.open(idx, model=FakeModel()) as index, serving(index) as url:
        status, body, _ = get(f"{url}/search?q=beep&not_weight=0.8")
        assert status == 400
        assert "not_weight" in body["error"] and "no not was given" in body["error"]
        assert "add not=TEXT, or leave not_weight out" in body["error"]
        status, _, _ = get(f"{url}/search?q=beep&not=,&not_weight=0.8")     # a not listing nothing
        assert status == 400
        status, hits, _ = get(f"{url}/search?q=beep&not=hiss&not_weight=0.25&k=2")
        assert status == 200 and len(hits) == 2
        status, hits, _ = get(f"{url}/search?q=beep&k=2")
        assert status == 200 and len(hits) == 2


# --- 2. tags add on a file that is not a sound file -----------------------------------------------

def test_tags_add_on_a_text_file_says_it_is_not_a_sound_file(fake_index):
    lib, idx = fake_index
    (lib / "notes").write_text("no extension at all\n")
    write(lib / "new.wav", tone(440, 1.0, SR), SR)          # audio, added since the index run
    result = _run("tags", "add", "keeper", lib / "readme.txt", lib / "notes", lib / "new.wav", lib / "beep.wav",
                  "--index", idx)
    assert result.exit_code == 0, result.output
    said = _one_line(result.stderr)
    assert (f"error: {lib / 'readme.txt'}: not a sound file soundsift indexes ('.txt' is not an audio "
            "extension: indexing its folder passes it over)") in said
    assert (f"error: {lib / 'notes'}: not a sound file soundsift indexes (it has no extension: indexing its "
            "folder passes it over)") in said
    assert f"error: {lib / 'new.wav'}: not in the index (index it first)" in said
    assert "readme.txt: not in the index" not in said
    as_json = _run("tags", "add", "keeper", lib / "readme.txt", "--index", idx, "--json")
    assert as_json.exit_code == 1
    reason = json.loads(as_json.stdout)["errors"][0]["reason"]
    assert reason.startswith("not a sound file soundsift indexes ('.txt'")


# --- 3. an interrupted index --json gives its time per stage --------------------------------------

def test_interrupted_index_json_gives_the_time_of_the_stages_that_ran(tmp_path, fake_model_cli):
    lib = tmp_path / "lib"
    for i, name in enumerate(("a.wav", "b.wav", "c.wav")):
        write(lib / name, tone(200 + 100 * i, 3.0, SR), SR)     # 2 segments each
    fake_model_cli["model"] = CtrlCAtCall(4)                    # b's second segment: Ctrl-C
    result = _run("index", lib, "--index", tmp_path / "idx", "--json", "--workers", "0", "--batch-size", "1",
                  "--checkpoint-files", "1", "--no-progress")
    assert result.exit_code == 130, result.output
    s = json.loads(result.stdout)
    assert s["interrupted"] is True and s["added"] == 1
    assert set(s["timings"]) == STAGES                          # was {}
    assert s["timings"]["embed"] > 0 and s["timings"]["write"] > 0     # three batches embedded, a commit


def test_interrupted_while_scanning_gives_the_scan_time(tmp_path, fake_model_cli, monkeypatch):
    import indexer.runner
    lib = tmp_path / "lib"
    write(lib / "a.wav", tone(300, 1.0, SR), SR)
    idx = tmp_path / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)

    def scan(paths):
        raise KeyboardInterrupt
    monkeypatch.setattr(indexer.runner, "scan", scan)
    result = _run("index", lib, "--index", idx, "--json", "--workers", "0", "--no-progress")
    assert result.exit_code == 130, result.output
    s = json.loads(result.stdout)
    assert s["interrupted"] is True and set(s["timings"]) == STAGES and s["timings"]["scan"] > 0


# --- 4. a run that embeds nothing does not say decode and resample ran beside embed ---------------

def test_a_run_that_embeds_nothing_says_so_in_its_stage_note(tmp_path, fake_model_cli):
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    write(lib / "dog.wav", tone(440, 1.0, SR), SR)
    (lib / "broken.wav").write_bytes(b"RIFF not really a wave file")
    first = _run("index", lib, "--index", idx, "--workers", "1", "--no-progress")
    assert first.exit_code == 0, first.output
    assert "decode and resample ran in 1 worker process, beside embed" in _one_line(first.stdout)
    again = _run("index", lib, "--index", idx, "--workers", "1", "--no-progress")   # broken.wav tried again only
    assert again.exit_code == 0, again.output
    said = _one_line(again.stdout)
    assert "nothing embedded" in said and "failed │ 1" in said.replace("  ", " ")
    assert "decode and resample ran" not in said and "beside embed" not in said
    assert "nothing was embedded: decode_wait is the time the run waited on 1 decoder worker process" in said
