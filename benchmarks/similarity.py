"""Audio→audio ("more like this") retrieval on the by-source validation split, by representation
(run by hand).

Every validation clip queries all the others (clip vector: the re-normalised mean of its cached
segment features); a hit is a clip with the same label. Prints P@1 and mAP@10 for the model's own
vectors (what an index holds and "more like this" searches), each frozen tower's features alone,
and the model vector joined with the training-mean-centred aisfx embedding at a few weights. A
second table keeps only candidates from *other* sources, since clips of one label from one
source share a recording chain that a representation can match without hearing the sound.

    .venv/bin/python benchmarks/similarity.py trainer/configs/soundsift_base.json \\
        runs/soundsift-base/model/held-out       # the bundled recipe's seed 0, trained without validation
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from trainer.cached_train import (CachedTrainConfig, Split, clip_vectors, load_splits, note_if_trained_on_validation,
                                  sounding_rows)


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def clip_means(split: Split, rows: np.ndarray) -> np.ndarray:
    """Per-clip mean of per-segment rows, those all digital silence left out as the models'
    clip vectors leave them out (trainer.cached_train.sounding_rows)."""
    kept = sounding_rows(split.cache)
    out = np.zeros((len(split.items), rows.shape[1]))
    np.add.at(out, split.cache.item[kept], rows[kept])
    return out


def retrieval(vectors: np.ndarray, labels: np.ndarray, sources: np.ndarray,
              other_sources: bool, k: int = 10) -> tuple[float, float, int]:
    """(P@1, mAP@10, queries) of cosine retrieval; queries with no relevant candidate are skipped
    (none left: NaN, NaN, 0)."""
    v = unit(vectors)
    sims = v @ v.T
    p1, aps = [], []
    for i in range(len(v)):
        cand = sources != sources[i] if other_sources else np.arange(len(v)) != i
        relevant = (labels == labels[i]) & cand
        if not relevant.any():
            continue
        order = np.argsort(-np.where(cand, sims[i], -np.inf))[:k]
        hits = relevant[order]
        p1.append(hits[0])
        precision = np.cumsum(hits) / np.arange(1, k + 1)
        aps.append(float((precision * hits).sum() / min(relevant.sum(), k)))
    if not p1:
        return float("nan"), float("nan"), 0
    return float(np.mean(p1)), float(np.mean(aps)), len(p1)


def print_tables(reps: dict[str, np.ndarray], labels: np.ndarray, sources: np.ndarray) -> None:
    """The all-candidates table, then the other-sources-only one: skipped, with a line saying so,
    when the split holds a single source (or no query has a same-label clip from another)."""
    for other in (False, True):
        title = "candidates from other sources only" if other else "all candidates"
        if other and len(set(sources.tolist())) < 2:
            print(f"{title}: skipped, a by-source figure needs two sources and this split holds one "
                  f"({sources[0] if len(sources) else 'none'})")
            continue
        results = {name: retrieval(vectors, labels, sources, other) for name, vectors in reps.items()}
        if not any(n for _, _, n in results.values()):
            print(f"{title}: skipped, no clip has another of its label"
                  + (" from another source" if other else ""))
            continue
        print(title)
        print("representation | P@1 | mAP@10 | queries")
        for name, (p1, map10, n) in results.items():
            print(f"{name} | {p1:.3f} | {map10:.3f} | {n}")


def main(argv: list[str] | None = None) -> None:
    from engine.models.soundsift_clap import SoundsiftClap

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="cached-features training config (its caches and validation split)")
    p.add_argument("model", help="soundsift-clap model folder")
    p.add_argument("--split", choices=("val", "train"), default="val",
                   help="train: the training clips (clean view), where many labels recur across sources; "
                        "the model's own vectors were trained on them, the frozen towers' were not")
    args = p.parse_args(argv)
    torch.set_num_threads(2)

    cfg = CachedTrainConfig.from_file(args.config)
    train, val = load_splits(cfg)
    model = SoundsiftClap.from_pretrained(args.model).eval()
    if args.split == "val":
        note_if_trained_on_validation(model, args.model)
    if args.split == "train":
        val = Split(train.items, train.cache.take(train.cache.view == 0), train.labels)   # clean views
    with torch.no_grad():
        own = clip_vectors(model, val)
    reps: dict[str, np.ndarray] = {
        "model vectors (the index's)": own,
        "YAMNet posteriors": clip_means(val, val.cache.posteriors),
        "YAMNet embedding (1024)": clip_means(val, val.cache.embedding),
    }
    if val.cache.aisfx is not None:
        aisfx = clip_means(val, val.cache.aisfx)
        centred = unit(aisfx - train.cache.aisfx.mean(0))
        reps["aisfx embedding (512)"] = aisfx
        for w in (1.0, 2.0):
            reps[f"model ⊕ {w:g}·aisfx (centred)"] = np.hstack([unit(own), w * centred])
    labels = np.array(val.labels)
    sources = np.array([it.source for it in val.items])
    print_tables(reps, labels, sources)


if __name__ == "__main__":
    main()
