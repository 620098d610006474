"""The writer picks the index type at every commit, rebuilds when it changes, tunes nprobe.

Commits go straight through IndexWriter with synthetic clustered vectors (no audio) and a
chooser with small tier boundaries (engine.index_choice.choose_index with exact_max=500,
min_nlist=8), so a few thousand vectors walk through Flat → IVF-Flat → IVF-SQ8 → back.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import faiss
import numpy as np
import pytest

from engine.audio import AudioInfo
from engine.index_choice import choose_index, recall_at_k
from engine.layout import IndexLayout
from indexer.info import index_info
from indexer.retrain import exact_top_k, read_sidecar, sidecar_path, _ArrayVectors
from indexer.write import Changes, IndexedFile, IndexWriter

DIM = 32
CHOOSER = functools.partial(choose_index, exact_max=500, min_nlist=8)
META = {"model_name": "synthetic", "model_fingerprint": "synthetic-v1", "dim": DIM,
        "sample_rate": 16000, "segment_policy": {"window": 1.0, "hop": 0.5}}
BIG = 1 << 30


def clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).standard_normal((40, DIM)).astype(np.float32)
    x = centers[rng.integers(0, 40, n)] + 0.35 * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def files(prefix: str, n_files: int, per_file: int, seed: int) -> list[IndexedFile]:
    vecs = clustered(n_files * per_file, seed)
    info = AudioInfo("x", 16000, 16000, 1, "WAV", "PCM_16")
    return [IndexedFile(f"/lib/{prefix}{i:04d}.wav", 1, 1, info, 1.0,
                        [(0.5 * j, 0.5 * j + 1.0) for j in range(per_file)],
                        vecs[i * per_file:(i + 1) * per_file]) for i in range(n_files)]


def commit(root: Path, add=(), remove=(), budget: int = BIG) -> dict:
    with IndexWriter(IndexLayout(root), memory_budget=budget, chooser=CHOOSER) as w:
        w.commit(Changes(add=list(add), remove=list(remove)), META)
        return dict(w.meta)


def on_disk(root: Path, meta: dict) -> faiss.Index:
    return faiss.read_index(str(root / meta["vectors_file"]))


def hashed(index: faiss.Index) -> None:
    """Let an IVF index reconstruct by (non-sequential) id."""
    faiss.extract_index_ivf(index).set_direct_map_type(faiss.DirectMap.Hashtable)


def independent_recall(index: faiss.Index, meta: dict, vectors: np.ndarray, ids: np.ndarray) -> float:
    """recall@10 of the file as served (nprobe from meta) on 200 fresh queries near the data."""
    q = clustered(200, seed=12345)
    truth = exact_top_k(q, _ArrayVectors(ids, vectors))
    if meta["index_params"]:
        faiss.extract_index_ivf(index).nprobe = meta["index_params"]["nprobe"]
    _, found = index.search(q, 10)
    return recall_at_k(found, truth)


def test_growth_rebuilds_and_tunes(tmp_path):
    root = tmp_path / "idx"
    first = files("a", 40, 10, seed=1)                       # 400 vectors: exact
    meta = commit(root, first)
    assert (meta["faiss_factory"], meta["index_type"], meta["recall_at_10"]) == ("IDMap2,Flat", "Flat", 1.0)
    assert meta["index_params"] == {} and meta["trained_on"] == 0
    flat = on_disk(root, meta)
    ids = faiss.vector_to_array(flat.id_map)
    exact_vectors = flat.reconstruct_batch(ids)

    second = files("b", 160, 10, seed=2)                     # 2000 vectors: IVF32,Flat
    meta = commit(root, second)
    assert meta["faiss_factory"] == "IVF32,Flat" and meta["index_type"] == "IVF-Flat"
    assert meta["trained_on"] == 2000 and meta["generation"] == 2
    assert meta["recall_at_10"] >= 0.95 and 1 <= meta["index_params"]["nprobe"] <= 32
    ivf = on_disk(root, meta)
    assert isinstance(faiss.downcast_index(ivf), faiss.IndexIVFFlat) and ivf.ntotal == 2000
    # the rebuild kept the first commit's vectors bit for bit (IVF-Flat is exact storage)
    hashed(ivf)
    np.testing.assert_array_equal(ivf.reconstruct_batch(ids), exact_vectors)
    all_ids = np.arange(1, 2001)
    all_vecs = ivf.reconstruct_batch(all_ids)
    assert independent_recall(ivf, meta, all_vecs, all_ids) >= 0.9
    # the tuned nprobe is the smallest that reaches the target on the tuning sample
    assert not sidecar_path(root / meta["vectors_file"]).exists()

    meta = commit(root, files("c", 10, 10, seed=3))          # 2100: same type, no retraining
    assert meta["faiss_factory"] == "IVF32,Flat" and meta["trained_on"] == 2000
    assert meta["recall_at_10"] >= 0.95

    meta = commit(root, files("d", 600, 10, seed=4))         # 8100: grown ~4×, IVF128
    assert meta["faiss_factory"] == "IVF128,Flat" and meta["trained_on"] == 8100
    assert on_disk(root, meta).ntotal == 8100 and meta["recall_at_10"] >= 0.95
    doc = json.loads(IndexLayout(root).index_json.read_text())
    for key in ("index_type", "faiss_factory", "index_params", "recall_at_10", "trained_on"):
        assert doc[key] == meta[key]
    info = index_info(root)
    assert info["index_params"] == meta["index_params"] and info["recall_at_10"] == meta["recall_at_10"]
    assert info["trained_on"] == 8100 and info["memory_budget"] == BIG
    from typer.testing import CliRunner
    from ui.cli import app
    shown = CliRunner().invoke(app, ["info", "--index", str(root)])
    assert shown.exit_code == 0, shown.output
    for text in ("IVF-Flat", "IVF128,Flat", "nprobe", "recall@10", f"{meta['recall_at_10']:.3f}",
                 "trained on", "8100"):
        assert text in shown.stdout, text
    assert IndexLayout(root).vector_files() == [IndexLayout(root).vectors_file(4)]


def test_tuning_starts_from_the_previous_params():
    """A commit that adds a few vectors measures the previous params first and keeps them
    while they reach the target; when they miss, nprobe grows from there to the smallest
    value that reaches it (not back down to a sweep from 1)."""
    from engine.index_choice import TARGET_RECALL, TUNING_MARGIN, IndexChoice
    from indexer.retrain import _recall_with, build, tune

    vecs = np.random.default_rng(5).standard_normal((3000, DIM)).astype(np.float32)   # no clusters:
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)                                # nprobe 1 misses
    raw = _ArrayVectors(np.arange(1, 3001), vecs)
    choice = IndexChoice(factory="IVF32,Flat", kind="ivf-flat", nlist=32, train_size=3000,
                         params={}, gpu=False, bytes_per_vector=4 * DIM)
    index = build(choice, DIM, raw, seed=0)
    target = TARGET_RECALL + TUNING_MARGIN
    swept, swept_recall = tune(index, choice, raw, seed=1)
    assert swept_recall >= target and 1 < swept["nprobe"] < 32

    kept, kept_recall = tune(index, choice, raw, seed=1, previous={"nprobe": 32})
    assert kept == {"nprobe": 32} and kept_recall >= target           # a sweep would never give 32
    assert faiss.extract_index_ivf(index).nprobe == 32

    start = swept["nprobe"] // 2                                       # misses: below the smallest hit
    assert start > 1
    grown, grown_recall = tune(index, choice, raw, seed=1, previous={"nprobe": start})
    assert grown == swept and grown_recall == pytest.approx(swept_recall)

    # "kept" reports the recall measured at the kept params on tune's own sample (seed + 1)
    rows = np.sort(np.random.default_rng(2).choice(3000, 256, replace=False))
    truth = exact_top_k(vecs[rows], raw, 11)
    assert _recall_with(index, choice, raw, vecs[rows], truth, raw.ids[rows], {"nprobe": 32}) == kept_recall
    assert _recall_with(index, choice, raw, vecs[rows], truth, raw.ids[rows], {"nprobe": 1}) < target


def test_budget_forces_compression_and_back(tmp_path):
    root = tmp_path / "idx"
    batch = files("a", 250, 10, seed=5)                       # 2500 vectors × 32 d = 320 kB float32
    meta = commit(root, batch, budget=200_000)                # float32 doesn't fit, SQ8 (80 kB) does
    assert meta["faiss_factory"] == "IVF64,SQ8" and meta["index_type"] == "IVF-SQ8"
    side = sidecar_path(root / meta["vectors_file"])
    raw = read_sidecar(side)
    want = np.concatenate([f.vectors for f in batch])
    order = np.argsort(raw.ids)
    np.testing.assert_allclose(raw.take(order), want, atol=1e-3)   # float16 raw vectors
    assert meta["recall_at_10"] >= 0.9                         # SQ8 loses a little

    gone = [f.path for f in batch[:50]]                        # remove 500 vectors, add 100
    meta = commit(root, files("b", 10, 10, seed=6), remove=gone, budget=200_000)
    assert meta["faiss_factory"] == "IVF32,SQ8"               # shrank: fewer lists, retrained
    side2 = sidecar_path(root / meta["vectors_file"])
    raw2 = read_sidecar(side2)
    assert len(raw2) == 2100 and not side.exists()            # the old generation's sidecar went
    index = on_disk(root, meta)
    assert index.ntotal == 2100
    assert not np.isin(np.arange(1, 501), raw2.ids).any()     # removed files' ids are gone

    meta = commit(root, files("c", 1, 10, seed=7), budget=BIG)  # a larger budget: exact again
    assert meta["faiss_factory"] == "IVF32,Flat" and meta["recall_at_10"] >= 0.95
    ivf = on_disk(root, meta)
    hashed(ivf)
    kept = np.sort(raw2.ids)
    np.testing.assert_allclose(ivf.reconstruct_batch(kept), raw2.take(np.argsort(raw2.ids)), atol=1e-6)


def test_pq_tier_when_even_sq8_does_not_fit(tmp_path):
    root = tmp_path / "idx"
    meta = commit(root, files("a", 200, 10, seed=8), budget=40_000)   # 2000 × 32 B SQ8 > 40 kB
    assert meta["faiss_factory"] == "OPQ4,IVF32,PQ4np" and meta["index_kind"] == "opq-ivf-pq"
    index = on_disk(root, meta)
    assert index.ntotal == 2000 and 0 < meta["recall_at_10"] <= 1.0
    assert meta["index_params"]["nprobe"] >= 1
    assert sidecar_path(root / meta["vectors_file"]).is_file()
    # a later commit in the same tier starts from those params, re-rank factor included
    grown = commit(root, files("b", 10, 10, seed=9), budget=40_000)
    assert grown["faiss_factory"] == meta["faiss_factory"] and grown["trained_on"] == meta["trained_on"]
    assert grown["index_params"] == meta["index_params"]       # still reach the target: kept
    assert grown["recall_at_10"] >= 0.95 and on_disk(root, grown).ntotal == 2100


def test_served_index_searches_with_meta_nprobe(tmp_path):
    """engine.query opens the IVF file memory-mapped, with nprobe from meta, and finds each
    stored vector's own segment first."""
    from engine.query import SoundIndex
    root = tmp_path / "idx"
    batch = files("a", 200, 10, seed=9)
    meta = commit(root, batch)
    assert meta["faiss_factory"].startswith("IVF")
    with SoundIndex.open(root) as index:
        assert index.meta["index_params"] == meta["index_params"]
        for f in batch[:5]:
            hits = index.search_vectors(f.vectors[3], k=3, per_file=False)
            assert hits[0].path == f.path and hits[0].start == pytest.approx(1.5)
            assert hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_orphan_sidecars_are_removed_and_the_current_one_kept(tmp_path):
    root = tmp_path / "idx"
    meta = commit(root, files("a", 250, 10, seed=5), budget=200_000)
    current = sidecar_path(root / meta["vectors_file"])
    orphan = root / "vectors-000099.raw.npy"
    half = root / "vectors-000002.raw.npy.tmp"
    orphan.write_bytes(b"left by a killed run")
    half.write_bytes(b"half")
    with IndexWriter(IndexLayout(root), memory_budget=200_000, chooser=CHOOSER):
        pass
    assert current.is_file() and not orphan.exists() and not half.exists()


def test_a_budget_nothing_fits_is_warned_about_once_per_run(tmp_path, caplog):
    """Below what even the most compact index needs, the index is still built, with one warning."""
    root = tmp_path / "idx"
    with caplog.at_level("WARNING", logger="indexer.write"):
        with IndexWriter(IndexLayout(root), memory_budget=1000, chooser=CHOOSER) as w:
            for k in range(2):
                w.commit(Changes(add=files(f"p{k}", 5, 10, seed=k)), META)
            meta = dict(w.meta)
    warned = [r.getMessage() for r in caplog.records if "memory budget" in r.getMessage()]
    assert len(warned) == 1 and "more than the memory budget of 1000 B" in warned[0], warned
    assert on_disk(root, meta).ntotal == 100
    caplog.clear()
    commit(tmp_path / "roomy", files("q", 5, 10, seed=3), budget=BIG)
    assert not [r for r in caplog.records if "memory budget" in r.getMessage()]
