"""Raw streams' lengths: FFmpeg's guess from the bit rate against the frames counted by demuxing
(engine.ffmpeg_audio), and what the count costs when a file is opened.

Run by hand:  .venv/bin/python benchmarks/raw_stream_lengths.py [--minutes 10] [--repeats 3]
For raw AC-3, E-AC-3 (named .ac3), MP2, AMR and ADTS AAC it writes, into a temporary folder, one
encoding at a constant bit rate and two of 2 s at different rates joined end to end (as a tool
that joins takes writes them; for AMR also one with DTX silence first), then prints one JSON
object: per file the seconds FFmpeg's estimate says, the seconds FFmpegSound counts and those
it decodes (the truth); and per format, for a file of ``--minutes`` minutes, the best seconds
to open it with the count against FFmpeg's open alone (the estimate), and their ratio, measured
in this run.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: format → (suffix, encoder, muxer, sample rate, (low, high) bit rates, file header bytes)
FORMATS = {
    "AC-3": (".ac3", "ac3", "ac3", 48000, (64_000, 448_000), 0),
    "E-AC-3": (".ac3", "eac3", "eac3", 48000, (96_000, 640_000), 0),
    "MP2": (".mp2", "mp2", "mp2", 48000, (64_000, 384_000), 0),
    "AMR": (".amr", "libopencore_amrnb", "amr", 8000, (4750, 12200), 6),
    "ADTS AAC": (".aac", "aac", "adts", 48000, (32_000, 256_000), 0),
}


def has_encoder(codec: str) -> bool:
    """Whether PyAV's FFmpeg can encode ``codec``."""
    try:
        av.codec.Codec(codec, "w")
    except (av.codec.codec.UnknownCodecError, ValueError):
        return False
    return True


def encode(path: Path, codec: str, muxer: str, signal: np.ndarray, rate: int, bit_rate: int,
           options: dict[str, str] | None = None) -> Path:
    """Mono ``signal`` written to ``path`` by FFmpeg's ``codec`` encoder at ``bit_rate`` into the
    raw stream format ``muxer`` (tests.ffmpeg_files.encode)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.ffmpeg_files import encode as ffmpeg_encode
    return ffmpeg_encode(path, codec, signal, rate, timestamps=False, container=muxer, bit_rate=bit_rate,
                         codec_options=options)


def lengths(path: Path) -> dict[str, float]:
    """FFmpeg's estimate, FFmpegSound's frames and the frames it decodes of ``path``, in seconds."""
    import av
    from engine.ffmpeg_audio import FFmpegSound, _container_frames
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        rate = stream.codec_context.sample_rate
        estimate = _container_frames(c, stream, rate) / rate
    with FFmpegSound(str(path)) as f:
        counted, decoded = f.frames / f.samplerate, len(f.read(dtype="float32")) / f.samplerate
    return {"estimate_s": round(estimate, 3), "counted_s": round(counted, 3), "decoded_s": round(decoded, 3)}


def open_times(path: Path, repeats: int) -> dict[str, float]:
    """Best seconds to open ``path`` as FFmpegSound (with the count), as FFmpeg alone (its
    estimate) and to decode it whole (what counting by decoding would cost), interleaved."""
    import av
    from engine.ffmpeg_audio import FFmpegSound
    best = {"ffmpegsound_open_s": float("inf"), "ffmpeg_open_s": float("inf"), "decode_whole_s": float("inf")}
    for _ in range(repeats):
        t = time.perf_counter()
        with FFmpegSound(str(path)):
            pass
        best["ffmpegsound_open_s"] = min(best["ffmpegsound_open_s"], time.perf_counter() - t)
        t = time.perf_counter()
        with av.open(str(path)) as c:
            c.streams.audio[0].duration
        best["ffmpeg_open_s"] = min(best["ffmpeg_open_s"], time.perf_counter() - t)
        t = time.perf_counter()
        with av.open(str(path)) as c:
            sum(f.samples for f in c.decode(c.streams.audio[0]))
        best["decode_whole_s"] = min(best["decode_whole_s"], time.perf_counter() - t)
    best["open_over_ffmpeg_open"] = best["ffmpegsound_open_s"] / best["ffmpeg_open_s"]
    best["open_over_decode_whole"] = best["ffmpegsound_open_s"] / best["decode_whole_s"]
    return {k: round(v, 4) for k, v in best.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the file timed when opened")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    report: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, (suffix, codec, muxer, rate, (low, high), header) in FORMATS.items():
            if not has_encoder(codec):       # PyAV 18.1.1's wheel has no OpenCORE: no AMR encoder
                print(f"{name}: left out, PyAV {av.__version__}'s FFmpeg has no {codec} encoder", file=sys.stderr)
                continue
            def noise(seconds: float) -> np.ndarray:
                return (0.3 * rng.standard_normal(int(seconds * rate))).astype(np.float32)
            stem = folder / name.replace(" ", "_")
            a = encode(stem.with_name(stem.name + "_low" + suffix), codec, muxer, noise(2), rate, low)
            b = encode(stem.with_name(stem.name + "_high" + suffix), codec, muxer, noise(2), rate, high)
            files = {"constant 4 s": encode(stem.with_name(stem.name + "_const" + suffix), codec, muxer,
                                            noise(4), rate, high)}
            for label, (x, y) in (("low then high, 4 s", (a, b)), ("high then low, 4 s", (b, a))):
                joined = stem.with_name(f"{stem.name}_{label[:3]}_{label[9:13]}{suffix}")
                joined.write_bytes(x.read_bytes() + y.read_bytes()[header:])
                files[label] = joined
            if codec == "libopencore_amrnb":
                quiet_first = np.concatenate([np.zeros(2 * rate, np.float32), noise(2)])
                files["DTX, quiet then loud, 4 s"] = encode(stem.with_name(stem.name + "_dtx" + suffix), codec,
                                                             muxer, quiet_first, rate, high, {"dtx": "1"})
            report[name] = {label: lengths(path) for label, path in files.items()}
            long = encode(stem.with_name(stem.name + "_long" + suffix), codec, muxer, noise(args.minutes * 60),
                          rate, high)
            report[name][f"open, {args.minutes:g} min"] = open_times(long, args.repeats)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
