"""Moving to an exact frame, tiny files and AAC's length (engine.audio, engine.ffmpeg_audio).

libsndfile's seek in an Ogg file is not sample-exact (Vorbis: 48–88 frames late into the last
page; Opus: the decoder unsettled after it), so the player, export and the block reader all move
by one rule, :func:`engine.audio.go_to_frame`: a seek where ``seeks_exactly`` says it lands,
else a seek two seconds early and a read up to the frame, which gives what a read from the start
gives (Ogg: bit for bit; MP3: to float rounding) without reading the hour before a late moment. An M4A's AAC reads as long as the sound encoded: FFmpeg drops the
encoder's priming, engine.ffmpeg_audio its padding. Files of 0 and 1 samples are one clear
message or a valid result."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.audio import (SEEK_PREROLL_SECONDS, decode, go_to_frame, iter_segments, open_sound, probe,
                          read_frames, seeks_exactly)
from engine.errors import UnreadableAudio
from engine.export import excerpt_wav
from engine.segments import SegmentPolicy
from tests.ffmpeg_files import encode
from ui.components.player import wav_excerpt

#: name → (format, subtype, rate, seconds): the sounds whose "move to a frame" is checked
KINDS = {"vorbis": ("OGG", "VORBIS", 44100, 10.0), "opus": ("OGG", "OPUS", 16000, 5.3),
         "mp3": ("MP3", None, 44100, 4.0), "flac": ("FLAC", "PCM_16", 44100, 4.0),
         "wav": ("WAV", "PCM_16", 44100, 2.0), "sd2": ("SD2", "PCM_24", 48000, 2.0)}
READ = 2048


def _chirp_and_noise(sr: int, seconds: float, channels: int = 1) -> np.ndarray:
    """(n, channels) float32: a rising chirp over a little noise, so any shift shows."""
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t) + 0.05 * np.random.default_rng(1).standard_normal(t.size)
    return np.stack([x, 0.5 * x][:channels], 1).astype(np.float32)


@pytest.fixture(scope="module")
def sounds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("seek")
    out = {}
    for name, (fmt, subtype, sr, seconds) in KINDS.items():
        out[name] = folder / f"{name}.{fmt.lower()}"
        sf.write(str(out[name]), _chirp_and_noise(sr, seconds), sr, format=fmt, subtype=subtype)
    return out


def _whole(path: Path) -> np.ndarray:
    with open_sound(path) as f:
        return read_frames(f, f.frames)


#: libsndfile's Opus reader gives other samples for an Opus file's last 48–155 frames when a read
#: ends among them, however the file was moved (a read from the start too): positions there are
#: not checked in an Opus file
OPUS_END = 200


def _positions(n: int, sr: int, end: int = 0) -> list[int]:
    """The start, page and block boundaries, frames all along and many in the last 20000 (an Ogg
    file's last page), the last frames (but ``end``)."""
    return sorted(at for at in {0, 1, 2, 1023, 1024, 1025, 4096, n // 2, n - sr // 2, n - 300, n - 100, n - 1,
                                *range(0, n, 1999), *range(max(0, n - 20000), n, 331)} if at < n - end)


def _off(path: Path, move, positions: list[int], whole: np.ndarray, tolerance: float = 0.0) -> list[int]:
    """The positions where ``move(f, position)`` then a read is not the whole read's slice (to
    ``tolerance``)."""
    off = []
    for at in positions:
        with open_sound(path) as f:
            move(f, at)
            got = read_frames(f, READ)
        want = whole[at:at + READ]
        if got.shape != want.shape or np.abs(got - want).max(initial=0.0) > tolerance:
            off.append(at)
    return off


@pytest.mark.parametrize("kind", ["vorbis", "opus"])
def test_the_fixture_is_an_ogg_file_libsndfile_seeks_in_inexactly(sounds, kind):
    """Without this, the tests below could not fail. When it fails, libsndfile's Ogg seek has
    become exact and OGG can join engine.audio.EXACT_SEEK_FORMATS (a seek instead of a read)."""
    path, whole = sounds[kind], _whole(sounds[kind])
    with open_sound(path) as f:
        assert f.format == "OGG" and not seeks_exactly(f)
    end = OPUS_END if kind == "opus" else 0
    assert _off(path, lambda f, at: f.seek(at), _positions(len(whole), KINDS[kind][2], end), whole, 1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_go_to_frame_gives_what_a_read_from_the_start_gives(sounds, kind):
    """Bit for bit, but an MP3 to float rounding (libmpg123 decodes its first frames after a
    seek a little differently even once settled)."""
    path, whole = sounds[kind], _whole(sounds[kind])
    end = OPUS_END if kind == "opus" else 0
    tolerance = 1e-6 if kind == "mp3" else 0.0
    assert _off(path, go_to_frame, _positions(len(whole), KINDS[kind][2], end), whole, tolerance) == []


@pytest.mark.parametrize("kind", ["wav", "flac", "sd2"])
def test_a_pcm_or_flac_file_is_sought_not_read_up_to_the_frame(sounds, kind):
    with open_sound(sounds[kind]) as f:
        assert seeks_exactly(f)


@pytest.mark.parametrize("kind", ["vorbis", "opus", "mp3"])
def test_a_late_moment_of_a_file_that_seeks_inexactly_is_reached_by_a_seek_not_the_whole_read(sounds, kind,
                                                                                             monkeypatch):
    """What is read and thrown away to reach a moment is the preroll, not everything before it."""
    import engine.audio as audio
    skipped: list[int] = []
    real = audio.skip_frames
    monkeypatch.setattr(audio, "skip_frames", lambda f, frames, block: (skipped.append(frames), real(f, frames, block)))
    path, whole = sounds[kind], _whole(sounds[kind])
    sr = KINDS[kind][2]
    at = len(whole) - sr // 2
    with open_sound(path) as f:
        go_to_frame(f, at)
        got = read_frames(f, 1000)
    assert skipped == [int(SEEK_PREROLL_SECONDS * sr)] and at > skipped[0]     # not the frames before it all
    np.testing.assert_allclose(got, whole[at:at + 1000], rtol=0, atol=1e-6)


def test_the_player_and_export_cut_a_late_moment_of_an_ogg_file_exactly(sounds):
    path = sounds["vorbis"]
    whole = _whole(path)
    at = len(whole) - 5000                        # in the last Ogg page, where the seek lands late
    played, rate = sf.read(io.BytesIO(wav_excerpt(str(path), at / 44100, 0.05)),
                           dtype="float32", always_2d=True)
    assert (len(played), rate) == (2205, 44100)
    assert np.abs(played - whole[at:at + len(played)]).max() <= 1 / 32768     # 16-bit WAV
    exported, _ = sf.read(io.BytesIO(excerpt_wav(path, at / 44100, len(whole) / 44100, fade=0.0)[0]),
                          dtype="float32", always_2d=True)
    assert len(exported) == 5000
    assert np.abs(exported - whole[at:]).max() <= 1 / 32768


def test_ffmpeg_read_files_move_exactly_too(tmp_path):
    path = encode_aac(tmp_path / "memo.m4a", _chirp_and_noise(44100, 2.0, 2).T)
    whole = _whole(path)
    assert _off(path, go_to_frame, _positions(len(whole), 44100), whole) == []


# -- AAC in M4A: the length of the sound encoded -------------------------------------------------

def encode_aac(path: Path, signal: np.ndarray, sr: int = 44100) -> Path:
    """(channels, n) ``signal`` as AAC in an M4A written by FFmpeg, with timestamps on its frames,
    so the encoder's priming is marked (a negative first timestamp → the M4A's edit list), as
    any encoder that writes M4A files marks it."""
    return encode(path, "aac", signal, sr)


def test_an_m4a_reads_as_long_as_the_sound_encoded_without_priming_or_padding(tmp_path):
    signal = _chirp_and_noise(44100, 2.0, 2).T                  # 88200 frames: not whole AAC frames
    path = encode_aac(tmp_path / "memo.m4a", signal)
    assert probe(path).frames == signal.shape[1]
    decoded = _whole(path)
    assert decoded.shape == (signal.shape[1], 2)                # the encoder's padding is not read
    lags = range(-2200, 2201)                                   # its priming is not read either
    left = decoded[:, 0]
    assert max(lags, key=lambda lag: float(np.dot(signal[0, 4096 + lag:-4096 + lag], left[4096:-4096]))) == 0
    assert len(decode(path, 16000)) == pytest.approx(2 * 16000, abs=2)


# -- files of 0 and 1 samples ---------------------------------------------------------------------

@pytest.mark.parametrize("fmt, subtype", [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("MP3", None)])
def test_a_one_sample_file_is_read_at_its_rate_and_said_too_short_at_the_models(tmp_path, fmt, subtype):
    path = tmp_path / f"one.{fmt.lower()}"
    sf.write(str(path), np.full((1, 1), 0.5, np.float32), 44100, format=fmt, subtype=subtype)
    assert probe(path).frames == 1
    assert len(decode(path, 44100)) == 1
    assert [len(s.waveform) for s in iter_segments(path, 44100, SegmentPolicy(10.0))] == [1]
    with pytest.raises(UnreadableAudio, match="too short: not one sample left once resampled to 16000 Hz"):
        decode(path, 16000)
    played, rate = sf.read(io.BytesIO(wav_excerpt(str(path), 3.0, 30.0)))
    assert (len(played), rate) == (1, 44100)


@pytest.mark.parametrize("fmt, subtype", [("WAV", "PCM_16"), ("OGG", "VORBIS")])
def test_a_file_emptied_since_it_was_indexed_is_said_to_hold_nothing_to_play(tmp_path, fmt, subtype):
    path = tmp_path / f"empty.{fmt.lower()}"
    sf.write(str(path), np.zeros((0, 1), np.float32), 44100, format=fmt, subtype=subtype)
    with pytest.raises(UnreadableAudio, match="empty: the file holds no samples"):
        probe(path)
    with pytest.raises(UnreadableAudio, match=r"empty\.[a-z]+: holds no audio to play from 0.00 s on"):
        wav_excerpt(str(path), 2.0, 30.0)


def test_the_player_starts_at_the_frame_a_time_names_as_export_does(tmp_path):
    """A start of ``k / rate`` seconds is frame k (export rounds; the player truncated, so 15/44100 s,
    which is 14.999… frames as a float, began a frame early)."""
    x = _chirp_and_noise(44100, 0.2)
    path = tmp_path / "x.wav"
    sf.write(str(path), x, 44100, subtype="FLOAT")
    for k in (15, 23, 30, 46, 53, 4410):
        played, _ = sf.read(io.BytesIO(wav_excerpt(str(path), k / 44100, 0.01)), dtype="float32", always_2d=True)
        assert np.abs(played[:10] - x[k:k + 10]).max() <= 1 / 32768, k
