"""Zero-shot tags for many files at once (a folder, a list of files, or what an index holds),
or for each moment of one file (:func:`tag_timeline`).

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


@dataclass
class SpanTags:
    """The zero-shot tags of one segment of a file: ``start``–``end`` seconds, the named marker
    whose take it is (None for a regular window) and ``{"label", "score", "cosine"}`` best first."""

    start: float
    end: float
    marker: str | None
    tags: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"start": self.start, "end": self.end, "tags": self.tags}
        if self.marker is not None:
            d["marker"] = self.marker
        return d


def tag_timeline(path: str | Path, labels: Sequence[str] | None = None, *,
                 model: AudioTextModel | None = None, index: Any = None, top: int = 3,
                 template: str = zeroshot.DEFAULT_TEMPLATE) -> tuple[list[SpanTags], bool]:
    """What one file holds when: the tags of each of its segments (the regular windows and its
    marked takes, engine.segments) in time order, and whether they came from ``index``'s stored
    vectors (a file it holds decodes nothing) rather than from decoding the file with ``model``
    (or the index's model). UnreadableAudio for a file that cannot be read."""
    if (model is None) == (index is None):
        raise InvalidQuery("tag a file with a model or with an index, not both and not neither")
    from engine.vocabulary import default_labels

    the_model = index.model if index is not None else model
    labels = list(labels) if labels else default_labels(the_model)
    if index is not None and index.file_id_for_path(path) is not None:
        hits, vectors = index.file_segments(path)
        spans = [(h.start, h.end, h.marker) for h in hits]
        from_index = True
    else:
        policy = index.policy if index is not None else None
        spans, vectors = _decoded_segments(the_model, str(path), policy)
        from_index = False
    if not spans:
        return [], from_index
    tags = zeroshot.tag_many(the_model, vectors, labels, top, template)
    return [SpanTags(a, b, name, t) for (a, b, name), t in zip(spans, tags)], from_index


def _decoded_segments(model: AudioTextModel, path: str, policy: Any
                      ) -> tuple[list[tuple[float, float, str | None]], np.ndarray]:
    """The segments of a file not in an index, cut as the indexer cuts them (marked takes too),
    in time order, with the names of the takes, and their vectors."""
    from engine.file_metadata import named_markers
    try:
        markers = named_markers(path) if os.path.isfile(path) else []
    except OSError as e:
        raise UnreadableAudio(path, f"cannot be read ({e.strerror or e})") from e
    spans, vectors = zeroshot.file_segment_vectors(model, path, policy, [(m.at, m.length) for m in markers])
    rate = int(model.sample_rate)
    names: dict[int, str] = {}
    for m in markers:                   # one name per start, the first marker's (as take_bounds)
        names.setdefault(round(m.at * rate), m.name)
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    out, named = [], set()
    for i in order:                     # the take is the shortest segment starting at its marker
        start = round(spans[i][0] * rate)
        out.append((*spans[i], names.get(start) if start not in named else None))
        named.add(start)
    return out, vectors[order] if len(order) else vectors
