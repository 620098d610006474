"""Copies compared by a collapsed search are stat'ed once each: the stat that tells a tie's
names apart (engine.query_copies.SameRecording) is the one its kept digest is found by
(engine.towers.cache.cached_file_sha256 ``st``), not taken again."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import engine.towers.cache as cache
from engine.query_copies import SameRecording

pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture
def stats(monkeypatch) -> list[str]:
    """Paths ``os.stat`` is asked about from now on."""
    asked: list[str] = []
    real = os.stat

    def counting(path, *a, **kw):
        asked.append(os.fspath(path))
        return real(path, *a, **kw)
    monkeypatch.setattr(os, "stat", counting)
    return asked


def test_a_tie_of_copies_is_stated_once_a_name(tmp_path, monkeypatch, stats):
    monkeypatch.setattr(cache, "RECENT_CHANGE_NS", 0)              # files written here count as settled
    take = tmp_path / "take.wav"
    take.write_bytes(b"take" * 1000)
    names = [take, tmp_path / "copy.wav", tmp_path / "other.wav"]
    shutil.copyfile(take, names[1])
    names[2].write_bytes(b"else" * 1000)                           # the same size, other bytes
    paths = [str(p) for p in names]
    assert SameRecording().groups(paths) == [[0, 1], [2]]         # digests read and kept
    stats.clear()
    assert SameRecording().groups(paths) == [[0, 1], [2]]
    assert sorted(stats) == sorted(paths)                          # (before: each twice)


def test_a_given_stat_finds_the_digest_the_path_was_read_with(tmp_path, monkeypatch, stats):
    monkeypatch.setattr(cache, "RECENT_CHANGE_NS", 0)
    path = tmp_path / "take.wav"
    path.write_bytes(b"one" * 1000)
    first = cache.cached_file_sha256(path)
    st = os.stat(path)
    stats.clear()
    assert cache.cached_file_sha256(path, st) == first and stats == []
    path.write_bytes(b"two" * 1001)                                # changed: its own stat tells
    assert cache.cached_file_sha256(path, os.stat(path)) != first
    assert cache.cached_file_sha256(Path(path)) == cache.file_sha256(path)
