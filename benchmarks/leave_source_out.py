"""Leave-one-source-out: does training help on recording chains it never saw? (run by hand)

The by-source validation split holds out three sources (223 clips). This benchmark holds out each
*training* source in turn instead: the config's recipe trains on every other training source
(the class prior recomputed without the held-out one) and is judged on the held-out source's
clean first windows (view 0 of the training cache), beside the untrained AudioSet-space start and
the issue's tag–text baseline. Many more clips and recording chains get judged than the fixed
split has, at the cost of one training run per source (≈ 10 s each with the caches built).

    .venv/bin/python benchmarks/leave_source_out.py trainer/configs/soundsift_base.json --min-clips 30
    .venv/bin/python benchmarks/leave_source_out.py trainer/configs/soundsift_base.json --set decay_to_init=0.3
    .venv/bin/python benchmarks/leave_source_out.py trainer/configs/soundsift_base.json --with-val

``--with-val`` adds the validation sources' clips (as training views) to every fold's training
data: does a recipe gain on unseen sources from hearing more sources (the ``final_with_val`` question)?
``--validation-sources`` asks the same of the validation split itself: each validation source is
held out in turn (judged on its segments, as the fixed split is) and the recipe trains on the
training sources alone, then also on the other validation sources, for every seed of the config.

Prints zero-shot top-1 and text→audio R@1 per held-out source (over that source's own labels),
then their mean over sources and the sum of clips right, for the baseline, the start and trained.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging

import numpy as np
import torch

from trainer.cached_train import (PROMPT, CachedTrainConfig, Split, build_module, class_prior,
                                  evaluate, load_splits, tag_text_baseline, TextBank, train_run,
                                  validation_as_training)


def subset(split: Split, keep: np.ndarray, clean_only: bool = False) -> Split:
    """The items where ``keep`` is true, their cache rows (only view 0 with ``clean_only``), reindexed."""
    index = np.flatnonzero(keep)
    new_id = np.full(len(split.items), -1, np.int64)
    new_id[index] = np.arange(len(index))
    rows = keep[split.cache.item]
    if clean_only:
        rows &= split.cache.view == 0
    cache = split.cache.take(rows, item=new_id[split.cache.item[rows]])
    return Split([split.items[i] for i in index], cache, [split.labels[i] for i in index])


def _override(key_value: str) -> tuple[str, object]:
    """``KEY=VALUE`` → (key, value): VALUE read as JSON (numbers, lists, true, null …), else kept as text."""
    key, _, value = key_value.partition("=")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="cached-features training config")
    p.add_argument("--min-clips", type=int, default=30, help="hold out only sources with this many clips")
    p.add_argument("--min-labels", type=int, default=3, help="… and this many labels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="also write the per-source figures here")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field (a JSON value, else the text as a string), "
                        "e.g. --set decay_to_init=0.3 --set cache_dir=runs/other-cache")
    p.add_argument("--with-val", action="store_true",
                   help="every fold also trains on the validation sources' clips")
    p.add_argument("--validation-sources", action="store_true",
                   help="hold out each validation source instead, with and without the other two in training")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    cfg = CachedTrainConfig.from_file(args.config)
    overrides = dict(_override(kv) for kv in args.set)
    cfg = dataclasses.replace(cfg, val_every=cfg.steps, **overrides)   # evaluated at the start and the end
    torch.set_num_threads(cfg.threads)
    train, val = load_splits(cfg)
    if args.validation_sources:
        return each_validation_source(cfg, train, val)
    pool = validation_as_training(cfg, train, val) if args.with_val else train   # what folds train on
    sources = np.array([it.source for it in train.items])
    pool_sources = np.array([it.source for it in pool.items])
    names, counts = np.unique(sources, return_counts=True)
    held = [s for s, n in zip(names, counts)
            if n >= args.min_clips and len(set(np.array(train.labels)[sources == s])) >= args.min_labels]

    rows = []
    bank = None
    print("held-out source | clips | labels (seen elsewhere) | zero-shot top-1: baseline / start / trained | "
          "T2A R@1: baseline / start / trained")
    for source in held:
        rest, test = subset(pool, pool_sources != source), subset(train, sources == source, clean_only=True)
        module = build_module(cfg, class_prior(rest.cache), bank)     # the first fold loads MiniLM
        if bank is None:     # every text of the split, once (MiniLM is the same frozen tower each fold)
            bank = TextBank(module.text, f"{cfg.cache_dir}/text_minilm.npz")
            bank.add([c for it in pool.items for c in it.captions] + train.labels
                     + [PROMPT.format(label=x) for x in sorted(set(train.labels))])
        labels = sorted(set(test.labels))
        init = {k: v.detach().clone() for k, v in module.state_dict().items()}
        seen = set(rest.labels)
        base = tag_text_baseline(test, bank, seen)
        start = evaluate(module, test, bank, seen)
        trained = train_run(module, cfg, rest, test, bank, args.seed, init, seen)[-1]
        row = {"source": source, "clips": len(test.items), "labels": len(labels),
               "seen_labels": len(set(labels) & seen),
               **{f"{name}_{k}": float(m[k]) for name, m in (("baseline", base), ("start", start),
                                                            ("trained", trained))
                  for k in ("zs_top1", "t2a_R@1")}}
        rows.append(row)
        print(f"{source} | {row['clips']} | {row['labels']} ({row['seen_labels']}) | "
              f"{row['baseline_zs_top1']:.3f} / {row['start_zs_top1']:.3f} / {row['trained_zs_top1']:.3f} | "
              f"{row['baseline_t2a_R@1']:.3f} / {row['start_t2a_R@1']:.3f} / {row['trained_t2a_R@1']:.3f}",
              flush=True)
    clips = np.array([r["clips"] for r in rows])
    for k in ("zs_top1", "t2a_R@1"):
        means = [np.mean([r[f"{n}_{k}"] for r in rows]) for n in ("baseline", "start", "trained")]
        print(f"mean over {len(rows)} sources, {k}: " + " / ".join(f"{m:.3f}" for m in means))
    right = [int(round(sum(r[f"{n}_zs_top1"] * r["clips"] for r in rows))) for n in ("baseline", "start", "trained")]
    print(f"zero-shot clips right of {clips.sum()}: " + " / ".join(map(str, right)))
    better = sum(r["trained_zs_top1"] > r["start_zs_top1"] for r in rows)
    worse = sum(r["trained_zs_top1"] < r["start_zs_top1"] for r in rows)
    print(f"training raised zero-shot top-1 on {better} sources and lowered it on {worse}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


def each_validation_source(cfg: CachedTrainConfig, train: Split, val: Split) -> None:
    """``--validation-sources``: see the module docstring. Prints means over the config's seeds."""
    joined = validation_as_training(cfg, train, val)
    joined_sources = np.array([it.source for it in joined.items])
    val_sources = np.array([it.source for it in val.items])
    bank = None
    print(f"held-out validation source | clips | labels | mean of seeds {cfg.seeds}, training sources only → "
          "with the other validation sources: zero-shot top-1 | T2A R@1 | T2A R@5")
    for source in sorted(set(val_sources)):
        test = subset(val, val_sources == source)
        runs = {}
        for name, pool in (("alone", train), ("joined", subset(joined, joined_sources != source))):
            module = build_module(cfg, class_prior(pool.cache), bank)
            if bank is None:
                bank = TextBank(module.text, f"{cfg.cache_dir}/text_minilm.npz")
                bank.add([c for it in joined.items for c in it.captions] + joined.labels
                         + [PROMPT.format(label=x) for x in sorted(set(joined.labels))])
            init = {k: v.detach().clone() for k, v in module.state_dict().items()}
            runs[name] = [train_run(module, cfg, pool, test, bank, seed, init, set(pool.labels))[-1]
                          for seed in cfg.seeds]
        cells = [" → ".join(f"{np.mean([m[k] for m in runs[n]]):.3f}" for n in ("alone", "joined"))
                 for k in ("zs_top1", "t2a_R@1", "t2a_R@5")]
        print(f"{source} | {len(test.items)} | {len(set(test.labels))} | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
