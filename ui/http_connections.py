"""How many connections ``soundsift serve`` serves at once, and what becomes of the others: a
thread each up to ``max_connections``; over that, the place of one idle longest, or else a 503
with Retry-After from the listening thread (:class:`ConnectionLimit`, a part of SoundsiftServer);
and the lingering read that keeps a closed connection's answer from being reset away."""
from __future__ import annotations

import logging
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from ui.http_routes import _json

if TYPE_CHECKING:
    from ui.http_handler import SoundsiftHandler

#: the logger of soundsift serve (its split modules log as one: --verbose and tests follow it)
log = logging.getLogger("ui.server")

#: connections served at once (a thread each); one more closes the one idle longest, or when
#: all are busy is answered 503 with Retry-After. An idle one costs ~30 kB here (300 idle: RSS
#: 90 -> 98 MB), a streamed preview a few MB; 64 is ten browsers' six connections plus scripts
DEFAULT_MAX_CONNECTIONS = 64
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
#: when the server stops (Ctrl-C, SIGTERM), how long the requests being answered have to finish
#: (a search takes milliseconds, a long clip's embedding seconds); idle connections close at once
STOP_GRACE_SECONDS = 10.0
#: how long the requests cut off then have to end (a stream ends at its next write)
CUT_WAIT_SECONDS = 1.0


def _server_name() -> str:
    """``soundsift/VERSION`` (the installed package's), the ``Server`` header of every answer:
    http.server's own names the Python version too, which tells a caller on another machine
    (``--host``) which interpreter's flaws to try."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return f"soundsift/{version('soundsift')}"
    except PackageNotFoundError:          # run from a source tree that is not installed
        return "soundsift"


#: the ``Server`` header of every answer (SoundsiftHandler.version_string, the 503 of a refusal)
SERVER_NAME = _server_name()


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


class ConnectionLimit:
    """The connection limit of SoundsiftServer (``self`` is the server; :meth:`_limit_connections`
    sets it up): a thread a connection up to ``max_connections``, then room made or a 503."""

    def _limit_connections(self, max_connections: int) -> None:
        """At most ``max_connections`` served at once (ValueError under 1), none refused yet."""
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        #: refused connections being read and dropped before they close: (socket, until when)
        self._lingering: list[tuple[socket.socket, float]] = []
        #: refused connections whose 503 waits for their request head (its Origin), oldest first
        self._refusing: list[_Refusal] = []
        self._warned_at = float("-inf")     # when a refusal was last logged as a warning
        #: handlers waiting for a request head (idle, or sending one), the longest waiting first
        self._awaiting: dict[SoundsiftHandler, None] = {}
        self._awaiting_lock = threading.Lock()
        #: the connections served (a thread each), and a signal when one ends (the same lock)
        self._open: set[socket.socket] = set()
        self._one_closed = threading.Condition(self._awaiting_lock)
        #: set by :meth:`finish_requests`: answers close their connection, no request is waited for
        self.stopping = False

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread for the connection while fewer than ``max_connections`` are served; else
        the place of one waiting for its request (:meth:`make_room`), or else a 503
        (:meth:`_refuse`), from this (the listening) thread, which waits for no client."""
        if not self._slots.acquire(blocking=False) and not (
                self.make_room() and self._slots.acquire(timeout=MAKE_ROOM_SECONDS)):
            self._refuse(request, client_address)
            return
        with self._awaiting_lock:           # here, not in the thread: known once serve_forever returns
            self._open.add(request)
        try:
            super().process_request(request, client_address)
        except BaseException:               # no thread started: the slot is free again
            self._closed(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._closed(request)

    def _closed(self, request: Any) -> None:
        """The connection ``request`` is over: its place is free (and finish_requests told)."""
        with self._awaiting_lock:
            self._open.discard(request)
            self._one_closed.notify_all()
        self._slots.release()

    def awaiting_head(self, handler: SoundsiftHandler, waiting: bool) -> None:
        """Note that ``handler`` waits for a request head (it may be closed to make room), or
        no longer does."""
        with self._awaiting_lock:
            self._awaiting.pop(handler, None)
            if waiting and self.stopping:   # no next request once stopping: its read ends at once
                handler.evicted = True
            elif waiting:
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
        _cut(handler.connection, "closing to make room")        # its blocked read returns now
        return True

    def finish_requests(self, seconds: float = STOP_GRACE_SECONDS) -> int:
        """Once serve_forever has returned (no connection is accepted): close the connections
        waiting for a request, let the requests being answered finish for ``seconds`` at most
        (their answers close their connections), then cut those still going; the number of
        those whose threads still run a moment later (busy in the model: a process that exits
        now aborts, "terminate called without an active exception"). Stopping used to leave
        them all to the interpreter's exit: no answer, and that abort."""
        with self._awaiting_lock:
            self.stopping = True
            idle = list(self._awaiting)
            self._awaiting.clear()
            for handler in idle:
                handler.evicted = True
        for handler in idle:
            _cut(handler.connection, "closing an idle connection to stop")
        deadline = time.monotonic() + seconds
        with self._awaiting_lock:
            if self._open and seconds > 0:
                log.info("finishing %d request%s before stopping (%g s at most)", len(self._open),
                         "s" if len(self._open) > 1 else "", seconds)
            while self._open and (left := deadline - time.monotonic()) > 0:
                self._one_closed.wait(left)
            going = list(self._open)
        if going:
            log.warning("stopping: %d request%s still being answered after %g s, cut off", len(going),
                        "s" if len(going) > 1 else "", seconds)
        for sock in going:
            _cut(sock, "cutting a request off to stop")
        with self._awaiting_lock:           # a streamed answer ends at its next write; a model call does not
            deadline = time.monotonic() + CUT_WAIT_SECONDS
            while self._open and (left := deadline - time.monotonic()) > 0:
                self._one_closed.wait(left)
            return len(self._open)

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
        head = (f"HTTP/1.1 503 Service Unavailable\r\nServer: {SERVER_NAME}\r\nContent-Type: application/json\r\n"
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


def _cut(sock: socket.socket, doing: str) -> None:
    """Shut ``sock`` both ways: the thread blocked on it returns now (its handler ends)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError as e:                    # it has just gone: its place frees all the same
        log.debug("%s: %s", doing, e)


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
