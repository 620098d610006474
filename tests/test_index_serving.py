"""Serving: read-only indexes are memory-mapped (every type the writer builds); GPU copies."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

from engine import vectors
from engine.vectors import gpu_count, read_index, to_cpu, to_gpu

ROOT = Path(__file__).resolve().parents[1]
N, DIM = 40_000, 64          # 10 MB of float32 vectors, 2.5 MB as SQ8


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


MEASURE = """
import gc, sys
import faiss  # loaded before the measure: engine.vectors imports it when it first reads a file
from engine.vectors import read_index

def anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])

mmap = sys.argv[2] == "mmap"
before = anon()
index = read_index(sys.argv[1], mmap=mmap)
index.search(__import__("numpy").zeros((1, index.d), "float32"), 1)
print(anon() - before)
"""


def anon_growth_kib(path, mode: str) -> int:
    """RssAnon growth of a fresh process reading ``path`` (no freed heap to reuse)."""
    r = subprocess.run([sys.executable, "-c", MEASURE, str(path), mode], cwd=ROOT, capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return int(r.stdout.split()[-1])


# (PQ codes are a few bytes per vector: their mapping is not measurable this way; the
#  writer's OPQ+PQ files open through the same flags, see test_index_retrain)
@pytest.mark.parametrize("factory", ["IDMap2,Flat", "IVF64,Flat", "IVF64,SQ8"])
def test_read_only_index_is_memory_mapped(factory, data, tmp_path):
    index = faiss.index_factory(DIM, factory, faiss.METRIC_INNER_PRODUCT)
    index.train(data[:4000])
    index.add_with_ids(data, np.arange(N, dtype=np.int64) + 7)
    path = tmp_path / "v.faiss"
    vectors.write_index_atomic(index, path)
    code_bytes = N * index.sa_code_size()
    _, want = index.search(data[:20], 5)

    mapped = read_index(path, mmap=True)
    _, got = mapped.search(data[:20], 5)
    np.testing.assert_array_equal(got, want)
    grown_mapped = anon_growth_kib(path, "mmap")
    grown_copied = anon_growth_kib(path, "copy")
    # the mapped index keeps its codes in the page cache, not in the process's heap
    assert grown_mapped * 1024 < code_bytes / 4, (factory, grown_mapped, code_bytes)
    assert grown_copied * 1024 > code_bytes / 2, (factory, grown_copied, code_bytes)


def test_mapped_file_survives_the_writer_unlinking_it(data, tmp_path):
    """What readers rely on during a commit: the old generation stays readable."""
    index = vectors.new_index(DIM)
    index.add_with_ids(data[:1000], np.arange(1000, dtype=np.int64))
    path = tmp_path / "vectors-000001.faiss"
    vectors.write_index_atomic(index, path)
    mapped = read_index(path, mmap=True)
    path.unlink()
    _, ids = mapped.search(data[:3], 1)
    assert ids[:, 0].tolist() == [0, 1, 2]


def test_a_file_that_cannot_be_mapped_still_opens(tmp_path, data, monkeypatch):
    index = vectors.new_index(DIM)
    index.add_with_ids(data[:100], np.arange(100, dtype=np.int64))
    path = tmp_path / "v.faiss"
    vectors.write_index_atomic(index, path)
    real = faiss.read_index
    flags_tried = []

    def refuse_mmap(p, flags=0):
        flags_tried.append(flags)
        if flags & ~faiss.IO_FLAG_READ_ONLY:
            raise RuntimeError("mmap not supported for this index type")
        return real(p, flags)

    monkeypatch.setattr(faiss, "read_index", refuse_mmap)
    assert read_index(path).ntotal == 100
    assert flags_tried[-1] == faiss.IO_FLAG_READ_ONLY and len(flags_tried) == len(vectors.mmap_flags()) + 1


def test_gpu_switch_off_and_clear_error_without_gpu(monkeypatch):
    monkeypatch.setenv(vectors.GPU_ENV, "0")
    assert gpu_count() == 0
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        to_gpu(vectors.new_index(8))
    cpu = vectors.new_index(8)
    assert to_cpu(cpu) is cpu


@pytest.mark.skipif(gpu_count() == 0, reason="no CUDA GPU visible to faiss (faiss-cpu build or no "
                    "device): GPU add/search is exercised only on a machine with one")
def test_gpu_search_matches_cpu(data):
    from engine.index_choice import choose_index
    from indexer.retrain import _ArrayVectors, build
    choice = choose_index(N, DIM, 1 << 30, exact_max=1000, min_nlist=16)
    cpu = build(choice, DIM, _ArrayVectors(np.arange(N, dtype=np.int64), data))   # GPU k-means
    faiss.extract_index_ivf(cpu).nprobe = 16
    gpu = to_gpu(cpu)
    gpu.nprobe = 16
    _, a = cpu.search(data[:50], 10)
    _, b = gpu.search(data[:50], 10)
    assert (a[:, 0] == b[:, 0]).mean() > 0.95
    gpu.add_with_ids(data[:10], np.arange(N, N + 10, dtype=np.int64))   # add on the GPU
    assert to_cpu(gpu).ntotal == N + 10
