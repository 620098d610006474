"""FAISS helpers: inner product over L2-normalised vectors, ids = segment ids."""
from __future__ import annotations

import os
from pathlib import Path

import faiss
import numpy as np


def new_index(dim: int) -> faiss.Index:
    """An empty exact index (inner product) whose ids are the catalog's segment ids."""
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def read_index(path: str | Path, mmap: bool = True) -> faiss.Index:
    """Load a FAISS file read-only; memory-mapped where the index type allows it."""
    flags = faiss.IO_FLAG_READ_ONLY
    if mmap:
        flags |= faiss.IO_FLAG_MMAP
    try:
        return faiss.read_index(str(path), flags)
    except RuntimeError:
        if not mmap:
            raise
        return faiss.read_index(str(path), faiss.IO_FLAG_READ_ONLY)


def write_index_atomic(index: faiss.Index, path: str | Path) -> None:
    """Write ``index`` to ``path`` via a temporary file, fsync, and rename."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    faiss.write_index(index, str(tmp))
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(folder: str | Path) -> None:
    """Make a rename inside ``folder`` durable."""
    fd = os.open(str(folder), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def as_query(x: np.ndarray) -> np.ndarray:
    """Queries as a C-contiguous float32 2-D array."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    return np.ascontiguousarray(x)
