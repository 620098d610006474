"""A decoder process may send its last events and end just after the indexer's wait for a message
timed out (a slow file on a loaded machine, the indexer descheduled right there): what it sent is
read before any of its files is taken for lost or crashed (indexer.decode.DecodePool._reap_dead).

The race is made deterministic: the decoder waits for a "go" file beside the audio before it goes
on, and the results queue the pool reads is wrapped so that its first timed-out wait after a chosen
message writes that file and raises queue.Empty only once the decoder process has ended, as an
indexer descheduled right after the timeout sees it."""
from __future__ import annotations

import os
import queue
from pathlib import Path
from typing import Callable

from indexer import build_index, decode
from indexer.decode import DecodePool, SegmentReady
from tests.conftest import tone, write
from tests.index_fakes import FakeModel
from tests.slow_decoders214 import crashes_after_its_segments, finishes_late, go_file

SR = 16000


class _DescheduledReader:
    """The pool's results queue as an indexer descheduled after a timed-out wait sees it: the first
    such wait after a message for which ``arms`` is true touches ``go`` (the decoder goes on) and
    raises queue.Empty only once every decoder process has ended."""

    def __init__(self, results, pool: DecodePool, arms: Callable[[tuple], bool], go: str) -> None:
        self.results, self.pool, self.arms, self.go = results, pool, arms, go
        self.armed = self.late = False

    def get(self, block: bool = True, timeout: float | None = None):
        try:
            message = self.results.get(block, timeout)
        except queue.Empty:
            if block and self.armed and not self.late:
                self.late = True
                Path(self.go).touch()
                for proc in list(self.pool._procs.values()):
                    proc.join(timeout=60)
            raise
        self.armed |= self.arms(message)
        return message

    def __getattr__(self, name: str):
        return getattr(self.results, name)

    def __reduce__(self):           # a decoder process gets the queue itself
        return _itself, (self.results,)


def _itself(results):
    return results


def _pool(worker, arms: Callable[[tuple], bool], go: str) -> type[DecodePool]:
    class Pool(DecodePool):
        worker_main = staticmethod(worker)

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._results = _DescheduledReader(self._results, self, arms, go)
    return Pool


def _a_segment(message: tuple) -> bool:
    return isinstance(message[2], SegmentReady)


def _a_start(message: tuple) -> bool:
    return message[0] == "start"


def test_a_file_whose_decoder_ends_while_the_indexer_waits_is_indexed_not_lost(tmp_path, monkeypatch):
    """Not failed as "decoder process lost while decoding this file", its FileDecoded unread."""
    lib = (tmp_path / "lib").resolve()
    beep = write(lib / "beep.wav", tone(880, 1.5, SR), SR)
    monkeypatch.setattr(decode, "DecodePool", _pool(finishes_late, _a_segment, go_file(str(beep))))
    s = build_index([str(lib)], tmp_path / "idx", FakeModel(), workers=1, progress=False)
    assert os.path.exists(go_file(str(beep)))          # the race happened
    assert s.errors == [] and (s.added, s.failed, s.n_segments) == (1, 0, 1)


class _SmallSegments(FakeModel):
    """Segments of 4,000 samples (16 kB): a few fit in the pipe while the indexer reads nothing."""
    sample_rate = 4000
    window_seconds = 1.0


def test_segments_a_crashed_decoder_sent_come_before_its_files_failure(tmp_path, monkeypatch):
    """Each file's events end with exactly one FileDecoded or FileFailed, nothing after it (else
    the indexer meets a segment of a file it has already failed, and the whole run stops with a
    KeyError)."""
    lib = (tmp_path / "lib").resolve()
    crash = write(lib / "crash.wav", tone(440, 1.5, SR), SR)        # the smaller: decoded first
    write(lib / "fine.wav", tone(660, 3.0, SR), SR)
    events: list = []
    pool = _pool(crashes_after_its_segments, _a_start, go_file(str(crash)))

    class Seen(pool):
        def run(self, jobs):
            for event in super().run(jobs):
                events.append((event.job, type(event).__name__))
                yield event
    monkeypatch.setattr(decode, "DecodePool", Seen)
    s = build_index([str(lib)], tmp_path / "idx", _SmallSegments(), workers=1, progress=False)
    assert os.path.exists(go_file(str(crash)))          # the race happened
    crashed, decoded = ([kind for job, kind in events if job == n] for n in (0, 1))
    assert crashed == ["SegmentReady", "SegmentReady", "FileFailed"]      # 1.5 s: two windows
    assert decoded == ["SegmentReady"] * (len(decoded) - 1) + ["FileDecoded"]
    assert s.errors == [{"path": str(crash), "reason": "decoder process crashed (exit code 9)"}]
    assert (s.added, s.failed, s.n_segments) == (1, 1, len(decoded) - 1)
