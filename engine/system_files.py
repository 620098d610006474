"""What operating systems leave beside a sound library, which is not part of it.

macOS writes a ``._<name>`` AppleDouble file (Finder metadata, 4 KB) next to every file it copies
to an exFAT, FAT or network drive; unpacked zips hold ``__MACOSX`` folders; trash, index and
recycle folders are hidden or named by the system. The indexer's scan (``indexer.scan``) and
the commands that take folders (``soundsift tag``, ``soundsift caption``) pass over them alike.
"""
from __future__ import annotations

import os

#: the first four bytes of an AppleDouble file (macOS metadata written as ``._<name>``)
APPLEDOUBLE_MAGIC = b"\x00\x05\x16\x07"
#: folders of system files that hold no library (besides hidden folders, whose names start with ".")
SYSTEM_FOLDERS = frozenset({"__MACOSX", "$RECYCLE.BIN", "System Volume Information"})


def is_system_folder(name: str) -> bool:
    """True for a hidden folder or one an operating system keeps for itself."""
    return name.startswith(".") or name in SYSTEM_FOLDERS


def system_folder_of(path: str) -> str | None:
    """The innermost hidden or system folder (:func:`is_system_folder`) among the folders of the
    absolute ``path``, as a path; None where it lies in none."""
    folder = os.path.dirname(path)
    while True:
        parent, name = os.path.split(folder)
        if not name:
            return None
        if is_system_folder(name):
            return folder
        folder = parent


def is_appledouble(path: str, name: str) -> bool:
    """True for macOS's ``._<name>`` companion of a file: Finder metadata or a resource fork, not
    audio. Recognised by the AppleDouble magic number, or, for a Sound Designer II file's fork
    (which libsndfile writes bare, without that header), by its ``<name>`` beside it."""
    if not name.startswith("._"):
        return False
    if name.lower().endswith(".sd2") and os.path.isfile(os.path.join(os.path.dirname(path), name[2:])):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(4) == APPLEDOUBLE_MAGIC
    except OSError:
        return False            # unreadable: left to the caller, which says why
