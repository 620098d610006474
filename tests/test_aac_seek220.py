"""A seek in an M4A's AAC goes by the container's index, not by decoding from the start.

:meth:`engine.ffmpeg_audio.FFmpegSound.seek` in AAC-LC goes by the index to two packets before
the frame and decodes on, each frame decoded by two decoders whose random states differ: frames
both decode alike did not draw on the state (no noise band, PNS) and are what a decode from the
start gives; from the first that differs on, the frames are a decode from the start's. So a
part near the end of a long M4A whose encoder coded no band as noise (FFmpeg's with ``aac_pns``
off) costs about that part, and every sample read after a seek, wherever, is the
one a read from the start gives. Raw streams (ADTS ``.aac``, AC-3, MP2) have no index: still
decoded from the start, exactly, and so is an Ogg Vorbis file FFmpeg reads (one libsndfile
refuses): FFmpeg's timestamps misplace a page's packets where its blocks change size."""
from __future__ import annotations

import fractions
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import engine.ffmpeg_audio as ffmpeg_audio
from engine.ffmpeg_audio import FFmpegSound
from tests.ffmpeg_files import count_ffmpeg_frames, encode, seek_signal

SR = 44100
SECONDS = 30


def _signal(rate: int, seconds: float = SECONDS, channels: int = 2) -> np.ndarray:
    return seek_signal(rate, seconds, channels, seed=7)


def _vorbis(path: Path, x: np.ndarray, rate: int, start: int = 0) -> Path:
    """``x`` (2, n) as Ogg Vorbis by FFmpeg's own (experimental) encoder, its timestamps from ``start``."""
    import av
    with av.open(str(path), "w", format="ogg") as out:
        stream = out.add_stream("vorbis", rate=rate, layout="stereo", options={"strict": "-2"})
        stream.codec_context.format = "fltp"
        for i in range(0, x.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i:i + 1024]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = rate, start + i, fractions.Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _libsndfile_vorbis(path: Path, x: np.ndarray, rate: int) -> Path:
    sf.write(str(path), np.ascontiguousarray(x.T), rate, format="OGG", subtype="VORBIS")
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("aac_seek")
    x, no_pns = _signal(SR), {"aac_pns": "0"}
    return {
        "m4a": encode(folder / "plain.m4a", "aac", x, SR, codec_options=no_pns),          # no noise bands
        "m4a_mono_8k": encode(folder / "mono.m4a", "aac", _signal(8000, channels=1)[0], 8000, codec_options=no_pns),
        "m4a_pns": encode(folder / "noise.m4a", "aac", x, SR),                            # noise bands (PNS)
        "adts": encode(folder / "raw.aac", "aac", _signal(SR, 12), SR, container="adts"),
        "ac3": encode(folder / "raw.ac3", "ac3", _signal(SR, 12), SR),
        "mp2": encode(folder / "raw.mp2", "mp2", _signal(SR, 12, channels=1)[0], SR),
        "vorbis": _libsndfile_vorbis(folder / "a.ogg", _signal(SR, 12), SR),
        "vorbis_ffmpeg_offset": _vorbis(folder / "b.ogg", _signal(SR, 12), SR, start=1105),
        "vorbis_one_page": _libsndfile_vorbis(folder / "c.ogg", _signal(SR, 1.0), SR),     # a 1 s sound
    }


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The frames FFmpeg decodes or demuxes from now on."""
    return count_ffmpeg_frames(monkeypatch, demuxed=True)


def _whole(path: Path) -> np.ndarray:
    with FFmpegSound(str(path)) as f:
        return f.read(dtype="float32", always_2d=True)


def _positions(n: int, rate: int) -> list[int]:
    """The start, the first packet's boundary and either side, the preroll's, the middle, the
    last second and frame, past the end, at random and back again."""
    rng = np.random.default_rng(3)
    return [0, 1023, 1024, 1025, 2048, 2049, 3073, n // 2, n - rate, n - 1024, n - 1, n, n + 99,
            *(int(p) for p in rng.integers(0, n, 16)), 5000, n // 3, 100]


@pytest.mark.parametrize("kind", ["m4a", "m4a_mono_8k", "m4a_pns", "adts", "ac3", "mp2", "vorbis",
                                  "vorbis_ffmpeg_offset", "vorbis_one_page"])
def test_what_is_read_after_a_seek_is_what_a_read_from_the_start_gives(files, kind):
    whole = _whole(files[kind])
    n = len(whole)
    with FFmpegSound(str(files[kind])) as f:
        assert f.frames == n
        for frame in _positions(n, f.samplerate):
            assert f.seek(frame) == min(frame, n), f"{kind} at {frame}"
            got = f.read(12000, dtype="float32", always_2d=True)
            np.testing.assert_array_equal(got, whole[frame:frame + 12000], err_msg=f"{kind} at {frame}")
        f.seek(n // 4)
        np.testing.assert_array_equal(f.read(dtype="float32", always_2d=True), whole[n // 4:])


def test_the_noise_file_has_frames_a_plain_seek_reads_otherwise(files, monkeypatch):
    """The check above means something: sought by the index without the second decoder, the
    M4A with noise bands reads otherwise than from the start somewhere (its noise drawn anew)."""
    monkeypatch.setitem(ffmpeg_audio.SEEK_PREROLL_FRAMES, "aac", 2048)
    monkeypatch.setattr(ffmpeg_audio, "CHECKED_CODECS", frozenset(), raising=False)
    whole = _whole(files["m4a_pns"])
    n, differ = len(whole), 0
    with FFmpegSound(str(files["m4a_pns"])) as f:
        for frame in _positions(n, SR):
            f.seek(frame)
            differ += not np.array_equal(f.read(12000, dtype="float32", always_2d=True), whole[frame:frame + 12000])
    assert differ


@pytest.mark.parametrize("kind", ["m4a", "m4a_mono_8k"])
def test_the_last_seconds_of_an_m4a_decode_about_those_seconds_not_the_file(files, kind, decoded):
    with FFmpegSound(str(files[kind])) as f:
        n, rate = f.frames, f.samplerate
        decoded.clear()
        assert f.seek(n - 2 * rate) == n - 2 * rate
        assert len(f.read(rate)) == rate
    first_two = 2 * 1024                                  # the timestamps' origin, found once
    assert 0 < sum(decoded) <= rate + 2048 + 2 * 1024 + first_two
    assert sum(decoded) < n / 4


def test_an_export_of_an_m4as_last_second_decodes_about_that_second(files, decoded):
    """The product's call: engine.export's excerpt (the page's download, ``search --export``)."""
    from engine.export import excerpt_wav
    decoded.clear()
    data, start, end = excerpt_wav(files["m4a"], SECONDS - 1.0, SECONDS, fade=0.0)
    assert (start, end) == (SECONDS - 1.0, SECONDS)
    assert 0 < sum(decoded) < SECONDS * SR / 4


def test_where_the_decoders_part_the_rest_is_a_decode_from_the_starts(files, decoded):
    """A seek into the noise bursts of the M4A with noise bands goes back to its start (every
    frame before the one sought decoded), and reads what a read from the start gives."""
    whole = _whole(files["m4a_pns"])
    frame = 11 * SR                                      # sin(3 t) > 0.5: inside a burst of noise
    with FFmpegSound(str(files["m4a_pns"])) as f:
        decoded.clear()
        f.seek(frame)
        got = f.read(4 * SR, dtype="float32", always_2d=True)
    np.testing.assert_array_equal(got, whole[frame:frame + 4 * SR])
    assert sum(decoded) >= frame


@pytest.mark.parametrize("profile, config, rate, channels, checked", [
    ("LC", bytes([0x12, 0x10]), 44100, 2, True),         # AudioSpecificConfig: LC, 44.1 kHz, stereo
    ("LC", bytes([0x11, 0x88]), 48000, 1, True),         # LC, 48 kHz, mono
    ("HE-AAC", bytes([0x12, 0x10]), 44100, 2, False),    # SBR said by the decoder
    ("LC", bytes([0x13, 0x90]), 44100, 2, False),        # 22.05 kHz decoded at 44.1: implicit SBR
    ("LC", bytes([0x11, 0xB0]), 48000, 6, False),        # 5.1: no noise frame written for it
    ("LC", b"", 44100, 2, False),                        # no AudioSpecificConfig
], ids=["lc_stereo", "lc_mono", "he_aac", "implicit_sbr", "five_one", "no_config"])
def test_only_aac_lc_in_one_or_two_channels_is_sought_by_the_index(profile, config, rate, channels, checked):
    """HE-AAC's SBR keeps state a seek loses that the second decoder would not show: such a
    stream, and one whose noise frame is not written, is decoded from the start."""
    from types import SimpleNamespace
    context = SimpleNamespace(extradata=config, profile=profile, sample_rate=rate,
                              layout=SimpleNamespace(channels=[None] * channels))
    packet = ffmpeg_audio._aac_noise_packet(SimpleNamespace(codec_context=context))
    assert (packet is not None) == checked
