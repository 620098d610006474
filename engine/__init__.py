"""soundsift engine: models, audio decoding, segment policy, catalog, vectors, queries.

Nothing heavy happens at import: models load only when :func:`load_model` is called.
"""
from __future__ import annotations

from typing import Any

__all__ = ["load_model", "SoundIndex", "AudioTextModel"]


def __getattr__(name: str) -> Any:
    if name in ("load_model", "AudioTextModel"):
        from engine import models
        return getattr(models, name)
    if name == "SoundIndex":
        from engine.query import SoundIndex
        return SoundIndex
    raise AttributeError(f"module 'engine' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names with the lazily imported public ones (for dir(), completion)."""
    return sorted(set(globals()) | set(__all__))
