"""Stage 1: walk the library and decide what changed since the last run.

A file's identity is its resolved absolute path plus its size and ``mtime_ns``: the
same path with another size or mtime is a changed file. (Content hashing would cost a
full read of every file on every run; size + mtime_ns is what rsync and make trust.)

:func:`scan` never raises for a bad entry: broken symbolic links, symbolic-link loops,
directories that cannot be listed and names that are not valid UTF-8 come back as
:class:`ScanError` rows; the walk goes on. :func:`diff` is a function of the catalog's
state and the scan, and of the disk only for the indexed files the walk does not take (a file
without an audio extension, indexed because it was given by name: :func:`given_by_name`).

What an operating system leaves beside a library is not walked and not reported as a failure,
only counted (the folders also named): the ``._Name.wav`` AppleDouble files macOS writes next to
every file it copies to an exFAT or network drive (4 KB of Finder metadata each, recognised by their magic number),
``__MACOSX`` folders of unpacked zips, hidden folders (``.Trashes``, ``.Spotlight-V100``,
``.Trash-1000``, ``.git`` …) and Windows' ``$RECYCLE.BIN`` and ``System Volume Information``.
A folder given as a root is walked whatever its name. (``.m4a``, ``.wma``, ``.wv`` … are read
through FFmpeg, engine.ffmpeg_audio; Sound Designer II ``.sd2`` by its resource fork,
engine.sound_designer.)
"""
from __future__ import annotations

import errno
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from engine.audio import is_audio_name     # (indexer modules import it from here)
from engine.cue_sheet import sidecar_cue
from engine.file_state import FileState
from engine.folder_paths import on_disk_spelling, under_roots   # (indexer modules import them from here)
from engine.system_files import is_appledouble, is_system_folder
from engine.wording import count

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScannedFile:
    """An audio file found on disk: resolved absolute path, size in bytes, mtime in ns."""

    path: str
    size: int
    mtime_ns: int

    @property
    def state(self) -> FileState:
        """``(size, mtime_ns)`` as the walk found it (engine.file_state)."""
        return self.size, self.mtime_ns


@dataclass(frozen=True)
class ScanError:
    """A path the walk could not use, and why (becomes an error row in the catalog)."""

    path: str
    reason: str
    folder: bool = False        # a folder that could not be listed (its files are unknown)


#: the kinds of entries a walk passes over: the keys of ``skipped`` (in `soundsift index --json`
#: too, so they stay as they are); :func:`describe_skipped` words their counts for people
SKIPPED_METADATA = "macOS metadata files (._*)"
SKIPPED_FOLDERS = "hidden or system folders"
#: each kind's singular, for a count of one ("1 macOS metadata file (._*)")
_SKIPPED_ONE = {SKIPPED_METADATA: "macOS metadata file (._*)", SKIPPED_FOLDERS: "hidden or system folder"}


#: how many of the folders passed over :func:`describe_skipped` names before "and N more"
NAMED_FOLDERS = 3
#: how many of the folders passed over a run's ``--json`` summary lists (:func:`capped_folders`)
LISTED_FOLDERS = 100


def capped_folders(folders: Sequence[str]) -> tuple[list[str], int]:
    """The first :data:`LISTED_FOLDERS` of ``folders`` sorted, and how many more were left off."""
    ordered = sorted(folders)
    return ordered[:LISTED_FOLDERS], max(0, len(ordered) - LISTED_FOLDERS)


def describe_skipped(skipped: Mapping[str, int], folders: Sequence[str] = ()) -> str:
    """What a walk passed over (kind → count, :attr:`ScanResult.skipped`), with each count agreeing
    with its kind, the hidden or system folders named after their count (``folders``:
    :attr:`ScanResult.skipped_folders`, the first :data:`NAMED_FOLDERS`, then how many more):
    ``1 macOS metadata file (._*), 4 hidden or system folders (/lib/.git, /lib/.Trashes,
    /lib/A/.Spotlight-V100 and 1 more)``."""
    return ", ".join(count(n, _SKIPPED_ONE.get(kind, kind), kind) + (_named(folders, n) if kind == SKIPPED_FOLDERS else "")
                     for kind, n in skipped.items())


def _named(folders: Sequence[str], total: int) -> str:
    """`` (A, B, C and N more)``: the first :data:`NAMED_FOLDERS` of ``folders`` (``total`` in all:
    the list may be capped, :func:`capped_folders`); nothing for none."""
    if not folders:
        return ""
    more = max(total, len(folders)) - NAMED_FOLDERS
    return f" ({', '.join(folders[:NAMED_FOLDERS])}{f' and {more} more' if more > 0 else ''})"


#: spreadsheets a library may describe its files in (engine.metadata_sheet): noted by the walk,
#: so a run can point at the ones not imported yet
SHEET_SUFFIXES = frozenset({".csv", ".tsv", ".xlsx", ".xlsm", ".ods", ".xls"})


@dataclass
class ScanResult:
    """Everything one walk found: files by path, the entries it could not use, how many
    entries it passed over (kind → count: SKIPPED_METADATA, SKIPPED_FOLDERS),
    and the cue sheets in the folders walked (resolved path → (size, mtime_ns); engine.cue_sheet).
    ``links``: the symbolic links to folders and audio files the walk met, as it spelt them, with
    their resolved targets (a broken link's as far as it resolves; indexer.links).
    ``spreadsheets``: the CSV/TSV/.xlsx/.ods files among them (a library's metadata sheet, maybe).
    ``held``: files the caller took out of ``files`` for now (indexer.watch: still being written);
    a run neither indexes nor drops them."""

    files: dict[str, ScannedFile] = field(default_factory=dict)
    errors: list[ScanError] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    cue_sheets: dict[str, tuple[int, int]] = field(default_factory=dict)
    held: list[str] = field(default_factory=list)
    spreadsheets: list[str] = field(default_factory=list)    # CSV, TSV, .xlsx, .ods … among the files
    links: dict[str, str] = field(default_factory=dict)      # symbolic links met: path → resolved target
    skipped_folders: list[str] = field(default_factory=list)  # the hidden or system folders passed over

    def cue_folders(self) -> set[str]:
        """The folders that hold a cue sheet (where an audio file may have a sidecar)."""
        return {os.path.dirname(p) for p in self.cue_sheets}

    def skip(self, kind: str, path: str) -> None:
        log.debug("not scanned (%s): %s", kind, printable(path))
        self.skipped[kind] = self.skipped.get(kind, 0) + 1
        if kind == SKIPPED_FOLDERS:
            self.skipped_folders.append(printable(path))


@dataclass(frozen=True)
class Diff:
    """What a run has to do, each list sorted by path.

    new        on disk, not in the catalog
    changed    in the catalog with another size or mtime
    deleted    in the catalog under one of the scanned roots, no longer on disk
    unchanged  same path, size and mtime as in the catalog
    """

    new: list[ScannedFile]
    changed: list[ScannedFile]
    deleted: list[str]
    unchanged: list[str]


def printable(path: str) -> str:
    """``path`` made safe to store and print (undecodable bytes shown as escapes)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def normalize_root(root: str | Path) -> str:
    """A root as an absolute path with symbolic links resolved and spelt as its folders list it
    (:func:`on_disk_spelling`): how catalog paths are kept."""
    return on_disk_spelling(os.path.realpath(walked_root(root)))


def walked_root(root: str | Path) -> str:
    """A root as :func:`scan` walks it and spells the paths under it: absolute, ``~`` expanded,
    symbolic links kept, in the case its folders list it (:func:`on_disk_spelling`)."""
    return on_disk_spelling(os.path.abspath(os.path.expanduser(str(root))))


def scan(roots: Iterable[str | Path]) -> ScanResult:
    """Walk ``roots`` recursively (following symbolic links) and collect the audio files.

    A root may also be a single audio file. A root that does not exist is a ScanError.
    """
    result = ScanResult()
    visited_dirs: set[tuple[int, int]] = set()
    for root in roots:
        given = walked_root(root)
        if not os.path.lexists(given):
            result.errors.append(ScanError(printable(given), "not found: no such file or directory"))
            continue
        try:
            st = os.stat(given)
        except OSError as e:
            result.errors.append(ScanError(printable(given), _reason(e)))
            continue
        if stat.S_ISDIR(st.st_mode):
            _walk(given, (), visited_dirs, result)
        else:
            _add_file(given, result)
            sheet = sidecar_cue(os.path.realpath(given))
            if sheet:
                _add_cue_sheet(sheet, result)
    return result


def _reason(e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "symbolic link loop"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if e.errno == errno.ENOENT:
        return "vanished or broken symbolic link"
    return f"{e.strerror or type(e).__name__}"


def _walk(directory: str, ancestors: tuple[tuple[int, int], ...],
          visited: set[tuple[int, int]], result: ScanResult) -> None:
    """Depth-first walk of ``directory``; ``ancestors`` are the (dev, inode) keys above it."""
    try:
        st = os.stat(directory)
    except OSError as e:
        result.errors.append(ScanError(printable(directory), _reason(e)))
        return
    key = (st.st_dev, st.st_ino)
    if key in ancestors:
        result.errors.append(ScanError(printable(directory),
                                       "symbolic link loop: points back to a folder above it"))
        return
    if key in visited:          # reached twice through links: already walked, nothing to add
        log.debug("already scanned %s", printable(directory))
        return
    visited.add(key)
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as e:
        result.errors.append(ScanError(printable(directory),
                                       f"cannot list folder: {_reason(e)}", folder=True))
        return
    for entry in entries:
        path = entry.path
        try:
            is_dir = entry.is_dir()          # follows links
        except OSError as e:
            if is_audio_name(entry.name):
                result.errors.append(ScanError(printable(path), _reason(e)))
            continue
        if is_dir:
            if is_system_folder(entry.name):
                result.skip(SKIPPED_FOLDERS, path)
            else:
                if entry.is_symlink():
                    result.links[printable(path)] = os.path.realpath(path)
                _walk(path, ancestors + (key,), visited, result)
        elif is_audio_name(entry.name):
            if is_appledouble(path, entry.name):
                result.skip(SKIPPED_METADATA, path)
            else:
                _add_file(path, result)
        else:
            ext = os.path.splitext(entry.name)[1].lower()
            if ext == ".cue" and not entry.name.startswith("._"):
                _add_cue_sheet(path, result)
            elif ext in SHEET_SUFFIXES and not entry.name.startswith("._"):
                result.spreadsheets.append(printable(path))


def _add_file(path: str, result: ScanResult) -> None:
    """Resolve ``path`` and record it, or record why it cannot be used."""
    if printable(path) != path:
        result.errors.append(ScanError(printable(path),
                                       "file name is not valid UTF-8: rename the file to index it"))
        return
    if os.path.islink(path):
        result.links[path] = os.path.realpath(path)
    try:
        real = os.path.realpath(path, strict=True)
        st = os.stat(real)
    except OSError as e:
        if os.path.islink(path) and e.errno in (errno.ENOENT, errno.ELOOP):
            reason = ("symbolic link loop" if e.errno == errno.ELOOP
                      else "broken symbolic link: its target does not exist")
        else:
            reason = _reason(e)
        result.errors.append(ScanError(path, reason))
        return
    if not stat.S_ISREG(st.st_mode):
        result.errors.append(ScanError(path, "not a regular file"))
        return
    result.files.setdefault(real, ScannedFile(real, int(st.st_size), int(st.st_mtime_ns)))


def _add_cue_sheet(path: str, result: ScanResult) -> None:
    """Record the cue sheet ``path`` (one that cannot be resolved or stat'ed is left out: the
    file it describes says why when its sheet is read)."""
    try:
        real = os.path.realpath(path, strict=True)
        st = os.stat(real)
    except OSError as e:
        log.debug("cue sheet %s not recorded (%s)", printable(path), e)
        return
    result.cue_sheets.setdefault(real, (int(st.st_size), int(st.st_mtime_ns)))


def diff(catalog_state: Mapping[str, tuple[int, int]], scanned: Mapping[str, ScannedFile],
         roots: Iterable[str], keep_under: Iterable[str] = ()) -> Diff:
    """Compare the catalog (path → (size, mtime_ns)) with a scan of ``roots``.

    Only catalog files under the scanned roots can be ``deleted``: files indexed from
    other roots are left alone (their drive may just be unmounted). Files under
    ``keep_under`` (folders the walk could not list this time) are not deleted either.
    A catalog file whose name the walk passes over (no audio extension: indexed because it was
    given by name, :func:`scan`) is looked at on disk instead (:func:`given_by_name`): deleted
    only when it is gone, changed when its size or mtime is.
    """
    roots = list(roots)
    keep_under = list(keep_under)
    found = {**scanned, **kept_by_name(catalog_state, scanned, roots)}
    new, changed, unchanged = [], [], []
    for path in sorted(found):
        f = found[path]
        known = catalog_state.get(path)
        if known is None:
            new.append(f)
        elif tuple(known) != (f.size, f.mtime_ns):
            changed.append(f)
        else:
            unchanged.append(path)
    deleted = sorted(p for p in catalog_state
                     if p not in found and under_roots(p, roots) and not under_roots(p, keep_under))
    return Diff(new=new, changed=changed, deleted=deleted, unchanged=unchanged)


def kept_by_name(indexed: Iterable[str], scanned: Mapping[str, ScannedFile],
                 roots: Iterable[str]) -> dict[str, ScannedFile]:
    """The files of ``indexed`` (catalog paths) that the walk of ``roots`` (``scanned``) passes
    over for want of an audio extension, indexed because they were given by name, as they are on
    disk now (:func:`given_by_name`; those gone are not among them): what a walk of their folder
    keeps (:func:`diff`, and a rebuild's walk, indexer.rebuild)."""
    roots = list(roots)
    out = {}
    for p in indexed:
        if p not in scanned and not is_audio_name(os.path.basename(p)) and _folder_walked(p, roots):
            kept = given_by_name(p)
            if kept is not None:
                out[p] = kept
    return out


def _folder_walked(path: str, roots: Iterable[str]) -> bool:
    """Whether a walk of ``roots`` lists the folder of ``path``: under a root, and in no hidden
    or system folder below it (whose files, with or without an audio extension, are dropped)."""
    for root in roots:
        if under_roots(path, [root]):
            below = os.path.relpath(os.path.dirname(path), root)
            return below == "." or not any(is_system_folder(d) for d in below.split(os.sep))
    return False


def given_by_name(path: str) -> ScannedFile | None:
    """The indexed file ``path`` as it is on disk now, None when it is gone or no regular file:
    for a file the walk of its folder does not take (no audio extension), which was indexed
    because it was given by name (``soundsift index "lib/no_extension"``) and is kept by later
    walks of its folder as long as it is there."""
    try:
        st = os.stat(path)
    except OSError as e:
        log.debug("%s: gone (%s)", printable(path), e)
        return None
    return ScannedFile(path, int(st.st_size), int(st.st_mtime_ns)) if stat.S_ISREG(st.st_mode) else None
