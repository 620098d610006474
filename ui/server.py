"""``soundsift serve``: the query layer over HTTP, with the index and its model kept open.

A command-line search loads the model every time (about 2.3 s on this machine); a DAW script, a
launcher or any program that asks often wants its answer in milliseconds. ``soundsift serve
--index NAME`` opens the index once (engine.query.SoundIndex, which answers from several
threads and follows new generations and rebuilds by itself) and answers JSON over HTTP:

=====  ====================  ==================================================================
GET    ``/search``           ``q`` text; ``k``; ``keywords=1``; ``not`` (comma-separated sounds
                             not wanted); ``segments=1`` (every matching segment); filters
GET    ``/similar``          ``file`` (an indexed path or file id), ``start``/``end`` (seconds or
                             m:ss); ``k``; ``segments=1``; filters
POST   ``/similar``          the body is a clip (WAV, FLAC, MP3 …): files that sound like it (or
                             like its part ``start``–``end``); ``k``; ``segments=1``; filters
GET    ``/tag``              ``file`` (indexed), ``labels`` (comma-separated; default the model's
                             vocabulary), ``top``: zero-shot tags from its stored vectors
POST   ``/tag``              the body is a clip: its zero-shot tags (both: the notes ``soundsift
                             tag`` prints, when the scores say little, in :data:`NOTES_HEADER`)
GET    ``/files/ID``         the file's record (path, format, segments, metadata, levels)
GET    ``/audio/ID``         WAV of an indexed file, or of its span ``start``–``end`` (a preview;
                             at most :data:`MAX_AUDIO_SECONDS`, the file's start by default;
                             streamed as it is read, so a long span costs no more memory); a
                             ``Range`` header gets that part (206), so a player can seek in it
GET    ``/info``             the index's counts, model, index type
GET    ``/facets``           what the filters can choose from (formats, rates, categories …)
GET    ``/sheet``            the library sheet of the files the filters keep, as CSV (what
                             ``soundsift sheet export`` writes); ``zero_shot`` N adds each
                             file's best N zero-shot tags (``labels``, ``min_score``)
=====  ====================  ==================================================================

Filters (as the CLI's options): ``min_duration``, ``max_duration``, ``path_prefix``,
``format``, ``sample_rate``, ``category``, ``channels``, ``min_loudness``, ``max_loudness``,
``tagged``. Hits are ``Hit.to_dict`` (as ``soundsift search --json``).

A bad request gets ``{"error": "…"}`` with 400 (a bad parameter, one the route does not take, one
that is not UTF-8 once percent-decoded, audio that cannot be read, a body whose framing is not one
clear length), 404 (a path the index does not hold, an unknown file id or route, path segments a
route does not take, a preview of a file deleted since it was indexed), 405 (a route asked with a
method it does not answer, TRACE and OPTIONS that is no CORS preflight among them), 408 (a body
that stopped arriving) or 413 (a clip over the upload limit); http.server's own refusals (414,
431, 501, 505) are JSON too. HEAD
answers what GET would, without the body; a body comes with a Content-Length or chunked
(``Transfer-Encoding: chunked``). Only files the index holds are
read from disk, by path or id, so a request cannot make the server read any other file; clips
come in the request body. It listens on 127.0.0.1 unless told otherwise, and there answers only
requests whose ``Host`` is this machine (403 otherwise: DNS rebinding).

Web pages and caches: pages on the origins ``allow_origins`` names (``soundsift serve
--allow-origin``; none by default, never ``*``) may call the API from a browser: their CORS
preflight is answered 204, their answers carry ``Access-Control-Allow-Origin`` (and every answer
``Vary: Origin``); a preflight from any other origin is 403. The Host check comes first, for
preflights too. Each answer of a route carries ``X-Index-Version`` (SoundIndex.version, read
before the answer: it changes whenever the index does, so a client keeping answers knows when to
drop them; ``/info`` has it as ``version``); ``/audio`` answers ``If-None-Match`` naming its ETag
with 304, without opening the file.

Slow and many clients: a connection has :data:`HEAD_TIMEOUT_SECONDS` from opening (or from the
end of its last answer) to send a whole request line and headers, however it drips them, else it
is closed; a body, or an answer the client reads, may stall for at most
:data:`CLIENT_TIMEOUT_SECONDS` (a body: 408); answers go out :data:`SEND_BLOCK_BYTES` at a time,
so that limit is on a stall, not on a slow but steady reader. At most ``max_connections``
(:data:`DEFAULT_MAX_CONNECTIONS`) are served at once, a thread each; one over that takes the place
of the connection that has waited longest for a request (idle, or sending its head), or, when
every one is busy, is answered 503 with ``Retry-After`` at once, by the listening thread (with
origins allowed, once it has read the request head's ``Origin``, without waiting on it, for
:data:`REFUSED_HEAD_SECONDS` at most: the answer carries that origin's CORS headers). A burst
of connections waits in the listen queue (:data:`LISTEN_BACKLOG`) while that thread is busy.
"""
from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import string
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Sequence
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import numpy as np

from engine.errors import InvalidQuery, PortUnavailable, SoundsiftError, UnreadableAudio
from engine.query import SoundIndex
from ui.byte_ranges import Unsatisfiable, etag_listed, requested_range

if TYPE_CHECKING:
    from engine.export import ExcerptStream

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765
MAX_K = 1000
#: longest span ``/audio`` sends, and what it sends without ``end`` (a preview: 600 s of 96 kHz
#: 6-channel 24-bit audio is 1 GB, streamed a block at a time, not held in memory)
MAX_AUDIO_SECONDS = 600.0
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
#: connections served at once (a thread each); one more closes the one idle longest, or when
#: all are busy is answered 503 with Retry-After. An idle one costs ~30 kB here (300 idle: RSS
#: 90 -> 98 MB), a streamed preview a few MB; 64 is ten browsers' six connections plus scripts
DEFAULT_MAX_CONNECTIONS = 64
#: what an answer is written in: the socket timeout bounds each write, so a client reading
#: 64 kB in CLIENT_TIMEOUT_SECONDS (0.5 kB/s) keeps its answer coming, one that stops does not
SEND_BLOCK_BYTES = 1 << 16
#: how long a new connection over the limit waits for the place of one closed to make room
#: (:meth:`SoundsiftServer.make_room`; it frees in milliseconds)
MAKE_ROOM_SECONDS = 1.0
#: Retry-After of the 503 a connection over the limit gets, in seconds
RETRY_AFTER_SECONDS = 1
#: connections the kernel completes and queues while the listening thread is busy (listen()'s
#: backlog; socketserver's 5 dropped the rest of a burst, whose clients retried a second or more
#: later, and gave up after their connect timeout). 511 is nginx's, Apache's and Node's default;
#: the kernel caps it at net.core.somaxconn (4096 on Linux since 5.4, 128 before). A queued
#: connection costs the kernel a socket, and is accepted in microseconds once the thread is free
LISTEN_BACKLOG = 511
#: seconds a browser may keep a CORS preflight's answer (Access-Control-Max-Age)
PREFLIGHT_MAX_AGE = 600
#: request headers a page on an allowed origin may send (beyond those CORS always allows)
CORS_REQUEST_HEADERS = ("Content-Type", "Range", "If-Range", "If-None-Match", "X-Filename")
#: the header of a /tag answer whose scores say little (one label, a sound under 0.1 s): the
#: notes ``soundsift tag`` prints, as a JSON list of strings (the body stays the list of tags)
NOTES_HEADER = "X-Soundsift-Notes"
#: response headers such a page may read (beyond Content-Type, Content-Length …)
CORS_EXPOSED_HEADERS = ("ETag", "Accept-Ranges", "Content-Range", "Retry-After", "X-Index-Version", NOTES_HEADER)
#: refused connections (already answered 503) read and dropped at once, before closing
#: (LINGER_SECONDS each, at most): more close at once; as many may wait for their request head
MAX_LINGERING = 256
#: with origins allowed, how long a connection refused while every place is busy may take to send
#: its request head, whose Origin says whether a page may read the 503 (CORS); the listening
#: thread reads it between connections, never waiting on it. A client sends its head as it
#: connects; one that has not by then (a browser's preconnect) gets the 503 with Vary: Origin alone
REFUSED_HEAD_SECONDS = 1.0
#: the most of a refused connection's request head read for its Origin (a browser's is a few kB);
#: a longer head gets the 503 with Vary: Origin alone
REFUSED_HEAD_BYTES = 1 << 16
#: after answering a request whose body was not read (a 413, a 400 before the body, a GET with a
#: body), what is read and dropped before the connection closes: closing with the client's bytes
#: unread resets it, and a reset can wipe the answer before the client reads it
LINGER_SECONDS = 2.0
LINGER_BYTES = 64 * 2**20
FILTER_PARAMS = ("min_duration", "max_duration", "path_prefix", "format", "sample_rate", "category",
                 "channels", "min_loudness", "max_loudness", "tagged")
#: routes followed by one more path segment, a file id (``/files/ID``)
ID_ROUTES = frozenset({"/files", "/audio"})


class NotFound(SoundsiftError):
    """A route, file id or path the server does not know (404)."""


class ForeignHost(SoundsiftError):
    """A request naming another host than this machine while the server listens on loopback
    only (403): a page on another site reaching 127.0.0.1 through DNS rebinding."""


class ForeignOrigin(SoundsiftError):
    """A CORS preflight from an origin ``soundsift serve --allow-origin`` did not name (403)."""


class MethodNotAllowed(SoundsiftError):
    """A route asked with a method it does not answer (405; ``allowed`` go in the Allow header)."""

    def __init__(self, message: str, allowed: list[str]) -> None:
        super().__init__(message)
        self.allowed = allowed


class RangeNotSatisfiable(SoundsiftError):
    """416: a ``Range`` past the end of an answer ``total`` bytes long."""

    def __init__(self, message: str, total: int) -> None:
        super().__init__(message)
        self.total = total


class TooLarge(SoundsiftError):
    """A request body over the upload limit (413)."""


class RequestTimeout(SoundsiftError):
    """A request body that stopped arriving for the handler's timeout (408)."""


class Query:
    """A request's query string: typed, checked parameters (InvalidQuery names the bad one)."""

    def __init__(self, raw: str) -> None:
        """Parse ``raw`` (as http.server gives it: bytes read as Latin-1); InvalidQuery for a name
        or value that is not UTF-8 once percent-decoded (the last of a repeated name counts)."""
        raw = quote(raw, safe=string.punctuation, encoding="latin-1")   # unescaped bytes ≥ 0x80 as %XX
        self.values: dict[str, str] = {}
        for name, value in parse_qsl(raw, keep_blank_values=True, errors="surrogateescape"):
            if not _is_utf8(name):
                raise InvalidQuery(f"a parameter name ({_shown(name)!r}) is not valid UTF-8 once percent-decoded")
            if not _is_utf8(value):
                raise InvalidQuery(f"{name} is not valid UTF-8 once percent-decoded")
            self.values[name] = value

    def only(self, accepted: Sequence[str], route: str) -> None:
        """InvalidQuery naming the parameters ``route`` does not take (``accepted`` are those it does)."""
        unknown = [name or "''" for name in self.values if name not in accepted]
        if unknown:
            takes = ", ".join(accepted) if accepted else "none"
            raise InvalidQuery(f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                               f"for {route}; it takes {takes}")

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name, default)
        return value.strip() if isinstance(value, str) and value.strip() else default

    def number(self, name: str, default: float | None = None, low: float | None = None,
               high: float | None = None) -> float | None:
        value = self.text(name)
        if value is None:
            return default
        try:
            x = float(value)
        except ValueError as e:
            raise InvalidQuery(f"{name} must be a number, got {value!r}") from e
        if not np.isfinite(x) or (low is not None and x < low) or (high is not None and x > high):
            bounds = (f" from {low:g} to {high:g}" if low is not None and high is not None
                      else f" of at least {low:g}" if low is not None
                      else f" of at most {high:g}" if high is not None else "")
            raise InvalidQuery(f"{name} must be a number{bounds}, got {value!r}")
        return x

    def time(self, name: str) -> float | None:
        """A time in seconds, given as seconds (83.5) or minutes:seconds (1:23.5), as hits show
        them and ``soundsift similar --start`` reads them; None when not given."""
        import typer

        from ui.cli.results import parse_time
        value = self.text(name)
        try:
            return parse_time(value)
        except typer.BadParameter as e:
            raise InvalidQuery(f"{name}: {e.message}") from e

    def count(self, name: str, default: int) -> int:
        value = self.number(name, default, low=1)
        if value != int(value) or value > MAX_K:
            raise InvalidQuery(f"{name} must be a whole number from 1 to {MAX_K}, got {self.text(name)!r}")
        return int(value)

    def flag(self, name: str) -> bool:
        return (self.text(name) or "").lower() in ("1", "true", "yes", "on")

    def listed(self, name: str) -> list[str]:
        from engine.vocabulary import split_list
        return split_list(self.text(name))          # "a,b" ('"Walk, footsteps",b': quoted)

    def filters(self) -> Any:
        from ui.cli.results import make_filters
        return make_filters(self.number("min_duration", low=0), self.number("max_duration", low=0),
                            self.text("path_prefix"), self.listed("format"), self.listed("sample_rate"),
                            self.listed("category"), self.listed("channels"), self.number("min_loudness"),
                            self.number("max_loudness"), self.listed("tagged"), name_of=lambda param: param)


class SoundsiftHandler(BaseHTTPRequestHandler):
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
        try:
            return super().parse_request()
        finally:
            self._end_head()

    def handle_expect_100(self) -> bool:
        """``100 Continue`` once the head's deadline is over (the body's timeout holds then)."""
        self._end_head()
        return super().handle_expect_100()

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
        self.body_read = False
        self.extra_headers: list[tuple[str, str]] = []     # a route's own (an excerpt's ETag, its range)
        allow = ""                          # the Allow header of a 405
        try:
            self.server.check_host(self.headers.get("Host"))       # first: a CORS preflight too
            if method == "OPTIONS" and self.headers.get("Access-Control-Request-Method") is not None:
                status, body, kind = self.server.preflight(self, url.path)
            else:
                route = self.server.route(method, url.path)
                query = Query(url.query)
                query.only(route.params, f"{method} {route.path}{'/ID' if route.path in ID_ROUTES else ''}")
                # read before the answer: a commit in between labels a newer answer with the older id
                self.index_version = self.server.index.version()
                self.extra_headers.append(("X-Index-Version", self.index_version))
                status, body, kind = route.answer(self, query, url.path)
        except NotFound as e:
            status, body, kind = HTTPStatus.NOT_FOUND, _json({"error": str(e)}), "application/json"
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
            self.extra_headers = [("Content-Range", f"bytes */{e.total}")]     # not the excerpt's ETag
        except (InvalidQuery, UnreadableAudio) as e:
            status, body, kind = HTTPStatus.BAD_REQUEST, _json({"error": str(e)}), "application/json"
        except SoundsiftError as e:       # the index went missing, a mismatched model …
            status, body, kind = HTTPStatus.SERVICE_UNAVAILABLE, _json({"error": str(e)}), "application/json"
        except Exception as e:            # a bug: said to the client and logged with its traceback
            log.exception("%s %s failed", method, self.path)
            status = HTTPStatus.INTERNAL_SERVER_ERROR
            body, kind = _json({"error": f"{type(e).__name__}: {e}"}), "application/json"
        self.extra_headers += self.server.cors_headers(self.headers.get("Origin"))
        if not self.body_read and self._announces_body():
            self.close_connection = True    # its unread body must not be taken for the next request
            self.linger = True
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

    def _announces_body(self) -> bool:
        """Whether the request says a body follows (a Content-Length above 0, or a Transfer-Encoding)."""
        return (self.headers.get("Transfer-Encoding") is not None
                or (self.headers.get("Content-Length") or "0").strip() not in ("", "0"))

    def body(self) -> bytes:
        """The request body (a clip), at most the upload limit: ``Content-Length`` bytes, or the
        chunks of ``Transfer-Encoding: chunked``. InvalidQuery for framing that is not one clear
        length (two different lengths, a length and chunks, a body that ends short of it),
        TooLarge over the limit, RequestTimeout when it stops arriving; the connection is closed
        after any of those (where the next request would start is not known)."""
        from ui.components.uploads import MAX_UPLOAD_BYTES
        codings = self.headers.get_all("Transfer-Encoding") or []
        lengths = {value.strip() for value in self.headers.get_all("Content-Length") or []}
        if codings:
            if lengths:
                raise InvalidQuery("a request body with both Content-Length and Transfer-Encoding; send one")
            if [c.strip().lower() for c in ",".join(codings).split(",")] != ["chunked"]:
                raise InvalidQuery(f"Transfer-Encoding {', '.join(codings)!r} is not read here; send the clip "
                                   "with a Content-Length or as Transfer-Encoding: chunked")
            data = self._chunks(MAX_UPLOAD_BYTES)
        else:
            if len(lengths) > 1:
                raise InvalidQuery(f"Content-Length is given as {' and '.join(sorted(lengths))}; give one length")
            given = lengths.pop() if lengths else "0"
            if not (given.isascii() and given.isdigit()):     # "²" is a digit to str.isdigit, not to int()
                raise InvalidQuery(f"Content-Length must be a number of bytes, got {_shown(given)!r}")
            length = int(given)
            if length > MAX_UPLOAD_BYTES:
                raise TooLarge(f"{length / 2**20:.1f} MiB is more than the {MAX_UPLOAD_BYTES / 2**20:.0f} MiB upload "
                               "limit; send only the part of the clip you want to search by")
            data = self._read(length, f"the {length} bytes its Content-Length announced") if length > 0 else b""
            if len(data) < length:
                raise InvalidQuery(f"the request body ended after {len(data)} of the {length} bytes its "
                                   "Content-Length announced")
        self.body_read = True
        return data

    def _read(self, size: int, waiting_for: str, line: bool = False) -> bytes:
        """``size`` bytes of the body (a line of at most ``size`` with ``line``); RequestTimeout
        when the client sends nothing for the handler's timeout before ``waiting_for`` came."""
        try:
            return self.rfile.readline(size) if line else self.rfile.read(size)
        except TimeoutError as e:
            raise RequestTimeout(f"the request body stopped arriving before {waiting_for} (nothing for "
                                 f"{self.timeout:g} s)") from e

    def _chunks(self, limit: int) -> bytes:
        """A ``Transfer-Encoding: chunked`` body (RFC 9112 §7.1), at most ``limit`` bytes."""
        data = bytearray()
        while True:
            size_line = self._read(1024, "its last chunk", line=True)
            found = _CHUNK_SIZE.fullmatch(size_line)
            if found is None:
                raise InvalidQuery(f"the chunked request body has a bad chunk size line {_shown(size_line.decode('latin-1'))!r}"
                                   if size_line.endswith(b"\n") else "the chunked request body ended before its last chunk")
            size = int(found.group(1), 16)
            if size == 0:
                break
            if len(data) + size > limit:
                raise TooLarge(f"the chunked request body is more than the {limit / 2**20:.0f} MiB upload limit; "
                               "send only the part of the clip you want to search by")
            chunk = self._read(size, "its last chunk")
            if len(chunk) < size or self._read(2, "its last chunk", line=True) not in (b"\r\n", b"\n"):
                raise InvalidQuery("the chunked request body ended inside a chunk, or a chunk is longer than its size")
            data += chunk
        for _ in range(100):                # trailer fields (ignored), up to the blank line
            trailer = self._read(8192, "the end of its trailer", line=True)
            if trailer in (b"\r\n", b"\n"):
                return bytes(data)
            if not trailer.endswith(b"\n"):
                break
        raise InvalidQuery("the chunked request body does not end with a blank line after its last chunk")


class _TimedReads(io.RawIOBase):
    """A socket's reads (``raw``, its unbuffered file), ``before`` called ahead of each: the
    handler sets the socket's timeout there, or raises TimeoutError when time is up."""

    def __init__(self, raw: io.RawIOBase, before: Callable[[], None]) -> None:
        super().__init__()
        self._raw, self._before = raw, before

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        self._before()
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


#: a chunk's size line: hexadecimal digits, optional extensions (";name=value"), CRLF
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r?\n")


class Route(NamedTuple):
    """A route: its path (``/files`` for ``/files/ID``), what answers it, the parameters it reads."""

    path: str
    answer: Callable[[SoundsiftHandler, Query, str], tuple[int, "bytes | ExcerptStream", str]]
    params: tuple[str, ...] = ()


class _Refusal:
    """A connection over the limit, to be answered 503 by the listening thread once what its
    request head says of its Origin is known (:meth:`SoundsiftServer._refuse`)."""

    def __init__(self, sock: socket.socket, host: str) -> None:
        self.sock, self.host = sock, host
        self.until = time.monotonic() + REFUSED_HEAD_SECONDS
        self.sent = bytearray()                 # what the client has sent, up to REFUSED_HEAD_BYTES

    def read(self) -> bool:
        """Read what the client has sent of its head, without waiting (the socket does not
        block); whether no more is to come: the head is complete, or cut short by a hang-up, or
        over REFUSED_HEAD_BYTES. OSError when the connection is reset."""
        while _request_head(self.sent) is None and len(self.sent) < REFUSED_HEAD_BYTES:
            try:
                got = self.sock.recv(REFUSED_HEAD_BYTES - len(self.sent))
            except BlockingIOError:
                return False
            if not got:
                return True
            self.sent += got
        return True

    def origin(self) -> str | None:
        """The ``Origin`` of the request head read (the first, as http.server's headers give
        it); None when it names none, or was not read whole."""
        head = _request_head(self.sent)
        for line in (head or b"").split(b"\n")[1:]:            # after the request line
            name, colon, value = line.partition(b":")
            if colon and name.lower() == b"origin":
                return value.strip().decode("latin-1")
        return None


class SoundsiftServer(ThreadingHTTPServer):
    """The HTTP server over one open SoundIndex (see the module docstring for the routes)."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, index: SoundIndex, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, allow_origins: Sequence[str] = ()) -> None:
        """Listen on ``host``:``port``; ``allow_origins``: origins whose pages may call the API
        (CORS; each as :func:`cors_origin` reads it), none by default."""
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        self.max_connections = max_connections
        self.allow_origins = frozenset(cors_origin(origin) for origin in allow_origins)
        self._slots = threading.BoundedSemaphore(max_connections)
        #: refused connections being read and dropped before they close: (socket, until when)
        self._lingering: list[tuple[socket.socket, float]] = []
        #: refused connections whose 503 waits for their request head (its Origin), oldest first
        self._refusing: list[_Refusal] = []
        self._warned_at = float("-inf")     # when a refusal was last logged as a warning
        #: handlers waiting for a request head (idle, or sending one), the longest waiting first
        self._awaiting: dict[SoundsiftHandler, None] = {}
        self._awaiting_lock = threading.Lock()
        if ":" in host:                     # an IPv6 address (::1, ::): the class's family is IPv4's
            self.address_family = socket.AF_INET6
        super().__init__((host, port), SoundsiftHandler)      # (server_close if it cannot listen)
        self.index = index
        similar = ("start", "end", "k", "segments", *FILTER_PARAMS)
        routes = [
            ("GET", "/search", self._search, ("q", "k", "keywords", "not", "segments", *FILTER_PARAMS)),
            ("GET", "/similar", self._similar, ("file", *similar)),
            ("POST", "/similar", self._similar_clip, similar),
            ("GET", "/tag", self._tag, ("file", "labels", "top")), ("POST", "/tag", self._tag_clip, ("labels", "top")),
            ("GET", "/files", self._file, ()), ("GET", "/audio", self._audio, ("start", "end")),
            ("GET", "/info", self._info, ()), ("GET", "/facets", self._facets, ()),
            ("GET", "/sheet", self._sheet, ("zero_shot", "labels", "min_score", *FILTER_PARAMS)),
        ]
        self.routes = {(method, path): Route(path, answer, params) for method, path, answer, params in routes}

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread for the connection while fewer than ``max_connections`` are served; else
        the place of one waiting for its request (:meth:`make_room`), or else a 503
        (:meth:`_refuse`), from this (the listening) thread, which waits for no client."""
        if not self._slots.acquire(blocking=False) and not (
                self.make_room() and self._slots.acquire(timeout=MAKE_ROOM_SECONDS)):
            self._refuse(request, client_address)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:               # no thread started: the slot is free again
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def awaiting_head(self, handler: SoundsiftHandler, waiting: bool) -> None:
        """Note that ``handler`` waits for a request head (it may be closed to make room), or
        no longer does."""
        with self._awaiting_lock:
            self._awaiting.pop(handler, None)
            if waiting:
                self._awaiting[handler] = None

    def make_room(self) -> bool:
        """Close the connection that has waited longest for a request head (kept alive and
        idle, or sending one slowly), as nginx closes idle keep-alive connections when out of
        them: its thread ends and its place frees. False when every connection is busy."""
        with self._awaiting_lock:
            if not self._awaiting:
                return False
            handler = next(iter(self._awaiting))
            del self._awaiting[handler]
            handler.evicted = True
        log.debug("closing %s, which waits for a request, to make room", handler.client_address[0])
        try:
            handler.connection.shutdown(socket.SHUT_RDWR)       # its blocked read returns now
        except OSError as e:                # it has just gone: its place frees all the same
            log.debug("closing to make room: %s", e)
        return True

    def _refuse(self, sock: socket.socket, client_address: Any) -> None:
        """Answer 503 with Retry-After and JSON, without blocking (:meth:`_answer_refused`). With
        origins allowed, the answer carries the CORS headers of the request's ``Origin``, so a page
        on an allowed origin reads it: a head not in the socket yet is read as it comes, between
        connections (:meth:`service_actions`), for REFUSED_HEAD_SECONDS at most."""
        now = time.monotonic()
        level = logging.WARNING if now - self._warned_at > 10 else logging.DEBUG     # not one a connection
        if level == logging.WARNING:
            self._warned_at = now
        log.log(level, "%s refused (503): %d connections served already; soundsift serve --max-connections "
                "raises the limit", client_address[0], self.max_connections)
        refusal = _Refusal(sock, client_address[0])
        try:
            sock.setblocking(False)
            known = not self.allow_origins or refusal.read()
        except OSError as e:                # reset already
            log.debug("refusing %s: %s", refusal.host, e)
            self.shutdown_request(sock)
            return
        if known:
            self._answer_refused(refusal)
            return
        if len(self._refusing) >= MAX_LINGERING:
            self._answer_refused(self._refusing.pop(0))
        self._refusing.append(refusal)

    def _answer_refused(self, refusal: _Refusal) -> None:
        """Send a refused connection its 503 (the CORS headers of its Origin, where its head was
        read), then read and drop what it sends for a while (:meth:`service_actions`): the
        request still in the socket is read first, so that closing does not reset the connection
        and wipe the answer."""
        body = _json({"error": f"the server is serving {self.max_connections} connections, its limit "
                               f"(soundsift serve --max-connections); try again in a moment"})
        cors = "".join(f"{name}: {value}\r\n" for name, value in self.cors_headers(refusal.origin()))
        head = (f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nRetry-After: {RETRY_AFTER_SECONDS}\r\n{cors}"
                f"Connection: close\r\n\r\n")
        sock = refusal.sock
        try:
            _read_what_is_there(sock)
            sock.send(head.encode("ascii") + body)      # a fresh socket's buffer takes it whole
            sock.shutdown(socket.SHUT_WR)
        except OSError as e:                # gone already
            log.debug("refusing %s: %s", refusal.host, e)
            self.shutdown_request(sock)
            return
        if len(self._lingering) >= MAX_LINGERING:
            self.shutdown_request(self._lingering.pop(0)[0])
        self._lingering.append((sock, time.monotonic() + LINGER_SECONDS))

    def service_actions(self) -> None:
        """Between connections (serve_forever's loop): answer the refused connections whose
        request head has come (or whose REFUSED_HEAD_SECONDS are over), read and drop what
        refused clients still send, and close them once they hang up or their LINGER_SECONDS
        are over."""
        super().service_actions()
        now, waiting = time.monotonic(), []
        for refusal in self._refusing:
            try:
                known = refusal.read() or now > refusal.until
            except OSError as e:            # reset by the client: no one to answer
                log.debug("refusing %s: %s", refusal.host, e)
                self.shutdown_request(refusal.sock)
                continue
            if known:
                self._answer_refused(refusal)
            else:
                waiting.append(refusal)
        self._refusing = waiting
        still = []
        for sock, until in self._lingering:
            try:
                done = _read_what_is_there(sock) or now > until
            except OSError as e:            # reset by the client: nothing more to read
                log.debug("a refused connection: %s", e)
                done = True
            if done:
                self.shutdown_request(sock)
            else:
                still.append((sock, until))
        self._lingering = still

    def server_close(self) -> None:
        super().server_close()
        for sock in [r.sock for r in self._refusing] + [sock for sock, _ in self._lingering]:
            self.shutdown_request(sock)
        self._refusing, self._lingering = [], []

    def check_host(self, host: str | None) -> None:
        """ForeignHost when the server listens on a loopback address only and the request's
        ``Host`` names another machine: a web page elsewhere whose name was made to resolve to
        127.0.0.1 (DNS rebinding) would otherwise read the library through the user's browser.
        No Host (HTTP/1.0), ``localhost``, ``*.localhost`` and loopback addresses pass; a server
        shared on the network (``--host 0.0.0.0``) takes any name it is reached by."""
        if host is None or not names_this_machine(str(self.server_address[0])):
            return
        if names_this_machine(_host_name(host)):
            return
        raise ForeignHost(f"Host {host!r} is not this machine: a server on {self.server_address[0]} answers "
                          "requests for localhost or a loopback address only (serve it with --host to be "
                          "reached by another name)")

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def methods(self, method: str, path: str) -> tuple[str, list[str]]:
        """The route path of ``path`` (``/files`` for ``/files/ID``) and the methods it answers;
        NotFound, naming ``method``, for an unknown path (segments after one a route does not
        take among them)."""
        first, *rest = path.strip("/").split("/")
        base = "/" + first
        allowed = sorted(m for m, p in self.routes if p == base)
        if not allowed or len(rest) > (1 if base in ID_ROUTES else 0):
            shown = "GET" if method == "HEAD" and "GET" in allowed else method
            known = sorted(f"{m} {p}{'/ID' if p in ID_ROUTES else ''}" for m, p in self.routes)
            raise NotFound(f"no route {shown} {path}; the routes are: {', '.join(known)}")
        return base, allowed

    def route(self, method: str, path: str) -> Route:
        """The route answering ``method`` on ``path``: NotFound for an unknown path (segments after
        one a route does not take among them), MethodNotAllowed for a known one asked wrongly."""
        base, allowed = self.methods(method, path)
        method = "GET" if method == "HEAD" and "GET" in allowed else method     # GET, its body left out
        if method not in allowed:       # the route is there, not for this method
            raise MethodNotAllowed(f"{base} answers {' and '.join(allowed)}, not {method}", allowed)
        return self.routes[(method, base)]

    def preflight(self, handler: SoundsiftHandler, path: str) -> tuple[int, bytes, str]:
        """A CORS preflight (OPTIONS with ``Access-Control-Request-Method``) for ``path``: 204
        saying what a page on an allowed origin may send there (the browser then sends the
        request itself); ForeignOrigin (403) for any other origin, NotFound for an unknown path."""
        base, allowed = self.methods("OPTIONS", path)
        origin = handler.headers.get("Origin")
        if origin not in self.allow_origins:
            listed = ", ".join(sorted(self.allow_origins)) or "none"
            raise ForeignOrigin(f"pages on {origin or 'no origin'} may not call this API (allowed origins: {listed}); "
                                f"soundsift serve --allow-origin ORIGIN lets a page on ORIGIN call it")
        methods = allowed + (["HEAD"] if "GET" in allowed else [])
        handler.extra_headers += [("Access-Control-Allow-Methods", ", ".join(methods)),
                                  ("Access-Control-Allow-Headers", ", ".join(CORS_REQUEST_HEADERS)),
                                  ("Access-Control-Max-Age", str(PREFLIGHT_MAX_AGE))]
        if (handler.headers.get("Access-Control-Request-Private-Network") or "").strip().lower() == "true":
            # Chrome's Private Network Access: a page on a public origin calling this loopback server
            handler.extra_headers.append(("Access-Control-Allow-Private-Network", "true"))
        return HTTPStatus.NO_CONTENT, b"", ""

    def cors_headers(self, origin: str | None) -> list[tuple[str, str]]:
        """The CORS headers of an answer to a request from ``origin`` (its ``Origin`` header):
        none unless origins are allowed; then ``Vary: Origin``, and for an allowed one
        ``Access-Control-Allow-Origin`` naming it, with the headers its page may read."""
        if not self.allow_origins:
            return []
        if origin not in self.allow_origins:    # browsers send the origin as cors_origin writes it
            return [("Vary", "Origin")]
        return [("Vary", "Origin"), ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Expose-Headers", ", ".join(CORS_EXPOSED_HEADERS))]

    # -- routes --------------------------------------------------------------------------
    def _search(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, bytes, str]:
        text = q.text("q")
        if text is None:
            raise InvalidQuery("q (the text to search for) is missing")
        if q.flag("keywords") and q.flag("segments"):   # the engine's refusal names neither parameter
            raise InvalidQuery("keywords=1 ranks files, so it cannot be combined with segments=1; leave one out")
        hits = self.index.search_text(text, k=q.count("k", 10), filters=q.filters(),
                                      per_file=not q.flag("segments"), keywords=q.flag("keywords"),
                                      exclude=q.listed("not"))
        return _hits(hits)

    def _similar(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, bytes, str]:
        from engine.duplicates import mark_copies
        file_id, record = self._indexed(q)
        start, end, per_file = q.time("start"), q.time("end"), not q.flag("segments")
        hits = self.index.similar_to_file(file_id, k=q.count("k", 10), filters=q.filters(),
                                          per_file=per_file, start=start, end=end)
        if per_file and start is None and end is None:      # as `soundsift similar --json` marks them
            hits = mark_copies((record or self.index.get_file(file_id))["path"], hits)
        return _hits(hits)

    def _similar_clip(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, bytes, str]:
        from engine.duplicates import copies_of_waveform, mark_copies
        clip = _clip(handler)
        start, end, per_file = q.time("start"), q.time("end"), not q.flag("segments")
        hits = self.index.search_audio(clip.waveform, k=q.count("k", 10), filters=q.filters(),
                                       per_file=per_file, sample_rate=clip.sample_rate, start=start, end=end)
        if per_file and start is None and end is None:      # files holding the clip's very recording
            hits = mark_copies(None, hits, copies=lambda _none, candidates: copies_of_waveform(
                clip.waveform, clip.sample_rate, candidates))
        return _hits(hits)

    def _tag(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, bytes, str]:
        from engine import zeroshot
        from engine.tagging import COSINE_ADVICE, tag_notes
        from engine.vocabulary import default_labels
        file_id, record = self._indexed(q)
        vector = self.index.file_vector(file_id)
        model = self.index.model
        labels = q.listed("labels") or default_labels(model)
        tags = zeroshot.tag(model, vector, labels, q.count("top", 5))
        record = record or self.index.get_file(file_id)
        _say_notes(handler, tag_notes(labels, [(record["path"], record["duration"])], COSINE_ADVICE))
        return HTTPStatus.OK, _json(tags), "application/json"

    def _tag_clip(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, bytes, str]:
        clip = _clip(handler)
        tags, notes = self.index.tag_with_notes(clip.waveform, labels=q.listed("labels") or None,
                                                top=q.count("top", 5), sample_rate=clip.sample_rate, name=clip.name)
        _say_notes(handler, notes)
        return HTTPStatus.OK, _json(tags), "application/json"

    def _file(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, bytes, str]:
        return HTTPStatus.OK, _json(self._record(path)), "application/json"

    def _audio(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, "bytes | ExcerptStream", str]:
        """The span as WAV (engine.export.excerpt_stream: the bytes excerpt_wav makes, written
        a block at a time as they are read; the handler closes it), or the part of it a
        ``Range`` header asks for (206; ``If-Range`` with another ETag gets all of it), or 304
        when ``If-None-Match`` names its ETag (the file is not opened)."""
        from engine.export import excerpt_stream
        record = self._record(path)
        start = q.time("start") or 0.0
        if start >= record["duration"]:
            raise InvalidQuery(f"start ({start:g} s) is past the end of the file ({record['duration']:g} s)")
        given_end = q.time("end")
        end = min(record["duration"], start + MAX_AUDIO_SECONDS) if given_end is None else given_end
        if end <= start:
            raise InvalidQuery(f"end ({end:g} s) must come after start ({start:g} s)")
        if end - start > MAX_AUDIO_SECONDS:
            raise InvalidQuery(f"a span of {end - start:g} s is longer than the {MAX_AUDIO_SECONDS:g} s "
                               "/audio sends; ask for a part")
        tag = _excerpt_etag(record["path"], start, end)
        if tag is not None and etag_listed(handler.headers.get("If-None-Match"), tag):
            handler.extra_headers += [("Accept-Ranges", "bytes"), ("ETag", tag)]
            return HTTPStatus.NOT_MODIFIED, b"", "audio/wav"     # the client holds these bytes
        wanted = handler.headers.get("Range")
        if_range = handler.headers.get("If-Range")
        if if_range is not None and if_range.strip() != tag:
            wanted = None                   # the client holds another version: all of this one
        try:
            stream = excerpt_stream(record["path"], start, end)
        except UnreadableAudio as e:        # indexed, then deleted or renamed: not a bad request
            if not os.path.lexists(record["path"]):
                raise NotFound(f"{e} (file id {record['file_id']}; re-index to drop it)") from e
            raise
        handler.extra_headers += [("Accept-Ranges", "bytes"), *([("ETag", tag)] if tag is not None else [])]
        try:
            part = requested_range(wanted, stream.length)
        except Unsatisfiable as e:
            stream.close()
            raise RangeNotSatisfiable(str(e), e.total) from e
        if part is None:
            return HTTPStatus.OK, stream, "audio/wav"
        handler.extra_headers.append(("Content-Range", part.content_range()))
        return HTTPStatus.PARTIAL_CONTENT, stream.part(part.first, part.last), "audio/wav"

    def _info(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, bytes, str]:
        """SoundIndex.info, with ``version`` (SoundIndex.version, as the X-Index-Version header)."""
        return HTTPStatus.OK, _json({**self.index.info(), "version": handler.index_version}), "application/json"

    def _facets(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, bytes, str]:
        return HTTPStatus.OK, _json(self.index.facets()), "application/json"

    def _sheet(self, handler: SoundsiftHandler, q: Query, path: str) -> tuple[int, bytes, str]:
        from engine.sheet_export import library_rows, sheet_bytes
        zero_shot = q.count("zero_shot", 0) if q.number("zero_shot", 0, low=0) != 0 else 0
        rows = library_rows(self.index.root, q.filters(), sound_index=self.index, zero_shot=zero_shot,
                            labels=q.listed("labels") or None, min_score=q.number("min_score", 0.1, low=0, high=1))
        return HTTPStatus.OK, sheet_bytes(rows, ".csv"), "text/csv; charset=utf-8"

    # -- helpers -------------------------------------------------------------------------
    def _indexed(self, q: Query) -> tuple[int, dict[str, Any] | None]:
        """The file id ``file`` names (an indexed path or a file id), with its record when reading
        it was how the id was checked (None for a path); NotFound when the index lacks it."""
        given = q.text("file")
        if given is None:
            raise InvalidQuery("file (an indexed path or file id) is missing")
        if _file_id(given) is not None:
            record = self._record(f"/files/{given}")
            return int(record["file_id"]), record
        if "\x00" in given:
            raise NotFound(f"{given!r} is not a path (it holds a NUL character)")
        found = self.index.file_id_for_path(given)
        if found is None:
            raise NotFound(f"{given} is not in index {self.index.root}; POST the clip instead")
        return found, None

    def _record(self, path: str) -> dict[str, Any]:
        """The record (SoundIndex.get_file) of the file whose id ends ``/files/ID`` or ``/audio/ID``;
        NotFound for an id the index does not hold."""
        file_id = _file_id(unquote(path.rstrip("/").rsplit("/", 1)[-1]))
        if file_id is None:
            raise NotFound(f"{path}: give a file id (a number, as hits' file_id)")
        try:
            return self.index.get_file(file_id)
        except InvalidQuery as e:
            raise NotFound(str(e)) from e


def _host_name(host: str) -> str:
    """The name in a ``Host`` header, without its port or an IPv6 address's brackets, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host[1:]
    return (host.rsplit(":", 1)[0] if host.count(":") == 1 else host).rstrip(".")


def names_this_machine(name: str) -> bool:
    """Whether ``name`` (a host name or address, as bound or as a ``Host`` header names it) can
    only mean this machine: ``localhost``, ``*.localhost`` (RFC 6761) or a loopback address
    (127.0.0.0/8, ::1, in brackets or not). The server's Host check and the CLI's warning about
    serving on the network both ask this."""
    name = name.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    import ipaddress
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _drain(sock: socket.socket) -> None:
    """Say the answer is complete (half-close), then read and drop what the client still sends,
    for at most LINGER_SECONDS and LINGER_BYTES, so that closing does not reset the connection."""
    try:
        sock.shutdown(socket.SHUT_WR)
        deadline, drained = time.monotonic() + LINGER_SECONDS, 0
        while drained < LINGER_BYTES and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            got = sock.recv(1 << 16)
            if not got:
                break
            drained += len(got)
    except OSError as e:                    # gone already, or silent for the rest of the time
        log.debug("closing after an unread body: %s", e)


def _read_what_is_there(sock: socket.socket) -> bool:
    """Read and drop what a non-blocking ``sock`` holds (at most LINGER_BYTES); whether the
    client hung up (or sent too much to keep reading)."""
    drained = 0
    while drained < LINGER_BYTES:
        try:
            got = sock.recv(1 << 16)
        except BlockingIOError:
            return False
        if not got:
            return True
        drained += len(got)
    return True


def _request_head(sent: bytes | bytearray) -> bytes | None:
    """The request line and headers at the start of ``sent`` (empty lines before them passed
    over, as RFC 9112 lets a server do), up to the empty line that ends them; None until that
    has come."""
    sent = bytes(sent).lstrip(b"\r\n")
    ends = [at for at in (sent.find(b"\r\n\r\n"), sent.find(b"\n\n")) if at >= 0]
    return sent[:min(ends)] if ends else None


def _excerpt_etag(path: str, start: float, end: float) -> str | None:
    """A strong ETag for the excerpt ``start``–``end`` of ``path`` as the file is now: its size
    and modification time, and the span (a file rewritten in place gets a new one, so a player
    that asks for the rest of an excerpt with ``If-Range`` gets all of the new one instead, and
    one revalidating with ``If-None-Match`` gets the new one, not 304); None when the file cannot
    be looked at (excerpt_stream then says why it cannot be read)."""
    import hashlib
    try:
        st = os.stat(path)
    except OSError:
        return None
    made = f"{st.st_size}:{st.st_mtime_ns}"
    digest = hashlib.sha256(f"{path}\0{made}\0{start!r}\0{end!r}".encode("utf-8", "surrogateescape"))
    return f'"{digest.hexdigest()[:32]}"'


def cors_origin(text: str) -> str:
    """``text`` as an origin a page's requests name in ``Origin`` (``scheme://host[:port]``, in
    lower case, without a default port, an IPv6 address compressed: ``HTTP://LocalHost:80/`` is
    ``http://localhost``, ``http://[0:0:0:0:0:0:0:1]`` ``http://[::1]``);
    ValueError saying why for anything else: ``*`` or ``null`` (every page, or any sandboxed
    one), a path, a query, a user name, no host."""
    given = text.strip()
    if given in ("*", "null"):
        raise ValueError(f"{given!r} would let {'every web page' if given == '*' else 'any sandboxed page or file'} "
                         "the browser opens read the library; name each origin, e.g. http://localhost:3000")
    not_origin = (f"{given!r} is not an origin: give scheme://host[:port] as the page's address bar shows it, "
                  "without a path (e.g. http://localhost:3000; a host in ASCII, xn-- form)")
    try:
        parts = urlsplit(given)
    except ValueError as e:             # an IPv6 host's bracket not closed, or no address inside
        raise ValueError(f"{not_origin} ({e})") from e
    try:
        port = parts.port
    except ValueError as e:
        raise ValueError(f"{given!r} has a bad port ({e})") from e
    if (not given.isascii() or not parts.scheme or not parts.hostname or parts.path not in ("", "/")
            or parts.query or parts.fragment or "@" in parts.netloc or given.endswith(("?", "#"))):
        raise ValueError(not_origin)
    host = parts.hostname
    if ":" in host:                     # IPv6: browsers send it compressed, [::1] for [0:0:0:0:0:0:0:1]
        try:
            host = f"[{_ipv6_as_browsers_write(host)}]"
        except ValueError as e:
            raise ValueError(f"{not_origin} ({e})") from e
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{host}" + ("" if port is None or port == default else f":{port}")


def _ipv6_as_browsers_write(address: str) -> str:
    """The IPv6 ``address`` as a browser writes it in an ``Origin`` (the WHATWG URL standard's
    serializer): lower-case groups without leading zeros, the first longest run of two or more
    zero groups as ``::``, no dotted IPv4 part; ValueError for no address or one with a zone
    (``%eth0``: no browser takes one in a URL)."""
    import ipaddress
    if "%" in address:
        raise ValueError(f"{address!r} names a zone, which browsers do not take in an address")
    groups = [format(int(g, 16), "x") for g in ipaddress.IPv6Address(address).exploded.split(":")]
    start, length = 0, 0
    for i in range(len(groups)):
        run = next((n for n in range(len(groups) - i) if groups[i + n] != "0"), len(groups) - i)
        if run > length:
            start, length = i, run
    if length < 2:
        return ":".join(groups)
    return ":".join(groups[:start]) + "::" + ":".join(groups[start + length:])


def _file_id(text: str) -> int | None:
    """``text`` as a file id: ASCII digits of a number SQLite can hold, else None (a path, or
    no id at all; "²" and "٣" are digits to str.isdigit, not ids)."""
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    return int(text)


def _is_utf8(text: str) -> bool:
    """Whether ``text`` (decoded with surrogateescape) came from valid UTF-8."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(text: str) -> str:
    """``text`` with the bytes surrogateescape kept shown as replacement characters."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, default=_plain).encode("utf-8")


def _plain(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _hits(hits: list) -> tuple[int, bytes, str]:
    return HTTPStatus.OK, _json([h.to_dict() for h in hits]), "application/json"


def _say_notes(handler: SoundsiftHandler, notes: list[str]) -> None:
    """The notes ``soundsift tag`` prints when the scores say little (engine.tagging.tag_notes:
    one label, a sound too short to be told apart), as the :data:`NOTES_HEADER` of a /tag
    answer: a JSON list of strings, ASCII-escaped (a label or file name may hold any character)."""
    if notes:
        handler.extra_headers.append((NOTES_HEADER, json.dumps(notes, ensure_ascii=True)))


def _clip(handler: SoundsiftHandler) -> Any:
    from ui.components.uploads import read_example
    data = handler.body()
    name = handler.headers.get("X-Filename") or "request body"
    return read_example(name, data)


def serve(index: SoundIndex, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          ready: Callable[[SoundsiftServer], None] | None = None,
          stop: threading.Event | None = None, max_connections: int = DEFAULT_MAX_CONNECTIONS,
          allow_origins: Sequence[str] = ()) -> None:
    """Answer requests on ``host``:``port`` until ``stop`` is set (or Ctrl-C), at most
    ``max_connections`` at once, pages on ``allow_origins`` allowed to call it (CORS);
    ``ready`` gets the listening server (its ``url``; port 0 picks a free one)."""
    try:
        server = SoundsiftServer(index, host, port, max_connections, allow_origins)
    except OSError as e:            # taken by another program, a port below 1024, an unknown host
        raise PortUnavailable(f"cannot listen on {host}:{port} ({e.strerror or e}); "
                              "choose another with --port, or stop what uses it") from e
    if ready is not None:
        ready(server)
    stop = stop or threading.Event()
    worker = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    worker.start()
    try:
        while not stop.wait(0.2):
            pass
    finally:
        server.shutdown()
        server.server_close()
        worker.join(10)
