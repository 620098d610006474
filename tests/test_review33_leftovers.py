"""Leftovers of session 33's review: a RELATIVE iXML sync point before the file's start given its
own reason, a GSM 6.10 WAV's markers checked against the frames libsndfile decodes (not its fact
chunk's count; for a WAV cut short, not its data chunk's size), a numpy integer accepted as a CLAP text limit, ``soundsift train --out`` checked
before torch loads, and a WAV's iXML sync points used where none of its named cue points is placed."""
from __future__ import annotations

import io
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from engine.file_metadata import Marker, named_markers, read_metadata
from tests.conftest import noise, tone
from tests.test_bad_inputs import pcm16, wav_bytes
from tests.test_file_metadata import adtl_chunk, cue_chunk, sync_point
from tests.test_metadata_leftovers33 import _bext, _cue_chunk, _ixml, _with_chunks

RATE = 16000


def test_a_relative_sync_point_with_a_negative_offset_is_said_as_such(tmp_path):
    """A RELATIVE point counts from the file's start, whatever the time reference: one at -4000
    samples was said to be "earlier than its bext time reference", the reason for an ABSOLUTE
    one. Each now has its own note, the ABSOLUTE one's unchanged (since session 34 the RELATIVE
    one's says its count is not one: tests/test_ixml_sync_point_counts.py)."""
    start = 10 * 3600 * RATE
    points = [sync_point(0, "Bump", low="-4000"), sync_point(start - RATE, "Slate", "ABSOLUTE"),
              sync_point(8000, "Car pass")]
    path = tmp_path / "roadside.wav"
    path.write_bytes(wav_bytes(pcm16(noise(1.0, RATE)), extra_chunks=_bext(start) + _ixml(points)))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.50 Car pass"
    assert problems == [
        "1 iXML sync point(s) left out (SYNC_POINT_LOW holds '-4000', not a sample count): Bump",
        "1 iXML sync point(s) before the file's start left out (earlier than its bext time reference, "
        "10:00:00.000): Slate"]


def _gsm_wav(frames: int) -> bytes:
    """A mono 8 kHz GSM 6.10 WAV written by libsndfile: its fact chunk says ``frames``, its
    65-byte blocks of 320 frames hold more."""
    buf = io.BytesIO()
    sf.write(buf, tone(440, frames / 8000, 8000, amp=0.3), 8000, format="WAV", subtype="GSM610")
    data = buf.getvalue()
    assert struct.unpack_from("<I", data, data.index(b"fact") + 8)[0] == frames
    return data


@pytest.mark.parametrize("fact, decoded", [(16104, 16640), (16000, 16000), (1000, 1280)])
def test_a_gsm_wavs_markers_are_kept_up_to_the_frames_libsndfile_decodes(tmp_path, fact, decoded):
    """libsndfile decodes a GSM 6.10 WAV's every block whole and reads no fact chunk (the RIFF
    spec's count of the samples encoded): 16104 in the fact chunk, 16640 frames decoded, the
    file's length everywhere else in soundsift. A cue between the two was left out as "past the
    end of the audio (2.01 s)" of a file read as 2.08 s long; one past the decoded frames still is."""
    wav = _gsm_wav(fact)
    path = tmp_path / "gsm.wav"
    path.write_bytes(wav)
    assert sf.info(str(path)).frames == decoded
    inside, past = decoded - 40, decoded + 40
    path.write_bytes(_with_chunks(wav, cue_chunk((1, 800), (2, inside), (3, past))
                                  + adtl_chunk((b"labl", 1, "Start"), (b"labl", 2, "Tail"), (b"labl", 3, "Beyond"))))
    problems: list[str] = []
    meta = read_metadata(path, problems)
    assert [m.name for m in named_markers(path)] == ["Start", "Tail"]
    assert meta["markers"].endswith(" Tail")
    assert problems == [f"1 cue marker(s) past the end of the audio ({decoded / 8000:.2f} s) left out: Beyond"]


def test_a_sox_gsm_wav_is_counted_as_libsndfile_decodes_it(tmp_path):
    """SoX writes a GSM 6.10 WAV's data chunk a byte past its last whole block (3316 bytes for
    16104 frames), libsndfile an odd-sized one (3315) with a pad byte: both decode to 16640
    frames, the length the markers are checked against."""
    import shutil
    import subprocess

    if shutil.which("sox") is None:
        pytest.skip("sox is not installed")
    plain = tmp_path / "plain.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "gsm-full-rate", str(plain), "synth", "2.013",
                    "sine", "440"], check=True, capture_output=True)
    assert sf.info(str(plain)).frames == 16640
    path = tmp_path / "sox.wav"
    path.write_bytes(_with_chunks(plain.read_bytes(), cue_chunk((1, 16600)) + adtl_chunk((b"labl", 1, "Tail"))))
    assert named_markers(path) == [Marker(16600 / 8000, "Tail")]


@pytest.fixture(scope="module")
def clap(tiny_clap_dir):
    from engine.models import load_model
    return load_model(tiny_clap_dir)


def test_a_numpy_integer_is_a_text_limit(clap):
    """A count read from an array or a parsed config (np.int64(20)) was refused as "not
    np.int64(20)"; it is a whole number, kept as an int. Bools and floats are still refused."""
    clap.text_max_length = np.int64(20)
    assert clap.text_max_length == 20 and type(clap.text_max_length) is int
    for bad in (True, np.bool_(True), 20.0, np.float64(20.0), "20"):
        with pytest.raises(ValueError, match="whole number of tokens"):
            clap.text_max_length = bad
    assert clap.text_max_length == 20


TOY = Path(__file__).resolve().parents[1] / "trainer" / "configs" / "toy.json"


@pytest.mark.parametrize("config_text", ['{"trainer": "cached-features"}', None])
def test_train_checks_its_out_before_loading_the_trainer(tmp_path, monkeypatch, config_text):
    """``soundsift train CONFIG --out FILE`` said --out names a file only after importing the
    trainer (torch, a second or more); now first. The trainer's modules are made unimportable
    here: reaching them fails the test with an ImportError instead of the output message."""
    from typer.testing import CliRunner

    import ui.cli.cmd_train  # noqa: F401  (registers the command)
    from ui.cli.app import app

    config = TOY
    if config_text is not None:
        config = tmp_path / "cached.json"
        config.write_text(config_text)
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    for module in ("trainer.train", "trainer.cached_train", "trainer.distributed"):
        monkeypatch.setitem(sys.modules, module, None)
    result = CliRunner().invoke(app, ["train", str(config), "--out", str(taken)])
    assert result.exit_code != 0
    assert not isinstance(result.exception, ImportError), result.exception
    assert "is a file; --out must name a folder" in result.output


def test_ixml_sync_points_are_the_markers_where_no_named_cue_point_is_placed(tmp_path):
    """A WAV whose named cue points are all unplaceable (in a wave list's silence chunk) got no
    markers, its iXML sync points unread, though a WAV without cue points has them: the note on
    the cue points stays, and the sync points are its markers."""
    extra = _cue_chunk((1, b"slnt", 0, 300)) + adtl_chunk((b"labl", 1, "Pause")) + _ixml([sync_point(8000, "Car pass")])
    path = tmp_path / "field.wav"
    path.write_bytes(wav_bytes(pcm16(noise(1.0, RATE)), extra_chunks=extra))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.50 Car pass"
    assert problems == ["1 cue marker(s) left out (the file does not place them: in a silence ('slnt') chunk "
                        "of a wave list, which soundsift does not read): Pause"]
    assert named_markers(path) == [Marker(0.5, "Car pass")]


def test_cue_points_placed_but_unnamed_leave_the_ixml_sync_points_as_the_markers(tmp_path):
    """Cue points without a label (a writer's unnamed ones) and labels of other ids: no named cue
    is placed, so the sync points are the markers, as in a WAV without a cue chunk."""
    extra = cue_chunk((1, 4000)) + adtl_chunk((b"labl", 7, "Orphan")) + _ixml([sync_point(8000, "Car pass")])
    path = tmp_path / "field.wav"
    path.write_bytes(wav_bytes(pcm16(noise(1.0, RATE)), extra_chunks=extra))
    assert named_markers(path) == [Marker(0.5, "Car pass")]


def test_a_gsm_wav_cut_short_is_counted_by_the_blocks_it_holds(tmp_path):
    """A GSM 6.10 WAV cut 1000 bytes short (a copy stopped early): libsndfile decodes the 36
    blocks it holds (11520 frames), not the 16104 its fact chunk says; a cue between the two is
    past the end of the audio. It was kept (the fact count was trusted), and the data chunk's
    size as written would say 16640."""
    wav = _gsm_wav(16104)
    labels = cue_chunk((1, 800), (2, 14000)) + adtl_chunk((b"labl", 1, "Start"), (b"labl", 2, "Lost"))
    cut = wav[12:-1000]                     # its chunks, the data chunk's last 1000 bytes missing
    path = tmp_path / "cut.wav"
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(labels) + len(cut)) + b"WAVE" + labels + cut)
    assert sf.info(str(path)).frames == 11520
    problems: list[str] = []
    read_metadata(path, problems)
    assert named_markers(path) == [Marker(0.1, "Start")]
    assert problems == ["1 cue marker(s) past the end of the audio (1.44 s) left out: Lost"]


def test_a_pcm_wav_cut_short_is_counted_by_the_frames_it_holds(tmp_path):
    """A PCM WAV whose data chunk says 1 s but whose file stops at 0.5 s: libsndfile reads 8000
    frames; a cue at 0.75 s was kept (the data chunk's size was trusted) in audio the file lacks."""
    extra = cue_chunk((1, 4000), (2, 12000)) + adtl_chunk((b"labl", 1, "Creak"), (b"labl", 2, "Lost"))
    whole = wav_bytes(pcm16(noise(1.0, RATE)), extra_chunks=extra)
    path = tmp_path / "cut.wav"
    path.write_bytes(whole[:-RATE])                         # the last 8000 frames' 16000 bytes
    assert sf.info(str(path)).frames == 8000
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.25 Creak"
    assert problems == ["1 cue marker(s) past the end of the audio (0.50 s) left out: Lost"]
