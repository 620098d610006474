"""The catalog of the index at a path, followed when a new folder is swapped into that path.

``soundsift index --rebuild`` builds a complete new index beside the old one and swaps it
into the old one's place (indexer.rebuild: one atomic exchange on Linux, two renames elsewhere). An SQLAlchemy engine opened before that keeps
pooled connections to the old, deleted ``catalog.db`` (and opens new ones on the new file:
a mix of both). :class:`LiveCatalog` notices the swap and hands out a fresh engine:

* each :meth:`LiveCatalog.handle` call compares the ``(st_dev, st_ino)`` of the folder and
  of ``catalog.db`` at the path with the ones opened (two ``stat`` calls);
* the opened folder is held by a file descriptor, so its inode number cannot be given to
  a later folder while it is held (a swapped-in folder is never mistaken for the old one);
* while the path is missing (between the fallback swap's two renames) it waits
  :attr:`LiveCatalog.missing_waits`, then raises IndexNotFound.

Each reopen gives a new :class:`CatalogHandle` with a higher ``epoch``; the old handle's
engine is disposed (connections still checked out finish their work first).
"""
from __future__ import annotations

import logging
import os
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from time import sleep as _sleep

from sqlalchemy.engine import Engine

from engine.catalog import open_catalog
from engine.errors import IndexNotFound
from engine.layout import IndexLayout

log = logging.getLogger(__name__)


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


@dataclass(eq=False)
class CatalogHandle:
    """One opened index folder: its catalog engine and the identity of what was opened."""

    root: Path
    engine: Engine
    folder_id: tuple[int, int]
    catalog_id: tuple[int, int]
    epoch: int
    _unpin: weakref.finalize = field(repr=False)

    @classmethod
    def open(cls, root: Path, epoch: int = 0) -> "CatalogHandle":
        """Open the index folder ``root``; FileNotFoundError when it or its catalog is missing."""
        layout = IndexLayout(root)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            folder_id = _identity(os.fstat(fd))
            catalog_id = _identity(os.stat(layout.catalog.name, dir_fd=fd))
            engine = open_catalog(layout.catalog)
        except BaseException:
            os.close(fd)
            raise
        handle = cls(root, engine, folder_id, catalog_id, epoch, None)  # type: ignore[arg-type]
        handle._unpin = weakref.finalize(handle, os.close, fd)   # the fd lives as long as the handle
        return handle

    def is_current(self) -> bool:
        """Whether the folder and catalog at ``root`` are still the ones this handle opened."""
        try:
            return (_identity(os.stat(self.root)) == self.folder_id
                    and _identity(os.stat(IndexLayout(self.root).catalog)) == self.catalog_id)
        except FileNotFoundError:
            return False

    def close(self) -> None:
        """Dispose the engine (checked-out connections finish first) and unpin the folder."""
        self.engine.dispose()
        self._unpin()


class LiveCatalog:
    """The catalog engine of the index at ``root``, reopened when the folder there is replaced.

    Thread-safe. Raises IndexNotFound at construction when there is no catalog at ``root``.
    """

    #: seconds to wait, one after another, for a missing index path to come back (a rebuild's
    #: fallback swap, two renames, leaves it missing for a moment) before IndexNotFound
    missing_waits: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4)

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        try:
            self._handle = CatalogHandle.open(self.root)
        except FileNotFoundError as e:
            raise IndexNotFound(f"no index at {self.root} (no {IndexLayout(self.root).catalog.name})") from e

    def handle(self) -> CatalogHandle:
        """The handle on the folder now at ``root`` (reopened if it was replaced)."""
        handle = self._handle
        if handle.is_current():
            return handle
        return self.reopen(handle)

    @property
    def engine(self) -> Engine:
        """The catalog engine of the folder now at ``root``."""
        return self.handle().engine

    def reopen(self, stale: CatalogHandle) -> CatalogHandle:
        """Replace ``stale`` by a handle on the folder now at ``root``, even an unchanged one.

        A no-op returning the newer handle when another caller already replaced ``stale``.
        Waits :attr:`missing_waits` while the path is missing, then raises IndexNotFound.
        """
        with self._lock:
            if self._handle is not stale:
                return self._handle
            waits = list(self.missing_waits)
            while True:
                try:
                    fresh = CatalogHandle.open(self.root, epoch=stale.epoch + 1)
                    break
                except FileNotFoundError as e:
                    if not waits:
                        raise IndexNotFound(
                            f"index {self.root} is gone (no {IndexLayout(self.root).catalog}, "
                            f"waited {sum(self.missing_waits):.2g} s for it): it was deleted or "
                            "moved; open it where it is now, or build it again with "
                            f"`soundsift index PATH... --index {self.root}`") from e
                    _sleep(waits.pop(0))
            self._handle = fresh
        log.info("index %s was replaced on disk (a rebuild?); reopened its catalog", self.root)
        stale.close()
        return fresh

    def close(self) -> None:
        """Dispose the current engine and unpin the folder."""
        self._handle.close()
