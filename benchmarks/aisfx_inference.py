"""soundsift-base's aisfx CNN as saved vs its inference copy (run by hand).

The aisfx CNN is most of soundsift-base's embedding cost. ``load_model`` swaps it for
:func:`engine.towers.aisfx.for_inference` (batch norm folded into the convolutions, channels-last
weights). This embeds the same 10 s clips with both, in alternating rounds so that load on the
machine hits both alike, and prints the median throughput of each, their ratio, and how far the
vectors move:

    .venv/bin/python benchmarks/aisfx_inference.py [--model soundsift-base] [--clips 8] [--rounds 7]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="soundsift-base")
    ap.add_argument("--clips", type=int, default=8, help="10 s clips per batch")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)

    from pathlib import Path

    from engine.models.factory import BUNDLED
    from engine.models.soundsift_clap import SoundsiftClap, SoundsiftClapModel
    from engine.towers.aisfx import for_inference

    module = SoundsiftClap.from_pretrained(BUNDLED.get(args.model, Path(args.model)))
    if module.aisfx is None:
        raise SystemExit(f"{args.model} has no aisfx branch")
    variants = {"as saved": module.aisfx.eval(), "for_inference": for_inference(module.aisfx)}
    model = SoundsiftClapModel(module, name=args.model, fingerprint="")     # one load, both CNNs
    rng = np.random.default_rng(0)
    sr = model.sample_rate
    clips = [(0.1 * rng.standard_normal(10 * sr)).astype(np.float32) for _ in range(args.clips)]
    vectors, seconds = {}, {k: [] for k in variants}
    for name, net in variants.items():      # warm-up, and the vectors to compare
        model.module.aisfx = net
        vectors[name] = model.embed_audio(clips)
    for _ in range(args.rounds):
        for name, net in variants.items():
            model.module.aisfx = net
            t0 = time.perf_counter()
            model.embed_audio(clips)
            seconds[name].append(time.perf_counter() - t0)
    audio = 10.0 * args.clips
    base = statistics.median(seconds["as saved"])
    for name, s in seconds.items():
        med = statistics.median(s)
        print(f"{name:14s} {audio / med:6.1f} × real time  ({base / med:.2f} × as saved; median of {args.rounds})")
    diff = np.abs(vectors["for_inference"] - vectors["as saved"]).max()
    print(f"largest difference between the two models' vectors: {diff:.1e}")


if __name__ == "__main__":
    main()
