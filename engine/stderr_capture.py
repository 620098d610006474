"""What C libraries print to the process's stderr (file descriptor 2), taken so it can be said
under the name of the file it is about instead of as anonymous lines on the terminal."""
from __future__ import annotations

import os
import sys
import tempfile
from typing import Iterable

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
