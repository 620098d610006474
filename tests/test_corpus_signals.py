"""Synthesised sources whose labels are literally true: electronic signals rendered to their
standards (trainer.corpus.signals) and the soundfont's sampled sound effects (gm-effects)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from trainer.corpus.music import EFFECTS, effect_candidates
from trainer.corpus.signals import BUSY, DIAL, LABELS, RENDER_RATE, signal_candidates
from trainer.corpus.tones import RATES
from trainer.corpus.writer import write_clip

FRAME = int(0.01 * RENDER_RATE)   # 10 ms


def render(label: str, tmp_path: Path, seed: int = 0, per_label: int = 3) -> list[np.ndarray]:
    out = []
    for i, c in enumerate(c for c in signal_candidates(per_label, seed) if c.label == label):
        path = tmp_path / f"{label.replace(' ', '_')}-{i}.wav"
        c.render(path)
        x, sr = sf.read(path)
        assert sr == RENDER_RATE and x.ndim == 1
        out.append(x)
    return out


def frame_rms(x: np.ndarray) -> np.ndarray:
    n = len(x) // FRAME
    return np.sqrt((x[:n * FRAME].reshape(n, FRAME) ** 2).mean(axis=1))


def on_fraction(x: np.ndarray) -> float:
    """Share of 10 ms frames that sound (RMS above a tenth of the loudest frame's)."""
    rms = frame_rms(x)
    return float((rms > 0.1 * rms.max()).mean())


def peak_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.argmax(spectrum) * RENDER_RATE / len(x))


def frame_peaks(x: np.ndarray, frame: int = FRAME * 2) -> np.ndarray:
    """Dominant frequency of each sounding 20 ms frame."""
    rms = frame_rms(x)
    peaks = []
    for i in range(len(x) // frame):
        seg = x[i * frame:(i + 1) * frame]
        if np.sqrt((seg ** 2).mean()) > 0.3 * rms.max():
            peaks.append(peak_hz(seg * np.hanning(len(seg))))
    return np.array(peaks)


def test_every_signal_label_yields_varied_candidates_with_true_captions():
    cands = signal_candidates(per_label=4, seed=0)
    assert {c.label for c in cands} == {s.label for s in LABELS} and len(cands) == 4 * len(LABELS)
    assert all(c.source == "signals" and c.rate in RATES and c.render is not None for c in cands)
    for spec in LABELS:
        mine = [c for c in cands if c.label == spec.label]
        assert all(c.captions == spec.captions for c in mine)
        assert len({c.origin for c in mine}) == 4          # lengths and seeds differ per clip
    assert [c.origin for c in cands] == [c.origin for c in signal_candidates(per_label=4, seed=0)]
    assert [c.origin for c in cands] != [c.origin for c in signal_candidates(per_label=4, seed=1)]


def test_signal_rendering_is_deterministic(tmp_path):
    c = signal_candidates(per_label=1, seed=0)[0]
    c.render(tmp_path / "a.wav")
    c.render(tmp_path / "b.wav")
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()


def test_smoke_alarm_beeps_near_3_khz_in_the_temporal_three_pattern(tmp_path):
    for x in render("smoke alarm", tmp_path):
        assert 2900 <= peak_hz(x) <= 3500
        assert on_fraction(x) == pytest.approx(1.5 / 4.0, abs=0.12)   # 3 × 0.5 s in every 4 s


def test_busy_and_dial_tones_use_network_frequencies(tmp_path):
    busy_freqs = {f for freqs, _ in BUSY for f in freqs}
    for x in render("busy signal", tmp_path):
        assert min(abs(peak_hz(x) - f) for f in busy_freqs) < 3
        assert on_fraction(x) == pytest.approx(0.5, abs=0.1)
    dial_freqs = {f for freqs in DIAL for f in freqs}
    for x in render("dial tone", tmp_path):
        assert min(abs(peak_hz(x) - f) for f in dial_freqs) < 3 and on_fraction(x) > 0.95


def test_ringer_trills_between_two_tones_and_sirens_sweep(tmp_path):
    for x in render("phone ringtone", tmp_path):
        peaks = frame_peaks(x)
        assert 0.1 < on_fraction(x) < 0.9                      # rings and pauses
        assert peaks.max() / peaks.min() > 1.15                 # two alternating tones
    for x in render("siren", tmp_path, per_label=6):
        peaks = frame_peaks(x)
        assert on_fraction(x) > 0.95 and peaks.max() / peaks.min() > 1.2     # hi-lo: ≥ 1.26


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not Path("/usr/share/sounds/sf2").is_dir(),
                    reason="fluidsynth / fluid-soundfont-gm not installed")
def test_gm_effects_render_every_sampled_effect(tmp_path):
    cands = effect_candidates(per_label=1, seed=0, workdir=tmp_path / "midi")
    assert {c.label for c in cands} == {label for label, _, _ in EFFECTS.values()}
    assert all(c.source == "gm-effects" and c.captions for c in cands)
    for c in cands:
        w = write_clip(c, tmp_path / "out", max_seconds=4)
        x, sr = sf.read(tmp_path / "out" / w.audio)
        assert sr == c.rate and w.duration > 1
        assert np.sqrt((x ** 2).mean()) > 1e-3, f"{c.label}: the soundfont rendered silence"
