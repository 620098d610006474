"""What moving to an exact frame costs in a long Ogg file (run by hand).

    .venv/bin/python benchmarks/exact_seek.py [--minutes 60] [--at 59] [--subtype VORBIS|OPUS]
                                              [--rate 44100] [--channels 2] [--repeats 3] [--keep DIR]
                                              [--export-before-rev 1eb0931]

libsndfile's seek in an Ogg file is not sample-exact (engine.audio.EXACT_SEEK_FORMATS), so
:func:`engine.audio.go_to_frame` seeks :data:`engine.audio.SEEK_PREROLL_SECONDS` early and reads
up to the frame asked for. This writes a ``--minutes`` long recording (a chirp and noise, one
minute at a time), then times the page player's excerpt (ui.components.player.wav_excerpt: 30 s
from ``--at`` minutes) moved there by a plain seek (session 30's rule), a read from the start
(exact, and what the rule is checked against) and go_to_frame, ``repeats`` times each,
interleaved; prints one JSON object: the best seconds of each, their ratios to the seek
(measured in this run), and how far each excerpt was from the exact one (largest sample
difference), there and at :data:`TAIL_SECONDS` before the end. It also times the last
:data:`PART_BYTES` of an export of the whole recording (``excerpt_stream(...).part``, an HTTP
range of the "download the span" WAV) by engine/export.py as of ``--export-before-rev`` (its
blocks read on from the excerpt's start, up to the part) and as now (go_to_frame from where the
file is: a seek 2 s early), and how many 16-bit steps their bytes differ by.
"""
from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import soundfile as sf

import engine.export as export
import ui.components.player as player
from engine.audio import go_to_frame, skip_frames
from revision_module import module_at

ROOT = Path(__file__).resolve().parent.parent
#: the bytes of the export's range timed (its last ones)
PART_BYTES = 1 << 20

#: the excerpt also compared (untimed) at these seconds before the end: an Ogg Vorbis file's
#: last page (its last 0.02–0.4 s), where libsndfile's seek lands late
TAIL_SECONDS = (0.3, 0.1, 0.03, 0.01)

#: frames written after the whole minutes (most files do not end on a codec block)
ODD_END = 16111


def write_long(path: Path, minutes: int, rate: int, channels: int, subtype: str) -> float:
    """A chirp-and-noise Ogg recording written one minute at a time; returns seconds taken."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", rate, channels, format="OGG", subtype=subtype) as f:
        for minute in range(minutes + 1):                 # and a last odd piece, as a real file ends
            t = np.arange(60 * rate if minute < minutes else ODD_END) / rate
            f0 = 100 + 10 * (minute % 200)
            x = 0.3 * np.sin(2 * np.pi * (f0 * t + 20 * t * t)) + 0.02 * rng.standard_normal(len(t))
            data = np.stack([x, 0.5 * x, x, 0.5 * x][:channels], 1).astype(np.float32)
            for i in range(0, len(data), 1 << 16):        # in blocks: libsndfile's Vorbis encoder
                f.write(data[i:i + (1 << 16)])            # crashes on a minute at once
    return time.perf_counter() - t0


def seek_before(f: Any, frame: int, block: int = 1 << 16) -> None:
    """go_to_frame as it was in session 30: a seek unless the file is an MP3."""
    if getattr(f, "format", None) == "MP3":
        skip_frames(f, frame, block)
    else:
        f.seek(frame)


def read_from_start(f: Any, frame: int, block: int = 1 << 16) -> None:
    """Exact by definition: every frame before it read and thrown away."""
    skip_frames(f, frame, block)


@contextmanager
def player_moving_by(move: Any) -> Iterator[None]:
    """The page player moving to its excerpt's first frame by ``move``."""
    kept = player.go_to_frame
    player.go_to_frame = move
    try:
        yield
    finally:
        player.go_to_frame = kept


def preview(path: Path, start: float, move: Any) -> tuple[float, np.ndarray]:
    """(seconds taken, samples) of the player's 30 s excerpt from ``start`` moved by ``move``."""
    with player_moving_by(move):
        t0 = time.perf_counter()
        wav = player.wav_excerpt(str(path), start, player.EXCERPT_SECONDS)
        took = time.perf_counter() - t0
    return took, sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)[0]


def old_export(rev: str) -> Any:
    """engine/export.py at ``rev``, as a module of its own (importing today's engine.audio …)."""
    return module_at(rev, "engine/export.py", "export_before")


def last_part(module: Any, path: Path, end: float) -> tuple[float, bytes]:
    """(seconds taken, bytes) of the last :data:`PART_BYTES` of ``module``'s export of all of ``path``."""
    t0 = time.perf_counter()
    with module.excerpt_stream(path, 0.0, end) as stream:
        data_bytes = stream.length - stream.header_length                  # 16-bit frames (and no pad byte)
        first = stream.header_length + (data_bytes - PART_BYTES) // stream.frame_bytes * stream.frame_bytes
        with stream.part(first, stream.length - 1) as part:
            data = b"".join(part)
    return time.perf_counter() - t0, data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--at", type=float, default=None, help="minutes into the file (default: 1 before its end)")
    ap.add_argument("--subtype", default="VORBIS", choices=["VORBIS", "OPUS"])
    ap.add_argument("--rate", type=int, default=44100, help="Opus: 8000, 12000, 16000, 24000 or 48000")
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="write the recording here and keep it")
    ap.add_argument("--export-before-rev", default="1eb0931",
                    help="git revision of engine/export.py to compare the export's range with")
    args = ap.parse_args()
    at = args.at if args.at is not None else max(0.0, args.minutes - 1.0)
    exports = {"before": old_export(args.export_before_rev), "now": export}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"long_{args.subtype.lower()}_{args.minutes}min.ogg"
        written = (write_long(path, args.minutes, args.rate, args.channels, args.subtype)
                   if not path.exists() else None)                    # --keep's recording, again
        moves = {"seek (session 30)": seek_before, "read from the start": read_from_start,
                 "go_to_frame (now)": go_to_frame}
        times: dict[str, list[float]] = {name: [] for name in moves}
        audio: dict[str, np.ndarray] = {}
        for _ in range(args.repeats):
            for name, move in moves.items():
                took, audio[name] = preview(path, at * 60, move)
                times[name].append(took)
        best = {name: min(t) for name, t in times.items()}
        before, now = best["seek (session 30)"], best["go_to_frame (now)"]
        exact = audio["read from the start"]
        end = sf.info(str(path)).duration
        part_times: dict[str, list[float]] = {name: [] for name in exports}
        parts: dict[str, bytes] = {}
        for _ in range(args.repeats):
            for name, module in exports.items():
                took, parts[name] = last_part(module, path, end)
                part_times[name].append(took)
        steps = np.abs(np.frombuffer(parts["before"], "<i2").astype(int) - np.frombuffer(parts["now"], "<i2")).max()
        tail = {back: {name: _difference(preview(path, end - back, moves[name])[1],
                                         preview(path, end - back, read_from_start)[1])
                       for name in ("seek (session 30)", "go_to_frame (now)")}
                for back in TAIL_SECONDS}
        print(json.dumps({
            "file": {"minutes": args.minutes, "subtype": args.subtype, "rate": args.rate,
                     "channels": args.channels, "bytes": path.stat().st_size, "write_s": written and round(written, 1)},
            "preview_at_min": at, "excerpt_s": player.EXCERPT_SECONDS, "repeats": args.repeats,
            "best_s": {name: round(t, 4) for name, t in best.items()},
            "now_over_seek": round(now / before, 1) if before else None,
            "read_from_start_over_seek": round(best["read from the start"] / before, 1) if before else None,
            "max_abs_diff_from_exact": {name: _difference(audio[name], exact) for name in moves},
            "max_abs_diff_from_exact_s_before_end": tail,
            "export_last_part": {"bytes": PART_BYTES, "before_rev": args.export_before_rev,
                                 "best_s": {name: round(min(t), 4) for name, t in part_times.items()},
                                 "before_over_now": round(min(part_times["before"]) / min(part_times["now"]), 1),
                                 "max_16_bit_steps_apart": int(steps)},
        }, indent=1))


def _difference(a: np.ndarray, b: np.ndarray) -> float | str:
    """The largest sample difference of two excerpts (or their lengths, when those differ)."""
    return float(np.abs(a - b).max()) if a.shape == b.shape else f"lengths {len(a)} and {len(b)}"


if __name__ == "__main__":
    main()
