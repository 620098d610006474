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

``--before-after`` instead times a revision's engine/duplicates.py (``--rev``, default HEAD;
benchmarks/revision_module.py) against today's in one run: choosing the pairs (the per-file
cap) on the whole index, time and peak of traced memory, and ``find_duplicates`` on the files
under ``--path-prefix`` (a sample: the comparing takes minutes per 10,000 files), ``--rounds``
alternating runs each, with how often each file was decoded; it stops if the two differ in the
pairs, groups or differences found. Before those it times the alignment alone (FFT sizes, head
spectra, best lags) of every capped pair of the sample on audio decoded beforehand, listing the
pairs whose lag differs and stopping unless each is a tie (two lags' |correlation| within
``TIE`` of the product of the heads' norms, where complex64 rounding may pick either):

    .venv/bin/python benchmarks/commands_at_scale.py build /tmp/scale35
    .venv/bin/python benchmarks/duplicates.py /tmp/scale35/index --before-after \
        --path-prefix /tmp/scale35/library/Doors/Vol_01

``--workers-list 0 1 2`` instead times ``find_duplicates(workers=N)`` on the files under
``--path-prefix`` for each N in turn, ``--rounds`` rounds, and prints each N's median against the
first's (workers: processes comparing the pairs; 0: this one), with how many decodes the spans
cost (a file whose pairs fall in two workers' spans is decoded by both); it stops if the groups,
differences or counts differ:

    .venv/bin/python benchmarks/duplicates.py /tmp/scale35/index --workers-list 0 2 \
        --path-prefix /tmp/scale35/library/Doors
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import duplicates as dup  # noqa: E402
from engine.audio import decode  # noqa: E402
from engine.filters import Filters  # noqa: E402
from engine.query import SoundIndex  # noqa: E402

BINS = [0, 0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 2, 3, 5, 10, np.inf]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index")
    ap.add_argument("--min-cosine", type=float, default=0.8)
    ap.add_argument("--copies", type=int, default=60)
    ap.add_argument("--before-after", action="store_true", help="time --rev's module against today's")
    ap.add_argument("--rev", default="HEAD")
    ap.add_argument("--path-prefix", help="--before-after: compare only the files under it")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers-list", type=int, nargs="+", help="time find_duplicates(workers=N) for each N")
    args = ap.parse_args()
    if args.workers_list:
        by_workers(args.index, args.workers_list, args.path_prefix, args.rounds)
        return
    if args.before_after:
        before_after(args.index, args.rev, args.path_prefix, args.rounds)
        return
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


def _capped(module, fv) -> tuple[tuple[np.ndarray, ...], float, float]:
    """``module``'s pairs under the default cap on ``fv``: (i, j, cosine), seconds, peak MB traced."""
    tracemalloc.start()
    t = time.perf_counter()
    if hasattr(module, "closest_candidates"):
        pairs = module.closest_candidates(fv.vectors, fv.durations, dup.PER_FILE)[:3]
    else:
        pairs = module.closest_per_file(*module.candidate_arrays(fv.vectors, fv.durations), dup.PER_FILE)
    seconds = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
    return pairs, seconds, peak


def _find(module, fv) -> tuple[object, float, Counter]:
    """``module.find_duplicates`` on ``fv`` at the defaults: its report, seconds, decodes per file."""
    decodes: Counter = Counter()
    real = module.decode

    def counting(path, rate, *args, **kwargs):
        decodes[path] += 1
        return real(path, rate, *args, **kwargs)
    module.decode = counting
    try:
        t = time.perf_counter()
        report = module.find_duplicates(fv.paths, fv.vectors, fv.durations, fv.sizes)
        return report, time.perf_counter() - t, decodes
    finally:
        module.decode = real


def before_after(index: str, rev: str, path_prefix: str | None, rounds: int) -> None:
    """``rev``'s engine/duplicates.py against today's (see the module doc); ratios before / after."""
    from benchmarks.revision_module import module_at

    before = module_at(rev, "engine/duplicates.py", "duplicates_before")
    with SoundIndex.open(index) as si:
        whole = si.file_vectors()
        sample = si.file_vectors(Filters(path_prefix=path_prefix)) if path_prefix else whole
    print(f"{rev} against today's engine/duplicates.py; {len(whole.paths)} files indexed, "
          f"{len(sample.paths)} compared{f' (under {path_prefix})' if path_prefix else ''}")
    (old_pairs, old_s, old_mb), (new_pairs, new_s, new_mb) = _capped(before, whole), _capped(dup, whole)
    if not all(np.array_equal(a, b) for a, b in zip(old_pairs, new_pairs)):
        raise SystemExit("the capped pairs differ")
    print(f"choosing the pairs (cap {dup.PER_FILE}) on all {len(whole.paths)} files: {len(new_pairs[0])} pairs, "
          f"the same; {old_s:.1f} s → {new_s:.1f} s ({old_s / new_s:.1f} ×), peak traced memory "
          f"{old_mb:.0f} → {new_mb:.0f} MB ({old_mb / new_mb:.1f} ×)")
    alignment(before, sample, rounds)
    times: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(rounds):
        found = {}
        for name, module in (("before", before), ("after", dup)):
            report, seconds, decodes = _find(module, sample)
            times[name].append(seconds)
            found[name] = ([g.to_dict() for g in report.groups], report.candidates, report.confirmed)
            print(f"  {name}: {seconds:.1f} s, {report.candidates} pairs, {report.confirmed} confirmed, "
                  f"{len(report.groups)} groups; {sum(decodes.values())} decodes of {len(decodes)} files "
                  f"(at most {max(decodes.values(), default=0)} of one)", flush=True)
        if found["before"] != found["after"]:
            raise SystemExit("the groups differ")
    mid = {name: statistics.median(ts) for name, ts in times.items()}
    print(f"find_duplicates, median of {rounds}: {mid['before']:.1f} s → {mid['after']:.1f} s "
          f"({mid['before'] / mid['after']:.2f} ×), the same groups and differences")


def _lags(module, fv, pairs: tuple[np.ndarray, np.ndarray], heard: dict[int, np.ndarray]
          ) -> tuple[np.ndarray, float, int, int]:
    """``module``'s alignment of every pair as ``find_duplicates`` does it (head spectra cached
    per file and FFT size, complex64), on audio decoded beforehand: the lags, seconds, spectra
    looked up and spectra made."""
    i, j = pairs
    recordings = module._Recordings(fv.paths, np.bincount(np.r_[i, j], minlength=len(fv.paths)))
    lags = np.zeros(len(i), np.int64)
    made, real = [0], module._head_spectrum

    def counting(x: np.ndarray, n: int) -> np.ndarray:
        made[0] += 1
        return real(x, n)
    module._head_spectrum = counting
    try:
        t = time.perf_counter()
        for k, (a, b) in enumerate(zip(i.tolist(), j.tolist())):
            x, y = heard[a], heard[b]
            n = module._fft_size(len(x), len(y))
            lags[k] = module._lag_of(recordings.spectrum(a, x, n), recordings.spectrum(b, y, n), n, len(x), len(y))
        seconds = time.perf_counter() - t
    finally:
        module._head_spectrum = real
    return lags, seconds, 2 * len(i), made[0]


def alignment(before, fv, rounds: int) -> None:
    """The alignment alone (FFT sizes, head spectra, lags) of ``before`` against today's on every
    capped pair of ``fv``, ``rounds`` alternating runs; stops if a pair's lag differs."""
    i, j, _, _ = dup.closest_candidates(fv.vectors, fv.durations, dup.PER_FILE)
    heard = {k: decode(fv.paths[k], dup.RATE) for k in np.unique(np.r_[i, j]).tolist()}
    times: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(rounds):
        found = {}
        for name, module in (("before", before), ("after", dup)):
            lags, seconds, looked, made = _lags(module, fv, (i, j), heard)
            times[name].append(seconds)
            found[name] = lags
            print(f"  alignment {name}: {seconds:.2f} s for {len(i)} pairs; head spectra: {made} made for "
                  f"{looked} look-ups ({1 - made / max(looked, 1):.1%} reused)", flush=True)
        other = np.flatnonzero(found["before"] != found["after"])
        ties = [_tie(heard[int(i[k])], heard[int(j[k])], int(found["before"][k]), int(found["after"][k]))
                for k in other]
        for k, tie in zip(other, ties):
            print(f"    lag {found['before'][k]} → {found['after'][k]}: |correlation| {tie[0]:.3e} → {tie[1]:.3e} "
                  f"of the product of the heads' norms (float64), {fv.paths[i[k]]}, {fv.paths[j[k]]}")
        if any(abs(high - low) > TIE for high, low in ties):
            raise SystemExit(f"the lags differ on {len(other)} pairs, not all of them ties")
    mid = {name: statistics.median(ts) for name, ts in times.items()}
    same = f"the same lag for {len(i) - len(other)} of {len(i)} pairs" + (
        f"; {len(other)} differ, each a tie within {TIE:g}" if len(other) else "")
    print(f"alignment, median of {rounds}: {mid['before']:.2f} s → {mid['after']:.2f} s "
          f"({mid['before'] / mid['after']:.2f} ×), {same}")


#: two lags whose |correlation| differ by at most this share of the product of the heads' norms
#: tie: complex64 spectra's rounding may pick either (the cached spectra are complex64)
TIE = 1e-4


def _tie(x: np.ndarray, y: np.ndarray, old: int, new: int) -> tuple[float, float]:
    """|correlation| of the heads of ``x`` and ``y`` at lags ``old`` and ``new`` in float64, as a
    share of the product of their norms."""
    a, b = x[:dup._head(len(x))].astype(np.float64), y[:dup._head(len(y))].astype(np.float64)
    scale = max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-300)

    def at(lag: int) -> float:                      # Σ a[t + lag] b[t]
        u, v = a[max(lag, 0):], b[max(-lag, 0):]
        m = min(len(u), len(v))
        return abs(float(np.dot(u[:m], v[:m]))) / scale
    return at(old), at(new)


def by_workers(index: str, counts: list[int], path_prefix: str | None, rounds: int) -> None:
    """``find_duplicates(workers=N)`` for each of ``counts`` (see the module doc); ratios to the first."""
    with SoundIndex.open(index) as si:
        fv = si.file_vectors(Filters(path_prefix=path_prefix) if path_prefix else None)
    i, j, _, _ = dup.closest_candidates(fv.vectors, fv.durations, dup.PER_FILE)
    d = np.asarray(fv.durations, np.float64)
    files = len(np.unique(np.r_[i, j]))
    print(f"{len(fv.paths)} files{f' under {path_prefix}' if path_prefix else ''}, {len(i)} pairs of {files} files")
    for n in counts:
        if n:
            bounds = dup._spans(dup.PAIR_OVERHEAD_SECONDS + d[i] + d[j], n)
            decodes = sum(len(np.unique(np.r_[i[a:b], j[a:b]])) for a, b in zip(bounds[:-1], bounds[1:]))
            print(f"  {n} workers: {decodes} decodes ({decodes / max(files, 1):.2f} per file)")
    times: dict[int, list[float]] = {n: [] for n in counts}
    first = None
    for _ in range(rounds):
        for n in counts:
            t = time.perf_counter()
            report = dup.find_duplicates(fv.paths, fv.vectors, fv.durations, fv.sizes, workers=n)
            times[n].append(time.perf_counter() - t)
            found = ([g.to_dict() for g in report.groups], report.candidates, report.compared, report.confirmed,
                     [(e.path, e.reason) for e in report.unreadable])
            first = found if first is None else first
            if found != first:
                raise SystemExit(f"workers={n} found other groups than workers={counts[0]}")
            print(f"  workers={n}: {times[n][-1]:.1f} s, {report.compared} pairs, {report.confirmed} confirmed, "
                  f"{len(report.groups)} groups", flush=True)
    base = statistics.median(times[counts[0]])
    for n in counts:
        mid = statistics.median(times[n])
        print(f"workers={n}: median {mid:.1f} s of {rounds}, {base / mid:.2f} × workers={counts[0]}'s speed")
    print(f"the same groups, differences and counts for every worker count ({os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f} at the end)")


if __name__ == "__main__":
    main()
