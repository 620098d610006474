"""`soundsift duplicates` aligns a pair on a smaller FFT (session 37): the size holds the longer
head plus the largest shift instead of both heads, the smallest at which no lag looked at wraps
around, and the lags are read off the correlation by slices. The same best lag as the old
sizes give, in float64 (best_lag) and on the complex64 spectra that find_duplicates caches,
wherever the correlation's peak stands out beyond the FFT's rounding; where two lags tie (a
click heard twice, a steady tone against a short piece) the new lag's peak is as high within
rounding (the old float64 and complex64 lags could differ there too); at the old size, the old
lag always; and so the same differences and groups, to the bit, on a library of copies,
re-encodes and trims."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine import duplicates as dup
from engine.audio import decode
from tests.conftest import chirp, tone, write

SR = dup.RATE
SHIFT = int(dup.MAX_SHIFT_SECONDS * SR)
HEAD = dup._head(10 ** 9)


def _old_fft_size(len_x: int, len_y: int) -> int:
    """The size before: a power of two holding both heads."""
    return 1 << int(np.ceil(np.log2(max(dup._head(len_x) + dup._head(len_y), 2))))


def _old_lag_of(fx: np.ndarray, fy: np.ndarray, n: int, len_x: int, len_y: int) -> int:
    """The lag before: the overlapping lags gathered by index."""
    la, lb = dup._head(len_x), dup._head(len_y)
    corr = np.fft.irfft(fx * np.conj(fy), n)
    lags = np.arange(max(-SHIFT, 1 - lb), min(SHIFT, la - 1) + 1)
    return int(lags[np.argmax(np.abs(corr[lags % n]))])


def _cached_lags(x: np.ndarray, y: np.ndarray, old_fx: np.ndarray, old_fy: np.ndarray) -> tuple[int, int]:
    """(old, new) lag from complex64 head spectra, as find_duplicates caches them; ``old_fx`` and
    ``old_fy``: the float64 head spectra at the old size, computed once by the caller."""
    n = _old_fft_size(len(x), len(y))
    old = _old_lag_of(old_fx.astype(np.complex64), old_fy.astype(np.complex64), n, len(x), len(y))
    n = dup._fft_size(len(x), len(y))
    fx, fy = (dup._head_spectrum(z, n).astype(np.complex64) for z in (x, y))
    return old, dup._lag_of(fx, fy, n, len(x), len(y))


def _assert_the_old_lag_or_a_tie(x: np.ndarray, y: np.ndarray) -> bool:
    """best_lag and the cached lag of (x, y) are the old ones when the old peak of |correlation|
    (float64) stands out beyond rounding, else within rounding of it; whether it stood out."""
    n = _old_fft_size(len(x), len(y))
    fx, fy = dup._head_spectrum(x, n), dup._head_spectrum(y, n)       # float64, the old size: once
    corr = np.abs(np.fft.irfft(fx * np.conj(fy), n))
    lags = np.arange(max(-SHIFT, 1 - dup._head(len(y))), min(SHIFT, dup._head(len(x)) - 1) + 1)
    height = corr[lags % n]
    top = float(height.max())
    old_best_lag = int(lags[np.argmax(height)])      # _old_lag_of(fx, fy, …): the same correlation read the same way
    scale = float(np.linalg.norm(x[:dup._head(len(x))]) * np.linalg.norm(y[:dup._head(len(y))]))   # Cauchy–Schwarz
    clear = True
    for (old, new), tolerance in (((old_best_lag, dup.best_lag(x, y)), 1e-9), (_cached_lags(x, y, fx, fy), 1e-4)):
        runner_up = float(np.delete(height, old - lags[0]).max(initial=0.0))
        if runner_up < top - tolerance * scale:
            assert new == old, (len(x), len(y), old, new)
        else:
            clear = False
            assert corr[new % n] >= top - tolerance * scale, (len(x), len(y), old, new)
    return clear


def _signal(kind: str, length: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(length) / SR
    if kind == "noise":
        return rng.standard_normal(length).astype(np.float32)
    if kind == "tone":
        return (0.5 * np.sin(2 * np.pi * rng.uniform(100, 3000) * t)).astype(np.float32)
    if kind == "chirp":
        return (0.5 * np.sin(2 * np.pi * (200 * t + rng.uniform(500, 4000) * t ** 2))).astype(np.float32)
    burst = np.zeros(length, np.float32)                   # a click or two in silence
    burst[rng.integers(0, length, 2)] = 1.0
    return burst


#: lengths around where the old and the new sizes step (heads of 2^k, the shift, the head limit)
LENGTHS = [1, 2, 3, 100, 4095, 4096, 4097, SHIFT - 1, SHIFT, SHIFT + 1, SHIFT + 2, 8191, 8192, 8193,
           12000, 16383, 16384, 16385, 24000, 24576, 24577, 32767, 32768, 32769, 40000, 65536, 65537,
           HEAD - 1, HEAD, HEAD + 5000]


def test_the_size_holds_the_longer_head_and_the_shift_not_both_heads():
    assert dup._fft_size(24000, 24000) == 32768              # 1.5 s each: 65,536 before
    assert dup._fft_size(HEAD + 100, HEAD) == 1 << 19        # 20.5 s heads: 2^20 before
    assert dup._fft_size(4000, 4000) == _old_fft_size(4000, 4000) == 8192   # shorter than the shift: both heads
    sizes = [(dup._fft_size(a, b), _old_fft_size(a, b)) for a in LENGTHS for b in LENGTHS]
    assert all(new <= old and new & (new - 1) == 0 for new, old in sizes)
    assert sum(new < old for new, old in sizes) >= 80


@pytest.mark.parametrize("len_x, len_y", [(1, 1), (2, 9000), (300, 5000), (SHIFT, SHIFT + 1),
                                          (SHIFT + 1, SHIFT + 1), (8193, 20000), (16385, 16384),
                                          (24577, 9000), (40000, 39000)])
def test_no_lag_looked_at_wraps_around(len_x, len_y):
    """At the new size the circular correlation is the linear one at every lag within the shift."""
    rng = np.random.default_rng(len_x + len_y)
    x, y = rng.standard_normal(len_x), rng.standard_normal(len_y)
    n = dup._fft_size(len_x, len_y)
    corr = np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(y, n)), n)
    # the linear correlation, Σ x[t + k] y[t] at lag k: np.correlate's (all lags, 6 s at 40,000 ×
    # 39,000) where cheap, else zero-padded past len_x + len_y - 1, where no lag can wrap around
    lags = np.arange(max(-SHIFT, 1 - len_y), min(SHIFT, len_x - 1) + 1)
    if len_x * len_y <= 10**8:
        linear = np.correlate(x, y, mode="full")[lags + len_y - 1]
    else:
        m = len_x + len_y
        linear = np.fft.irfft(np.fft.rfft(x, m) * np.conj(np.fft.rfft(y, m)), m)[lags % m]
    np.testing.assert_allclose(corr[lags % n], linear, atol=1e-8 * np.abs(linear).max())


@pytest.mark.parametrize("kind", ["noise", "tone", "chirp", "clicks"])
def test_the_best_lag_is_the_old_one_at_many_lengths(kind):
    """Shifted, quieter, noisier copies and unrelated pairs, lengths across the size steps."""
    rng = np.random.default_rng(["noise", "tone", "chirp", "clicks"].index(kind))
    tried = 0
    for length in LENGTHS:
        x = _signal(kind, length, rng)
        other = _signal(kind, int(rng.choice(LENGTHS)), rng)
        lead = int(rng.integers(0, SHIFT))
        copy = np.concatenate([np.zeros(lead, np.float32), 0.5 * x])
        copy += (1e-3 * rng.standard_normal(len(copy))).astype(np.float32)
        for a, b in ((x, copy), (copy, x), (x, other), (other, x), (x, x[int(rng.integers(0, length)):])):
            tried += _assert_the_old_lag_or_a_tie(a, b)
    assert tried >= len(LENGTHS)                      # most of the copies: their peak stands out


@pytest.mark.parametrize("kind", ["noise", "tone", "chirp", "clicks"])
def test_at_the_old_size_the_lag_is_the_old_one_ties_included(kind):
    """Reading the lags by slices picks what gathering them by index picked, ties and all."""
    rng = np.random.default_rng(7)
    for length in LENGTHS[:-3]:
        x, y = _signal(kind, length, rng), _signal(kind, int(rng.choice(LENGTHS[:-3])), rng)
        n = _old_fft_size(len(x), len(y))
        fx, fy = dup._head_spectrum(x, n), dup._head_spectrum(y, n)
        for spectra in ((fx, fy), (fx.astype(np.complex64), fy.astype(np.complex64))):
            assert dup._lag_of(*spectra, n, len(x), len(y)) == _old_lag_of(*spectra, n, len(x), len(y))


def test_a_shifted_copy_is_found_at_its_shift():
    x = _signal("chirp", 24000, np.random.default_rng(5))
    for lead in (0, 1, 777, SHIFT - 1, SHIFT):
        y = np.concatenate([np.zeros(lead, np.float32), x])
        assert dup.best_lag(y, x) == lead and dup.best_lag(x, y) == -lead


def test_random_pairs_of_random_lengths_keep_their_lag():
    rng = np.random.default_rng(39)
    for _ in range(60):
        la, lb = (int(v) for v in rng.integers(1, 3 * SHIFT, 2))
        x, y = rng.standard_normal(la).astype(np.float32), rng.standard_normal(lb).astype(np.float32)
        if rng.random() < 0.5:                                # half of them related
            y[: min(la, lb) // 2] += x[: min(la, lb) // 2]
        assert _assert_the_old_lag_or_a_tie(x, y)           # noise: no ties


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Recordings of 0.3 to 2.5 s (heads under and over the shift), each with a byte copy, an MP3,
    a trimmed, a quieter and a late-starting copy, and other takes: (paths, vectors, durations,
    sizes), every vector about the same."""
    root = tmp_path_factory.mktemp("dup_fft")
    paths: list[Path] = []
    for r, seconds in enumerate((0.3, 0.6, 1.0, 1.5, 2.5)):
        x = chirp(200 + 300 * r, 3000 + 200 * r, seconds, SR, amp=0.3) + 0.05 * tone(900 + 50 * r, seconds, SR)
        x = x.astype(np.float32)
        original = write(root / f"rec{r}" / "take.wav", x, SR)
        paths += [original, Path(shutil.copy(original, root / f"rec{r}" / "take copy.wav")),
                  write(root / f"rec{r}" / "take.mp3", x, SR, format="MP3"),
                  write(root / f"rec{r}" / "trimmed.wav", x[int(0.01 * SR):], SR),
                  write(root / f"rec{r}" / "quiet.flac", 0.25 * x, SR),
                  write(root / f"rec{r}" / "late.wav", np.concatenate([np.zeros(1234, np.float32), x]), SR),
                  write(root / f"rec{r}" / "other take.wav",
                        chirp(260 + 300 * r, 2500 + 200 * r, seconds, SR, amp=0.3).astype(np.float32), SR)]
    names = [str(p) for p in paths]
    durations = np.array([len(decode(p, SR)) / SR for p in names])
    rng = np.random.default_rng(0)
    vectors = np.ones((len(names), 8), np.float32) + 0.05 * rng.standard_normal((len(names), 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return names, vectors, durations, np.array([Path(p).stat().st_size for p in names])


def _with_old_alignment(monkeypatch) -> None:
    monkeypatch.setattr(dup, "_fft_size", _old_fft_size)
    monkeypatch.setattr(dup, "_lag_of", _old_lag_of)


def test_every_pairs_difference_is_the_old_one_to_the_bit(library, monkeypatch):
    paths = library[0]
    pairs = [(i, j) for i in range(len(paths)) for j in range(i + 1, len(paths))]
    uses = np.full(len(paths), len(pairs))

    def differences() -> list[float | None]:
        recordings = dup._Recordings(paths, uses)
        return [recordings.difference(i, j) for i, j in pairs]
    new = differences()
    with monkeypatch.context() as m:
        _with_old_alignment(m)
        old = differences()
    assert new == old
    assert sum(d is not None and d <= dup.MAX_DIFFERENCE_DB for d in new) >= 5 * 10


def test_the_groups_and_keepers_are_the_old_ones(library, monkeypatch):
    def outcome() -> tuple:
        report = dup.find_duplicates(*library, workers=0)
        return [g.to_dict() for g in report.groups], report.compared, report.confirmed
    new = outcome()
    with monkeypatch.context() as m:
        _with_old_alignment(m)
        old = outcome()
    assert new == old
    assert len(new[0]) == 5 and all(len(g["paths"]) >= 5 for g in new[0])
