"""Turn a candidate into a FLAC file (original rate and channels, or the rate it asks for)
and a manifest row."""
from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.audio import read_sound_bytes
from trainer.corpus.captions import label_captions
from trainer.corpus.clips import Candidate

MIN_SECONDS = 0.05
MIN_PEAK = 1e-3


class SkipClip(Exception):
    """A candidate gives no usable audio (silent, too short, undecodable); the reason says which."""


@dataclass(frozen=True)
class WrittenClip:
    """A converted clip: where it is (relative to the corpus folder) and what it holds."""

    audio: str
    duration: float
    sample_rate: int
    channels: int


def clip_filename(c: Candidate) -> str:
    """``<source>/<label-slug>-<hash of origin>.flac``: stable across runs."""
    slug = re.sub(r"[^a-z0-9]+", "-", c.label.lower()).strip("-") or "clip"
    digest = hashlib.sha1(c.origin.encode("utf-8")).hexdigest()[:10]
    return f"{c.source}/{slug}-{digest}.flac"


def load_audio(c: Candidate) -> tuple[np.ndarray, int]:
    """(frames × channels float32, rate) of a candidate, decoded or rendered."""
    try:
        if c.read is not None:
            data, sr = read_sound_bytes(c.read(), c.origin)     # as the indexer reads a file of its name
        elif c.render is not None:
            with tempfile.TemporaryDirectory(prefix="soundsift-corpus-") as tmp:
                wav = Path(tmp) / "clip.wav"
                c.render(wav)
                data, sr = sf.read(str(wav), dtype="float32", always_2d=True)
        else:
            raise SkipClip(f"{c.origin}: candidate has neither a reader nor a renderer")
    except SkipClip:
        raise
    except Exception as e:  # decoder and tool failures become a counted skip with the reason
        first_line = (str(e).strip().splitlines() or [""])[0][:160]
        raise SkipClip(f"{c.origin}: {type(e).__name__} {first_line}".rstrip()) from e
    return data, int(sr)


def write_clip(c: Candidate, out_dir: Path, max_seconds: float) -> WrittenClip:
    """Write ``c`` under ``out_dir/audio/`` as 16-bit FLAC, cut to ``max_seconds``."""
    data, sr = load_audio(c)
    data = data[: int(max_seconds * sr)]
    if data.shape[0] < MIN_SECONDS * sr:
        raise SkipClip(f"{c.origin}: shorter than {MIN_SECONDS} s")
    if not np.isfinite(data).all():
        raise SkipClip(f"{c.origin}: contains NaN or Inf samples")
    peak = float(np.abs(data).max())
    if peak < MIN_PEAK:
        raise SkipClip(f"{c.origin}: silent (peak {peak:.1e})")
    if c.rate and c.rate != sr:
        import soxr
        data = soxr.resample(data, sr, c.rate, quality="HQ").astype(np.float32)
        sr = c.rate
    if peak > 1.0:
        data = data / peak
    rel = Path("audio") / clip_filename(c)
    path = out_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(data, -1.0, 1.0), sr, format="FLAC", subtype="PCM_16")
    return WrittenClip(rel.as_posix(), round(data.shape[0] / sr, 3), sr, int(data.shape[1]))


def manifest_row(c: Candidate, w: WrittenClip, split: str) -> dict:
    """One manifest line: audio (relative to the manifest), captions, tags, source, label, …"""
    return {
        "audio": w.audio,
        "captions": label_captions(c.label, list(c.captions)),
        "tags": list(dict.fromkeys([c.label, *c.tags])),
        "source": c.source,
        "label": c.label,
        "split": split,
        "origin": c.origin,
        "duration": w.duration,
        "sample_rate": w.sample_rate,
        "channels": w.channels,
    }
