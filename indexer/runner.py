"""The runner: scan → decode (worker processes) → embed (batches) → write (checkpoints).

:func:`build_index` is the indexer's public entry point. It times every stage so the
bottleneck is visible: ``scan`` and ``write`` are wall time in this process, ``embed``
is time inside ``model.embed_audio``, ``decode`` and ``resample`` are summed over the
worker processes (they overlap with embedding), and ``decode_wait`` is how long the
model sat idle waiting for decoded audio.

Failed files are retried on every run (a failure costs little: most fail at the header),
so ``failed`` counts the failures of this run and a file that was fixed is picked up
without any flag (a ``--watch`` cycle leaves the ones that did not change since: ``not_retried``).

``build_index(..., rebuild=True)`` runs the same stages (:func:`index_into`) into a fresh
index beside the old one and swaps it in (:mod:`indexer.rebuild`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from engine.audio import AudioInfo
from engine.errors import IndexLocationTaken, NothingToIndex
from engine.file_state import state_now
from engine.layout import IndexLayout, index_option, resolve_index_dir
from engine.models.base import AudioTextModel
from engine.segments import SegmentPolicy
from engine.wording import count
from indexer.decode import (DecodeJob, FileDecoded, FileFailed, SegmentReady, default_workers,
                            iter_decoded)
from indexer.embed import DEFAULT_BATCH_SIZE, SegmentBatcher
from indexer.index_model import model_for_run, model_meta, resolve_model, warn_if_changed
from indexer.level_refresh import LevelRefresh, refresh_levels
from indexer.links import link_scope
from indexer.metadata_refresh import refresh_metadata
from indexer.metadata_sheet import sheets_not_imported
from indexer.moves import Move, find_moves_among_changed, moved_root_hint, overwritten
from indexer.interrupts import Interrupted, remembered
from indexer.progress import AudioProgress
from indexer.reencodes import (LISTED_PAIRS, AcrossRuns, Pairing, Reencode, candidates, same_recording,
                               unmatched)
from indexer.same_file import indexed_names, other_names, said_of
from indexer.silence_refresh import SilenceRefresh, refresh_silence
from indexer.scan import (Diff, ScannedFile, ScanResult, capped_folders, describe_skipped, diff, normalize_root,
                          scan, under_roots, walked_root)
from indexer.take_refresh import cut_with_cue_sheets, files_missing_takes, files_with_changed_cue_sheets
from indexer.write import Changes, IndexedFile, IndexWriter, catalog_users_notes

log = logging.getLogger(__name__)

#: commit a checkpoint after this many finished files, or this many seconds
CHECKPOINT_FILES = 256
CHECKPOINT_SECONDS = 60.0
#: a commit rewrites the whole vectors file, so its cost grows with the index (about 2 s near
#: 40,000 files, 150 MB of vectors): once one takes more than SLOW_COMMIT_SECONDS, the next waits until the run has worked
#: (1 - WRITE_SHARE) / WRITE_SHARE times as long, keeping commits near WRITE_SHARE of the run
#: instead of growing with the square of the library
SLOW_COMMIT_SECONDS, WRITE_SHARE = 0.25, 0.05
STAGES = ("scan", "decode", "resample", "embed", "write")
#: the counts of an :class:`IndexSummary` that grow as files are queued for a commit: what the
#: run's commits put in the index once committed (:func:`committed_counts`)
QUEUED_COUNTS = ("added", "updated", "removed", "moved", "reencoded", "same_file", "same_audio", "n_segments",
                 "silent_left_out", "files_of_silence", "audio_seconds")


def checkpoint_due(files: int, seconds: float, last_cost: float, checkpoint_files: int,
                   checkpoint_seconds: float) -> bool:
    """Whether to commit now, ``files`` finished and ``seconds`` worked since the last commit,
    which took ``last_cost`` seconds: after ``checkpoint_files`` files or ``checkpoint_seconds``,
    but after a slow commit not before the run has worked long enough (:data:`WRITE_SHARE`)."""
    if last_cost > SLOW_COMMIT_SECONDS and seconds < last_cost * (1.0 - WRITE_SHARE) / WRITE_SHARE:
        return False
    return files >= checkpoint_files or seconds >= checkpoint_seconds


@dataclass
class IndexSummary:
    """What one run of :func:`build_index` did (``to_dict()`` is the ``--json`` output)."""

    index: str
    added: int = 0
    updated: int = 0
    removed: int = 0
    moved: int = 0                      # indexed files found at another path (indexer.moves)
    kept_for_reencode: int = 0          # deleted files with the user's notes a --watch keeps indexed a while, for
                                        # a file of their name arriving in a later run (indexer.reencodes)
    reencoded: int = 0                  # of updated: indexed files converted in place (rain_01.wav → rain_01.flac),
                                        # their tags, captions and sheet rows carried over (indexer.reencodes)
    reencoded_files: list[dict[str, str]] = field(default_factory=list)   # those pairs, {"old", "new"}
    same_file: int = 0                  # of added + updated: names of a file on disk embedded under another
                                        # (hard links), in this run or before, given its vectors (indexer.same_file)
    same_audio: int = 0                 # of added + updated: byte-identical copies of a file embedded in this
                                        # run or before (another file on disk), given its vectors (indexer.same_file)
    unchanged: int = 0
    failed: int = 0
    metadata_reread: int = 0            # unchanged files whose embedded metadata was read again
    levels_measured: int = 0            # unchanged files indexed before loudness was measured, measured now
    skipped: dict[str, int] = field(default_factory=dict)   # system entries not scanned (indexer.scan)
    skipped_folders: list[str] = field(default_factory=list)   # the hidden or system folders among them
    sheets_not_imported: list[str] = field(default_factory=list)   # spreadsheets in the library no import named
    n_segments: int = 0                 # segments embedded in this run
    silent_left_out: int = 0            # segments all digital silence of files with sound elsewhere: neither
                                        # embedded nor stored (engine.segments.without_silence)
    files_of_silence: int = 0           # files of digital silence throughout, kept as their first segment
    silence_judged: int = 0             # unchanged files indexed before session 39 whose silence was judged now
                                        # (decoded only: indexer.silence_refresh)
    silent_segments_dropped: int = 0    # their stored segments of digital silence dropped (rows and vectors)
    audio_seconds: float = 0.0          # duration of the files indexed in this run
    seconds: float = 0.0                # wall time of the run
    files_per_second: float = 0.0       # (added + updated + failed) / seconds
    x_realtime: float = 0.0             # audio_seconds / seconds
    timings: dict[str, float] = field(default_factory=dict)
    workers: int = 0                    # decoder processes of the run (0: decoded in this process)
    generation: int = 0
    commits: int = 0
    totals: dict[str, Any] = field(default_factory=dict)   # files/segments/errors in the index
    model: str = ""
    model_fingerprint: str = ""
    errors: list[dict[str, str]] = field(default_factory=list)   # failures of this run
    interrupted: bool = False           # Ctrl-C (anywhere in the run): the counts are what its commits kept
    # --rebuild (indexer.rebuild): the index was re-embedded into a fresh one that replaced it
    rebuild: bool = False
    previous_model: str | None = None   # the model of the index it replaced (None: no rebuild)
    previous_model_fingerprint: str | None = None
    swapped_in: bool = False            # the rebuilt index took the old one's place (false: the old one stays)
    carried_over: dict[str, int] = field(default_factory=lambda: {"tags": 0, "captions": 0})
    not_carried_over: dict[str, int] = field(default_factory=lambda: {"tags": 0, "captions": 0})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["skipped_folders"], d["skipped_folders_more"] = capped_folders(self.skipped_folders)
        d["reencoded_files"] = d["reencoded_files"][:LISTED_PAIRS]
        d["reencoded_files_more"] = max(0, len(self.reencoded_files) - LISTED_PAIRS)
        return d


class IndexInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run (its scan, its embedding and commits, a pass over files indexed before),
    after what was done was committed; ``summary`` says what the index now holds (``interrupted``
    true). Still a KeyboardInterrupt to every caller."""

    def __init__(self, summary: IndexSummary) -> None:
        super().__init__()
        self.summary = summary


def committed_counts(summary: IndexSummary) -> dict[str, Any]:
    """The :data:`QUEUED_COUNTS` of ``summary`` as they are: after a commit, what the index holds
    of the run; put back with :func:`restore_counts` when a Ctrl-C leaves what was queued since
    uncommitted (a second one during the commit after the first)."""
    return {k: getattr(summary, k) for k in QUEUED_COUNTS}


def restore_counts(summary: IndexSummary, counts: dict[str, Any]) -> None:
    """Put ``summary``'s :data:`QUEUED_COUNTS` back to ``counts`` (:func:`committed_counts`)."""
    for k, v in counts.items():
        setattr(summary, k, v)
    del summary.reencoded_files[summary.reencoded:]     # the pairs of the files not committed


@dataclass
class _Work:
    """A file on its way through decode and embed."""

    scanned: ScannedFile
    changed: bool
    same_audio: bool = False            # embedded again for its takes (a cue sheet, markers), not its content
    bounds: dict[int, tuple[float, float]] = field(default_factory=dict)
    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    info: AudioInfo | None = None
    duration: float = 0.0
    n_segments: int = -1                # segments the decoder sent (those left out as silent are not)
    header_seconds: float = 0.0         # how long its header says it is (the progress bar's measure)
    silent: bool = False                # digital silence throughout: its first segment stands for it
    silent_left_out: int = 0            # segments the decoder left out as digital silence

    @property
    def ready(self) -> bool:
        return self.info is not None and len(self.vectors) == self.n_segments


@dataclass
class RunOptions:
    """How :func:`build_index` runs (see its docstring)."""

    workers: int
    batch_size: int
    progress: bool = True
    checkpoint_files: int = CHECKPOINT_FILES
    checkpoint_seconds: float = CHECKPOINT_SECONDS
    scanned: ScanResult | None = None   # a walk of the paths already made (indexer.watch), else walked
    not_retried: frozenset[str] = frozenset()   # failed before and unchanged since (indexer.watch): left as they are
    #: called with (path, reason) as each file fails; it may raise to stop the run (a rebuild stops
    #: at the first file it would drop: indexer.rebuild)
    on_failure: Callable[[str, str], None] | None = None
    #: a --watch's runs before (indexer.watch): conversions in place across runs; None: a plain run
    across: AcrossRuns | None = None


def build_index(paths: Sequence[str | Path] | str | Path, index: str | Path | None = None,
                model: AudioTextModel | str | Path | None = None, *, workers: int | None = None,
                batch_size: int | None = None, progress: bool = True,
                checkpoint_files: int = CHECKPOINT_FILES,
                checkpoint_seconds: float = CHECKPOINT_SECONDS,
                memory_budget: int | str | None = None, rebuild: bool = False,
                scanned: ScanResult | None = None, not_retried: Iterable[str] = (),
                across: AcrossRuns | None = None) -> IndexSummary:
    """Index the audio files under ``paths`` into ``index`` (name or folder), incrementally.

    ``model``: an AudioTextModel, a name/folder for :func:`engine.load_model`, or None for
    the index's own model (a new index gets ``engine.models.DEFAULT_MODEL``).
    ``workers``: decoder processes (0 decodes in this process; default half the cores).
    ``memory_budget``: bytes (or "4G", "25%") the vectors may take in memory; it picks the
    FAISS index type (engine.index_choice). Default: $SOUNDSIFT_MEMORY_BUDGET, else a
    quarter of physical memory.
    ``rebuild``: re-embed every file under ``paths`` with ``model`` (None: DEFAULT_MODEL,
    not the index's own) into a fresh index that replaces this one when it is complete
    (:mod:`indexer.rebuild`); an index that does not exist yet is simply built.
    ``scanned``: :func:`indexer.scan.scan` of ``paths`` made by the caller just before (the
    watcher's walk), so the folders are not walked twice.
    ``not_retried``: paths of files (or walk errors) that failed before and have not changed
    since (the watcher knows): not tried again, their error rows kept. A plain run gives none,
    so every failed file is tried again.
    ``across``: what a ``--watch``'s runs before did (indexer.reencodes.AcrossRuns), so a file
    converted in place whose two halves fall in different runs is paired; filled in with what this
    run added and kept. A plain run gives none.
    Bad files become error rows and WARNING log lines; they never stop the run.
    """
    t_start = time.perf_counter()
    if isinstance(paths, (str, Path)):
        paths = [paths]
    layout = IndexLayout(resolve_index_dir(index))
    opts = RunOptions(workers=default_workers() if workers is None else max(0, int(workers)),
                      batch_size=DEFAULT_BATCH_SIZE if batch_size is None else int(batch_size),
                      progress=progress, checkpoint_files=checkpoint_files,
                      checkpoint_seconds=checkpoint_seconds, scanned=scanned,
                      not_retried=frozenset(not_retried), across=across)
    if memory_budget is not None:
        from engine.index_choice import parse_memory_budget
        memory_budget = parse_memory_budget(memory_budget)
    from indexer import rebuild as rebuilding
    if rebuild and layout.catalog.is_file():
        return rebuilding.rebuild_index(paths, layout, model, opts, memory_budget, t_start)
    rebuilding.check_not_half_swapped(layout.root)
    if rebuild:
        log.info("%s is not an index yet: building it", layout.root)
    if not layout.catalog.is_file():
        # a new index: refuse a typo'd path and load the model before any folder is made, so
        # neither leaves an empty index behind (an existing index keeps a gone root's files)
        missing = [str(p) for p in paths if not os.path.lexists(normalize_root(p))]
        if missing and len(missing) == len(paths):
            raise NothingToIndex(f"{', '.join(missing)}: no such file or folder; no index was created")
        check_new_index_location(layout)
        model = resolve_model(model, {}, layout.root)
    summary = IndexSummary(index=str(layout.root))
    with IndexWriter(layout, memory_budget=memory_budget) as writer:
        # the index's own model is loaded at the run's first embedding, if it has any: files that
        # did not change, were removed or still do not decode need none. A new index records the
        # model now, so a run killed before its first commit is followed by one with the same model
        model = model_for_run(model, writer)
        try:
            index_into(writer, paths, model, opts, summary)
        except KeyboardInterrupt as e:
            if not summary.interrupted:     # before the run's work began: nothing to report
                raise
            raise IndexInterrupted(finish_summary(summary, t_start)) from e
        warn_if_budget_unused(writer, memory_budget)
        warn_if_changed(model, writer)
    return finish_summary(summary, t_start)


def warn_if_budget_unused(writer: IndexWriter, memory_budget: int | None) -> None:
    """A warning when the run was given a memory budget (bytes) that the index does not use
    now: the index type is chosen at a commit that changes vectors, and this run made none."""
    held = writer.meta.get("memory_budget")
    if memory_budget is None or held == memory_budget:
        return
    from indexer.write import human_size
    log.warning("--memory-budget %s was not applied: the index type is chosen when a run adds, changes "
                "or removes files, and this one did none of that; the index keeps %s. Give it again "
                "on such a run", human_size(memory_budget),
                f"its budget of {human_size(held)} (`soundsift info`)" if held else "the budget it was built with")


def left_failing(plan: Diff, scanned: ScanResult, not_retried: frozenset[str]) -> tuple[Diff, set[str]]:
    """``plan`` without the files of ``not_retried`` (failed before, unchanged since: a watch's
    cycle leaves them for the file to change), and the paths among them this walk met (files or
    entries it could not use), whose error rows stay; one line says how many there are."""
    if not not_retried:
        return plan, set()
    kept = ({f.path for f in plan.new + plan.changed} | {e.path for e in scanned.errors}) & not_retried
    if not kept:
        return plan, kept
    log.info("%s that failed before and did not change since %s not tried again (`soundsift info` lists "
             "%s; %s tried when %s, or by a run without --watch)", count(len(kept), "file"),
             *(("is", "it", "it is", "it changes") if len(kept) == 1 else ("are", "them", "each is", "it changes")))
    return Diff(new=[f for f in plan.new if f.path not in kept], changed=[f for f in plan.changed if f.path not in kept],
                deleted=plan.deleted, unchanged=plan.unchanged), kept


def check_new_index_location(layout: IndexLayout) -> None:
    """:class:`IndexLocationTaken` unless a new index can live at ``layout.root``: a new or
    empty folder, or one holding only soundsift's own files (a run stopped before its catalog).

    An index written among the user's files would mix with them, and a later ``--rebuild``,
    which replaces the whole folder, would refuse it.
    """
    root = layout.root
    if root.exists() and not root.is_dir():
        raise IndexLocationTaken(f"{root} is a file, not an index folder; choose another --index")
    blocking = next((p for p in root.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise IndexLocationTaken(f"{root} cannot be made: {blocking} is a file, not a folder "
                                 "(check --index and $SOUNDSIFT_INDEX_HOME)")
    foreign = layout.foreign_entries() if root.is_dir() else []
    if foreign:
        names = ", ".join(p.name for p in foreign[:3]) + (" …" if len(foreign) > 3 else "")
        raise IndexLocationTaken(f"{root} is a folder that is not a soundsift index (it holds {names}); "
                                 "a new index needs a new or empty folder. No index was created")


def changed_since_scan(f: ScannedFile) -> bool:
    """Whether the file the scan saw as ``f`` now has another size or time (gone: not this)."""
    now = state_now(f.path)
    return now is not None and now != f.state


def warn_of_dropped_notes(catalog: Engine, index: Path, plan: Diff, state: dict[str, tuple[int, int]],
                          replaced: dict[str, str] | None = None) -> None:
    """One warning naming the files this run drops (``plan.deleted``, rows of the catalog behind
    ``catalog``, of the index at ``index``) that carry the user's own tags or captions,
    or what an imported library sheet said of them (indexer.metadata_sheet), which leave the
    index with them, and the sheets to import again once the files are back; for a file that
    looks moved but could not be told apart from another of the same size, time and audio
    (indexer.moves), that it was; for one another indexed file was moved over (``replaced``: its
    path → that file's old path), that file."""
    deleted = list(plan.deleted)
    notes = catalog_users_notes(catalog, deleted)
    sheets = _sheets_of(catalog, deleted)
    if not notes and not sheets:
        return
    labelled = {path: notes.get(path, []) + [f"sheet {name or os.path.basename(sheet or '') or _NO_SHEET}"
                                             for name, sheet in sheets.get(path, [])]
                for path in sorted(set(notes) | set(sheets))}
    replaced = replaced or {}
    arrived = {(f.size, f.mtime_ns) for f in plan.new}
    shown = [f"{path} ({', '.join(labels[:5])}{' …' if len(labels) > 5 else ''})"
             + (f": overwritten by {replaced[path]}, moved there" if path in replaced
                else ": moved or renamed along with a file of the same size, time and audio, and could "
                     "not be told apart from it" if tuple(state[path]) in arrived else "")
             for path, labels in list(labelled.items())[:5]]
    n = len(labelled)
    what = ("your tags, captions or library-sheet descriptions" if notes and sheets
            else "your tags or captions" if notes else "descriptions from a library sheet")
    advice = []
    if notes:
        advice.append(f"Add {'your tags and captions' if sheets else 'them'} to the files where they are "
                      "now with `soundsift tags add`")
    if sheets:
        back = [source for path, found in sheets.items() if path not in replaced for source in found]
        if back:                # (an overwritten file's recording is gone: its row would describe the other)
            advice.extend(_reimport_advice(index, back))
        if len(back) < sum(map(len, sheets.values())):
            advice.append("A sheet row of a file that another was moved over now names that other "
                          "recording: edit or delete the row before importing its sheet again")
    log.warning("%s gone from the library carried %s, which leave the index with %s: %s%s. %s",
                count(n, "file"), what, "it" if n == 1 else "them", "; ".join(shown),
                f"; and {n - 5} more" if n > 5 else "", ". ".join(advice))


_NO_SHEET = "rows naming no sheet file"


def _reimport_advice(index: Path, sources: list[tuple[str, str | None]]) -> list[str]:
    """What to do about the dropped rows of the sheets ``sources`` (name, path): the `soundsift sheet
    import` of each sheet named; for rows naming none (written into the catalog by hand, not by an
    import), that they cannot be imported again."""
    named = sorted({path or name for name, path in sources if path or name})
    advice = []
    if named:
        advice.append(f"Import {'the sheet' if len(named) == 1 else 'the sheets'} again once the files are back, "
                      "and they are described again: "
                      + "; ".join(f"`soundsift sheet import {shlex.quote(sheet)} --index "
                                  f"{index_option(index)}`" for sheet in named[:3])
                      + (f" (and {count(len(named) - 3, 'other sheet')})" if len(named) > 3 else ""))
    if any(not (path or name) for name, path in sources):
        advice.append("The sheet rows naming no sheet file cannot be imported again: no sheet file is recorded "
                      "for them (they were written into the catalog by hand, not by `soundsift sheet import`)")
    return advice


def _sheets_of(catalog: Engine, paths: list[str]) -> dict[str, list[tuple[str, str | None]]]:
    """Indexed path → the library sheets (name, path) that describe it, for each of ``paths``
    that one does (indexer.metadata_sheet.sheets_describing)."""
    if not paths:
        return {}
    from indexer.metadata_sheet import sheets_describing
    with Session(catalog) as s:
        return sheets_describing(s, paths)


def moved_near_cue_sheets(writer: IndexWriter, moves: Sequence[Move], cue_folders: set[str]) -> bool:
    """Whether a moved file may have another sidecar cue sheet at its new path than the one its
    takes were cut with (engine.cue_sheet): its new folder holds a sheet, or it was cut with one."""
    if not moves:
        return False
    if any(os.path.dirname(m.new) in cue_folders for m in moves):
        return True
    cut_with = cut_with_cue_sheets(writer)
    return any(m.old in cut_with for m in moves)


def log_silence(summary: IndexSummary) -> None:
    """One line saying how many segments of digital silence the run left out, and how many files
    are silence throughout (each kept as its first segment), if any."""
    said = []
    if summary.silent_left_out:
        said.append(f"{count(summary.silent_left_out, 'silent segment')} left out of files with sound elsewhere")
    if summary.files_of_silence:
        n = summary.files_of_silence
        said.append(f"{count(n, 'file')} of digital silence throughout, {'kept' if n == 1 else 'each kept'} as "
                    "its first segment")
    if said:
        log.info("%s (all digital silence: engine.segments.SILENT_PEAK)", "; ".join(said))


def finish_summary(summary: IndexSummary, t_start: float) -> IndexSummary:
    """Count the failures :func:`index_into` left on the summary and fill in the speed figures."""
    summary.failed = len(summary.errors)
    summary.seconds = time.perf_counter() - t_start
    processed = summary.added + summary.updated + summary.failed
    summary.files_per_second = processed / summary.seconds if summary.seconds else 0.0
    summary.x_realtime = summary.audio_seconds / summary.seconds if summary.seconds else 0.0
    return summary


def reencode_candidates(writer: IndexWriter, plan: Diff, meta: dict[str, Any],
                        arrived: Sequence[ScannedFile] = ()) -> tuple[Pairing, list[Reencode]]:
    """The deleted and new files of ``plan`` that may be one file converted in place
    (indexer.reencodes.candidates), with the old files' lengths and stored file vectors; none
    where the index holds another model's vectors (they cannot be compared). ``arrived``: files a
    ``--watch``'s earlier runs added lately (unchanged in ``plan``), new files as well for the
    rule; their pairs are decided now, on the two stored vectors, and the second value lists those
    taken for one recording (the rest are a deleted file and an indexed one)."""
    pairs = candidates(plan.deleted, list(plan.new) + list(arrived)) if plan.deleted and (plan.new or arrived) else {}
    if not pairs or not same_vectors(writer, meta):
        return Pairing({}, {}, {}), []
    earlier = {f.path for f in arrived}
    late = {new: old for new, old in pairs.items() if new in earlier}
    olds = sorted(pairs.values())
    headers = writer.headers(olds + sorted(late))
    vectors = writer.file_vectors(olds + sorted(late), int(meta["dim"]))
    seconds = {p: h.duration for p, h in headers.items()}
    taken = [Reencode(old, new) for new, old in sorted(late.items())
             if new in seconds and new in vectors
             and same_recording(seconds.get(old, -1.0), vectors.get(old), seconds[new], vectors[new][None])]
    now = {new: old for new, old in pairs.items() if new not in earlier}
    return Pairing(now, {p: seconds[p] for p in now.values() if p in seconds},
                   {p: vectors[p] for p in now.values() if p in vectors}), taken


def same_vectors(writer: IndexWriter, meta: dict[str, Any]) -> bool:
    """Whether the index holds vectors of the run's model (``meta``), comparable with its own."""
    return all(writer.meta.get(k) == meta[k] for k in ("model_fingerprint", "dim"))


def kept_for_reencodes(writer: IndexWriter, plan: Diff, arrived: Sequence[str], across: AcrossRuns | None,
                       meta: dict[str, Any]) -> list[str]:
    """The deleted files of ``plan`` that a ``--watch`` (``across``) keeps indexed for a while: those
    carrying the user's tags, captions or library-sheet rows whose name no new file of the run (nor
    one ``arrived`` lately) has (indexer.reencodes.unmatched), unless their time is up; a file of
    their name arriving in a later run takes them as a conversion in place. None in a plain run."""
    if across is None or not plan.deleted or not same_vectors(writer, meta):
        return []
    waiting = [p for p in unmatched(plan.deleted, [f.path for f in plan.new] + list(arrived))
               if p not in across.let_go]
    if not waiting:
        return []
    noted = set(writer.users_notes(waiting)) | set(_sheets_of(writer.engine, waiting))
    return [p for p in waiting if p in noted]


def copies_of_indexed(writer: IndexWriter, plan: Diff, retake: set[str], state: dict[str, tuple[int, int]],
                      meta: dict[str, Any]) -> tuple[list[IndexedFile], set[str], dict[str, str]]:
    """The new and changed files of ``plan`` with the audio of a file it keeps as indexed (hard
    links and identical copies; indexer.same_file), each as that file is indexed, so nothing is
    embedded again; the paths of those that are copies rather than other names of its file; and
    each one's path → the indexed path it is a copy of. None where the index cannot give its
    vectors back exactly or holds another model's."""
    if not plan.unchanged or not writer.copies_read_exactly() or any(
            writer.meta.get(k) != meta[k] for k in ("model_fingerprint", "dim", "segment_policy")):
        return [], set(), {}
    arrived = [f for f in plan.new + plan.changed if f.path not in retake]
    found, copies = indexed_names(arrived, {p: state[p] for p in plan.unchanged},
                                  lambda paths: {p: h.fingerprint for p, h in writer.headers(paths).items()})
    if not found:
        return [], set(), {}
    said = []
    if links := len(found) - len(copies):
        said.append(f"{count(links, 'new name')} of files indexed under another (hard links)")
    if copies:
        said.append(f"{count(len(copies), 'identical copy', 'identical copies')} of indexed files")
    log.info("%s: their rows and vectors are copied", " and ".join(said))
    by_path = {f.path: f for f in arrived}
    return writer.indexed_copies([(indexed, by_path[path]) for path, indexed in sorted(found.items())],
                                 int(meta["dim"])), copies, found


@dataclass
class _Stage:
    """Where a run is: the warning of a run interrupted there says what was kept, and what is left."""

    doing: str = ""                     # "": scanning, embedding or committing its own files; else
                                        # "silence" or "loudness", a pass over files indexed before
    times: Callable[[], dict[str, float]] | None = None    # the time per stage so far (set by _run)


def index_into(writer: IndexWriter, paths: Sequence[str | Path], model: AudioTextModel,
               opts: RunOptions, summary: IndexSummary, *,
               keep_on_interrupt: bool = True, plan_logged: bool = False) -> dict[str, str]:
    """Scan, decode, embed and commit ``paths`` into the open ``writer``, then bring the files it
    holds from older versions up to date (silence, loudness); returns the failures (path → reason),
    which ``summary.errors`` also lists, interrupted or not.

    Fills in ``summary`` (counts, timings, generation, totals, errors). ``keep_on_interrupt``:
    Ctrl-C (or SIGTERM: :mod:`indexer.interrupts`) anywhere in the run commits the files already
    embedded (a pass over older files commits what it did), fills in ``summary`` as the index now
    is (``interrupted`` true) and says so in one warning before it propagates (False: it propagates
    at once, ``summary`` given only ``interrupted``, the time of the stages that ran and the
    failures; a rebuild throws its unfinished index away anyway). ``plan_logged``: the caller
    said what the run embeds (a rebuild, counted against the index it replaces), so the line
    counting against ``writer``'s is debug detail.
    """
    failures: dict[str, str] = {}
    stage = _Stage()
    with remembered() as interrupt:     # for the whole run: a swallowed Ctrl-C, and SIGTERM, in every stage
        try:
            _run(writer, paths, model, opts, summary, failures, stage, interrupt, keep_on_interrupt, plan_logged)
        except KeyboardInterrupt:
            if keep_on_interrupt:
                say_kept(writer, summary, failures, stage)
            else:               # a rebuild: its summary still gives the stages that ran (indexer.rebuild)
                summary.interrupted = True
                if stage.times is not None:
                    summary.timings = stage.times()
                summary.errors = [{"path": p, "reason": r} for p, r in failures.items()]
            raise
    return failures


def say_kept(writer: IndexWriter, summary: IndexSummary, failures: dict[str, str], stage: _Stage) -> None:
    """Fill in ``summary`` for a run interrupted in ``stage`` (its commits done): what the index now
    holds, ``interrupted`` true; and one warning saying so, and what the next run does."""
    summary.interrupted = True
    if stage.times is not None:
        summary.timings = stage.times()
    summary.errors = [{"path": p, "reason": r} for p, r in failures.items()]
    summary.generation = writer.generation
    summary.totals = dict(writer.meta.get("counts", {}))
    if stage.doing == "silence":
        during = (f" while looking for digital silence in files indexed before it was left out (judged in "
                  f"{count(summary.silence_judged, 'file')}, {count(summary.silent_segments_dropped, 'stored segment')} "
                  "dropped: kept)")
        rest = "judge the rest"
    elif stage.doing == "loudness":
        during = (" while measuring the loudness of files indexed before it was measured "
                  f"({count(summary.levels_measured, 'file')} measured: kept)")
        rest = "measure the rest"
    else:
        during, rest = "", "index the rest"
    log.warning("interrupted%s: %s now holds %s (generation %d); run the same command again to %s",
                during, writer.layout.root, count(summary.totals.get("files", 0), "file"), writer.generation, rest)


def _run(writer: IndexWriter, paths: Sequence[str | Path], model: AudioTextModel, opts: RunOptions,
         summary: IndexSummary, failures: dict[str, str], stage: _Stage, interrupt: Interrupted,
         keep_on_interrupt: bool, plan_logged: bool) -> None:
    """:func:`index_into`'s stages, ``stage`` kept up to date, ``interrupt`` checked between them;
    ``failures`` filled in as files fail."""
    layout = writer.layout
    workers, batch_size = opts.workers, opts.batch_size
    checkpoint_files, checkpoint_seconds, progress = (opts.checkpoint_files,
                                                      opts.checkpoint_seconds, opts.progress)
    timings = {k: 0.0 for k in STAGES}
    timings["decode_wait"] = 0.0
    batcher: SegmentBatcher | None = None

    def times() -> dict[str, float]:
        """The time per stage so far, as the summary gives it: of the stages that ran, a run
        interrupted too (say_kept), its stage cut short counted to now."""
        if not timings["scan"]:                 # interrupted while scanning
            timings["scan"] = time.perf_counter() - scan_started
        timings["embed"] = batcher.seconds if batcher is not None else 0.0
        timings["write"] = writer.seconds
        timings["index_tuning"] = writer.retrain_seconds      # part of "write"
        return {k: round(v, 4) for k, v in timings.items()}
    policy = SegmentPolicy(window=float(model.window_seconds))
    meta = model_meta(model)
    summary.model, summary.model_fingerprint = meta["model_name"], model.fingerprint
    summary.workers = workers

    # stage 1: scan and diff
    t = scan_started = time.perf_counter()
    stage.times = times
    roots = [normalize_root(p) for p in paths]
    scanned = opts.scanned if opts.scanned is not None else scan(paths)
    unlisted = [normalize_root(e.path) for e in scanned.errors if e.folder]
    # a root that is gone (an unmounted drive, a typo) is reported, never read as "all deleted"
    unlisted += [r for r in roots if not os.path.lexists(r)]
    unlisted += scanned.held            # still being written (indexer.watch): next time
    state = writer.catalog_state()
    walked_roots = [walked_root(p) for p in paths]
    linked = link_scope(writer.meta, walked_roots, roots, scanned.links)
    plan = diff(state, scanned.files, roots + linked.targets, keep_under=unlisted)
    plan, kept_failing = left_failing(plan, scanned, opts.not_retried)
    # a changed path may be one of two files that swapped names, or hold a file moved over it
    # (indexer.moves): both sides are tried
    moves = (find_moves_among_changed(plan.deleted, plan.new, plan.changed, state,
                                      writer.headers(plan.deleted + [f.path for f in plan.changed]))
             if plan.new or (plan.changed and plan.deleted) or len(plan.changed) > 1 else [])
    # a path a file was moved over (`mv a b` onto an indexed b): b's recording is gone, its row goes
    replaced = overwritten(moves, plan.changed)
    if moves:                   # moved or renamed: the catalog rows follow, nothing is embedded again
        moved_old, moved_new = {m.old for m in moves}, {m.new for m in moves}
        plan = Diff(new=[f for f in plan.new if f.path not in moved_new],
                    changed=[f for f in plan.changed if f.path not in moved_new],
                    deleted=sorted([p for p in plan.deleted if p not in moved_old] + list(replaced)),
                    unchanged=plan.unchanged)
    elif plan.new:
        moved_root_hint(state, plan.new, roots, layout.root)
    # a file converted in place (rain_01.wav → rain_01.flac): its old row stays until the new one is
    # embedded and taken for the same recording, or not (indexer.reencodes)
    # (a --watch: also with a file one of its runs added lately, or in a later run: indexer.reencodes)
    across = opts.across
    arrived = ([scanned.files[p] for p in plan.unchanged if p in across.arrived and p in scanned.files]
               if across is not None else [])
    reencoding, late = reencode_candidates(writer, plan, meta, arrived)
    paired_olds = set(reencoding.olds.values()) | {r.old for r in late}
    # (a path a file was moved over is no conversion's original: its row goes as the move lands)
    not_kept = paired_olds | set(replaced)
    kept = kept_for_reencodes(writer, Diff(new=plan.new, changed=[], unchanged=[], deleted=[
        p for p in plan.deleted if p not in not_kept]), [f.path for f in arrived], across, meta)
    paired_olds |= set(kept)                # rows staying for now: removed by no deletion of this run
    if paired_olds:
        plan = Diff(new=plan.new, changed=plan.changed, unchanged=plan.unchanged,
                    deleted=[p for p in plan.deleted if p not in paired_olds])
    if across is not None:
        across.kept[:] = kept
    summary.kept_for_reencode = len(kept)
    old_errors = [p for p in writer.error_paths()
                  if under_roots(p, roots) and not under_roots(p, unlisted)]
    timings["scan"] = time.perf_counter() - t
    interrupt.check()           # a Ctrl-C whose KeyboardInterrupt a finaliser swallowed
    summary.unchanged = len(plan.unchanged)
    summary.skipped, summary.skipped_folders = dict(scanned.skipped), list(scanned.skipped_folders)
    summary.sheets_not_imported = sheets_not_imported(writer.engine, scanned.spreadsheets)
    if scanned.skipped:
        log.info("not scanned: %s", describe_skipped(scanned.skipped, scanned.skipped_folders))
    retried = len(set(old_errors) & {f.path for f in plan.new})
    log.log(logging.DEBUG if plan_logged else logging.INFO,
            "%s: %d new%s, %d changed, %d deleted, %d moved, %d unchanged, %s", layout.root,
            len(plan.new) - retried, f" (and {retried} that failed before, tried again)" if retried else "",
            len(plan.changed), len(plan.deleted) + len(reencoding) + len(late), len(moves), len(plan.unchanged),
            count(len(scanned.errors), "unusable entry", "unusable entries"))

    warn_of_dropped_notes(writer.engine, layout.root, plan, state, replaced)
    moves_done = moved_near_cue_sheets(writer, moves, scanned.cue_folders())
    if moves_done:              # at their new paths first: their sidecar cue sheets are looked at there
        summary.generation = writer.commit(Changes(remove=sorted(replaced), moves=moves), meta)
        summary.commits += 1
        summary.moved, summary.removed = len(moves), len(replaced)
    # files indexed before the metadata reader learnt more (iXML …): read theirs again, once
    busy = ({f.path for f in plan.new} | {f.path for f in plan.changed} | set(plan.deleted)
            | paired_olds)
    summary.metadata_reread = refresh_metadata(writer, busy, {} if moves_done else {m.old: m.new for m in moves})
    # a sidecar cue sheet added, edited or removed beside an unchanged file: cut its takes again
    retake = set(files_with_changed_cue_sheets(writer, set(plan.unchanged), scanned.cue_folders()))
    if retake:
        log.info("%s %s a cue sheet that is new or changed since %s indexed: embedding %s again",
                 count(len(retake), "unchanged file"), *(("has", "it was", "it") if len(retake) == 1
                                                          else ("have", "they were", "them")))
    # a file moved away from its cue sheet, or beside one that names it: cut its takes again
    resheeted = (set(files_with_changed_cue_sheets(writer, {m.new for m in moves}, scanned.cue_folders()))
                 if moves_done else set())
    if resheeted:
        log.info("%s %s another cue sheet at %s new place (or none): embedding %s again",
                 count(len(resheeted), "moved file"), *(("has", "its", "it") if len(resheeted) == 1
                                                        else ("have", "their", "them")))
        retake |= resheeted
    # files indexed before their marked takes were cut (session 22): embed them again, once
    missing = set(files_missing_takes(writer, set(plan.unchanged) - retake, policy, int(model.sample_rate)))
    if missing:
        log.info("%s %s named markers whose takes get segments of their own since this version: "
                 "embedding %s again", count(len(missing), "unchanged file"),
                 *(("has", "it") if len(missing) == 1 else ("have", "them")))
        retake |= missing
    if retake:
        plan = Diff(new=plan.new, changed=sorted(plan.changed + [scanned.files[p] for p in retake],
                                                 key=lambda f: f.path),
                    deleted=plan.deleted, unchanged=[p for p in plan.unchanged if p not in retake])
        summary.unchanged = len(plan.unchanged)

    pending = (Changes(remove=[p for p in plan.deleted if p not in replaced]) if moves_done
               else Changes(remove=list(plan.deleted), moves=moves))
    committed = committed_counts(summary)   # the counts as the index holds them (updated by each commit)
    summary.removed = len(plan.deleted)
    summary.moved = len(moves)          # committed with the run's first commit (a Ctrl-C from here on makes it)
    if late:                            # converted in place, its new file added by an earlier --watch run
        pending.absorb.update({r.old: r.new for r in late})
        summary.updated += len(late)
        summary.reencoded += len(late)
        summary.reencoded_files += [{"old": r.old, "new": r.new} for r in late]
        for r in late:
            log.debug("%s was re-encoded as %s (indexed in an earlier run): its tags, captions and library-sheet "
                      "rows go with it", r.old, r.new)

    def let_go(path: str) -> None:
        """New file ``path`` of a candidate re-encode is not embedded: the old file is a deleted one."""
        if (old := reencoding.let_go(path)) is not None:
            gone(old)

    def gone(old: str) -> None:
        warn_of_dropped_notes(writer.engine, layout.root, Diff(new=[], changed=[], deleted=[old], unchanged=[]), state)
        pending.remove.append(old)
        summary.removed += 1

    def fail(path: str, reason: str) -> None:
        log.warning("skipped %s: %s", path, reason)
        failures[path] = reason
        pending.errors[path] = reason
        let_go(path)
        if opts.on_failure is not None:
            opts.on_failure(path, reason)

    last_commit = time.perf_counter()
    commit_cost = 0.0

    def commit() -> None:
        nonlocal pending, last_commit, commit_cost
        last_commit_started = time.perf_counter()
        before = writer.generation
        try:
            summary.generation = writer.commit(pending, meta)
        except BaseException:
            if writer.generation != before:     # interrupted after the catalog committed
                pending = Changes()
                committed.update(committed_counts(summary))
            raise
        summary.commits += 1
        pending = Changes()
        committed.update(committed_counts(summary))
        now = time.perf_counter()
        commit_cost, last_commit = now - last_commit_started, now

    def finish(job: int) -> None:
        w = work.pop(job)
        order = sorted(w.bounds)
        vectors = (np.stack([w.vectors[i] for i in order]) if order
                   else np.zeros((0, model.dim), np.float32))
        segments = [w.bounds[i] for i in order]
        summary.n_segments += len(order)
        summary.silent_left_out += w.silent_left_out
        summary.files_of_silence += w.silent
        summary.audio_seconds += w.duration
        record(job, w, w.info, w.duration, segments, vectors)
        for other in names.pop(job, ()):        # its other names: the same audio, rows of their own
            o = work.pop(other)
            record(other, o, dataclasses.replace(w.info, path=o.scanned.path), w.duration, segments, vectors)
            if other in identical_jobs:
                summary.same_audio += 1
            else:
                summary.same_file += 1

    def record(job: int, w: _Work, info: AudioInfo, duration: float, segments: list[tuple[float, float]],
               vectors: np.ndarray) -> None:
        """Queue the file of ``job`` (``w``) for the next commit, as decoded and embedded."""
        pending.add.append(IndexedFile(w.scanned.path, w.scanned.size, w.scanned.mtime_ns,
                                       info, duration, segments, vectors))
        if changed_since_scan(w.scanned):
            log.warning("%s changed while it was being indexed (still being written?): it is indexed as it "
                        "was read, and the next run indexes it again (`--watch` waits for such files)",
                        w.scanned.path)
        pair = reencoding.decide(w.scanned.path, duration, vectors)
        if w.changed:               # the user's tags and captions stay (all of them, for the same audio)
            pending.keep[w.scanned.path] = w.same_audio
            summary.updated += 1
        elif pair is not None and pair[1]:      # converted in place: it takes the old file's tags, captions, sheet rows
            pending.remove.append(pair[0])
            pending.inherit[w.scanned.path] = pair[0]
            summary.updated += 1
            summary.reencoded += 1
            summary.reencoded_files.append({"old": pair[0], "new": w.scanned.path})
            log.debug("%s was re-encoded as %s: its tags, captions and library-sheet rows stay with it",
                      pair[0], w.scanned.path)
        else:
            summary.added += 1
            if across is not None:
                across.added.append(w.scanned.path)
            if pair is not None:    # another recording under the name after all
                gone(pair[0])
        shown.done(job, w.scanned.size)

    def deliver(pairs: Iterable[tuple[tuple[int, int], np.ndarray]]) -> None:
        for (job, idx), vec in pairs:
            w = work.get(job)
            if w is None:           # the file failed after some segments were queued
                continue
            w.vectors[idx] = vec
            if w.header_seconds > 0:
                shown.reached(job, w.scanned.size, w.bounds[idx][1] / w.header_seconds)
            if w.ready:
                finish(job)

    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm
    stack = contextlib.ExitStack()      # the progress bar and the decoders, closed when the files are done
    copied_from: dict[str, str] = {}
    try:
        for e in scanned.errors:
            if e.path not in kept_failing:
                fail(e.path, e.reason)

        # a new name or copy of a file this run keeps indexed under another (a hard link made since): copied
        copies, identical, copied_from = copies_of_indexed(writer, plan, retake, state, meta)
        if copies:
            copied, was_indexed = {f.path for f in copies}, {f.path for f in plan.changed}
            pending.add += copies
            pending.keep.update({path: False for path in copied & was_indexed})    # the user's tags stay
            summary.updated += len(copied & was_indexed)
            summary.added += len(copied - was_indexed)
            summary.same_file += len(copies) - len(identical)
            summary.same_audio += len(identical)
            plan = Diff(new=[f for f in plan.new if f.path not in copied],
                        changed=[f for f in plan.changed if f.path not in copied],
                        deleted=plan.deleted, unchanged=plan.unchanged)

        # smallest first: a few hour-long recordings no longer hold every short file behind them, so the
        # progress bar moves, the first checkpoint holds many files and Ctrl-C keeps them
        changed_paths = {f.path for f in plan.changed}
        todo = sorted(plan.new + plan.changed, key=lambda f: (f.size, f.path))
        for path in sorted(set(reencoding.olds) - {f.path for f in todo}):     # copies of indexed files
            let_go(path)
        work = {i: _Work(f, changed=f.path in changed_paths, same_audio=f.path in retake) for i, f in enumerate(todo)}
        # other names of one file on disk (hard links) and copies of it: decoded and embedded under the first only
        names, identical_jobs = other_names(todo)
        if progress and todo:
            stack.enter_context(logging_redirect_tqdm())   # warnings print above the bar
        bar = stack.enter_context(tqdm(total=sum(f.size for f in todo), unit="B", unit_scale=True, unit_divisor=1024,
                                       desc="indexing", file=sys.stderr, disable=not progress or not todo,
                                       dynamic_ncols=True))
        shown = AudioProgress(bar, len(todo))
        batcher = SegmentBatcher(model, batch_size)
        followers = {j for others in names.values() for j in others}
        jobs = [DecodeJob(i, f.path) for i, f in enumerate(todo) if i not in followers]
        events = stack.enter_context(contextlib.closing(iter_decoded(
            jobs, int(model.sample_rate), policy, workers=workers, queue_size=max(2 * batch_size, 4 * max(1, workers)))))
        while True:
            interrupt.check()       # a Ctrl-C whose KeyboardInterrupt a finaliser swallowed
            t = time.perf_counter()
            ev = next(events, None)
            timings["decode_wait"] += time.perf_counter() - t
            if ev is None:
                break
            if isinstance(ev, SegmentReady):
                work[ev.job].bounds[ev.index] = (ev.start, ev.end)
                work[ev.job].header_seconds = ev.of
                work[ev.job].silent |= ev.silent
                deliver(batcher.add((ev.job, ev.index), ev.waveform))
                continue
            timings["decode"] += ev.stats.get("decode", 0.0)
            timings["resample"] += ev.stats.get("resample", 0.0)
            if isinstance(ev, FileDecoded):
                w = work[ev.job]
                for note in ev.notes:
                    log.warning("%s: %s", w.scanned.path, note)
                w.info, w.n_segments, w.duration = ev.info, ev.n_segments, ev.duration
                w.silent_left_out = ev.silent_left_out
                if w.ready:
                    finish(ev.job)
            elif isinstance(ev, FileFailed):
                first = work[ev.job].scanned.path
                for note in ev.notes:
                    log.debug("%s: the decoder also said: %s", first, note)
                for job in [ev.job, *names.pop(ev.job, ())]:     # its other names read no better
                    w = work.pop(job)
                    fail(w.scanned.path, said_of(ev.reason, first, w.scanned.path))
                    if w.changed:       # indexed before: nothing is lost for a file that reads badly now
                        log.warning("%s: its earlier index entry (vectors, tags, captions) stays until it "
                                    "reads again; the next run tries it again", w.scanned.path)
                    shown.done(job, w.scanned.size)
            n_done = len(pending.add) + len(pending.errors)
            if n_done and checkpoint_due(n_done, time.perf_counter() - last_commit, commit_cost,
                                         checkpoint_files, checkpoint_seconds):
                commit()
        deliver(batcher.flush())
        stack.close()
        if work:   # every job reports exactly once; anything left is a bug, not a bad file
            raise RuntimeError(f"{count(len(work), 'file')} neither indexed nor failed; please report this")
        log_silence(summary)
        pending.clear_errors = [p for p in old_errors if p not in failures and p not in kept_failing]
        if pending or not writer.meta.get("vectors_file"):   # a new index gets its first generation
            commit()
    except KeyboardInterrupt:
        # Ctrl-C: keep what is finished. The files already embedded (and the files removed,
        # moved, copied) are committed as one more generation (a second Ctrl-C during that
        # commit leaves the previous generation intact: a commit is atomic); the rest waits for
        # the next run. index_into says what the index holds.
        if not keep_on_interrupt:
            raise
        stack.close()
        try:
            if pending:
                commit()
        finally:
            if pending:     # a second Ctrl-C during that commit: the files queued since the last are not in
                restore_counts(summary, committed)      # the index, and the summary does not count them
        raise
    finally:
        stack.close()
    if linked.changes(writer.meta):     # what the next run may drop under the links' targets
        writer.update_meta(**linked.meta())
    stage.doing = "silence"
    interrupt.check()
    # files indexed before their silence was left out (session 38) or judged (39): drop their stored
    # silent segments, once, by decoding; those indexed before loudness was measured (session 20) have
    # it measured in the same decode, the rest below. Each commits what it did as it goes (a Ctrl-C too)
    # (a copy given an old file's rows is judged with it, from that file's decode: indexer.silence_refresh)
    present = set(plan.unchanged) | {m.new for m in moves}
    cores = min(16, os.cpu_count() or 1) if workers else 0     # nothing else runs now: every core decodes
    t = time.perf_counter()
    silence = SilenceRefresh()
    try:
        refresh_silence(writer, present, meta, policy, cores, progress, done=silence, same=copied_from)
    finally:
        summary.silence_judged, summary.silent_segments_dropped = silence.judged, silence.dropped
        summary.levels_measured = len(silence.levels)
        if silence.judged:                  # (a pass cut short by Ctrl-C too)
            timings["silence"] = time.perf_counter() - t
    stage.doing, levels = "loudness", LevelRefresh()
    interrupt.check()
    # files indexed before loudness was measured (session 20) and not measured above: once, by decoding
    t = time.perf_counter()              # (1.8× on 2 cores)
    try:
        refresh_levels(writer, present, cores, progress, done=levels, same=copied_from)
    finally:
        summary.levels_measured = len(silence.levels) + levels.stored
        if levels.stored:                   # (a pass cut short by Ctrl-C too)
            timings["loudness"] = time.perf_counter() - t
    summary.generation = writer.generation
    summary.totals = dict(writer.meta.get("counts", {}))
    summary.timings = times()
    summary.errors = [{"path": p, "reason": r} for p, r in failures.items()]
