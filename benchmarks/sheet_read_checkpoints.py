"""What the sheet's checkpoints cost and how often they come (engine.sheet_export.library_rows
reads the catalog and builds the rows a batch of files at a time, calling
engine.zeroshot.between_batches before each, where soundsift serve's GET /sheet stops the work of
a client that hung up): the read with no check set against the read with a check that only
notes the time, how many checkpoints it passed, and the longest stretch between two of them
(how long a hang-up still waits).

Run by hand (not a test), e.g. on benchmarks/commands_at_scale.py's 40,000-file library:
    .venv/bin/python benchmarks/sheet_read_checkpoints.py /tmp/scale35/index [--rounds 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index", help="an index folder")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from engine.sheet_export import library_rows
    from engine.zeroshot import checking_between_batches

    plain, checked, gaps, passed, files = [], [], [], 0, 0
    for _ in range(args.rounds):                    # alternated, so a busy machine slows both alike
        start = time.perf_counter()
        files = len(library_rows(args.index))
        plain.append(time.perf_counter() - start)
        marks: list[float] = []
        start = time.perf_counter()
        with checking_between_batches(lambda stage: marks.append(time.perf_counter())):
            library_rows(args.index)
        end = time.perf_counter()
        checked.append(end - start)
        stops = [start, *marks, end]
        gaps.append(max(b - a for a, b in zip(stops, stops[1:])))
        passed = len(marks)
    a, b = statistics.median(plain), statistics.median(checked)
    print(f"{files:,} files, median of {args.rounds}: library_rows {a:.3f} s with no check set, {b:.3f} s "
          f"checked ({b / a:.3f}x); {passed} checkpoints, the longest stretch between two "
          f"{statistics.median(gaps) * 1000:.0f} ms (median of the rounds' longest)")


if __name__ == "__main__":
    main()
