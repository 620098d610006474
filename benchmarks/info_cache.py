"""``GET /info`` on a big index: its ``info --json`` part read from the catalog on every request
(as before session 41's helper 210) against the answer kept until the catalog changes
(engine.query_catalog.catalog_summary), in one run (run by hand).

The index is written as benchmarks/query.py writes one (~3 segments per file; 120,000 segments:
~40,000 files), with a category and a loudness row per file. Each round times, interleaved:

* ``read``   — ``SoundIndex.info(full=True)`` with the connection's kept summary dropped first
  (what every request did before);
* ``kept``   — ``SoundIndex.info(full=True)`` as it runs now, nothing changed since the last;
* ``http``   — a whole ``GET /info`` of ``soundsift serve`` (kept summary; the index version too);
* ``after a commit`` — a tag added by another connection, then ``SoundIndex.info(full=True)``
  (read again once).

Usage::

    .venv/bin/python benchmarks/info_cache.py                     # 120,000 segments, 30 rounds
    .venv/bin/python benchmarks/info_cache.py --segments 30000 --rounds 10
"""
from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.query import build  # noqa: E402
from tests.test_server import serving  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--segments", type=int, default=120_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()

    from engine import query_catalog
    from engine.query import SoundIndex

    model = SimpleNamespace(name="bench", fingerprint="bench-v1", dim=64, sample_rate=16000, window_seconds=2.0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        build(root, args.segments, model)
        with sqlite3.connect(root / "catalog.db") as db:
            ids = [r[0] for r in db.execute("SELECT id FROM files")]
            db.executemany("INSERT INTO file_metadata (file_id, key, value) VALUES (?, ?, ?)",
                           [(i, "category", f"CAT{i % 40:02d}") for i in ids]
                           + [(i, "loudness_lufs", str(-10.0 - i % 50)) for i in ids])
        times: dict[str, list[float]] = {"read": [], "kept": [], "http": [], "after a commit": []}
        with SoundIndex.open(root) as index, serving(index) as url:
            expected = index.info(full=True)
            for r in range(args.rounds):
                t = time.perf_counter()
                fresh = index._with_snapshot(lambda conn, snap: (      # as every request read it before
                    conn.info.pop(query_catalog.SUMMARY_HELD, None),
                    query_catalog.info(conn, snap, index.root, index.meta, full=True))[1])
                times["read"].append(time.perf_counter() - t)
                t = time.perf_counter()
                kept = index.info(full=True)
                times["kept"].append(time.perf_counter() - t)
                assert fresh == kept == expected
                t = time.perf_counter()
                with urllib.request.urlopen(f"{url}/info", timeout=60) as answer:
                    answer.read()
                times["http"].append(time.perf_counter() - t)
                with sqlite3.connect(root / "catalog.db") as db:
                    db.execute("INSERT INTO tags (file_id, label, score, source) VALUES (?, ?, 1.0, 'user')",
                               (ids[r], f"tag{r}"))
                t = time.perf_counter()
                index.info(full=True)
                times["after a commit"].append(time.perf_counter() - t)
        files = expected["counts"]["files"]
    print(f"{files} files, {args.segments} segments, {args.rounds} rounds (median / max ms):")
    for name, values in times.items():
        print(f"  {name:15s} {1e3 * statistics.median(values):8.2f} {1e3 * max(values):8.2f}")
    print(f"  read / kept: {statistics.median(times['read']) / statistics.median(times['kept']):.0f}x")


if __name__ == "__main__":
    main()
