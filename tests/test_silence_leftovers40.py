"""Digital silence, the leftovers of session 39 (session 40): a copy of an old file added in the run
that judges the file is judged with it; a marked take of digital silence is left out as a window
is, so it no longer enters the file's vector, and a silent file with markers is a file of silence
throughout (`info`'s ``files_of_silence``) and is not embedded again on every run."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from engine import zeroshot
from engine.models.base import l2_normalize
from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import noise, padded, write
from tests.index_fakes import FakeModel
from tests.test_silence_refresh39 import (SILENCE_KEYS, NoEmbedding, old_index, rows_of, silence_counts,
                                          stored, take_kept_index)

SR = 16000

#: a cue sheet marking a take at 4.5067 s (not a window start), over digital silence in reel.wav
PAUSE_CUE = ('FILE "{name}" WAVE\n  TRACK 01 AUDIO\n    TITLE "Sound"\n    INDEX 01 00:00:00\n'
             '  TRACK 02 AUDIO\n    TITLE "Pause"\n    INDEX 01 00:04:38\n')


@pytest.fixture
def library(tmp_path):
    lib = tmp_path / "lib"
    write(lib / "padded.wav", padded(noise(2.0, SR, seed=4), 25.0, 11.0, SR), SR)     # windows 10-12 … 12-14 sound
    write(lib / "reel.wav", padded(noise(2.0, SR, seed=2), 8.0, 0.0, SR), SR)        # sound 0-2 s, then silence
    (lib / "reel.cue").write_text(PAUSE_CUE.format(name="reel.wav"))
    return lib.resolve()


# ------------------------------------------------------------------ a copy added with its old file


def test_a_copy_of_an_old_file_is_judged_with_it_in_the_same_run_without_decoding_it(library, tmp_path,
                                                                                       monkeypatch):
    from indexer import silence_refresh
    idx = tmp_path / "idx"
    old_index(library, idx, monkeypatch)                 # silence stored, nothing judged
    copy = library / "more" / "copy.wav"
    copy.parent.mkdir()
    shutil.copy2(library / "padded.wav", copy)           # byte-identical: given padded.wav's rows and vectors
    real, decoded = silence_refresh.judge, []

    def judge(path, *args, **kw):
        decoded.append(os.path.basename(path))
        return real(path, *args, **kw)
    monkeypatch.setattr(silence_refresh, "judge", judge)
    s = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert (s.added, s.same_audio, s.n_segments) == (1, 1, 0)
    assert sorted(stored(idx, copy)) == sorted(stored(idx, library / "padded.wav")) == [
        (10.0, 12.0), (11.0, 13.0), (12.0, 14.0)]        # judged as its file is, in this run
    assert rows_of(idx, SILENCE_KEYS[0])["copy.wav"] == rows_of(idx, SILENCE_KEYS[0])["padded.wav"] == "21"
    assert silence_counts(idx)["silence_not_judged"] == 0
    assert sorted(decoded) == ["padded.wav", "reel.wav"]        # the copy is not decoded again
    assert (s.silence_judged, s.silent_segments_dropped) == (3, 21 + 21 + 6)
    again = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert (again.silence_judged, again.silent_segments_dropped, again.generation) == (0, 0, s.generation)


def test_a_copy_of_an_old_file_that_cannot_be_read_now_is_said_and_left_for_a_later_run(library, tmp_path,
                                                                                         monkeypatch, caplog):
    import logging
    from indexer import silence_refresh
    idx = tmp_path / "idx"
    old_index(library, idx, monkeypatch)
    shutil.copy2(library / "padded.wav", library / "copy.wav")
    real = silence_refresh.judge
    monkeypatch.setattr(silence_refresh, "judge", lambda path, *a, **kw: (
        silence_refresh.Judged(path, why=f"{path}: cannot be read") if path.endswith("padded.wav")
        else real(path, *a, **kw)))
    with caplog.at_level(logging.WARNING, logger="indexer"):
        s = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert s.silence_judged == 1 and set(rows_of(idx, SILENCE_KEYS[0])) == {"reel.wav"}
    said = [r.getMessage() for r in caplog.records if "not judged" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("silence of 2 indexed files not judged")


# ------------------------------------------------------------------ silent marked takes


def sounding_mean(wave: np.ndarray, spans: list[tuple[float, float]]) -> np.ndarray:
    """The file vector of ``wave``'s segments ``spans`` (seconds): FakeModel's vectors' mean."""
    return l2_normalize(FakeModel().embed_audio([wave[int(a * SR):int(b * SR)] for a, b in spans]).mean(axis=0))


def test_a_silent_marked_take_leaves_the_file_vector_and_the_file_is_not_cut_again(library, tmp_path):
    idx = tmp_path / "idx"
    s = build_index([library], idx, FakeModel(), workers=0, progress=False)
    assert sorted(stored(idx, library / "reel.wav")) == [(0.0, 2.0), (1.0, 3.0)]     # the "Pause" take is silence
    assert rows_of(idx, SILENCE_KEYS[0])["reel.wav"] == "6"                           # 5 windows and the take
    assert rows_of(idx, SILENCE_KEYS[2]) == {"reel.wav": str(round((4 + 38 / 75) * SR))}   # none unmarked
    wave = padded(noise(2.0, SR, seed=2), 8.0, 0.0, SR)
    expected = sounding_mean(wave, [(0.0, 2.0), (1.0, 3.0)])
    with SoundIndex.open(idx, model=FakeModel()) as index:
        np.testing.assert_allclose(index.file_vector(str(library / "reel.wav")), expected, atol=1e-5)
    decoded, _ = zeroshot.file_query_vector(FakeModel(), library / "reel.wav")     # `tag FILE`: the same
    np.testing.assert_allclose(decoded, expected, atol=1e-5)
    again = build_index([library], idx, NoEmbedding(), workers=0, progress=False)   # its take is not missing
    assert (again.updated, again.unchanged, again.n_segments) == (0, 2, 0)
    assert s.silent_left_out == 21 + 6


def test_an_old_index_drops_a_silent_marked_take_with_the_rest_of_its_silence(library, tmp_path, monkeypatch):
    idx = tmp_path / "idx"
    old_index(library, idx, monkeypatch)                  # every segment stored, the silent take too
    assert (4.507, 6.507) in stored(idx, library / "reel.wav")
    s = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert sorted(stored(idx, library / "reel.wav")) == [(0.0, 2.0), (1.0, 3.0)]
    assert (s.silence_judged, s.silent_segments_dropped) == (2, 21 + 6)


def silent_marked_file(lib):
    """gap.wav: 8 s of digital silence with reel.wav's markers (a take at 4.5067 s)."""
    write(lib / "gap.wav", np.zeros(8 * SR, np.float32), SR)
    (lib / "gap.cue").write_text(PAUSE_CUE.format(name="gap.wav"))
    return lib / "gap.wav"


def test_a_silent_file_with_markers_is_a_file_of_silence_throughout(library, tmp_path):
    lib = tmp_path / "quiet"
    silent_marked_file(lib)
    idx = tmp_path / "idx"
    s = build_index([lib], idx, FakeModel(), workers=0, progress=False)
    assert s.files_of_silence == 1
    assert rows_of(idx, SILENCE_KEYS[1]) == {"gap.wav": "1"}
    # 8 segments (7 windows, the take), all silent: the first kept
    assert silence_counts(idx) == {"silent_left_out": 7, "files_of_silence": 1, "silence_not_judged": 0}
    assert sorted(stored(idx, lib / "gap.wav")) == [(0.0, 2.0)]          # found, by its first segment
    again = build_index([lib], idx, NoEmbedding(), workers=0, progress=False)
    assert (again.updated, again.unchanged) == (0, 1)


def test_a_waveform_upload_with_a_silent_take_leaves_it_out(library):
    """An upload (a waveform with markers) is cut as the indexer cuts a file."""
    wave = padded(noise(2.0, SR, seed=2), 8.0, 0.0, SR)
    spans, _ = zeroshot.waveform_segment_vectors(FakeModel(), wave, SR, markers=[(0.0, None), (4.5067, None)])
    assert spans == [(0.0, 2.0), (1.0, 3.0)]


def test_an_index_judged_by_session_39_is_judged_again_once_where_it_has_markers(library, tmp_path, monkeypatch):
    """Session 39 judged silence keeping every marked take: its silent takes stayed in their file
    vectors, and a silent file with markers was not one of silence throughout. The next run judges
    the files with markers again, once (decoding only), and leaves the others alone."""
    from indexer import silence_refresh
    gap = silent_marked_file(library)
    idx = tmp_path / "idx"
    take_kept_index(library, idx, monkeypatch, forget=(SILENCE_KEYS[2],))
    assert (4.507, 6.507) in stored(idx, library / "reel.wav")
    # their silent takes kept: the two files with markers are not judged yet
    assert silence_counts(idx) == {"silent_left_out": 21 + 5 + 7, "files_of_silence": 0, "silence_not_judged": 2}
    real, decoded = silence_refresh.judge, []
    monkeypatch.setattr(silence_refresh, "judge", lambda path, *a, **kw: decoded.append(path) or real(path, *a, **kw))
    s = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert sorted(os.path.basename(p) for p in decoded) == ["gap.wav", "reel.wav"]     # padded.wav has no markers
    assert sorted(stored(idx, library / "reel.wav")) == [(0.0, 2.0), (1.0, 3.0)]
    assert len(stored(idx, gap)) == 1
    assert (s.silence_judged, s.silent_segments_dropped) == (2, 1)      # reel.wav's take; gap.wav keeps one
    assert silence_counts(idx) == {"silent_left_out": 21 + 6 + 7, "files_of_silence": 1, "silence_not_judged": 0}
    again = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert (again.silence_judged, again.updated, again.generation) == (0, 0, s.generation)
