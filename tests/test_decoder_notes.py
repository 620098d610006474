"""Decoder output and decoder failures, said under the file they are about: what C decoders
print to stderr in a decoder process reaches the indexer as notes on that file (named, logged),
not as anonymous lines on the user's terminal; a pool whose processes cannot start fails its
files instead of respawning forever; libsndfile's misleading reasons are translated for every
decode path."""
from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import soundfile as sf

from engine.segments import SegmentPolicy
from indexer import build_index
from indexer.decode import DecodeJob, DecodePool, FileFailed, StderrCapture
from tests.conftest import tone, write
from tests.index_fakes import FakeModel


def test_stderr_capture_takes_what_arrived_since_the_last_take(capfd):
    with StderrCapture() as captured:
        os.write(2, b"libfoo: one\n\n   libfoo: two  \nlibfoo: one\n")    # as C code writes, past Python
        assert captured.take() == ["libfoo: one", "libfoo: two"]          # each line once
        assert captured.take() == []
        os.write(2, "".join(f"line {i}\n" for i in range(10)).encode())
        assert captured.take() == [f"line {i}" for i in range(StderrCapture.MAX_LINES)] + [
            f"(… {10 - StderrCapture.MAX_LINES} more lines)"]
        os.write(2, b"left for the terminal\n")
    # nothing captured is lost: what was not taken goes to the real stderr on leaving
    assert capfd.readouterr().err == "left for the terminal\n"
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def test_decoder_output_is_logged_under_the_file_it_is_about(tmp_path, caplog):
    lib = tmp_path / "lib"
    # an MP3 with junk after its last frame: it decodes, and libmpg123 warns about its size
    padded = write(lib / "padded.mp3", tone(440, 2.0, 44100), 44100)
    padded.write_bytes(padded.read_bytes() + bytes(padded.stat().st_size))
    # random bytes named .mp3: not audio, and libmpg123 says so while giving up
    (lib / "noise.mp3").write_bytes(np.random.default_rng(0).bytes(5000))
    with caplog.at_level(logging.DEBUG, logger="indexer.runner"):
        summary = build_index([lib], tmp_path / "idx", FakeModel(), workers=1, progress=False)
    assert summary.added == 1 and summary.failed == 1
    assert sf.info(str(padded)).duration > 1.9
    records = {(r.levelno, r.getMessage()) for r in caplog.records if r.name == "indexer.runner"}
    good_notes = [m for lvl, m in records if lvl == logging.WARNING and m.startswith(f"{padded}: ")]
    assert good_notes and all(len(m) > len(f"{padded}: ") for m in good_notes)
    bad = lib / "noise.mp3"
    assert (logging.WARNING, f"skipped {bad}: not readable as audio (format not recognised: "
                             "no audio stream found)") in records
    assert any(lvl == logging.DEBUG and m.startswith(f"{bad}: the decoder also said: ") for lvl, m in records)


def _exit_at_start(*args) -> None:
    """A decoder process that fails before taking any file (as one that cannot import would)."""
    raise SystemExit(3)


class _BrokenPool(DecodePool):
    worker_main = staticmethod(_exit_at_start)


def test_workers_that_cannot_start_fail_the_files_instead_of_respawning_forever(tmp_path):
    files = [write(tmp_path / f"t{i}.wav", tone(440, 0.5, 16000), 16000) for i in range(3)]
    with _BrokenPool(16000, SegmentPolicy(1.0), workers=2) as pool:
        events = list(pool.run(DecodeJob(i, str(p)) for i, p in enumerate(files)))
    assert [type(e) for e in events] == [FileFailed] * 3
    assert sorted(e.job for e in events) == [0, 1, 2]
    assert all(e.reason.startswith("decoder processes could not start (exit code 3, 3 in a row")
               for e in events)


def test_unrecognised_and_empty_files_are_named_as_such_outside_the_indexer_too(tmp_path):
    """libsndfile says "File does not exist" for an MP3 stream it cannot parse and "Format not
    recognised" for a 0-byte file; every decode path (soundsift similar, tag, caption, the
    trainer) reports what is really wrong, as the indexer does."""
    from engine.audio import decode
    from engine.errors import UnreadableAudio

    bad = tmp_path / "noise.mp3"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(UnreadableAudio) as caught:
        decode(bad, 16000)
    assert caught.value.reason == "not readable as audio (format not recognised: no audio stream found)"
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(UnreadableAudio, match="empty: the file is 0 bytes$"):
        decode(tmp_path / "empty.wav", 16000)
    with pytest.raises(UnreadableAudio) as caught:     # a file that is not there keeps libsndfile's reason
        decode(tmp_path / "missing.mp3", 16000)
    assert "format not recognised" not in caught.value.reason
