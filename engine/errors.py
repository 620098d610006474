"""Domain exceptions raised at soundsift's public boundary.

Every message names the thing at fault and tells the user what to do next.
"""
from __future__ import annotations


class SoundsiftError(Exception):
    """Base class of every error soundsift reports to a user."""


class UnreadableAudio(SoundsiftError):
    """A file could not be decoded into usable audio (the reason says why)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ModelUnavailable(SoundsiftError):
    """A model could not be loaded: not bundled, not a local folder, not downloadable."""


class ModelMismatch(SoundsiftError):
    """An index was built with another model than the one asked for."""


class IndexNotFound(SoundsiftError):
    """No index exists at the given name or path."""


class NothingToIndex(SoundsiftError):
    """None of the paths given to a new index exists; no index was created."""


class IndexLocationTaken(SoundsiftError):
    """The place asked for a new index is a file, or a folder holding files soundsift did not write."""


class IndexBusy(SoundsiftError):
    """Another process is writing this index."""


class RebuildFailed(SoundsiftError):
    """``soundsift index --rebuild`` was refused or did not finish; the index is as it was."""


class InvalidQuery(SoundsiftError):
    """A query's arguments are not usable (empty text, bad filter, unknown file)."""


class InvalidDataset(SoundsiftError):
    """An evaluation CSV/manifest is malformed or names audio that cannot be found."""


class InvalidOutput(SoundsiftError):
    """Where a command was told to write is unusable: a folder where a file goes, or the reverse."""


class InvalidConfig(SoundsiftError):
    """A training config (JSON/TOML) is malformed, has unknown keys, or names missing data."""


class CorpusError(SoundsiftError):
    """The offline training corpus cannot be built (a package, tool or source is missing)."""


class RelocationFailed(SoundsiftError):
    """``soundsift relocate`` was refused (nothing indexed there, no such folder); nothing changed."""


class IndexReadOnly(SoundsiftError):
    """An index folder cannot be written (a read-only mount or share, no write permission): it
    can be searched, but not changed; nothing was written."""


class PortUnavailable(SoundsiftError):
    """``soundsift serve`` could not listen where asked (the port is taken, or not allowed)."""


class IndexUnreadable(SoundsiftError):
    """An index's catalog or vectors file (or, where the demo reads it, its index.json) cannot be
    read: damaged (truncated, overwritten, not SQLite or not FAISS), missing, or written by a newer
    soundsift; nothing was changed. Also when the catalog is damaged in place while it is open."""
