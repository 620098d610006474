"""``soundsift serve``: the query layer over HTTP, with the index and its model kept open.

A command-line search loads the model every time (about 2.3 s on this machine); a DAW script, a
launcher or any program that asks often wants its answer in milliseconds. ``soundsift serve
--index NAME`` opens the index once (engine.query.SoundIndex, which answers from several
threads and follows new generations and rebuilds by itself) and answers JSON over HTTP:

=====  ====================  ==================================================================
GET    ``/search``           ``q`` text; ``k``; ``keywords=1``; ``not`` (comma-separated sounds
                             not wanted); ``segments=1`` (every matching segment); filters
GET    ``/similar``          ``file`` (an indexed path or file id), ``start``/``end`` (seconds or
                             m:ss; an ``end`` past the file's is cut to it, with a note in
                             :data:`NOTES_HEADER`); ``k``; ``segments=1``; filters
POST   ``/similar``          the body is a clip (WAV, FLAC, MP3 …): files that sound like it (or
                             like its part ``start``–``end``, cut as above); ``k``;
                             ``segments=1``; filters
GET    ``/tag``              ``file`` (indexed), ``labels`` (comma-separated; left out: the model's
                             vocabulary), ``top``: zero-shot tags from its stored vectors
POST   ``/tag``              the body is a clip: its zero-shot tags (both: the notes ``soundsift
                             tag`` prints, when the scores say little, in :data:`NOTES_HEADER`)
GET    ``/files/ID``         the file's record (path, format, segments, metadata, levels;
                             ``missing`` and ``header_duration`` as hits have them: a file no
                             longer on disk, one cut short)
GET    ``/audio/ID``         WAV of an indexed file, or of its span ``start``–``end`` (a preview;
                             at most :data:`MAX_AUDIO_SECONDS`, the file's start by default,
                             an ``end`` past the file's cut to it;
                             streamed as it is read, so a long span costs no more memory); a
                             ``Range`` header gets that part (206), so a player can seek in it
GET    ``/info``             the index's counts, model, index type, and every key of
                             ``soundsift info --json`` (its error rows as ``latest_errors``)
GET    ``/facets``           what the filters can choose from (formats, rates, categories …)
GET    ``/sheet``            the library sheet of the files the filters keep, as CSV (what
                             ``soundsift sheet export`` writes); ``zero_shot`` N adds each
                             file's best N zero-shot tags (``labels``, ``min_score``)
=====  ====================  ==================================================================

Filters (as the CLI's options): ``min_duration``, ``max_duration``, ``path_prefix``,
``format``, ``sample_rate``, ``category``, ``channels``, ``min_loudness``, ``max_loudness``,
``tagged``. Hits are ``Hit.to_dict`` (as ``soundsift search --json``). A filtered search or
similar that finds nothing names, in :data:`NOTES_HEADER`, each filter value no indexed file has
(SoundIndex.why_no_file, as the CLI's notes do).

A bad request gets ``{"error": "…"}`` with 400 (a bad parameter, one the route does not take, one
that is not UTF-8 once percent-decoded, a flag neither on nor off, a list that lists nothing
(``labels=,,,``), audio that cannot be read or a multipart form instead of it, an ``/audio`` span
shorter than one sample, a body whose framing is not one clear length, an HTTP/1.1 request
without one ``Host``), 404 (a path the index does not hold, an unknown file id or route, path segments a
route does not take, a preview of a file deleted since it was indexed), 405 (a route asked with a
method it does not answer, TRACE and OPTIONS that is no CORS preflight among them), 408 (a body
that stopped arriving), 413 (a clip over the upload limit) or 416 (a ``Range`` past the end of
``/audio``'s answer) or 503 (an index that cannot be read, with ``Retry-After``; a request whose
work ran past ``request_timeout``, without); http.server's own refusals (414, 431, 501, 505) are
JSON too. Every answer's ``Server`` is ``soundsift/VERSION`` (:data:`SERVER_NAME`), not Python's. The path is percent-decoded
once, as a whole (``/%69nfo`` is ``/info``), before it is routed. HEAD
answers what GET would, without the body; a body comes with a Content-Length or chunked
(``Transfer-Encoding: chunked``), and ``Expect: 100-continue`` gets its ``100 Continue`` once a
route reads the body (a clip over the limit gets its 413 before sending it). Only files the index holds are
read from disk, by path or id, so a request cannot make the server read any other file; clips
come in the request body. It listens on 127.0.0.1 unless told otherwise, and there answers only
requests whose ``Host`` is this machine (403 otherwise: DNS rebinding); on all interfaces
(``0.0.0.0``, ``::``) its ``url`` is the loopback one.

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
Stopping (Ctrl-C, SIGTERM, ``stop``), the server closes its idle connections and lets the
requests being answered finish, for :data:`STOP_GRACE_SECONDS` at most, before it returns.

Work for nobody: a request's work stops at its checkpoints (SoundsiftHandler.checkpoint: once
its body is read or its route begins, before each batch of a clip's segments is embedded and of
a sheet's files zero-shot tagged, engine.zeroshot.checking_between_batches, and before a sheet's
CSV is written) when its client has hung up (nothing is sent; one INFO line), when its connection
was cut off to stop, or when it has run past ``request_timeout`` (:data:`REQUEST_TIMEOUT_SECONDS`;
503, advising what to ask instead: ui.http_routes.OVER_TIME_ADVICE).

The server is split by job: ui.http_request (the query string, the body, the error classes),
ui.http_handler (SoundsiftHandler: one connection's requests and answers), ui.http_routes (the
routes and their answers), ui.http_origins (the Host check and CORS), ui.http_connections (the
connection limit, 503s, lingering closes); this module puts SoundsiftServer together and serves it.
"""
from __future__ import annotations

import logging
import socket
import threading
from http.server import ThreadingHTTPServer
from typing import Any, Callable, Sequence

from engine.errors import PortUnavailable
from engine.query import SoundIndex
from ui.http_connections import (DEFAULT_MAX_CONNECTIONS, LINGER_BYTES, LINGER_SECONDS, LISTEN_BACKLOG,
                                 MAKE_ROOM_SECONDS, MAX_LINGERING, REFUSED_HEAD_BYTES, REFUSED_HEAD_SECONDS,
                                 RETRY_AFTER_SECONDS, SERVER_NAME, STOP_GRACE_SECONDS, ConnectionLimit)
from ui.http_handler import (CLIENT_TIMEOUT_SECONDS, HEAD_TIMEOUT_SECONDS, HUNG_UP, REQUEST_TIMEOUT_SECONDS,
                             SEND_BLOCK_BYTES, SoundsiftHandler)
from ui.http_origins import (CORS_EXPOSED_HEADERS, CORS_REQUEST_HEADERS, PREFLIGHT_MAX_AGE, OriginPolicy,
                             cors_origin, names_this_machine)
from ui.http_request import (MAX_K, ClientGone, ForeignHost, ForeignOrigin, MethodNotAllowed, NotFound, OverTime,
                             Query, RangeNotSatisfiable, RequestTimeout, TooLarge)
from ui.http_routes import FILTER_PARAMS, ID_ROUTES, MAX_AUDIO_SECONDS, NOTES_HEADER, Route, RouteAnswers

#: what ui.server offers: its own names, and the public ones its parts hold now, importable from
#: here as they were before it was split (private helpers are imported from their part)
__all__ = [
    "DEFAULT_PORT", "SoundsiftServer", "serve", "log",
    # ui.http_connections
    "DEFAULT_MAX_CONNECTIONS", "LINGER_BYTES", "LINGER_SECONDS", "LISTEN_BACKLOG", "MAKE_ROOM_SECONDS",
    "MAX_LINGERING", "REFUSED_HEAD_BYTES", "REFUSED_HEAD_SECONDS", "RETRY_AFTER_SECONDS", "SERVER_NAME",
    "STOP_GRACE_SECONDS",
    # ui.http_handler
    "CLIENT_TIMEOUT_SECONDS", "HEAD_TIMEOUT_SECONDS", "HUNG_UP", "REQUEST_TIMEOUT_SECONDS", "SEND_BLOCK_BYTES",
    "SoundsiftHandler",
    # ui.http_origins
    "CORS_EXPOSED_HEADERS", "CORS_REQUEST_HEADERS", "PREFLIGHT_MAX_AGE", "cors_origin", "names_this_machine",
    # ui.http_request
    "MAX_K", "ClientGone", "ForeignHost", "ForeignOrigin", "MethodNotAllowed", "NotFound", "OverTime", "Query",
    "RangeNotSatisfiable", "RequestTimeout", "TooLarge",
    # ui.http_routes
    "FILTER_PARAMS", "ID_ROUTES", "MAX_AUDIO_SECONDS", "NOTES_HEADER", "Route",
]

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765


class SoundsiftServer(ConnectionLimit, OriginPolicy, RouteAnswers, ThreadingHTTPServer):
    """The HTTP server over one open SoundIndex (see the module docstring for the routes)."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, index: SoundIndex, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, allow_origins: Sequence[str] = (),
                 request_timeout: float = REQUEST_TIMEOUT_SECONDS) -> None:
        """Listen on ``host``:``port``; ``allow_origins``: origins whose pages may call the API
        (CORS; each as :func:`cors_origin` reads it), none by default; ``request_timeout``: the
        seconds a request's work may take (0: no limit; ValueError below 0)."""
        if not request_timeout >= 0:        # (NaN too)
            raise ValueError(f"request_timeout must be 0 (no limit) or more seconds, got {request_timeout}")
        self.request_timeout = request_timeout
        self._limit_connections(max_connections)
        self.allow_origins = frozenset(cors_origin(origin) for origin in allow_origins)
        if ":" in host:                     # an IPv6 address (::1, ::): the class's family is IPv4's
            self.address_family = socket.AF_INET6
        super().__init__((host, port), SoundsiftHandler)      # (server_close if it cannot listen)
        self.index = index
        self.routes = self._route_table()

    @property
    def url(self) -> str:
        """The address a browser or client on this machine opens: the one listened on, or for
        all interfaces (``0.0.0.0``, ``::``) this machine's loopback one (:attr:`all_interfaces`)."""
        host, port = self.server_address[:2]
        if self.all_interfaces:
            host = "::1" if ":" in host else "127.0.0.1"
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def all_interfaces(self) -> bool:
        """Whether it listens on every interface (``--host 0.0.0.0`` or ``::``): other machines
        reach it at this one's addresses, not at :attr:`url`."""
        return self.server_address[0] in ("0.0.0.0", "::")

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection's thread failed: a client that hung up (reset) while http.server wrote one
        of its own refusals, or read a request line, is one DEBUG line, not socketserver's
        traceback on stderr (which anything else still gets)."""
        import sys
        error = sys.exc_info()[1]
        if isinstance(error, HUNG_UP):
            log.debug("%s: the client went away (%s)", client_address[0], error)
        else:
            super().handle_error(request, client_address)

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


def serve(index: SoundIndex, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          ready: Callable[[SoundsiftServer], None] | None = None,
          stop: threading.Event | None = None, max_connections: int = DEFAULT_MAX_CONNECTIONS,
          allow_origins: Sequence[str] = (), request_timeout: float = REQUEST_TIMEOUT_SECONDS) -> int:
    """Answer requests on ``host``:``port`` until ``stop`` is set (or Ctrl-C), at most
    ``max_connections`` at once, pages on ``allow_origins`` allowed to call it (CORS), each
    request's work stopped past ``request_timeout`` seconds (0: never);
    ``ready`` gets the listening server (its ``url``; port 0 picks a free one). Stopping, the
    requests being answered finish (STOP_GRACE_SECONDS at most; a second Ctrl-C cuts them off
    at once); the number cut off whose threads still run, inside the model, is returned."""
    try:
        server = SoundsiftServer(index, host, port, max_connections, allow_origins, request_timeout)
    except OSError as e:            # taken by another program, a port below 1024, an unknown host
        raise PortUnavailable(f"cannot listen on {host}:{port} ({e.strerror or e}); {_listen_advice(e)}") from e
    if ready is not None:
        try:
            ready(server)           # (soundsift serve loads the model there: the port is known free)
        except BaseException:
            server.server_close()
            raise
    stop = stop or threading.Event()
    worker = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    worker.start()
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:       # Ctrl-C: stop, as stop.set() does
        pass
    finally:
        server.shutdown()           # no new connection; then those open finish, STOP_GRACE_SECONDS at most
    try:
        running = server.finish_requests()
    except KeyboardInterrupt:       # Ctrl-C again while they finish: cut them off now
        running = server.finish_requests(0)
    finally:
        server.server_close()
        worker.join(10)
    return running


def _listen_advice(error: OSError) -> str:
    """What to do when listening failed with ``error``: another ``--host`` for a name or address
    that is not this machine's, another ``--port`` for one taken or reserved."""
    import errno
    if isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL:
        return ("--host must name this machine: an address of one of its interfaces (127.0.0.1, ::1, "
                "0.0.0.0 for all) or a name that resolves to one")
    if error.errno in (errno.EACCES, errno.EPERM):
        return "ports below 1024 need administrator rights; choose another with --port"
    return "choose another with --port, or stop what uses it"
