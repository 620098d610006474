""""More like this moment" for a span holding no whole stored segment: that span is decoded
and embedded, not the 10 s windows overlapping it (engine.query.SoundIndex.similar_to_file).

The library: a 30 s field recording (a 300 Hz hum throughout, a loud 2 kHz burst at 12–13 s;
10 s windows, hop 5 s, so the hum wins every window) and three other files: a 1 s 2 kHz tone
and two hums. Every stored vector is what the fake model (a unit vector at the band of the
dominant frequency) gives the file's segments, as the indexer would store them.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from conftest import noise, tone, write
from engine import zeroshot
from engine.errors import InvalidQuery
from engine.query import Filters, SoundIndex
from engine.segments import SegmentPolicy
from query_fixtures import FakeModel, FileSpec, write_index

DIM = 16
SR = 8000
WINDOW = 10.0

pytestmark = pytest.mark.usefixtures("private_cache")


def _field_recording() -> np.ndarray:
    x = tone(300.0, 30.0, SR, amp=0.5) + noise(30.0, SR, seed=1, amp=0.02)
    x[12 * SR:13 * SR] += tone(2000.0, 1.0, SR, amp=0.9)
    return x.astype(np.float32)


@pytest.fixture
def moments(tmp_path):
    """(index, model, paths by name) for the library above, indexed with 10 s windows."""
    model = FakeModel(DIM)
    model.window_seconds = WINDOW
    lib = tmp_path / "lib"
    paths = {"field": write(lib / "field.wav", _field_recording(), SR),
             "tone": write(lib / "tone.wav", tone(2000.0, 1.0, SR, amp=0.9), SR),
             "hum_a": write(lib / "hum_a.wav", tone(300.0, 20.0, SR), SR),
             "hum_b": write(lib / "hum_b.wav", tone(310.0, 10.0, SR), SR)}
    specs = []
    for path in paths.values():
        bounds, vectors = zeroshot.file_segment_vectors(model, path, SegmentPolicy(WINDOW))
        specs.append(FileSpec(str(path), vectors, duration=bounds[-1][1], bounds=bounds))
    write_index(tmp_path / "idx", specs, dim=DIM, window=WINDOW)
    assert model.band_of(300.0) != model.band_of(2000.0)
    with SoundIndex.open(tmp_path / "idx", model=model) as index:
        yield index, model, {name: str(p) for name, p in paths.items()}


def test_a_moment_shorter_than_a_segment_is_decoded_and_is_the_query(moments):
    """The 1 s burst at 12–13 s finds the 1 s tone right after the recording itself; the
    windows overlapping it (5–15 s, 10–20 s: all hum) found the hums instead."""
    index, _, paths = moments
    hits = index.similar_to_file(paths["field"], k=3, start=12.0, end=13.0)
    assert [h.path for h in hits[:2]] == [paths["field"], paths["tone"]]
    assert hits[0].score == pytest.approx(1.0) and hits[1].score == pytest.approx(1.0, abs=1e-5)
    assert (hits[0].start, hits[0].end) == (5.0, 15.0)      # its stored segment holding the moment
    assert all(h.score < 0.5 for h in hits[2:])
    by_id = index.similar_to_file(hits[0].file_id, k=3, start=12.0, end=13.0)
    assert [h.path for h in by_id] == [h.path for h in hits]
    segments = index.similar_to_file(paths["field"], k=2, per_file=False, start=12.0, end=13.0)
    assert [(h.path, h.start) for h in segments] == [(paths["field"], 5.0), (paths["tone"], 0.0)]


def test_a_span_straddling_segments_is_decoded_too(moments):
    """13–21 s holds no whole window (5–15, 10–20 and 15–25 s cross it): that span is decoded
    and searched as search_audio searches it, the recording itself first."""
    index, model, paths = moments
    calls = model.audio_calls
    hits = index.similar_to_file(paths["field"], k=3, start=13.0, end=21.0)
    assert model.audio_calls > calls
    as_excerpt = index.search_audio(paths["field"], k=3, start=13.0, end=21.0)
    assert hits[0].path == paths["field"]
    assert [(h.path, h.score) for h in hits[1:]] == [(h.path, h.score) for h in as_excerpt
                                                     if h.path != paths["field"]][:2]


def test_a_span_holding_whole_segments_decodes_nothing(moments, monkeypatch):
    """5–20 s holds the windows 5–15 and 10–20 s: their stored vectors are the query."""
    index, model, paths = moments

    def no_decoding(*args, **kwargs):
        raise AssertionError("nothing may be decoded for a span of whole segments")
    monkeypatch.setattr(zeroshot, "excerpt", no_decoding)
    monkeypatch.setattr("engine.audio.iter_blocks", no_decoding)
    calls = model.audio_calls
    hits = index.similar_to_file(paths["field"], k=3, start=5.0, end=20.0)
    assert model.audio_calls == calls
    assert hits[0].path == paths["field"] and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert {h.path for h in hits[1:]} == {paths["hum_a"], paths["hum_b"]}


def test_a_moment_keeps_filters_and_k(moments):
    index, _, paths = moments
    short_files = Filters(max_duration=25.0)        # leaves the 30 s recording itself out
    hits = index.similar_to_file(paths["field"], k=2, start=12.0, end=13.0, filters=short_files)
    assert hits[0].path == paths["tone"] and paths["field"] not in {h.path for h in hits}
    assert len(hits) == 2
    assert [h.path for h in index.similar_to_file(paths["field"], k=1, start=12.0, end=13.0)] == [paths["field"]]


def test_a_moment_of_a_file_gone_from_disk_falls_back_to_the_overlapping_segments(moments, caplog):
    index, _, paths = moments
    Path(paths["field"]).unlink()
    with caplog.at_level(logging.WARNING, logger="engine.query"):
        hits = index.similar_to_file(paths["field"], k=3, start=12.0, end=13.0)
    assert hits[0].path == paths["field"] and {h.path for h in hits[1:]} == {paths["hum_a"], paths["hum_b"]}
    assert any(paths["field"] in r.getMessage() and "not on disk" in r.getMessage() for r in caplog.records)


def test_a_moment_of_a_file_unreadable_now_falls_back_with_the_reason(moments, caplog):
    index, _, paths = moments
    Path(paths["field"]).write_bytes(b"this is not audio at all" * 100)
    with caplog.at_level(logging.WARNING, logger="engine.query"):
        hits = index.similar_to_file(paths["field"], k=3, start=12.0, end=13.0)
    assert hits[0].path == paths["field"] and {h.path for h in hits[1:]} == {paths["hum_a"], paths["hum_b"]}
    assert any(paths["field"] in r.getMessage() and "cannot be decoded now" in r.getMessage()
               for r in caplog.records)


def test_a_moment_too_short_to_embed_says_so(moments):
    index, _, paths = moments
    with pytest.raises(InvalidQuery, match=r"field\.wav: the span 12–12\.05 s holds 0\.050 s of audio; "
                                           r"a query by a moment needs at least 0\.1 s"):
        index.similar_to_file(paths["field"], start=12.0, end=12.05)
    with pytest.raises(InvalidQuery, match=r"the span 29\.95–30 s holds 0\.050 s of audio"):
        index.similar_to_file(paths["field"], start=29.95)
    with pytest.raises(InvalidQuery, match=r"tone\.wav: the span 0\.5–0\.52 s holds 0\.020 s"):
        index.search_audio(paths["tone"], start=0.5, end=0.52)
    with pytest.raises(InvalidQuery, match=r"the example: the span 0\.98–its end holds 0\.020 s"):
        index.search_audio(tone(2000.0, 1.0, SR), sample_rate=SR, start=0.98)
    shortest = index.similar_to_file(paths["field"], k=2, start=12.45, end=12.55)    # 0.1 s is enough
    assert [h.path for h in shortest] == [paths["field"], paths["tone"]]


def test_a_moment_past_the_end_or_of_a_file_not_indexed_is_refused(moments, tmp_path):
    index, _, paths = moments
    with pytest.raises(InvalidQuery, match="is 30.00 s long; the start time 31 s is past its end"):
        index.similar_to_file(paths["field"], start=31.0, end=31.5)
    with pytest.raises(InvalidQuery, match="is not in index"):
        index.similar_to_file(str(tmp_path / "elsewhere.wav"), start=1.0, end=2.0)
