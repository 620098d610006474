"""What one hit per recording costs a search (engine.query_copies): collapsed (the default) against
``collapse_copies=False`` (``--all-copies``), in one process, interleaved; the first search by a
file against the same search repeated (the page reruns it at every click, the HTTP server answers
many: the copies' SHA-256 is kept for the process, engine.towers.cache.cached_file_sha256).

Run by hand (not a test):
    .venv/bin/python benchmarks/search_copies.py [--files 200] [--seconds 10] [--queries 50] [--k 10]
    .venv/bin/python benchmarks/search_copies.py --every 0      # a library without copies

Writes ``--files`` recordings (noise and chirps, ``--seconds`` long, 48 kHz 16-bit, so all of one
size), gives every fourth one (``--every``; 0: none) three more names (a hard link, and two byte-identical copies in other
folders), indexes them with tests.index_fakes.FakeModel (8 dims: FAISS costs next to nothing, so the
ratio is the query layer's worst case; a real model's text embedding adds its milliseconds to both),
waits until the files are older than engine.towers.cache.RECENT_CHANGE_NS (digests of files
changed since are not kept), and times ``SoundIndex.search_vectors`` by the stored vector of each
of ``--queries`` files, half with copies and half without: each pick searched collapsed with no
digest kept (``first``: the process's digests forgotten before it; the files are in the page
cache), the same search again (``again``: the digests kept) and with all copies, the three in
turn. Prints the medians (ms of wall time, and of the searching thread's CPU time: steadier on
a busy machine), the ratios first / all copies, again / all copies and first / again of each
kind, how many files a first and a repeated search read (whole, for their SHA-256) and how many
copies a search listed, as one JSON object. FakeModel tells the chirps apart poorly, so a top 10
holds several recordings with copies: a search that reads much. Also counted, unaffected by the
machine's load: FAISS rankings (``rank_segments`` calls) and hits built (entries given to
``SoundIndex._hits``, its catalog lookups) per search, medians.

``--threads 1``: FAISS searches on one thread. On a machine whose cores are all busy, a search's
OpenMP workers wait for a core, and the searching thread spins at their barrier: milliseconds a
FAISS call, more than the rest of the search, and as many times as the search asks FAISS.

``--code DIR``: time the code of another tree (e.g. ``git archive HEAD | tar -x -C DIR``) with
this same script, for a before/after comparison; the output names the engine it imported.

``--before REV``: also time each collapsed search (``first_before``, ``again_before``, in turn
with the others) as the code before this option searched, in this same process: each length of
FAISS's ranking asked of FAISS (``engine.query.exact_ranking`` says no index is exact: no ranking
cut from a longer one, none told beyond its length) and the SHA-256 looked up by the
``engine/towers/cache.py`` of the git revision ``REV`` (one before session 37's: the path
resolved at every lookup; its own digests kept). Adds the ratios before / after. ``--pad N``: N
more recordings of one second (noise, no copies) in a folder of their own, a larger index for
FAISS to rank; ``--dim D``: the stand-in model's vectors D wide (a real model's 512: a FAISS
ranking then costs what it does).

``--rankings-before REV``: instead, a collapsed search by each of the ``--files`` recordings (its
stored vector, ``--k``), as this tree ranks and as the git revision ``REV``'s
``engine/query_copies.py`` (``planned``, ``Rankings``) and ``engine/query_faiss.py``
(``rank_segments``, given only the arguments it takes: no ``scans`` before session 39) did,
loaded into this same process, the two in turn: how many searches asked
FAISS's ranking (``rank_segments``) once, twice …, how many FAISS scans (index searches) they
made, the candidates they built into hits, whether every search returned the same hits (paths,
copies, spans, scores, in order), and the mean and median ms of each way (the digests kept: each
search run once before), the mean µs a search spent in ``rank_segments``, and their ratios
before / now. ``--k`` may be given several times; ``--segments``: also each recording's search
of segments (``per_file=False``), keyed ``"k segments"``.
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SR = 48000


def make_library(folder: Path, files: int, seconds: float, every: int = 4) -> list[Path]:
    """``files`` recordings, every ``every``-th (0: none) with a hard link and two copies; returns
    the recordings."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * SR)) / SR
    recordings = []
    for i in range(files):
        x = (0.2 * rng.standard_normal(t.size) if i % 2 else
             0.5 * np.sin(2 * np.pi * (100 + 40 * i) * t * (1 + t / seconds)))
        path = folder / "Recordings" / f"take_{i:03d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, x.astype(np.float32), SR, subtype="PCM_16")
        recordings.append(path)
        if every and i % every == 0:
            for other in ("Favourites", "Pack A", "Pack B"):
                (folder / other).mkdir(exist_ok=True)
            os.link(path, folder / "Favourites" / path.name)
            shutil.copyfile(path, folder / "Pack A" / path.name)
            shutil.copyfile(path, folder / "Pack B" / path.name)
    return recordings


def pad_library(folder: Path, files: int) -> None:
    """``files`` recordings of one second of noise (each its own length: none ties with another
    on size), no copies."""
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        sf.write(folder / f"pad_{i:05d}.wav", (0.1 * rng.standard_normal(SR + i)).astype(np.float32), SR,
                 subtype="PCM_16")


def load_module(source: str, name: str) -> ModuleType:
    """A module of its own run from the text ``source``."""
    module = ModuleType(name)
    sys.modules[name] = module
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def git_module(rev: str, path: str, name: str) -> ModuleType:
    """The file ``path`` of the git revision ``rev`` of this repository, as a module ``name``."""
    return load_module(subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], check=True,
                                      capture_output=True, text=True).stdout, name)


def rankings_before_and_now(index, recordings: list[Path], ks: list[int], rev: str, segments: bool = False) -> dict:
    """``--rankings-before``: each recording's collapsed search at each of ``ks`` (``segments``:
    also of segments), as ranked now and by ``rev``'s ``planned``, ``Rankings`` and
    ``rank_segments`` (swapped into engine.query in turn), counted (rankings, FAISS scans, hits
    built), compared and timed (each search, and its time in ``rank_segments``)."""
    import engine.query as query
    import engine.query_faiss as query_faiss
    from engine.query import SoundIndex
    old_copies = git_module(rev, "engine/query_copies.py", "query_copies_before")
    old_faiss = git_module(rev, "engine/query_faiss.py", "query_faiss_before")

    class OldRankings(old_copies.Rankings):
        """``rev``'s rankings; ``told`` (asked by this tree's query layer) tells only the top n
        where ``rev``'s have none (before session 38)."""

        if not hasattr(old_copies.Rankings, "told"):
            def told(self, n: int):
                return self(n)
    counts = {"rankings": 0, "scans": 0, "built": 0, "rank_s": 0.0}

    def counting_searcher(make):
        def searcher(*a, **kw):
            search = make(*a, **kw)

            def counted(q, n):
                counts["scans"] += 1
                return search(q, n)
            return counted
        return searcher
    old_faiss.searcher = counting_searcher(old_faiss.searcher)
    ways = {"now": (query.planned, query.Rankings, query.rank_segments, counting_searcher(query_faiss.searcher)),
            "before": (old_copies.planned, OldRankings, old_faiss.rank_segments, old_faiss.searcher)}
    hits_of = SoundIndex._hits

    def run(way: str, vector: np.ndarray, k: int, per_file: bool) -> tuple[list[dict], float, tuple]:
        planned, rankings, rank_segments, searcher = ways[way]
        takes = inspect.signature(rank_segments).parameters

        def counting_rank(*a, **kw):
            counts["rankings"] += 1
            t = time.perf_counter()
            try:
                return rank_segments(*a, **{name: v for name, v in kw.items() if name in takes})   # (rev's: no scans)
            finally:
                counts["rank_s"] += time.perf_counter() - t

        def counting_hits(self, conn, snap, top, *a, **kw):
            counts["built"] += len(top)
            return hits_of(self, conn, snap, top, *a, **kw)
        saved = query.planned, query.Rankings, query.rank_segments, query_faiss.searcher
        query.planned, query.Rankings, query.rank_segments, query_faiss.searcher = (
            planned, rankings, counting_rank, searcher)
        SoundIndex._hits = counting_hits
        try:
            counts.update(rankings=0, scans=0, built=0, rank_s=0.0)
            t = time.perf_counter()
            hits = index.search_vectors(vector, k=k, per_file=per_file)
            ms = (time.perf_counter() - t) * 1000
        finally:
            query.planned, query.Rankings, query.rank_segments, query_faiss.searcher = saved
            SoundIndex._hits = hits_of
        return [h.to_dict() for h in hits], ms, (counts["rankings"], counts["scans"], counts["built"],
                                                 counts["rank_s"] * 1e6)

    vectors = [index.file_vector(str(p)) for p in recordings]
    out: dict = {"rankings_before": rev, "searches": len(recordings), "by_k": {}}
    for k, per_file in [(k, True) for k in ks] + [(k, False) for k in ks if segments]:
        found: dict[str, list] = {"now": [], "before": []}
        ms: dict[str, list[float]] = {"now": [], "before": []}
        work: dict[str, list[tuple]] = {"now": [], "before": []}
        for i, vector in enumerate(vectors):
            order = ("now", "before") if i % 2 == 0 else ("before", "now")
            for way in order:
                run(way, vector, k, per_file)       # its digests kept, its pages cached
            for way in order:
                hits, took, did = run(way, vector, k, per_file)
                found[way].append(hits)
                ms[way].append(took)
                work[way].append(did)

        def histogram(values: list[int]) -> dict[str, int]:
            return {str(v): values.count(v) for v in sorted(set(values))}
        means = {way: round(statistics.fmean(v), 3) for way, v in ms.items()}
        medians = {way: round(statistics.median(v), 3) for way, v in ms.items()}
        ranking_us = {way: round(statistics.fmean(w[3] for w in v), 1) for way, v in work.items()}
        out["by_k"][str(k) + ("" if per_file else " segments")] = {
            "same_results": found["now"] == found["before"],
            "searches_differing": sum(a != b for a, b in zip(found["now"], found["before"])),
            "searches_by_rankings": {way: histogram([w[0] for w in v]) for way, v in work.items()},
            "searches_by_faiss_scans": {way: histogram([w[1] for w in v]) for way, v in work.items()},
            "hits_built": {way: sum(w[2] for w in v) for way, v in work.items()},
            "mean_ms": means, "median_ms": medians,
            "rank_segments_us_per_search_mean": ranking_us,
            "ratios_before_over_now": {"mean": round(means["before"] / means["now"], 3),
                                       "median": round(medians["before"] / medians["now"], 3),
                                       "rank_segments": round(ranking_us["before"] / ranking_us["now"], 3)},
        }
    return out


def timed(fn) -> tuple[float, float]:
    """Wall and CPU milliseconds of ``fn()`` (this thread's CPU: not FAISS's OpenMP workers')."""
    t, cpu = time.perf_counter(), time.thread_time()
    fn()
    return (time.perf_counter() - t) * 1000, (time.thread_time() - cpu) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--k", type=int, action="append", default=None,
                    help="results a search returns (default 10; several with --rankings-before)")
    ap.add_argument("--every", type=int, default=4, help="every n-th recording gets copies (0: none)")
    ap.add_argument("--code", type=Path, default=ROOT, help="the tree whose engine is timed (default: this one)")
    ap.add_argument("--threads", type=int, default=0,
                    help="FAISS's OpenMP threads (0: its own; 1 is steadier on a busy machine)")
    ap.add_argument("--before", default=None,
                    help="also time collapsed searches as before: rankings by length, this git revision's digest lookup")
    ap.add_argument("--pad", type=int, default=0, help="more one-second recordings without copies")
    ap.add_argument("--dim", type=int, default=0, help="the stand-in model's width (default: FakeModel's, 8)")
    ap.add_argument("--rankings-before", default=None, metavar="REV",
                    help="count and time each recording's search as ranked now and at this git revision")
    ap.add_argument("--segments", action="store_true",
                    help="with --rankings-before: also each recording's search of segments (per_file=False)")
    args = ap.parse_args()
    ks = args.k or [10]
    args.k = ks[0]
    if args.threads:
        import faiss
        faiss.omp_set_num_threads(args.threads)
    sys.path.insert(0, str(args.code.resolve()))
    import engine.query as query
    import engine.towers.cache as cache
    from engine.query import SoundIndex
    from indexer import build_index
    from tests.index_fakes import FakeModel
    if args.dim:
        FakeModel = type("WideFakeModel", (FakeModel,), {"dim": args.dim})     # noqa: N806

    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "lib"
        recordings = make_library(lib, args.files, args.seconds, args.every)
        if args.pad:
            pad_library(lib / "Padding", args.pad)
        made = time.time_ns()
        build_index([str(lib)], Path(tmp) / "idx", FakeModel(), workers=0, progress=False)
        time.sleep(max(0.0, (made + cache.RECENT_CHANGE_NS - time.time_ns()) / 1e9))
        if args.rankings_before:
            with SoundIndex.open(Path(tmp) / "idx", model=FakeModel()) as index:
                print(json.dumps(rankings_before_and_now(index, recordings, ks, args.rankings_before, args.segments)
                                 | {"files": args.files, "padding": args.pad, "dim": args.dim or FakeModel.dim,
                                    "faiss_threads": args.threads or "its own"}, indent=1))
            return
        read: list[str] = []
        sha256 = cache.file_sha256
        cache.file_sha256 = lambda path, *a: read.append(str(path)) or sha256(path, *a)   # files read
        ways: tuple[str, ...] = ("first", "again", "all_copies")
        before = None
        if args.before:
            before = load_module(subprocess.run(
                ["git", "-C", str(ROOT), "show", f"{args.before}:engine/towers/cache.py"],
                check=True, capture_output=True, text=True).stdout, "cache_before")
            before.file_sha256 = cache.file_sha256      # counted alike (it hashes through its own name)
            ways += ("first_before", "again_before")
        import engine.query_copies as query_copies
        lookup, exact = query_copies.cached_file_sha256, getattr(query, "exact_ranking", None)
        times: dict[str, list[float]] = {f"{kind}_{how}": [] for kind in ("with_copies", "without") for how in ways}
        reads: dict[str, list[int]] = {name: [] for name in times if not name.endswith("all_copies")}
        cpu_times: dict[str, list[float]] = {name: [] for name in times}
        work: dict[str, list[tuple[int, int]]] = {name: [] for name in times}     # (rankings, hits built)
        counts = [0, 0]
        rank_segments, hits_of = query.rank_segments, SoundIndex._hits

        def counting_rank(*a, **kw):
            counts[0] += 1
            return rank_segments(*a, **kw)

        def counting_hits(self, conn, snap, top, *a, **kw):
            counts[1] += len(top)
            return hits_of(self, conn, snap, top, *a, **kw)
        query.rank_segments, SoundIndex._hits = counting_rank, counting_hits
        with SoundIndex.open(Path(tmp) / "idx", model=FakeModel()) as index:
            with_copies = [p for i, p in enumerate(recordings) if i % (args.every or 4) == 0]
            without = [p for i, p in enumerate(recordings) if i % (args.every or 4) != 0]
            picks = [("with_copies", with_copies[i % len(with_copies)]) for i in range(args.queries // 2)]
            picks += [("without", without[i % len(without)]) for i in range(args.queries - len(picks))]
            vectors = {p: index.file_vector(str(p)) for _, p in picks}
            for _, p in picks[:5]:                  # warm: page cache, snapshot
                index.search_vectors(vectors[p], k=args.k)

            def search(vector: np.ndarray, name: str) -> None:
                """Times one search (``name``: kind_way) into ``times``, the files it read into ``reads``."""
                as_before = name.endswith("_before")
                module = before if as_before else cache
                if "_first" in name:
                    with module._digests_lock:      # as in a new process
                        module._digests.clear()
                        getattr(module, "_resolved", {}).clear()
                query_copies.cached_file_sha256 = ((lambda path, st=None: module.cached_file_sha256(path))
                                                   if as_before else lookup)       # (its own stat)
                if exact is not None:
                    query.exact_ranking = (lambda snap: False) if as_before else exact
                read.clear()
                counts[:] = [0, 0]
                wall, cpu = timed(lambda: index.search_vectors(
                    vector, k=args.k, collapse_copies=not name.endswith("all_copies")))
                query_copies.cached_file_sha256 = lookup
                if exact is not None:
                    query.exact_ranking = exact
                times[name].append(wall)
                cpu_times[name].append(cpu)
                work[name].append((counts[0], counts[1]))
                if name in reads:
                    reads[name].append(len(read))
            units = [("first", "again"), ("all_copies",)] + [("first_before", "again_before")] * bool(before)
            for rounds, (kind, p) in enumerate(picks):
                for unit in units[rounds % len(units):] + units[:rounds % len(units)]:     # in turn
                    for how in unit:                # a first search, then again (its digests kept)
                        search(vectors[p], f"{kind}_{how}")
            listed = [sum(len(h.copies) for h in index.search_vectors(vectors[p], k=args.k)) for _, p in picks]
        cache.file_sha256 = sha256
        query.rank_segments, SoundIndex._hits = rank_segments, hits_of
        size = recordings[0].stat().st_size
        medians = {name: round(statistics.median(v), 3) for name, v in times.items()}
        cpu_medians = {name: round(statistics.median(v), 3) for name, v in cpu_times.items()}

        pairs = [("first", "all_copies"), ("again", "all_copies"), ("first", "again")]
        pairs += [("first_before", "first"), ("again_before", "again")] * bool(before)

        def ratios(of: dict[str, float]) -> dict[str, float]:
            return {f"{kind}_{a}_over_{b}": round(of[f"{kind}_{a}"] / of[f"{kind}_{b}"], 3)
                    for kind in ("with_copies", "without") for a, b in pairs}
        print(json.dumps({
            "code": str(Path(query.__file__).resolve().parents[1]), "faiss_threads": args.threads or "its own",
            "files": args.files, "padding": args.pad, "before": args.before, "names": args.files + 3 * len(with_copies) * bool(args.every), "file_bytes": size, "k": args.k,
            "queries": args.queries, "median_ms": medians, "ratios": ratios(medians),
            "cpu_median_ms": cpu_medians, "cpu_ratios": ratios(cpu_medians),
            "files_read_per_search": {name: {"median": statistics.median(n), "max": max(n)}
                                      for name, n in reads.items()},
            "copies_listed_per_search_median": statistics.median(listed),
            "per_search_median": {name: {"rankings": statistics.median(r for r, _ in w),
                                         "hits_built": statistics.median(h for _, h in w)}
                                  for name, w in work.items()},
        }, indent=1))


if __name__ == "__main__":
    main()
