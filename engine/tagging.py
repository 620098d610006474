"""Zero-shot tags for many files at once: a folder, a list of files, or what an index holds.

Files an index already holds are tagged from its stored vectors (the mean of their segment
vectors, as :meth:`engine.query.SoundIndex.file_vectors` gives), so tagging an indexed library
decodes nothing; other files are decoded and embedded with the same model and segment policy.
A file that cannot be read is reported and skipped, never fatal.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from engine import zeroshot
from engine.errors import InvalidQuery, UnreadableAudio
from engine.models.base import AudioTextModel

log = logging.getLogger(__name__)


@dataclass
class FileTags:
    """One file's zero-shot tags ``{"label", "score", "cosine"}``, best first."""

    path: str
    tags: list[dict[str, Any]]
    from_index: bool          # tagged from the index's stored vectors, without decoding

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "tags": self.tags, "from_index": self.from_index}


def tag_files(files: Sequence[str | Path], labels: Sequence[str] | None = None, *,
              model: AudioTextModel | None = None, index: Any = None, top: int = 5,
              template: str = zeroshot.DEFAULT_TEMPLATE) -> tuple[list[FileTags], list[UnreadableAudio]]:
    """Tag each of ``files`` against ``labels`` (default: the model's vocabulary).

    Give a ``model``, or an open :class:`~engine.query.SoundIndex` as ``index``, whose model
    is then used and whose stored vectors tag the files it holds. Returns the tagged files in
    the given order and the files that could not be read (each also logged as a warning).
    """
    if (model is None) == (index is None):
        raise InvalidQuery("tag files with a model or with an index, not both and not neither")
    from engine.vocabulary import default_labels

    the_model = index.model if index is not None else model
    labels = list(labels) if labels else default_labels(the_model)
    stored: dict[str, np.ndarray] = {}
    if index is not None:
        fv = index.file_vectors()
        stored = {os.path.realpath(p): v for p, v in zip(fv.paths, fv.vectors)}
    kept: list[tuple[str, bool]] = []
    vectors: list[np.ndarray] = []
    errors: list[UnreadableAudio] = []
    for f in files:
        path = str(f)
        vector = stored.get(os.path.realpath(path))
        from_index = vector is not None
        if vector is None:
            try:
                vector = index.audio_vector(path) if index is not None else zeroshot.audio_query_vector(the_model, path)
            except UnreadableAudio as e:
                log.warning("%s", e)
                errors.append(e)
                continue
        kept.append((path, from_index))
        vectors.append(np.asarray(vector, np.float32))
    if not kept:
        return [], errors
    tags = zeroshot.tag_many(the_model, np.stack(vectors), labels, top, template)
    return [FileTags(p, t, from_index) for (p, from_index), t in zip(kept, tags)], errors
