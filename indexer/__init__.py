"""Incremental indexer: scan → decode → embed → write (FAISS + SQLite catalog).

One module per stage (scan, decode, embed, write) and a runner that times them;
``build_index`` is the entry point. Imports are lazy so ``import indexer`` stays cheap.
"""
from __future__ import annotations

from typing import Any

__all__ = ["build_index", "IndexSummary"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from indexer import runner
        return getattr(runner, name)
    raise AttributeError(f"module 'indexer' has no attribute {name!r}")
