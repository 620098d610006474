"""Audit 34 of the user's own tags (`soundsift tags`, indexer.user_tags): `tags list` counts one
tag once whatever its case, and `tags add` says why a path names no indexed file."""
from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from engine.catalog import Tag
from indexer import build_index
from indexer.user_tags import add_tags, remove_tags, tag_counts
from tests.conftest import catalog_session, chirp, noise, tone, write
from tests.index_fakes import FakeModel
from ui.cli import app

CAFE_NFD = unicodedata.normalize("NFD", "café")


@pytest.fixture
def indexed(tmp_path) -> tuple[Path, Path]:
    """A small library with one file that is not audio (an error row), indexed with a fake model."""
    lib = (tmp_path / "lib").resolve()
    write(lib / "Foley" / "step_1.wav", chirp(300, 3000, 1.0, 16000), 16000)
    write(lib / "Foley" / "step_2.wav", noise(1.0, 16000, seed=2), 16000)
    write(lib / "Foley" / "step_3.wav", tone(660, 0.5, 16000), 16000)
    write(lib / "Café.wav", tone(1000, 0.5, 16000), 16000)
    (lib / "bad").mkdir()
    (lib / "bad" / "text.wav").write_text("this is not audio\n")
    idx = tmp_path / "idx"
    build_index([str(lib)], idx, FakeModel(), workers=0, progress=False)
    return lib, idx


def tags_cli(*args: object) -> Result:
    """`soundsift tags ARGS…`, run in-process."""
    return CliRunner().invoke(app, ["tags", *map(str, args)])


def test_list_counts_a_tag_once_whatever_its_case(indexed):
    """`tags add "keeper, ep3"` on a folder, then `tags add Keeper` on another file: one row
    "keeper 4" (the spelling most files carry), as `--tagged` and `tags remove` see it."""
    lib, idx = indexed
    assert tags_cli("add", "keeper, ep3", lib / "Foley", "--index", idx).exit_code == 0
    assert tags_cli("add", "Keeper", lib / "Café.wav", "--index", idx).exit_code == 0
    assert tag_counts(idx) == {"keeper": 4, "ep3": 3}
    r = tags_cli("list", "--index", idx, "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == [{"tag": "keeper", "files": 4}, {"tag": "ep3", "files": 3}]
    r = tags_cli("list", "--index", idx)
    rows = [line.split() for line in r.stdout.splitlines()]
    assert [row for row in rows if any(cell.lower() == "keeper" for cell in row)] == [["│", "keeper", "│", "4", "│"]]
    assert "2 tags" in r.stdout
    remove_tags(idx, [lib / "Foley" / "step_1.wav"], ["KEEPER"])
    assert tag_counts(idx) == {"keeper": 3, "ep3": 3}


def test_on_a_tie_the_spelling_added_first_names_the_tag(indexed):
    lib, idx = indexed
    add_tags(idx, [lib / "Café.wav"], ["Whoosh"])
    add_tags(idx, [lib / "Foley" / "step_1.wav"], ["whoosh"])
    assert tag_counts(idx) == {"Whoosh": 2}


def test_accents_composed_or_not_are_one_tag_too(indexed):
    """As for `--tagged`: "café" typed and "café" copied from a macOS disk (e + U+0301)."""
    lib, idx = indexed
    add_tags(idx, [lib / "Café.wav"], ["café"])
    assert add_tags(idx, [lib / "Café.wav"], [CAFE_NFD]).changed == 0     # it has it already
    add_tags(idx, [lib / "Foley" / "step_1.wav"], [CAFE_NFD])
    assert tag_counts(idx) == {"café": 2}
    assert remove_tags(idx, [lib], ["Café"]).changed == 2
    assert tag_counts(idx) == {}


def test_all_sources_count_a_file_carrying_two_spellings_once(indexed):
    """With --all a file may hold "keeper" (yours) and "Keeper" (a caption source): one file."""
    lib, idx = indexed
    add_tags(idx, [lib / "Foley"], ["keeper"])
    with catalog_session(idx, write=True) as s:
        for fid in s.scalars(select(Tag.file_id).order_by(Tag.file_id)).all()[:2]:
            s.add(Tag(file_id=fid, label="Keeper", score=0.9, source="audioset"))
    assert tag_counts(idx) == {"keeper": 3}
    assert tag_counts(idx, source=None) == {"keeper": 3}
    r = tags_cli("list", "--index", idx, "--all", "--json")
    assert json.loads(r.stdout) == [{"tag": "keeper", "files": 3}]


def said(result: Result) -> str:
    return " ".join(result.output.split())                  # however the terminal wraps it


def test_add_says_why_a_path_names_no_indexed_file(indexed, tmp_path):
    lib, idx = indexed
    bad, gone, outside = lib / "bad" / "text.wav", tmp_path / "nonexistent.wav", tmp_path / "outside.wav"
    write(outside, tone(440, 0.5, 16000), 16000)
    r = tags_cli("add", "x", bad, "--index", idx)
    assert r.exit_code == 1
    assert f"error: {bad}: could not be indexed:" in said(r) and "not in the index" not in said(r)
    r = tags_cli("add", "x", gone, "--index", idx)
    assert r.exit_code == 1 and f"error: {gone}: no such file or folder" in said(r)
    r = tags_cli("add", "x", outside, "--index", idx)
    assert r.exit_code == 1 and f"error: {outside}: not in the index (index it first)" in said(r)
    r = tags_cli("add", "x", lib / "bad", "--index", idx)
    assert r.exit_code == 1
    assert f"error: {lib / 'bad'}: no file under it is in the index; 1 could not be indexed" in said(r)
    r = tags_cli("add", "x", lib / "Café.wav", bad, gone, "--index", idx, "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["files"], out["changed"], [e["path"] for e in out["errors"]]) == (1, 1, [str(bad), str(gone)])
    reasons = {e["path"]: e["reason"] for e in out["errors"]}
    assert reasons[str(gone)] == "no such file or folder"
    assert reasons[str(bad)].startswith("could not be indexed: ")
    assert said(r).count("error: ") == 2                                 # one line each


def test_remove_says_so_too_and_an_unknown_id_is_named(indexed, tmp_path):
    lib, idx = indexed
    r = tags_cli("remove", "x", tmp_path / "nonexistent.wav", "--index", idx)
    assert r.exit_code == 1 and "nonexistent.wav: no such file or folder" in said(r)
    change = add_tags(idx, [10_000], ["x"])
    assert change.reasons == {"10000": "no indexed file has id 10000"}
