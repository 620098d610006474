"""``soundsift serve``: answer searches over HTTP with the index and model kept open."""
from __future__ import annotations

from typing import List, Optional

import typer

from ui.cli.app import app
from ui.cli.common import (HostOption, IndexOption, VerboseOption, err_console, reports_errors, setup_logging,
                           warn_if_shared)
from ui.cli.results import IndexModelOption


def _origins(given: Optional[List[str]]) -> Optional[List[str]]:
    """``--allow-origin`` values as origins (ui.http_origins.cors_origin), or the reason one is not."""
    from ui.http_origins import cors_origin
    try:
        return [cors_origin(origin) for origin in given] if given else given
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e


@app.command("serve")
@reports_errors
def serve_command(
    index: IndexOption = None,
    port: int = typer.Option(8765, "--port", "-p", min=0, max=65535, help="Port to listen on (0: any free one)."),
    host: HostOption = "127.0.0.1",
    model: IndexModelOption = None,
    max_connections: int = typer.Option(
        64, "--max-connections", min=1,
        help="Connections served at once (a thread each). One more closes the connection idle longest, "
             "or when all are busy is answered 503 with Retry-After."),
    allow_origin: Optional[List[str]] = typer.Option(
        None, "--allow-origin", metavar="ORIGIN", callback=_origins,
        help="Let web pages on ORIGIN (e.g. http://localhost:3000) call the API from the browser (CORS); "
             "repeatable. None by default: any page the user visits could otherwise read the library."),
    request_timeout: float = typer.Option(
        300.0, "--request-timeout", min=0.0, metavar="SECONDS",
        help="Stop a request's work (embedding an uploaded clip, a sheet's zero-shot tags) past this many "
             "seconds, answering 503 "
             "(0: no limit)."),
    verbose: VerboseOption = False,
) -> None:
    """Answer searches as JSON over HTTP, the index and its model loaded once: milliseconds a
    query instead of a model load per command, for DAW scripts, launchers and other programs.

    GET /search?q=rain&k=10 (keywords=1, not=thunder, segments=1, and the filters of `soundsift
    search`: min_duration, path_prefix, format, category, tagged …), GET /similar?file=PATH_OR_ID,
    POST /similar with a clip as the body, GET /tag?file=…&labels=dog,rain, POST /tag, GET
    /files/ID, GET /audio/ID?start=&end= (a WAV preview), GET /info, GET /facets, GET /sheet (CSV).
    Errors are {"error": …} with 400 (a bad or unknown parameter), 403 (a Host not this machine),
    404 (an unknown path or file), 405 (a route asked with another method; an Allow header says
    which), 408 (a body that stopped arriving), 413 (a clip over the limit), 416 (a Range past the
    end of /audio's answer) or 503 (over --max-connections, the index unreadable, or a request's
    work past --request-timeout; a client that hangs up stops its clip's embedding or its sheet's tagging too).

    A connection that has not sent a whole request 30 s after opening (or after its last answer)
    is closed, as is one that stalls its body or its reading of an answer for 120 s. --host ::1
    serves IPv6; --host 0.0.0.0 (or ::) every interface, the address printed being this
    machine's loopback one. Only indexed files are read from disk. Ctrl-C or SIGTERM stops it once the
    requests being answered are (10 s at most; Ctrl-C again: at once).

    Answers carry X-Index-Version, which changes when the index does; /audio answers
    If-None-Match naming its ETag with 304. --allow-origin lets a web app on another origin call
    the API from the browser.
    """
    import os
    import signal
    import sys
    import threading

    from engine.query import SoundIndex
    from ui.server import serve

    setup_logging(verbose)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        warn_if_shared(host, "search your library and play its files")
        with SoundIndex.open(index, model=model) as sound_index:
            def ready(server) -> None:
                sound_index.model       # loaded once listening (a port taken is said at once), not on a request
                pages = f"; pages on {', '.join(sorted(server.allow_origins))} may call it" if server.allow_origins else ""
                everywhere = (f" (listening on all interfaces: other machines reach it at this machine's address, "
                              f"port {server.server_address[1]})" if server.all_interfaces else "")
                err_console.print(f"soundsift serve: index {sound_index.root} on {server.url}/{everywhere}"
                                  f"{pages} (Ctrl+C stops)", highlight=False, soft_wrap=True)
            try:
                running = serve(sound_index, host, port, ready=ready, stop=stop, max_connections=max_connections,
                                allow_origins=allow_origin or (), request_timeout=request_timeout)
            except KeyboardInterrupt:       # before serving began (the model loading)
                running = 0
            if running:         # a request cut off inside the model: Python's exit would abort the process
                err_console.print(f"stopped serving ({running} request{'s' if running > 1 else ''} cut off "
                                  "while the model answered it)", highlight=False)
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(0)
    finally:                                   # the caller's handler again (a test run, an embedding app)
        if previous is not None:               # None: one set outside Python, which cannot be put back
            signal.signal(signal.SIGTERM, previous)
    err_console.print("stopped serving", highlight=False)
