"""An Ogg Opus file whose granule positions start past 0, read both ways engine.audio can: by
libsndfile after a seek to its start (the first choice since session 37) and by FFmpeg (before:
at 48 kHz, whatever rate the encoder was given), in one run.

Run by hand:  .venv/bin/python benchmarks/offset_opus.py [--seconds 60] [--repeats 3]
A recording (a chord, a little noise and a click every second), stereo, is encoded by libopus
through PyAV at 16 and 48 kHz with its timestamps starting at 1,105 (an MP3's priming), then
decoded to 16 kHz mono by engine.audio.decode, as the indexer reads it, in a fresh process per
route and rate: FFmpeg's route is taken there by making libsndfile's seek fail (what sends a
file to FFmpeg now). Prints one JSON object: per rate and route the best seconds of ``repeats``,
× real time, how far resident memory rose (its peak, Linux's VmHWM, over where it was) in a
first decode of a 1 s file by the same route after the imports (the decoder's libraries
loaded: PyAV's FFmpeg is imported when a file first needs it) and then in decoding the long
file, and per rate FFmpeg's seconds over libsndfile's.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: where the frames' timestamps start (an MP3's priming at 44.1 kHz)
LATER_START = 1105


def recording(seconds: float, rate: int) -> np.ndarray:
    """(2, n) float32: a chord, a little noise and a click every second."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220, 277, 330))
    x = np.stack([chord, np.roll(chord, rate // 100)]) + 0.02 * rng.standard_normal((2, t.size))
    x[:, ::rate] += 0.5
    return np.clip(x, -1, 1).astype(np.float32)


def write_opus(path: Path, x: np.ndarray, rate: int) -> Path:
    """``x`` (2, n) as Ogg Opus by libopus, its timestamps from :data:`LATER_START`."""
    import fractions

    import av
    with av.open(str(path), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=rate, layout="stereo")
        stream.codec_context.format = "flt"
        for i in range(0, x.shape[1], 960):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i:i + 960].T.reshape(1, -1)),
                                               format="flt", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = rate, LATER_START + i, fractions.Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def child(route: str, path: str, warm: str, repeats: int) -> None:
    """Decode ``path`` by ``route`` ``repeats`` times; print the best seconds, the decoder and the
    peak memory it added (KB) as JSON."""
    import soundfile as sf

    from engine.audio import decode, open_sound
    if route == "ffmpeg":
        def refused(self, frames, whence=0):
            raise sf.LibsndfileError(0, "benchmark: FFmpeg's route")
        sf.SoundFile.seek = refused
    first = peak_added_kb(lambda: decode(warm, 16000))
    long = peak_added_kb(lambda: decode(path, 16000))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        decode(path, 16000)
        best = min(best, time.perf_counter() - t)
    with open_sound(path) as f:
        decoder, rate = type(f).__name__, int(f.samplerate)
    print(json.dumps({"seconds": best, "decoder": decoder, "decoded_at": rate, "first_kb": first, "added_kb": long}))


def _status_kb(field: str) -> int:
    """A ``/proc/self/status`` field in KB (VmRSS: resident now; VmHWM: its peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def peak_added_kb(run) -> int:
    """How far resident memory rose above where it was while ``run()`` ran (Linux: the peak is
    reset first through ``/proc/self/clear_refs``)."""
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kb("VmRSS")
    run()
    return _status_kb("VmHWM") - before


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", nargs=3, metavar=("ROUTE", "PATH", "WARM"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child, args.repeats)
        return
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rate in (16000, 48000):
            path = write_opus(Path(tmp) / f"late_{rate}.opus", recording(args.seconds, rate), rate)
            warm = write_opus(Path(tmp) / f"warm_{rate}.opus", recording(1.0, rate), rate)
            runs = {}
            for route in ("libsndfile", "ffmpeg"):
                got = subprocess.run([sys.executable, __file__, "--repeats", str(args.repeats), "--child", route,
                                      str(path), str(warm)], cwd=ROOT, check=True, capture_output=True, text=True)
                runs[route] = json.loads(got.stdout.strip().splitlines()[-1])
            out[f"{rate} Hz"] = {**{route: {"seconds": round(r["seconds"], 4),
                                             "x_realtime": round(args.seconds / r["seconds"], 1),
                                             "decoder": r["decoder"], "decoded_at_hz": r["decoded_at"],
                                             "first_decode_peak_memory_mb": round(r["first_kb"] / 1024, 1),
                                             "long_decode_peak_memory_mb": round(r["added_kb"] / 1024, 1)}
                                     for route, r in runs.items()},
                                  "ffmpeg_over_libsndfile_seconds": round(runs["ffmpeg"]["seconds"]
                                                                          / runs["libsndfile"]["seconds"], 2)}
    print(json.dumps({"seconds_of_audio": args.seconds, "repeats": args.repeats, "rates": out}, indent=1))


if __name__ == "__main__":
    main()
