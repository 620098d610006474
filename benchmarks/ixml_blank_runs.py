"""What a long run of blanks, or of unclosed tags, in a source's iXML chunk costs an excerpt (run by hand).

    .venv/bin/python benchmarks/ixml_blank_runs.py [--size 5000] [--repeats 3] [--before-rev 8c36776]

engine.wav_chunks.excerpt_ixml rewrites the iXML chunk of every WAV excerpt (``--export``, each
/audio request). Its patterns as of ``--before-rev`` scanned a run again from each of its bytes:
the blanks ending a BWF_CODING_HISTORY text ("history"), blanks inside an element's text
("element": a BWF_LOUDNESS_VALUE), the blanks before a SYNC_POINT ("padding": a writer's spaces
after the document) and everything after an unclosed SYNC_POINT ("unclosed") — time growing as
the square of the run, an hour and more for a 1 MiB chunk. This times excerpt_ixml on each body
(``--size`` blanks, or tags) by the module as of that revision and as now; prints one JSON
object: the best seconds of ``--repeats`` runs of each, and their ratios (measured in this run).
Both give the same bytes.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

import engine.wav_chunks as now
from revision_module import module_at

ROOT = Path(__file__).resolve().parents[1]
LINE = "A=PCM,F=48000,W=16,M=stereo,T=soundsift excerpt 0.250-0.750 s\r\n"


def bodies(size: int) -> dict[str, bytes]:
    """iXML bodies with ``size`` blanks (or SYNC_POINT tags) where each pattern scanned them."""
    head = b"<?xml version='1.0' encoding='UTF-8'?><BWFXML><IXML_VERSION>2.10</IXML_VERSION>"
    points = b"<SYNC_POINT_LIST><SYNC_POINT_COUNT>0</SYNC_POINT_COUNT>%s</SYNC_POINT_LIST></BWFXML>"
    return {"history": head + b"<BEXT><BWF_CODING_HISTORY>A=ANALOGUE," + b" " * size
                       + b"T=Nagra\r\n</BWF_CODING_HISTORY></BEXT></BWFXML>",
            "element": head + b"<BEXT><BWF_LOUDNESS_VALUE>-23" + b" " * size
                       + b".1</BWF_LOUDNESS_VALUE></BEXT></BWFXML>",
            "padding": head + points % b"" + b" " * size,
            "unclosed": head + points % (b"<SYNC_POINT>" * size)}


def best(run: Callable[[], bytes], repeats: int = 3) -> tuple[float, bytes]:
    """The best seconds of ``repeats`` runs, and what it gave."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before-rev", default="8c36776")
    args = parser.parse_args()
    before = module_at(args.before_rev, "engine/wav_chunks.py", "wav_chunks_before")
    report: dict[str, object] = {"size": args.size}
    for name, body in bodies(args.size).items():
        then, old = best(lambda: before.excerpt_ixml(body, 12_000, 24_000, 48_000, LINE), args.repeats)
        today, new = best(lambda: now.excerpt_ixml(body, 12_000, 24_000, 48_000, LINE, []), args.repeats)
        assert old == new, name
        report[name] = {"before_s": round(then, 4), "now_s": round(today, 6), "ratio": round(then / today, 1)}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
