"""engine.file_state: the one "is the file as recorded" check used by tagging and the indexer."""
import os

from engine.file_state import state_now
from engine.tagging import _unchanged
from indexer.runner import changed_since_scan
from indexer.scan import ScannedFile
from indexer.watch import still_written


def test_state_now_is_size_and_mtime_and_none_when_gone(tmp_path):
    f = tmp_path / "a.wav"
    f.write_bytes(b"x" * 10)
    os.utime(f, ns=(1_000_000_000, 2_000_000_123))
    assert state_now(f) == (10, 2_000_000_123)
    f.unlink()
    assert state_now(f) is None


def test_the_three_checks_agree_on_edited_gone_and_unchanged_files(tmp_path):
    f = tmp_path / "a.wav"
    f.write_bytes(b"x" * 10)
    seen = ScannedFile(str(f), *state_now(f))
    assert seen.state == state_now(f)
    assert _unchanged(str(f), seen.state) and not changed_since_scan(seen) and still_written([seen]) == []
    f.write_bytes(b"x" * 11)                        # edited: stored vectors stale, still being written
    assert not _unchanged(str(f), seen.state) and changed_since_scan(seen)
    assert still_written([seen]) == [str(f)]
    f.unlink()                                      # gone: not "changed while indexed", but not as recorded
    assert not _unchanged(str(f), seen.state) and not changed_since_scan(seen)
    assert still_written([seen]) == [str(f)]
