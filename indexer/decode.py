"""Stage 2: decode, resample and segment files in parallel worker processes.

Workers run :func:`engine.audio.iter_segments` (soundfile → mono → soxr → fixed
segments) and stream each segment back as soon as it is cut, through a *bounded*
queue: memory stays bounded however long a file is, and decoding runs ahead of the
model by at most ``queue_size`` segments. Workers are started with the 'forkserver'
context (never fork after torch has been imported); they import numpy, soundfile and
soxr only. A worker that dies (e.g. a codec crash) fails only the file it was on, and
a fresh worker takes its place. What the C decoders write to stderr in a worker (libmpg123's
"Illegal Audio-MPEG-Header … Trying to resync" on a damaged MP3) is captured there and sent back
as the ``notes`` of that file's last event, so the indexer reports it under the file's name
instead of as anonymous lines on the terminal.

A segment that is all digital silence is left out here, in the worker, of a file that has sound
elsewhere (:func:`engine.segments.without_silence`): it is neither sent nor embedded, and
``FileDecoded.silent_left_out`` counts it; a file of silence throughout sends its first segment
only (``SegmentReady.silent``).

The events a :class:`DecodePool` yields, in order per file:
``SegmentReady``… then exactly one of ``FileDecoded`` or ``FileFailed``.
"""
from __future__ import annotations

import dataclasses
import itertools
import logging
import multiprocessing as mp
import os
import queue
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Union

import numpy as np

from engine.audio import AudioInfo, iter_segments, probe, says_where_it_stopped
from engine.errors import UnreadableAudio
from engine.cue_sheet import sidecar_state
from engine.promised_length import promised_seconds
from engine.file_metadata import (CUE_SHEET_KEY, CUT_SHORT_KEY, SILENCE_KEYS, content_fingerprint, named_markers,
                                  read_metadata)
from engine.stderr_capture import StderrCapture
from engine.segments import SegmentPolicy, noting_end, silent_segment, take_starts, without_silence
from engine.worker_processes import START_METHOD, exit_when_orphaned

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecodeJob:
    """One file to decode; ``job`` is the caller's key for it."""

    job: int
    path: str


@dataclass
class SegmentReady:
    job: int
    index: int
    start: float
    end: float
    waveform: np.ndarray
    of: float = 0.0                 # the file's duration as its header says (for progress)
    silent: bool = False            # all digital silence, sent as the file has nothing else (module doc)


@dataclass
class FileDecoded:
    job: int
    info: AudioInfo
    n_segments: int                 # segments sent (SegmentReady), not those left out as silent
    duration: float                 # seconds actually decoded (the header may promise more)
    stats: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)     # warnings about this file (see the module doc)
    silent_left_out: int = 0        # segments all digital silence, neither sent nor embedded (module doc)


@dataclass
class FileFailed:
    job: int
    reason: str
    stats: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)     # what the decoder said besides ``reason``


DecodeEvent = Union[SegmentReady, FileDecoded, FileFailed]


def default_workers() -> int:
    """Half the CPU cores (at least 1, at most 8): the model needs the others.

    Decoding costs about a quarter of the model's CPU time, so this keeps ahead of the model; on
    2 cores neither 2 decoders nor in-process decoding was consistently faster than 1
    (``benchmarks/indexing.py --workers-list 1 2 0``, README "Indexing")."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def decode_file(job: DecodeJob, sample_rate: int, policy: SegmentPolicy) -> Iterator[DecodeEvent]:
    """All events of one file, decoded in this process. Never raises for a bad file."""
    stats: dict[str, float] = {}
    notes: list[str] = []
    levels: dict[str, float] = {}
    counts: dict[str, int] = {}
    reached = {"end": 0.0}      # the end of the audio decoded, silent segments left out or not
    n = 0
    throughout = False          # silence throughout: its first segment sent for it
    silent_takes: set[int] = set()  # where its marked takes left out as silence start
    try:
        info = probe(job.path)            # names why a file cannot be opened (engine.audio.check_openable)
        info = _with_metadata(info, notes)
        takes = _marked_takes(job.path, notes)
        before_decoding = len(notes)
        segments = iter_segments(job.path, sample_rate, policy, stats=stats, notes=notes, levels=levels,
                                 markers=takes)
        silent = silent_segment(sample_rate, take_starts(takes, sample_rate, policy), silent_takes)
        for seg, only_silence in without_silence(noting_end(segments, reached), silent, counts):
            yield SegmentReady(job.job, n, seg.start, seg.end, seg.waveform, info.duration, only_silence)
            throughout |= only_silence
            n += 1
    except UnreadableAudio as e:
        yield FileFailed(job.job, e.reason, stats)
        return
    except Exception as e:  # a decoder bug must fail one file, not the run
        yield FileFailed(job.job, f"decoding failed: {type(e).__name__}: {e}", stats)
        return
    end = reached["end"]
    # a stop note already says where it ended (not a decoder's line, which a decode in this process notes too)
    stop_noted = any(says_where_it_stopped(note) for note in notes[before_decoding:])
    promised = promised_seconds(job.path, info.frames, info.sample_rate)   # libsndfile's clips to the bytes there
    cut_short = end < 0.98 * promised - 0.05
    if cut_short and not stop_noted:
        notes.append(f"shorter than its header says ({end:.2f} s of {promised:.2f} s; truncated?): "
                     "indexing the audio that decodes")
    # measured while decoding, stored beside what the file says of itself (engine.file_metadata.INDEXER_KEYS)
    stored = {k: f"{v:.1f}" for k, v in levels.items()}
    if cut_short:               # shown on its results (engine.query_hits.Hit.header_duration)
        stored[CUT_SHORT_KEY] = f"{promised:.2f}"
    stored.update(silence_rows(counts.get("silent_left_out", 0), throughout, silent_takes,   # indexer.silence_refresh
                               marked="markers" in dict(info.metadata)))
    try:
        stored["fingerprint"] = content_fingerprint(job.path)
    except OSError as e:        # only moves lose by it (indexer.moves): a note, not a failure
        notes.append(f"no content fingerprint ({e.strerror or e})")
    try:                        # the sheet these takes were cut with (indexer.take_refresh)
        if sheet := sidecar_state(job.path):
            stored[CUE_SHEET_KEY] = sheet
    except OSError as e:
        notes.append(f"cue sheet not read ({e.strerror or e})")
    info = dataclasses.replace(info, metadata=tuple(sorted(dict(info.metadata, **stored).items())))
    yield FileDecoded(job.job, info, n, end, stats, notes, counts.get("silent_left_out", 0))


def silence_rows(left_out: int, throughout: bool, silent_takes: Iterable[int] = (),
                 marked: bool = False) -> dict[str, str]:
    """The catalog rows (engine.file_metadata.SILENCE_KEYS) saying that a file's silence was judged:
    ``left_out`` segments left out, whether it is silence throughout (no row when not), and where
    its marked takes left out start (``silent_takes``, samples at the model's rate; a row only for
    a file with a ``markers`` row, ``marked``, where an empty one says its takes were judged, or
    with such takes)."""
    rows = {SILENCE_KEYS[0]: str(int(left_out))}
    takes = " ".join(map(str, sorted(silent_takes)))
    if takes or marked:
        rows[SILENCE_KEYS[2]] = takes
    if throughout:
        rows[SILENCE_KEYS[1]] = "1"
    return rows


def _with_metadata(info: AudioInfo, notes: list[str]) -> AudioInfo:
    """``info`` with the descriptions the file carries; a file whose metadata cannot be read
    is indexed without it, and the reason becomes a note on the file (as does a part of it
    that cannot be read, such as a broken iXML chunk)."""
    try:
        found = read_metadata(info.path, notes)
    except Exception as e:  # metadata is a bonus: never fail a file that decodes for it
        notes.append(f"embedded metadata not read ({type(e).__name__}: {e})")
        return info
    return dataclasses.replace(info, metadata=tuple(sorted(found.items())))


def _marked_takes(path: str, notes: list[str]) -> list[tuple[float, float | None]]:
    """``(at, region length)`` of the file's named cue markers: each marks a take that gets a
    segment of its own (engine.segments.take_bounds). Unreadable markers are a note, not a failure."""
    try:
        return [(m.at, m.length) for m in named_markers(path)]
    except Exception as e:  # markers are a bonus: never fail a file that decodes for them
        notes.append(f"markers not read ({type(e).__name__}: {e})")
        return []


def iter_decoded(jobs: Iterable[DecodeJob], sample_rate: int, policy: SegmentPolicy,
                 workers: int = 0, queue_size: int = 64) -> Iterator[DecodeEvent]:
    """Decode ``jobs``: in this process when ``workers`` is 0, else in a worker pool, started
    only when there is a job (a run over an unchanged library starts no process)."""
    if workers <= 0:
        for job in jobs:
            yield from decode_file(job, sample_rate, policy)
        return
    pending = iter(jobs)
    first = next(pending, None)
    if first is None:
        return
    with DecodePool(sample_rate, policy, workers, queue_size) as pool:
        yield from pool.run(itertools.chain([first], pending))


# --- worker side ---------------------------------------------------------------------

def _worker_main(tasks: "mp.Queue", results: "mp.Queue", sample_rate: int,
                 policy: SegmentPolicy, parent_pid: int) -> None:
    """Loop of one worker process: take a job, stream its events, until a None arrives."""
    import signal
    # Ctrl-C reaches the whole process group: the indexing process decides what to do
    # (commit what is finished) and then stops its workers itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_when_orphaned(parent_pid)
    pid = os.getpid()
    with StderrCapture() as stderr:
        while True:
            job = tasks.get()
            if job is None:
                break
            results.put(("start", pid, job.job))
            for event in decode_file(job, sample_rate, policy):
                if isinstance(event, (FileDecoded, FileFailed)):
                    event.notes.extend(stderr.take())
                results.put(("event", pid, event))


# --- parent side ---------------------------------------------------------------------

class DecodePool:
    """A pool of decoder processes streaming segments through a bounded queue."""

    def __init__(self, sample_rate: int, policy: SegmentPolicy, workers: int,
                 queue_size: int = 64) -> None:
        self.sample_rate = sample_rate
        self.policy = policy
        self.n_workers = max(1, workers)
        self._ctx = mp.get_context(START_METHOD)
        self._tasks = self._ctx.Queue()
        self._results = self._ctx.Queue(maxsize=max(2, queue_size))
        self._procs: dict[int, mp.process.BaseProcess] = {}
        self._current: dict[int, int] = {}       # worker pid → job it is decoding
        self._deaths_before_work = 0             # workers in a row that died before taking a job

    def __enter__(self) -> "DecodePool":
        for _ in range(self.n_workers):
            self._spawn()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    #: after this many workers in a row die before taking a job, the pool stops replacing them
    MAX_DEATHS_BEFORE_WORK = 3
    #: the loop each worker process runs
    worker_main = staticmethod(_worker_main)

    def _spawn(self) -> None:
        p = self._ctx.Process(target=self.worker_main, daemon=True, name="soundsift-decode",
                              args=(self._tasks, self._results, self.sample_rate, self.policy,
                                    os.getpid()))
        p.start()
        self._procs[p.pid] = p

    def run(self, jobs: Iterable[DecodeJob]) -> Iterator[DecodeEvent]:
        """Yield the events of every job; each job ends with FileDecoded or FileFailed."""
        pending = set()
        for job in jobs:
            self._tasks.put(job)
            pending.add(job.job)
        for _ in range(self.n_workers):
            self._tasks.put(None)
        while pending:
            try:
                message = self._results.get(timeout=0.5)
            except queue.Empty:
                yield from self._reap_dead(pending)
                continue
            yield from self._take(message, pending)

    def _take(self, message: tuple[str, int, object], pending: set[int]) -> Iterator[DecodeEvent]:
        """The event a worker's ``message`` carries, if any (a "start" only says which job it took)."""
        kind, pid, payload = message
        if kind == "start":
            self._current[pid] = payload
            self._deaths_before_work = 0
            return
        event: DecodeEvent = payload
        if isinstance(event, (FileDecoded, FileFailed)):
            pending.discard(event.job)
            self._current.pop(pid, None)
        yield event

    def _drain(self, pending: set[int]) -> Iterator[DecodeEvent]:
        """The events of every message already in the results queue."""
        while True:
            try:
                message = self._results.get(block=False)
            except queue.Empty:
                return
            yield from self._take(message, pending)

    def _reap_dead(self, pending: set[int]) -> Iterator[DecodeEvent]:
        """Fail the file a dead worker was on, and start a replacement worker.

        What the dead workers sent is read first: the wait for a message may have timed out just
        before a worker sent its last events and exited (a slow file on a loaded machine), and a
        worker that has exited has all it sent in the queue. Only a job still pending after that
        was lost with its worker; its events never follow its FileFailed."""
        dead = [(pid, proc) for pid, proc in self._procs.items() if not proc.is_alive()]
        for pid, _ in dead:
            del self._procs[pid]
        if dead:
            yield from self._drain(pending)
        for pid, proc in dead:
            job = self._current.pop(pid, None)
            if proc.exitcode == 0:
                continue
            log.warning("decoder process %s died (exit code %s)", pid, proc.exitcode)
            if job is not None and job in pending:
                pending.discard(job)
                yield FileFailed(job, f"decoder process crashed (exit code {proc.exitcode})")
            elif job is None:
                self._deaths_before_work += 1
                if self._deaths_before_work >= self.MAX_DEATHS_BEFORE_WORK:
                    # a worker that cannot even start would be replaced forever
                    reason = (f"decoder processes could not start (exit code {proc.exitcode}, "
                              f"{self._deaths_before_work} in a row; their error is printed above)")
                    for lost in sorted(pending):
                        yield FileFailed(lost, reason)
                    pending.clear()
                    return
            if pending:
                self._spawn()       # the dead worker left its stop sentinel for this one
        if pending and not self._procs:
            # every worker has exited and all they sent is read: a job was lost with a
            # worker that died before it could report it
            for job in sorted(pending):
                yield FileFailed(job, "decoder process lost while decoding this file")
            pending.clear()

    def close(self) -> None:
        """Stop every worker (they may be blocked on a full queue: terminate them)."""
        for proc in self._procs.values():
            if proc.is_alive():
                proc.terminate()
        for proc in self._procs.values():
            proc.join(timeout=5)
        self._procs.clear()
        self._results.cancel_join_thread()
        self._tasks.cancel_join_thread()
        self._results.close()
        self._tasks.close()
