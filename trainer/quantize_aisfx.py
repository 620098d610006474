"""Write a model folder's int8 copy of its aisfx CNN, and switch the model to it.

The aisfx CNN is most of soundsift-base's embedding time. Quantised to int8 (onnxruntime static
quantisation: per-channel weights in 7 bits, uint8 activations whose ranges are calibrated on
training clips, QDQ format) it runs ≈ 3.7× faster on 2 CPU cores, and on the by-source validation
split the model scores the same (MODEL_CARD.md, "The aisfx CNN in int8")::

    python -m trainer.quantize_aisfx engine/models/weights/soundsift-base --manifest corpus/train.jsonl

It writes ``aisfx_int8.onnx`` into the folder and sets ``"aisfx_int8": true`` in its config.json,
so the model's fingerprint changes (indexes built with the float CNN are then rebuilt). The
calibration clips are ``--clips`` items of the manifest drawn with ``--seed`` (their first
``--seconds``), so the same manifest gives the same file. Weights use 7 of their 8 bits
(``reduce_range``): x86 CPUs without VNNI multiply uint8 by int8 in pairs summed into 16 bits,
which full-range weights can saturate; with 7 bits every CPU computes the same sums.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np


def calibration_blocks(manifest: str | Path, clips: int, seed: int, seconds: float) -> Iterator[np.ndarray]:
    """The aisfx input blocks (n, 100, 96) of ``clips`` manifest items, one array per clip."""
    import torch

    from engine.towers.aisfx import SAMPLE_RATE, AisfxFrontend, blocks
    from trainer.datasets import load_clip, read_manifest

    items = read_manifest(manifest)
    if not items:
        raise ValueError(f"{manifest}: no items to calibrate on")
    rng = np.random.default_rng(seed)
    frontend = AisfxFrontend()
    for index in sorted(rng.choice(len(items), min(clips, len(items)), replace=False)):
        wave = load_clip(items[index].audio, SAMPLE_RATE, None, None)[: int(seconds * SAMPLE_RATE)]
        with torch.no_grad():
            yield blocks(frontend(torch.from_numpy(np.ascontiguousarray(wave))[None])).numpy().astype(np.float32)


def _without_unused_opsets(graph: bytes) -> bytes:
    """The graph importing only the operator sets its nodes use: the shape-inference step stamps
    every domain onnx knows (ai.onnx.ml 5, training …), which an older onnxruntime refuses."""
    import onnx

    model = onnx.load_from_string(graph)
    used = {node.domain for node in model.graph.node} | {""}
    keep = [o for o in model.opset_import if o.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(keep)
    return model.SerializeToString()


def quantize(folder: str | Path, manifest: str | Path, clips: int = 60, seed: int = 0, seconds: float = 10.0) -> Path:
    """Quantise ``folder``'s aisfx CNN, write it there and turn ``aisfx_int8`` on; returns its path."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from engine.errors import ModelUnavailable
    from engine.models.soundsift_clap import CONFIG_FILE, SoundsiftClap
    from engine.towers.aisfx import INT8_FILE, _onnx_bytes, for_inference

    folder = Path(folder)
    module = SoundsiftClap.from_pretrained(folder)
    if module.aisfx is None:
        raise ModelUnavailable(f"{folder}: the model has no aisfx branch to quantise")
    data = list(calibration_blocks(manifest, clips, seed, seconds))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._blocks = iter(data)

        def get_next(self) -> dict[str, np.ndarray] | None:
            block = next(self._blocks, None)
            return None if block is None else {"blocks": block}

    out = folder / INT8_FILE
    with tempfile.TemporaryDirectory() as tmp:
        float_graph, prepared = Path(tmp) / "float.onnx", Path(tmp) / "prepared.onnx"
        float_graph.write_bytes(_onnx_bytes(for_inference(module.aisfx)))
        quant_pre_process(str(float_graph), str(prepared))
        quantize_static(str(prepared), str(Path(tmp) / INT8_FILE), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
        out.write_bytes(_without_unused_opsets((Path(tmp) / INT8_FILE).read_bytes()))
    config = json.loads((folder / CONFIG_FILE).read_text())
    config["aisfx_int8"] = True
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", help="a soundsift-clap model folder with an aisfx branch")
    p.add_argument("--manifest", required=True, help="training manifest whose clips calibrate the activation ranges")
    p.add_argument("--clips", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seconds", type=float, default=10.0, help="the first seconds of each clip")
    args = p.parse_args(argv)
    path = quantize(args.folder, args.manifest, args.clips, args.seed, args.seconds)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); {Path(args.folder) / 'config.json'}: aisfx_int8 true")


if __name__ == "__main__":
    main()
