"""What one hit per recording costs a search (engine.query_copies): collapsed (the default) against
``collapse_copies=False`` (``--all-copies``), in one process, interleaved.

Run by hand (not a test):
    .venv/bin/python benchmarks/search_copies.py [--files 200] [--seconds 10] [--queries 50] [--k 10]
    .venv/bin/python benchmarks/search_copies.py --every 0      # a library without copies

Writes ``--files`` recordings (noise and chirps, ``--seconds`` long, 48 kHz 16-bit, so all of one
size), gives every fourth one (``--every``; 0: none) three more names (a hard link, and two byte-identical copies in other
folders), indexes them with tests.index_fakes.FakeModel (8 dims: FAISS costs next to nothing, so the
ratio is the query layer's worst case; a real model's text embedding adds its milliseconds to both)
and times ``SoundIndex.search_vectors`` by the stored vector of each of ``--queries`` files, half with
copies (their copies are read, once per search: the cache lasts a search) and half without, each way
in turn. Prints the medians (ms), the ratio collapsed / all copies of each kind, how many files a
collapsed search read (whole, for their SHA-256) and how many copies it listed, as one JSON object.
FakeModel tells the chirps apart poorly, so a top 10 holds several recordings with copies: a
search that reads much.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

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


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--every", type=int, default=4, help="every n-th recording gets copies (0: none)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import engine.query_copies as query_copies
    from engine.query import SoundIndex
    from indexer import build_index
    from tests.index_fakes import FakeModel

    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "lib"
        recordings = make_library(lib, args.files, args.seconds, args.every)
        build_index([str(lib)], Path(tmp) / "idx", FakeModel(), workers=0, progress=False)
        read = []
        original = query_copies.SameRecording

        class Counted(original):                    # how many files a collapsed search hashes
            def __init__(self) -> None:
                super().__init__()
                read.append(self)
        query_copies.SameRecording = Counted
        times: dict[str, list[float]] = {f"{kind}_{how}": [] for kind in ("with_copies", "without")
                                         for how in ("collapsed", "all_copies")}
        with SoundIndex.open(Path(tmp) / "idx", model=FakeModel()) as index:
            with_copies = [p for i, p in enumerate(recordings) if i % (args.every or 4) == 0]
            without = [p for i, p in enumerate(recordings) if i % (args.every or 4) != 0]
            picks = [("with_copies", with_copies[i % len(with_copies)]) for i in range(args.queries // 2)]
            picks += [("without", without[i % len(without)]) for i in range(args.queries - len(picks))]
            vectors = {p: index.file_vector(str(p)) for _, p in picks}
            for _, p in picks[:5]:                  # warm: page cache, snapshot
                index.search_vectors(vectors[p], k=args.k)
            rounds = 0
            for kind, p in picks:
                order = ("collapsed", "all_copies") if rounds % 2 == 0 else ("all_copies", "collapsed")
                for how in order:
                    times[f"{kind}_{how}"].append(timed(lambda: index.search_vectors(
                        vectors[p], k=args.k, collapse_copies=how == "collapsed")))
                rounds += 1
            listed = [sum(len(h.copies) for h in index.search_vectors(vectors[p], k=args.k)) for _, p in picks]
        size = recordings[0].stat().st_size
        medians = {name: round(statistics.median(v), 3) for name, v in times.items()}
        collapsed_reads = [r.read for r in read[5:5 + len(picks)]]
        print(json.dumps({
            "files": args.files, "names": args.files + 3 * len(with_copies) * bool(args.every), "file_bytes": size, "k": args.k,
            "queries": args.queries, "median_ms": medians,
            "ratio_with_copies": round(medians["with_copies_collapsed"] / medians["with_copies_all_copies"], 3),
            "ratio_without": round(medians["without_collapsed"] / medians["without_all_copies"], 3),
            "files_read_per_collapsed_search": {"median": statistics.median(collapsed_reads),
                                                "max": max(collapsed_reads)},
            "copies_listed_per_search_median": statistics.median(listed),
        }, indent=1))


if __name__ == "__main__":
    main()
