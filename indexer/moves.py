"""Files that moved or were renamed keep their vectors, tags and captions.

Sound designers reorganise libraries: a folder renamed, files sorted into category folders, a
batch renamed to a naming scheme. By path alone each of those is a deleted file and a new one,
so it was embedded again (hours for a large library) and the user's tags and captions on it
were lost. :func:`find_moves` pairs the deleted files of a run with its new files instead:

* the same size and the same modification time (``mv``, Finder, Explorer and ``rsync -a`` keep
  both; a file written anew does not have the old one's time): to the nanosecond, or as a
  filesystem with coarser times keeps it (:func:`kept_time`: a move onto a FAT, exFAT, HFS+ or
  network drive rounds it) when the content fingerprint below agrees;
* the same audio header: sample rate, channels, container and encoding, and a length within
  0.1 s or 1 % (read from the new file's header, so a stray match of size and time between
  two different recordings is not taken);
* the same content fingerprint (a hash of 16 kB at the start, middle and end of the file,
  stored when it was indexed; files indexed before session 22 have none and pair without it),
  so two equal-length renders of one pack, unpacked with one time, are not taken for each other;
* one to one: when several deleted and several new files share size and time (a batch of
  equal-length renders unpacked from one archive) they are paired by file name, then by content
  fingerprint; what stays ambiguous is embedded again, as before.

A path that is still there with another size or time may hold another path's old file too: two
files that swapped names, a rotation of names, a file moved over an indexed one (``mv a b``).
:func:`find_moves_among_changed` takes such paths on both sides by the same rules, where each took
another's old file; one whose own old file went nowhere was overwritten (:func:`overwritten`): that
recording leaves the index with its tags, and the row of the file moved there takes the path.

:mod:`indexer.relocate` is for what a run cannot see: the library's drive mounted at another path, or
its top folder renamed, so the old paths are outside every root the run scans;
:func:`moved_root_hint` notices that case in an ordinary run and names the command.
"""
from __future__ import annotations

import logging
import os
import shlex
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from engine.audio import probe
from engine.errors import UnreadableAudio
from engine.file_metadata import content_fingerprint
from engine.layout import index_option
from engine.wording import count
from indexer.scan import ScannedFile, on_disk_spelling, under_roots

log = logging.getLogger(__name__)

#: how far a moved file's length read from its header may be from the decoded one
LENGTH_TOLERANCE_S, LENGTH_TOLERANCE_REL = 0.1, 0.01
#: the coarsest time a filesystem keeps (FAT: 2 s; HFS+, ext3, SMB: 1 s; exFAT: 10 ms; NTFS: 100 ns)
COARSEST_TIME_NS = 2_000_000_000


def kept_time(old_ns: int, new_ns: int) -> bool:
    """Whether modification time ``new_ns`` is ``old_ns`` itself or ``old_ns`` as a filesystem
    with coarser times keeps it: within 2 s, and in whole 100 ns (what every such filesystem
    stores; a time the kernel stamps on a file written anew is to the nanosecond)."""
    return new_ns == old_ns or (abs(new_ns - old_ns) <= COARSEST_TIME_NS and new_ns % 100 == 0)


@dataclass(frozen=True)
class Move:
    """An indexed file now found at another path: its catalog row follows it."""

    old: str
    new: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Header:
    """What the catalog knows of a file's audio (compared with a candidate's header)."""

    sample_rate: int
    channels: int
    format: str
    subtype: str
    duration: float
    fingerprint: str | None = None      # engine.file_metadata.content_fingerprint; None before session 22


def same_audio(header: Header, path: str) -> bool:
    """Whether the audio header of ``path`` matches ``header``, and its content fingerprint the
    catalog's where the catalog has one (False when it cannot be read)."""
    try:
        info = probe(path)
        if not ((info.sample_rate, info.channels, info.format, info.subtype)
                == (header.sample_rate, header.channels, header.format, header.subtype)
                and abs(info.frames / info.sample_rate - header.duration)
                <= max(LENGTH_TOLERANCE_S, LENGTH_TOLERANCE_REL * header.duration)):
            return False
        return header.fingerprint is None or content_fingerprint(path) == header.fingerprint
    except (UnreadableAudio, OSError) as e:
        log.debug("%s: not taken as a moved file (%s)", path, e)
        return False


def find_moves(deleted: Sequence[str], new: Sequence[ScannedFile], state: Mapping[str, tuple[int, int]],
               headers: Mapping[str, Header]) -> list[Move]:
    """Pairs (deleted catalog file, new file on disk) that are one file moved or renamed.

    ``state``: the catalog's path → (size, mtime_ns); ``headers``: the catalog's header of
    each deleted path. Sorted by old path.
    """
    gone: dict[tuple[int, int], list[str]] = defaultdict(list)
    for path in deleted:
        gone[tuple(state[path])].append(path)
    arrived: dict[tuple[int, int], list[ScannedFile]] = defaultdict(list)
    for f in new:
        if (f.size, f.mtime_ns) in gone:
            arrived[(f.size, f.mtime_ns)].append(f)
    moves = []
    for key, files in arrived.items():
        for old, f in _pair(gone[key], files):
            if same_audio(headers[old], f.path):
                moves.append(Move(old, f.path, f.size, f.mtime_ns))
    moves += _pair_by_fingerprint(deleted, new, state, headers, moves)
    return sorted(moves, key=lambda m: m.old)


def find_moves_among_changed(deleted: Sequence[str], new: Sequence[ScannedFile], changed: Sequence[ScannedFile],
                             state: Mapping[str, tuple[int, int]], headers: Mapping[str, Header]) -> list[Move]:
    """:func:`find_moves`, where a changed path (indexed, now with another size or time) may also
    have given its old file to another path and taken another path's old file: two files that
    swapped names, a rotation, ``mv b d; mv a b``, or a file moved over an indexed one (``mv a b``:
    b took a's file, and b's own recording is gone; :func:`overwritten`). ``headers``: the
    catalog's header of each deleted and changed path.

    A changed path takes part only when another indexed file moved in (by size, time, header and
    fingerprint, as any move), so it ends with a moved row. One that only gives (``cp -p a e``,
    then a re-rendered over: a copy or a move, which cannot be told) stays a changed file,
    embedded again with the user's tags kept, as before; so does one edited in place, whose new
    file is no indexed file's old one. Such paths are dropped and the rest paired again until every
    changed path in the result takes.
    """
    taking = {f.path: f for f in changed}
    while True:
        olds = list(deleted) + sorted(taking)
        moves = [m for m in find_moves(olds, list(new) + list(taking.values()), state, headers)
                 if m.old != m.new]          # its own file at its own path: an edit after all
        gave, took = {m.old for m in moves}, {m.new for m in moves}
        giving_only = {p for p in taking if p in gave and p not in took}
        if not giving_only:
            return moves
        for p in giving_only:
            del taking[p]


def overwritten(moves: Sequence[Move], changed: Sequence[ScannedFile]) -> dict[str, str]:
    """The changed paths among ``moves``' new paths whose own indexed file went to no path of the
    run (``mv a b`` over an indexed b): path → the old path of the file that now lies there.
    Their rows go (their tags and captions with them); the moved file's row takes the path."""
    gave = {m.old for m in moves}
    changed_paths = {f.path for f in changed}
    return {m.new: m.old for m in moves if m.new in changed_paths and m.new not in gave}


def _pair(olds: list[str], news: list[ScannedFile]) -> list[tuple[str, ScannedFile]]:
    """One to one: the only pair, else the pairs whose file names are unique on both sides."""
    if len(olds) == 1 and len(news) == 1:
        return [(olds[0], news[0])]
    old_names = Counter(os.path.basename(p) for p in olds)
    new_by_name: dict[str, list[ScannedFile]] = defaultdict(list)
    for f in news:
        new_by_name[os.path.basename(f.path)].append(f)
    return [(p, new_by_name[os.path.basename(p)][0]) for p in olds
            if old_names[os.path.basename(p)] == 1 and len(new_by_name[os.path.basename(p)]) == 1]


def _pair_by_fingerprint(deleted: Sequence[str], new: Sequence[ScannedFile], state: Mapping[str, tuple[int, int]],
                         headers: Mapping[str, Header], paired: Sequence[Move]) -> list[Move]:
    """The moves the size-and-time pairing left: a deleted file with a stored fingerprint and a new
    file of its size whose time is its own or a coarser filesystem's rounding of it
    (:func:`kept_time`), paired where the fingerprint is unique on both sides."""
    taken_old, taken_new = {m.old for m in paired}, {m.new for m in paired}
    olds: dict[int, list[str]] = defaultdict(list)
    for path in deleted:
        if path not in taken_old and headers[path].fingerprint is not None:
            olds[state[path][0]].append(path)
    by_print: dict[tuple[int, str], tuple[list[str], list[ScannedFile]]] = {}
    for path in (p for group in olds.values() for p in group):
        by_print.setdefault((state[path][0], headers[path].fingerprint or ""), ([], []))[0].append(path)
    for f in new:
        if f.path in taken_new or not any(kept_time(state[o][1], f.mtime_ns) for o in olds.get(f.size, ())):
            continue
        try:
            key = (f.size, content_fingerprint(f.path))
        except OSError as e:
            log.debug("%s: not taken as a moved file (%s)", f.path, e)
            continue
        if key in by_print:
            by_print[key][1].append(f)
    moves = []
    for (size, _), (old_paths, files) in by_print.items():
        if (len(old_paths) == 1 and len(files) == 1 and kept_time(state[old_paths[0]][1], files[0].mtime_ns)
                and same_audio(headers[old_paths[0]], files[0].path)):
            moves.append(Move(old_paths[0], files[0].path, size, files[0].mtime_ns))
    return moves


def spelt_so_on_disk(path: str) -> bool:
    """Whether ``path`` is there as spelt: on a case-insensitive file system a folder renamed
    only in case (``Sounds`` → ``sounds``) still opens by its old name, which is gone all the same
    (:func:`indexer.scan.on_disk_spelling`)."""
    return os.path.lexists(path) and on_disk_spelling(path) == path


def _split_at_common_tail(old: str, new: str) -> tuple[str, str]:
    """The folders above the longest shared tail of two paths: ``/a/x/y.wav``, ``/b/x/y.wav`` →
    ``/a``, ``/b``."""
    a, b = Path(old).parts, Path(new).parts
    n = 0
    while n < min(len(a), len(b)) - 1 and a[-1 - n] == b[-1 - n]:
        n += 1
    return str(Path(*a[:len(a) - n])), str(Path(*b[:len(b) - n]))


def moved_root_hint(state: Mapping[str, tuple[int, int]], new: Sequence[ScannedFile],
                    roots: Sequence[str], index: str | Path) -> tuple[str, str, int] | None:
    """When new files are indexed files whose old place outside ``roots`` is gone (a drive
    mounted elsewhere, a renamed top folder), warn once with the `soundsift relocate` command
    that keeps their vectors, tags and captions; returns (old folder, new folder, files) or None.

    A candidate has the same size, file name and modification time (or that time as a coarser
    filesystem keeps it, :func:`kept_time`) as exactly one indexed file, and that file's path
    does not exist now as spelt (:func:`spelt_so_on_disk`).
    """
    outside: dict[tuple[int, str], list[str]] = defaultdict(list)
    for path, (size, _) in state.items():
        if not under_roots(path, roots):
            outside[(size, os.path.basename(path))].append(path)
    if not outside:
        return None
    votes: Counter[tuple[str, str]] = Counter()
    for f in new:
        olds = [p for p in outside.get((f.size, os.path.basename(f.path)), ())
                if kept_time(state[p][1], f.mtime_ns)]
        if len(olds) == 1 and not spelt_so_on_disk(olds[0]):
            votes[_split_at_common_tail(olds[0], f.path)] += 1
    if not votes:
        return None
    (old, new_folder), n = votes.most_common(1)[0]
    log.warning("%d of the %s %s indexed before under %s, which is not there now. If the "
                "library moved, stop this run (Ctrl-C keeps what is done) and run `soundsift relocate "
                "%s %s --index %s`: it keeps %s vectors, tags and captions instead of embedding %s "
                "again", n, count(len(new), "new file"), "was" if n == 1 else "were", old, shlex.quote(old),
                shlex.quote(new_folder), index_option(index), *(("its", "it") if n == 1 else ("their", "them")))
    return old, new_folder, n
