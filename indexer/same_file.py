"""Several names of one file on disk (hard links): decoded and embedded once per run.

A library may reach one file under several paths: hard links (``cp -al`` snapshots, a
"Favourites" folder of links, rsync ``--link-dest`` backups) share one device and inode. The
catalog keeps each path as a file of its own (search lists every name), but the audio is the
same, so a run decodes and embeds it under its first name only and gives each other name a copy
of that name's segments and vectors (engine.duplicates.hard_links tells the same names apart
for `soundsift duplicates`).

Names are only taken for one another where nothing the indexer reads besides the bytes can
differ between them: the same extension (it picks the decoder), the same sidecar cue sheet
(engine.cue_sheet: its takes become segments), and not Sound Designer II (its resource fork
lies beside each name, engine.sound_designer). (Symbolic links to a file need none of this: the
walk keeps a file by its resolved path, so all its links are one catalog path; indexer.scan.)
"""
from __future__ import annotations

import logging
import os
from typing import Hashable, Mapping, Sequence

from engine.cue_sheet import sidecar_state
from engine.file_state import FileState
from engine.sound_designer import is_sd2
from indexer.scan import ScannedFile

log = logging.getLogger(__name__)


def same_file_key(f: ScannedFile) -> Hashable | None:
    """What names of one file on disk share, and nothing else does: device, inode, size, mtime,
    extension and sidecar cue sheet; None where it cannot be known (the file or its sheet cannot
    be stat'ed now) or names may read differently (Sound Designer II)."""
    if is_sd2(f.path):
        return None
    try:
        st = os.stat(f.path)
        sheet = sidecar_state(f.path)
    except OSError as e:
        log.debug("%s: decoded under its own name (%s)", f.path, e)
        return None
    if (int(st.st_size), int(st.st_mtime_ns)) != f.state:    # changed since the walk: not the same
        return None
    return st.st_dev, st.st_ino, f.size, f.mtime_ns, os.path.splitext(f.path)[1].lower(), sheet


def other_names(files: Sequence[ScannedFile]) -> dict[int, list[int]]:
    """For each file of ``files`` that has other names among them (:func:`same_file_key`), its
    position → the positions of its other names, the first name (lowest position) being the key.
    Only files sharing a size and modification time are stat'ed again (hard links always do)."""
    by_state: dict[tuple[int, int], list[int]] = {}
    for i, f in enumerate(files):
        by_state.setdefault(f.state, []).append(i)
    out: dict[int, list[int]] = {}
    for positions in by_state.values():
        if len(positions) < 2:
            continue
        first: dict[Hashable, int] = {}
        for i in positions:
            key = same_file_key(files[i])
            if key is None:
                continue
            if key in first:
                out.setdefault(first[key], []).append(i)
            else:
                first[key] = i
    return out


def indexed_names(files: Sequence[ScannedFile], kept: Mapping[str, FileState]) -> dict[str, str]:
    """For each of ``files`` (new or changed in this run) that is another name of an indexed file
    among ``kept`` (path → state: those the run keeps as they are), its path → that file's path.
    Only indexed files with the same size and modification time are stat'ed again."""
    by_state: dict[FileState, list[str]] = {}
    for path, state in kept.items():
        by_state.setdefault(tuple(state), []).append(path)
    keys: dict[str, Hashable | None] = {}
    out: dict[str, str] = {}
    for f in files:
        candidates = by_state.get(f.state)
        if not candidates or (key := same_file_key(f)) is None:
            continue
        for path in candidates:
            if path not in keys:
                keys[path] = same_file_key(ScannedFile(path, *f.state))
            if keys[path] == key:
                out[f.path] = path
                break
    return out


def said_of(reason: str, first: str, other: str) -> str:
    """What the decoder said of the name ``first``, said of its other name ``other`` (a reason
    names the file it opened)."""
    return reason.replace(first, other)
