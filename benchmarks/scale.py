"""Scale benchmark (run by hand): the chosen index at 1M clustered 512-d vectors vs exact search.

    .venv/bin/python benchmarks/scale.py [--n 1000000] [--dim 512] [--budget-gib 4]

Generates clustered (not uniform) L2-normalised vectors, builds the index that
engine.index_choice picks, tunes nprobe on the index's own vectors to recall@10 ≥ 0.95
against brute force, then reports build time, memory per vector, p50/p95 single-query
latency and recall@10 of the chosen index and of exact search, measured in one run.
"""
from __future__ import annotations

import argparse
import json
import resource
import time

import faiss
import numpy as np

from engine.index_choice import choose_index, recall_at_k, tune_nprobe


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


def latencies(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    times, ids = [], []
    for q in queries:
        t = time.perf_counter()
        _, i = index.search(q[None, :], k)
        times.append(time.perf_counter() - t)
        ids.append(i[0])
    return np.array(times), np.array(ids)


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
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    k = 10

    t = time.perf_counter()
    x = clustered(args.n + args.queries, args.dim, args.clusters, rng, args.spread,
                  args.intrinsic_dim, args.max_share)
    x, queries = x[: args.n], x[args.n:]
    print(f"generated {args.n} × {args.dim} clustered vectors in {time.perf_counter() - t:.1f} s", flush=True)

    choice = choose_index(args.n, args.dim, int(args.budget_gib * (1 << 30)))
    print(f"chosen: {choice.factory} (train on {choice.train_size})", flush=True)

    exact = faiss.IndexFlatIP(args.dim)
    t = time.perf_counter()
    exact.add(x)
    exact_build = time.perf_counter() - t

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    index = faiss.index_factory(args.dim, choice.factory, faiss.METRIC_INNER_PRODUCT)
    sample = x[rng.choice(args.n, choice.train_size, replace=False)] if choice.train_size else None
    if sample is not None:
        index.train(sample)
    t_train = time.perf_counter() - t
    index.add_with_ids(x, np.arange(args.n, dtype=np.int64))
    build = time.perf_counter() - t
    index_bytes = faiss.serialize_index(index).nbytes

    # tune nprobe on the index's own vectors (brute-force ground truth)
    tune_rows = rng.choice(args.n, 200, replace=False)
    tune_q = x[tune_rows]
    _, tune_truth = exact.search(tune_q, k + 1)       # each query's self-match left out
    nprobe, tune_recall = (tune_nprobe(index, tune_q, tune_truth, 1, choice.nlist, k,
                                       self_ids=tune_rows) if choice.nlist else (0, 1.0))

    faiss.omp_set_num_threads(faiss.omp_get_max_threads())
    exact_t, truth = latencies(exact, queries, k)
    approx_t, found = latencies(index, queries, k)
    recall = recall_at_k(found, truth, k)
    result = {
        "n": args.n, "dim": args.dim, "intrinsic_dim": args.intrinsic_dim, "max_share": args.max_share,
        "index": choice.factory, "nprobe": nprobe,
        "tune_recall@10": round(tune_recall, 4), "recall@10": round(recall, 4),
        "build_s": round(build, 1), "train_s": round(t_train, 1), "exact_build_s": round(exact_build, 1),
        "index_bytes": index_bytes, "bytes_per_vector": round(index_bytes / args.n, 1),
        "peak_rss_growth_mib": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024, 1),
        "p50_ms": round(1000 * float(np.percentile(approx_t, 50)), 3),
        "p95_ms": round(1000 * float(np.percentile(approx_t, 95)), 3),
        "exact_p50_ms": round(1000 * float(np.percentile(exact_t, 50)), 3),
        "exact_p95_ms": round(1000 * float(np.percentile(exact_t, 95)), 3),
        "speedup_p50": round(float(np.percentile(exact_t, 50) / np.percentile(approx_t, 50)), 1),
        "threads": faiss.omp_get_max_threads(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
