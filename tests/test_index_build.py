"""build_index end to end on a generated library: formats, rates, channels, lengths, bad files.

The fake model (tests/index_fakes.py) keeps these fast; the CLI tests use the tiny CLAP.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import faiss
import numpy as np
import pytest
import soundfile as sf
from sqlalchemy import select

from engine.audio import decode, iter_segments
from engine.catalog import ErrorRow, File, SegmentRow, get_meta
from engine.errors import IndexBusy, IndexLocationTaken, ModelMismatch, ModelUnavailable, NothingToIndex
from engine.layout import IndexLayout
from engine.query import SoundIndex
from engine.segments import SegmentPolicy, segment_bounds
from indexer import build_index
from indexer.write import WriterLock
from tests.conftest import catalog_session, chirp, noise, tone, write
from tests.index_fakes import FakeModel

SUMMARY_KEYS = {"added", "updated", "removed", "unchanged", "failed", "n_segments", "seconds",
                "files_per_second", "x_realtime", "timings", "errors", "totals"}
STAGES = {"scan", "decode", "resample", "embed", "write"}


def make_good(lib: Path) -> list[Path]:
    """Good files: 8–96 kHz, mono/stereo/6-channel, 0.05 s to 5 minutes, six containers."""
    six = np.stack([tone(200 * (c + 1), 1.0, 44100) for c in range(6)], axis=1)
    stereo = np.stack([chirp(100, 3000, 3.0, 16000), noise(3.0, 16000, seed=1)], axis=1)
    return [
        write(lib / "short_8k.wav", tone(1000, 0.05, 8000), 8000),
        write(lib / "stereo_16k.wav", stereo, 16000),
        write(lib / "six_44k.wav", six, 44100),
        write(lib / "mono_48k.wav", chirp(200, 8000, 5.0, 48000), 48000),
        write(lib / "float_96k.wav", noise(2.5, 96000, seed=2), 96000, subtype="FLOAT"),
        write(lib / "sub" / "sweep_22k.flac", chirp(50, 5000, 4.0, 22050), 22050),
        write(lib / "sub" / "hum_44k.ogg", tone(60, 2.0, 44100), 44100),
        write(lib / "sub" / "beep_44k.mp3", tone(880, 3.0, 44100), 44100),
        write(lib / "deep" / "er" / "pad_32k.aiff", noise(1.5, 32000, seed=3), 32000),
        write(lib / "long_8k.wav", chirp(100, 3500, 300.0, 8000), 8000),
    ]


def make_bad(lib: Path) -> dict[str, str]:
    """Broken files → a word their error reason must contain."""
    (lib / "bad").mkdir(parents=True, exist_ok=True)
    (lib / "bad" / "text.wav").write_text("this is not audio\n")
    (lib / "bad" / "empty.wav").write_bytes(b"")
    (lib / "bad" / "zero.mp3").write_bytes(b"")
    flac = write(lib / "bad" / "stub.flac", noise(3.0, 44100, seed=4), 44100)
    flac.write_bytes(flac.read_bytes()[:200])       # cut before its first audio frame
    x = noise(1.0, 16000, seed=5)
    x[100] = np.nan
    write(lib / "bad" / "nan.wav", x, 16000, subtype="FLOAT")
    y = noise(1.0, 16000, seed=6)
    y[-1] = np.inf
    write(lib / "bad" / "inf.wav", y, 16000, subtype="FLOAT")
    write(lib / "bad" / "noframes.wav", np.zeros(0, np.float32), 16000)
    return {"text.wav": "not readable", "empty.wav": "0 bytes", "zero.mp3": "0 bytes",
            "stub.flac": "decoding failed", "nan.wav": "NaN", "inf.wav": "Inf",
            "noframes.wav": "empty"}


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[Path, list[Path], dict[str, str]]:
    lib = tmp_path_factory.mktemp("lib")
    return lib, make_good(lib), make_bad(lib)


@pytest.fixture
def lib_copy(library, tmp_path) -> tuple[Path, list[Path], dict[str, str]]:
    lib, good, bad = library
    dst = tmp_path / "lib"
    shutil.copytree(lib, dst)
    return dst.resolve(), [dst.resolve() / p.relative_to(lib) for p in good], bad


@pytest.fixture(scope="module")
def built(library, tmp_path_factory):
    """The library indexed once with 2 decoder processes and small batches."""
    lib, good, bad = library
    idx = tmp_path_factory.mktemp("idx")
    model = FakeModel()
    summary = build_index([lib], idx, model, workers=2, batch_size=5, progress=False)
    return idx, model, summary


def catalog_rows(idx: Path):
    with catalog_session(idx) as s:
        files = {f.path: f for f in s.scalars(select(File))}
        segs = {}
        for seg in s.scalars(select(SegmentRow).order_by(SegmentRow.id)):
            segs.setdefault(seg.file_id, []).append(seg)
        errors = {e.path: e.reason for e in s.scalars(select(ErrorRow))}
        meta = get_meta(s)
        for f in files.values():
            s.expunge(f)
    return files, segs, errors, meta


def vectors_of(idx: Path, meta) -> faiss.Index:
    return faiss.read_index(str(IndexLayout(idx).root / meta["vectors_file"]))


def test_every_good_file_indexed_every_bad_one_reported(built, library):
    idx, model, summary = built
    lib, good, bad = library
    assert summary.added == len(good) and summary.failed == len(bad)
    assert summary.updated == summary.removed == summary.unchanged == 0
    files, segs, errors, meta = catalog_rows(idx)
    assert sorted(files) == sorted(str(p.resolve()) for p in good)
    assert sorted(os.path.basename(p) for p in errors) == sorted(bad)
    for path, reason in errors.items():
        assert bad[os.path.basename(path)] in reason, (path, reason)
    assert {e["path"] for e in summary.errors} == set(errors)
    info = sf.info(str(good[2]))
    six = files[str(good[2].resolve())]
    assert (six.channels, six.sample_rate, six.format) == (6, 44100, "WAV")
    assert six.duration == pytest.approx(info.duration, abs=1e-3)


def test_segments_follow_the_policy_and_vectors_match_the_model(built, library):
    idx, model, _ = built
    lib, good, _ = library
    batches = list(model.calls)
    files, segs, _, meta = catalog_rows(idx)
    policy = SegmentPolicy(window=model.window_seconds)
    sr = model.sample_rate
    assert meta["segment_policy"] == policy.as_dict() and meta["sample_rate"] == sr
    index = vectors_of(idx, meta)
    all_ids = [s.id for rows in segs.values() for s in rows]
    assert index.ntotal == len(all_ids) == meta["counts"]["segments"] == len(set(all_ids))
    for p in good:
        rows = segs[files[str(p.resolve())].id]
        n = len(decode(p, sr))
        bounds = segment_bounds(n, sr, policy)
        got = [x for r in rows for x in (r.start, r.end)]
        assert got == pytest.approx([x / sr for ab in bounds for x in ab]), p
    # each vector is the model's embedding of exactly that segment, alone
    for p in (good[1], good[-1]):
        rows = segs[files[str(p.resolve())].id]
        expected = model.embed_audio([s.waveform for s in iter_segments(p, sr, policy)])
        got = np.stack([index.reconstruct(r.id) for r in rows])
        np.testing.assert_allclose(got, expected, atol=1e-6)
    assert max(batches) == 5 and len(batches) == -(-len(all_ids) // 5)   # batches span files


def test_summary_and_meta(built):
    idx, model, summary = built
    d = summary.to_dict()
    assert SUMMARY_KEYS <= set(d)
    assert STAGES <= set(d["timings"]) and all(v >= 0 for v in d["timings"].values())
    assert d["timings"]["embed"] > 0 and d["timings"]["decode"] > 0 and d["timings"]["resample"] > 0
    assert d["n_segments"] == d["totals"]["segments"] > len(d["errors"])
    assert d["audio_seconds"] > 130 and d["x_realtime"] > 0 and d["files_per_second"] > 0
    files, segs, errors, meta = catalog_rows(idx)
    assert meta["model_fingerprint"] == "fake-v1" and meta["dim"] == 8
    assert meta["generation"] == 1 and meta["vectors_file"] == IndexLayout(idx).vectors_file(1).name
    assert meta["counts"]["files"] == len(files) and meta["counts"]["errors"] == len(errors)
    layout = IndexLayout(idx)
    assert layout.vector_files() == [layout.vectors_file(1)]
    import json
    doc = json.loads(layout.index_json.read_text())
    assert doc["model_fingerprint"] == "fake-v1" and doc["index_type"] == "Flat"
    assert doc["counts"] == meta["counts"] and {"faiss-cpu", "torch", "python"} <= set(doc["versions"])


def test_in_process_decoding_gives_the_same_index(built, library, tmp_path):
    idx, _, _ = built
    lib, _, _ = library
    build_index([lib], tmp_path / "serial", FakeModel(), workers=0, batch_size=3, progress=False)
    a_files, a_segs, a_err, a_meta = catalog_rows(idx)
    b_files, b_segs, b_err, b_meta = catalog_rows(tmp_path / "serial")
    assert sorted(a_files) == sorted(b_files) and sorted(a_err) == sorted(b_err)
    va, vb = vectors_of(idx, a_meta), vectors_of(tmp_path / "serial", b_meta)
    for path in a_files:
        ra, rb = a_segs[a_files[path].id], b_segs[b_files[path].id]
        assert [(r.start, r.end) for r in ra] == [(r.start, r.end) for r in rb]
        np.testing.assert_allclose(np.stack([va.reconstruct(r.id) for r in ra]),
                                   np.stack([vb.reconstruct(r.id) for r in rb]), atol=1e-6)


def test_incremental_runs(lib_copy, tmp_path, caplog):
    lib, good, bad = lib_copy
    idx = tmp_path / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    # nothing changed: nothing embedded, no new generation
    model = FakeModel()
    s = build_index([lib], idx, model, workers=0, progress=False)
    assert (s.added, s.updated, s.removed, s.unchanged, s.failed) == (0, 0, 0, len(good), len(bad))
    assert model.calls == [] and s.generation == 1
    # modify one, delete one, add one, fix a bad one, delete a bad one
    write(good[1], tone(300, 2.0, 16000), 16000)
    good[3].unlink()
    write(lib / "sub" / "new.wav", tone(500, 1.0, 22050), 22050)
    write(lib / "bad" / "text.wav", tone(700, 1.0, 16000), 16000)
    (lib / "bad" / "zero.mp3").unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="indexer.runner"):
        s = build_index([lib], idx, FakeModel(), workers=0, progress=False)
    assert (s.added, s.updated, s.removed, s.failed) == (2, 1, 1, len(bad) - 2)
    assert s.unchanged == len(good) - 2 and s.generation == 2
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == len(bad) - 2 and all("skipped" in w for w in warned)
    files, segs, errors, meta = catalog_rows(idx)
    assert str(good[3]) not in files and str(lib / "sub" / "new.wav") in files
    assert str(lib / "bad" / "text.wav") in files
    assert not any(p.endswith(("text.wav", "zero.mp3")) for p in errors)
    assert files[str(good[1])].duration == pytest.approx(2.0)
    assert len(segs[files[str(good[1])].id]) == 1           # old 3 s segments are gone
    index = vectors_of(idx, meta)
    assert index.ntotal == sum(len(v) for v in segs.values()) == meta["counts"]["segments"]
    assert IndexLayout(idx).vector_files() == [IndexLayout(idx).vectors_file(2)]


def test_a_library_copied_by_a_mac_indexes_without_a_failure_per_file(lib_copy, tmp_path):
    """Copied to an exFAT drive, every file gets a ._ twin (AppleDouble, not audio). An index
    built before soundsift passed over them held one error row each; the next run drops those."""
    from engine.system_files import APPLEDOUBLE_MAGIC
    from indexer.scan import SKIPPED_METADATA
    lib, good, bad = lib_copy
    idx = tmp_path / "idx"
    twins = [g.with_name("._" + g.name) for g in good]
    for twin in twins:
        twin.write_bytes(APPLEDOUBLE_MAGIC + bytes(4092))
    s = build_index([lib], idx, FakeModel(), workers=0, progress=False)
    assert (s.added, s.failed, s.skipped) == (len(good), len(bad), {SKIPPED_METADATA: len(good)})
    assert not any(os.path.basename(p).startswith("._") for p in catalog_rows(idx)[2])

    with catalog_session(idx, write=True) as session:   # as an older soundsift left it: an error row per twin
        session.add_all(ErrorRow(path=str(t), reason="not readable as audio", at=1.0) for t in twins)
    s = build_index([lib], idx, FakeModel(), workers=0, progress=False)
    errors = catalog_rows(idx)[2]
    assert s.failed == len(bad) and len(errors) == len(bad) and not any("._" in p for p in errors)


def test_a_root_that_is_gone_keeps_its_files(lib_copy, tmp_path):
    """An unmounted drive or a typo is not "every file deleted": the files stay indexed."""
    lib, good, bad = lib_copy
    idx = tmp_path / "idx"
    first = build_index([lib], idx, FakeModel(), workers=0, progress=False)
    before, segs_before, _, _ = catalog_rows(idx)
    lib.rename(lib.with_name("moved"))
    s = build_index([lib], idx, FakeModel(), workers=0, progress=False)
    assert (s.added, s.updated, s.removed) == (0, 0, 0) and s.generation == first.generation
    after, segs_after, _, meta = catalog_rows(idx)
    assert set(after) == set(before) and len(after) == len(good)
    assert vectors_of(idx, meta).ntotal == sum(len(v) for v in segs_before.values())


def test_a_new_index_of_paths_that_do_not_exist_is_not_created(lib_copy, tmp_path):
    """A typo in the only path is an error, not an empty index with one error row."""
    lib, good, bad = lib_copy
    with pytest.raises(NothingToIndex, match=r"nope.*no such file or folder; no index was created"):
        build_index([tmp_path / "nope"], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    assert not (tmp_path / "idx").exists()
    s = build_index([tmp_path / "nope", lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    assert s.added == len(good)                               # one good root: the run goes on
    paths = [e["path"] for e in s.errors]
    assert str(tmp_path / "nope") in paths and len(paths) == len(bad) + 1


def test_a_new_index_needs_a_new_or_empty_folder(lib_copy, tmp_path):
    """Not a file, not among the user's files (a later --rebuild replaces the whole folder)."""
    lib, good, _ = lib_copy
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(IndexLocationTaken, match="a_file is a file, not an index folder"):
        build_index([lib], tmp_path / "a_file", FakeModel(), workers=0, progress=False)
    with pytest.raises(IndexLocationTaken, match="idx cannot be made: .*a_file is a file, not a folder"):
        build_index([lib], tmp_path / "a_file" / "idx", FakeModel(), workers=0, progress=False)
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text("mine")
    with pytest.raises(IndexLocationTaken, match=r"docs is a folder that is not a soundsift index \(it holds notes.txt\)"):
        build_index([lib], docs, FakeModel(), workers=0, progress=False)
    assert [p.name for p in docs.iterdir()] == ["notes.txt"]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"\0")     # a file manager's, not the user's
    assert build_index([lib], tmp_path / "empty", FakeModel(), workers=0, progress=False).added == len(good)
    (docs / "notes.txt").unlink()                # only soundsift's own leftovers: fine
    (docs / ".lock").write_text("")
    assert build_index([lib], docs, FakeModel(), workers=0, progress=False).added == len(good)


def test_a_model_that_does_not_load_leaves_no_index_behind(lib_copy, tmp_path):
    lib, _, _ = lib_copy
    with pytest.raises(ModelUnavailable):
        build_index([lib], tmp_path / "idx", tmp_path / "no-such-model", workers=0, progress=False)
    assert not (tmp_path / "idx").exists()


def test_checkpoints_commit_as_they_go(lib_copy, tmp_path, monkeypatch):
    # a commit slower than SLOW_COMMIT_SECONDS (as on a loaded machine) spaces the next ones out,
    # which is another test's subject: here every commit counts as fast, so the count is the files'
    monkeypatch.setattr("indexer.runner.SLOW_COMMIT_SECONDS", float("inf"))
    lib, good, bad = lib_copy
    s = build_index([lib], tmp_path / "idx", FakeModel(), workers=2, checkpoint_files=3,
                    progress=False)
    assert s.commits >= 3 and s.generation >= 3
    files, segs, errors, meta = catalog_rows(tmp_path / "idx")
    assert len(files) == len(good) and len(errors) == len(bad)
    assert vectors_of(tmp_path / "idx", meta).ntotal == meta["counts"]["segments"]
    assert IndexLayout(tmp_path / "idx").vector_files() == [IndexLayout(tmp_path / "idx").vectors_file(s.generation)]


def test_checkpoint_due_keeps_slow_commits_a_small_share_of_the_run():
    from indexer.runner import SLOW_COMMIT_SECONDS, WRITE_SHARE, checkpoint_due
    assert checkpoint_due(256, 1.0, 0.01, 256, 60.0) and checkpoint_due(3, 60.0, 0.01, 256, 60.0)
    assert not checkpoint_due(255, 59.0, 0.01, 256, 60.0)
    slow = 2.0 * SLOW_COMMIT_SECONDS                    # a large index: the commit took this long
    wait = slow * (1 - WRITE_SHARE) / WRITE_SHARE
    assert not checkpoint_due(10_000, wait - 0.1, slow, 256, 60.0)
    assert checkpoint_due(256, wait + 0.1, slow, 256, 60.0)
    assert not checkpoint_due(1, wait + 0.1, slow, 256, 60.0)   # and still only when one is due


def test_a_slow_commit_spaces_the_next_ones(lib_copy, tmp_path, monkeypatch):
    # every file would be a checkpoint; a commit taking 1 s (a big index) makes the next wait 19 s
    # of work, which these few files never take: the first file's commit, then the run's last
    import time as time_
    from indexer.write import IndexWriter
    lib, good, bad = lib_copy
    real = IndexWriter.commit

    def slow_commit(self, changes, meta):
        time_.sleep(1.0)
        return real(self, changes, meta)
    monkeypatch.setattr(IndexWriter, "commit", slow_commit)
    s = build_index([lib], tmp_path / "idx", FakeModel(), workers=0, checkpoint_files=1, progress=False)
    assert s.commits == 2 and s.added == len(good)
    files, _segs, errors, _meta = catalog_rows(tmp_path / "idx")
    assert len(files) == len(good) and len(errors) == len(bad)


def test_the_progress_bar_moves_through_a_long_file(tmp_path, monkeypatch):
    """The bar counts bytes, credited as segments are embedded: a 40 s file moves it many times
    before it is done, and the bar ends at every byte of every file."""
    import tqdm as tqdm_module
    lib = tmp_path / "lib"
    write(lib / "long.wav", noise(40.0, 16000, seed=1), 16000)
    for k in range(3):
        write(lib / f"short{k}.wav", tone(300 + 100 * k, 0.5, 16000), 16000)
    bars = []
    real = tqdm_module.tqdm

    class Spy(real):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.steps = []
            bars.append(self)

        def update(self, n=1):
            self.steps.append(n)
            return super().update(n)
    monkeypatch.setattr(tqdm_module, "tqdm", Spy)
    s = build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=True)
    assert s.added == 4
    bar = bars[0]
    sizes = {p.name: p.stat().st_size for p in lib.iterdir()}
    assert bar.total == sum(sizes.values()) and sum(bar.steps) == bar.total
    assert len(bar.steps) > 4 + 10                     # the long file moved it segment by segment, not once
    assert max(bar.steps) < sizes["long.wav"] / 5      # never the whole long file in one step
    assert bar.postfix == "4/4 files"


def test_a_ctrl_c_swallowed_by_a_finaliser_still_stops_the_run(lib_copy, tmp_path, monkeypatch):
    """A KeyboardInterrupt raised inside code that drops it (as Python does in a __del__) is not
    lost: the run stops at its next event, keeping what is embedded, as after any Ctrl-C."""
    import signal

    import indexer.runner as runner
    from indexer.runner import IndexInterrupted
    lib, good, _bad = lib_copy
    real = runner.changed_since_scan
    pressed = []

    def finaliser_meets_ctrl_c(f):
        if not pressed:
            pressed.append(f.path)
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt:
                pass                                  # what "Exception ignored in __del__" does
        return real(f)
    monkeypatch.setattr(runner, "changed_since_scan", finaliser_meets_ctrl_c)
    # Python's own handler, whatever this process inherited (a shell's background job ignores SIGINT)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(IndexInterrupted) as stopped:
            build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler     # put back
    finally:
        signal.signal(signal.SIGINT, inherited)
    summary = stopped.value.summary
    assert summary.interrupted and 1 <= summary.added < len(good)


def test_a_process_that_ignores_ctrl_c_still_does():
    """Started in the background by a shell, a process ignores SIGINT: remembering it must not
    turn it into a stop."""
    import signal

    from indexer.interrupts import remembered
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with remembered() as interrupt:
            signal.raise_signal(signal.SIGINT)
            interrupt.check()                         # nothing arrived: no KeyboardInterrupt
            assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with remembered() as interrupt:               # Python's own handler: remembered and raised
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
            with pytest.raises(KeyboardInterrupt):
                interrupt.check()
            interrupt.check()                         # once
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_file_vanishing_between_scan_and_decode(lib_copy, tmp_path, monkeypatch):
    import indexer.runner as runner
    lib, good, bad = lib_copy
    real_scan = runner.scan

    def scan_then_delete(paths):
        result = real_scan(paths)
        good[0].unlink()
        return result

    monkeypatch.setattr(runner, "scan", scan_then_delete)
    s = build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    assert s.added == len(good) - 1 and s.failed == len(bad) + 1
    assert any(e["path"] == str(good[0]) and "deleted or renamed since it was listed" in e["reason"]
               for e in s.errors)


def test_another_model_is_refused(built, library):
    idx, _, _ = built
    lib, _, _ = library
    with pytest.raises(ModelMismatch) as e:
        build_index([lib], idx, FakeModel(name="other", fingerprint="other-v2"), progress=False)
    msg = str(e.value)
    assert "fake" in msg and "other" in msg and "--index" in msg


def test_the_index_model_is_loaded_only_when_there_is_audio_to_embed(lib_copy, tmp_path, monkeypatch):
    import engine.models

    lib, good, bad = lib_copy
    idx = tmp_path / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    loads: list[str] = []
    weights = {"fingerprint": "fake-v1"}

    def load(name=None):
        loads.append(name)
        return FakeModel(name=name, fingerprint=weights["fingerprint"])
    monkeypatch.setattr(engine.models, "load_model", load)

    same = build_index([lib], idx, workers=0, progress=False)      # nothing changed: no model needed
    good[0].unlink()
    fewer = build_index([lib], idx, workers=0, progress=False)     # a removal needs none either
    assert loads == []
    assert (same.unchanged, same.failed, same.model, same.model_fingerprint) == (len(good), len(bad), "fake", "fake-v1")
    assert (fewer.removed, fewer.added) == (1, 0)

    new = write(lib / "new.wav", chirp(300, 900, 3.0, 16000), 16000)
    more = build_index([lib], idx, workers=0, progress=False)
    assert loads == ["fake"] and more.added == 1 and more.failed == len(bad)
    with SoundIndex.open(idx, model=FakeModel()) as si:     # embedded by the model that was loaded
        stored = si.file_vector(str(new))
    want = FakeModel().embed_audio([w.waveform for w in iter_segments(new, 16000, SegmentPolicy(window=2.0))])
    np.testing.assert_allclose(stored, want.mean(0) / np.linalg.norm(want.mean(0)), atol=1e-5)

    weights["fingerprint"] = "fake-v2"        # other weights under the same name: refused before any work
    generation = IndexLayout(idx).index_json.read_text()
    write(lib / "newer.wav", tone(500, 1.0, 16000), 16000)
    with pytest.raises(ModelMismatch):
        build_index([lib], idx, workers=0, progress=False)
    assert IndexLayout(idx).index_json.read_text() == generation       # nothing was written
    assert build_index([lib], idx, FakeModel(), workers=0, progress=False).added == 1


def test_files_that_failed_before_are_not_counted_as_new(lib_copy, tmp_path, caplog):
    lib, good, bad = lib_copy
    idx = tmp_path / "idx"
    build_index([lib], idx, FakeModel(), workers=0, progress=False)
    failing = sum(1 for e in build_index([lib], idx, FakeModel(), workers=0, progress=False).errors
                  if not os.path.islink(e["path"]))
    with caplog.at_level(logging.INFO, logger="indexer.runner"):
        build_index([lib], idx, FakeModel(), workers=0, progress=False)
    said = [r.getMessage() for r in caplog.records if " unchanged, " in r.getMessage()]
    assert len(said) == 1 and f": 0 new (and {failing} that failed before, tried again), 0 changed" in said[0]


def test_short_files_are_indexed_before_long_ones(tmp_path):
    """A long recording early in path order does not hold the short files behind it: they are
    committed first (so Ctrl-C during the long one keeps them, and the progress bar moves)."""
    lib = tmp_path / "lib"
    write(lib / "a_field_recording.wav", noise(60.0, 8000, seed=1), 8000)
    for i in range(3):
        write(lib / f"b_hit_{i}.wav", tone(300 + 100 * i, 0.5, 16000), 16000)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=1, checkpoint_files=1, progress=False)
    with catalog_session(tmp_path / "idx") as s:
        committed = [Path(p).name for p in s.scalars(select(File.path).order_by(File.id))]
    assert committed == ["b_hit_0.wav", "b_hit_1.wav", "b_hit_2.wav", "a_field_recording.wav"]


def test_second_writer_gets_index_busy(tmp_path):
    layout = IndexLayout(tmp_path / "idx")
    layout.root.mkdir()
    lock = WriterLock(layout.lock)
    lock.acquire()
    try:
        with pytest.raises(IndexBusy, match=str(os.getpid())):
            build_index([tmp_path], layout.root, FakeModel(), progress=False)
    finally:
        lock.release()
    s = build_index([tmp_path], layout.root, FakeModel(), progress=False)   # free again
    assert s.generation == 1 and s.totals["files"] == 0


def test_orphans_of_an_interrupted_commit_are_removed(built, library, tmp_path):
    lib, good, _ = library
    idx = tmp_path / "idx"
    build_index([good[0]], idx, FakeModel(), workers=0, progress=False)
    layout = IndexLayout(idx)
    orphan, tmp = layout.vectors_file(2), layout.root / "vectors-000002.faiss.tmp"
    orphan.write_bytes(b"half written")
    tmp.write_bytes(b"half")
    s = build_index([good[0], good[1]], idx, FakeModel(), workers=0, progress=False)
    assert s.added == 1 and s.unchanged == 1
    assert layout.vector_files() == [layout.vectors_file(2)] and not tmp.exists()
    files, segs, _, meta = catalog_rows(idx)
    assert vectors_of(idx, meta).ntotal == sum(len(v) for v in segs.values())
