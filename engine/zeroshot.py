"""Audio query vectors, audio→text ranking and zero-shot tagging on any AudioTextModel.

Audio given as a query (a path, or a waveform with its sample rate) is cut by the same
fixed segment policy as the indexer (engine.segments); each segment is embedded and the
**query vector is the mean of the segment vectors, re-normalised to unit length** — for
audio no longer than the model's window that is simply its one embedding. Segments that are all
digital silence are left out of audio that has sound elsewhere, as the indexer leaves them out
(:func:`engine.segments.without_silence`), so a query file and its indexed copy get one vector.

Tag scores are probability-like: ``softmax(logit_scale · cosine)`` over the label set,
with the model's ``logit_scale`` when it exposes one and :data:`DEFAULT_LOGIT_SCALE`
(CLAP's trained value, ≈ 100) otherwise; each tag also carries its raw ``cosine``.
Label text embeddings are cached per (model text fingerprint, template, labels): in memory,
and on disk under ``<soundsift cache>/labels/`` (``$SOUNDSIFT_CACHE``, else
``~/.cache/soundsift``), so ``soundsift tag`` over a vocabulary of hundreds of labels
encodes them once per model, not once per call.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, Union

import numpy as np

from engine.errors import InvalidQuery, UnreadableAudio
from engine.models.base import AudioTextModel, l2_normalize
from engine.query_defaults import DEFAULT_TEMPLATE, LABEL_QUERY_TEMPLATE  # noqa: F401 - imported from here too
from engine.segments import (MIN_TAKE, SegmentPolicy, bounds_with_takes, is_silent, noting_end, silent_segment,
                             without_silence)

#: what a query by example may be: a file path, or a waveform (with its sample rate)
AudioInput = Union[str, Path, np.ndarray]

DEFAULT_LOGIT_SCALE = 100.0
EMBED_BATCH = 16
TEXT_BATCH = 64
_LABEL_CACHE_SIZE = 16

log = logging.getLogger(__name__)

_label_cache: OrderedDict[tuple[str, str, tuple[str, ...]], np.ndarray] = OrderedDict()
_label_lock = threading.Lock()
#: rows :func:`tag_many` scores at once, a checkpoint (:func:`between_batches`) before each: a
#: sheet's zero-shot column over 40,000 files is 40 of them, ~40 ms each on 495 labels
TAG_ROWS = 1024
#: what is called before each batch of segments, texts or tagged rows, in this thread, with where
#: the work is (None: nothing): soundsift serve stops there the work of a client that hung up or
#: ran past its time limit
_between_batches: ContextVar[Callable[[str], None] | None] = ContextVar("between_batches", default=None)


def _policy(model: AudioTextModel, policy: SegmentPolicy | None) -> SegmentPolicy:
    return policy if policy is not None else SegmentPolicy(float(model.window_seconds))


@contextmanager
def checking_between_batches(check: Callable[[str], None]) -> Iterator[None]:
    """Call ``check`` with where the work is (e.g. "before its next batch of segments") before
    each batch this thread works through while inside (:func:`between_batches`): segments
    embedded (:data:`EMBED_BATCH` at a time: a file's are decoded a batch at a time too), texts
    embedded (:data:`TEXT_BATCH`), rows tagged (:data:`TAG_ROWS`). What it raises stops the
    work there and passes up (ui.http_handler: a client gone, a request past its time)."""
    token = _between_batches.set(check)
    try:
        yield
    finally:
        _between_batches.reset(token)


def between_batches(what: str) -> None:
    """A checkpoint of long work, before its next batch of ``what`` ("segments", "texts" …): the
    check :func:`checking_between_batches` set in this thread, if any, is called there."""
    check = _between_batches.get()
    if check is not None:
        check(f"before its next batch of {what}")


def _embed_in_batches(model: AudioTextModel, pieces: list[np.ndarray]) -> np.ndarray:
    out = []
    for i in range(0, len(pieces), EMBED_BATCH):
        between_batches("segments")
        out.append(model.embed_audio(pieces[i:i + EMBED_BATCH]))
    return np.concatenate(out).astype(np.float32, copy=False)


def _mono(waveform: np.ndarray) -> np.ndarray:
    """A waveform query as float32, (samples, channels) or (channels, samples) averaged to mono."""
    x = np.asarray(waveform, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1) if x.shape[0] >= x.shape[1] else x.mean(axis=0)
    return x


def waveform_segment_vectors(model: AudioTextModel, waveform: np.ndarray, sample_rate: int | None,
                             policy: SegmentPolicy | None = None,
                             markers: Sequence[tuple[float, float | None]] = ()
                             ) -> tuple[list[tuple[float, float]], np.ndarray]:
    """:func:`file_segment_vectors` for a waveform (an upload): its segments' ``(start, end)``
    seconds, its marked takes after the regular windows, and their embeddings; those all digital
    silence left out as the indexer leaves them out (:func:`engine.segments.without_silence`)."""
    x = _at_model_rate(model, waveform, sample_rate)
    rate = int(model.sample_rate)
    pol = _policy(model, policy)
    bounds = [ab for ab, _ in without_silence(bounds_with_takes(len(x), rate, pol, markers),
                                              lambda ab: is_silent(x[ab[0]:ab[1]]))]
    return ([(a / rate, b / rate) for a, b in bounds],
            _embed_in_batches(model, [np.ascontiguousarray(x[a:b]) for a, b in bounds]))


def _at_model_rate(model: AudioTextModel, waveform: np.ndarray, sample_rate: int | None) -> np.ndarray:
    """A waveform query checked and made mono at the model's rate (InvalidQuery when it is not usable)."""
    if sample_rate is None:
        raise InvalidQuery("a waveform query needs its sample_rate (Hz)")
    x = _mono(waveform)
    if x.ndim != 1 or x.size == 0:
        raise InvalidQuery(f"a waveform query must be a non-empty 1-D array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InvalidQuery("the waveform query contains NaN or Inf samples")
    if int(sample_rate) != int(model.sample_rate):
        import soxr
        x = soxr.resample(x, int(sample_rate), int(model.sample_rate), quality="HQ").astype(np.float32)
    return x


def check_span(start: float | None, end: float | None) -> None:
    """InvalidQuery unless ``start``/``end`` (seconds, either may be None) are finite numbers
    making a forward span (NaN compares false with everything, so it would pass the rest)."""
    for name, value in (("start", start), ("end", end)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InvalidQuery(f"the {name} time must be a number of seconds, got {value!r}")
        if not np.isfinite(value):
            raise InvalidQuery(f"the {name} time must be a finite number of seconds, got {value}")
    if start is not None and start < 0:
        raise InvalidQuery(f"the start time must be ≥ 0 s, not {start:g}")
    if end is not None and end <= 0:
        raise InvalidQuery(f"the end time must be > 0 s, not {end:g}")
    if start is not None and end is not None and end <= start:
        raise InvalidQuery(f"the end time ({end:g} s) must come after the start time ({start:g} s)")


#: shortest span of audio embedded as a query (seconds), as for a marked take (engine.segments.MIN_TAKE):
#: the models take any clip of one sample or more (they repeat or pad it to their window), but a
#: few milliseconds repeated say nothing of a sound
MIN_SPAN = MIN_TAKE


def check_span_length(what: str, start: float | None, end: float | None, seconds: float) -> None:
    """InvalidQuery naming ``what`` (a file, "the example") when its span ``start``–``end``
    holds fewer than :data:`MIN_SPAN` seconds of audio (``seconds``; a millisecond short is
    let pass: a decoded span's two ends round to samples)."""
    if seconds < MIN_SPAN - 1e-3:
        span = f"{start or 0.0:g}–{'its end' if end is None else f'{end:g} s'}"
        raise InvalidQuery(f"{what}: the span {span} holds {seconds:.3f} s of audio; a query by a moment "
                           f"needs at least {MIN_SPAN:g} s")


def excerpt(model: AudioTextModel, audio: AudioInput, sample_rate: int | None,
            start: float | None, end: float | None) -> tuple[np.ndarray, int]:
    """The part of ``audio`` from ``start`` to ``end`` seconds (None: its start / its end) as a
    mono waveform and its rate; a file is decoded at the model's rate, only up to ``end``.
    InvalidQuery when the span starts past the end of the audio, or holds less than
    :data:`MIN_SPAN` of it (said before decoding when ``end - start`` is shorter already)."""
    check_span(start, end)
    what = str(audio) if isinstance(audio, (str, Path)) else "the example"
    if start is not None and end is not None:
        check_span_length(what, start, end, end - start)
    if isinstance(audio, (str, Path)):
        if not Path(audio).is_file():
            raise InvalidQuery(f"audio file {audio} does not exist")
        rate = int(model.sample_rate)
        wave = _file_excerpt(str(audio), rate, start, end)
    else:
        if sample_rate is None:
            raise InvalidQuery("a waveform query needs its sample_rate (Hz)")
        whole = _mono(audio)
        rate = int(sample_rate)
        a = int(round((start or 0.0) * rate))
        b = len(whole) if end is None else min(len(whole), int(round(end * rate)))
        if a >= len(whole):
            raise InvalidQuery(f"the example is {len(whole) / rate:.2f} s long; the start time {start:g} s "
                               "is past its end")
        wave = np.ascontiguousarray(whole[a:b])
    if start is not None or end is not None:
        check_span_length(what, start, end, len(wave) / rate)
    return wave, rate


#: how much earlier than a moment's start the decoding of a file begins (the resampler settles)
EXCERPT_PREROLL = 0.05


def _file_excerpt(path: str, rate: int, start: float | None, end: float | None) -> np.ndarray:
    """Samples ``start``–``end`` s of a file at ``rate``, streamed: the file is read from just
    before ``start`` (a seek where its format allows) and decoding stops at ``end``, so a moment
    of an hour-long recording costs what that moment does."""
    from engine.audio import StartPastAudio, iter_blocks, probe
    begin = 0.0
    if start:
        length = probe(path).duration
        if start >= length:
            raise InvalidQuery(f"{path} is {length:.2f} s long; the start time {start:g} s is past its end")
        begin = max(0.0, start - EXCERPT_PREROLL)
    a = int(round(((start or 0.0) - begin) * rate))
    b = None if end is None else int(round((end - begin) * rate))
    kept, at = [], 0
    try:
        for block in iter_blocks(path, rate, start_seconds=begin):
            lo, hi = max(a - at, 0), len(block) if b is None else min(b - at, len(block))
            if hi > lo:
                kept.append(block[lo:hi])
            at += len(block)
            if b is not None and at >= b:
                break
    except StartPastAudio as e:         # (said with the start asked for, not the preroll's)
        raise StartPastAudio(path, start or 0.0, e.held, e.promised) from None
    if not kept:
        raise InvalidQuery(f"{path} is {(at / rate) + begin:.2f} s long; the start time {start:g} s is past its end")
    return np.ascontiguousarray(np.concatenate(kept))


def audio_segment_vectors(model: AudioTextModel, audio: AudioInput, sample_rate: int | None = None,
                          policy: SegmentPolicy | None = None) -> np.ndarray:
    """Embeddings (n_segments, dim) of ``audio`` cut by the indexer's segment policy."""
    pol = _policy(model, policy)
    if isinstance(audio, (str, Path)):
        return file_segment_vectors(model, audio, pol)[1]
    return waveform_segment_vectors(model, audio, sample_rate, pol)[1]


def file_segment_vectors(model: AudioTextModel, path: str | Path, policy: SegmentPolicy | None = None,
                         markers: Sequence[tuple[float, float | None]] = ()
                         ) -> tuple[list[tuple[float, float]], np.ndarray]:
    """The ``(start, end)`` seconds and embeddings (n, dim) of a file's segments, in the order
    the streaming decoder gives them (``markers``: its takes too, engine.audio.iter_segments),
    those all digital silence left out as the indexer leaves them out
    (:func:`engine.segments.without_silence`); only a batch of segments is held at a time."""
    spans, vectors, _ = _file_segments(model, path, policy, markers)
    return spans, vectors


def check_audio_path(path: str | Path, folder: str = "is a folder; give one audio file") -> None:
    """InvalidQuery when no audio can come from ``path``: a folder (said as ``folder`` says it) or
    no file at all; before anything is decoded."""
    if Path(path).is_dir():
        raise InvalidQuery(f"{path} {folder}")
    if not Path(path).is_file():
        raise InvalidQuery(f"audio file {path} does not exist")


def _file_segments(model: AudioTextModel, path: str | Path, policy: SegmentPolicy | None,
                   markers: Sequence[tuple[float, float | None]] = ()
                   ) -> tuple[list[tuple[float, float]], np.ndarray, float]:
    """:func:`file_segment_vectors`, and the seconds of audio decoded (the end of its last segment,
    left out or not)."""
    from engine.audio import iter_segments
    check_audio_path(path)
    rate, pol = int(model.sample_rate), _policy(model, policy)
    spans, vectors, batch, reached = [], [], [], {"end": 0.0}
    segments = noting_end(iter_segments(path, rate, pol, markers=markers), reached)   # UnreadableAudio passes up
    for seg, _ in without_silence(segments, silent_segment(rate)):
        spans.append((seg.start, seg.end))
        batch.append(seg.waveform)
        if len(batch) == EMBED_BATCH:
            vectors.append(_embed_in_batches(model, batch))
            batch = []
    if batch:
        vectors.append(_embed_in_batches(model, batch))
    return spans, np.concatenate(vectors), reached["end"]


def file_markers(path: str | Path) -> list[Any]:
    """The named markers of the file at ``path`` (engine.file_metadata.named_markers), whose takes
    the indexer cuts as segments of their own; UnreadableAudio where the file cannot be read,
    none (with a warning) where only its markers cannot."""
    from engine.file_metadata import named_markers
    try:
        return named_markers(str(path)) if Path(path).is_file() else []
    except OSError as e:
        raise UnreadableAudio(str(path), f"cannot be read ({e.strerror or e})") from e
    except ValueError as e:             # the audio may still decode: its windows alone are embedded
        log.warning("%s: markers not read (%s); embedding its windows only", path, e)
        return []


def file_query_vector(model: AudioTextModel, path: str | Path, policy: SegmentPolicy | None = None
                      ) -> tuple[np.ndarray, float]:
    """:func:`audio_query_vector` of a file, and the seconds of audio it decoded to (the end of
    its last segment, silent or not), which tell a sound too short to be told apart (engine.tagging.too_short).
    Its marked takes are segments too (:func:`file_markers`), as in the index, so the vector is
    the one its indexed copy's stored segments give."""
    takes = [(m.at, m.length) for m in file_markers(path)]
    _, vectors, seconds = _file_segments(model, path, policy, takes)
    return l2_normalize(vectors.mean(axis=0)), seconds


def audio_query_vector(model: AudioTextModel, audio: AudioInput, sample_rate: int | None = None,
                       policy: SegmentPolicy | None = None) -> np.ndarray:
    """One unit vector (dim,) for ``audio``: mean of its segment vectors, re-normalised."""
    return l2_normalize(audio_segment_vectors(model, audio, sample_rate, policy).mean(axis=0))


def text_vectors(model: AudioTextModel, texts: Sequence[str]) -> np.ndarray:
    """Embeddings (n, dim) of ``texts``, in batches (a checkpoint before each: :func:`between_batches`)."""
    texts, out = list(texts), []
    for i in range(0, len(texts), TEXT_BATCH):
        between_batches("texts")
        out.append(model.embed_text(texts[i:i + TEXT_BATCH]))
    return np.concatenate(out).astype(np.float32, copy=False)


def class_prompts(labels: Sequence[str], template: str) -> list[str]:
    """``template`` with ``{label}`` replaced by each label; :class:`InvalidQuery` when it has no
    ``{label}`` (every label would get the same text). Other braces are kept as written."""
    if "{label}" not in template:
        raise InvalidQuery(f"prompt template {template!r} has no {{label}} placeholder; "
                           'use e.g. "This is a sound of {label}."')
    return [template.replace("{label}", label) for label in labels]


def label_vectors(model: AudioTextModel, labels: Sequence[str],
                  template: str = DEFAULT_TEMPLATE) -> np.ndarray:
    """Embeddings of ``template`` filled with each label (:func:`class_prompts`), cached per model."""
    key = (str(getattr(model, "text_fingerprint", model.fingerprint)), template, tuple(labels))
    with _label_lock:
        cached = _label_cache.get(key)
        if cached is not None:
            _label_cache.move_to_end(key)
            return cached
    prompts = class_prompts(labels, template)
    disk = _label_cache_file(key)
    vectors = _read_cached(disk, len(prompts))
    if vectors is None:
        vectors = text_vectors(model, prompts)
        _write_cached(disk, vectors)
    with _label_lock:
        _label_cache[key] = vectors
        while len(_label_cache) > _LABEL_CACHE_SIZE:
            _label_cache.popitem(last=False)
    return vectors


def _label_cache_file(key: tuple[str, str, tuple[str, ...]]) -> Path:
    from engine.towers.cache import cache_dir
    digest = hashlib.sha256("\x00".join([key[0], key[1], *key[2]]).encode("utf-8")).hexdigest()
    return cache_dir() / "labels" / f"{digest[:32]}.npy"


def _read_cached(path: Path, n: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable label cache %s (%s)", path, e)
        return None
    return vectors.astype(np.float32, copy=False) if vectors.ndim == 2 and len(vectors) == n else None


def _write_cached(path: Path, vectors: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
        np.save(tmp, vectors, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as e:
        log.warning("could not cache label embeddings in %s (%s); they will be encoded again", path, e)


def listed_texts(texts: str | Sequence[str] | None, what: str, item: str, hint: str = "") -> list[str]:
    """``texts`` as a list (one string is one item); InvalidQuery saying ``what`` ("rank_texts",
    "tag") needs at least one ``item``, then ``hint``, when none is given: an empty list is a
    slip, not a request for defaults."""
    items = [texts] if isinstance(texts, str) else [] if texts is None else list(texts)
    if not items:
        raise InvalidQuery(f"{what} needs at least one {item}, got {'None' if texts is None else 'an empty list'}"
                           f"{hint}")
    return items


def rank_texts(model: AudioTextModel, audio_vector: np.ndarray,
               texts: Sequence[str]) -> list[tuple[str, float]]:
    """``(text, cosine)`` for each text, best match to ``audio_vector`` first."""
    texts = listed_texts(texts, "rank_texts", "text")
    scores = text_vectors(model, texts) @ np.asarray(audio_vector, np.float32).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    return [(texts[i], float(scores[i])) for i in order]


def logit_scale(model: Any) -> float:
    """The model's logit scale (CLAP's exp(t)), or :data:`DEFAULT_LOGIT_SCALE`."""
    value = getattr(model, "logit_scale", None)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return DEFAULT_LOGIT_SCALE
    return value if np.isfinite(value) and value > 0 else DEFAULT_LOGIT_SCALE


def tag(model: AudioTextModel, audio_vector: np.ndarray, labels: Sequence[str], top: int = 5,
        template: str = DEFAULT_TEMPLATE) -> list[dict[str, Any]]:
    """Top ``top`` labels as ``{"label", "score", "cosine"}``, best first.

    ``score`` is the softmax over all ``labels`` of ``logit_scale · cosine``.
    """
    return tag_many(model, np.asarray(audio_vector, np.float32).reshape(1, -1), labels, top, template)[0]


def tag_many(model: AudioTextModel, audio_vectors: np.ndarray, labels: Sequence[str], top: int = 5,
             template: str = DEFAULT_TEMPLATE, min_score: float = 0.0) -> list[list[dict[str, Any]]]:
    """:func:`tag` for each row of ``audio_vectors`` (n, dim), the labels embedded once: its best
    ``top`` tags, less those scoring below ``min_score`` (a row may keep none). Scored
    :data:`TAG_ROWS` rows at a time, a checkpoint before each (:func:`between_batches`)."""
    given = listed_texts(labels, "tag", "label")
    labels = list(dict.fromkeys(str(label).strip() for label in given if str(label).strip()))
    if not labels:
        raise InvalidQuery(f"tag needs at least one label, got only blank ones ({given!r:.80})")
    if top < 1:
        raise InvalidQuery(f"top must be ≥ 1, got {top}")
    vectors, texts = np.asarray(audio_vectors, np.float32), label_vectors(model, labels, template)
    scale, out = logit_scale(model), []
    for at in range(0, len(vectors), TAG_ROWS):
        between_batches("vectors to tag")
        cos = vectors[at:at + TAG_ROWS] @ texts.T       # (rows, labels)
        logits = scale * cos.astype(np.float64)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        for p, c in zip(probs, cos):
            order = np.argsort(-p, kind="stable")[:top]
            out.append([{"label": labels[i], "score": float(p[i]), "cosine": float(c[i])} for i in order
                        if p[i] >= min_score])
    return out
