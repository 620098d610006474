"""Where soundsift keeps files it derives once from installed packages (e.g. unzipped ONNX), and
the SHA-256 of files it has read (:func:`file_sha256`; :func:`cached_file_sha256` keeps each
unchanged file's digest for the process, :func:`stored_file_sha256` on disk for later ones too)."""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
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


#: how many files' digests :func:`cached_file_sha256` keeps (least recently used ones go first)
DIGEST_CACHE_SIZE = 4096
#: a file changed less than this long ago (ns) is hashed again at every call: a write in the same
#: tick of its timestamps (2 s on FAT) would leave its key unchanged
RECENT_CHANGE_NS = 3_000_000_000

_DigestKey = tuple[str, int, int, int, int, int]
_digests: OrderedDict[_DigestKey, str] = OrderedDict()
#: a path as given, in one state of the file it names (the key's fields after the path) → the
#: path resolved then: :func:`os.path.realpath` costs a system call per folder of the path, a
#: stat one in all
_resolved: OrderedDict[_DigestKey, str] = OrderedDict()
_digests_lock = threading.Lock()


def _digest_key(path: str, st: os.stat_result | None = None) -> _DigestKey:
    """``path`` and the device, inode, size, mtime and ctime (ns) of the file it names (links
    followed; ``st``: its :func:`os.stat` just taken): with ``path`` resolved, what tells a
    file's bytes unchanged."""
    st = os.stat(path) if st is None else st
    return path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _settled(key: _DigestKey) -> bool:
    """Whether the file in the state ``key`` names was last changed :data:`RECENT_CHANGE_NS` ago or
    more, so its digest may be kept: a write in the same tick of its timestamps would hide."""
    return time.time_ns() - max(key[4], key[5]) >= RECENT_CHANGE_NS


def _kept(cache: OrderedDict[_DigestKey, str], key: _DigestKey) -> str | None:
    """``cache[key]``, now the most recently used (None where missing); under the lock."""
    found = cache.get(key)
    if found is not None:
        cache.move_to_end(key)
    return found


def _keep(cache: OrderedDict[_DigestKey, str], key: _DigestKey, value: str) -> None:
    """``cache[key] = value``, the least recently used going past :data:`DIGEST_CACHE_SIZE`;
    under the lock."""
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > DIGEST_CACHE_SIZE:
        cache.popitem(last=False)


def cached_file_sha256(path: str | os.PathLike[str], st: os.stat_result | None = None) -> str:
    """:func:`file_sha256` of ``path``, read once per process while the file is unchanged (the
    same resolved path, device, inode, size, mtime and ctime; names of one file through symbolic
    links share its digest; :data:`DIGEST_CACHE_SIZE` files kept, thread-safe). A file changed in
    the last :data:`RECENT_CHANGE_NS` is read at every call. Raises ``OSError`` as reading it
    would.

    A path is resolved (:func:`os.path.realpath`) the first time it is seen naming the file in
    its state (a stat tells: the file's device, inode, size and times), not at every call: a
    digest is found by the resolved path only while that path's file is in the very state it
    was read in. ``st``: the caller's :func:`os.stat` of ``path``, just taken (not taken again)."""
    given = _digest_key(os.fspath(path), st)             # the file the path names now
    with _digests_lock:
        real = _resolved.get(given)
        if real is not None:
            digest = _kept(_digests, (real, *given[1:]))
            if digest is not None:
                _resolved.move_to_end(given)
                return digest
    real = os.path.realpath(path)
    key = _digest_key(real)
    with _digests_lock:
        digest = _kept(_digests, key)
    if digest is None:
        digest = file_sha256(Path(real))                # outside the lock: threads hash at once
        if not _settled(key):
            return digest
        with _digests_lock:
            _keep(_digests, key, digest)
    if key[1:] == given[1:]:                            # resolved while the path named this file
        with _digests_lock:
            _keep(_resolved, given, real)
    return digest


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


#: sub-folder of :func:`cache_dir` holding :func:`stored_file_sha256`'s digests, one small file each
DIGESTS_FOLDER = "file-digests"


def _stored_digest_path(key: _DigestKey) -> Path:
    """Where :func:`stored_file_sha256` keeps the digest of the file in the state ``key`` names:
    ``<path>-<state>.sha256`` (each a hash), so the entries of one path share their first part
    (:func:`_prune_stale_digests`)."""
    path, state = (hashlib.sha256(repr(k).encode()).hexdigest()[:32] for k in (key[0], key))
    return cache_dir() / DIGESTS_FOLDER / f"{path}-{state}.sha256"


def _prune_stale_digests(current: Path) -> None:
    """Remove the kept digests of ``current``'s path other than ``current`` (states of the file
    gone by: a new version fingerprinted left one per version) and those named as before
    ``<path>-<state>`` (never read now). Safe beside other processes: one that finds an entry
    gone hashes the file again, one reading an entry reads it whole (an open file outlives its
    name; where it cannot be removed it stays, said at debug level), and a temporary file being
    written (:func:`keep`'s ``….sha256.tmpPID``) is left alone."""
    prefix = current.name.split("-", 1)[0] + "-"
    try:
        with os.scandir(current.parent) as entries:
            stale = [e.path for e in entries if e.name.endswith(".sha256") and e.name != current.name
                     and (e.name.startswith(prefix) or "-" not in e.name)]
    except OSError as e:
        log.debug("could not list the kept digests in %s (%s)", current.parent, e)
        return
    for path in stale:
        try:
            os.unlink(path)
        except FileNotFoundError:               # another process pruned it first
            pass
        except OSError as e:
            log.debug("could not remove the stale digest %s (%s)", path, e)


def stored_file_sha256(path: str | os.PathLike[str]) -> str:
    """:func:`cached_file_sha256` of ``path``, kept on disk too (:func:`cache_dir`) for later
    processes: a one-shot command (``soundsift search``) fingerprinting a model then reads no
    weights it does not run. The disk copy is keyed as the process one is (the resolved path,
    device, inode, size, mtime and ctime), so an edited or replaced file is hashed anew; a file
    changed in the last :data:`RECENT_CHANGE_NS` is hashed at every call and not kept; keeping a
    file's digest removes those kept for its path's earlier states (:func:`_prune_stale_digests`).
    An unreadable or malformed kept digest is ignored; one that cannot be written costs a warning."""
    real = os.path.realpath(path)
    key = _digest_key(real)
    with _digests_lock:
        digest = _kept(_digests, key)
    if digest is not None:
        return digest
    stored = _stored_digest_path(key)
    try:
        text = stored.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        text = ""
    if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
        with _digests_lock:
            _keep(_digests, key, text)
        return text
    digest = cached_file_sha256(real)
    if _settled(key) and _digest_key(real) == key:
        keep(stored, digest.encode("ascii"), f"the SHA-256 of {real}")
        _prune_stale_digests(stored)
    return digest
