"""An iXML chunk's own time reference: BEXT's BWF_TIME_REFERENCE_LOW/HIGH (the iXML spec's and
its writers' spelling, not _LO/_HI) moved with an excerpt's bext chunk, and BEXT's copy or
SPEED's TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO/HI placing ABSOLUTE sync points in a WAV without
a bext chunk."""
from __future__ import annotations

import logging
import struct

import numpy as np
import pytest

from engine.export import excerpt_wav
from engine.file_metadata import Marker, named_markers, read_metadata
from engine.wav_chunks import excerpt_ixml
from tests.conftest import noise
from tests.test_bad_inputs import pcm16, wav_bytes
from tests.test_export import bext, chunks_of, fmt, riff
from tests.test_file_metadata import bext_chunk, riff_chunk, sync_point, with_trailing_chunk

RATE = 16_000
TEN_AM = 10 * 3600                       # seconds since midnight


def ixml(points: list[str], *, reference: int | None = None, stamp: int | None = None,
         stamp_rate: int | None = None, low: str | None = None) -> bytes:
    """An iXML chunk's body as a Sound Devices recorder writes it: SPEED's timestamp at
    ``stamp_rate`` (where given), BEXT's copy of the bext TimeReference (``low``: its LOW text
    instead of the number's) and a SYNC_POINT_LIST of ``points``."""
    speed = "" if stamp is None else (
        "<SPEED><TIMECODE_RATE>25/1</TIMECODE_RATE>"
        + (f"<TIMESTAMP_SAMPLE_RATE>{stamp_rate}</TIMESTAMP_SAMPLE_RATE>" if stamp_rate else "")
        + f"<TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI>{stamp >> 32}</TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI>"
        f"<TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO>{stamp & 0xFFFFFFFF}</TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO></SPEED>")
    copy = "" if reference is None and low is None else (
        "<BEXT><BWF_ORIGINATOR>Sound Devices</BWF_ORIGINATOR>"
        f"<BWF_TIME_REFERENCE_LOW>{low if low is not None else reference & 0xFFFFFFFF}</BWF_TIME_REFERENCE_LOW>"
        f"<BWF_TIME_REFERENCE_HIGH>{(reference or 0) >> 32}</BWF_TIME_REFERENCE_HIGH></BEXT>")
    return ("<?xml version='1.0' encoding='UTF-8'?><BWFXML><IXML_VERSION>2.10</IXML_VERSION>" + speed + copy
            + f"<SYNC_POINT_LIST><SYNC_POINT_COUNT>{len(points)}</SYNC_POINT_COUNT>" + "".join(points)
            + "</SYNC_POINT_LIST></BWFXML>").encode()


def element(body: bytes, name: str) -> int:
    """The number the ``name`` element of an iXML body holds."""
    start = body.index(f"<{name}>".encode()) + len(name) + 2
    return int(body[start:body.index(b"<", start)])


def reference_in(body: bytes) -> int:
    return (element(body, "BWF_TIME_REFERENCE_HIGH") << 32) + element(body, "BWF_TIME_REFERENCE_LOW")


# -- an excerpt's iXML time reference moves with its bext ------------------------------------------

def test_an_excerpts_ixml_bwf_time_reference_moves_with_its_bext_chunk(tmp_path):
    """A DAW that reads iXML placed the excerpt at the source's timecode: BWF_TIME_REFERENCE_LOW/
    HIGH stayed where they were while bext's TimeReference moved (only _LO/_HI were looked for)."""
    rate = 48_000
    reference = 23 * 3600 * rate + 59 * 60 * rate             # past 32 bits
    x = np.random.default_rng(7).uniform(-0.5, 0.5, (2 * rate, 2))
    src = tmp_path / "take.wav"
    src.write_bytes(riff([(b"fmt ", fmt(2, rate, 16)), (b"bext", bext(reference)),
                          (b"data", pcm16(x)), (b"iXML", ixml([], reference=reference, stamp=reference))]))
    found = chunks_of(excerpt_wav(src, 0.5, 1.5, fade=0)[0])
    moved = struct.unpack_from("<Q", found[b"bext"], 338)[0]
    assert moved == reference + rate // 2
    assert reference_in(found[b"iXML"]) == moved
    assert element(found[b"iXML"], "TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO") == moved & 0xFFFFFFFF


def test_excerpt_ixml_moves_bwf_time_reference_low_and_high_and_leaves_out_a_broken_one():
    """A broken pair is left out, both its halves, with a note (the whole chunk was refused)."""
    body = ixml([], reference=(3 << 32) + 0xFFFFFF00)
    assert reference_in(excerpt_ixml(body, 0x200, 100, RATE)) == (4 << 32) + 0x100   # a carry into HIGH
    notes: list[str] = []
    moved = excerpt_ixml(ixml([], low="n/a"), 10, 100, RATE, notes=notes)
    assert notes == ["2 timecode element(s) left out (BWF_TIME_REFERENCE_LOW holds 'n/a', not a sample count): "
                     "BWF_TIME_REFERENCE_HIGH, BWF_TIME_REFERENCE_LOW"]
    assert b"BWF_TIME_REFERENCE" not in moved and b"<BWF_ORIGINATOR>Sound Devices<" in moved


def test_an_excerpt_of_a_wav_without_bext_places_its_absolute_cues_by_the_moved_ixml(tmp_path):
    """The excerpt of an iXML-only recording: its ABSOLUTE cue read back where it falls in it."""
    start = TEN_AM * RATE
    points = [sync_point(start + RATE, "Gust", "ABSOLUTE"), sync_point(RATE // 4, "Drip")]
    src = tmp_path / "ixml_only.wav"
    src.write_bytes(wav_bytes(pcm16(noise(2.0, RATE)), extra_chunks=riff_chunk(b"iXML", ixml(points, reference=start))))
    cut = tmp_path / "cut.wav"
    cut.write_bytes(excerpt_wav(src, 0.5, 1.5, fade=0)[0])
    problems: list[str] = []
    assert read_metadata(cut, problems)["markers"] == "0:00.50 Gust"
    assert problems == []


# -- reading: iXML's own time reference where there is no bext chunk --------------------------------

@pytest.mark.parametrize("where", ["before fmt", "after the audio"])
def test_absolute_sync_points_are_placed_by_the_ixml_bext_copy_without_a_bext_chunk(tmp_path, where):
    """A WAV with iXML but no bext chunk (a recorder set to write iXML only, or a tool that
    dropped bext): its ABSOLUTE cues are placed by iXML's BWF_TIME_REFERENCE_LOW/HIGH."""
    start = 80 * 3600 * RATE                                    # past 32 bits (as 192 kHz after 06:13 is)
    points = [sync_point(start + RATE // 2, "Slate", "ABSOLUTE"), sync_point(RATE // 4, "Door"),
              sync_point(start - RATE, "Before", "ABSOLUTE")]
    chunk = riff_chunk(b"iXML", ixml(points, reference=start))
    wav = wav_bytes(pcm16(noise(1.0, RATE)), extra_chunks=chunk if where == "before fmt" else b"")
    path = tmp_path / "no_bext.wav"
    path.write_bytes(wav if where == "before fmt" else with_trailing_chunk(wav, chunk))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.25 Door · 0:00.50 Slate"
    assert problems == ["1 iXML sync point(s) before the file's start left out (earlier than its iXML time "
                        "reference, 80:00:00.000): Before"]
    assert named_markers(path) == [Marker(0.25, "Door"), Marker(0.5, "Slate")]


def test_speeds_timestamp_is_read_at_its_own_sample_rate_where_bext_and_its_copy_say_nothing(tmp_path):
    """SPEED's TIMESTAMP_SAMPLES_SINCE_MIDNIGHT counts TIMESTAMP_SAMPLE_RATE samples (48 kHz
    here, the file is 16 kHz): 10:00:00 is 10 h of the file's samples all the same."""
    points = [sync_point(TEN_AM * RATE + 3 * RATE // 4, "Clap", "ABSOLUTE")]
    path = tmp_path / "speed_only.wav"
    path.write_bytes(wav_bytes(pcm16(noise(1.0, RATE)), extra_chunks=riff_chunk(
        b"iXML", ixml(points, stamp=TEN_AM * 48_000, stamp_rate=48_000))))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.75 Clap"
    assert problems == []
    assert named_markers(path) == [Marker(0.75, "Clap")]


def test_the_bext_chunk_comes_first_then_ixmls_bext_copy_then_its_speed_timestamp(tmp_path):
    """Where they disagree: the bext chunk is the file's time reference, iXML's copy of it next,
    SPEED's timestamp last."""
    points = [sync_point(TEN_AM * RATE + RATE // 2, "Clap", "ABSOLUTE")]
    quarter_early, half_early = TEN_AM * RATE + RATE // 4, TEN_AM * RATE
    bext_ = bytearray(bext_chunk(b"Yard"))
    bext_[8 + 338:8 + 346] = struct.pack("<Q", quarter_early)
    cases = {"bext": (bytes(bext_), ixml(points, reference=half_early, stamp=half_early), 0.25),
             "copy": (b"", ixml(points, reference=quarter_early, stamp=half_early), 0.25),
             "speed": (b"", ixml(points, stamp=half_early), 0.5)}
    for name, (first, chunk, at) in cases.items():
        path = tmp_path / f"{name}.wav"
        path.write_bytes(wav_bytes(pcm16(noise(1.0, RATE)), extra_chunks=first + riff_chunk(b"iXML", chunk)))
        assert named_markers(path) == [Marker(at, "Clap")], name


def test_absolute_sync_points_with_no_time_reference_anywhere_are_still_named_in_one_note(tmp_path, caplog):
    """iXML's BWF_TIME_REFERENCE_LOW is not a sample count and there is no SPEED timestamp: the
    ABSOLUTE cue is left out with the note, the RELATIVE one kept."""
    points = [sync_point(700_000_000, "Slate", "ABSOLUTE"), sync_point(4000, "Door")]
    path = tmp_path / "unplaced.wav"
    path.write_bytes(wav_bytes(pcm16(noise(1.0, RATE)), extra_chunks=riff_chunk(b"iXML", ixml(points, low="n/a"))))
    problems: list[str] = []
    assert read_metadata(path, problems)["markers"] == "0:00.25 Door"
    assert problems == ["1 ABSOLUTE iXML sync point(s) left out (the file has no bext or iXML time reference "
                        "to place them by): Slate"]
    with caplog.at_level(logging.WARNING):
        assert named_markers(path) == [Marker(0.25, "Door")]
    assert not caplog.records


def test_the_spec_spelling_is_read_not_the_hi_lo_one():
    """No writer spells BEXT's copy _HI/_LO: an excerpt leaves such elements as they are."""
    body = ixml([]).replace(b"<SYNC_POINT_LIST>", b"<BEXT><BWF_TIME_REFERENCE_LO>5</BWF_TIME_REFERENCE_LO></BEXT>"
                                                  b"<SYNC_POINT_LIST>")
    assert excerpt_ixml(body, 100, 1000, RATE) == body
