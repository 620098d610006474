"""soundsift-base's aisfx CNN as saved vs its inference copies (run by hand).

The aisfx CNN is most of soundsift-base's embedding cost. ``load_model`` swaps it for
:func:`engine.towers.aisfx.fastest_for_inference`: the CNN with batch norm folded into the
convolutions (:func:`~engine.towers.aisfx.for_inference`, channels-last weights in torch), exported
to ONNX and run with onnxruntime. This embeds the same 10 s clips with each, in alternating rounds
so that load on the machine hits all alike, and prints the median throughput of each, the ratio to
the CNN as saved, and how far the vectors move. A model folder with an int8 copy of the CNN
(``aisfx_int8.onnx``, ``trainer/quantize_aisfx.py``) adds it as a fourth:

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
    from engine.towers.aisfx import INT8_FILE, OnnxEmbeddingNet, for_inference

    folder = BUNDLED.get(args.model, Path(args.model))
    module = SoundsiftClap.from_pretrained(folder)
    if module.aisfx is None:
        raise SystemExit(f"{args.model} has no aisfx branch")
    folded = for_inference(module.aisfx)
    variants = {"as saved": module.aisfx.eval(), "folded, torch": folded,
                "folded, onnxruntime": OnnxEmbeddingNet(folded, module.config.onnx_threads)}
    if (folder / INT8_FILE).is_file():
        variants["int8, onnxruntime"] = OnnxEmbeddingNet(graph=(folder / INT8_FILE).read_bytes(),
                                                         num_threads=module.config.onnx_threads)
    model = SoundsiftClapModel(module, name=args.model, fingerprint="")     # one load, every CNN
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
        print(f"{name:20s} {audio / med:6.1f} × real time  ({base / med:.2f} × as saved; median of {args.rounds})")
    for name in list(variants)[1:]:
        diff = np.abs(vectors[name] - vectors["as saved"]).max()
        print(f"largest difference of the vectors, {name} against as saved: {diff:.1e}")


if __name__ == "__main__":
    main()
