"""Waveform thumbnail benchmark (run by hand): a result card's thumbnail of long files, before
and after sampling long files and keeping each file's envelope across moments.

    .venv/bin/python benchmarks/thumbnails.py [FILE ...] [--before-rev 1baf695] [--minutes 10] [--m4a]

"Before" is ``ui/components/thumbnails.py`` as of ``--before-rev`` (loaded from git, so both run
in this process on the same page cache); "after" is the working tree's. For each file it prints
the time of the first thumbnail (the card of one moment), of a second moment of the same file
(after: the columns under that moment read in full, ~10 s of audio), and their before/after
ratios, plus how far the sampled envelope (without any moment's columns) strays from the exact
one: mean and largest |difference| per column, as a fraction of the file's peak (a large
largest difference is a short event the sampling stepped over; under a card's own moment it
is read in full and shows). Without FILE it uses the long files
of an audit library in /tmp/longaudit/lib/long if there, else writes a ``--minutes`` 96 kHz
6-channel 24-bit WAV in a temporary folder (with ``--m4a``, a 44.1 kHz stereo AAC M4A, which
FFmpeg decodes: compare it with ``--before-rev`` at a revision that read such files whole, e.g.
1eb0931). The files are read once before timing, so the
numbers are for a warm page cache; a cold disk makes "before" (the whole file) much slower and
"after" (about 1,300 short reads) somewhat slower.
"""
from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AUDIT_FILES = "/tmp/longaudit/lib/long/*"


def old_module(rev: str):
    """ui/components/thumbnails.py at ``rev``, as a module of its own."""
    src = subprocess.run(["git", "show", f"{rev}:ui/components/thumbnails.py"], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="thumb_before_")) / "thumbnails_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("thumbnails_before", path)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
    finally:
        path.unlink()
        path.parent.rmdir()
    return mod


def make_wav(folder: str, minutes: float) -> str:
    """A ``minutes`` 96 kHz 6-channel 24-bit WAV of quiet noise with a loud burst every minute."""
    sr, ch = 96000, 6
    path = os.path.join(folder, f"bench_{minutes:g}min_96k_6ch_24bit.wav")
    rng = np.random.default_rng(0)
    with sf.SoundFile(path, "w", sr, ch, subtype="PCM_24", format="RF64") as f:
        for second in range(int(minutes * 60)):
            x = (0.02 * rng.standard_normal((sr, ch))).astype(np.float32)
            if second % 60 == 30:
                x *= 25
            f.write(x)
    return path


def make_m4a(folder: str, minutes: float) -> str:
    """A ``minutes`` 44.1 kHz stereo AAC M4A (FFmpeg's encoder, through PyAV) of quiet noise with
    a loud tone for a second every minute."""
    import fractions

    import av
    sr = 44100
    path = os.path.join(folder, f"bench_{minutes:g}min_44k_stereo_aac.m4a")
    rng = np.random.default_rng(0)
    with av.open(path, "w") as out:
        stream = out.add_stream("aac", rate=sr, layout="stereo")
        stream.codec_context.format = "fltp"
        for second in range(int(minutes * 60)):
            x = 0.02 * rng.standard_normal(sr)
            if second % 60 == 30:
                x += 0.8 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)
            pair = np.stack([x, 0.5 * x]).astype(np.float32)
            for i in range(0, sr, 1024):       # the last frame of a second is short: timestamps keep it in place
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(pair[:, i:i + 1024]), format="fltp",
                                                   layout="stereo")
                frame.sample_rate, frame.pts, frame.time_base = sr, second * sr + i, fractions.Fraction(1, sr)
                for packet in stream.encode(frame):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def warm(path: str) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*")
    ap.add_argument("--before-rev", default="1baf695", help="git revision of the 'before' code")
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the generated WAV")
    ap.add_argument("--no-warm", action="store_true", help="do not read each file before timing")
    ap.add_argument("--m4a", action="store_true", help="generate an AAC M4A (read by FFmpeg) instead of the WAV")
    args = ap.parse_args()

    files = args.files or sorted(p for p in glob.glob(AUDIT_FILES) if not p.endswith(".cue"))
    tmp = None
    if not files:
        tmp = tempfile.TemporaryDirectory(prefix="thumb_bench_")
        kind = "44.1 kHz stereo AAC M4A" if args.m4a else "96 kHz 6-channel 24-bit WAV"
        print(f"writing a {args.minutes:g}-minute {kind} in {tmp.name} …")
        files = [(make_m4a if args.m4a else make_wav)(tmp.name, args.minutes)]

    before = old_module(args.before_rev)
    from engine.audio import probe
    from ui.components import thumbnails as after

    print(f"before: thumbnails.py at {args.before_rev}; after: working tree")
    print(f"{'file':44} {'size':>8} {'dur':>7} | {'before':>8} {'2nd':>8} | {'after':>7} {'2nd':>7} | "
          f"{'ratio':>6} {'2nd':>8} | {'mean|d|':>7} {'max|d|':>7}")
    try:
        for path in files:
            dur = probe(path).duration                        # FFmpeg's formats too
            if not args.no_warm:
                warm(path)
            a, b = 0.25 * dur, 0.75 * dur                      # two moments of the same file
            t_b1, exact = timed(before.envelope, path)
            t_b1 += timed(before.render_png, exact, highlight=(a / dur, (a + 10) / dur))[0]
            t_b2, _ = timed(before.waveform_png, path, dur, b, b + 10)
            after._CACHE.clear()
            t_a1, _ = timed(after.waveform_png, path, dur, a, a + 10)
            t_a2, _ = timed(after.waveform_png, path, dur, b, b + 10)
            sampled = after.envelope(path)                    # as sampled, before any moment's columns
            peak = max(float(np.abs(exact).max()), 1e-9)
            d = np.abs(sampled - exact) / peak
            print(f"{os.path.basename(path)[:44]:44} {os.path.getsize(path) / 1e9:7.2f}G {dur:6.0f}s | "
                  f"{t_b1:7.2f}s {t_b2:7.2f}s | {t_a1:6.3f}s {t_a2:6.3f}s | "
                  f"{t_b1 / t_a1:5.0f}x {t_b2 / t_a2:7.0f}x | {d.mean():7.3f} {d.max():7.3f}", flush=True)
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
