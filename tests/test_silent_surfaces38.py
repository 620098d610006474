"""What the user sees of a file whose segments of digital silence the index left out (session 38):
its stored segments no longer tile it, so "more like" a moment in the silence has no stored segment
holding it. The file still comes first, as its stored segment nearest the moment; when the file
cannot be read now, the moment is refused by name instead of failing inside numpy."""
from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InvalidQuery
from engine.query import SoundIndex
from engine.tagging import tag_timeline
from indexer import build_index
from tests.conftest import noise, padded, tone, write
from tests.index_fakes import FakeModel

SR = 16000          # FakeModel's rate: 2 s windows every 1 s, no resampling



@pytest.fixture
def indexed(tmp_path):
    """padded.wav: 2 s of noise at 11 s in 25 s of silence (stored: 10-12, 11-13, 12-14 only);
    silence.wav: silence throughout (its first segment, the vector a moment of silence gets)."""
    lib = tmp_path / "lib"
    write(lib / "padded.wav", padded(noise(2.0, SR, seed=4), 25.0, 11.0, SR), SR)
    write(lib / "silence.wav", np.zeros(7 * SR, np.float32), SR)
    write(lib / "sound.wav", tone(300, 5.0, SR), SR)
    idx = tmp_path / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    return lib, idx


@pytest.mark.parametrize("start,end,nearest", [(2.0, 6.0, (10.0, 12.0)), (20.0, 24.0, (12.0, 14.0))])
def test_more_like_a_moment_of_left_out_silence_comes_first_as_its_nearest_segment(indexed, start, end, nearest):
    lib, idx = indexed
    with SoundIndex.open(idx, model=FakeModel()) as index:
        hits = index.similar_to_file(lib / "padded.wav", k=3, start=start, end=end)
        assert (hits[0].path, (hits[0].start, hits[0].end), hits[0].score) == (
            str((lib / "padded.wav").resolve()), nearest, pytest.approx(1.0))
        assert [h.path for h in hits].count(hits[0].path) == 1
        assert hits[1].path.endswith("silence.wav")           # the moment searched by is silence
        segments = index.similar_to_file(lib / "padded.wav", k=3, start=start, end=end, per_file=False)
        assert (segments[0].path, (segments[0].start, segments[0].end)) == (hits[0].path, nearest)


@pytest.mark.parametrize("start,end", [(2.0, 6.0), (20.0, 24.0)])
@pytest.mark.parametrize("now,why", [("gone", r"is not on disk now \(moved or deleted since it was indexed\)"),
                                     ("damaged", r"cannot be decoded now \(.*\)")])
def test_more_like_left_out_silence_of_a_file_not_readable_now_is_refused_by_name(indexed, caplog, start, end,
                                                                                 now, why):
    lib, idx = indexed
    path = lib / "padded.wav"
    if now == "gone":
        path.rename(lib / "elsewhere.wav")
    else:
        path.write_bytes(b"not audio at all" * 64)
    with SoundIndex.open(idx, model=FakeModel()) as index:
        with caplog.at_level("WARNING", logger="engine.query"):
            with pytest.raises(InvalidQuery, match=rf"padded\.wav {why}, and its moment {start:g}–{end:g} s is "
                                                   "digital silence the index left out"):
                index.similar_to_file(path, k=3, start=start, end=end)
            assert not [r for r in caplog.records if "searches by its stored segments" in r.getMessage()]
            hits = index.similar_to_file(path, k=3, start=10.5, end=12.5)    # its sound: the stored segments
            assert hits[0].path == str(path.resolve())                         # overlapping it, warned
            assert [r for r in caplog.records if "searches by its stored segments overlapping it" in r.getMessage()]


def test_the_timeline_and_the_file_record_list_the_same_stored_segments(indexed):
    """`tag --timeline` from the index and decoded now, and the record `/files` gives, list the
    segments the index stored: gaps where the silence was, the file's length its own."""
    lib, idx = indexed
    path = lib / "padded.wav"
    with SoundIndex.open(idx, model=FakeModel()) as index:
        stored, from_index = tag_timeline(path, ["rain", "door"], index=index)
        record = index.get_file(index.file_id_for_path(path))
    decoded, again = tag_timeline(path, ["rain", "door"], model=FakeModel())
    assert from_index and not again
    spans = [(10.0, 12.0), (11.0, 13.0), (12.0, 14.0)]
    assert [(s.start, s.end) for s in stored] == [(s.start, s.end) for s in decoded] == spans
    assert [(s["start"], s["end"]) for s in record["segments"]] == spans and record["duration"] == pytest.approx(25.0)
