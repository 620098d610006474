"""Ctrl-C that cannot be lost.

Python turns SIGINT into a KeyboardInterrupt in whatever code runs at that moment; when that is
a finaliser (``__del__``, a weakref callback), the exception is printed as "Exception ignored"
and dropped, and an indexing run went on to the end as if no key had been pressed (one Ctrl-C in
four, in the long-recordings audit; the message went to the decoder-output capture). While
:func:`remembered` is active, a SIGINT also sets a flag, which the run checks between events.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class Interrupted:
    """Whether a SIGINT arrived while :func:`remembered` was active."""

    def __init__(self) -> None:
        self.arrived = False

    def check(self) -> None:
        """Raise KeyboardInterrupt if a SIGINT arrived (once: the run then stops)."""
        if self.arrived:
            self.arrived = False
            raise KeyboardInterrupt


@contextlib.contextmanager
def remembered() -> Iterator[Interrupted]:
    """Remember SIGINTs (and raise KeyboardInterrupt as usual); a no-op outside the main thread,
    where signal handlers cannot be set, and where SIGINT is ignored (a process started in the
    background by a shell)."""
    flag = Interrupted()
    previous = signal.getsignal(signal.SIGINT) if threading.current_thread() is threading.main_thread() else None
    if previous is None or previous == signal.SIG_IGN:     # not ours to set, or ignored on purpose
        yield flag
        return

    def on_sigint(signum: int, frame: object) -> None:
        flag.arrived = True
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
