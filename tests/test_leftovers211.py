"""h211's leftovers: `tags add` on a file in a hidden or system folder says the scan passes that
folder over, `corpus build` words a validation source outside the built ones as one line of names,
and Ctrl-C during a rebuild's swap still prints the `--json` summary (of the rebuilt index)."""
from __future__ import annotations

import json
import os
import signal
import time

import pytest
from typer.testing import CliRunner

import indexer.rebuild as rebuilding
from indexer import build_index
from tests.conftest import tone, write
from tests.index_fakes import FakeModel
from trainer.corpus.runner import CorpusError, check_source_names
from ui.cli import app

SR = 16_000


def _run(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- 1. a file in a hidden or system folder ------------------------------------------------------

def test_tags_add_on_a_file_in_a_system_folder_names_the_folder_the_scan_passes_over(tmp_path):
    lib, idx = (tmp_path / "lib").resolve(), tmp_path / "idx"
    write(lib / "rain.wav", tone(440, 1.0, SR), SR)
    write(lib / "__MACOSX" / "x.wav", tone(330, 1.0, SR), SR)
    write(lib / ".Trashes" / "501" / "old.wav", tone(550, 1.0, SR), SR)
    assert build_index([lib], idx, FakeModel(), workers=0, progress=False).added == 1   # rain.wav only
    (lib / "fresh.wav").write_bytes((lib / "rain.wav").read_bytes())                  # never indexed
    result = _run("tags", "add", "keeper", lib / "__MACOSX" / "x.wav", lib / ".Trashes" / "501" / "old.wav",
                  lib / "fresh.wav", "--index", idx)
    assert result.exit_code == 1, result.output
    said = _one_line(result.stderr)
    assert (f"error: {lib / '__MACOSX' / 'x.wav'}: not a sound file soundsift indexes (it is in "
            f"{lib / '__MACOSX'}, a hidden or system folder, which indexing a folder above it passes over)") in said
    assert f"{lib / '.Trashes' / '501' / 'old.wav'}: not a sound file soundsift indexes (it is in {lib / '.Trashes'}," in said
    assert f"{lib / 'fresh.wav'}: not in the index (index it first)" in said
    assert said.count("not in the index") == 1


def test_a_hidden_folder_indexed_as_a_root_is_not_said_to_be_passed_over(tmp_path):
    lib, idx = (tmp_path / ".sounds").resolve(), tmp_path / "idx"
    write(lib / "a.wav", tone(440, 1.0, SR), SR)
    assert build_index([lib], idx, FakeModel(), workers=0, progress=False).added == 1
    write(lib / "b.wav", tone(330, 1.0, SR), SR)                   # added since
    result = _run("tags", "add", "keeper", lib / "b.wav", "--index", idx)
    assert result.exit_code == 1, result.output
    assert f"{lib / 'b.wav'}: not in the index (index it first)" in _one_line(result.stderr)


# --- 2. a validation source outside the built ones ------------------------------------------------

@pytest.mark.parametrize("val, said", [
    (["speech"], "validation source speech is not among the sources built: tones, music"),
    (["speech", "signals"], "validation sources speech, signals are not among the sources built: tones, music"),
])
def test_a_validation_source_not_built_is_named_in_words(val, said):
    with pytest.raises(CorpusError) as raised:
        check_source_names(["tones", "music"], val)
    assert str(raised.value) == said
    assert "[" not in str(raised.value)


# --- 3. Ctrl-C during a rebuild's swap ------------------------------------------------------------

def test_ctrl_c_during_the_swap_prints_the_rebuilt_index_summary(tmp_path, monkeypatch):
    import indexer
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    for i, name in enumerate(("a.wav", "b.wav")):
        write(lib / name, tone(200 + 100 * i, 3.0, SR), SR)
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    real_build, real_swap = indexer.build_index, rebuilding._swap
    monkeypatch.setattr(indexer, "build_index",
                        lambda paths, index=None, model=None, **kw: real_build(paths, index, FakeModel(), **kw))

    def swap_then_ctrl_c(root, new_root):
        aside = real_swap(root, new_root)
        os.kill(os.getpid(), signal.SIGINT)                 # held until the swap block ends
        time.sleep(0.05)
        return aside
    monkeypatch.setattr(rebuilding, "_swap", swap_then_ctrl_c)
    result = _run("index", lib, "--index", idx, "--rebuild", "--json", "--workers", "0", "--no-progress")
    assert result.exit_code == 130, result.output
    assert "interrupted during the swap" in _one_line(result.stderr)
    s = json.loads(result.stdout)                           # was nothing: a plain KeyboardInterrupt
    assert s["interrupted"] is True and s["rebuild"] is True and s["swapped_in"] is True
    assert s["generation"] == 2 and s["totals"]["files"] == 2 and s["added"] + s["updated"] == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    monkeypatch.setattr(rebuilding, "_swap", real_swap)
    again = _run("index", lib, "--index", idx, "--rebuild", "--json", "--workers", "0", "--no-progress")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["swapped_in"] is True and json.loads(again.stdout)["interrupted"] is False


def test_ctrl_c_before_the_swap_says_the_rebuilt_index_was_not_swapped_in(tmp_path, monkeypatch):
    import indexer
    from tests.index_fakes import CtrlCAtCall
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    for i, name in enumerate(("a.wav", "b.wav")):
        write(lib / name, tone(200 + 100 * i, 3.0, SR), SR)
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    real_build = indexer.build_index
    monkeypatch.setattr(indexer, "build_index",
                        lambda paths, index=None, model=None, **kw: real_build(paths, index, CtrlCAtCall(2), **kw))
    result = _run("index", lib, "--index", idx, "--rebuild", "--json", "--workers", "0", "--batch-size", "1",
                  "--no-progress")
    assert result.exit_code == 130, result.output
    s = json.loads(result.stdout)
    assert s["interrupted"] is True and s["swapped_in"] is False and s["generation"] == 1
