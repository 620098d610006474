"""What a caller gives :class:`engine.query.SoundIndex`, checked before anything is searched:
``k``, the filters, a waveform's sample rate, examples, query vectors and excluded texts (InvalidQuery
otherwise)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from engine.errors import InvalidQuery
from engine.filters import Filters


def _check_k(k: Any) -> int:
    """``k`` as an int ≥ 1 (an int or numpy integer, not a bool); InvalidQuery otherwise."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise InvalidQuery(f"k must be a whole number ≥ 1, got {k!r}")
    if k < 1:
        raise InvalidQuery(f"k must be ≥ 1, got {k}")
    return int(k)


def _check_filters(filters: Any) -> Filters | None:
    """``filters`` as given: None or an :class:`engine.filters.Filters`; InvalidQuery for
    anything else (a dict of its fields: ``Filters(**d)`` makes one)."""
    if filters is not None and not isinstance(filters, Filters):
        raise InvalidQuery(f"filters must be an engine.filters.Filters, e.g. Filters(min_duration=2.0), "
                           f"or None; got {type(filters).__name__}")
    return filters


def _check_rate(audio: Any, sample_rate: Any) -> None:
    """InvalidQuery when a waveform query's ``sample_rate`` is not a positive whole number of Hz
    (a path's rate is read from the file; a given one is left to engine.zeroshot)."""
    if sample_rate is None or isinstance(audio, (str, Path)):
        return
    if (isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer))
            or sample_rate <= 0):
        raise InvalidQuery(f"sample_rate must be a whole number of Hz above 0, got {sample_rate!r}")


def _one_or_many(items: Any) -> list[Any]:
    """A list of ``items``; one string, path or id (not a sequence of them) is one item."""
    if isinstance(items, (str, Path, int, np.integer)):
        return [items]
    return list(items)


def query_matrix(queries: Any, dim: int | None = None) -> np.ndarray:
    """Query vectors (one 1-D vector or 2-D rows) as unit float32 rows; InvalidQuery when they
    are not numbers, not 1-D or 2-D, empty, hold NaN or Inf, or a row of zeros (no direction),
    or, given ``dim``, have another width."""
    try:
        q = np.asarray(queries)
    except (TypeError, ValueError) as e:
        raise InvalidQuery(f"query vectors must be a 1-D or 2-D array of numbers ({e})") from e
    if q.dtype.kind not in "biuf":
        raise InvalidQuery(f"query vectors must be real numbers, got an array of {q.dtype}")
    if q.ndim not in (1, 2):
        raise InvalidQuery(f"query vectors must be one vector (1-D) or rows of vectors (2-D), got shape {q.shape}")
    q = np.atleast_2d(q).astype(np.float32)
    if q.shape[0] == 0:
        raise InvalidQuery("no query vectors given")
    if dim is not None and q.shape[1] != dim:
        raise InvalidQuery(f"query vectors have {q.shape[1]} dims; the index holds {dim}-dim vectors")
    if not np.isfinite(q).all():
        raise InvalidQuery("query vectors hold NaN or Inf")
    norms = np.linalg.norm(q.astype(np.float64), axis=1)
    if not (norms > 0).all():
        raise InvalidQuery("a query vector is all zeros: it points nowhere")
    return np.ascontiguousarray((q / norms[:, None]).astype(np.float32))


def excluded_texts(texts: Sequence[str] | str | None) -> list[str]:
    """The excluded sounds of a search, each stripped, empty ones dropped; one string is one text."""
    if texts is None:
        return []
    if isinstance(texts, str):
        texts = [texts]
    return [t.strip() for t in texts if isinstance(t, str) and t.strip()]
