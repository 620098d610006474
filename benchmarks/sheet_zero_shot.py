"""The steps of ``soundsift serve``'s routes on a large index, and the zero-shot column of
``/sheet?zero_shot=N`` tagged in one step against TAG_ROWS at a time (run by hand).

    .venv/bin/python benchmarks/sheet_zero_shot.py /tmp/scale35/index [--rounds 3]

``/tmp/scale35`` is what ``benchmarks/commands_at_scale.py build /tmp/scale35`` writes (40,000
files, a tiny random CLAP). Prints, in one process with the model loaded:

* the median seconds of each route's work in-process (no HTTP): a search, a stored-vector
  ``/similar``, ``/tag`` of one indexed file, and ``/sheet`` without and with ``zero_shot=5``
  split into its steps (the catalog read, the stored vectors read, the tagging, the CSV): which
  run long enough to want a checkpoint (engine.zeroshot.between_batches) inside;
* engine.zeroshot.tag_many over every file's vector and the model's vocabulary, all rows in one
  step (as before TAG_ROWS) and TAG_ROWS at a time, in alternating rounds: median seconds and
  the peak of memory allocated meanwhile (tracemalloc), with their ratios.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


from benchmarks.page_tag_choices import median_seconds as _median_seconds  # noqa: E402


def _tagging(model: Any, vectors: np.ndarray, labels: list[str], rows: int) -> tuple[float, int]:
    """Seconds and peak bytes allocated of tag_many with ``rows`` rows at a time."""
    from engine import zeroshot
    zeroshot.TAG_ROWS = rows
    tracemalloc.start()
    start = time.perf_counter()
    zeroshot.tag_many(model, vectors, labels, 5, min_score=0.1)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from engine import zeroshot
    from engine.query import SoundIndex
    from engine.sheet_export import library_rows, sheet_bytes
    from engine.vocabulary import default_labels
    batch = zeroshot.TAG_ROWS
    with SoundIndex.open(args.index) as index:
        model, labels = index.model, default_labels(index.model)
        zeroshot.label_vectors(model, labels)           # embedded (or read from the cache) once, outside
        first = index.file_vectors(None).file_ids[0]
        rows = library_rows(index.root, None, sound_index=index, zero_shot=5)
        vectors = np.asarray(index.file_vectors(None).vectors)
        steps = {
            "search_text (k=10)": lambda: index.search_text("door slam", k=10),
            "similar_to_file (stored vector)": lambda: index.similar_to_file(int(first), k=10),
            "tag one file (stored vector)": lambda: zeroshot.tag(model, index.file_vector(int(first)), labels, 5),
            "/sheet: catalog read and rows": lambda: library_rows(index.root, None, sound_index=index),
            "/sheet: stored vectors read": lambda: index.file_vectors(None),
            f"/sheet: zero-shot tags ({batch} rows at a time)": lambda: zeroshot.tag_many(model, vectors, labels, 5,
                                                                                          min_score=0.1),
            "/sheet: CSV written": lambda: sheet_bytes(rows, ".csv"),
        }
        print(f"{len(vectors)} files, {len(labels)} labels; median of {args.rounds}")
        for name, work in steps.items():
            print(f"  {name:45s} {_median_seconds(work, args.rounds):8.3f} s")
        found: dict[int, list[tuple[float, int]]] = {len(vectors): [], batch: []}
        for _ in range(args.rounds):                   # alternating: the machine's load falls on both
            for rows_at_once in found:
                found[rows_at_once].append(_tagging(model, vectors, labels, rows_at_once))
        zeroshot.TAG_ROWS = batch
        (seconds_one, peak_one), (seconds_batched, peak_batched) = (
            (statistics.median(s for s, _ in runs), max(p for _, p in runs)) for runs in found.values())
        print(f"tag_many, all {len(vectors)} rows at once: {seconds_one:.2f} s, peak {peak_one / 2**20:.0f} MiB")
        print(f"tag_many, {batch} rows at a time:      {seconds_batched:.2f} s, peak {peak_batched / 2**20:.0f} MiB")
        print(f"ratios (one step / batched): time {seconds_one / seconds_batched:.2f}, "
              f"peak memory {peak_one / peak_batched:.1f}")


if __name__ == "__main__":
    main()
