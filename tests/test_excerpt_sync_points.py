"""A WAV excerpt's iXML chunk was left out whole, with a warning, when one RELATIVE sync point
held a number that is not a sample count (a SYNC_POINT_LOW of "-4000" or "n/a"): one bad cue
cost the excerpt its scene, take, track names, UCS fields and timecode. Now that point alone is
left out, as the metadata reader leaves it out (engine.ixml), SYNC_POINT_COUNT lowered to
match, and one warning names the file, the points and the reason; a broken timestamp is left
out alone too (copied unmoved, it would say the excerpt starts where the recording does:
tests/test_excerpt_timestamps34.py)."""
from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET

import pytest

from engine.file_metadata import read_metadata
from engine.wav_chunks import excerpt_ixml
from tests.test_export import bext, both, ixml, sync_point
from tests.test_ixml_bext_copy import RATE, excerpt
from tests.test_ixml_bext_copy import ixml as with_bext_copy
from tests.test_ixml_sync_point_counts import point

REFERENCE = 10 * 3600 * RATE                     # the recording's bext time reference: 10:00:00
FIRST = RATE // 4                                # excerpt() cuts 0.25-0.75 s


def test_one_malformed_sync_point_is_left_out_not_the_whole_ixml_chunk(tmp_path, caplog):
    points = [point("Bump", "-4000"), sync_point(RATE // 2, "Drip"), point("Broken", "n/a"),
              sync_point(RATE // 8, "Early")]
    with caplog.at_level(logging.WARNING, logger="soundsift.export"):
        found = excerpt(tmp_path, [(b"bext", bext(REFERENCE)), (b"iXML", ixml(REFERENCE, REFERENCE, points))])
    # byte for byte but for its counts (SPEED's stamp counts its TIMESTAMP_SAMPLE_RATE, 96 kHz)
    assert found[b"iXML"] == ixml(REFERENCE + 2 * FIRST, REFERENCE + FIRST, [sync_point(RATE // 2 - FIRST, "Drip")],
                                  count=1)
    assert [r.getMessage() for r in caplog.records] == [
        f"{tmp_path / 'take.wav'}: the excerpt's iXML chunk has 2 sync point(s) left out "
        "(SYNC_POINT_LOW holds '-4000', not a sample count …): Bump, Broken"]
    cut = tmp_path / "cut.wav"
    cut.write_bytes(both(tmp_path / "take.wav", 0.25, 0.75))             # /audio's stream: the same bytes
    problems: list[str] = []
    read = read_metadata(cut, problems)
    assert (read["category"], read["catid"], read["note"]) == ("RAIN", "RAINMetl", "roof mics & ambi")
    assert read["markers"] == "0:00.25 Drip" and problems == []


def test_the_writer_reads_a_points_numbers_as_the_reader_does():
    """A negative HIGH half, and a LOW without HIGH past 32 bits once moved, are left out with
    the note; a point without LOW is at 0 (as engine.ixml reads it: before this excerpt, left
    out unsaid, as any point outside it); an ABSOLUTE point is copied as it is, broken or not."""
    points = [point("Bump", "4000", high="-1"), point("Kept", "9000"), point("Late", "n/a", kind="ABSOLUTE"),
              point("Wide", str(5 << 30)).replace("<SYNC_POINT_HIGH>0</SYNC_POINT_HIGH>", ""),
              point("Start", "").replace("<SYNC_POINT_LOW></SYNC_POINT_LOW>", "")]
    notes: list[str] = []
    moved = ET.fromstring(excerpt_ixml(ixml(0, 0, points), 1000, 1 << 40, RATE, notes=notes))
    assert notes == ["2 sync point(s) left out (SYNC_POINT_HIGH holds '-1', not a sample count …): Bump, Wide"]
    assert [(p.findtext("SYNC_POINT_COMMENT"), p.findtext("SYNC_POINT_LOW")) for p in moved.iter("SYNC_POINT")] == [
        ("Kept", "8000"), ("Late", "n/a")]
    assert moved.findtext("SYNC_POINT_LIST/SYNC_POINT_COUNT") == "2"
    at_start = ET.fromstring(excerpt_ixml(ixml(0, 0, points[-1:]), 0, RATE, RATE, notes=notes))
    assert [p.findtext("SYNC_POINT_COMMENT") for p in at_start.iter("SYNC_POINT")] == ["Start"]


def test_a_sync_point_count_that_is_no_count_is_copied_as_written():
    counted = ixml(0, 0, [point("Bump", "-4000"), sync_point(9000, "Kept")])
    uncounted = counted.replace(b"<SYNC_POINT_COUNT>2<", b"<SYNC_POINT_COUNT>two<")
    assert excerpt_ixml(uncounted, 1000, RATE, RATE, notes=[]) == excerpt_ixml(counted, 1000, RATE, RATE, notes=[]
                                                                              ).replace(b"COUNT>1<", b"COUNT>two<")


def test_without_a_notes_list_the_left_out_points_are_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="soundsift.export"):
        excerpt_ixml(ixml(0, 0, [point("Bump", "-4000")]), 0, RATE, RATE)
    assert [r.getMessage() for r in caplog.records] == ["the excerpt's iXML chunk has 1 sync point(s) left out "
                                                        "(SYNC_POINT_LOW holds '-4000', not a sample count): Bump"]


@pytest.mark.parametrize("broken", [(b"_LO>%d<" % RATE, b"_LO>4.8e4<"),
                                    (b"_RATE>96000<", b"_RATE>n/a<"),
                                    (b"_HIGH>0<", b"_HIGH>-1<")])
def test_a_broken_timestamp_is_left_out_not_copied(broken):
    """A timestamp that cannot be moved cannot be copied either (a reader that took "4.8e4" or
    "-1" would place the excerpt where the recording starts): it is left out, the sync points
    still moved."""
    body = ixml(RATE, RATE, [sync_point(RATE // 2, "Drip")]).replace(*broken, 1)
    notes: list[str] = []
    moved = excerpt_ixml(body, FIRST, RATE, RATE, notes=notes)
    assert len(notes) == 1 and re.search("TIMESTAMP_SAMPLE|BWF_TIME_REFERENCE", notes[0])
    assert broken[1][1:] not in moved and b"<SYNC_POINT_LOW>%d<" % (RATE // 2 - FIRST) in moved


@pytest.mark.parametrize("history, made", [
    (b"T=Nagra &#xD;&#xa;\r\n  &#13;&#010; ", b"T=Nagra&#13;&#10;A=PCM&#13;&#10;"),     # &#010; is a LF too
    (b"A=ANALOGUE&#013;&#010;", b"A=ANALOGUE&#13;&#10;A=PCM&#13;&#10;"),                 # and &#013; a CR
    (b"T=Tom &amp;\r\n", b"T=Tom &amp;\r\nA=PCM\r\n"),
    (b"T=a&#13;b&#9;", b"T=a&#13;b&#9;&#13;&#10;A=PCM&#13;&#10;")])
def test_a_coding_history_loses_only_its_trailing_blanks_and_line_end_references(history, made):
    """The line goes on a line of its own once: a CR or LF written with leading zeros was not
    taken for one, and the history gained an empty line."""
    body = with_bext_copy(f"<BWF_CODING_HISTORY>{history.decode()}</BWF_CODING_HISTORY>")
    moved = excerpt_ixml(body, 0, RATE, RATE, "A=PCM\r\n")
    assert re.search(rb"<BWF_CODING_HISTORY>([^<]*)</BWF_CODING_HISTORY>", moved).group(1) == made
