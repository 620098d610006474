"""What finding the links of an Ogg file costs (engine.ogg_chain.ogg_links, run once per file
version when engine.audio opens an Ogg file), against decoding it, in one run.

Run by hand:  .venv/bin/python benchmarks/ogg_chains.py [--seconds 60 600] [--repeats 5]
For each length, an ordinary (unchained) stereo 44.1 kHz Ogg Vorbis file and a 48 kHz Ogg Opus
file written by libsndfile are scanned (page headers only, the file in the OS's cache: it has
just been written) and decoded to 16 kHz mono by engine.audio.decode, as the indexer reads
them; and the Vorbis file chained to itself (``cat a a``: two links) is decoded against the
two links decoded one after the other. Prints one JSON object: per file its bytes, about how
many pages it has, the best seconds of the scan (of ``repeats``) and of the decode (of half as
many), and scan over decode; for the chain, its decode over its links'.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf


def recording(seconds: float, rate: int) -> np.ndarray:
    """(n, 2) float32: a chord, a little noise and a click every second."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    chord = sum(0.1 * np.sin(2 * np.pi * f * t) for f in (220, 277, 330))
    x = np.stack([chord, np.roll(chord, rate // 100)], axis=1) + 0.02 * rng.standard_normal((t.size, 2))
    x[::rate] += 0.5
    return np.clip(x, -1, 1).astype(np.float32)


def write(path: Path, seconds: float, rate: int, subtype: str) -> Path:
    """A recording as Ogg ``subtype`` by libsndfile, in blocks (its Vorbis encoder crashes on a
    minute at once)."""
    x = recording(seconds, rate)
    with sf.SoundFile(str(path), "w", rate, 2, format="OGG", subtype=subtype) as f:
        for i in range(0, len(x), 1 << 16):
            f.write(x[i:i + (1 << 16)])
    return path


def best_of(run, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t)
    return best


def pages(path: Path) -> int:
    """About how many pages the file has (its capture patterns)."""
    return path.read_bytes().count(b"OggS")


def scan(path: Path) -> int:
    """ogg_links as engine.audio runs it on a file (unbuffered reads of each page's header)."""
    from engine.ogg_chain import ogg_links
    with open(path, "rb", buffering=0) as raw:
        return len(ogg_links(raw, path.stat().st_size))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, nargs="+", default=[60.0, 600.0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    from engine.audio import decode
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.seconds:
            for subtype, rate in (("VORBIS", 44100), ("OPUS", 48000)):
                path = write(Path(tmp) / f"{subtype.lower()}_{int(seconds)}.ogg", seconds, rate, subtype)
                assert scan(path) == 1
                scanned = best_of(lambda: scan(path), args.repeats)
                decoded = best_of(lambda: decode(path, 16000), max(1, args.repeats // 2))
                out[f"{subtype} {seconds:g} s"] = {
                    "bytes": path.stat().st_size, "pages_about": pages(path), "scan_seconds": round(scanned, 5),
                    "decode_seconds": round(decoded, 4), "scan_over_decode": round(scanned / decoded, 5)}
                if subtype == "VORBIS" and seconds == args.seconds[0]:
                    chained = Path(tmp) / "chained.ogg"
                    chained.write_bytes(path.read_bytes() * 2)
                    assert scan(chained) == 2
                    whole = best_of(lambda: decode(chained, 16000), max(1, args.repeats // 2))
                    links = best_of(lambda: (decode(path, 16000), decode(path, 16000)), max(1, args.repeats // 2))
                    out[f"VORBIS {seconds:g} s twice, chained"] = {
                        "decode_seconds": round(whole, 4), "links_decoded_apart_seconds": round(links, 4),
                        "chain_over_links": round(whole / links, 3)}
    print(json.dumps({"repeats": args.repeats, "files": out}, indent=1))


if __name__ == "__main__":
    main()
