"""File names in composed vs decomposed Unicode: "é" typed composed (NFC) for a file whose name a
macOS HFS+ disk stored decomposed (NFD: "e" + U+0301), kept so when copied to APFS or Linux.
APFS opens either spelling (simulated here by answering os.path.lexists/os.path.samefile for
both), Linux only the listed one; the indexed file is found by either."""
from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.query import SoundIndex
from indexer.scan import normalize_root
from indexer.user_tags import add_tags
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_index_moves import index
from ui.cli import app


def nfc(p: Path | str) -> str:
    return unicodedata.normalize("NFC", str(p))


def nfd(p: Path | str) -> str:
    return unicodedata.normalize("NFD", str(p))


@pytest.fixture
def lib(tmp_path) -> Path:
    """A library copied from an HFS+ disk: Cafés/Café.wav and Crème.wav, every name decomposed."""
    lib = Path(nfd((tmp_path / "Cafés").resolve()))
    write(Path(nfd(lib / "Café.wav")), tone(440, 1.0, 16000), 16000)
    write(Path(nfd(lib / "Crème.wav")), noise(1.5, 16000, seed=2), 16000)
    assert sorted(os.listdir(lib)) == sorted([nfd("Café.wav"), nfd("Crème.wav")])
    return lib


def normalization_insensitive_view(monkeypatch) -> None:
    """Make a path open in either normal form, as on macOS's APFS (the paths existence and
    identity are asked by: os.path.lexists, os.path.samefile); the names on disk are NFD."""
    real_lexists, real_samefile = os.path.lexists, os.path.samefile

    def fold(p) -> str:
        p = os.fspath(p)
        return p if real_lexists(p) else nfd(p)

    monkeypatch.setattr(os.path, "lexists", lambda p: real_lexists(fold(p)))
    monkeypatch.setattr(os.path, "samefile", lambda a, b: real_samefile(fold(a), fold(b)))


@pytest.mark.parametrize("macos", [False, True], ids=["linux", "macos"])
def test_tags_add_finds_a_decomposed_file_typed_composed(lib, tmp_path, monkeypatch, macos):
    """`soundsift tags add keeper ~/Sounds/Cafés/Café.wav` typed composed: "not in the index"."""
    idx = tmp_path / "idx"
    index([lib], idx)
    if macos:
        normalization_insensitive_view(monkeypatch)
        assert os.path.lexists(nfc(lib / "Café.wav"))
    change = add_tags(idx, [nfc(lib / "Café.wav")], ["keeper"])
    assert (change.files, change.changed, change.not_indexed) == (1, 1, [])
    assert normalize_root(nfc(lib / "Café.wav")) == nfd(lib / "Café.wav")
    r = CliRunner().invoke(app, ["tags", "add", "warm", nfc(lib / "Crème.wav"), "--index", str(idx)])
    assert r.exit_code == 0 and "added 1 tag on 1 file" in r.output, r.output


@pytest.mark.parametrize("stored", [nfd, nfc], ids=["indexed NFD, typed NFC", "indexed NFC, typed NFD"])
def test_similar_and_file_id_take_a_path_in_the_other_normal_form(tmp_path, stored):
    """`soundsift similar` / `soundsift tag` of an indexed file typed in the other normal form
    did not find it (the catalog holds the path as the folder listed it)."""
    lib = tmp_path.resolve()
    other = nfc if stored is nfd else nfd
    write(Path(stored(lib / "Café.wav")), tone(440, 1.0, 16000), 16000)
    write(lib / "rain.wav", noise(1.5, 16000, seed=1), 16000)
    idx = tmp_path / "idx"
    index([lib], idx)
    with SoundIndex.open(idx, model=FakeModel()) as si:
        want = si.file_id_for_path(stored(lib / "Café.wav"))
        assert want is not None and si.file_id_for_path(other(lib / "Café.wav")) == want
        hits = si.similar_to_file(other(lib / "Café.wav"), k=2)
        assert hits[0].path == stored(lib / "Café.wav")


def test_the_other_normal_form_is_not_taken_where_it_is_another_file(tmp_path):
    """On Linux "Café.wav" composed and decomposed can be two files: the one typed is not
    mistaken for the indexed other."""
    lib = tmp_path.resolve()
    write(Path(nfd(lib / "Café.wav")), tone(440, 1.0, 16000), 16000)
    idx = tmp_path / "idx"
    index([lib], idx)
    write(Path(nfc(lib / "Café.wav")), noise(1.0, 16000, seed=3), 16000)     # not indexed
    assert normalize_root(nfc(lib / "Café.wav")) == nfc(lib / "Café.wav")
    assert add_tags(idx, [nfc(lib / "Café.wav")], ["keeper"]).not_indexed == [nfc(lib / "Café.wav")]
    with SoundIndex.open(idx, model=FakeModel()) as si:
        assert si.file_id_for_path(nfc(lib / "Café.wav")) is None


@pytest.mark.parametrize("macos", [False, True], ids=["linux", "macos"])
def test_an_index_root_typed_composed_is_the_indexed_decomposed_folder(lib, tmp_path, monkeypatch, macos):
    """`soundsift index ~/Sounds/Cafés` typed composed over the decomposed folder: Linux said
    the root does not exist; macOS walked it under the typed spelling, every file a new one."""
    idx = tmp_path / "idx"
    first = index([lib], idx)
    assert first.added == 2
    if macos:
        normalization_insensitive_view(monkeypatch)
    model = FakeModel()
    s = index([nfc(lib)], idx, model)
    assert model.calls == [] and (s.added, s.removed, s.unchanged, s.failed) == (0, 0, 2, 0)


def test_ascii_names_are_not_listed(tmp_path, monkeypatch):
    """A path of ASCII names whose other case does not exist costs no folder listing."""
    (tmp_path / "Sounds").mkdir()
    path = str(tmp_path.resolve() / "Sounds" / "take.wav")
    (tmp_path / "Sounds" / "take.wav").write_bytes(b"")
    listed: list[str] = []
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda p=".": listed.append(p) or real(p))
    assert normalize_root(path) == path and listed == []


def test_tags_add_takes_the_other_normal_form_of_a_file_whose_drive_is_unplugged(lib, tmp_path):
    """With the file gone from disk (its drive unplugged), the catalog alone decides: a path typed
    composed tags the file indexed decomposed."""
    idx = tmp_path / "idx"
    index([lib], idx)
    typed = nfc(lib / "Café.wav")
    os.replace(nfd(lib / "Café.wav"), tmp_path / "elsewhere.wav")       # the drive is gone
    change = add_tags(idx, [typed], ["keeper"])
    assert (change.files, change.changed, change.not_indexed) == (1, 1, [])
