"""Helpers of the query tests: a deterministic fake model and a catalog+FAISS writer.

The writer puts given vectors straight into an index folder laid out as the indexer
does (catalog meta, ``vectors-<generation>.faiss``), so a test knows every score.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import faiss
import numpy as np
from sqlalchemy.orm import Session

from engine.catalog import ErrorRow, File, SegmentRow, open_catalog, set_meta
from engine.layout import IndexLayout
from engine.models.base import AudioTextModel, l2_normalize
from engine.segments import SegmentPolicy
from engine.vectors import LENGTH_KEY, LENGTH_OF_KEY, new_index, write_index_atomic


class FakeModel(AudioTextModel):
    """Deterministic toy model at 8 kHz with a 1 s window.

    Audio → a unit vector peaked at the band of its dominant frequency (log-spaced bands
    from 50 Hz to 4 kHz), so tones of one pitch embed alike. Text "band N" → the same
    peak at band N; any other text → a fixed pseudo-random unit vector from its hash.
    """

    def __init__(self, dim: int = 16, name: str = "fake", fingerprint: str = "fake-v1") -> None:
        self.name, self.dim, self.fingerprint = name, dim, fingerprint
        self.sample_rate, self.window_seconds = 8000, 1.0
        self.audio_calls = 0
        self.text_calls = 0

    def band_vector(self, band: int) -> np.ndarray:
        v = np.exp(-0.5 * ((np.arange(self.dim) - band) / 0.7) ** 2).astype(np.float32)
        return l2_normalize(v)

    def band_of(self, freq: float) -> int:
        edges = np.geomspace(50, 4000, self.dim + 1)
        return int(np.clip(np.searchsorted(edges, freq) - 1, 0, self.dim - 1))

    def embed_audio(self, waveforms: Sequence[np.ndarray]) -> np.ndarray:
        self.audio_calls += 1
        out = []
        for w in waveforms:
            spec = np.abs(np.fft.rfft(np.asarray(w, np.float64)))
            freq = np.fft.rfftfreq(len(w), 1 / self.sample_rate)[int(np.argmax(spec))]
            out.append(self.band_vector(self.band_of(freq)))
        return np.stack(out).astype(np.float32)

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        self.text_calls += 1
        out = []
        for t in texts:
            words = t.split()
            if len(words) == 2 and words[0] == "band" and words[1].isdigit():
                out.append(self.band_vector(int(words[1])))
            else:
                seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
                out.append(l2_normalize(np.random.default_rng(seed).standard_normal(self.dim)))
        return np.stack(out).astype(np.float32)


@dataclass
class FileSpec:
    """One file to put in a test index: its properties and one vector per segment."""

    path: str
    vectors: np.ndarray
    duration: float = 1.0
    format: str = "WAV"
    sample_rate: int = 8000
    bounds: list[tuple[float, float]] = field(default_factory=list)


def write_index(root: Path, files: Sequence[FileSpec], *, model_name: str = "fake",
                fingerprint: str = "fake-v1", dim: int | None = None, generation: int = 1,
                window: float = 1.0, errors: Sequence[tuple[str, str]] = (),
                factory: str | None = None, index_params: dict | None = None) -> dict[int, int]:
    """Write (or replace the content of) the index at ``root``; returns segment id → file id.

    ``factory``: a FAISS factory string (inner product) trained on the vectors themselves,
    instead of the exact IDMap2,Flat; ``index_params`` goes to meta (e.g. nprobe).
    """
    layout = IndexLayout(Path(root))
    layout.root.mkdir(parents=True, exist_ok=True)
    engine = open_catalog(layout.catalog, create=True)
    dim = dim or int(np.asarray(files[0].vectors).shape[-1])
    index = new_index(dim)
    seg_to_file: dict[int, int] = {}
    all_vecs: list[np.ndarray] = []
    all_ids: list[np.ndarray] = []
    with Session(engine) as s:
        s.query(SegmentRow).delete()
        s.query(File).delete()
        s.query(ErrorRow).delete()
        for spec in files:
            vecs = l2_normalize(np.atleast_2d(np.asarray(spec.vectors, np.float32)))
            f = File(path=spec.path, size=1000, mtime_ns=0, duration=spec.duration,
                     sample_rate=spec.sample_rate, channels=1, format=spec.format)
            s.add(f)
            s.flush()
            bounds = spec.bounds or [(i * window / 2, min(spec.duration, i * window / 2 + window))
                                     for i in range(len(vecs))]
            segs = [SegmentRow(file_id=f.id, start=a, end=b) for a, b in bounds]
            s.add_all(segs)
            s.flush()
            ids = np.array([seg.id for seg in segs], np.int64)
            all_vecs.append(vecs)
            all_ids.append(ids)
            seg_to_file.update({int(i): f.id for i in ids})
        for path, reason in errors:
            s.add(ErrorRow(path=path, reason=reason))
        if all_vecs:
            vecs, ids = np.concatenate(all_vecs), np.concatenate(all_ids)
            if factory:
                index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
                index.train(vecs)
            index.add_with_ids(vecs, ids)
        written = write_index_atomic(index, layout.vectors_file(generation))
        set_meta(s, model_name=model_name, model_fingerprint=fingerprint, dim=dim, sample_rate=8000,
                 segment_policy=SegmentPolicy(window).as_dict(), generation=generation,
                 vectors_file=layout.vectors_file(generation).name,
                 **{LENGTH_KEY: written, LENGTH_OF_KEY: layout.vectors_file(generation).name},     # as indexer.write
                 counts={"files": len(files), "segments": len(seg_to_file)},
                 index_params=index_params or {})
        s.commit()
    engine.dispose()
    return seg_to_file
