"""`soundsift serve` (ui/server.py) for web pages and caches: a burst of connections waits in the
listen queue instead of being dropped, pages on origins named with ``--allow-origin`` may call the
API (CORS) while the Host check still holds, answers name the index's version, and an unchanged
``/audio`` preview is revalidated with 304."""
from __future__ import annotations

import contextlib
import http.client
import select
import socket
import threading
import time
import urllib.parse
from typing import Iterator

import pytest
from typer.testing import CliRunner

from engine.query import SoundIndex
from indexer import build_index
from indexer.user_tags import add_tags
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_server_audit import _answers
from tests.test_server_slow_clients import serving as serving_at
from ui.byte_ranges import etag_listed
from ui.server import SoundsiftServer, cors_origin

SR = 16_000
#: a deadline only (the test fails when it passes): never how fast the server must be
PATIENCE = 30.0
APP = "http://localhost:3000"


@pytest.fixture
def library(tmp_path) -> Iterator[tuple[SoundIndex, object]]:
    """Two sounds, indexed, opened; yields (index, library folder). One per test: tests change it."""
    lib = tmp_path / "lib"
    write(lib / "beep.wav", tone(880, 1.0, SR), SR)
    write(lib / "hiss.wav", noise(1.0, SR, seed=3), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as opened:
        yield opened, lib


@contextlib.contextmanager
def serving(index: SoundIndex, **options) -> Iterator[tuple[str, int]]:
    """``index`` served on a free port of 127.0.0.1 for the ``with`` block (tests.test_server_slow_clients.serving);
    yields (host, port)."""
    with serving_at(index, **options) as url:
        parts = urllib.parse.urlsplit(url)
        yield parts.hostname, parts.port


def ask(address: tuple[str, int], method: str, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """(status, headers in lower case, body) of one request; ``headers`` with ``_`` for ``-``
    (Host: localhost unless given)."""
    conn = http.client.HTTPConnection(*address, timeout=PATIENCE)
    try:
        sent = {"Host": "localhost", **{name.replace("_", "-"): value for name, value in headers.items()}}
        conn.request(method, path, headers=sent)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def _file_id(address: tuple[str, int], name: str) -> int:
    import json
    status, _, body = ask(address, "GET", f"/search?q={name}&k=5&keywords=1")
    assert status == 200, body
    return next(hit["file_id"] for hit in json.loads(body) if hit["path"].endswith(name))


# -- a burst of connections ---------------------------------------------------------------------

def test_a_burst_of_connections_waits_for_a_busy_listening_thread(library):
    """The listen backlog was socketserver's 5: while the listening thread was busy (here: not
    accepting at all), the kernel completed 6 connections of a burst and dropped the others'
    handshakes, which then waited a second or more to retry, or failed. Now a burst of 40 is
    queued at once, and each is answered once the thread accepts."""
    index, _ = library
    burst = 40
    server = SoundsiftServer(index, "127.0.0.1", 0)       # listening, nothing accepting yet
    socks: list[socket.socket] = []
    try:
        for _ in range(burst):
            sock = socket.socket()
            sock.setblocking(False)
            sock.connect_ex(server.server_address)
            socks.append(sock)
        pending, deadline = list(socks), time.monotonic() + PATIENCE
        while pending and (left := deadline - time.monotonic()) > 0:
            writable = select.select([], pending, [], left)[1]
            pending = [s for s in pending if s not in writable]
        assert not pending, (f"only {burst - len(pending)} of {burst} connections were made while the "
                             "listening thread was busy")
        assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 for s in socks)
        for sock in socks:
            sock.setblocking(True)
            sock.settimeout(PATIENCE)
            sock.sendall(b"GET /info HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        worker = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        worker.start()
        try:
            statuses = [_answers(b"".join(iter(lambda s=sock: s.recv(65536), b"")))[0][0] for sock in socks]
        finally:
            server.shutdown()
            worker.join(PATIENCE)
        assert statuses == [200] * burst
    finally:
        for sock in socks:
            sock.close()
        server.server_close()


# -- CORS ---------------------------------------------------------------------------------------

def test_origins_are_read_as_browsers_send_them():
    assert cors_origin(" HTTP://LocalHost:80/ ") == "http://localhost"
    assert cors_origin("https://app.example:443") == "https://app.example"
    assert cors_origin("http://127.0.0.1:3000") == "http://127.0.0.1:3000"
    assert cors_origin("http://[::1]:5173") == "http://[::1]:5173"
    for bad, why in (("*", "every web page"), ("null", "sandboxed"), ("http://app.example/page", "not an origin"),
                     ("localhost:3000", "not an origin"), ("http://me@app.example", "not an origin"),
                     ("http://app.example:99999", "bad port"), ("", "not an origin")):
        with pytest.raises(ValueError, match=why):
            cors_origin(bad)


def test_a_page_on_an_allowed_origin_may_call_the_api(library):
    """No CORS headers at all: a web app on another origin could not read an answer. Now one
    ``--allow-origin`` names gets its preflight answered and Access-Control-Allow-Origin."""
    index, _ = library
    with serving(index, allow_origins=[APP]) as address:
        status, headers, body = ask(address, "OPTIONS", "/similar", Origin=APP,
                                    Access_Control_Request_Method="POST",
                                    Access_Control_Request_Headers="content-type, x-filename")
        assert status == 204 and body == b"" and "content-length" not in headers
        assert headers["access-control-allow-origin"] == APP
        assert headers["access-control-allow-methods"] == "GET, POST, HEAD"
        assert {"Content-Type", "X-Filename", "Range"} <= set(headers["access-control-allow-headers"].split(", "))
        assert headers["vary"] == "Origin" and int(headers["access-control-max-age"]) > 0
        assert "access-control-allow-private-network" not in headers
        status, headers, _ = ask(address, "OPTIONS", "/search", Origin=APP, Access_Control_Request_Method="GET",
                                 Access_Control_Request_Private_Network="true")     # Chrome, from a public page
        assert status == 204 and headers["access-control-allow-private-network"] == "true"

        status, headers, _ = ask(address, "GET", "/info", Origin=APP)
        assert status == 200 and headers["access-control-allow-origin"] == APP and headers["vary"] == "Origin"
        assert "X-Index-Version" in headers["access-control-expose-headers"]
        status, headers, _ = ask(address, "GET", "/files/999999", Origin=APP)     # its errors, readable too
        assert status == 404 and headers["access-control-allow-origin"] == APP

        # another origin: answered as before (a plain request gets its answer, the browser keeps it
        # from the page), no CORS header but Vary; its preflight is refused, saying how to allow it
        status, headers, _ = ask(address, "GET", "/info", Origin="https://elsewhere.example")
        assert status == 200 and "access-control-allow-origin" not in headers and headers["vary"] == "Origin"
        status, headers, body = ask(address, "OPTIONS", "/search", Origin="https://elsewhere.example",
                                    Access_Control_Request_Method="GET")
        assert status == 403 and "access-control-allow-origin" not in headers
        assert "--allow-origin" in body.decode() and "https://elsewhere.example" in body.decode()

        status, headers, _ = ask(address, "FETCH", "/info", Origin=APP)          # http.server's own refusal
        assert status == 501 and headers["access-control-allow-origin"] == APP

        # OPTIONS that is no preflight, and a preflight for no route, are what they were
        status, headers, _ = ask(address, "OPTIONS", "/search", Origin=APP)
        assert status == 405 and headers["allow"] == "GET"
        assert ask(address, "OPTIONS", "/nowhere", Origin=APP, Access_Control_Request_Method="GET")[0] == 404


def test_the_host_check_holds_for_allowed_origins(library):
    """DNS rebinding: a page on evil.example, its name made to resolve to 127.0.0.1, sends
    ``Host: evil.example``; its preflight and requests stay 403 whatever origins are allowed."""
    index, _ = library
    with serving(index, allow_origins=[APP, "http://evil.example:8765"]) as address:
        for method, extra in (("OPTIONS", {"Access_Control_Request_Method": "GET"}), ("GET", {})):
            status, headers, body = ask(address, method, "/info", Host="evil.example:8765",
                                        Origin="http://evil.example:8765", **extra)
            assert status == 403 and b"is not this machine" in body, (method, body)


def test_without_allowed_origins_no_page_is_let_in(library):
    index, _ = library
    with serving(index) as address:
        status, headers, _ = ask(address, "GET", "/info", Origin=APP)
        assert status == 200 and not any(name.startswith("access-control") or name == "vary" for name in headers)
        status, headers, body = ask(address, "OPTIONS", "/info", Origin=APP, Access_Control_Request_Method="GET")
        assert status == 403 and "access-control-allow-origin" not in headers and b"--allow-origin" in body


def test_allow_origin_refuses_a_wildcard(tmp_path):
    from ui.cli import app
    result = CliRunner().invoke(app, ["serve", "--index", str(tmp_path / "none"), "--allow-origin", "*"],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "--allow-origin" in result.output and "every web page" in result.output


# -- versions and revalidation -----------------------------------------------------------------

def test_answers_name_the_index_version_which_changes_with_the_index(library, tmp_path):
    """Nothing told a client that keeps answers that the index changed under it. Now each answer
    carries X-Index-Version (and /info its ``version``): the same while the index is, another
    after a tag is added or the library is indexed again."""
    import json
    index, lib = library
    with serving(index) as address:
        status, headers, body = ask(address, "GET", "/info")
        first = headers.get("x-index-version")
        assert status == 200 and first and json.loads(body)["version"] == first
        assert ask(address, "GET", "/search?q=beep")[1]["x-index-version"] == first
        beep = _file_id(address, "beep.wav")
        assert ask(address, "GET", f"/audio/{beep}")[1]["x-index-version"] == first

        add_tags(tmp_path / "idx", [beep], ["alarm"])          # tags between generations
        tagged = ask(address, "GET", "/search?q=alarm&keywords=1")[1]["x-index-version"]
        assert tagged != first

        write(lib / "hum.wav", tone(110, 1.0, SR), SR)           # a new generation
        build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
        status, headers, body = ask(address, "GET", "/info")
        assert headers["x-index-version"] not in (first, tagged) and json.loads(body)["files"] == 3
        assert ask(address, "GET", "/facets")[1]["x-index-version"] == headers["x-index-version"]


def test_an_unchanged_preview_is_revalidated_with_304(library):
    """/audio had an ETag, but a browser revalidating its copy with If-None-Match got the whole
    WAV again; now 304 without a body (the file is not opened), and the WAV once the file changed."""
    index, lib = library
    with serving(index) as address:
        beep = _file_id(address, "beep.wav")
        status, headers, wav = ask(address, "GET", f"/audio/{beep}")
        tag = headers["etag"]
        assert status == 200 and wav[:4] == b"RIFF"
        for given in (tag, f"W/{tag}", f'"other", {tag}', "*"):
            status, headers, body = ask(address, "GET", f"/audio/{beep}", If_None_Match=given)
            assert (status, body, headers["etag"]) == (304, b"", tag), given
            assert "content-length" not in headers
        assert ask(address, "HEAD", f"/audio/{beep}", If_None_Match=tag)[0] == 304
        assert ask(address, "GET", f"/audio/{beep}?end=0.5", If_None_Match=tag)[0] == 200    # another span
        status, _, body = ask(address, "GET", f"/audio/{beep}", If_None_Match='"other"')
        assert status == 200 and body == wav

        write(lib / "beep.wav", tone(440, 1.0, SR), SR)          # rewritten in place
        status, headers, body = ask(address, "GET", f"/audio/{beep}", If_None_Match=tag)
        assert status == 409 and b"changed since it was indexed" in body      # not the indexed audio (session 40)
        build_index([lib], lib.parent / "idx", FakeModel(), workers=0, progress=False)     # indexed again
        status, headers, body = ask(address, "GET", f"/audio/{_file_id(address, 'beep.wav')}", If_None_Match=tag)
        assert status == 200 and headers["etag"] != tag and body[:4] == b"RIFF" and body != wav


def test_if_none_match_lists_are_read_as_rfc_9110_says():
    assert etag_listed('"a"', '"a"') and etag_listed('W/"a"', '"a"') and etag_listed('"x", W/"a" ,"y"', '"a"')
    assert etag_listed("*", '"a"') and etag_listed('"a,b", "c"', '"a,b"')
    assert not etag_listed(None, '"a"') and not etag_listed('"ab"', '"a"') and not etag_listed('"a,b"', '"a"')
    assert not etag_listed("", '"a"') and not etag_listed("a", '"a"')


def test_serve_gives_back_the_sigterm_handler_it_found(tmp_path):
    """`soundsift serve` catches SIGTERM while it serves; it left its handler installed after
    returning (an error, or a stop), so a later SIGTERM to the same process was swallowed."""
    import signal

    from ui.cli import app
    before = signal.getsignal(signal.SIGTERM)
    result = CliRunner().invoke(app, ["serve", "--index", str(tmp_path / "no index here")])
    assert result.exit_code != 0
    assert signal.getsignal(signal.SIGTERM) is before
