"""Export reaches its frames by the one rule, :func:`engine.audio.go_to_frame`, told where the
file is (``at``): an excerpt, its stream and any part of it hold the samples a read of the source
from its start gives — WAV, FLAC and Ogg Vorbis bit for bit, an MP3 to its decoder's float
rounding (1e-6: a 16-bit sample at most one step off) — from the file's first frame, the middle,
its last frames and across the stream's blocks; a part late in a long span is reached by a seek
and two seconds of decoding, not by decoding the span before it."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import engine.audio as audio
from engine.audio import SEEK_PREROLL_SECONDS, go_to_frame, open_sound, read_frames
from engine.export import excerpt_stream, excerpt_wav

SR = 44100
SECONDS = 8.0
N = int(SECONDS * SR)
#: name → (format, subtype); every source here is cut as 16-bit WAV
SOURCES = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"),
           "mp3": ("MP3", "MPEG_LAYER_III")}
#: 16-bit steps an excerpt's sample may be off the whole read's: an MP3's float rounding can
#: tip one sample over a step, nothing else may differ
STEPS = {"wav": 0, "flac": 0, "ogg": 0, "mp3": 1}
BLOCK_BYTES = 4000            # 500 stereo float32 frames a block: every span below crosses blocks
#: (first, last) frames: from the first frame, the middle (across many blocks), an Ogg file's
#: last page (where its seek lands late), the last frames, and one long span (parts > 2 s in)
SPANS = [(0, 3000), (N // 2 - 777, N // 2 + 5001), (N - 5000, N), (N - 1500, N), (123, N - 2345)]


def _chirp_and_noise(n: int) -> np.ndarray:
    """(n, 2) float32: a rising chirp over a little noise, right channel half the left."""
    t = np.arange(n) / SR
    x = 0.3 * np.sin(2 * np.pi * (200 + 300 * t) * t) + 0.05 * np.random.default_rng(3).standard_normal(n)
    return np.stack([x, 0.5 * x], 1).astype(np.float32)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("export_seek")
    out = {}
    for name, (fmt, subtype) in SOURCES.items():
        out[name] = folder / f"source.{name}"
        sf.write(str(out[name]), _chirp_and_noise(N), SR, format=fmt, subtype=subtype)
    return out


def _whole(path: Path) -> np.ndarray:
    """The source in one read from its start (float32, as export reads it)."""
    with open_sound(path) as f:
        return read_frames(f, f.frames)


def _as_16_bit(x: np.ndarray) -> np.ndarray:
    """``x`` as the 16-bit samples libsndfile writes for it (as an excerpt is written)."""
    buf = io.BytesIO()
    sf.write(buf, x, SR, format="WAV", subtype="PCM_16")
    return sf.read(io.BytesIO(buf.getvalue()), dtype="int16", always_2d=True)[0].astype(np.int32)


def _samples(wav: bytes) -> np.ndarray:
    return sf.read(io.BytesIO(wav), dtype="int16", always_2d=True)[0].astype(np.int32)


def _steps_off(got: np.ndarray, want: np.ndarray) -> int:
    assert got.shape == want.shape
    return int(np.abs(got - want).max(initial=0))


@pytest.mark.parametrize("name", SOURCES)
@pytest.mark.parametrize("first, last", SPANS)
def test_an_excerpt_and_its_stream_hold_the_whole_reads_samples(sources, name, first, last):
    path = sources[name]
    want = _as_16_bit(_whole(path)[first:last])
    wav, start, end = excerpt_wav(path, first / SR, last / SR, fade=0.0)
    assert (start, end) == (first / SR, last / SR)
    assert _steps_off(_samples(wav), want) <= STEPS[name]
    with excerpt_stream(path, first / SR, last / SR, block_bytes=BLOCK_BYTES) as stream:
        streamed = b"".join(stream)
    assert streamed == wav                      # read in blocks, it is the excerpt made in one read


def _part_starts(stream_length: int, header: int) -> list[int]:
    """Byte offsets: in the header, the first sample, block boundaries and inside blocks near the
    start, the middle, 2.5 s in (past the preroll), and the last bytes."""
    frame = 4                                   # stereo 16-bit
    return sorted({0, header - 1, header, header + 1999 * frame, header + 2000 * frame + 2,
                   header + (stream_length - header) // 2, header + int(2.5 * SR) * frame,
                   stream_length - 2001 * frame, stream_length - 2}
                  & set(range(stream_length)))


@pytest.mark.parametrize("name", SOURCES)
@pytest.mark.parametrize("first, last", SPANS)
def test_any_part_of_an_excerpt_is_those_bytes_of_the_whole_read(sources, name, first, last):
    """A part (an HTTP range) of the excerpt: the samples of the whole read, wherever it starts."""
    path = sources[name]
    want = _as_16_bit(_whole(path)[first:last])
    with excerpt_stream(path, first / SR, last / SR, block_bytes=BLOCK_BYTES) as stream:
        whole = b"".join(stream)
    header = stream.header_length
    for at in _part_starts(len(whole), header):
        with excerpt_stream(path, first / SR, last / SR, block_bytes=BLOCK_BYTES) as stream, \
                stream.part(at, len(whole) - 1) as part:
            got = b"".join(part)
        assert len(got) == len(whole) - at
        if STEPS[name] == 0:
            assert got == whole[at:], (name, at)
        else:                                   # the excerpt with this part in place of its end
            assert got[:max(0, header - at)] == whole[at:header]
            assert _steps_off(_samples(whole[:at] + got), want) <= STEPS[name], (name, at)


@pytest.mark.parametrize("name", ["ogg", "mp3"])
def test_a_part_taken_after_the_stream_was_sent_is_still_the_whole_reads(sources, name):
    """The file is then at the span's end: the part goes back by the rule (a seek two seconds
    early and a read), not by a bare seek, which in an MP3 is up to 0.36 off for its next frames
    and in an Ogg file's last page lands late."""
    path = sources[name]
    first, last = N - 5000, N
    want = _as_16_bit(_whole(path)[first:last])
    with excerpt_stream(path, first / SR, last / SR, block_bytes=BLOCK_BYTES) as stream:
        whole = b"".join(stream)
        header = stream.header_length
        with stream.part(header, len(whole) - 1) as part:
            again = b"".join(part)
    samples = np.frombuffer(again, "<i2").reshape(-1, 2).astype(np.int32)
    assert _steps_off(samples, want) <= STEPS[name]


@pytest.mark.parametrize("name", ["ogg", "mp3"])
def test_a_late_part_of_a_long_span_decodes_the_preroll_not_the_span_before_it(sources, name, monkeypatch):
    """Decoded to serve the last bytes of a 7.9 s excerpt: its first block (read when the stream
    is made), two seconds before the part, and the part; not the 7 s between."""
    path = sources[name]
    first, last = 123, N - 2345
    with excerpt_stream(path, first / SR, last / SR, block_bytes=BLOCK_BYTES) as stream:
        length = stream.length
    decoded: list[int] = []
    real = audio._read
    monkeypatch.setattr(audio, "_read", lambda f, frames: decoded.append(frames) or real(f, frames))
    tail_frames = 1000
    with excerpt_stream(path, first / SR, last / SR, block_bytes=BLOCK_BYTES) as stream, \
            stream.part(length - tail_frames * 4, length - 1) as part:
        assert len(b"".join(part)) == tail_frames * 4
    block = BLOCK_BYTES // 8
    assert sum(decoded) <= block + int(SEEK_PREROLL_SECONDS * SR) + tail_frames + 2 * block
    assert sum(decoded) < (last - first) / 2


def _moves(f: sf.SoundFile) -> list[int]:
    """The frames ``f`` is sought to from now on, elsewhere than where it is (soundfile's own
    seeks to where a read ended, and tell(), are not moves)."""
    moves: list[int] = []
    seek = f.seek

    def spy(frame: int, whence: int = sf.SEEK_SET) -> int:
        if whence == sf.SEEK_SET and frame != seek(0, sf.SEEK_CUR):
            moves.append(frame)
        return seek(frame, whence)
    f.seek = spy
    return moves


@pytest.mark.parametrize("name", SOURCES)
def test_go_to_frame_from_where_the_file_is(sources, name):
    """``at``: forward by up to the preroll it reads on (no seek: a just-opened MP3 sought to its
    start decodes a little differently); back, or further on, it seeks as from a just-opened file."""
    path = sources[name]
    whole = _whole(path)
    exact = audio.seeks_exactly
    preroll = int(SEEK_PREROLL_SECONDS * SR)
    tolerance = 1e-6 if name == "mp3" else 0.0
    for read_first, target in ((0, 0), (0, 1000), (3000, 3000), (3000, 3000 + preroll), (5000, 4000),
                               (5000, 5001), (SR, 7 * SR), (7 * SR, 100), (7 * SR, N - 300)):
        with open_sound(path) as f:
            read_frames(f, read_first)
            sought = _moves(f)
            go_to_frame(f, target, 4096, at=read_first)
            if not exact(f):
                near = read_first <= target <= read_first + preroll
                assert sought == ([] if near else [max(0, target - preroll)]), (read_first, target)
            got = read_frames(f, 2000)
        np.testing.assert_allclose(got, whole[target:target + 2000], rtol=0, atol=tolerance,
                                   err_msg=f"{name}: read {read_first}, then to {target}")
