"""What moving to an exact frame costs in a long Ogg file (run by hand).

    .venv/bin/python benchmarks/exact_seek.py [--minutes 60] [--at 59] [--subtype VORBIS|OPUS]
                                              [--rate 44100] [--channels 2] [--repeats 3] [--keep DIR]

libsndfile's seek in an Ogg file is not sample-exact (engine.audio.EXACT_SEEK_FORMATS), so
:func:`engine.audio.go_to_frame` seeks :data:`engine.audio.SEEK_PREROLL_SECONDS` early and reads
up to the frame asked for. This writes a ``--minutes`` long recording (a chirp and noise, one
minute at a time), then times the page player's excerpt (ui.components.player.wav_excerpt: 30 s
from ``--at`` minutes) moved there by a plain seek (session 30's rule), a read from the start
(exact, and what the rule is checked against) and go_to_frame, ``repeats`` times each,
interleaved; prints one JSON object: the best seconds of each, their ratios to the seek
(measured in this run), and how far each excerpt was from the exact one (largest sample
difference), there and at :data:`TAIL_SECONDS` before the end.
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

import ui.components.player as player
from engine.audio import go_to_frame, skip_frames

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--at", type=float, default=None, help="minutes into the file (default: 1 before its end)")
    ap.add_argument("--subtype", default="VORBIS", choices=["VORBIS", "OPUS"])
    ap.add_argument("--rate", type=int, default=44100, help="Opus: 8000, 12000, 16000, 24000 or 48000")
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="write the recording here and keep it")
    args = ap.parse_args()
    at = args.at if args.at is not None else max(0.0, args.minutes - 1.0)
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
        }, indent=1))


def _difference(a: np.ndarray, b: np.ndarray) -> float | str:
    """The largest sample difference of two excerpts (or their lengths, when those differ)."""
    return float(np.abs(a - b).max()) if a.shape == b.shape else f"lengths {len(a)} and {len(b)}"


if __name__ == "__main__":
    main()
