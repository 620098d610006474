"""soundsift-base by hand: embedding throughput (× real time) and a zero-shot sanity check.

    .venv/bin/python benchmarks/soundsift_base.py [--model soundsift-base] [--seconds 120]
    .venv/bin/python benchmarks/soundsift_base.py --model soundsift-base --model soundsift-fast

Throughput: embeds ``--seconds`` of 10 s clips (the indexer's segment length, at the model's own
sample rate) in batches of 8, after one warm-up batch, and reports audio seconds per wall second.
Given several models, each is loaded once and their throughputs are measured in alternating
rounds in the same run, and the ratio of each to the first model is printed.

Sanity check: renders a few sounds whose label is literally true — espeak-ng speech (several
voices), General MIDI instruments through fluidsynth (FluidR3_GM), white/pink noise, a sine
tone, a US dial tone — and reports zero-shot top-1 over the label set with the prompt
"This is a sound of {label}.". A dozen synthetic clips say nothing about real recordings; the
number is a smoke test, not a quality claim. Tools missing from the machine are skipped.
"""
from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from engine.zeroshot import DEFAULT_TEMPLATE

GM_PROGRAMS = {"piano": 0, "church organ": 19, "acoustic guitar": 24, "violin": 40,
               "trumpet": 56, "flute": 73}
VOICES = ["en", "en-us", "de", "fr"]
SENTENCES = ["The quick brown fox jumps over the lazy dog near the river bank.",
             "Please remember to switch off the lights when you leave the office tonight."]


def _midi(program: int, path: Path) -> Path:
    """A format-0 MIDI file: one melody (C major arpeggio up and down) on ``program``."""
    events = bytes([0x00, 0xC0, program])
    for note in (60, 64, 67, 72, 67, 64, 60, 62, 65, 69):
        events += bytes([0x00, 0x90, note, 96]) + bytes([0x83, 0x60, 0x80, note, 0])  # 480 ticks
    events += bytes([0x00, 0xFF, 0x2F, 0x00])
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480)
    path.write_bytes(header + b"MTrk" + struct.pack(">I", len(events)) + events)
    return path


def render_sounds(folder: Path, sr: int) -> list[tuple[str, np.ndarray]]:
    """(label, mono waveform at ``sr``) for every sound this machine can render."""
    rng = np.random.default_rng(0)
    t = np.arange(5 * sr) / sr
    white = 0.3 * rng.standard_normal(t.size)
    pink = np.fft.irfft(np.fft.rfft(rng.standard_normal(t.size)) / np.sqrt(np.arange(t.size // 2 + 1) + 1.0), t.size)
    sounds = [("white noise", white), ("pink noise", 0.3 * pink / np.abs(pink).max()),
              ("sine wave", 0.5 * np.sin(2 * np.pi * 440 * t)),
              ("dial tone", 0.25 * (np.sin(2 * np.pi * 350 * t) + np.sin(2 * np.pi * 440 * t)))]
    if shutil.which("espeak-ng"):
        for i, voice in enumerate(VOICES):
            out = folder / f"speech_{voice}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(out), SENTENCES[i % 2]],
                           check=True, capture_output=True)
            sounds.append(("speech", _load(out, sr)))
    soundfont = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
    if shutil.which("fluidsynth") and soundfont.is_file():
        for label, program in GM_PROGRAMS.items():
            out = folder / f"{label.replace(' ', '_')}.wav"
            subprocess.run(["fluidsynth", "-ni", "-g", "1.0", "-r", "44100", "-F", str(out),
                            str(soundfont), str(_midi(program, folder / f"{program}.mid"))],
                           check=True, capture_output=True)
            sounds.append((label, _load(out, sr)))
    return [(label, np.asarray(w, np.float32)) for label, w in sounds]


def _load(path: Path, sr: int) -> np.ndarray:
    data, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    mono = data.mean(axis=1)
    return soxr.resample(mono, file_sr, sr) if file_sr != sr else mono


def throughput(model, seconds: float, batch: int = 8) -> dict:
    rng = np.random.default_rng(1)
    n = int(model.window_seconds * model.sample_rate)
    clips = [(0.1 * rng.standard_normal(n)).astype(np.float32) for _ in range(max(1, int(seconds / model.window_seconds)))]
    model.embed_audio(clips[:batch])  # warm-up
    start = time.perf_counter()
    for i in range(0, len(clips), batch):
        model.embed_audio(clips[i:i + batch])
    wall = time.perf_counter() - start
    audio = len(clips) * model.window_seconds
    return {"audio_seconds": audio, "wall_seconds": round(wall, 3), "x_real_time": round(audio / wall, 1)}


def compare_throughput(models: dict, seconds: float, rounds: int = 3) -> dict:
    """Throughput of each model in ``rounds`` alternating rounds; median × real time and ratio to the first."""
    runs: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            runs[name].append(throughput(model, seconds)["x_real_time"])
    medians = {name: float(np.median(xs)) for name, xs in runs.items()}
    first = next(iter(medians.values()))
    return {name: {"x_real_time": xs, "median": medians[name], "ratio_to_first": round(medians[name] / first, 2)}
            for name, xs in runs.items()}


def zero_shot(model, sounds: list[tuple[str, np.ndarray]]) -> dict:
    labels = sorted({label for label, _ in sounds})
    text = model.embed_text([DEFAULT_TEMPLATE.format(label=label) for label in labels])
    audio = model.embed_audio([w for _, w in sounds])
    predicted = [labels[i] for i in (audio @ text.T).argmax(axis=1)]
    rows = [{"label": label, "predicted": p} for (label, _), p in zip(sounds, predicted)]
    correct = sum(r["label"] == r["predicted"] for r in rows)
    return {"clips": len(rows), "labels": len(labels), "top1": round(correct / len(rows), 3), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="a model to measure; repeat to compare "
                        "several in one run (default: soundsift-base)")
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    from engine.models import load_model

    names = args.model or ["soundsift-base"]
    models, reports = {}, []
    for name in names:
        start = time.perf_counter()
        models[name] = load_model(name)
        reports.append({"model": name, "fingerprint": models[name].fingerprint[:12],
                        "load_seconds": round(time.perf_counter() - start, 2)})
    if len(models) > 1:
        compared = compare_throughput(models, args.seconds)
        for report in reports:
            report["throughput"] = compared[report["model"]]
    else:
        reports[0]["throughput"] = throughput(models[names[0]], args.seconds)
    for report in reports:
        model = models[report["model"]]
        with tempfile.TemporaryDirectory() as tmp:
            report["zero_shot"] = zero_shot(model, render_sounds(Path(tmp), model.sample_rate))
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
