"""`soundsift serve` as a hostile or careless client uses it (helper-52's audit of ui/server.py):
http.server's own errors in JSON, HEAD and OPTIONS, request bodies that lie about their length
or come chunked, a body that stalls, a GET carrying a body, a preview whose file went away, IPv6."""
from __future__ import annotations

import http.client
import json
import socket
import threading

import pytest

from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import noise, tone, write
from tests.index_fakes import FakeModel
from tests.test_server import get, serving

SR = 16_000


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """Two files indexed and served; yields (base url, library folder, the beep's file id)."""
    tmp = tmp_path_factory.mktemp("audited")
    lib = (tmp / "lib").resolve()
    write(lib / "beep.wav", tone(880, 2.0, SR), SR)
    write(lib / "hiss.wav", noise(1.0, SR, seed=3), SR)
    build_index([lib], tmp / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp / "idx", model=FakeModel()) as index, serving(index) as url:
        _, hits, _ = get(f"{url}/search?q=beep&k=2")
        yield url, lib, next(h["file_id"] for h in hits if h["path"].endswith("beep.wav"))


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host.strip("[]"), int(port)


def _exchange(url: str, data: bytes, half_close: bool = True, timeout: float = 60) -> bytes:
    """What the server sends back for the raw bytes ``data``, up to its closing the connection."""
    with socket.create_connection(_address(url), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: sock.recv(65536), b""))


def _answers(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The responses in ``raw`` (Content-Length framed): (status, headers, body) each."""
    found = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].startswith("HTTP/1."), raw[:200]
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(headers.get("content-length", len(rest)))
        found.append((int(lines[0].split()[1]), headers, rest[:length]))
        raw = rest[length:]
    return found


def _wav(lib) -> bytes:
    return (lib / "beep.wav").read_bytes()


def test_http_servers_own_errors_are_json(served):
    """A request http.server refuses before soundsift sees it (bad syntax, HTTP/2 spoken as text,
    a 70 kB address, 200 headers, a method it has no handler for) was an HTML page."""
    url, _, _ = served
    cases = [(b"GARBAGE\r\n\r\n", 400, "Bad request syntax"),
             (b"GET /info HTTP/2.0\r\nHost: localhost\r\n\r\n", 505, "Invalid HTTP version"),
             (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414, "Request-URI Too Long"),
             (b"GET /info HTTP/1.1\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", 431, "Too many headers"),
             (b"BREW /info HTTP/1.1\r\nHost: localhost\r\n\r\n", 501, "Unsupported method ('BREW')")]
    for request, status, said in cases:
        (got, headers, body), = _answers(_exchange(url, request))
        assert (got, headers["content-type"]) == (status, "application/json"), (request[:40], body[:200])
        assert said in json.loads(body)["error"], body


def test_head_answers_what_get_would_without_the_body(served):
    """HEAD (curl -I, link checkers, download managers) was 501: every server must answer it."""
    url, _, beep = served
    conn = http.client.HTTPConnection(*_address(url), timeout=60)
    for path in ("/info", f"/files/{beep}", f"/audio/{beep}?start=0.5&end=1", "/search?q=beep&k=1"):
        conn.request("GET", path)
        got = conn.getresponse()
        body = got.read()
        conn.request("HEAD", path)
        head = conn.getresponse()
        assert (head.status, head.read()) == (200, b""), path
        assert head.getheader("Content-Type") == got.getheader("Content-Type")
        assert int(head.getheader("Content-Length")) == len(body), path
    conn.request("HEAD", f"/audio/{beep}", headers={"Range": "bytes=0-99"})
    part = conn.getresponse()
    assert (part.status, part.read(), part.getheader("Content-Length")) == (206, b"", "100")
    conn.request("HEAD", "/files/999999")
    missing = conn.getresponse()
    assert (missing.status, missing.read(), missing.getheader("Content-Type")) == (404, b"", "application/json")
    conn.request("GET", "/info")                    # the connection is still good
    assert conn.getresponse().status == 200
    conn.close()


def test_options_and_trace_are_405_with_allow(served):
    """OPTIONS and TRACE were http.server's 501 HTML page; the README's rule is 405 with Allow."""
    url, _, beep = served
    for method, path, allow in (("OPTIONS", "/search", "GET"), ("OPTIONS", "/similar", "GET, POST"),
                                ("TRACE", f"/audio/{beep}", "GET")):
        (got, headers, body), = _answers(_exchange(url, f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"
                                                        .encode()))
        assert (got, headers.get("allow"), headers["content-type"]) == (405, allow, "application/json"), body
        assert f"not {method}" in json.loads(body)["error"]
    (got, _, body), = _answers(_exchange(url, b"OPTIONS /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n"))
    assert got == 404 and "no route OPTIONS /nowhere" in json.loads(body)["error"]


def test_a_body_no_route_reads_is_not_taken_for_the_next_request(served):
    """A GET carrying a body: the body was parsed as a second request on the same connection
    (a proxy in front would see one request and get two answers)."""
    url, _, _ = served
    smuggled = b"GET /nowhere HTTP/1.1\r\nX: y\r\n\r\n"
    raw = _exchange(url, f"GET /info HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(smuggled)}\r\n\r\n".encode()
                    + smuggled)
    answers = _answers(raw)
    assert [status for status, _, _ in answers] == [200], raw[:600]
    assert answers[0][1].get("connection") == "close"
    raw = _exchange(url, b"GET /info HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + f"{len(smuggled):x}\r\n".encode() + smuggled + b"\r\n0\r\n\r\n")
    assert [status for status, _, _ in _answers(raw)] == [200], raw[:600]


def test_a_chunked_clip_is_read(served):
    """Transfer-Encoding: chunked (fetch with a stream, requests with a generator, curl -T -)
    was read as an empty body ('empty upload'), and its chunks as the next request."""
    url, lib, _ = served
    wav = _wav(lib)
    _, whole, _ = get(f"{url}/similar?k=2", data=wav)
    conn = http.client.HTTPConnection(*_address(url), timeout=60)
    conn.request("POST", "/similar?k=2", body=(wav[i:i + 5000] for i in range(0, len(wav), 5000)),
                 encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
    answer = conn.getresponse()
    assert answer.status == 200 and json.loads(answer.read()) == whole
    conn.request("GET", "/info")                    # the connection is still good after it
    assert conn.getresponse().status == 200
    conn.close()
    chunked = b"POST /tag?top=1 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
    for bad_chunks, said in ((b"zz\r\nabc\r\n0\r\n\r\n", "chunk"), (b"10\r\nabc", "chunk")):
        (got, headers, body), = _answers(_exchange(url, chunked + bad_chunks))
        assert got == 400 and said in json.loads(body)["error"] and headers.get("connection") == "close", body


def test_a_chunked_body_over_the_limit_is_413(served, monkeypatch):
    from ui.components import uploads
    url, lib, _ = served
    monkeypatch.setattr(uploads, "MAX_UPLOAD_BYTES", 10_000)
    wav = _wav(lib)
    raw = _exchange(url, b"POST /similar HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + f"{len(wav):x}\r\n".encode() + wav + b"\r\n0\r\n\r\n")
    (got, headers, body), = _answers(raw)
    assert got == 413 and "upload limit" in json.loads(body)["error"] and headers.get("connection") == "close"


def test_a_refused_upload_still_gets_its_answer(served, monkeypatch):
    """A clip over the limit is refused before its body is read; the server then closed with the
    body unread, which resets the connection: the client sending it got a broken pipe or a reset
    instead of the 413 (sometimes; the chunked test above failed 2 runs in 3)."""
    from ui.components import uploads
    url, _, _ = served
    monkeypatch.setattr(uploads, "MAX_UPLOAD_BYTES", 10_000)
    body = bytes(4 * 2**20)
    for _ in range(3):
        raw = _exchange(url, f"POST /similar HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                        + body)
        (got, headers, said), = _answers(raw)
        assert got == 413 and "upload limit" in json.loads(said)["error"] and headers["connection"] == "close"


def test_a_body_shorter_than_its_content_length_is_a_bad_request(served):
    """A client that announced 64 kB, sent 30 kB and stopped got results for the 30 kB."""
    url, lib, _ = served
    wav = _wav(lib)
    sent = wav[:len(wav) // 2]
    raw = _exchange(url, f"POST /similar HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(wav)}\r\n\r\n".encode() + sent)
    (got, headers, body), = _answers(raw)
    assert got == 400, body[:300]
    assert f"ended after {len(sent)} of the {len(wav)} bytes" in json.loads(body)["error"]


def test_content_lengths_that_are_not_one_number(served):
    """'²' passed str.isdigit and int() raised: a 500; two different lengths used the first and
    read the rest as the next request."""
    url, _, _ = served
    for header in ("Content-Length: \xb2", "Content-Length: \xb9\xb3", "Content-Length: 5\r\nContent-Length: 7",
                   "Content-Length: 7\r\nTransfer-Encoding: chunked"):
        raw = _exchange(url, f"POST /tag HTTP/1.1\r\nHost: localhost\r\n{header}\r\n\r\nabcdefg".encode("latin-1"))
        answers = _answers(raw)
        assert [status for status, _, _ in answers] == [400], (header, raw[:500])
        assert answers[0][1].get("connection") == "close" and "Error" not in json.loads(answers[0][2])["error"]


def test_a_stalled_body_is_408_not_a_500_with_a_traceback(served, monkeypatch, caplog):
    """A client that sends part of its body and then nothing: after the handler's timeout the
    read raised TimeoutError inside the route, answered as a 500 and logged with a traceback."""
    import logging

    from ui.server import SoundsiftHandler
    url, lib, _ = served
    monkeypatch.setattr(SoundsiftHandler, "timeout", 0.5)
    caplog.set_level(logging.DEBUG, logger="ui.server")
    with socket.create_connection(_address(url), timeout=60) as sock:
        sock.sendall(b"POST /similar HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n" + _wav(lib)[:1000])
        raw = b"".join(iter(lambda: sock.recv(65536), b""))       # the server answers and hangs up
    (got, headers, body), = _answers(raw)
    assert got == 408 and "Content-Length" in json.loads(body)["error"] and headers.get("connection") == "close"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_a_slow_client_does_not_hold_up_others(served):
    """One connection that sent half its headers, another half its body: both left open while
    other requests come and go (a thread a connection)."""
    url, lib, _ = served
    slow = [socket.create_connection(_address(url), timeout=60) for _ in range(2)]
    try:
        slow[0].sendall(b"GET /info HTTP/1.1\r\nHost: localhost\r\n")
        slow[1].sendall(b"POST /similar HTTP/1.1\r\nHost: localhost\r\nContent-Length: 50000\r\n\r\nRIFF")
        done = []
        worker = threading.Thread(target=lambda: done.append(get(f"{url}/search?q=beep&k=1")[0]))
        worker.start()
        worker.join(60)                              # a deadline only
        assert done == [200]
    finally:
        for sock in slow:
            sock.close()


def test_audio_of_a_file_gone_from_disk_is_not_found(tmp_path):
    """GET /audio/ID of a file deleted since it was indexed was a 400, as if the request were bad."""
    lib = tmp_path / "lib"
    gone = write(lib / "gone.wav", tone(440, 1.0, SR), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index, serving(index) as url:
        _, hits, _ = get(f"{url}/search?q=x&k=1")
        gone.unlink()
        got, body, _ = get(f"{url}/audio/{hits[0]['file_id']}")
        assert got == 404 and "deleted or renamed" in body["error"], body
        assert get(f"{url}/files/{hits[0]['file_id']}")[0] == 200       # the record is still there


def test_it_listens_on_ipv6(tmp_path):
    """--host ::1 (which the 'open to the network' warning counts as this machine) failed:
    'Address family for hostname not supported'."""
    from ui.server import SoundsiftServer
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    lib = tmp_path / "lib"
    write(lib / "a.wav", tone(440, 1.0, SR), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        server = SoundsiftServer(index, "::1", 0)
        try:
            assert server.url.startswith("http://[::1]:")
            worker = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
            worker.start()
            conn = http.client.HTTPConnection("::1", server.server_address[1], timeout=60)
            conn.request("GET", "/info")
            assert conn.getresponse().status == 200
            conn.close()
        finally:
            server.shutdown()
            server.server_close()


def test_small_parameter_slips(served):
    """zero_shot=0.0 was refused while zero_shot=0 was taken; a parameter with no name was named
    as nothing ('unknown parameter  for'); keywords=1 with segments=1 was refused in the CLI's
    words, naming neither ('ask for the best segment per file')."""
    url, _, _ = served
    assert get(f"{url}/sheet?zero_shot=0.0")[0] == get(f"{url}/sheet?zero_shot=0")[0] == 200
    got, body, _ = get(f"{url}/search?q=x&=1")
    assert got == 400 and "unknown parameter '' for GET /search" in body["error"], body
    got, body, _ = get(f"{url}/search?q=beep&keywords=1&segments=1")
    assert got == 400 and "keywords=1" in body["error"] and "segments=1" in body["error"], body


def test_a_loopback_server_answers_only_requests_for_this_machine(served):
    """DNS rebinding: a page on evil.example whose name resolves to 127.0.0.1 sends Host:
    evil.example; a server listening on loopback only refuses it (403) and answers localhost,
    *.localhost and loopback addresses, with or without a port, and HTTP/1.0 without a Host."""
    url, _, _ = served
    for host in ("evil.example", "evil.example:8765", "192.168.1.20", "localhost.evil.example"):
        (got, _, body), = _answers(_exchange(url, f"GET /info HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()))
        assert got == 403 and "is not this machine" in json.loads(body)["error"], host
    for host in ("localhost", "LOCALHOST:8765", "app.localhost", "127.0.0.1:8765", "127.1.2.3", "[::1]:8765"):
        (got, _, body), = _answers(_exchange(url, f"GET /info HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()))
        assert got == 200, (host, body)
    (got, _, _), = _answers(_exchange(url, b"GET /info HTTP/1.0\r\n\r\n"))
    assert got == 200


@pytest.mark.parametrize("host, shared", [("127.0.0.1", False), ("127.0.0.2", False), ("LOCALHOST", False),
                                          ("::1", False), ("[::1]", False), ("0:0:0:0:0:0:0:1", False),
                                          ("0.0.0.0", True), ("::", True), ("192.168.1.20", True),
                                          ("studio.example", True), ("localhost.evil.example", True)])
def test_the_serving_warning_and_the_host_check_agree_on_which_names_are_this_machine(host, shared, monkeypatch):
    """`soundsift serve/ui --host 127.0.0.2` is as private as 127.0.0.1 (the whole 127/8 is loopback):
    no warning about the network, and a warning for every address another machine can reach."""
    import io

    from rich.console import Console

    from ui.cli import common
    from ui.server import names_this_machine
    out = io.StringIO()
    monkeypatch.setattr(common, "err_console", Console(file=out, width=200))
    common.warn_if_shared(host, "search your library")
    assert ("anyone who can reach this address" in out.getvalue()) is shared
    assert names_this_machine(host) is not shared
