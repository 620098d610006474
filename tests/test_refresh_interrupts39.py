"""Ctrl-C during the passes an index run makes over files indexed by older versions (session 39).

After its own new and changed files, `soundsift index` judges the silence of files indexed before
session 39 (indexer.silence_refresh) and measures the loudness of those indexed before session 20
(indexer.level_refresh). A Ctrl-C there kept what the pass had stored but surfaced as a bare
KeyboardInterrupt: no summary of the run (the files it had added, what the pass did), nothing on
stdout with `--json`. It now ends as a Ctrl-C in the embedding does: what was kept is committed
and said, the summary has ``interrupted`` true, exit status 130.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.catalog import File, FileMetadata, SegmentRow
from engine.file_metadata import LEVEL_KEYS, SILENCE_KEYS
from indexer import build_index
from indexer.info import index_info
from indexer.runner import IndexInterrupted, IndexSummary
from tests.conftest import catalog_session, noise, padded, tone, write
from tests.index_fakes import FakeModel
from tests.test_silence_refresh39 import forget_rows, old_index

ROOT = Path(__file__).resolve().parents[1]
SR = 16000


@pytest.fixture
def library(tmp_path) -> Path:
    lib = tmp_path / "lib"
    for i, name in enumerate(("a.wav", "b.wav", "c.wav", "d.wav")):
        write(lib / name, padded(noise(2.0, SR, seed=i), 8.0, 0.0, SR), SR)   # 2 s of noise, then silence
    return lib.resolve()


@pytest.fixture
def sigint():
    """Python's own SIGINT handler, whatever this process inherited (a shell's background job
    ignores SIGINT), put back after the test."""
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, inherited)


def segments_of(idx: Path) -> dict[str, int]:
    with catalog_session(idx) as s:
        return {os.path.basename(p): n for p, n in s.execute(
            select(File.path, func.count(SegmentRow.id)).join(SegmentRow, SegmentRow.file_id == File.id)
            .group_by(File.path))}


def files_with(idx: Path, key: str) -> set[str]:
    with catalog_session(idx) as s:
        return {os.path.basename(p) for p in s.scalars(
            select(File.path).join(FileMetadata, FileMetadata.file_id == File.id).where(FileMetadata.key == key))}


def ctrl_c_at_call(n: int, real):
    """``real``, but a SIGINT arrives (raised in this process, as a terminal sends it) at its ``n``-th call."""
    calls = []

    def wrapped(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == n:
            signal.raise_signal(signal.SIGINT)
        return real(*args, **kwargs)
    return wrapped


def interrupted_run(lib: Path, idx: Path) -> IndexSummary:
    """The summary of an index run of ``lib`` into ``idx`` that a Ctrl-C stops (a test failure
    when it ends otherwise, or with a bare KeyboardInterrupt, which says nothing of what was kept)."""
    try:
        build_index([lib], idx, FakeModel(), workers=0, progress=False)
    except IndexInterrupted as stopped:
        return stopped.summary
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C ended the run with a bare KeyboardInterrupt: no summary of what it kept")
    pytest.fail("the run was not interrupted")


def test_ctrl_c_in_the_silence_pass_says_what_the_run_kept(library, tmp_path, monkeypatch, caplog, sigint):
    import indexer.silence_refresh as silence_refresh

    idx = tmp_path / "idx"
    old_index(library, idx, monkeypatch)
    before = segments_of(idx)
    write(library / "e.wav", tone(300, 3.0, SR), SR)          # the run adds it before the pass
    monkeypatch.setattr(silence_refresh, "CHECKPOINT_FILES", 1)   # each file judged is committed
    monkeypatch.setattr(silence_refresh, "judge", ctrl_c_at_call(2, silence_refresh.judge))
    with caplog.at_level(logging.WARNING, logger="indexer"):
        s = interrupted_run(library, idx)
    after = segments_of(idx)
    dropped = before["a.wav"] - after["a.wav"]
    assert dropped > 0                                        # judged: a.wav only (in sorted order), committed
    assert all(after[k] == before[k] for k in ("b.wav", "c.wav", "d.wav"))
    assert s.interrupted and s.added == 1 and s.unchanged == 4
    assert (s.silence_judged, s.silent_segments_dropped) == (1, dropped)
    info = index_info(idx)
    assert s.totals["files"] == info["counts"]["files"] == 5 and s.totals["segments"] == sum(after.values())
    assert s.generation == json.loads((idx / "index.json").read_text())["generation"]
    assert files_with(idx, SILENCE_KEYS[0]) == {"a.wav", "e.wav"}
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("interrupted")]
    assert len(said) == 1 and "digital silence" in said[0] and "5 files" in said[0]
    assert "run the same command again" in said[0]

    monkeypatch.undo()
    again = build_index([library], idx, FakeModel(), workers=0, progress=False)
    assert (again.added, again.silence_judged, again.interrupted) == (0, 3, False)
    assert files_with(idx, SILENCE_KEYS[0]) == {"a.wav", "b.wav", "c.wav", "d.wav", "e.wav"}


def test_ctrl_c_in_the_loudness_pass_says_what_the_run_kept(library, tmp_path, monkeypatch, caplog, sigint):
    import indexer.level_refresh as level_refresh

    idx = tmp_path / "idx"
    build_index([library], idx, FakeModel(), workers=0, progress=False)
    forget_rows(idx, LEVEL_KEYS)                                  # as an index from before session 20
    write(library / "e.wav", tone(300, 3.0, SR), SR)
    monkeypatch.setattr(level_refresh, "CHECKPOINT_FILES", 1)
    monkeypatch.setattr(level_refresh, "measure", ctrl_c_at_call(3, level_refresh.measure))
    with caplog.at_level(logging.WARNING, logger="indexer"):
        s = interrupted_run(library, idx)
    assert s.interrupted and s.added == 1 and s.levels_measured == 2
    assert files_with(idx, LEVEL_KEYS[1]) == {"a.wav", "b.wav", "e.wav"}       # measured: stored
    assert s.totals["files"] == 5 and s.generation == json.loads((idx / "index.json").read_text())["generation"]
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("interrupted")]
    assert len(said) == 1 and "loudness" in said[0] and "2 files measured" in said[0]

    monkeypatch.undo()
    again = build_index([library], idx, FakeModel(), workers=0, progress=False)
    assert (again.added, again.levels_measured, again.interrupted) == (0, 2, False)


def test_ctrl_c_in_the_scan_is_a_summary_too(library, tmp_path, monkeypatch, sigint):
    """Before anything is embedded: the index is as it was, and the summary says so."""
    import indexer.runner as runner

    idx = tmp_path / "idx"
    build_index([library], idx, FakeModel(), workers=0, progress=False)
    write(library / "e.wav", tone(300, 3.0, SR), SR)
    (library / "a.wav").unlink()
    monkeypatch.setattr(runner, "find_moves_among_changed", ctrl_c_at_call(1, runner.find_moves_among_changed))
    s = interrupted_run(library, idx)
    assert s.interrupted and (s.added, s.removed, s.moved) == (0, 0, 0)
    assert s.totals["files"] == 4 and s.generation == json.loads((idx / "index.json").read_text())["generation"]
    assert "a.wav" in segments_of(idx) and "e.wav" not in segments_of(idx)


def test_ctrl_c_in_the_final_commit_commits_the_files_and_says_so(library, tmp_path, monkeypatch, sigint):
    """A Ctrl-C that lands in the run's one commit (before it changed anything) is kept as one in
    the embedding is: the embedded files are committed, then the run stops with its summary."""
    from indexer.write import IndexWriter

    idx = tmp_path / "idx"
    monkeypatch.setattr(IndexWriter, "commit", ctrl_c_at_call(1, IndexWriter.commit))
    s = interrupted_run(library, idx)
    assert s.interrupted and s.added == 4 and s.totals["files"] == 4 and s.commits == 1
    assert sorted(segments_of(idx)) == ["a.wav", "b.wav", "c.wav", "d.wav"]


#: `soundsift index --json` on the library, with FakeModel, one file committed at a time in the
#: silence pass; at the pass's second file it touches argv[1] and waits for the test's Ctrl-C
CLI_SCRIPT = """
import pathlib, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
import indexer
import indexer.silence_refresh as silence_refresh
from tests.index_fakes import FakeModel
real_build, real_judge, calls = indexer.build_index, silence_refresh.judge, []
waiting = pathlib.Path(sys.argv[1])

def build(*args, **kwargs):
    kwargs["model"] = FakeModel()
    return real_build(*args, **kwargs)

def judge(*args, **kwargs):
    calls.append(args[0])
    if len(calls) == 2:
        waiting.touch()
        time.sleep(120)
    return real_judge(*args, **kwargs)

indexer.build_index, silence_refresh.judge, silence_refresh.CHECKPOINT_FILES = build, judge, 1
from ui.cli import main
sys.argv = ["soundsift", *sys.argv[2:]]
main()
"""


def test_a_real_ctrl_c_in_the_silence_pass_prints_the_json_summary_and_exits_130(library, tmp_path, monkeypatch):
    idx = tmp_path / "idx"
    old_index(library, idx, monkeypatch)
    write(library / "e.wav", tone(300, 3.0, SR), SR)
    waiting = tmp_path / "waiting"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with open(tmp_path / "err.log", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", CLI_SCRIPT, str(waiting), "index", str(library), "--index",
                                 str(idx), "--workers", "0", "--json", "--no-progress"],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=err)
        try:
            deadline = time.monotonic() + 120
            while not waiting.exists():             # the pass's first file is judged and committed
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "err.log").read_text()[-2000:]
                time.sleep(0.02)
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    log = (tmp_path / "err.log").read_text()
    assert proc.returncode == 130, log[-2000:]
    s = json.loads(out)
    assert s["interrupted"] is True and s["added"] == 1 and s["silence_judged"] == 1
    assert s["silent_segments_dropped"] > 0 and s["totals"]["files"] == 5
    assert "interrupted while looking for digital silence" in log and "run the same command again" in log
    assert files_with(idx, SILENCE_KEYS[0]) == {"a.wav", "e.wav"}
