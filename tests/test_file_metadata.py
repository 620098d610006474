"""Descriptions files carry inside them (engine.file_metadata): read from every container
libsndfile writes and from a Broadcast WAV's bext chunk, stored in the catalog by the indexer,
returned by SoundIndex.get_file, found by keyword search and shown on the page's result card."""
from __future__ import annotations

import struct

import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.catalog import FileMetadata, open_catalog
from engine.file_metadata import MAX_VALUE, read_metadata, riff_fields
from engine.layout import IndexLayout
from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import noise, tone, write
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
    engine = open_catalog(IndexLayout(tmp_path / "idx").catalog)
    with Session(engine) as s:
        rows = {(key, value) for key, value in s.execute(select(FileMetadata.key, FileMetadata.value))}
    engine.dispose()
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
