"""A cut MP3 decoded in the indexing process (``index --workers 0``, or a decode wherever what the
decoders print is said under the file's name) lost its "shorter than its header says" warning:
libmpg123's "Warning: Xing stream size off …" went into the same notes while it decoded, and any
note added while decoding was taken for one saying where decoding stopped. Only such a note
(engine.audio.STOPPED_AT) stands for it now; a decoder worker process was right already."""
from __future__ import annotations

import logging

import pytest

from engine.audio import relaying_decoder_output
from engine.segments import SegmentPolicy
from indexer import build_index, decode
from tests.index_fakes import FakeModel
from tests.test_decoder_messages34 import XING, cut_mp3

pytestmark = pytest.mark.usefixtures("private_cache")

SHORTER = "shorter than its header says"


def test_a_cut_mp3_decoded_in_this_process_says_it_is_cut_short(tmp_path):
    path = cut_mp3(tmp_path / "steps.mp3")
    with relaying_decoder_output():            # the decoder's lines said under the file's name
        events = list(decode.decode_file(decode.DecodeJob(0, str(path)), 16000, SegmentPolicy(1.0)))
    done = events[-1]
    assert isinstance(done, decode.FileDecoded)
    assert any(XING in note for note in done.notes)                   # the decoder's line is kept
    assert any(note.startswith(SHORTER) for note in done.notes), done.notes
    assert dict(done.info.metadata)["header_duration"] == "3.00"


def test_index_workers_0_warns_of_the_cut_mp3(tmp_path, caplog):
    lib = tmp_path / "lib"
    path = cut_mp3(lib / "steps.mp3")
    with relaying_decoder_output(), caplog.at_level(logging.WARNING):
        summary = build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    assert (summary.added, summary.failed) == (1, 0)
    said = [r.getMessage() for r in caplog.records if r.name == "indexer.runner"]
    assert any(m.startswith(f"{path}: {SHORTER}") for m in said), said


def test_only_a_stop_note_says_where_decoding_stopped():
    from engine.audio import says_where_it_stopped
    assert says_where_it_stopped("decoding stopped at 1.49 s of 3.00 s (lost sync): keeping the audio before it")
    assert not says_where_it_stopped(f"Warning: {XING} by more than 1%, fuzzy seeking may be even more fuzzy")
