"""Inference-time text-side variants on soundsift-base's recipe (session 42; MODEL_CARD.md, "The text
side at inference").

Trains the recipe's 3 seeds on the cached features (as soundsift train does), then re-scores each
seed's held-out module with the text side changed at inference only:
  - tau: the text->class softmax temperature (trained with 0.02);
  - topk: keep only a query's k most probable classes (renormalised);
  - ens: average the text vectors of several templates of the carrier-stripped query;
  - mix: the baseline's weight m (minilm_mix) at inference (trained with 0.15).
Needs the recipe's feature caches (soundsift train on the config builds them).
Usage: .venv/bin/python benchmarks/text_side_probe.py trainer/configs/soundsift_base.json OUT.json
"""
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

import trainer.cached_train as ct

KEYS = ("zs_top1", "t2a_R@1", "t2a_R@5", "a2t_R@1", "zs_top1_everyday", "t2a_R@1_everyday", "t2a_R@5_everyday")
ORIG = ct.encode_texts


def make_encoder(tau=0.02, topk=None, templates=("{x}",)):
    def enc(module, bank, texts):
        read = module.query_texts(texts)
        table = F.normalize(module.class_text, dim=-1)
        cls_parts, base_parts = [], []
        for tpl in templates:
            s = [tpl.format(x=r) for r in read]
            bank.add(s)
            v = bank(s)
            cos = F.normalize(v, dim=-1) @ table.T
            p = torch.softmax(cos / tau, dim=-1)
            if topk:
                keep = torch.zeros_like(p).scatter_(1, p.topk(topk, dim=1).indices, 1.0)
                p = p * keep
            cls_parts.append(F.normalize(p, dim=-1))
            base_parts.append(F.normalize(v, dim=-1))
        cls = F.normalize(torch.stack(cls_parts).mean(0), dim=-1)
        base = torch.stack(base_parts).mean(0)
        return module._side_by_side(cls, base)
    return enc


VARIANTS = {"recipe": make_encoder()}
MIX = {}
for m in (0.1, 0.2, 0.25):
    VARIANTS[f"mix {m}"] = make_encoder()
    MIX[f"mix {m}"] = m
for tau in (0.01, 0.015, 0.03, 0.05):
    VARIANTS[f"tau {tau}"] = make_encoder(tau=tau)
for k in (1, 2, 3, 5, 10):
    VARIANTS[f"top-{k}"] = make_encoder(topk=k)
VARIANTS["ens3 ({x} | {x} sound | {x} noise)"] = make_encoder(templates=("{x}", "{x} sound", "{x} noise"))
VARIANTS["ens5 ({x} | the sound of {x} | a recording of {x} | {x} sound effect | a {x} sound)"] = make_encoder(
    templates=("{x}", "the sound of {x}", "a recording of {x}", "{x} sound effect", "a {x} sound"))
VARIANTS["ens2 ({x} | {x} sound)"] = make_encoder(templates=("{x}", "{x} sound"))


@torch.no_grad()
def score_all(module, val, bank, seen, cfg):
    out = {}
    for name, enc in VARIANTS.items():
        ct.encode_texts = enc
        m0 = module.config.minilm_mix
        module.config.minilm_mix = MIX.get(name, m0)
        try:
            out[name] = ct.evaluate(module, val, bank, seen, cfg.everyday_exclude)
        finally:
            ct.encode_texts = ORIG
            module.config.minilm_mix = m0
    return out


def main():
    cfg = ct.CachedTrainConfig.from_file(sys.argv[1])
    t0 = time.perf_counter()
    train, val, module, bank, init_state = ct.prepare(cfg)
    seen = set(train.labels)
    # the default encoder must equal the trainer's
    labels = sorted(set(val.labels))
    a = ORIG(module, bank, labels)
    b = make_encoder()(module, bank, labels)
    assert torch.allclose(a, b, atol=1e-6), float((a - b).abs().max())
    results = {"start": score_all(module, val, bank, seen, cfg)}
    print("start done", time.perf_counter() - t0, flush=True)
    for seed in cfg.seeds:
        hist = ct.train_run(module, cfg, train, val, bank, seed, init_state, seen)
        results[f"seed {seed}"] = score_all(module, val, bank, seen, cfg)
        assert abs(results[f"seed {seed}"]["recipe"]["zs_top1"] - hist[-1]["zs_top1"]) < 1e-9
        print(f"seed {seed} done", time.perf_counter() - t0, flush=True)
    json.dump(results, open(sys.argv[2], "w"), indent=1)
    seeds = [k for k in results if k.startswith("seed")]
    print("variant | " + " / ".join(KEYS))
    for name in VARIANTS:
        st = " / ".join(f"{results['start'][name][k]:.3f}" for k in KEYS)
        mean = []
        for k in KEYS:
            vals = [results[s][name][k] for s in seeds]
            mean.append(f"{statistics.mean(vals):.3f}±{statistics.stdev(vals):.3f}")
        per_seed_zs = " ".join(f"{results[s][name]['zs_top1']:.3f}" for s in seeds)
        print(f"{name}: trained {' / '.join(mean)} | seeds zs {per_seed_zs} | start {st}")


if __name__ == "__main__":
    main()
