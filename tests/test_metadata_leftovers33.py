"""What session 32 left of metadata and lengths: WAV cue points placed by dwBlockStart (an ADPCM
WAV's blocks), iXML sync points before the file's start and markers past the 200 a file keeps
left out without a word, and raw AC-3, MP2 and AMR streams whose length was FFmpeg's guess from
the bit rate of their start."""
from __future__ import annotations

import io
import logging
import struct

import numpy as np
import pytest
import soundfile as sf

from engine.file_metadata import MAX_MARKERS, Marker, named_markers, read_metadata
from tests.conftest import noise
from tests.ffmpeg_files import encode
from tests.test_bad_inputs import pcm16, wav_bytes
from tests.test_file_metadata import adtl_chunk, bext_chunk, riff_chunk, sync_point

# -- cue points by block ---------------------------------------------------------------------


def _cue_chunk(*points: tuple[int, bytes, int, int]) -> bytes:
    """A ``cue `` chunk of (cue id, fccChunk, dwBlockStart, dwSampleOffset) points (dwPosition 0)."""
    return riff_chunk(b"cue ", struct.pack("<I", len(points)) + b"".join(
        struct.pack("<II4sIII", cue, 0, chunk, 0, block, offset) for cue, chunk, block, offset in points))


def _with_chunks(wav: bytes, extra: bytes) -> bytes:
    """A RIFF WAVE file's bytes with ``extra`` chunks after its last (its RIFF size grown)."""
    return wav[:4] + struct.pack("<I", len(wav) - 8 + len(extra)) + wav[8:] + extra


def _labels(*names: str) -> bytes:
    return adtl_chunk(*((b"labl", i + 1, name) for i, name in enumerate(names)))


def _adpcm_wav(seconds: float = 2.0, rate: int = 16000) -> tuple[bytes, int, int]:
    """Mono IMA ADPCM WAV bytes of noise (libsndfile's), its block size in bytes and in frames."""
    buf = io.BytesIO()
    sf.write(buf, noise(seconds, rate, seed=4) * 0.5, rate, format="WAV", subtype="IMA_ADPCM")
    data = buf.getvalue()
    fmt = data.index(b"fmt ") + 8
    block, per_block = struct.unpack_from("<H", data, fmt + 12)[0], struct.unpack_from("<H", data, fmt + 18)[0]
    assert struct.unpack_from("<H", data, fmt)[0] == 0x11 and per_block > 100
    return data, block, per_block


def test_an_adpcm_wavs_cue_points_are_placed_by_their_block(tmp_path):
    """The RIFF spec places a compressed WAV's cue point in the block dwBlockStart bytes into the
    data chunk, dwSampleOffset frames into it. Its markers were all left out as "past the end"
    (its frames counted as its data's bytes over its block size: one a block, not hundreds), and
    dwBlockStart was not read."""
    wav, block, per_block = _adpcm_wav()
    extra = _cue_chunk((1, b"data", 0, 100), (2, b"data", 10 * block, 37), (3, b"data", 25 * block, 0))
    path = tmp_path / "door.wav"
    path.write_bytes(_with_chunks(wav, extra + _labels("Creak", "Latch", "Slam")))
    rate = 16000
    expected = [Marker(100 / rate, "Creak"), Marker((10 * per_block + 37) / rate, "Latch"),
                Marker(25 * per_block / rate, "Slam")]
    problems: list[str] = []
    meta = read_metadata(path, problems)
    assert problems == []
    assert named_markers(path) == expected
    assert meta["markers"] == " · ".join(f"0:{m.at:05.2f} {m.name}" for m in expected)


def test_a_pcm_wavs_cue_point_by_block_start_alone_or_both_counted_from_the_start(tmp_path):
    """PCM: the spec's dwBlockStart is 0; a writer that gives the frame's byte in dwBlockStart
    (dwSampleOffset 0, as the spec places a point in a block) is read as such, one that fills in
    both from the data's start as well, not at twice the frame."""
    extra = _cue_chunk((1, b"data", 2 * 4000, 0), (2, b"data", 2 * 8000, 8000), (3, b"data", 0, 12000))
    path = tmp_path / "pcm.wav"
    path.write_bytes(wav_bytes(pcm16(noise(1.0, 16000)), extra_chunks=extra + _labels("Creak", "Latch", "Slam")))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.25 Creak · 0:00.50 Latch · 0:00.75 Slam"
    assert problems == []
    assert named_markers(path) == [Marker(0.25, "Creak"), Marker(0.5, "Latch"), Marker(0.75, "Slam")]


def test_cue_points_the_file_does_not_place_are_named_in_one_note(tmp_path, caplog):
    """A point in a wave list's silence chunk, one at a dwBlockStart inside a block and one whose
    dwSampleOffset is outside its block: left out, one note naming them and why (they were
    placed at dwSampleOffset as if the other fields said nothing)."""
    wav, block, per_block = _adpcm_wav()
    extra = _cue_chunk((1, b"data", block, 5), (2, b"slnt", 0, 300), (3, b"data", block + 3, 0),
                       (4, b"data", 2 * block, 40 * per_block))
    path = tmp_path / "odd.wav"
    path.write_bytes(_with_chunks(wav, extra + _labels("Creak", "Pause", "Latch", "Slam")))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == f"0:{(per_block + 5) / 16000:05.2f} Creak"
    assert problems == [
        "3 cue marker(s) left out (the file does not place them: in a silence ('slnt') chunk of a wave list, "
        f"which soundsift does not read; dwBlockStart {block + 3} is not where one of its {block}-byte blocks "
        f"starts; dwSampleOffset {40 * per_block} is not in the block at dwBlockStart {2 * block}): "
        "Pause, Latch, Slam"]
    with caplog.at_level(logging.WARNING):
        assert named_markers(path) == [Marker((per_block + 5) / 16000, "Creak")]
    assert not caplog.records


# -- iXML sync points before the start, markers past 200 ------------------------------------------

def _ixml(points: list[str]) -> bytes:
    return riff_chunk(b"iXML", ("<?xml version='1.0' encoding='UTF-8'?><BWFXML><SYNC_POINT_LIST>"
                                f"<SYNC_POINT_COUNT>{len(points)}</SYNC_POINT_COUNT>" + "".join(points)
                                + "</SYNC_POINT_LIST></BWFXML>").encode())


def _bext(reference: int) -> bytes:
    chunk = bytearray(bext_chunk(b"Roadside"))
    chunk[8 + 338:8 + 346] = struct.pack("<Q", reference)
    return bytes(chunk)


def test_ixml_sync_points_before_the_files_start_are_named_in_one_note(tmp_path, caplog):
    """ABSOLUTE cues from before the take began (the recorder's pre-roll cut off, or a cue of the
    take before): left out, one note naming them and the time reference they are earlier than."""
    start = 10 * 3600 * 16000                               # 10:00:00 at 16 kHz
    points = [sync_point(start - 16000, "Slate", "ABSOLUTE"), sync_point(start - 8000, "Clap", "ABSOLUTE"),
              sync_point(start + 8000, "Car pass", "ABSOLUTE")]
    path = tmp_path / "roadside.wav"
    path.write_bytes(wav_bytes(pcm16(noise(1.0, 16000)), extra_chunks=_bext(start) + _ixml(points)))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.50 Car pass"
    assert problems == ["2 iXML sync point(s) before the file's start left out (earlier than its bext time "
                        "reference, 10:00:00.000): Slate, Clap"]
    with caplog.at_level(logging.WARNING):
        assert named_markers(path) == [Marker(0.5, "Car pass")]
    assert not caplog.records


def test_absolute_sync_points_without_a_time_reference_are_named_in_one_note(tmp_path):
    """ABSOLUTE cues in a file without bext: nothing to place them by; the RELATIVE one stays."""
    points = [sync_point(700_000_000, "Slate", "ABSOLUTE"), sync_point(4000, "Door")]
    path = tmp_path / "no_bext.wav"
    path.write_bytes(wav_bytes(pcm16(noise(1.0, 16000)), extra_chunks=_ixml(points)))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.25 Door"
    assert problems == ["1 ABSOLUTE iXML sync point(s) left out (the file has no bext or iXML time reference to place "
                        "them by): Slate"]


def _many(count: int) -> list[str]:
    return [f"Hit {i:03d}" for i in range(count)]


def test_cue_markers_past_the_200_kept_are_counted_in_one_note(tmp_path):
    """A WAV marked every 20 ms (a transient detector's output): its first 200 markers are kept,
    the rest counted in one note, not dropped without a word."""
    names = _many(MAX_MARKERS + 37)
    extra = _cue_chunk(*((i + 1, b"data", 0, 320 * i) for i in range(len(names)))) + _labels(*names)
    path = tmp_path / "hits.wav"
    path.write_bytes(wav_bytes(pcm16(noise(6.0, 16000)), extra_chunks=extra))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"].startswith("0:00.00 Hit 000 · 0:00.02 Hit 001")
    assert problems == ["37 cue marker(s) after the first 200 left out (a file keeps at most 200 markers): "
                        "Hit 200, Hit 201, Hit 202, Hit 203, Hit 204 …"]
    assert len(named_markers(path)) == MAX_MARKERS


def test_ixml_sync_points_past_the_200_kept_are_counted_in_one_note(tmp_path):
    names = _many(MAX_MARKERS + 1)
    path = tmp_path / "cues.wav"
    path.write_bytes(wav_bytes(pcm16(noise(1.0, 16000)),
                               extra_chunks=_ixml([sync_point(50 * i, n) for i, n in enumerate(names)])))
    problems: list[str] = []
    read_metadata(path, problems)
    assert problems == ["1 iXML sync point(s) after the first 200 left out (a file keeps at most 200 markers): "
                        "Hit 200"]


def test_cue_sheet_tracks_past_the_200_kept_are_counted_in_one_note(tmp_path):
    """A sidecar sheet of 203 tracks (a long recording's log): 200 kept, 3 counted."""
    path = tmp_path / "log.wav"
    path.write_bytes(wav_bytes(pcm16(noise(10.0, 8000, seed=1)), rate=8000))
    sheet = 'FILE "log.wav" WAVE\n' + "".join(
        f' TRACK {i + 1:03d} AUDIO\n  TITLE "Event {i:03d}"\n  INDEX 01 00:{i * 3 // 75:02d}:{i * 3 % 75:02d}\n'
        for i in range(MAX_MARKERS + 3))
    (tmp_path / "log.cue").write_text(sheet)
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"].startswith("0:00.00 Event 000 · 0:00.04 Event 001")
    assert problems == ["3 cue sheet track(s) after the first 200 left out (a file keeps at most 200 markers): "
                        "Event 200, Event 201, Event 202"]
    assert len(named_markers(path)) == MAX_MARKERS


# -- raw streams' lengths ------------------------------------------------------------------------

def _raw_stream(path, codec: str, signal: np.ndarray, rate: int, bit_rate: int,
                options: dict[str, str] | None = None):
    """Mono ``signal`` as a raw stream by FFmpeg's ``codec`` encoder at ``bit_rate`` (E-AC-3 in
    a file named ``.ac3``, as E-AC-3 rips often are)."""
    return encode(path, codec, signal, rate, timestamps=False, bit_rate=bit_rate, codec_options=options)


def _joined(path, first, second, header: int = 0):
    """Two raw streams end to end (as a tool that joins takes writes them), the second's file
    header (``header`` bytes: AMR's ``#!AMR\\n``) left out."""
    path.write_bytes(first.read_bytes() + second.read_bytes()[header:])
    return path


@pytest.mark.parametrize("suffix, codec, rate, rates, header", [
    (".ac3", "ac3", 48000, (64_000, 448_000), 0),           # FFmpeg said 16.1 s for 4 s
    (".ac3", "eac3", 48000, (96_000, 640_000), 0),          # 15.5 s for 4 s
    (".mp2", "mp2", 48000, (64_000, 384_000), 0),           # 14.1 s for 4 s
    (".amr", "libopencore_amrnb", 8000, (4750, 12200), 6),  # 7.0 s for 4 s
])
def test_a_raw_streams_length_is_counted_where_its_bit_rate_changes(tmp_path, suffix, codec, rates, rate, header):
    """A raw AC-3, E-AC-3, MP2 or AMR stream holds no length: FFmpeg's guess from the bit rate of its
    start is right for one encoding at a constant rate, many times off for two joined end to end
    (or the reverse, too short). Its frames are counted from their headers instead, as many as
    decode."""
    from engine.audio import open_sound, probe
    low = _raw_stream(tmp_path / f"low{suffix}", codec, noise(2.0, rate, seed=1) * 0.5, rate, rates[0])
    high = _raw_stream(tmp_path / f"high{suffix}", codec, noise(2.0, rate, seed=2) * 0.5, rate, rates[1])
    for path in (_joined(tmp_path / f"low_high{suffix}", low, high, header),
                 _joined(tmp_path / f"high_low{suffix}", high, low, header)):
        frames = probe(path).frames
        assert 4 * rate <= frames <= 4 * rate + 2 * 1536, path.name
        with open_sound(str(path)) as f:
            assert len(f.read(dtype="float32")) == frames, path.name


def test_amr_silence_frames_do_not_stretch_its_length(tmp_path):
    """AMR with DTX writes 6-byte silence frames where speech frames are 32: a quiet start made
    FFmpeg's guess 9.0 s for 4 s. Counted, it is 4 s (FFmpeg's own AMR decoder cannot decode
    those frames: the count is the demuxer's)."""
    from engine.audio import probe
    signal = np.concatenate([np.zeros(16000, np.float32), noise(2.0, 8000, seed=3) * 0.5])
    path = _raw_stream(tmp_path / "memo.amr", "libopencore_amrnb", signal, 8000, 12200, {"dtx": "1"})
    assert probe(path).frames == pytest.approx(32000, abs=160)


def test_an_amr_recorded_with_dtx_decodes(tmp_path):
    """FFmpeg's AMR decoder cannot decode DTX's silence frames ("Not yet implemented in FFmpeg"):
    such a recording was unreadable. OpenCORE's decoder reads it: as many frames as counted,
    silence where it was quiet, sound where it was not, from the start or after a seek."""
    from engine.audio import open_sound
    signal = np.concatenate([np.zeros(16000, np.float32), noise(2.0, 8000, seed=3) * 0.5])
    path = _raw_stream(tmp_path / "memo.amr", "libopencore_amrnb", signal, 8000, 12200, {"dtx": "1"})
    with open_sound(str(path)) as f:
        x = f.read(dtype="float32")
        assert len(x) == f.frames
        assert np.abs(x[:12000]).max() < 0.05 < np.sqrt(np.mean(x[20000:30000] ** 2))
        f.seek(24000)
        assert np.array_equal(f.read(800, dtype="float32"), x[24000:24800])
