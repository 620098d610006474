"""Top tags shown on each result: stored tags if the catalog has some, else the file vector
scored against the model's default vocabulary (engine.zeroshot); for a hit on one section of a
longer file (:func:`is_section`), that section's own tags too, from its stored segment vector
(what ``soundsift tag FILE --timeline --index`` gives that segment), so that a dog bark found
at 2:10 of a street ambience is not shown beside the whole file's "traffic, wind" alone."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

RESULT_TAGS = 3
#: seconds a match may fall short of its file's duration and still be the whole file (float
#: rounding of segment bounds; as "more like this" reads a card's span)
WHOLE_FILE_SLACK = 0.05


@dataclass(frozen=True)
class HitTags:
    """The model's tags of one result card: the whole file's, and, for a hit on one section of a
    longer file, that section's (None for a hit on the whole file)."""

    whole_file: list[dict[str, Any]] = field(default_factory=list)
    section: list[dict[str, Any]] | None = None


def is_section(start: float, end: float, duration: float) -> bool:
    """Whether a match ``start``–``end`` (seconds) is only part of a file ``duration`` s long."""
    return end - start < duration - WHOLE_FILE_SLACK


def vector_tags(index: Any, vector: np.ndarray, labels: list[str] | None = None,
                top: int = RESULT_TAGS) -> list[dict[str, Any]]:
    """Up to ``top`` tags ``{"label", "score", "cosine"}`` of a stored vector (a file's or a
    segment's) against ``labels``, by default ``index``'s model's vocabulary."""
    from engine import zeroshot
    from engine.vocabulary import default_labels

    model = index.model
    return zeroshot.tag(model, vector, labels or default_labels(model), top)


class ResultTagger:
    """Tags for indexed files, from their stored (mean) vectors; no audio is decoded."""

    def __init__(self, index: Any, file_ids: np.ndarray, vectors: np.ndarray,
                 labels: list[str] | None = None, top: int = RESULT_TAGS) -> None:
        self.index = index
        self.rows = {int(f): i for i, f in enumerate(np.asarray(file_ids).tolist())}
        self.vectors = np.asarray(vectors, np.float32)
        self.labels = labels
        self.top = top
        self._memo: dict[int, list[dict]] = {}

    def __call__(self, file_id: int) -> list[dict[str, Any]]:
        """Up to ``top`` tags ``{"label", "score"}`` for ``file_id`` ([] if it has no vector)."""
        fid = int(file_id)
        if fid in self._memo:
            return self._memo[fid]
        row = self.rows.get(fid)
        if row is None:
            return []
        tags = vector_tags(self.index, self.vectors[row], self.labels, self.top)
        self._memo[fid] = tags
        return tags
