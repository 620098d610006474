"""An Ogg Opus file whose granule positions start past 0 is read by libsndfile after a seek to its
start, at the rate its encoder was given, instead of by FFmpeg at 48 kHz.

Opened, libsndfile 1.2.2 keeps such a file's pre-skip (every moment 6.5 ms late); sought to frame
0, it drops the pre-skip right and reads every sample that an encoding of the same audio from
granule 0 gives (helper 142's finding, session 36). FFmpeg reads it only where that seek fails;
a file libsndfile refuses (one page: tests/test_opus_fallback40.py) is FFmpeg's as before."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from engine.audio import decode, open_sound, open_sound_bytes, probe
from engine.ffmpeg_audio import FFmpegSound
from tests.test_opus_fallback40 import LATER_START, click_time, clicked, opus


@pytest.mark.parametrize("rate, channels", [(48000, 1), (16000, 2), (24000, 1)])
def test_libsndfile_reads_it_on_time_at_its_own_rate(tmp_path, rate, channels):
    x = clicked(3.0, rate, channels, at=1.2)
    late = opus(tmp_path / "late.opus", x, rate, start=LATER_START)
    prompt = opus(tmp_path / "prompt.opus", x, rate)                   # the same audio from granule 0
    with sf.SoundFile(str(prompt)) as f:
        want = f.read(dtype="float32", always_2d=True)
    with open_sound(late) as f:
        assert isinstance(f, sf.SoundFile) and (f.samplerate, f.frames) == (rate, x.shape[1])
        got = f.read(dtype="float32", always_2d=True)
    np.testing.assert_array_equal(got, want)
    assert click_time(got, rate) == pytest.approx(1.2, abs=1 / rate)
    with open_sound_bytes(late.read_bytes(), late.name) as f:          # an upload, a shard's member
        assert isinstance(f, sf.SoundFile)
        np.testing.assert_array_equal(f.read(dtype="float32", always_2d=True), want)
    assert (probe(late).sample_rate, probe(late).frames) == (rate, x.shape[1])
    assert click_time(decode(late, 16000), 16000) == pytest.approx(1.2, abs=2 / 16000)


def test_ffmpeg_reads_it_where_libsndfiles_seek_fails(tmp_path, monkeypatch):
    late = opus(tmp_path / "late.opus", clicked(2.0, 16000), 16000, start=LATER_START)

    def refused(self, frames, whence=0):
        raise sf.LibsndfileError(0, "no seek here: ")
    monkeypatch.setattr(sf.SoundFile, "seek", refused)
    with open_sound(late) as f:
        assert isinstance(f, FFmpegSound) and f.samplerate == 48000
        assert click_time(f.read(dtype="float32"), 48000) == pytest.approx(1.0, abs=2 / 48000)
