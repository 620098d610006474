"""Does a search land on the right take of a marked field recording? With and without take segments.

Builds FILES long WAVs, each the concatenation of TAKES labelled corpus clips (distinct labels,
at most 6 s each, 0.5 s of silence between), at 48 kHz, with a named cue marker at each take,
and indexes them twice with the same model: as soundsift indexes now (one segment per marked
take beside the regular windows) and with the markers' takes switched off (the regular windows
only, as before session 22). Each take's label is then searched (``--all-segments``,
"This is a sound of {label}.") inside its own file, and the best segment is judged:

- right take: the take the hit's span overlaps most is the one searched for;
- share: how much of the hit's span is that take (1.0 when the hit is the take itself).

    .venv/bin/python benchmarks/takes.py [--model soundsift-base] [--source gcompris] [--carrier cue]

``--carrier cue`` writes the takes as a sidecar cue sheet (``field_00.cue``: a track per take,
its label the title, times to the cue frame, 1/75 s) instead of WAV cue markers.

The clips come from ``corpus/`` (``python -m trainer.corpus build --out corpus/``). The bundled
soundsift-base trained on them (final_with_val), so this measures the segmenting, not the model.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RATE = 48_000
GAP = 0.5


def write_marked(path: Path, clips: list[tuple[np.ndarray, str]], carrier: str = "wav") -> list[tuple[float, float, str]]:
    """A WAV of ``clips`` (mono at RATE) with a named cue marker at each (``carrier`` "wav"), or
    a sidecar cue sheet with a track at each ("cue"); returns the takes."""
    from ui.demo import append_markers
    parts, takes, at = [], [], 0
    for x, label in clips:
        takes.append((at / RATE, (at + len(x)) / RATE, label))
        parts += [x, np.zeros(int(GAP * RATE), np.float32)]
        at += len(x) + int(GAP * RATE)
    sf.write(path, np.concatenate(parts), RATE, subtype="PCM_24")
    if carrier == "cue":
        tracks = "".join(f'  TRACK {i:02d} AUDIO\n    TITLE "{label}"\n    INDEX 01 {cue_time_text(a)}\n'
                         for i, (a, _, label) in enumerate(takes, 1))
        path.with_suffix(".cue").write_text(f'FILE "{path.name}" WAVE\n{tracks}')
    else:
        append_markers(path, [(a, label) for a, _, label in takes])
    return takes


def cue_time_text(seconds: float) -> str:
    """``mm:ss:ff`` (75 frames a second) of ``seconds``, to the nearest frame."""
    frames = int(round(seconds * 75))
    return f"{frames // 4500:02d}:{frames // 75 % 60:02d}:{frames % 75:02d}"


def load_clips(source: str) -> dict[str, list[str]]:
    """label → audio paths of the corpus clips from ``source``."""
    by_label: dict[str, list[str]] = {}
    for name in ("train.jsonl", "val.jsonl"):
        for line in (ROOT / "corpus" / name).read_text().splitlines():
            row = json.loads(line)
            if row.get("source") == source:
                by_label.setdefault(row["label"], []).append(str(ROOT / "corpus" / row["audio"]))
    return by_label


def judge(index_dir: Path, model, files: dict[str, list[tuple[float, float, str]]]) -> tuple[float, float]:
    """(right-take rate, mean share of the hit span that is the wanted take)."""
    from engine.filters import Filters
    from engine.query import SoundIndex
    right, shares = [], []
    with SoundIndex.open(index_dir, model=model) as index:
        for path, takes in files.items():
            for a, b, label in takes:
                hit = index.search_text(f"This is a sound of {label}.", k=1, per_file=False,
                                        filters=Filters(path_prefix=path))[0]
                overlap = [max(0.0, min(hit.end, tb) - max(hit.start, ta)) for ta, tb, _ in takes]
                right.append(takes[int(np.argmax(overlap))][2] == label)
                shares.append(max(0.0, min(hit.end, b) - max(hit.start, a)) / (hit.end - hit.start))
    return float(np.mean(right)), float(np.mean(shares))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="soundsift-base")
    ap.add_argument("--source", default="gcompris")
    ap.add_argument("--files", type=int, default=6)
    ap.add_argument("--takes", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--carrier", choices=("wav", "cue"), default="wav",
                    help="where the takes are written: WAV cue markers, or a sidecar cue sheet")
    args = ap.parse_args()

    from engine.models import load_model
    from indexer import build_index, decode
    by_label = load_clips(args.source)
    rng = random.Random(args.seed)
    model = load_model(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "lib"
        lib.mkdir()
        files = {}
        for f in range(args.files):
            labels = rng.sample(sorted(by_label), args.takes)
            clips = []
            for label in labels:
                x, sr = sf.read(rng.choice(by_label[label]), always_2d=True, dtype="float32")
                clips.append((soxr.resample(x.mean(axis=1), sr, RATE)[: 6 * RATE].astype(np.float32), label))
            path = lib / f"field_{f:02d}.wav"
            files[str(path)] = write_marked(path, clips, args.carrier)
        seconds = sum(t[-1][1] for t in files.values())
        with_takes = Path(tmp) / "with"
        build_index([lib], with_takes, model, workers=0, progress=False)
        without = Path(tmp) / "without"
        saved = decode._marked_takes
        decode._marked_takes = lambda path, notes: []          # the regular windows only
        try:
            build_index([lib], without, model, workers=0, progress=False)
        finally:
            decode._marked_takes = saved
        rows = {"regular windows only": judge(without, model, files),
                "with a segment per marked take": judge(with_takes, model, files)}
    n = sum(len(t) for t in files.values())
    print(f"{args.files} files, {n} takes, {seconds:.0f} s, model {args.model}, clips from {args.source}, "
          f"takes marked by {'a sidecar cue sheet' if args.carrier == 'cue' else 'WAV cue markers'}")
    print(f"{'segments':<32} {'right take':>10} {'share of span':>14}")
    for name, (right, share) in rows.items():
        print(f"{name:<32} {right:>10.3f} {share:>14.3f}")


if __name__ == "__main__":
    main()
