"""Leftovers of the query-layer / relocate audit (session 34). Each test failed before its fix:
`relocate` said "1 file not at the new place …: … drops them" and "moved 3 indexed files" when one
of the three was merged into the row already at the new place; `similar` on a file that failed to
index (SoundIndex.similar_to_file, `soundsift similar`, HTTP /similar?file=) said "not in index;
index it first" instead of why it could not be indexed; `info` on an index with no vectors showed
"recall@10 (measured) 1.000" (the writer stored a made-up 1.0)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import quote

import pytest
from typer.testing import CliRunner

from engine.errors import InvalidQuery
from engine.query import SoundIndex
from indexer import build_index
from indexer.user_tags import add_tags
from tests.conftest import catalog_session, noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_http_notes34 import ask
from tests.test_server import serving
from ui.cli import app

SR = 16_000


def _index(folder: Path, idx: Path) -> None:
    build_index([folder], idx, FakeModel(), workers=0, progress=False)


def _relocate(*args: str) -> str:
    result = CliRunner().invoke(app, ["relocate", *args], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_relocate_says_one_missing_file_as_it_and_a_merged_row_as_merged(tmp_path):
    old = (tmp_path / "old").resolve()
    for i, name in enumerate(("a.wav", "b.wav", "c.wav")):
        write(old / name, tone(300 + 200 * i, 1.0, SR), SR)
    idx = tmp_path / "idx"
    _index(old, idx)
    new = (tmp_path / "new").resolve()
    shutil.copytree(old, new)
    (new / "c.wav").unlink()                       # one file not at the new place
    _index(new / "a.wav", idx)                     # a.wav indexed at the new place already: merged
    out = " ".join(_relocate(str(old), str(new), "--index", str(idx)).split())
    assert "moved 2 indexed files, merged 1 indexed file into the row already there" in out, out
    assert f"1 file not at the new place ({new / 'c.wav'}): the next `soundsift index {new} --index {idx}` drops it" in out, out
    dry = " ".join(_relocate(str(new), str(old), "--index", str(idx), "--dry-run").split())
    assert "would move 3 indexed files from" in dry and "merge" not in dry, dry
    as_json = json.loads(_relocate(str(new), str(old), "--index", str(idx), "--dry-run", "--json"))
    assert (as_json["files"], as_json["moved"], as_json["merged"], as_json["missing"]) == (3, 3, 0, 0)


@pytest.fixture
def with_failed(tmp_path):
    """A library with one sound and one file that cannot be decoded, indexed: (library, index)."""
    lib = (tmp_path / "lib").resolve()
    write(lib / "rain.wav", noise(1.5, SR, seed=2), SR)
    (lib / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 8)
    idx = tmp_path / "idx"
    _index(lib, idx)
    return lib, idx


def _reason(idx: Path, path: Path) -> str:
    from indexer.info import index_info
    return next(e["reason"] for e in index_info(idx)["errors"] if e["path"] == str(path))


def test_similar_to_a_file_that_failed_says_why_it_could_not_be_indexed(with_failed):
    lib, idx = with_failed
    broken = lib / "broken.wav"
    why = " ".join(_reason(idx, broken).split())
    with SoundIndex.open(idx, model=FakeModel()) as index:
        with pytest.raises(InvalidQuery) as e:
            index.similar_to_file(broken)
        assert f"it could not be indexed: {why}" in str(e.value) and "index it first" not in str(e.value)
        with pytest.raises(InvalidQuery, match="index it first"):    # one never indexed: as before
            index.similar_to_file(lib / "never.wav")
        with serving(index) as url:
            status, body, _ = ask(f"{url}/similar?file={quote(str(broken))}&k=2")
    assert status == 404 and f"could not be indexed: {why}" in json.dumps(body), body
    change = add_tags(idx, [broken], ["fav"])      # `tags add` says it the same way, from one function
    assert change.reasons[str(broken)] == f"could not be indexed: {why}"


def test_similar_cli_on_a_file_that_failed_says_why(with_failed):
    lib, idx = with_failed
    result = CliRunner().invoke(app, ["similar", str(lib / "broken.wav"), "--index", str(idx)],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert "could not be indexed" in result.stderr and "index it first" not in result.stderr, result.stderr


def _index_of_one_broken_file(tmp_path) -> Path:
    """An index whose one file could not be read: it holds no vectors."""
    lib = (tmp_path / "lib").resolve()
    lib.mkdir()
    (lib / "broken.wav").write_bytes(b"not audio at all" * 8)
    idx = tmp_path / "idx"
    _index(lib, idx)
    return idx


def test_info_on_an_index_with_no_vectors_measured_no_recall(tmp_path):
    idx = _index_of_one_broken_file(tmp_path)
    from engine.catalog import get_meta
    with catalog_session(idx) as s:
        assert get_meta(s).get("recall_at_10") is None     # the writer stores no made-up 1.0
    as_json = json.loads(CliRunner().invoke(app, ["info", "--index", str(idx), "--json"]).stdout)
    assert as_json["counts"]["segments"] == 0 and as_json["recall_at_10"] is None
    table = CliRunner().invoke(app, ["info", "--index", str(idx)], env={"COLUMNS": "200"}).stdout
    row = next(line for line in table.splitlines() if "recall@10" in line)
    assert "not measured: no vectors" in row and "1.000" not in row, row


def test_info_of_an_older_empty_index_that_stored_1_0_shows_none(tmp_path):
    idx = _index_of_one_broken_file(tmp_path)
    from engine.catalog import set_meta
    with catalog_session(idx, write=True) as s:
        set_meta(s, recall_at_10=1.0)           # as indexes written before the fix hold it
    as_json = json.loads(CliRunner().invoke(app, ["info", "--index", str(idx), "--json"]).stdout)
    assert as_json["recall_at_10"] is None


def test_info_of_an_indexed_library_still_shows_its_recall(tmp_path):
    lib = (tmp_path / "lib").resolve()
    write(lib / "beep.wav", tone(880, 1.0, SR), SR)
    _index(lib, tmp_path / "idx")
    as_json = json.loads(CliRunner().invoke(app, ["info", "--index", str(tmp_path / "idx"), "--json"]).stdout)
    assert as_json["recall_at_10"] == 1.0              # exact search over one vector
    table = CliRunner().invoke(app, ["info", "--index", str(tmp_path / "idx")], env={"COLUMNS": "200"}).stdout
    row = next(line for line in table.splitlines() if "recall@10" in line)
    assert "(exact search)" in row and "measured" not in row, row    # 1.0 by construction, not measured
