"""Audio files written by FFmpeg's own encoders (through PyAV), for the tests and benchmarks of
the formats libsndfile does not read: AAC in M4A or raw ADTS, ALAC, WavPack, raw AC-3 / E-AC-3,
MP2 and AMR streams."""
from __future__ import annotations

import fractions
from pathlib import Path

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
