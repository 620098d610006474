"""A search through `soundsift serve` against a `soundsift search` command (run by hand).

Starts ``soundsift serve`` on an existing index (its own process, a free port), waits until it
answers, then times, in one run: ``--calls`` command-line searches (``soundsift search Q --index
INDEX --json``, each loading the model) and ``--queries`` HTTP text searches (``GET /search``),
plus as many "more like this" requests (``GET /similar?file=ID``), and prints the medians and the
ratio of a command-line search to an HTTP one::

    .venv/bin/python benchmarks/serve.py INDEX [--queries 30] [--calls 3]
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["dog barking", "rain on a roof", "a bell", "door slam", "footsteps", "applause", "a car horn",
           "birds singing", "thunder", "a telephone ringing"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("index", help="an index name or folder")
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--calls", type=int, default=3)
    args = ap.parse_args()

    cli = [sys.executable, "-m", "ui.cli"]
    server = subprocess.Popen([*cli, "serve", "--index", args.index, "--port", "0"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()
        found = re.search(r"on (http://[^/\s]+)/", line)
        if not found:
            raise SystemExit(f"soundsift serve did not start: {line}{server.stderr.read()}")
        url = found.group(1)

        def fetch(path: str) -> list:
            with urllib.request.urlopen(url + path, timeout=120) as r:
                return json.loads(r.read())
        first = fetch(f"/search?q={quote(QUERIES[0])}&k=10")            # warm
        http_times, similar_times = [], []
        for i in range(args.queries):
            t = time.perf_counter()
            fetch(f"/search?q={quote(QUERIES[i % len(QUERIES)])}&k=10")
            http_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            fetch(f"/similar?file={first[i % len(first)]['file_id']}&k=10")
            similar_times.append(time.perf_counter() - t)
        cli_times = []
        for i in range(args.calls):
            t = time.perf_counter()
            subprocess.run([*cli, "search", QUERIES[i % len(QUERIES)], "--index", args.index, "--json", "-k", "10"],
                           cwd=ROOT, check=True, capture_output=True)
            cli_times.append(time.perf_counter() - t)
    finally:
        server.terminate()
        server.wait(60)
    h, s, c = (statistics.median(x) for x in (http_times, similar_times, cli_times))
    print(f"{args.index}: HTTP text search {h * 1000:.1f} ms (median of {len(http_times)}, slowest "
          f"{max(http_times) * 1000:.1f} ms), HTTP more-like-this {s * 1000:.1f} ms, command-line search "
          f"{c:.2f} s (median of {len(cli_times)}): {c / h:.0f}× the HTTP search")


if __name__ == "__main__":
    main()
