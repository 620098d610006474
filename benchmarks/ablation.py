"""Ablation of soundsift-base's audio branches at the same training budget (run by hand).

Every variant trains the same steps on the same cached views (clean + channel-augmented, see
trainer.precompute) and is judged on the by-source validation split, several seeds each, beside
the training-free tag–text baseline: yamnet-class (posteriors → class_proj only), yamnet (+ the 1024-d
YAMNet embedding), aisfx (frozen aisfx EmbeddingNet only, projection from a random start), both.
aisfx is kept frozen here (its features are cached); fine-tuning it costs ~50× more CPU.
Variants train in the config's shared ``space`` ("minilm" or "audioset"; ``--grid space=…`` compares
them); in "audioset" space the untrained start is reported too.

    .venv/bin/python benchmarks/ablation.py trainer/configs/soundsift_base_ablation.json \\
        --out runs/ablation/ablation.json

``--fusion-model FOLDER`` instead compares fused and unfused embeddings of the same weights on the
validation clips longer than the window (unfused: mean of the index's 10 s segments; fused:
global view + front/middle/back crops, attention at its mean initialisation).

``--grid lr=1e-4,3e-4 decay_to_init=0,1`` repeats every variant for each combination (the
hyperparameter sweep behind the chosen config; all combinations are judged on the same split).
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import logging
import statistics
import time
from pathlib import Path

from engine.zeroshot import DEFAULT_TEMPLATE
from trainer.cached_train import (VARIANTS, CachedTrainConfig, evaluate, note_if_trained_on_validation, prepare,
                                  score, tag_text_baseline, train_run)

BASE_KEYS = ("zs_top1", "zs_top5", "t2a_R@1", "t2a_R@5", "a2t_R@1", "zs_top1_seen", "zs_top1_unseen")
#: the table's columns: the figures over all validation labels, then over the everyday ones
KEYS = BASE_KEYS + tuple(f"{k}_everyday" for k in ("zs_top1", "t2a_R@1", "t2a_R@5"))


def summarise(finals: list[dict[str, float]]) -> dict[str, str]:
    out = {}
    for k in (k for k in KEYS if k in finals[0]):
        vals = [f[k] for f in finals]
        out[k] = f"{statistics.mean(vals):.3f}" + (f" ± {statistics.stdev(vals):.3f}" if len(vals) > 1 else "")
    return out


def curve(histories: list[list[dict[str, float]]]) -> list[tuple[int, float]]:
    """(step, mean over seeds of :func:`score`) at every validation point."""
    return [(h0["step"], statistics.mean(score(h[i]) for h in histories)) for i, h0 in enumerate(histories[0])]


def fusion_check(folder: str, val_manifest: str) -> dict[str, dict[str, float]]:
    """Zero-shot top-1/top-5 over all validation labels, for the long clips only, fused vs unfused."""
    import numpy as np
    import torch

    from engine.models.soundsift_clap import CONFIG_FILE, SoundsiftClap, SoundsiftClapConfig
    from trainer.datasets import load_clip, read_manifest
    from trainer.evaluation.metrics import zeroshot_from_logits
    from trainer.precompute import eval_segments

    torch.set_num_threads(1)
    unfused = SoundsiftClap.from_pretrained(folder).eval()
    note_if_trained_on_validation(unfused, folder)
    config = SoundsiftClapConfig.from_file(Path(folder) / CONFIG_FILE)
    config.fusion = True
    fused = SoundsiftClap(config)
    missing, _ = fused.load_state_dict(unfused.state_dict(), strict=False)
    assert all(k.startswith("fusion.") for k in missing), missing
    fused.eval()
    items = read_manifest(val_manifest)
    labels = sorted({it.tags[0] for it in items})
    window, rate = config.window_seconds, unfused.sample_rate
    long_items = [it for it in items if len(load_clip(it.audio, rate, None, None)) > window * rate]
    with torch.no_grad():
        prompts = unfused.encode_text([DEFAULT_TEMPLATE.format(label=x) for x in labels]).numpy()
        vec_u, vec_f = [], []
        for it in long_items:
            seg = unfused.encode_audio(eval_segments(it, rate, window)).mean(0)
            vec_u.append((seg / seg.norm()).numpy())
            vec_f.append(fused.encode_audio([load_clip(it.audio, rate, None, None)])[0].numpy())
    targets = [labels.index(it.tags[0]) for it in long_items]
    out = {}
    for name, vecs in (("unfused (mean of segments)", vec_u), ("fused", vec_f)):
        zs = zeroshot_from_logits(np.stack(vecs) @ prompts.T, targets, labels)
        out[name] = {"top1": zs["top1"], "top5": zs["top5"], "n": zs["n"]}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config")
    p.add_argument("--variants", nargs="+", default=[v for v in VARIANTS if v != "baseline"])
    p.add_argument("--grid", nargs="*", default=[], help="key=v1,v2 … (numbers or true/false)")
    p.add_argument("--out", default="runs/ablation/ablation.json")
    p.add_argument("--fusion-model", default=None, help="compare fused vs unfused for this model folder")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    base_cfg = CachedTrainConfig.from_file(args.config)
    if args.fusion_model:
        print(json.dumps(fusion_check(args.fusion_model, base_cfg.val_manifest), indent=2))
        return
    grid = {k: [json.loads(v) for v in vs.split(",")] for k, vs in (g.split("=", 1) for g in args.grid)}
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())] or [{}]
    results: dict[str, dict] = {}
    names = []
    for variant in args.variants:
        for combo in combos:
            cfg = dataclasses.replace(base_cfg, variant=variant, **combo)
            name = " ".join([variant] + [f"{k}={v}" for k, v in combo.items()])
            train, val, module, bank, init = prepare(cfg)
            seen = set(train.labels)
            if "baseline" not in results:
                results["baseline"] = {"final": tag_text_baseline(val, bank, seen, cfg.everyday_exclude)}
            start = f"untrained {cfg.space} start"
            if cfg.space != "minilm" and VARIANTS[variant]["class"] and start not in results:
                results[start] = {"final": evaluate(module, val, bank, seen, cfg.everyday_exclude)}
            t0 = time.perf_counter()
            runs = {s: train_run(module, cfg, train, val, bank, s, init, seen) for s in cfg.seeds}
            results[name] = {"seeds": {str(s): h for s, h in runs.items()},
                             "summary": summarise([h[-1] for h in runs.values()]),
                             "curve": curve(list(runs.values())),
                             "seconds_per_run": (time.perf_counter() - t0) / len(runs)}
            names.append(name)
            logging.info("%s: %s", name, results[name]["summary"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"config": dataclasses.asdict(base_cfg), "results": results}, indent=2) + "\n")
    keys = [k for k in KEYS if k in results["baseline"]["final"]]
    print(f"| variant | {' | '.join(keys)} |")
    print("|---" * (len(keys) + 1) + "|")
    for name in ("baseline", *(k for k in results if k.startswith("untrained"))):
        fixed = results[name]["final"]
        label = "tag–text baseline (no training)" if name == "baseline" else name
        print(f"| {label} | " + " | ".join(f"{fixed[k]:.3f}" for k in keys) + " |")
    for v in names:
        print(f"| {v} | {' | '.join(results[v]['summary'][k] for k in keys)} |")
    print("\nmean validation score (zs_top1 + t2a_R@1 + a2t_R@1)/3 by step:")
    for v in names:
        print(f"{v:40s} " + " ".join(f"{step}:{val:.3f}" for step, val in results[v]["curve"]))


if __name__ == "__main__":
    main()
