"""Cost of keyword search (engine.keywords) on a library-sized set of generated names (run by hand).

A keyword search builds the index's KeywordIndex on first use (and again after tags or captions
change); this times that build over N file paths named as sound-effects libraries name them
(``/Volumes/SFX/Rain/THUNDER_DISTANT_ROLL_WIND_01234``, one name in four holding a compound
written without separators, ``DOORSLAM`` or ``thunderclap``) with a caption on every third
file, and the BM25 scoring of queries (one of plain words, one a compound), median of R rounds.
Prints build seconds, files per second and query milliseconds, for the working tree's
engine/keywords.py and, timed in turn in the same rounds on the same names, for that file at a
git revision (``--baseline``, default HEAD; none with ``--baseline ''``), and their ratios (of
the medians, and of the fastest builds, which other processes on the machine disturb least).

    .venv/bin/python benchmarks/keyword_index.py --files 40000 --baseline HEAD
"""
from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from engine import keywords

VOCAB = ("door wood slam close open creak metal impact whoosh rain thunder wind birds forest city "
         "traffic car engine footsteps gravel concrete glass break water splash river ocean waves fire "
         "crackle crowd applause laugh scream dog bark cat meow horse cow rooster phone ring alarm beep "
         "click interface notification distant close heavy light").split()
#: compounds as libraries write them (DOORSLAM, thunderclap): two of VOCAB's words, no separator
COMPOUND_SHARE = 0.25


def library(n: int, seed: int = 0) -> list[tuple[int, str]]:
    rnd = random.Random(seed)

    def word() -> str:
        if rnd.random() < COMPOUND_SHARE / 4:
            joined = rnd.choice(VOCAB) + rnd.choice(VOCAB)
            return joined.upper() if rnd.random() < 0.5 else joined
        return rnd.choice(VOCAB).upper()

    docs = [(i, f"/Volumes/SFX/{rnd.choice(VOCAB).title()}/"
                f"{'_'.join(word() for _ in range(4))}_{i:05d}") for i in range(n)]
    docs += [(i, f"{rnd.choice(VOCAB)} and {rnd.choice(VOCAB)} in the {rnd.choice(VOCAB)}") for i in range(0, n, 3)]
    return docs


def baseline_module(rev: str) -> ModuleType:
    """engine/keywords.py as it was at git revision ``rev``, imported as a module of its own."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "-C", str(root), "show", f"{rev}:engine/keywords.py"],
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "keywords_baseline.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("keywords_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["keywords_baseline"] = module
    spec.loader.exec_module(module)
    return module


def time_one(module: ModuleType, docs: list[tuple[int, str]], queries: list[str]) -> tuple[float, list[float]]:
    """Build seconds and each query's mean seconds over 20 calls."""
    t = time.perf_counter()
    index = module.KeywordIndex.build(docs)
    build = time.perf_counter() - t
    per_query = []
    for query in queries:
        t = time.perf_counter()
        for _ in range(20):
            index.scores(query)
        per_query.append((time.perf_counter() - t) / 20)
    return build, per_query


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=40000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--query", action="append",
                    help="a query to time (repeatable; default: a sentence and a compound)")
    ap.add_argument("--baseline", default="HEAD",
                    help="git revision whose engine/keywords.py is timed beside the working tree's ('' for none)")
    args = ap.parse_args()
    queries = args.query or ["distant thunder rolling over the city", "doorslam heavy"]
    docs = library(args.files)
    modules = {"now": keywords}
    if args.baseline:
        modules[args.baseline] = baseline_module(args.baseline)
        sources = (Path(m.__file__).read_text(encoding="utf-8") for m in (modules[args.baseline], keywords))
        if len(set(sources)) == 1:
            print(f"note: engine/keywords.py at {args.baseline} is the working tree's; pass --baseline REV")
    for module in modules.values():          # warm the stemmer and the sound words once
        module.KeywordIndex.build(docs[:200])
    times: dict[str, list[tuple[float, list[float]]]] = {name: [] for name in modules}
    for _ in range(args.rounds):
        for name, module in modules.items():      # interleaved: the same load on both
            times[name].append(time_one(module, docs, queries))
    summary = {}
    for name, runs in times.items():
        build = statistics.median(b for b, _ in runs)
        query = [statistics.median(q[i] for _, q in runs) for i in range(len(queries))]
        summary[name] = (build, query)
        print(f"{name}: {args.files} files: build {build:.2f} s ({args.files / build:,.0f} files/s; "
              f"rounds {', '.join(f'{b:.2f}' for b, _ in runs)}), "
              + ", ".join(f"query {q!r} {t * 1000:.2f} ms" for q, t in zip(queries, query)))
    if args.baseline:
        (b_now, q_now), (b_base, q_base) = summary["now"], summary[args.baseline]
        fastest = min(b for b, _ in times["now"]) / min(b for b, _ in times[args.baseline])
        print(f"ratio now / {args.baseline}: build {b_now / b_base:.2f} (medians; fastest rounds {fastest:.2f}), "
              + ", ".join(f"query {q!r} {a / b:.2f}" for q, a, b in zip(queries, q_now, q_base)))


if __name__ == "__main__":
    main()
