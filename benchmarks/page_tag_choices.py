"""What the page reads for its filters after a tag change: every choice (before session 35's
leftovers: facets, every indexed path's folder and the user's tags, ui/app.py's _choices keyed on
the tags' stamp) against the tag choices alone (ui/app.py's _tag_choices), on one index.

Run by hand (not a test), e.g. on benchmarks/commands_at_scale.py's 40,000-file library:
    .venv/bin/python benchmarks/page_tag_choices.py /tmp/scale35/index [--rounds 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def median_seconds(work: Callable[[], object], rounds: int) -> float:
    """The median wall time of ``rounds`` calls of ``work``."""
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index", help="an index folder")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    from engine.query import SoundIndex
    from ui.components.library import Library

    lib = Library(args.index)
    with SoundIndex.open(args.index) as index:
        every = median_seconds(lambda: (index.facets(), lib.folders(), lib.user_tag_names()), args.rounds)
        tags = median_seconds(lib.user_tag_names, args.rounds)
        files = int(index.info().get("files") or 0)
    print(f"{files:,} files, median of {args.rounds}: every filter choice {every:.3f} s, "
          f"the tag choices {tags:.3f} s: {every / tags:.1f}x less after a tag change")


if __name__ == "__main__":
    main()
