"""Audio files written by FFmpeg's own encoders (through PyAV), for the tests and benchmarks of
the formats libsndfile does not read: AAC in M4A or raw ADTS, ALAC, WavPack, raw AC-3 / E-AC-3,
MP2 and AMR streams."""
from __future__ import annotations

import fractions
from pathlib import Path
from typing import Any

import numpy as np

#: the sample format each encoder is given (else its first: WavPack's is 8-bit)
SAMPLE_FORMATS = {"aac": "fltp", "alac": "s16p", "wavpack": "s16p", "ac3": "fltp", "eac3": "fltp",
                  "mp2": "s16", "libopencore_amrnb": "s16"}
#: FFmpeg's format name for a codec's raw stream where the file's suffix does not say it
#: (E-AC-3 in a file named ``.ac3``, as E-AC-3 rips often are)
RAW_MUXERS = {"eac3": "eac3"}


def encode(path: Path, codec: str, signal: np.ndarray, rate: int, *, timestamps: bool = True,
           container: str | None = None, options: dict[str, str] | None = None,
           tags: dict[str, str] | None = None, bit_rate: int | None = None,
           codec_options: dict[str, str] | None = None) -> Path:
    """``signal`` ((n,) mono or (channels, n), float in [-1, 1]) written to ``path`` by FFmpeg's
    ``codec`` encoder, 1024 frames at a time. ``timestamps``: frames carry their pts, so the
    encoder's priming is marked (a negative first timestamp: an M4A's edit list, as encoders
    that write M4A files mark it); ``container``: FFmpeg's format name where the suffix does not
    say it ("adts", "ipod"; :data:`RAW_MUXERS` by default); ``options``: the muxer's; ``tags``:
    container metadata; ``bit_rate``: the encoder's (bits a second); ``codec_options``: the
    encoder's own (AMR's ``{"dtx": "1"}``)."""
    import av
    signal = np.atleast_2d(signal)
    layout = "stereo" if len(signal) == 2 else "mono"
    sample_format = SAMPLE_FORMATS[codec]
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=container or RAW_MUXERS.get(codec), options=options or {}) as out:
        out.metadata.update(tags or {})
        stream = out.add_stream(codec, rate=rate, layout=layout, options=codec_options or {})
        if bit_rate is not None:
            stream.codec_context.bit_rate = bit_rate
        stream.codec_context.format = sample_format
        for i in range(0, signal.shape[1], 1024):
            chunk = signal[:, i:i + 1024]
            if sample_format in ("s16", "s16p"):
                chunk = np.round(chunk * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=sample_format, layout=layout)
            frame.sample_rate = rate
            if timestamps:
                frame.pts, frame.time_base = i, fractions.Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def seek_signal(rate: int, seconds: float, channels: int = 2, seed: int = 7) -> np.ndarray:
    """(channels, n) float32 for seek tests: a rising tone, bursts of noise, a click every second."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    x = 0.2 * np.sin(2 * np.pi * (300 + 25 * t) * t) + 0.1 * rng.standard_normal(len(t)) * (np.sin(3 * t) > 0.5)
    x[(t % 1.0) < 0.002] = 0.9
    return np.tile(x, (channels, 1)).astype(np.float32)


class CountedContainer:
    """An FFmpeg container (PyAV's) counting into ``counts`` the frames it decodes and, with
    ``demuxed``, the frames its demuxed packets hold (those decoded by a decoder of their own)."""

    def __init__(self, container: Any, counts: list[int], demuxed: bool = False) -> None:
        self._container, self._counts, self._demuxed = container, counts, demuxed

    def decode(self, *a, **kw):
        for frame in self._container.decode(*a, **kw):
            self._counts.append(frame.samples)
            yield frame

    def demux(self, *a, **kw):
        for packet in self._container.demux(*a, **kw):
            rate = packet.stream.codec_context.sample_rate
            if self._demuxed and packet.duration and packet.time_base and rate:
                self._counts.append(round(packet.duration * packet.time_base * rate))
            yield packet

    def __getattr__(self, name: str):
        return getattr(self._container, name)

    def __enter__(self) -> "CountedContainer":
        return self

    def __exit__(self, *exc) -> None:
        self._container.close()


def count_ffmpeg_frames(monkeypatch: Any, demuxed: bool = False) -> list[int]:
    """The frames engine.ffmpeg_audio decodes (and, with ``demuxed``, demuxes) from now on: every
    container it opens is a :class:`CountedContainer`."""
    import engine.ffmpeg_audio as ffmpeg_audio
    counts: list[int] = []
    real = ffmpeg_audio._open
    monkeypatch.setattr(ffmpeg_audio, "_open", lambda av, source: CountedContainer(real(av, source), counts, demuxed))
    return counts
