"""The segment policy (pure) and the streaming decoder that applies it."""
from __future__ import annotations

import numpy as np
import pytest

from engine.audio import decode, iter_segments
from engine.segments import SegmentPolicy, segment_bounds
from tests.conftest import chirp, write

POLICY = SegmentPolicy(window=10.0)


@pytest.mark.parametrize("n, expected", [
    (0, []),
    (1, [(0, 1)]),
    (100, [(0, 100)]),          # exactly one window
    (150, [(0, 100), (50, 150)]),
    (160, [(0, 100), (50, 150), (60, 160)]),   # tail aligned to the end
    (200, [(0, 100), (50, 150), (100, 200)]),
])
def test_segment_bounds_pinned(n, expected):
    assert segment_bounds(n, 10, POLICY) == expected


def test_every_sample_covered_and_windows_full():
    for n in range(101, 1000, 37):
        b = segment_bounds(n, 10, POLICY)
        assert b[0][0] == 0 and b[-1][1] == n
        assert all(e - s == 100 for s, e in b)
        assert all(b[i + 1][0] <= b[i][1] for i in range(len(b) - 1))


@pytest.mark.parametrize("seconds", [0.05, 3.0, 10.0, 23.7, 61.0])
def test_streaming_matches_policy(tmp_path, seconds):
    sr = 8000
    x = chirp(100, 3000, seconds, sr)
    path = write(tmp_path / "c.wav", x, sr)
    segs = list(iter_segments(path, sr, POLICY))
    bounds = segment_bounds(len(x), sr, POLICY)
    assert [(round(s.start * sr), round(s.end * sr)) for s in segs] == bounds
    for s, (a, b) in zip(segs, bounds):
        np.testing.assert_allclose(s.waveform, x[a:b], atol=1e-4)  # 16-bit PCM


def test_streaming_resampled_equals_whole_decode(tmp_path):
    x = chirp(50, 5000, 47.3, 44100)
    path = write(tmp_path / "c.flac", x, 44100)
    whole = decode(path, 16000)
    segs = list(iter_segments(path, 16000, POLICY))
    assert segs[-1].end == pytest.approx(len(whole) / 16000)
    for s in segs:
        a = round(s.start * 16000)
        np.testing.assert_array_equal(s.waveform, whole[a:a + len(s.waveform)])
