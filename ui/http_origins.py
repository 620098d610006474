"""Who may ask ``soundsift serve``: the Host check against DNS rebinding (a loopback server
answers only names of this machine), and CORS (the origins whose pages may call the API, their
preflights and the headers of their answers) — :class:`OriginPolicy`, a part of SoundsiftServer."""
from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ui.http_request import ForeignHost, ForeignOrigin
from ui.http_routes import NOTES_HEADER

if TYPE_CHECKING:
    from ui.http_handler import SoundsiftHandler

#: seconds a browser may keep a CORS preflight's answer (Access-Control-Max-Age)
PREFLIGHT_MAX_AGE = 600
#: request headers a page on an allowed origin may send (beyond those CORS always allows)
CORS_REQUEST_HEADERS = ("Content-Type", "Range", "If-Range", "If-None-Match", "X-Filename")
#: response headers such a page may read (beyond Content-Type, Content-Length …)
CORS_EXPOSED_HEADERS = ("ETag", "Accept-Ranges", "Content-Range", "Content-Disposition", "Retry-After", "Allow",
                        "X-Index-Version", NOTES_HEADER)


class OriginPolicy:
    """The Host check and CORS of SoundsiftServer (``self`` is the server: its address, its
    allowed origins, :meth:`SoundsiftServer.methods`)."""

    server_address: Any
    allow_origins: frozenset[str]

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
