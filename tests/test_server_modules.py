"""ui/server.py split by job (ui.http_request, ui.http_routes, ui.http_origins, ui.http_connections,
ui.http_handler): each part imports on its own, first in a fresh interpreter (no import cycle);
every name ui.server held before the split is importable from it still, as the very object its
part holds; the parts log as ui.server; SoundsiftServer is put together from them."""
from __future__ import annotations

import importlib
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ui.server

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("ui.http_request", "ui.http_routes", "ui.http_origins", "ui.http_connections", "ui.http_handler")
#: the public names ui.server defined before its split (its own, not those it imported; its
#: private helpers are imported from the part that holds them)
NAMES_BEFORE_SPLIT = (
    "log", "DEFAULT_PORT", "MAX_K", "MAX_AUDIO_SECONDS", "HUNG_UP", "CLIENT_TIMEOUT_SECONDS",
    "HEAD_TIMEOUT_SECONDS", "DEFAULT_MAX_CONNECTIONS", "SEND_BLOCK_BYTES", "MAKE_ROOM_SECONDS",
    "RETRY_AFTER_SECONDS", "LISTEN_BACKLOG", "PREFLIGHT_MAX_AGE", "CORS_REQUEST_HEADERS", "NOTES_HEADER",
    "CORS_EXPOSED_HEADERS", "MAX_LINGERING", "REFUSED_HEAD_SECONDS", "REFUSED_HEAD_BYTES", "LINGER_SECONDS",
    "LINGER_BYTES", "FILTER_PARAMS", "ID_ROUTES", "NotFound", "ForeignHost", "ForeignOrigin",
    "MethodNotAllowed", "RangeNotSatisfiable", "TooLarge", "RequestTimeout", "Query", "SoundsiftHandler",
    "Route", "SoundsiftServer", "names_this_machine", "cors_origin", "serve",
)


@pytest.mark.parametrize("module", (*PARTS, "ui.server"))
def test_each_part_imports_first_in_a_fresh_interpreter(module):
    """Imported before any other part (as a script importing only it would), it loads: no part
    needs another to be loaded first, and no two import each other at load time."""
    code = f"import {module}; print({module}.__file__)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(ROOT), f"{module} came from {done.stdout.strip()}, not {ROOT}"


def test_every_name_ui_server_held_is_importable_from_it():
    missing = [name for name in NAMES_BEFORE_SPLIT if not hasattr(ui.server, name)]
    assert not missing
    assert set(NAMES_BEFORE_SPLIT) <= set(ui.server.__all__)


@pytest.mark.parametrize("part", PARTS)
def test_re_exported_names_are_the_objects_the_parts_hold(part):
    """``ui.server.X`` is ``ui.http_….X`` (not a copy): a class patched or compared through
    either name is the same class."""
    module = importlib.import_module(part)
    shared = [name for name in ui.server.__all__ if name in vars(module)]
    assert shared, f"ui.server re-exports nothing of {part}"
    assert [name for name in shared if getattr(ui.server, name) is not getattr(module, name)] == []


@pytest.mark.parametrize("part", ("ui.http_handler", "ui.http_connections"))
def test_the_parts_log_as_ui_server(part):
    """`soundsift serve -v` and the tests' caplog follow the logger ui.server: the lines of the
    parts (a client gone away, a connection refused) are still its lines."""
    assert importlib.import_module(part).log is logging.getLogger("ui.server") is ui.server.log


def test_the_server_is_put_together_from_its_parts():
    """SoundsiftServer takes its connection limit, its Host/CORS checks and its route answers from
    the parts, and answers the routes it answered before the split."""
    from ui.http_connections import ConnectionLimit
    from ui.http_origins import OriginPolicy
    from ui.http_request import RequestBody
    from ui.http_routes import RouteAnswers
    assert all(issubclass(ui.server.SoundsiftServer, part) for part in (ConnectionLimit, OriginPolicy, RouteAnswers))
    assert issubclass(ui.server.SoundsiftHandler, RequestBody)
    server = ui.server.SoundsiftServer(None, port=0, max_connections=3, allow_origins=["HTTP://LocalHost:80/"])
    try:
        assert sorted(server.routes) == [("GET", "/audio"), ("GET", "/facets"), ("GET", "/files"), ("GET", "/info"),
                                         ("GET", "/search"), ("GET", "/sheet"), ("GET", "/similar"), ("GET", "/tag"),
                                         ("POST", "/similar"), ("POST", "/tag")]
        assert server.routes[("POST", "/tag")].params == ("labels", "k", "top")
        assert server.max_connections == 3 and server.allow_origins == frozenset({"http://localhost"})
        assert server.route("HEAD", "/files/7").path == "/files"
    finally:
        server.server_close()


def test_a_limit_under_one_is_refused_before_anything_listens():
    with pytest.raises(ValueError, match="max_connections must be at least 1, got 0"):
        ui.server.SoundsiftServer(None, port=0, max_connections=0, allow_origins=["*"])


def test_the_refused_head_time_is_read_from_ui_http_connections(monkeypatch):
    """Where tests patch REFUSED_HEAD_SECONDS now (ui.http_connections): a refusal waits that long."""
    import ui.http_connections
    monkeypatch.setattr(ui.http_connections, "REFUSED_HEAD_SECONDS", 1000.0)
    a, b = socket.socketpair()
    with a, b:
        refusal = ui.http_connections._Refusal(a, "127.0.0.1")
        assert refusal.until > time.monotonic() + 500
