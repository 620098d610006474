"""`soundsift serve --allow-origin`: the 503 a connection gets when every place is busy (written
by the listening thread) carries the CORS headers of its request's Origin, as every other answer
does, so a page on an allowed origin reads its status and Retry-After instead of an opaque
network error. The head may come after the connection is refused: it is waited for, without
blocking the listening thread, for REFUSED_HEAD_SECONDS; a head that does not come by then gets
the 503 with ``Vary: Origin`` alone."""
from __future__ import annotations

import contextlib
import json
import socket
import threading
from typing import Iterator

import pytest

import ui.http_connections
from engine.query import SoundIndex
from tests.test_server_audit import _address, _answers
from tests.test_server_slow_clients import PATIENCE, _busy
from tests.test_server_slow_clients import index  # noqa: F401 (a fixture, used by name)
from ui.server import SoundsiftServer, serve

PAGE = "http://localhost:3000"


@contextlib.contextmanager
def full_server(index: SoundIndex, allow_origins: tuple[str, ...] = (PAGE,)  # noqa: F811
                ) -> Iterator[tuple[str, threading.Event]]:
    """``index`` served with one place, taken by a busy connection; yields the url and an event
    set each time the listening thread has refused a connection (returned from doing so)."""
    ready, stop, found, refused = threading.Event(), threading.Event(), {}, threading.Event()

    def started(server: SoundsiftServer) -> None:
        refuse = server._refuse

        def refusing(sock, client_address):
            refuse(sock, client_address)
            refused.set()
        server._refuse = refusing
        found["url"] = server.url
        ready.set()
    thread = threading.Thread(target=serve, args=(index,), kwargs=dict(
        port=0, ready=started, stop=stop, max_connections=1, allow_origins=allow_origins))
    thread.start()
    try:
        assert ready.wait(PATIENCE)
        busy = _busy(found["url"])
        try:
            yield found["url"], refused
        finally:
            busy.close()
    finally:
        stop.set()
        thread.join(PATIENCE)
    assert not thread.is_alive()


def refused_answer(url: str, refused: threading.Event, head: bytes, after_refusal: bool = False
                   ) -> tuple[int, dict[str, str], bytes]:
    """The answer to ``head`` on a new connection, sent at once or once the listening thread has
    refused the connection (``after_refusal``: it had no head to read then)."""
    refused.clear()
    with socket.create_connection(_address(url), timeout=PATIENCE) as sock:
        if after_refusal:
            assert refused.wait(PATIENCE)
        if head:
            sock.sendall(head)
        raw = b"".join(iter(lambda: sock.recv(65536), b""))     # answered, then closed
    (answer,) = _answers(raw)
    return answer


def get_info(origin: str | None, origin_header: str = "Origin") -> bytes:
    said = f"{origin_header}: {origin}\r\n" if origin is not None else ""
    return f"GET /info HTTP/1.1\r\nHost: localhost\r\n{said}\r\n".encode("ascii")


@pytest.mark.parametrize("after_refusal", [False, True])
@pytest.mark.parametrize("origin_header", ["Origin", "origin"])
def test_a_busy_503_carries_the_cors_headers_of_an_allowed_origin(index, after_refusal, origin_header):  # noqa: F811
    with full_server(index) as (url, refused):
        status, headers, body = refused_answer(url, refused, get_info(PAGE, origin_header), after_refusal)
    assert status == 503 and headers["retry-after"].isdigit() and "--max-connections" in json.loads(body)["error"]
    assert headers["access-control-allow-origin"] == PAGE and headers["vary"] == "Origin"
    assert "Retry-After" in headers["access-control-expose-headers"].split(", ")


def test_a_busy_503_names_no_other_origin(index):  # noqa: F811
    """Another origin, none, or one after 64 kB of head (more than is read for it: a browser's
    head is a few kB) get the 503 with Vary: Origin alone."""
    padded = get_info(PAGE).replace(b"Origin:", b"X-Pad: " + b"a" * 70_000 + b"\r\nOrigin:")
    with full_server(index) as (url, refused):
        for head in (get_info("http://evil.example"), get_info(None), padded):
            status, headers, _ = refused_answer(url, refused, head, after_refusal=True)
            assert status == 503 and headers["vary"] == "Origin"
            assert not any(name.startswith("access-control-") for name in headers), headers


def test_a_head_that_does_not_come_gets_the_503_without_an_origin(index, monkeypatch):  # noqa: F811
    """A connection that sends nothing (a browser's preconnect) is not held for ever: after
    REFUSED_HEAD_SECONDS it gets its 503, whose origin is not known."""
    monkeypatch.setattr(ui.http_connections, "REFUSED_HEAD_SECONDS", 0.2)     # read where _Refusal reads it
    with full_server(index) as (url, refused):
        status, headers, _ = refused_answer(url, refused, b"")
    assert status == 503 and headers["vary"] == "Origin" and "access-control-allow-origin" not in headers


def test_without_allowed_origins_the_busy_503_has_no_cors_header(index):  # noqa: F811
    with full_server(index, allow_origins=()) as (url, refused):
        status, headers, _ = refused_answer(url, refused, get_info(PAGE))
    assert status == 503 and "vary" not in headers and "access-control-allow-origin" not in headers
