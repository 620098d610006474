"""Decoding speed by format: libsndfile's (WAV, FLAC, MP3, Ogg Vorbis, Ogg Opus) against FFmpeg's
through engine.ffmpeg_audio (M4A with AAC or ALAC, WavPack), all through engine.audio.decode to
16 kHz mono as the indexer reads them. The two Opus files are the same libopus encoding, its
timestamps starting at 0 and at 1,105 (an MP3's priming: "OPUS offset", which libsndfile reads
late as opened, so engine.audio seeks it to its start first; benchmarks/offset_opus.py compares
that with FFmpeg's reading of it).

Run by hand:  .venv/bin/python benchmarks/decoders.py [--seconds 60] [--repeats 3]
The same stereo 44.1 kHz recording (a chord, noise and clicks) is written in each format into a
temporary folder, then decoded ``repeats`` times each, interleaved; prints one JSON object:
per format the best seconds per file, × real time and the ratio to WAV, measured in this run; and
the best seconds of an export of the last second (engine.export.excerpt_wav: a seek near the end)
of the Ogg Opus file and of each file FFmpeg reads, the latter both ways in the
same run: "before", FFmpegSound.seek decoding from the start (its private ``_decode_from_start``),
and "after", by the container's index (AAC's frames checked by a second decoder, and decoded
from the start from where a noise band parts the two: benchmarks/aac_seek.py), with their ratio
and the ratio to libsndfile's Opus.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

SR = 44100


def recording(seconds: float) -> np.ndarray:
    """(2, n) float32: a chord, a little noise and a click every second."""
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(0)
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220, 277, 330))
    x = np.stack([chord, np.roll(chord, 441)]) + 0.02 * rng.standard_normal((2, t.size))
    x[:, ::SR] += 0.5
    return np.clip(x, -1, 1).astype(np.float32)


def write_all(folder: Path, x: np.ndarray) -> dict[str, Path]:
    import soundfile as sf
    out = {}
    for name, fmt, subtype in (("wav", "WAV", "PCM_16"), ("flac", "FLAC", "PCM_16"), ("mp3", "MP3", None),
                               ("ogg", "OGG", "VORBIS")):
        path = folder / f"rec.{name}"
        with sf.SoundFile(str(path), "w", SR, 2, format=fmt, subtype=subtype) as f:
            for i in range(0, x.shape[1], 1 << 16):       # in blocks: libsndfile's Vorbis encoder
                f.write(np.ascontiguousarray(x[:, i:i + (1 << 16)].T))   # crashes on a minute at once
        out[name.upper()] = path
    import soxr
    at_48k = np.ascontiguousarray(soxr.resample(x.T, SR, 48000).T, dtype=np.float32)    # Opus's rate
    for name, start in (("OPUS", 0), ("OPUS offset", 1105)):    # the same encoding, from 0 and offset
        out[name] = folder / f"rec_{start}.opus"
        _encode(out[name], "libopus", "flt", at_48k, rate=48000, start=start, container="ogg")
    for name, suffix, codec, sample_format in (("M4A AAC", ".m4a", "aac", "fltp"),
                                               ("M4A ALAC", "_alac.m4a", "alac", "s16p"),
                                               ("WV", ".wv", "wavpack", "s16p")):
        path = folder / f"rec{suffix}"
        _encode(path, codec, sample_format, x)
        out[name] = path
    return out


def _encode(path: Path, codec: str, sample_format: str, x: np.ndarray, rate: int = SR,
            start: int | None = None, container: str | None = None) -> None:
    """``x`` (2, n) encoded by FFmpeg's ``codec``; ``start``: the frames' timestamps begin there."""
    import fractions

    import av
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="stereo")
        stream.codec_context.format = sample_format
        step = stream.codec_context.frame_size or 1024
        for i in range(0, x.shape[1], step):
            chunk = x[:, i:i + step]
            if sample_format == "s16p":
                chunk = np.round(chunk * 32767).astype(np.int16)
            if sample_format == "flt":                                # interleaved
                chunk = chunk.T.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=sample_format, layout="stereo")
            frame.sample_rate = rate
            if start is not None:
                frame.pts, frame.time_base = start + i, fractions.Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the recording")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from engine.audio import decode
    from engine.export import excerpt_wav
    from engine.ffmpeg_audio import FFmpegSound
    with tempfile.TemporaryDirectory() as tmp:
        files = write_all(Path(tmp), recording(args.seconds))
        best = {name: float("inf") for name in files}
        by_ffmpeg = ("M4A AAC", "M4A ALAC", "WV")
        last = {name: float("inf") for name in ("OPUS", *by_ffmpeg, *(f"{n} before" for n in by_ffmpeg))}
        for _ in range(args.repeats):
            for name, path in files.items():
                t = time.perf_counter()
                decode(path, 16000)
                best[name] = min(best[name], time.perf_counter() - t)
            for name in last:                       # a preview of the last second: a seek near the end
                FFmpegSound._decode_from_start = name.endswith(" before")
                t = time.perf_counter()
                excerpt_wav(files[name.removesuffix(" before")], args.seconds - 1.0, args.seconds)
                last[name] = min(last[name], time.perf_counter() - t)
            FFmpegSound._decode_from_start = False
    print(json.dumps({"seconds_of_audio": args.seconds, "repeats": args.repeats, "formats": {
        name: {"seconds": round(sec, 4), "x_realtime": round(args.seconds / sec, 1),
               "ratio_to_wav": round(sec / best["WAV"], 2)} for name, sec in best.items()},
        "last_second_excerpt": {"OPUS": {"seconds": round(last["OPUS"], 4)}, **{
            name: {"before_seconds": round(last[f"{name} before"], 4), "after_seconds": round(last[name], 4),
                   "before_over_after": round(last[f"{name} before"] / last[name], 2),
                   "after_ratio_to_libsndfile_opus": round(last[name] / last["OPUS"], 2)} for name in by_ffmpeg}}},
        indent=1))


if __name__ == "__main__":
    main()
