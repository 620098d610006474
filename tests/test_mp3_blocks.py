"""An MP3 streamed in blocks decodes sample for sample as one whole read, for MPEG-1 (1152
samples a frame) and MPEG-2 (576) files, at any block length and from a start point.

soundfile seeks libsndfile after every read, and for an MP3 libmpg123 then decodes the frame
it was in again, not exactly (engine.audio._read_mp3): a click at each block boundary. The
MP3s here are ones where that happens (a chirp, right channel half the left, VBR)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

import engine.audio as audio
from engine.audio import downmix, iter_blocks

#: (rate, channels, bitrate mode): MPEG-1 Layer III above 24 kHz, MPEG-2 at 16–24 kHz; read in
#: 2400-frame blocks by soundfile itself, each is 0.32–0.36 off somewhere
KINDS = {"mpeg1": (44100, 2, "VARIABLE"), "mpeg2": (24000, 2, "VARIABLE"),
         "mpeg2-mono": (16000, 1, "CONSTANT")}


def _chirp(sr: int, channels: int, seconds: float = 4.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * (100 + 0.006 * sr * t) * t)
    return np.stack([x, 0.5 * x][:channels], 1).astype(np.float32)


@pytest.fixture(scope="module")
def mp3s(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("mp3")
    out = {}
    for name, (sr, channels, mode) in KINDS.items():
        out[name] = folder / f"{name}.mp3"
        sf.write(str(out[name]), _chirp(sr, channels), sr, format="MP3", bitrate_mode=mode)
    return out


def _whole(path: Path) -> np.ndarray:
    """The file in one read, mixed to mono as iter_blocks mixes it."""
    with sf.SoundFile(str(path)) as f:
        return downmix(f.read(dtype="float32", always_2d=True))


def _streamed(path: Path, target_sr: int, **kw) -> np.ndarray:
    return np.concatenate(list(iter_blocks(path, target_sr, **kw)))


@pytest.mark.parametrize("kind", KINDS)
def test_the_fixture_is_an_mp3_that_soundfile_reads_wrong_in_blocks(mp3s, kind):
    """Without this, the tests below could not fail. When it fails, soundfile or libsndfile
    no longer corrupt block reads and engine.audio._read_mp3 can become f.read again."""
    path = mp3s[kind]
    with sf.SoundFile(str(path)) as f:
        blocks = [b for b in f.blocks(2400, dtype="float32", always_2d=True)]
    assert sf.info(str(path)).format == "MP3"
    assert not np.array_equal(downmix(np.concatenate(blocks)), _whole(path))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("block_seconds", [0.01, 0.1, 0.37, 1.0])
def test_blocks_equal_one_whole_read(mp3s, kind, block_seconds):
    # soundsift's block length formula, max(1024, block_seconds × rate), at lengths a short file has
    path = mp3s[kind]
    sr = KINDS[kind][0]
    np.testing.assert_array_equal(_streamed(path, sr, block_seconds=block_seconds), _whole(path))


@pytest.mark.parametrize("kind", KINDS)
def test_resampled_blocks_equal_the_whole_read_resampled(mp3s, kind):
    sr = KINDS[kind][0]
    whole = soxr.ResampleStream(sr, 16000, 1, dtype="float32", quality="HQ").resample_chunk(
        _whole(mp3s[kind]), last=True)
    np.testing.assert_array_equal(_streamed(mp3s[kind], 16000, block_seconds=0.1), whole)


@pytest.mark.parametrize("kind", KINDS)
def test_blocks_from_a_start_point_equal_the_whole_read_from_there(mp3s, kind):
    sr = KINDS[kind][0]
    first = int(1.3 * sr)
    np.testing.assert_array_equal(_streamed(mp3s[kind], sr, block_seconds=0.1, start_seconds=1.3),
                                  _whole(mp3s[kind])[first:])


def test_an_mp3_is_read_in_blocks_not_whole(mp3s, monkeypatch):
    """Memory stays one block, however long the MP3."""
    sizes: list[int] = []
    read = audio._read_mp3

    def spy(f, frames):
        sizes.append(frames)
        return read(f, frames)

    monkeypatch.setattr(audio, "_read_mp3", spy)
    _streamed(mp3s["mpeg1"], 44100, block_seconds=0.1)
    assert len(sizes) >= 40 and max(sizes) == 4410


def test_a_cut_mp3_streams_as_its_whole_read(mp3s, tmp_path):
    """An MP3 cut short mid-frame (a partial download) decodes up to the cut either way."""
    data = mp3s["mpeg2"].read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: len(data) // 2 + 77])
    notes: list[str] = []
    streamed = _streamed(cut, 24000, block_seconds=0.1, notes=notes)
    assert len(streamed) > 24000
    np.testing.assert_array_equal(streamed, _whole(cut))


@pytest.mark.parametrize("kind", KINDS)
def test_an_excerpt_of_an_mp3_is_the_samples_of_one_whole_read(mp3s, kind):
    """engine.export cuts an MP3's span as 16-bit WAV: its samples are those of one whole read
    (to 16-bit rounding), not those after an MP3 seek (up to 0.36 off for a few MP3 frames), and
    the preview streamed in small blocks is the same bytes as the excerpt made in one piece."""
    from engine.export import excerpt_stream, excerpt_wav
    path = mp3s[kind]
    with sf.SoundFile(str(path)) as f:
        whole, rate = f.read(dtype="float32", always_2d=True), f.samplerate
    wav, start, end = excerpt_wav(path, 1.3, 3.1, fade=0.0)
    cut = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)[0]
    first = int(round(1.3 * rate))
    assert start == first / rate and len(cut) == int(round(3.1 * rate)) - first
    np.testing.assert_allclose(cut, whole[first:first + len(cut)], rtol=0, atol=1.5 / 32768)
    for block_bytes in (4000, 65_536):
        with excerpt_stream(path, 1.3, 3.1, block_bytes=block_bytes) as stream:
            assert b"".join(stream) == wav
            with excerpt_stream(path, 1.3, 3.1, block_bytes=block_bytes) as again, \
                    again.part(stream.length // 2, stream.length - 1) as part:
                assert b"".join(part) == wav[stream.length // 2:]


@pytest.mark.parametrize("kind", KINDS)
def test_the_pages_player_excerpt_of_an_mp3_is_the_whole_reads_samples(mp3s, kind):
    """The page plays a large MP3 as a WAV excerpt from the match: read up to there, not sought."""
    from ui.components.player import wav_excerpt
    path = mp3s[kind]
    with sf.SoundFile(str(path)) as f:
        whole, rate = f.read(dtype="float32", always_2d=True), f.samplerate
    played = sf.read(io.BytesIO(wav_excerpt(str(path), 1.3, 1.0)), dtype="float32", always_2d=True)[0]
    first = int(1.3 * rate)
    assert len(played) == rate
    np.testing.assert_allclose(played, whole[first:first + rate], rtol=0, atol=1.5 / 32768)


@pytest.mark.parametrize("kind", KINDS)
def test_a_training_crop_of_an_mp3_is_the_whole_reads_samples(mp3s, kind, monkeypatch):
    """trainer.datasets.load_clip reads a random crop around its place (a seek, then a second of
    pre-roll for an MP3): the crop equals that part of one whole read, to float rounding."""
    from trainer.datasets import load_clip
    path = mp3s[kind]
    with sf.SoundFile(str(path)) as f:
        rate = f.samplerate
        whole = downmix(f.read(dtype="float32", always_2d=True))
    starts = []
    real = np.random.default_rng(5)

    class Remembering:
        def integers(self, lo, hi):
            starts.append(int(real.integers(max(lo, 2 * rate), hi)))   # deep enough for a seek to matter
            return starts[-1]
    crop = load_clip(str(path), rate, 0.5, Remembering())
    assert len(crop) == rate // 2
    np.testing.assert_allclose(crop, whole[starts[0]:starts[0] + rate // 2], rtol=0, atol=1e-6)
