"""Decoder output and decoder failures, said under the file they are about: what C decoders
print to stderr in a decoder process reaches the indexer as notes on that file (named, logged),
not as anonymous lines on the user's terminal; a pool whose processes cannot start fails its
files instead of respawning forever; libsndfile's misleading reasons are translated for every
decode path; a stream that breaks off (a truncated FLAC) keeps the audio before the break and says
where it stopped."""
from __future__ import annotations

import logging
import os

import numpy as np
import pytest
import soundfile as sf

from engine.segments import SegmentPolicy
from engine.stderr_capture import StderrCapture
from indexer import build_index
from indexer.decode import DecodeJob, DecodePool, FileFailed
from tests.conftest import catalog_session, tone, write
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


def _truncated_flac(path, seconds: float = 3.0):
    """A 44.1 kHz noise FLAC cut to half its bytes (as an interrupted copy leaves it), and the original."""
    x = (0.1 * np.random.default_rng(3).standard_normal(int(seconds * 44100))).astype(np.float32)
    sf.write(str(path), x, 44100)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path, x


def _whole_blocks_read(path, block: int) -> int:
    """How many frames libsndfile reads in whole blocks of ``block`` before a read fails or
    comes up short: a start for counting the frames it reads one at a time, 65,000 single
    reads taking seconds."""
    read = 0
    with sf.SoundFile(str(path)) as f:
        try:
            while f.read(block).shape[0] == block:
                read += block
        except sf.LibsndfileError:
            pass
    return read


def test_a_truncated_flac_decodes_up_to_the_cut_and_says_where_it_stopped(tmp_path, caplog):
    from engine.audio import decode, iter_blocks

    path, x = _truncated_flac(tmp_path / "cut.flac")
    with pytest.raises(sf.LibsndfileError):       # what libsndfile does with it in one read
        sf.read(str(path))
    notes: list[str] = []
    y = decode(path, 44100, notes=notes)
    # up to the last frame before the cut (half the file's bytes, 1.49 s of noise), and sample
    # for sample the original
    whole = _whole_blocks_read(path, 1024)          # then frame by frame from there, as before
    with sf.SoundFile(str(path)) as f:
        assert f.read(whole).shape[0] == whole
        with pytest.raises(sf.LibsndfileError):
            while f.read(1).shape[0]:
                whole += 1
    assert 0.4 * len(x) < whole == len(y)
    np.testing.assert_allclose(y, x[: len(y)], atol=1e-4)
    assert len(notes) == 1
    assert notes[0].startswith(f"decoding stopped at {len(y) / 44100:.2f} s of 3.00 s (")
    assert notes[0].endswith("): keeping the audio before it")
    # the break inside a later block: the blocks before it are not read twice or lost
    small = np.concatenate(list(iter_blocks(path, 44100, block_seconds=0.1, notes=[])))
    np.testing.assert_array_equal(small, y)
    # without a notes list the same line goes to the log, naming the file
    with caplog.at_level(logging.WARNING, logger="engine.audio"):
        assert len(decode(path, 16000)) > 0
    assert [r.getMessage() for r in caplog.records if r.name == "engine.audio"] == [f"{path}: {notes[0]}"]


def test_the_indexer_keeps_a_truncated_flac_with_one_warning(tmp_path, caplog):
    from sqlalchemy import select

    from engine.catalog import SegmentRow

    lib = tmp_path / "lib"
    lib.mkdir()
    path, _ = _truncated_flac(lib / "cut.flac")
    with caplog.at_level(logging.WARNING, logger="indexer.runner"):
        summary = build_index([lib], tmp_path / "idx", FakeModel(), workers=1, progress=False)
    assert (summary.added, summary.failed) == (1, 0)
    warned = [r.getMessage() for r in caplog.records if r.name == "indexer.runner"]
    assert len(warned) == 1 and warned[0].startswith(f"{path}: decoding stopped at ")
    with catalog_session(tmp_path / "idx") as s:
        ends = [seg.end for seg in s.scalars(select(SegmentRow))]
    assert 1.2 < max(ends) < 1.5


@pytest.mark.parametrize("fmt", ["WAV", "AIFF", "RF64", "AU"])
def test_a_cut_container_promises_its_header_length(tmp_path, fmt):
    """libsndfile counts a cut WAV's frames from the bytes present; the data chunk's size says
    how long it was meant to be (engine.promised_length)."""
    from engine.promised_length import promised_seconds

    path = write(tmp_path / f"whole.{fmt.lower()}", tone(440, 4.0, 16000), 16000, format=fmt)
    info = sf.info(str(path))
    assert promised_seconds(str(path), info.frames, info.samplerate) == info.duration == 4.0
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    info = sf.info(str(path))
    assert info.duration < 1.4                                   # what libsndfile says of it
    assert promised_seconds(str(path), info.frames, info.samplerate) == pytest.approx(4.0, abs=0.01)


@pytest.mark.parametrize("ext", ["wav", "aiff"])
def test_the_indexer_warns_once_of_a_cut_wav_or_aiff(tmp_path, caplog, ext):
    lib = tmp_path / "lib"
    path = write(lib / f"cut.{ext}", tone(440, 4.0, 16000), 16000)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    write(lib / f"whole.{ext}", tone(440, 4.0, 16000), 16000)
    with caplog.at_level(logging.WARNING, logger="indexer.runner"):
        summary = build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    assert (summary.added, summary.failed) == (2, 0)
    warned = [r.getMessage() for r in caplog.records if r.name == "indexer.runner"]
    assert len(warned) == 1 and warned[0].startswith(f"{path}: shorter than its header says (1.33 s of 4.00 s")


def test_relaying_says_in_process_decoder_output_under_the_file(tmp_path, capfd, caplog):
    """`soundsift similar`, `tag` and `caption` decode in their own process: inside
    relaying_decoder_output libmpg123's lines are logged under the file, not left on the terminal."""
    from engine.audio import decode, relaying_decoder_output
    from engine.errors import UnreadableAudio
    from engine.stderr_capture import StderrCapture

    padded = write(tmp_path / "padded.mp3", tone(440, 2.0, 44100), 44100)
    padded.write_bytes(padded.read_bytes() + bytes(padded.stat().st_size))
    bad = tmp_path / "noise.mp3"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    with StderrCapture() as raw:                  # what libmpg123 prints, taken as it is (outside a relay
        decode(padded, 16000)                     # a bare call logs it too: tests/test_cli_papercuts39.py)
        said = raw.take_lines()
    assert said
    lines = list(dict.fromkeys(said))             # (the same line, once per libsndfile call)
    with relaying_decoder_output(), caplog.at_level(logging.DEBUG, logger="engine.audio"):
        decode(padded, 16000)
        with pytest.raises(UnreadableAudio):
            decode(bad, 16000)
        notes: list[str] = []
        decode(padded, 16000, notes=notes)
    assert capfd.readouterr().err == ""
    records = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "engine.audio"]
    assert [m for lvl, m in records if lvl == logging.WARNING] == [f"{padded}: {line}" for line in lines]
    assert notes == lines                                         # given a notes list, the lines go there, once
    assert any(lvl == logging.DEBUG and m.startswith(f"{bad}: the decoder also said: ") for lvl, m in records)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="engine.audio"):
        decode(padded, 16000)                                      # the relay's "said once" ends with it
    assert [r.getMessage() for r in caplog.records] == [f"{padded}: {line}" for line in lines]


def test_a_failure_past_the_reader_is_still_one_clear_reason(tmp_path, monkeypatch):
    """Whatever fails while a file is decoded (here the resampler) reaches every caller as
    UnreadableAudio naming the file, not as a bare library exception."""
    import engine.audio as audio
    from engine.errors import UnreadableAudio

    class Broken:
        def __init__(self, *args, **kwargs):
            pass

        def resample_chunk(self, *args, **kwargs):
            raise RuntimeError("soxr: out of memory")

    monkeypatch.setattr(audio.soxr, "ResampleStream", Broken)
    path = write(tmp_path / "a.wav", tone(440, 0.5, 22050), 22050)
    with pytest.raises(UnreadableAudio) as caught:
        audio.decode(path, 16000)
    assert caught.value.reason == "decoding failed (soxr: out of memory)"
    assert str(path) in str(caught.value)
