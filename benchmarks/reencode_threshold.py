"""Where indexer.reencodes.MIN_COSINE (a file re-encoded in place is the same recording) should sit,
measured on generated library-like clips (run by hand; no index, no corpus needed).

Clips: ``--families`` generators of corpus-like sounds (rain, wind, an engine, birds, footsteps,
knocks, UI beeps, babble, a stream, whooshes, metal hits, a fire), ``--takes`` takes of each
(``rain_01``, ``rain_02`` …: the same generator with another seed, all of one length, so the
length check cannot tell them apart and the cosine must), 16-bit 44.1 kHz WAV.

Positives: each take against itself re-encoded as a sound designer converts in place: FLAC
(lossless), MP3 at 64 and 32 kbps (LAME through PyAV), Ogg Vorbis q0 and q3 (libsndfile),
resampled to 22.05 kHz (FLAC), Opus 24 kbps. Negatives: another sound under the name (the first
take of each family against the first of every other: ``rain_01`` vs ``engine_01``), and the
takes of one family against each other (``rain_01`` vs ``rain_02``), which a re-encode must not be
taken for either. Each file is embedded as
`similar` embeds a file outside the index (engine.zeroshot.file_query_vector: its segments'
vectors averaged and re-normalised, the file vector the indexer compares), by each ``--model``.

Prints, per model, the positives per variant (lowest, median, share at or above the threshold,
``--threshold``, default indexer.reencodes.MIN_COSINE) and each kind of negatives (highest, 90th
percentile, median, share at or above it), and the gap between the lowest positive and the highest
negative of each kind.

    .venv/bin/python benchmarks/reencode_threshold.py                       # both bundled models
    .venv/bin/python benchmarks/reencode_threshold.py --families 6 --takes 2 --model soundsift-fast
"""
from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RATE = 44100
Generator = Callable[[np.random.Generator, float], np.ndarray]


def _t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * RATE)) / RATE


def _lowpass(x: np.ndarray, cutoff: float) -> np.ndarray:
    """A one-pole low-pass at ``cutoff`` Hz."""
    from scipy.signal import lfilter
    a = np.exp(-2 * np.pi * cutoff / RATE)
    return lfilter([1 - a], [1, -a], x)


def _band(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    from scipy.signal import butter, sosfilt
    return sosfilt(butter(4, [lo, hi], btype="band", fs=RATE, output="sos"), x)


def _events(rng: np.random.Generator, n: int, length: int, make: Callable[[], np.ndarray]) -> np.ndarray:
    out = np.zeros(length)
    for _ in range(n):
        e = make()
        at = int(rng.integers(0, max(1, length - len(e))))
        out[at:at + len(e)] += e[:length - at]
    return out


def rain(rng: np.random.Generator, s: float) -> np.ndarray:
    bed = _lowpass(rng.standard_normal(int(s * RATE)), rng.uniform(2000, 5000)) * 0.3
    drop = lambda: _band(rng.standard_normal(400), 2000, 8000) * np.exp(-np.arange(400) / 60) * rng.uniform(0.2, 1)
    return bed + _events(rng, int(s * rng.uniform(20, 60)), len(bed), drop)


def wind(rng: np.random.Generator, s: float) -> np.ndarray:
    t = _t(s)
    gust = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t + rng.uniform(0, 6))
    return _band(rng.standard_normal(len(t)), rng.uniform(100, 300), rng.uniform(800, 2000)) * gust


def engine(rng: np.random.Generator, s: float) -> np.ndarray:
    t, f0 = _t(s), rng.uniform(30, 70)
    tone = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 12))
    return tone * (0.8 + 0.2 * np.sin(2 * np.pi * f0 / 4 * t)) * 0.3 + rng.standard_normal(len(t)) * 0.02


def birds(rng: np.random.Generator, s: float) -> np.ndarray:
    def chirp() -> np.ndarray:
        d = rng.uniform(0.05, 0.2)
        tt = _t(d)
        f = rng.uniform(2500, 5000) + rng.uniform(-2000, 2000) * tt / d
        return np.sin(2 * np.pi * np.cumsum(f) / RATE) * np.hanning(len(tt))
    return _events(rng, int(s * rng.uniform(3, 8)), int(s * RATE), chirp) * 0.4 + rng.standard_normal(int(s * RATE)) * 0.005


def footsteps(rng: np.random.Generator, s: float) -> np.ndarray:
    out, step, at = np.zeros(int(s * RATE)), int(RATE / rng.uniform(1.6, 2.4)), int(rng.integers(0, RATE // 4))
    while at < len(out):
        n = min(6000, len(out) - at)
        out[at:at + n] += _lowpass(rng.standard_normal(n), rng.uniform(300, 900)) * np.exp(-np.arange(n) / 700)
        at += step + int(rng.integers(-800, 800))
    return out * 2


def knocks(rng: np.random.Generator, s: float) -> np.ndarray:
    f = rng.uniform(150, 400)
    knock = lambda: np.sin(2 * np.pi * f * _t(0.15)) * np.exp(-_t(0.15) * 40) + _band(
        rng.standard_normal(len(_t(0.15))), 500, 3000) * np.exp(-_t(0.15) * 90) * 0.5
    return _events(rng, int(s * rng.uniform(1, 3)), int(s * RATE), knock) * 0.5


def beeps(rng: np.random.Generator, s: float) -> np.ndarray:
    def beep() -> np.ndarray:
        tt = _t(rng.uniform(0.08, 0.3))
        return np.sin(2 * np.pi * rng.choice([440, 660, 880, 1320, 1760]) * tt) * np.minimum(1, np.minimum(tt, tt[::-1]) * 200)
    return _events(rng, int(s * rng.uniform(1, 3)), int(s * RATE), beep) * 0.4


def babble(rng: np.random.Generator, s: float) -> np.ndarray:
    t = _t(s)
    out = np.zeros(len(t))
    for _ in range(6):
        syll = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 6))
        out += _band(rng.standard_normal(len(t)), rng.uniform(250, 600), rng.uniform(1200, 3000)) * syll ** 2
    return out * 0.3


def stream(rng: np.random.Generator, s: float) -> np.ndarray:
    x = _band(rng.standard_normal(int(s * RATE)), rng.uniform(300, 800), rng.uniform(3000, 7000))
    gurgle = lambda: np.sin(2 * np.pi * rng.uniform(400, 1200) * _t(0.04)) * np.hanning(len(_t(0.04)))
    return x * 0.4 + _events(rng, int(s * 15), len(x), gurgle) * 0.3


def whoosh(rng: np.random.Generator, s: float) -> np.ndarray:
    out = np.zeros(int(s * RATE))
    n = int(rng.uniform(0.6, 1.2) * RATE)
    for at in range(int(rng.integers(0, RATE)), len(out) - n, int(rng.uniform(1.2, 2) * RATE)):
        env = np.sin(np.pi * np.arange(n) / n) ** 2
        out[at:at + n] += _band(rng.standard_normal(n), 200, rng.uniform(2000, 6000)) * env
    return out * 0.8


def metal(rng: np.random.Generator, s: float) -> np.ndarray:
    partials = rng.uniform(300, 4000, 7)
    hit = lambda: sum(np.sin(2 * np.pi * p * _t(1.0)) * np.exp(-_t(1.0) * rng.uniform(2, 8)) for p in partials) / 7
    return _events(rng, int(s * rng.uniform(0.5, 1.5)) + 1, int(s * RATE), hit)


def fire(rng: np.random.Generator, s: float) -> np.ndarray:
    rumble = _lowpass(rng.standard_normal(int(s * RATE)), 200) * 0.5
    crack = lambda: rng.standard_normal(int(rng.integers(20, 200))) * rng.uniform(0.2, 0.9)
    return rumble + _events(rng, int(s * rng.uniform(10, 40)), len(rumble), crack)


FAMILIES: dict[str, Generator] = {f.__name__: f for f in (rain, wind, engine, birds, footsteps, knocks, beeps,
                                                         babble, stream, whoosh, metal, fire)}


def normalised(x: np.ndarray) -> np.ndarray:
    return (x / (np.max(np.abs(x)) + 1e-9) * 0.7).astype(np.float32)


def _mp3(kbps: int) -> Callable[[np.ndarray, Path], Path]:
    def make(x: np.ndarray, path: Path) -> Path:
        import av
        p = path.with_name(f"{path.stem}.mp3{kbps}.mp3")
        with av.open(str(p), "w") as out:
            st = out.add_stream("libmp3lame", rate=RATE, layout="mono")
            st.bit_rate = kbps * 1000
            frame = av.AudioFrame.from_ndarray(x[None, :], format="fltp", layout="mono")
            frame.sample_rate = RATE
            for packet in [*st.encode(frame), *st.encode(None)]:
                out.mux(packet)
        return p
    return make


def _sf(suffix: str, rate: int = RATE, **kw) -> Callable[[np.ndarray, Path], Path]:
    def make(x: np.ndarray, path: Path) -> Path:
        p = path.with_name(f"{path.stem}.{suffix}")
        sf.write(p, soxr.resample(x, RATE, rate) if rate != RATE else x, rate, **kw)
        return p
    return make


VARIANTS: dict[str, Callable[[np.ndarray, Path], Path]] = {
    "FLAC": _sf("flac", subtype="PCM_16"),
    "MP3 64 kbps": _mp3(64),
    "MP3 32 kbps": _mp3(32),
    "Ogg Vorbis q3": _sf("q3.ogg", format="OGG", subtype="VORBIS", compression_level=0.7),
    "Ogg Vorbis q0": _sf("q0.ogg", format="OGG", subtype="VORBIS", compression_level=1.0),
    "22.05 kHz FLAC": _sf("22k.flac", rate=22050, subtype="PCM_16"),
    "Opus 24 kbps": _sf("opus", rate=48000, format="OGG", subtype="OPUS", compression_level=(256 - 24) / 250),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", type=int, default=len(FAMILIES))
    ap.add_argument("--takes", type=int, default=3)
    ap.add_argument("--model", action="append", help="default: soundsift-base and soundsift-fast")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threshold", type=float, default=None, help="default: indexer.reencodes.MIN_COSINE")
    args = ap.parse_args()

    from engine import load_model
    from engine.segments import SegmentPolicy
    from engine.zeroshot import file_query_vector
    from indexer.reencodes import MIN_COSINE
    threshold = MIN_COSINE if args.threshold is None else args.threshold

    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="reencode_") as d:
        folder = Path(d)
        clips: dict[str, list[Path]] = {}       # family → its takes (WAV)
        variants: dict[Path, dict[str, Path]] = {}
        for name, gen in list(FAMILIES.items())[:args.families]:
            seconds = float(rng.uniform(2.5, 8.0))
            for take in range(1, args.takes + 1):
                x = normalised(gen(np.random.default_rng(rng.integers(1 << 31)), seconds))
                wav = folder / f"{name}_{take:02d}.wav"
                sf.write(wav, x, RATE, subtype="PCM_16")
                clips.setdefault(name, []).append(wav)
                variants[wav] = {v: make(x, wav) for v, make in VARIANTS.items()}
        n_files = len(variants) * (1 + len(VARIANTS))
        print(f"{len(clips)} families × {args.takes} takes, {len(VARIANTS)} re-encodings each: {n_files} files")
        for model_name in args.model or ["soundsift-base", "soundsift-fast"]:
            model = load_model(model_name)
            policy = SegmentPolicy(window=float(model.window_seconds))
            t0 = time.perf_counter()
            vec = {p: file_query_vector(model, p, policy)[0]
                   for wav, vs in variants.items() for p in (wav, *vs.values())}
            pos = {v: [float(vec[wav] @ vec[vs[v]]) for wav, vs in variants.items()] for v in VARIANTS}
            firsts = [takes[0] for takes in clips.values()]
            negatives = {"another sound": list(itertools.combinations(firsts, 2)),
                         "another take": [pair for takes in clips.values() for pair in itertools.combinations(takes, 2)]}
            print(f"\n{model_name} ({time.perf_counter() - t0:.0f} s to embed)")
            at = f"≥ {threshold:g}"
            print(f"  {'re-encoded (positives)':24s} {'lowest':>8s} {'median':>8s} {at:>8s}")
            for v, cs in pos.items():
                print(f"  {v:24s} {min(cs):8.4f} {np.median(cs):8.4f} {np.mean(np.array(cs) >= threshold):8.0%}")
            print(f"  {'negatives':24s} {'highest':>8s} {'90th pct':>8s} {'median':>8s} {at:>8s}")
            for kind, pairs in negatives.items():
                cs = sorted((float(vec[a] @ vec[b]), a.stem, b.stem) for a, b in pairs)
                values = [c for c, _, _ in cs]
                print(f"  {kind + f' ({len(cs)} pairs)':24s} {max(values):8.4f} {np.percentile(values, 90):8.4f} "
                      f"{np.median(values):8.4f} {np.mean(np.array(values) >= threshold):8.0%}"
                      f"  (highest: {cs[-1][1]} vs {cs[-1][2]})")
            for v in VARIANTS:
                lowest = min(pos[v])
                gaps = ", ".join(f"{kind} {lowest - max(float(vec[a] @ vec[b]) for a, b in pairs):+.4f}"
                                 for kind, pairs in negatives.items())
                print(f"  gap of {v} (lowest positive − highest negative): {gaps}")

if __name__ == "__main__":
    main()
