"""Digital silence, the leftovers of session 40 (session 41): `info` counts a file with markers
judged by session 39 as not judged yet (its silent takes were kept) instead of a wrong count; a
byte-identical copy of a file measured in the loudness pass is given its levels, not decoded
again; a ``silent_takes`` row is stored only for a file with named markers (the row that says its
takes were judged) or silent takes, and an index holding the empty rows of session 40 keeps
working without being judged again."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from sqlalchemy import select

from engine.catalog import File, FileMetadata
from engine.file_metadata import LEVEL_KEYS
from indexer import build_index
from tests.conftest import catalog_session, noise, padded, write
from tests.index_fakes import FakeModel
from tests.test_silence_leftovers40 import PAUSE_CUE, silent_marked_file
from tests.test_silence_refresh39 import (SILENCE_KEYS, NoEmbedding, forget_rows, old_index, rows_of,
                                          silence_counts, take_kept_index)

SR = 16000

#: a cue sheet marking a take at 1.0133 s, over sound: a marked file with no silent take
SOUND_CUE = ('FILE "{name}" WAVE\n  TRACK 01 AUDIO\n    TITLE "A"\n    INDEX 01 00:00:00\n'
             '  TRACK 02 AUDIO\n    TITLE "B"\n    INDEX 01 00:01:01\n')


@pytest.fixture
def library(tmp_path):
    lib = tmp_path / "lib"
    write(lib / "padded.wav", padded(noise(2.0, SR, seed=4), 25.0, 11.0, SR), SR)     # no markers
    write(lib / "plain.wav", noise(3.0, SR, seed=5), SR)                             # no markers, no silence
    write(lib / "reel.wav", padded(noise(2.0, SR, seed=2), 8.0, 0.0, SR), SR)        # a silent marked take
    (lib / "reel.cue").write_text(PAUSE_CUE.format(name="reel.wav"))
    write(lib / "take.wav", noise(4.0, SR, seed=6), SR)                              # a marked take, not silent
    (lib / "take.cue").write_text(SOUND_CUE.format(name="take.wav"))
    return lib.resolve()


# ------------------------------------------------------------------ info on an index of session 39


def test_info_counts_files_with_markers_judged_by_session_39_as_not_judged_yet(library, tmp_path, monkeypatch):
    """Session 39 kept a silent marked take: its counts miss those takes and a silent file with
    markers is not one of silence throughout. `info` says those files are not judged yet (what the
    next run judges again) rather than count them as judged."""
    from ui.cli.cmd_info import _silence_text
    silent_marked_file(library)
    idx = tmp_path / "idx"
    take_kept_index(library, idx, monkeypatch, forget=(SILENCE_KEYS[2],))   # as session 39 left it
    counts = silence_counts(idx)
    assert counts["silence_not_judged"] == 3                # gap.wav, reel.wav, take.wav: their markers
    assert "run `soundsift index` to judge" in _silence_text(counts)
    s = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert s.silence_judged == 3
    assert silence_counts(idx) == {"silent_left_out": 21 + 6 + 7, "files_of_silence": 1, "silence_not_judged": 0}


# ------------------------------------------------------------------ a copy in the loudness pass


def test_a_copy_of_a_file_without_levels_is_given_its_levels_not_decoded_again(library, tmp_path, monkeypatch):
    from indexer import level_refresh
    idx = tmp_path / "idx"
    build_index([library], idx, FakeModel(), workers=0, progress=False)
    forget_rows(idx, LEVEL_KEYS)                         # silence judged, loudness not measured
    copy = library / "more" / "copy.wav"
    copy.parent.mkdir()
    shutil.copy2(library / "padded.wav", copy)           # byte-identical: given padded.wav's rows and vectors
    real, decoded = level_refresh.measure, []
    monkeypatch.setattr(level_refresh, "measure", lambda path: decoded.append(os.path.basename(path)) or real(path))
    s = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert (s.added, s.same_audio) == (1, 1)
    assert sorted(decoded) == ["padded.wav", "plain.wav", "reel.wav", "take.wav"]    # the copy is not decoded
    assert s.levels_measured == 5
    loudness = rows_of(idx, LEVEL_KEYS[1])
    assert len(loudness) == 5 and loudness["copy.wav"] == loudness["padded.wav"]
    again = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert again.levels_measured == 0


# ------------------------------------------------------------------ silent_takes rows


def test_silent_takes_rows_are_stored_only_for_files_with_markers(library, tmp_path):
    idx = tmp_path / "idx"
    build_index([library], idx, FakeModel(), workers=0, progress=False)
    assert rows_of(idx, SILENCE_KEYS[2]) == {"reel.wav": str(round((4 + 38 / 75) * SR)), "take.wav": ""}
    assert set(rows_of(idx, SILENCE_KEYS[0])) == {"padded.wav", "plain.wav", "reel.wav", "take.wav"}
    assert silence_counts(idx)["silence_not_judged"] == 0
    again = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert (again.silence_judged, again.updated, again.unchanged) == (0, 0, 4)


def test_an_old_index_judged_now_stores_silent_takes_rows_only_for_files_with_markers(library, tmp_path,
                                                                                        monkeypatch):
    idx = tmp_path / "idx"
    old_index(library, idx, monkeypatch)
    s = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert s.silence_judged == 4
    assert rows_of(idx, SILENCE_KEYS[2]) == {"reel.wav": str(round((4 + 38 / 75) * SR)), "take.wav": ""}
    again = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert (again.silence_judged, again.generation) == (0, s.generation)


def test_an_index_holding_empty_silent_takes_rows_keeps_working_and_is_not_judged_again(library, tmp_path,
                                                                                          monkeypatch):
    """Session 40 stored an empty ``silent_takes`` row for every file: they stay, read as before."""
    from indexer import silence_refresh
    idx = tmp_path / "idx"
    build_index([library], idx, FakeModel(), workers=0, progress=False)
    with catalog_session(idx, write=True) as s:         # as session 40 left it
        for fid in s.scalars(select(File.id).where(File.path.in_([str(library / n) for n in ("padded.wav", "plain.wav")]))):
            s.add(FileMetadata(file_id=fid, key=SILENCE_KEYS[2], value=""))
        s.commit()
    monkeypatch.setattr(silence_refresh, "judge", lambda *a, **kw: pytest.fail("judged again"))
    s = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert (s.silence_judged, s.updated, s.unchanged) == (0, 0, 4)
    assert silence_counts(idx) == {"silent_left_out": 21 + 6, "files_of_silence": 0, "silence_not_judged": 0}
    assert len(rows_of(idx, SILENCE_KEYS[2])) == 4


def test_a_silent_file_with_markers_keeps_its_row_and_one_without_none(tmp_path):
    lib = tmp_path / "quiet"
    silent_marked_file(lib)
    write(lib / "blank.wav", np.zeros(3 * SR, np.float32), SR)
    idx = tmp_path / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    assert rows_of(idx, SILENCE_KEYS[1]) == {"gap.wav": "1", "blank.wav": "1"}
    assert set(rows_of(idx, SILENCE_KEYS[2])) == {"gap.wav"}
    assert silence_counts(idx)["silence_not_judged"] == 0
