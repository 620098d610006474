"""`soundsift index --watch` stopped by Ctrl-C or SIGTERM ends as a plain interrupted run does:
the finished files committed and exit status 130, so a script can tell a watch that was stopped
from one that ended. It ended with 0 (Ctrl-C), or, on SIGTERM, finished the whole run in progress
first (hours for a library's first run) and then ended with 0."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from indexer.interrupts import remembered
from tests.conftest import chirp, write
from tests.test_interruptions import committed

ROOT = Path(__file__).resolve().parents[1]

#: `soundsift index LIB --index IDX --watch 1 --json` with a fake model (no torch) that touches
#: "<marks>.embedded-<n>" after each call and waits ``delay`` s in each; one decoder process, one
#: segment a call, no checkpoint before the end of a run.
SCRIPT = """
import pathlib, signal, sys
signal.signal(signal.SIGTERM, signal.SIG_DFL)
signal.signal(signal.SIGINT, signal.default_int_handler)
import engine.models, indexer.watch
from tests.index_fakes import FakeModel

lib, idx, marks, delay = sys.argv[1:5]

class Marking(FakeModel):
    def embed_audio(self, waveforms):
        out = super().embed_audio(waveforms)
        pathlib.Path(f"{marks}.embedded-{len(self.calls)}").touch()
        return out

model = Marking(delay=float(delay))
real = indexer.watch.build_index
indexer.watch.build_index = lambda paths, index, _model, **kw: real(paths, index, model, **kw)
engine.models.load_model = lambda name: model
from ui.cli import main
sys.argv = ["soundsift", "index", lib, "--index", idx, "--watch", "1", "--json", "--workers", "1",
            "--batch-size", "1", "--checkpoint-files", "10000", "--checkpoint-seconds", "10000"]
main()
"""
N_FILES = 8


def start(lib: Path, idx: Path, marks: Path, delay: float, stderr) -> subprocess.Popen:
    """The watching command in a child process, its signals at Python's defaults."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(lib), str(idx), str(marks), str(delay)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)


def library(root: Path, n: int) -> Path:
    for i in range(n):                        # 1.0–1.7 s: one segment each
        write(root / f"f{i}.wav", chirp(200 + 150 * i, 900 + 150 * i, 1.0 + 0.1 * i, 16000), 16000)
    return root.resolve()


def stopped(proc: subprocess.Popen, sig: int, when: Callable[[], None], err_log: Path) -> tuple[str, str]:
    """Send ``sig`` to the watching ``proc`` once ``when()`` returns; its stdout and stderr log,
    after checking it ended with status 130, saying it stopped, without a traceback."""
    try:
        when()
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    log = err_log.read_text()
    assert proc.returncode == 130, log[-2000:]
    assert "stopped watching" in log and "Traceback" not in log
    return out, log


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_watch_stopped_between_runs_ends_with_130(tmp_path, sig):
    lib, idx, marks = library(tmp_path / "lib", 1), tmp_path / "idx", tmp_path / "marks"
    with open(tmp_path / "err.log", "w") as err:
        proc = start(lib, idx, marks, 0.0, err)

    def first_run_done() -> None:
        first = json.loads(proc.stdout.readline())
        assert (first["added"], first["interrupted"]) == (1, False)
    out, _ = stopped(proc, sig, first_run_done, tmp_path / "err.log")
    assert out == ""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_watch_stopped_in_a_run_commits_its_finished_files_and_ends_with_130(tmp_path, sig):
    """As a plain run: the files embedded are committed, the rest waits for the next run, and
    --json's last line is that run's summary, ``"interrupted": true``."""
    lib, idx, marks = library(tmp_path / "lib", N_FILES), tmp_path / "idx", tmp_path / "marks"
    with open(tmp_path / "err.log", "w") as err:
        proc = start(lib, idx, marks, 0.3, err)
    third = Path(f"{marks}.embedded-3")       # files 1 and 2 are finished (one decoder: in order)

    def third_file_started() -> None:
        deadline = time.monotonic() + 120
        while not third.exists():
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "err.log").read_text()[-2000:]
            time.sleep(0.01)
    out, _ = stopped(proc, sig, third_file_started, tmp_path / "err.log")
    lines = out.splitlines()
    assert len(lines) == 1, out                 # the first run never finished
    summary = json.loads(lines[0])
    kept = summary["totals"]["files"]
    assert summary["interrupted"] is True and 2 <= kept < N_FILES and summary["added"] == kept
    meta, seg_ids, ids = committed(idx)
    assert meta["counts"]["files"] == kept and seg_ids == ids.tolist()


def test_a_sigterm_inside_nested_remembering_flags_every_level():
    """The watch remembers signals around its runs, and each run inside it too: SIGTERM, like
    SIGINT, reaches the run's flag (which a KeyboardInterrupt swallowed by a finaliser leaves
    standing) and the watch's, and raises one KeyboardInterrupt; each level restores what it
    replaced."""
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for sig in (signal.SIGINT, signal.SIGTERM):
            with remembered() as outer:
                handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
                with pytest.raises(KeyboardInterrupt):
                    with remembered() as inner:
                        signal.raise_signal(sig)
                        time.sleep(1)        # not reached: the handler raises at the next bytecode
                assert inner.arrived and outer.arrived
                assert {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)} == handlers
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
            assert signal.getsignal(signal.SIGINT) == before[signal.SIGINT]
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
