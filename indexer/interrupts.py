"""Ctrl-C that cannot be lost.

Python turns SIGINT into a KeyboardInterrupt in whatever code runs at that moment; when that is
a finaliser (``__del__``, a weakref callback), the exception is printed as "Exception ignored"
and dropped, and an indexing run went on to the end as if no key had been pressed (one Ctrl-C in
four, in the long-recordings audit; the message went to the decoder-output capture). While
:func:`remembered` is active, a SIGINT also sets a flag, which the run checks between events.

SIGTERM (``kill PID``, ``timeout``, a service manager or a container stopping) is taken as a
Ctrl-C there too, where nobody chose another handler for it: Python's default for SIGTERM ends
the process on the spot, like ``kill -9``, throwing away the files embedded since the last
checkpoint (up to 256 files or 60 s of work) without a word; now they are committed and the run
stops with the same message. Where SIGTERM already has a handler of the caller's own or is
ignored, it is left alone; a handler :func:`remembered` set itself, around a whole watch
(:func:`indexer.watch.watch_index`, whose runs each remember too), is taken over and chained, so a
``soundsift index --watch`` stops on SIGTERM as on Ctrl-C, inside a run or between runs.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator


class Interrupted:
    """Whether a SIGINT arrived while :func:`remembered` was active."""

    def __init__(self) -> None:
        self.arrived = False

    def check(self) -> None:
        """Raise KeyboardInterrupt if a SIGINT arrived (once: the run then stops)."""
        if self.arrived:
            self.arrived = False
            raise KeyboardInterrupt


class _OnSignal:
    """The handler :func:`remembered` sets: flags its :class:`Interrupted`, then hands the signal
    on to the handler it replaced where that one is to run too (SIGINT's, or an enclosing
    :func:`remembered`'s), else raises KeyboardInterrupt."""

    def __init__(self, flag: Interrupted, previous: dict[int, Any]) -> None:
        self.flag, self.previous = flag, previous

    def __call__(self, signum: int, frame: object) -> None:
        self.flag.arrived = True
        before = self.previous[signum]
        if callable(before) and (signum == signal.SIGINT or isinstance(before, _OnSignal)):
            before(signum, frame)
        else:
            raise KeyboardInterrupt


def _takes_over(sig: int, handler: Any) -> bool:
    """Whether :func:`remembered` sets its handler for ``sig``, whose handler now is ``handler``:
    not for an ignored signal, nor for a SIGTERM handler of the caller's own (Python's default,
    which ends the process on the spot, and an enclosing :func:`remembered`'s are taken)."""
    if handler is None or handler == signal.SIG_IGN:
        return False
    return sig == signal.SIGINT or handler == signal.SIG_DFL or isinstance(handler, _OnSignal)


@contextlib.contextmanager
def remembered() -> Iterator[Interrupted]:
    """Remember SIGINTs (and raise KeyboardInterrupt as usual), and take a SIGTERM that would
    end the process on the spot as one; a no-op outside the main thread, where signal handlers
    cannot be set, and for a signal that is ignored (SIGINT in a process started in the
    background by a shell) or, for SIGTERM, has a handler of the caller's own. Nested, a signal
    flags every level (and raises one KeyboardInterrupt)."""
    flag = Interrupted()
    in_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    ours = {sig for sig, handler in previous.items() if _takes_over(sig, handler)}
    on_signal = _OnSignal(flag, previous)
    for sig in ours:
        signal.signal(sig, on_signal)
    try:
        yield flag
    finally:
        for sig in ours:
            signal.signal(sig, previous[sig])
