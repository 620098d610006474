"""Zero-shot tags for many files at once (a folder, a list of files, or what an index holds),
or for each moment of one file (:func:`tag_timeline`).

Files an index already holds are tagged from its stored vectors (the mean of their segment
vectors, as :meth:`engine.query.SoundIndex.file_vectors` gives for the paths asked: only theirs
are read), so tagging an indexed library decodes nothing; other files, and indexed files edited
since (their size or modification time is not the one the catalog recorded, as the indexer tells
a changed file), are decoded and embedded with the same model and segment policy.
A file that cannot be read is reported and skipped, never fatal.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from engine import zeroshot
from engine.errors import InvalidQuery, UnreadableAudio
from engine.file_state import FileState, state_now
from engine.models.base import AudioTextModel

log = logging.getLogger(__name__)


@dataclass
class FileTags:
    """One file's zero-shot tags ``{"label", "score", "cosine"}``, best first."""

    path: str
    tags: list[dict[str, Any]]
    from_index: bool          # tagged from the index's stored vectors, without decoding
    seconds: float | None = None    # its length (None when unknown); see :func:`too_short`
    missing: bool = False     # not on disk now: tagged from what the index stored of it

    def to_dict(self) -> dict[str, Any]:
        """``"missing": true`` only for a file not on disk now (as search hits say it)."""
        out = {"path": self.path, "tags": self.tags, "from_index": self.from_index}
        return {**out, "missing": True} if self.missing else out


def tag_files(files: Sequence[str | Path], labels: Sequence[str] | None = None, *,
              model: AudioTextModel | None = None, index: Any = None, top: int = 5,
              template: str = zeroshot.DEFAULT_TEMPLATE, min_score: float = 0.0
              ) -> tuple[list[FileTags], list[UnreadableAudio]]:
    """Tag each of ``files`` against ``labels`` (default: the model's vocabulary): its best
    ``top`` tags, less those scoring below ``min_score`` (a file may keep none).

    Give a ``model``, or an open :class:`~engine.query.SoundIndex` as ``index``, whose model
    is then used and whose stored vectors tag the files it holds. Returns the tagged files in
    the given order and the files that could not be read (the caller says so: one file's error, or
    a warning each among many).
    """
    if (model is None) == (index is None):
        raise InvalidQuery("tag files with a model or with an index, not both and not neither")
    from engine.vocabulary import default_labels

    the_model = index.model if index is not None else model
    labels = list(labels) if labels else default_labels(the_model)
    stored: dict[str, tuple[str, np.ndarray, float]] = {}
    as_indexed: dict[str, FileState] = {}
    if index is not None:
        stored, as_indexed = _stored_vectors(index, [str(f) for f in files])
    kept: list[tuple[str, bool, float | None, bool]] = []
    vectors: list[np.ndarray] = []
    errors: list[UnreadableAudio] = []
    for f in files:
        path = str(f)
        indexed_as, vector, seconds = stored.get(path, (None, None, None))
        gone = indexed_as is not None and not os.path.lexists(path)    # its stored vectors are all there is
        if indexed_as is not None and not gone and not _unchanged(indexed_as, as_indexed.get(indexed_as)):
            log.info("%s changed since it was indexed: tagging its audio as it is now", path)
            vector = None
        from_index = vector is not None
        if vector is None:
            try:
                policy = index.policy if index is not None else None
                vector, seconds = zeroshot.file_query_vector(the_model, path, policy)
            except UnreadableAudio as e:
                errors.append(e)
                continue
        kept.append((path, from_index, seconds, gone))
        vectors.append(np.asarray(vector, np.float32))
    if not kept:
        return [], errors
    tags = zeroshot.tag_many(the_model, np.stack(vectors), labels, top, template, min_score)
    return [FileTags(p, t, from_index, seconds, gone) for (p, from_index, seconds, gone), t in zip(kept, tags)], errors


def _stored_vectors(index: Any, paths: Sequence[str]
                    ) -> tuple[dict[str, tuple[str, np.ndarray, float]], dict[str, FileState]]:
    """What ``index`` holds of the files at ``paths``: (catalog path, stored vector, seconds) of
    each it holds, by the path as given, and the recorded state of each catalog path. Only these
    files' rows and vectors are read (a few hundred paths a query), never every file's."""
    resolved = {path: os.path.realpath(path) for path in paths}    # the catalog keeps resolved paths
    fv = index.file_vectors(paths=sorted(set(resolved.values())))
    held = {p: (p, v, float(d)) for p, v, d in zip(fv.paths, fv.vectors, fv.durations)}
    unfound = set(resolved.values()) - held.keys()
    if unfound:
        # a catalog path that resolves otherwise now (a link made since): resolve them all, once
        # (0.9 s at 40,000 files, which a file the catalog holds as it is never waits for)
        elsewhere = {p: real for p in index.file_states() if (real := os.path.realpath(p)) in unfound}
        if elsewhere:
            fv = index.file_vectors(paths=sorted(elsewhere))
            held.update({elsewhere[p]: (p, v, float(d)) for p, v, d in zip(fv.paths, fv.vectors, fv.durations)})
    stored = {path: held[real] for path, real in resolved.items() if real in held}
    return stored, index.file_states(sorted({p for p, _, _ in stored.values()}))


#: a sound shorter than this (seconds) is too short to be told apart: the models pad it to their
#: shortest clip (YAMNet with zeros to 0.975 s), and a 10 ms beep is tagged "Silence"
SHORT_SOUND = zeroshot.MIN_SPAN


def too_short(seconds: float | None) -> bool:
    """Whether a sound ``seconds`` long is shorter than :data:`SHORT_SOUND` (its tags say little of it)."""
    return seconds is not None and seconds < SHORT_SOUND


def short_sound_note(name: str, seconds: float) -> str:
    """What to tell a user of the tags of ``name``, a sound ``seconds`` long (:func:`too_short`)."""
    return (f"{name} is {seconds:.3f} s long, under {SHORT_SOUND:g} s: too short for the model to tell what it is "
            "(it hears it padded to its shortest clip), so its tags say little of it (a sound this short is "
            "often tagged Silence)")


#: what a one-label note (:func:`tag_notes`) advises where each tag's cosine is given too (the
#: Python API's SoundIndex.tag_with_notes, the HTTP API's /tag)
COSINE_ADVICE = "compare the cosines or give other labels too"


def tag_notes(labels: Sequence[str], lengths: Iterable[tuple[str, float | None]], advice: str) -> list[str]:
    """The notes to show with zero-shot tags whose scores say little, the same wherever tags are
    shown (``soundsift tag``, the page's Tag tab, the HTTP API's /tag): one label among ``labels``
    (it scores 1 for every sound; ``advice`` says what to do instead, in the words of that place:
    engine.vocabulary.one_label_note), and each sound ``(name, seconds)`` too short to be told
    apart (:func:`short_sound_note`). Empty when the scores can be read as they are."""
    from engine.vocabulary import one_label_note
    notes = [one_label_note(list(labels), advice)]
    notes += [short_sound_note(name, seconds) for name, seconds in lengths if too_short(seconds)]
    return [note for note in notes if note]


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


def tag_timeline(audio: str | Path | np.ndarray, labels: Sequence[str] | None = None, *,
                 model: AudioTextModel | None = None, index: Any = None, top: int = 3,
                 template: str = zeroshot.DEFAULT_TEMPLATE, sample_rate: int | None = None,
                 markers: Sequence[Any] = (), min_score: float = 0.0) -> tuple[list[SpanTags], bool]:
    """What one recording holds when: the tags of each of its segments (the regular windows and
    its marked takes, engine.segments) in time order, and whether they came from ``index``'s
    stored vectors (a file it holds decodes nothing) rather than from embedding it with ``model``
    (or the index's model). ``audio``: a file, or a waveform with its ``sample_rate`` and its
    ``markers`` (engine.file_metadata.Marker: an upload's). UnreadableAudio for a file that
    cannot be read. ``min_score``: a segment's tags scoring below it are left out (it may keep none)."""
    if (model is None) == (index is None):
        raise InvalidQuery("tag a file with a model or with an index, not both and not neither")
    from engine.vocabulary import default_labels

    the_model = index.model if index is not None else model
    labels = list(labels) if labels else default_labels(the_model)
    policy = index.policy if index is not None else None
    from_index = False
    if not isinstance(audio, (str, Path)):
        spans, vectors = zeroshot.waveform_segment_vectors(the_model, audio, sample_rate, policy,
                                                           [(m.at, m.length) for m in markers])
        named = _in_time_order(spans, markers, int(the_model.sample_rate))
    elif index is not None and _unchanged_in_index(index, audio):
        hits, vectors = index.file_segments(audio)
        named, from_index = [(i, h.start, h.end, h.marker) for i, h in enumerate(hits)], True
    else:
        spans, vectors, markers = _decoded_segments(the_model, str(audio), policy)
        named = _in_time_order(spans, markers, int(the_model.sample_rate))
    if not named:
        return [], from_index
    tags = zeroshot.tag_many(the_model, vectors[[i for i, *_ in named]], labels, top, template, min_score)
    return [SpanTags(a, b, name, t) for (_, a, b, name), t in zip(named, tags)], from_index


def _unchanged(path: str, recorded: FileState | None) -> bool:
    """Whether the file at ``path`` is still as indexed (``recorded``: its size and mtime_ns
    then): stored vectors describe its audio now. A file gone or unreadable is not."""
    return recorded is not None and state_now(path) == recorded


def _unchanged_in_index(index: Any, path: str | Path) -> bool:
    """Whether ``index`` holds ``path`` as it is now (not edited since it was indexed)."""
    recorded = index.file_states([path]).get(str(path))
    if recorded is None:
        return False
    if _unchanged(str(Path(path).expanduser()), recorded):
        return True
    log.info("%s changed since it was indexed: tagging its audio as it is now", path)
    return False


def _decoded_segments(model: AudioTextModel, path: str, policy: Any
                      ) -> tuple[list[tuple[float, float]], np.ndarray, list[Any]]:
    """The segments of a file not in an index, cut as the indexer cuts them (marked takes too),
    their vectors and the file's markers."""
    markers = zeroshot.file_markers(path)
    spans, vectors = zeroshot.file_segment_vectors(model, path, policy, [(m.at, m.length) for m in markers])
    return spans, vectors, markers


def _in_time_order(spans: list[tuple[float, float]], markers: Sequence[Any], rate: int
                   ) -> list[tuple[int, float, float, str | None]]:
    """``(row, start, end, take name)`` of the segments by time; the take of a marker is the
    shortest segment starting at it (engine.segments.take_bounds)."""
    names: dict[int, str] = {}
    for m in markers:                   # one name per start, the first marker's (as take_bounds)
        names.setdefault(round(m.at * rate), m.name)
    out, named = [], set()
    for i in sorted(range(len(spans)), key=lambda i: spans[i]):
        start = round(spans[i][0] * rate)
        out.append((i, *spans[i], names.get(start) if start not in named else None))
        named.add(start)
    return out
