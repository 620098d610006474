"""How soundsift's worker processes start and end: `index`'s decoders (indexer.decode) and the
comparing workers of `duplicates` (engine.duplicates)."""
from __future__ import annotations

import os
import threading
import time

#: the multiprocessing context workers start in: never fork after torch has been imported
START_METHOD = "forkserver"


def exit_when_orphaned(parent_pid: int, interval: float = 0.5) -> None:
    """End this worker once the process that started it (``parent_pid``) is gone (e.g. killed
    with SIGKILL), checked every ``interval`` seconds on a daemon thread.

    A worker blocked on a full queue would otherwise wait forever, holding the forkserver,
    the resource tracker and the terminal's pipes open.
    """
    def watch() -> None:
        while True:
            time.sleep(interval)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:     # the pid was reused by another user's process
                os._exit(1)

    threading.Thread(target=watch, name="soundsift-orphan-watch", daemon=True).start()
