"""Measure the loudness of indexed files that were indexed before soundsift measured it.

Since session 20 the indexer measures each file's sample peak and integrated loudness
(engine.loudness) while decoding it for embedding. Files indexed before have none, so a loudness
filter (``--min-loudness``, the page's slider) leaves them out. The next ``soundsift index`` run
measures those it finds on disk instead, once, after its own new and changed files are
embedded: each is decoded
at its own rate (no resampling, no model) in the run's decoder processes, and its levels are
stored beside its metadata; nothing is embedded and the generation stays. What is measured is
written every :data:`CHECKPOINT_FILES` files or :data:`CHECKPOINT_SECONDS`, so an interrupted
pass keeps it. A file that cannot be read now keeps no levels (one warning for all of them), and
the next run tries again. A new name or byte-identical copy of such a file, given its rows in the
same run (indexer.same_file), is given its levels too, not decoded again.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Mapping

from engine.errors import UnreadableAudio
from engine.wording import count
from indexer.refresh_pass import each_file, files_without, followers_of
from indexer.same_file import said_of
from indexer.write import IndexWriter

log = logging.getLogger(__name__)

CHECKPOINT_FILES = 500
CHECKPOINT_SECONDS = 60.0

#: one file's outcome: (path, levels, None) or (path, None, why it could not be measured)
Measured = tuple[str, "dict[str, float] | None", "str | None"]


@dataclass
class LevelRefresh:
    """What :func:`refresh_levels` has stored, kept up to date as it stores (so an interrupted
    pass's caller can say what it kept)."""

    stored: int = 0                 # files whose levels are now stored


def unmeasured(writer: IndexWriter, present: set[str]) -> list[str]:
    """The indexed paths among ``present`` that have no measured loudness, sorted."""
    return files_without(writer, present, "loudness_lufs")


def measure(path: str) -> Measured:
    """The levels of one file, or why they could not be had; never raises for a bad file."""
    from engine.audio import measure_levels
    notes: list[str] = []
    try:
        return path, measure_levels(path, notes), None
    except UnreadableAudio as e:
        return path, None, e.reason
    except Exception as e:  # a decoder bug must cost one file's levels, not the run
        return path, None, f"{type(e).__name__}: {e}"


def refresh_levels(writer: IndexWriter, present: set[str], workers: int = 0, progress: bool = False,
                   done: LevelRefresh | None = None, same: Mapping[str, str] | None = None) -> int:
    """Measure and store the levels of the indexed files among ``present`` (those this run
    found on disk as indexed: unchanged or moved; not the files of an unmounted drive) and
    ``same`` that have none, in ``workers`` processes (0: this one), with a progress bar on stderr
    when ``progress``; returns how many were stored. ``same``: path → the indexed path whose rows
    and vectors it was given in this run (indexer.same_file); one whose file is measured here is
    given its levels without being decoded. ``done`` is kept up to date as they are stored:
    after a Ctrl-C (KeyboardInterrupt, raised once what was measured is stored) it says how many."""
    done = done if done is not None else LevelRefresh()
    same = same or {}
    paths = unmeasured(writer, present | set(same))
    if not paths:
        return 0
    followers = followers_of(paths, same)
    given = {p for names in followers.values() for p in names}
    decoded = [p for p in paths if p not in given]
    log.info("measuring the loudness of %s indexed before soundsift measured it (decoding "
             "only, once; nothing is embedded again)", count(len(paths), "file"))
    started = last = time.perf_counter()
    found: dict[str, dict[str, float]] = {}
    missed: list[str] = []

    def store() -> None:
        nonlocal found, last
        if found:
            writer.replace_levels(found)
            done.stored += len(found)
            found = {}
        last = time.perf_counter()

    try:
        with each_file(measure, decoded, workers=workers, progress=progress, desc="loudness",
                       doing="measuring loudness") as measured:
            for first, levels, why in measured:
                for path in (first, *followers.get(first, ())):     # and its other names, alike
                    if levels:
                        found[path] = levels
                    else:
                        missed.append(f"{path}: {said_of(why, first, path)}")
                if len(found) >= CHECKPOINT_FILES or time.perf_counter() - last >= CHECKPOINT_SECONDS:
                    store()
                    log.info("loudness measured for %d of %s", done.stored, count(len(paths), "file"))
    finally:                        # Ctrl-C too: what is measured is kept
        store()
    if missed:
        log.warning("loudness of %s not measured (the next run tries again), e.g. %s",
                    count(len(missed), "indexed file"), missed[0])
    log.info("loudness of %s measured in %.1f s", count(done.stored, "file"), time.perf_counter() - started)
    return done.stored
