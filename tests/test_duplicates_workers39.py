"""`soundsift duplicates --workers N` (session 37): the candidate pairs are compared in worker
processes, each on a contiguous span of the pair order, and replayed in that order here, so the
groups, their differences, the copy to keep, the order and the unreadable files are those of one
process; Ctrl-C stops the workers; a level map sums its bands without a BLAS product, to the bit."""
from __future__ import annotations

import json
import logging
import multiprocessing
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from engine import duplicates as dup
from engine.audio import decode
from tests.conftest import chirp, noise, tone, write

SR = 16000


def _burst(seed: int, seconds: float) -> np.ndarray:
    """A chirp under noise bursts: a 'recording' of its own per seed."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    envelope = np.exp(-((t[:, None] - rng.uniform(0, seconds, 4)) ** 2) / 0.01).sum(1)
    x = chirp(200 + 300 * seed, 3000 + 200 * seed, seconds, SR, amp=0.3) + 0.3 * rng.standard_normal(len(t)) * envelope
    return x.astype(np.float32)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Four recordings each with a byte copy, an MP3 of it, a trimmed and a quieter copy; other
    takes and a detuned chirp beside them (near misses), a cut MP3 and its copy (the decoder
    warns about both), and a file that is not audio. Every file's vector is about the same, so
    the vectors pair everything of about the same duration: (paths, vectors, durations, sizes)."""
    root = tmp_path_factory.mktemp("dup_workers")
    paths: list[Path] = []
    for r in range(4):
        x = _burst(r, 1.0 + 0.01 * r)
        original = write(root / f"rec{r}" / "take.wav", x, SR)
        paths += [original, Path(shutil.copy(original, root / f"rec{r}" / "take copy.wav")),
                  write(root / f"rec{r}" / "take.mp3", x, SR, format="MP3"),
                  write(root / f"rec{r}" / "trimmed.wav", x[int(0.01 * SR):], SR),
                  write(root / f"rec{r}" / "quiet.flac", 0.25 * x, SR),
                  write(root / f"rec{r}" / "other take.wav", _burst(r + 10, 1.0 + 0.01 * r), SR)]
    paths.append(write(root / "detuned.wav", chirp(215, 3100, 1.02, SR, amp=0.3), SR))
    paths.append(write(root / "noise.wav", noise(1.0, SR, seed=3), SR))
    cut = write(root / "cut" / "cut.mp3", tone(440, 2.0, 44100), 44100)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    paths += [cut, Path(shutil.copy(cut, root / "cut" / "cut copy.mp3"))]
    bad = root / "broken.wav"
    bad.write_bytes(b"RIFF not really a wave file" * 100)
    paths.append(bad)
    names = [str(p) for p in paths]
    durations = np.array([len(decode(p, dup.RATE)) / dup.RATE if p != str(bad) else 1.0 for p in names])
    rng = np.random.default_rng(0)
    vectors = np.ones((len(names), 8), np.float32) + 0.05 * rng.standard_normal((len(names), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    sizes = np.array([Path(p).stat().st_size for p in names])
    return names, vectors, durations, sizes


def _find(library, **options) -> dup.DuplicateReport:
    """find_duplicates on the library, at 2 dB (its MP3s of noise bursts differ by about 1.4)."""
    return dup.find_duplicates(*library, max_difference_db=2.0, **options)


def _outcome(report: dup.DuplicateReport) -> tuple:
    return ([g.to_dict() for g in report.groups], report.candidates, report.compared, report.confirmed,
            [(e.path, e.reason) for e in report.unreadable], report.interrupted)


def test_workers_find_the_same_groups_as_one_process(library):
    here = _find(library)
    names = sorted(sorted(str(Path(p).relative_to(Path(library[0][0]).parents[1])) for p in g.paths)
                   for g in here.groups)     # the copies are found; the other takes, the detuned chirp are not
    assert names[0] == ["cut/cut copy.mp3", "cut/cut.mp3"] and len(names) == 5
    for r, group in enumerate(names[1:]):
        assert {f"rec{r}/{n}" for n in ("quiet.flac", "take copy.wav", "take.wav", "trimmed.wav")} <= set(group)
        assert f"rec{r}/other take.wav" not in group
    assert sum(f"rec{r}/take.mp3" in group for r, group in enumerate(names[1:])) >= 2      # re-encodes
    assert [Path(e.path).name for e in here.unreadable] == ["broken.wav"]
    assert here.compared == here.candidates > 2 * dup.WORKER_BATCH
    for workers in (1, 2, 3):
        assert _outcome(_find(library, workers=workers)) == _outcome(here)


def test_a_workers_message_is_said_here_under_the_file(library, caplog):
    """The unreadable file is said once, by this process; libmpg123's warning about the cut MP3,
    printed in a worker, is logged here under the file's name."""
    with caplog.at_level(logging.INFO):
        _find(library, workers=2)
    broken = [r for r in caplog.records if r.name == "engine.duplicates" and "broken.wav" in r.getMessage()]
    assert len(broken) == 1 and broken[0].levelno == logging.WARNING
    xing = [r.getMessage() for r in caplog.records if r.name == "engine.audio" and "Xing" in r.getMessage()]
    assert xing and all("cut" in line and ".mp3" in line for line in xing)


def test_ctrl_c_stops_the_workers_and_keeps_what_they_compared(library):
    running: list[multiprocessing.process.BaseProcess] = []

    def progress(done: int, total: int) -> None:
        if done:
            running.extend(multiprocessing.active_children())
            raise KeyboardInterrupt
    report = _find(library, progress=progress, workers=2)
    assert report.interrupted and 0 < report.compared < report.candidates
    assert [p for p in running if p.name == "soundsift-duplicates"], "no worker was running"
    assert not [p for p in running if p.is_alive()] and not multiprocessing.active_children()
    full = _find(library)
    for g in report.groups:                          # each partial group lies inside a full one
        assert any(set(g.paths) <= set(f.paths) for f in full.groups)


def test_spans_are_contiguous_and_of_about_equal_work():
    work = np.array([1.0] * 10 + [10.0] * 2 + [1.0] * 8)
    bounds = dup._spans(work, 2)
    assert bounds[0] == 0 and bounds[-1] == len(work) and len(bounds) == 3
    halves = [work[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:])]
    assert abs(halves[0] - halves[1]) <= 10.0
    assert list(dup._spans(work[:1], 4)) == [0, 1]          # more workers than pairs: one span


def test_negative_workers_are_refused(library):
    from engine.errors import InvalidQuery

    with pytest.raises(InvalidQuery, match="workers must be ≥ 0"):
        _find(library, workers=-1)


def test_level_maps_sum_their_bands_as_the_matrix_product_did():
    rng = np.random.default_rng(1)
    window, edges, filled = dup._analysis()
    freqs = np.fft.rfftfreq(dup.FRAME, 1.0 / dup.RATE)
    band = np.searchsorted(np.geomspace(60.0, dup.RATE / 2, dup.BANDS + 1), freqs, side="right") - 1
    to_bands = (band[:, None] == np.arange(dup.BANDS)[None, :]).astype(np.float64)
    for n in (10, 1024, 5000, 3 * dup.RATE):
        x = (rng.standard_normal(n) * 0.2).astype(np.float32)
        x[: n // 3] *= 1e-4
        frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, (0, max(0, dup.FRAME - n))), dup.FRAME)[::dup.HOP]
        power = np.abs(np.fft.rfft(frames * window, axis=1)) ** 2
        assert np.array_equal(dup._band_sums(power, edges, filled), power @ to_bands)


def test_cli_takes_workers(tmp_path, monkeypatch):
    """`-j N` reaches find_duplicates; without it, half the cores (as `index`) for a run of many
    pairs."""
    from engine.query import SoundIndex
    from ui.cli.app import app

    seen = []

    class FileVectors:
        paths, vectors, durations, sizes = [], np.zeros((0, 4), np.float32), np.zeros(0), np.zeros(0)

    class Index:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def file_vectors(self, filters):
            return FileVectors()

    monkeypatch.setattr(SoundIndex, "open", classmethod(lambda cls, *a, **k: Index()))
    monkeypatch.setattr("ui.cli.cmd_duplicates.say_why_none", lambda *a, **k: None)
    monkeypatch.setattr(dup, "find_duplicates",
                        lambda *a, **k: seen.append(k["workers"]) or dup.DuplicateReport([], 0, 0, 0))
    for args, workers in ((["-j", "3"], 3), (["--workers", "0"], 0), ([], None)):
        result = CliRunner().invoke(app, ["duplicates", "--index", str(tmp_path), "--json", *args])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["groups"] == []
    assert seen == [3, 0, None]


def test_by_default_many_pairs_go_to_every_core_few_stay_here(library, monkeypatch):
    """workers=None (the command's default): default_workers (every core) for WORKERS_FROM pairs
    or more; fewer are compared in this process (starting workers would take longer)."""
    used = []
    real = dup._compare_elsewhere
    monkeypatch.setattr(dup, "_compare_elsewhere", lambda *a, **k: used.append(a[4]) or real(*a, **k))
    monkeypatch.setattr(dup, "default_workers", lambda: 2)
    few = _find(library, workers=None)
    assert used == [] and few.candidates < dup.WORKERS_FROM
    monkeypatch.setattr(dup, "WORKERS_FROM", few.candidates)
    assert _outcome(_find(library, workers=None)) == _outcome(few) and used == [2]


def test_the_default_is_every_core_this_process_may_use(monkeypatch):
    """Comparing pairs has no model beside it, so the default takes every core the process may
    run on (not `index`'s half: one worker on 2 cores ran 0.95x as fast as none), at most 16."""
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(2)), raising=False)
    assert dup.default_workers() == 2
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert dup.default_workers() == dup.MAX_DEFAULT_WORKERS
