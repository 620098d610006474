"""Wall time of one-shot ``soundsift`` commands, as a sound designer typing at the shell pays it.

    python benchmarks/cli_latency.py --index IDX [--before REV] [--runs N] [--query TEXT] [--commands NAMES]

Each command runs in a fresh Python process (``python -m ui.cli …``): ``search QUERY --index IDX``
(model load + text tower + index), ``--version`` (bare start-up), ``--help`` (start-up and the
help text) and ``info --index IDX --json`` (start-up, the catalog and the vectors file's header: a
command that loads no model); ``--commands`` picks some of them (``--commands version,help,info``
measures start-up alone). With ``--before REV`` the same
commands also run from that git revision's tree (``git archive REV``, extracted into a temporary
folder and imported from there, the editable install's finder removed), in turn with the current
tree's runs so that both see the same load; the output gives each side's median wall and CPU
(user + system) seconds, the ratios before / now, whether both printed the same results (``--json``),
and for ``search`` whether they ranked the same hits and by how much their scores differ. Build an index first, e.g.
``soundsift index demo/sounds --index /tmp/idx``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: runs ``ui.cli`` from the tree in the current folder, not from the editable install
RUNNER = ("import runpy, sys; "
          "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in type(f).__module__ "
          "and 'editable' not in repr(f)]; sys.path.insert(0, '.'); "
          "sys.argv = ['soundsift', *sys.argv[1:]]; runpy.run_module('ui.cli', run_name='__main__')")


def extract(rev: str, into: Path) -> Path:
    """The tree of git revision ``rev`` extracted into ``into`` (returned)."""
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev], check=True, capture_output=True).stdout
    with tempfile.TemporaryFile() as f:
        f.write(archive)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(into, filter="data")
    return into


def run_once(tree: Path, args: list[str]) -> tuple[float, float, str]:
    """Wall seconds and CPU seconds (user + system; less swayed by other work on the machine)
    ``soundsift ARGS`` took from ``tree`` (a fresh process), and what it printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", RUNNER, *args], cwd=tree, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tree)})
    took = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"soundsift {' '.join(args)} failed in {tree}:\n{done.stderr[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return took, cpu, done.stdout


def compare_hits(before: set[str], now: set[str]) -> dict:
    """For ``--json`` hit lists: whether every run of both trees ranked the same spans of the same
    files, and the largest difference of a hit's score between them (a text vector made another
    way, numpy instead of torch, moves scores in their last digits); {} for other output."""
    try:
        runs = [json.loads(text) for text in (*before, *now)]
    except json.JSONDecodeError:
        return {}
    if not all(isinstance(hits, list) and all(isinstance(h, dict) and "score" in h for h in hits)
               for hits in runs):
        return {}
    ranked = {tuple((h["path"], h["start"], h["end"]) for h in hits) for hits in runs}
    diffs = [abs(a["score"] - b["score"]) for hits in runs[1:] for a, b in zip(runs[0], hits)]
    return {"same_ranking": len(ranked) == 1, "max_score_diff": max(diffs, default=0.0)}


def measure(trees: dict[str, Path], commands: dict[str, list[str]], runs: int) -> dict:
    """Each command ``runs`` times per tree, the trees taking turns; medians, ratios, same output."""
    out: dict = {"load_before": os.getloadavg()[0], "runs": runs, "commands": {}}
    for name, args in commands.items():
        times: dict[str, list[float]] = {side: [] for side in trees}
        cpus: dict[str, list[float]] = {side: [] for side in trees}
        printed: dict[str, set[str]] = {side: set() for side in trees}
        for i in range(runs):
            order = list(trees) if i % 2 == 0 else list(reversed(trees))
            for side in order:
                took, cpu, text = run_once(trees[side], args)
                times[side].append(took)
                cpus[side].append(cpu)
                printed[side].add(text)
        row = {f"median_s_{side}": round(statistics.median(t), 3) for side, t in times.items()}
        row.update({f"median_cpu_s_{side}": round(statistics.median(t), 3) for side, t in cpus.items()})
        if "before" in trees:
            row["ratio_before_over_now"] = round(statistics.median(times["before"]) / statistics.median(times["now"]), 3)
            row["cpu_ratio_before_over_now"] = round(statistics.median(cpus["before"]) / statistics.median(cpus["now"]), 3)
            row["same_output"] = printed["before"] == printed["now"]
            row.update(compare_hits(printed["before"], printed["now"]))
        out["commands"][name] = row
    out["load_after"] = os.getloadavg()[0]
    return out


#: the commands timed, by name (``--commands``)
COMMANDS = ("search", "version", "help", "info")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", required=True, help="an index built with soundsift index")
    ap.add_argument("--before", default=None, help="also time this git revision's tree (e.g. HEAD)")
    ap.add_argument("--runs", type=int, default=5, help="runs per command and tree (default 5)")
    ap.add_argument("--query", default="dog barking", help="the search text (default 'dog barking')")
    ap.add_argument("--commands", default=",".join(COMMANDS),
                    help=f"which commands to time, comma-separated (default all: {','.join(COMMANDS)})")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.commands.split(",") if n.strip()]
    unknown = [n for n in names if n not in COMMANDS]
    if unknown or not names:
        ap.error(f"--commands takes some of {', '.join(COMMANDS)}; got {args.commands!r}")
    every = {"search": ["search", args.query, "--index", args.index, "--json"], "version": ["--version"],
             "help": ["--help"], "info": ["info", "--index", args.index, "--json"]}
    commands = {name: every[name] for name in names}
    with tempfile.TemporaryDirectory(prefix="cli_latency_") as tmp:
        trees = {"now": REPO}
        if args.before:
            trees["before"] = extract(args.before, Path(tmp))
        print(json.dumps(measure(trees, commands, args.runs), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
