"""Where soundsift keeps files it derives once from installed packages (e.g. unzipped ONNX)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_dir() -> Path:
    """``$SOUNDSIFT_CACHE``, else ``$XDG_CACHE_HOME/soundsift``, else ``~/.cache/soundsift``."""
    explicit = os.environ.get("SOUNDSIFT_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "soundsift"


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
