"""Synthetic test signals with sox: tones, waveforms, noise colours, sweeps.

Captions say only what is literally true of the signal ("a 440 Hz sine tone", "pink noise",
"a rising sine sweep"). Sample rates vary per clip so rate cannot identify the source.
"""
from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

from engine.errors import CorpusError
from trainer.corpus.clips import Candidate

RATES = (16000, 22050, 32000, 44100, 48000)
FREQS = (110, 220, 330, 440, 523, 660, 880, 1000, 1500, 2000, 3000, 4000)
WAVES = {"sine": "sine tone", "square": "square wave", "sawtooth": "sawtooth wave",
         "triangle": "triangle wave"}
NOISES = {"whitenoise": "white noise", "pinknoise": "pink noise", "brownnoise": "brown noise"}


def sox_command(out: Path, rate: int, seconds: float, synth: list[str], gain_db: float) -> list[str]:
    """``sox -n`` command writing ``seconds`` of ``synth`` (sox synth arguments) to ``out``;
    repeatable (-R: fixed random numbers for noise) and without dither (-D)."""
    return ["sox", "-R", "-D", "-n", "-r", str(rate), "-b", "16", "-c", "1", str(out),
            "synth", f"{seconds:g}", *synth, "gain", f"{gain_db:g}", "fade", "0.01", "0", "0.01"]


def _renderer(synth: list[str], rate: int, seconds: float, gain: float):
    def render(out: Path) -> None:
        subprocess.run(sox_command(out, rate, seconds, synth, gain), check=True, capture_output=True)
    return render


def tone_candidates(per_label: int, seed: int) -> list[Candidate]:
    """``per_label`` clips of each waveform, noise colour and sweep direction."""
    if shutil.which("sox") is None:
        raise CorpusError("sox not found: apt-get install sox (or leave 'tones' out of --sources)")
    rng = random.Random(f"tones:{seed}")
    out: list[Candidate] = []

    def add(label: str, captions: list[str], synth: list[str], key: str) -> None:
        rate = rng.choice(RATES)
        seconds = round(rng.uniform(1.5, 5.0), 2)
        gain = round(rng.uniform(-18, -3), 1)
        out.append(Candidate("tones", f"sox:{key}:{seconds}s", label, (label, "synthetic"),
                             tuple(captions), render=_renderer(synth, rate, seconds, gain), rate=rate))

    for wave, label in WAVES.items():
        for i in range(per_label):
            f = rng.choice(FREQS)
            caps = [f"a {f} Hz {label}", f"a steady {label}", "a pure electronic tone"
                    if wave == "sine" else f"a {f} Hz {wave} wave tone"]
            add(label, caps, [wave, str(f)], f"{wave}{f}-{i}")
    for noise, label in NOISES.items():
        for i in range(per_label):
            add(label, [label, f"steady {label}", "static noise" if noise == "whitenoise" else "noise"],
                [noise], f"{noise}-{i}")
    for i in range(per_label):
        lo, hi = rng.choice((100, 200, 300)), rng.choice((2000, 4000, 8000))
        up = i % 2 == 0
        label = "sine sweep"
        caps = ([f"a rising sine sweep from {lo} to {hi} Hz", "a tone rising in pitch"] if up else
                [f"a falling sine sweep from {hi} to {lo} Hz", "a tone falling in pitch"])
        add(label, caps, ["sine", f"{lo}-{hi}" if up else f"{hi}-{lo}"], f"sweep{lo}-{hi}-{i}")
    return out
