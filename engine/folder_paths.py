"""Whether a path lies in a folder, by its text: the one test the indexer (which files a walk
of some folders owns) and the query layer (which error rows a folder holds) share."""
from __future__ import annotations

import os
from typing import Iterable


def under_roots(path: str, roots: Iterable[str]) -> bool:
    """True if ``path`` is one of ``roots`` or lies inside one of them."""
    for root in roots:
        if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False
