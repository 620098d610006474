"""Review of session 33's commits: what its own tests left open."""
from __future__ import annotations

import pytest

from engine.errors import ModelUnavailable
from engine.models import load_model

TEXT_TOKENS_ENV = "SOUNDSIFT_CLAP_TEXT_TOKENS"      # as README documents it


@pytest.mark.parametrize("value", ["²", "7" * 5000])
def test_a_text_limit_python_cannot_read_as_a_number_is_one_clear_error(tiny_clap_dir, monkeypatch, value):
    """A superscript digit passes str.isdigit() and a 5000-digit number is more than int() reads:
    both got int()'s bare ValueError ("invalid literal for int()", "Exceeds the limit"), which
    names neither the variable nor what it takes."""
    monkeypatch.setenv(TEXT_TOKENS_ENV, value)
    with pytest.raises(ModelUnavailable) as e:
        load_model(tiny_clap_dir)
    assert str(e.value).startswith(f"${TEXT_TOKENS_ENV}={value!r}: expected a whole number of tokens from 3 to ")


def test_a_cue_point_at_the_end_of_a_pcm_wav_with_a_partial_frame_is_past_the_end(tmp_path):
    """A data chunk one byte longer than its whole frames (a damaged or oddly written file):
    libsndfile reads 16000 frames; the frames the markers are checked against were counted by
    rounding the bytes up to a block, as for ADPCM, whose last block cut short still holds
    frames. A PCM frame cut short is no frame, so the cue at 16000 marked the end of the audio
    as a take ("0:01.00 End") instead of being left out with a note, as it was before."""
    import soundfile as sf

    from engine.file_metadata import Marker, named_markers, read_metadata
    from tests.conftest import noise
    from tests.test_bad_inputs import pcm16, wav_bytes
    from tests.test_file_metadata import adtl_chunk, cue_chunk

    labels = adtl_chunk((b"labl", 1, "End"), (b"labl", 2, "Mid"))
    path = tmp_path / "odd.wav"
    path.write_bytes(wav_bytes(pcm16(noise(1.0, 16000)) + b"\x00", extra_chunks=cue_chunk((1, 16000), (2, 8000)) + labels))
    assert sf.info(str(path)).frames == 16000
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.50 Mid"
    assert problems == ["1 cue marker(s) past the end of the audio (1.00 s) left out: End"]
    assert named_markers(path) == [Marker(0.5, "Mid")]


def test_a_time_reference_a_sample_before_the_minute_is_said_as_the_minute(tmp_path):
    """The note on sync points earlier than the time reference says it as hh:mm:ss.sss: one
    sample before 10:01:00 at 16 kHz read "10:00:60.000" (the seconds rounded up to 60 after
    the minutes were taken off)."""
    from engine.file_metadata import read_metadata
    from tests.conftest import noise
    from tests.test_bad_inputs import pcm16, wav_bytes
    from tests.test_file_metadata import sync_point
    from tests.test_metadata_leftovers33 import _bext, _ixml

    start = (10 * 3600 + 60) * 16000 - 1                     # 10:00:59.9999375
    points = [sync_point(start - 16000, "Slate", "ABSOLUTE"), sync_point(start + 8000, "Car pass", "ABSOLUTE")]
    path = tmp_path / "roadside.wav"
    path.write_bytes(wav_bytes(pcm16(noise(1.0, 16000)), extra_chunks=_bext(start) + _ixml(points)))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.50 Car pass"
    assert problems == ["1 iXML sync point(s) before the file's start left out (earlier than its bext time "
                        "reference, 10:01:00.000): Slate"]
