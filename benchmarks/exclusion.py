"""What `soundsift search A --not B` does to results, on a labelled index (run by hand).

For every label A of the manifests with at least ``--min-clips`` clips in the index, the plain
search for A's name finds its top 20 files; the other label B with most clips among them (at
least 2, sharing no word with A: "rain" vs "rain on roof" is no confusion) makes a confusable
pair. Each pair is then searched with B excluded at every weight of ``--weights``, and the table
gives, over all pairs, the mean number of A's clips and of B's clips in the top 10, and how many
pairs lost A clips from the top 10. A control excludes a label unrelated to A (the label whose
best clip is least like A's name), which should cost A nothing.

    .venv/bin/python -m trainer.corpus build --out corpus/
    .venv/bin/soundsift index corpus/audio --index /tmp/corpus_base
    .venv/bin/python benchmarks/exclusion.py /tmp/corpus_base corpus/train.jsonl corpus/val.jsonl
"""
from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np

from engine.keywords import words
from engine.query import SoundIndex


def labels_of(manifests: list[Path]) -> dict[str, str]:
    """Resolved audio path → label, from corpus manifests (paths relative to the manifest)."""
    out = {}
    for m in manifests:
        for line in m.read_text().splitlines():
            row = json.loads(line)
            out[str((m.parent / row["audio"]).resolve())] = row["label"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index")
    ap.add_argument("manifests", nargs="+", type=Path)
    ap.add_argument("--min-clips", type=int, default=4)
    ap.add_argument("--weights", default="0,0.25,0.5,0.75,1,1.5")
    args = ap.parse_args()
    label = labels_of(args.manifests)
    weights = [float(w) for w in args.weights.split(",")]
    with SoundIndex.open(args.index) as index:
        fv = index.file_vectors()
        indexed = [label.get(p) for p in fv.paths]
        count = Counter(x for x in indexed if x is not None)
        names = sorted(lab for lab, n in count.items() if n >= args.min_clips)
        print(f"{len(fv.paths)} files, {sum(count.values())} labelled, {len(names)} labels with "
              f">= {args.min_clips} clips")
        if not names:       # else a table of nan: the index's paths are not the manifests' (copies?)
            raise SystemExit(f"no label has {args.min_clips} indexed clips: index the manifests' own audio "
                             "files (their paths must match), or lower --min-clips")

        def top(text: str, k: int, **kw) -> list[str | None]:
            return [label.get(h.path) for h in index.search_text(text, k=k, **kw)]

        members = {lab: np.array([i for i, x in enumerate(indexed) if x == lab]) for lab in names}
        pairs, controls = [], {}
        t0 = time.perf_counter()
        for a in names:
            plain = top(a, 20)
            others = Counter(x for x in plain if x is not None and x != a and count[x] >= args.min_clips
                             and not set(words(x)) & set(words(a)))
            if others and others.most_common(1)[0][1] >= 2:
                pairs.append((a, others.most_common(1)[0][0]))
                # the control: the label whose best clip is least like A's name (unrelated to it)
                cos = fv.vectors @ index.model.embed_text([a])[0]
                best = {lab: float(cos[members[lab]].max()) for lab in names if lab != a}
                controls[a] = min(best, key=best.get)
        print(f"{len(pairs)} confusable pairs (label, most frequent other label in its top 20), e.g.: "
              + "; ".join(f"{a} / {b}" for a, b in pairs[:8]))
        print(f"\n{'weight':>7} | {'A in top 10':>11} | {'B in top 10':>11} | {'pairs losing A':>14} | "
              f"{'A in top 10, unrelated excluded':>31}")
        base_a = {a: top(a, 10).count(a) for a, _ in pairs}
        for w in weights:
            a_in, b_in, lost, ctrl = [], [], 0, []
            for a, b in pairs:
                got = top(a, 10, exclude=[b], exclude_weight=w)
                a_in.append(got.count(a))
                b_in.append(got.count(b))
                lost += got.count(a) < base_a[a]
                ctrl.append(top(a, 10, exclude=[controls[a]], exclude_weight=w).count(a))
            print(f"{w:>7.2f} | {np.mean(a_in):>11.2f} | {np.mean(b_in):>11.2f} | {lost:>14d} | {np.mean(ctrl):>31.2f}")
        print(f"\n{time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
