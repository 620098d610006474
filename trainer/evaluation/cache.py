"""Audio embeddings cached per (model fingerprint, file content, segment policy).

One SQLite file, ``<cache dir>/embeddings.sqlite``; the cache dir is ``--cache-dir``,
else ``embeddings/`` in soundsift's cache folder (``$SOUNDSIFT_CACHE``, else
``~/.cache/soundsift``: :func:`engine.towers.cache.cache_dir`).
Re-running an evaluation with another prompt template or on another CSV over the same
audio embeds nothing again. Entries are keyed by the model's fingerprint, so another
model (other weights or preprocessing) never sees them: changing the model invalidates
the cache. Content hashes are memoised per (path, size, mtime) so unchanged files are
not re-read either.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from engine.errors import SoundsiftError
from engine.towers.cache import cache_dir

_SCHEMA = """
CREATE TABLE IF NOT EXISTS embeddings (
    fingerprint TEXT NOT NULL, content_hash TEXT NOT NULL, policy TEXT NOT NULL,
    dim INTEGER NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (fingerprint, content_hash, policy));
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    content_hash TEXT NOT NULL);
"""


def default_cache_dir() -> Path:
    """``embeddings/`` under soundsift's cache folder (``$SOUNDSIFT_CACHE`` or ``~/.cache/soundsift``)."""
    return cache_dir() / "embeddings"


def hash_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """BLAKE2b-160 of the file's bytes, hex."""
    h = hashlib.blake2b(digest_size=20)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _path_key(p: Path) -> str | bytes:
    """The path as SQLite stores it: text, or its bytes when the name is not UTF-8 (a Latin-1
    folder name arrives with surrogate escapes, which SQLite refuses as text)."""
    text = str(p)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(text)
    return text


class EmbeddingCache:
    """Get and put audio vectors by (fingerprint, content hash, policy)."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_cache_dir()
        self.path = self.folder / "embeddings.sqlite"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30)
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise SoundsiftError(f"{self.path}: cannot open the embedding cache ({e}); "
                                 "pass another --cache-dir, or --no-cache") from e

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "EmbeddingCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def content_hash(self, path: str | Path) -> str:
        """The file's content hash, re-read only when its size or mtime changed."""
        p = Path(path).resolve()
        st = p.stat()
        key = _path_key(p)
        row = self._db.execute("SELECT size, mtime_ns, content_hash FROM file_hashes WHERE path = ?",
                               (key,)).fetchone()
        if row and row[0] == st.st_size and row[1] == st.st_mtime_ns:
            return row[2]
        digest = hash_file(p)
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO file_hashes VALUES (?, ?, ?, ?)",
                             (key, st.st_size, st.st_mtime_ns, digest))
        return digest

    def get_many(self, fingerprint: str, policy: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Cached vectors for those of ``hashes`` that have one."""
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            marks = ",".join("?" * len(chunk))
            for h, dim, blob in self._db.execute(
                    f"SELECT content_hash, dim, vector FROM embeddings WHERE fingerprint = ? "
                    f"AND policy = ? AND content_hash IN ({marks})", (fingerprint, policy, *chunk)):
                found[h] = np.frombuffer(blob, dtype=np.float32, count=dim).copy()
        return found

    def put_many(self, fingerprint: str, policy: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Store vectors (float32) by content hash."""
        rows = [(fingerprint, h, policy, int(v.size), np.asarray(v, dtype=np.float32).tobytes())
                for h, v in vectors.items()]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?, ?, ?)", rows)

    def count(self, fingerprint: str | None = None) -> int:
        """How many vectors are stored (for one fingerprint, or all)."""
        if fingerprint is None:
            return self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM embeddings WHERE fingerprint = ?",
                                (fingerprint,)).fetchone()[0]
