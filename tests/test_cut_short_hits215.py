"""A WAV cut short (its data chunk ends before its header says: an interrupted copy or download) was
indexed with a warning and then searched as if whole. The indexer now records the duration its
header says (engine.file_metadata.CUT_SHORT_KEY), a metadata re-read keeps it, and its results say
so: ``header_duration`` in ``--json`` and the HTTP API's hits, a note after its name in the CLI's
table, a caption on its card (tests/test_page_section_tags215.py)."""
from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import select

from engine.catalog import File, FileMetadata
from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import catalog_session, noise, tone, write
from tests.index_fakes import FakeModel

pytestmark = pytest.mark.usefixtures("private_cache")     # label embeddings cached in this test's folder (conftest)

SR = 16_000
#: engine.file_metadata.CUT_SHORT_KEY (spelt out: the row is the catalog's, read by other versions)
CUT_SHORT_KEY = "header_duration"


@pytest.fixture
def cut_index(tmp_path):
    """cut.wav (4 s, its last two thirds cut off) and whole.wav, indexed; yields the index folder."""
    lib = (tmp_path / "lib").resolve()
    cut = write(lib / "cut.wav", tone(440, 4.0, SR), SR)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 3])
    write(lib / "whole.wav", noise(4.0, SR, seed=3), SR)
    summary = build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    assert (summary.added, summary.failed) == (2, 0)
    return tmp_path / "idx"


def stored_rows(index_dir) -> dict[str, str]:
    """File name → its stored CUT_SHORT_KEY row, for the files that have one."""
    with catalog_session(index_dir) as s:
        return {path.rsplit("/", 1)[1]: value for path, value in s.execute(
            select(File.path, FileMetadata.value).join(FileMetadata, FileMetadata.file_id == File.id)
            .where(FileMetadata.key == CUT_SHORT_KEY))}


def hits_of(index_dir) -> dict[str, object]:
    with SoundIndex.open(index_dir, model=FakeModel()) as index:
        return {h.path.rsplit("/", 1)[1]: h for h in index.search_vectors(index.file_vectors().vectors[0], k=5)}


def test_a_cut_wav_is_recorded_and_its_hit_carries_what_its_header_says(cut_index):
    assert stored_rows(cut_index) == {"cut.wav": "4.00"}
    hits = hits_of(cut_index)
    cut, whole = hits["cut.wav"], hits["whole.wav"]
    assert cut.duration == pytest.approx(4.0 / 3, abs=0.01) and cut.header_duration == 4.0
    assert whole.header_duration is None
    assert cut.to_dict()["header_duration"] == 4.0 and "header_duration" not in whole.to_dict()


def test_a_metadata_re_read_keeps_the_cut_short_row(cut_index, tmp_path):
    """`soundsift index` reads every file's metadata again when the reader has learnt more
    (indexer.metadata_refresh): what the indexer measured, as the levels, stays."""
    from engine.catalog import Meta
    with catalog_session(cut_index, write=True) as s:
        s.get(Meta, "metadata_reader").value = "0"
    build_index([(tmp_path / "lib").resolve()], cut_index, FakeModel(), workers=0, progress=False)
    with catalog_session(cut_index) as s:
        assert s.get(Meta, "metadata_reader").value != "0"          # the re-read ran
    assert stored_rows(cut_index) == {"cut.wav": "4.00"}


def test_the_cli_table_and_json_say_a_hit_is_cut_short(cut_index, monkeypatch, capsys):
    from rich.console import Console

    from ui.cli import results
    hits = list(hits_of(cut_index).values())
    buf = io.StringIO()
    monkeypatch.setattr(results, "out_console", Console(file=buf, width=160))
    results.show_hits(hits, False, "search")
    lines = buf.getvalue().splitlines()
    assert [line for line in lines if "cut short" in line] == [
        next(line for line in lines if "cut.wav" in line)]
    assert "cut.wav (cut short: header says 0:04.00)" in buf.getvalue()
    results.show_hits(hits, True, "search")
    shown = {h["path"].rsplit("/", 1)[1]: h for h in json.loads(capsys.readouterr().out)}
    assert shown["cut.wav"]["header_duration"] == 4.0 and "header_duration" not in shown["whole.wav"]


def test_the_http_api_search_says_a_hit_is_cut_short(cut_index):
    from tests.test_serve_api_extras import ask, serving
    with SoundIndex.open(cut_index, model=FakeModel()) as index, serving(index) as address:
        status, _, body = ask(address, "GET", "/search?q=sound&k=5")
    assert status == 200, body
    shown = {h["path"].rsplit("/", 1)[1]: h for h in json.loads(body)}
    assert shown["cut.wav"]["header_duration"] == 4.0 and "header_duration" not in shown["whole.wav"]
