"""Top zero-shot tags shown on each result: stored tags if the catalog has some, else the
file vector scored against the model's default vocabulary (engine.zeroshot)."""
from __future__ import annotations

from typing import Any

import numpy as np

RESULT_TAGS = 3


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
        from engine import zeroshot
        from engine.vocabulary import default_labels

        model = self.index.model
        labels = self.labels or default_labels(model)
        tags = zeroshot.tag(model, self.vectors[row], labels, self.top)
        self._memo[fid] = tags
        return tags
