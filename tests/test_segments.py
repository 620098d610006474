"""The segment policy (pure) and the streaming decoder that applies it."""
from __future__ import annotations

import numpy as np
import pytest

from engine.audio import decode, downmix, iter_segments
from engine.segments import SegmentPolicy, bounds_with_takes, regular_take, segment_bounds, take_bounds
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


def test_take_bounds_pinned():
    """One take per named marker: to the next marker, its region's end or one window, whichever
    is first; one per start; none shorter than 0.1 s."""
    markers = [(3.0, None), (0.5, None), (0.5, None), (1.0, 0.5), (2.0, 30.0), (2.95, None), (9.0, None)]
    assert take_bounds(markers, 100, POLICY) == [(50, 100), (100, 150), (200, 295), (300, 900), (900, 1900)]
    assert take_bounds([], 10, POLICY) == []


def test_a_take_that_is_a_regular_segment_adds_nothing():
    assert regular_take(50, 150, None, 10, POLICY)              # on the hop grid, a window long
    assert not regular_take(40, 140, None, 10, POLICY)
    assert not regular_take(50, 120, None, 10, POLICY)
    assert regular_take(60, 160, 160, 10, POLICY)               # the end-aligned tail
    assert regular_take(0, 80, 80, 10, POLICY)                  # a file no longer than a window
    assert not regular_take(20, 80, 80, 10, POLICY)


def test_streaming_cuts_each_marked_take_from_the_same_audio(tmp_path):
    """Takes come out beside the regular segments, across the decoder's 20 s blocks, cut at the
    file's end; the regular segments are the same as without markers."""
    sr = 8000
    x = chirp(100, 3000, 61.0, sr)
    path = write(tmp_path / "c.wav", x, sr)
    markers = [(9.0, None), (19.5, None), (21.0, 3.0), (30.0, None), (40.0, None), (40.05, None), (55.0, None)]
    segs = list(iter_segments(path, sr, POLICY, markers=markers))
    bounds = [(round(s.start * sr), round(s.end * sr)) for s in segs]
    regular = segment_bounds(len(x), sr, POLICY)
    assert sorted(b for b in bounds if b not in regular) == [
        (9 * sr, 19 * sr), (int(19.5 * sr), 21 * sr), (21 * sr, 24 * sr), (int(40.05 * sr), int(50.05 * sr)),
        (55 * sr, 61 * sr)]     # 9–19.5 stops a window on; 30–40 is a regular window; 40–40.05 too short
    assert [b for b in bounds if b in regular] == regular
    assert sorted(bounds) == sorted(bounds_with_takes(len(x), sr, POLICY, markers))    # the same, unstreamed
    for s, (a, b) in zip(segs, bounds):
        np.testing.assert_allclose(s.waveform, x[a:b], atol=1e-4)


def test_a_take_that_ends_the_file_as_its_tail_does_is_not_cut_twice(tmp_path):
    """A take ending where the file does is judged once the end is known: 13–23 s of a 23 s file
    is the end-aligned tail, off the hop grid, so it adds nothing."""
    sr = 8000
    x = chirp(100, 3000, 23.0, sr)
    path = write(tmp_path / "c.wav", x, sr)
    segs = list(iter_segments(path, sr, POLICY, markers=[(13.0, None), (2.0, 3.0)]))
    bounds = [(round(s.start * sr), round(s.end * sr)) for s in segs]
    assert len(bounds) == len(set(bounds))
    assert sorted(bounds) == sorted(bounds_with_takes(len(x), sr, POLICY, [(13.0, None), (2.0, 3.0)]))
    assert (2 * sr, 5 * sr) in bounds and (13 * sr, 23 * sr) in bounds


def test_streamed_takes_match_the_unstreamed_bounds_for_random_markers(tmp_path):
    """Random markers and regions on files of several lengths (around the decoder's 20 s blocks
    and the window): the streamed segments are bounds_with_takes', each once, each the audio."""
    rng = np.random.default_rng(7)
    sr = 4000
    for seconds in (3.0, 10.0, 19.99, 20.0, 27.5, 45.0):
        x = chirp(100, 1500, seconds, sr)
        path = write(tmp_path / f"c{seconds}.wav", x, sr)
        for _ in range(4):
            markers = [(float(rng.uniform(0, seconds + 1)), None if rng.random() < 0.5 else float(rng.uniform(0, 12)))
                       for _ in range(int(rng.integers(1, 8)))]
            segs = list(iter_segments(path, sr, POLICY, markers=markers))
            bounds = [(round(s.start * sr), round(s.end * sr)) for s in segs]
            assert sorted(bounds) == sorted(bounds_with_takes(len(x), sr, POLICY, markers)), (seconds, markers)
            assert len(bounds) == len(set(bounds))
            for s, (a, b) in zip(segs, bounds):
                np.testing.assert_allclose(s.waveform, x[a:b], atol=1e-4)


def test_an_mp3_decodes_without_clicks_at_block_boundaries(tmp_path):
    """soundfile seeks after every read, and an MP3 seek (libmpg123's) decodes the frame again
    not exactly (up to 0.35 off: a click every block); engine.audio reads an MP3 without that
    seek, so the streamed decode equals one whole read (tests/test_mp3_blocks.py: more kinds)."""
    import soundfile as sf

    from engine.audio import iter_blocks
    sr = 44100
    t = np.arange(45 * sr) / sr
    x = (0.3 * np.sin(2 * np.pi * (200 + 30 * t) * t)).astype(np.float32)
    path = tmp_path / "sweep.mp3"
    sf.write(str(path), np.stack([x, 0.5 * x], 1), sr, format="MP3")
    with sf.SoundFile(str(path)) as f:
        whole = f.read(dtype="float32").mean(axis=1)
    streamed = np.concatenate(list(iter_blocks(path, sr, block_seconds=20.0)))
    assert len(streamed) == len(whole)
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


def test_downmix_is_the_mean_of_the_channels():
    rng = np.random.default_rng(3)
    for channels in range(1, 11):
        data = rng.standard_normal((999, channels)).astype(np.float32)
        mono = downmix(data)
        assert mono.shape == (999,) and mono.dtype == np.float32
        if channels < 8:          # the same sum in the same order as numpy's mean
            assert np.array_equal(mono, data.mean(axis=1))
        else:                     # numpy sums 8 or more in pairs: the last bit may differ
            np.testing.assert_allclose(mono, data.mean(axis=1), rtol=0, atol=1e-6)
    assert not np.shares_memory(downmix(data), data)
