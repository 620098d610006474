"""What naming takes and describing hits costs a query (run by hand).

Each hit gets its take's marker name and its file's about line (engine.query: one SELECT of the
hits' stored metadata). This times ``SoundIndex.search_vectors`` (random unit queries, k hits)
on an existing index with that lookup as it is (markers and about keys) and with the markers
alone (what it looked up before hits carried an about line), in alternating rounds, and prints
both medians and their ratio, measured in one run::

    .venv/bin/python benchmarks/hit_details.py INDEX [--queries 300] [--rounds 5] [-k 10]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("index", help="an index name or folder")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-k", type=int, default=10)
    args = ap.parse_args()

    import engine.query as query
    real = query.stored_metadata
    index = query.SoundIndex.open(args.index)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((args.queries, int(index.info()["dim"]))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    def run(described: bool) -> float:
        query.stored_metadata = real if described else (lambda conn, ids, keys: real(conn, ids, ("markers",)))
        t = time.perf_counter()
        for v in vectors:
            index.search_vectors(v, k=args.k)
        return (time.perf_counter() - t) / len(vectors) * 1000

    run(True), run(False)                                   # warm both paths
    now, markers_only = [], []
    for _ in range(args.rounds):
        now.append(run(True))
        markers_only.append(run(False))
    query.stored_metadata = real
    hits = index.search_vectors(vectors[0], k=args.k)
    a, b = statistics.median(now), statistics.median(markers_only)
    print(f"{args.index}: {index.info()['files']} files, k {args.k}, "
          f"{sum(1 for h in hits if h.about)} of the first query's {len(hits)} hits described")
    print(f"markers and about lookup {a:.3f} ms, markers only {b:.3f} ms, ratio {a / b:.2f} "
          f"(median of {args.rounds} rounds × {args.queries} queries)")


if __name__ == "__main__":
    main()
