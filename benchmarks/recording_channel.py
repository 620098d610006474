"""How much models lose on quiet or narrowband recordings (run by hand).

Scores soundsift-clap models on the by-source validation split of a cached-training config three
times: as recorded; with every validation segment attenuated by a random 0 to ``--max-db`` dB
(seeded, the same draw for every model); and narrowband (through 8 kHz sampling and back, as a
telephone or an old recorder would give). Features are computed from the audio by each model's
own towers, so a model's input-level setting (``yamnet_min_peak_db``) is what is measured.
Prints zero-shot top-1, text→audio R@1/R@5 (all labels and the everyday subset) per model.

    .venv/bin/python benchmarks/recording_channel.py trainer/configs/soundsift_base.json \\
        runs/soundsift-base/model/held-out OTHER_MODEL_FOLDER --max-db 40
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from engine.zeroshot import DEFAULT_TEMPLATE
from trainer.cached_train import CachedTrainConfig, Split, TextBank, evaluate, note_if_trained_on_validation
from trainer.datasets import read_manifest
from trainer.precompute import FeatureCache, eval_segments, extract


def segment_features(model, segments: list[np.ndarray], gains: np.ndarray) -> dict[str, np.ndarray]:
    """The model's frozen features of each segment scaled by its gain (one row per segment)."""
    rows: dict[str, list[np.ndarray]] = {}
    for wave, gain in zip(segments, gains):
        for key, value in extract(model, [wave * np.float32(gain)]).items():
            rows.setdefault(key, []).append(value)
    return {key: np.concatenate(values) for key, values in rows.items()}


def narrowband(wave: np.ndarray, sample_rate: int, narrow_rate: int = 8000) -> np.ndarray:
    """``wave`` through ``narrow_rate`` sampling and back (nothing above narrow_rate / 2 survives)."""
    import soxr
    down = soxr.resample(wave, sample_rate, narrow_rate)
    return soxr.resample(down, narrow_rate, sample_rate)[:len(wave)].astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    from engine.models.soundsift_clap import SoundsiftClap

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="cached-features training config (its val_manifest and cache_dir)")
    p.add_argument("models", nargs="+", help="soundsift-clap model folders")
    p.add_argument("--max-db", type=float, default=40.0, help="largest attenuation (dB)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    cfg = CachedTrainConfig.from_file(args.config)
    items = read_manifest(cfg.val_manifest)
    first = SoundsiftClap.from_pretrained(args.models[0]).eval()
    per_item = [eval_segments(it, first.sample_rate, first.config.window_seconds) for it in items]
    segments = [w for segs in per_item for w in segs]
    item_of = np.concatenate([np.full(len(segs), i, np.int64) for i, segs in enumerate(per_item)])
    view_of = np.concatenate([np.arange(len(segs), dtype=np.int64) for segs in per_item])
    rng = np.random.default_rng(args.seed)
    attenuated = 10 ** (-rng.uniform(0, args.max_db, len(segments)) / 20)

    labels = sorted({it.tags[0] if it.tags else it.captions[0] for it in items})
    bank = TextBank(first.text, Path(cfg.cache_dir) / "text_minilm.npz")
    bank.add(labels + [DEFAULT_TEMPLATE.format(label=x) for x in labels])
    print(f"{len(items)} validation clips, {len(segments)} segments, attenuation 0–{args.max_db:g} dB")
    print("model | condition | zero-shot top-1 | T2A R@1 | T2A R@5 | everyday: zero-shot / T2A R@1 / R@5")
    narrow = [narrowband(w, first.sample_rate) for w in segments]
    conditions = (("as recorded", segments, np.ones(len(segments))),
                  (f"0–{args.max_db:g} dB down", segments, attenuated),
                  ("narrowband (8 kHz)", narrow, np.ones(len(segments))))
    for folder in args.models:
        model = SoundsiftClap.from_pretrained(folder).eval()
        note_if_trained_on_validation(model, folder)
        if model.sample_rate != first.sample_rate or model.config.window_seconds != first.config.window_seconds:
            raise SystemExit(f"{folder}: sample rate or window differs from {args.models[0]}; compare like with like")
        for name, waves, gains in conditions:
            cache = FeatureCache.empty(model.aisfx is not None)
            cache.extend({**segment_features(model, waves, gains), "item": item_of, "view": view_of})
            r = evaluate(model, Split.of(items, cache), bank, None, cfg.everyday_exclude)
            print(f"{Path(folder).name} | {name} | {r['zs_top1']:.3f} | {r['t2a_R@1']:.3f} | {r['t2a_R@5']:.3f} | "
                  f"{r['zs_top1_everyday']:.3f} / {r['t2a_R@1_everyday']:.3f} / {r['t2a_R@5_everyday']:.3f}",
                  flush=True)


if __name__ == "__main__":
    main()
