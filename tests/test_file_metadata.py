"""Descriptions files carry inside them (engine.file_metadata): read from every container
libsndfile writes and from a Broadcast WAV's bext chunk, stored in the catalog by the indexer,
returned by SoundIndex.get_file, found by keyword search and shown on the page's result card."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from engine.catalog import FileMetadata
from engine.file_metadata import MAX_VALUE, ixml_fields, read_metadata, riff_fields
from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import catalog_session, noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_bad_inputs import pcm16, wav_bytes

TAGS = {"title": "Door slam, oak", "comment": "heavy oak door slammed shut", "artist": "Jane Foley"}


def tagged(path, fmt: str, wave: np.ndarray, rate: int = 16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(str(path), "w", rate, 1, format=fmt) as f:
        for key, value in TAGS.items():
            setattr(f, key, value)
        f.write(wave)
    return path


def bext_chunk(description: bytes, originator: bytes = b"soundsift tests", size: int | None = None) -> bytes:
    body = description.ljust(256, b"\x00") + originator.ljust(32, b"\x00") + b"\x00" * (602 - 288)
    return b"bext" + struct.pack("<I", len(body) if size is None else size) + body


@pytest.mark.parametrize("fmt, ext", [("WAV", "wav"), ("FLAC", "flac"), ("OGG", "ogg"), ("AIFF", "aiff"),
                                      ("MP3", "mp3")])
def test_title_comment_and_artist_are_read_from_every_container(tmp_path, fmt, ext):
    path = tagged(tmp_path / f"door.{ext}", fmt, tone(300, 0.5, 16000))
    found = read_metadata(path)
    assert {k: found.get(k) for k in TAGS} == TAGS


@pytest.mark.parametrize("fmt, ext", [("WAV", "wav"), ("FLAC", "flac")])
def test_sox_stamp_is_not_a_description(tmp_path, fmt, ext):
    """SoX stamps "Processed by SoX" as the comment of what it converts: kept as the file's
    software, not its comment (which the about line, keyword search and captions read)."""
    path = tmp_path / f"hello.{ext}"
    with sf.SoundFile(str(path), "w", 16000, 1, format=fmt) as f:
        f.title, f.comment = "Hello", "Processed by SoX"
        f.write(tone(440, 0.5, 16000))
    assert read_metadata(path) == {"title": "Hello", "software": "Processed by SoX"}
    with sf.SoundFile(str(path), "w", 16000, 1, format=fmt) as f:
        f.comment = "Processed by SoX through a tape machine, then a spring reverb"
        f.write(tone(440, 0.5, 16000))
    assert read_metadata(path)["comment"].startswith("Processed by SoX through")   # a real comment


def test_a_broadcast_wav_description_and_originator(tmp_path):
    pcm = pcm16(tone(440, 0.5, 16000))
    path = tmp_path / "bwf.wav"
    path.write_bytes(wav_bytes(pcm, extra_chunks=bext_chunk("Thunder, distant roll — Tür".encode())))
    assert sf.info(str(path)).frames == 8000                  # still plain audio to libsndfile
    assert read_metadata(path) == {"description": "Thunder, distant roll — Tür", "originator": "soundsift tests"}
    latin = tmp_path / "latin.wav"                            # not UTF-8: read as Latin-1
    latin.write_bytes(wav_bytes(pcm, extra_chunks=bext_chunk("Gewitter über".encode("latin-1"))))
    assert riff_fields(latin)["description"] == "Gewitter über"
    cut = tmp_path / "cut.wav"                                # a chunk size past the end of the file
    cut.write_bytes(wav_bytes(pcm)[:36] + bext_chunk(b"half", size=10_000)[:60])   # RIFF, fmt, then a cut bext
    assert riff_fields(cut) == {"description": "half", "originator": ""}
    assert riff_fields(write(tmp_path / "plain.flac", tone(440, 0.2, 16000), 16000)) == {}
    long = tmp_path / "long.flac"
    with sf.SoundFile(str(long), "w", 16000, 1, format="FLAC") as f:
        f.comment = "x" * (MAX_VALUE + 500)
        f.write(tone(440, 0.2, 16000))
    assert len(read_metadata(long)["comment"]) == MAX_VALUE


def info_chunk(**fields: bytes) -> bytes:
    """A LIST/INFO chunk with the given 4-letter ids (bytes as written: any encoding)."""
    body = b"INFO"
    for cid, value in fields.items():
        raw = value + b"\x00"
        body += cid.encode() + struct.pack("<I", len(raw)) + raw + b"\x00" * (len(raw) & 1)
    return b"LIST" + struct.pack("<I", len(body)) + body


def test_latin1_info_text_keeps_its_accents(tmp_path):
    """libsndfile decodes WAV INFO as UTF-8 and turns Latin-1 accents into U+FFFD; those values
    are read again from the chunk. UTF-8 values and values libsndfile got right are kept."""
    path = tmp_path / "gewitter.wav"
    path.write_bytes(wav_bytes(pcm16(tone(440, 0.5, 16000)), extra_chunks=info_chunk(
        INAM="Gewitter über dem Tal".encode("latin-1"), ICMT="Donner, grollend — fern".encode(),
        IART=b"Plain Name")))
    with sf.SoundFile(str(path)) as f:
        assert "\ufffd" in f.title                      # what libsndfile alone gives
    found = read_metadata(path)
    assert found["title"] == "Gewitter über dem Tal"
    assert found["comment"] == "Donner, grollend — fern" and found["artist"] == "Plain Name"


def test_the_indexer_stores_it_and_keyword_search_finds_it(tmp_path):
    lib = tmp_path / "lib"
    door = tagged(lib / "take_001.flac", "FLAC", tone(300, 1.0, 16000))
    bwf = lib / "take_002.wav"
    bwf.write_bytes(wav_bytes(pcm16(noise(1.0, 16000, seed=1)), extra_chunks=bext_chunk(b"Rain on a tin roof")))
    write(lib / "take_003.wav", tone(900, 1.0, 16000), 16000)
    with sf.SoundFile(str(lib / "take_004.flac"), "w", 16000, 1, format="FLAC") as f:
        f.copyright = "Acme Works"                              # stored, not searched
        f.write(tone(600, 1.0, 16000))
    summary = build_index([lib], tmp_path / "idx", FakeModel(), workers=1, progress=False)
    assert summary.added == 4 and summary.failed == 0
    with catalog_session(tmp_path / "idx") as s:
        rows = {(key, value) for key, value in s.execute(select(FileMetadata.key, FileMetadata.value))}
    assert set(TAGS.items()) | {("description", "Rain on a tin roof"), ("copyright", "Acme Works")} <= rows
    from indexer.info import index_info
    assert index_info(tmp_path / "idx")["counts"]["described"] == 2     # a copyright alone describes nothing
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        # the fake model's text vector is the same for every query: the words decide
        rain = index.search_text("rain on the roof", k=3, keywords=True)
        assert rain[0].path == str(bwf.resolve()) and rain[0].keywords > 0
        oak = index.search_text("an oak door", k=3, keywords=True)
        assert oak[0].path == str(door.resolve()) and oak[0].keywords > 0
        assert index.get_file(oak[0].file_id)["metadata"] == TAGS
        acme = index.search_text("acme works", k=4, keywords=True)
        assert all(h.keywords == 0 for h in acme)
        mine = next(h for h in acme if h.path.endswith("take_004.flac"))
        assert index.get_file(mine.file_id)["metadata"] == {"copyright": "Acme Works"}


def ixml_chunk(xml: str, encoding: str = "utf-8") -> bytes:
    raw = xml.encode(encoding) + b"\x00"
    return b"iXML" + struct.pack("<I", len(raw)) + raw + b"\x00" * (len(raw) & 1)


def with_trailing_chunk(wav: bytes, chunk: bytes) -> bytes:
    """``wav`` with ``chunk`` after its data chunk (where recorders and library tools put iXML)."""
    body = wav[8:] + chunk
    return b"RIFF" + struct.pack("<I", len(body)) + body


LONG_DESCRIPTION = ("Door, wood, old barn door creaking open slowly on rusty hinges, then latching; "
                    "recorded close with a pair of small-diaphragm condensers in a quiet barn. ") * 3
SOUNDMINER_IXML = f"""<?xml version="1.0" encoding="UTF-8"?>
<BWFXML><IXML_VERSION>2.10</IXML_VERSION><PROJECT>Barn session</PROJECT><NOTE>take after the rain</NOTE>
<USER><CATEGORY>DOORS</CATEGORY><SUBCATEGORY>WOOD</SUBCATEGORY><CATID>DOORWood</CATID>
<FXNAME>Barn Door Creak Open</FXNAME><DESCRIPTION>{LONG_DESCRIPTION}</DESCRIPTION>
<KEYWORDS>hinge, squeak, rusty, latch</KEYWORDS><LIBRARY>Farm Doors</LIBRARY>
<DESIGNER>Jane Foley</DESIGNER><MICROPHONE>MKH 8040</MICROPHONE><SHORTID>ABCD</SHORTID></USER>
</BWFXML>"""


def test_an_ixml_chunk_after_the_data_gives_the_ucs_fields(tmp_path):
    """Soundminer/BaseHead write the UCS fields into iXML's USER block, often after the audio; the
    bext description they mirror is cut at 256 characters, so the whole one from iXML wins."""
    wav = wav_bytes(pcm16(tone(440, 0.5, 16000)), extra_chunks=bext_chunk(LONG_DESCRIPTION.encode()[:256]))
    path = tmp_path / "DOORWood_Barn Door Creak Open_JF_FARM.wav"
    path.write_bytes(with_trailing_chunk(wav, ixml_chunk(SOUNDMINER_IXML)))
    assert sf.info(str(path)).frames == 8000
    found = read_metadata(path)
    assert found == {"description": " ".join(LONG_DESCRIPTION.split()), "originator": "soundsift tests",
                     "category": "DOORS", "subcategory": "WOOD", "catid": "DOORWood",
                     "title": "Barn Door Creak Open", "keywords": "hinge, squeak, rusty, latch",
                     "library": "Farm Doors", "designer": "Jane Foley", "note": "take after the rain"}
    # a description that is not the start of the iXML one is kept (another chunk said otherwise)
    other = tmp_path / "other.wav"
    other.write_bytes(with_trailing_chunk(
        wav_bytes(pcm16(tone(440, 0.5, 16000)), extra_chunks=bext_chunk(b"Gate, metal")),
        ixml_chunk(SOUNDMINER_IXML)))
    assert read_metadata(other)["description"] == "Gate, metal"


@pytest.mark.parametrize("xml", [
    # Steinberg MediaBay as child elements, and as attributes (both are written in the wild)
    "<BWFXML><STEINBERG><ATTR_LIST>"
    "<ATTR><TYPE>string</TYPE><NAME>MediaCategoryPost</NAME><VALUE>RAIN</VALUE></ATTR>"
    "<ATTR><TYPE>string</TYPE><NAME>MusicalCategory</NAME><VALUE>ROOF</VALUE></ATTR>"
    "<ATTR><TYPE>string</TYPE><NAME>MediaComment</NAME><VALUE>Rain on a tin roof, heavy</VALUE></ATTR>"
    "<ATTR><TYPE>string</TYPE><NAME>MediaRecordingMethod</NAME><VALUE>MS</VALUE></ATTR>"
    "</ATTR_LIST></STEINBERG></BWFXML>",
    '<BWFXML><STEINBERG><ATTR_LIST><ATTR TYPE="string" NAME="MediaCategoryPost" VALUE="RAIN"/>'
    '<ATTR TYPE="string" NAME="MusicalCategory" VALUE="ROOF"/>'
    '<ATTR TYPE="string" NAME="MediaComment" VALUE="Rain on a tin roof, heavy"/></ATTR_LIST></STEINBERG></BWFXML>',
    # the ASWG block (camelCase names), with the description in the USER block
    "<BWFXML><ASWG><category>RAIN</category><subCategory>ROOF</subCategory><isDesigned>false</isDesigned>"
    "</ASWG><USER><Description>Rain on a tin roof, heavy</Description></USER></BWFXML>",
])
def test_steinberg_and_aswg_ixml_say_the_same(xml):
    assert ixml_fields(xml.encode()) == {"category": "RAIN", "subcategory": "ROOF",
                                         "description": "Rain on a tin roof, heavy"}


def test_free_text_user_block_and_latin1_ixml():
    """The iXML spec's USER block is free text: it becomes the note. An encoding declaration is
    honoured (Latin-1 here); bytes that are not UTF-8 are read as Latin-1 whatever it says."""
    xml = '<?xml version="1.0" encoding="ISO-8859-1"?><BWFXML><USER>Gewitter über dem Tal</USER></BWFXML>'
    assert ixml_fields(xml.encode("latin-1")) == {"note": "Gewitter über dem Tal"}
    # Latin-1 bytes under a declaration that says UTF-8 (or none): read as Latin-1
    xml = '<?xml version="1.0" encoding="UTF-8"?><BWFXML><USER><DESCRIPTION>Tür knarrt</DESCRIPTION></USER></BWFXML>'
    assert ixml_fields(xml.encode("latin-1")) == {"description": "Tür knarrt"}
    assert ixml_fields(xml.split("?>", 1)[1].encode("latin-1")) == {"description": "Tür knarrt"}


def test_a_broken_ixml_chunk_costs_only_itself(tmp_path, caplog):
    """Not XML: the bext description is still read, and the reason is said under the file (into
    the caller's list, or as a warning naming the file)."""
    path = tmp_path / "broken_ixml.wav"
    path.write_bytes(with_trailing_chunk(
        wav_bytes(pcm16(tone(440, 0.5, 16000)), extra_chunks=bext_chunk(b"Wind in pines")),
        ixml_chunk("<BWFXML><USER><DESCRIPTION>cut off")))
    problems: list[str] = []
    assert read_metadata(path, problems)["description"] == "Wind in pines"
    assert len(problems) == 1 and problems[0].startswith("iXML chunk not read (not well-formed XML")
    with caplog.at_level("WARNING", logger="engine.file_metadata"):
        assert read_metadata(path)["description"] == "Wind in pines"
    assert f"{path}: iXML chunk not read" in caplog.text
    caplog.clear()
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / path.name).write_bytes(path.read_bytes())
    with caplog.at_level("WARNING"):
        summary = build_index([lib], tmp_path / "idx", FakeModel(), workers=1, progress=False)
    assert summary.added == 1 and summary.failed == 0
    said = [r.getMessage() for r in caplog.records if "iXML" in r.getMessage()]
    assert len(said) == 1
    assert said[0].startswith(f"{(lib / path.name).resolve()}: iXML chunk not read (not well-formed XML: ")
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        assert index.get_file(1)["metadata"]["description"] == "Wind in pines"


def test_ucs_fields_are_searched_and_shown_on_the_card(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    barn = lib / "take_101.wav"
    barn.write_bytes(with_trailing_chunk(wav_bytes(pcm16(noise(1.0, 16000, seed=3))), ixml_chunk(SOUNDMINER_IXML)))
    write(lib / "take_102.wav", tone(900, 1.0, 16000), 16000)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=1, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        for query in ("squeaky hinges", "wood doors", "farm doors library"):   # keywords, category, library
            hits = index.search_text(query, k=2, keywords=True)
            assert hits[0].path == str(barn.resolve()) and hits[0].keywords > 0, query
        file_id = hits[0].file_id
    from engine.file_metadata import ABOUT_CHARS
    from ui.components.library import Library
    about = Library(tmp_path / "idx").files([file_id])[file_id].about
    whole = f"DOORS / WOOD: Barn Door Creak Open — {' '.join(LONG_DESCRIPTION.split())}"
    assert about.endswith(" …") and whole.startswith(about[:-2]) and len(about) <= ABOUT_CHARS + 2
    assert whole[len(about) - 2] == " "                                   # cut at a word


def test_a_metadata_note_does_not_hide_the_truncation_note(tmp_path, monkeypatch):
    """A file whose audio stops short of its header's length without a decoder note, and whose
    iXML chunk is broken: the decode worker says both (the first note once hid the second)."""
    import indexer.decode as decode
    from engine.audio import Segment
    from engine.segments import SegmentPolicy

    path = tmp_path / "short.wav"
    path.write_bytes(wav_bytes(pcm16(tone(440, 2.0, 16000)), extra_chunks=ixml_chunk("<USER>")))

    def first_second_only(path, rate, policy, stats=None, notes=None, levels=None, markers=()):   # ends early
        yield Segment(0.0, 1.0, np.zeros(rate, np.float32))
    monkeypatch.setattr(decode, "iter_segments", first_second_only)
    events = list(decode.decode_file(decode.DecodeJob(0, str(path)), 16000, SegmentPolicy(1.0)))
    done = events[-1]
    assert isinstance(done, decode.FileDecoded) and done.duration == 1.0
    assert [n.split(" (")[0] for n in done.notes] == ["iXML chunk not read", "shorter than its header says"]


def _forget_ixml(index_dir) -> None:
    """Make the catalog look as a session-18 index run left it: no iXML fields, reader 1."""
    from engine.catalog import Meta, set_meta
    with catalog_session(index_dir, write=True) as s:
        s.query(FileMetadata).filter(FileMetadata.key.in_(("category", "subcategory", "catid", "keywords",
                                                           "library", "designer", "note", "title",
                                                           "description"))).delete()
        s.query(Meta).filter(Meta.key == "metadata_reader").delete()
        set_meta(s, metadata_reader=1)


def _reader(index_dir):
    from engine.catalog import get_meta
    with catalog_session(index_dir) as s:
        meta = get_meta(s)
    return meta.get("metadata_reader"), meta["generation"]


def test_an_index_run_reads_older_files_metadata_again_once(tmp_path, caplog):
    """An index built by an older reader gains the iXML fields on its next run, without any file
    changing or being embedded again; an open SoundIndex's keyword search sees them at once;
    the run after that reads nothing again."""
    from engine.file_metadata import READER_VERSION
    lib = tmp_path / "lib"
    lib.mkdir()
    barn = lib / "take_201.wav"
    barn.write_bytes(with_trailing_chunk(wav_bytes(pcm16(noise(1.0, 16000, seed=4))), ixml_chunk(SOUNDMINER_IXML)))
    write(lib / "take_202.wav", tone(700, 1.0, 16000), 16000)
    idx = tmp_path / "idx"
    build_index([lib], idx, FakeModel(), workers=1, progress=False)
    assert _reader(idx) == (READER_VERSION, 1)
    _forget_ixml(idx)
    with SoundIndex.open(idx, model=FakeModel()) as index:
        assert all(h.keywords == 0 for h in index.search_text("wood doors", k=2, keywords=True))
        with caplog.at_level("INFO", logger="indexer.metadata_refresh"):
            summary = build_index([lib], idx, FakeModel(), workers=1, progress=False)
        assert summary.added == summary.updated == 0 and summary.unchanged == summary.metadata_reread == 2
        assert "reading the embedded metadata of 2 indexed files again" in caplog.text
        assert _reader(idx) == (READER_VERSION, 1)                  # no new generation
        hits = index.search_text("wood doors", k=2, keywords=True)    # the same open index
        assert hits[0].path == str(barn.resolve()) and hits[0].keywords > 0
        assert index.get_file(hits[0].file_id)["metadata"]["category"] == "DOORS"
    caplog.clear()
    with caplog.at_level("INFO", logger="indexer.metadata_refresh"):
        build_index([lib], idx, FakeModel(), workers=1, progress=False)
    assert "again" not in caplog.text


def test_a_file_not_there_now_keeps_its_metadata_and_the_reader_stays_old(tmp_path, caplog):
    lib, other = tmp_path / "lib", tmp_path / "drive"
    lib.mkdir()
    other.mkdir()
    ixml = with_trailing_chunk(wav_bytes(pcm16(noise(1.0, 16000, seed=4)), extra_chunks=bext_chunk(b"Barn door")),
                               ixml_chunk(SOUNDMINER_IXML))
    (lib / "a.wav").write_bytes(ixml)
    (other / "b.wav").write_bytes(ixml)
    idx = tmp_path / "idx"
    build_index([lib, other], idx, FakeModel(), workers=1, progress=False)
    _forget_ixml(idx)
    (other / "b.wav").rename(tmp_path / "b.wav")            # "the drive is not mounted"; only lib is indexed
    with caplog.at_level("WARNING", logger="indexer.metadata_refresh"):
        build_index([lib], idx, FakeModel(), workers=1, progress=False)
    assert "embedded metadata of 1 indexed file not read again" in caplog.text
    assert str((other / "b.wav").resolve()) in caplog.text
    assert _reader(idx)[0] == 1                                # the next run tries again
    with SoundIndex.open(idx, model=FakeModel()) as index:
        a = index.get_file(index.file_id_for_path(lib / "a.wav"))["metadata"]
        b = index.get_file(index.file_id_for_path(other / "b.wav"))["metadata"]
    assert a["category"] == "DOORS" and b == {"originator": "soundsift tests"}     # b: what it had


STEINBERG_RAIN = ('<BWFXML><STEINBERG><ATTR_LIST><ATTR TYPE="string" NAME="MediaCategoryPost" VALUE="RAIN"/>'
                  '<ATTR TYPE="string" NAME="MusicalCategory" VALUE="ROOF"/></ATTR_LIST></STEINBERG></BWFXML>')


def categorised_library(root):
    """A door (UCS fields, CatID DOORWood), a rain (MediaBay category RAIN) and a plain file."""
    root.mkdir(parents=True, exist_ok=True)
    door, rain = root / "take_301.wav", root / "take_302.wav"
    door.write_bytes(with_trailing_chunk(wav_bytes(pcm16(noise(1.0, 16000, seed=7))), ixml_chunk(SOUNDMINER_IXML)))
    rain.write_bytes(with_trailing_chunk(wav_bytes(pcm16(noise(1.0, 16000, seed=8))), ixml_chunk(STEINBERG_RAIN)))
    plain = write(root / "take_303.wav", tone(500, 1.0, 16000), 16000)
    return door.resolve(), rain.resolve(), plain.resolve()


def test_search_by_library_category(tmp_path):
    from engine.errors import InvalidQuery
    from engine.filters import Filters
    door, rain, plain = categorised_library(tmp_path / "lib")
    idx = tmp_path / "idx"
    build_index([tmp_path / "lib"], idx, FakeModel(), workers=1, progress=False)
    with SoundIndex.open(idx, model=FakeModel()) as index:
        assert index.facets()["categories"] == ["DOORS", "RAIN"]

        def found(*categories):
            return {h.path for h in index.search_text("anything", k=3, filters=Filters(categories=categories))}
        assert found("doors") == found("DOORWood") == {str(door)}          # category or CatID, any case
        assert found("rain", "Doors") == {str(door), str(rain)}
        assert found("WOOD") == set()                                     # a subcategory alone is not a category
        assert index.file_vectors(Filters(categories=("rain",))).paths == [str(rain)]
    with catalog_session(idx, write=True) as s:                           # a catalog from before session 18
        s.connection().exec_driver_sql("DROP TABLE file_metadata")
    with SoundIndex.open(idx, model=FakeModel()) as index:
        assert index.facets()["categories"] == []
        with pytest.raises(InvalidQuery, match="holds no embedded metadata yet.*soundsift index"):
            index.search_text("anything", filters=Filters(categories=("rain",)))


def test_category_on_the_command_line_and_the_page(tmp_path, tiny_clap_dir, monkeypatch):
    import json as _json

    from typer.testing import CliRunner

    from tests.ui_library import page_on
    from ui.cli import app
    door, rain, plain = categorised_library(tmp_path / "lib")
    idx = tmp_path / "idx"
    build_index([tmp_path / "lib"], idx, str(tiny_clap_dir), workers=0, progress=False)
    result = CliRunner().invoke(app, ["search", "rain", "--index", str(idx), "--json", "--category", "rain,doorwood"])
    assert result.exit_code == 0, result.stderr
    assert {h["path"] for h in _json.loads(result.stdout)} == {str(door), str(rain)}

    page = page_on(idx, monkeypatch)
    page.query_params["q"] = "rain"
    page.run()
    assert not page.exception
    category = page.sidebar.multiselect(key="f_categories")
    assert category.options == ["DOORS", "RAIN"]
    category.set_value(["RAIN"]).run()
    assert not page.exception
    cards = [md.value for md in page.markdown if md.value.startswith("**1. ")]
    assert cards == ["**1. take\\_302.wav**"] and not any(md.value.startswith("**2. ") for md in page.markdown)


def test_info_lists_the_library_categories(tmp_path):
    from indexer.info import index_info
    categorised_library(tmp_path / "lib")
    write(tmp_path / "lib" / "take_304.wav", noise(1.0, 16000, seed=9), 16000)
    (tmp_path / "lib" / "take_305.wav").write_bytes(with_trailing_chunk(
        wav_bytes(pcm16(noise(1.0, 16000, seed=10))), ixml_chunk(STEINBERG_RAIN)))
    build_index([tmp_path / "lib"], tmp_path / "idx", FakeModel(), workers=1, progress=False)
    info = index_info(tmp_path / "idx")
    assert info["categories"] == [{"category": "RAIN", "files": 2}, {"category": "DOORS", "files": 1}]
    assert info["counts"]["described"] == 3


def test_ixml_after_the_audio_of_an_rf64_file(tmp_path):
    """RF64 (WAV past 4 GB, as long field recorders write it) keeps the data chunk's size in
    ds64 and 0xFFFFFFFF in the chunk; the iXML after the audio is still found."""
    pcm = pcm16(tone(440, 0.5, 16000))
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    ds64 = b"ds64" + struct.pack("<I", 28) + struct.pack("<QQQI", 0, len(pcm), len(pcm) // 2, 0)
    body = (b"WAVE" + ds64 + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"data" + struct.pack("<I", 0xFFFFFFFF) + pcm + ixml_chunk(SOUNDMINER_IXML))
    path = tmp_path / "long_take.wav"
    path.write_bytes(b"RF64" + struct.pack("<I", 0xFFFFFFFF) + body)
    assert sf.info(str(path)).frames == 8000                  # libsndfile reads it as audio
    assert riff_fields(path).ixml["category"] == "DOORS"
    assert read_metadata(path)["catid"] == "DOORWood"


def flac_with_comments(path, comments: dict[str, str], wave: np.ndarray | None = None, rate: int = 16000,
                       blocks_after: tuple[tuple[int, bytes], ...] = (), raw_entries: list[bytes] | None = None):
    """A FLAC file of ``wave`` (a 0.5 s tone) whose Vorbis comment block holds ``comments``
    (written after libsndfile's; or ``raw_entries``, ``KEY=value`` as these bytes, in whatever
    encoding a tagger wrote), then the metadata ``blocks_after`` ((type, body) each)."""
    write(path, tone(440, 0.5, rate) if wave is None else wave, rate, format="FLAC")
    raw = path.read_bytes()
    at, blocks = 4, []
    while True:                                   # split the metadata blocks from the frames
        kind, size = raw[at] & 0x7F, int.from_bytes(raw[at + 1:at + 4], "big")
        last = raw[at] & 0x80
        blocks.append((kind, raw[at + 4:at + 4 + size]))
        at += 4 + size
        if last:
            break
    entries = raw_entries if raw_entries is not None else [f"{k}={v}".encode() for k, v in comments.items()]
    vorbis = (struct.pack("<I", 6) + b"tests!" + struct.pack("<I", len(entries))
              + b"".join(struct.pack("<I", len(e)) + e for e in entries))
    blocks = [b for b in blocks if b[0] != 4] + [(4, vorbis), *blocks_after]
    out = b"fLaC"
    for i, (kind, body) in enumerate(blocks):
        out += bytes([kind | (0x80 if i == len(blocks) - 1 else 0)]) + len(body).to_bytes(3, "big") + body
    path.write_bytes(out + raw[at:])
    return path


def test_ucs_names_in_flac_vorbis_comments(tmp_path):
    path = flac_with_comments(tmp_path / "gate.flac", {
        "TITLE": "Iron Gate", "CATEGORY": "DOORS", "SubCategory": "METAL", "CATID": "DOORMetl",
        "FXNAME": "Iron Gate Creak", "KEYWORDS": "gate, iron, creak", "ENCODER": "x", "DESCRIPTION": "An iron gate"})
    assert sf.info(str(path)).frames == 8000
    found = read_metadata(path)
    assert {k: found.get(k) for k in ("category", "subcategory", "catid", "keywords", "title")} == {
        "category": "DOORS", "subcategory": "METAL", "catid": "DOORMetl", "keywords": "gate, iron, creak",
        "title": "Iron Gate Creak"}                       # FXName extends the shorter TITLE
    assert "encoder" not in found
    from engine.file_metadata import comment_fields
    assert comment_fields(write(tmp_path / "plain.wav", tone(440, 0.2, 16000), 16000)) == {}
    # cover art kept as a comment makes the block larger than what is read: its start still counts
    art = flac_with_comments(tmp_path / "art.flac", {"CATEGORY": "DOORS", "METADATA_BLOCK_PICTURE": "A" * (1 << 21)})
    assert read_metadata(art)["category"] == "DOORS" and sf.info(str(art)).frames == 8000


def riff_chunk(cid: bytes, body: bytes) -> bytes:
    return cid + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) & 1)


def cue_chunk(*points: tuple[int, int]) -> bytes:
    """A ``cue `` chunk of (cue id, sample offset) points in the data chunk."""
    body = struct.pack("<I", len(points)) + b"".join(
        struct.pack("<II4sIII", cue, 0, b"data", 0, 0, offset) for cue, offset in points)
    return riff_chunk(b"cue ", body)


def adtl_chunk(*labels: tuple[bytes, int, str]) -> bytes:
    """A LIST/adtl chunk of (labl, note or ltxt, cue id, text) labels."""
    subs = b""
    for kind, cue, text in labels:
        head = struct.pack("<I", cue) + (struct.pack("<I4s4H", 16000, b"rgn ", 0, 0, 0, 0) if kind == b"ltxt" else b"")
        subs += riff_chunk(kind, head + text.encode() + b"\x00")
    return riff_chunk(b"LIST", b"adtl" + subs)


def take_library(lib):
    """Three takes: one with named markers (labl, a note the labl outranks, an ltxt, one cue
    point unnamed), one whose only cue point has no name, one whose cue chunk was cut short."""
    lib.mkdir()
    takes = lib / "take_301.wav"
    chunks = (cue_chunk((1, 56_000), (2, 8_000), (3, 24_000), (4, 40_000))
              + adtl_chunk((b"note", 1, "second thought"), (b"labl", 1, "Gate latch"), (b"labl", 2, "Hinge squeal"),
                           (b"ltxt", 3, "Wind gust")))
    takes.write_bytes(with_trailing_chunk(wav_bytes(pcm16(noise(4.0, 16000, seed=5))), chunks))
    unnamed = lib / "take_302.wav"
    unnamed.write_bytes(with_trailing_chunk(wav_bytes(pcm16(tone(500, 1.0, 16000))), cue_chunk((1, 800))))
    cut = lib / "take_303.wav"
    cut.write_bytes(with_trailing_chunk(wav_bytes(pcm16(tone(600, 1.0, 16000))),
                                        riff_chunk(b"cue ", cue_chunk((7, 1600), (8, 3200))[8:-20])
                                        + adtl_chunk((b"labl", 7, "Click"), (b"labl", 8, "Clack"))))
    return takes, unnamed, cut


def test_named_cue_markers_are_read_searched_and_shown(tmp_path):
    """Marker names by time, labl before note before ltxt, unnamed cue points left out, a cut
    chunk read as far as it goes; keyword search lands on the marker its words name; the card
    shows them."""
    lib = tmp_path / "lib"
    takes, unnamed, cut = take_library(lib)
    assert read_metadata(takes) == {"markers": "0:00.50 Hinge squeal · 0:01.50 Wind gust · 0:03.50 Gate latch"}
    assert read_metadata(unnamed) == {}
    assert read_metadata(cut) == {"markers": "0:00.10 Click"}
    from engine.file_metadata import parse_markers
    assert parse_markers(read_metadata(takes)["markers"]) == [(0.5, "Hinge squeal"), (1.5, "Wind gust"),
                                                              (3.5, "Gate latch")]
    build_index([lib], tmp_path / "idx", FakeModel(), workers=1, progress=False)
    from indexer.info import index_info
    assert index_info(tmp_path / "idx")["counts"]["marked"] == 2          # take_301 and take_303
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        hits = index.search_text("squealing hinge", k=3, keywords=True)
        assert hits[0].path == str(takes.resolve()) and hits[0].keywords > 0
        file_id = hits[0].file_id
        # the hit is the take the marker its words name begins (2 s windows, 1 s hop: 0-2, 1-3,
        # 2-4; takes 0.5-1.5 to the next marker, 1.5-2.5 its ltxt region, 3.5-4 to the end)
        assert (hits[0].marker, hits[0].marker_at, hits[0].start, hits[0].end) == ("Hinge squeal", 0.5, 0.5, 1.5)
        latch = index.search_text("the gate latch", k=3, keywords=True)[0]
        assert (latch.marker, latch.marker_at, latch.start, latch.end) == ("Gate latch", 3.5, 3.5, 4.0)
        segments = {(h.start, h.end): h.score for h in index.search_text("the gate latch", k=50, per_file=False)
                    if h.file_id == file_id}
        assert sorted(segments) == [(0.0, 2.0), (0.5, 1.5), (1.0, 3.0), (1.5, 2.5), (2.0, 4.0), (3.5, 4.0)]
        assert latch.score == pytest.approx(segments[(3.5, 4.0)], abs=1e-6)
        assert latch.to_dict()["marker_at"] == 3.5
        named = {(h.path.rsplit("/", 1)[1], h.start): h.to_dict().get("marker")       # sound hits: named when takes
                 for h in index.search_text("gate latch", k=50, per_file=False)}
        assert named == {("take_301.wav", 0.0): None, ("take_301.wav", 0.5): "Hinge squeal",
                         ("take_301.wav", 1.0): None, ("take_301.wav", 1.5): "Wind gust",
                         ("take_301.wav", 2.0): None, ("take_301.wav", 3.5): "Gate latch",
                         ("take_302.wav", 0.0): None, ("take_303.wav", 0.0): None, ("take_303.wav", 0.1): "Click"}
    from ui.components.library import Library
    record = Library(tmp_path / "idx").files([file_id])[file_id]
    assert record.about == "markers 0.50 s Hinge squeal · 1.50 s Wind gust · 3.50 s Gate latch"   # as the card writes times
    assert record.marks == (0.5, 1.5, 3.5)                 # ticked on the card's waveform


def test_a_marker_found_by_its_name_on_the_command_line_and_the_page(tmp_path, tiny_clap_dir, monkeypatch):
    """The table's "marker" column; the card's badge, and its player starting at the marker."""
    from typer.testing import CliRunner

    from tests.cli_width import wide_terminal
    from tests.ui_library import page_on
    from ui.cli import app
    lib = tmp_path / "lib"
    take_library(lib)
    idx = tmp_path / "idx"
    build_index([lib], idx, str(tiny_clap_dir), workers=0, progress=False)
    table = CliRunner().invoke(app, ["search", "gate latch", "--index", str(idx), "--keywords"],
                               env=wide_terminal(lib, spare=160))
    assert table.exit_code == 0, table.stderr
    assert "marker" in table.stdout and "0:03.50 Gate latch" in table.stdout

    page = page_on(idx, monkeypatch)
    page.query_params["q"] = "gate latch"
    page.query_params["keywords"] = "true"
    page.run()
    assert not page.exception
    names = [md.value for md in page.markdown if md.value.startswith("**")]
    assert names[0] == "**1. take\\_301.wav**"
    assert any(md.value.startswith(":violet-badge[:material/bookmark: Gate latch at 3.50 s]") for md in page.markdown)
    assert page.get("audio")[0].proto.start_time == 3


def test_an_index_from_before_takes_embeds_its_marked_files_again_once(tmp_path, monkeypatch):
    """Files indexed before marked takes were cut gain their take segments on the next run; the
    files without markers are not embedded again, and the run after has nothing to do."""
    from indexer import decode
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    takes, _, _ = take_library(lib)
    with monkeypatch.context() as m:                       # as the indexer did before session 22
        m.setattr(decode, "_marked_takes", lambda path, notes: [])
        build_index([lib], idx, FakeModel(), workers=0, progress=False)

    def segments() -> set[tuple[float, float]]:
        with SoundIndex.open(idx, model=FakeModel()) as index:
            return {(h.start, h.end) for h in index.search_text("x", k=50, per_file=False)
                    if h.path == str(takes.resolve())}
    assert segments() == {(0.0, 2.0), (1.0, 3.0), (2.0, 4.0)}
    from engine.catalog import File, Tag
    with catalog_session(idx, write=True) as s:             # tags `soundsift caption --index` stored
        fid = s.scalar(select(File.id).where(File.path == str(takes.resolve())))
        s.add_all([Tag(file_id=fid, label="Door", score=0.8, source="yamnet"),
                   Tag(file_id=fid, label="keeper", score=1.0, source="user")])
    model = FakeModel()
    summary = build_index([lib], idx, model, workers=0, progress=False)
    assert (summary.updated, summary.unchanged, summary.added) == (2, 1, 0)   # take_301 and take_303 (Click)
    assert segments() == {(0.0, 2.0), (1.0, 3.0), (2.0, 4.0), (0.5, 1.5), (1.5, 2.5), (3.5, 4.0)}
    with catalog_session(idx) as s:                         # the same audio: every tag stays
        assert sorted(s.execute(select(Tag.label, Tag.source).join(File, File.id == Tag.file_id)
                                .where(File.path == str(takes.resolve()))).all()) == [("Door", "yamnet"),
                                                                                       ("keeper", "user")]
    again = build_index([lib], idx, FakeModel(), workers=0, progress=False)
    assert (again.updated, again.unchanged) == (0, 3)


def aiff_with_markers(path, seconds: float, rate: int, marks: list[tuple[int, int, str]]) -> None:
    """An AIFF file (soundfile writes COMM and SSND) with a MARK chunk of (id, frame, name)."""
    sf.write(path, noise(seconds, rate, seed=3), rate, format="AIFF", subtype="PCM_16")
    body = struct.pack(">H", len(marks))
    for mark_id, frame, name in marks:
        text = name.encode("latin-1")
        body += struct.pack(">HIB", mark_id, frame, len(text)) + text + (b"\0" if len(text) % 2 == 0 else b"")
    raw = path.read_bytes()
    chunk = b"MARK" + struct.pack(">I", len(body)) + body + (b"\0" if len(body) & 1 else b"")
    path.write_bytes(raw[:4] + struct.pack(">I", len(raw) - 8 + len(chunk)) + raw[8:] + chunk)


def test_an_aiff_files_named_markers_are_read_and_cut_as_takes(tmp_path):
    """The MARK chunk's named markers, placed by COMM's extended-float rate, in time order
    (unnamed ones left out); they are searched by name and each begins a take."""
    from engine.file_metadata import Marker, named_markers
    lib = tmp_path / "lib"
    lib.mkdir()
    path = lib / "foley_pass.aiff"
    aiff_with_markers(path, 4.0, 22_050, [(2, 33_075, "Cloth rustle"), (1, 11_025, "Keys jingle"),
                                          (3, 60_000, ""), (4, 77_175, "Zip")])
    assert sf.info(str(path)).frames == 88_200                         # still a readable AIFF
    assert named_markers(path) == [Marker(0.5, "Keys jingle"), Marker(1.5, "Cloth rustle"), Marker(3.5, "Zip")]
    assert read_metadata(path)["markers"] == "0:00.50 Keys jingle · 0:01.50 Cloth rustle · 0:03.50 Zip"
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        spans = {(h.start, h.end): h.marker for h in index.search_text("zip", k=50, per_file=False)}
        assert spans == {(0.0, 2.0): None, (1.0, 3.0): None, (2.0, 4.0): None, (0.5, 1.5): "Keys jingle",
                         (1.5, 3.5): "Cloth rustle", (3.5, 4.0): "Zip"}
        found = index.search_text("the zip", k=1, keywords=True)[0]
        assert (found.marker, found.start, found.end) == ("Zip", 3.5, 4.0)


def test_a_timeline_tags_each_segment_and_names_the_takes(tmp_path, tiny_clap_dir):
    """`soundsift tag FILE --timeline`: every segment in time order, the takes named, the same
    from the index's stored vectors as from decoding; a folder is refused with one line."""
    import json

    from typer.testing import CliRunner

    from engine.models import load_model
    from engine.segments import SegmentPolicy, segment_bounds, take_bounds
    from ui.cli import app
    lib = tmp_path / "lib"
    takes, _, _ = take_library(lib)
    idx = tmp_path / "idx"
    build_index([lib], idx, str(tiny_clap_dir), workers=0, progress=False)
    model = load_model(str(tiny_clap_dir))
    sr, policy = int(model.sample_rate), SegmentPolicy(float(model.window_seconds))
    n = 4 * sr
    regular = segment_bounds(n, sr, policy)
    marked = [(0.5, None), (1.5, 1.0), (3.5, None)]
    expected = sorted({(a / sr, min(b, n) / sr) for a, b in regular + take_bounds(marked, sr, policy)})

    def timeline(*extra: str) -> list[dict]:
        r = CliRunner().invoke(app, ["tag", str(takes), "--timeline", "--json", "--labels", "door,wind,latch,hinge",
                                     "--top", "2", *extra])
        assert r.exit_code == 0, r.stderr
        return json.loads(r.stdout)["segments"]
    stored, decoded = timeline("--index", str(idx)), timeline("--model", str(tiny_clap_dir))
    for spans in (stored, decoded):
        assert [t for s in spans for t in (s["start"], s["end"])] == pytest.approx([t for span in expected for t in span])
        assert {s["start"]: s["marker"] for s in spans if "marker" in s} == {
            0.5: "Hinge squeal", 1.5: "Wind gust", 3.5: "Gate latch"}
        assert all(len(s["tags"]) == 2 and s["tags"][0]["score"] >= s["tags"][1]["score"] for s in spans)
    assert [[t["label"] for t in s["tags"]] for s in stored] == [[t["label"] for t in s["tags"]] for s in decoded]
    assert [s["tags"][0]["cosine"] for s in stored] == pytest.approx([s["tags"][0]["cosine"] for s in decoded], abs=1e-4)
    table = CliRunner().invoke(app, ["tag", str(takes), "--timeline", "--index", str(idx), "--labels", "door,wind"],
                               env={"COLUMNS": "160"})
    assert table.exit_code == 0 and "Gate latch" in table.stdout and "stored vectors" in table.stdout
    refused = CliRunner().invoke(app, ["tag", str(lib), "--timeline"])
    assert refused.exit_code == 1 and "--timeline tags one file" in refused.stderr and "is a folder" in refused.stderr
    missing = CliRunner().invoke(app, ["tag", str(lib / "nope.wav"), "--timeline"])
    assert missing.exit_code == 1 and "nope.wav does not exist" in missing.stderr


def test_a_timeline_interleaves_the_windows_and_the_takes(tmp_path):
    """The takes between the overlapping windows, in time order, from stored vectors or decoded."""
    from engine.tagging import tag_timeline
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    takes, _, _ = take_library(lib)
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    with SoundIndex.open(idx, model=FakeModel()) as index:
        spans, from_index = tag_timeline(takes, ["a", "b"], index=index, top=1)
    assert from_index
    assert [(s.start, s.end, s.marker) for s in spans] == [
        (0.0, 2.0, None), (0.5, 1.5, "Hinge squeal"), (1.0, 3.0, None), (1.5, 2.5, "Wind gust"),
        (2.0, 4.0, None), (3.5, 4.0, "Gate latch")]
    spans, from_index = tag_timeline(takes, ["a", "b"], model=FakeModel(), top=1)
    assert not from_index and [(s.start, s.end, s.marker) for s in spans][1] == (0.5, 1.5, "Hinge squeal")


def test_the_take_is_the_shortest_segment_starting_at_its_marker(tmp_path):
    """A window starting at a marker is not named when the take there is shorter, and is the
    take (named) when the take would repeat it; search and timeline agree."""
    from engine.tagging import tag_timeline
    from ui.demo import append_markers
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    path = write(lib / "two_takes.wav", noise(4.0, 16000, seed=9), 16000)
    append_markers(path, [(0.0, "Alpha"), (1.0, "Bravo")])       # takes 0–1 and 1–3 (= the window 1–3)
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    with SoundIndex.open(idx, model=FakeModel()) as index:
        named = {(h.start, h.end): h.marker for h in index.search_text("x", k=50, per_file=False)}
        spans, _ = tag_timeline(path, ["a"], index=index, top=1)
    assert named == {(0.0, 1.0): "Alpha", (0.0, 2.0): None, (1.0, 3.0): "Bravo", (2.0, 4.0): None}
    assert {(s.start, s.end): s.marker for s in spans} == named


def test_a_damaged_marker_chunk_is_a_value_error_not_a_crash():
    """named_markers on bytes cut inside a chunk's fields says so (its callers go on without
    markers and say why); an ltxt region cut short is read as far as it goes."""
    import io

    from engine.file_metadata import named_markers
    cut_fmt = b"RIFF" + struct.pack("<I", 100) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + b"\x01\x00"
    with pytest.raises(ValueError, match="damaged marker chunk"):
        named_markers(io.BytesIO(cut_fmt))
    cut_region = (wav_bytes(pcm16(tone(440, 1.0, 16000))) + cue_chunk((1, 8000))
                  + riff_chunk(b"LIST", b"adtl" + riff_chunk(b"labl", struct.pack("<I", 1) + b"Beep\0")
                               + b"ltxt" + struct.pack("<I", 20) + struct.pack("<I", 1)))
    raw = cut_region[:4] + struct.pack("<I", len(cut_region) - 8) + cut_region[8:]
    assert [(m.at, m.name, m.length) for m in named_markers(io.BytesIO(raw))] == [(0.5, "Beep", None)]


def sync_point(at: int, comment: str | None, kind: str = "RELATIVE", duration: int = 0, low: str | None = None) -> str:
    return ("<SYNC_POINT><SYNC_POINT_TYPE>" + kind + "</SYNC_POINT_TYPE><SYNC_POINT_FUNCTION>MARKER_GENERIC"
            "</SYNC_POINT_FUNCTION>" + (f"<SYNC_POINT_COMMENT>{comment}</SYNC_POINT_COMMENT>" if comment else "")
            + f"<SYNC_POINT_LOW>{low or at & 0xFFFFFFFF}</SYNC_POINT_LOW><SYNC_POINT_HIGH>{at >> 32}</SYNC_POINT_HIGH>"
            f"<SYNC_POINT_EVENT_DURATION>{duration}</SYNC_POINT_EVENT_DURATION></SYNC_POINT>")


def test_a_field_recorders_cues_in_ixml_are_named_markers(tmp_path):
    """A recorder's named cues (iXML SYNC_POINT_LIST) are markers where the file has no named
    cue chunk: RELATIVE from the file's start, ABSOLUTE from midnight less the bext time
    reference; cues without a comment or with broken numbers are left out."""
    from engine.file_metadata import Marker, named_markers
    start = 80 * 3600 * 16000                                   # past 32 bits (as 192 kHz after 06:13 is)
    bext = bytearray(bext_chunk(b"Roadside, morning")[8:])
    bext[338:346] = struct.pack("<Q", start)
    ixml = ("<?xml version='1.0' encoding='UTF-8'?><BWFXML><IXML_VERSION>2.10</IXML_VERSION><SYNC_POINT_LIST>"
            "<SYNC_POINT_COUNT>5</SYNC_POINT_COUNT>"
            + sync_point(start + 40_000, "Plane overhead", "ABSOLUTE")
            + sync_point(16_000, "Car pass  by", duration=8_000) + sync_point(24_000, None)
            + sync_point(0, "Broken", low="n/a") + sync_point(2_000, "Before the file", "ABSOLUTE")
            + sync_point(64_000, "After the file")
            + "</SYNC_POINT_LIST></BWFXML>")
    field = tmp_path / "roadside.wav"
    field.write_bytes(with_trailing_chunk(wav_bytes(pcm16(noise(4.0, 16000, seed=9)), extra_chunks=riff_chunk(b"bext", bytes(bext))),
                                          riff_chunk(b"iXML", ixml.encode())))
    assert named_markers(field) == [Marker(1.0, "Car pass by", 0.5), Marker(2.5, "Plane overhead", None)]
    found = read_metadata(field)
    assert (found["markers"], found["description"]) == ("0:01.00 Car pass by · 0:02.50 Plane overhead", "Roadside, morning")
    # a named cue chunk is the file's own markers: the iXML cues then stay unread
    both = tmp_path / "both.wav"
    both.write_bytes(with_trailing_chunk(wav_bytes(pcm16(noise(4.0, 16000, seed=9))),
                                         cue_chunk((1, 8_000)) + adtl_chunk((b"labl", 1, "Door")) + riff_chunk(b"iXML", ixml.encode())))
    assert named_markers(both) == [Marker(0.5, "Door", None)]
    # without a bext time reference an absolute cue cannot be placed: only the relative ones count
    unplaced = tmp_path / "unplaced.wav"
    unplaced.write_bytes(with_trailing_chunk(wav_bytes(pcm16(noise(4.0, 16000, seed=9))), riff_chunk(b"iXML", ixml.encode())))
    assert named_markers(unplaced) == [Marker(1.0, "Car pass by", 0.5)]


@pytest.mark.parametrize("version", [3, 4])
def test_an_mp3s_user_text_frames_carry_the_library_fields(tmp_path, version):
    """Taggers write the UCS fields ID3 has no frame for as TXXX frames (written here by
    mutagen: UTF-8 in ID3v2.4, UTF-16 in v2.3); libsndfile reads only the standard frames."""
    from mutagen.id3 import COMM, ID3, TIT2, TXXX
    path = tmp_path / "door.mp3"
    sf.write(str(path), noise(1.0, 44100, seed=3), 44100, format="MP3")
    tag = ID3()
    tag.add(TIT2(encoding=3, text="Door"))
    tag.add(COMM(encoding=3, lang="eng", desc="", text="Heavy oak door"))
    tag.add(TXXX(encoding=3, desc="CATEGORY", text="DOORS"))
    tag.add(TXXX(encoding=3, desc="CatID", text="DOORWood"))
    tag.add(TXXX(encoding=3, desc="FXName", text="Door slam, heavy oak, Türknall"))
    tag.add(TXXX(encoding=3, desc="Keywords", text=["slam", "oak"] if version == 4 else "slam, oak"))
    tag.add(TXXX(encoding=3, desc="Microphone", text="MKH 416"))
    tag.save(str(path), v2_version=version)
    found = read_metadata(path)
    assert {k: found.get(k) for k in ("title", "comment", "category", "catid", "keywords")} == {
        "title": "Door slam, heavy oak, Türknall", "comment": "Heavy oak door", "category": "DOORS",
        "catid": "DOORWood", "keywords": "slam, oak"}
    assert sf.info(str(path)).frames > 0


def test_id3_frame_flags_are_honoured():
    """A v2.4 frame with a data length indicator and unsynchronised data, and a compressed
    frame left out (hand-made: mutagen writes neither)."""
    import io
    from engine.file_metadata import id3_user_texts

    def frame(data: bytes, flags: int) -> bytes:
        size = len(data)
        syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
        return b"TXXX" + syncsafe + bytes([0, flags]) + data
    plain = b"\x03CATEGORY\x00DOORS"
    body = (frame(struct.pack(">I", len(plain)) + plain, 0x01)                        # its length first
            + frame(b"\x03CatID\x00DOORWood", 0x08)                                     # compressed: left out
            + frame(b"\x00Designer\x00A. \xff\x00\xe9", 0x02) + b"\x00" * 20)             # Latin-1, ff 00 → ff
    size = len(body)
    head = b"ID3\x04\x00\x00" + bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    assert id3_user_texts(io.BytesIO(head + body)) == ["CATEGORY=DOORS", "Designer=A. ÿé"]


@pytest.mark.parametrize("kind", ["wav", "aiff"])
def test_an_id3_chunk_in_a_wav_or_aiff_is_read(tmp_path, kind):
    """Mp3tag and foobar2000 tag WAV and AIFF files with an ID3 chunk (written here by mutagen),
    which libsndfile does not read: its title, artist, comment and UCS fields count."""
    from mutagen.aiff import AIFF
    from mutagen.id3 import COMM, TIT2, TPE1, TXXX
    from mutagen.wave import WAVE
    path = tmp_path / f"door.{kind}"
    sf.write(str(path), tone(440, 0.5, 16000), 16000, format=kind.upper())
    tagged = (WAVE if kind == "wav" else AIFF)(str(path))
    tagged.add_tags()
    tagged.tags.add(TIT2(encoding=1, text="Door slam"))                    # UTF-16
    tagged.tags.add(TPE1(encoding=3, text="Field recordist"))
    tagged.tags.add(COMM(encoding=3, lang="eng", desc="", text="Heavy oak door, Türknall"))
    tagged.tags.add(TXXX(encoding=3, desc="CATEGORY", text="DOORS"))
    tagged.save()
    found = read_metadata(path)
    assert {k: found.get(k) for k in ("title", "artist", "comment", "category")} == {
        "title": "Door slam", "artist": "Field recordist", "comment": "Heavy oak door, Türknall", "category": "DOORS"}
    assert sf.info(str(path)).frames == 8000
