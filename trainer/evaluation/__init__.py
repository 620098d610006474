"""Batch evaluation: caption retrieval and zero-shot classification (LAION-CLAP protocol).

Modules, one job each: ``metrics`` (pure numpy figures), ``datasets`` (Clotho,
AudioCaps, ESC-50, UrbanSound8K and generic CSVs), ``embed`` (files → vectors),
``cache`` (vectors per model fingerprint and file content), ``report`` (Markdown + PNG),
``runner`` (:func:`evaluate_retrieval`, :func:`evaluate_zeroshot`).
Nothing heavy is imported until a function is called.
"""
from __future__ import annotations

from typing import Any

__all__ = ["evaluate_retrieval", "evaluate_zeroshot", "retrieval_metrics", "zeroshot_metrics"]


def __getattr__(name: str) -> Any:
    if name in ("evaluate_retrieval", "evaluate_zeroshot"):
        from trainer.evaluation import runner
        return getattr(runner, name)
    if name in ("retrieval_metrics", "zeroshot_metrics"):
        from trainer.evaluation import metrics
        return getattr(metrics, name)
    raise AttributeError(f"module 'trainer.evaluation' has no attribute {name!r}")
