"""What C libraries print to the process's stderr (file descriptor 2), taken so it can be said
under the name of the file it is about instead of as anonymous lines on the terminal."""
from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

#: distinct lines kept per file; the rest are counted
MAX_LINES = 6


def summarised(lines: Iterable[str], max_lines: int = MAX_LINES) -> list[str]:
    """The distinct non-empty lines of ``lines``, stripped, in order; past ``max_lines`` a count."""
    distinct = list(dict.fromkeys(line.strip() for line in lines if line.strip()))
    if len(distinct) > max_lines:
        distinct = distinct[:max_lines] + [f"(… {len(distinct) - max_lines} more lines)"]
    return distinct


class StderrCapture:
    """Everything written to file descriptor 2 (by C libraries too) goes to a temporary file
    until the context ends; :meth:`take` returns and clears what arrived since the last call.

    On leaving (an error included) the real stderr comes back and whatever was not taken is
    written to it, so nothing is lost: a worker's traceback still reaches the terminal.
    fd 2 is process-wide: capture only where no other thread writes to stderr meanwhile.
    """

    MAX_LINES = MAX_LINES
    #: captures under way in this process (engine.audio leaves fd 2 to them)
    active = 0

    def __enter__(self) -> "StderrCapture":
        sys.stderr.flush()
        self._file = tempfile.TemporaryFile(buffering=0)
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        StderrCapture.active += 1
        return self

    def take_lines(self) -> list[str]:
        """Every non-empty line written since the last take, stripped, repeats included."""
        sys.stderr.flush()
        self._file.seek(0)
        text = self._file.read().decode("utf-8", "replace")
        self._file.seek(0)
        self._file.truncate()
        return [line.strip() for line in text.splitlines() if line.strip()]

    def take(self) -> list[str]:
        """The distinct non-empty lines written since the last take (at most MAX_LINES, then a count)."""
        return summarised(self.take_lines(), self.MAX_LINES)

    def __exit__(self, *exc: object) -> None:
        StderrCapture.active -= 1
        left = self.take()
        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._file.close()
        if left:
            sys.stderr.write("\n".join(left) + "\n")
            sys.stderr.flush()


#: one :func:`capturing_beside_threads` at a time in this process: two threads swapping fd 2
#: about would each take the other's lines, and the later to end would put back the earlier's file
_BESIDE_THREADS = threading.RLock()


@contextmanager
def capturing_beside_threads() -> Iterator[StderrCapture]:
    """A :class:`StderrCapture` for a process where other threads run (``soundsift serve``'s, the
    page's), for what C libraries print during a short block (an upload decoded): one such capture
    at a time, and the log handlers that write to stderr (fd 2's file) write past it meanwhile, to
    a duplicate of fd 2 (:func:`_logging_past_fd2`), so no log line of another thread, or of this
    one, is taken for the library's. A thread writing to ``sys.stderr`` itself meanwhile is
    still taken."""
    with _BESIDE_THREADS, _logging_past_fd2(), StderrCapture() as captured:
        yield captured


def _same_file_as_fd2(stream: Any) -> bool:
    """Whether ``stream`` writes to the file fd 2 is open on (a terminal, a pipe, a log file)."""
    try:
        mine, fd2 = os.fstat(stream.fileno()), os.fstat(2)
    except (AttributeError, OSError, ValueError):         # no file (a StringIO), or one closed
        return False
    return (mine.st_dev, mine.st_ino) == (fd2.st_dev, fd2.st_ino)


def _stderr_handlers() -> list[logging.StreamHandler]:
    """The logging handlers, on any logger, writing to stderr's file (not a log file's handler).
    The loggers are copied out in one step (``list`` of the dict, under the GIL): another thread
    making a logger meanwhile (a module imported on the server's thread) made an iteration step
    by step fail with "dictionary changed size during iteration"."""
    known = list(logging.Logger.manager.loggerDict.values())
    loggers = [logging.getLogger(), *(x for x in known if isinstance(x, logging.Logger))]
    found = {id(h): h for x in loggers for h in x.handlers
             if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
             and _same_file_as_fd2(h.stream)}
    return list(found.values())


@contextmanager
def _logging_past_fd2() -> Iterator[None]:
    """The logging handlers writing to stderr (:func:`_stderr_handlers`) write to a duplicate of
    fd 2 during the block, so a capture of fd 2 begun inside it does not take their lines."""
    handlers = _stderr_handlers()
    if not handlers:
        yield
        return
    encoding = getattr(handlers[0].stream, "encoding", None) or "utf-8"
    past = os.fdopen(os.dup(2), "w", encoding=encoding, errors="backslashreplace", buffering=1)
    swapped = [(h, h.setStream(past)) for h in handlers]
    try:
        yield
    finally:
        for handler, stream in swapped:
            handler.setStream(stream)
        past.close()
