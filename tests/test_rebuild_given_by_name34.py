"""A file without an audio extension, indexed because it was given by name, is kept by later
walks of its folder (indexer.scan.kept_by_name); a rebuild of that folder dropped it silently, with
the user's tags, since its walk passes over such names and it counted as inside the given paths."""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from engine.catalog import File, Tag
from indexer import build_index
from tests.conftest import catalog_session, noise, tone, write
from tests.index_fakes import FakeModel

SR = 16000


def indexed(idx: Path) -> dict[str, list[str]]:
    """Indexed path → the user's tags on it."""
    with catalog_session(idx) as s:
        out: dict[str, list[str]] = {str(p): [] for p in s.scalars(select(File.path))}
        for path, label in s.execute(select(File.path, Tag.label).join(Tag, Tag.file_id == File.id)
                                     .where(Tag.source == "user")):
            out[str(path)].append(str(label))
        return out


def test_a_rebuild_keeps_a_file_given_by_name_without_an_audio_extension(tmp_path):
    from indexer.user_tags import add_tags
    lib, idx = (tmp_path / "lib").resolve(), tmp_path / "idx"
    write(lib / "rain.wav", noise(1.5, SR, seed=1), SR)
    bare = write(lib / "Weird names" / "no_extension.wav", tone(440, 1.0, SR), SR).rename(
        lib / "Weird names" / "no_extension")
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    build_index([bare], idx, FakeModel(), workers=0, progress=False)          # given by name
    add_tags(idx, [bare], ["keeper"])
    assert indexed(idx)[str(bare)] == ["keeper"]
    s = build_index([lib], idx, FakeModel(name="fake2", fingerprint="fake-v2"), workers=0, progress=False,
                    rebuild=True)
    assert s.removed == 0
    assert indexed(idx) == {str(lib / "rain.wav"): [], str(bare): ["keeper"]}
    bare.unlink()                       # gone from disk: a rebuild lets it go, as an index run does
    build_index([lib], idx, FakeModel(name="fake3", fingerprint="fake-v3"), workers=0, progress=False,
                rebuild=True)
    assert list(indexed(idx)) == [str(lib / "rain.wav")]
