"""README truth audit of session 39: what the README says of a command, checked where the audit
found it untrue.

``soundsift similar A B …`` (README, Searching): "one that cannot be searched by (no such file, a
folder, a file the index could not read, with its reason) is named once in a warning and left
out". A folder was named with the reason `tags add` gives a folder holding no indexed file ("no
file under it is in the index (index it first)"), even when every file under it is indexed.

FakeModel (tests/index_fakes.py) indexes and embeds.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from indexer import build_index
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel

SR = 16000


@pytest.fixture
def lib(tmp_path) -> Path:
    """A folder of two short recordings, both indexed, under the library's top folder."""
    lib = (tmp_path / "lib").resolve()
    write(lib / "a_tone.wav", tone(440, 1.5, SR), SR)
    write(lib / "sub" / "b_noise.wav", noise(1.5, SR, seed=1), SR)
    return lib


@pytest.fixture
def idx(lib, tmp_path) -> Path:
    idx = tmp_path / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    return idx


def test_similar_by_several_names_a_folder_as_a_folder_not_as_unindexed(lib, idx, monkeypatch):
    import engine.models
    from ui.cli import app

    model = FakeModel()
    monkeypatch.setattr(engine.models, "load_model", lambda *a, **k: model)
    folder = lib / "sub"                                   # every file under it is indexed
    result = CliRunner().invoke(app, ["similar", str(lib / "a_tone.wav"), str(folder),
                                      "--index", str(idx), "--json"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "no file under it is in the index" not in result.stderr, result.stderr
    assert result.stderr.count(f"{folder}: a folder, not a sound file") == 1, result.stderr
    assert "left out of the search" in result.stderr
    assert str(lib / "a_tone.wav") in result.stdout
    assert model.calls == []                               # nothing embedded: the folder was not read
    none = CliRunner().invoke(app, ["similar", str(folder), str(lib / "gone.wav"), "--index", str(idx)],
                              env={"COLUMNS": "300"})
    assert none.exit_code == 1, none.output
    assert f"{folder}: a folder, not a sound file" in none.stderr, none.stderr
