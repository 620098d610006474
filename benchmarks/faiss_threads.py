"""FAISS's OpenMP threads for one-query searches: default thread count vs one (run by hand).

Times the calls engine/query_faiss.py makes — ``search`` (k=50), a search restricted by an
``IDSelectorBatch`` keeping ~10 % of the ids, and ``reconstruct_batch`` of 50 ids — for one
query vector (and, for reference, a batch of 8), at FAISS's default thread count and at 1
thread, in alternating rounds so machine noise hits both alike; the ratio printed is
default / one (above 1: one thread is faster). The thread count is set with
``faiss.omp_set_num_threads`` in the timing thread only (an OpenMP setting of the calling
thread). Index kinds: those engine/index_choice.py builds (flat; IVF-Flat and IVF-SQ8 with a
cheaply trained quantizer: random unit vectors, timing only), plus a real index directory
if given. Cases: an idle-ish machine, one loaded by a CPU burner per core, and several
threads searching at once (``soundsift serve``'s case; wall time per query, alternating
rounds too).

Usage::

    .venv/bin/python benchmarks/faiss_threads.py                    # 2k, 40k, 400k × 905
    .venv/bin/python benchmarks/faiss_threads.py --sizes 2000 40000 --real /tmp/scale35/index
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def unit(n: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def build(kind: str, x: np.ndarray) -> Any:
    """An index of ``kind`` (flat, ivf-flat, ivf-sq8) holding ``x`` with ids 0..n-1."""
    import faiss
    n, d = x.shape
    if kind == "flat":
        index = faiss.index_factory(d, "IDMap2,Flat", faiss.METRIC_INNER_PRODUCT)
    else:
        nlist = min(1024, max(64, n // 100))
        index = faiss.index_factory(d, f"IVF{nlist},{'SQ8' if kind == 'ivf-sq8' else 'Flat'}",
                                    faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.niter = 4
        ivf.cp.max_points_per_centroid = 40
        index.train(x[: nlist * 40])
        ivf.nprobe = max(8, nlist // 64)
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    index.add_with_ids(x, np.arange(n, dtype=np.int64))
    return index


def calls(index: Any, rng: np.random.Generator) -> dict[str, Callable[[np.ndarray], Any]]:
    """name → call(queries) for the searches engine/query_faiss.py makes."""
    from engine.vector_access import reconstruct, search_parameters
    import faiss
    n = index.ntotal
    allowed = np.sort(rng.choice(n, max(1, n // 10), replace=False)).astype(np.int64)
    params = search_parameters(index, faiss.IDSelectorBatch(allowed))
    base = search_parameters(index, None, None)
    few = rng.choice(n, min(50, n), replace=False).astype(np.int64)
    return {"search": lambda q: index.search(q, 50, params=base),
            "selector": lambda q: index.search(q, 50, params=params),
            "reconstruct": lambda q: reconstruct(index, few)}


def timed(fn: Callable[[np.ndarray], Any], qs: np.ndarray, nq: int) -> float:
    """Median ms of ``fn`` over the query batches of ``nq`` rows in ``qs``."""
    times = []
    for i in range(0, len(qs) - nq + 1, nq):
        t = time.perf_counter()
        fn(qs[i:i + nq])
        times.append(time.perf_counter() - t)
    return 1e3 * statistics.median(times)


def compare(fn: Callable[[np.ndarray], Any], qs: np.ndarray, nq: int, rounds: int) -> tuple[float, float]:
    """(default ms, one-thread ms): medians of alternating rounds."""
    import faiss
    default = faiss.omp_get_max_threads()
    out: dict[int, list[float]] = {default: [], 1: []}
    fn(qs[:nq])
    for r in range(rounds):
        for t in ((default, 1) if r % 2 == 0 else (1, default)):
            faiss.omp_set_num_threads(t)
            out[t].append(timed(fn, qs, nq))
    faiss.omp_set_num_threads(default)
    return statistics.median(out[default]), statistics.median(out[1])


def concurrent(fn: Callable[[np.ndarray], Any], qs: np.ndarray, threads: int, one: bool) -> float:
    """Wall ms per query with ``threads`` threads each searching all of ``qs`` one at a time."""
    import faiss

    def work() -> None:
        if one:
            faiss.omp_set_num_threads(1)
        for i in range(len(qs)):
            fn(qs[i:i + 1])
    ts = [threading.Thread(target=work) for _ in range(threads)]
    t = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    return 1e3 * (time.perf_counter() - t) / (threads * len(qs))


def burn(stop: Any) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def run_cases(label: str, cases: list[tuple[str, Any]], qs: np.ndarray, rounds: int,
              rng: np.random.Generator) -> None:
    for name, index in cases:
        for call, fn in calls(index, rng).items():
            for nq in (1, 8):
                d, o = compare(fn, qs, nq, rounds)
                print(f"{label:6} {name:22} {call:11} nq={nq}: default {d:7.3f} ms  "
                      f"1 thread {o:7.3f} ms  ratio {d / o:5.2f}", flush=True)


def main(argv: list[str] | None = None) -> int:
    import faiss
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 40000, 400000])
    ap.add_argument("--dim", type=int, default=905)
    ap.add_argument("--real", type=Path, default=Path("/tmp/scale35/index"))
    ap.add_argument("--queries", type=int, default=80)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"faiss {faiss.__version__}, default threads {faiss.omp_get_max_threads()}, "
          f"{os.cpu_count()} cpus", flush=True)
    cases: list[tuple[str, Any]] = []
    for n in args.sizes:
        x = unit(n, args.dim, rng)
        kinds = ["flat"] if n < 20_000 else ["flat", "ivf-flat", "ivf-sq8"]
        for kind in kinds:
            cases.append((f"{kind} {n}x{args.dim}", build(kind, x)))
        del x
    queries = {args.dim: unit(args.queries, args.dim, rng)}
    real = sorted(args.real.glob("vectors-*.faiss")) if args.real.is_dir() else []
    if real:
        index = faiss.read_index(str(real[-1]), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        queries[index.d] = unit(args.queries, index.d, rng)
        cases.append((f"real {index.ntotal}x{index.d}", index))
    for label, loaded in (("idle", False), ("loaded", True)):
        stop, procs = mp.Event(), []
        if loaded:
            procs = [mp.Process(target=burn, args=(stop,)) for _ in range(os.cpu_count() or 1)]
            for p in procs:
                p.start()
        try:
            for name, index in cases:
                run_cases(label, [(name, index)], queries[index.d], args.rounds, rng)
        finally:
            stop.set()
            for p in procs:
                p.join()
    for name, index in cases:
        fn = calls(index, rng)["search"]
        qs = queries[index.d]
        out: dict[bool, list[float]] = {False: [], True: []}
        for r in range(args.rounds):
            for one in ((False, True) if r % 2 == 0 else (True, False)):
                out[one].append(concurrent(fn, qs, args.threads, one))
        d, o = statistics.median(out[False]), statistics.median(out[True])
        print(f"{args.threads} threads {name:22} search nq=1: default {d:7.3f} ms/query  "
              f"1 thread {o:7.3f} ms/query  ratio {d / o:5.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
