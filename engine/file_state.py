"""A file's state as the catalog records it: its size in bytes and modification time in ns.

One definition of "the file is as it was" for every check that compares a file on disk with a
recorded state (tagging from stored vectors, a file changed while it was indexed, a watched file
still being written)."""
from __future__ import annotations

import os
from pathlib import Path

#: ``(size, mtime_ns)``
FileState = tuple[int, int]


def state_now(path: str | Path) -> FileState | None:
    """``(size, mtime_ns)`` of the file at ``path`` now (through links); None when it is gone or
    cannot be stat'ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return int(st.st_size), int(st.st_mtime_ns)
