"""Short sounds of clearly different lengths are not one recording (page audit, session 35):
`duplicates` compared two files only over the stretch both cover once aligned, so a 150 ms
3 kHz tone matched a 60 ms one (their first 60 ms are the same tone) and short UI beeps of
different lengths made one group. Heard audio outside the stretch both cover now counts
(engine.duplicates.allowed_unmatched: a quarter of the shorter file, at most the slack), while a short sound's MP3, Opus and resampled copies,
whose codec padding is near-silence, stay its copies."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from engine.audio import decode
from engine.duplicates import RATE, allowed_unmatched, difference_db, find_duplicates, unmatched_seconds
from tests.conftest import noise, tone, write
from tests.test_same_recording35 import mp3 as mp3_at

SR = 44100


def ramped(x: np.ndarray, ms: float = 3.0) -> np.ndarray:
    """``x`` with ``ms`` linear fades at both ends (no click at the cut)."""
    r = int(ms / 1000 * SR)
    w = np.ones(len(x), np.float32)
    w[:r], w[-r:] = np.linspace(0, 1, r), np.linspace(1, 0, r)
    return (x * w).astype(np.float32)


def beep(seconds: float) -> np.ndarray:
    """A UI beep: 1 kHz, decaying (cut at ``seconds``)."""
    t = np.arange(int(seconds * SR)) / SR
    return (0.4 * np.sin(2 * np.pi * 1000 * t) * np.exp(-20 * t)).astype(np.float32)


def mp3(x: np.ndarray, kbps: int, path: Path) -> Path:
    return mp3_at(x, kbps, path, SR)


def groups_of(paths: list[Path]) -> list[set[str]]:
    """find_duplicates over ``paths`` with every pair proposed (equal vectors), as name sets."""
    durations = np.array([len(decode(str(p), RATE)) / RATE for p in paths])
    vectors = np.ones((len(paths), 4), np.float32) / 2.0
    report = find_duplicates([str(p) for p in paths], vectors, durations, np.arange(len(paths)) + 1)
    return [{Path(p).name for p in g.paths} for g in report.groups]


def test_tones_clicks_and_beeps_of_other_lengths_are_not_one_recording(tmp_path):
    files = [write(tmp_path / f"tone_{ms}.wav", ramped(tone(3000, ms / 1000, SR)), SR) for ms in (60, 100, 150)]
    files += [write(tmp_path / f"click_{ms}.wav", ramped(noise(ms / 1000, SR, seed=3), 1.0), SR) for ms in (20, 40)]
    files += [write(tmp_path / f"beep_{ms}.wav", beep(ms / 1000), SR) for ms in (60, 100)]
    assert groups_of(files) == []


def test_a_short_sounds_codec_and_resampled_copies_stay_its_copies(tmp_path):
    x = beep(0.1)
    wav = write(tmp_path / "beep.wav", x, SR)
    low = write(tmp_path / "beep_22k.wav", soxr.resample(x, SR, 22050).astype(np.float32), 22050)
    opus = tmp_path / "beep.opus"
    sf.write(opus, soxr.resample(x, SR, 48000), 48000, format="OGG", subtype="OPUS")
    copies = [mp3(x, 128, tmp_path / "beep_128.mp3"), mp3(x, 32, tmp_path / "beep_32.mp3"), low]
    assert groups_of([wav, *copies, write(tmp_path / "other_60.wav", beep(0.06), SR)]) == [
        {"beep.wav", "beep_128.mp3", "beep_32.mp3", "beep_22k.wav"}]
    a = decode(str(wav), RATE)
    for copy in (*copies, opus):                     # padding is near-silence: nothing unmatched
        y = decode(str(copy), RATE)
        assert unmatched_seconds(a, y, 0) < allowed_unmatched(0.1) / 4, copy
        assert difference_db(a, y) < 2.0, copy       # Opus: 1.3 dB, compared (not refused)


def test_heard_audio_outside_decides_not_the_length(tmp_path):
    x = ramped(tone(3000, 0.06, SR))
    padded = np.concatenate([x, np.zeros(int(0.09 * SR), np.float32)])   # 60 ms tone, 90 ms silence
    longer = ramped(tone(3000, 0.15, SR))
    a = decode(str(write(tmp_path / "a.wav", x, SR)), RATE)
    assert difference_db(a, decode(str(write(tmp_path / "pad.wav", padded, SR)), RATE)) < 0.5
    assert difference_db(a, decode(str(write(tmp_path / "long.wav", longer, SR)), RATE)) == float("inf")
    trimmed = x[int(0.003 * SR):]                                    # an attack cut by 3 ms: a copy
    assert difference_db(a, decode(str(write(tmp_path / "cut.wav", trimmed, SR)), RATE)) < 0.5
    assert unmatched_seconds(np.zeros(100, np.float32), np.zeros(300, np.float32), 0) == 0.0
    assert allowed_unmatched(0.06) == pytest.approx(0.015) and allowed_unmatched(10.0) == pytest.approx(0.2)
