"""Cue sheets (engine.cue_sheet): a sidecar ``.cue``, a FLAC's CUESHEET comment and its CUESHEET
block give a long recording's tracks as named markers; the indexer cuts each as a take, keyword
search finds the titles, and a sheet added, edited or removed later cuts the takes again."""
from __future__ import annotations

import io
import os
import struct

import pytest

from engine.cue_sheet import CueTrack, cue_time, cue_tracks, sidecar_cue
from engine.file_metadata import Marker, named_markers, read_metadata
from engine.filters import Filters
from engine.query import SoundIndex
from engine.text_encoding import decode_text
from indexer import build_index
from indexer.scan import scan
from indexer.watch import changes, snapshot
from tests.conftest import catalog_session, noise, write
from tests.index_fakes import FakeModel
from tests.test_file_metadata import flac_with_comments

DISC = """REM GENRE "Sound Effects"
PERFORMER "Field Recordist"
TITLE "Disc 12"
FILE "disc12.wav" WAVE
  TRACK 01 AUDIO
    TITLE "Dog barking"
    INDEX 01 00:00:00
  TRACK 02 AUDIO
    TITLE "Rain on a roof"
    INDEX 00 00:01:30
    INDEX 01 00:01:45
  TRACK 03 AUDIO
    TITLE "Door slam"
    INDEX 01 00:04:15
"""
#: the takes of DISC in a 6 s file (FakeModel: 2 s windows, 1 s hop): to the next track's pregap,
#: one window, the end of the file
DISC_TAKES = {(0.0, 1.4): "Dog barking", (1.6, 3.6): "Rain on a roof", (4.2, 6.0): "Door slam"}
WINDOWS = {(0.0, 2.0), (1.0, 3.0), (2.0, 4.0), (3.0, 5.0), (4.0, 6.0)}


def spans(index: SoundIndex, path) -> dict[tuple[float, float], str | None]:
    """Every segment of ``path`` → the marker naming it (None for a regular window)."""
    return {(round(h.start, 3), round(h.end, 3)): h.marker
            for h in index.search_text("x", k=200, per_file=False) if h.path == str(path)}


def cuesheet_block(tracks, lead_in: int = 88200, is_cd: bool = True) -> bytes:
    """A FLAC CUESHEET block of ``tracks`` ((offset, number, [(index offset, index number)]));
    byte for byte what metaflac 1.4.2 --import-cuesheet-from writes (checked once by hand)."""
    body = b"\0" * 128 + struct.pack(">Q", lead_in) + bytes([0x80 if is_cd else 0]) + b"\0" * 258 + bytes([len(tracks)])
    for offset, number, points in tracks:
        body += struct.pack(">QB", offset, number) + b"\0" * 26 + bytes([len(points)])
        for point_offset, point in points:
            body += struct.pack(">QB", point_offset, point) + b"\0" * 3
    return body


def test_cue_times_and_text():
    assert cue_time("04:12:37") == pytest.approx(252 + 37 / 75)
    assert cue_time("120:00:00") == 7200.0                   # minutes past 99 on long recordings
    for bad in ("1:60:00", "1:00:75", "1:00", "ab:cd:ef"):
        with pytest.raises(ValueError):
            cue_time(bad)
    assert decode_text(b'\xef\xbb\xbfTITLE "Caf\xc3\xa9"') == 'TITLE "Café"'      # UTF-8 with a BOM
    assert decode_text('TITLE "Café – bar"'.encode("cp1252")) == 'TITLE "Café – bar"'
    assert decode_text(b'\x81\x8d') == '\x81\x8d'                           # not cp1252 either: Latin-1
    assert decode_text('TITLE "Café"'.encode("utf-16")) == 'TITLE "Café"'     # EAC's "Unicode" cue sheets
    assert decode_text('TITLE "Café"'.encode("utf-16-be").join([b"\xfe\xff", b""])) == 'TITLE "Café"'


def test_a_sheet_naming_several_files_gives_each_its_tracks():
    sheet = """FILE "Disc 1\\side_a.wav" WAVE
  TRACK 01 AUDIO
    TITLE "Thunder, distant"
    INDEX 01 00:00:00
  TRACK 02 AUDIO
    TITLE Wind
    INDEX 01 00:10:00
  TRACK 03 AUDIO
    INDEX 00 00:20:00
FILE "side_b.wav" WAVE
    INDEX 01 00:00:00
  TRACK 04 AUDIO
    TITLE "Sirens"
    INDEX 01 00:05:00
  TRACK 05 AUDIO
    TITLE "no index point"
"""
    # matched by name (a Windows path), then by name without extension (a rip converted to FLAC)
    assert cue_tracks(sheet, "SIDE_A.WAV") == cue_tracks(sheet, "side_a.flac") == [
        CueTrack(0.0, "Thunder, distant", 10.0), CueTrack(10.0, "Wind", None)]
    # track 3's pregap is in side_a, its audio in side_b; untitled tracks keep their number
    assert cue_tracks(sheet, "side_b.flac") == [CueTrack(0.0, "Track 03", 5.0), CueTrack(5.0, "Sirens", None)]
    assert cue_tracks(sheet, "other.wav") == []
    # two tracks at one time (a sheet written by hand): both kept, in the sheet's order
    twice = 'FILE "a.wav" WAVE\n TRACK 01 AUDIO\n  INDEX 01 00:00:00\n TRACK 02 AUDIO\n  INDEX 01 00:00:00\n'
    assert [t.name for t in cue_tracks(twice, "a.wav")] == ["Track 01", "Track 02"]
    # a sheet naming one file applies to the file it sits beside, whatever name it gives
    assert [t.name for t in cue_tracks(DISC, "renamed.flac")] == ["Dog barking", "Rain on a roof", "Door slam"]


def test_a_sidecar_cue_sheet_names_the_takes_of_a_long_recording(tmp_path):
    lib = tmp_path / "lib"
    disc = write(lib / "disc12.wav", noise(6.0, 16000, seed=4), 16000)
    (lib / "disc12.cue").write_text(DISC, encoding="cp1252")
    assert sidecar_cue(disc) == str(lib / "disc12.cue")
    assert named_markers(disc) == [Marker(0.0, "Dog barking", 1.4), Marker(1.6, "Rain on a roof", pytest.approx(2.6)),
                                   Marker(4.2, "Door slam", None)]
    assert read_metadata(disc)["markers"] == "0:00.00 Dog barking · 0:01.60 Rain on a roof · 0:04.20 Door slam"
    assert named_markers(io.BytesIO(disc.read_bytes())) == []       # an upload has no sidecar

    other = write(lib / "hum.wav", noise(1.0, 16000, seed=5), 16000)       # the name.ext.cue form
    (lib / "hum.wav.CUE").write_text('FILE "hum.wav" WAVE\n TRACK 01 AUDIO\n  TITLE "Mains hum"\n'
                                     '  INDEX 01 00:00:30\n')
    assert named_markers(other) == [Marker(0.4, "Mains hum", None)]

    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        assert spans(index, disc.resolve()) == {**dict.fromkeys(WINDOWS), **DISC_TAKES}
        hit = index.search_text("a door slam", k=1, keywords=True)[0]
        assert (hit.path, hit.marker, hit.start, hit.end) == (str(disc.resolve()), "Door slam", 4.2, 6.0)


def test_a_flacs_cue_sheet_comment_and_its_cuesheet_block(tmp_path):
    """The CUESHEET comment (titles) wins over the CUESHEET block (numbers only), which alone
    still names the tracks by number; both are read from an upload too."""
    wave = noise(20.0, 44100, seed=6)
    block = cuesheet_block([(0, 1, [(0, 1)]), (220_500, 2, [(0, 0), (61_740, 1)]), (572_712, 3, [(0, 1)]),
                            (882_000, 170, [])])
    both = flac_with_comments(tmp_path / "both.flac", {"CUESHEET": DISC}, wave, 44100, ((5, block),))
    numbered = flac_with_comments(tmp_path / "numbered.flac", {}, wave, 44100, ((5, block),))
    assert named_markers(both) == [Marker(0.0, "Dog barking", 1.4), Marker(1.6, "Rain on a roof", pytest.approx(2.6)),
                                   Marker(4.2, "Door slam", None)]
    assert named_markers(numbered) == [Marker(0.0, "Track 01", 5.0), Marker(6.4, "Track 02", pytest.approx(6.5867, abs=1e-4)),
                                       Marker(pytest.approx(12.9867, abs=1e-4), "Track 03", pytest.approx(7.0133, abs=1e-4))]
    assert named_markers(io.BytesIO(numbered.read_bytes())) == named_markers(numbered)
    assert read_metadata(numbered)["markers"] == "0:00.00 Track 01 · 0:06.40 Track 02 · 0:12.99 Track 03"
    # a block cut short gives what it holds
    short = flac_with_comments(tmp_path / "short.flac", {}, wave, 44100, ((5, block[:396 + 36 + 12 + 20]),))
    assert [m.name for m in named_markers(short)] == ["Track 01"]


def test_an_added_edited_or_removed_cue_sheet_cuts_the_takes_again(tmp_path):
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    disc = write(lib / "disc12.wav", noise(6.0, 16000, seed=4), 16000).resolve()
    write(lib / "other.wav", noise(2.0, 16000, seed=8), 16000)

    def run():
        return build_index([lib], idx, FakeModel(), workers=0, progress=False)

    def segments():
        with SoundIndex.open(idx, model=FakeModel()) as index:
            return spans(index, disc)
    run()
    assert segments() == dict.fromkeys(WINDOWS)
    from indexer.user_tags import add_tags, tag_counts
    add_tags(idx, [str(disc)], ["keeper"])
    sheet = lib / "disc12.cue"
    sheet.write_text(DISC)
    s = run()
    assert (s.updated, s.unchanged) == (1, 1)                 # only the file the sheet describes
    assert segments() == {**dict.fromkeys(WINDOWS), **DISC_TAKES}
    assert tag_counts(idx) == {"keeper": 1}                   # the same audio: its tags stay
    assert (run().updated, run().unchanged) == (0, 2)

    sheet.write_text(DISC.replace("Door slam", "Thunder clap"))
    os.utime(sheet, ns=(sheet.stat().st_atime_ns, sheet.stat().st_mtime_ns + 10**9))
    assert run().updated == 1                                 # the same times, another title
    with SoundIndex.open(idx, model=FakeModel()) as index:
        hit = index.search_text("thunder clap", k=1, keywords=True)[0]
        assert hit.marker == "Thunder clap"
        assert index.get_file(hit.file_id)["metadata"]["markers"].endswith("0:04.20 Thunder clap")

    from engine.catalog import Meta, set_meta      # an older metadata reader: the re-read
    with catalog_session(idx, write=True) as s_:   # keeps the sheet the takes were cut with
        s_.query(Meta).filter(Meta.key == "metadata_reader").delete()
        set_meta(s_, metadata_reader=4)
    s = run()
    assert (s.metadata_reread, s.updated) == (2, 0)

    sheet.unlink()
    assert run().updated == 1
    assert segments() == dict.fromkeys(WINDOWS)
    with SoundIndex.open(idx, model=FakeModel()) as index:
        file_id = index.search_text("x", k=1, filters=Filters(tags=("keeper",)))[0].file_id
        assert "markers" not in index.get_file(file_id)["metadata"]
    assert run().updated == 0


def test_the_walk_and_the_watcher_see_cue_sheets(tmp_path):
    lib = tmp_path / "lib"
    disc = write(lib / "disc12.wav", noise(1.0, 16000, seed=4), 16000)
    sheet = lib / "disc12.cue"
    sheet.write_text(DISC)
    walked = scan([lib])
    assert set(walked.cue_sheets) == {str(sheet.resolve())} and walked.cue_folders() == {str(lib.resolve())}
    assert set(scan([disc]).cue_sheets) == {str(sheet.resolve())}          # a single file given as a root
    before = snapshot([lib])
    sheet.write_text(DISC + "REM edited\n")
    assert changes(before, snapshot([lib])) == (0, 1, 0)


def ogg_with_comments(path, comments: dict[str, str], subtype: str = "VORBIS", seconds: float = 6.0):
    """An Ogg Vorbis or Opus file written by libsndfile, its comments then written by mutagen
    (an Ogg writer that is not ours)."""
    import soundfile as sf
    from mutagen.oggopus import OggOpus
    from mutagen.oggvorbis import OggVorbis
    rate = 48000 if subtype == "OPUS" else 16000
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), noise(seconds, rate, seed=4), rate, format="OGG", subtype=subtype)
    tagged = (OggOpus if subtype == "OPUS" else OggVorbis)(str(path))
    for key, value in comments.items():
        tagged[key] = value
    tagged.save()
    return path


@pytest.mark.parametrize("subtype", ["VORBIS", "OPUS"])
def test_an_ogg_files_comments_and_cue_sheet(tmp_path, subtype):
    """Ogg Vorbis and Opus carry the UCS fields and a CUESHEET as Vorbis comments, as FLAC does;
    libsndfile gives only the standard ones. A comment header spanning pages (cover art) is
    read across them."""
    import soundfile as sf
    from engine.file_metadata import comment_fields, ogg_comments
    path = ogg_with_comments(tmp_path / "disc12.ogg", {
        "METADATA_BLOCK_PICTURE": "A" * 200_000, "TITLE": "Disc 12", "CATEGORY": "AMBIENCE",
        "FXNAME": "Disc 12 field recordings", "DESCRIPTION": "Dogs, rain and doors", "CUESHEET": DISC}, subtype)
    assert sf.info(str(path)).duration == pytest.approx(6.0, abs=0.05)      # still a valid stream
    with open(path, "rb") as f:
        entries = dict(e.split("=", 1) for e in ogg_comments(f))
    assert list(entries)[-6:] == ["METADATA_BLOCK_PICTURE", "TITLE", "CATEGORY", "FXNAME", "DESCRIPTION", "CUESHEET"]
    assert len(entries["METADATA_BLOCK_PICTURE"]) == 200_000 and entries["CUESHEET"] == DISC
    found = read_metadata(path)
    assert {k: found.get(k) for k in ("category", "title", "description", "markers")} == {
        "category": "AMBIENCE", "title": "Disc 12 field recordings", "description": "Dogs, rain and doors",
        "markers": "0:00.00 Dog barking · 0:01.60 Rain on a roof · 0:04.20 Door slam"}
    assert named_markers(io.BytesIO(path.read_bytes())) == [
        Marker(0.0, "Dog barking", 1.4), Marker(1.6, "Rain on a roof", pytest.approx(2.6)), Marker(4.2, "Door slam", None)]
    plain = ogg_with_comments(tmp_path / "plain.ogg", {}, subtype)
    assert comment_fields(plain) == {} and named_markers(plain) == []


def test_an_indexed_ogg_file_gains_its_cue_sheets_takes_on_upgrade(tmp_path, monkeypatch):
    """An index built by the reader before Ogg comments (version 5): the next run reads its
    files again, finds the Ogg file's cue sheet and cuts its takes, keeping its tags."""
    import engine.file_metadata as file_metadata
    import indexer.metadata_refresh as metadata_refresh
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    disc = ogg_with_comments(lib / "disc12.ogg", {"CUESHEET": DISC, "CATEGORY": "AMBIENCE"}).resolve()

    def run():
        return build_index([lib], idx, FakeModel(), workers=0, progress=False)
    walk = file_metadata._comment_walk
    with monkeypatch.context() as m:                        # the session-23 reader: FLAC comments only
        m.setattr(file_metadata, "_comment_walk",
                  lambda f: walk(f) if f.read(4) == b"fLaC" and f.seek(0) == 0 else file_metadata.CommentFields())
        m.setattr(metadata_refresh, "READER_VERSION", 5)
        run()
        with SoundIndex.open(idx, model=FakeModel()) as index:
            assert set(spans(index, disc).values()) == {None}
            assert index.get_file(index.search_text("x", k=1)[0].file_id)["metadata"].get("category") is None
    from indexer.user_tags import add_tags, tag_counts
    add_tags(idx, [str(disc)], ["keeper"])
    s = run()
    assert (s.metadata_reread, s.updated) == (1, 1)
    with SoundIndex.open(idx, model=FakeModel()) as index:
        assert set(spans(index, disc).values()) == {"Dog barking", "Rain on a roof", "Door slam", None}
        hit = index.search_text("door slam", k=1, keywords=True)[0]
        assert (hit.marker, index.get_file(hit.file_id)["metadata"]["category"]) == ("Door slam", "AMBIENCE")
    assert tag_counts(idx) == {"keeper": 1}
    assert run().updated == 0
