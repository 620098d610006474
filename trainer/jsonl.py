"""JSON Lines reading shared by the training and evaluation dataset readers, and the encoding
a manifest's text is read in."""
from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, Iterator

from engine.errors import InvalidDataset
from engine.text_encoding import UTF16_BOMS


def text_encoding(path: Path) -> str:
    """The encoding a manifest or table is read in: UTF-16 where it opens with a UTF-16
    byte-order mark (Excel's "Unicode Text", Windows PowerShell's ``>``) or, without one, where
    its first characters are ASCII with a NUL byte beside each (which UTF-8 text never holds);
    else UTF-8 with or without a byte-order mark (``utf-8-sig``)."""
    with path.open("rb") as f:
        head = f.read(256)
    if head[:2] in UTF16_BOMS:
        return "utf-16"
    pairs = len(head) // 2
    if pairs and b"\x00" in head:
        if head[1:2 * pairs:2].count(0) == pairs and head[0:2 * pairs:2].count(0) == 0:
            return "utf-16-le"
        if head[0:2 * pairs:2].count(0) == pairs and head[1:2 * pairs:2].count(0) == 0:
            return "utf-16-be"
    return "utf-8-sig"


def open_text(path: Path, **kw: Any) -> IO[str]:
    """``path`` open for reading as text in :func:`text_encoding`'s encoding; InvalidDataset
    naming it and the reason when the system refuses (permission denied, a folder …)."""
    try:
        return path.open(encoding=text_encoding(path), **kw)
    except PermissionError as e:
        raise InvalidDataset(f"{path}: permission denied; make the file readable") from e
    except IsADirectoryError as e:
        raise InvalidDataset(f"{path}: is a folder, not a manifest file") from e
    except OSError as e:
        raise InvalidDataset(f"{path}: cannot be read ({e.strerror or e})") from e


def not_text(path: Path, f: IO[str], e: UnicodeDecodeError, what: str = "manifest") -> InvalidDataset:
    """The error for a file ``f`` (open by :func:`open_text`) that is not text in its encoding."""
    encoding = "UTF-16" if f.encoding.startswith("utf-16") else "UTF-8"
    return InvalidDataset(f"{path}: not {encoding} text ({e.reason}); save the {what} as UTF-8")


def iter_objects(path: Path, bad: list[str] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a file that is not UTF-8 (or, after its
    byte-order mark, UTF-16) text is an InvalidDataset naming it (a UTF-8 byte-order mark, as
    Windows editors write, is read). A line that is not a JSON object is an InvalidDataset
    naming it, or with ``bad`` given, its message is added there and the line passed over."""
    with open_text(path) as f:
        try:
            for n, text in enumerate(f, start=1):
                if not text.strip():
                    continue
                try:
                    obj = _object(path, n, text)
                except InvalidDataset as e:
                    if bad is None:
                        raise
                    bad.append(str(e))
                    continue
                yield n, obj
        except UnicodeDecodeError as e:     # decoded by the block: no line number to trust
            raise not_text(path, f, e) from e


def _object(path: Path, n: int, text: str) -> dict[str, Any]:
    """One line's JSON object; InvalidDataset naming the line otherwise."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidDataset(f"{path}:{n}: not valid JSON ({e.msg}); one object per line") from e
    if not isinstance(obj, dict):
        raise InvalidDataset(f"{path}:{n}: expected a JSON object per line")
    return obj
