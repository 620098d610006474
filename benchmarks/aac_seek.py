"""An excerpt of a long M4A's AAC: a seek by the container's index against decoding from the start.

    .venv/bin/python benchmarks/aac_seek.py [--minutes 60] [--at 50] [--length 10] [--repeats 3] [--keep DIR]

Writes a ``--minutes`` long 44.1 kHz stereo recording (a chirp and a little noise, a minute at a
time) as M4As by FFmpeg's AAC encoder: with no band coded as noise (``aac_pns`` off) and as the
encoder codes it by default (noise bands, PNS, whose samples only a decode from the start gives:
engine.ffmpeg_audio.CHECKED_CODECS; few in this recording); and, as the encoder codes it by
default at 48 kbit/s, the chirp under loud noise (noise bands in most frames: the worst case,
where the two decoders soon part). Then times engine.export.excerpt_wav (the
export of a search result's span, ``search --export``; the page's player reads as it does) of
``--length`` seconds from ``--at`` minutes, ``repeats`` times each, interleaved: "before",
FFmpegSound.seek decoding from the start (its private ``_decode_from_start``), and "after", by
the container's index with every frame checked by a second decoder (back to the start where
the two part). Prints one JSON object: per file the best seconds of each, their ratio measured in
this run, and whether the two excerpts are the same bytes.
"""
from __future__ import annotations

import argparse
import fractions
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.export import excerpt_wav
from engine.ffmpeg_audio import FFmpegSound

SR = 44100
#: the files written: the encoder's options, its bit rate (None: its default) and how loud the
#: noise under the chirp is
FILES = {"chirp, no noise bands (aac_pns off)": ({"aac_pns": "0"}, None, 0.02),
         "chirp, encoder's default": ({}, None, 0.02),
         "chirp under loud noise, 48 kbit/s (noise bands)": ({}, 48000, 0.1)}


def write_m4a(path: Path, minutes: int, options: dict[str, str], bit_rate: int | None, noise: float) -> float:
    """A stereo M4A of a chirp and ``noise`` (its level) by FFmpeg's AAC encoder given ``options``
    and ``bit_rate``, a minute at a time; seconds taken."""
    import av
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=SR, layout="stereo", options=options)
        stream.codec_context.format = "fltp"
        if bit_rate:
            stream.codec_context.bit_rate = bit_rate
        for minute in range(minutes):
            t = np.arange(60 * SR) / SR
            x = 0.3 * np.sin(2 * np.pi * ((100 + 10 * minute) * t + 20 * t * t)) + noise * rng.standard_normal(len(t))
            x = np.stack([x, 0.5 * x]).astype(np.float32)
            for i in range(0, x.shape[1], 1024):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[:, i:i + 1024]), format="fltp", layout="stereo")
                frame.sample_rate = SR
                frame.pts, frame.time_base = minute * 60 * SR + i, fractions.Fraction(1, SR)
                for packet in stream.encode(frame):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return time.perf_counter() - t0


def excerpt(path: Path, start: float, end: float, from_start: bool) -> tuple[float, bytes]:
    """(seconds taken, WAV bytes) of the export's excerpt, sought from the start or by the index."""
    FFmpegSound._decode_from_start = from_start
    try:
        t0 = time.perf_counter()
        data = excerpt_wav(path, start, end)[0]
        return time.perf_counter() - t0, data
    finally:
        FFmpegSound._decode_from_start = False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--at", type=float, default=None, help="minutes into the file (default: 5/6 of it)")
    ap.add_argument("--length", type=float, default=10.0, help="seconds of the excerpt")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="write the recordings here and keep them")
    args = ap.parse_args()
    at = args.at if args.at is not None else args.minutes * 5 / 6
    start, end = at * 60, at * 60 + args.length
    report: dict[str, object] = {"minutes": args.minutes, "at_min": at, "length_s": args.length,
                                 "repeats": args.repeats, "files": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for number, (name, (options, bit_rate, noise)) in enumerate(FILES.items()):
            path = folder / f"long_{number}_{args.minutes}min.m4a"
            written = write_m4a(path, args.minutes, options, bit_rate, noise) if not path.exists() else None
            best = {"before": float("inf"), "after": float("inf")}
            data: dict[str, bytes] = {}
            for _ in range(args.repeats):
                for way in best:
                    took, data[way] = excerpt(path, start, end, from_start=way == "before")
                    best[way] = min(best[way], took)
            report["files"][name] = {
                "bytes": path.stat().st_size, "write_s": written and round(written, 1),
                "best_s": {way: round(s, 4) for way, s in best.items()},
                "before_over_after": round(best["before"] / best["after"], 1),
                "same_bytes": data["before"] == data["after"]}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
