"""The file digests kept on disk (engine.towers.cache.stored_file_sha256) hold one entry per
fingerprinted file: a new version's replaces the old ones instead of adding to them (session 40)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.towers import cache

pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(autouse=True)
def later_process(monkeypatch) -> None:
    """Files just written may be kept, and each call below is as a new process's (nothing
    remembered in this one)."""
    monkeypatch.setattr(cache, "RECENT_CHANGE_NS", 0)
    monkeypatch.setattr(cache, "_digests", type(cache._digests)())
    monkeypatch.setattr(cache, "_resolved", type(cache._resolved)())


def _fresh(monkeypatch) -> None:
    monkeypatch.setattr(cache, "_digests", type(cache._digests)())
    monkeypatch.setattr(cache, "_resolved", type(cache._resolved)())


def kept() -> list[str]:
    return sorted(p.name for p in (cache.cache_dir() / cache.DIGESTS_FOLDER).iterdir())


def test_each_new_version_of_a_file_replaces_its_kept_digest(tmp_path, monkeypatch):
    """Each version of a fingerprinted file left a 64-byte file that nothing removed."""
    weights, other = tmp_path / "weights.bin", tmp_path / "other.bin"
    other.write_bytes(b"other")
    cache.stored_file_sha256(other)
    for version in range(4):
        weights.write_bytes(bytes([version]) * 100)
        _fresh(monkeypatch)
        assert cache.stored_file_sha256(weights) == cache.file_sha256(weights)
    entries = kept()
    assert len(entries) == 2, entries                              # weights' newest, and other's
    assert cache._stored_digest_path(cache._digest_key(os.path.realpath(weights))).name in entries
    assert cache._stored_digest_path(cache._digest_key(os.path.realpath(other))).name in entries
    expected = {f: cache.file_sha256(f) for f in (weights, other)}
    _fresh(monkeypatch)
    monkeypatch.setattr(cache, "file_sha256", lambda *a: pytest.fail("hashed a file whose digest is kept"))
    assert {f: cache.stored_file_sha256(f) for f in (weights, other)} == expected
    assert kept() == entries


def test_entries_of_the_old_naming_go_and_a_write_under_way_stays(tmp_path, monkeypatch):
    """An entry named before (one hash, no path part) is never read again: it goes with the next
    write; another process's temporary file, about to be renamed into place, is not touched."""
    folder = cache.cache_dir() / cache.DIGESTS_FOLDER
    folder.mkdir(parents=True)
    old_style = folder / f"{'ab' * 32}.sha256"
    old_style.write_text("0" * 64)
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"a" * 100)
    mine = cache._stored_digest_path(cache._digest_key(os.path.realpath(weights)))
    under_way = folder / (mine.name.split("-")[0] + "-" + "cd" * 16 + ".sha256.tmp12345")
    under_way.write_text("0" * 64)
    cache.stored_file_sha256(weights)
    assert kept() == sorted([mine.name, under_way.name])


def test_an_entry_removed_by_another_process_is_hashed_again(tmp_path, monkeypatch):
    """Two processes on two versions of one file each remove the other's entry: the one that
    finds its entry gone hashes the file again, with the right digest."""
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"a" * 100)
    first = cache.stored_file_sha256(weights)
    entry = cache._stored_digest_path(cache._digest_key(os.path.realpath(weights)))
    with open(entry, encoding="ascii") as reading:                  # a process reading it meanwhile
        cache._prune_stale_digests(entry.with_name(entry.name.split("-")[0] + "-" + "ef" * 16 + ".sha256"))
        assert reading.read() == first                              # reads it whole all the same
    assert not entry.exists()
    _fresh(monkeypatch)
    hashed: list[Path] = []
    real = cache.file_sha256
    monkeypatch.setattr(cache, "file_sha256", lambda p, *a: hashed.append(p) or real(p, *a))
    assert cache.stored_file_sha256(weights) == first and hashed
    assert kept() == [entry.name]
