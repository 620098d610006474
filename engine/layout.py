"""Where an index lives on disk, and how a name or a path resolves to it.

``indexes/<name>/`` holds
  catalog.db               SQLite catalog (WAL), the source of truth
  vectors-<generation>.faiss   the FAISS index of one committed generation
  index.json               human-readable mirror of the catalog's metadata
  .lock                    held by the one writer
The catalog's ``meta.vectors_file`` names the FAISS file that belongs to its last
commit, so a reader always gets a catalog and vectors of the same generation.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

INDEX_HOME_ENV = "SOUNDSIFT_INDEX_HOME"
DEFAULT_INDEX = "default"

#: what soundsift writes in an index folder (names, then glob patterns); anything else is not its own
OWN_NAMES = frozenset({"catalog.db", "catalog.db-wal", "catalog.db-shm", "catalog.db-journal",
                       "index.json", "index.json.tmp", ".lock"})
OWN_PATTERNS = ("vectors-*.faiss", "vectors-*.faiss.tmp", "vectors-*.raw.npy", "vectors-*.raw.npy.tmp")
#: folder metadata file managers write on their own (macOS Finder, Windows Explorer): never the user's data
SYSTEM_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


def index_home() -> Path:
    """Folder holding named indexes: $SOUNDSIFT_INDEX_HOME or ./indexes."""
    return Path(os.environ.get(INDEX_HOME_ENV) or Path.cwd() / "indexes")


def resolve_index_dir(name_or_dir: str | Path | None = None) -> Path:
    """A bare name means ``<index home>/<name>``; anything path-like is used as given.

    Path-like: contains a path separator, or starts with ``.`` or ``~`` (so ``./lib``
    is a folder here while ``lib`` is ``indexes/lib``, whatever folders exist here).
    """
    if name_or_dir is None or str(name_or_dir) == "":
        return index_home() / DEFAULT_INDEX
    text = str(name_or_dir)
    if os.sep in text or text.startswith((".", "~")):
        return Path(text).expanduser()
    return index_home() / text


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
    from engine.errors import IndexNotFound

    layout = IndexLayout(resolve_index_dir(index))
    if not layout.catalog.is_file():
        raise IndexNotFound(f"no index at {layout.root}; build it with: soundsift index PATH --index {index}")
    return layout
