"""Query latency: ``SoundIndex.search_text`` against its two necessary parts (run by hand).

For each size (default 10k and 100k segments) the benchmark writes an index straight
into a catalog + FAISS file (clustered random unit vectors, ~3 segments per file, mixed
formats/rates/durations), opens it with :class:`engine.query.SoundIndex` and times, for
each of N distinct queries, interleaved so machine noise hits all alike:

* ``encode``  — ``model.embed_text([q])`` alone;
* ``faiss``   — the raw ``index.search(vector, k)`` on the same memory-mapped file;
* ``search``  — ``SoundIndex.search_text(q, k)`` (per file: the default);
* ``search, filtered`` — with a filter keeping ~50 % and ~5 % of the files, by the
  query layer's IDSelector, and by the alternative (post-filter with over-fetch) for
  comparison.

Usage::

    .venv/bin/python benchmarks/query.py                     # soundsift-base, 10k and 100k
    .venv/bin/python benchmarks/query.py --model PATH --sizes 10000 100000 --queries 100
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FORMATS = [("WAV", ".wav"), ("FLAC", ".flac"), ("OGG", ".ogg"), ("MP3", ".mp3")]
RATES = [16000, 44100, 48000, 96000]


def clustered_vectors(n: int, dim: int, rng: np.random.Generator, clusters: int = 200) -> np.ndarray:
    centers = rng.standard_normal((clusters, dim)).astype(np.float32)
    x = centers[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def build(root: Path, n_segments: int, model, seed: int = 0) -> None:
    """An index of ``n_segments`` vectors in ~n/3 files, written like the indexer does."""
    from sqlalchemy.orm import Session

    from engine.catalog import open_catalog, set_meta
    from engine.layout import IndexLayout
    from engine.segments import SegmentPolicy
    from engine.vectors import LENGTH_KEY, LENGTH_OF_KEY, new_index, write_index_atomic

    rng = np.random.default_rng(seed)
    layout = IndexLayout(root)
    root.mkdir(parents=True, exist_ok=True)
    engine = open_catalog(layout.catalog, create=True)
    seg_counts = rng.integers(1, 6, n_segments)            # mean 3 segments per file
    seg_counts = seg_counts[np.cumsum(seg_counts) <= n_segments]
    if seg_counts.sum() < n_segments:
        seg_counts = np.append(seg_counts, n_segments - seg_counts.sum())
    window = float(model.window_seconds)
    files, segs = [], []
    seg_id = 0
    for fid, count in enumerate(seg_counts, start=1):
        fmt, ext = FORMATS[fid % 4]
        duration = window if count == 1 else window * (count + 1) / 2
        files.append((fid, f"/library/folder{fid % 50:02d}/sound{fid:07d}{ext}", 1000, 0, duration,
                      RATES[(fid // 4) % 4], 1, fmt, "", 0.0))
        for j in range(int(count)):
            seg_id += 1
            segs.append((seg_id, fid, j * window / 2, j * window / 2 + window))
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO files (id, path, size, mtime_ns, duration, sample_rate, "
                             "channels, format, subtype, indexed_at) VALUES (?,?,?,?,?,?,?,?,?,?)", files)
        conn.exec_driver_sql('INSERT INTO segments (id, file_id, start, "end") VALUES (?,?,?,?)', segs)
    index = new_index(int(model.dim))
    index.add_with_ids(clustered_vectors(n_segments, int(model.dim), rng),
                       np.arange(1, n_segments + 1, dtype=np.int64))
    written = write_index_atomic(index, layout.vectors_file(1))
    with Session(engine) as s:
        set_meta(s, model_name=model.name, model_fingerprint=model.fingerprint, dim=int(model.dim),
                 sample_rate=int(model.sample_rate), segment_policy=SegmentPolicy(window).as_dict(),
                 generation=1, vectors_file=layout.vectors_file(1).name,
                 **{LENGTH_KEY: written, LENGTH_OF_KEY: layout.vectors_file(1).name},    # as indexer.write
                 counts={"files": len(files), "segments": n_segments})
        s.commit()
    engine.dispose()


def queries(n: int) -> list[str]:
    from engine.vocabulary import everyday_labels
    labels = list(everyday_labels())
    forms = ["{}", "the sound of {}", "{} in the distance", "close recording of {}", "loud {}"]
    out = [forms[i // len(labels) % len(forms)].format(labels[i % len(labels)]) for i in range(n)]
    return out


def postfilter_search(index, allowed: np.ndarray, q: np.ndarray, k: int, n_allowed: int) -> np.ndarray:
    """The alternative to an IDSelector: over-fetch, drop disallowed ids, grow until k remain."""
    fetch = k * 4
    while True:
        _, ids = index.search(q, fetch)
        kept = ids[0][np.isin(ids[0], allowed)]
        if len(kept) >= k or fetch >= index.ntotal or len(kept) >= n_allowed:
            return kept[:k]
        fetch = min(index.ntotal, fetch * 4)


def ms(values: list[float]) -> dict[str, float]:
    v = sorted(values)
    return {"p50": 1e3 * statistics.median(v), "p95": 1e3 * v[min(len(v) - 1, int(0.95 * len(v)))]}


def bench_size(model, n: int, n_queries: int, k: int, workdir: Path) -> dict:
    import faiss

    from engine.filters import Filters
    from engine.query import SoundIndex
    from engine.vectors import read_index

    root = workdir / f"bench-{n}"
    t = time.perf_counter()
    build(root, n, model)
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    sound_index = SoundIndex.open(root, model=model)
    open_s = time.perf_counter() - t
    raw = read_index(root / sound_index.info()["vectors_file"], mmap=True)
    half = Filters(formats=("wav", "flac"))                        # ~50 % of the files
    few = Filters(path_prefix="/library/folder0", sample_rates=(44100, 48000))   # ~5 %
    texts = queries(n_queries)
    for warm in texts[:3]:
        sound_index.search_text(warm, k=k)
        sound_index.search_text(warm, k=k, filters=half)
        sound_index.search_text(warm, k=k, filters=few)
    allowed = {name: sound_index.allowed_segment_ids(f) for name, f in (("half", half), ("few", few))}
    times: dict[str, list[float]] = {key: [] for key in (
        "encode", "faiss", "search", "search_all_segments", "half_selector", "half_postfilter",
        "few_selector", "few_postfilter")}
    for text in texts:
        t0 = time.perf_counter()
        vec = model.embed_text([text])
        t1 = time.perf_counter()
        raw.search(vec, k)
        t2 = time.perf_counter()
        sound_index.search_text(text, k=k)
        t3 = time.perf_counter()
        sound_index.search_text(text, k=k, per_file=False)
        t4 = time.perf_counter()
        times["encode"].append(t1 - t0)
        times["faiss"].append(t2 - t1)
        times["search"].append(t3 - t2)
        times["search_all_segments"].append(t4 - t3)
        for name, f in (("half", half), ("few", few)):
            t0 = time.perf_counter()
            sound_index.search_text(text, k=k, filters=f, per_file=False)
            t1 = time.perf_counter()
            v = model.embed_text([text])
            postfilter_search(raw, allowed[name], v, k, len(allowed[name]))
            t2 = time.perf_counter()
            times[f"{name}_selector"].append(t1 - t0)
            times[f"{name}_postfilter"].append(t2 - t1)
    stats = {key: ms(v) for key, v in times.items()}
    parts = stats["encode"]["p50"] + stats["faiss"]["p50"]
    info = sound_index.info()
    sound_index.close()
    return {"segments": n, "files": info["files"], "build_s": round(build_s, 2),
            "open_s": round(open_s, 3), "queries": n_queries, "k": k,
            "allowed_fraction": {name: round(len(a) / n, 3) for name, a in allowed.items()},
            "ms": {key: {p: round(x, 3) for p, x in v.items()} for key, v in stats.items()},
            "ratio_search_to_parts_p50": round(stats["search"]["p50"] / parts, 3),
            "ratio_per_query_median": round(statistics.median(
                s / (e + f) for s, e, f in zip(times["search"], times["encode"], times["faiss"])), 3),
            "faiss_threads": faiss.omp_get_max_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="soundsift-base", help="model name or folder")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=None, help="where to build (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    from engine.models import load_model
    t = time.perf_counter()
    model = load_model(args.model)
    load_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        results = [bench_size(model, n, args.queries, args.k, Path(tmp)) for n in args.sizes]
    report = {"model": model.name, "dim": int(model.dim), "model_load_s": round(load_s, 2),
              "results": results}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"model {model.name} (dim {model.dim}), loaded in {load_s:.1f} s; k={args.k}, "
          f"{args.queries} distinct queries per size; times in ms (p50 / p95)")
    for r in results:
        m = r["ms"]
        print(f"\n{r['segments']:,} segments in {r['files']:,} files (built in {r['build_s']} s, "
              f"opened in {r['open_s']} s)")
        for key in m:
            print(f"  {key:22s} {m[key]['p50']:9.2f} / {m[key]['p95']:9.2f}")
        print(f"  search_text / (encode + faiss): {r['ratio_search_to_parts_p50']:.3f} (ratio of p50s), "
              f"{r['ratio_per_query_median']:.3f} (median of per-query ratios)")
        print(f"  filters keep: {r['allowed_fraction']}")


if __name__ == "__main__":
    main()
