"""How well a model in the AudioSet class space maps everyday labels onto the right classes (run by hand).

soundsift-base scores audio against text through the 521 AudioSet classes: the text side is a
softmax over classes. A query that lands on the wrong class (``"knocking"`` on *Engine knocking*)
loses whatever YAMNet heard. This benchmark measures that mapping alone, without audio, on the two
gold sets in ``benchmarks/data/everyday_text_to_class.json`` (everyday labels → the classes a
correct mapping puts first), for the bare label and for the zero-shot prompt
``"This is a sound of {label}."``:

* ``top1``: the share of labels whose most probable class is one of their gold classes;
* ``mass``: the mean softmax probability that falls on the gold classes.

    .venv/bin/python benchmarks/text_to_class.py soundsift-base \\
        --untrained "{name}" --untrained "{name}|{description}" --tau 0.05 --tau 0.02

``MODEL`` is a model name or folder (an ``"audioset"``-space soundsift-clap model);
``--untrained T1|T2`` adds the training-free text side built from those class templates (one
row per ``--tau``). ``--misses`` lists the labels each row gets wrong.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from engine.zeroshot import DEFAULT_TEMPLATE

GOLD_FILE = Path(__file__).parent / "data" / "everyday_text_to_class.json"


def class_distributions(encode, texts: list[str]) -> np.ndarray:
    """Rows of class probabilities from L2-normalised softmax vectors (v / sum(v) undoes the norm)."""
    v = np.asarray(encode(texts), dtype=np.float64)
    if (v < -1e-6).any():
        raise SystemExit("the model's text vectors are not class distributions (not the 'audioset' space)")
    return v / v.sum(1, keepdims=True)


def figures(encode, gold: dict[str, list[str]], names: list[str]) -> dict[str, object]:
    """top1 / mass for bare labels and prompts, and the labels each misses (with the class they got)."""
    class_index = {n: i for i, n in enumerate(names)}
    labels = list(gold)
    want = [np.array([class_index[c] for c in gold[x]]) for x in labels]
    out: dict[str, object] = {}
    for kind, texts in (("bare", labels), ("prompt", [DEFAULT_TEMPLATE.format(label=x) for x in labels])):
        p = class_distributions(encode, texts)
        top = p.argmax(1)
        hits = np.array([top[i] in w for i, w in enumerate(want)])
        out[f"{kind}_top1"] = float(hits.mean())
        out[f"{kind}_mass"] = float(np.mean([p[i, w].sum() for i, w in enumerate(want)]))
        out[f"{kind}_misses"] = [f"{x} → {names[top[i]]}" for i, x in enumerate(labels) if not hits[i]]
    return out


def class_space_encoder(model):
    """``model.embed_text`` over the 521 classes: for a model with ``minilm_mix`` (soundsift-base
    since session 16) the class-space part of its vectors, which comes first."""
    from engine.towers import yamnet

    if getattr(getattr(model, "module", None), "mix_class_table", None) is None:
        return model.embed_text
    return lambda texts: model.embed_text(texts)[:, :yamnet.NUM_CLASSES]


def _untrained_encoder(templates: list[str], tau: float):
    from engine.models.soundsift_clap import SoundsiftClap, SoundsiftClapConfig
    from engine.towers import yamnet

    module = SoundsiftClap(SoundsiftClapConfig(space="audioset", dim=yamnet.NUM_CLASSES, text_adapter=False,
                                               use_yamnet_embedding=False, text_temperature=tau,
                                               class_text_template=templates)).init_baseline().eval()

    def encode(texts: list[str]) -> np.ndarray:
        with torch.no_grad():
            return module.encode_text(texts).numpy()
    return encode


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", help="model names or folders (AudioSet-space soundsift-clap)")
    ap.add_argument("--untrained", action="append", default=[], metavar="T1|T2",
                    help="class templates of a training-free text side, '|'-separated")
    ap.add_argument("--tau", action="append", type=float, default=[], help="text temperature(s) for --untrained")
    ap.add_argument("--misses", action="store_true", help="list the labels missed with the prompt")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)

    from engine.models import load_model
    from engine.towers.yamnet import class_names

    names = list(class_names())
    gold_sets = {k: v for k, v in json.loads(GOLD_FILE.read_text()).items() if isinstance(v, dict)}
    rows: dict[str, object] = {}
    encoders = [(m, class_space_encoder(load_model(m))) for m in args.models]
    encoders += [(f"untrained {t} τ={tau}", _untrained_encoder(t.split("|"), tau))
                 for t in args.untrained for tau in (args.tau or [0.05])]
    for name, encode in encoders:
        rows[name] = {k: figures(encode, g, names) for k, g in gold_sets.items()}
    if args.json:
        print(json.dumps(rows, indent=1, ensure_ascii=False))
        return
    sets = list(gold_sets)
    print(f"{'':44s}" + "".join(f"| set {k} ({len(gold_sets[k])} labels): bare top1/mass, prompt top1/mass "
                                  for k in sets))
    for name, per_set in rows.items():
        cells = [f"| {f['bare_top1']:.3f} / {f['bare_mass']:.3f}   {f['prompt_top1']:.3f} / {f['prompt_mass']:.3f}"
                 + " " * 21 for f in per_set.values()]
        print(f"{name[:44]:44s}" + "".join(cells))
        if args.misses:
            for k, f in per_set.items():
                print(f"    set {k} misses (prompt):", "; ".join(f["prompt_misses"]))


if __name__ == "__main__":
    main()
