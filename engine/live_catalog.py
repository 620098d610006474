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
  :attr:`LiveCatalog.missing_waits`, then raises IndexNotFound;
* a catalog in a read-only folder (engine.catalog._read_only_engine) is also reopened when a
  writer comes or goes through another, writable path to that folder: its ``-wal`` appears or
  goes, or the catalog file changes under an immutable engine (:func:`_read_only_stamp`).

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
from typing import Any

from sqlalchemy.engine import Engine

from engine.catalog import open_catalog, read_only_mode, wal_pending
from engine.errors import IndexNotFound
from engine.layout import IndexLayout, index_option

log = logging.getLogger(__name__)


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _read_only_stamp(catalog: Path, mode: str | None) -> tuple[Any, ...] | None:
    """What a catalog opened read-only (``mode``: engine.catalog.read_only_mode) was opened
    for; when it changes, a writer came or went through another path and the catalog is opened
    again. None for a read-write catalog (SQLite's WAL follows every change itself)."""
    if mode is None:
        return None
    if mode == "ro":
        return (wal_pending(catalog),)
    st = os.stat(catalog)
    return wal_pending(catalog), st.st_size, st.st_mtime_ns


@dataclass(eq=False)
class CatalogHandle:
    """One opened index folder: its catalog engine and the identity of what was opened."""

    root: Path
    engine: Engine
    folder_id: tuple[int, int]
    catalog_id: tuple[int, int]
    epoch: int
    _unpin: weakref.finalize = field(repr=False)
    read_only: tuple[Any, ...] | None = None     # _read_only_stamp at open (None: read-write)

    @classmethod
    def open(cls, root: Path, epoch: int = 0) -> "CatalogHandle":
        """Open the index folder ``root``; FileNotFoundError when it or its catalog is missing."""
        layout = IndexLayout(root)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            folder_id = _identity(os.fstat(fd))
            catalog_id = _identity(os.stat(layout.catalog.name, dir_fd=fd))
            engine = open_catalog(layout.catalog)
            read_only = _read_only_stamp(layout.catalog, read_only_mode(engine))
        except BaseException:
            os.close(fd)
            raise
        handle = cls(root, engine, folder_id, catalog_id, epoch, None, read_only)  # type: ignore[arg-type]
        handle._unpin = weakref.finalize(handle, os.close, fd)   # the fd lives as long as the handle
        return handle

    def is_current(self) -> bool:
        """Whether the folder and catalog at ``root`` are still the ones this handle opened (and,
        read-only, in the state it opened them in)."""
        catalog = IndexLayout(self.root).catalog
        try:
            return (_identity(os.stat(self.root)) == self.folder_id
                    and _identity(os.stat(catalog)) == self.catalog_id
                    and _read_only_stamp(catalog, read_only_mode(self.engine)) == self.read_only)
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
                            f"`soundsift index PATH... --index {index_option(self.root)}`") from e
                    _sleep(waits.pop(0))
            self._handle = fresh
        same = (fresh.folder_id, fresh.catalog_id) == (stale.folder_id, stale.catalog_id)
        if same and stale.read_only is not None:
            log.info("index %s: a writer came or went through another path to this read-only folder; "
                     "reopened its catalog", self.root)
        else:
            log.info("index %s was replaced on disk (a rebuild?); reopened its catalog", self.root)
        stale.close()
        return fresh

    def close(self) -> None:
        """Dispose the current engine and unpin the folder."""
        self._handle.close()
