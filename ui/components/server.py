"""Starting the page: ``streamlit run ui/app.py`` on one index, headless, no telemetry.

The index (and an optional model override) reach the script through environment
variables, so the script needs no argument parsing and tests can set them directly.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ui.components.uploads import MAX_UPLOAD_MB

APP_SCRIPT = Path(__file__).resolve().parents[1] / "app.py"
INDEX_ENV = "SOUNDSIFT_UI_INDEX"
MODEL_ENV = "SOUNDSIFT_UI_MODEL"
DEFAULT_PORT = 8501
DEFAULT_HOST = "127.0.0.1"


def streamlit_command(port: int = DEFAULT_PORT, host: str = DEFAULT_HOST,
                      python: str | None = None) -> list[str]:
    """The command line that serves the page on ``host:port``."""
    return [
        python or sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT),
        "--server.port", str(int(port)),
        "--server.address", host,
        "--server.headless", "true",
        "--server.maxUploadSize", str(MAX_UPLOAD_MB),
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--browser.serverAddress", host,
        "--browser.serverPort", str(int(port)),
        "--global.developmentMode", "false",
        "--client.toolbarMode", "minimal",
    ]


def page_env(index_dir: str | Path, model: str | None = None,
             base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of the Streamlit process: the index (and model) to open."""
    env = dict(os.environ if base is None else base)
    env[INDEX_ENV] = str(index_dir)
    if model:
        env[MODEL_ENV] = str(model)
    else:
        env.pop(MODEL_ENV, None)
    # the script imports engine/ and ui/ from this checkout, wherever it is started
    root = str(APP_SCRIPT.parents[1])
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in paths if p != root])
    # Streamlit reads these too; they keep a first start from asking for an e-mail
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    env["STREAMLIT_SERVER_HEADLESS"] = "true"
    return env


def start_page(index_dir: str | Path, *, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST,
               model: str | None = None, **popen_kw) -> subprocess.Popen:
    """Start serving the page in a child process (the caller stops it)."""
    return subprocess.Popen(streamlit_command(port, host), env=page_env(index_dir, model), **popen_kw)


def exec_page(index_dir: str | Path, *, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST,
              model: str | None = None) -> None:
    """Become the Streamlit server (exec): Ctrl+C and signals reach it directly."""
    cmd = streamlit_command(port, host)
    os.execve(cmd[0], cmd, page_env(index_dir, model))


def wait_until_healthy(url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """Poll Streamlit's health endpoint until it answers 'ok'; TimeoutError otherwise."""
    health = url.rstrip("/") + "/_stcore/health"
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the page's server exited with code {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(health, timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError) as e:
            last = e
        time.sleep(0.2)
    raise TimeoutError(f"{health} did not answer within {timeout:.0f} s (last error: {last})")
