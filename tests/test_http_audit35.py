"""`soundsift serve` as a DAW plugin or a web front end uses it (session 35's audit of the HTTP
API): ``Expect: 100-continue`` answered only when the body is wanted, X-Index-Version on every
answer of a route, the Host header (one, required in HTTP/1.1; an absolute target's host), flags
that are neither on nor off, ``zero_shot``'s range, a multipart form, a UTF-8 ``X-Filename``, why
listening failed, and the model loaded once the port is known free."""
from __future__ import annotations

import json
import socket

import pytest

from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import tone, write
from tests.index_fakes import FakeModel
from tests.test_server import get, serving
from tests.test_server_audit import _address, _answers, _exchange, served  # noqa: F401  (its fixture: two files served)

SR = 16_000


def _first_answer(url: str, head: bytes) -> bytes:
    """The first status line and headers the server sends for a request ``head`` whose body
    is not sent (the client waits, as curl does after ``Expect: 100-continue``)."""
    with socket.create_connection(_address(url), timeout=60) as sock:
        sock.sendall(head)
        got = b""
        while b"\r\n\r\n" not in got:
            more = sock.recv(4096)
            if not more:
                break
            got += more
        return got


def _length(raw: bytes) -> int:
    """The Content-Length of the answer whose head starts ``raw``."""
    head = raw.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
    return int(head.split("content-length:", 1)[1].split("\r\n", 1)[0])


def test_a_body_refused_unread_is_not_invited_with_100_continue(served):
    """curl sends ``Expect: 100-continue`` with a clip over 1 MB: the server said ``100
    Continue`` as the head arrived, before knowing the clip was over the upload limit or the
    route took no body, and the client started sending it; now the refusal comes first."""
    url, lib, _ = served
    expect = "Expect: 100-continue\r\nHost: localhost\r\n\r\n"
    over = _first_answer(url, f"POST /similar?k=1 HTTP/1.1\r\nContent-Length: {60 * 2**20}\r\n{expect}".encode())
    assert over.startswith(b"HTTP/1.1 413"), over[:200]
    no_body = _first_answer(url, f"POST /info HTTP/1.1\r\nContent-Length: 5000000\r\n{expect}".encode())
    assert no_body.startswith(b"HTTP/1.1 405"), no_body[:200]
    clip = (lib / "beep.wav").read_bytes()          # a body the route reads: invited, then answered
    with socket.create_connection(_address(url), timeout=60) as sock:
        sock.sendall(f"POST /similar?k=1 HTTP/1.1\r\nContent-Length: {len(clip)}\r\nConnection: close\r\n"
                     f"{expect}".encode())
        invited = sock.recv(4096)
        assert invited.startswith(b"HTTP/1.1 100"), invited
        sock.sendall(clip)
        raw = b"".join(iter(lambda: sock.recv(65536), b""))
    (status, _, body), = _answers(raw)
    assert status == 200 and json.loads(body)[0]["path"].endswith("beep.wav")


def test_every_answer_of_a_route_carries_the_index_version(served):
    """A 416 (a Range past the end) dropped X-Index-Version with the ETag, and a 400 for an
    unknown or non-UTF-8 parameter was answered before the version was read."""
    url, _, beep = served
    version = json.loads(_answers(_exchange(url, b"GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n"))[0][2])["version"]
    for request, status in ((f"GET /audio/{beep} HTTP/1.1\r\nRange: bytes=99999999-\r\n", 416),
                            ("GET /info?limt=5 HTTP/1.1\r\n", 400), ("GET /search?q=%FF HTTP/1.1\r\n", 400)):
        (got, headers, body), = _answers(_exchange(url, f"{request}Host: localhost\r\n\r\n".encode()))
        assert (got, headers.get("x-index-version")) == (status, version), (request, headers, body)
        assert "etag" not in headers


def test_the_host_header_is_one_and_in_http11_required(served):
    """The Host check read the first of two Host headers (``localhost`` then ``evil.example``:
    200) and let an HTTP/1.1 request without one through; RFC 9112 §3.2 says 400 for both.
    An HTTP/1.0 request without one is still answered."""
    url, _, _ = served
    for request, said in ((b"GET /info HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n", "2 hosts"),
                          (b"GET /info HTTP/1.1\r\nConnection: close\r\n\r\n", "Host header")):
        (got, _, body), = _answers(_exchange(url, request))
        assert got == 400 and said in json.loads(body)["error"], body
    (got, _, _), = _answers(_exchange(url, b"GET /info HTTP/1.0\r\n\r\n"))
    assert got == 200


def test_an_absolute_target_is_checked_for_its_host(served):
    """``GET http://evil.example/info`` names its host in the target, which counts over the Host
    header (RFC 9112 §3.2.2); it was answered 200 because the Host header said localhost."""
    url, _, _ = served
    (got, _, body), = _answers(_exchange(url, b"GET http://evil.example/info HTTP/1.1\r\nHost: localhost\r\n\r\n"))
    assert got == 403 and "evil.example" in json.loads(body)["error"], body
    (got, _, _), = _answers(_exchange(url, b"GET http://localhost/info HTTP/1.1\r\nHost: localhost\r\n\r\n"))
    assert got == 200


def test_a_flag_that_is_neither_on_nor_off_is_a_bad_request(served):
    """``segments=2`` or ``keywords=maybe`` was read as off, silently."""
    url, _, _ = served
    got, body, _ = get(f"{url}/search?q=beep&keywords=maybe")
    assert got == 400 and "keywords" in body["error"] and "'maybe'" in body["error"], body
    _, off, _ = get(f"{url}/search?q=beep&segments=off")
    _, plain, _ = get(f"{url}/search?q=beep")
    assert off == plain


def test_zero_shot_says_its_range(served):
    """``zero_shot=0.5`` was told "must be a number of at least 1" (0, the default, is allowed)."""
    url, _, _ = served
    got, body, _ = get(f"{url}/sheet?zero_shot=0.5")
    assert got == 400 and "zero_shot must be a whole number from 0 to 1000, got '0.5'" in body["error"], body
    assert get(f"{url}/sheet?zero_shot=0")[0] == 200


def test_a_multipart_form_is_named(served):
    """A web page's FormData (or curl -F) was "not readable as audio", as if the clip were bad."""
    url, lib, _ = served
    clip = (lib / "beep.wav").read_bytes()
    form = (b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"beep.wav\"\r\n"
            b"Content-Type: audio/wav\r\n\r\n" + clip + b"\r\n--XyZ--\r\n")
    head = (f"POST /tag HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n"
            f"Content-Length: {len(form)}\r\n\r\n").encode()
    (got, _, body), = _answers(_exchange(url, head + form))
    assert got == 400 and "multipart form" in json.loads(body)["error"], body


def test_a_utf8_file_name_is_read_as_utf8(served):
    """``X-Filename: 雨.wav`` sent as UTF-8 (curl, a script encoding it) came back as mojibake."""
    url, _, _ = served
    head = ("POST /tag HTTP/1.1\r\nHost: localhost\r\nX-Filename: 雨.wav\r\nContent-Length: 4\r\n"
            "Connection: close\r\n\r\n").encode()
    # not half-closed: a client that shuts its side down once its request is in is taken for one
    # that hung up (as Go's net/http and nginx take it) and gets no answer (test_http_hangup39)
    (got, _, body), = _answers(_exchange(url, head + b"junk", half_close=False))
    assert got == 400 and json.loads(body)["error"].startswith("雨.wav: "), body


def test_an_address_not_of_this_machine_is_said_so(tmp_path):
    """Listening on an address no interface has (or a name that does not resolve) was told to
    choose another --port."""
    from engine.errors import PortUnavailable
    from ui.server import serve

    lib = tmp_path / "lib"
    write(lib / "beep.wav", tone(880, 1.0, SR), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        with pytest.raises(PortUnavailable) as refused:
            serve(index, host="192.0.2.1", port=0)           # TEST-NET-1: no machine's own address
    said = str(refused.value)
    assert "--host must name this machine" in said and "--port" not in said, said


def test_a_port_in_use_is_said_before_the_model_loads(tmp_path, monkeypatch):
    """`soundsift serve` loaded the model (seconds) before finding its port taken."""
    from typer.testing import CliRunner

    import engine.query
    from ui.cli import app

    lib = tmp_path / "lib"
    write(lib / "beep.wav", tone(880, 1.0, SR), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    loads = []
    monkeypatch.setattr(engine.query.SoundIndex, "model", property(lambda self: loads.append(1) or FakeModel()))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--index", str(tmp_path / "idx"), "--port", str(port)])
    assert result.exit_code == 1 and "cannot listen on" in result.output, result.output
    assert loads == []


def test_stopping_lets_the_request_being_answered_finish_and_closes_idle_ones(tmp_path, monkeypatch):
    """Ctrl-C while a clip was being embedded: serve() returned at once, the index closed under
    the request's thread, the client got no answer, and `soundsift serve` aborted ("terminate
    called without an active exception", SIGABRT) as Python exited with the model busy. Now the
    request is answered first; a kept-alive idle connection is closed rather than waited for."""
    import threading
    import urllib.request

    import ui.server
    from ui.http_handler import SoundsiftHandler

    lib = tmp_path / "lib"
    clip = write(lib / "beep.wav", tone(880, 1.0, SR), SR).read_bytes()
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    model, embedding, answered = FakeModel(delay=1.0), threading.Event(), threading.Event()
    embed = model.embed_audio
    monkeypatch.setattr(model, "embed_audio", lambda waveforms: (embedding.set(), embed(waveforms))[1])
    finish = SoundsiftHandler.finish
    monkeypatch.setattr(SoundsiftHandler, "finish", lambda self: (finish(self), answered.set()))
    ready, stop, found, got = threading.Event(), threading.Event(), {}, {}

    def started(server):
        found["url"] = server.url
        ready.set()

    def post():
        with urllib.request.urlopen(urllib.request.Request(f"{found['url']}/similar?k=1", data=clip), timeout=60) as r:
            got["status"], got["connection"] = r.status, r.headers["Connection"]

    with SoundIndex.open(tmp_path / "idx", model=model) as index:
        thread = threading.Thread(target=ui.server.serve, args=(index,),    # daemon: a failed assert
                                  kwargs=dict(port=0, ready=started, stop=stop), daemon=True)  # must not hang pytest's exit
        thread.start()
        assert ready.wait(30)
        idle = socket.create_connection(_address(found["url"]), timeout=30)
        idle.sendall(b"GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n")
        first = b""
        while b"\r\n\r\n" not in first or len(first.partition(b"\r\n\r\n")[2]) < _length(first):
            first += idle.recv(65536)
        assert first.startswith(b"HTTP/1.1 200")        # kept alive, then idle
        client = threading.Thread(target=post, daemon=True)
        client.start()
        assert embedding.wait(30)
        answered.clear()                    # (the idle connection has not finished: it waits)
        stop.set()
        thread.join(60)
        assert not thread.is_alive()
        assert answered.is_set()            # the posted clip's request was over when serve returned
        client.join(60)
        assert got == {"status": 200, "connection": "close"}
        idle.settimeout(10)
        assert idle.recv(65536) == b""      # closed by the server, not left to its head timeout
        idle.close()


def test_a_preview_names_its_file(tmp_path):
    """GET /audio/ID saved from a browser (or curl -OJ) was named after the id; a web page on an
    allowed origin could read neither that name nor a 405's Allow."""
    from urllib.parse import quote

    lib = tmp_path / "lib"
    write(lib / "rain é.wav", tone(440, 2.0, SR), SR)
    build_index([lib], tmp_path / "idx", FakeModel(), workers=0, progress=False)
    with SoundIndex.open(tmp_path / "idx", model=FakeModel()) as index:
        from ui.server import SoundsiftServer
        origin = "http://localhost:3000"
        server = SoundsiftServer(index, port=0, allow_origins=[origin])
        server.server_close()
        exposed = dict(server.cors_headers(origin))["Access-Control-Expose-Headers"].split(", ")
        assert {"Content-Disposition", "Allow"} <= set(exposed)
        with serving(index) as url:
            (got, headers, _), = _answers(_exchange(url, b"GET /audio/1?start=0.5&end=1 HTTP/1.1\r\n"
                                                         b"Host: localhost\r\n\r\n"))
    name = "rain é_0.5-1.0s.wav"
    assert got == 200
    assert headers["content-disposition"] == (f'inline; filename="rain __0.5-1.0s.wav"; '
                                              f"filename*=UTF-8''{quote(name, safe='')}")
