"""Electronic signals synthesised to their real-world standards: telephone tones, alarms, sirens.

These sounds *are* simple synthetic signals in life — a ringback tone is 440 + 480 Hz for 2 s in
every 6 s in North America, a smoke alarm beeps ≈ 3.1 kHz in the T3 pattern (ISO 8201) — so a
clip rendered to those specifications is literally what its label says. Every clip draws its
frequencies, cadence, waveform and length from the ranges the standards and devices use, so no
single rendering stands for the label. Captions say only that (``"a smoke alarm beeping"``).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from trainer.corpus.clips import Candidate
from trainer.corpus.tones import RATES

RENDER_RATE = 44100

#: (seconds on, seconds off, …) cadences and the tone pairs of national telephone networks
RINGBACK = [((440, 480), (2.0, 4.0)), ((400, 450), (0.4, 0.2, 0.4, 2.0)), ((425,), (1.0, 4.0)),
            ((425,), (1.5, 3.5)), ((400,), (1.0, 2.0))]
BUSY = [((480, 620), (0.5, 0.5)), ((425,), (0.5, 0.5)), ((400,), (0.375, 0.375)),
        ((425,), (0.25, 0.25))]
DIAL = [(350, 440), (425,), (350, 450), (400,)]
DTMF_ROWS, DTMF_COLS = (697, 770, 852, 941), (1209, 1336, 1477)


@dataclass(frozen=True)
class SignalLabel:
    """A label, its captions and the function drawing one clip of it."""

    label: str
    captions: tuple[str, ...]
    draw: Callable[[random.Random, float], np.ndarray]


def _t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * RENDER_RATE)) / RENDER_RATE


def _buzz(x: np.ndarray, buzz: float) -> np.ndarray:
    """``buzz`` > 0 squares a tone off (tanh), as a piezo or small speaker does."""
    return np.tanh(buzz * x) / np.tanh(buzz) if buzz > 0 else x


def _tone(freqs: tuple[float, ...] | list[float], seconds: float, buzz: float = 0.0) -> np.ndarray:
    """Sum of sines, optionally buzzing (:func:`_buzz`), with 4 ms ramps."""
    t = _t(seconds)
    x = _buzz(sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs), buzz)
    ramp = min(len(x) // 2, int(0.004 * RENDER_RATE))   # 4 ms ramps: no clicks
    if ramp:
        env = np.ones(len(x))
        env[:ramp] = env[-ramp:][::-1] = np.linspace(0, 1, ramp)
        x = x * env
    return x


def _sweep(freq: np.ndarray, buzz: float) -> np.ndarray:
    """A tone following the instantaneous frequency ``freq`` (Hz per sample)."""
    return _buzz(np.sin(2 * np.pi * np.cumsum(freq) / RENDER_RATE), buzz)


def _cadence(on: Callable[[float], np.ndarray], pattern: tuple[float, ...], seconds: float,
             rng: random.Random) -> np.ndarray:
    """Repeat on/off ``pattern`` (on first) for ``seconds``, starting at a random point of it."""
    cycle = np.concatenate([on(d) if i % 2 == 0 else np.zeros(int(d * RENDER_RATE))
                            for i, d in enumerate(pattern)])
    n = int(seconds * RENDER_RATE)
    start = rng.randrange(len(cycle))
    return np.tile(cycle, n // len(cycle) + 2)[start:start + n]


def _ringer(rng: random.Random, seconds: float) -> np.ndarray:
    f1 = rng.uniform(700, 1100)
    f2 = f1 * rng.uniform(1.2, 1.35)
    rate = rng.uniform(15, 25)   # the trill: two tones alternating 15–25 times a second
    buzz = rng.choice((0.0, 2.0, 5.0))
    ring = rng.choice(((2.0, 4.0), (0.4, 0.2, 0.4, 2.0), (1.0, 3.0), (1.5, 2.5)))

    def on(d: float) -> np.ndarray:
        t = _t(d)
        return _sweep(np.where((t * rate) % 1 < 0.5, f1, f2), buzz)
    return _cadence(on, ring, seconds, rng)


Draw = Callable[[random.Random, float], np.ndarray]


def _line_tone(table: list[tuple[tuple[int, ...], tuple[float, ...]]]) -> Draw:
    """A drawer of network line tones: one (tones, cadence) pair of ``table`` per clip."""
    def draw(rng: random.Random, seconds: float) -> np.ndarray:
        freqs, pattern = rng.choice(table)
        return _cadence(lambda d: _tone(freqs, d), pattern, seconds, rng)
    return draw


def _dial(rng: random.Random, seconds: float) -> np.ndarray:
    return _tone(rng.choice(DIAL), seconds)


def _dtmf(rng: random.Random, seconds: float) -> np.ndarray:
    parts, total = [np.zeros(int(rng.uniform(0.1, 0.6) * RENDER_RATE))], 0.0
    while total < seconds:
        d, gap = rng.uniform(0.07, 0.2), rng.uniform(0.05, 0.4)
        parts += [_tone((rng.choice(DTMF_ROWS), rng.choice(DTMF_COLS)), d),
                  np.zeros(int(gap * RENDER_RATE))]
        total += d + gap
    return np.concatenate(parts)[:int(seconds * RENDER_RATE)]


def _alarm_clock(rng: random.Random, seconds: float) -> np.ndarray:
    f, beeps = rng.uniform(2000, 4000), rng.randint(2, 4)
    beep, gap = rng.uniform(0.05, 0.12), rng.uniform(0.04, 0.08)
    pattern = (beep, gap) * (beeps - 1) + (beep, rng.uniform(0.4, 0.9))
    return _cadence(lambda d: _tone((f,), d, buzz=4.0), pattern, seconds, rng)


def _smoke_alarm(rng: random.Random, seconds: float) -> np.ndarray:
    f = rng.uniform(2900, 3500)
    pattern = (0.5, 0.5, 0.5, 0.5, 0.5, 1.5)   # temporal-three (T3)
    return _cadence(lambda d: _tone((f,), d, buzz=3.0), pattern, seconds, rng)


def _reversing(rng: random.Random, seconds: float) -> np.ndarray:
    f, d, buzz = rng.uniform(900, 1500), rng.uniform(0.4, 0.6), rng.choice((1.0, 3.0))
    return _cadence(lambda s: _tone((f,), s, buzz=buzz), (d, d), seconds, rng)


def _siren(rng: random.Random, seconds: float) -> np.ndarray:
    t = _t(seconds)
    lo, hi = rng.uniform(500, 800), rng.uniform(1200, 1700)
    kind = rng.choice(("wail", "yelp", "hilo"))
    if kind == "hilo":                       # two-tone: alternating notes about a fourth apart
        f1 = rng.uniform(420, 700)
        period = rng.uniform(0.8, 1.4)
        freq = np.where((t / period) % 1 < 0.5, f1, f1 * rng.uniform(1.26, 1.36))
    else:                                    # wail: slow rise and fall; yelp: fast sawtooth sweeps
        period = rng.uniform(3.0, 6.0) if kind == "wail" else rng.uniform(0.2, 0.45)
        phase = (t / period + rng.random()) % 1
        shape = 0.5 - 0.5 * np.cos(2 * np.pi * phase) if kind == "wail" else phase
        freq = lo + (hi - lo) * shape
    return _sweep(freq, rng.choice((1.5, 4.0)))


LABELS: tuple[SignalLabel, ...] = (
    # not "telephone ringing": the text side maps that to AudioSet's mechanical *bell* class
    # (Telephone bell ringing), and electronic trills taught there drag pure tones onto "a bell ringing"
    SignalLabel("phone ringtone", ("a phone ringtone", "an electronic phone ringer trilling",
                                   "the ringtone of an electronic telephone"), _ringer),
    SignalLabel("ringback tone", ("a ringback tone", "the ringing tone a caller hears on the line",
                                  "a phone line ringing"), _line_tone(RINGBACK)),
    SignalLabel("busy signal", ("a busy signal", "a telephone busy tone", "an engaged tone on a phone line"),
                _line_tone(BUSY)),
    SignalLabel("dial tone", ("a dial tone", "a telephone dial tone", "a steady phone line tone"), _dial),
    SignalLabel("touch-tone dialing", ("touch-tone dialing", "DTMF tones of a phone keypad",
                                       "dialing a number on a phone"), _dtmf),
    SignalLabel("alarm clock beeping", ("an alarm clock beeping", "a digital alarm clock going off",
                                        "beeping alarm"), _alarm_clock),
    SignalLabel("smoke alarm", ("a smoke alarm beeping", "a smoke detector going off",
                                "a fire alarm beeping in threes"), _smoke_alarm),
    SignalLabel("reversing beeps", ("reversing beeps", "a truck backing up beeping",
                                    "a vehicle reversing alarm"), _reversing),
    SignalLabel("siren", ("a siren", "an emergency vehicle siren", "a wailing siren"), _siren),
)


def _renderer(draw: Callable[[random.Random, float], np.ndarray], seed: str, seconds: float,
              gain_db: float) -> Callable[[Path], None]:
    def render(out: Path) -> None:
        import soundfile as sf
        x = draw(random.Random(seed), seconds)
        peak = float(np.max(np.abs(x))) or 1.0
        sf.write(str(out), (x / peak * 10 ** (gain_db / 20)).astype(np.float32), RENDER_RATE,
                 subtype="PCM_16")
    return render


def signal_candidates(per_label: int, seed: int) -> list[Candidate]:
    """``per_label`` clips of each electronic signal in :data:`LABELS`, each drawn anew."""
    rng = random.Random(f"signals:{seed}")
    out: list[Candidate] = []
    for spec in LABELS:
        for i in range(per_label):
            seconds = round(rng.uniform(3.0, 10.0), 2)
            gain = round(rng.uniform(-18, -3), 1)
            key = f"{spec.label.replace(' ', '-')}-{i}"
            out.append(Candidate("signals", f"synth:{key}:{seconds}s", spec.label,
                                 (spec.label, "synthetic"), spec.captions,
                                 render=_renderer(spec.draw, f"signals:{seed}:{key}", seconds, gain),
                                 rate=rng.choice(RATES)))
    return out
