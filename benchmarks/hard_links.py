"""Indexing a library whose files have several names (hard links) or identical copies: this tree
against a git revision.

Run by hand (not a test):
    .venv/bin/python benchmarks/hard_links.py [--files 40] [--links 3] [--seconds 20] [--baseline HEAD]
    .venv/bin/python benchmarks/hard_links.py --copies [...]      # copies (`cp`) instead of links

Writes ``--files`` distinct recordings (noise and chirps, ``--seconds`` long, 48 kHz) and gives each
``--links`` more names in folders of hard links (a "Favourites" folder, a snapshot made with
``cp -al``), then times two runs of ``build_index``, each in a fresh process on the tree it measures
(this working tree, and ``git archive <baseline>`` unpacked beside it):

  * ``first``: a new index of the whole library;
  * ``new_names``: the library indexed without its links, then the links made: the run that finds them.

With ``--copies`` the other names are copies (another inode and time, the same bytes), and a third
scenario, ``distinct``, indexes as many recordings with no copies among them, all of one length and
so of one size (fixed-length renders): what looking for copies costs where there are none. It also
times reading those files' content fingerprints and their SHA-256 (warm cache), in this process.

Rounds alternate between the trees (``--rounds``); the median of each is kept, with the ratio
baseline / this tree. The model is a tiny random CLAP (tests/tiny_models.py; decoding weighs most)
unless ``--model`` names another (a real-size one weighs embedding more: the ratio grows). Also
checks that both trees index the same files and segments, with vectors equal to 5 decimals (their
first 4 dimensions; a batch of other segments may move the last digits). Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SR = 48000

#: run in a fresh process with the measured tree first on sys.path: argv = tree, library roots
#: (JSON), index, model, workers, and optionally the links to make after an untimed first run
#: without them (JSON: recordings folder, link folders, whether copies)
_RUN = r"""
import json, shutil, sys, time
tree, roots, index, model_ref = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
workers = int(sys.argv[5])
sys.path.insert(0, tree)
import numpy as np, faiss
import indexer, engine
assert indexer.__file__.startswith(tree), indexer.__file__
from engine import load_model
from indexer import build_index
model = load_model(model_ref)
if len(sys.argv) > 6:
    import os
    build_index(roots, index, model, workers=workers, progress=False)
    recordings, folders, copies = json.loads(sys.argv[6])
    for folder in folders:
        os.mkdir(folder)
        for name in sorted(os.listdir(recordings)):
            (shutil.copy if copies else os.link)(os.path.join(recordings, name), os.path.join(folder, name))
t = time.perf_counter()
s = build_index(roots, index, model, workers=workers, progress=False)
seconds = time.perf_counter() - t
from sqlalchemy import select
from sqlalchemy.orm import Session
from engine.catalog import File, SegmentRow, get_meta, open_catalog
from engine.layout import IndexLayout
from engine.vector_access import reconstruct
from pathlib import Path
cat = open_catalog(IndexLayout(Path(index)).catalog)
with Session(cat) as ses:
    vec = faiss.read_index(index + "/" + get_meta(ses)["vectors_file"])
    rows = ses.execute(select(File.path, SegmentRow.id).join(SegmentRow).order_by(File.path, SegmentRow.id)).all()
v = reconstruct(vec, np.array([i for _, i in rows], np.int64))
digest = {p: [] for p, _ in rows}
for (p, _), x in zip(rows, v):
    digest[p].append([round(float(y), 5) for y in x[:4]])
print(json.dumps({"seconds": seconds, "added": s.added, "embedded_segments": s.n_segments,
                  "given_vectors": getattr(s, "same_file", 0) + getattr(s, "same_audio", 0),
                  "segments": s.totals["segments"], "digest": digest}))
"""


def make_library(folder: Path, files: int, links: int, seconds: float) -> tuple[Path, list[Path]]:
    """``files`` recordings under ``folder/Recordings``, all ``seconds`` long (so of one size), and
    ``links`` folders of hard links (or copies) to them; returns the library and the link folders."""
    rng = np.random.default_rng(0)
    rec = folder / "Recordings"
    rec.mkdir(parents=True)
    t = np.arange(int(seconds * SR)) / SR
    for i in range(files):
        x = (0.2 * rng.standard_normal(t.size) if i % 2 else
             0.5 * np.sin(2 * np.pi * (100 + 40 * i) * t * (1 + t / seconds)))
        sf.write(rec / f"take_{i:03d}.wav", x.astype(np.float32), SR, subtype="PCM_16")
    return folder, [folder / f"Linked {k + 1}" for k in range(links)]


def make_links(recordings: Path, folders: list[Path], copies: bool = False) -> None:
    """Each of ``folders`` made with a hard link to every recording (``copies``: a copy of it)."""
    for f in folders:
        f.mkdir()
        for p in sorted(recordings.iterdir()):
            (shutil.copy if copies else os.link)(p, f / p.name)


def hash_costs(folder: Path) -> dict[str, float]:
    """Seconds to read the content fingerprint, and the SHA-256 of all bytes, of every file under
    ``folder`` (each read once before, so from the page cache as the indexer's would be)."""
    sys.path.insert(0, str(ROOT))
    from engine.file_metadata import content_fingerprint
    from engine.towers.cache import file_sha256
    paths = sorted(p for p in folder.rglob("*.wav"))
    for p in paths:
        p.read_bytes()
    out = {}
    for name, how in (("content_fingerprint_s", content_fingerprint), ("sha256_s", file_sha256)):
        t = time.perf_counter()
        for p in paths:
            how(p)
        out[name] = round(time.perf_counter() - t, 4)
    return out


def remove_links(folders: list[Path]) -> None:
    for f in folders:
        shutil.rmtree(f, ignore_errors=True)


def run(tree: Path, lib: Path, index: Path, model: str, workers: int,
        links_after: list[Path] | None = None, copies: bool = False) -> dict:
    """One timed ``build_index`` of ``lib`` by ``tree`` into a new ``index``; with ``links_after``,
    the run after one without them (untimed) that made these folders of links (``copies``: copies)."""
    shutil.rmtree(index, ignore_errors=True)
    later = ([json.dumps([str(lib / "Recordings"), [str(f) for f in links_after], copies])]
             if links_after else [])
    argv = [sys.executable, "-c", _RUN, str(tree), json.dumps([str(lib)]), str(index), model, str(workers), *later]
    out = subprocess.run(argv, cwd=tree, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    if out.returncode:
        raise SystemExit(f"{tree}: the run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description="hard-linked library indexing benchmark")
    ap.add_argument("--files", type=int, default=40)
    ap.add_argument("--links", type=int, default=3, help="more names per file (hard links, or copies)")
    ap.add_argument("--copies", action="store_true", help="copies of each file (cp) instead of hard links, "
                    "and a library of as many distinct files of one size")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of each recording")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--baseline", default="HEAD", help="git revision compared with this tree")
    ap.add_argument("--model", help="a model for load_model (default: a tiny random CLAP)")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "soundsift-bench-links")
    args = ap.parse_args()

    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    base = args.workdir / "baseline"
    base.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
    model = args.model
    if model is None:
        sys.path.insert(0, str(ROOT))
        from tests.tiny_models import make_tiny_clap
        model = str(make_tiny_clap(args.workdir / "tiny-clap"))
    lib, folders = make_library(args.workdir / "Library", args.files, args.links, args.seconds)
    distinct = (make_library(args.workdir / "Distinct", args.files * (args.links + 1), 0, args.seconds)[0]
                if args.copies else None)
    trees = {"baseline": base, "this": ROOT}
    scenarios = ("first", "new_names") + (("distinct",) if distinct else ())
    times: dict[str, dict[str, list[float]]] = {s: {t: [] for t in trees} for s in scenarios}
    last: dict[str, dict[str, dict]] = {s: {} for s in times}
    for _ in range(args.rounds):
        for name, tree in trees.items():
            make_links(lib / "Recordings", folders, args.copies)
            r = run(tree, lib, args.workdir / f"idx-{name}", model, args.workers)
            times["first"][name].append(r["seconds"])
            last["first"][name] = r
            remove_links(folders)
            r = run(tree, lib, args.workdir / f"idx-{name}", model, args.workers, links_after=folders,
                    copies=args.copies)
            times["new_names"][name].append(r["seconds"])
            last["new_names"][name] = r
            remove_links(folders)
            if distinct:
                r = run(tree, distinct, args.workdir / f"idx-distinct-{name}", model, args.workers)
                times["distinct"][name].append(r["seconds"])
                last["distinct"][name] = r
    out = {"files": args.files, "names_per_file": args.links + 1, "seconds_each": args.seconds,
           "other_names": "copies" if args.copies else "hard links",
           "workers": args.workers, "baseline": args.baseline, "model": args.model or "tiny random CLAP",
           "cpus": os.cpu_count()}
    for scenario, by_tree in times.items():
        med = {t: statistics.median(v) for t, v in by_tree.items()}
        same = last[scenario]["baseline"]["digest"] == last[scenario]["this"]["digest"]
        out[scenario] = {"baseline_s": round(med["baseline"], 3), "this_s": round(med["this"], 3),
                         "speedup": round(med["baseline"] / med["this"], 2),
                         "embedded_segments": {t: last[scenario][t]["embedded_segments"] for t in trees},
                         "indexed_files": {t: last[scenario][t]["added"] for t in trees},
                         "given_vectors": {t: last[scenario][t]["given_vectors"] for t in trees},
                         "same_segments_and_vectors": same, "rounds": {t: [round(x, 3) for x in v]
                                                                       for t, v in by_tree.items()}}
    if distinct:
        costs = hash_costs(distinct / "Recordings")
        run_s = out["distinct"]["this_s"]
        out["distinct"]["hashing_all"] = {**costs, "of_this_run": {k: round(v / run_s, 4) for k, v in costs.items()}}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
