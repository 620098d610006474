"""How models hear sounds inside silence, and very short sounds (run by hand).

Scores soundsift-clap models on the by-source validation split of a cached-training config twice:
as recorded, and **in silence**: every validation clip placed at a seeded random offset inside
digital silence of max(5 s, its length + 2 s) — what a sound library's padded file looks like —
then cut into the indexer's segments as usual. Features are computed from the audio by each
model's own towers, so its YAMNet pooling (``yamnet_pool_db``), short-sound padding
(``yamnet_short_pad``) and silence trimming (``yamnet_trim_silence``) are what is measured. A third
condition, **in long silence**, places every clip inside ``--silence-seconds`` (30) of digital
silence, as a long padded file. Each condition is scored twice: with the segments that are all
digital silence kept in a clip's mean of segment vectors, and left out as the indexer, `tag FILE`
and the evaluator leave them out (:func:`engine.segments.without_silence`; counted). Then, per
model, the top AudioSet class (YAMNet's posteriors as the model pools them) and the zero-shot pick
among the smoke test's labels (benchmarks/soundsift_base.py) of a 1 kHz beep of 10 / 30 / 100 ms
and of a single 20 ms click.

    .venv/bin/python benchmarks/silence_pooling.py trainer/configs/soundsift_base.json \\
        runs/soundsift-base/model/held-out OTHER_MODEL_FOLDER [--silence-seconds 30]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from engine.segments import is_silent
from engine.zeroshot import DEFAULT_TEMPLATE
from trainer.cached_train import CachedTrainConfig, Split, TextBank, evaluate, note_if_trained_on_validation
from trainer.datasets import load_clip, read_manifest
from trainer.precompute import FeatureCache, extract, peaks

#: the smoke test's labels (benchmarks/soundsift_base.py: render_sounds)
SMOKE_LABELS = ("white noise", "pink noise", "sine wave", "dial tone", "speech", "piano", "church organ",
                "acoustic guitar", "violin", "trumpet", "flute")
#: shortest digital silence a clip is placed in (seconds), and the least silence added
SILENCE_SECONDS, SILENCE_EXTRA_SECONDS = 5.0, 2.0


def in_silence(wave: np.ndarray, sample_rate: int, rng: np.random.Generator,
               seconds: float = SILENCE_SECONDS) -> np.ndarray:
    """``wave`` at a random offset inside digital silence of max(``seconds``, its length + 2 s)."""
    total = max(int(seconds * sample_rate), len(wave) + int(SILENCE_EXTRA_SECONDS * sample_rate))
    at = int(rng.integers(0, total - len(wave) + 1))
    out = np.zeros(total, np.float32)
    out[at:at + len(wave)] = wave
    return out


def segments(wave: np.ndarray, sample_rate: int, window_seconds: float) -> list[np.ndarray]:
    """The indexer's segments of ``wave`` (one when it fits the window)."""
    from engine.segments import SegmentPolicy, segment_bounds

    bounds = segment_bounds(len(wave), sample_rate, SegmentPolicy(window=window_seconds)) or [(0, len(wave))]
    return [np.ascontiguousarray(wave[a:b], dtype=np.float32) for a, b in bounds]


def short_sounds(sample_rate: int) -> list[tuple[str, np.ndarray]]:
    """A 1 kHz beep (2 ms fades) of 10, 30 and 100 ms and one 20 ms click (a decaying noise burst),
    each alone, then each 2 s into a 5 s file of digital silence; and the click at the start of a 1 s file."""
    sounds = []
    for ms in (10, 30, 100):
        t = np.arange(int(sample_rate * ms / 1000)) / sample_rate
        fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.002)
        sounds.append((f"beep {ms} ms", (0.5 * np.sin(2 * np.pi * 1000 * t) * fade).astype(np.float32)))
    n = int(sample_rate * 0.02)
    click = np.random.default_rng(0).standard_normal(n) * np.exp(-np.arange(n) / (0.003 * sample_rate))
    sounds.append(("click 20 ms", (0.8 * click / np.abs(click).max()).astype(np.float32)))
    out = list(sounds)
    for name, wave in sounds:
        file = np.zeros(5 * sample_rate, np.float32)
        file[2 * sample_rate:2 * sample_rate + len(wave)] = wave
        out.append((f"{name}, 2 s into 5 s of silence", file))
    one_second = np.zeros(sample_rate, np.float32)
    one_second[:len(sounds[-1][1])] = sounds[-1][1]
    out.append(("click 20 ms in a 1 s file", one_second))
    return out


def short_sound_picks(model, sounds: list[tuple[str, np.ndarray]]) -> list[tuple[str, str, float, str]]:
    """(name, top AudioSet class, its posterior, zero-shot pick among :data:`SMOKE_LABELS`) per sound."""
    from engine.towers.yamnet import class_names

    names = class_names()
    with torch.no_grad():
        text = model.encode_text([DEFAULT_TEMPLATE.format(label=x) for x in SMOKE_LABELS]).numpy()
        rows = []
        for name, wave in sounds:
            post = model.extract_features([wave])[0].posteriors.numpy()[0]
            audio = model.encode_audio([wave]).numpy()[0]
            rows.append((name, names[int(post.argmax())], float(post.max()), SMOKE_LABELS[int((text @ audio).argmax())]))
    return rows


def features(model, per_item: list[list[np.ndarray]]) -> FeatureCache:
    """The model's frozen features of every segment, one row each (item, view), with its peak."""
    cache = FeatureCache.empty(model.aisfx is not None)
    for i, segs in enumerate(per_item):
        rows = extract(model, segs)
        cache.extend({**rows, "item": np.full(len(segs), i, np.int64), "view": np.arange(len(segs), dtype=np.int64),
                      "peak": peaks(segs)})
    return cache


def silence_kept(cache: FeatureCache) -> FeatureCache:
    """``cache`` without its peaks: every segment enters its clip's mean (trainer.cached_train.sounding_rows)."""
    kept = cache.take(np.arange(len(cache)))
    kept.peak = None
    return kept


def main(argv: list[str] | None = None) -> None:
    from engine.models.soundsift_clap import SoundsiftClap

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="cached-features training config (its val_manifest and cache_dir)")
    p.add_argument("models", nargs="+", help="soundsift-clap model folders")
    p.add_argument("--seed", type=int, default=0, help="seed of the offsets in silence")
    p.add_argument("--silence-seconds", type=float, default=30.0,
                   help="the long silence every clip is placed in for the 'in long silence' condition (0: none)")
    p.add_argument("--short-only", action="store_true", help="only the short sounds, not the validation split")
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    cfg = CachedTrainConfig.from_file(args.config)
    items = read_manifest(cfg.val_manifest)
    first = SoundsiftClap.from_pretrained(args.models[0]).eval()
    rate, window = first.sample_rate, first.config.window_seconds
    conditions = {}
    if not args.short_only:
        wholes = [load_clip(it.audio, rate, None, None) for it in items]
        conditions = {"as recorded": [segments(w, rate, window) for w in wholes],
                      "in silence": [segments(in_silence(w, rate, np.random.default_rng([args.seed, i])), rate, window)
                                     for i, w in enumerate(wholes)]}
        if args.silence_seconds > 0:
            conditions[f"in {args.silence_seconds:g} s of silence"] = [
                segments(in_silence(w, rate, np.random.default_rng([args.seed, i]), args.silence_seconds), rate, window)
                for i, w in enumerate(wholes)]
    labels = sorted({it.tags[0] if it.tags else it.captions[0] for it in items})
    bank = TextBank(first.text, Path(cfg.cache_dir) / "text_minilm.npz")
    bank.add(first.query_texts(labels + [DEFAULT_TEMPLATE.format(label=x) for x in labels]))
    if not args.short_only:
        print(f"{len(items)} validation clips; in silence: at a random offset (seed {args.seed}) inside "
              f"max({SILENCE_SECONDS:g} s, length + {SILENCE_EXTRA_SECONDS:g} s) of digital silence"
              + (f" (in long silence: max({args.silence_seconds:g} s, length + {SILENCE_EXTRA_SECONDS:g} s))"
                 if args.silence_seconds > 0 else ""))
        for name, per_item in conditions.items():
            silent = [sum(is_silent(seg) for seg in segs) for segs in per_item]
            whole = sum(1 for n, segs in zip(silent, per_item) if n == len(segs))
            print(f"{name}: {sum(map(len, per_item))} segments, {sum(silent)} of them all digital silence "
                  f"(in {sum(1 for n in silent if n)} files; {whole} all silence)")
        print("model | condition | silent segments | segments | zero-shot top-1 | T2A R@1 | T2A R@5 | "
              "everyday: zero-shot / T2A R@1 / R@5 | s")
    picks = {}
    for folder in args.models:
        model = SoundsiftClap.from_pretrained(folder).eval()
        note_if_trained_on_validation(model, folder)
        if model.sample_rate != rate or model.config.window_seconds != window:
            raise SystemExit(f"{folder}: sample rate or window differs from {args.models[0]}; compare like with like")
        for name, per_item in conditions.items():
            t0 = time.perf_counter()
            cache = features(model, per_item)
            for how, scored in (("kept", silence_kept(cache)), ("left out", cache)):
                r = evaluate(model, Split.of(items, scored), bank, None, cfg.everyday_exclude)
                print(f"{folder} | {name} | {how} | {len(cache)} | {r['zs_top1']:.3f} | {r['t2a_R@1']:.3f} | "
                      f"{r['t2a_R@5']:.3f} | {r['zs_top1_everyday']:.3f} / {r['t2a_R@1_everyday']:.3f} / "
                      f"{r['t2a_R@5_everyday']:.3f} | {time.perf_counter() - t0:.0f}", flush=True)
        picks[folder] = short_sound_picks(model, short_sounds(rate))
    print("\nmodel | sound | top AudioSet class (posterior) | zero-shot pick among the smoke test's labels")
    for folder, rows in picks.items():
        for name, cls, post, pick in rows:
            print(f"{folder} | {name} | {cls} ({post:.2f}) | {pick}")


if __name__ == "__main__":
    main()
