"""An audit of the query layer (session 34): "more like this" keeps the file searched by when a
byte-identical copy ties with it at 1.000 and k cuts the list (the copy, with the lower file id,
used to be the only hit at -k 1); a --start/--end running past the file's end is cut to its end
with a note, and the title shows the span searched; a --path-prefix no indexed file has says so,
as the other filters do."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from engine.filters import Filters
from engine.query import SoundIndex
from tests.conftest import noise, tone, write
from tests.query_fixtures import FakeModel, FileSpec, write_index
from ui.cli import app

DIM = 16


def _ties(tmp_path: Path) -> Path:
    """An index where "/lib/clipped copy2.wav" (file id 1) and "/lib/clipped copy3.wav" (id 2) hold
    the very vectors of "/lib/clipped.wav" (id 3), beside two other files."""
    rng = np.random.default_rng(3)
    same = rng.standard_normal((2, DIM))
    files = [FileSpec("/lib/clipped copy2.wav", same, duration=1.5),
             FileSpec("/lib/clipped copy3.wav", same, duration=1.5),
             FileSpec("/lib/clipped.wav", same, duration=1.5),
             FileSpec("/lib/other.wav", rng.standard_normal((2, DIM)), duration=1.5),
             FileSpec("/lib/far.wav", -same, duration=1.5)]
    write_index(tmp_path / "idx", files, dim=DIM)
    return tmp_path / "idx"


@pytest.mark.parametrize("per_file", [True, False])
def test_the_file_searched_by_wins_its_tie_before_the_cut_to_k(tmp_path, per_file):
    with SoundIndex.open(_ties(tmp_path), model=FakeModel(DIM)) as index:
        for k in (1, 2, 3):
            hits = index.similar_to_file("/lib/clipped.wav", k=k, per_file=per_file)
            assert len(hits) == k
            assert hits[0].path == "/lib/clipped.wav" and hits[0].score == pytest.approx(1.0, abs=1e-6)
        hits = index.similar_to_file("/lib/clipped.wav", k=3)
        assert [h.path for h in hits] == ["/lib/clipped.wav", "/lib/clipped copy2.wav", "/lib/clipped copy3.wav"]
        # a filter that leaves the file out still leaves it out
        hits = index.similar_to_file("/lib/clipped.wav", k=1, filters=Filters(path_prefix="/lib/clipped "))
        assert [h.path for h in hits] == ["/lib/clipped copy2.wav"]


def test_the_file_searched_by_does_not_push_in_where_it_does_not_tie(tmp_path):
    with SoundIndex.open(_ties(tmp_path), model=FakeModel(DIM)) as index:
        # "far" holds the opposite vectors: the query file scores -1 there, last of all
        hits = index.similar_to_file("/lib/far.wav", k=2)
        assert hits[0].path == "/lib/far.wav" and "/lib/clipped.wav" not in [h.path for h in hits]


def test_more_like_these_puts_an_indexed_example_ahead_of_its_copies(tmp_path):
    with SoundIndex.open(_ties(tmp_path), model=FakeModel(DIM)) as index:
        hits = index.similar_to_files(["/lib/clipped.wav"], k=1)
        assert [h.path for h in hits] == ["/lib/clipped.wav"]
        hits = index.similar_to_files(["/lib/clipped.wav", "/lib/clipped copy3.wav"], k=2)
        assert [h.path for h in hits] == ["/lib/clipped.wav", "/lib/clipped copy3.wav"]


SR = 16000


@pytest.fixture
def copies(tmp_path):
    """A real library indexed with the indexer's fake model: "clipped copy2.wav" is a
    byte-identical copy of "clipped.wav" and sorts first (space before dot), so it gets the
    lower file id, as in the audit's library."""
    from indexer import build_index
    from tests.index_fakes import FakeModel as IndexFake
    lib = (tmp_path / "lib").resolve()
    clipped = write(lib / "tiny" / "clipped.wav", np.clip(3 * tone(440, 2.0, SR), -0.5, 0.5), SR)
    (lib / "tiny" / "clipped copy2.wav").write_bytes(clipped.read_bytes())
    write(lib / "tiny" / "rain.wav", noise(2.0, SR, seed=2), SR)
    write(lib / "long.wav", tone(300, 12.0, SR), SR)
    build_index([lib], tmp_path / "idx", IndexFake(), workers=0, progress=False)
    return lib, tmp_path / "idx"


def _run(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_similar_cli_k1_answers_the_file_itself(copies):
    lib, index = copies
    clipped = lib / "tiny" / "clipped.wav"
    with SoundIndex.open(index) as opened:
        assert opened.file_id_for_path(lib / "tiny" / "clipped copy2.wav") < opened.file_id_for_path(clipped)
    result = _run("similar", clipped, "--index", index, "-k", 1, "--json")
    assert result.exit_code == 0, result.stderr
    hits = json.loads(result.stdout)
    assert [h["path"] for h in hits] == [str(clipped)]


def test_similar_over_http_answers_the_file_itself(copies):
    from urllib.parse import quote

    from tests.index_fakes import FakeModel as IndexFake
    from tests.test_server import get, serving
    lib, index = copies
    clipped = lib / "tiny" / "clipped.wav"
    with SoundIndex.open(index, model=IndexFake()) as opened, serving(opened) as url:
        status, hits, _ = get(f"{url}/similar?file={quote(str(clipped))}&k=1")
    assert status == 200 and [h["path"] for h in hits] == [str(clipped)]


def test_an_end_past_the_file_is_cut_to_its_end_with_one_note(copies, tmp_path, monkeypatch):
    lib, index = copies
    long = lib / "long.wav"                         # 12 s, indexed
    outside = tmp_path / "outside.wav"              # the same, not indexed: embedded now
    outside.write_bytes(long.read_bytes())
    from tests.index_fakes import FakeModel as IndexFake
    monkeypatch.setattr("engine.models.load_model", lambda *a, **kw: IndexFake())
    for target in (long, outside):
        result = _run("similar", target, "--index", index, "--start", "10", "--end", "0:20", "-k", 2)
        assert result.exit_code == 0, result.stderr
        assert result.stderr.count("note:") == 1, result.stderr
        assert (f"note: {target} is 0:12.00 long, so --end 0:20.00 is past its end: more like "
                "0:10.00–0:12.00") in " ".join(result.stderr.split())
        assert "long.wav" in result.stdout or "outside.wav" in result.stdout
        assert f"similar to {target.name} 0:10.00–0:12.00" in result.stdout and "0:20.00" not in result.stdout
        as_json = _run("similar", target, "--index", index, "--end", "30", "--json")
        assert as_json.exit_code == 0 and json.loads(as_json.stdout)
        assert "more like 0:00.00–0:12.00" in " ".join(as_json.stderr.split())
    exact = _run("similar", long, "--index", index, "--start", "10", "--end", "12")
    assert exact.exit_code == 0 and "note:" not in exact.stderr and "0:10.00–0:12.00" in exact.stdout
    past = _run("similar", long, "--index", index, "--start", "20", "--end", "30")
    assert past.exit_code == 1 and "the start time 20 s is past its end" in past.stderr
    assert "note:" not in past.stderr


def test_a_path_prefix_no_file_has_is_named_as_the_other_filters_are(copies, monkeypatch):
    lib, index = copies
    from tests.index_fakes import FakeModel as IndexFake
    monkeypatch.setattr("engine.models.load_model", lambda *a, **kw: IndexFake())
    nosuch = f"{lib}/nosuch/"
    result = _run("search", "a beep", "--index", index, "--path-prefix", nosuch)
    assert result.exit_code == 0, result.stderr
    said = " ".join(result.stderr.split())
    assert f"note: no indexed file has path prefix {nosuch} (this index: every file under {lib}/)" in said
    similar = _run("similar", lib / "long.wav", "--index", index, "--path-prefix", "/nosuch", "--json")
    assert json.loads(similar.stdout) == []
    assert "note: no indexed file has path prefix /nosuch (this index: every file under" in similar.stderr
    with SoundIndex.open(index) as opened:
        assert opened.why_no_file(Filters(path_prefix=str(lib / "tiny") + "/")) == []   # held: no note
        assert opened.why_no_file(Filters(path_prefix=str(lib / "tin"))) == []          # a plain prefix
        assert opened.why_no_file(Filters(path_prefix="/nosuch", tags=["nosuch"])) == [
            f"no indexed file has path prefix /nosuch (this index: every file under {lib}/)",
            "no indexed file has tag nosuch (this index: none)"]
