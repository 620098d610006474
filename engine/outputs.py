"""Checks on where a command will write, made before it does any work.

A folder given where a file is written (or a file where a folder is), or a place this process
may not write, is the user's slip, not a crash to be found after minutes of embedding or
training: it is an :class:`InvalidOutput` naming the path. A ``~`` the shell left (a quoted
``'~/Session/rain'``, a script's argument list) is the home folder, as in every path soundsift
reads, not a folder named ``~`` made in the current one.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from engine.errors import InvalidOutput

log = logging.getLogger(__name__)


def output_file(path: str | Path, option: str = "--out") -> Path:
    """``path`` as a Path (``~`` expanded), for a file to be (re)written (the caller makes missing
    folders); InvalidOutput when it is a folder, or a file stands where one of its folders would go."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise InvalidOutput(f"{path}: is a folder; {option} must name a file")
    _check_folders_above(path, option)
    return path


def output_folder(path: str | Path, option: str = "--out") -> Path:
    """``path`` as a Path (``~`` expanded), for a folder to be made or filled; InvalidOutput when it
    is a file, or a file stands where one of the folders above it would go."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise InvalidOutput(f"{path}: is a file; {option} must name a folder")
    _check_folders_above(path, option)
    return path


def make_folder(path: str | Path) -> Path:
    """Make the output folder ``path`` (and those above it) if it is missing, and say so: a
    mistyped ``--out`` should not become a new folder without a word. ``~`` is the home folder,
    as in :func:`output_folder` (which checks the place a caller then makes here)."""
    path = Path(path).expanduser()
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        log.info("%s: made this folder (it did not exist)", path)
    return path


def _check_folders_above(path: Path, option: str) -> None:
    """InvalidOutput when the nearest existing folder above ``path`` is a file, or when what
    would be written there cannot be (no write permission, a read-only drive): said before any
    work, not after minutes of captioning or training."""
    above = next((folder for folder in path.absolute().parents if folder.exists()), None)
    if above is not None and not above.is_dir():
        raise InvalidOutput(f"{path}: {above} is a file, not a folder; {option} cannot go there")
    target = path if path.exists() else above
    if target is not None and not os.access(target, os.W_OK):
        raise InvalidOutput(f"{path}: cannot write {'it' if target == path else f'in {target}'} "
                            f"({_why_not_writable(target)}); give {option} a place you can write")


def _why_not_writable(path: Path) -> str:
    """"read-only file system" or "permission denied", as the OS would say it."""
    return "read-only file system" if on_read_only_mount(path) else "permission denied"


def on_read_only_mount(path: str | Path) -> bool:
    """Whether ``path`` lies on a file system mounted read-only (False when that cannot be told)."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
