"""Scale benchmark (run by hand): the chosen index at 1M clustered 512-d vectors vs exact search.

    .venv/bin/python benchmarks/scale.py [--n 1000000] [--dim 512] [--budget-gib 4]

Generates clustered (not uniform) L2-normalised vectors, builds the index that
engine.index_choice picks the way the writer does (indexer.retrain.build: trained on a
seeded sample; lossy types with their float16 sidecar on disk), tunes it the way the
writer does (indexer.retrain.tune: nprobe, and for PQ the re-rank factor, by recall@10 of
the index's own vectors against brute force), writes it, serves it the way the query
layer does (memory-mapped; PQ candidates re-ranked from the memory-mapped sidecar), and
reports build / train / tune time, RAM bytes per vector, sidecar bytes on disk, p50/p95
single-query latency and recall@10 on held-out queries of the chosen index and of exact
search, measured in one run.
"""
from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

from engine import index_choice
from engine.index_choice import choose_index, recall_at_k
from engine.rerank import RawSidecar, rerank_factor, reranked_search
from engine.vector_access import search_parameters
from engine.vectors import read_index, write_index_atomic
from indexer import retrain


def cluster_shares(n_clusters: int, rng: np.random.Generator, max_share: float) -> np.ndarray:
    """Uneven (Zipf 1.5) cluster sizes, no cluster above ``max_share`` of the vectors."""
    p = rng.zipf(1.5, n_clusters).astype(np.float64)
    p /= p.sum()
    for _ in range(20):                      # cap and renormalise until it holds
        if p.max() <= max_share * (1 + 1e-9):
            break
        p = np.minimum(p, max_share)
        p /= p.sum()
    return p


def clustered(n: int, dim: int, n_clusters: int, rng: np.random.Generator, spread: float,
              intrinsic_dim: int = 0, max_share: float = 1.0, noise: float = 0.1) -> np.ndarray:
    """L2-normalised vectors around ``n_clusters`` random centres.

    ``intrinsic_dim`` 0: each cluster is an isotropic Gaussian blob of radius ``spread``
    (in 512-d its points are nearly equidistant: neighbours carry no structure, the worst
    case for any ANN index). ``intrinsic_dim`` k > 0: each cluster spreads along its own
    random k-dimensional subspace (radius ``spread``) plus isotropic ``noise``, the way
    embeddings of real sounds lie near low-dimensional manifolds.
    """
    centers = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    labels = rng.choice(n_clusters, n, p=cluster_shares(n_clusters, rng, max_share))
    out = np.empty((n, dim), np.float32)
    if intrinsic_dim <= 0:
        step = 100_000
        for a in range(0, n, step):
            b = min(n, a + step)
            x = centers[labels[a:b]] + spread * rng.standard_normal((b - a, dim)).astype(np.float32) / np.sqrt(dim)
            out[a:b] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_clusters + 1))
    for c in range(n_clusters):
        rows = order[bounds[c]:bounds[c + 1]]
        if len(rows) == 0:
            continue
        basis = rng.standard_normal((intrinsic_dim, dim)).astype(np.float32) / np.sqrt(dim)
        coef = rng.standard_normal((len(rows), intrinsic_dim)).astype(np.float32) * (spread / np.sqrt(intrinsic_dim))
        x = centers[c] + coef @ basis
        x += noise * rng.standard_normal(x.shape).astype(np.float32) / np.sqrt(dim)
        out[rows] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def latencies(search, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-query wall time and ids of ``search(q (1, d), k) → (D, I)``, one query at a time."""
    times, ids = [], []
    for q in queries:
        t = time.perf_counter()
        _, i = search(q[None, :], k)
        times.append(time.perf_counter() - t)
        ids.append(i[0])
    return np.array(times), np.array(ids)


def served_search(index: faiss.Index, params: dict, raw: RawSidecar | None):
    """The query layer's search: meta nprobe, then re-ranking where params ask for it."""
    sp = search_parameters(index, None, params)

    def base(q: np.ndarray, n: int):
        return index.search(q, n, params=sp)
    factor = rerank_factor(params)
    if factor and raw is not None:
        return lambda q, n: reranked_search(base, q, n, factor, raw.vectors, limit=index.ntotal)
    return base


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--clusters", type=int, default=2000)
    ap.add_argument("--spread", type=float, default=0.8)
    ap.add_argument("--intrinsic-dim", type=int, default=0,
                    help="0: isotropic blobs (worst case); k: clusters along k-dim subspaces")
    ap.add_argument("--max-share", type=float, default=0.01,
                    help="largest share of all vectors one cluster may hold (1: uncapped Zipf, "
                         "which puts half the vectors into one structureless blob)")
    ap.add_argument("--budget-gib", type=float, default=4.0)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-size", type=int, default=0,
                    help="train the coarse quantizer / PQ on this many vectors (0: the choice's)")
    ap.add_argument("--opq-niter", type=int, default=0,
                    help="OPQ rotation iterations (0: engine.index_choice.OPQ_NITER)")
    ap.add_argument("--workdir", default=None, help="folder for the index and sidecar files")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    k = 10

    t = time.perf_counter()
    x = clustered(args.n + args.queries, args.dim, args.clusters, rng, args.spread,
                  args.intrinsic_dim, args.max_share)
    x, queries = x[: args.n], x[args.n:]
    print(f"generated {args.n} × {args.dim} clustered vectors in {time.perf_counter() - t:.1f} s", flush=True)

    choice = choose_index(args.n, args.dim, int(args.budget_gib * (1 << 30)))
    if args.train_size:
        from dataclasses import replace
        choice = replace(choice, train_size=min(args.n, args.train_size))
    if args.opq_niter:
        index_choice.OPQ_NITER = args.opq_niter
    print(f"chosen: {choice.factory} (train on {choice.train_size})", flush=True)

    exact = faiss.IndexFlatIP(args.dim)
    t = time.perf_counter()
    exact.add(x)
    exact_build = time.perf_counter() - t

    work = Path(tempfile.mkdtemp(prefix="soundsift-scale-", dir=args.workdir))
    ids = np.arange(args.n, dtype=np.int64)
    raw_path = work / "vectors-000001.raw.npy"
    if choice.kind in retrain.LOSSY_KINDS:     # the writer's float16 sidecar, read mapped
        raw = retrain.write_sidecar(raw_path, None, ids[:0], ids, x, args.dim)
    else:
        raw = retrain._ArrayVectors(ids, x)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    index = (retrain.build(choice, args.dim, raw, seed=1) if choice.nlist
             else faiss.IndexIDMap2(faiss.IndexFlatIP(args.dim)))
    if not choice.nlist:
        index.add_with_ids(x, ids)
    build = time.perf_counter() - t
    t = time.perf_counter()
    params, tune_recall = retrain.tune(index, choice, raw, seed=1)
    tune_s = time.perf_counter() - t
    path = work / "vectors-000001.faiss"
    write_index_atomic(index, path)
    index_bytes = path.stat().st_size
    del index
    served = read_index(path, mmap=True)
    side = RawSidecar(raw_path, sorted_ids=ids) if raw_path.is_file() else None
    search = served_search(served, params, side)

    faiss.omp_set_num_threads(faiss.omp_get_max_threads())
    exact_t, truth = latencies(exact.search, queries, k)
    approx_t, found = latencies(search, queries, k)
    recall = recall_at_k(found, truth, k)
    result = {
        "n": args.n, "dim": args.dim, "intrinsic_dim": args.intrinsic_dim, "max_share": args.max_share,
        "budget_gib": args.budget_gib, "index": choice.factory, "params": params,
        "train_size": choice.train_size, "opq_niter": index_choice.OPQ_NITER,
        "tune_recall@10": round(tune_recall, 4), "recall@10": round(recall, 4),
        "build_s": round(build, 1), "tune_s": round(tune_s, 1), "exact_build_s": round(exact_build, 1),
        "index_bytes": index_bytes, "ram_bytes_per_vector": round(index_bytes / args.n, 1),
        "sidecar_bytes_on_disk": raw_path.stat().st_size if raw_path.is_file() else 0,
        "peak_rss_growth_mib": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024, 1),
        "p50_ms": round(1000 * float(np.percentile(approx_t, 50)), 3),
        "p95_ms": round(1000 * float(np.percentile(approx_t, 95)), 3),
        "exact_p50_ms": round(1000 * float(np.percentile(exact_t, 50)), 3),
        "exact_p95_ms": round(1000 * float(np.percentile(exact_t, 95)), 3),
        "speedup_p50": round(float(np.percentile(exact_t, 50) / np.percentile(approx_t, 50)), 1),
        "threads": faiss.omp_get_max_threads(),
    }
    print(json.dumps(result, indent=2))
    for f in work.iterdir():
        f.unlink()
    work.rmdir()


if __name__ == "__main__":
    main()
