"""Waveform thumbnails of files FFmpeg decodes (an M4A's AAC, ALAC, WavPack …): a long one is
sampled as a long WAV is, each read reached by the container's index
(:meth:`engine.ffmpeg_audio.FFmpegSound.seek_near`), and a card's moment decodes about that
moment, not the file before it; where the container does not seek, the file is read whole."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.audio import downmix, open_sound
from engine.ffmpeg_audio import NEAR_PREROLL, FFmpegSound
from tests.ffmpeg_files import count_ffmpeg_frames, encode
from ui.components import thumbnails

SR = 8000
SECONDS = 60
N = SECONDS * SR
EVENT = (40.0, 43.0)          # a loud tone, seconds
#: name → (suffix, codec, sample format)
KINDS = {"aac": (".m4a", "aac"), "alac": (".m4a", "alac"), "wavpack": (".wv", "wavpack")}


def _signal() -> np.ndarray:
    """(N,) float32: a quiet rising tone, and a loud 440 Hz tone over :data:`EVENT` (tones, not
    noise: AAC codes noise as noise, drawn anew after a seek)."""
    t = np.arange(N) / SR
    x = 0.1 * np.sin(2 * np.pi * (300 + 2 * t) * t)
    loud = (t >= EVENT[0]) & (t < EVENT[1])
    x[loud] += 0.8 * np.sin(2 * np.pi * 440 * t[loud])
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ffmpeg_thumbs")
    x = _signal()
    return {name: encode(folder / f"{name}{suffix}", codec, x, SR) for name, (suffix, codec) in KINDS.items()}


def _whole(path: Path) -> np.ndarray:
    with open_sound(path) as f:
        return f.read(dtype="float32", always_2d=True)


def _reference(mono: np.ndarray, columns: int) -> np.ndarray:
    """Every sample's min/max per column, as the thumbnail's envelope is defined."""
    edges = np.linspace(0, len(mono), columns + 1).astype(np.int64)
    return np.array([[mono[a:b].min(), mono[a:b].max()] for a, b in zip(edges[:-1], edges[1:])], np.float32)


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The frames FFmpeg decodes from now on (each decoded frame's length, converted to samples
    or not)."""
    return count_ffmpeg_frames(monkeypatch)


@pytest.mark.parametrize("kind", KINDS)
def test_seek_near_lands_on_the_frame_and_reads_what_a_read_from_the_start_gives(files, kind):
    """Forward and back, near the start (an AAC encoder's priming) and at the last frames."""
    whole = _whole(files[kind])
    with open_sound(files[kind]) as f:
        assert isinstance(f, FFmpegSound)
        for frame in (N // 2, 100, 0, 1, NEAR_PREROLL + 1, 3 * NEAR_PREROLL, 5000, 5000 + NEAR_PREROLL,
                      123_457, 40_000, N - 700, N - 1, 200_000):
            assert f.seek_near(frame) == frame
            got = f.read(3000, dtype="float32", always_2d=True)
            np.testing.assert_array_equal(got, whole[frame:frame + 3000], err_msg=f"{kind} at {frame}")


def test_seek_near_decodes_a_little_before_the_frame_not_the_file_before_it(files, decoded):
    with open_sound(files["aac"]) as f:
        decoded.clear()
        f.seek_near(N - 5000)
        f.read(1000)
    assert sum(decoded) <= 1000 + NEAR_PREROLL + 2 * 1024            # AAC frames are 1024 long


@pytest.mark.parametrize("kind", ["aac", "alac"])
def test_a_long_file_ffmpeg_reads_is_sampled_not_decoded_whole(files, kind, decoded):
    whole = downmix(_whole(files[kind]))
    decoded.clear()
    env = thumbnails.envelope(files[kind], columns=20, sample_above=10.0, reads_per_column=1, read_frames=256)
    assert 0 < sum(decoded) < N / 2
    loud = set(np.flatnonzero(env[:, 1] > 0.5))
    assert loud and loud <= {13, 14}                                # 40–43 s of 60 s: columns 13.3–14.3
    exact = _reference(whole, 20)
    assert (env[:, 1] <= exact[:, 1]).all() and (env[:, 0] >= exact[:, 0]).all()   # samples of each column
    assert (env[:, 1] > 0.05).all()                                 # every column read: the quiet tone shows


def test_a_cards_moment_in_a_long_m4a_decodes_about_that_moment(files, decoded, monkeypatch):
    """The thumbnail of a hit's span: the file sampled, then the columns under the span decoded
    in full (exactly those columns' samples), not the minute before them."""
    monkeypatch.setattr(thumbnails, "SAMPLE_ABOVE_S", 10.0)
    monkeypatch.setattr(thumbnails, "SAMPLE_READS", 1)
    monkeypatch.setattr(thumbnails, "SAMPLE_FRAMES", 256)
    thumbnails._CACHE.clear()
    path = files["aac"]
    whole = downmix(_whole(path))
    decoded.clear()
    sampled = thumbnails.file_envelope(path, columns=20).copy()
    overview = sum(decoded)
    decoded.clear()
    env = thumbnails.file_envelope(path, columns=20, span=EVENT)
    moment = sum(decoded)
    assert overview < N / 2
    columns = slice(13, 15)                                         # 39–45 s: the columns under 40–43 s
    assert moment <= 6 * SR + NEAR_PREROLL + 2 * 1024
    exact = _reference(whole, 20)
    np.testing.assert_array_equal(env[columns], exact[columns])
    np.testing.assert_array_equal(np.delete(env, [13, 14], axis=0), np.delete(sampled, [13, 14], axis=0))
    thumbnails._CACHE.clear()


def test_a_container_that_does_not_seek_is_read_whole(files, monkeypatch, decoded):
    def refuse(self, frame):
        raise ValueError("Operation not permitted")
    monkeypatch.setattr(FFmpegSound, "_seek_container", refuse)
    whole = downmix(_whole(files["aac"]))
    decoded.clear()
    env = thumbnails.envelope(files["aac"], columns=20, sample_above=10.0, reads_per_column=1, read_frames=256)
    np.testing.assert_array_equal(env, np.clip(_reference(whole, 20), -1, 1))
    assert N <= sum(decoded) <= N + 2 * NEAR_PREROLL + 4 * 1024     # the start decoded again, then the whole


def test_a_file_whose_packets_are_seconds_long_is_read_whole(files, decoded):
    """FFmpeg's WavPack encoder writes 8 s blocks at 8 kHz: each sampling read would decode one,
    more than the whole file in all, so it is read whole (every sample counted)."""
    with open_sound(files["wavpack"]) as f:
        assert f.near_frames() == NEAR_PREROLL + 2 * 64000
    whole = downmix(_whole(files["wavpack"]))
    decoded.clear()
    env = thumbnails.envelope(files["wavpack"], columns=20, sample_above=10.0, reads_per_column=1, read_frames=256)
    assert sum(decoded) == N
    np.testing.assert_array_equal(env, _reference(whole, 20))
