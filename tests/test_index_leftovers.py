"""What a run cut short leaves behind, and how the next run reads it; counts that agree with their nouns.

* a first `soundsift index … --model M` killed before its first commit: the rerun without --model
  goes on with M (recorded when the writer created the index), not the default model;
* a `--rebuild` killed with SIGKILL leaves ``<index>.rebuild-<pid>``, a whole copy of the index: the
  next index run (any writer of the index) removes it, never a live process's;
* counts in the indexer's and the engine's messages agree with their nouns ("1 file", "0/1 file",
  "1 macOS metadata file (._*)"), while the JSON keys stay as they are.

Fake models (tests/index_fakes.py) keep it fast; the model-name tests point the bundled names at the
tiny CLAP folders, as tests/test_index_rebuild.py does.
"""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.errors import ModelMismatch
from engine.layout import IndexLayout
from indexer import build_index
from indexer.info import index_info
from indexer.write import IndexWriter, WriterLock
from tests.conftest import chirp, noise, tone, write
from tests.index_fakes import FakeModel, WideModel, kill_a_rebuild
from ui.cli import app

SR = 16000


class Killed(BaseException):
    """Stands for SIGKILL inside a run: nothing after it runs, nothing is tidied."""


@pytest.fixture
def lib(tmp_path) -> Path:
    lib = tmp_path / "lib"
    write(lib / "sweep.wav", chirp(200, 3000, 1.5, SR), SR)
    write(lib / "tone.wav", tone(440, 1.0, SR), SR)
    return lib.resolve()


def run(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def killed_at_first_commit(monkeypatch) -> None:
    def commit(self, changes, meta):
        raise Killed()
    monkeypatch.setattr(IndexWriter, "commit", commit)


# -- 1. the model of a new index is recorded when the writer creates it ---------------------------
@pytest.fixture
def bundled(monkeypatch, tiny_clap_dir, tiny_fused_clap_dir):
    """soundsift-base and soundsift-fast as two tiny CLAP folders of other fingerprints."""
    from engine.models import factory
    monkeypatch.setitem(factory.BUNDLED, "soundsift-base", tiny_clap_dir)
    monkeypatch.setitem(factory.BUNDLED, "soundsift-fast", tiny_fused_clap_dir)


def test_a_first_run_killed_before_its_commit_leaves_its_model_for_the_rerun(lib, tmp_path, bundled,
                                                                            monkeypatch):
    idx = tmp_path / "idx"
    with monkeypatch.context() as m, pytest.raises(Killed):
        killed_at_first_commit(m)
        run("index", lib, "--index", idx, "--model", "soundsift-fast", "--workers", "0", "--json")
    assert IndexLayout(idx).catalog.is_file()
    assert index_info(idx)["model_name"] is None                 # no commit: the model is not recorded as built
    r = run("index", lib, "--index", idx, "--workers", "0", "--json")     # the rerun, without --model
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["model"] == "soundsift-fast" and s["added"] == 2
    assert index_info(idx)["model_name"] == "soundsift-fast"
    assert "has no commit yet: indexing with 'soundsift-fast'" in r.stderr
    r = run("index", lib, "--index", idx, "--model", "soundsift-base", "--workers", "0")   # committed now
    assert r.exit_code == 1 and "leave out --model to keep indexing it with 'soundsift-fast'" in " ".join(
        r.output.split())


def test_before_the_first_commit_a_given_model_replaces_the_one_the_index_started_with(lib, tmp_path,
                                                                                      monkeypatch):
    idx = tmp_path / "idx"
    with monkeypatch.context() as m:
        killed_at_first_commit(m)
        with pytest.raises(Killed):
            build_index([lib], idx, FakeModel(), workers=0, progress=False)
    s = build_index([lib], idx, WideModel(name="wide", fingerprint="wide-v1"), workers=0, progress=False)
    assert (s.model, s.model_fingerprint, s.added) == ("wide", "wide-v1", 2)   # nothing embedded with the first
    with pytest.raises(ModelMismatch, match="built with model 'wide'"):        # a committed index: as ever
        build_index([lib], idx, FakeModel(), workers=0, progress=False)


# -- 2. a killed rebuild's folder goes at the next index run ---------------------------------------
def leftovers(idx: Path) -> list[str]:
    return sorted(p.name for p in idx.parent.iterdir() if p.name.startswith(idx.name + "."))


def test_an_index_run_removes_what_a_rebuild_killed_with_sigkill_left(lib, tmp_path, caplog):
    idx = tmp_path / "rb"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    tmp = kill_a_rebuild(lib, idx)
    assert leftovers(idx) == [tmp.name]
    with caplog.at_level(logging.INFO, logger="indexer.rebuild"):
        s = build_index([lib], idx, workers=0, progress=False)        # a plain run, no --rebuild
    assert leftovers(idx) == [] and s.unchanged == 2 and s.model == "fake"
    said = [r.getMessage() for r in caplog.records if r.name == "indexer.rebuild"]
    assert len(said) == 1, said
    assert said[0].startswith(f"removed 1 folder left by a rebuild that was killed: {tmp} (")
    assert re.search(r" \((\d+ B|[\d.]+ [KMG]iB)\)$", said[0]) and not said[0].endswith("(0 B)")   # how big


def test_an_index_run_leaves_the_rebuild_folder_of_a_live_process(lib, tmp_path, caplog):
    idx = tmp_path / "rb"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    live = idx.with_name(f"rb.rebuild-{os.getpid()}")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    gone = idx.with_name(f"rb.replaced-{int(dead.stdout)}")          # its process has exited
    users = idx.with_name(f"rb.rebuild-{int(dead.stdout)}")           # named alike, but the user's own
    for folder in (live, gone):
        folder.mkdir()
        (folder / "catalog.db").write_bytes(b"")
        (folder / "vectors-000001.faiss").write_bytes(b"x" * 100)
    users.mkdir()
    write(users / "x.wav", noise(0.5, SR), SR)
    with WriterLock(IndexLayout(live).lock):                       # held, as a running rebuild holds it
        with caplog.at_level(logging.INFO, logger="indexer.rebuild"):
            build_index([lib], idx, FakeModel(), workers=0, progress=False)
    assert leftovers(idx) == sorted([live.name, users.name]) and (live / "catalog.db").is_file()
    assert (users / "x.wav").is_file() and not (users / ".lock").exists()
    assert f"{live} is held by another process; leaving it" in caplog.text
    assert f"{users} is named like a folder a killed rebuild leaves, but holds files soundsift did not write" \
        in " ".join(caplog.text.split())
    assert f"removed 1 folder left by a rebuild that was killed: {gone} (" in caplog.text


# -- 3. counts agree with their nouns ---------------------------------------------------------------
def test_ui_count_is_the_engine_helper():
    from engine.wording import count
    from ui.cli import common
    assert common.count is count
    assert [count(n, "file") for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]
    assert count(1, "unusable entry", "unusable entries") == "1 unusable entry"


def test_skipped_kinds_agree_with_their_counts_and_keep_their_json_keys(lib, tmp_path, caplog):
    from engine.system_files import APPLEDOUBLE_MAGIC
    from indexer.scan import SKIPPED_FOLDERS, SKIPPED_METADATA, describe_skipped
    (lib / "._tone.wav").write_bytes(APPLEDOUBLE_MAGIC + bytes(4092))
    with caplog.at_level(logging.INFO, logger="indexer.runner"):
        s = build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    assert s.to_dict()["skipped"] == {"macOS metadata files (._*)": 1}        # the JSON key as before
    assert "not scanned: 1 macOS metadata file (._*)" in caplog.text
    assert "0 unchanged, 0 unusable entries" in caplog.text
    assert (describe_skipped({SKIPPED_METADATA: 2, SKIPPED_FOLDERS: 1})
            == "2 macOS metadata files (._*), 1 hidden or system folder")


def test_the_progress_bar_counts_one_file_as_one_file():
    from indexer.progress import AudioProgress

    class Bar:
        postfix = ""

        def update(self, n):
            pass

        def set_postfix_str(self, text, refresh=True):
            self.postfix = text
    one, two = AudioProgress(Bar(), 1), AudioProgress(Bar(), 2)
    one.done(0, 100)
    two.done(0, 100)
    assert (one.bar.postfix, two.bar.postfix) == ("1/1 file", "1/2 files")


def test_log_lines_of_one_say_one(lib, tmp_path, caplog):
    import numpy as np
    from engine import duplicates
    idx = tmp_path / "idx"
    (lib / "tone.wav").unlink()
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    with caplog.at_level(logging.INFO):
        build_index([lib], idx, WideModel(name="wide", fingerprint="wide-v1"), workers=0, progress=False,
                    rebuild=True)
        duplicates._Pace(np.array([1.0]), 2, every=0.0)
    assert "with model 'wide': 1 file, 0 tags and 0 captions carried over" in caplog.text
    assert "comparing 1 pair of 2 files on their audio" in caplog.text
