"""An iXML sync point's numbers are sample counts: SYNC_POINT_HIGH/LOW are the unsigned 32-bit
halves of one, SYNC_POINT_EVENT_DURATION a count too. ``int()`` took "-4000", "+4000" and
"4_000" as numbers, so a negative HIGH put a RELATIVE point 74 hours before the file ("a
negative offset"), a negative ABSOLUTE one was "earlier than its bext time reference", a
negative duration became none; and a cue whose numbers did not parse at all ("n/a") was left out
without a word. Each is now left out in one note naming the file's points and the element."""
from __future__ import annotations

from engine.file_metadata import Marker, named_markers, read_metadata
from tests.conftest import noise
from tests.test_bad_inputs import pcm16, wav_bytes
from tests.test_file_metadata import sync_point
from tests.test_metadata_leftovers33 import _bext, _ixml

RATE = 16000
START = 10 * 3600 * RATE                                    # the bext time reference: 10:00:00


def point(name: str, low: str, high: str = "0", kind: str = "RELATIVE", duration: str = "0") -> str:
    """A SYNC_POINT holding the texts given, as they are."""
    return (f"<SYNC_POINT><SYNC_POINT_TYPE>{kind}</SYNC_POINT_TYPE><SYNC_POINT_COMMENT>{name}</SYNC_POINT_COMMENT>"
            f"<SYNC_POINT_LOW>{low}</SYNC_POINT_LOW><SYNC_POINT_HIGH>{high}</SYNC_POINT_HIGH>"
            f"<SYNC_POINT_EVENT_DURATION>{duration}</SYNC_POINT_EVENT_DURATION></SYNC_POINT>")


def notes(tmp_path, points: list[str]) -> tuple[str, list[str]]:
    """The markers and notes of a 1 s WAV at 10:00:00 with the iXML sync ``points``."""
    path = tmp_path / "take.wav"
    path.write_bytes(wav_bytes(pcm16(noise(1.0, RATE)), extra_chunks=_bext(START) + _ixml(points)))
    problems: list[str] = []
    return read_metadata(path, problems).get("markers", ""), problems


def test_a_negative_high_half_is_not_a_count_not_74_hours_before_the_file(tmp_path):
    markers, problems = notes(tmp_path, [point("Bump", "4000", high="-1"), sync_point(8000, "Car pass")])
    assert markers == "0:00.50 Car pass"
    assert problems == ["1 iXML sync point(s) left out (SYNC_POINT_HIGH holds '-1', not a sample count): Bump"]


def test_a_negative_absolute_point_is_not_earlier_than_the_time_reference(tmp_path):
    markers, problems = notes(tmp_path, [point("Slate", "-16000", kind="ABSOLUTE"),
                                         sync_point(START + 4000, "Clap", "ABSOLUTE")])
    assert markers == "0:00.25 Clap"
    assert problems == ["1 iXML sync point(s) left out (SYNC_POINT_LOW holds '-16000', not a sample count): Slate"]


def test_points_whose_numbers_are_not_counts_are_named_in_one_note_not_dropped_unsaid(tmp_path):
    """"n/a" was left out without a word; "+4000", "4_000" and a negative duration were read as
    if they were counts. One note names them all, with the first reason (… for more)."""
    markers, problems = notes(tmp_path, [point("Broken", "n/a"), point("Signed", "+4000"), point("Grouped", "4_000"),
                                         point("Backwards", "4000", duration="-800"), point(" Door ", " 8000 ")])
    assert markers == "0:00.50 Door"                         # blanks around a count are the XML's layout
    assert problems == ["4 iXML sync point(s) left out (SYNC_POINT_LOW holds 'n/a', not a sample count …): "
                        "Broken, Signed, Grouped, Backwards"]
    assert named_markers(tmp_path / "take.wav") == [Marker(0.5, "Door")]
