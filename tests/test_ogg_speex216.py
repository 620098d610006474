"""Ogg Speex (``.spx``, as speexenc names it, or ``.ogg``/``.oga``): libsndfile 1.2.2 refuses Speex,
so it is read by FFmpeg, as FFmpeg's Ogg FLAC is (tests/test_ogg_chain_audit.py); cut short after a
page it has the note any Ogg file has (tests/test_ogg_cut_at_page216.py). Before session 42 (helper
216) a folder's ``.spx`` files were passed over by the scan without a word.

PyAV's FFmpeg has no Speex encoder, so the file is 2 s of 8 kHz silence as FFmpeg 5.1's libspeex
writes it (``ffmpeg -f lavfi -i anullsrc=r=8000:cl=mono -t 2 -c:a libspeex -fflags +bitexact
-flags:a +bitexact x.spx``: four Ogg pages, the last ending at 15,960 granules)."""
from __future__ import annotations

import base64
import zlib

import numpy as np
import pytest

from engine.audio import audio_files, decode, probe

SILENCE_SPX = zlib.decompress(base64.b64decode(
    "eNrzT08PZmBiQAMHqjYZMgYEF6SmVigoKBjqGekZoqlgBOIAIHaQh/BZoGIzrBgYFiCpQQb+ILswTLl5VqeaUZ0NyEpLyy1I"
    "TQeJiQJxal5yfkpqka1PYlmyQk5mUjHINRAjJOQRRoDcXtwpV2ikRjLQmys9S4GBsf4/CDQy7AfTBxriwfQDB30w/R2simlU"
    "1aiqUVWjqkZVjaoaVUW6KnDFzRJhh6i4mYG4brlxF7kV92iwjqoaVTWqalTVqKpRVTRTBQCFTs7T"))
#: where its last page begins: the file cut there ends after a page that does not end its stream
LAST_PAGE = 2152


def test_the_fixture_is_ogg_speex():
    assert SILENCE_SPX[:4] == b"OggS" and SILENCE_SPX[28:36] == b"Speex   "
    assert SILENCE_SPX[LAST_PAGE:LAST_PAGE + 4] == b"OggS" and SILENCE_SPX[LAST_PAGE + 5] & 0x04


@pytest.mark.parametrize("name", ["memo.spx", "memo.oga"])
def test_ogg_speex_is_scanned_and_read(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(SILENCE_SPX)
    assert audio_files([tmp_path]) == [path]
    info = probe(path)
    assert (info.format, info.subtype, info.sample_rate, info.channels) == ("OGG", "SPEEX", 8000, 1)
    assert info.duration == 2.0
    notes: list[str] = []
    audio = decode(path, 16_000, notes=notes)
    assert notes == [] and len(audio) == 32_000 and np.abs(audio).max() < 1e-4      # silence


def test_ogg_speex_cut_after_a_page_says_so(tmp_path):
    path = tmp_path / "cut.spx"
    path.write_bytes(SILENCE_SPX[:LAST_PAGE])
    notes: list[str] = []
    audio = decode(path, 16_000, notes=notes)
    assert notes == ["decoding stopped at 1.00 s (the file is cut short after the Ogg page that ends at byte "
                     f"{LAST_PAGE}, which does not end its stream): keeping the audio before it"]
    assert len(audio) == 16_000
