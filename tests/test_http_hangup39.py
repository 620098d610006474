"""`soundsift serve` and the work it does for one request (helper 139): a client that hangs up
gets no work started for it, and long work (a long clip's embedding) stops at its next batch,
nothing written to the closed socket and no traceback logged; a request's work past
``--request-timeout`` stops there too, answered 503 in the API's JSON; every answer's ``Server``
header names soundsift, not the Python version."""
from __future__ import annotations

import contextlib
import http.client
import io
import json
import logging
import socket
import threading
import time
from importlib.metadata import version
from typing import Iterator

import numpy as np
import pytest
import soundfile as sf

import ui.http_request
from engine.query import SoundIndex
from indexer import build_index
from tests.conftest import tone, write
from tests.index_fakes import FakeModel
from tests.test_server_audit import _address, _answers, _exchange
from ui.server import SoundsiftServer, serve

SR = 16_000
#: the Server header every answer carries
SERVER_NAME = f"soundsift/{version('soundsift')}"
#: the most any wait here lasts (a thread to end, a log line to come): never reached when all is well
PATIENCE = 30.0
#: a clip of this many seconds is 50 of FakeModel's 2 s segments: 4 batches of 16 (engine.zeroshot.EMBED_BATCH)
CLIP_SECONDS = 100.0
BATCHES = 4


class HeldModel(FakeModel):
    """FakeModel whose first batch of a request waits, once :meth:`hold` is called, until the
    test lets it go (it has hung up meanwhile); ``calls`` counts the batches."""

    def __init__(self) -> None:
        super().__init__()
        self.held, self.embedding, self.go = False, threading.Event(), threading.Event()

    def hold(self) -> None:
        self.held = True
        self.embedding.clear()
        self.go.clear()
        self.calls.clear()

    def embed_audio(self, waveforms):
        if self.held:
            self.held = False
            self.embedding.set()
            assert self.go.wait(PATIENCE)
        return super().embed_audio(waveforms)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A beep indexed (by FakeModel), and a long clip to upload."""
    tmp = tmp_path_factory.mktemp("hangup")
    write(tmp / "lib" / "beep.wav", tone(880, 3.0, SR), SR)
    build_index([tmp / "lib"], tmp / "idx", FakeModel(), workers=0, progress=False)
    clip = io.BytesIO()
    sf.write(clip, np.tile(tone(440, 1.0, SR), int(CLIP_SECONDS)), SR, format="WAV")
    return tmp / "idx", clip.getvalue()


@contextlib.contextmanager
def serving(index: SoundIndex, **options) -> Iterator[tuple[str, SoundsiftServer]]:
    """``index`` served in a thread with ``options`` for serve; yields its url and the server."""
    ready, stop, found = threading.Event(), threading.Event(), {}

    def started(server: SoundsiftServer) -> None:
        found["server"] = server
        ready.set()
    thread = threading.Thread(target=serve, args=(index,), kwargs=dict(port=0, ready=started, stop=stop, **options))
    thread.start()
    try:
        assert ready.wait(PATIENCE)
        yield found["server"].url, found["server"]
    finally:
        stop.set()
        thread.join(PATIENCE)
    assert not thread.is_alive()


def _post_clip(url: str, clip: bytes, path: str = "/similar?k=1") -> socket.socket:
    """A connection that has sent POST ``path`` with ``clip`` as its body (and reads nothing yet)."""
    sock = socket.create_connection(_address(url), timeout=PATIENCE)
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(clip)}\r\n\r\n".encode() + clip)
    return sock


def _all_ended(server: SoundsiftServer) -> None:
    """Wait until the server serves no connection (the one hung up has ended its work)."""
    until = time.monotonic() + PATIENCE
    while server._open and time.monotonic() < until:
        time.sleep(0.02)
    assert not server._open, "a request's thread is still working for a client that hung up"


def _said(caplog, what: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ui.server" and what in r.getMessage()]


def _no_tracebacks(caplog) -> None:
    assert [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("path", ["/similar?k=1", "/tag?labels=a,b"])
def test_no_work_starts_for_a_client_gone_once_its_body_is_read(library, monkeypatch, caplog, path):
    """A request whose client hung up while it waited (here: once its body was read) was embedded
    all the same, its answer then written to nobody."""
    caplog.set_level(logging.DEBUG, logger="ui.server")
    idx, clip = library
    read, closed = threading.Event(), threading.Event()
    body = ui.http_request.RequestBody.body

    def slow_body(handler):             # a request that waits (a busy machine) once its body is in
        data = body(handler)
        read.set()
        assert closed.wait(PATIENCE)
        return data
    monkeypatch.setattr(ui.http_request.RequestBody, "body", slow_body)
    model = FakeModel()
    with SoundIndex.open(idx, model=model) as index, serving(index) as (url, server):
        sock = _post_clip(url, clip, path)
        assert read.wait(PATIENCE)
        sock.close()
        closed.set()
        _all_ended(server)
        assert model.calls == []        # not one batch embedded
        assert _said(caplog, "hung up before its answer; its work stopped before it began")
        _no_tracebacks(caplog)


def test_long_work_stops_at_its_next_batch_once_the_client_hangs_up(library, caplog):
    """A long clip's embedding went on to its last batch (4 here; thousands for a long upload)
    after its client had gone, holding a thread and the CPU; it stops before the next batch, and
    the server answers the next request as before."""
    caplog.set_level(logging.DEBUG, logger="ui.server")
    idx, clip = library
    model = HeldModel()
    with SoundIndex.open(idx, model=model) as index, serving(index) as (url, server):
        model.hold()
        sock = _post_clip(url, clip)
        assert model.embedding.wait(PATIENCE)
        sock.close()
        model.go.set()
        _all_ended(server)
        assert len(model.calls) == 1, model.calls      # the batch under way, then no other
        assert _said(caplog, "hung up before its answer; its work stopped before its next batch of segments")
        _no_tracebacks(caplog)
        # the index and the server are as they were: the same clip's whole answer, on a new connection
        status, hits = _posted(url, clip)
        assert status == 200 and len(hits) == 1


def test_stopping_the_server_stops_a_clips_embedding_at_its_next_batch(library, caplog):
    """Stopping cut off a request still being answered after its grace, but its thread went on
    embedding to the clip's end (the process then exited around it, or aborted); its cut-off
    connection now stops it before the next batch, as a client's hang-up does."""
    caplog.set_level(logging.DEBUG, logger="ui.server")
    idx, clip = library
    model = HeldModel()
    with SoundIndex.open(idx, model=model) as index, serving(index) as (url, server):
        model.hold()
        sock = _post_clip(url, clip)
        try:
            assert model.embedding.wait(PATIENCE)
            server.finish_requests(0)           # as serve does once its grace is over: cut off
            model.go.set()
            _all_ended(server)
        finally:
            sock.close()
        assert len(model.calls) == 1, model.calls
        assert _said(caplog, "the server cut it off to stop; its work stopped before its next batch of segments")
        _no_tracebacks(caplog)


def _posted(url: str, clip: bytes) -> tuple[int, object]:
    """The status and JSON of POST /similar?k=1 with ``clip``."""
    conn = http.client.HTTPConnection(*_address(url), timeout=PATIENCE)
    try:
        conn.request("POST", "/similar?k=1", body=clip)
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


def test_work_past_the_request_timeout_stops_with_a_503(library, caplog):
    """There was no limit on a request's work: a huge clip held its thread for as long as it
    took. Past --request-timeout it stops at the next batch: 503 in JSON saying why, without
    Retry-After (it would take as long again), and the connection serves the next request."""
    caplog.set_level(logging.DEBUG, logger="ui.server")
    idx, clip = library
    model = FakeModel(delay=0.5)        # each batch takes longer than the limit
    with SoundIndex.open(idx, model=model) as index, serving(index, request_timeout=0.2) as (url, _):
        conn = http.client.HTTPConnection(*_address(url), timeout=PATIENCE)
        conn.request("POST", "/similar?k=1", body=clip)
        answer = conn.getresponse()
        said = json.loads(answer.read())
        assert (answer.status, answer.getheader("Content-Type")) == (503, "application/json"), said
        assert "--request-timeout" in said["error"] and "0.2 s" in said["error"]
        assert answer.getheader("Retry-After") is None
        assert 1 <= len(model.calls) < BATCHES          # stopped at a checkpoint, not at the end
        conn.request("GET", "/info")                    # the same connection goes on
        assert conn.getresponse().status == 200
        conn.close()
        _no_tracebacks(caplog)


def test_a_request_timeout_of_0_is_no_limit(library):
    idx, clip = library
    model = FakeModel(delay=0.05)
    with SoundIndex.open(idx, model=model) as index, serving(index, request_timeout=0) as (url, _):
        status, hits = _posted(url, clip)
        assert status == 200 and len(hits) == 1 and len(model.calls) >= BATCHES     # all its batches


def test_a_negative_request_timeout_is_refused():
    with pytest.raises(ValueError, match="request_timeout"):
        SoundsiftServer(None, port=0, request_timeout=-1)


def test_the_cli_passes_request_timeout_on(library, monkeypatch):
    from typer.testing import CliRunner

    import ui.server
    from ui.cli import app
    given = {}

    def fake_serve(index, host, port, **options):
        given.update(options)
        return 0
    monkeypatch.setattr(ui.server, "serve", fake_serve)
    idx, _ = library
    result = CliRunner().invoke(app, ["serve", "--index", str(idx), "--request-timeout", "7.5"])
    assert result.exit_code == 0, result.output
    assert given["request_timeout"] == 7.5


def test_the_server_header_names_soundsift_not_python(library):
    """http.server's Server header was 'BaseHTTP/0.6 Python/3.11.7', on every answer (its own
    refusals too): with --host, any machine could read which interpreter to attack."""
    idx, _ = library
    with SoundIndex.open(idx, model=FakeModel()) as index, serving(index) as (url, _):
        for request in (b"GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n",          # a route
                        b"GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n",       # soundsift's 404
                        b"GARBAGE\r\n\r\n",                                         # http.server's 400
                        b"BREW /info HTTP/1.1\r\nHost: localhost\r\n\r\n"):         # http.server's 501
            (status, headers, _), = _answers(_exchange(url, request))
            assert headers.get("server") == SERVER_NAME, (request, status, headers)
            assert "python" not in json.dumps(headers).lower()
    from ui.http_connections import SERVER_NAME as served_name
    assert served_name == SERVER_NAME


def test_the_503_of_a_connection_over_the_limit_names_soundsift_too(library):
    idx, clip = library
    model = HeldModel()
    with SoundIndex.open(idx, model=model) as index, serving(index, max_connections=1) as (url, _):
        model.hold()
        busy = _post_clip(url, clip)        # the one place, busy in the model
        try:
            assert model.embedding.wait(PATIENCE)
            (status, headers, _), = _answers(_exchange(url, b"GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n"))
            assert (status, headers.get("server")) == (503, SERVER_NAME), headers
        finally:
            model.go.set()
            busy.close()


def test_serve_exits_without_collecting_the_whole_heap(library):
    """Once stopped, `soundsift serve` took seconds more to end (2–3 s on a tiny CLAP model here,
    4–5 s reported): the interpreter's finalization garbage-collected the hundreds of thousands
    of objects torch and transformers make (perf: gc_collect_main). Its exit handler freezes
    them (gc.freeze), after which they are freed with the process; the command ends as before."""
    import subprocess
    import sys
    from pathlib import Path
    idx, _ = library
    code = ("import atexit, gc, sys\n"
            "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0, flush=True))\n"
            "import ui.server\n"
            "ui.server.serve = lambda *args, **options: 0\n"          # stopped at once
            f"sys.argv = ['soundsift', 'serve', '--index', {str(idx)!r}]\n"
            "from ui.cli import main\n"
            "main()\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "stopped serving" in done.stderr
    assert done.stdout.strip() == "frozen at exit: True"


def test_a_client_that_sent_its_next_request_is_not_taken_for_gone():
    """The hang-up check peeks: a pipelined next request is neither taken for a hang-up nor
    consumed; an end of stream or a reset is a hang-up."""
    from ui.http_handler import _hung_up
    server, client = socket.socketpair()
    with server, client:
        server.settimeout(PATIENCE)         # as a handler's connection is
        assert not _hung_up(server)         # nothing sent yet
        client.sendall(b"GET /info HTTP/1.1\r\n\r\n")
        assert not _hung_up(server)
        assert server.recv(100) == b"GET /info HTTP/1.1\r\n\r\n"      # still there, whole
        client.shutdown(socket.SHUT_WR)
        assert _hung_up(server)
    assert _hung_up(server)                 # closed here: nothing to answer either


def test_a_refusal_written_to_a_client_that_reset_logs_no_traceback(library, capfd, caplog):
    """http.server's own refusals (a request line it cannot read, an address over 64 kB) written
    to a client that had reset the connection printed socketserver's traceback on stderr
    (ConnectionResetError in send_error, about 2 connections in 3 here); one DEBUG line now."""
    import struct
    caplog.set_level(logging.DEBUG, logger="ui.server")
    idx, _ = library
    with SoundIndex.open(idx, model=FakeModel()) as index, serving(index) as (url, server):
        for request in (b"GARBAGE\r\n\r\n", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n") * 10:
            sock = socket.create_connection(_address(url), timeout=PATIENCE)
            sock.sendall(request)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))    # close: reset
            sock.close()
        _all_ended(server)
        assert _answers(_exchange(url, b"GET /info HTTP/1.1\r\nHost: localhost\r\n\r\n"))[0][0] == 200
    assert "Traceback" not in capfd.readouterr().err
    _no_tracebacks(caplog)
