"""``soundsift index PATH... --rebuild``: re-embed an index into a fresh one, then swap it in.

For a new model (or new weights of the same one) every vector has to be made again.
Holding the index's writer lock for the whole run (another writer gets IndexBusy):

1. refuse up front what the rebuild would lose: files of the index the walk of the given
   PATH... does not reach (it can only re-embed what it scans; a file reached through a
   symbolic link is kept by its resolved path, outside them: indexer.links), entries of the
   index folder that soundsift did not write (the folder is replaced as a whole);
2. build a complete index in the sibling folder ``<index>.rebuild-<pid>``, with the same
   stages and checkpoints as any run; its generations continue the old index's numbers,
   so a reader holding the old one open sees a new generation, never a same-named file;
3. carry over the tags and captions of files whose identity (path, size, mtime_ns: see
   indexer.scan) is the same in both, and of files moved or renamed since the index was last
   run, found as an index run finds them (:func:`find_rebuild_moves`, indexer.moves), to their
   new paths (:func:`carry_over` says which rows), and of files converted in place since
   (``rain_01.wav`` → ``rain_01.flac``), paired by an index run's rule (:func:`find_rebuild_reencodes`:
   the new file embedded with the old index's model, compared with the old file's stored
   vectors), to the new file; refuse when files the index holds could not
   be read this time (:func:`_refuse_unread`: an index run keeps their entries until they read
   again, a rebuild would drop them with the user's tags): before anything is embedded when a
   header does not open (:func:`refuse_unreadable_headers`), else at the first such file that
   fails to decode, the rest not embedded; the files really deleted since that carried the
   user's notes are named in one warning before embedding, as an index run names them
   (indexer.runner.warn_of_dropped_notes);
4. swap: exchange the two folders in one atomic step (indexer.swap: Linux renameat2), so
   the index path always holds a complete index, and rename the old one, now at the
   temporary path, to ``<index>.replaced-<pid>``; where the exchange is not available,
   rename the index to ``<index>.replaced-<pid>`` and the new one into its place. Then
   delete the old one. The new folder's own lock is held across the swap too.

Until the swap the old index is complete, untouched and searchable. An exception or
Ctrl-C before it removes the temporary folder and leaves the old index as it was (the
error says so). A Ctrl-C during the swap is held until the swap has finished, then the
rebuild completes and the interrupt is raised with a warning that the rebuilt index is in
place (in the main thread, where a SIGINT handler can be installed). A process killed
outright (SIGKILL, power loss) leaves the temporary folder behind; the next run that writes
that index (an index run, a rebuild: :func:`remove_stale_siblings`) removes it.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from engine.audio import probe
from engine.catalog import Caption, ErrorRow, File, FileMetadata, Tag, catalog_session, get_meta, has_table
from engine.errors import IndexBusy, IndexNotFound, RebuildFailed, SoundsiftError, UnreadableAudio
from engine.ffmpeg_audio import FFMPEG_UNAVAILABLE
from engine.file_metadata import SHEET_PREFIX
from engine.layout import IndexLayout
from engine.models.base import AudioTextModel
from engine.durable import fsync_dir
from engine.wording import count
from indexer.metadata_sheet import sheets_not_imported
from indexer.moves import Move, find_moves_among_changed, overwritten
from indexer.reencodes import Reencode, candidates, same_recording
from indexer.scan import Diff, ScanResult, diff, kept_by_name, normalize_root, scan, under_roots
from indexer.swap import exchange_paths
from indexer.write import (DERIVED_CAPTION_SOURCES, DERIVED_TAG_SOURCES, IndexWriter, WriterLock, catalog_headers,
                           human_size)

log = logging.getLogger(__name__)

#: tag sources computed by a CLAP model (zero-shot tags of `soundsift caption --source
#: model|both`): the previous model's opinion, not carried over into a re-embedded index
MODEL_TAG_SOURCES = frozenset({"zeroshot"})
#: caption sources generated from the file's tags (BLAT): not carried over when those
#: tags included model tags (a caption run replaces a file's tags and captions together)
TAG_CAPTION_SOURCES = frozenset({"blat"})

#: how a file's failure reason begins when no file was at fault but the decoder: the decoder
#: processes did not start (indexer.decode.DecodePool's wording), or FFmpeg could not be loaded
#: (engine.ffmpeg_audio.FFmpegUnavailable)
DECODER_FAULTS = ("decoder processes could not start", FFMPEG_UNAVAILABLE)
#: files whose headers the up-front check reads at once: I/O bound, so a cold or network disk
#: answers several reads at a time (benchmarks/rebuild_header_check.py)
HEADER_THREADS = 8
#: from this many indexed files on, the header check says when it starts (a pause explained)
HEADER_NOTICE = 2000

REBUILD_SUFFIX = ".rebuild-"
REPLACED_SUFFIX = ".replaced-"


@dataclass
class _OldIndex:
    """What the rebuild needs to know of the index it replaces."""

    meta: dict[str, Any]
    files: dict[str, tuple[int, int]]       # path → (size, mtime_ns)
    errors: list[str]                       # paths of its error rows (files that failed)

    @property
    def generation(self) -> int:
        return int(self.meta.get("generation", 0))

    def describe(self) -> str:
        return (f"model {self.meta.get('model_name', '?')!r}, {count(len(self.files), 'file')}, "
                f"generation {self.generation}")


def rebuild_index(paths: Sequence[str | Path], layout: IndexLayout,
                  model: AudioTextModel | str | Path | None, opts: Any,
                  memory_budget: int | None, t_start: float) -> Any:
    """Re-embed the audio under ``paths`` into a fresh index that replaces ``layout``'s.

    ``model``: None means ``engine.models.DEFAULT_MODEL`` (not the index's recorded model:
    moving to the current model is what a rebuild is for). ``opts`` is the runner's
    RunOptions. Returns the runner's IndexSummary with ``rebuild`` set. Raises IndexBusy
    when another process writes the index, RebuildFailed when the rebuild is refused or
    fails (the index is then unchanged), IndexInterrupted (a KeyboardInterrupt) on Ctrl-C once
    the run began, its summary saying so: the index unchanged (``swapped_in`` false), or, for a
    Ctrl-C during the swap (held until the swap is done), rebuilt (``swapped_in`` true).
    """
    from indexer.runner import IndexInterrupted, IndexSummary, finish_summary, index_into

    root = Path(os.path.realpath(layout.root))      # a linked index is rebuilt where it lives
    live = IndexLayout(root)
    summary = IndexSummary(index=str(layout.root), rebuild=True)
    with WriterLock(live.lock):
        old = _read_old(live)
        scanned = _refuse_losses(live, old, paths, opts.scanned)
        plan = _plan_against_old(old, paths, scanned)
        moves, replaced = find_rebuild_moves(live, old, plan)
        refuse_unreadable_headers(old, scanned, moves)          # before the model and hours of embedding
        opts = dataclasses.replace(opts, scanned=scanned,       # index_into walks no second time
                                   on_failure=_stop_at_unread(old, moves))
        model = _load(model)
        reencodes = find_rebuild_reencodes(live, old, plan, moves, model)
        _warn_of_dropped(layout.root, live, old, plan, moves, replaced, reencodes)     # as an index run warns
        summary.previous_model = str(old.meta.get("model_name") or "") or None     # None: not recorded
        summary.previous_model_fingerprint = str(old.meta.get("model_fingerprint") or "") or None
        remove_stale_siblings(root)
        tmp = root.with_name(f"{root.name}{REBUILD_SUFFIX}{os.getpid()}")
        try:
            tmp.mkdir()
        except OSError as e:
            raise RebuildFailed(f"cannot create {tmp} to rebuild {root} in ({e}); "
                                "nothing was changed") from e
        log.info("rebuilding %s (%s) with model %r in %s", root, old.describe(), model.name, tmp)
        log.info("%s", _plan_line(layout.root, old, scanned, moves, replaced, reencodes))
        writer = IndexWriter(IndexLayout(tmp), memory_budget=memory_budget,
                             after_generation=old.generation)
        try:
            writer.open()
            failures = index_into(writer, paths, model, opts, summary, keep_on_interrupt=False,
                                  plan_logged=True)
            _count_against(summary, old, writer, moves, replaced, reencodes)
            _refuse_unlisted(old, failures)
            _refuse_unread(old, failures, moves)
            summary.carried_over, summary.not_carried_over = carry_over(live, writer.engine, moves, reencodes)
            # index_into looked in the fresh catalog, before the imported sheets were carried over
            summary.sheets_not_imported = sheets_not_imported(writer.engine, scanned.spreadsheets)
            writer.close_catalog()
            with _sigint_held() as interrupted:
                aside = _swap(root, tmp)
        except KeyboardInterrupt as e:
            writer.close()
            log.warning("interrupted: the rebuild of %s was abandoned; %s. The index is "
                        "unchanged (%s)", root, _remove_tmp(tmp), old.describe())
            if not summary.timings:         # before the run's work began: nothing to report
                raise
            raise IndexInterrupted(finish_summary(_abandoned(summary, old), t_start)) from e
        except Exception as e:
            writer.close()
            raise RebuildFailed(
                f"rebuilding {root} failed ({type(e).__name__}: {e}); the index is unchanged "
                f"({old.describe()}) and {_remove_tmp(tmp)}") from e
        try:
            _remove_tree(aside)
        except OSError as e:        # the rebuild is done: say what is left, do not fail it
            log.warning("rebuilt %s, but the old index moved aside to %s could not be deleted "
                        "(%s); delete that folder by hand", root, aside, e)
        finally:
            writer.close()          # the lock of the new folder, held across the swap
    log.info("rebuilt %s with model %r: %s, %s and %s carried over",
             root, model.name, count(summary.totals.get("files", 0), "file"),
             count(summary.carried_over["tags"], "tag"), count(summary.carried_over["captions"], "caption"))
    summary.swapped_in = True
    if interrupted.is_set():            # the summary of the finished rebuild, which --json prints
        log.warning("interrupted during the swap, which was finished first: %s holds the rebuilt "
                    "index (model %r)", root, model.name)
        summary.interrupted = True
        raise IndexInterrupted(finish_summary(summary, t_start))
    return finish_summary(summary, t_start)


def _abandoned(summary: Any, old: "_OldIndex") -> Any:
    """``summary`` (the runner's IndexSummary) of a rebuild interrupted after its run began, its
    unfinished index thrown away: ``interrupted`` true, the index as it was (generation, totals),
    nothing added, updated, removed or committed; the time of the stages that ran and the
    failures stay."""
    from indexer.runner import QUEUED_COUNTS, restore_counts

    summary.interrupted = True
    restore_counts(summary, {k: type(getattr(summary, k))() for k in QUEUED_COUNTS})
    summary.commits = 0                 # its commits went to the folder thrown away
    summary.generation = old.generation
    summary.totals = dict(old.meta.get("counts", {}))
    return summary


@contextmanager
def _sigint_held() -> Iterator[threading.Event]:
    """Hold a Ctrl-C (SIGINT) that arrives in the block until the block has finished; the
    event yielded says whether one came. Only where a SIGINT would raise KeyboardInterrupt
    (Python's default handler, in the main thread, the only one that can install a handler);
    elsewhere (SIGINT ignored, another handler, another thread) the block runs as it is."""
    arrived = threading.Event()
    previous = signal.getsignal(signal.SIGINT)
    in_main = threading.current_thread() is threading.main_thread()
    if not in_main or previous is not signal.default_int_handler:
        yield arrived
        return
    signal.signal(signal.SIGINT, lambda signum, frame: arrived.set())
    try:
        yield arrived
    finally:
        signal.signal(signal.SIGINT, previous)


def carry_over(old: IndexLayout, new_engine: Engine, moves: Sequence[Move] = (),
               reencodes: Sequence[Reencode] = ()) -> tuple[dict[str, int], dict[str, int]]:
    """Copy tags and captions from the catalog of the index ``old`` to the one ``new_engine``
    (the rebuild's IndexWriter's, which it closes) writes; returns (carried, not carried).

    Rows of files with the same path, size and mtime_ns in both are candidates, and so are those of
    ``moves`` (files moved or renamed since: :func:`find_rebuild_moves`), at their new paths: every tag and
    caption is copied except the ones a CLAP model derived from the audio (tags whose source is
    in MODEL_TAG_SOURCES, and captions generated from them: TAG_CAPTION_SOURCES on a file that
    had such tags); `soundsift caption --index … --source model` makes them again with the new
    model. Everything else (YAMNet tags, the user's tags and captions, other sources) is copied:
    no rebuild recomputes it. A file edited in place since (the same path, another size or time)
    keeps the user's own rows only (indexer.write.DERIVED_*_SOURCES describe the old audio), as
    an index run does, unless another indexed file moved to its path (its recording is then gone:
    indexer.moves.overwritten); a deleted file's rows go. What an imported library sheet said of a
    file (its ``sheet:`` metadata rows, not counted) follows it as its tags do. ``reencodes``: files
    converted in place since (:func:`find_rebuild_reencodes`), whose rows go to their new file as a
    moved file's do. One transaction on the new catalog.
    """
    moved = {m.old: m.new for m in moves}
    converted = {r.old: r.new for r in reencodes}
    moved.update(converted)
    with catalog_session(old) as s:
        old_files = {fid: (p, size, mt) for fid, p, size, mt in
                     s.execute(select(File.id, File.path, File.size, File.mtime_ns))}
        tags = s.execute(select(Tag.file_id, Tag.label, Tag.score, Tag.source)).all()
        captions = s.execute(select(Caption.file_id, Caption.text, Caption.source)).all()
        sheets = (s.execute(select(FileMetadata.file_id, FileMetadata.key, FileMetadata.value)
                            .where(FileMetadata.key.like(SHEET_PREFIX + "%"))).all()
                  if has_table(s, "file_metadata") else [])
    gone = derived = 0          # rows not carried over: their file's content left / made by a model
    with Session(new_engine) as s, s.begin():
        rows = s.execute(select(File.id, File.path, File.size, File.mtime_ns)).all()
        new_ids = {(p, size, mt): fid for fid, p, size, mt in rows}
        by_path = {p: fid for fid, p, _, _ in rows}
        target = {fid: by_path.get(moved[key[0]]) if key[0] in moved else new_ids.get(key)
                  for fid, key in old_files.items()}
        taken = set(moved.values())         # paths another indexed file moved to: not edited in place
        edited = {fid: by_path[key[0]] for fid, key in old_files.items()      # the same path, other content
                  if target[fid] is None and key[0] in by_path and key[0] not in taken}
        model_tagged = {t.file_id for t in tags if t.source in MODEL_TAG_SOURCES}
        tag_rows, caption_rows = [], []
        for t in tags:
            new = target.get(t.file_id)
            if new is None and t.file_id in edited and t.source not in DERIVED_TAG_SOURCES:
                new = edited[t.file_id]
            elif new is None:
                gone += 1
                continue
            elif t.source in MODEL_TAG_SOURCES:
                derived += 1
                continue
            tag_rows.append({"file_id": new, "label": t.label, "score": t.score, "source": t.source})
        for c in captions:
            new = target.get(c.file_id)
            if new is None and c.file_id in edited and c.source not in DERIVED_CAPTION_SOURCES:
                new = edited[c.file_id]
            elif new is None:
                gone += 1
                continue
            elif c.source in TAG_CAPTION_SOURCES and c.file_id in model_tagged:
                derived += 1
                continue
            caption_rows.append({"file_id": new, "text": c.text, "source": c.source})
        if tag_rows:
            s.execute(insert(Tag), tag_rows)
        if caption_rows:
            s.execute(insert(Caption), caption_rows)
        follow = {fid: target[fid] or edited.get(fid) for fid in old_files}
        sheet_rows = [{"file_id": follow[fid], "key": key, "value": value} for fid, key, value in sheets
                      if follow.get(fid) is not None]          # what an imported library sheet said
        if sheet_rows:
            s.execute(insert(FileMetadata), sheet_rows)
    carried = {"tags": len(tag_rows), "captions": len(caption_rows)}
    followed = {target[fid] for fid, key in old_files.items()
                if key[0] in moved and key[0] not in converted and target[fid] is not None}
    if followed:
        log.info("%s moved or renamed since the index was last run kept %s at %s new %s",
                 count(len(followed), "file"), _tags_and_captions(tag_rows, caption_rows, followed),
                 *(("its", "path") if len(followed) == 1 else ("their", "paths")))
    took = {target[fid] for fid, key in old_files.items() if key[0] in converted and target[fid] is not None}
    if took:
        log.info("%s converted in place since the index was last run kept %s", count(len(took), "file"),
                 _tags_and_captions(tag_rows, caption_rows, took))
    dropped = {"tags": len(tags) - len(tag_rows), "captions": len(captions) - len(caption_rows)}
    if gone:
        log.info("%s of files deleted (or moved over by another) since %s made, or made from the audio of "
                 "files changed since, %s not carried over", count(gone, "tag or caption", "tags and captions"),
                 *(("it was", "was") if gone == 1 else ("they were", "were")))
    if derived:
        log.info("%s made by the previous model %s not carried over; `soundsift caption PATH... "
                 "--index … --source model` makes %s with the new one",
                 count(derived, "zero-shot tag or caption", "zero-shot tags and captions"),
                 *(("was", "it") if derived == 1 else ("were", "them")))
    return carried, dropped


def _tags_and_captions(tag_rows: Sequence[dict], caption_rows: Sequence[dict], files: set[int]) -> str:
    """How many of the carried tags and captions ``files`` have, each counted under its own name:
    "1 tag", "2 tags and 1 caption", "no tag or caption"."""
    tags = sum(r["file_id"] in files for r in tag_rows)
    captions = sum(r["file_id"] in files for r in caption_rows)
    said = [count(n, word) for n, word in ((tags, "tag"), (captions, "caption")) if n]
    return " and ".join(said) or "no tag or caption"


def check_not_half_swapped(root: Path) -> None:
    """Refuse to start a new index where a rebuild was killed between its two renames.

    Then ``root`` is missing while ``<root>.replaced-<pid>`` holds the old index (and
    ``<root>.rebuild-<pid>`` the finished new one); raises IndexNotFound naming them. Only
    the fallback swap of :func:`_swap` has two renames; the atomic exchange leaves no such state.
    """
    if IndexLayout(root).catalog.is_file() or not root.parent.is_dir():
        return
    left = _siblings(root, REPLACED_SUFFIX)
    if left:
        done = _siblings(root, REBUILD_SUFFIX)
        raise IndexNotFound(
            f"no index at {root}, but {left[0]} holds it as it was before a rebuild that was "
            "killed while swapping folders" + (f" ({done[0]} holds the rebuilt one)" if done else "")
            + f": rename one of them to {root} and run again")


# -- steps ---------------------------------------------------------------------------------
def _read_old(live: IndexLayout) -> _OldIndex:
    with catalog_session(live) as s:
        files = {p: (size, mt) for p, size, mt in s.execute(select(File.path, File.size, File.mtime_ns))}
        return _OldIndex(get_meta(s), files, list(s.scalars(select(ErrorRow.path))))


def _refuse_losses(live: IndexLayout, old: _OldIndex, paths: Sequence[str | Path],
                   scanned: ScanResult | None) -> ScanResult:
    """RebuildFailed when the rebuild would drop indexed files or the user's own files.

    Returns the walk of ``paths`` (``scanned``, else made now, after the checks that need none)
    that tells which indexed files they reach.
    """
    missing = [str(p) for p in paths if not os.path.exists(os.path.expanduser(str(p)))]
    if missing:
        raise RebuildFailed(
            f"{', '.join(missing)}: no such file or folder; a rebuild of {live.root} would drop "
            "every file the index holds there (an unmounted drive?). Nothing was changed")
    _refuse_foreign(live)
    scanned = scanned if scanned is not None else scan(paths)
    # files indexed by name without an audio extension: the walk passes over them, an index run keeps them
    scanned.files.update(kept_by_name(old.files, scanned.files, [normalize_root(p) for p in paths]))
    _refuse_unreached(live, old, paths, scanned)
    return scanned


def _refuse_unreached(live: IndexLayout, old: _OldIndex, paths: Sequence[str | Path],
                      scanned: ScanResult) -> None:
    """RebuildFailed when the index holds files the walk of ``paths`` does not reach.

    Reached: a file under the given paths, one the walk found (also through a symbolic link, kept
    by its resolved path), or one under a folder such a link points to (it was deleted there: an
    index run drops it too, indexer.links). A file a link points to that is missing is not: its
    drive may only be unmounted, and a rebuild cannot keep what it does not re-embed.
    """
    roots = [normalize_root(p) for p in paths]
    targets = sorted(set(scanned.links.values()))
    reached = roots + [t for t in targets if os.path.exists(t)]
    unreached = sorted(p for p in old.files if p not in scanned.files and not under_roots(p, reached))
    dangling = {link: target for link, target in scanned.links.items()
                if not os.path.exists(target) and any(under_roots(p, [target]) for p in unreached)}
    if dangling:
        cut_off = [p for p in unreached if under_roots(p, dangling.values())]
        shown = ", ".join(f"{link} → {target}" for link, target in sorted(dangling.items())[:3])
        raise RebuildFailed(
            f"index {live.root} holds {count(len(cut_off), 'file')} reached through symbolic links "
            f"whose targets are missing ({shown}{' …' if len(dangling) > 3 else ''}); a rebuild keeps "
            "only what it re-embeds: mount their drive, or run `soundsift index` without --rebuild "
            "first to drop them. Nothing was changed")
    if unreached:
        folders = sorted({os.path.dirname(p) for p in unreached})
        shown = ", ".join(folders[:3]) + (f" and {len(folders) - 3} more" if len(folders) > 3 else "")
        raise RebuildFailed(
            f"index {live.root} also holds {count(len(unreached), 'file')} outside the given paths (in "
            f"{shown}); a rebuild keeps only what it re-embeds, so give every folder the index "
            "was built from. Nothing was changed")


def _refuse_foreign(live: IndexLayout) -> None:
    """RebuildFailed when the index folder holds entries soundsift did not write."""
    foreign = live.foreign_entries()
    if foreign:
        names = ", ".join(p.name for p in foreign[:5]) + (" …" if len(foreign) > 5 else "")
        raise RebuildFailed(
            f"index folder {live.root} holds entries soundsift did not write ({names}); a "
            "rebuild replaces the whole folder, so move them out of it and run again. "
            "Nothing was changed")


def _plan_line(index: Path, old: _OldIndex, scanned: ScanResult, moves: Sequence[Move] = (),
               replaced: dict[str, str] | None = None, reencodes: Sequence[Reencode] = ()) -> str:
    """What the rebuild embeds, counted against the index it replaces as the summary counts it
    (:func:`_count_against`): the files it held are updated, the others added, those found at
    another path moved, and those it held that the walk did not find (or that another file was
    moved over) removed. (Counted against the fresh folder, every file is new.)"""
    found = scanned.files
    moved_old, moved_new = {m.old for m in moves}, {m.new for m in moves}
    before = [p for p in found if p in old.files and p not in moved_new]
    changed = sum(old.files[p] != (found[p].size, found[p].mtime_ns) for p in before)
    new = [p for p in found if p not in old.files and p not in moved_new]
    retried = len(set(new) & set(old.errors))
    gone = sum(p not in found and p not in moved_old for p in old.files) + len(replaced or {})
    return (f"{index}: rebuilding {count(len(found), 'file')}: {len(before)} indexed before ({changed} "
            f"changed since), {len(new) - retried} new"
            + (f" (and {retried} that failed before, tried again)" if retried else "")
            + (f", {len(moves)} moved or renamed" if moves else "")
            + (f", {len(reencodes)} of the new converted in place from files indexed before" if reencodes else "")
            + f", {count(gone, 'indexed file')} not found, "
            + count(len(scanned.errors), "unusable entry", "unusable entries"))


def _plan_against_old(old: _OldIndex, paths: Sequence[str | Path], scanned: ScanResult) -> Diff:
    """The walk of ``paths`` (``scanned``) compared with the index the rebuild replaces, as an index
    run compares them (indexer.scan.diff; the folders the walk's links lead to among the roots)."""
    roots = [normalize_root(p) for p in paths] + sorted(set(scanned.links.values()))
    return diff(old.files, scanned.files, roots)


def find_rebuild_moves(live: IndexLayout, old: _OldIndex, plan: Diff) -> tuple[list[Move], dict[str, str]]:
    """The files of the index the walk found at another path (moved or renamed since it was last
    run), paired as an index run pairs them (indexer.moves: size, time, audio header, content
    fingerprint, one to one), and the paths such a file was moved over (path → the old path of the
    file that lies there now: indexer.moves.overwritten). ``plan``: the walk against the old index
    (:func:`_plan_against_old`). Their rows follow them (:func:`carry_over`)."""
    if not plan.deleted and not plan.changed:       # nothing left a path: nothing moved
        return [], {}
    with catalog_session(live) as s:
        headers = catalog_headers(s.get_bind(), plan.deleted + [f.path for f in plan.changed])
    moves = find_moves_among_changed(plan.deleted, plan.new, plan.changed, old.files, headers)
    return moves, overwritten(moves, plan.changed)


def find_rebuild_reencodes(live: IndexLayout, old: _OldIndex, plan: Diff, moves: Sequence[Move],
                           model: AudioTextModel) -> list[Reencode]:
    """The files of the index converted in place since it was last run (``rain_01.wav`` deleted,
    ``rain_01.flac`` new in its folder), paired by an index run's rule (indexer.reencodes: one
    deleted and one new file of a folder and name, the lengths within 1 %, a cosine of at least
    0.82 between the file vectors). The new file is embedded with the model of the old index's
    vectors: ``model`` where it is that one, else that model loaded by name, if its fingerprint
    is the index's; where neither can be, none is paired (a warning names them). Their rows go
    to the new file (:func:`carry_over`)."""
    moved_old, moved_new = {m.old for m in moves}, {m.new for m in moves}
    pairs = candidates([p for p in plan.deleted if p not in moved_old], [f for f in plan.new if f.path not in moved_new])
    if not pairs:
        return []
    judge = _model_of(old, model)
    if judge is None:
        shown = ", ".join(f"{old_path} → {os.path.basename(new)}" for new, old_path in sorted(pairs.items())[:3])
        log.warning("%s may have been converted in place since the index was last run (%s%s), but the "
                    "index's model %r (fingerprint %s) cannot be loaded to compare them: their tags, captions "
                    "and sheet rows are not carried over. Run `soundsift index` with that model before "
                    "--rebuild to keep them", count(len(pairs), "file"), shown, " …" if len(pairs) > 3 else "",
                    old.meta.get("model_name"), old.meta.get("model_fingerprint"))
        return []
    from engine.segments import SegmentPolicy
    from engine.zeroshot import file_query_vector
    olds = sorted(pairs.values())
    with catalog_session(live) as s:
        seconds = {p: h.duration for p, h in catalog_headers(s.get_bind(), olds).items()}
    vectors = IndexWriter.stored_file_vectors(live, olds, int(judge.dim))
    policy = SegmentPolicy(window=float(judge.window_seconds))
    found = []
    for new, old_path in sorted(pairs.items()):
        try:
            vector, length = file_query_vector(judge, new, policy)
        except (SoundsiftError, OSError) as e:      # decoding fails it again, said there
            log.debug("%s: not compared with %s (%s)", new, old_path, e)
            continue
        if same_recording(seconds.get(old_path, -1.0), vectors.get(old_path), length, vector[None]):
            found.append(Reencode(old_path, new))
    return found


def _model_of(old: _OldIndex, model: AudioTextModel) -> AudioTextModel | None:
    """The model the old index's vectors were made with: ``model`` where its fingerprint is the
    index's, else that model loaded by its recorded name, if its fingerprint still is; None else."""
    fingerprint, name = old.meta.get("model_fingerprint"), old.meta.get("model_name")
    if model.fingerprint == fingerprint:
        return model
    if not name:
        return None
    from engine.models import load_model
    try:
        loaded = load_model(name)
    except Exception as e:      # noqa: BLE001 — any failure to load it means: not comparable
        log.debug("the index's model %r was not loaded: %s: %s", name, type(e).__name__, e)
        return None
    return loaded if loaded.fingerprint == fingerprint else None


def _refuse_unlisted(old: _OldIndex, failures: dict[str, str]) -> None:
    """RebuildFailed when folders that hold indexed files could not be listed this time.

    An ordinary run keeps such files (their folder may be unmounted); a rebuild cannot
    re-embed them, and would drop them. A folder reached through a symbolic link holds them by
    its resolved path, as the catalog keeps them.
    """
    folders = [p for p in failures if os.path.isdir(p)]
    held = {f: sum(under_roots(p, [normalize_root(f)]) for p in old.files) for f in folders}
    held = {f: n for f, n in held.items() if n}
    if held:
        where = ", ".join(f"{f} ({failures[f]}; {count(n, 'indexed file')})" for f, n in sorted(held.items()))
        raise RebuildFailed(f"could not list {where}: the rebuild would drop those files; "
                            "make the folders readable and run again")


def refuse_unreadable_headers(old: _OldIndex, scanned: ScanResult, moves: Sequence[Move]) -> None:
    """RebuildFailed before anything is embedded when files the index holds that the walk found
    (at their paths, or moved) do not open now: their audio header is read
    (engine.audio.probe, as decoding starts), and the walk's own failures are looked at
    (:func:`_refuse_unlisted`, :func:`_refuse_unread`: the same refusals a finished run would give,
    hours later). A file whose header opens but whose audio fails to decode stops the run at
    once instead (:func:`_stop_at_unread`)."""
    held = _held(old, moves)
    failures = {e.path: e.reason for e in scanned.errors}
    failures.update(_unreadable_headers([p for p in sorted(scanned.files) if p in held and p not in failures]))
    try:
        _refuse_unlisted(old, failures)
        _refuse_unread(old, failures, moves)
    except RebuildFailed as e:
        raise RebuildFailed(f"{e}. Nothing was embedded: the index is unchanged ({old.describe()})") from None


def _unreadable_headers(paths: Sequence[str]) -> dict[str, str]:
    """Path → why its audio header does not open (engine.audio.probe), for each of ``paths`` whose
    does not, in the order of ``paths``; read :data:`HEADER_THREADS` at a time, but for the MPEG
    audio, whose decoder prints ("Warning: Xing stream size off …"): read first, in this thread
    alone, so that engine.audio captures what it prints and says it under the file's name."""
    if len(paths) >= HEADER_NOTICE:
        log.info("checking %s indexed files can still be read …", f"{len(paths):,}")
    threads = min(HEADER_THREADS, len(paths)) if _threads_may_read() else 1
    if threads > 1:
        from engine.audio import decoder_talks
        talking = [p for p in paths if decoder_talks(p)]
        reason = {p: _header_failure(p) for p in talking}
        rest = [p for p in paths if p not in reason]
        with ThreadPoolExecutor(threads, thread_name_prefix="soundsift-header") as pool:
            reason.update(zip(rest, pool.map(_header_failure, rest)))
        reasons = [reason[p] for p in paths]
    else:
        reasons = [_header_failure(p) for p in paths]
    failed = {p: why for p, why in zip(paths, reasons) if why is not None}
    log.debug("read the audio headers of %s the index holds: %s do not open",
              count(len(paths), "file"), len(failed))
    return failed


def _header_failure(path: str) -> str | None:
    """Why ``path``'s audio header does not open (engine.audio.probe), or None where it opens."""
    try:
        probe(path)
    except UnreadableAudio as e:
        return e.reason
    except Exception as e:      # noqa: BLE001 — decoding would fail the file just so (indexer.decode)
        return f"decoding failed: {type(e).__name__}: {e}"
    return None


def _threads_may_read() -> bool:
    """Whether files may be opened in several threads: not while engine.audio relays what the
    decoders print (it redirects the process's stderr around each open, one file at a time)."""
    from engine import audio
    return not audio._relaying


def _refuse_decoder_fault(failures: dict[str, str]) -> None:
    """RebuildFailed saying the decoder could not be started, where that is why files failed
    (:data:`DECODER_FAULTS`): no file is at fault, so none is named as unreadable."""
    stopped = [p for p, why in failures.items() if why.startswith(DECODER_FAULTS)]
    if stopped:
        which = (f"it stopped at {stopped[0]}" if len(stopped) == 1 else
                 f"{count(len(stopped), 'file')} could not be read for it, the first {stopped[0]}")
        raise RebuildFailed(f"the decoder could not be started: {failures[stopped[0]]}; no file is at "
                            f"fault ({which}): fix the decoder and run again")


def _stop_at_unread(old: _OldIndex, moves: Sequence[Move]) -> Callable[[str, str], None]:
    """The run's ``on_failure`` (indexer.runner.RunOptions): RebuildFailed (:func:`_refuse_unread`)
    at the first file the index holds that fails, so the rest is not embedded for nothing."""
    held = _held(old, moves)

    def stop(path: str, reason: str) -> None:
        _refuse_decoder_fault({path: reason})
        if path in held:
            _refuse_unread(old, {path: reason}, moves)
    return stop


def _held(old: _OldIndex, moves: Sequence[Move]) -> set[str]:
    """The paths of files the index holds: where it holds them, and where they moved to."""
    return set(old.files) | {m.new for m in moves}


def _warn_of_dropped(index: Path, live: IndexLayout, old: _OldIndex, plan: Diff,
                     moves: Sequence[Move], replaced: dict[str, str], reencodes: Sequence[Reencode] = ()) -> None:
    """The warning an index run gives (indexer.runner.warn_of_dropped_notes) for the files the rebuild
    drops, deleted since (not moved) or moved over by another, that carry the user's tags, captions
    or library-sheet rows; ``plan``: the walk against the old index (:func:`_plan_against_old`);
    ``index`` as the user named it, for the `soundsift sheet import` it gives; files converted in
    place (``reencodes``) keep theirs."""
    from indexer.runner import warn_of_dropped_notes
    moved_old = {m.old for m in moves} | {r.old for r in reencodes}
    moved_new = {m.new for m in moves} | {r.new for r in reencodes}
    dropped = Diff(new=[f for f in plan.new if f.path not in moved_new], changed=[],
                   deleted=sorted([p for p in plan.deleted if p not in moved_old] + list(replaced)),
                   unchanged=[])
    if not dropped.deleted:
        return
    with catalog_session(live) as s:
        warn_of_dropped_notes(s.get_bind(), index, dropped, old.files, replaced)


def _refuse_unread(old: _OldIndex, failures: dict[str, str], moves: Sequence[Move]) -> None:
    """RebuildFailed when files the index holds (at their paths, or moved) could not be read this
    time. An index run keeps their entries (vectors, tags, captions) until they read again; a
    rebuild cannot re-embed them, and would drop them with the user's tags."""
    _refuse_decoder_fault(failures)
    held = _held(old, moves)
    unread = sorted(p for p in failures if p in held)
    if unread:
        shown = "; ".join(f"{p} ({failures[p]})" for p in unread[:3])
        it, its, reads = ("it", "its", "it reads") if len(unread) == 1 else ("them", "their", "they read")
        raise RebuildFailed(
            f"{count(len(unread), 'indexed file')} could not be read this time: {shown}"
            + (f"; and {len(unread) - 3} more" if len(unread) > 3 else "")
            + f". The rebuild would drop {it} with {its} tags and captions (an index run keeps {it} until "
            f"{reads} again): make {it} readable, or move {it} out of the given folders to let {it} go, "
            "and run again")


def _load(model: AudioTextModel | str | Path | None) -> AudioTextModel:
    if isinstance(model, AudioTextModel):
        return model
    from engine.models import DEFAULT_MODEL, load_model
    return load_model(model if model is not None else DEFAULT_MODEL)


def _count_against(summary: Any, old: _OldIndex, writer: IndexWriter, moves: Sequence[Move] = (),
                   replaced: dict[str, str] | None = None, reencodes: Sequence[Reencode] = ()) -> None:
    """Counts relative to the replaced index, as an index run counts: new files added, known ones
    updated, those found at another path moved, the rest (and those another file was moved over:
    ``replaced``) removed; a file converted in place (``reencodes``) updated and re-encoded."""
    with Session(writer.engine) as s:
        now = set(s.scalars(select(File.path)))
    before = set(old.files)
    moved_old, moved_new = {m.old for m in moves}, {m.new for m in moves}
    summary.added, summary.updated = len(now - before - moved_new), len((now & before) - moved_new)
    summary.removed = len(before - now - moved_old) + len(replaced or {})
    summary.moved, summary.unchanged = len(moves), 0
    took = [r for r in reencodes if r.new in now]
    summary.added -= len(took)
    summary.updated += len(took)
    summary.removed -= len(took)
    summary.reencoded = len(took)
    summary.reencoded_files = [{"old": r.old, "new": r.new} for r in took]


def _swap(root: Path, new_root: Path) -> Path:
    """Put ``new_root`` in the place of ``root``; returns where the old folder went.

    One atomic exchange where the system can (then nothing after it raises: the swap is
    done, and the caller's error path would otherwise delete the old folder, now at
    ``new_root``, and say the index is unchanged); else two renames, between which
    ``root`` is missing for a moment.
    """
    aside = root.with_name(f"{root.name}{REPLACED_SUFFIX}{os.getpid()}")
    if exchange_paths(new_root, root):
        return _set_aside(root, new_root, aside)
    os.rename(root, aside)
    try:
        os.rename(new_root, root)
    except BaseException:
        os.rename(aside, root)
        raise
    fsync_dir(root.parent)
    return aside


def _set_aside(root: Path, old: Path, aside: Path) -> Path:
    """After the exchange: move the old index from ``old`` to ``aside``; returns where it is.

    Logs what fails instead of raising: the rebuilt index is in place already.
    """
    where = aside
    try:
        os.rename(old, aside)
    except OSError as e:
        log.warning("rebuilt %s, but the old index could not be moved from %s to %s (%s); "
                    "it is deleted from there", root, old, aside, e)
        where = old
    try:
        fsync_dir(root.parent)
    except OSError as e:
        log.warning("rebuilt %s, but the swap could not be synced to disk (%s)", root, e)
    return where


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path)


def _remove_tmp(tmp: Path) -> str:
    """Delete the unfinished new index; returns what happened, for the message."""
    try:
        _remove_tree(tmp)
    except FileNotFoundError:
        return f"the temporary folder {tmp} is gone"
    except OSError as e:
        return f"the temporary folder {tmp} could not be removed ({e}): delete it by hand"
    return f"the temporary folder {tmp} was removed"


def _siblings(root: Path, suffix: str) -> list[Path]:
    """Folders named ``<root><suffix><pid>`` beside ``root``."""
    prefix = root.name + suffix
    return sorted(p for p in root.parent.iterdir()
                  if p.name.startswith(prefix) and p.name[len(prefix):].isdigit() and p.is_dir())


def remove_stale_siblings(root: Path) -> list[Path]:
    """Delete the folders that rebuilds of ``root`` left when they were killed (SIGKILL, power
    loss); returns the folders removed.

    They are ``<root>.rebuild-<pid>`` (a whole copy of the index, unfinished or not yet swapped in)
    and ``<root>.replaced-<pid>`` (the old index, set aside by a swap that finished). One is left
    over when its writer lock is free: a live rebuild holds the lock of both its folders until it
    has deleted them, and a process that is gone holds none, whoever has its pid now. Called with
    ``root``'s own writer lock held (by a rebuild, and by every IndexWriter: indexer.write), so no
    rebuild of ``root`` is between making its folder and locking it. A folder holding anything
    soundsift does not write (:meth:`IndexLayout.foreign_entries`) is the user's and stays. Logs one line naming what was
    removed and how big it was; a folder held by a live process, or that cannot be removed, stays
    (with a warning). Never raises for a folder it could not remove.
    """
    removed: list[tuple[Path, int]] = []
    try:
        stale_folders = _siblings(root, REBUILD_SUFFIX) + _siblings(root, REPLACED_SUFFIX)
    except OSError as e:            # the folder above the index cannot be listed: nothing to tidy
        log.debug("cannot look for folders left by killed rebuilds of %s: %s", root, e)
        return []
    for stale in stale_folders:
        try:
            foreign = IndexLayout(stale).foreign_entries()
        except OSError as e:
            log.warning("%s could not be listed (%s); leaving it", stale, e)
            continue
        if foreign:             # a folder of the user's that only looks like ours (sfx.rebuild-2024)
            log.warning("%s is named like a folder a killed rebuild leaves, but holds files soundsift did "
                        "not write (e.g. %s); leaving it", stale, foreign[0].name)
            continue
        try:
            with WriterLock(IndexLayout(stale).lock):
                size = _tree_size(stale)
                _remove_tree(stale)
        except IndexBusy:
            log.warning("%s is held by another process; leaving it", stale)
            continue
        except (OSError, SoundsiftError) as e:
            log.warning("%s, left by a rebuild that was killed, could not be removed (%s); delete it "
                        "by hand", stale, e)
            continue
        removed.append((stale, size))
    if removed:
        one = len(removed) == 1
        log.info("removed %s left by %s killed: %s", count(len(removed), "folder"),
                 "a rebuild that was" if one else "rebuilds that were",
                 ", ".join(f"{path} ({human_size(size)})" for path, size in removed))
    return [path for path, _ in removed]


def _tree_size(folder: Path) -> int:
    """Bytes of the files under ``folder`` (links not followed)."""
    total = 0
    for top, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(top, name)).st_size
            except OSError:
                continue
    return total
