"""The user's own tags (indexer.user_tags, `soundsift tags`): stored, searched, filtered, kept."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.errors import IndexBusy, InvalidQuery
from engine.filters import Filters
from engine.layout import IndexLayout
from engine.query import SoundIndex
from indexer import build_index
from indexer.user_tags import add_tags, clean_tags, remove_tags, tag_counts
from indexer.write import WriterLock
from tests.conftest import chirp, noise, tone, write
from tests.index_fakes import FakeModel
from ui.cli import app


@pytest.fixture
def indexed(tmp_path) -> tuple[Path, Path]:
    lib = (tmp_path / "Library").resolve()
    write(lib / "Whooshes" / "whoosh_fast.wav", chirp(300, 3000, 1.0, 16000), 16000)
    write(lib / "Whooshes" / "whoosh_slow.wav", chirp(200, 2000, 2.0, 16000), 16000)
    write(lib / "Ambience" / "room_tone.wav", noise(3.0, 16000, seed=4, amp=0.05), 16000)
    write(lib / "beep.wav", tone(1000, 0.5, 16000), 16000)
    idx = tmp_path / "idx"
    build_index([str(lib)], idx, FakeModel(), workers=0, progress=False)
    return lib, idx


def tagged_paths(idx: Path, *tags: str) -> list[str]:
    with SoundIndex.open(idx, model=FakeModel()) as si:
        hits = si.similar_to_file(si.file_vectors().paths[0], k=10, filters=Filters(tags=tags))
        return sorted(Path(h.path).name for h in hits)


def test_add_remove_and_count(indexed):
    lib, idx = indexed
    change = add_tags(idx, [lib / "Whooshes"], ["Favourite", "  used in   ep 3 "])
    assert (change.files, change.changed, change.not_indexed) == (2, 4, [])
    again = add_tags(idx, [lib / "Whooshes" / "whoosh_fast.wav", lib / "nowhere.wav"], ["favourite"])
    assert (again.files, again.changed, again.not_indexed) == (1, 0, [str(lib / "nowhere.wav")])
    assert tag_counts(idx) == {"Favourite": 2, "used in ep 3": 2}
    assert tagged_paths(idx, "FAVOURITE") == ["whoosh_fast.wav", "whoosh_slow.wav"]
    gone = remove_tags(idx, [lib / "Whooshes" / "whoosh_slow.wav"], ["favourite"])
    assert (gone.files, gone.changed) == (1, 1)
    assert tagged_paths(idx, "favourite") == ["whoosh_fast.wav"]
    assert tagged_paths(idx, "favourite", "used in ep 3") == ["whoosh_fast.wav", "whoosh_slow.wav"]
    assert tag_counts(idx) == {"used in ep 3": 2, "Favourite": 1}


def test_a_reader_sees_tags_change_between_generations(indexed):
    """The page keeps one SoundIndex open: its cached tag filter must follow every change, even
    one that leaves the tags table with the same row count and top id as before."""
    lib, idx = indexed
    with SoundIndex.open(idx, model=FakeModel()) as si:
        first = si.file_vectors().paths[0]
        def names(tag):
            return sorted(Path(h.path).name for h in si.similar_to_file(first, k=10, filters=Filters(tags=(tag,))))
        add_tags(idx, [lib / "beep.wav"], ["keeper"])
        assert names("keeper") == ["beep.wav"]
        remove_tags(idx, [lib / "beep.wav"], ["keeper"])
        add_tags(idx, [lib / "Ambience" / "room_tone.wav"], ["keeper"])     # same count, same top id
        assert names("keeper") == ["room_tone.wav"]


def test_keyword_search_finds_files_by_their_tags(indexed):
    lib, idx = indexed
    add_tags(idx, [lib / "Ambience" / "room_tone.wav"], ["spaceship interior"])
    with SoundIndex.open(idx, model=FakeModel()) as si:
        hits = si.search_text("spaceship", k=1)
        assert Path(hits[0].path).name == "room_tone.wav"


def test_tags_stay_through_a_move_and_refuse_bad_input(indexed, tmp_path):
    lib, idx = indexed
    add_tags(idx, [lib / "beep.wav"], ["ui"])
    os.rename(lib / "beep.wav", lib / "Ambience" / "ui_beep.wav")
    build_index([str(lib)], idx, FakeModel(), workers=0, progress=False)
    assert tagged_paths(idx, "ui") == ["ui_beep.wav"]
    with pytest.raises(InvalidQuery, match="no tag given"):
        clean_tags([" ", ""])
    with pytest.raises(InvalidQuery, match="at most 100"):
        add_tags(idx, [lib], ["x" * 101])
    with WriterLock(IndexLayout(idx).lock), pytest.raises(IndexBusy):
        add_tags(idx, [lib], ["busy"])
    assert tag_counts(idx) == {"ui": 1}


def test_tags_command_and_tagged_filter(indexed, tmp_path):
    lib, idx = indexed
    runner = CliRunner()
    r = runner.invoke(app, ["tags", "add", "whoosh, keeper", str(lib / "Whooshes"), "--index", str(idx), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"files": 2, "changed": 4, "errors": []}
    r = runner.invoke(app, ["tags", "list", "--index", str(idx), "--json"])
    assert json.loads(r.stdout) == [{"tag": "keeper", "files": 2}, {"tag": "whoosh", "files": 2}]
    r = runner.invoke(app, ["tags", "remove", "keeper", str(lib / "Whooshes" / "whoosh_slow.wav"), "--index", str(idx)])
    assert r.exit_code == 0 and "removed 1 tag on 1 file" in r.stdout
    r = runner.invoke(app, ["tags", "remove", "keeper", str(lib / "Whooshes" / "whoosh_slow.wav"), "--index", str(idx)])
    assert r.exit_code == 0 and "removed 0 tags on 1 file (none of them carried it)" in " ".join(r.stdout.split())
    r = runner.invoke(app, ["tags", "add", "whoosh", str(lib / "Whooshes"), "--index", str(idx)])
    assert r.exit_code == 0 and "added 0 tags on 2 files (they had them already)" in " ".join(r.stdout.split())
    r = runner.invoke(app, ["tags", "add", "x", str(tmp_path / "elsewhere.wav"), "--index", str(idx)])
    said = " ".join(r.output.split())                                         # however the terminal wraps it
    assert r.exit_code == 1 and "error:" in said and "elsewhere.wav: no such file or folder" in said
    assert "added" not in r.stdout                                            # no "added 0 tags on 0 files"
    r = runner.invoke(app, ["similar", str(lib / "beep.wav"), "--index", str(idx), "--tagged", "keeper",
                            "--json"])
    assert r.exit_code == 0, r.output
    assert [Path(h["path"]).name for h in json.loads(r.stdout)] == ["whoosh_fast.wav"]


def test_a_tag_holding_a_comma_is_given_in_double_quotes(indexed):
    """AudioSet names such as "Inside, small room" become tags (caption --index stores them):
    in double quotes they are one tag when added and when filtered by, on the CLI and over HTTP;
    unquoted, every comma separates as before."""
    from engine.vocabulary import split_list

    lib, idx = indexed
    runner = CliRunner()
    r = runner.invoke(app, ["tags", "add", '"Inside, small room", keeper', str(lib / "Ambience"),
                            "--index", str(idx), "--json"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["tags", "list", "--index", str(idx), "--json"])
    assert json.loads(r.stdout) == [{"tag": "Inside, small room", "files": 1}, {"tag": "keeper", "files": 1}]
    r = runner.invoke(app, ["similar", str(lib / "beep.wav"), "--index", str(idx), "--tagged",
                            '"Inside, small room"', "--json"])
    assert r.exit_code == 0, r.output
    assert [Path(h["path"]).name for h in json.loads(r.stdout)] == ["room_tone.wav"]
    assert split_list('"Inside, small room",rain') == ["Inside, small room", "rain"]
    assert split_list('Inside, small room') == ["Inside", "small room"]
    assert split_list('12" vinyl, rain') == ['12" vinyl', "rain"]
