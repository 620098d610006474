"""A second Ctrl-C during the commit a first one asked for (session 40): the files queued since the
last checkpoint are not in the index, and the run's summary does not count them (before, it said
``added`` 3 of an index holding 2 of the run's files, with their segments and audio)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.catalog import File
from indexer import build_index
from indexer.runner import IndexInterrupted, IndexSummary
from tests.conftest import catalog_session, tone, write
from tests.index_fakes import CtrlCAtCall, FakeModel

SR = 16000


@pytest.fixture
def library(tmp_path) -> Path:
    lib = tmp_path / "lib"
    for i, name in enumerate(("a.wav", "b.wav", "c.wav", "d.wav")):
        write(lib / name, tone(200 + 100 * i, 3.0, SR), SR)        # 2 segments each, no silence
    return lib.resolve()


def second_ctrl_c_in_commit(monkeypatch, at: int) -> None:
    """A Ctrl-C lands in the ``at``-th commit of the run (before it changes anything)."""
    from indexer.write import IndexWriter
    real, calls = IndexWriter.commit, []

    def commit(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == at:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)
    monkeypatch.setattr(IndexWriter, "commit", commit)


def stopped(lib: Path, idx: Path, model: FakeModel, **kw) -> IndexSummary:
    try:
        build_index([lib], idx, model, workers=0, batch_size=1, progress=False, **kw)
    except IndexInterrupted as e:
        return e.summary
    pytest.fail("the run was not stopped with its summary")


def files_in(idx: Path) -> int:
    with catalog_session(idx) as s:
        return int(s.scalar(select(func.count()).select_from(File)))


def test_a_second_ctrl_c_in_the_commit_after_the_first_leaves_uncommitted_files_uncounted(library, tmp_path,
                                                                                          monkeypatch):
    idx = tmp_path / "idx"
    second_ctrl_c_in_commit(monkeypatch, at=2)          # the first checkpoint commits a and b; c waits
    s = stopped(library, idx, CtrlCAtCall(7), checkpoint_files=2)     # d's first segment: Ctrl-C
    assert files_in(idx) == s.totals["files"] == 2
    assert s.interrupted and (s.added, s.updated, s.n_segments, s.commits) == (2, 0, 4, 1)
    assert s.audio_seconds == pytest.approx(6.0)
    assert s.generation == json.loads((idx / "index.json").read_text())["generation"]


def test_a_second_ctrl_c_before_any_commit_counts_nothing_removed_or_added(library, tmp_path, monkeypatch):
    idx = tmp_path / "idx"
    build_index([library], idx, FakeModel(), workers=0, progress=False)
    (library / "a.wav").unlink()
    write(library / "e.wav", tone(700, 3.0, SR), SR)
    second_ctrl_c_in_commit(monkeypatch, at=1)
    s = stopped(library, idx, CtrlCAtCall(2))           # e's second segment: Ctrl-C, then in the commit
    assert files_in(idx) == s.totals["files"] == 4      # a.wav still indexed, e.wav not
    assert (s.added, s.removed, s.n_segments, s.commits, s.silent_left_out) == (0, 0, 0, 0, 0)


def test_one_ctrl_c_still_commits_and_counts_what_was_embedded(library, tmp_path):
    idx = tmp_path / "idx"
    s = stopped(library, idx, CtrlCAtCall(7), checkpoint_files=2)
    assert files_in(idx) == s.totals["files"] == 3
    assert (s.added, s.n_segments, s.commits) == (3, 6, 2)
