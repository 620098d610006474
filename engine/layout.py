"""Where an index lives on disk, and how a name or a path resolves to it.

``indexes/<name>/`` holds
  catalog.db               SQLite catalog (WAL), the source of truth
  vectors-<generation>.faiss   the FAISS index of one committed generation
  index.json               human-readable mirror of the catalog's metadata
  .lock                    held by the one writer
  keywords.npz             the keyword (BM25) index of the last keyword search, a cache
                           (engine.query_keywords: rebuilt whenever it is stale or unreadable)
The catalog's ``meta.vectors_file`` names the FAISS file that belongs to its last
commit, so a reader always gets a catalog and vectors of the same generation.
"""
from __future__ import annotations

import errno
import os
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.errors import IndexNotFound, IndexReadOnly

INDEX_HOME_ENV = "SOUNDSIFT_INDEX_HOME"
DEFAULT_INDEX = "default"

#: what soundsift writes in an index folder (names, then glob patterns); anything else is not its own
OWN_NAMES = frozenset({"catalog.db", "catalog.db-wal", "catalog.db-shm", "catalog.db-journal",
                       "catalog.db.new", "catalog.db.new-journal",     # a new catalog's tables (engine.catalog)
                       "index.json", "index.json.tmp", ".lock", "keywords.npz"})
OWN_PATTERNS = ("vectors-*.faiss", "vectors-*.faiss.tmp", "vectors-*.raw.npy", "vectors-*.raw.npy.tmp",
                "keywords.npz.*.tmp")
#: errno of a write refused because the folder (or file) cannot be written: a read-only mount or
#: share, or no write permission
READ_ONLY_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
#: folder metadata file managers write on their own (macOS Finder, Windows Explorer): never the user's data
SYSTEM_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def index_home() -> Path:
    """Folder holding named indexes: $SOUNDSIFT_INDEX_HOME or ./indexes."""
    return Path(os.environ.get(INDEX_HOME_ENV) or Path.cwd() / "indexes")


def resolve_index_dir(name_or_dir: str | Path | None = None) -> Path:
    """A bare name means ``<index home>/<name>``; anything path-like is used as given.

    Path-like: a :class:`~pathlib.Path`, or text that contains a path separator or starts with
    ``.`` or ``~`` (so ``./lib`` is a folder here while ``lib`` is ``indexes/lib``, whatever
    folders exist here). A Path is a folder as it stands: the one this function returned for
    ``--index ./lib``, ``Path("lib")``, opens that folder again, not ``indexes/lib`` (the HTTP
    server's ``/sheet`` of an index served as ``--index ./lib`` said there was no index).
    """
    if isinstance(name_or_dir, PurePath):
        return Path(name_or_dir).expanduser()
    if name_or_dir is None or str(name_or_dir) == "":
        return index_home() / DEFAULT_INDEX
    text = str(name_or_dir)
    return index_home() / text if is_index_name(text) else Path(text).expanduser()


def is_index_name(text: str) -> bool:
    """Whether ``--index text`` is a bare name (looked up under :func:`index_home`), not a path."""
    return bool(text) and os.sep not in text and not text.startswith((".", "~"))


def index_option(root: str | Path) -> str:
    """The index folder ``root`` as the value of an ``--index`` in a command a message suggests,
    ready to paste into a shell: quoted where it holds spaces or quotes, and a folder of the current
    one (``idx``, which ``--index ./idx`` resolves to) written ``./idx``, since ``--index idx`` is
    the bare name of another index, ``<index home>/idx``."""
    text = str(root)
    return shlex.quote(f".{os.sep}{text}" if is_index_name(text) else text)


@dataclass(frozen=True)
class IndexLayout:
    """Paths of the files of one index."""

    root: Path

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.db"

    @property
    def index_json(self) -> Path:
        return self.root / "index.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def keyword_cache(self) -> Path:
        """The keyword index kept between processes (engine.query_keywords)."""
        return self.root / "keywords.npz"

    def vectors_file(self, generation: int) -> Path:
        return self.root / f"vectors-{generation:06d}.faiss"

    def vector_files(self) -> list[Path]:
        return sorted(self.root.glob("vectors-*.faiss"))

    def foreign_entries(self) -> list[Path]:
        """Entries of the index folder that soundsift did not write (the user's files; a file
        manager's folder metadata, :data:`SYSTEM_NAMES`, does not count)."""
        from fnmatch import fnmatchcase
        return sorted(p for p in self.root.iterdir()
                      if p.name not in OWN_NAMES and p.name not in SYSTEM_NAMES
                      and not any(fnmatchcase(p.name, pat) for pat in OWN_PATTERNS))


def existing_index(index: str | Path | None) -> "IndexLayout":
    """The :class:`IndexLayout` of an index that has a catalog, else IndexNotFound."""
    layout = IndexLayout(resolve_index_dir(index))
    if not layout.catalog.is_file():
        raise missing_index(layout.root, index)
    return layout


def missing_index(root: Path, index: str | Path | None) -> "IndexNotFound":
    """The IndexNotFound of ``--index index`` (resolved to ``root``) that has no catalog: how to
    build one there, or, when ``root`` is a folder of other files (the library itself, given as the
    index by mistake), that an index needs a folder of its own."""
    from engine.errors import IndexNotFound

    if root.is_dir():
        try:
            others = IndexLayout(root).foreign_entries()
        except OSError:
            others = []
        if others:
            return IndexNotFound(
                f"no index at {root}: it holds other files ({others[0].name} …), not an index. An index "
                f"needs a folder of its own: build one with `soundsift index {shlex.quote(str(root))} --index "
                "NAME`, then search with --index NAME")
    where = ""
    if index is not None and is_index_name(str(index)):
        where = (f" (a bare name is a folder under {index_home()}: $SOUNDSIFT_INDEX_HOME, else indexes/ in the "
                 "current folder; give the index folder's path to use one elsewhere)")
        here = index_here(str(index), root)
        if here is not None:
            return IndexNotFound(f"no index at {root}{where}; {here} is an index folder: pass --index "
                                 f"{shlex.quote(here)}")
    named = shlex.quote(str(index)) if index is not None and is_index_name(str(index)) else index_option(root)
    return IndexNotFound(f"no index at {root}{where}; build one with `soundsift index PATH... --index {named}`")


def index_here(name: str, root: Path) -> str | None:
    """``./name`` when the bare name ``name`` (which resolved to ``root``, under :func:`index_home`)
    is also an index folder in the current folder (it holds a catalog), as ``--index ./name`` would
    open it; else None."""
    here = Path(name)
    try:
        if IndexLayout(here).catalog.is_file() and here.resolve() != root.resolve():
            return f".{os.sep}{name}"
    except OSError:        # a folder that cannot be looked into here holds no index that can be opened
        return None
    return None


def writer_process(root: str | Path) -> str | None:
    """The process id (as text; "" when unknown) of the writer holding index ``root``'s ``.lock``
    now, or None when no writer holds it. Reads only: a shared lock tried and let go at once."""
    import fcntl

    try:
        fd = os.open(IndexLayout(Path(root)).lock, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return lock_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def lock_holder(fd: int) -> str:
    """The process id the writer holding the ``.lock`` open as ``fd`` wrote into it ("" if none)."""
    return os.pread(fd, 64, 0).decode(errors="replace").strip()


def folder_writable(folder: str | Path) -> bool:
    """Whether this process may create and change files in ``folder``: False on a read-only
    mount or share (for root too: access(2) reports EROFS whatever the permissions) and in a
    folder the user may not write."""
    return os.access(folder, os.W_OK)


def read_only_error(root: Path, name: str, cause: OSError | None = None) -> "IndexReadOnly":
    """The IndexReadOnly of a write to ``name`` that the index folder ``root`` refuses; ``cause``:
    the refused system call's error, where there was one."""
    from engine.errors import IndexReadOnly
    from engine.outputs import on_read_only_mount

    if cause is not None:
        why = (cause.strerror or str(cause)).lower()
    else:
        why = "read-only file system" if on_read_only_mount(root) else "no write permission"
    return IndexReadOnly(f"index {root}: the folder is read-only ({why}; cannot write {name}); searching it "
                         "works, but to change it copy it to a folder you can write, or index into one")


def require_writable(root: Path, name: str) -> None:
    """IndexReadOnly, before anything is written, unless ``name`` may be written in the index
    folder ``root``."""
    if not folder_writable(root):
        raise read_only_error(root, name)
