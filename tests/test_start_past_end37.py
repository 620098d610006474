"""iter_blocks from a start time at or past a file's end (as its header gives it) says so:
InvalidQuery naming the file and both times, instead of UnreadableAudio "decoding failed after 0
frames (Internal psf_fseek() failed.)", which calls a sound file broken that is not."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.audio import iter_blocks
from engine.errors import InvalidQuery, UnreadableAudio


def _tone(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    return path


@pytest.mark.parametrize("start", [1.0, 5.0])
def test_a_start_at_or_past_the_end_names_the_file_and_both_times(tmp_path, start):
    path = _tone(tmp_path / "one_second.wav")
    with pytest.raises(InvalidQuery) as e:
        list(iter_blocks(path, 16000, start_seconds=start))
    assert str(path) in str(e.value) and "1.00 s long" in str(e.value) and "past its end" in str(e.value)
    assert not isinstance(e.value, UnreadableAudio)


def test_a_start_inside_the_file_still_reads_the_rest(tmp_path):
    path = _tone(tmp_path / "one_second.wav")
    got = np.concatenate(list(iter_blocks(path, 16000, start_seconds=0.5)))
    assert abs(len(got) - 8000) <= 1
