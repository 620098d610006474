"""How many head spectra `duplicates` makes at a given SPECTRA_BYTES, simulated on an index
without decoding anything (run by hand): the pairs are the real ones (closest_candidates at the
defaults), each file's length comes from its indexed duration, and the cache is replayed as
engine.duplicates._Recordings keeps it (least recently used first, a file let go after its last
pair). Pairs skipped because their files are already in one group are counted too, so the
figures are an upper bound. Prints per budget the spectra made, the most held, and about how long
making them takes (one FFT per size timed here, times its count).

    .venv/bin/python benchmarks/spectra_budget.py /tmp/scale35/index 256 512 768 100000
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.duplicates import MIN_COSINE, PER_FILE, RATE, _fft_size, closest_candidates  # noqa: E402
from engine.query import SoundIndex  # noqa: E402


def replay(i: np.ndarray, j: np.ndarray, lengths: np.ndarray, limit: int) -> tuple[dict[int, int], int]:
    """Spectra made per FFT size, and the most bytes held, with a budget of ``limit`` bytes."""
    left = np.bincount(np.concatenate([i, j]), minlength=len(lengths))
    kept: OrderedDict[tuple[int, int], int] = OrderedDict()
    sizes: dict[int, set[int]] = {}
    made: dict[int, int] = {}
    held = peak = 0
    for a, b in zip(i.tolist(), j.tolist()):
        n = _fft_size(int(lengths[a]), int(lengths[b]))
        for k in (a, b):
            sizes.setdefault(k, set()).add(n)
            if (k, n) in kept:
                kept.move_to_end((k, n))
                continue
            made[n] = made.get(n, 0) + 1
            kept[(k, n)] = (n // 2 + 1) * 8                  # complex64
            held += kept[(k, n)]
            while held > limit and len(kept) > 4:
                held -= kept.popitem(last=False)[1]
            peak = max(peak, held)
        for k in (a, b):
            left[k] -= 1
            if left[k] <= 0:
                for m in sizes.pop(k, ()):
                    held -= kept.pop((k, m), 0)
    return made, peak


def fft_seconds(made: dict[int, int]) -> float:
    total = 0.0
    for n, count in made.items():
        z = np.random.default_rng(0).standard_normal(n // 2)
        t = time.perf_counter()
        for _ in range(5):
            np.fft.rfft(z, n).astype(np.complex64)
        total += count * (time.perf_counter() - t) / 5
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index", type=Path)
    ap.add_argument("budgets_mb", type=int, nargs="+")
    args = ap.parse_args()
    with SoundIndex.open(args.index) as si:
        fv = si.file_vectors()
    i, j, _c, _every = closest_candidates(fv.vectors, fv.durations, PER_FILE, MIN_COSINE)
    lengths = np.round(np.asarray(fv.durations) * RATE).astype(np.int64)
    print(f"{len(fv.paths)} files, {len(i)} pairs")
    for mb in args.budgets_mb:
        made, peak = replay(i, j, lengths, mb * 2 ** 20)
        print(f"budget {mb} MB: {sum(made.values())} spectra made, at most {peak / 2 ** 20:.0f} MB held, "
              f"making them about {fft_seconds(made):.0f} s")


if __name__ == "__main__":
    main()
