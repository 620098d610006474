"""Checks on where a command will write, made before it does any work.

A folder given where a file is written (or a file where a folder is) is the user's slip, not a
crash to be found after minutes of embedding or training: it is an :class:`InvalidOutput`
naming the path.
"""
from __future__ import annotations

from pathlib import Path

from engine.errors import InvalidOutput


def output_file(path: str | Path, option: str = "--out") -> Path:
    """``path`` as a Path, for a file to be (re)written (the caller makes missing folders);
    InvalidOutput when it is a folder, or a file stands where one of its folders would go."""
    path = Path(path)
    if path.is_dir():
        raise InvalidOutput(f"{path}: is a folder; {option} must name a file")
    _check_folders_above(path, option)
    return path


def output_folder(path: str | Path, option: str = "--out") -> Path:
    """``path`` as a Path, for a folder to be made or filled; InvalidOutput when it is a file,
    or a file stands where one of the folders above it would go."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InvalidOutput(f"{path}: is a file; {option} must name a folder")
    _check_folders_above(path, option)
    return path


def _check_folders_above(path: Path, option: str) -> None:
    """InvalidOutput when the nearest existing folder above ``path`` is a file."""
    above = next((folder for folder in path.absolute().parents if folder.exists()), None)
    if above is not None and not above.is_dir():
        raise InvalidOutput(f"{path}: {above} is a file, not a folder; {option} cannot go there")
