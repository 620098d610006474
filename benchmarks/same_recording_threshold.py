"""Where the "same recording" level threshold (engine.duplicates.MAX_DIFFERENCE_DB) should sit,
measured on the corpus (run by hand; no model, no index).

Positives: clips of corpus/audio (``--per-source`` of each source, evenly spaced in name order;
their first ``--seconds``, mono),
each encoded as a library would hold it — MP3 (LAME through PyAV's ffmpeg, at FFmpeg's default
quality; 128 kbps mono also at LAME's -q 0, 2 and 7: which LAME is printed, PyAV 18.1.0's wheel
carries LAME 3.100, 18.1.1's one that tags its MP3s "LAME4.1") at 32–192 kbps mono and stereo,
Ogg Vorbis q0–q5 (libsndfile's libvorbis), Opus 24–96 kbps (libsndfile's libopus),
resampled to 48/22.05/16/8 kHz, 6 and 12 dB quieter, 8-bit — and as an editor's export adds:
10 ms fades, 5 ms of silence added or 3 ms trimmed at the start (then MP3 128/64 kbps).
Negatives: pairs that must not be marked — other clips of the same sound from the same source
within the duration slack (numbered variants, velocity layers, the same word by other voices;
pairs whose waveforms agree to 20 dB are the corpus's own copies and are listed apart), and each
clip against itself reversed, 5 % faster (sox tempo), 25 cents and a semitone higher (sox pitch),
and with another clip of the corpus mixed in 20 dB below it.

Every pair is decoded as the engine decodes it (engine.audio.decode at RATE) and compared by
engine.duplicates.difference_db. Prints the positives per variant (median, 90th percentile,
largest, share marked at the current and the proposed threshold), the negatives per kind (the
smallest first), the threshold that marks the most positives with no negative marked (with the
margin left to the closest negative), and whether longest_match's duration slack covers each
codec's padding (encoder delay, Opus pre-skip, a resampler's tail).

    .venv/bin/python benchmarks/same_recording_threshold.py            # 14 min on 2 loaded cores
    .venv/bin/python benchmarks/same_recording_threshold.py --per-source 3 --negatives 6
"""
from __future__ import annotations

import argparse
import itertools
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import soxr

from engine import duplicates as dup
from engine.audio import decode, probe

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
#: the corpus's generated sources (tones, sweeps, synthetic speech): reported apart from recordings
GENERATED = {"tones", "signals", "speech"}
#: a negative whose aligned waveforms differ by less than this (dB below the signal) is one
#: recording: two files of the corpus holding one sample, a change too short to do anything
#: (sox tempo on a 0.15 s beep)
COPY_RESIDUAL_DB = -30.0

#: the sample rates MPEG audio has
MP3_RATES = {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000}

Variant = Callable[[np.ndarray, int, Path], Path]


def _av_encode(x: np.ndarray, sr: int, path: Path, codec: str, bit_rate: int, channels: int,
               options: dict[str, str] | None = None) -> Path:
    """``x`` (mono) encoded by PyAV's ffmpeg ``codec`` at ``bit_rate`` with ``channels`` channels
    (``options``: the encoder's)."""
    import av

    rate = sr if sr in MP3_RATES else 44100          # what a converter does with a rate MP3 lacks
    if rate != sr:
        x = soxr.resample(x, sr, rate)
    data = np.repeat(x[None, :], channels, axis=0).astype(np.float32)
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout=layout, options=options or {})
        stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format="fltp", layout=layout)
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def mp3(kbps: int, channels: int, quality: int | None = None) -> Variant:
    """MP3 by PyAV's LAME at ``kbps``; ``quality``: LAME's -q (0 its slowest psychoacoustics, 7 and
    up none), else FFmpeg's default (:func:`lame_version` says which LAME)."""
    options = {} if quality is None else {"compression_level": str(quality)}
    return lambda x, sr, d: _av_encode(x, sr, d / f"mp3_{kbps}_{channels}_q{quality}.mp3", "libmp3lame",
                                       kbps * 1000, channels, options)


def lame_version() -> str:
    """The LAME in PyAV's FFmpeg, as the Info tag of an MP3 it writes names it ("LAME3.100"; PyAV
    18.1.1's wheel writes "LAME4.1"), and PyAV's version."""
    import av
    with tempfile.TemporaryDirectory() as d:
        data = mp3(192, 1)(np.zeros(22050, np.float32), 22050, Path(d)).read_bytes()
    tag = re.search(rb"LAME\d+\.\d+", data)
    return f"{tag.group().decode() if tag else 'no LAME tag'} (PyAV {av.__version__})"


def opus(kbps: int) -> Variant:
    """Ogg Opus at about ``kbps`` (libsndfile's libopus: compression level 0 → 256 kbps, 1 → 6
    kbps per channel) at 48 kHz. Not PyAV's: libsndfile (the engine's decoder) refuses many short
    Opus files ffmpeg writes as malformed."""
    def make(x: np.ndarray, sr: int, d: Path) -> Path:
        p = d / f"opus_{kbps}.opus"
        sf.write(p, soxr.resample(x, sr, 48000) if sr != 48000 else x, 48000, format="OGG", subtype="OPUS",
                 compression_level=(256 - kbps) / 250)
        return p
    return make


def vorbis(quality: int) -> Variant:
    """Ogg Vorbis at ``quality`` (oggenc's -q: libsndfile's compression level 1 − q/10)."""
    def make(x: np.ndarray, sr: int, d: Path) -> Path:
        p = d / f"vorbis_q{quality}.ogg"
        sf.write(p, x, sr, format="OGG", subtype="VORBIS", compression_level=1.0 - quality / 10)
        return p
    return make


def resampled(rate: int) -> Variant:
    def make(x: np.ndarray, sr: int, d: Path) -> Path:
        p = d / f"rate_{rate}.flac"
        sf.write(p, soxr.resample(x, sr, rate) if rate != sr else x, rate, subtype="PCM_16")
        return p
    return make


def gain(db: float) -> Variant:
    def make(x: np.ndarray, sr: int, d: Path) -> Path:
        p = d / f"gain_{db:g}.wav"
        sf.write(p, x * 10 ** (db / 20), sr, subtype="PCM_16")
        return p
    return make


def eight_bit(x: np.ndarray, sr: int, d: Path) -> Path:
    p = d / "8bit.wav"
    sf.write(p, np.clip(x, -1, 1), sr, subtype="PCM_U8")
    return p


def edited(edit: Callable[[np.ndarray, int], np.ndarray], then: Variant | None = None, name: str = "") -> Variant:
    """``then`` (or 16-bit WAV) of the clip after an editor's ``edit``."""
    def make(x: np.ndarray, sr: int, d: Path) -> Path:
        y = edit(x, sr).astype(np.float32)
        if then is not None:
            sub = d / f"edit_{name}"
            sub.mkdir(exist_ok=True)
            return then(y, sr, sub)
        p = d / f"edit_{name}.wav"
        sf.write(p, y, sr, subtype="PCM_16")
        return p
    return make


def fades(x: np.ndarray, sr: int, ms: float = 10.0) -> np.ndarray:
    n = min(int(sr * ms / 1000), len(x) // 2)
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    y = x.copy()
    y[:n] *= ramp
    y[len(y) - n:] *= ramp[::-1]
    return y


def pad_start(x: np.ndarray, sr: int, ms: float = 5.0) -> np.ndarray:
    return np.concatenate([np.zeros(int(sr * ms / 1000), np.float32), x])


def trim_start(x: np.ndarray, sr: int, ms: float = 3.0) -> np.ndarray:
    return x[int(sr * ms / 1000):]


def export(x: np.ndarray, sr: int) -> np.ndarray:
    return fades(pad_start(x, sr), sr)


VARIANTS: dict[str, Variant] = {
    **{f"mp3 {k} kbps mono": mp3(k, 1) for k in (32, 48, 64, 96, 128, 192)},
    **{f"mp3 {k} kbps stereo": mp3(k, 2) for k in (32, 48, 64, 96, 128, 192)},
    **{f"vorbis q{q}": vorbis(q) for q in range(6)},
    **{f"opus {k} kbps": opus(k) for k in (24, 32, 48, 64, 96)},
    **{f"resampled {r / 1000:g} kHz": resampled(r) for r in (48000, 22050, 16000, 8000)},
    "gain -6 dB": gain(-6), "gain -12 dB": gain(-12), "8-bit": eight_bit,
    "fades 10 ms": edited(fades, name="fades"),
    "5 ms added": edited(pad_start, name="pad"),
    "3 ms trimmed": edited(trim_start, name="trim"),
    **{f"LAME -q {q}: mp3 128 kbps, mono": mp3(128, 1, q) for q in (0, 2, 7)},
    "export (fades, 5 ms) mp3 128 stereo": edited(export, mp3(128, 2), "export128"),
    "export (fades, 5 ms) mp3 64 mono": edited(export, mp3(64, 1), "export64"),
    "3 ms trimmed, mp3 32 mono": edited(trim_start, mp3(32, 1), "trim32"),
}


def _sox(x: np.ndarray, sr: int, d: Path, name: str, *effect: str) -> np.ndarray:
    src, dst = d / f"{name}_in.wav", d / f"{name}_out.wav"
    sf.write(src, x, sr, subtype="FLOAT")
    subprocess.run(["sox", str(src), str(dst), *effect], check=True, capture_output=True)
    return sf.read(dst, dtype="float32")[0]


def transformed_negatives(x: np.ndarray, sr: int, other: np.ndarray, d: Path) -> dict[str, np.ndarray]:
    """The clip changed into another recording: reversed, faster, higher, another clip mixed in."""
    start = max(0, int(np.argmax(np.abs(other))) - len(x) // 2)     # around its loudest moment
    mix = np.resize(other[start:], len(x))
    level = np.sqrt(np.mean(x ** 2)) / max(float(np.sqrt(np.mean(mix ** 2))), 1e-9)
    return {"reversed": x[::-1].copy(),
            "5 % faster (tempo)": _sox(x, sr, d, "tempo", "tempo", "-s", "1.05"),
            "25 cents higher": _sox(x, sr, d, "pitch25", "pitch", "25"),
            "a semitone higher": _sox(x, sr, d, "pitch100", "pitch", "100"),
            "another clip mixed in at -20 dB": x + 0.1 * level * mix}


def corpus_entries() -> list[dict]:
    rows = []
    for name in ("train.jsonl", "val.jsonl"):
        with open(CORPUS / name) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return sorted(rows, key=lambda r: r["audio"])


def sample_per_source(rows: list[dict], per_source: int) -> list[dict]:
    by_source: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_source[r["source"]].append(r)
    out = []
    for source in sorted(by_source):
        clips = by_source[source]
        picks = np.unique(np.linspace(0, len(clips) - 1, min(per_source, len(clips))).round().astype(int))
        out += [clips[k] for k in picks]
    return out


def residual_db(x: np.ndarray, y: np.ndarray) -> float:
    """How far the aligned waveforms differ once the best gain is taken out (dB below ``x``)."""
    lag = dup.best_lag(x, y)
    a, b = x[max(lag, 0):], y[max(-lag, 0):]
    m = min(len(a), len(b))
    a, b = a[:m].astype(np.float64), b[:m].astype(np.float64)
    g = float(a @ b) / max(float(b @ b), 1e-20)
    return 10 * np.log10(max(float(((a - g * b) ** 2).sum()), 1e-20) / max(float((a ** 2).sum()), 1e-20))


def label_pairs(rows: list[dict], per_label: int) -> list[tuple[dict, dict]]:
    """Pairs of clips of one label from one source whose durations are within the slack (the
    pairs the engine would compare), at most ``per_label`` per label (closest durations first)."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["source"], r["label"])].append(r)
    out = []
    for key in sorted(groups):
        pairs = [(a, b) for a, b in itertools.combinations(groups[key], 2)
                 if max(a["duration"], b["duration"]) <= dup.longest_match(min(a["duration"], b["duration"]))]
        pairs.sort(key=lambda p: (abs(p[0]["duration"] - p[1]["duration"]), p[0]["audio"], p[1]["audio"]))
        out += pairs[:per_label]
    return out


def aligned_maps(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The level maps difference_db compares: ``x`` and ``y`` aligned by best_lag."""
    lag = dup.best_lag(x, y)
    return dup.level_map(x[max(lag, 0):]), dup.level_map(y[max(-lag, 0):])


def differences(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """difference_db of ``x`` and ``y`` under each rule of FLOORS: both maps floored that far
    below their loudest cell before they are compared (FLOOR_DB: the engine's rule)."""
    a, b = aligned_maps(x, y)       # floored at f, then moved down so f lands on FLOOR_DB (levels are relative)
    return np.array([dup._map_difference(np.maximum(a, f) + (dup.FLOOR_DB - f), np.maximum(b, f) + (dup.FLOOR_DB - f))
                     for f in FLOORS])


#: the floors (dB below a file's loudest cell) compared: codec noise lies in the quiet cells
FLOORS = (-60.0, -50.0, -40.0, -30.0)


def summarize(values: list[float]) -> str:
    v = np.asarray(values)
    return f"n={len(v):4d}  median {np.median(v):5.2f}  p90 {np.percentile(v, 90):5.2f}  max {v.max():6.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-source", type=int, default=6, help="clips encoded per source (positives)")
    ap.add_argument("--negatives", type=int, default=6, help="pairs of one label per source and label")
    ap.add_argument("--seconds", type=float, default=10.0, help="each clip's first seconds are used")
    ap.add_argument("--margin", type=float, default=0.5, help="dB kept under the closest negative")
    ap.add_argument("--json", type=Path, default=None, help="write every pair's differences here")
    args = ap.parse_args()
    if not (CORPUS / "audio").is_dir() or not (CORPUS / "train.jsonl").is_file():
        print(f"{CORPUS}: no corpus here (corpus/audio and corpus/train.jsonl); nothing to measure, skipped",
              file=sys.stderr)
        return
    t0 = time.perf_counter()
    rows = corpus_entries()
    clips = sample_per_source(rows, args.per_source)
    # variant or kind → (source, clip, dB per floor)
    positives: dict[str, list[tuple[str, str, np.ndarray]]] = defaultdict(list)
    negatives: dict[str, list[tuple[str, str, np.ndarray]]] = defaultdict(list)
    slack_misses: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    uncompared: dict[str, int] = defaultdict(int)
    unchanged: dict[str, int] = defaultdict(int)       # negatives whose waveform the change left as it was
    with tempfile.TemporaryDirectory(prefix="same_recording_") as tmp:
        for n, row in enumerate(clips):
            x, sr = sf.read(CORPUS / row["audio"], dtype="float32", always_2d=True)
            x = x.mean(axis=1)[:int(args.seconds * sr)]
            work = Path(tmp) / f"{n}"
            work.mkdir()
            src = work / "original.flac"              # the clip's first --seconds, mono, as it was
            sf.write(src, x, sr, subtype="PCM_24")
            ref, ref_seconds = decode(src, dup.RATE), probe(src).duration
            for name, make in VARIANTS.items():
                path = make(x, sr, work)
                y = decode(path, dup.RATE)
                positives[name].append((row["source"], row["audio"], differences(ref, y)))
                for seconds in (probe(path).duration, len(y) / dup.RATE):
                    if max(seconds, ref_seconds) > dup.longest_match(min(seconds, ref_seconds)):
                        slack_misses[name].append((row["audio"], ref_seconds, seconds))
                        break
            other = clips[(n + len(clips) // 2) % len(clips)]
            mixed_in, other_sr = sf.read(CORPUS / other["audio"], dtype="float32", always_2d=True)
            mixed_in = soxr.resample(mixed_in.mean(axis=1), other_sr, sr).astype(np.float32)
            for kind, z in transformed_negatives(x, sr, mixed_in, work).items():
                if max(len(z), len(x)) / sr > dup.longest_match(min(len(z), len(x)) / sr):
                    uncompared[kind] += 1             # the engine never compares these durations
                    continue
                p = work / "negative.wav"
                sf.write(p, z, sr, subtype="FLOAT")
                z = decode(p, dup.RATE)
                if residual_db(ref, z) < COPY_RESIDUAL_DB:
                    unchanged[kind] += 1
                    continue
                negatives[kind].append((row["source"], row["audio"], differences(ref, z)))
            print(f"\r{n + 1}/{len(clips)} clips encoded and compared", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    heard: dict[str, np.ndarray] = {}

    def audio(rel: str) -> np.ndarray:
        if rel not in heard:
            heard[rel] = decode(CORPUS / rel, dup.RATE)
        return heard[rel]

    corpus_copies = []
    for a, b in label_pairs(rows, args.negatives):
        xa, xb = audio(a["audio"]), audio(b["audio"])
        d = differences(xa, xb)
        if residual_db(xa, xb) < COPY_RESIDUAL_DB:
            corpus_copies.append((a["source"], f"{a['audio']} = {b['audio']}", d))
        else:
            negatives["another clip of the label"].append((a["source"], f"{a['audio']} ~ {b['audio']}", d))
    print(f"{len(clips)} clips of {len(rows)}, first {args.seconds:g} s; {time.perf_counter() - t0:.0f} s; "
          f"MP3s by {lame_version()}")
    for what, counts in (("outside the duration slack (never compared)", uncompared),
                         (f"left within {COPY_RESIDUAL_DB:g} dB of the waveform (not counted)", unchanged)):
        if counts:
            print(f"negatives {what}: " + ", ".join(f"{kind} {n}" for kind, n in counts.items()))
    report(positives, negatives, corpus_copies, slack_misses, args.margin)
    if args.json is not None:
        as_lists = {k: [(s, c, d.tolist()) for s, c, d in v] for k, v in
                    [*positives.items(), *negatives.items(), ("corpus copies", corpus_copies)]}
        args.json.write_text(json.dumps({"floors": FLOORS, "pairs": as_lists}))


def _column(rows: list[tuple[str, str, np.ndarray]], k: int, generated: bool | None = None) -> np.ndarray:
    return np.array([d[k] for s, _c, d in rows if generated is None or (s in GENERATED) == generated])


#: the table README's duplicates section shows: variants by family, in VARIANTS' order
FAMILIES = {"MP3 mono 32/48/64/96/128/192 kbps": "kbps mono", "MP3 stereo 32/48/64/96/128/192 kbps": "kbps stereo",
            "MP3 mono 128 kbps, LAME -q 0/2/7": "LAME -q",
            "Vorbis q0–q5": "vorbis q", "Opus 24/32/48/64/96 kbps": "opus ",
            "resampled 48/22.05/16/8 kHz": "resampled ", "gain −6/−12 dB, 8-bit": ("gain", "8-bit"),
            "10 ms fades, 5 ms added, 3 ms cut": ("fades", "added", "trimmed")}


def family_table(positives: dict, k: int, threshold: float) -> list[str]:
    """Markdown rows: per family, each variant's median difference (recordings) and the share
    marked at ``threshold``."""
    rows = ["| copy of a recording | median dB (share marked at ≤ %g dB) |" % threshold, "|---|---|"]
    for family, key in FAMILIES.items():
        keys = (key,) if isinstance(key, str) else key
        names = [n for n in positives
                 if any(part in n for part in keys) and not n.startswith(("export", "3 ms trimmed,"))]
        cells = []
        for n in names:
            v = _column(positives[n], k, False)
            cells.append(f"{np.median(v):.2f} ({np.mean(v <= threshold):.0%})")
        rows.append(f"| {family} | {' · '.join(cells)} |")
    return rows


def report(positives: dict, negatives: dict, corpus_copies: list, slack_misses: dict, margin: float) -> None:
    """Per floor: the closest negative, the threshold ``margin`` under it and the positives it
    marks; then the table per variant and per kind of negative."""
    engine = FLOORS.index(dup.FLOOR_DB)
    every_negative = [r for rows in negatives.values() for r in rows if r[0] not in GENERATED]
    recorded = [r for rows in positives.values() for r in rows if r[0] not in GENERATED]
    print(f"\nrules: maps floored at F dB (engine: {dup.FLOOR_DB:g}, threshold {dup.MAX_DIFFERENCE_DB:g} dB); "
          f"threshold = closest negative − {margin:g} dB")
    chosen = []
    for k, floor in enumerate(FLOORS):
        low = min(every_negative, key=lambda r: r[2][k])
        t = np.floor((low[2][k] - margin) * 10) / 10
        chosen.append(t)
        print(f"  F {floor:5.0f}: closest negative {low[2][k]:5.2f} dB ({low[1]}); threshold {t:.1f} dB marks "
              f"{np.mean(_column(recorded, k) <= t):6.1%} of recordings' copies "
              f"(at {dup.MAX_DIFFERENCE_DB:g} dB: {np.mean(_column(recorded, k) <= dup.MAX_DIFFERENCE_DB):6.1%})")
    print("\nsweep: share of the recordings' copies marked / negatives of recordings marked")
    print("  threshold " + " ".join(f"{f'F {f:g}':>12s}" for f in FLOORS))
    for t in np.arange(0.3, 2.05, 0.1):
        print(f"  {t:6.1f} dB " + " ".join(
            f"{np.mean(_column(recorded, k) <= t):6.1%} {int(np.sum(_column(every_negative, k) <= t)):4d}"
            for k in range(len(FLOORS))))
    for k, floor in enumerate(FLOORS):
        print(f"\n== F {floor:g} dB{' (engine)' if k == engine else ''}: threshold {chosen[k]:.1f} dB")
        print(f"  {'positives (must be marked)':38s} {'recordings':51s} marked  (generated: marked)")
        for name, rows in positives.items():
            rec, gen = _column(rows, k, False), _column(rows, k, True)
            print(f"  {name:38s} {summarize(rec)}  {np.mean(rec <= chosen[k]):5.0%}  "
                  f"({np.mean(gen <= chosen[k]) if len(gen) else 0:4.0%})")
        print(f"  {'negatives (must not be; all sources)':38s}")
        for kind, rows in negatives.items():
            v = _column(rows, k)
            low = min(rows, key=lambda r: r[2][k])
            print(f"  {kind:38s} {summarize(v)}  min {low[2][k]:.2f} ({low[1]})")
        close = sorted(every_negative, key=lambda r: r[2][k])[:6]
        print("  closest: " + "; ".join(f"{r[2][k]:.2f} {r[1]}" for r in close))
        if corpus_copies:
            print(f"  corpus copies (waveforms within {COPY_RESIDUAL_DB:g} dB, not negatives): {len(corpus_copies)}, "
                  f"up to {_column(corpus_copies, k).max():.2f} dB")
    print(f"\nthe engine's rule at {dup.MAX_DIFFERENCE_DB:g} dB, for README:")
    print("\n".join(family_table(positives, engine, dup.MAX_DIFFERENCE_DB)))
    v = _column(every_negative, engine)
    marked = {kind: int(np.sum(_column([r for r in rows if r[0] not in GENERATED], engine) <= dup.MAX_DIFFERENCE_DB))
              for kind, rows in negatives.items()}
    print(f"negatives of recordings: {len(v)}, smallest {v.min():.2f} dB; at most 0.5 / 1 / 1.5 / 2.5 dB: "
          f"{' / '.join(str(int(np.sum(v <= t))) for t in (0.5, 1.0, 1.5, 2.5))}; by kind at ≤ "
          f"{dup.MAX_DIFFERENCE_DB:g} dB: " + ", ".join(f"{kind} {n}" for kind, n in marked.items()))
    print("\nduration slack (longest_match) against each variant's padding:")
    for name in positives:
        misses = slack_misses.get(name, [])
        print(f"  {name:38s} " + ("covered" if not misses else
              f"{len(misses)} of {len(positives[name])} outside, e.g. {misses[0][0]} "
              f"{misses[0][1]:.3f} s → {misses[0][2]:.3f} s"))


if __name__ == "__main__":
    main()
