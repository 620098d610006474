"""What the silence pass costs an index built before session 38, per file, beside the loudness pass.

An index built before the indexer left out digital silence has its unchanged files decoded once
by the next `soundsift index` run (indexer.silence_refresh): at the model's rate, cut into its
segments, each segment's peak looked at. An index from before session 20 also measures its files'
loudness the same way (indexer.level_refresh: decoded at their own rate, no resampling); a file
lacking both has both from one decode. This times, in this process, over the same files, each
file in turn (so the machine's load falls alike on all three):

- levels: ``indexer.level_refresh.measure`` (the loudness pass);
- silence: ``indexer.silence_refresh.judge`` without levels;
- both: ``judge`` measuring levels in the same decode, against levels + silence apart.

    .venv/bin/python benchmarks/silence_refresh.py [corpus/audio] [--rate 44100] [--window 10] [--limit N]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from engine.segments import SegmentPolicy
from indexer.level_refresh import measure
from indexer.scan import scan
from indexer.silence_refresh import judge


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, nargs="?", default=Path("corpus/audio"),
                    help="the audio files timed (default: the corpus, python -m trainer.corpus build --out corpus/)")
    ap.add_argument("--rate", type=int, default=44100, help="the model's rate (soundsift-base: 44100)")
    ap.add_argument("--window", type=float, default=10.0, help="the model's window in seconds")
    ap.add_argument("--limit", type=int, default=0, help="only the first N files (0: all)")
    args = ap.parse_args()
    paths = sorted(scan([args.folder]).files)
    if args.limit:
        paths = paths[:args.limit]
    policy = SegmentPolicy(args.window)
    took = {"levels": 0.0, "silence": 0.0, "both": 0.0}
    failed = left_out = 0
    for path in paths:
        t = time.perf_counter()
        _, _, why = measure(path)
        took["levels"] += time.perf_counter() - t
        t = time.perf_counter()
        judged = judge(path, False, args.rate, policy)
        took["silence"] += time.perf_counter() - t
        t = time.perf_counter()
        judge(path, True, args.rate, policy)
        took["both"] += time.perf_counter() - t
        failed += why is not None or judged.why is not None
        left_out += judged.left_out
    n = len(paths)
    print(f"{n} files from {args.folder} ({failed} unreadable), at {args.rate} Hz, {args.window:g} s windows; "
          f"{left_out} segments the rule leaves out")
    for key, seconds in took.items():
        print(f"  {key:8s} {seconds:7.2f} s  {1000 * seconds / max(1, n):7.2f} ms a file")
    print(f"silence / levels: {took['silence'] / took['levels']:.2f}x; "
          f"both in one decode / apart: {took['both'] / (took['silence'] + took['levels']):.2f}x")


if __name__ == "__main__":
    main()
