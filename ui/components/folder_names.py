"""A folder as the page names it: below the library root, or the root in full."""
from __future__ import annotations

from ui.components.library import relative_to_root


def card_folder(folder: str, root: str) -> str:
    """A folder as cards and the map's legend name it: below the library root, or the root in
    full for a file directly in it (a library of one flat folder had "." on every card), as the
    sidebar's Folder help names it."""
    shown = relative_to_root(folder, root)
    return folder if shown == "." else shown
