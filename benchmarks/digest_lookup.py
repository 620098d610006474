"""What looking up a kept SHA-256 costs (engine.towers.cache.cached_file_sha256, asked by a
collapsed search for each copy it compares, and by ``duplicates``): this tree's lookup against
another's (default: ``git show HEAD:engine/towers/cache.py``, the committed one), both loaded in
one process, in alternating rounds.

Run by hand (not a test):
    .venv/bin/python benchmarks/digest_lookup.py [--files 200] [--depth 6] [--rounds 30]
    .venv/bin/python benchmarks/digest_lookup.py --before OTHER/engine/towers/cache.py

Writes ``--files`` small files ``--depth`` folders below a temporary folder (a library's
``Library/Vendor/Pack/…/take.wav``; resolving a path costs a system call per folder), a symbolic
link to every fourth one and a hard link to every eighth, waits until they are older than
``RECENT_CHANGE_NS`` (digests of files changed since are not kept), reads every path once through
each module (their digests are then kept), and times each round's lookups of every path, the two
modules in turn (which goes first alternates). Prints the medians of the rounds (µs a lookup,
wall time) for the files by their own paths, through the links, and all; the ratios before /
after; and whether both modules gave the same digests, as one JSON object.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load(source: str, name: str) -> ModuleType:
    """A module of its own run from the text ``source`` (a cache.py)."""
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module              # dataclasses and typing look modules up by name
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def make_files(folder: Path, files: int, depth: int) -> tuple[list[str], list[str]]:
    """``files`` files ``depth`` folders down, and links (symbolic: every fourth, hard: every
    eighth); returns (the files' paths, the links' paths)."""
    own, links = [], []
    for i in range(files):
        where = folder.joinpath(*(f"level {d} {i % 3}" for d in range(depth)))
        where.mkdir(parents=True, exist_ok=True)
        path = where / f"take {i:04d}.wav"
        path.write_bytes(i.to_bytes(4, "little") * 4096)
        own.append(str(path))
        if i % 4 == 0:
            os.symlink(path, folder / f"link {i:04d}.wav")
            links.append(str(folder / f"link {i:04d}.wav"))
        if i % 8 == 0:
            os.link(path, folder / f"hard {i:04d}.wav")
            links.append(str(folder / f"hard {i:04d}.wav"))
    return own, links


def per_lookup_us(module: ModuleType, paths: list[str]) -> float:
    """Microseconds a lookup of each of ``paths`` through ``module`` takes, on average."""
    lookup = module.cached_file_sha256
    t = time.perf_counter()
    for p in paths:
        lookup(p)
    return (time.perf_counter() - t) / len(paths) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--depth", type=int, default=6, help="folders between the temporary folder and a file")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--before", type=Path, default=None,
                    help="the cache.py to compare with (default: this repository's HEAD's)")
    args = ap.parse_args()
    before_source = (args.before.read_text() if args.before else
                     subprocess.run(["git", "-C", str(ROOT), "show", "HEAD:engine/towers/cache.py"],
                                    check=True, capture_output=True, text=True).stdout)
    modules = {"before": load(before_source, "cache_before"),
               "after": load((ROOT / "engine" / "towers" / "cache.py").read_text(), "cache_after")}
    with tempfile.TemporaryDirectory() as tmp:
        own, links = make_files(Path(tmp), args.files, args.depth)
        settle = max(m.RECENT_CHANGE_NS for m in modules.values()) / 1e9
        time.sleep(settle + 0.1)
        digests = {name: [m.cached_file_sha256(p) for p in own + links] for name, m in modules.items()}
        kinds = {"own_paths": own, "links": links, "all": own + links}
        times: dict[str, dict[str, list[float]]] = {name: {kind: [] for kind in kinds} for name in modules}
        for r in range(args.rounds):
            order = ("before", "after") if r % 2 == 0 else ("after", "before")
            for kind, paths in kinds.items():
                for name in order:
                    times[name][kind].append(per_lookup_us(modules[name], paths))
        read_again = {name: sum(m.cached_file_sha256(p) != d for p, d in zip(own + links, digests[name]))
                      for name, m in modules.items()}
    medians = {name: {kind: round(statistics.median(v), 3) for kind, v in by_kind.items()}
               for name, by_kind in times.items()}
    print(json.dumps({
        "files": args.files, "links": len(links), "depth": args.depth, "rounds": args.rounds,
        "before": str(args.before or "HEAD:engine/towers/cache.py"),
        "median_us_per_lookup": medians,
        "ratios_before_over_after": {kind: round(medians["before"][kind] / medians["after"][kind], 2)
                                     for kind in kinds},
        "same_digests": digests["before"] == digests["after"],
        "lookups_differing_from_the_first_read": read_again,
    }, indent=1))


if __name__ == "__main__":
    main()
