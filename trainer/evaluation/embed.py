"""Audio files and texts → embeddings for evaluation, with the cache and progress bars.

A clip no longer than ``model.window_seconds`` is embedded whole. A longer clip is cut
by the indexer's segment policy (:class:`engine.segments.SegmentPolicy` with the model's
window, 50 % hop, end-aligned tail) and its vector is the mean of the segment vectors,
re-normalised to unit length — the same pieces the index holds, summarised per file (segments
all digital silence left out as the indexer leaves them out: engine.segments.without_silence).
Audio is decoded by :mod:`engine.audio` (mono, resampled to ``model.sample_rate``);
decoding runs in a few threads ahead of the model.
"""
from __future__ import annotations

import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from tqdm import tqdm

from engine.audio import iter_segments
from engine.models.base import AudioTextModel, l2_normalize
from engine.segments import SegmentPolicy, silent_segment, without_silence
from trainer.evaluation.cache import EmbeddingCache

DEFAULT_BATCH_SIZE = 32


def segment_policy(model: AudioTextModel) -> SegmentPolicy:
    """The segment policy the indexer uses for ``model``."""
    return SegmentPolicy(window=float(model.window_seconds))


def policy_key(model: AudioTextModel) -> str:
    """Cache key part naming how a file becomes one vector."""
    p = segment_policy(model)
    return f"mean-of-sounding-segments;window={p.window:g};hop={p.hop_seconds:g};sr={model.sample_rate}"


def _decoded(paths: Sequence[Path], model: AudioTextModel, workers: int) -> Iterator[list[np.ndarray]]:
    """Segments of each path, in order, decoded ``workers`` files ahead."""
    policy = segment_policy(model)

    def load(p: Path) -> list[np.ndarray]:
        segments = iter_segments(p, model.sample_rate, policy)
        return [s.waveform for s, _ in without_silence(segments, silent_segment(int(model.sample_rate)))]

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending: deque = deque()
        todo = iter(paths)
        for p in todo:
            pending.append(pool.submit(load, p))
            if len(pending) >= 2 * max(1, workers):
                break
        while pending:
            segments = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(load, nxt))
            yield segments


def embed_audio_files(model: AudioTextModel, paths: Sequence[str | Path], *,
                      batch_size: int = DEFAULT_BATCH_SIZE, cache: EmbeddingCache | None = None,
                      progress: bool = True, workers: int = 2) -> np.ndarray:
    """One L2-normalised vector per file, (len(paths), model.dim) float32.

    With a ``cache``, files whose content was already embedded by a model with the
    same fingerprint are not decoded or embedded again; new vectors are stored.
    """
    paths = [Path(p) for p in paths]
    out = np.zeros((len(paths), model.dim), dtype=np.float32)
    key = policy_key(model)
    hashes: list[str] | None = None
    todo = list(range(len(paths)))
    if cache is not None:
        hashes = [cache.content_hash(p) for p in paths]
        known = cache.get_many(model.fingerprint, key, hashes)
        todo = []
        first_of: dict[str, int] = {}
        for i, h in enumerate(hashes):
            if h in known:
                out[i] = known[h]
            elif h not in first_of:
                first_of[h] = i
                todo.append(i)
    sums = {i: np.zeros(model.dim, dtype=np.float64) for i in todo}
    left: dict[int, int] = {}          # file → segments not embedded yet
    batch: list[np.ndarray] = []
    owners: list[int] = []

    def flush() -> None:
        vecs = np.asarray(model.embed_audio(batch), dtype=np.float32)
        done: dict[str, np.ndarray] = {}
        for owner, v in zip(owners, vecs):
            sums[owner] += v
            left[owner] -= 1
            if left[owner] == 0:
                out[owner] = l2_normalize(sums.pop(owner)[None, :])[0]
                if hashes is not None:
                    done[hashes[owner]] = out[owner]
        if cache is not None and done:
            cache.put_many(model.fingerprint, key, done)
        batch.clear()
        owners.clear()

    bar = tqdm(total=len(todo), desc="embedding audio", unit="file", file=sys.stderr,
               disable=not progress or not todo)
    with bar:
        for i, segments in zip(todo, _decoded([paths[i] for i in todo], model, workers)):
            left[i] = len(segments)
            for seg in segments:
                batch.append(seg)
                owners.append(i)
                if len(batch) >= batch_size:
                    flush()
            bar.update(1)
        if batch:
            flush()
    if hashes is not None:  # files sharing content with an earlier one
        first = {}
        for i, h in enumerate(hashes):
            first.setdefault(h, i)
            out[i] = out[first[h]]
    return out


def embed_texts(model: AudioTextModel, texts: Sequence[str], *,
                batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = True) -> np.ndarray:
    """(len(texts), model.dim) float32, in batches, with a progress bar."""
    out = np.zeros((len(texts), model.dim), dtype=np.float32)
    with tqdm(total=len(texts), desc="embedding text", unit="text", file=sys.stderr,
              disable=not progress or not texts) as bar:
        for start in range(0, len(texts), batch_size):
            chunk = list(texts[start:start + batch_size])
            out[start:start + len(chunk)] = np.asarray(model.embed_text(chunk), dtype=np.float32)
            bar.update(len(chunk))
    return out
