"""How messages say a count: ``1 file``, ``0 files``, ``2 files``.

One helper for every layer that words messages: the engine's and the indexer's log lines and
summaries use it here, and the CLI's ``ui.cli.common.count`` is this same function (the engine and
the indexer import nothing from ``ui``).
"""
from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun`` agreeing, as messages say them: ``1 file``, ``0 files``, ``2 files``;
    ``plural`` where it is not ``noun`` + s (``count(n, "copy", "copies")``)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
