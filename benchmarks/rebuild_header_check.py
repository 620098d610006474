"""What the rebuild's up-front header check costs (indexer.rebuild.refuse_unreadable_headers: every
file the index holds is opened and its audio header read before anything is embedded), against the
embedding of the same rebuild, measured in one run.

Run by hand (not a test):
    .venv/bin/python benchmarks/rebuild_header_check.py [--files 300] [--model M] [--real-size]

Writes ``--files`` short recordings (1–6 s at 48 kHz, as WAV, FLAC, Ogg Vorbis, MP3 and AIFF in
turn), indexes them with the fast stand-in FakeModel (tests/index_fakes.py), then rebuilds the index
with the measured model: a tiny random CLAP (tests/tiny_models.py) unless ``--model`` names one for
load_model, or ``--real-size`` asks for a real-size random CLAP (benchmarks/indexing.py make_model;
minutes on a small CPU). The header check is timed inside that rebuild (the function it calls is
wrapped), the embedding is the run's own ``embed`` timing. The files were just written, so the
header reads hit the page cache: a cold drive adds a seek per file. Prints one JSON object with
both times and their ratio.

Then the check as it is now (its files read on threads, indexer.rebuild.HEADER_THREADS) is timed
against the check of ``--before`` (a git revision, default HEAD: benchmarks/revision_module.py
loads its indexer/rebuild.py) on the same files, in turns, best of ``--repeats``: warm (in the
page cache) and cold (each file dropped from the page cache first with posix_fadvise
DONTNEED, so each header read goes to the disk; the workdir must be on a disk, not tmpfs).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SR = 48000
FORMATS = [("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III"), ("aiff", "PCM_16")]


def write_library(folder: Path, n: int, rng: np.random.Generator) -> list[Path]:
    """``n`` noisy chirps of 1–6 s, in the formats of FORMATS in turn."""
    paths = []
    for i in range(n):
        ext, subtype = FORMATS[i % len(FORMATS)]
        seconds = float(rng.uniform(1.0, 6.0))
        t = np.arange(int(seconds * SR)) / SR
        x = 0.3 * np.sin(2 * np.pi * (200 + 400 * i % 3000) * t * (1 + t)) + 0.05 * rng.standard_normal(t.size)
        path = folder / f"sub{i % 7}" / f"take_{i:04d}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, x.astype(np.float32), SR, subtype=subtype)
        paths.append(path)
    return paths


def evict(paths: list[str]) -> None:
    """Drop ``paths`` from the page cache (their next read goes to the disk)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fdatasync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def before_and_after(before: str, paths: list[str], repeats: int) -> dict:
    """Per-file milliseconds of the header check of ``before`` and of now on ``paths``, warm and
    cold, best of ``repeats`` turns each (the two alternate), and their ratio."""
    from benchmarks.revision_module import module_at
    from indexer import rebuild
    old = module_at(before, "indexer/rebuild.py", "rebuild_before")
    checks = {"before": old._unreadable_headers, "after": rebuild._unreadable_headers}
    out = {}
    for temperature in ("warm", "cold"):
        best = {name: float("inf") for name in checks}
        found = {}
        for _ in range(repeats):
            for name, check in checks.items():
                if temperature == "cold":
                    evict(paths)
                t = time.perf_counter()
                found[name] = check(paths)
                best[name] = min(best[name], time.perf_counter() - t)
        assert list(found["before"].items()) == list(found["after"].items()), "the two checks disagree"
        out[temperature] = {f"{name}_ms_per_file": round(1000 * sec / len(paths), 4) for name, sec in best.items()}
        out[temperature]["before_over_after"] = round(best["before"] / best["after"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=300)
    ap.add_argument("--model", help="a model for load_model (default: a tiny random CLAP)")
    ap.add_argument("--real-size", action="store_true", help="a real-size random CLAP")
    ap.add_argument("--workers", type=int, default=1, help="decoder processes of the rebuild")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--before", default="HEAD", help="the revision whose header check is timed against today's")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-rebuild", action="store_true",
                    help="only the before/after of the check (no model, no rebuild)")
    ap.add_argument("--threads", type=int, default=None, help="the check's threads now (default HEADER_THREADS)")
    args = ap.parse_args()

    from engine.models import load_model
    from indexer import build_index, rebuild
    from tests.index_fakes import FakeModel

    if args.threads is not None:
        rebuild.HEADER_THREADS = args.threads
    report: dict = {"files": args.files, "header_threads": rebuild.HEADER_THREADS}
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        paths = sorted(str(p) for p in write_library(work / "lib", args.files, np.random.default_rng(0)))
        report[f"check_{args.before}_vs_now"] = before_and_after(args.before, paths, args.repeats)
        if not args.skip_rebuild:
            report.update(timed_rebuild(args, work, load_model, build_index, rebuild, FakeModel))
    print(json.dumps(report, indent=2))


def timed_rebuild(args: argparse.Namespace, work: Path, load_model, build_index, rebuild, FakeModel) -> dict:
    """The header check against the embedding of one rebuild of the library in ``work``."""
    if args.model:
        ref = args.model
    elif args.real_size:
        from benchmarks.indexing import make_model
        ref = str(make_model(work / "clap"))
    else:
        from tests.tiny_models import make_tiny_clap
        ref = str(make_tiny_clap(work / "tiny-clap"))
    model = load_model(ref)
    idx = work / "idx"
    build_index([work / "lib"], idx, FakeModel(), workers=args.workers, progress=False)

    checked: list[tuple[int, float]] = []
    real = rebuild._unreadable_headers

    def timed(paths):
        t = time.perf_counter()
        out = real(paths)
        checked.append((len(paths), time.perf_counter() - t))
        return out
    rebuild._unreadable_headers = timed
    try:
        s = build_index([work / "lib"], idx, model, workers=args.workers, progress=False, rebuild=True)
    finally:
        rebuild._unreadable_headers = real

    (n_checked, check_s), = checked
    embed_s = s.timings["embed"]
    return {
        "headers_checked": n_checked, "model": args.model or (
            "real-size random CLAP" if args.real_size else "tiny random CLAP"),
        "header_check_s": round(check_s, 4), "per_file_ms": round(1000 * check_s / max(1, n_checked), 3),
        "embed_s": round(embed_s, 3), "rebuild_s": round(s.seconds, 3), "segments": s.n_segments,
        "header_check_over_embed": round(check_s / embed_s, 5) if embed_s else None,
        "header_check_over_rebuild": round(check_s / s.seconds, 5) if s.seconds else None,
    }


if __name__ == "__main__":
    main()
