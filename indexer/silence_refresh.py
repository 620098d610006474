"""Leave out the silent segments of files indexed before the indexer left them out.

Since session 38 the indexer leaves out of a file with sound elsewhere its segments that are all
digital silence (engine.segments.without_silence), and since session 39 it stores how many it left
out beside the file (engine.file_metadata.SILENCE_KEYS). A file without that row was indexed
before: its stored segments may hold silence that dilutes its file vector (the mean of its stored
segment vectors), so ``tag FILE`` and ``tag --index`` differ for it. The next ``soundsift index``
run judges those it finds on disk instead, once, after its own new and changed files are
embedded: each is decoded at the model's rate, cut by the index's segment policy with its marked
takes (as the decoder cuts it: indexer.decode), in the run's decoder processes, and the stored
segments the same rule finds silent (by their stored start and end) are dropped, rows and vectors,
in a new generation; nothing is embedded and the model is not loaded. A file of silence throughout
keeps its first stored segment; a silent marked take is dropped as a window is. A file indexed
by session 38's code has no row either: it is decoded once too, and nothing is dropped (but a
silent marked take, which that code kept). Until session 40 a marked take was kept, silent or
not: a file with named markers judged before (no ``silent_takes`` row) is judged again, once, so
a silent take leaves its vector and a silent file is one of silence throughout.

A new name or byte-identical copy of such a file, added in the same run with the file's rows and
vectors (indexer.same_file), is given the file's judgement in the same commit (``same``): it is not
decoded again, and does not wait for the next run.

A file that also has no measured loudness (indexed before session 20) has its levels measured in
the same decode (indexer.level_refresh would decode it again otherwise).

What is judged is committed every :data:`CHECKPOINT_FILES` files or :data:`CHECKPOINT_SECONDS`
(spaced out after a slow commit as the indexer's own are: indexer.runner.checkpoint_due; one that
drops segments rewrites the vectors), so an interrupted pass keeps it. A file that cannot be read now keeps its segments and gets no row
(one warning for all of them), and the next run tries again.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.catalog import SQL_CHUNK, File, SegmentRow
from engine.errors import UnreadableAudio
from engine.file_metadata import SILENCE_KEYS
from engine.segments import SegmentPolicy, silent_segment, take_starts, without_silence
from engine.wording import count
from indexer.decode import _marked_takes, silence_rows
from indexer.level_refresh import unmeasured
from indexer.refresh_pass import each_file, files_with, files_without, followers_of
from indexer.same_file import said_of
from indexer.write import Changes, IndexWriter

log = logging.getLogger(__name__)

CHECKPOINT_FILES = 500
CHECKPOINT_SECONDS = 60.0

Bounds = tuple[int, int]


@dataclass(frozen=True)
class Judged:
    """One file's silence as decoded now, or why it could not be judged (``why``)."""

    path: str
    silent: frozenset[Bounds] = frozenset()    # (start, end) samples at the model's rate of its silent
                                               # segments (marked takes too)
    left_out: int = 0                          # segments the rule leaves out of the decoded ones
    throughout: bool = False                   # silence throughout: its first segment stands for it
    silent_takes: frozenset[int] = frozenset()  # where its marked takes left out start (samples)
    levels: dict[str, float] | None = None     # measured in the same decode, when asked
    why: str | None = None


@dataclass
class SilenceRefresh:
    """What :func:`refresh_silence` did (kept up to date as it stores: what an interrupted pass kept)."""

    judged: int = 0                 # files whose silence is now stored
    dropped: int = 0                # stored segments dropped as silent (rows and vectors)
    levels: dict[str, dict[str, float]] = field(default_factory=dict)   # path → levels measured too


def bounds(start: float, end: float, sample_rate: int) -> Bounds:
    """A segment's (start, end) seconds as sample offsets at ``sample_rate`` (how stored and
    decoded segments are matched)."""
    return int(round(start * sample_rate)), int(round(end * sample_rate))


def unjudged(writer: IndexWriter, present: set[str]) -> list[str]:
    """The indexed paths among ``present`` whose silence was never judged (no ``silent_left_out``
    row: indexed before session 39), or judged by a rule that kept a silent marked take (named
    markers, and no ``silent_takes`` row: judged before session 40), sorted."""
    return sorted({*files_without(writer, present, SILENCE_KEYS[0]),
                   *files_without(writer, present, SILENCE_KEYS[2], having="markers")})


def judge(path: str, with_levels: bool, sample_rate: int, policy: SegmentPolicy) -> Judged:
    """Decode ``path`` as the indexer does and say which of its segments are silent; never raises
    for a bad file."""
    from engine.audio import iter_segments
    notes: list[str] = []
    levels: dict[str, float] | None = {} if with_levels else None
    found: set[Bounds] = set()
    counts: dict[str, int] = {}
    throughout = False
    silent_takes: set[int] = set()
    try:
        takes = _marked_takes(path, notes)
        rule = silent_segment(sample_rate, take_starts(takes, sample_rate, policy), silent_takes)

        def silent(seg: Any) -> bool:
            if rule(seg):
                found.add(bounds(seg.start, seg.end, sample_rate))
                return True
            return False

        segments = iter_segments(path, sample_rate, policy, notes=notes, levels=levels, markers=takes)
        for _, only_silence in without_silence(segments, silent, counts):
            throughout |= only_silence
    except UnreadableAudio as e:
        return Judged(path, why=e.reason)
    except Exception as e:  # a decoder bug must cost one file's judgement, not the run
        return Judged(path, why=f"{type(e).__name__}: {e}")
    return Judged(path, frozenset(found), counts.get("silent_left_out", 0), throughout, frozenset(silent_takes),
                  levels)


def silent_stored(writer: IndexWriter, judged: list[Judged], sample_rate: int) -> list[int]:
    """The ids of the stored segments of ``judged`` files to drop: the rule
    (engine.segments.without_silence) over each file's stored segments in their order, a
    segment silent when the decoded one of the same bounds was (one not decoded now is kept)."""
    by_path = {j.path: j for j in judged}
    rows: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
    paths = sorted(by_path)
    with Session(writer.engine) as s:
        for i in range(0, len(paths), SQL_CHUNK):
            for path, sid, a, b in s.execute(select(File.path, SegmentRow.id, SegmentRow.start, SegmentRow.end)
                                             .join(SegmentRow, SegmentRow.file_id == File.id)
                                             .where(File.path.in_(paths[i:i + SQL_CHUNK]))
                                             .order_by(SegmentRow.id)):
                rows[path].append((sid, a, b))
    drop: list[int] = []
    for path, stored in rows.items():
        silent = by_path[path].silent
        kept = {sid for (sid, _, _), _ in without_silence(
            stored, lambda r: bounds(r[1], r[2], sample_rate) in silent)}
        drop += [sid for sid, _, _ in stored if sid not in kept]
    return sorted(drop)


def refresh_silence(writer: IndexWriter, present: set[str], meta: dict[str, Any], policy: SegmentPolicy,
                    workers: int = 0, progress: bool = False, done: SilenceRefresh | None = None,
                    same: Mapping[str, str] | None = None) -> SilenceRefresh:
    """Judge the silence of the indexed files among ``present`` (found on disk as indexed) that
    were never judged, and drop their stored segments that are silent, in ``workers`` processes
    (0: this one), with a progress bar on stderr when ``progress``. ``meta``: the model keys of
    the run (indexer.write.IndexWriter.commit). Those with no measured loudness have it measured
    in the same decode (stored, and returned). ``same``: path → the indexed path whose rows and
    vectors it was given in this run (indexer.same_file: a new name or identical copy); one whose
    file is judged here is given that judgement, in the same commit, without being decoded.
    ``done`` (returned) is kept up to date as the pass stores: after a Ctrl-C (KeyboardInterrupt,
    raised once what was judged is stored) it says what was kept."""
    done = done if done is not None else SilenceRefresh()
    same = same or {}
    paths = unjudged(writer, present | set(same))
    if not paths:
        return done
    followers = followers_of(paths, same)
    given = {p for names in followers.values() for p in names}
    decoded = [p for p in paths if p not in given]
    measure_too = set(unmeasured(writer, set(decoded)))
    sample_rate = int(meta["sample_rate"])
    log.info("looking for digital silence in %s indexed before soundsift left it out (decoding "
             "only, once; nothing is embedded again)", count(len(paths), "file"))
    from indexer.runner import checkpoint_due      # (the runner imports this module)
    started = last = time.perf_counter()
    cost = 0.0                      # the last commit's seconds: a commit that drops rewrites the vectors
    found: list[Judged] = []
    missed: list[str] = []

    def store() -> None:
        nonlocal found, last, cost
        if found:
            t = time.perf_counter()
            levels = {j.path: j.levels for j in found if j.levels}
            if levels:
                writer.replace_levels(levels)
                done.levels.update(levels)
            drop = silent_stored(writer, found, sample_rate)
            marked = files_with(writer, [j.path for j in found], "markers")
            rows = {j.path: {SILENCE_KEYS[1]: None, SILENCE_KEYS[2]: None,
                             **silence_rows(j.left_out, j.throughout, j.silent_takes, j.path in marked)}
                    for j in found}
            writer.commit(Changes(drop_segments=drop, file_rows=rows), meta)
            done.judged += len(found)
            done.dropped += len(drop)
            found = []
            cost = time.perf_counter() - t
        last = time.perf_counter()

    one = functools.partial(judge, sample_rate=sample_rate, policy=policy)
    try:
        with each_file(one, decoded, [p in measure_too for p in decoded], workers=workers, progress=progress,
                       desc="silence", doing="looking for silence") as judged:
            for first in judged:       # and its other names, judged alike (module doc)
                for j in [first, *(dataclasses.replace(first, path=p) for p in followers.get(first.path, ()))]:
                    if j.why is None:
                        found.append(j)
                    else:
                        missed.append(f"{j.path}: {said_of(j.why, first.path, j.path)}")
                if found and checkpoint_due(len(found), time.perf_counter() - last, cost, CHECKPOINT_FILES,
                                            CHECKPOINT_SECONDS):    # as the indexer's own, slow commits spaced out
                    store()
                    log.info("silence judged in %d of %s", done.judged, count(len(paths), "file"))
    finally:                        # Ctrl-C too: what is judged is kept
        store()
    if missed:
        log.warning("silence of %s not judged (%s its segments; the next run tries again), e.g. %s",
                    count(len(missed), "indexed file"), "it keeps" if len(missed) == 1 else "they keep", missed[0])
    log.info("silence judged in %s in %.1f s: %s dropped (digital silence, in files indexed before it "
             "was left out)", count(done.judged, "file"), time.perf_counter() - started,
             count(done.dropped, "stored segment"))
    return done
