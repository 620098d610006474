"""How `soundsift duplicates` separates copies from other takes, on an index you have (run by hand).

Takes every pair of files the stored vectors propose at ``--min-cosine`` (engine.duplicates
.candidate_pairs), measures each pair's level difference on the audio (difference_db), and prints
the histogram of those differences, the pairs between 0.3 and 2 dB (the zone a threshold has to
cut), how many pairs under 1 dB a higher cosine (0.9, the default) would not have proposed, how
many of them the per-file cap (each file meets its PER_FILE closest) would leave out, and a check
on known copies: ``--copies`` files of the index shifted by a random 1–4,000 samples and
made 6 dB quieter, each compared with itself (all should be ≈ 0 dB). Then times the whole
command's work (find_duplicates) at the default cosine.

    .venv/bin/soundsift index corpus/audio --index /tmp/corpus_idx --model soundsift-fast
    .venv/bin/python benchmarks/duplicates.py /tmp/corpus_idx --min-cosine 0.8
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from engine import duplicates as dup
from engine.audio import decode
from engine.query import SoundIndex

BINS = [0, 0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 2, 3, 5, 10, np.inf]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index")
    ap.add_argument("--min-cosine", type=float, default=0.8)
    ap.add_argument("--copies", type=int, default=60)
    args = ap.parse_args()
    with SoundIndex.open(args.index) as index:
        fv = index.file_vectors()
    pairs = dup.candidate_pairs(fv.vectors, fv.durations, args.min_cosine)
    heard: dict[int, np.ndarray] = {}

    def audio(i: int) -> np.ndarray:
        if i not in heard:
            heard[i] = decode(fv.paths[i], dup.RATE)
        return heard[i]

    t0 = time.perf_counter()
    diffs = np.array([dup.difference_db(audio(i), audio(j)) for i, j, _ in pairs])
    print(f"{len(fv.paths)} files, {len(pairs)} pairs at cosine ≥ {args.min_cosine}, "
          f"compared in {time.perf_counter() - t0:.1f} s")
    counts, _ = np.histogram(diffs, bins=BINS)
    for n, lo, hi in zip(counts, BINS, BINS[1:]):
        print(f"  {lo:4.1f}–{hi:4.1f} dB: {n}")
    for (i, j, cos), d in zip(pairs, diffs):
        if 0.3 < d < 2.0:
            print(f"  {d:.2f} dB  cosine {cos:.3f}  {fv.paths[i]}  {fv.paths[j]}")
    below = [(cos, d) for (_i, _j, cos), d in zip(pairs, diffs) if d <= dup.MAX_DIFFERENCE_DB]
    print(f"pairs ≤ {dup.MAX_DIFFERENCE_DB} dB: {len(below)}, of which cosine < {dup.MIN_COSINE}: "
          f"{sum(cos < dup.MIN_COSINE for cos, _ in below)}")
    if pairs:
        i, j, c = (np.array(col) for col in zip(*pairs))
        ki, kj, _ = dup.closest_per_file(i, j, c.astype(np.float32), dup.PER_FILE)
        kept = set(zip(ki.tolist(), kj.tolist()))
        missed = sum((a, b) not in kept for (a, b, _), d in zip(pairs, diffs) if d <= dup.MAX_DIFFERENCE_DB)
        print(f"with each file meeting its {dup.PER_FILE} closest: {len(kept)} of {len(pairs)} pairs compared, "
              f"{missed} of the pairs ≤ {dup.MAX_DIFFERENCE_DB} dB left out")
    rng = np.random.default_rng(0)
    same = []
    for i in rng.choice(len(fv.paths), min(args.copies, len(fv.paths)), replace=False):
        x = audio(int(i))
        same.append(dup.difference_db(x, np.concatenate([np.zeros(int(rng.integers(1, 4000)), np.float32), 0.5 * x])))
    print(f"{len(same)} shifted, quieter copies: median {np.median(same):.3f} dB, max {max(same):.3f} dB")
    t0 = time.perf_counter()
    report = dup.find_duplicates(fv.paths, fv.vectors, fv.durations, fv.sizes)
    print(f"find_duplicates at the defaults: {report.candidates} pairs, {report.confirmed} confirmed, "
          f"{len(report.groups)} groups ({sum(g.identical for g in report.groups)} byte-identical), "
          f"{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
