"""Keep an index up to date while files are added to, changed in or removed from a library.

``soundsift index PATH --watch 30``: index once, then look at the folders every 30 seconds and
index again when what they hold changed. Looking is a walk of the folders (names, sizes and
modification times; no audio is read), so it also works on network drives, where file-system
notifications do not arrive. The model is loaded once and kept between runs. A run starts only
when the walk differs from the one before the previous run, and a file that failed is tried
again only when it changed since (its size or modification time; :func:`unchanged_failures`), so
a file that stays unreadable is neither retried nor warned about every cycle that sees another
change (a plain ``soundsift index`` retries every failed file). A file that arrived or changed
since the last walk is looked at again after ``settle`` seconds: one still growing (a render
being bounced, a copy in progress) is left for a later cycle instead of being indexed
half-written (no clock is compared, so a network drive's clock does not matter). While another writer holds the index (``soundsift caption --index``, a
second ``soundsift index``), the run waits for the next cycle.

A file converted in place (``rain_01.wav`` → ``rain_01.flac``, indexer.reencodes) keeps the user's
tags, captions and sheet rows when its new file and the deleted original fall in different runs,
within :data:`PAIR_WITHIN_SECONDS` (:class:`RecentRuns`): a file added by a run is still new for a
deleted file of its name in the runs of that window, and a deleted file carrying the user's notes
whose name no new file has stays indexed that long (a run lets it go at the first cycle after),
so a file of its name arriving meanwhile takes them. The pairing rule is one run's.

Ctrl-C or SIGTERM (where the caller set no SIGTERM handler of its own; :mod:`indexer.interrupts`)
stops a watch as it stops a plain run: inside a run the files already embedded are committed and
:class:`indexer.runner.IndexInterrupted` is raised; between runs, where everything is committed,
a KeyboardInterrupt. Setting ``stop`` ends it after the run in progress, returning normally.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from engine.errors import IndexBusy
from engine.file_state import state_now
from engine.models.base import AudioTextModel
from engine.wording import count
from indexer.interrupts import Interrupted, remembered
from indexer.reencodes import AcrossRuns
from indexer.runner import IndexSummary, build_index
from indexer.scan import ScanResult, ScannedFile, scan

log = logging.getLogger(__name__)

#: a walk of the library: path → (size, mtime_ns) of every audio file and cue sheet found
Snapshot = dict[str, tuple[int, int]]
#: the files (or entries the walk could not use) that failed in a run: path → (size, mtime_ns) as
#: that run's walk found it, None for an entry that was no file it could read (indexer.scan.ScanError)
Failures = dict[str, tuple[int, int] | None]
#: seconds between a walk and the second look at what changed (a file being written changes meanwhile)
SETTLE_SECONDS = 2.0
#: how long a watch pairs a file converted in place across its runs (indexer.reencodes): a file one
#: of them added is still new for a deleted file of its name, and a deleted file carrying the user's
#: notes stays indexed, waiting for a file of its name (a batch converter deleting its originals at
#: the end of a long job, a user deleting first and converting after)
PAIR_WITHIN_SECONDS = 300.0


@dataclass
class RecentRuns:
    """What a watch remembers of its runs for conversions in place across them: the files they
    added and the deleted files they kept (indexer.reencodes.AcrossRuns), each since when (the
    clock of ``time.monotonic``); for ``window`` seconds."""

    window: float = PAIR_WITHIN_SECONDS
    arrived: dict[str, float] = field(default_factory=dict)
    kept: dict[str, float] = field(default_factory=dict)

    def for_run(self, now: float) -> AcrossRuns:
        """What the run starting ``now`` is told: the files added within the window, and the kept
        files whose time is up (removed by it)."""
        self.arrived = {p: t for p, t in self.arrived.items() if now - t < self.window}
        return AcrossRuns(arrived=frozenset(self.arrived),
                          let_go=frozenset(p for p, t in self.kept.items() if now - t >= self.window))

    def after_run(self, across: AcrossRuns, now: float, summary: IndexSummary) -> None:
        """Take in what the run started at ``now`` (told ``across``; ``summary``) added and kept; a
        kept file keeps the time it was first kept, one not kept again is settled (paired, back, or
        gone); a file added before that took a deleted one's rows is new for no other."""
        self.arrived.update(dict.fromkeys(across.added, now))
        for pair in summary.reencoded_files:
            self.arrived.pop(pair["new"], None)
        fresh = [p for p in across.kept if p not in self.kept]
        self.kept = {p: self.kept.get(p, now) for p in across.kept}
        if fresh:
            log.info("%s deleted with your tags, captions or library-sheet rows %s indexed up to %g s more "
                     "(e.g. %s): a file of %s name arriving meanwhile takes them, converted in place",
                     count(len(fresh), "file"), "stays" if len(fresh) == 1 else "stay", self.window, fresh[0],
                     "its" if len(fresh) == 1 else "their")

    def due(self, now: float) -> bool:
        """Whether a kept file's time is up at ``now``: a run lets it go."""
        return any(now - t >= self.window for t in self.kept.values())


def snapshot(paths: Sequence[str | Path] | ScanResult) -> Snapshot:
    """What the library holds now, as :func:`indexer.scan.scan` finds it (or a walk already made):
    its audio files and its cue sheets (an edited sheet cuts its file's takes again)."""
    walked = paths if isinstance(paths, ScanResult) else scan(paths)
    return {**walked.cue_sheets, **{p: (f.size, f.mtime_ns) for p, f in walked.files.items()}}


def changes(before: Snapshot, after: Snapshot) -> tuple[int, int, int]:
    """(added, changed, removed) file counts between two walks."""
    added = sum(1 for p in after if p not in before)
    changed = sum(1 for p, sig in after.items() if p in before and before[p] != sig)
    removed = sum(1 for p in before if p not in after)
    return added, changed, removed


def still_written(files: Sequence[ScannedFile]) -> list[str]:
    """The paths among ``files`` (as a walk found them) whose size or modification time is not
    that any more, or that are gone: a render or a copy still writing them."""
    return [f.path for f in files if state_now(f.path) != f.state]


def failed_in(summary: IndexSummary, walked: ScanResult, kept: Failures) -> Failures:
    """What failed and stays failed after a run of ``walked``: the failures of ``summary``, each
    with its state as the walk found it, and ``kept`` (those the run did not try again)."""
    return {**kept, **{e["path"]: (walked.files[e["path"]].state if e["path"] in walked.files else None)
                       for e in summary.errors}}


def unchanged_failures(failed: Failures, walked: ScanResult) -> Failures:
    """The failures of ``failed`` that ``walked`` finds as they were when they failed (the same
    size and modification time; an unusable entry still one): not worth trying again."""
    unusable = {e.path for e in walked.errors}
    return {p: sig for p, sig in failed.items()
            if (walked.files[p].state == sig if p in walked.files else sig is None and p in unusable)}


def hold_growing(walked: ScanResult, before: Snapshot, settle: float, stop: threading.Event) -> bool:
    """Take the files that arrived or changed since ``before`` and are still being written
    ``settle`` seconds later out of ``walked`` (into ``walked.held``). False when ``stop`` was
    set while waiting."""
    fresh = [f for p, f in walked.files.items() if before.get(p) != (f.size, f.mtime_ns)]
    if not fresh or settle <= 0:
        return True
    if stop.wait(settle):
        return False
    walked.held = still_written(fresh)
    for path in walked.held:
        walked.files.pop(path, None)
    if walked.held:
        one = len(walked.held) == 1
        log.info("%s %s still being written (%s%s): indexed once %s changing",
                 count(len(walked.held), "file"), "is" if one else "are", "" if one else "e.g. ",
                 walked.held[0], "it stops" if one else "they stop")
    return True


def watch_index(paths: Sequence[str | Path], index: str | Path | None = None,
                model: AudioTextModel | str | Path | None = None, *, interval: float = 30.0,
                on_run: Callable[[IndexSummary], None] | None = None,
                stop: threading.Event | None = None, settle: float = SETTLE_SECONDS,
                pair_within: float = PAIR_WITHIN_SECONDS, **build_options) -> int:
    """Index ``paths`` into ``index`` now and again whenever they change, checking every
    ``interval`` seconds, until ``stop`` is set (or Ctrl-C or SIGTERM, which raise
    KeyboardInterrupt: see the module's docstring). A file that arrived or changed since
    the last walk and changes again within ``settle`` seconds waits for a later cycle (the first
    run indexes what is there, as `soundsift index` does). A file converted in place is paired
    across runs within ``pair_within`` seconds (:class:`RecentRuns`). ``on_run`` gets each run's summary;
    ``build_options`` go to :func:`indexer.build_index`. Returns the number of runs."""
    with remembered() as interrupt:      # SIGTERM between runs too, not only inside one
        return _watch(paths, index, model, interval, on_run, stop or threading.Event(), settle,
                      interrupt, RecentRuns(pair_within), build_options)


def _watch(paths: Sequence[str | Path], index: str | Path | None, model: AudioTextModel | str | Path | None,
           interval: float, on_run: Callable[[IndexSummary], None] | None, stop: threading.Event,
           settle: float, interrupt: Interrupted, recent: RecentRuns, build_options: dict[str, Any]) -> int:
    """:func:`watch_index`'s runs, ``interrupt`` checked between them."""
    walked = scan(paths)                # one walk per run: the run indexes what the watcher saw
    before = snapshot(walked)
    started = time.monotonic()
    across = recent.for_run(started)
    summary = build_index(paths, index, model, scanned=walked, across=across, **build_options)
    recent.after_run(across, started, summary)
    failed = failed_in(summary, walked, {})
    runs = 1
    if on_run is not None:
        on_run(summary)
    if not isinstance(model, AudioTextModel):     # load it once, as the first run resolved it
        from engine.models import load_model
        loaded = load_model(summary.model)
        model = loaded if loaded.fingerprint == summary.model_fingerprint else summary.model
    log.info("watching %s every %g s (Ctrl-C stops)", ", ".join(map(str, paths)), interval)
    while not stop.wait(interval):
        interrupt.check()               # a signal whose KeyboardInterrupt a finaliser swallowed
        walked = scan(paths)
        now = snapshot(walked)
        added, changed, removed = changes(before, now)
        due = recent.due(time.monotonic())      # a deleted file kept for a conversion, its time up
        if not (added or changed or removed or due):
            continue
        if not hold_growing(walked, before, settle, stop):
            break
        if walked.held:                 # compared next cycle against what was there before them
            now = {**{p: sig for p, sig in now.items() if p not in walked.held},
                   **{p: before[p] for p in walked.held if p in before}}
            added, changed, removed = changes(before, now)
            if not (added or changed or removed or due):
                continue
        if added or changed or removed:
            log.info("%d added, %d changed, %d removed since the last run: indexing", added, changed, removed)
        else:
            log.info("the wait of files deleted with your notes for a file of their name is up: removing them")
        left = unchanged_failures(failed, walked)
        started = time.monotonic()
        across = recent.for_run(started)
        try:
            summary = build_index(paths, index, model, scanned=walked, not_retried=left, across=across,
                                  **build_options)
        except IndexBusy as e:              # another writer (caption --index, an index run) holds it
            log.warning("%s; trying again in %g s", e, interval)
            continue
        recent.after_run(across, started, summary)
        failed = failed_in(summary, walked, left)
        before = now
        runs += 1
        if on_run is not None:
            on_run(summary)
    return runs
