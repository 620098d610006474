"""An index built by an older soundsift holds what that version's metadata reader read: none
before session 18 (the early revision checked in session 41 stored no file_metadata table at all),
less before the reader's later versions. The next `soundsift index` reads it again, embedding
nothing; until then keyword search, the cards and sheet export miss the descriptions, and
`soundsift info` did not say so. It now counts those files and says what reads them again."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.catalog import Meta, set_meta
from indexer import build_index
from tests.conftest import catalog_session, tone, write
from tests.index_fakes import FakeModel
from ui.cli import app


def run(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def counts(idx: Path) -> dict:
    r = run("info", "--index", idx, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["counts"]


@pytest.mark.parametrize("reader", [None, 6])       # none: before session 18; 6: session 10's
def test_info_counts_the_files_an_older_reader_read_until_index_reads_them_again(tmp_path, reader):
    lib = tmp_path / "lib"
    write(lib / "tone.wav", tone(440, 1.0, 16000), 16000)
    write(lib / "low.wav", tone(110, 1.5, 16000), 16000)
    idx = tmp_path / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    assert counts(idx)["metadata_not_reread"] == 0
    with catalog_session(idx, write=True) as s:          # the meta an older soundsift left
        s.query(Meta).filter(Meta.key == "metadata_reader").delete()
        if reader is not None:
            set_meta(s, metadata_reader=reader)
    assert counts(idx)["metadata_not_reread"] == 2
    r = run("info", "--index", idx)
    text = " ".join(r.stdout.replace("│", " ").split())
    assert "of 2 files read by an older soundsift" in text and "the next `soundsift index` of its folders" in text

    summary = build_index([lib], idx, FakeModel(), workers=0, progress=False)
    assert (summary.metadata_reread, summary.added, summary.updated) == (2, 0, 0)
    assert counts(idx)["metadata_not_reread"] == 0
    assert "embedded metadata" not in run("info", "--index", idx).stdout
