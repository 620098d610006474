"""An excerpt of a lossy recording is written as 16-bit WAV whichever decoder reads it: the AAC of
an M4A voice memo or download, WMA, AC-3, as MP3, Vorbis and Opus were (session 41: an M4A's
excerpt came out 24-bit, half as large again for nothing the codec kept, while engine.keeper
called the same file lossy). Lossless codecs WAV cannot hold (ALAC, WavPack) still give 24-bit."""
from __future__ import annotations

import io

import numpy as np
import soundfile as sf

from engine.export import excerpt_subtype, excerpt_wav
from tests.ffmpeg_files import encode

SR = 44_100


def _stereo(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 660 * t)]).astype(np.float32)


def test_lossy_codecs_ffmpeg_reads_give_16_bit_excerpts():
    for codec in ("AAC", "WMAV2", "AC3", "EAC3", "MP2", "AMRNB", "LIBOPENCORE_AMRNB"):
        assert excerpt_subtype(codec) == "PCM_16", codec
    for codec in ("ALAC", "WAVPACK", "ALAC_24"):
        assert excerpt_subtype(codec) == "PCM_24", codec
    assert excerpt_subtype("PCM_24") == "PCM_24" and excerpt_subtype("VORBIS") == "PCM_16"


def test_an_m4a_voice_memos_excerpt_is_16_bit(tmp_path):
    memo = encode(tmp_path / "memo.m4a", "aac", _stereo(3.0), SR)
    data, start, end = excerpt_wav(memo, 1.0, 2.0)
    info = sf.info(io.BytesIO(data))
    assert (info.subtype, info.samplerate, info.channels) == ("PCM_16", SR, 2)
    assert (start, end) == (1.0, 2.0)
