"""A sheet's catalog read stops where its client hung up (session 37): ``GET /sheet`` checked
the client before the read and between zero-shot batches, but read the whole catalog first
(1.1 s at 40,000 files, ~25 s at a million). engine.sheet_export.library_rows reads the files,
their metadata and tags, and builds the rows a batch of engine.catalog.SQL_CHUNK files at a
time, with an engine.zeroshot.between_batches checkpoint before each batch."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine import sheet_export
from engine.sheet_export import library_rows
from engine.zeroshot import checking_between_batches
from tests.conftest import noise, write
from tests.index_fakes import FakeModel

NAMES = [f"take_{i}.wav" for i in range(5)]


class Gone(Exception):
    """What the test's checkpoint raises, as soundsift serve's raises ClientGone."""


@pytest.fixture(scope="module")
def five_files(tmp_path_factory) -> Path:
    from indexer import build_index
    base = tmp_path_factory.mktemp("sheet_read39")
    for i, name in enumerate(NAMES):
        write(base / "lib" / name, noise(1.0, 8000, seed=i), 8000)
    build_index([base / "lib"], base / "idx", FakeModel(), workers=0, progress=False)
    return base / "idx"


def test_the_catalog_read_and_the_rows_pass_a_checkpoint_a_batch(five_files, monkeypatch):
    monkeypatch.setattr(sheet_export, "SQL_CHUNK", 2)               # 5 files: batches of 2, 2 and 1
    seen: list[str] = []
    with checking_between_batches(seen.append):
        rows = library_rows(five_files)
    assert [r["Filename"] for r in rows] == NAMES                   # path order, every file once
    assert seen == ["before its next batch of files read from the catalog"] * 3 + \
        ["before its next batch of files' metadata and tags"] * 3 + ["before its next batch of sheet rows"] * 3


def test_a_hang_up_during_the_read_stops_it_there(five_files, monkeypatch):
    monkeypatch.setattr(sheet_export, "SQL_CHUNK", 2)
    calls: list[str] = []

    def check(stage: str) -> None:
        calls.append(stage)
        if len(calls) == 2:                                         # the client gone after the first batch
            raise Gone(stage)

    with checking_between_batches(check), pytest.raises(Gone, match="files read from the catalog"):
        library_rows(five_files)
    assert len(calls) == 2
    assert [r["Filename"] for r in library_rows(five_files)] == NAMES      # no checkpoint set: all of it
