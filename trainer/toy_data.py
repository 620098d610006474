"""A generated toy set (tones, noise, chirps, clicks …) with captions, for smoke-training.

``python -m trainer.toy_data OUT_DIR`` writes ``OUT_DIR/audio/<class>/<n>.wav`` plus
``train.jsonl`` and ``val.jsonl`` manifests. Every class has randomised parameters
(pitch, level, length, rate) so the model must learn the sound, not one waveform; the
captions are literally true of the audio.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from trainer.captions import captions_from_tags

Generator = Callable[[np.random.Generator, int, int], np.ndarray]

#: the generator's version, recorded with the settings a toy-data/ folder was written with
#: (trainer.train.prepare_data): raised whenever the same settings make other clips, so a
#: folder an older generator wrote is written again. 2: clips at least one patch long.
GENERATOR_VERSION = 2


def _t(n: int, sr: int) -> np.ndarray:
    return np.arange(n) / sr


def _low_tone(rng, n, sr):
    return np.sin(2 * np.pi * rng.uniform(100, 250) * _t(n, sr))


def _high_tone(rng, n, sr):
    return np.sin(2 * np.pi * rng.uniform(2000, min(5000, sr / 2.5)) * _t(n, sr))


def _white_noise(rng, n, sr):
    return rng.standard_normal(n) / 3


def _rising_chirp(rng, n, sr):
    f0, f1 = rng.uniform(150, 400), rng.uniform(2000, min(6000, sr / 2.5))
    t = _t(n, sr)
    dur = n / sr
    return np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * dur)))


def _falling_chirp(rng, n, sr):
    return _rising_chirp(rng, n, sr)[::-1].copy()


def _clicks(rng, n, sr):
    x = np.zeros(n)
    period = int(sr / rng.uniform(4, 12))
    for start in range(int(rng.integers(0, period)), n, period):
        x[start:start + 40] = rng.standard_normal(min(40, n - start))
    return x


def _beeping(rng, n, sr):
    gate = (np.sin(2 * np.pi * rng.uniform(3, 6) * _t(n, sr)) > 0).astype(float)
    return gate * np.sin(2 * np.pi * rng.uniform(800, 1200) * _t(n, sr))


#: class tag → (generator, extra hand-written captions)
CLASSES: dict[str, tuple[Generator, tuple[str, ...]]] = {
    "low tone": (_low_tone, ("A low pitched hum.", "A deep steady tone.")),
    "high tone": (_high_tone, ("A high pitched whistle.", "A shrill steady tone.")),
    "white noise": (_white_noise, ("Hissing static noise.", "A steady hiss.")),
    "rising chirp": (_rising_chirp, ("A sweep going up in pitch.", "A tone rising in pitch.")),
    "falling chirp": (_falling_chirp, ("A sweep going down in pitch.", "A tone falling in pitch.")),
    "clicks": (_clicks, ("Regular clicking.", "A series of short clicks.")),
    "beeping": (_beeping, ("An electronic beeping.", "Repeated short beeps.")),
}


def make_clip(label: str, rng: np.random.Generator, seconds: float, sr: int) -> np.ndarray:
    """One randomised clip of class ``label`` (about ``seconds`` long, ±30 %), never shorter than
    one patch of the audio tower (:data:`trainer.datasets.SHORT_CLIP_SECONDS`, 0.975 s): a shorter
    clip is looped to fill a training crop, and the trainer warns of it, which README's first
    training command, on this set, did for 25 of its 56 clips."""
    from trainer.datasets import SHORT_CLIP_SECONDS
    gen, _ = CLASSES[label]
    n = max(int(np.ceil(SHORT_CLIP_SECONDS * sr)), int(seconds * sr * rng.uniform(0.7, 1.3)))
    x = gen(rng, n, sr)
    fade = min(n // 4, int(0.01 * sr))
    if fade:
        ramp = np.linspace(0, 1, fade)
        x[:fade] *= ramp
        x[n - fade:] *= ramp[::-1]
    return (x * rng.uniform(0.2, 0.8) / max(1e-9, np.max(np.abs(x)))).astype(np.float32)


def write_toy_set(out_dir: str | Path, *, per_class: int = 8, val_per_class: int = 2, seconds: float = 1.0,
                  sample_rate: int = 16000, seed: int = 0) -> tuple[Path, Path]:
    """Write the toy set; returns (train manifest, validation manifest)."""
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    rows: dict[str, list[dict]] = {"train": [], "val": []}
    for label, (_, extra) in CLASSES.items():
        for i in range(per_class + val_per_class):
            split = "train" if i < per_class else "val"
            path = out / "audio" / label.replace(" ", "_") / f"{split}-{i:03d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), make_clip(label, rng, seconds, sample_rate), sample_rate)
            captions = [extra[i % len(extra)]] + captions_from_tags([label], 2)
            if split == "val":
                captions = [extra[i % len(extra)]]
            rows[split].append({"audio": str(path.relative_to(out)), "captions": captions, "tags": [label],
                                "source": "toy"})
    paths = []
    for split in ("train", "val"):
        manifest = out / f"{split}.jsonl"
        manifest.write_text("".join(json.dumps(r) + "\n" for r in rows[split]), encoding="utf-8")
        paths.append(manifest)
    return paths[0], paths[1]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--per-class", type=int, default=8)
    p.add_argument("--val-per-class", type=int, default=2)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    train, val = write_toy_set(a.out_dir, per_class=a.per_class, val_per_class=a.val_per_class,
                               seconds=a.seconds, seed=a.seed)
    print(train)
    print(val)


if __name__ == "__main__":
    main()
