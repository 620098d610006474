"""Waveform augmentations for training, so no source is recognisable by its channel.

Each function takes a mono float32 waveform, its sample rate and a ``numpy`` Generator
and returns a new float32 waveform of the same length. :class:`ChannelAugment` applies
them with per-augmentation probabilities from :class:`AugmentConfig`: random band limit
(resampling through a lower rate), a codec round trip (mp3 / ogg vorbis via soundfile),
added noise (white/pink/brown at a random SNR), a simple synthetic reverb, and a random
loudness. Mixing two clips (with a joined caption) happens in the dataset, which can see
two items.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import soxr

#: rates a band-limit round trip goes through (telephone … studio)
BAND_LIMIT_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100)
#: (format, subtype) of the codec round trips
CODECS = (("MP3", "MPEG_LAYER_III"), ("OGG", "VORBIS"))
#: frames handed to the encoder per write in the codec round trip
ENCODE_BLOCK = 1 << 16


@dataclass
class AugmentConfig:
    """Probability of each augmentation per training item (0 switches it off) and its ranges."""

    gain_db: float = 6.0             # uniform gain in ±gain_db (always, when > 0)
    loudness: float = 0.5            # p(normalise RMS to a random level in loudness_dbfs)
    loudness_dbfs: tuple[float, float] = (-40.0, -12.0)
    band_limit: float = 0.5          # p(resample through a random lower rate)
    codec: float = 0.3               # p(mp3/ogg round trip)
    noise: float = 0.3               # p(add coloured noise)
    noise_snr_db: tuple[float, float] = (10.0, 40.0)
    reverb: float = 0.3              # p(convolve with a synthetic room response)
    reverb_rt60: tuple[float, float] = (0.1, 1.0)
    mix: float = 0.0                 # p(mix in another clip, joined caption "A and B")
    mix_snr_db: tuple[float, float] = (-5.0, 5.0)

    @classmethod
    def off(cls) -> "AugmentConfig":
        """No augmentation at all."""
        return cls(gain_db=0.0, loudness=0.0, band_limit=0.0, codec=0.0, noise=0.0, reverb=0.0, mix=0.0)


def _f32(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    """``y`` cut or zero-padded to ``n`` samples."""
    if len(y) >= n:
        return y[:n]
    return np.concatenate([y, np.zeros(n - len(y), y.dtype)])


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


def gain(x: np.ndarray, rng: np.random.Generator, max_db: float) -> np.ndarray:
    """Scale by a uniform random gain in ±``max_db`` decibels."""
    return _f32(x * 10 ** (rng.uniform(-max_db, max_db) / 20))


def loudness(x: np.ndarray, rng: np.random.Generator, dbfs: tuple[float, float]) -> np.ndarray:
    """Normalise RMS to a random level in ``dbfs``; peaks are kept below full scale."""
    level = rms(x)
    if level < 1e-8:
        return _f32(x)
    y = x * (10 ** (rng.uniform(*dbfs) / 20) / level)
    peak = float(np.max(np.abs(y)))
    return _f32(y / peak * 0.99 if peak > 0.99 else y)


def band_limit(x: np.ndarray, sr: int, rng: np.random.Generator, rate: int | None = None) -> np.ndarray:
    """Resample down to ``rate`` (default: a random lower rate) and back, removing
    everything above its Nyquist frequency."""
    rates = [r for r in BAND_LIMIT_RATES if r < sr]
    if rate is None and not rates:
        return _f32(x)
    low = int(rate) if rate is not None else int(rng.choice(rates))
    y = soxr.resample(soxr.resample(_f32(x), sr, low), low, sr)
    return _f32(_fit(y, len(x)))


def codec_round_trip(x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Encode to mp3 or ogg vorbis in memory and decode again (at a codec-friendly rate)."""
    fmt, subtype = CODECS[int(rng.integers(len(CODECS)))]
    rate = sr if sr in (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000) else 44100
    y = soxr.resample(_f32(x), sr, rate) if rate != sr else _f32(x)
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    scale = 0.99 / peak if peak > 0.99 else 1.0       # codecs clip at full scale
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", rate, 1, format=fmt, subtype=subtype) as out:
        for i in range(0, len(y), ENCODE_BLOCK):     # libsndfile 1.2.2's Vorbis encoder crashes the
            out.write(y[i:i + ENCODE_BLOCK] * scale)  # process given a minute or more in one write
    buf.seek(0)
    z, _ = sf.read(buf, dtype="float32")
    if z.ndim > 1:
        z = z.mean(axis=1)
    z = z / scale
    if rate != sr:
        z = soxr.resample(_f32(z), rate, sr)
    return _f32(_fit(z, len(x)))


def coloured_noise(n: int, rng: np.random.Generator, colour: str) -> np.ndarray:
    """White, pink (1/f) or brown (1/f²) noise of unit RMS."""
    white = rng.standard_normal(n)
    if colour == "white" or n < 4:
        y = white
    else:
        spec = np.fft.rfft(white)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        spec /= np.sqrt(f) if colour == "pink" else f
        y = np.fft.irfft(spec, n)
    return y / max(rms(y), 1e-12)


def add_noise(x: np.ndarray, rng: np.random.Generator, snr_db: tuple[float, float]) -> np.ndarray:
    """Add white/pink/brown noise at a random signal-to-noise ratio."""
    colour = ("white", "pink", "brown")[int(rng.integers(3))]
    level = rms(x)
    if level < 1e-8:
        level = 10 ** (-50 / 20)
    n = coloured_noise(len(x), rng, colour) * level / 10 ** (rng.uniform(*snr_db) / 20)
    return _f32(x + n)


def synthetic_reverb(x: np.ndarray, sr: int, rng: np.random.Generator,
                     rt60: tuple[float, float]) -> np.ndarray:
    """Convolve with exponentially decaying noise (random RT60) and mix wet/dry."""
    t60 = rng.uniform(*rt60)
    n_ir = max(2, int(t60 * sr))
    t = np.arange(n_ir) / sr
    ir = rng.standard_normal(n_ir) * np.exp(-6.9 * t / t60)      # −60 dB at t60
    ir[0] = 0.0
    ir /= max(np.sqrt(np.sum(ir ** 2)), 1e-12)
    size = 1 << int(np.ceil(np.log2(len(x) + n_ir)))
    wet = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)[:len(x)]
    mix = rng.uniform(0.1, 0.5)
    y = (1 - mix) * x + mix * wet * (rms(x) / max(rms(wet), 1e-12))
    return _f32(y)


def mix_clips(a: np.ndarray, b: np.ndarray, rng: np.random.Generator,
              snr_db: tuple[float, float]) -> np.ndarray:
    """``a`` plus ``b`` (fit to ``a``'s length) at a random level ratio in ``snr_db``."""
    b = _fit(b, len(a))
    ra, rb = rms(a), rms(b)
    if ra < 1e-8 or rb < 1e-8:
        return _f32(a + b)
    y = a + b * (ra / rb) / 10 ** (rng.uniform(*snr_db) / 20)
    peak = float(np.max(np.abs(y)))
    return _f32(y / peak * 0.99 if peak > 0.99 else y)


class ChannelAugment:
    """Applies the channel augmentations of ``config`` in a fixed order with their probabilities."""

    def __init__(self, config: AugmentConfig) -> None:
        self.config = config

    def __call__(self, x: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
        c = self.config
        y = _f32(x)
        if c.reverb > 0 and rng.random() < c.reverb:
            y = synthetic_reverb(y, sr, rng, c.reverb_rt60)
        if c.band_limit > 0 and rng.random() < c.band_limit:
            y = band_limit(y, sr, rng)
        if c.noise > 0 and rng.random() < c.noise:
            y = add_noise(y, rng, c.noise_snr_db)
        if c.loudness > 0 and rng.random() < c.loudness:
            y = loudness(y, rng, c.loudness_dbfs)
        if c.gain_db > 0:
            y = gain(y, rng, c.gain_db)
        if c.codec > 0 and rng.random() < c.codec:
            y = codec_round_trip(y, sr, rng)
        return y
