"""A search through `soundsift serve` against a `soundsift search` command (run by hand).

Starts ``soundsift serve`` on an existing index (its own process, a free port), waits until it
answers, then times, in one run: ``--calls`` command-line searches (``soundsift search Q --index
INDEX --json``, each loading the model) and ``--queries`` HTTP text searches (``GET /search``),
plus as many "more like this" requests (``GET /similar?file=ID``), and prints the medians and the
ratio of a command-line search to an HTTP one::

    .venv/bin/python benchmarks/serve.py INDEX [--queries 30] [--calls 3]

``--burst N`` measures instead a burst of N connections opened at once (a page asking for 30
previews, ten of them …) while ``--load`` threads keep the server searching, against the
server as it is and with socketserver's listen backlog of 5 (``--old-backlog``), each started
afresh: how many were answered, got 503 or failed (no connection within ``--connect-timeout``
seconds, refused, reset), how many connects waited a second or more (the kernel dropped their
handshake and the client retried), and the slowest connect::

    .venv/bin/python benchmarks/serve.py INDEX --burst 200 [--load 4] [--connect-timeout 3]

``--teardown N`` measures instead how long the process takes to end once it has said "stopped
serving" (SIGTERM after a search, a more-like-this and a clip's embedding), N times each, alternating
as it is and with its exit's garbage collection put back (``exit_without_collecting`` made a no-op),
and prints the medians and their ratio::

    .venv/bin/python benchmarks/serve.py INDEX --teardown 3
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["dog barking", "rain on a roof", "a bell", "door slam", "footsteps", "applause", "a car horn",
           "birds singing", "thunder", "a telephone ringing"]


@contextlib.contextmanager
def serving(index: str, backlog: int | None = None) -> Iterator[str]:
    """``soundsift serve --index INDEX --port 0`` in its own process (with ``backlog`` as its
    listen backlog, else its own) until the block ends; yields its url."""
    patch = "" if backlog is None else f"import ui.server; ui.server.SoundsiftServer.request_queue_size = {backlog}; "
    code = patch + "import sys; from ui.cli import main; sys.argv[0] = 'soundsift'; main()"
    server = subprocess.Popen([sys.executable, "-c", code, "serve", "--index", index, "--port", "0"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()
        found = re.search(r"on (http://[^/\s;]+)/", line)
        if not found:
            raise SystemExit(f"soundsift serve did not start: {line}{server.stderr.read()}")
        yield found.group(1)
    finally:
        server.terminate()
        server.wait(60)


def burst(url: str, n: int, connect_timeout: float, load: int) -> dict[str, float]:
    """Open ``n`` connections at once (a thread each, let go together), each asking GET /info,
    while ``load`` threads search over and over; what came of them."""
    parts = urlsplit(url)
    address = (parts.hostname, parts.port)
    #: (what came of it, seconds to connect (None: never connected), seconds to the end)
    outcomes: list[tuple[str, float | None, float]] = []
    gate, stop = threading.Barrier(n), threading.Event()

    def one() -> None:
        gate.wait()
        t, took = time.perf_counter(), None
        try:
            with socket.create_connection(address, timeout=connect_timeout) as sock:
                took = time.perf_counter() - t
                sock.settimeout(300)
                sock.sendall(b"GET /info HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                answer = b"".join(iter(lambda: sock.recv(65536), b""))
            what = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "no answer"
        except OSError as e:                # TimeoutError among them
            what = f"{type(e).__name__} {'connecting' if took is None else 'after connecting'}"
        outcomes.append((what, took, time.perf_counter() - t))

    def searching(i: int) -> None:
        while not stop.is_set():
            with urllib.request.urlopen(f"{url}/search?q={quote(QUERIES[i % len(QUERIES)])}&k=10", timeout=120) as r:
                r.read()
            i += 1
    loaders = [threading.Thread(target=searching, args=(i,)) for i in range(load)]
    clients = [threading.Thread(target=one) for _ in range(n)]
    for thread in loaders + clients:
        thread.start()
    for thread in clients:
        thread.join()
    stop.set()
    for thread in loaders:
        thread.join()
    counted: dict[str, float] = {}
    for what, _, _ in outcomes:
        counted[what] = counted.get(what, 0) + 1
    connects = [took for _, took, _ in outcomes if took is not None]
    counted["connects of 1 s or more"] = sum(took >= 1.0 for took in connects)
    counted["slowest connect (s)"] = round(max(connects, default=0.0), 3)
    counted["slowest end (s)"] = round(max(end for _, _, end in outcomes), 3)
    return counted


def compare_bursts(args: argparse.Namespace) -> None:
    """The burst with the listen backlog of 5 and with the server's own; printed side by side."""
    from ui.server import LISTEN_BACKLOG
    found = {}
    for backlog in (args.old_backlog, None):
        with serving(args.index, backlog) as url:
            with urllib.request.urlopen(f"{url}/search?q=warm&k=10", timeout=120) as r:     # model warm
                r.read()
            found[backlog or LISTEN_BACKLOG] = burst(url, args.burst, args.connect_timeout, args.load)
    for backlog, counted in found.items():
        failed = args.burst - sum(v for k, v in counted.items() if k.isdigit())
        print(f"backlog {backlog}: {args.burst} connections at once, {args.load} searching threads: "
              f"{json.dumps(counted)}; failed {failed:g}")
    (old, a), (new, b) = found.items()
    print(f"connects waiting a second or more: {a['connects of 1 s or more']:g} with backlog {old}, "
          f"{b['connects of 1 s or more']:g} with {new}; the last connection ended "
          f"{a['slowest end (s)'] / max(b['slowest end (s)'], 1e-6):.0f}× as late with {old}")


def teardown_seconds(index: str, collect: bool) -> tuple[float, float]:
    """SIGTERM to "stopped serving", and from there to the process's end, of ``soundsift serve
    --index INDEX`` after a few requests; ``collect``: with the exit's garbage collection."""
    import numpy as np
    import soundfile as sf
    patch = "import ui.cli.common; ui.cli.common.exit_without_collecting = lambda: None; " if collect else ""
    code = patch + "import sys; from ui.cli import main; sys.argv[0] = 'soundsift'; main()"
    server = subprocess.Popen([sys.executable, "-c", code, "serve", "--index", index, "--port", "0"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = server.stderr.readline()
    found = re.search(r"on (http://[^/\s;]+)/", line)
    if not found:
        server.kill()
        raise SystemExit(f"soundsift serve did not start: {line}{server.stderr.read()}")
    url = found.group(1)
    clip = io.BytesIO()
    sf.write(clip, 0.3 * np.sin(np.arange(5 * 48_000) * (2 * np.pi * 440 / 48_000)), 48_000, format="WAV")
    with urllib.request.urlopen(f"{url}/search?q=rain&k=5", timeout=300) as r:
        hits = json.loads(r.read())
    requests = [urllib.request.Request(f"{url}/similar?k=5", data=clip.getvalue(), method="POST")]
    requests += [f"{url}/similar?file={hits[0]['file_id']}&k=5"] if hits else []
    for request in requests:
        with urllib.request.urlopen(request, timeout=300) as r:
            r.read()
    start = time.perf_counter()
    server.send_signal(signal.SIGTERM)
    for line in server.stderr:
        if "stopped serving" in line:
            break
    stopped = time.perf_counter()
    server.stderr.read()
    server.wait(300)
    return stopped - start, time.perf_counter() - stopped


def compare_teardowns(args: argparse.Namespace) -> None:
    """The time from "stopped serving" to the process's end, as it is and collecting at exit."""
    found: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.teardown):
        for collect in (True, False):
            found[collect].append(teardown_seconds(args.index, collect)[1])
    now, before = statistics.median(found[False]), statistics.median(found[True])
    print(f"{args.index}: from 'stopped serving' to the process's end, median of {args.teardown}: "
          f"{now:.2f} s as it is ({', '.join(f'{x:.2f}' for x in found[False])}), {before:.2f} s collecting "
          f"at exit ({', '.join(f'{x:.2f}' for x in found[True])}): {before / max(now, 1e-6):.1f}× as long")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("index", help="an index name or folder")
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--burst", type=int, default=0, help="measure a burst of this many connections instead")
    ap.add_argument("--load", type=int, default=4, help="searching threads during the burst")
    ap.add_argument("--connect-timeout", type=float, default=3.0)
    ap.add_argument("--old-backlog", type=int, default=5, help="the backlog to compare with (socketserver's)")
    ap.add_argument("--teardown", type=int, default=0, help="measure the process's end, this many times, instead")
    args = ap.parse_args()
    if args.teardown:
        compare_teardowns(args)
        return
    if args.burst:
        compare_bursts(args)
        return

    cli = [sys.executable, "-m", "ui.cli"]
    with serving(args.index) as url:
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
    h, s, c = (statistics.median(x) for x in (http_times, similar_times, cli_times))
    print(f"{args.index}: HTTP text search {h * 1000:.1f} ms (median of {len(http_times)}, slowest "
          f"{max(http_times) * 1000:.1f} ms), HTTP more-like-this {s * 1000:.1f} ms, command-line search "
          f"{c:.2f} s (median of {len(cli_times)}): {c / h:.0f}× the HTTP search")


if __name__ == "__main__":
    main()
