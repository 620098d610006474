"""Compressed (OPQ+IVF+PQ) indexes are searched with exact re-ranking from the raw sidecar;
the query layer sends unfiltered searches to a GPU copy where faiss sees a GPU.

Indexes are written through IndexWriter with synthetic clustered vectors and the small
tier boundaries of test_index_retrain, under a memory budget only PQ codes fit.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import faiss
import numpy as np
import pytest
from sqlalchemy import select

from engine import vectors
from engine.catalog import File, SegmentRow
from engine.filters import Filters
from engine.index_choice import recall_at_k
from engine.models.base import AudioTextModel, l2_normalize
from engine.query import SoundIndex
from engine.rerank import RawSidecar, rerank, sidecar_path
from indexer.info import index_info
from test_index_retrain import DIM, META, clustered, commit, files
from tests.conftest import catalog_session

PQ_BUDGET = 40_000          # 3000 × 32-d: float32 384 kB, SQ8 96 kB, PQ4 codes 12 kB
N_FILES, PER_FILE = 300, 10


class TextModel(AudioTextModel):
    """Texts → fixed unit vectors near the data (a seeded draw per text)."""

    name, sample_rate, dim, window_seconds = "synthetic", 16000, DIM, 1.0
    fingerprint = META["model_fingerprint"]

    def embed_audio(self, waveforms):
        raise NotImplementedError("text queries only")

    def embed_text(self, texts):
        return np.stack([clustered(1, seed=zlib.crc32(t.encode()))[0] for t in texts])


@pytest.fixture(scope="module")
def pq_index(tmp_path_factory) -> tuple[Path, dict, list]:
    """An IVF-Flat generation, then a PQ one under a small budget (a rebuild from the
    IVF lists, whose ids are not in order: the sidecar must come out sorted anyway)."""
    root = tmp_path_factory.mktemp("rerank") / "idx"
    first = files("a", 100, PER_FILE, seed=21)
    commit(root, first)
    second = files("b", N_FILES - 100, PER_FILE, seed=22)
    meta = commit(root, second, budget=PQ_BUDGET)
    return root, meta, first + second


def brute_force_files(raw: RawSidecar, seg_file: dict[int, str], q: np.ndarray, k: int,
                      allowed=None) -> list[tuple[str, float]]:
    """Exact per-file top-k: each file scored by its best segment (over the raw vectors)."""
    ids = np.sort(np.asarray(raw.arr["id"]))
    scores = raw.vectors(ids) @ q
    best: dict[str, float] = {}
    for i, s in zip(ids.tolist(), scores.tolist()):
        path = seg_file[i]
        if (allowed is None or allowed(path)) and s > best.get(path, -np.inf):
            best[path] = s
    return sorted(best.items(), key=lambda kv: -kv[1])[:k]


def segment_paths(root: Path) -> dict[int, str]:
    with catalog_session(root) as s:
        return dict(s.execute(select(SegmentRow.id, File.path).join(File, File.id == SegmentRow.file_id)).all())


def test_pq_tier_is_tuned_with_reranking(pq_index):
    root, meta, _ = pq_index
    assert meta["index_kind"] == "opq-ivf-pq" and meta["faiss_factory"].startswith("OPQ4,IVF")
    params = meta["index_params"]
    assert params["rerank"] >= 1 and params["nprobe"] >= 1
    assert meta["recall_at_10"] >= 0.95
    raw = np.load(sidecar_path(root / meta["vectors_file"]), mmap_mode="r")
    assert len(raw) == N_FILES * PER_FILE and np.all(np.diff(raw["id"]) > 0)   # id order
    assert index_info(root)["index_params"] == params          # what `soundsift info` shows
    from typer.testing import CliRunner
    from ui.cli import app
    shown = CliRunner().invoke(app, ["info", "--index", str(root)])
    assert shown.exit_code == 0 and "rerank" in shown.stdout, shown.output


def test_reranked_search_reaches_recall_that_pq_alone_misses(pq_index):
    """Fresh queries (not the tuning sample): served recall@10 vs brute force."""
    root, meta, _ = pq_index
    queries = clustered(100, seed=4242)
    raw = RawSidecar(sidecar_path(root / meta["vectors_file"]))
    ids = np.sort(np.asarray(raw.arr["id"]))
    _, truth = faiss.knn(queries, raw.vectors(ids), 10, metric=faiss.METRIC_INNER_PRODUCT)
    truth = ids[truth]
    with SoundIndex.open(root) as index:
        found = np.array([[h.segment_id for h in index.search_vectors(q, k=10, per_file=False)]
                          for q in queries])
        snap = index._snap
        assert snap.rerank == meta["index_params"]["rerank"] and snap.raw is not None
        faiss.extract_index_ivf(snap.index).nprobe = meta["index_params"]["nprobe"]
        _, pq_only = snap.index.search(queries, 10)
    served, plain = recall_at_k(found, truth), recall_at_k(pq_only, truth)
    assert served >= 0.95, (served, plain)
    assert plain < 0.9, plain                   # 4-byte codes alone rank too coarsely


def test_search_text_equals_brute_force(pq_index):
    root, meta, _ = pq_index
    raw = RawSidecar(sidecar_path(root / meta["vectors_file"]))
    seg_file = segment_paths(root)
    model = TextModel()
    with SoundIndex.open(root, model=model) as index:
        for text in ("dog barking", "rain on a tin roof", "door slam", "engine idle"):
            hits = index.search_text(text, k=5)
            want = brute_force_files(raw, seg_file, model.embed_text([text])[0], 5)
            assert [h.path for h in hits] == [p for p, _ in want], text
            np.testing.assert_allclose([h.score for h in hits], [s for _, s in want], atol=1e-5)
        # filters: the id selector restricts the PQ search, then the re-rank
        flt = Filters(path_prefix="/lib/a00")
        q = model.embed_text(["door slam"])[0]
        hits = index.search_text("door slam", k=5, filters=flt)
        want = brute_force_files(raw, seg_file, q, 5, allowed=lambda p: p.startswith("/lib/a00"))
        assert [h.path for h in hits] == [p for p, _ in want]
        # "more like this" queries with the file's raw vectors: it finds itself first, score 1
        hits = index.similar_to_file("/lib/b0042.wav", k=3)
        assert hits[0].path == "/lib/b0042.wav" and hits[0].score == pytest.approx(1.0, abs=1e-3)


def test_sidecar_rows_found_by_id_in_any_order(tmp_path):
    """Rows in id order are found by position; a shuffled (older) sidecar by a full map."""
    rng = np.random.default_rng(0)
    ids = np.sort(rng.choice(10_000, 500, replace=False)).astype(np.int64)
    vecs = l2_normalize(rng.standard_normal((500, 8)))
    dtype = np.dtype([("id", "<i8"), ("v", "<f2", (8,))])
    for name, order in (("sorted", np.arange(500)), ("shuffled", rng.permutation(500))):
        arr = np.zeros(500, dtype)
        arr["id"], arr["v"] = ids[order], vecs[order]
        path = tmp_path / f"{name}.raw.npy"
        np.save(path, arr)
        side = RawSidecar(path, sorted_ids=ids)
        want = rng.choice(500, 40, replace=False)
        want.sort()
        np.testing.assert_allclose(side.vectors(ids[want]), vecs[want], atol=2e-3)
        assert (side._map is None) == (name == "sorted")
        with pytest.raises(KeyError, match="no raw vector"):
            side.vectors(np.array([10_001]))


def test_rerank_keeps_the_exact_best_and_pads():
    q = l2_normalize(np.array([[1.0, 0.0], [0.0, 1.0]], np.float32))
    table = {1: [1.0, 0.0], 2: [0.6, 0.8], 3: [0.0, 1.0], 4: [-1.0, 0.0]}
    cands = np.array([[4, 2, 1, -1], [1, -1, -1, -1]], np.int64)
    d, i = rerank(q, cands, lambda ids: np.array([table[int(x)] for x in ids], np.float32), k=3)
    assert i.tolist() == [[1, 2, 4], [1, -1, -1]]
    np.testing.assert_allclose(d[0], [1.0, 0.6, -1.0])


# --------------------------------------------------------------------------------- GPU
class FakeGpu:
    """Stands in for a faiss GPU index: a CPU clone that records its searches."""

    def __init__(self, index, nprobe):
        self.inner = faiss.clone_index(index)
        if nprobe is not None:
            faiss.extract_index_ivf(self.inner).nprobe = nprobe
        self.ntotal, self.d = index.ntotal, index.d
        self.searches = 0

    def search(self, q, n):
        self.searches += 1
        return self.inner.search(q, n)


def test_gpu_copy_serves_unfiltered_searches_only(pq_index, monkeypatch):
    root, meta, _ = pq_index
    made = []

    def fake_to_gpu(index, nprobe=None, float16=False):
        made.append((nprobe, float16))
        gpu = FakeGpu(index, nprobe)
        made.append(gpu)
        return gpu

    monkeypatch.setattr(vectors, "gpu_count", lambda: 1)
    monkeypatch.setattr(vectors, "to_gpu", fake_to_gpu)
    model = TextModel()
    with SoundIndex.open(root, model=model) as index:
        assert made[0] == (meta["index_params"]["nprobe"], True)
        gpu = made[1]
        plain = index.search_text("dog barking", k=5)
        assert gpu.searches >= 1
        before = gpu.searches
        flt = Filters(path_prefix="/lib/b01")
        filtered = index.search_text("dog barking", k=5, filters=flt)
        similar = index.similar_to_file("/lib/b0042.wav", k=3, filters=flt)
        assert gpu.searches == before                  # selectors run on the CPU copy
        assert filtered and all(h.path.startswith("/lib/b01") for h in filtered + similar)
    monkeypatch.setenv(vectors.GPU_ENV, "0")
    monkeypatch.setattr(vectors, "gpu_count", lambda: 0)
    with SoundIndex.open(root, model=model) as index:   # same answers without the GPU copy
        assert index._snap.gpu is None
        assert [h.path for h in index.search_text("dog barking", k=5)] == [h.path for h in plain]


def test_gpu_copy_failure_falls_back_to_cpu(pq_index, monkeypatch, caplog):
    root, _, _ = pq_index

    def broken(index, nprobe=None, float16=False):
        raise RuntimeError("out of GPU memory")

    monkeypatch.setattr(vectors, "gpu_count", lambda: 1)
    monkeypatch.setattr(vectors, "to_gpu", broken)
    with caplog.at_level("WARNING"), SoundIndex.open(root, model=TextModel()) as index:
        assert index._snap.gpu is None and len(index.search_text("rain", k=3)) == 3
    assert "out of GPU memory" in caplog.text


@pytest.mark.skipif(vectors.gpu_count() == 0, reason="no CUDA GPU visible to faiss (faiss-cpu build "
                    "or no device): the real GPU copy is exercised only on a machine with one")
def test_real_gpu_copy_matches_cpu(pq_index, monkeypatch):
    root, _, _ = pq_index
    model = TextModel()
    with SoundIndex.open(root, model=model) as index:
        assert index._snap.gpu is not None
        on_gpu = index.search_text("dog barking", k=5)
    monkeypatch.setenv(vectors.GPU_ENV, "0")
    with SoundIndex.open(root, model=model) as index:
        assert index._snap.gpu is None
        on_cpu = index.search_text("dog barking", k=5)
    assert [h.path for h in on_gpu] == [h.path for h in on_cpu]
