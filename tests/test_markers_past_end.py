"""Markers past the end of the audio (left by a trim): every source — an AIFF's MARK chunk, a
WAV's iXML sync points, a sidecar or embedded cue sheet — leaves them out with one note a file
naming up to five, worded as a WAV's cue points already were; named_markers stays quiet."""
from __future__ import annotations

import logging
import struct

import numpy as np

from engine.file_metadata import Marker, aiff_markers, named_markers, read_metadata
from tests.conftest import noise, tone
from tests.test_bad_inputs import ext80, pcm16, wav_bytes
from tests.test_file_metadata import flac_with_comments, riff_chunk, sync_point


def _aiff_chunk(cid: bytes, body: bytes) -> bytes:
    return cid + struct.pack(">I", len(body)) + body + b"\x00" * (len(body) & 1)


def _aiff(frames: int, rate: int, marks: list[tuple[int, int, str]]) -> bytes:
    """A mono 16-bit AIFF of ``frames`` of noise, built by hand, with a MARK chunk of (id, frame, name)."""
    comm = struct.pack(">hIh", 1, frames, 16) + ext80(rate)
    ssnd = struct.pack(">II", 0, 0) + (noise(frames / rate, rate, seed=5) * 20000).astype(">i2").tobytes()
    mark = struct.pack(">H", len(marks))
    for mark_id, frame, name in marks:
        text = name.encode("latin-1")
        mark += struct.pack(">HIB", mark_id, frame, len(text)) + text + (b"\0" if len(text) % 2 == 0 else b"")
    body = b"AIFF" + _aiff_chunk(b"COMM", comm) + _aiff_chunk(b"MARK", mark) + _aiff_chunk(b"SSND", ssnd)
    return b"FORM" + struct.pack(">I", len(body)) + body


def test_aiff_markers_past_the_end_are_named_in_one_note(tmp_path, caplog):
    """A trimmed AIFF keeps MARK entries past its COMM frames: they are left out, named in time order."""
    path = tmp_path / "gate.aif"
    path.write_bytes(_aiff(16000, 16000, [(1, 4000, "Hinge"), (2, 20000, "Latch"), (3, 16000, "Slam")]))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.25 Hinge"
    assert problems == ["2 AIFF marker(s) past the end of the audio (1.00 s) left out: Slam, Latch"]
    with caplog.at_level(logging.WARNING):
        assert named_markers(path) == [Marker(0.25, "Hinge")]
        with open(path, "rb") as f:
            assert aiff_markers(f) == [Marker(0.25, "Hinge")]
    assert not caplog.records


def test_a_cut_aiffs_markers_past_its_data_are_named_in_one_note(tmp_path):
    """An AIFF cut short (its SSND holds 1 s; COMM still says 3 s): one note for the markers past
    either end, at the audio's end, not one for each."""
    raw = _aiff(48000, 16000, [(1, 4000, "Hinge"), (2, 20000, "Creak"), (3, 60000, "Latch")])
    ssnd = raw.index(b"SSND")
    raw = raw[:ssnd + 4] + struct.pack(">I", 8 + 32000) + raw[ssnd + 8:ssnd + 16 + 32000]
    path = tmp_path / "cut.aif"
    path.write_bytes(raw[:4] + struct.pack(">I", len(raw) - 8) + raw[8:])
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.25 Hinge"
    assert problems == ["2 AIFF marker(s) past the end of the audio (1.00 s) left out: Creak, Latch"]


def _ixml_wav(points: list[str]) -> bytes:
    ixml = ("<?xml version='1.0' encoding='UTF-8'?><BWFXML><IXML_VERSION>2.10</IXML_VERSION><SYNC_POINT_LIST>"
            f"<SYNC_POINT_COUNT>{len(points)}</SYNC_POINT_COUNT>" + "".join(points) + "</SYNC_POINT_LIST></BWFXML>")
    return wav_bytes(pcm16(noise(1.0, 16000, seed=2)), extra_chunks=riff_chunk(b"iXML", ixml.encode()))


def test_ixml_sync_points_past_the_end_are_named_in_one_note(tmp_path, caplog):
    """A field recorder's cues past the audio (the take trimmed after recording), up to five named."""
    path = tmp_path / "roadside.wav"
    late = [sync_point(16_000 + 1000 * i, f"Late {i}") for i in range(7)]
    path.write_bytes(_ixml_wav([sync_point(8_000, "Car pass"), *late]))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.50 Car pass"
    assert problems == ["7 iXML sync point(s) past the end of the audio (1.00 s) left out: "
                        "Late 0, Late 1, Late 2, Late 3, Late 4 …"]
    with caplog.at_level(logging.WARNING):
        assert named_markers(path) == [Marker(0.5, "Car pass")]
    assert not caplog.records


SHEET = ('FILE "rain.wav" WAVE\n TRACK 01 AUDIO\n  TITLE "Drizzle"\n  INDEX 01 00:00:00\n'
         ' TRACK 02 AUDIO\n  TITLE "Downpour"\n  INDEX 01 00:01:00\n'
         ' TRACK 03 AUDIO\n  TITLE "Thunder"\n  INDEX 01 00:03:00\n'
         ' TRACK 04 AUDIO\n  INDEX 01 00:04:00\n')


def test_sidecar_cue_sheet_tracks_past_the_end_are_named_in_one_note(tmp_path):
    """A disc image's sheet kept after the image was cut short: its tracks past the audio are left
    out of the markers with a note (an untitled one by its number)."""
    path = tmp_path / "rain.wav"
    path.write_bytes(wav_bytes(pcm16(tone(220, 2.0, 16000))))
    (tmp_path / "rain.cue").write_text(SHEET)
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.00 Drizzle · 0:01.00 Downpour"
    assert problems == ["2 cue sheet track(s) past the end of the audio (2.00 s) left out: Thunder, Track 04"]


def test_an_embedded_cue_sheets_tracks_past_the_end_are_named_in_one_note(tmp_path):
    """The same sheet as a FLAC's ``CUESHEET`` comment."""
    path = tmp_path / "rain.flac"
    flac_with_comments(path, {"CUESHEET": SHEET.replace("rain.wav", "rain.flac")}, wave=tone(220, 2.0, 16000))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.00 Drizzle · 0:01.00 Downpour"
    assert problems == ["2 cue sheet track(s) past the end of the audio (2.00 s) left out: Thunder, Track 04"]


def test_the_indexer_notes_markers_past_the_end_once_a_file(tmp_path):
    """A file cut into several segments still gets the note once, from its metadata read."""
    import indexer.decode as decode
    from engine.segments import SegmentPolicy

    path = tmp_path / "gate.aif"
    path.write_bytes(_aiff(48000, 16000, [(1, 4000, "Hinge"), (2, 60000, "Latch")]))
    events = list(decode.decode_file(decode.DecodeJob(0, str(path)), 16000, SegmentPolicy(1.0)))
    done = events[-1]
    assert isinstance(done, decode.FileDecoded) and done.n_segments > 1
    assert done.notes == ["1 AIFF marker(s) past the end of the audio (3.00 s) left out: Latch"]
    assert np.isclose(done.duration, 3.0)


def test_a_cue_sheet_ffmpeg_reads_from_tags_says_so_too(tmp_path, caplog):
    """A WavPack rip's APEv2 ``Cuesheet`` tag (read by FFmpeg): the same note as a FLAC's."""
    from tests.test_ffmpeg_audio import encode, stereo
    path = encode(tmp_path / "rain.wv", "wavpack", stereo(2.0), {"Cuesheet": SHEET.replace("rain.wav", "rain.wv")})
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.00 Drizzle · 0:01.00 Downpour"
    assert problems == ["2 cue sheet track(s) past the end of the audio (2.00 s) left out: Thunder, Track 04"]
    with caplog.at_level(logging.WARNING):
        named_markers(path)
    assert not caplog.records
