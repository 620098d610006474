"""What an index holds, read from its catalog alone (no model is loaded)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.catalog import catalog_session
from engine.catalog_info import catalog_info
from engine.layout import existing_index


def index_info(index: str | Path | None = None, errors_limit: int = 20) -> dict[str, Any]:
    """Counts (``described``: files carrying a title, description, comment … that keyword
    search reads), model, vectors file, format breakdown, the library categories files carry
    (``--category`` filters by them) and the latest errors of an index (engine.catalog_info.catalog_info).

    Raises IndexNotFound when there is no catalog at the resolved folder.
    """
    layout = existing_index(index)
    with catalog_session(layout) as s:
        return catalog_info(s, layout, errors_limit)
