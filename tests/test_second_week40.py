"""A library's second week (session 40): what a sound designer met following README.md as written,
with the library under "SFX Drive/Library Ü" and the index opened as `--index ./idx`.

Each test failed before its fix: the commands the messages suggest (`soundsift relocate …` when an
index run sees a moved library, the `soundsift index …` that drops the files relocate did not find,
`sheet import` for a spreadsheet among the files, the rebuild of a model mismatch) split a path
holding a space into two arguments and wrote `--index ./idx` as `--index idx`, the bare name of
another index (indexes/idx), and relocate's one named no index at all; `serve --index ./idx` answered
`/sheet` with 503 "no index at …/indexes/idx" (the served folder, Path("idx"), read again as a bare
name); and `similar` and `tag --index`
did not find an indexed file whose folder is named composed (as typed on Linux) and whose own name
was copied decomposed from a macOS disk, typed composed (README: they take the other normal form).
"""
from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import unicodedata
from pathlib import Path

from typer.testing import CliRunner

from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from ui.cli import app

SR = 16_000


def _index(paths: list[Path], idx: str | Path, model: object = None) -> None:
    build_index(paths, idx, model or FakeModel(), workers=0, progress=False)


def _command(text: str, starts: str) -> list[str]:
    """The command in backticks in ``text`` that starts with ``starts``, split as a shell splits it."""
    found = re.search(r"`(" + re.escape(starts) + r"[^`]*)`", text)
    assert found, text
    return shlex.split(found.group(1))


def _library(folder: Path) -> Path:
    write(folder / "Doors" / "slam.wav", noise(1.0, SR, seed=1), SR)
    write(folder / "hum.wav", tone(120, 1.5, SR), SR)
    return folder


def test_the_relocate_hint_runs_as_pasted(tmp_path, monkeypatch, caplog):
    """`index` at the library's new place said `soundsift relocate /old /…/SFX Drive/Library Ü
    --index idx`: pasted, NEW was two arguments and idx the bare name of indexes/idx."""
    monkeypatch.chdir(tmp_path)
    lib = _library(tmp_path / "lib")
    _index([lib], "./idx")
    moved = tmp_path / "SFX Drive" / "Library Ü"
    moved.parent.mkdir()
    os.rename(lib, moved)
    with caplog.at_level(logging.WARNING, logger="indexer.moves"):
        _index([moved], "./idx")
    said = " ".join(r.getMessage() for r in caplog.records if r.name == "indexer.moves")
    args = _command(said, "soundsift relocate")
    assert args == ["soundsift", "relocate", str(lib), str(moved), "--index", "./idx"], said
    done = CliRunner().invoke(app, args[1:])
    assert done.exit_code == 0, done.output


def test_relocate_names_the_index_of_the_run_that_drops_a_missing_file(tmp_path, monkeypatch):
    """"the next `soundsift index /…/New Disk/Library` drops it": unquoted, and without the
    index, so the command as written indexed the library into indexes/default."""
    monkeypatch.chdir(tmp_path)
    old = _library(tmp_path / "old")
    _index([old], "./idx")
    new = tmp_path / "New Disk" / "Library"
    shutil.copytree(old, new)
    (new / "hum.wav").unlink()
    done = CliRunner().invoke(app, ["relocate", str(old), str(new), "--index", "./idx"], env={"COLUMNS": "300"})
    assert done.exit_code == 0, done.output
    assert _command(done.stdout, "soundsift index") == ["soundsift", "index", str(new), "--index", "./idx"]


def test_the_spreadsheet_note_names_an_index_of_the_current_folder_as_a_path(capsys):
    """`index` over a library holding a CSV, with `--index ./idx`, said `soundsift sheet import SHEET
    --index idx`."""
    from ui.cli.cmd_index import _note_sheets
    _note_sheets({"index": "idx", "sheets_not_imported": ["/lib/BBCSoundEffects.csv"]})
    said = " ".join(capsys.readouterr().err.split())
    assert _command(said, "soundsift sheet import")[-2:] == ["--index", "./idx"], said


def test_the_rebuild_a_mismatch_suggests_opens_the_same_index():
    from engine.mismatch import rebuild_command
    assert shlex.split(rebuild_command(Path("idx")))[3:5] == ["--index", "./idx"]
    assert shlex.split(rebuild_command("/media/SFX Drive/idx", "laion/x"))[3:] == [
        "--index", "/media/SFX Drive/idx", "--rebuild", "--model", "laion/x"]


def test_index_option_reads_back_as_the_same_folder():
    from engine.layout import index_option, resolve_index_dir
    for root in (Path("idx"), Path("indexes/mylib"), Path("/tmp/SFX Drive/it's"), Path("/abs/idx")):
        (value,) = shlex.split(index_option(root))
        assert resolve_index_dir(value) == root, (root, value)


def _nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def test_a_path_mixing_normal_forms_finds_its_indexed_file(tmp_path, tiny_clap_dir):
    """A folder named composed here ("Library Ü", as typed on Linux) holding a file copied from
    a macOS HFS+ disk, its name decomposed: the path typed composed named no file for `similar`
    and `tag --index` (README: a name typed composed finds the file indexed decomposed), while
    `tags add` found it."""
    lib = tmp_path.resolve() / "Library Ü"
    write(lib / _nfd("Crème brûlée.wav"), tone(440, 1.5, SR), SR)
    write(lib / "rain.wav", noise(2.0, SR, seed=4), SR)
    idx = tmp_path / "idx"
    _index([lib], idx, str(tiny_clap_dir))
    typed = str(lib / "Crème brûlée.wav")
    stored = str(lib / _nfd("Crème brûlée.wav"))
    assert not os.path.lexists(typed) and os.path.lexists(stored)
    with SoundIndex.open(idx) as si:
        assert si.file_id_for_path(typed) == si.file_id_for_path(stored) is not None
    similar = CliRunner().invoke(app, ["similar", typed, "--index", str(idx), "-k", "1", "--json"])
    assert similar.exit_code == 0, similar.output
    assert json.loads(similar.stdout)[0]["path"] == stored
    tagged = CliRunner().invoke(app, ["tag", typed, "--index", str(idx), "-l", "dog,rain,bell", "--json"])
    assert tagged.exit_code == 0, tagged.output
    (record,) = json.loads(tagged.stdout)["files"]
    assert record["from_index"] is True and record["path"] == stored


def test_an_index_served_as_dot_slash_name_exports_its_sheet(tmp_path, monkeypatch):
    """`soundsift serve --index ./idx`, then `curl …/sheet`: {"error": "no index at …/indexes/idx
    (a bare name …)"}: the route opened the served index's folder, Path("idx"), again as the bare
    name idx."""
    from tests.test_server import get, serving
    monkeypatch.chdir(tmp_path)
    _index([_library(tmp_path / "lib")], "./idx")
    with SoundIndex.open("./idx", model=FakeModel()) as si, serving(si) as url:
        status, body, kind = get(f"{url}/sheet")
    assert status == 200 and kind.startswith("text/csv"), body
    assert body.decode("utf-8-sig").count("\n") == 3          # the header and the 2 files


def test_a_folder_given_as_a_path_object_is_that_folder(tmp_path, monkeypatch):
    from engine.layout import resolve_index_dir
    monkeypatch.setenv("SOUNDSIFT_INDEX_HOME", str(tmp_path / "home"))
    assert resolve_index_dir("idx") == tmp_path / "home" / "idx"           # a bare name, as typed
    assert resolve_index_dir(Path("idx")) == Path("idx")                    # the folder ./idx
    assert resolve_index_dir(resolve_index_dir("./idx")) == Path("idx")


def test_index_warns_before_a_bare_name_makes_a_second_index_beside_the_one_here(tmp_path, monkeypatch):
    """`soundsift index lib --index idx` with ./idx an index folder (the user meant --index ./idx):
    the run silently made indexes/idx and embedded the whole library into it, where `search
    --index idx` points at ./idx."""
    import indexer
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOUNDSIFT_INDEX_HOME", raising=False)
    lib = _library(tmp_path / "lib")
    _index([lib], "./idx")
    runs = []
    monkeypatch.setattr(indexer, "build_index", lambda paths, index, **kw: runs.append(index) or _stop())
    done = CliRunner().invoke(app, ["index", str(lib), "--index", "idx"], env={"COLUMNS": "300"})
    said = " ".join(done.stderr.split())
    assert runs == ["idx"] and "./idx is an index folder, but --index idx is a bare name" in said, done.output
    assert "stop it (Ctrl-C) and pass --index ./idx" in said
    for quiet in (["--index", "./idx"], ["--index", "other"]):          # the folder here, or no ./other
        done = CliRunner().invoke(app, ["index", str(lib), *quiet])
        assert "is a bare name" not in done.stderr, done.stderr


def _stop() -> None:
    from engine.errors import InvalidQuery
    raise InvalidQuery("stopped before indexing")
