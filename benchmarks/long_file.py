"""Long-file benchmark (run by hand): index one multi-hour recording, report peak memory.

    .venv/bin/python benchmarks/long_file.py [--hours 3] [--rate 48000] [--channels 2]
                                             [--model NAME_OR_DIR] [--keep DIR]

Writes the recording block by block (never held in memory), then indexes it with
``build_index`` (``--workers 0``: decoded in this process). The default model
is a cheap spectral stand-in (48 kHz, 512-d, 10 s windows like CLAP) so the numbers are
about streaming, not the network; pass ``--model soundsift-base`` for the real one.
Peak RSS is read from the kernel for this process (decoding runs in it by default, so
the figure covers decode, resample, segmenting, embedding and the commit).
"""
from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.models.base import AudioTextModel, l2_normalize
from indexer import build_index


class SpectralModel(AudioTextModel):
    """Log band energies of the first 8192 samples, projected to 512 dims (deterministic)."""

    name = "spectral-stand-in"
    fingerprint = "spectral-stand-in-v1"
    sample_rate = 48000
    dim = 512
    window_seconds = 10.0

    def __init__(self) -> None:
        self._proj = np.random.default_rng(0).standard_normal((64, self.dim)).astype(np.float32)

    def embed_audio(self, waveforms):
        edges = np.linspace(0, 4097, 65).astype(int)
        rows = [np.log1p(np.add.reduceat(np.abs(np.fft.rfft(np.asarray(x[:8192], np.float32), n=8192)),
                                         edges[:-1])) for x in waveforms]
        return l2_normalize(np.asarray(rows, np.float32) @ self._proj)

    def embed_text(self, texts):
        return l2_normalize(np.ones((len(texts), self.dim), np.float32))


def write_long(path: Path, hours: float, rate: int, channels: int) -> float:
    """A chirp-and-noise recording written one minute at a time; returns seconds taken."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    with sf.SoundFile(str(path), "w", rate, channels, subtype="PCM_16") as f:
        for minute in range(int(round(hours * 60))):
            t = np.arange(60 * rate) / rate
            f0 = 100 + 10 * (minute % 200)
            x = 0.3 * np.sin(2 * np.pi * (f0 * t + 20 * t * t)) + 0.02 * rng.standard_normal(len(t))
            f.write(np.repeat(x[:, None], channels, axis=1).astype(np.float32))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=3.0)
    ap.add_argument("--rate", type=int, default=48000)
    ap.add_argument("--channels", type=int, default=2)
    ap.add_argument("--model", default=None, help="a model name/folder (default: the spectral stand-in)")
    ap.add_argument("--workers", type=int, default=0,
                    help="decoder processes (default 0: decode here, so one RSS covers it all)")
    ap.add_argument("--keep", type=Path, default=None, help="folder to write into (default: a temp dir)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        path = root / "long.wav"
        write_s = write_long(path, args.hours, args.rate, args.channels)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        model = args.model if args.model else SpectralModel()
        s = build_index([path], root / "index", model, workers=args.workers, progress=False)
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        from indexer.info import index_info
        model_rate = int(index_info(root / "index")["sample_rate"])
        decoded_mib = args.hours * 3600 * model_rate * 4 / 2**20     # mono float32 at the model's rate
        print(json.dumps({
            "hours": args.hours, "rate": args.rate, "channels": args.channels,
            "file_mib": round(path.stat().st_size / 2**20, 1), "write_s": round(write_s, 1),
            "segments": s.n_segments, "failed": s.failed, "index_s": round(s.seconds, 1),
            "x_realtime": round(s.x_realtime, 1), "timings": s.timings,
            "peak_rss_before_mib": round(rss0 / 1024, 1), "peak_rss_after_mib": round(rss1 / 1024, 1),
            "peak_rss_growth_mib": round((rss1 - rss0) / 1024, 1),
            "whole_file_decoded_would_be_mib": round(decoded_mib, 1),
        }, indent=2))


if __name__ == "__main__":
    main()
