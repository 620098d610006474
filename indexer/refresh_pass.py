"""One pass over indexed files that an older version left behind: each file decoded once, in the
run's decoder processes, with a progress bar (indexer.level_refresh, indexer.silence_refresh).

:func:`each_file` maps a function over the files and yields its results in order; the caller
stores them at its checkpoints, and stores the rest in a ``finally`` (Ctrl-C too). A decoder that
crashes its process (not a Python error) stops the pass with one warning: the files left are the
next run's. A new name or byte-identical copy given a file's rows in the same run is given that
file's outcome too, not decoded again (:func:`followers_of`).
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TypeVar

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from engine.catalog import SQL_CHUNK, File, FileMetadata, has_table
from engine.wording import count
from engine.worker_processes import START_METHOD
from indexer.write import IndexWriter

log = logging.getLogger(__name__)

R = TypeVar("R")


def files_without(writer: IndexWriter, present: set[str], key: str, having: str | None = None) -> list[str]:
    """The indexed paths among ``present`` with no ``key`` row beside their metadata (what an older
    indexer did not store: a pass's files to do), of those with a ``having`` row only where given,
    sorted."""
    with Session(writer.engine) as s:
        if not has_table(s, "file_metadata"):
            return []
        stored = exists().where(FileMetadata.file_id == File.id, FileMetadata.key == key)
        query = select(File.path).where(~stored)
        if having is not None:
            query = query.where(exists().where(FileMetadata.file_id == File.id, FileMetadata.key == having))
        return [p for p in s.scalars(query.order_by(File.path)) if p in present]


def files_with(writer: IndexWriter, paths: Iterable[str], key: str) -> set[str]:
    """Those of the indexed ``paths`` with a ``key`` row beside their metadata."""
    wanted = sorted(set(paths))
    found: set[str] = set()
    with Session(writer.engine) as s:
        if not has_table(s, "file_metadata"):
            return found
        for i in range(0, len(wanted), SQL_CHUNK):
            found.update(s.scalars(select(File.path).where(
                File.path.in_(wanted[i:i + SQL_CHUNK]),
                exists().where(FileMetadata.file_id == File.id, FileMetadata.key == key))))
    return found


def followers_of(paths: list[str], same: Mapping[str, str]) -> dict[str, list[str]]:
    """Path → those of ``paths`` that ``same`` (path → the indexed path whose rows and vectors it
    was given in this run: indexer.same_file) gives its rows, for the paths among ``paths`` that
    have some: a pass decodes the first and gives the others its outcome."""
    done_here = set(paths)
    out: dict[str, list[str]] = defaultdict(list)
    for p in paths:
        if same.get(p) in done_here:
            out[same[p]].append(p)
    return dict(out)


def _ignore_interrupts() -> None:
    """Ctrl-C reaches the whole process group: the indexing process stores what is done."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _mapped(fn: Callable[..., R], paths: Sequence[str], more: Sequence[Iterable[Any]], workers: int) -> Iterator[R]:
    if workers <= 0 or len(paths) < 2:
        yield from map(fn, paths, *more)
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context(START_METHOD),
                               initializer=_ignore_interrupts)
    try:
        yield from pool.map(fn, paths, *more, chunksize=4)
    finally:                        # Ctrl-C: the files not started yet are not waited for
        pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def each_file(fn: Callable[..., R], paths: Sequence[str], *more: Iterable[Any], workers: int = 0,
              progress: bool = False, desc: str, doing: str) -> Iterator[Iterator[R]]:
    """``fn(path, *more)`` for each of ``paths``, in ``workers`` processes (0: this one), in order,
    with a progress bar ``desc`` on stderr when ``progress`` (log lines print above it). Closed on
    leaving the block, Ctrl-C too: the bar ends and no file not started is waited for. A process
    that dies ends the results early, with one warning saying that it did while ``doing`` and how
    many files are left for the next run. ``fn`` must be picklable and never raise for a bad file."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    def results() -> Iterator[R]:
        n = 0
        try:
            with contextlib.closing(_mapped(fn, paths, more, workers)) as mapped:
                for r in mapped:
                    n += 1
                    bar.update(1)
                    yield r
        except BrokenProcessPool:   # a decoder crashed the process (not a Python error): stop here
            left = len(paths) - n
            log.warning("a decoder process died while %s; %s %s left for the next run", doing,
                        count(left, "file"), "is" if left == 1 else "are")

    bar = tqdm(total=len(paths), unit="file", desc=desc, file=sys.stderr, disable=not progress, dynamic_ncols=True)
    running = results()
    try:
        with logging_redirect_tqdm() if progress else contextlib.nullcontext():
            yield running
    finally:
        running.close()
        bar.close()
