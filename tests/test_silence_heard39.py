"""A clip the indexer calls digital silence (engine.segments.is_silent: dither, a codec's residue)
is embedded by soundsift's own models as the zeros it stands for, so a file of dithered silence is
tagged *Silence* and shares the vector of every other silent file, instead of being lifted into
noise by the towers (YAMNet by up to 40 dB, aisfx to full scale) and tagged *White noise*."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from engine.models import load_model
from engine.segments import SILENT_PEAK, is_silent
from engine.tagging import tag_files

pytestmark = pytest.mark.usefixtures("minilm_memo")


@pytest.fixture(scope="module")
def fast():
    return load_model("soundsift-fast")


def _dither(seconds: float, rate: int, seed: int = 0) -> np.ndarray:
    """16-bit TPDF dither over digital silence: two LSBs at most, about −84 dBFS peak."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    return ((rng.random(n) - rng.random(n)) * 2 / 32768).astype(np.float32)


def test_dithered_silence_is_embedded_as_digital_silence(fast):
    rate = int(fast.sample_rate)
    dither = _dither(3.0, rate)
    assert is_silent(dither) and float(np.max(np.abs(dither))) > 0     # silent to the indexer, not zeros
    zeros = np.zeros_like(dither)
    v_dither, v_zeros = fast.embed_audio([dither, zeros])
    assert float(v_dither @ v_zeros) > 0.9999


def test_quiet_sound_above_the_silence_floor_is_still_heard(fast):
    rate = int(fast.sample_rate)
    t = np.arange(int(3.0 * rate)) / rate
    quiet = (SILENT_PEAK * 30 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)   # −50 dBFS: lifted, heard
    v_quiet, v_zeros = fast.embed_audio([quiet, np.zeros_like(quiet)])
    assert float(v_quiet @ v_zeros) < 0.99


def test_a_file_of_dithered_silence_is_tagged_silence(fast, tmp_path):
    rate = 16000
    path = tmp_path / "dithered_silence.wav"
    sf.write(path, _dither(4.0, rate, seed=1), rate, subtype="PCM_16")
    tagged, failed = tag_files([path], model=fast, top=1)
    assert not failed
    assert tagged[0].tags[0]["label"] == "Silence"
