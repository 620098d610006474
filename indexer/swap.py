"""Exchange two folders in one atomic step, where the system can (Linux ``renameat2``).

``soundsift index --rebuild`` swaps the rebuilt index folder into the old one's place
(indexer.rebuild). With :func:`exchange_paths` the index path holds a complete index at
every instant; where the exchange is not available (not Linux, glibc older than 2.28, a
kernel or filesystem without RENAME_EXCHANGE) the caller falls back to two renames.
"""
from __future__ import annotations

import ctypes
import errno
import logging
import os
import sys
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)

AT_FDCWD = -100
RENAME_EXCHANGE = 2
#: errnos by which renameat2 says it cannot exchange here (an old kernel, a filesystem
#: without RENAME_EXCHANGE, a container whose seccomp profile refuses the call with EPERM):
#: the caller falls back to two renames, which report a real permission error themselves
UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EPERM})


def _renameat2() -> Callable[..., int]:
    """libc's ``renameat2``; AttributeError where libc has none (glibc < 2.28, not Linux)."""
    if not sys.platform.startswith("linux"):
        raise AttributeError(f"renameat2 is Linux only (this is {sys.platform})")
    fn = ctypes.CDLL(None, use_errno=True).renameat2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange_paths(a: Path, b: Path) -> bool:
    """Exchange the folders (or files) at ``a`` and ``b`` atomically; both must exist.

    Returns True when the exchange ran, False when this system or filesystem cannot do it
    (nothing was changed then; the reason is logged at debug level). Raises OSError, naming
    both paths, when the exchange is possible here but failed (permissions, a missing path).
    """
    try:
        fn = _renameat2()
    except AttributeError as e:
        log.debug("no atomic exchange of %s and %s: renameat2 is not available (%s)", a, b, e)
        return False
    if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in UNSUPPORTED:
        log.debug("no atomic exchange of %s and %s: renameat2 RENAME_EXCHANGE failed with %s (%s)",
                  a, b, errno.errorcode.get(err, err), os.strerror(err))
        return False
    raise OSError(err, f"cannot exchange {a} and {b} ({os.strerror(err)})")
