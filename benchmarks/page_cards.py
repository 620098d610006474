"""A page of result cards on the search page: one card after another, or a few at once (run by hand).

Each card draws its file's waveform (a long file's envelope sampled from ~2,500 short reads, a
compressed one's decoded) and reads its audio for the player: almost all of a first search's
time once the model is loaded. ``ui/components/resources.cards_media`` reads ``CARD_WORKERS``
cards at once; this runs the page (``ui/app.py`` under streamlit.testing's AppTest) on a search
showing ``--cards`` results with the card caches emptied before each run (the waveform
envelopes and st.cache_data: what a new search meets), alternating ``workers=1`` (the cards one
after another, as the page drew them before) and each of ``--workers``, and prints each one's
median and its ratio to one-at-a-time, measured in this run. It checks that every way draws the
same page: the same images and audio (Streamlit names media by a hash of their bytes), in order.
A warm rerun (any click: every card's media come from the caches) is timed too. It also times
the cards' stored tags: one catalog query per card (as before) against one for the page.

    .venv/bin/python benchmarks/page_cards.py [--cards 24] [--minutes 3] [--rounds 3] [--workers 2 4 8]
    .venv/bin/python benchmarks/page_cards.py --index /path/to/index --query "rain"

Without ``--index`` it writes a library of ``--cards`` files of ``--minutes`` each (WAV, FLAC,
Ogg Vorbis and MP3 in turn: long files are sampled, compressed ones decoded), builds a tiny
random CLAP (tests/tiny_models.py) and indexes the library with it in ``--workdir``, reused by
later runs. The page cache stays warm (the files were just written or read): a cold disk makes
each card slower and reading a few at once gain more.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FORMATS = [("WAV", "wav", "PCM_16"), ("FLAC", "flac", "PCM_16"), ("OGG", "ogg", "VORBIS"),
           ("MP3", "mp3", "MPEG_LAYER_III")]


def make_library(folder: Path, files: int, minutes: float) -> None:
    """``files`` files of ``minutes`` of stereo 44.1 kHz noise with a loud second every half
    minute, the formats in turn (each format written once, then copied)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for n in range(files):
        fmt, ext, subtype = FORMATS[n % len(FORMATS)]
        path = folder / f"{ext}_{n:03d}.{ext}"
        if path.exists():
            continue
        first = folder / f"{ext}_{n % len(FORMATS):03d}.{ext}"
        if first.exists():
            shutil.copy(first, path)
            continue
        with sf.SoundFile(str(path), "w", 44100, 2, subtype=subtype, format=fmt) as f:
            for second in range(int(minutes * 60)):
                x = (0.05 * rng.standard_normal((44100, 2))).astype(np.float32)
                f.write(x * 10 if second % 30 == 7 else x)


def build(workdir: Path, files: int, minutes: float) -> Path:
    """The index of the generated library in ``workdir`` (built once)."""
    index = workdir / "index"
    if (index / "catalog.db").exists():
        return index
    from indexer import build_index
    from tests.tiny_models import make_tiny_clap
    model = workdir / "model"
    if not (model / "config.json").exists():
        make_tiny_clap(model)
    make_library(workdir / "library", files, minutes)
    t = time.perf_counter()
    build_index([workdir / "library"], index=index, model=str(model), workers=0, progress=False)
    print(f"indexed {files} files of {minutes:g} min in {time.perf_counter() - t:.0f} s", flush=True)
    return index


def media_of(at) -> list[str]:
    """The page's images and audio, in order, by their media URLs (a hash of their bytes)."""
    urls = []
    for node in at.get("image"):
        urls += node.value
    urls += [a.proto.url for a in at.get("audio")]
    return urls


def timed_run(at, workers: int, cold: bool) -> tuple[float, list[str], int]:
    """One page run with ``workers`` cards at once, the card caches emptied first if ``cold``:
    its seconds, its media and how many warnings it showed."""
    import streamlit as st

    from ui.components import resources, thumbnails
    resources.CARD_WORKERS = workers
    if cold:
        st.cache_data.clear()
        thumbnails._CACHE.clear()
    t = time.perf_counter()
    at.run()
    took = time.perf_counter() - t
    if at.exception:
        raise SystemExit(f"the page failed: {[e.value for e in at.exception]}")
    return took, media_of(at), len(at.warning)


def time_tags(index: Path, rounds: int) -> tuple[float, float, int]:
    """Median seconds of the shown cards' stored tags as one query per card and as one query."""
    from ui.components.library import Library
    lib = Library(index)
    with lib._catalog.engine.connect() as conn:
        ids = [int(r[0]) for r in conn.exec_driver_sql("SELECT id FROM files ORDER BY id LIMIT 50")]
    per_card, batched = [], []
    for _ in range(rounds * 10):
        t = time.perf_counter()
        one_by_one = {i: lib.stored_tags([i], top=3).get(i, []) for i in ids}
        per_card.append(time.perf_counter() - t)
        t = time.perf_counter()
        together = lib.stored_tags(ids, top=3)
        batched.append(time.perf_counter() - t)
        assert {i: v for i, v in one_by_one.items() if v} == together
    return statistics.median(per_card), statistics.median(batched), len(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index", type=Path, help="an existing index (else one is built in --workdir)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/soundsift_page_cards"))
    ap.add_argument("--cards", type=int, default=24, help="results shown (files generated)")
    ap.add_argument("--minutes", type=float, default=3.0, help="length of each generated file")
    ap.add_argument("--query", default="noise")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, nargs="+", default=[2, 4, 8])
    args = ap.parse_args()

    index = args.index or build(args.workdir, args.cards, args.minutes)
    os.environ["SOUNDSIFT_UI_INDEX"] = str(index)
    os.environ.pop("SOUNDSIFT_UI_MODEL", None)
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "ui" / "app.py"), default_timeout=1200)
    at.query_params["q"] = args.query
    at.session_state["shown"] = args.cards
    t = time.perf_counter()
    _, reference, warned = timed_run(at, 1, cold=True)      # loads the model, the index, the imports
    print(f"first load (model, index, cards one at a time): {time.perf_counter() - t:.1f} s; "
          f"{len(reference)} images and players, {warned} cards with a warning", flush=True)

    ways = [1, *args.workers]
    cold: dict[int, list[float]] = {w: [] for w in ways}
    warm: dict[int, list[float]] = {w: [] for w in ways}
    for _ in range(args.rounds):
        for w in ways:
            took, media, _ = timed_run(at, w, cold=True)
            if media != reference:
                raise SystemExit(f"workers={w} drew other media than one card at a time")
            cold[w].append(took)
            warm[w].append(timed_run(at, w, cold=False)[0])
    base, base_warm = statistics.median(cold[1]), statistics.median(warm[1])
    print(f"{args.cards} cards, median of {args.rounds} runs (cpu cores: {os.cpu_count()}):")
    for w in ways:
        c, r = statistics.median(cold[w]), statistics.median(warm[w])
        print(f"  workers={w}: new search {c:6.2f} s ({base / c:4.2f}x one at a time), "
              f"warm rerun {r:5.2f} s ({base_warm / r:4.2f}x)")
    per_card, batched, n = time_tags(index, args.rounds)
    print(f"stored tags of {n} cards: one query each {per_card * 1000:.1f} ms, one query "
          f"{batched * 1000:.1f} ms ({per_card / batched:.1f}x)")


if __name__ == "__main__":
    main()
