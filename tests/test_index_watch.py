"""`soundsift index --watch`: index again when the library changes, not otherwise."""
from __future__ import annotations

import os
import threading
import time

from engine.layout import IndexLayout
from indexer.scan import scan
from indexer.watch import changes, snapshot, watch_index
from indexer.write import WriterLock
from tests.conftest import tone, write
from tests.index_fakes import FakeModel
from tests.test_index_build import catalog_rows

SR = 16_000


def wait_for(condition, timeout: float = 30.0) -> None:
    """Poll ``condition`` until it holds; fail (not hang) after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "the watcher did not get there"
        time.sleep(0.02)


def start_watcher(lib, idx, model, summaries: list, stop: threading.Event, settle: float = 0.05) -> threading.Thread:
    """``watch_index`` in a thread, looking every 0.05 s, each run's summary onto ``summaries``."""
    watcher = threading.Thread(target=watch_index, args=([lib], idx, model),
                               kwargs=dict(interval=0.05, on_run=summaries.append, stop=stop, workers=0,
                                           progress=False, settle=settle))
    watcher.start()
    return watcher


def test_changes_between_two_walks(tmp_path):
    a = write(tmp_path / "a.wav", tone(300, 1.0, SR), SR)
    write(tmp_path / "b.wav", tone(400, 1.0, SR), SR)
    before = snapshot([tmp_path])
    write(tmp_path / "c.wav", tone(500, 1.0, SR), SR)
    write(a, tone(300, 2.0, SR), SR)
    (tmp_path / "b.wav").unlink()
    assert changes(before, snapshot([tmp_path])) == (1, 1, 1)
    assert changes(before, before) == (0, 0, 0)


def test_the_watcher_indexes_what_arrives_and_nothing_when_nothing_does(tmp_path):
    lib, idx = tmp_path / "lib", tmp_path / "idx"
    write(lib / "dog.wav", tone(440, 1.0, SR), SR)
    (lib / "broken.wav").write_bytes(b"not audio")           # stays broken: no run for it every cycle
    summaries, stop, model = [], threading.Event(), FakeModel()
    watcher = start_watcher(lib, idx, model, summaries, stop)
    try:
        wait_for(lambda: len(summaries) == 1)
        assert (summaries[0].added, summaries[0].failed) == (1, 1)
        time.sleep(0.5)                                       # about ten quiet cycles
        assert len(summaries) == 1 and len(model.calls) == 1
        staged = write(tmp_path / "staging" / "rain.wav", tone(900, 2.0, SR), SR)
        os.replace(staged, lib / "rain.wav")                 # arrives whole, as a finished copy does
        wait_for(lambda: len(summaries) == 2)
        (lib / "dog.wav").unlink()
        wait_for(lambda: len(summaries) == 3)
        lock = WriterLock(IndexLayout(idx).lock)             # another writer holds the index a while
        lock.acquire()
        try:
            os.replace(write(tmp_path / "staging" / "owl.wav", tone(600, 1.0, SR), SR), lib / "owl.wav")
            time.sleep(0.5)
            assert len(summaries) == 3                        # waited, did not die
        finally:
            lock.release()
        wait_for(lambda: len(summaries) == 4)
    finally:
        stop.set()
        watcher.join(30)
    assert not watcher.is_alive()
    assert [(s.added, s.removed) for s in summaries[1:]] == [(1, 0), (0, 1), (1, 0)]
    assert sorted(p.rsplit("/", 1)[1] for p in catalog_rows(idx)[0]) == ["owl.wav", "rain.wav"]


def test_soundsift_index_watch_reports_each_run_and_stops_on_sigterm(tmp_path, tiny_clap_dir):  # noqa: F811
    """The command: the first run's table, a line per later run, and an end on SIGTERM (a
    service manager's stop) with exit status 130, as an interrupted run."""
    import json
    import signal
    import subprocess
    import sys

    lib, idx = tmp_path / "lib", tmp_path / "idx"
    write(lib / "dog.wav", tone(440, 1.0, SR), SR)
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "index", str(lib), "--index", str(idx), "--model",
                             str(tiny_clap_dir), "--workers", "0", "--watch", "1", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        assert (first["added"], first["generation"]) == (1, 1)
        staged = write(tmp_path / "staging" / "rain.wav", tone(900, 2.0, SR), SR)
        os.replace(staged, lib / "rain.wav")
        second = json.loads(proc.stdout.readline())
        assert (second["added"], second["unchanged"], second["generation"]) == (1, 1, 2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and out == "" and "stopped watching" in err and "Traceback" not in err

def test_each_watched_run_indexes_the_walk_that_started_it(tmp_path, monkeypatch):
    """One walk per cycle: the run is given the watcher's walk instead of walking the folders
    again, so what it indexes is exactly what the watcher saw change."""
    import indexer.runner
    import indexer.watch

    lib, idx = tmp_path / "lib", tmp_path / "idx"
    write(lib / "dog.wav", tone(440, 1.0, SR), SR)
    walks = []

    def counted_scan(paths):
        walks.append(list(paths))
        return scan(paths)

    def no_second_walk(paths):
        raise AssertionError("the run walked the folders again")

    monkeypatch.setattr(indexer.watch, "scan", counted_scan)
    monkeypatch.setattr(indexer.runner, "scan", no_second_walk)
    summaries, stop = [], threading.Event()
    watcher = start_watcher(lib, idx, FakeModel(), summaries, stop)
    try:
        wait_for(lambda: len(summaries) == 1)
        assert len(walks) == 1                               # the first run: one walk, not two
        os.replace(write(tmp_path / "staging" / "rain.wav", tone(900, 2.0, SR), SR), lib / "rain.wav")
        wait_for(lambda: len(summaries) == 2)
    finally:
        stop.set()
        watcher.join(30)
    assert not watcher.is_alive()
    assert [(s.added, s.failed) for s in summaries] == [(1, 0), (1, 0)]
    assert sorted(p.rsplit("/", 1)[1] for p in catalog_rows(idx)[0]) == ["dog.wav", "rain.wav"]


def test_a_file_still_being_written_waits_until_it_is_whole(tmp_path):
    """A render bounced into the library (written block by block, its header finished last) is
    not indexed half-written, nor failed: the watcher looks again after the settle time and
    leaves a file that is still growing for a later cycle."""
    import soundfile as sf

    lib, idx = tmp_path / "lib", tmp_path / "idx"
    write(lib / "dog.wav", tone(440, 1.0, SR), SR)
    summaries, stop = [], threading.Event()
    watcher = start_watcher(lib, idx, FakeModel(), summaries, stop, settle=0.6)
    try:
        wait_for(lambda: len(summaries) == 1)
        wave = tone(700, 2.0, SR)
        with sf.SoundFile(str(lib / "render.wav"), "w", SR, 1, subtype="PCM_16") as out:
            for block in range(20):                           # 0.1 s of audio every 0.03 s
                out.write(wave[block * SR // 10:(block + 1) * SR // 10])
                out.flush()
                time.sleep(0.03)
        wait_for(lambda: any(s.added for s in summaries[1:]))
        time.sleep(0.5)                                       # nothing more to do after it
    finally:
        stop.set()
        watcher.join(30)
    later = summaries[1:]
    assert [(s.added, s.updated, s.failed) for s in later] == [(1, 0, 0)]
    assert later[0].audio_seconds == 2.0                      # the whole render, indexed once
