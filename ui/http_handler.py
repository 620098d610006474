"""One ``soundsift serve`` connection's requests (:class:`SoundsiftHandler`): the time each may
take (its head, its body, a reader of its answer), the route asked, the error statuses, the answer
written a block at a time (a WAV streamed as it is read)."""
from __future__ import annotations

import io
import logging
import select
import socket
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from engine.errors import IndexUnreadable, InvalidQuery, SoundsiftError, UnreadableAudio
from engine.zeroshot import checking_between_batches
from ui.http_connections import RETRY_AFTER_SECONDS, SERVER_NAME, _drain
from ui.http_request import (ClientGone, ForeignHost, ForeignOrigin, MethodNotAllowed, NotFound, OverTime, Query,
                             RangeNotSatisfiable, RequestBody, RequestTimeout, TooLarge, _TimedReads)
from ui.http_routes import ID_ROUTES, OVER_TIME_ADVICE, Conflict, _json

if TYPE_CHECKING:
    from ui.server import SoundsiftServer

#: the logger of soundsift serve (its split modules log as one: --verbose and tests follow it)
log = logging.getLogger("ui.server")

#: what a client hanging up mid-answer raises when the answer is written (or stalling: the socket
#: timeout below)
HUNG_UP = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)
#: seconds a connection may stay silent while sending a request body or reading an answer
CLIENT_TIMEOUT_SECONDS = 120.0
#: seconds a connection has, from opening or from the end of its last answer, to send a whole
#: request line and headers: an idle keep-alive connection, or one dripping its headers a byte at
#: a time (slowloris), is closed then. A client sends its head in one write as it opens or reuses
#: a connection (milliseconds), and HTTP clients reopen a kept-alive connection the server closed
#: (browsers, curl, urllib3/requests); Node's default is 5 s, Apache's 5 s, nginx's 60 s/75 s
HEAD_TIMEOUT_SECONDS = 30.0
#: what an answer is written in: the socket timeout bounds each write, so a client reading
#: 64 kB in CLIENT_TIMEOUT_SECONDS (0.5 kB/s) keeps its answer coming, one that stops does not
SEND_BLOCK_BYTES = 1 << 16
#: seconds a request's work may take (``soundsift serve --request-timeout``; 0: no limit), from
#: when the request is in (its body read): past it, the work stops at its next checkpoint (a batch
#: of a clip's segments, of a sheet's files zero-shot tagged: :meth:`SoundsiftHandler.checkpoint`)
#: and the client gets 503. A search takes milliseconds; a 50 MiB upload is at most ~55 min of
#: MP3, ~330 segments of 10 s, which a CLAP model on a laptop's CPU embeds in a minute or two; a
#: thread busier than this is stuck
REQUEST_TIMEOUT_SECONDS = 300.0


class SoundsiftHandler(RequestBody, BaseHTTPRequestHandler):
    """One request: route, answer JSON (or a WAV, streamed), map soundsift's errors to statuses."""

    server: "SoundsiftServer"
    protocol_version = "HTTP/1.1"
    #: a client silent this long (not sending its body, or not reading an answer) is dropped:
    #: each connection holds a thread and, while streaming, an open file
    timeout = CLIENT_TIMEOUT_SECONDS
    #: the time to send a whole request line and headers (:meth:`handle_one_request`)
    head_timeout = HEAD_TIMEOUT_SECONDS
    #: unbuffered: :meth:`setup` puts its own buffer over reads it times
    rbufsize = 0
    #: when the request head being read must be complete (monotonic clock); None once it is
    head_deadline: float | None = None
    #: closed by the server while waiting for a head, to make room (SoundsiftServer.make_room)
    evicted = False
    #: the connection closes with a request body unread: drain it first (:meth:`finish`)
    linger = False
    #: SoundIndex.version as the request's answer began (its X-Index-Version header)
    index_version = ""
    #: when the request's work began (monotonic clock): its route began, or its body was read
    work_started = 0.0
    #: the route being answered (``/sheet``; ``/files`` for ``/files/ID``), "" before one is found
    route_path = ""

    def setup(self) -> None:
        """As StreamRequestHandler's, with each read of the request given the time left to it
        (:meth:`_before_read`)."""
        super().setup()
        self.rfile = io.BufferedReader(_TimedReads(self.rfile, self._before_read))

    def handle_one_request(self) -> None:
        """One request, its line and headers due within :attr:`head_timeout` (else the
        connection closes: http.server's TimeoutError handling)."""
        self.head_deadline = time.monotonic() + self.head_timeout
        self.server.awaiting_head(self, True)
        try:
            super().handle_one_request()
        finally:
            self.server.awaiting_head(self, False)

    def parse_request(self) -> bool:
        """http.server's, ending the head's deadline once the headers are read (or refused);
        nothing for a connection closed to make room (what it read may be a cut-off request)."""
        if self.evicted:
            self.close_connection = True
            return False
        self.continue_due = False
        try:
            return super().parse_request()
        finally:
            self._end_head()

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue``: the ``100 Continue`` is sent when a route reads the body
        (RequestBody.body), not now, so a request answered without its body (413 over the upload
        limit, 405, a 400 for a parameter) does not first invite the client to send it; the
        head's deadline is over (the body's timeout holds)."""
        self._end_head()
        self.continue_due = True
        return True

    def _end_head(self) -> None:
        """Back to :attr:`timeout` for each read and write: the head is in, and the connection
        is no longer one the server may close to make room."""
        if self.head_deadline is not None:
            self.server.awaiting_head(self, False)
            self.head_deadline = None
            self.connection.settimeout(self.timeout)

    def _before_read(self) -> None:
        """While the head is read, time each read out by what is left of its deadline."""
        if self.evicted:
            raise TimeoutError("closed while waiting for a request, to make room for another connection")
        if self.head_deadline is None:
            return
        left = self.head_deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no whole request line and headers within {self.head_timeout:g} s")
        self.connection.settimeout(left if self.timeout is None else min(left, self.timeout))

    def version_string(self) -> str:
        """The ``Server`` header: soundsift and its version, not http.server's Python version."""
        return SERVER_NAME

    def begin_work(self) -> None:
        """The request is in (its body read, where it has one): the time its work may take
        (the server's ``request_timeout``) counts from now, and nothing starts for a client that
        has hung up already (:meth:`checkpoint`'s ClientGone)."""
        self.work_started = time.monotonic()
        self.checkpoint("before it began")

    def checkpoint(self, stage: str) -> None:
        """Where a request's work may stop (:meth:`begin_work`, and before each batch of a
        clip's segments embedded, of texts embedded or of vectors tagged (a sheet's zero-shot
        column): engine.zeroshot.checking_between_batches, set around each route): ClientGone
        when the client has hung up, OverTime once the work has run past the server's
        ``request_timeout``; ``stage`` says where, for the log and the 503."""
        if _hung_up(self.connection):       # (or the server, stopping, cut the connection off)
            who = "the server cut it off to stop" if self.server.stopping else "the client hung up before its answer"
            raise ClientGone(f"{who}; its work stopped {stage}")
        limit = self.server.request_timeout
        if limit and time.monotonic() - self.work_started > limit:
            advice = OVER_TIME_ADVICE.get(self.route_path, "ask for less")
            raise OverTime(f"the request's work took more than the server's {limit:g} s limit (soundsift serve "
                           f"--request-timeout) and was stopped {stage}; {advice}")

    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
        self._answer("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._answer("POST")

    def do_PUT(self) -> None:  # noqa: N802 (answered in JSON, not http.server's 501 page)
        self._answer("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._answer("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._answer("PATCH")

    def do_HEAD(self) -> None:  # noqa: N802 (what GET would answer, without the body)
        self._answer("HEAD")

    def do_OPTIONS(self) -> None:  # noqa: N802 (a CORS preflight; else 405 with Allow, as any unanswered method)
        self._answer("OPTIONS")

    def do_TRACE(self) -> None:  # noqa: N802
        self._answer("TRACE")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a request line it cannot read, HTTP/2 spoken as text, an
        address over 64 kB, over 100 headers, a method with no handler) in JSON, as soundsift's are,
        with the CORS headers of the request's origin where its headers were read;
        with a status line even when the request line could not be read (http.server then
        answers as to HTTP/0.9: the page alone)."""
        self._end_head()
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        error = message or self.responses.get(code, ("error",))[0]
        if explain:
            error += f" ({explain})"
        self.log_error("code %d, message %s", code, error)
        body = _json({"error": error})
        self.close_connection = True
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        headers = getattr(self, "headers", None)        # None when the request line was not read
        for name, value in self.server.cors_headers(headers.get("Origin") if headers is not None else None):
            self.send_header(name, value)               # a page on an allowed origin reads the refusal
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        log.debug("%s %s", self.address_string(), format % args)

    def _answer(self, method: str) -> None:
        url = urlsplit(self.path)           # not urlparse: it would drop a ";…" after the path
        path = unquote(url.path)            # once, whole: /%69nfo is /info, /files/%31 is /files/1
        self.body_read = False
        self.work_started = time.monotonic()
        self.extra_headers: list[tuple[str, str]] = []     # a route's own (an excerpt's ETag, its range)
        self.route_path = ""
        allow = ""                          # the Allow header of a 405
        try:
            # first, a CORS preflight too; an absolute target (GET http://host/path) names the host
            self.server.check_host(url.netloc if url.scheme else self._host())
            if method == "OPTIONS" and self.headers.get("Access-Control-Request-Method") is not None:
                status, body, kind = self.server.preflight(self, path)
            else:
                route = self.server.route(method, path)
                self.route_path = route.path
                # read before the answer: a commit in between labels a newer answer with the older id
                self.index_version = self.server.index.version()
                self.extra_headers.append(("X-Index-Version", self.index_version))
                query = Query(url.query)
                query.only(route.params, f"{method} {route.path}{'/ID' if route.path in ID_ROUTES else ''}")
                with checking_between_batches(self.checkpoint):     # a clip's embedding, a sheet's tags stop there
                    status, body, kind = route.answer(self, query, path)
        except ClientGone as e:             # nobody to answer: nothing is sent, the connection closes
            log.info("%s %s: %s", method, self.path, e)
            self.close_connection = True
            return
        except OverTime as e:               # 503, not 504: no gateway timed out; no Retry-After either
            log.warning("%s %s: %s", method, self.path, e)
            status, body, kind = HTTPStatus.SERVICE_UNAVAILABLE, _json({"error": str(e)}), "application/json"
        except NotFound as e:
            status, body, kind = HTTPStatus.NOT_FOUND, _json({"error": str(e)}), "application/json"
        except Conflict as e:
            status, body, kind = HTTPStatus.CONFLICT, _json({"error": str(e)}), "application/json"
        except (ForeignHost, ForeignOrigin) as e:
            status, body, kind = HTTPStatus.FORBIDDEN, _json({"error": str(e)}), "application/json"
        except MethodNotAllowed as e:
            status, body, kind = HTTPStatus.METHOD_NOT_ALLOWED, _json({"error": str(e)}), "application/json"
            allow = ", ".join(e.allowed)
        except TooLarge as e:
            status, body, kind = HTTPStatus.REQUEST_ENTITY_TOO_LARGE, _json({"error": str(e)}), "application/json"
        except RequestTimeout as e:
            status, body, kind = HTTPStatus.REQUEST_TIMEOUT, _json({"error": str(e)}), "application/json"
        except RangeNotSatisfiable as e:
            status, body, kind = HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, _json({"error": str(e)}), "application/json"
            self.extra_headers = [(name, value) for name, value in self.extra_headers if name != "ETag"]
            self.extra_headers.append(("Content-Range", f"bytes */{e.total}"))    # not the excerpt's ETag
        except (InvalidQuery, UnreadableAudio) as e:
            status, body, kind = HTTPStatus.BAD_REQUEST, _json({"error": str(e)}), "application/json"
        except SoundsiftError as e:       # the index went missing, a mismatched model, a damaged catalog …
            if isinstance(e, IndexUnreadable):      # the operator's to mend (restored, it is read again)
                log.warning("%s %s: %s", method, self.path, e)
            status, body, kind = HTTPStatus.SERVICE_UNAVAILABLE, _json({"error": str(e)}), "application/json"
            self.extra_headers.append(("Retry-After", str(RETRY_AFTER_SECONDS)))    # as the busy 503's
        except Exception as e:            # a bug: said to the client and logged with its traceback
            log.exception("%s %s failed", method, self.path)
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            body, kind = _json({"error": f"{type(e).__name__}: {e}"}), "application/json"
        self.extra_headers += self.server.cors_headers(self.headers.get("Origin"))
        if not self.body_read and self._announces_body():
            self.close_connection = True    # its unread body must not be taken for the next request
            self.linger = True
        if self.server.stopping:            # the last answer on this connection: the server stops
            self.close_connection = True
        streamed = not isinstance(body, bytes)      # an ExcerptStream (GET /audio): sent as it is read
        try:
            self.send_response(status)
            if status not in (HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED):     # no body, by their status
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(body.length if streamed else len(body)))
            if allow:
                self.send_header("Allow", allow)
            for name, value in self.extra_headers:
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if method != "HEAD":
                for block in (body if streamed else (body,)):
                    self._send(block)
        except HUNG_UP as e:                # the client hung up: nobody to answer
            log.debug("%s %s: the client went away (%s)", method, self.path, e)
            self.close_connection = True
        except Exception as e:              # a streamed file failed once its status was sent: cut short
            log.warning("%s %s: the answer was cut short: %s", method, self.path, e,
                        exc_info=not isinstance(e, (SoundsiftError, OSError)))
            self.close_connection = True
        finally:
            if streamed:
                body.close()

    def _host(self) -> str | None:
        """The request's one ``Host``: None for an HTTP/1.0 request without one; InvalidQuery
        (400, as RFC 9112 §3.2 says) for an HTTP/1.1 request without one, or with several (the
        first checked, another used by whatever reads it next)."""
        hosts = self.headers.get_all("Host") or []
        if len(hosts) > 1:
            raise InvalidQuery(f"the request names {len(hosts)} hosts ({', '.join(map(repr, hosts))}); "
                               "send one Host header")
        if not hosts and self.request_version != "HTTP/1.0":
            raise InvalidQuery(f"an {self.request_version} request must name its host in a Host header "
                               "(e.g. Host: localhost)")
        return hosts[0] if hosts else None

    def _send(self, data: bytes) -> None:
        """Write ``data`` :data:`SEND_BLOCK_BYTES` at a time: the socket's timeout bounds each
        write, whole, so a slow but steady reader of a large answer is not cut off."""
        view = memoryview(data)
        for at in range(0, len(view), SEND_BLOCK_BYTES):
            self.wfile.write(view[at:at + SEND_BLOCK_BYTES])

    def finish(self) -> None:
        super().finish()
        if self.linger:
            _drain(self.connection)


def _hung_up(sock: socket.socket) -> bool:
    """Whether the client has closed ``sock`` (its end of the stream has come, as from a client
    that hung up or shut its side down, or it was reset; as Go's net/http and nginx take it),
    looked at without waiting and without taking a byte it sent (a next request stays)."""
    try:
        if hasattr(select, "poll"):         # any descriptor number (select.select's stop at 1024)
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            readable = bool(poller.poll(0))
        else:
            readable = bool(select.select([sock], [], [], 0)[0])
        return readable and not sock.recv(1, socket.MSG_PEEK)
    except (OSError, ValueError):           # reset by the client, or closed here already
        return True
