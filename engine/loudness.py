"""How loud a recording is: sample peak (dBFS) and integrated loudness (LUFS, ITU-R BS.1770-4).

Measured by the indexer while it decodes each file, on the native channels and rate, so a
library can be filtered for quiet room tones or hot, clipped takes. Loudness follows BS.1770-4:
K-weighting (its high shelf and high pass, their coefficients derived for any sample rate),
mean square per channel over 400 ms blocks overlapping by 75 %, the channels summed, an absolute
gate at −70 LUFS and a relative gate 10 LU below the absolutely gated loudness. Every channel
weighs 1 (the layout is not known, so surround channels are not weighted 1.41 and an LFE
channel is not left out). A recording shorter than one block is measured as one block.

The K-weighted mean square of each 100 ms step is taken in the frequency domain (the step's
power spectrum times the filter's squared magnitude response, by Parseval) rather than by
running the filter: numpy alone, no scipy in the decode workers. On tones, noise and sweeps it
agrees with the filter run in time to within 0.1 dB (tests/test_loudness.py).
"""
from __future__ import annotations

import math

import numpy as np

BLOCK = 0.4                 # seconds per gating block
STEP = 0.1                  # seconds between block starts (75 % overlap)
ABSOLUTE_GATE = -70.0       # LUFS
RELATIVE_GATE = -10.0       # LU below the absolutely gated loudness
#: what a recording of digital silence is given, peak and loudness alike, and the loudness of one
#: whose every block lies under the absolute gate (BS.1770 gives it none). Catalogs store it as
#: measured ("-120.0"), so a loudness filter counts such a file below any range; what people and
#: programs read says it in words (:func:`level_text`: "silent", "under -70") or as null
#: (:func:`level_number`), never as a measurement of −120.
SILENCE_DB = -120.0


def k_weighting(sample_rate: int) -> np.ndarray:
    """The K-weighting filter at ``sample_rate`` as second-order sections (2, 6): the BS.1770
    high shelf (+4 dB above ~1.7 kHz) then its high pass (~38 Hz), by bilinear transform."""
    k = math.tan(math.pi * 1681.974450955533 / sample_rate)
    q = 0.7071752369554196
    vh = 10 ** (3.999843853973347 / 20)
    vb = vh ** 0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = [(vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
             1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    k = math.tan(math.pi * 38.13547087602444 / sample_rate)
    q = 0.5003270373238773
    a0 = 1 + k / q + k * k
    high_pass = [1.0, -2.0, 1.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    return np.array([shelf, high_pass])


def _lufs(mean_square: float) -> float:
    return -0.691 + 10 * math.log10(mean_square) if mean_square > 0 else -math.inf


def k_weighting_power(sample_rate: int, n: int) -> np.ndarray:
    """|H(f)|² of the K-weighting filter at the ``n // 2 + 1`` frequencies of an ``n``-point rfft."""
    z = np.exp(-1j * np.pi * np.arange(n // 2 + 1) / (n / 2))     # e^{-jω}
    h = np.ones_like(z)
    for b0, b1, b2, _, a1, a2 in k_weighting(sample_rate):
        h *= (b0 + b1 * z + b2 * z * z) / (1 + a1 * z + a2 * z * z)
    return np.abs(h) ** 2


class LevelMeter:
    """Peak and integrated loudness of one recording, fed block by block as it is decoded."""

    def __init__(self, sample_rate: int, channels: int) -> None:
        self.sample_rate = sample_rate
        self.step = max(1, int(round(STEP * sample_rate)))
        self.gain = k_weighting_power(sample_rate, self.step)
        self.gain[1:(self.step + 1) // 2] *= 2                    # the rfft's one-sided bins count twice
        self.peak = 0.0
        self.steps: list[float] = []           # channel-summed K-weighted mean square of each 100 ms step
        self._partial = np.zeros((0, channels))

    def add(self, block: np.ndarray) -> None:
        """The next frames × channels samples."""
        if block.size == 0:
            return
        self.peak = max(self.peak, float(np.abs(block).max()))
        frames = np.concatenate([self._partial, np.asarray(block, np.float64)])
        whole = len(frames) // self.step
        if whole:
            steps = frames[:whole * self.step].reshape(whole, self.step, -1)
            power = np.abs(np.fft.rfft(steps, axis=1)) ** 2                 # (steps, bins, channels)
            self.steps += (np.einsum("sbc,b->s", power, self.gain) / self.step ** 2).tolist()
        self._partial = frames[whole * self.step:]

    def result(self) -> dict[str, float]:
        """``{"peak_dbfs", "loudness_lufs"}``, one decimal; digital silence gives SILENCE_DB."""
        steps = list(self.steps)
        if len(self._partial):                  # the last, shorter step: its own spectrum
            n = len(self._partial)
            gain = k_weighting_power(self.sample_rate, n)
            gain[1:(n + 1) // 2] *= 2
            steps.append(float(np.einsum("bc,b->", np.abs(np.fft.rfft(self._partial, axis=0)) ** 2, gain)) / n ** 2)
        per_block = int(round(BLOCK / STEP))
        blocks = (np.convolve(steps, np.ones(per_block) / per_block, mode="valid")
                  if len(steps) >= per_block else np.array([np.mean(steps)] if steps else []))
        loud = [z for z in blocks if _lufs(z) > ABSOLUTE_GATE]
        if loud:
            gate = _lufs(float(np.mean(loud))) + RELATIVE_GATE
            loud = [z for z in loud if _lufs(z) > gate]
        loudness = _lufs(float(np.mean(loud))) if loud else SILENCE_DB
        peak = 20 * math.log10(self.peak) if self.peak > 0 else SILENCE_DB
        return {"peak_dbfs": round(max(peak, SILENCE_DB), 1) + 0.0,
                "loudness_lufs": round(max(loudness, SILENCE_DB), 1) + 0.0}


def level_number(stored: float | str | None) -> float | None:
    """A stored peak (dBFS) or loudness (LUFS) as JSON gives it: the number, or None for
    :data:`SILENCE_DB` (nothing above the floor was measured: digital silence, or for loudness
    every block under the −70 LUFS gate)."""
    if stored is None:
        return None
    value = float(stored)
    return None if value <= SILENCE_DB else value


def level_text(stored: float | str | None, silent: bool = True) -> str:
    """A stored peak or loudness as a table, the page or a sheet shows it: ``"-23.4"`` (one
    decimal, no unit), ``""`` when not measured, and for :data:`SILENCE_DB` ``"silent"`` where
    the recording is digitally ``silent`` (its peak at the floor too), else ``"under -70"``
    (a loudness under the absolute gate: a very quiet room tone, not a measurement)."""
    if stored is None or str(stored).strip() == "":
        return ""
    value = level_number(stored)
    if value is not None:
        return f"{value:.1f}"
    return "silent" if silent else f"under {ABSOLUTE_GATE:.0f}"


def levels_text(found: dict[str, str]) -> str:
    """"-23.4 LUFS · peak -0.3 dBFS" from a file's stored levels (``loudness_lufs``,
    ``peak_dbfs``), "silent" for digital silence, "under -70 LUFS · peak -61.2 dBFS" for a
    recording too quiet for the loudness gate, "" when there are none."""
    if "loudness_lufs" not in found:
        return ""
    if digitally_silent(found):
        return "silent"
    loudness = level_text(found["loudness_lufs"], silent=False)
    return f"{loudness} LUFS · peak {level_text(found.get('peak_dbfs')) or '?'} dBFS"


def digitally_silent(found: dict[str, str]) -> bool:
    """Whether a file's stored levels say digital silence: its peak at :data:`SILENCE_DB`."""
    peak = found.get("peak_dbfs")
    return peak is not None and str(peak).strip() != "" and level_number(peak) is None
