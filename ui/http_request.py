"""What a ``soundsift serve`` request brings, read and checked: its query string (:class:`Query`),
its body (:class:`RequestBody`: a Content-Length or chunked, each read timed), and the errors a
request can be answered with, each one HTTP status (the handler, ui.http_handler, maps them)."""
from __future__ import annotations

import io
import re
import string
from email.message import Message
from typing import Any, Callable, Sequence
from urllib.parse import parse_qsl, quote

import numpy as np

from engine.errors import InvalidQuery, SoundsiftError

MAX_K = 1000


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


class ClientGone(SoundsiftError):
    """The client hung up (or closed its side of the connection) before its answer: the work
    for it stops at the next checkpoint (SoundsiftHandler.checkpoint) and nothing is sent."""


class OverTime(SoundsiftError):
    """A request's work ran past the server's time limit (``soundsift serve --request-timeout``):
    503 without Retry-After (the same request would take as long again)."""


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

    def required(self, name: str, what: str) -> str:
        """The text of parameter ``name`` (``what`` says what it is); InvalidQuery saying whether
        it is missing (not given) or empty (``q=`` or only spaces)."""
        value = self.text(name)
        if value is None:
            raise InvalidQuery(f"{name} ({what}) is {'empty' if name in self.values else 'missing'}")
        return value

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

    def count(self, name: str, default: int, older: str | None = None, low: int = 1) -> int:
        """A whole number from ``low`` to MAX_K (``default`` when not given). ``older``: another
        name old clients give it by (``top`` for ``k``), read when ``name`` is not given; both
        given and different: InvalidQuery naming both."""
        if older is not None and self.text(older) is not None:
            if self.text(name) is None:
                return self.count(older, default, low=low)
            if self.count(name, default, low=low) != self.count(older, default, low=low):
                raise InvalidQuery(f"{name}={self.text(name)} and {older}={self.text(older)} disagree; "
                                   f"give one ({name}; {older} is its older name)")
        value = self.number(name, default, low=low)
        if value != int(value) or value > MAX_K:
            raise InvalidQuery(f"{name} must be a whole number from {low} to {MAX_K}, got {self.text(name)!r}")
        return int(value)

    def flag(self, name: str) -> bool:
        """Whether flag ``name`` is on (``1``, ``true``, ``yes``, ``on``) rather than off (left
        out, empty, ``0``, ``false``, ``no``, ``off``); InvalidQuery for any other value, which
        was read as off."""
        value = (self.text(name) or "").lower()
        if value in _FLAG_ON or value in _FLAG_OFF:
            return value in _FLAG_ON
        raise InvalidQuery(f"{name} is on or off: give {name}=1 (true, yes, on) or {name}=0 (false, no, off), "
                           f"got {self.text(name)!r}")

    def listed(self, name: str) -> list[str]:
        """The comma-separated items of ``name`` (engine.vocabulary.split_list: ``a,b``, an item
        holding a comma in double quotes); [] when it is not given or empty, InvalidQuery when it
        is given but lists nothing (``labels=,,,``), which would otherwise read as not given."""
        from engine.vocabulary import split_list
        given = self.text(name)
        items = split_list(given)
        if given is not None and not items:
            raise InvalidQuery(f"{name}={given!r} lists nothing (only commas, quotes or spaces); give "
                               f"comma-separated values (e.g. {name}=a,b), or leave {name} out")
        return items

    def filters(self) -> Any:
        from ui.cli.results import make_filters
        return make_filters(self.number("min_duration", low=0), self.number("max_duration", low=0),
                            self.text("path_prefix"), self.listed("format"), self.listed("sample_rate"),
                            self.listed("category"), self.listed("channels"), self.number("min_loudness"),
                            self.number("max_loudness"), self.listed("tagged"), name_of=lambda param: param)


class RequestBody:
    """The request body of a handler (SoundsiftHandler): read once a route asks for it, at most
    the upload limit, within the handler's timeout."""

    headers: Message
    rfile: io.BufferedIOBase
    timeout: float | None
    #: whether the body was read (else a body the request announced is drained before closing)
    body_read: bool
    #: the client waits for ``100 Continue`` before sending its body (``Expect: 100-continue``):
    #: sent once the body is wanted and its length is within the limit (:meth:`_invite_body`)
    continue_due: bool = False
    send_response_only: Callable[..., None]
    end_headers: Callable[[], None]

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
            self._invite_body()
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
            if length > 0:
                self._invite_body()
            data = self._read(length, f"the {length} bytes its Content-Length announced") if length > 0 else b""
            if len(data) < length:
                raise InvalidQuery(f"the request body ended after {len(data)} of the {length} bytes its "
                                   "Content-Length announced")
        self.body_read = True
        return data

    def _invite_body(self) -> None:
        """``100 Continue``, once, where the client waits for it before sending its body."""
        if self.continue_due:
            self.continue_due = False
            try:
                self.send_response_only(100)
                self.end_headers()
            except OSError as e:            # the client hung up while waiting
                raise InvalidQuery(f"the client went away before sending its body ({e})") from e

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


#: the values a flag parameter (``segments=1``) takes, in lower case
_FLAG_ON = ("1", "true", "yes", "on")
_FLAG_OFF = ("", "0", "false", "no", "off")

#: a chunk's size line: hexadecimal digits, optional extensions (";name=value"), CRLF
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r?\n")


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
