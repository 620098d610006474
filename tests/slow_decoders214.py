"""Decoder processes slow at a chosen moment, for tests/test_decoder_exit_race214.py: a module of
its own that imports little, as each decoder process imports it to run them."""
from __future__ import annotations

import os
import time

from engine.segments import SegmentPolicy
from indexer import decode
from indexer.decode import DecodeJob, FileDecoded


def go_file(path: str) -> str:
    """The file whose appearance lets a decoder waiting on the audio at ``path`` go on."""
    return path + ".go"


def wait_for_go(path: str) -> None:
    """In a decoder process: wait until the indexer's wait for a message has timed out."""
    deadline = time.monotonic() + 60
    while not os.path.exists(go_file(path)) and time.monotonic() < deadline:
        time.sleep(0.01)


def finishes_late(tasks, results, sample_rate, policy, parent_pid) -> None:
    """The decoder loop, each file's FileDecoded sent only once the indexer's wait has timed out."""
    real = decode.decode_file

    def late(job: DecodeJob, sr: int, pol: SegmentPolicy):
        for event in real(job, sr, pol):
            if isinstance(event, FileDecoded):
                wait_for_go(job.path)
            yield event
    decode.decode_file = late           # (in this decoder process only)
    decode._worker_main(tasks, results, sample_rate, policy, parent_pid)


def crashes_after_its_segments(tasks, results, sample_rate, policy, parent_pid) -> None:
    """The decoder loop, but a file named crash*.wav sends its segments once the indexer's wait has
    timed out, then the process dies (a codec crash) before the file's FileDecoded."""
    real = decode.decode_file

    def crashing(job: DecodeJob, sr: int, pol: SegmentPolicy):
        if not os.path.basename(job.path).startswith("crash"):
            yield from real(job, sr, pol)
            return
        wait_for_go(job.path)
        for event in real(job, sr, pol):
            if isinstance(event, FileDecoded):
                results.close()
                results.join_thread()       # the segments are in the pipe
                os._exit(9)
            yield event
    decode.decode_file = crashing
    decode._worker_main(tasks, results, sample_rate, policy, parent_pid)
