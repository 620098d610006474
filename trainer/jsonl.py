"""JSON Lines reading shared by the training and evaluation dataset readers."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from engine.errors import InvalidDataset


def iter_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a bad line, or a file that is not UTF-8
    text, is an InvalidDataset naming it (a byte-order mark, as Windows editors write, is read)."""
    with path.open(encoding="utf-8-sig") as f:
        try:
            for n, text in enumerate(f, start=1):
                if not text.strip():
                    continue
                yield n, _object(path, n, text)
        except UnicodeDecodeError as e:     # decoded by the block: no line number to trust
            raise InvalidDataset(f"{path}: not UTF-8 text ({e.reason}); save the manifest as UTF-8") from e


def _object(path: Path, n: int, text: str) -> dict[str, Any]:
    """One line's JSON object; InvalidDataset naming the line otherwise."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidDataset(f"{path}:{n}: not valid JSON ({e.msg}); one object per line") from e
    if not isinstance(obj, dict):
        raise InvalidDataset(f"{path}:{n}: expected a JSON object per line")
    return obj
