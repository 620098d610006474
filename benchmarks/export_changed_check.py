"""What checking that each result's file is as it was indexed costs an export (run by hand).

engine.export leaves out a result whose file changed since it was indexed: one stat a result,
compared with the size and modification time the hit carries (engine.export.changed_since_indexed,
the indexer's rule; nothing is read or hashed). This writes FILES short WAVs into a temporary
folder, makes one whole-file hit of each, and times ``export_hits`` of them all with the check
(hits carrying their state) and without it (hits carrying none, as hand-made ones), in
alternating rounds, each into a new folder, then the checks alone; it prints the medians and
their ratio, measured in one run::

    .venv/bin/python benchmarks/export_changed_check.py [--files 1000] [--rounds 3] [--seconds 0.5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SR = 16_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=0.5, help="length of each file")
    args = ap.parse_args()

    from engine.export import changed_since_indexed, export_hits, indexed_state
    from engine.file_state import state_now
    from engine.query import Hit

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="soundsift-bench-") as tmp:
        lib = Path(tmp) / "lib"
        lib.mkdir()
        checked = []
        for i in range(args.files):
            path = lib / f"sound_{i:05d}.wav"
            sf.write(path, rng.uniform(-0.3, 0.3, int(args.seconds * SR)).astype("float32"), SR)
            size, mtime_ns = state_now(path)
            checked.append(Hit(path=str(path), start=0.0, end=args.seconds, score=0.5, file_id=i + 1,
                               segment_id=i + 1, duration=args.seconds, format="WAV", sample_rate=SR,
                               size=size, mtime_ns=mtime_ns))
        unchecked = [replace(h, size=None, mtime_ns=None) for h in checked]

        def run(hits: list, n: int) -> float:
            t = time.perf_counter()
            result = export_hits(hits, Path(tmp) / f"out_{n}")
            took = time.perf_counter() - t
            assert len(result.written) == len(hits), result.failed[:3]
            return took

        run(checked, -1), run(unchecked, -2)                  # warm both paths
        with_check, without = [], []
        for r in range(args.rounds):                          # alternating which goes first
            for hits, times in ((checked, with_check), (unchecked, without))[::1 if r % 2 == 0 else -1]:
                times.append(run(hits, len(with_check) + len(without)))
        t = time.perf_counter()
        for _ in range(args.rounds):
            assert all(changed_since_indexed(h.path, indexed_state(h)) is None for h in checked)
        checks = (time.perf_counter() - t) / args.rounds
    a, b = statistics.median(with_check), statistics.median(without)
    print(f"{args.files} whole-file results of {args.seconds:g} s ({int(args.seconds * SR) * 4 + 44:,} bytes each)")
    print(f"export with the check {a:.3f} s, without {b:.3f} s, ratio {a / b:.3f} (median of {args.rounds} rounds)")
    print(f"the {args.files} checks alone: {checks * 1000:.1f} ms ({checks / a * 100:.1f} % of the export)")


if __name__ == "__main__":
    main()
