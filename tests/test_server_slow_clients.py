"""`soundsift serve` (ui/server.py) under slow or many clients: a request head dripped a byte at
a time or a kept-alive connection left idle is closed after the head timeout, connections over
the limit get a 503 with Retry-After (and the limit frees as connections end), and a slow but
steady reader of a large answer is not cut off by the send timeout."""
from __future__ import annotations

import contextlib
import json
import select
import socket
import socketserver
import threading
import time
from typing import Iterator

import pytest

from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import tone, write
from tests.index_fakes import FakeModel
from tests.test_server import get, served_long  # noqa: F401 (a fixture, used by name)
from tests.test_server_audit import _address, _answers
from ui.server import SoundsiftHandler, SoundsiftServer, serve

SR = 16_000
#: a deadline only (the test fails when it passes): never how fast the server must be
PATIENCE = 30.0


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Iterator[SoundIndex]:
    """One beep, indexed, opened."""
    tmp = tmp_path_factory.mktemp("slow_clients")
    write(tmp / "lib" / "beep.wav", tone(880, 1.0, SR), SR)
    build_index([tmp / "lib"], tmp / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp / "idx", model=FakeModel()) as opened:
        yield opened


@contextlib.contextmanager
def serving(index: SoundIndex, **options) -> Iterator[str]:
    """As tests.test_server.serving, with ``options`` for serve (max_connections)."""
    ready, stop, found = threading.Event(), threading.Event(), {}

    def started(server):
        found["url"] = server.url
        ready.set()
    thread = threading.Thread(target=serve, args=(index,), kwargs=dict(port=0, ready=started, stop=stop, **options))
    thread.start()
    try:
        assert ready.wait(PATIENCE)
        yield found["url"]
    finally:
        stop.set()
        thread.join(PATIENCE)
    assert not thread.is_alive()


def _closed_by_server(sock: socket.socket, wait: float) -> bool:
    """Whether the server closes ``sock`` within ``wait`` seconds (it reads end of file, or a
    reset), what it sent before that read and dropped."""
    deadline = time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        if select.select([sock], [], [], left)[0]:
            try:
                if sock.recv(65536) == b"":
                    return True
            except ConnectionResetError:
                return True
    return False


def _length(raw: bytes) -> int:
    """The Content-Length of the answer whose head ``raw`` begins with."""
    head = raw.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
    return int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])


def test_a_request_head_dripped_a_byte_at_a_time_is_cut_off(index, monkeypatch):
    """Slowloris: each byte came within the 120 s a read may wait, so a head that never ended
    held its connection and thread for ever; now the whole head is due within the head timeout
    (30 s; 1 s here)."""
    monkeypatch.setattr(SoundsiftHandler, "head_timeout", 1.0, raising=False)
    head = b"GET /info HTTP/1.1\r\nHost: localhost\r\nX-Pad: " + b"a" * 5000
    with serving(index) as url, socket.create_connection(_address(url), timeout=PATIENCE) as sock:
        deadline, cut = time.monotonic() + PATIENCE, False
        for byte in head:                   # 0.05 s apart: never the 120 s a single read may wait
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                cut = True
                break
            if _closed_by_server(sock, 0.05) or time.monotonic() > deadline:
                cut = time.monotonic() <= deadline
                break
        assert cut, "the server still reads a request head it has been sent for 30 s"
        assert get(f"{url}/info")[0] == 200


def test_an_idle_kept_alive_connection_is_closed(index, monkeypatch):
    """A connection kept alive after its answer and then silent was held for the 120 s read
    timeout; now for the head timeout (30 s; 1 s here). Requests sent on it in time are answered."""
    monkeypatch.setattr(SoundsiftHandler, "head_timeout", 1.0, raising=False)
    request = b"GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n"
    with serving(index) as url, socket.create_connection(_address(url), timeout=PATIENCE) as sock:
        for _ in range(2):                  # kept alive: two requests, one connection
            sock.sendall(request)
            raw = b""
            while b"\r\n\r\n" not in raw or len(raw.partition(b"\r\n\r\n")[2]) < _length(raw):
                raw += sock.recv(65536)
            (status, headers, _), = _answers(raw)
            assert status == 200 and "connection" not in headers
        assert _closed_by_server(sock, PATIENCE)


def _busy(url: str) -> socket.socket:
    """A connection past its request head, sending its body (Expect: 100-continue says when)."""
    sock = socket.create_connection(_address(url), timeout=PATIENCE)
    sock.sendall(b"POST /similar HTTP/1.1\r\nHost: localhost\r\nContent-Length: 50000\r\n"
                 b"Expect: 100-continue\r\n\r\n")
    got = b""
    while b"\r\n\r\n" not in got:
        got += sock.recv(4096)
    assert got.startswith(b"HTTP/1.1 100"), got
    sock.sendall(b"RIFF")
    return sock


def _answered(url: str) -> int:
    """The status of GET /info, asked again after each 503 (a place frees once a thread has
    ended, or has started and can be closed: not at once) for PATIENCE at most."""
    deadline = time.monotonic() + PATIENCE
    while (status := get(f"{url}/info")[0]) == 503 and time.monotonic() < deadline:
        time.sleep(0.05)
    return status


def test_connections_over_the_limit_get_503_with_retry_after(index, caplog):
    """Every connection got a thread, however many came; now at most max_connections are served
    and, while all of them are busy, one more is answered 503 (JSON, Retry-After, Connection:
    close) without waiting. Once a served connection ends, its place is free again."""
    import logging
    caplog.set_level(logging.DEBUG, logger="ui.server")
    with serving(index, max_connections=2) as url:
        held = [_busy(url) for _ in range(2)]
        try:
            with socket.create_connection(_address(url), timeout=PATIENCE) as sock:
                sock.sendall(b"GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n")
                raw = b"".join(iter(lambda: sock.recv(65536), b""))     # answered, then closed
            (status, headers, body), = _answers(raw)
            assert status == 503 and headers["retry-after"].isdigit() and headers["connection"] == "close"
            assert headers["content-type"] == "application/json" and "--max-connections" in json.loads(body)["error"]
            assert any("refused (503)" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
            held.pop().close()              # one place frees once its thread sees the hang-up
            assert _answered(url) == 200
        finally:
            for sock in held:
                sock.close()


def test_over_the_limit_a_connection_waiting_for_its_request_makes_room(index, monkeypatch):
    """With every place taken, one by a connection that sends nothing more (kept alive, or
    slowloris), a new connection takes its place at once instead of being refused until the
    head timeout ends it; a busy connection keeps its place."""
    monkeypatch.setattr(SoundsiftHandler, "head_timeout", 600.0, raising=False)   # not what closes it
    with serving(index, max_connections=2) as url:
        busy = _busy(url)
        with socket.create_connection(_address(url), timeout=PATIENCE) as idle:
            idle.sendall(b"GET /info HTTP/1.1\r\nHost: local")           # half a head, then nothing
            try:
                assert _answered(url) == 200
                assert _closed_by_server(idle, PATIENCE)
                busy.sendall(b"x" * 100)                                 # still read: not closed
                assert not _closed_by_server(busy, 0.2)
            finally:
                busy.close()


def test_the_limit_is_a_serve_option(tmp_path, monkeypatch, tiny_clap_dir):
    """`soundsift serve --max-connections N` reaches the server; 0 is refused as Click refuses a
    value out of range."""
    from typer.testing import CliRunner

    import ui.server
    from ui.cli import app
    write(tmp_path / "lib" / "beep.wav", tone(440, 0.5, SR), SR)
    build_index([tmp_path / "lib"], tmp_path / "idx", str(tiny_clap_dir), workers=0, progress=False)
    seen = {}
    monkeypatch.setattr(ui.server, "serve", lambda *a, **kw: seen.update(kw))
    result = CliRunner().invoke(app, ["serve", "--index", str(tmp_path / "idx"), "--max-connections", "5"])
    assert result.exit_code == 0, result.output
    assert seen["max_connections"] == 5
    result = CliRunner().invoke(app, ["serve", "--index", str(tmp_path / "idx"), "--max-connections", "0"])
    assert result.exit_code == 2


def test_a_slow_steady_reader_of_a_long_preview_is_not_cut_off(served_long, monkeypatch):  # noqa: F811
    """A preview was written a read block at a time (393 kB here), and the socket's timeout
    bounds a whole write: a client reading steadily but slower than a block per timeout (a slow
    network) was cut off mid-answer. Now a write is 64 kB, so only a stall ends it. The
    server's send buffer is kept small here (as a slow network's would fill) and the timeout
    is 1 s (120 s served)."""
    url, file_id = served_long
    monkeypatch.setattr(SoundsiftHandler, "timeout", 1.0)
    original = socketserver.TCPServer.get_request

    def small_buffer(self):
        sock, address = original(self)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32_768)
        return sock, address
    monkeypatch.setattr(SoundsiftServer, "get_request", small_buffer)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32_768)
        sock.settimeout(PATIENCE)
        sock.connect(_address(url))
        sock.sendall(f"GET /audio/{file_id}?start=0&end=2 HTTP/1.1\r\nHost: localhost\r\n"
                     "Connection: close\r\n\r\n".encode())
        raw = b""
        while chunk := sock.recv(16_384):   # at most 320 kB/s: 64 kB in 0.2 s, 393 kB in 1.2 s
            raw += chunk
            time.sleep(0.05)
    (status, headers, body), = _answers(raw)
    assert status == 200 and len(body) == int(headers["content-length"]) > 1_500_000
