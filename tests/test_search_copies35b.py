"""One hit per recording on repeated searches: a file's SHA-256 is kept for the process
(engine.towers.cache.cached_file_sha256, keyed by resolved path, device, inode, size, mtime and
ctime), so a second search reads no copy again, while a file rewritten, replaced or changed in
the last seconds is hashed again; ``duplicates`` (engine.duplicates._same_bytes) hashes through it too."""
from __future__ import annotations

import builtins
import logging
import os
import shutil
import threading
from pathlib import Path

import pytest

import engine.towers.cache as cache
from engine.query import SoundIndex
from tests.conftest import tone, write
from tests.index_fakes import FakeModel
from tests.test_search_copies35 import a_vector, library, rel  # noqa: F401  (library: a.wav under four names, flipped.wav, others)

SR = 16000


@pytest.fixture
def settled(monkeypatch):
    """Files written by the test count as settled (the digest of a file changed in the last 3 s
    is not kept: its timestamps could hide a second write)."""
    monkeypatch.setattr(cache, "RECENT_CHANGE_NS", 0, raising=False)


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """Resolved paths of the files ``open()`` reads from now on, in order."""
    seen: list[str] = []
    real_open = builtins.open

    def counting(file, mode="r", *a, **k):
        if isinstance(file, (str, os.PathLike)) and "r" in mode:
            seen.append(os.path.realpath(file))
        return real_open(file, mode, *a, **k)
    monkeypatch.setattr(builtins, "open", counting)
    return seen


def read_in(lib: Path, opened: list[str]) -> set[str]:
    return {rel(lib, p) for p in opened if p.startswith(str(lib) + os.sep)}


def copies_of_a(lib: Path, hits) -> list[str]:
    return sorted(rel(lib, c) for h in hits if rel(lib, h.path) == "a.wav" for c in h.copies)


def test_a_second_search_reads_no_copy_again(library, settled, opened):
    lib, idx = library
    vector = a_vector(idx)
    with SoundIndex.open(idx, model=FakeModel()) as index:
        opened.clear()
        first = index.search_vectors(vector, k=4)
        read_first = read_in(lib, opened)
        opened.clear()
        again = index.search_vectors(vector, k=4)
        read_again = read_in(lib, opened)
    with SoundIndex.open(idx, model=FakeModel()) as index:      # another index object, one process
        opened.clear()
        other = index.search_vectors(vector, k=4)
        read_other = read_in(lib, opened)
    assert copies_of_a(lib, first) == ["Copy of a.wav", "links/a.wav", "other/a-backup.wav"]
    assert {"Copy of a.wav", "other/a-backup.wav", "flipped.wav"} <= read_first
    assert read_again == set() and read_other == set()
    assert [(h.path, h.copies) for h in again] == [(h.path, h.copies) for h in first]
    assert [(h.path, h.copies) for h in other] == [(h.path, h.copies) for h in first]


def test_a_copy_rewritten_with_other_bytes_is_read_again_and_stands_alone(library, settled, opened):
    lib, idx = library
    backup = lib / "other" / "a-backup.wav"
    vector = a_vector(idx)
    with SoundIndex.open(idx, model=FakeModel()) as index:
        assert copies_of_a(lib, index.search_vectors(vector, k=4)) == [
            "Copy of a.wav", "links/a.wav", "other/a-backup.wav"]
        before = backup.stat()
        with open(backup, "r+b") as f:                             # the same size, other bytes
            f.seek(100)
            body = f.read(1000)
            f.seek(100)
            f.write(bytes(reversed(body)))
        os.utime(backup, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
        assert backup.stat().st_size == before.st_size and backup.stat().st_ino == before.st_ino
        opened.clear()
        hits = index.search_vectors(vector, k=5)
    assert read_in(lib, opened) == {"other/a-backup.wav"}         # only the changed file
    assert copies_of_a(lib, hits) == ["Copy of a.wav", "links/a.wav"]
    assert "other/a-backup.wav" in {rel(lib, h.path) for h in hits}


def counted(monkeypatch) -> list[str]:
    """Names of the files cache.file_sha256 reads from now on."""
    read: list[str] = []
    real = cache.file_sha256
    monkeypatch.setattr(cache, "file_sha256", lambda path, *a: read.append(Path(path).name) or real(path, *a))
    return read


def test_a_replaced_file_of_the_same_size_and_mtime_is_hashed_again(tmp_path, settled, monkeypatch):
    read = counted(monkeypatch)
    path = tmp_path / "a.bin"
    path.write_bytes(b"one" * 1000)
    first = cache.cached_file_sha256(path)
    assert cache.cached_file_sha256(str(path)) == first and read == ["a.bin"]
    old = path.stat()
    new = tmp_path / "new.bin"
    new.write_bytes(b"two" * 1000)
    os.utime(new, ns=(old.st_atime_ns, old.st_mtime_ns))
    os.replace(new, path)                                          # another inode under the name
    assert cache.cached_file_sha256(path) != first and read == ["a.bin", "a.bin"]
    os.symlink(path, tmp_path / "link.bin")                        # the resolved path is the key
    assert cache.cached_file_sha256(tmp_path / "link.bin") == cache.cached_file_sha256(path)
    assert read == ["a.bin", "a.bin"]


def test_recent_and_least_used_files_are_not_kept(tmp_path, monkeypatch):
    read = counted(monkeypatch)
    fresh = tmp_path / "fresh.bin"
    fresh.write_bytes(b"x" * 100)
    cache.cached_file_sha256(fresh)
    cache.cached_file_sha256(fresh)
    assert read == ["fresh.bin", "fresh.bin"]                     # just written: not trusted yet
    monkeypatch.setattr(cache, "RECENT_CHANGE_NS", 0)
    monkeypatch.setattr(cache, "DIGEST_CACHE_SIZE", 2)
    x, y, z = (tmp_path / f"{n}.bin" for n in "xyz")
    for p in (x, y, z):
        p.write_bytes(p.name.encode() * 10)
    read.clear()
    for p in (x, y, z, z, y, x):                                   # x went first: read again
        cache.cached_file_sha256(p)
    assert read == ["x.bin", "y.bin", "z.bin", "x.bin"]


def test_threads_share_the_digests(tmp_path, settled, monkeypatch):
    monkeypatch.setattr(cache, "DIGEST_CACHE_SIZE", 3)
    files = [tmp_path / f"{i}.bin" for i in range(6)]
    for i, p in enumerate(files):
        p.write_bytes(bytes([i]) * 5000)
    want = {p: cache.file_sha256(p) for p in files}
    wrong: list[Path] = []

    def work(offset: int) -> None:
        for n in range(200):
            p = files[(n + offset) % len(files)]
            if cache.cached_file_sha256(p) != want[p]:
                wrong.append(p)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == [] and len(cache._digests) <= 3


def test_duplicates_compare_bytes_through_the_kept_digests(tmp_path, settled, monkeypatch, caplog):
    from engine.duplicates import _same_bytes
    read = counted(monkeypatch)
    a = write(tmp_path / "a.wav", tone(440, 1.0, SR), SR)
    b = tmp_path / "b.wav"
    shutil.copyfile(a, b)
    c = write(tmp_path / "c.wav", -tone(440, 1.0, SR), SR)
    size = a.stat().st_size
    assert _same_bytes([str(a), str(b)], [size, size]) and sorted(read) == ["a.wav", "b.wav"]
    assert _same_bytes([str(a), str(b)], [size, size]) and len(read) == 2      # nothing read again
    assert not _same_bytes([str(a), str(c)], [size, size]) and read[2:] == ["c.wav"]
    assert not _same_bytes([str(a), str(b)], [size, size + 1]) and len(read) == 3
    with caplog.at_level(logging.WARNING, "engine.duplicates"):
        assert not _same_bytes([str(a), str(tmp_path / "gone.wav")], [size, size])
    assert any("gone.wav" in r.getMessage() and "not read to compare bytes" in r.getMessage()
               for r in caplog.records)
