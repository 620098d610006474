"""The page's first search, with and without loading the index and its model as the server starts
(run by hand).

``soundsift ui`` serves one index, so its model is known seconds before anyone searches; since
session 39 the server process (ui.components.server.main) opens the index and loads its model in
a background thread (ui.components.server.warm_up) as soon as Streamlit serves.
Before, the page's script loaded them only once a browser connected and searched.

Two measurements:

1. Where a cold first search's time goes, in a fresh Python process: importing Streamlit, the
   query layer, torch and transformers; building the model; opening the index; the first and a
   second text search.
2. The page in headless Chromium (Debian's /usr/bin/chromium, as tests/test_ui_browser.py), each
   run a fresh server on the index, "before" started as ``python -m streamlit run ui/app.py`` (the
   command before session 39: the same page, no warm-up) and "after" as ``soundsift ui`` starts it
   (ui.components.server.streamlit_command), in turn: the server's start until its health check
   answers, then ``--delay`` seconds (a user opening the browser), then ``/?q=QUERY`` until the
   first result card shows; then another search in a new session of the browser (what a warm
   server takes, the browser's loading of the page included). The server is stopped with SIGINT (Ctrl+C) and its exit code checked.
   Each one's median and the ratio after/before, measured in this run.

    .venv/bin/python benchmarks/page_first_search.py                     # the demo index (make demo)
    .venv/bin/python benchmarks/page_first_search.py --index /tmp/idx --runs 5 --delay 0 3
"""
from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ui.components.screenshot import chromium_page, free_port, search_url, wait_for_results  # noqa: E402
from ui.components.server import page_env, streamlit_command, wait_until_healthy  # noqa: E402

PARTS = ("import streamlit", "import engine.query", "import torch", "import transformers",
         "open the index", "build the model", "first search", "second search")

CHILD = """
import json, sys, time
index, query = sys.argv[1], sys.argv[2]
times, last = {}, time.perf_counter()
def lap(name):
    global last
    now = time.perf_counter(); times[name] = now - last; last = now
import streamlit; lap("import streamlit")
from engine.query import SoundIndex; lap("import engine.query")
import torch; lap("import torch")
import transformers; lap("import transformers")
idx = SoundIndex.open(index); lap("open the index")
idx.model; lap("build the model")
idx.search_text(query, k=10); lap("first search")
idx.search_text(query + " far away", k=10); lap("second search")
print(json.dumps(times))
"""


def parts(index: str, query: str, runs: int) -> None:
    """Part 1: the cold first search's parts, each run a fresh process (medians)."""
    seen: dict[str, list[float]] = {p: [] for p in PARTS}
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", CHILD, index, query], capture_output=True, text=True,
                             check=True, cwd=str(ROOT)).stdout
        for name, t in json.loads(out.splitlines()[-1]).items():
            seen[name].append(t)
    print(f"a cold first search's parts (a fresh process each run; median of {runs}):")
    for name in PARTS:
        print(f"  {name:22s} {statistics.median(seen[name]):6.2f} s")
    model = sum(statistics.median(seen[p]) for p in ("import torch", "import transformers", "build the model"))
    print(f"  the model in all       {model:6.2f} s (what the warm-up takes off the first search)")


def before_command(port: int) -> list[str]:
    """The server's command before session 39: ``python -m streamlit run ui/app.py …``."""
    cmd = streamlit_command(port)
    return cmd[:1] + ["-m", "streamlit"] + cmd[3:]


def page_once(page, index: str, query: str, cmd: list[str], port: int, delay: float) -> dict[str, float]:
    """Start a server with ``cmd``, search ``query`` ``delay`` s after it is healthy, stop it."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=page_env(index), cwd=str(ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, timeout=60, proc=proc)
        healthy = time.perf_counter()
        time.sleep(delay)
        asked = time.perf_counter()
        page.goto(search_url(url, query))
        wait_for_results(page, timeout_ms=120_000)
        shown = time.perf_counter()
        page.goto("about:blank")
        again = time.perf_counter()
        page.goto(search_url(url, query + " far away"))
        wait_for_results(page, timeout_ms=120_000)
        warm = time.perf_counter() - again
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise RuntimeError(f"{' '.join(cmd[1:3])}: still running 30 s after Ctrl+C") from None
    page.goto("about:blank")
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd[1:3])} exited with code {code} after Ctrl+C")
    return {"start until healthy": healthy - start, "first search": shown - asked, "start until results": shown - start,
            "a later search": warm}


def page_runs(index: str, query: str, runs: int, delays: list[float]) -> None:
    """Part 2: before and after in turn, ``runs`` times for each delay."""
    print(f"\nthe page in Chromium, query {query!r} (a fresh server each run; median of {runs}):")
    with chromium_page() as page:
        port = free_port()
        page_once(page, index, query, streamlit_command(port), port, 0.0)     # the page cache, warm
        for delay in delays:
            times: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
            for _ in range(runs):
                port = free_port()
                times["before"].append(page_once(page, index, query, before_command(port), port, delay))
                port = free_port()
                times["after"].append(page_once(page, index, query, streamlit_command(port), port, delay))
            print(f"  browser opened {delay:g} s after the server answers:")
            for step in ("start until healthy", "first search", "start until results", "a later search"):
                old = statistics.median(t[step] for t in times["before"])
                new = statistics.median(t[step] for t in times["after"])
                print(f"    {step:20s} before {old:6.2f} s  after {new:6.2f} s  after/before {new / old:5.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default="demo", help="index name or folder (default: demo, from `make demo`)")
    ap.add_argument("--query", default="a siren")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--delay", type=float, nargs="+", default=[0.0, 3.0],
                    help="seconds between the server's health check answering and the browser's search")
    args = ap.parse_args()
    from engine.layout import resolve_index_dir
    index = str(resolve_index_dir(args.index).resolve())
    parts(index, args.query, args.runs)
    page_runs(index, args.query, args.runs, args.delay)


if __name__ == "__main__":
    main()
