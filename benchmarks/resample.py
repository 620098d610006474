"""Resampling speed: soxr (what engine.audio uses) vs torchaudio, to the model's 48 kHz.

Run by hand:  .venv/bin/python benchmarks/resample.py [--seconds 60] [--repeats 5]
torchaudio is not one of soundsift's dependencies: run this in a venv that has it (on this
machine the pair that imports is torch==2.14.1 with torchaudio==2.11.0, a CUDA build).
Prints one JSON object: per source rate, seconds per call and × real time of each library
(the best of ``repeats``), on mono float32 noise, single-threaded torch.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="audio length per call")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--target", type=int, default=48000)
    args = ap.parse_args()

    import soxr
    import torch
    try:
        import torchaudio.functional as AF
    except (ImportError, OSError) as e:
        raise SystemExit(f"torchaudio does not import here ({e}); this comparison needs it: "
                         "pip install torch==2.14.1 torchaudio==2.11.0 in a separate venv") from e

    torch.set_num_threads(1)
    out = {"seconds_of_audio": args.seconds, "target_rate": args.target, "rates": {}}
    for sr in (8000, 16000, 22050, 44100, 96000):
        x = np.random.default_rng(0).standard_normal(int(args.seconds * sr)).astype(np.float32)
        xt = torch.from_numpy(x)
        row = {}
        for name, fn in {
            "soxr_hq": lambda: soxr.resample(x, sr, args.target, quality="HQ"),
            "soxr_vhq": lambda: soxr.resample(x, sr, args.target, quality="VHQ"),
            "torchaudio_sinc": lambda: AF.resample(xt, sr, args.target),
            "torchaudio_kaiser": lambda: AF.resample(xt, sr, args.target, lowpass_filter_width=16,
                                                     rolloff=0.85, resampling_method="sinc_interp_kaiser",
                                                     beta=8.555),
        }.items():
            t = best_of(fn, args.repeats)
            row[name] = {"seconds": round(t, 5), "x_realtime": round(args.seconds / t, 1)}
        out["rates"][str(sr)] = row
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
