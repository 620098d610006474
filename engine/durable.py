"""Writes that survive a crash or a power cut: a file flushed to the disk before it is renamed
into place, and the rename itself made durable (the rename alone may reach the disk first)."""
from __future__ import annotations

import os
from pathlib import Path


def fsync_file(path: str | Path) -> None:
    """Flush the written file ``path`` to the disk."""
    with open(path, "rb+") as f:       # writable: Windows flushes only a handle it may write
        os.fsync(f.fileno())


def fsync_dir(folder: str | Path) -> None:
    """Make a rename inside ``folder`` durable."""
    fd = os.open(str(folder), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(tmp: str | Path, path: str | Path) -> None:
    """Rename the written file ``tmp`` to ``path``: its data on the disk first, then the rename."""
    fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(Path(path).parent)
