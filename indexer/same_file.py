"""One audio under several paths (hard links, identical copies): decoded and embedded once per run.

A library may reach one file under several paths: hard links (``cp -al`` snapshots, a
"Favourites" folder of links, rsync ``--link-dest`` backups) share one device and inode. It also
holds byte-identical copies: the same effect in several packs or folders (``soundsift
duplicates`` lists them). The catalog keeps each path as a file of its own (search lists every
name), but the audio is the same, so a run decodes and embeds it under its first path only and
gives each other path a copy of that path's segments and vectors (engine.duplicates.hard_links
tells the names of one file apart for `soundsift duplicates`).

Paths are only taken for one another where nothing the indexer reads besides the bytes can
differ between them: the same extension (it picks the decoder), the same sidecar cue sheet
(engine.cue_sheet: its takes become segments), and not Sound Designer II (its resource fork
lies beside each name, engine.sound_designer). Their bytes are the same where they are one file
on disk (device and inode), else where every byte is (SHA-256 of the whole file: two renders may
differ only between the blocks engine.file_metadata.content_fingerprint samples). Only files
sharing a size are looked at, and only those sharing a content fingerprint too are read whole,
each file on disk once. (Symbolic links to a file need none of this: the walk keeps a file by
its resolved path, so all its links are one catalog path; indexer.scan.)
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable, Hashable, Iterable, Mapping, Sequence

from engine.cue_sheet import sidecar_state
from engine.file_metadata import content_fingerprint, named_markers
from engine.file_state import FileState
from engine.sound_designer import is_sd2
from engine.towers.cache import file_sha256
from indexer.scan import ScannedFile

log = logging.getLogger(__name__)

Inode = tuple[int, int]


@dataclass(frozen=True)
class Audio:
    """What :func:`audio_of` knows of a file that may share its audio with another."""

    key: Hashable       # equal for files the indexer reads alike (same bytes, extension, cue sheet)
    inode: Inode        # the file on disk (device, inode): equal for names of one file (hard links)


def same_file_key(f: ScannedFile) -> tuple[Hashable, Inode] | None:
    """What the indexer reads of ``f`` besides its bytes (size, extension and sidecar cue sheet),
    and the file on disk it is (device, inode); None where it cannot be known (the file or its
    sheet cannot be stat'ed now, or it changed since the walk) or names may read differently
    (Sound Designer II)."""
    if is_sd2(f.path):
        return None
    try:
        st = os.stat(f.path)
        sheet = sidecar_state(f.path)
    except OSError as e:
        log.debug("%s: decoded on its own (%s)", f.path, e)
        return None
    if (int(st.st_size), int(st.st_mtime_ns)) != f.state:    # changed since the walk: not the same
        return None
    return (f.size, os.path.splitext(f.path)[1].lower(), sheet), (st.st_dev, st.st_ino)


def _read(what: Callable[[str], str], path: str) -> str | None:
    """``what(path)`` (a hash of its bytes), None where it cannot be read (the file is decoded on
    its own, and fails there if it fails)."""
    try:
        return what(path)
    except OSError as e:
        log.debug("%s: decoded on its own (%s)", path, e)
        return None


def _groups(positions: Iterable[int], key: Callable[[int], Hashable | None],
            useful: Callable[[list[int]], bool]) -> list[list[int]]:
    """``positions`` (ascending) grouped by ``key`` (None: in no group), the useful groups only."""
    by: dict[Hashable, list[int]] = {}
    for i in positions:
        k = key(i)
        if k is not None:
            by.setdefault(k, []).append(i)
    return [g for g in by.values() if useful(g)]


def audio_of(files: Sequence[ScannedFile], useful: Callable[[list[int]], bool] = lambda g: len(g) > 1,
             fingerprints: Mapping[str, str | None] | None = None) -> dict[int, Audio]:
    """Position → :class:`Audio` for the files of ``files`` that may be the same audio as another
    in a ``useful`` group of positions (default: two or more). Narrowed in steps, each on the
    useful groups the last left: the same size; the same content fingerprint (``fingerprints``:
    those known by path, e.g. stored in the catalog, else read); the same extension and sidecar cue
    sheet (:func:`same_file_key`); then, where several files on disk are left, SHA-256 of all their
    bytes, each file on disk read once."""
    known = fingerprints or {}
    prints: dict[int, str | None] = {}

    def printed(i: int) -> str | None:
        path = files[i].path
        if (fp := known.get(path)) is None:
            fp = _read(content_fingerprint, path)
        prints[i] = fp
        return fp

    out: dict[int, Audio] = {}
    for same_size in _groups(range(len(files)), lambda i: files[i].size, useful):
        for same_print in _groups(same_size, printed, useful):
            seen = {i: same_file_key(files[i]) for i in same_print}
            for group in _groups(same_print, lambda i: seen[i] and seen[i][0], useful):
                marks = _markers_by_name(files, group)
                digests: dict[Inode, str | None] = {}
                if len({seen[i][1] for i in group}) > 1:      # several files on disk: their bytes
                    for i in group:
                        if (inode := seen[i][1]) not in digests:
                            digests[inode] = _read(file_sha256, files[i].path)
                for i in group:
                    kind, inode = seen[i]
                    if i not in marks:
                        continue
                    if inode not in digests:
                        out[i] = Audio((kind, prints[i], marks[i], "inode", inode), inode)
                    elif digests[inode] is not None:
                        out[i] = Audio((kind, prints[i], marks[i], "sha256", digests[inode]), inode)
    return out


def _markers_by_name(files: Sequence[ScannedFile], group: list[int]) -> dict[int, Hashable]:
    """Position → what the file's named markers are, for the files of ``group`` (positions of
    files alike so far): None for all where their names are one (their bytes give one set), else
    each file's markers as read (an embedded cue sheet naming several files gives a file the
    tracks of its own name: two copies under other names may be cut into other takes). A file
    whose markers cannot be read is left out (decoded on its own, which says why)."""
    if len({os.path.basename(files[i].path) for i in group}) == 1:
        return {i: None for i in group}
    out: dict[int, Hashable] = {}
    for i in group:
        try:
            out[i] = tuple((m.at, m.name, m.length) for m in named_markers(files[i].path))
        except (OSError, ValueError) as e:
            log.debug("%s: decoded on its own (%s)", files[i].path, e)
    return out


def other_names(files: Sequence[ScannedFile]) -> tuple[dict[int, list[int]], set[int]]:
    """For each file of ``files`` whose audio others among them share (:func:`audio_of`), its
    position → the positions of the others, the first (lowest position) being the key; and the
    positions of those others that are copies (another file on disk with the same bytes) rather
    than other names of the first's file."""
    audio = audio_of(files)
    first: dict[Hashable, int] = {}
    out: dict[int, list[int]] = {}
    copies: set[int] = set()
    for i in sorted(audio):
        a = audio[i]
        if a.key not in first:
            first[a.key] = i
            continue
        out.setdefault(first[a.key], []).append(i)
        if a.inode != audio[first[a.key]].inode:
            copies.add(i)
    return out, copies


def indexed_names(files: Sequence[ScannedFile], kept: Mapping[str, FileState],
                  stored: Callable[[list[str]], Mapping[str, str | None]] | None = None
                  ) -> tuple[dict[str, str], set[str]]:
    """For each of ``files`` (new or changed in this run) whose audio an indexed file among
    ``kept`` (path → state: those the run keeps as they are) has, its path → that file's path
    (:func:`audio_of`); and those of them that are copies of it rather than other names of its
    file. Only indexed files with the size of one of ``files`` are looked at; ``stored`` gives
    their content fingerprints as indexed (by path; None where none was kept), so only those
    with a new file's fingerprint are read."""
    sizes = {f.size for f in files}
    candidates = sorted(p for p, state in kept.items() if state[0] in sizes)
    if not candidates:
        return {}, set()
    every = [*files, *(ScannedFile(p, *kept[p]) for p in candidates)]
    n = len(files)

    def new_and_kept(group: list[int]) -> bool:     # positions ascend: a new file and an indexed one
        return group[0] < n <= group[-1]

    on_hand = {f.path for f in files}
    prints = {p: fp for p, fp in (stored(candidates) if stored else {}).items() if p not in on_hand}
    audio = audio_of(every, new_and_kept, prints)
    indexed = {audio[i].key: i for i in sorted(audio, reverse=True) if i >= n}   # the first of each
    out: dict[str, str] = {}
    copies: set[str] = set()
    for i in sorted(a for a in audio if a < n):
        if (j := indexed.get(audio[i].key)) is not None:
            out[every[i].path] = every[j].path
            if audio[i].inode != audio[j].inode:
                copies.add(every[i].path)
    return out, copies


def said_of(reason: str, first: str, other: str) -> str:
    """What the decoder said of the name ``first``, said of its other name ``other`` (a reason
    names the file it opened)."""
    return reason.replace(first, other)
