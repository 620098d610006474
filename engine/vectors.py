"""FAISS helpers: inner product over L2-normalised vectors, ids = segment ids.

Memory-mapping (measured with faiss 1.15, RssAnon vs RssFile after ``read_index``):
``IO_FLAG_MMAP_IFC`` maps the codes of every type the indexer builds — ``IDMap2,Flat``,
``IVF…,Flat``, ``IVF…,SQ8`` and ``OPQ…,IVF…,PQ…`` — so the vectors are paged in from the
file on demand and shared between processes; the older ``IO_FLAG_MMAP`` maps only IVF
inverted lists (a Flat index is still copied into anonymous memory). :func:`read_index`
tries ``MMAP_IFC``, then ``MMAP``, then a plain read, so an index type that supports
neither still opens. A mapped file stays valid after the writer unlinks it (its inode
lives while mapped), which is what lets readers keep answering during a commit.
"""
from __future__ import annotations

import logging
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.durable import fsync_dir

if TYPE_CHECKING:
    import faiss

    from engine.errors import IndexUnreadable

log = logging.getLogger(__name__)

#: set to "0" to keep indexes on the CPU even where faiss sees a CUDA GPU
GPU_ENV = "SOUNDSIFT_GPU"

# faiss is imported by the functions that use it: a command that reads only the catalog
# (`soundsift tags list`, `sheet list`) starts without it


def mmap_flags() -> tuple[int, ...]:
    """faiss's memory-mapping read flags that this faiss has, ``IO_FLAG_MMAP_IFC`` first (:func:`read_index`)."""
    import faiss
    return tuple(f for f in (getattr(faiss, "IO_FLAG_MMAP_IFC", None), faiss.IO_FLAG_MMAP) if f is not None)


def new_index(dim: int) -> faiss.Index:
    """An empty exact index (inner product) whose ids are the catalog's segment ids."""
    import faiss
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


#: a FAISS file smaller than this is read whole, not memory-mapped (:func:`_safe_to_map`): it holds
#: a few vectors at most, so reading it whole costs nothing
MMAP_MIN_BYTES = 4096

#: faiss's header of each index in a file: fourcc, d, ntotal, two unused int64, is_trained, metric
_HEADER = struct.Struct("<4siqqqBi")


def _flat_length(head: bytes) -> int | None:
    """The length of the ``IDMap2,Flat`` file (:func:`new_index`) whose first bytes are ``head``, by
    faiss's layout: the two headers, then the codes and the ids, each array after its int64 length;
    None for a file of another type (or too short to say)."""
    if len(head) < 2 * _HEADER.size:
        return None
    outer, inner = _HEADER.unpack_from(head, 0), _HEADER.unpack_from(head, _HEADER.size)
    if outer[0] != b"IxM2" or inner[0] not in (b"IxFI", b"IxF2"):
        return None
    d, n = outer[1], outer[2]
    return 2 * _HEADER.size + 8 + n * d * 4 + 8 + n * 8


def _safe_to_map(path: str | Path) -> bool:
    """Whether faiss's memory-mapped reader may be given ``path``: given a file cut short it may
    crash the process (SIGSEGV, faiss 1.15.1: an ``IDMap2,Flat`` file cut inside a header field, at
    bytes 25–31 or 62–68) or load it (cut inside its last id), where its plain reader raises. False
    for a file under :data:`MMAP_MIN_BYTES` (read plainly); RuntimeError, as faiss's own, for an
    ``IDMap2,Flat`` file of another length than its header implies (reading it plainly would first
    allocate all the vectors it claims); True otherwise, and when it cannot be looked at (faiss then
    says why, as before)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2 * _HEADER.size)
            size = os.fstat(f.fileno()).st_size
    except OSError:
        return True
    if size < MMAP_MIN_BYTES:
        return False
    expected = _flat_length(head)
    if expected is not None and expected != size:
        raise RuntimeError(f"{path}: {size} bytes, where its header (IDMap2,Flat) says {expected}")
    return True


#: the catalog's meta key holding the byte length of the vectors file its last commit wrote
#: (indexer.write); indexes committed before session 40 have none
LENGTH_KEY = "vectors_bytes_written"
#: the meta key naming the vectors file :data:`LENGTH_KEY` is the length of (its ``vectors_file``
#: then): a commit by a soundsift from before session 40 names a new file and leaves both as they were
LENGTH_OF_KEY = "vectors_bytes_of"


def recorded_length(meta: dict[str, Any]) -> int | None:
    """The length the catalog's ``meta`` records of the vectors file it names (:data:`LENGTH_KEY`),
    for :func:`check_length`; None where it records none, or one of another file (:data:`LENGTH_OF_KEY`:
    an older soundsift committed since, writing a new file and no length; read as before)."""
    length = meta.get(LENGTH_KEY)
    if length is None or meta.get(LENGTH_OF_KEY) != meta.get("vectors_file"):
        return None
    return int(length)


def check_length(path: str | Path, length: int | None) -> None:
    """RuntimeError, as faiss's own, when ``path`` is not the ``length`` bytes its commit wrote
    (:data:`LENGTH_KEY`): a file cut short, or grown, since. faiss's memory-mapped reader may crash
    the process (SIGSEGV, faiss 1.15.1) on a file cut inside a header field of any index type the
    indexer builds (an ``IVF…,Flat`` file at the inverted lists' header, past its coarse
    quantizer) and loads one cut inside its last ids, so the length is compared before faiss sees
    the file. Nothing is compared where ``length`` is None (an index committed before lengths
    were recorded: read as before); OSError when ``path`` cannot be looked at."""
    if length is None:
        return
    size = os.stat(path).st_size
    if size != int(length):
        raise RuntimeError(f"{path}: {size} bytes, where the commit that wrote it recorded {int(length)}")


def read_index(path: str | Path, mmap: bool = True, length: int | None = None) -> faiss.Index:
    """Load a FAISS file read-only; memory-mapped where the index type allows it and the file is
    safe to map (:func:`_safe_to_map`). ``length``: the bytes its commit recorded (the catalog's
    :data:`LENGTH_KEY`; None where it has none): another length is faiss's RuntimeError
    (:func:`check_length`), before the file is read."""
    import faiss

    check_length(path, length)
    base = faiss.IO_FLAG_READ_ONLY
    if mmap and _safe_to_map(path):
        for flag in mmap_flags():
            try:
                return faiss.read_index(str(path), base | flag)
            except RuntimeError as e:
                log.debug("%s: cannot memory-map with flag %#x (%s); trying the next way",
                          path, flag, str(e).splitlines()[0] if str(e) else e)
    return faiss.read_index(str(path), base)


def unreadable_vectors(path: str | Path) -> "IndexUnreadable":
    """The IndexUnreadable of an index's current vectors file ``path`` that is missing or does not
    read as FAISS, with what to do: its vectors can only be made again (the caller chains faiss's
    own error, a C++ one that names no file)."""
    from engine.errors import IndexUnreadable
    from engine.layout import index_option

    path = Path(path)
    if not path.exists():
        why = "is missing (deleted, or not copied with the rest of the index?)"
    else:
        why = f"cannot be read as FAISS vectors ({path.stat().st_size} bytes: truncated or overwritten?)"
    return IndexUnreadable(f"{path} {why}: restore it from a backup, or re-embed the index with "
                           f"`soundsift index FOLDER... --index {index_option(path.parent)} --rebuild`")


def check_readable(path: str | Path, length: int | None = None) -> None:
    """IndexUnreadable (:func:`unreadable_vectors`) unless ``path`` opens as a FAISS index of the
    ``length`` its commit recorded (:func:`read_index`; None: any length); a memory-mapped read
    where the type allows it, so only its header and layout are read, not every vector."""
    try:
        read_index(path, mmap=True, length=length)
    except (RuntimeError, OSError) as e:
        raise unreadable_vectors(path) from e


def write_index_atomic(index: faiss.Index, path: str | Path) -> int:
    """Write ``index`` to ``path`` via a temporary file, fsync, and rename; returns the bytes
    written (what a commit records, :data:`LENGTH_KEY`).

    The bytes go through a Python file (``faiss.PyCallbackIOWriter``), not faiss's own
    ``fopen``: a refused write (a full disk, no permission, a read-only drive, an I/O error) is
    then an OSError naming the temporary file, which the CLI reports in one line, instead of a
    C++ RuntimeError; and a failure when the last buffered bytes are flushed is raised, where
    faiss's writer only prints it from a destructor and leaves a short file to be renamed into
    place. On any failure the temporary file is removed (on a full disk it holds the space the
    next attempt needs) and ``path`` is untouched.
    """
    import faiss

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            faiss.write_index(index, faiss.PyCallbackIOWriter(f.write))
            f.flush()
            os.fsync(f.fileno())
            written = os.fstat(f.fileno()).st_size
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename is None:    # a failed write() names no file
            raise OSError(e.errno, e.strerror or str(e), str(tmp)) from e
        raise
    os.replace(tmp, path)
    fsync_dir(path.parent)
    return written


def as_query(x: np.ndarray) -> np.ndarray:
    """Queries as a C-contiguous float32 2-D array."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    return np.ascontiguousarray(x)


# --- GPU -------------------------------------------------------------------------------

def gpu_count() -> int:
    """CUDA GPUs faiss can use (0 with faiss-cpu, or when $SOUNDSIFT_GPU is "0")."""
    if os.environ.get(GPU_ENV, "").strip() == "0":
        return 0
    import faiss
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


_gpu_resources: Any = None


def to_gpu(index: faiss.Index, nprobe: int | None = None, float16: bool = False) -> faiss.Index:
    """A copy of ``index`` on GPU 0 (IVF lists and flat codes in GPU memory).

    ``nprobe`` is set on the copy (GPU indexes take no per-search IVF parameters).
    ``float16``: float16 storage / PQ lookup tables (needed for PQ codes over 48 bytes;
    fine where scores are re-ranked exactly afterwards); off, Flat / IVF-Flat scores stay
    exact. Raises RuntimeError when no GPU is usable; callers check :func:`gpu_count` first.
    """
    global _gpu_resources
    import faiss

    if gpu_count() == 0:
        raise RuntimeError("no CUDA GPU is visible to faiss (faiss-cpu, or $SOUNDSIFT_GPU=0)")
    if _gpu_resources is None:
        _gpu_resources = faiss.StandardGpuResources()
    opts = faiss.GpuClonerOptions()
    opts.useFloat16 = bool(float16)
    gpu = faiss.index_cpu_to_gpu(_gpu_resources, 0, index, opts)
    if nprobe is not None:
        faiss.GpuParameterSpace().set_index_parameter(gpu, "nprobe", int(nprobe))
    return gpu


def to_cpu(index: faiss.Index) -> faiss.Index:
    """``index`` back in CPU memory (a no-op for a CPU index): what gets written to disk."""
    import faiss
    if hasattr(faiss, "index_gpu_to_cpu") and "Gpu" in type(index).__name__:
        return faiss.index_gpu_to_cpu(index)
    return index
