"""Starting the page: ``streamlit run ui/app.py`` on one index, headless, no telemetry.

The index (and an optional model override) reach the script through environment
variables, so the script needs no argument parsing and tests can set them directly.
The process runs this module (:func:`main`): it opens the index and loads its model
(:func:`warm_up`) as soon as Streamlit serves, where the page's script runs only once a browser
connects, and its first search would start on the model only then.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import Future
from pathlib import Path

APP_SCRIPT = Path(__file__).resolve().parents[1] / "app.py"
INDEX_ENV = "SOUNDSIFT_UI_INDEX"
MODEL_ENV = "SOUNDSIFT_UI_MODEL"
DEFAULT_PORT = 8501
DEFAULT_HOST = "127.0.0.1"

log = logging.getLogger(__name__)


def streamlit_command(port: int = DEFAULT_PORT, host: str = DEFAULT_HOST,
                      python: str | None = None) -> list[str]:
    """The command line that serves the page on ``host:port`` (``streamlit run``'s arguments, to :func:`main`)."""
    from ui.components.uploads import MAX_UPLOAD_MB      # not imported by the server before it serves
    return [
        python or sys.executable, "-m", "ui.components.server", "run", str(APP_SCRIPT),
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


def index_dir_from_env() -> Path:
    """The index the page serves: $SOUNDSIFT_UI_INDEX (a name or a folder), else 'default'."""
    from engine.layout import resolve_index_dir
    return resolve_index_dir(os.environ.get(INDEX_ENV) or None).resolve()


def model_from_env() -> str | None:
    """A model override from $SOUNDSIFT_UI_MODEL; None uses the index's own model."""
    return os.environ.get(MODEL_ENV) or None


def open_index(index_dir: str, model: str | None):
    """The query layer (engine.query.SoundIndex) on ``index_dir``, with ``model`` or the index's own."""
    from engine.query import SoundIndex
    return SoundIndex.open(index_dir, model=model)


#: the page's index being opened by :func:`warm_up`, by (index folder, model) as the page's loader
#: (ui.components.resources.sound_index) asks for it; taken by the first such call (:func:`warming`)
_warming: dict[tuple[str, str | None], Future] = {}


#: how long :func:`warm_up` waits for Streamlit to start serving, at most, before it loads anyway
SERVING_WAIT_S = 30.0


def _server_stopped() -> bool:
    """Whether this process's Streamlit stopped (Ctrl+C), or never will serve (its main thread ended)."""
    from streamlit import runtime
    if not threading.main_thread().is_alive():
        return True
    return runtime.exists() and runtime.get_instance().state in (runtime.RuntimeState.STOPPING,
                                                                 runtime.RuntimeState.STOPPED)


def until_serving(limit: float = SERVING_WAIT_S) -> bool:
    """Wait until this process's Streamlit serves (its runtime started; at most ``limit`` s): False
    when it stopped instead. The warm-up's imports, run meanwhile, would hold up Streamlit's (its
    health check answered 0.6–0.8 s after the start without them, 1.4–2.1 s with them, on two
    shared cores: benchmarks/page_first_search.py)."""
    from streamlit import runtime
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and not _server_stopped():
        if runtime.exists() and runtime.get_instance().state != runtime.RuntimeState.INITIAL:
            return True
        time.sleep(0.05)
    return not _server_stopped()


def warm_up(after_start: bool = False) -> threading.Thread:
    """Open the page's index (:func:`index_dir_from_env`, :func:`model_from_env`) and load its
    model in a thread: a page's script runs only once a browser connects, and its first search
    would start on the model (about 3 s for soundsift-base: importing torch and transformers,
    building it) only then. The page's loader takes this very index, or the error opening it
    raised (:func:`warming`). ``after_start``: once this process's Streamlit serves, and not after
    it stopped. Returns the thread; join it to wait until the model is loaded."""
    key = (str(index_dir_from_env()), model_from_env())
    future: Future = Future()
    _warming[key] = future
    # not a daemon: a daemon thread stopped by the interpreter's exit inside torch's C++ aborts the
    # process ("terminate called without an active exception"); main ends the process sooner
    thread = threading.Thread(target=_warm, args=(key, future, after_start), name="soundsift-warm-up")
    thread.start()
    return thread


def _warm(key: tuple[str, str | None], future: Future, after_start: bool) -> None:
    """Open ``key``'s index into ``future``, then load its model (the index's own loads on first use)."""
    future.set_running_or_notify_cancel()
    if after_start and not until_serving():
        future.set_exception(RuntimeError("the page's server stopped before the index was opened"))
        return
    try:
        index = open_index(*key)
    except BaseException as e:      # raised by the page's loader, which shows it
        future.set_exception(e)
        return
    future.set_result(index)        # the page draws meanwhile; its first search waits for the model
    if after_start and _server_stopped():
        return
    from engine.errors import SoundsiftError
    try:
        index.model                 # under the index's lock: a search meanwhile waits for this load
    except SoundsiftError as e:     # raised again by the page's first search, which shows it
        log.info("the index's model did not load ahead of the first search: %s", e)
    except Exception:
        log.warning("the index's model did not load ahead of the first search", exc_info=True)


def warming(index_dir: str, model: str | None) -> Future | None:
    """The index :func:`warm_up` is opening on ``index_dir`` with ``model`` (a SoundIndex or the
    error opening it, once it is done), taken: a later call gets None (and opens the index anew)."""
    return _warming.pop((index_dir, model), None)


def main(argv: list[str] | None = None) -> None:
    """The page's server process: start opening the index and loading its model
    (:func:`warm_up`, on the index :func:`page_env` named), then run Streamlit's command line on
    ``argv`` (default: this process's arguments, ``run ui/app.py …``)."""
    from streamlit.web import cli

    warming_up = warm_up(after_start=True)
    code: int | str | None = 1
    try:
        cli.main(args=argv, prog_name="streamlit")
    except SystemExit as e:
        code = e.code
        raise
    finally:
        if warming_up.is_alive():   # stopped (Ctrl+C) while the model loads: Python's exit would wait for it
            _exit_now(code)


def _exit_now(code: int | str | None) -> None:
    """End the process now, logs and streams flushed: not after the model's load (seconds), nor
    inside it (a thread in torch's C++ stopped by the interpreter's exit aborts the process, as
    ``soundsift serve`` and the trainer found)."""
    logging.shutdown()
    if isinstance(code, str):
        print(code, file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0 if code is None else code if isinstance(code, int) else 1)


if __name__ == "__main__":
    # this module by its own name: the page's loader takes what that module's warm_up started
    from ui.components.server import main as serve
    serve()
