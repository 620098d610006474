"""How --index NAME_OR_DIR resolves."""
from __future__ import annotations

from pathlib import Path

from engine.layout import resolve_index_dir


def test_names_live_under_the_index_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SOUNDSIFT_INDEX_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lib").mkdir()          # a folder of the same name here does not capture the name
    assert resolve_index_dir("lib") == tmp_path / "home" / "lib"
    assert resolve_index_dir(None) == tmp_path / "home" / "default"
    assert resolve_index_dir("") == tmp_path / "home" / "default"


def test_paths_are_used_as_given(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_index_dir("./lib") == Path("./lib")
    assert resolve_index_dir(str(tmp_path / "x")) == tmp_path / "x"
    assert resolve_index_dir("sub/lib") == Path("sub/lib")
    assert resolve_index_dir("~/idx") == tmp_path / "idx"


def test_default_home_is_indexes_in_the_working_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("SOUNDSIFT_INDEX_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert resolve_index_dir("demo") == tmp_path / "indexes" / "demo"
