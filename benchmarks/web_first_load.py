"""The web page's first load, before and after it stopped drawing the library map up front (run by hand).

Two measurements, each the median of ``--runs``:

1. The library map's projection of the index's file vectors (at most MAX_MAP_POINTS of them, as
   the page picks them): the full SVD of the centred vectors (what ui/components/library_map
   .pca_2d did before), the top eigenvectors of XᵀX (what it does now) and a randomized SVD
   (4 power iterations, 10 extra columns), with each one's largest deviation from the full SVD
   (up to sign, as a fraction of the map's extent).
2. The page itself (ui/app.py under streamlit.testing's AppTest, each run in a fresh Python
   process: imports, index, caches all cold), "before" being the ``ui/`` folder of ``--before``
   (a git revision, taken with ``git archive``; the engine is the working tree's for both) and
   "after" the working tree's: the first load (nothing asked yet), the first search
   (``--query``: the model loads, and the result cards' tags read the file vectors), a rerun
   with those results (any click), and opening the Overview tab (its map).

    .venv/bin/soundsift index /path/to/library --index /tmp/idx --model soundsift-fast
    .venv/bin/python benchmarks/web_first_load.py /tmp/idx --runs 3
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "459579f"      # the page before session 28: it drew the map (a full SVD) on every first load
STEPS = ("first load", "first search", "rerun with results", "open Overview")


# --- 1. the projection ---------------------------------------------------------------------

def full_svd(vectors: np.ndarray) -> np.ndarray:
    """The former pca_2d's coordinates, U·S of the full SVD (signs as pca_2d fixes them)."""
    x = np.asarray(vectors, np.float64)
    u, s, _ = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    return fixed_signs(u[:, :2] * s[:2])


def randomized_svd(vectors: np.ndarray, power: int = 4, extra: int = 10, seed: int = 0) -> np.ndarray:
    """U·S of the top two singular vectors by a randomized range finder (Halko et al.)."""
    x = np.asarray(vectors, np.float64)
    x = x - x.mean(axis=0)
    y = x @ np.random.default_rng(seed).standard_normal((x.shape[1], 2 + extra))
    for _ in range(power):
        q, _ = np.linalg.qr(y)
        z, _ = np.linalg.qr(x.T @ q)
        y = x @ z
    q, _ = np.linalg.qr(y)
    ub, s, _ = np.linalg.svd(q.T @ x, full_matrices=False)
    return fixed_signs((q @ ub[:, :2]) * s[:2])


def fixed_signs(proj: np.ndarray) -> np.ndarray:
    for j in range(proj.shape[1]):
        if proj[np.argmax(np.abs(proj[:, j])), j] < 0:
            proj[:, j] = -proj[:, j]
    return proj


def deviation(xy: np.ndarray, ref: np.ndarray) -> float:
    """Largest coordinate difference, up to each axis's sign, as a fraction of the map's extent."""
    worst = max(min(np.abs(xy[:, j] - ref[:, j]).max(), np.abs(xy[:, j] + ref[:, j]).max())
                for j in range(2))
    return float(worst / np.abs(ref).max())


def projection(index: str, runs: int) -> None:
    from engine.query import SoundIndex
    from ui.components.library_map import pca_2d
    from ui.components.overview_tab import MAX_MAP_POINTS

    with SoundIndex.open(index) as sound_index:
        vectors = np.asarray(sound_index.file_vectors().vectors, np.float32)
    if len(vectors) > MAX_MAP_POINTS:
        vectors = vectors[np.linspace(0, len(vectors) - 1, MAX_MAP_POINTS).round().astype(int)]
    print(f"projection of {vectors.shape[0]:,} × {vectors.shape[1]} file vectors (median of {runs}):")
    methods = {"full SVD (before)": full_svd, "eigh of XᵀX (pca_2d)": pca_2d, "randomized SVD": randomized_svd}
    times: dict[str, list[float]] = {name: [] for name in methods}
    out: dict[str, np.ndarray] = {}
    for _ in range(runs):                    # interleaved: a busy machine slows each alike
        for name, method in methods.items():
            t = time.perf_counter()
            out[name] = method(vectors)
            times[name].append(time.perf_counter() - t)
    before = float(np.median(times["full SVD (before)"]))
    for name in methods:
        mid = float(np.median(times[name]))
        print(f"  {name:22s} {mid:6.3f} s  ×{before / mid:5.1f}  deviation "
              f"{deviation(np.asarray(out[name], np.float64), out['full SVD (before)']):.1e}")


# --- 2. the page ---------------------------------------------------------------------------

def page_once(ui_parent: str, index: str, query: str) -> dict[str, float]:
    """One cold page in this process: the ui package from ``ui_parent``, the engine from ROOT."""
    sys.path[:0] = [ui_parent, str(ROOT)]
    os.environ["SOUNDSIFT_UI_INDEX"] = index
    os.environ.pop("SOUNDSIFT_UI_MODEL", None)
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(ui_parent) / "ui" / "app.py"), default_timeout=900)
    times = {}

    def step(name: str, act) -> None:
        t = time.perf_counter()
        act()
        times[name] = time.perf_counter() - t
        if at.exception:
            raise SystemExit(f"{name}: {at.exception[0].value}")

    step("first load", at.run)
    drawn_by = sys.modules["ui.components.overview_tab"].__file__
    if not drawn_by.startswith(ui_parent):
        raise SystemExit(f"the page imported {drawn_by}, not the ui/ of {ui_parent}")
    step("first search", lambda: at.text_input(key="q").set_value(query).run())
    step("rerun with results", at.run)
    at.session_state["tab"] = "Overview"     # what a click on the tab sends (the old page ignores it)
    step("open Overview", at.run)
    if not at.get("vega_lite_chart"):
        raise SystemExit("the Overview drew no map")
    return times


def page(index: str, runs: int, before: str | None, query: str) -> None:
    pages = {"after": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="web_first_load_") as tmp:
        if before:
            tar = subprocess.run(["git", "-C", str(ROOT), "archive", before, "ui"],
                                 check=True, capture_output=True).stdout
            with tarfile.open(fileobj=BytesIO(tar)) as archive:
                archive.extractall(tmp, filter="data")
            pages = {f"before ({before})": tmp, **pages}
        times: dict[str, list[dict[str, float]]] = {name: [] for name in pages}
        for run in range(runs):              # interleaved, each run a fresh process
            for name, ui_parent in pages.items():
                done = subprocess.run([sys.executable, __file__, "--child", ui_parent, index, "--query", query],
                                      cwd=ROOT, capture_output=True, text=True)
                if done.returncode:
                    raise SystemExit(f"{name}: {done.stderr[-2000:]}")
                times[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"  run {run + 1} {name}: " + ", ".join(f"{s} {times[name][-1][s]:.2f} s" for s in STEPS),
                      flush=True)
    print(f"page (AppTest, a fresh process each run; median of {runs}; query {query!r}):")
    medians = {name: {s: float(np.median([t[s] for t in ts])) for s in STEPS} for name, ts in times.items()}
    for name, m in medians.items():
        print(f"  {name:20s} " + "  ".join(f"{s} {m[s]:6.2f} s" for s in STEPS)
              + f"  load + search {m['first load'] + m['first search']:6.2f} s")
    if len(medians) == 2:
        (_, old), (_, new) = medians.items()
        print("  before / after       " + "  ".join(f"{s} ×{old[s] / new[s]:5.2f}" for s in STEPS)
              + f"  load + search ×{(old['first load'] + old['first search']) / (new['first load'] + new['first search']):5.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("index", help="an index folder (or name)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--before", default=BEFORE, help="git revision whose ui/ is 'before'; '' for none")
    ap.add_argument("--query", default="rain on a window")
    ap.add_argument("--skip-projection", action="store_true")
    ap.add_argument("--child", metavar="UI_PARENT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(page_once(args.child, args.index, args.query)))
        return
    sys.path.insert(0, str(ROOT))
    from engine.layout import resolve_index_dir
    index = str(resolve_index_dir(args.index).resolve())
    if not args.skip_projection:
        projection(index, args.runs)
    page(index, args.runs, args.before or None, args.query)


if __name__ == "__main__":
    main()
