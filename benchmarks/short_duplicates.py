"""How much heard audio a file holds outside the stretch its pair covers once aligned
(engine.duplicates.unmatched_seconds, against allowed_unmatched), for short sounds of other lengths that must not be one
recording and for copies that must (run by hand; no model, no index).

Generated (always): 3 kHz tones of 60/100/150 ms, noise bursts ("clicks") of 20/40 ms, decaying
1 kHz UI beeps of 60/100/150/250 ms, each against the others of its kind, and each against its
MP3 (32, 128 kbps mono, LAME through PyAV), Opus (libsndfile) and 22.05 kHz copy. Corpus (when
corpus/ is there): the ``--clips`` shortest clips, each against every variant of
benchmarks/same_recording_threshold.py (codecs, resampling, gain, fades, 5 ms added, 3 ms
trimmed) and against itself cut to two thirds (a negative). Prints per pair the heard ms outside,
the ms allowed and the level difference (engine.duplicates.difference_db, inf where more is heard
outside than allowed); per corpus variant the largest ms outside and how many pairs exceed.

    .venv/bin/python benchmarks/short_duplicates.py --clips 40
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import same_recording_threshold as srt  # noqa: E402

from engine import duplicates as dup  # noqa: E402
from engine.audio import decode  # noqa: E402
from tests.test_duplicates_short35 import SR, beep as beep_for, ramped  # noqa: E402  (the tests' sounds)


def tone(ms: int) -> np.ndarray:
    t = np.arange(int(ms / 1000 * SR)) / SR
    return ramped(0.5 * np.sin(2 * np.pi * 3000 * t))


def click(ms: int) -> np.ndarray:
    return ramped(0.3 * np.random.default_rng(3).standard_normal(int(ms / 1000 * SR)), 1.0)


def beep(ms: int) -> np.ndarray:
    return beep_for(ms / 1000)


def outside_ms(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Heard ms outside the shared stretch, and the ms allowed."""
    return (1000 * dup.unmatched_seconds(x, y, dup.best_lag(x, y)),
            1000 * dup.allowed_unmatched(min(len(x), len(y)) / dup.RATE))


def row(name: str, x: np.ndarray, y: np.ndarray) -> None:
    out, allowed = outside_ms(x, y)
    print(f"{name:38s} {out:8.1f} {allowed:8.1f} {dup.difference_db(x, y):6.2f}")


def generated(work: Path) -> None:
    copies = {"mp3 32 kbps mono": srt.mp3(32, 1), "mp3 128 kbps mono": srt.mp3(128, 1),
              "opus 64 kbps": srt.opus(64), "resampled 22.05 kHz": srt.resampled(22050)}
    print(f"{'pair (at 16 kHz)':38s} {'outside':>8s} {'allowed':>8s} {'dB':>6s}")
    for make, lengths in ((tone, (60, 100, 150)), (click, (20, 40)), (beep, (60, 100, 150, 250))):
        for k, a in enumerate(lengths):
            for b in lengths[k + 1:]:
                row(f"{make.__name__} {a} vs {b} ms", *(decode(srt.edited(lambda z, sr: z, name=f"l{n}")(
                    make(n), SR, work), dup.RATE) for n in (a, b)))
        for a in lengths:
            x = make(a)
            ref = decode(srt.edited(lambda z, sr: z, name="ref")(x, SR, work), dup.RATE)
            for name, variant in copies.items():
                row(f"{make.__name__} {a} ms, {name}", ref, decode(variant(x, SR, work), dup.RATE))


def corpus(work: Path, clips: int) -> None:
    rows = sorted(srt.corpus_entries(), key=lambda r: sf.info(srt.CORPUS / r["audio"]).duration)[:clips]
    worst: dict[str, list[float]] = defaultdict(list)
    over: dict[str, int] = defaultdict(int)
    for n, row in enumerate(rows):
        x, sr = sf.read(srt.CORPUS / row["audio"], dtype="float32", always_2d=True)
        x = x.mean(axis=1)
        d = work / f"{n}"
        d.mkdir()
        ref = decode(srt.edited(lambda z, r: z, name="ref")(x, sr, d), dup.RATE)
        for name, variant in {**srt.VARIANTS, "cut to 2/3 (negative)": srt.edited(
                lambda z, r: z[:len(z) * 2 // 3], name="cut")}.items():
            out, allowed = outside_ms(decode(variant(x, sr, d), dup.RATE), ref)
            worst[name].append(out)
            over[name] += out > allowed
    lengths = [sf.info(srt.CORPUS / r["audio"]).duration for r in rows]
    print(f"\n{len(rows)} shortest corpus clips ({min(lengths):.2f}–{max(lengths):.2f} s): "
          "largest heard ms outside per variant, and how many pairs exceed what is allowed")
    for name, shares in worst.items():
        print(f"  {name:40s} {max(shares):6.1f} ms  {over[name]:3d} of {len(shares)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=40, help="shortest corpus clips to encode (0: none)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="short_duplicates_") as tmp:
        generated(Path(tmp))
        if args.clips and (srt.CORPUS / "train.jsonl").exists():
            corpus(Path(tmp), args.clips)


if __name__ == "__main__":
    main()
