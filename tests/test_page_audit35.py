"""Session 35's audit of the search page (streamlit AppTest on a tiny-CLAP index of its own, and the
page's components): the results' zip without the files gone since they were indexed, a duration
filter that can pick "under 2 s" in a library holding long files, markers written as the CLI and
the rest of the card write times, and the library root named on the map as on a card."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from engine.catalog import File
from tests.conftest import catalog_session, noise, tone, write
from tests.test_file_metadata import adtl_chunk, cue_chunk, with_trailing_chunk
from tests.test_page_leftovers34 import _clean, _file_id, _searched
from tests.ui_library import as_shown, page_on

SR = 16_000
TAKE_SR = 8_000


def _take(path: Path) -> Path:
    """A 70 s take (8 kHz) with two named cue points: "Door slam" at 1.5 s, "Gate latch" at 61.5 s."""
    write(path, noise(70.0, TAKE_SR, seed=4, amp=0.2), TAKE_SR)
    chunks = cue_chunk((1, int(1.5 * TAKE_SR)), (2, int(61.5 * TAKE_SR))) + adtl_chunk(
        (b"labl", 1, "Door slam"), (b"labl", 2, "Gate latch"))
    path.write_bytes(with_trailing_chunk(path.read_bytes(), chunks))
    return path


def _build(base: Path) -> Path:
    """A click, a beep, a door and a hum, the take, and a room tone at the library's root; the root."""
    root = base / "library"
    write(root / "ui" / "click.wav", tone(2000, 0.5, SR), SR)
    write(root / "ui" / "beep.wav", tone(1000, 1.5, SR), SR)
    write(root / "doors" / "door.wav", noise(3.0, SR, seed=3, amp=0.3), SR)
    write(root / "doors" / "hum.wav", tone(120, 4.0, SR), SR)
    write(root / "room_tone.wav", noise(2.5, SR, seed=9, amp=0.05), SR)
    _take(root / "takes" / "take_001.wav")
    return root


def _index(base: Path, tiny_clap_dir: Path) -> Path:
    from indexer import build_index
    root = _build(base)
    summary = build_index([root], index=base / "index", model=str(tiny_clap_dir), workers=0, progress=False)
    assert summary.added == 6, summary
    return base / "index"


@pytest.fixture(scope="module")
def audit_index(tmp_path_factory, tiny_clap_dir) -> Path:  # noqa: F811
    """The index of :func:`_build`'s library (not to be changed: a test that deletes builds its own)."""
    return _index(tmp_path_factory.mktemp("page_audit35"), tiny_clap_dir)


def _names(app) -> list[str]:
    return [m.value.split(". ", 1)[1].strip("*").replace("\\", "") for m in app.markdown
            if m.value.startswith("**") and ". " in m.value and m.value.endswith("**")]


# 1. the results' zip --------------------------------------------------------------------------------

def test_the_zip_leaves_out_a_file_gone_since_it_was_indexed_and_says_so(tmp_path, tiny_clap_dir, monkeypatch):  # noqa: F811
    """door.wav deleted after the page showed it: its card said "No download", but the button
    below still read "Download these 6 results" and zipped it as a failure. hum.wav emptied (a
    failed sync): its card offered its File, an empty download, and the zip listed it as not
    exported. Both are left out now, the button counts the four left, a caption beside it names
    the two, and the emptied file's card says so instead of its downloads."""
    index = _index(tmp_path, tiny_clap_dir)
    app = _searched(index, monkeypatch)
    assert app.get("download_button")[-1].proto.label == "Download these 6 results (.zip)"
    hum = tmp_path / "library" / "doors" / "hum.wav"
    size = hum.stat().st_size
    (tmp_path / "library" / "doors" / "door.wav").unlink()
    hum.write_bytes(b"")
    app.run()
    _clean(app)
    assert app.get("download_button")[-1].proto.label == "Download these 4 results (.zip)"
    notes = [c.value for c in app.caption if "Not in the zip" in c.value]
    assert len(notes) == 1 and notes[0].endswith("; index the library again"), notes
    assert "door.wav (no longer where it was indexed)" in notes[0] and "hum.wav (empty now)" in notes[0], notes
    emptied = [c.value for c in app.caption if "No download: hum.wav" in c.value]
    assert emptied == [f":material/warning: No download: hum.wav is empty now (0 bytes; {size:,} bytes when it "
                       "was indexed); index the library again"], emptied
    assert not [b for b in app.get("download_button") if b.proto.id.endswith(f"_{_file_id(index, 'hum.wav')}")]


def test_the_zip_holds_the_files_still_there_under_their_cards_ranks(tmp_path):
    """The zip of three results, the second deleted since its card was drawn: the button counts
    two; the zip holds the first and the third under their cards' ranks (01, 03), the manifest,
    and not-exported.txt naming the one left out, as the caption beside the button does."""
    from engine.query_hits import Hit
    from ui.components.downloads import left_out_note, results_download

    listed = []
    for i, name in enumerate(("a.wav", "b.wav", "c.wav"), start=1):
        path = write(tmp_path / name, tone(300 + 100 * i, 1.0, SR), SR)
        hit = Hit(str(path), 0.0, 1.0, 0.5, i, i, 1.0, "WAV", SR)
        listed.append((hit, SimpleNamespace(path=str(path), name=name, duration=1.0, size=path.stat().st_size,
                                            sample_rate=SR, channels=1)))
    assert left_out_note(listed) is None
    (tmp_path / "b.wav").unlink()
    button = results_download(listed, "tones")
    assert button["label"] == "Download these 2 results (.zip)" and not button["disabled"]
    with zipfile.ZipFile(io.BytesIO(button["data"]())) as zf:
        assert zf.namelist() == ["01_a.wav", "03_c.wav", "soundsift-export.csv", "not-exported.txt"]
        assert zf.read("not-exported.txt").decode().startswith(f"{tmp_path / 'b.wav'}: not found")
    assert left_out_note(listed) == ":material/warning: Not in the zip: b.wav (no longer where it was indexed); " \
                                    "index the library again"
    for _, record in listed:
        Path(record.path).unlink(missing_ok=True)
    nothing = results_download(listed, "tones")
    assert nothing["disabled"] and nothing["label"] == "Download the results (.zip)", nothing["label"]


# 2. the duration filter -----------------------------------------------------------------------------

def test_the_duration_filter_picks_short_files_in_a_library_with_long_ones(audit_index, monkeypatch):
    """The 70 s take made the slider run 0–70 in whole seconds (to an hour: 14 s a pixel on the
    sidebar's width), so "under 2 s" could not be picked; its stops are half seconds at the short
    end now, minutes beyond, and the longest file at the top."""
    app = _searched(audit_index, monkeypatch)
    duration = app.sidebar.select_slider(key="f_duration")
    assert duration.options[:5] == ["0 s", "0.5 s", "1 s", "1.5 s", "2 s"], duration.options
    assert duration.options[-3:] == ["45 s", "1:00", "1:10"], duration.options
    duration.set_range(0.0, 2.0).run()
    _clean(app)
    assert sorted(_names(app)) == ["beep.wav", "click.wav"]
    app.sidebar.select_slider(key="f_duration").set_range(60.0, 70.0).run()
    assert _names(app) == ["take_001.wav"]
    app.sidebar.select_slider(key="f_duration").set_range(0.0, 70.0).run()       # the full range filters nothing
    assert len(_names(app)) == 6 and not [c for c in app.sidebar.caption if "Filters are on" in c.value]


def test_the_duration_stops_grow_with_the_length():
    """An hour-long library: half seconds up to 2 s, then whole seconds, minutes, the hour; each
    written as a clock from a minute on."""
    from ui.components.duration_filter import duration_stops
    from ui.components.times import stop_text
    stops = duration_stops(3600.0)
    assert stops[:6] == [0.0, 0.5, 1.0, 1.5, 2.0, 3.0] and stops[-1] == 3600.0
    assert stops == sorted(set(stops)) and len(stops) < 50
    assert [stop_text(s) for s in (0.5, 45.0, 90.0, 3600.0, 3601.5)] == ["0.5 s", "45 s", "1:30", "1:00:00",
                                                                         "1:00:01.50"]
    assert duration_stops(61.0)[-2:] == [60.0, 61.0]


# 3. markers -----------------------------------------------------------------------------------------

def test_markers_are_written_as_the_card_writes_times(audit_index, monkeypatch):
    """The take's card listed its markers as the catalog keeps them, "0:01.5 Door slam · 1:01.5
    Gate latch", beside a duration "1:10.00" and a badge "Door slam at 1.5 s": as a clock in
    hundredths now, as the card writes a span that passes a minute; the badge to the hundredth
    as the catalog keeps markers since session 36, "at 1.50 s"."""
    app = _searched(audit_index, monkeypatch, "door slam", keywords="true")
    about = [as_shown(c.value) for c in app.caption if "markers" in c.value]
    assert about == ["markers 0:01.50 Door slam · 1:01.50 Gate latch"], about
    badges = [m.value for m in app.markdown if ":material/bookmark:" in m.value]
    assert badges == [":violet-badge[:material/bookmark: Door slam at 1.50 s]"], badges


def test_markers_within_the_first_minute_read_as_the_card_s_seconds():
    """A take's markers all within its first minute: "1.20 s Door slam" as its badge and its match
    write that moment, not "0:01.2" (to the hundredth since session 36, a catalog's one-decimal
    value from before too); a value the page cannot read is shown as stored."""
    from ui.components.times import markers_text, with_marker_times
    assert markers_text("0:00.5 Click · 0:01.2 Door slam · 0:03.5 Creak") == "0.50 s Click · 1.20 s Door slam · 3.50 s Creak"
    assert markers_text("0:01.2 Door slam · 61:05.3 End") == "0:01.20 Door slam · 1:01:05.30 End"
    assert markers_text("not a marker") == "not a marker"
    assert with_marker_times({"title": "x"}) == {"title": "x"}
    assert with_marker_times({"markers": "0:01.2 A"}) == {"markers": "1.20 s A"}


# 4. the map ----------------------------------------------------------------------------------------

def test_the_map_names_the_library_root_as_a_card_does(audit_index, monkeypatch):
    """room_tone.wav lies at the library's root: the map's legend and tooltip called its folder
    ".", where its card names the root in full."""
    from ui.components.overview_tab import build_map_data
    root = str((audit_index.parent / "library").resolve())
    with catalog_session(audit_index) as s:
        ids, paths = zip(*s.execute(select(File.id, File.path).order_by(File.id)))
    import numpy as np
    rows = build_map_data(ids, np.eye(len(ids), 8, dtype=np.float32), paths, root)
    folders = {r["name"]: r["folder"] for r in rows}
    assert folders["room_tone.wav"] == root and folders["door.wav"] == "doors", folders
    app = _searched(audit_index, monkeypatch)
    card = next(c.value for c in app.caption if "2.5 s · WAV" in c.value)
    assert card.startswith(f":material/folder: {root.replace('_', chr(92) + '_')} · "), card


# 5. picks --------------------------------------------------------------------------------------------

def _pick_boxes(app) -> list:
    return [c for c in app.checkbox if c.key and c.key.startswith("pick_")]


def test_clear_picks_unticks_the_boxes_in_the_browser(audit_index, monkeypatch):
    """"Clear picks" dropped the picks and the boxes' state on the server, but sent the browser
    nothing to untick: its box stayed ticked, and the next search sent it back ticked, picking the
    file again ("Picked: door.wav" came back). The boxes are set unticked now, which the browser
    is told (the checkbox's set_value), and a later search keeps the picks empty."""
    app = _searched(audit_index, monkeypatch)
    _pick_boxes(app)[1].check().run()
    assert len(app.session_state["picked"]) == 1
    app.button(key="clear_picks").click().run()
    _clean(app)
    box = _pick_boxes(app)[1]
    assert (box.proto.value, box.proto.set_value) == (False, True), box.proto
    assert app.session_state["picked"] == {}
    app.text_input(key="q").set_value("a door").run()
    _clean(app)
    assert app.session_state["picked"] == {} and not [c for c in app.caption if "Picked" in c.value]


# 6. the results' heading -----------------------------------------------------------------------------

def test_a_pasted_page_of_text_is_not_repeated_whole_in_the_heading(audit_index, monkeypatch):
    """A 3,000-character query (a paste gone wrong) was repeated whole in bold above the results,
    filling the screen; the heading shows its first words now, and the search still uses all of it."""
    text = "heavy rain on a tin roof " * 120
    app = _searched(audit_index, monkeypatch, text)
    heading = next(m.value for m in app.markdown if " shown" in m.value)
    assert heading.startswith("Results for **heavy rain on a tin roof") and " …**" in heading, heading
    assert len(heading) < 200, len(heading)
    assert app.session_state["q"] == text


def test_an_index_whose_every_file_failed_says_so_not_index_a_library_first(tmp_path, tiny_clap_dir, monkeypatch):  # noqa: F811
    """A library whose only files could not be read was indexed: the Search tab said "The index
    holds no files yet: index a library first", as if nothing had been run; it says they failed now."""
    from indexer import build_index
    (tmp_path / "lib").mkdir()
    for name in ("a.wav", "b.wav"):
        (tmp_path / "lib" / name).write_bytes(b"RIFF but not a wave file")
    summary = build_index([tmp_path / "lib"], index=tmp_path / "index", model=str(tiny_clap_dir), workers=0,
                          progress=False)
    assert (summary.added, summary.failed) == (0, 2), summary
    app = page_on(tmp_path / "index", monkeypatch)
    app.query_params["q"] = "rain"
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    assert [i.value for i in app.info] == [
        "The index holds no files: the 2 files indexed could not be read (the Overview tab's Failed files says "
        "why). Index a library of audio files, then search again."], [i.value for i in app.info]


def test_a_file_emptied_between_the_drawing_and_the_click_is_not_an_empty_download(tmp_path):
    """The card's File button of a file emptied after the card was drawn downloaded 0 bytes without
    a word; the download fails now as for a file gone, its reason logged in one line, as the zip's
    export refuses an empty file."""
    from engine.errors import UnreadableAudio
    from ui.components.downloads import downloads
    path = write(tmp_path / "hum.wav", tone(120, 1.0, SR), SR)
    record = SimpleNamespace(path=str(path), duration=1.0, size=path.stat().st_size, sample_rate=SR, channels=1)
    file_button = downloads(SimpleNamespace(start=0.0, end=1.0), record)[-1]
    assert file_button["data"]() == path.read_bytes()
    path.write_bytes(b"")
    with pytest.raises(UnreadableAudio, match="empty: the file is 0 bytes now"):
        file_button["data"]()


def test_a_card_says_why_it_cannot_draw_a_file_gone_or_emptied(tmp_path):
    """A card drawn for the first time after its file was deleted read "cannot draw its waveform
    (Error opening …: System error.)", and one emptied "… Format not recognised."; they name the
    reason now."""
    from engine.errors import UnreadableAudio
    from ui.components.thumbnails import waveform_png
    with pytest.raises(UnreadableAudio, match="not found: deleted or renamed"):
        waveform_png(str(tmp_path / "gone.wav"), 1.0, 0.0, 1.0)
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(UnreadableAudio, match="empty: the file is 0 bytes now"):
        waveform_png(str(tmp_path / "empty.wav"), 1.0, 0.0, 1.0)
