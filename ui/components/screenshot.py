"""Open the page in headless Chromium and save a screenshot (README image, browser test).

    python -m ui.components.screenshot --index demo --query "a siren" --out docs/screenshot.png

starts ``soundsift ui`` on a free port, opens ``/?q=…``, waits until a result card is
shown, saves the PNG and stops the server. Needs Debian's ``chromium`` (apt-get install
chromium) and the ``playwright`` Python package (no browser download: the system
Chromium is driven).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import urlencode

from ui.components.server import wait_until_healthy

CHROMIUM = os.environ.get("SOUNDSIFT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    """A TCP port free on localhost right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(index_dir: str | Path, port: int | None = None, model: str | None = None,
            log: Path | None = None, timeout: float = 60.0) -> Iterator[str]:
    """Run ``soundsift ui`` on ``index_dir`` (localhost) and yield its base URL."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "ui.cli", "ui", "--index", str(index_dir), "--port", str(port)]
    if model:
        cmd += ["--model", model]
    out = open(log, "wb") if log else subprocess.DEVNULL
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(root))
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, timeout=timeout, proc=proc)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()


def search_url(base: str, query: str) -> str:
    return f"{base}/?{urlencode({'q': query})}"


@contextmanager
def chromium_page(width: int = 1400, height: int = 1000) -> Iterator[object]:
    """A playwright page in the system's headless Chromium."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        raise FileNotFoundError(f"{CHROMIUM} is missing: apt-get install -y chromium "
                                "(or point $SOUNDSIFT_CHROMIUM at a Chromium binary)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def wait_for_results(page, timeout_ms: float = 60_000) -> None:
    """Wait until the first result card's "More like this" button is shown."""
    page.get_by_role("button", name="More like this").first.wait_for(state="visible", timeout=timeout_ms)


def capture(index_dir: str | Path, query: str, out: Path, *, model: str | None = None,
            width: int = 1400, height: int = 1000) -> None:
    """Serve the page on ``index_dir``, search ``query``, save a screenshot to ``out``."""
    with serving(index_dir, model=model) as base, chromium_page(width, height) as page:
        page.goto(search_url(base, query))
        wait_for_results(page)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(1500)  # let images and players finish drawing
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=False)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", required=True, help="index name or folder")
    ap.add_argument("--query", required=True, help="text to search")
    ap.add_argument("--out", type=Path, default=Path("docs/screenshot.png"))
    ap.add_argument("--model", default=None)
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=1000)
    args = ap.parse_args(argv)
    capture(args.index, args.query, args.out, model=args.model, width=args.width, height=args.height)
    print(args.out)


if __name__ == "__main__":
    main()
