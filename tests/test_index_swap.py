"""indexer.swap: exchange two folders atomically (renameat2 RENAME_EXCHANGE), or say it can't.

The rebuild's use of it (and of its fallback) is tested in tests/test_index_rebuild.py.
"""
from __future__ import annotations

import ctypes
import errno
import logging
import os
import tempfile
from pathlib import Path

import pytest

from indexer import swap
from indexer.swap import exchange_paths


def break_exchange(monkeypatch, why: str) -> None:
    """Make renameat2 missing from libc (``why="missing"``) or fail with errno ``why`` ("EINVAL", …)."""
    if why == "missing":
        def lookup():
            raise AttributeError("/lib/libc.so.6: undefined symbol: renameat2")
    else:
        def renameat2(*args):
            ctypes.set_errno(getattr(errno, why))
            return -1

        def lookup():
            return renameat2
    monkeypatch.setattr(swap, "_renameat2", lookup)


def _can_exchange() -> bool:
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "a").mkdir()
        (Path(d) / "b").mkdir()
        try:
            return exchange_paths(Path(d) / "a", Path(d) / "b")
        except OSError:                 # e.g. EPERM from a container's seccomp filter
            return False


#: the real exchange, where the filesystem of the temporary folders has it
needs_exchange = pytest.mark.skipif(not _can_exchange(),
                                    reason="no renameat2 RENAME_EXCHANGE on this system/filesystem")


def two_folders(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        (d / "sub").mkdir(parents=True)
        (d / "name.txt").write_text(d.name)
        (d / "sub" / d.name).touch()
    return a, b


def contents(d: Path) -> tuple[str, list[str], int]:
    return (d / "name.txt").read_text(), sorted(p.name for p in (d / "sub").iterdir()), os.stat(d).st_ino


@needs_exchange
def test_the_exchange_swaps_two_folders_in_place(tmp_path):
    a, b = two_folders(tmp_path)
    before_a, before_b = contents(a), contents(b)
    assert exchange_paths(a, b) is True
    assert a.is_dir() and b.is_dir()
    assert contents(a) == before_b and contents(b) == before_a      # the folders themselves moved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


@needs_exchange
def test_an_exchange_that_fails_raises_naming_both_paths(tmp_path):
    a, b = two_folders(tmp_path)
    with pytest.raises(OSError) as e:
        exchange_paths(a, tmp_path / "missing")
    assert e.value.errno == errno.ENOENT
    assert str(a) in str(e.value) and str(tmp_path / "missing") in str(e.value)
    assert contents(a)[0] == "a" and not (tmp_path / "missing").exists()


def test_other_errors_of_renameat2_raise(tmp_path, monkeypatch):
    a, b = two_folders(tmp_path)
    break_exchange(monkeypatch, "EACCES")
    with pytest.raises(OSError, match=f"cannot exchange {a} and {b} \\(Permission denied\\)") as e:
        exchange_paths(a, b)
    assert e.value.errno == errno.EACCES


@pytest.mark.parametrize("why", ["missing", "EINVAL", "ENOSYS", "EOPNOTSUPP", "EPERM"])
def test_without_renameat2_exchange_says_so_and_changes_nothing(tmp_path, monkeypatch, caplog, why):
    a, b = two_folders(tmp_path)
    before = contents(a), contents(b)
    break_exchange(monkeypatch, why)
    with caplog.at_level(logging.DEBUG, logger="indexer.swap"):
        assert exchange_paths(a, b) is False
    assert (contents(a), contents(b)) == before
    (record,) = caplog.records
    assert record.levelno == logging.DEBUG and "no atomic exchange" in record.message
    reason = "undefined symbol" if why == "missing" else os.strerror(getattr(errno, why))
    assert str(a) in record.message and reason in record.message
