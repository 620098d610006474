"""Cost of keyword search (engine.keywords) on a library-sized set of generated names (run by hand).

A keyword search builds the index's KeywordIndex on first use (and again after tags or captions
change); this times that build over N file paths named as sound-effects libraries name them
(``/Volumes/SFX/Rain/THUNDER_DISTANT_ROLL_WIND_01234``) with a caption on every third file, and
the BM25 scoring of one query, median of R rounds. Prints build seconds, files per second and
query milliseconds.

    .venv/bin/python benchmarks/keyword_index.py --files 40000
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

from engine.keywords import KeywordIndex

VOCAB = ("door wood slam close open creak metal impact whoosh rain thunder wind birds forest city "
         "traffic car engine footsteps gravel concrete glass break water splash river ocean waves fire "
         "crackle crowd applause laugh scream dog bark cat meow horse cow rooster phone ring alarm beep "
         "click interface notification distant close heavy light").split()


def library(n: int, seed: int = 0) -> list[tuple[int, str]]:
    rnd = random.Random(seed)
    docs = [(i, f"/Volumes/SFX/{rnd.choice(VOCAB).title()}/"
                f"{'_'.join(rnd.choice(VOCAB).upper() for _ in range(4))}_{i:05d}") for i in range(n)]
    docs += [(i, f"{rnd.choice(VOCAB)} and {rnd.choice(VOCAB)} in the {rnd.choice(VOCAB)}") for i in range(0, n, 3)]
    return docs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=40000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--query", default="distant thunder rolling over the city")
    args = ap.parse_args()
    docs = library(args.files)
    builds, queries = [], []
    for _ in range(args.rounds):
        t = time.perf_counter()
        index = KeywordIndex.build(docs)
        builds.append(time.perf_counter() - t)
        t = time.perf_counter()
        for _ in range(20):
            index.scores(args.query)
        queries.append((time.perf_counter() - t) / 20)
    build, query = statistics.median(builds), statistics.median(queries)
    print(f"{args.files} files: build {build:.2f} s ({args.files / build:,.0f} files/s; "
          f"rounds {', '.join(f'{b:.2f}' for b in builds)}), query {query * 1000:.2f} ms")


if __name__ == "__main__":
    main()
