"""Every read command of README on a generated library of many files (40,000 by default).

Run by hand (not a test):
    .venv/bin/python benchmarks/commands_at_scale.py build /tmp/scale35 [--files 40000]
    .venv/bin/python benchmarks/commands_at_scale.py commands /tmp/scale35 [--only search info …]
    .venv/bin/python benchmarks/commands_at_scale.py serve /tmp/scale35
    .venv/bin/python benchmarks/commands_at_scale.py fixes /tmp/scale35 [--rounds 3]

``build`` writes the library (0.2–1.5 s tones, noise and chirps: WAV, FLAC and a few MP3 in
400 folders with sound-library names), a tiny random CLAP (tests/tiny_models.py), indexes it
(:func:`cheap_audio`: in minutes), imports a library sheet and tags 40 folders
(``soundsift sheet import``, ``soundsift tags add``). ``commands`` times README's read commands
(wall and peak RSS from /usr/bin/time -v, one run each) and ``serve`` the HTTP endpoints, each as
a markdown table. ``fixes`` times ``tags add`` with HEAD's indexer.user_tags
(benchmarks/revision_module.py) and today's on that index, and tagging one indexed file with
HEAD's engine.tagging and today's, in alternating rounds, and prints their ratios.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CATEGORIES = {
    "Doors": ["Wood_Slam", "Wood_Creak", "Metal_Slam", "Car_Door", "Sliding", "Squeak", "Lock_Latch", "Knock"],
    "Footsteps": ["Concrete", "Gravel", "Grass", "Wood_Floor", "Snow", "Metal_Grate", "Mud", "Stairs"],
    "Impacts": ["Body_Fall", "Metal_Hit", "Wood_Hit", "Glass_Break", "Punch", "Debris", "Thud", "Rock"],
    "Ambience": ["City_Night", "Forest_Day", "Office_Roomtone", "Harbour", "Market", "Rain_Roof", "Wind_Field", "Subway"],
    "Foley": ["Cloth_Rustle", "Paper", "Keys", "Cutlery", "Zipper", "Bag_Handling", "Coins", "Bottle"],
    "UI": ["Clicks", "Beeps", "Confirm", "Error", "Swipe", "Notification", "Hover", "Toggle"],
    "Weapons": ["Pistol_Shot", "Rifle_Shot", "Shell_Drop", "Reload", "Sword_Swing", "Bow_Release", "Ricochet", "Cock"],
    "Vehicles": ["Car_Pass_By", "Truck_Idle", "Motorbike", "Train_Horn", "Plane_Flyover", "Bicycle_Bell", "Bus_Brake", "Tram"],
    "Water": ["Drips", "Splash", "Stream", "Waves", "Pour", "Bubbles", "Tap_Running", "Underwater"],
    "Weather": ["Thunder_Distant", "Thunder_Close", "Rain_Light", "Rain_Heavy", "Wind_Gust", "Hail", "Storm", "Drizzle"],
}
VOLUMES = ["Vol_01", "Vol_02", "Vol_03", "Vol_04", "Vol_05"]  # 10 × 8 × 5 = 400 folders


def folders() -> list[str]:
    """The library's ~400 folder paths (Category/Volume/Sub)."""
    return [f"{cat}/{vol}/{sub}" for cat, subs in CATEGORIES.items() for vol in VOLUMES for sub in subs]


def _signal(rng: np.random.Generator, kind: int, seconds: float, sr: int) -> np.ndarray:
    n = max(1, int(seconds * sr))
    t = np.arange(n) / sr
    if kind == 0:
        y = np.sin(2 * np.pi * rng.uniform(80, 4000) * t)
    elif kind == 1:
        y = rng.standard_normal(n) * 0.5
    else:
        f0, f1 = rng.uniform(100, 2000), rng.uniform(200, 8000)
        y = np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds)))
    return (y * rng.uniform(0.05, 0.8) * np.hanning(n)).astype(np.float32)


def write_library(root: Path, n_files: int, seed: int = 0) -> list[Path]:
    """``n_files`` short sounds spread over :func:`folders` (WAV, FLAC, 1 % MP3)."""
    rng = np.random.default_rng(seed)
    names = folders()
    paths = []
    for i in range(n_files):
        folder = names[i % len(names)]
        cat, vol, sub = folder.split("/")
        ext = "mp3" if i % 100 == 7 else ("flac" if i % 3 == 1 else "wav")
        sr = (16000, 22050, 44100)[i % 3] if ext != "mp3" else 44100
        path = root / folder / f"{cat.upper()}_{sub}_{i // len(names) + 1:03d}.{ext}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()      # soundfile's close fsyncs a file: 5 ms each, 40,000 times
            sf.write(buf, _signal(rng, i % 3, float(rng.uniform(0.2, 1.5)), sr), sr, format=ext.upper())
            path.write_bytes(buf.getvalue())
        else:
            _signal(rng, i % 3, float(rng.uniform(0.2, 1.5)), sr)      # the same draws as when written
        paths.append(path)
    return paths


def write_sheet(root: Path, paths: list[Path], every: int = 4) -> Path:
    """A Soundminer-style library sheet describing every ``every``-th file."""
    sheet = root.parent / "library_sheet.csv"
    with sheet.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Filename", "Pathname", "Description", "Category", "SubCategory", "Keywords"])
        for p in paths[::every]:
            cat, _vol, sub = p.relative_to(root).parts[:3]
            w.writerow([p.name, str(p), f"{sub.replace('_', ' ').lower()} take", cat.upper(), sub.upper(),
                        f"{cat.lower()}, {sub.lower()}"])
    return sheet


def _soundsift(*args: str) -> None:
    cmd = [str(ROOT / ".venv/bin/soundsift"), *args]
    print("$", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def cheap_audio(model):
    """``model`` (the tiny CLAP) embedding audio as band energies instead (its name and fingerprint
    kept, so read commands load the tiny CLAP itself): the library indexes in 3.5 min on 2 cores,
    where the CLAP's 10 s mel features managed 2.6 files/s (hours; other jobs on the machine). The
    vectors mean nothing; the commands timed on them do the same work."""
    dim = int(model.dim)

    def embed_audio(waveforms):
        rows = []
        for x in waveforms:
            spec = np.abs(np.fft.rfft(np.asarray(x, np.float32)[:4096], n=1024))
            rows.append(np.log1p(np.add.reduceat(spec, np.linspace(0, 512, dim + 1).astype(int)[:-1])) + 1e-3)
        rows = np.asarray(rows, np.float32)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    model.embed_audio = embed_audio
    return model


def build(base: Path, n_files: int) -> None:
    """Library, model, index, sheet and tags under ``base``."""
    from engine.models import load_model
    from indexer import build_index
    from tests.tiny_models import make_tiny_clap

    lib, index, model = base / "library", base / "index", base / "tiny_clap"
    t0 = time.perf_counter()
    paths = write_library(lib, n_files)
    print(f"library: {len(paths)} files in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    if not (model / "config.json").is_file():
        make_tiny_clap(model)
    t0 = time.perf_counter()
    build_index([lib], index, cheap_audio(load_model(str(model))), progress=False)
    print(f"index: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    _soundsift("sheet", "import", str(write_sheet(lib, paths)), "--index", str(index))
    for i, folder in enumerate(folders()[::10]):
        _soundsift("tags", "add", ("keeper", "used in ep 3", "favourite", f"client_{i % 7}")[i % 4],
                   str(lib / folder), "--index", str(index))


def read_commands(base: Path) -> dict[str, list[str]]:
    """README's read commands on the index under ``base`` (label → soundsift arguments)."""
    lib, ix = base / "library", ["--index", str(base / "index")]
    one = str(next((lib / folders()[0]).iterdir()))
    return {
        "search": ["search", "door slam", *ix],
        "search --path-prefix": ["search", "door slam", "--path-prefix", str(lib / "Doors"), *ix],
        "search --format flac": ["search", "door slam", "--format", "flac", *ix],
        "search --tagged keeper": ["search", "door slam", "--tagged", "keeper", *ix],
        "search --min/max-duration": ["search", "door slam", "--min-duration", "0.5", "--max-duration", "1", *ix],
        "search --min/max-loudness": ["search", "door slam", "--min-loudness", "-40", "--max-loudness", "-20", *ix],
        "search --keywords": ["search", "door slam", "--keywords", *ix],
        "similar": ["similar", one, *ix],
        "tag": ["tag", one, "--top", "5", *ix],
        "tags list": ["tags", "list", *ix],
        "tags list --all": ["tags", "list", "--all", *ix],
        "info": ["info", *ix],
        "sheet list": ["sheet", "list", *ix],
        "sheet export": ["sheet", "export", str(base / "export.csv"), *ix],
        "duplicates": ["duplicates", *ix],
        "relocate --dry-run": ["relocate", str(lib), str(base / "moved"), "--dry-run", *ix],
        "index (unchanged)": ["index", str(lib), *ix],
    }


def time_command(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of ``soundsift ARGS`` (/usr/bin/time -v), stdout discarded."""
    done = subprocess.run(["/usr/bin/time", "-v", str(ROOT / ".venv/bin/soundsift"), *args],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"soundsift {' '.join(args)}: exit {done.returncode}\n{done.stderr[-2000:]}")
    wall = rss = 0.0
    for line in done.stderr.splitlines():
        if "Elapsed (wall clock)" in line:
            parts = line.rsplit(" ", 1)[-1].split(":")
            wall = sum(float(p) * 60 ** i for i, p in enumerate(reversed(parts)))
        elif "Maximum resident set size" in line:
            rss = int(line.rsplit(" ", 1)[-1]) / 1024
    return wall, rss


def time_commands(base: Path, only: list[str] | None) -> None:
    """A markdown table of each read command's wall time and peak memory."""
    print("| command | wall | peak RSS |\n|---|---|---|")
    for label, args in read_commands(base).items():
        if only and not any(o in label for o in only):
            continue
        wall, rss = time_command(args)
        print(f"| `{label}` | {wall:.2f} s | {rss:.0f} MB |", flush=True)


def time_serve(base: Path, port: int = 8795) -> None:
    """Each HTTP endpoint of ``soundsift serve`` on the index, timed from a client (one request
    each, then the median of 3 more): a table like :func:`time_commands`'."""
    import urllib.parse
    import urllib.request

    lib = base / "library"
    one = next((lib / folders()[0]).iterdir())
    server = subprocess.Popen([str(ROOT / ".venv/bin/soundsift"), "serve", "--index", str(base / "index"),
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        t0 = time.perf_counter()
        while True:
            try:
                urllib.request.urlopen(url + "/info", timeout=5).read()
                break
            except OSError:
                if server.poll() is not None or time.perf_counter() - t0 > 300:
                    raise SystemExit("serve did not start")
                time.sleep(0.5)
        print(f"serve answered /info {time.perf_counter() - t0:.1f} s after starting", file=sys.stderr)
        q = urllib.parse.quote
        routes = {"/search": f"/search?q={q('door slam')}",
                  "/search?path_prefix": f"/search?q={q('door slam')}&path_prefix={q(str(lib / 'Doors'))}",
                  "/search?tagged": f"/search?q={q('door slam')}&tagged=keeper",
                  "/similar?file": f"/similar?file={q(str(one))}",
                  "/info": "/info", "/facets": "/facets", "/files/1": "/files/1",
                  "/sheet": "/sheet", "/sheet?path_prefix": f"/sheet?path_prefix={q(str(lib / 'Doors'))}"}
        print("| endpoint | first | median of 3 more | bytes |\n|---|---|---|---|")
        for label, route in routes.items():
            times, size = [], 0
            for _ in range(4):
                t = time.perf_counter()
                with urllib.request.urlopen(url + route, timeout=600) as r:
                    size = len(r.read())
                times.append(time.perf_counter() - t)
            print(f"| `{label}` | {times[0]:.2f} s | {statistics.median(times[1:]):.2f} s | {size:,} |", flush=True)
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["build", "commands", "serve", "fixes"])
    ap.add_argument("--only", nargs="*")
    ap.add_argument("base", type=Path)
    ap.add_argument("--files", type=int, default=40_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if args.what == "build":
        build(args.base, args.files)
    elif args.what == "commands":
        time_commands(args.base, args.only)
    elif args.what == "serve":
        time_serve(args.base)
    else:
        print(json.dumps(time_fixes(args.base, args.rounds), indent=1))


def time_fixes(base: Path, rounds: int, rev: str = "HEAD") -> dict:
    """``tags add`` with ``rev``'s indexer.user_tags and with today's, in alternating rounds (the
    tag taken off again after each), with the SQL statements each ran: on one category folder
    (4,000 of the 40,000 files: a statement pair a file before), and on 100 leaf folders (10,000
    files: every path read and compared once per folder before). Medians and their ratio."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from benchmarks.revision_module import module_at
    from indexer import user_tags

    before = module_at(rev, "indexer/user_tags.py", "user_tags_before")
    index, lib = base / "index", base / "library"
    cases = {"1 category folder": [lib / "Doors"], "100 leaf folders": [lib / f for f in folders()[::4]]}
    statements = [0]

    def count(*_args) -> None:
        statements[0] += 1

    event.listen(Engine, "before_cursor_execute", count)
    out: dict[str, dict] = {}
    try:
        for case, given in cases.items():
            times: dict[str, list[float]] = {"before": [], "after": []}
            seen: dict[str, int] = {}
            for _ in range(rounds):
                for name, module in (("before", before), ("after", user_tags)):
                    statements[0] = 0
                    t = time.perf_counter()
                    change = module.add_tags(index, given, ["bench35"])
                    times[name].append(time.perf_counter() - t)
                    seen[name] = statements[0]
                    user_tags.remove_tags(index, given, ["bench35"])
            mid = {name: round(statistics.median(ts), 3) for name, ts in times.items()}
            out[case] = {"files": change.files, "median s": mid, "statements": seen,
                         "before / after": round(mid["before"] / mid["after"], 1)}
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    return {"rev": rev, "rounds": rounds, "tags add": out, "tag FILE --index": time_tag_one(base, rounds, rev)}


def time_tag_one(base: Path, rounds: int, rev: str = "HEAD") -> dict:
    """engine.tagging.tag_files of one indexed file with the index's stored vectors (what
    ``soundsift tag FILE --index`` runs after loading the model), ``rev``'s and today's."""
    from benchmarks.revision_module import module_at
    from engine import tagging
    from engine.query import SoundIndex

    before = module_at(rev, "engine/tagging.py", "tagging_before")
    one = sorted((base / "library" / folders()[0]).iterdir())[0]
    times: dict[str, list[float]] = {"before": [], "after": []}
    with SoundIndex.open(base / "index") as si:
        si.model                                        # loaded once, outside the timings
        for _ in range(rounds):
            for name, module in (("before", before), ("after", tagging)):
                t = time.perf_counter()
                tagged, _ = module.tag_files([one], ["door", "rain", "engine"], index=si, top=2)
                times[name].append(time.perf_counter() - t)
                assert tagged and tagged[0].from_index
    mid = {name: round(statistics.median(ts), 3) for name, ts in times.items()}
    return {"median s": mid, "before / after": round(mid["before"] / mid["after"], 1)}


if __name__ == "__main__":
    main()
