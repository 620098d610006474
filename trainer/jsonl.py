"""JSON Lines reading shared by the training and evaluation dataset readers."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from engine.errors import InvalidDataset


def iter_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a bad line is an InvalidDataset naming it."""
    with path.open(encoding="utf-8") as f:
        for n, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise InvalidDataset(f"{path}:{n}: not valid JSON ({e.msg}); one object per line") from e
            if not isinstance(obj, dict):
                raise InvalidDataset(f"{path}:{n}: expected a JSON object per line")
            yield n, obj
