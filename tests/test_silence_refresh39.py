"""An index built before session 38 stored the digital silence of its files; the next `soundsift
index` run drops those stored segments, rows and vectors, without embedding anything (session 39):
its file vectors become what `tag FILE` / `similar FILE` decode, a file of silence keeps one
segment, a silent marked take goes too (session 40), a file that cannot be read now keeps its rows until a later
run; every file embedded or judged stores how many segments were left out, and `info` sums them."""
from __future__ import annotations

import io
import json
import logging
import os
import re

import faiss
import numpy as np
import pytest
from sqlalchemy import delete, select

from engine import zeroshot
from engine.catalog import File, FileMetadata, SegmentRow
from engine.file_metadata import LEVEL_KEYS
from engine.segments import is_silent
from engine.query import SoundIndex
from engine.vector_access import reconstruct
from indexer import build_index
from indexer.info import index_info
from tests.conftest import catalog_session, noise, padded, tone, write
from tests.index_fakes import FakeModel

SILENCE_KEYS = ("silent_left_out", "silence_throughout", "silent_takes")  # the rows (engine.file_metadata.SILENCE_KEYS)
SR = 16000          # FakeModel's rate: no resampling, so which windows hold sound is exact


class NoEmbedding(FakeModel):
    """The index's model, for a run that must embed nothing."""

    def embed_audio(self, waveforms):
        raise AssertionError(f"embedded {len(waveforms)} segments")



@pytest.fixture
def library(tmp_path):
    lib = tmp_path / "lib"
    write(lib / "padded.wav", padded(noise(2.0, SR, seed=4), 25.0, 11.0, SR), SR)     # windows 10-12 … 12-14 sound
    write(lib / "silence.wav", np.zeros(7 * SR, np.float32), SR)
    write(lib / "sound.wav", tone(300, 5.0, SR), SR)
    write(lib / "reel.wav", padded(noise(2.0, SR, seed=2), 8.0, 0.0, SR), SR)            # sound 0-2 s, then silence
    (lib / "reel.cue").write_text('FILE "reel.wav" WAVE\n  TRACK 01 AUDIO\n    TITLE "Sound"\n'
                                  '    INDEX 01 00:00:00\n  TRACK 02 AUDIO\n    TITLE "Pause"\n'
                                  '    INDEX 01 00:04:38\n')            # 4.5067 s: a take over silence
    return lib


def forget_rows(idx, keys=SILENCE_KEYS) -> None:
    """Remove the rows an older indexer never wrote (by default, those of a pre-session-39 one)."""
    with catalog_session(idx, write=True) as s:
        s.execute(delete(FileMetadata).where(FileMetadata.key.in_(keys)))
        s.commit()


def old_index(lib, idx, monkeypatch) -> None:
    """An index as the indexer before session 38 left it: every segment stored, silence and all."""
    with monkeypatch.context() as m:
        m.setattr("indexer.decode.without_silence",
                  lambda segments, silent, counts=None: ((s, False) for s in segments))
        build_index([lib], idx, FakeModel(), workers=0, progress=False)
    forget_rows(idx)


def take_kept_index(lib, idx, monkeypatch, forget=SILENCE_KEYS) -> None:
    """An index as session 38 left it: silence left out, but a segment starting at a marked take
    at 4.5067 s (reel.wav's "Pause") kept, silent as it is, and no silence rows; with ``forget``
    the rule's row only, as session 39 left it (judged, by the rule that kept the take)."""
    take = int(round((4 + 38 / 75) * SR))
    with monkeypatch.context() as m:
        m.setattr("indexer.decode.silent_segment", lambda rate, *_: lambda seg: (
            int(round(seg.start * rate)) != take and is_silent(seg.waveform)))
        build_index([lib], idx, FakeModel(), workers=0, progress=False)
    forget_rows(idx, forget)


def stored(idx, path) -> dict[tuple[float, float], tuple[int, np.ndarray]]:
    """(start, end) → (segment id, stored vector) of the indexed file at ``path``."""
    name = json.loads((idx / "index.json").read_text())["vectors_file"]
    index = faiss.read_index(str(idx / name))
    with catalog_session(idx) as s:
        fid = s.scalar(select(File.id).where(File.path == str(path.resolve())))
        rows = s.execute(select(SegmentRow.id, SegmentRow.start, SegmentRow.end)
                         .where(SegmentRow.file_id == fid).order_by(SegmentRow.id)).all()
    vectors = reconstruct(index, np.asarray([r.id for r in rows], np.int64))
    return {(round(r.start, 3), round(r.end, 3)): (r.id, v) for r, v in zip(rows, vectors)}


def silence_counts(idx) -> dict[str, int]:
    """`info --json`'s counts of silence."""
    c = index_info(idx)["counts"]
    return {k: c[k] for k in ("silent_left_out", "files_of_silence", "silence_not_judged")}


def rows_of(idx, key: str) -> dict[str, str]:
    with catalog_session(idx) as s:
        return {os.path.basename(p): v for p, v in s.execute(
            select(File.path, FileMetadata.value).join(FileMetadata, FileMetadata.file_id == File.id)
            .where(FileMetadata.key == key))}


def test_every_embedded_file_stores_how_many_silent_segments_it_left_out(library, tmp_path):
    idx = tmp_path / "idx"
    build_index([library], idx, FakeModel(), workers=0, progress=False)
    # padded: 24 windows, 3 sound; silence: 6, the first kept; reel: 7 windows (2 sound) + the silent take
    assert rows_of(idx, SILENCE_KEYS[0]) == {"padded.wav": "21", "silence.wav": "5", "sound.wav": "0", "reel.wav": "6"}
    assert rows_of(idx, SILENCE_KEYS[1]) == {"silence.wav": "1"}
    assert silence_counts(idx) == {"silent_left_out": 32, "files_of_silence": 1, "silence_not_judged": 0}
    with SoundIndex.open(idx, model=FakeModel()) as index:      # the indexer's own rows, not the file's metadata
        assert not set(SILENCE_KEYS) & set(index.get_file(index.file_id_for_path(library / "silence.wav"))["metadata"])


@pytest.mark.parametrize("workers", [0, 1])
def test_an_old_index_drops_its_silent_segments_without_embedding(library, tmp_path, monkeypatch, caplog, workers):
    idx = tmp_path / "idx"
    old_index(library, idx, monkeypatch)
    before = {name: stored(idx, library / name) for name in ("padded.wav", "silence.wav", "sound.wav", "reel.wav")}
    assert len(before["padded.wav"]) == 24 and len(before["silence.wav"]) == 6
    assert silence_counts(idx) == {"silent_left_out": 0, "files_of_silence": 0, "silence_not_judged": 4}
    generation = json.loads((idx / "index.json").read_text())["generation"]

    with caplog.at_level(logging.INFO, logger="indexer"):
        s = build_index([library], idx, NoEmbedding(), workers=workers, progress=False)
    assert (s.unchanged, s.n_segments, s.silence_judged, s.silent_segments_dropped) == (4, 0, 4, 21 + 5 + 6)
    assert s.to_dict()["silent_segments_dropped"] == 32 and s.totals["segments"] == 3 + 1 + 4 + 2
    assert s.generation == generation + 1
    assert [r.getMessage() for r in caplog.records if "judged in 4 files" in r.getMessage()][0].endswith(
        "32 stored segments dropped (digital silence, in files indexed before it was left out)")

    after = {name: stored(idx, library / name) for name in before}
    assert sorted(after["padded.wav"]) == [(10.0, 12.0), (11.0, 13.0), (12.0, 14.0)]
    assert sorted(after["silence.wav"]) == [(0.0, 2.0)]                          # found, by its first segment
    assert sorted(after["reel.wav"]) == [(0.0, 2.0), (1.0, 3.0)]                # the silent take goes too
    assert len(after["sound.wav"]) == 4
    for name, kept in after.items():                                            # the rest as they were stored
        for span, (sid, vector) in kept.items():
            assert before[name][span][0] == sid
            np.testing.assert_array_equal(vector, before[name][span][1])
    assert silence_counts(idx) == {"silent_left_out": 32, "files_of_silence": 1, "silence_not_judged": 0}

    with SoundIndex.open(idx, model=FakeModel()) as index:      # the indexed vector is the decoded one now
        for name in ("padded.wav", "reel.wav", "silence.wav"):
            decoded, _ = zeroshot.file_query_vector(FakeModel(), library / name)
            np.testing.assert_allclose(index.file_vector(str(library / name)), decoded, atol=1e-5)

    again = build_index([library], idx, NoEmbedding(), workers=workers, progress=False)
    assert (again.silence_judged, again.silent_segments_dropped, again.generation) == (0, 0, s.generation)


def test_an_index_of_session_38_is_judged_once_and_drops_only_its_silent_takes(library, tmp_path, monkeypatch):
    idx = tmp_path / "idx"
    take_kept_index(library, idx, monkeypatch)
    generation = json.loads((idx / "index.json").read_text())["generation"]
    s = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert (s.silence_judged, s.silent_segments_dropped, s.generation) == (4, 1, generation + 1)
    assert silence_counts(idx) == {"silent_left_out": 32, "files_of_silence": 1, "silence_not_judged": 0}


def test_a_file_unreadable_now_keeps_its_segments_and_is_judged_by_a_later_run(library, tmp_path, monkeypatch, caplog):
    idx = tmp_path / "idx"
    old_index(library, idx, monkeypatch)
    path = library / "padded.wav"
    good, st = path.read_bytes(), path.stat()
    path.write_bytes(b"\0" * len(good))                 # the same size and time: an unchanged file to the scan
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    with caplog.at_level(logging.WARNING, logger="indexer"):
        s = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert (s.unchanged, s.silence_judged, s.silent_segments_dropped) == (4, 3, 5 + 6)
    said = [r.getMessage() for r in caplog.records if "not judged" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("silence of 1 indexed file not judged (it keeps its segments")
    assert len(stored(idx, path)) == 24 and "padded.wav" not in rows_of(idx, SILENCE_KEYS[0])
    assert silence_counts(idx)["silence_not_judged"] == 1

    path.write_bytes(good)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    s = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert (s.silence_judged, s.silent_segments_dropped) == (1, 21)
    assert sorted(stored(idx, path)) == [(10.0, 12.0), (11.0, 13.0), (12.0, 14.0)]


def test_a_file_without_levels_is_measured_in_the_same_decode(library, tmp_path, monkeypatch):
    idx = tmp_path / "idx"
    old_index(library, idx, monkeypatch)
    levels = rows_of(idx, "loudness_lufs")
    forget_rows(idx, LEVEL_KEYS)                                # indexed before session 20
    monkeypatch.setattr("indexer.level_refresh.measure", lambda path: pytest.fail(f"{path} decoded twice"))
    s = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert (s.silence_judged, s.levels_measured) == (4, 4)
    assert rows_of(idx, "loudness_lufs") == levels


def test_info_and_the_summary_table_say_it(library, tmp_path, monkeypatch):
    from ui.cli.cmd_index import _print_summary
    from ui.cli.cmd_info import _silence_text
    idx = tmp_path / "idx"
    old_index(library, idx, monkeypatch)
    assert _silence_text(silence_counts(idx)) == (
        "0 left out (digital silence, in files with sound elsewhere); 4 files not judged yet (indexed before "
        "this was judged, or with markers before a silent take was left out: run `soundsift index` to judge "
        "those on disk)")
    s = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert _silence_text(silence_counts(idx)) == (
        "32 left out (digital silence, in files with sound elsewhere); 1 file of silence throughout, "
        "kept as its first segment")
    from rich.console import Console
    from ui.cli import cmd_index
    buf = io.StringIO()
    monkeypatch.setattr(cmd_index, "out_console", Console(file=buf, width=300))
    _print_summary(s.to_dict())
    said = " ".join(re.sub(r"[│┃]", " ", buf.getvalue()).split())
    assert ("silence judged 4 unchanged files indexed before it was left out: 32 stored segments of digital "
            "silence dropped (nothing embedded again)") in said


def test_reading_metadata_again_keeps_the_silence_rows(library, tmp_path):
    """A newer metadata reader replaces what the file says, not what the indexer judged of it."""
    from indexer.write import IndexWriter
    from engine.layout import IndexLayout
    idx = tmp_path / "idx"
    build_index([library], idx, FakeModel(), workers=0, progress=False)
    with IndexWriter(IndexLayout(idx)) as writer:
        writer.update_meta(metadata_reader=0)
    s = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert (s.metadata_reread, s.silence_judged) == (4, 0)
    assert rows_of(idx, SILENCE_KEYS[0]) == {"padded.wav": "21", "silence.wav": "5", "sound.wav": "0", "reel.wav": "6"}
    assert rows_of(idx, SILENCE_KEYS[1]) == {"silence.wav": "1"}


def test_ctrl_c_during_the_pass_keeps_what_is_judged(library, tmp_path, monkeypatch):
    from indexer import silence_refresh
    idx = tmp_path / "idx"
    old_index(library, idx, monkeypatch)
    real, calls = silence_refresh.judge, []

    def judge(path, *args, **kw):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(path, *args, **kw)
    monkeypatch.setattr(silence_refresh, "CHECKPOINT_FILES", 1)
    monkeypatch.setattr(silence_refresh, "judge", judge)
    with pytest.raises(KeyboardInterrupt):
        build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    judged = set(rows_of(idx, SILENCE_KEYS[0]))
    assert judged == {os.path.basename(p) for p in calls[:2]}           # padded.wav and reel.wav: in path order
    assert sorted(stored(idx, library / "padded.wav")) == [(10.0, 12.0), (11.0, 13.0), (12.0, 14.0)]
    monkeypatch.setattr(silence_refresh, "judge", real)
    s = build_index([library], idx, NoEmbedding(), workers=0, progress=False)
    assert (s.silence_judged, s.silent_segments_dropped) == (2, 5)       # silence.wav's 5; sound.wav has none


def test_a_compressed_index_drops_segments_from_its_vectors_and_raw_sidecar(tmp_path):
    """Dropping segments of files that stay (Changes.drop_segments) from an IVF-SQ8 index: the
    vectors, the float16 sidecar a rebuild needs and the catalog agree, and the file rows stay."""
    from engine.layout import IndexLayout
    from indexer.retrain import read_sidecar, sidecar_path
    from indexer.write import Changes, IndexWriter
    from tests.test_index_retrain import CHOOSER, META, files
    root = tmp_path / "idx"
    with IndexWriter(IndexLayout(root), memory_budget=200_000, chooser=CHOOSER) as w:
        w.commit(Changes(add=files("a", 250, 10, seed=5)), META)
        assert w.meta["index_type"] == "IVF-SQ8"
        with catalog_session(root) as s:
            drop = list(s.scalars(select(SegmentRow.id).join(File).where(File.path == "/lib/a0003.wav")))[2:]
        w.commit(Changes(drop_segments=drop, file_rows={"/lib/a0003.wav": {SILENCE_KEYS[0]: "8",
                                                                              SILENCE_KEYS[1]: None}}), META)
        meta = dict(w.meta)
    assert meta["counts"]["files"] == 250 and meta["counts"]["segments"] == 2500 - 8
    raw = read_sidecar(sidecar_path(root / meta["vectors_file"]))
    assert len(raw) == 2492 and not np.isin(drop, raw.ids).any()
    assert faiss.read_index(str(root / meta["vectors_file"])).ntotal == 2492
    assert rows_of(root, SILENCE_KEYS[0]) == {"a0003.wav": "8"}
