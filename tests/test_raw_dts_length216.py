"""A raw ``.dts`` stream's length is counted from its frames, as a raw AC-3's is
(tests/test_metadata_leftovers33.py), not taken from FFmpeg's guess from the bit rate of its start:
before session 42 (helper 216) 8 s joined from two bit rates said 18.7 s (and the indexer called it
"shorter than its header says"), and even one encoding at 48 kHz 4.0051 s for 4 s (its header's
nominal 1411.2 kbit/s is 1413). The frames of raw AC-3 and DTS at 44.1 kHz are counted whole
(their demuxers' 90 kHz ticks are not: an AC-3 came 39 frames short). An empty ``.dts`` or
``.ac3`` is "empty", not "invalid sample rate 0".

PyAV's FFmpeg has no DTS encoder, so the streams are built from one frame of silence each, as
FFmpeg's ``dca`` encoder writes it (``ffmpeg -f lavfi -i anullsrc=r=RATE:cl=stereo -c:a dca
-strict -2 -b:a RATE x.dts``; every frame of silence it writes is that frame), repeated."""
from __future__ import annotations

import base64
import zlib

import numpy as np
import pytest

from engine.audio import open_sound, probe
from engine.errors import UnreadableAudio
from engine.segments import SegmentPolicy
from indexer.decode import DecodeJob, FileDecoded, decode_file
from tests.conftest import noise
from tests.ffmpeg_files import encode

#: one DTS core frame of stereo silence (512 samples) by FFmpeg 5.1's encoder, zlib'd: (rate, kbit/s)
SILENT_FRAMES = {
    (48000, 1411): "eNqr/9fA+MemdMO2A4wWDMzv6x+w3Wb8//b//wcMDAoMEMC0be/76lvX1mZHXZoyZzH7zi6DJoE2LGItUPWMzeF5d3eX"
                   "XV0dxiNhkLAyaKmn/yyNAA8FQnKjYIgAJiUlpdEYG42yUTAaZaMAa5Qx///DwAAAPuU72A==",
    (44100, 384): "eNqr/9fA+MdG6cNCB0YLBub39Q/YTsrJ8W67ncAABAoMEMB4PWZnwdPT02NL31ff+5Zz1YGBPbbo6eHperGl1/e+r765"
                  "OZQBDhiZWDg8FBwamVgYMAA+OSUoYCAVKCEBlUmeaEg0NDQ0a1XDqEXUsMj+/wEA2ddPqA==",
    (44100, 1411): "eNqr/9fA+Mem/sOiA4wWDMzv6x+w3ZZ/+P/f/QcMDAoMEMB0be/H7nvXtmZHXduyVF3j4LukCQ5tWMRaoOoZV4fnPXAo"
                   "e7s6bI2EQcLBpqVeU1XtMhY6KjTglxsFww0wKSkpKYaGjAbEaNSOgtGoHQWDJmqZ//+BiAAAlZVEEw==",
}


def silent_frame(rate: int, kbits: int) -> bytes:
    frame = zlib.decompress(base64.b64decode(SILENT_FRAMES[rate, kbits]))
    assert frame.startswith(b"\x7f\xfe\x80\x01")             # a DTS core frame's sync word
    return frame


def frames_said_and_read(path) -> tuple[int, int]:
    """The frames ``probe`` gives ``path`` and the frames a read of it gives."""
    with open_sound(path) as f:
        read = len(f.read(dtype="float32"))
    return probe(path).frames, read


def test_one_encoding_at_48k_is_as_long_as_its_frames(tmp_path):
    path = tmp_path / "one.dts"
    path.write_bytes(silent_frame(48000, 1411) * 375)          # 4 s
    assert frames_said_and_read(path) == (375 * 512, 375 * 512)    # (FFmpeg's guess: 192,245)


@pytest.mark.parametrize("order", ["low_high", "high_low"])
def test_two_bit_rates_joined_at_44k_are_as_long_as_their_frames(tmp_path, order):
    low, high = silent_frame(44100, 384) * 172, silent_frame(44100, 1411) * 172   # 2 s each
    path = tmp_path / f"{order}.dts"
    path.write_bytes(low + high if order == "low_high" else high + low)
    assert frames_said_and_read(path) == (344 * 512, 344 * 512)    # (FFmpeg's guess: 9.35 s or 2.54 s)
    done = list(decode_file(DecodeJob(0, str(path)), 16000, SegmentPolicy(1.0)))[-1]
    assert isinstance(done, FileDecoded) and done.notes == []      # (not "shorter than its header says")
    assert done.info.duration == pytest.approx(344 * 512 / 44100)


def test_a_raw_ac3_at_44k_is_counted_in_whole_frames(tmp_path):
    path = encode(tmp_path / "x.ac3", "ac3", noise(4.0, 44100, seed=3), 44100, timestamps=False)
    said, read = frames_said_and_read(path)
    assert said == read and said % 1536 == 0                     # (176,601 said of 176,640)


@pytest.mark.parametrize("suffix", [".dts", ".ac3"])
def test_an_empty_raw_stream_is_empty(tmp_path, suffix):
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    with pytest.raises(UnreadableAudio, match="empty: the file is 0 bytes"):
        probe(path)


def test_the_silence_decodes_as_silence(tmp_path):
    path = tmp_path / "one.dts"
    path.write_bytes(silent_frame(48000, 1411) * 4)
    with open_sound(path) as f:
        assert (f.samplerate, f.channels, f.subtype) == (48000, 2, "DCA")
        np.testing.assert_array_equal(f.read(dtype="float32"), np.zeros((4 * 512, 2), np.float32))
