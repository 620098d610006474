"""What a keyword search costs a new process before its first query: HEAD's keyword index (built
from the catalog in every process) against today's (read back from the index folder's
keywords.npz once one process has built it), and today's build itself (the first process after
a change of tags, captions, metadata or generation). Run by hand (not a test):

    .venv/bin/python benchmarks/keyword_cache.py /tmp/scale35/index [--rounds 5] [--baseline HEAD]
    .venv/bin/python benchmarks/keyword_cache.py indexes/demo

The index's catalog is copied to a temporary folder first (the index itself is not written).
Each round runs each side in a fresh Python process, in turn (HEAD, today's build, today read
back), timing ``engine.query_keywords.keyword_index`` on a new snapshot (the first keyword search
of a process; the catalog open and the vocabulary loaded before the clock starts; today's build:
``build_keyword_index``, which keeps nothing) and the peak RSS it adds (ru_maxrss); one search
with today's code writes the kept index before the rounds. Prints each side's median and the
ratios of the medians, HEAD / today.
"""
from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def one(catalog: Path, side: str, baseline: str) -> dict[str, float]:
    """Seconds and peak RSS (MB) added by the first keyword_index of this process with ``side``'s
    engine/query_keywords.py ("head": it and engine/keywords.py as of ``baseline``; "now": the
    working tree's; "build": the working tree's build_keyword_index)."""
    from sqlalchemy import create_engine

    from engine.query_snapshot import _generation_key
    if side == "head":          # engine/keywords.py and engine/query_keywords.py as of baseline
        from benchmarks.revision_module import module_at
        words = sys.modules["engine.keywords"] = module_at(baseline, "engine/keywords.py", "head_keywords")
        module = module_at(baseline, "engine/query_keywords.py", "head_query_keywords")
    else:
        import engine.keywords as words
        import engine.query_keywords as module
    engine = create_engine(f"sqlite:///{catalog}")
    with engine.connect() as conn:
        snap = SimpleNamespace(key=_generation_key(conn), keywords=None, keyword_lock=threading.Lock())
        words.sound_words()
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        word_index = module.build_keyword_index(conn) if side == "build" else module.keyword_index(conn, snap)
        seconds = time.perf_counter() - t0
        rss = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
        files = len(word_index.file_ids)
    engine.dispose()
    return {"seconds": seconds, "rss_mb": rss, "files": files}


def _run(catalog: Path, side: str, baseline: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, str(catalog), "--one", side, "--baseline", baseline],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index", type=Path, help="an index folder (or, with --one, a catalog)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--baseline", default="HEAD")
    ap.add_argument("--one", choices=["head", "build", "now"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.index, args.one, args.baseline)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Path(tmp) / "catalog.db"
        with sqlite3.connect(args.index / "catalog.db") as src, sqlite3.connect(catalog) as dst:
            src.backup(dst)
        first = _run(catalog, "now", args.baseline)            # builds and keeps it
        print(f"{args.index}: {first['files']:,} files; today's first process (builds, keeps): "
              f"{first['seconds']:.3f} s, +{first['rss_mb']:.0f} MB", file=sys.stderr)
        runs: dict[str, list[dict[str, float]]] = {"head": [], "build": [], "now": []}
        for _ in range(args.rounds):
            for side in runs:
                runs[side].append(_run(catalog, side, args.baseline))
    med = {side: {k: statistics.median(r[k] for r in rs) for k in ("seconds", "rss_mb")} for side, rs in runs.items()}
    print(f"| side | keyword index in a new process (median of {args.rounds}) | peak RSS added |\n|---|---|---|")
    for side, label in (("head", f"{args.baseline} (built)"), ("build", "today built"), ("now", "today read back")):
        print(f"| {label} | {med[side]['seconds']:.4f} s | {med[side]['rss_mb']:.1f} MB |")
    for side, label in (("now", "read back"), ("build", "built")):
        print(f"ratio {args.baseline} / today {label}: time {med['head']['seconds'] / med[side]['seconds']:.2f}x, "
              f"RSS added {med['head']['rss_mb'] / max(med[side]['rss_mb'], 0.1):.2f}x")


if __name__ == "__main__":
    main()
