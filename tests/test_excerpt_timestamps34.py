"""A WAV excerpt's iXML chunk was left out whole, with a warning, when one of its timestamps could
not be moved: a SPEED TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI/LO or BEXT BWF_TIME_REFERENCE_HIGH/LOW
half that is not a sample count, or a TIMESTAMP_SAMPLE_RATE that is not a rate. One number cost
the excerpt its scene, take, track names and UCS fields. Now that pair alone is left out (for a
bad rate, SPEED's pair and the rate), never copied unmoved, with one warning naming the file, the
elements and the reason; the excerpt read back has its moved bext time reference and no wrong
iXML one."""
from __future__ import annotations

import logging
import re
import struct
import xml.etree.ElementTree as ET

import pytest

from engine.file_metadata import read_metadata
from engine.ixml import ixml_time_reference
from engine.wav_chunks import excerpt_ixml
from tests.test_export import bext, both, ixml, sync_point
from tests.test_ixml_bext_copy import RATE, excerpt

REFERENCE = 10 * 3600 * RATE                     # the recording's bext time reference: 10:00:00
STAMP = 10 * 3600 * 96_000                       # SPEED's, counted at ixml()'s 96 kHz TIMESTAMP_SAMPLE_RATE
FIRST = RATE // 4                                # excerpt() cuts 0.25-0.75 s
SPEED_PAIR = ["TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI", "TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO"]
BEXT_PAIR = ["BWF_TIME_REFERENCE_HIGH", "BWF_TIME_REFERENCE_LOW"]
TIMECODE = ["TIMESTAMP_SAMPLE_RATE", *SPEED_PAIR, *BEXT_PAIR]


def without_lines(body: bytes, names: list[str]) -> bytes:
    """``body`` without the lines holding the elements ``names`` (ixml() writes each timecode
    element on a line of its own but BWF_TIME_REFERENCE_LOW, which follows ``<BEXT>``)."""
    for name in names:
        body = re.sub(rb"(?m)^[ \t]*<%s>[^<]*</%s>[ \t]*\n" % (name.encode(), name.encode()), b"", body)
        body = re.sub(rb"<%s>[^<]*</%s>" % (name.encode(), name.encode()), b"", body)
    return body


def timecode(body: bytes) -> dict[str, str]:
    """The texts of the timecode elements an iXML body holds (first of each)."""
    root = ET.fromstring(body)
    return {name: found.text or "" for name in TIMECODE if (found := root.find(f".//{name}")) is not None}


def test_a_malformed_speed_timestamp_is_left_out_alone_not_the_whole_ixml_chunk(tmp_path, caplog):
    source = ixml(STAMP, REFERENCE, [sync_point(REFERENCE + RATE // 2, "Gust", "ABSOLUTE")])
    broken = source.replace(b"_LO>%d<" % (STAMP & 0xFFFFFFFF), b"_LO>4.8e4<", 1)
    with caplog.at_level(logging.WARNING, logger="soundsift.export"):
        found = excerpt(tmp_path, [(b"bext", bext(REFERENCE)), (b"iXML", broken)])
    moved = ixml(STAMP + 2 * FIRST, REFERENCE + FIRST, [sync_point(REFERENCE + RATE // 2, "Gust", "ABSOLUTE")])
    assert found[b"iXML"] == without_lines(moved, SPEED_PAIR)         # byte for byte but for the pair
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'take.wav'}: the excerpt's iXML chunk has 2 timecode element(s) left out "
        "(TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO holds '4.8e4', not a sample count): "
        "TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI, TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO"]

    cut = tmp_path / "cut.wav"
    cut.write_bytes(both(tmp_path / "take.wav", 0.25, 0.75))          # /audio's stream: the same bytes
    assert struct.unpack_from("<Q", found[b"bext"], 338)[0] == REFERENCE + FIRST
    assert ixml_time_reference(ET.fromstring(found[b"iXML"])) == (REFERENCE + FIRST, None)
    problems: list[str] = []
    read = read_metadata(cut, problems)
    assert (read["category"], read["catid"], read["note"]) == ("RAIN", "RAINMetl", "roof mics & ambi")
    assert read["markers"] == "0:00.25 Gust" and problems == []          # 10:00:00.5 is 0.25 s into the excerpt


#: (what the source's text becomes, the elements left out, the note's reason)
BROKEN = {
    "speed low": ((b"_LO>%d<" % (STAMP & 0xFFFFFFFF), b"_LO>4.8e4<"), SPEED_PAIR,
                  "TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO holds '4.8e4', not a sample count"),
    "bext low": ((b"_LOW>%d<" % REFERENCE, b"_LOW>n/a<"), BEXT_PAIR,
                 "BWF_TIME_REFERENCE_LOW holds 'n/a', not a sample count"),
    "bext high": ((b"_HIGH>0<", b"_HIGH>-1<"), BEXT_PAIR,
                  "BWF_TIME_REFERENCE_HIGH holds '-1', not a sample count"),
    "bext unpaired": ((b"<BEXT>", b"<BEXT><BWF_TIME_REFERENCE_HIGH>0</BWF_TIME_REFERENCE_HIGH>"),
                      [BEXT_PAIR[0], BEXT_PAIR[0], BEXT_PAIR[1]],
                      "BWF_TIME_REFERENCE_HIGH and BWF_TIME_REFERENCE_LOW do not come in pairs"),
    "rate text": ((b"_RATE>96000<", b"_RATE>n/a<"), TIMECODE[:3], "TIMESTAMP_SAMPLE_RATE holds 'n/a', not a number"),
    "rate zero": ((b"_RATE>96000<", b"_RATE>0<"), TIMECODE[:3], "TIMESTAMP_SAMPLE_RATE is 0, not a sample rate"),
    "rate nan": ((b"_RATE>96000<", b"_RATE>nan<"), TIMECODE[:3], "TIMESTAMP_SAMPLE_RATE is nan, not a sample rate"),
    "rate negative": ((b"_RATE>96000<", b"_RATE>-96000<"), TIMECODE[:3],
                      "TIMESTAMP_SAMPLE_RATE is -96000, not a sample rate"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_only_the_timecode_that_cannot_be_moved_is_left_out(case):
    """The other timestamp is moved all the same, and what a reader takes for the excerpt's time
    reference (engine.ixml: BEXT's copy, else SPEED's) is the moved one, or none: never the
    recording's."""
    change, gone, why = BROKEN[case]
    source = ixml(STAMP, REFERENCE, [sync_point(RATE // 2, "Drip")])
    notes: list[str] = []
    got = excerpt_ixml(source.replace(*change, 1), FIRST, RATE // 2, RATE, notes=notes)
    assert notes == [f"{len(gone)} timecode element(s) left out ({why}): {', '.join(gone)}"]
    moved = {"TIMESTAMP_SAMPLE_RATE": "96000", SPEED_PAIR[0]: "0", SPEED_PAIR[1]: str(STAMP + 2 * FIRST),
             BEXT_PAIR[0]: "0", BEXT_PAIR[1]: str(REFERENCE + FIRST)}
    assert timecode(got) == {name: text for name, text in moved.items() if name not in gone}
    assert got == without_lines(excerpt_ixml(source, FIRST, RATE // 2, RATE), gone)
    speed, copy = (STAMP + 2 * FIRST, 96_000.0), (REFERENCE + FIRST, None)
    assert ixml_time_reference(ET.fromstring(got)) == (copy if BEXT_PAIR[1] not in gone else
                                                       speed if SPEED_PAIR[1] not in gone else None)


def test_both_timestamps_broken_are_one_note_and_the_chunk_has_no_time_reference(tmp_path):
    """An iXML-only recording (no bext) whose timestamps both fail: its ABSOLUTE cue is left out
    of the excerpt's markers with the reader's note, not placed by the recording's timecode."""
    points = [sync_point(REFERENCE + RATE // 2, "Gust", "ABSOLUTE"), sync_point(RATE // 2, "Drip")]
    source = (ixml(STAMP, REFERENCE, points).replace(b"_RATE>96000<", b"_RATE>n/a<")
              .replace(b"_HIGH>0<", b"_HIGH>x<", 1))
    notes: list[str] = []
    got = excerpt_ixml(source, FIRST, RATE // 2, RATE, notes=notes)
    assert notes == ["5 timecode element(s) left out (TIMESTAMP_SAMPLE_RATE holds 'n/a', not a number …): "
                     + ", ".join([*TIMECODE[:3], *BEXT_PAIR])]
    assert timecode(got) == {} and ixml_time_reference(ET.fromstring(got)) is None
    found = excerpt(tmp_path, [(b"iXML", source)])
    assert b"bext" not in found and found[b"iXML"] == got
    cut = tmp_path / "cut.wav"
    cut.write_bytes(both(tmp_path / "take.wav", 0.25, 0.75))
    problems: list[str] = []
    assert read_metadata(cut, problems)["markers"] == "0:00.25 Drip"
    assert problems == ["1 ABSOLUTE iXML sync point(s) left out (the file has no bext or iXML time reference "
                        "to place them by): Gust"]


def test_an_empty_high_half_is_0_as_the_reader_reads_it_and_is_moved():
    """engine.ixml reads an empty BWF_TIME_REFERENCE_HIGH as 0: the pair can be moved, so it is,
    with the carry written into it."""
    source = ixml(STAMP, 0xFFFFFF00, []).replace(b"_HIGH>0<", b"_HIGH><", 1)
    assert ixml_time_reference(ET.fromstring(source))[0] == 0xFFFFFF00
    notes: list[str] = []
    got = excerpt_ixml(source, 0x200, RATE, RATE, notes=notes)
    assert notes == [] and ixml_time_reference(ET.fromstring(got)) == ((1 << 32) + 0x100, None)


def test_a_32_bit_count_that_does_not_fit_once_moved_is_left_out():
    """A BWF_TIME_REFERENCE_LOW without a HIGH is 32 bits: 2³² - 1 moved on has no room."""
    source = re.sub(rb"<BWF_TIME_REFERENCE_HIGH>.*?</BWF_TIME_REFERENCE_HIGH>", b"",
                    ixml(STAMP, 0xFFFFFFFF, []))
    notes: list[str] = []
    got = excerpt_ixml(source, 1, RATE, RATE, notes=notes)
    assert notes == ["1 timecode element(s) left out (BWF_TIME_REFERENCE_LOW does not fit its fields once moved "
                     "to the excerpt): BWF_TIME_REFERENCE_LOW"]
    assert ixml_time_reference(ET.fromstring(got)) == (STAMP + 2, 96_000.0)


def test_without_a_notes_list_the_left_out_timecode_is_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="soundsift.export"):
        excerpt_ixml(ixml(STAMP, REFERENCE, []).replace(b"_RATE>96000<", b"_RATE>0<"), 0, RATE, RATE)
    assert [r.getMessage() for r in caplog.records] == [
        "the excerpt's iXML chunk has 3 timecode element(s) left out (TIMESTAMP_SAMPLE_RATE is 0, not a sample "
        "rate): TIMESTAMP_SAMPLE_RATE, TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_HI, TIMESTAMP_SAMPLES_SINCE_MIDNIGHT_LO"]


@pytest.mark.parametrize("markup", [b"<![CDATA[%d]]>", b"%d<!-- from the recorder -->"])
def test_a_count_an_xml_reader_reads_through_markup_is_not_copied_unmoved(markup):
    """A BWF_TIME_REFERENCE_LOW in a CDATA section, or before a comment, is a count to an XML
    reader (engine.ixml) but not one the excerpt can rewrite as text: it was copied as it was,
    placing the excerpt at the recording's timecode. It is left out; SPEED's, counted at a
    TIMESTAMP_SAMPLE_RATE in CDATA, likewise."""
    source = re.sub(rb"<BWF_TIME_REFERENCE_HIGH>.*?</BWF_TIME_REFERENCE_HIGH>", b"", ixml(STAMP, REFERENCE, []))
    source = source.replace(b"_LOW>%d<" % REFERENCE, b"_LOW>" + markup % REFERENCE + b"<")
    assert ixml_time_reference(ET.fromstring(source)) == (REFERENCE, None)
    notes: list[str] = []
    got = excerpt_ixml(source, FIRST, RATE, RATE, notes=notes)
    assert notes == [f"1 timecode element(s) left out (BWF_TIME_REFERENCE_LOW holds {(markup % REFERENCE).decode()!r}, "
                     "not a sample count): BWF_TIME_REFERENCE_LOW"]
    assert ixml_time_reference(ET.fromstring(got)) == (STAMP + 2 * FIRST, 96_000.0)
    rate_in_cdata = source.replace(b"_RATE>96000<", b"_RATE><![CDATA[96000]]><")
    got = excerpt_ixml(rate_in_cdata, FIRST, RATE, RATE, notes=[])
    assert timecode(got) == {} and ixml_time_reference(ET.fromstring(got)) is None
