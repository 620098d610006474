"""Where soundsift keeps files it derives once from installed packages (e.g. unzipped ONNX)."""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


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


def keep(path: Path, data: bytes, what: str) -> None:
    """Write ``data`` to ``path`` atomically (a temporary file, then a rename), for later loads to
    read instead of deriving it again; a cache that cannot be written costs only a warning
    naming ``what`` is derived again next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        log.warning("could not keep %s in %s (%s); it is made again next time", what, path, e)
