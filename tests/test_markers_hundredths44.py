"""Named markers stored to the hundredth (engine.markers): "0:02.25 Door slam", rounded before
it is split into minutes and seconds (59.996 s is "1:00.00", not "0:60.00"); the catalog's value,
the CLI's marker column, the JSON's ``marker_at``, the page's card and badge and the
sheet export's Markers column agree to the hundredth; a catalog's one-decimal value from before
still reads, and the next index run reads it again to the hundredth."""
from __future__ import annotations

import io

import pytest

from engine.catalog import FileMetadata, Meta, set_meta
from engine.file_metadata import read_metadata
from engine.markers import Marker, _markers, parse_markers
from engine.query import SoundIndex
from engine.sheet_export import library_rows
from indexer import build_index
from tests.conftest import catalog_session, noise, write
from tests.index_fakes import FakeModel
from tests.test_file_metadata import aiff_with_markers
from ui.components.times import markers_text
from ui.demo import append_markers


def test_a_marker_is_stored_to_the_hundredth_without_a_sixtieth_second():
    assert _markers([Marker(2.25, "Door slam"), Marker(3.5, "Creak")]) == "0:02.25 Door slam · 0:03.50 Creak"
    assert _markers([Marker(59.996, "Gate")]) == "1:00.00 Gate"               # not "0:60.00"
    assert _markers([Marker(119.97, "Bell"), Marker(119.996, "Horn")]) == "1:59.97 Bell · 2:00.00 Horn"
    assert _markers([Marker(4500.004, "Late")]) == "75:00.00 Late"            # minutes past 59 as they are
    assert parse_markers("1:00.00 Gate") == [(60.0, "Gate")]


def test_both_the_old_and_the_new_text_parse_with_names_holding_digits_and_colons():
    old = "0:01.2 Door slam · 1:03.5 Take 2: 0:04 slate"                      # read before session 36
    assert parse_markers(old) == [(1.2, "Door slam"), (63.5, "Take 2: 0:04 slate")]
    new = "0:01.25 12:30 Bell · 0:02.50 3 knocks · 12:00.07 Take 0:01.5"
    assert parse_markers(new) == [(1.25, "12:30 Bell"), (2.5, "3 knocks"), (720.07, "Take 0:01.5")]
    assert parse_markers("0:01.255 Too fine · 0:1.25 No pad") == []           # not the stored form
    assert markers_text(old) == "0:01.20 Door slam · 1:03.50 Take 2: 0:04 slate"
    assert markers_text("0:01.2 A · 0:03.5 B") == "1.20 s A · 3.50 s B"
    assert markers_text("0:02.25 A · 0:59.99 B") == "2.25 s A · 59.99 s B"
    assert markers_text("0:02.25 A · 1:00.00 B") == "0:02.25 A · 1:00.00 B"    # a clock from a minute on


def test_marker_text_rounds_as_the_catalog_and_the_cli_do():
    from engine.markers import marker_time
    from engine.query_span import clock
    from ui.components.times import marker_text
    for at in (2.25, 2.245, 2.255, 0.005, 59.994, 59.995, 59.996, 61.5, 3599.996):
        hundredths = marker_time(at).split(":")[-1][-2:]
        assert clock(at)[-2:] == hundredths and marker_text(at).removesuffix(" s")[-2:] == hundredths, at
    assert (marker_text(2.25), marker_text(59.996), marker_text(61.5)) == ("2.25 s", "1:00.00", "1:01.50")


def test_a_marker_at_a_minute_is_stored_as_one_in_a_wav(tmp_path):
    path = write(tmp_path / "long.wav", noise(61.0, 8000, seed=2, amp=0.05), 8000)
    append_markers(path, [(59.996, "Gate"), (1.0, "Start")])
    assert read_metadata(path)["markers"] == "0:01.00 Start · 1:00.00 Gate"


def test_a_cue_sheets_and_an_aiffs_markers_to_the_hundredth(tmp_path):
    wav = write(tmp_path / "disc.wav", noise(4.0, 16000, seed=4), 16000)
    (tmp_path / "disc.cue").write_text('FILE "disc.wav" WAVE\n  TRACK 01 AUDIO\n    TITLE "Dog barking"\n'
                                       '    INDEX 01 00:00:00\n  TRACK 02 AUDIO\n    TITLE "Door slam"\n'
                                       '    INDEX 01 00:02:19\n')                 # 2 s 19/75: 2.2533 s
    assert read_metadata(wav)["markers"] == "0:00.00 Dog barking · 0:02.25 Door slam"
    aiff = tmp_path / "foley.aiff"
    aiff_with_markers(aiff, 4.0, 22_050, [(1, 11_025, "Keys jingle"), (2, 49_613, "Zip")])    # 2.25002 s
    assert read_metadata(aiff)["markers"] == "0:00.50 Keys jingle · 0:02.25 Zip"


def _library(tmp_path):
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    path = write(lib / "doors.wav", noise(4.0, 16000, seed=5), 16000)
    append_markers(path, [(0.5, "Hinge squeal"), (2.25, "Door slam")])
    write(lib / "rain.wav", noise(3.0, 16000, seed=6), 16000)
    return lib, idx


def test_a_marker_at_2_25_s_is_2_25_everywhere(tmp_path, monkeypatch):
    """The catalog, the CLI table's marker column, the JSON, the page's card and
    badge and the sheet export all say 2.25 for a marker written at 2.25 s."""
    from rich.console import Console

    from ui.cli import results
    from ui.components.library import Library
    from ui.components.times import marker_text
    lib, idx = _library(tmp_path)
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    with SoundIndex.open(idx, model=FakeModel()) as index:
        hit = index.search_text("door slam", k=1, keywords=True)[0]
        stored = index.get_file(hit.file_id)["metadata"]["markers"]
    assert stored == "0:00.50 Hinge squeal · 0:02.25 Door slam"
    assert (hit.marker, hit.start, hit.to_dict()["marker_at"]) == ("Door slam", 2.25, 2.25)    # the JSON
    buf = io.StringIO()
    monkeypatch.setattr(results, "out_console", Console(file=buf, width=300, markup=False))
    results.show_hits([hit], False, "search 'door slam'")
    assert "0:02.25 Door slam" in buf.getvalue()                             # the marker column
    record = Library(idx).files([hit.file_id])[hit.file_id]
    assert "markers 0.50 s Hinge squeal · 2.25 s Door slam" in record.about    # the card
    assert record.marks == (0.5, 2.25)                                        # the waveform's ticks
    assert marker_text(hit.marker_at) == "2.25 s"                             # the badge
    rows = {r["Filename"]: r for r in library_rows(idx)}
    assert rows["doors.wav"]["Markers"] == "0:00.50 Hinge squeal · 0:02.25 Door slam"


def test_an_index_with_one_decimal_markers_keeps_working_and_is_read_again(tmp_path):
    """A catalog read before session 36 (reader 13) holds "0:02.2 Door slam": keyword search
    still names the take (the stored time is within the take's tolerance); the next index run
    reads the files' metadata again, without embedding them, and stores "0:02.25"."""
    lib, idx = _library(tmp_path)
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    with catalog_session(idx, write=True) as s:
        s.query(FileMetadata).filter(FileMetadata.key == "markers").update(
            {"value": "0:00.5 Hinge squeal · 0:02.2 Door slam"})
        s.query(Meta).filter(Meta.key == "metadata_reader").delete()
        set_meta(s, metadata_reader=13)
    with SoundIndex.open(idx, model=FakeModel()) as index:
        hit = index.search_text("door slam", k=1, keywords=True)[0]
        assert (hit.marker, hit.marker_at) == ("Door slam", 2.25)
        assert index.get_file(hit.file_id)["metadata"]["markers"] == "0:00.5 Hinge squeal · 0:02.2 Door slam"
    again = build_index([lib], idx, FakeModel(), workers=0, progress=False)
    assert (again.metadata_reread, again.updated, again.unchanged) == (2, 0, 2)
    with SoundIndex.open(idx, model=FakeModel()) as index:
        hit = index.search_text("door slam", k=1, keywords=True)[0]
        assert index.get_file(hit.file_id)["metadata"]["markers"] == "0:00.50 Hinge squeal · 0:02.25 Door slam"
    assert build_index([lib], idx, FakeModel(), workers=0, progress=False).metadata_reread == 0


@pytest.mark.parametrize("stored, shown", [("0:02.2 Door slam", "2.20 s Door slam"),
                                           ("0:02.25 Door slam", "2.25 s Door slam"),
                                           ("not a marker", "not a marker")])
def test_the_card_reads_either_text(stored, shown):
    assert markers_text(stored) == shown
