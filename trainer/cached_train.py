"""Train soundsift-base's projections on cached frozen features (:mod:`trainer.precompute`).

The frozen towers' features of several channel-augmented views per training clip are computed
once; then the trainable parts of :class:`~engine.models.soundsift_clap.SoundsiftClap` —
``class_proj`` (initialised to the tag–text baseline), ``embedding_proj`` / ``aisfx_proj``
(zero-initialised), ``text_adapter`` (zero) and ``logit_scale`` — train for many steps in seconds.
What trains is exactly what :meth:`SoundsiftClap.project` computes for an unfused model whose aisfx
branch is frozen, so the result is saved with ``save_pretrained`` and loaded by ``load_model``.
In the ``"audioset"`` shared space (``space``), the class prior that scales the posteriors is the
mean clean-view posterior of the training clips, and the text side's class table and temperature
train too (unless ``train_text_classes`` is false); ``minilm_mix`` keeps a share of the tag–text
baseline's own (frozen) similarity in every score, in training as in use. ``steps: 0`` saves the
training-free start as the model.

Gentle adaptation, so the AudioSet knowledge stays the foundation:

* batches of distinct labels (sampled ∝ √count, so "speech" does not swamp the rest and no
  batch holds two clips of one label as false negatives), a random view and caption each;
* symmetric InfoNCE (:class:`trainer.loss.ContrastiveLoss`) plus ``decay_to_init`` · ‖θ − θ₀‖²
  pulling every weight back toward its baseline initialisation;
* a fixed number of steps (chosen on the by-source validation split, reported with its curve).

Validation (:func:`evaluate`) on the by-source split: a clip's vector is the re-normalised mean
of its segment vectors, those all digital silence left out as the indexer leaves them out
(:func:`sounding_rows`); zero-shot top-1/top-5 over the distinct validation labels with the prompt
"This is a sound of {label}." (also split into labels seen / unseen in training); text→audio
R@1/R@5 with the bare label as the query and every clip of that label relevant; audio→text R@1
over the bare labels. With ``everyday_exclude``, the same figures are also reported (suffix
``_everyday``) over the validation labels that name everyday sounds, i.e. all labels but those
listed (game effects such as "gun reload"): that subset is our nearest proxy for a set of real
recordings of everyday sounds.

    soundsift train trainer/configs/soundsift_base.json [--out FOLDER] [--steps N] [--json]
    python -m trainer.cached_train trainer/configs/soundsift_base.json [--out FOLDER]
"""
from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from engine.errors import InvalidConfig, ModelUnavailable
from engine.outputs import output_folder
from engine.zeroshot import DEFAULT_TEMPLATE
from trainer.augment import AugmentConfig
from trainer.config import read_config_file
from trainer.datasets import Item, merge_repeated, read_manifest
from trainer.precompute import FeatureCache, build_cache

log = logging.getLogger(__name__)

#: config keys holding files, written relative to the config file that sets them
_FILE_PATHS = ("train_manifest", "val_manifest", "aisfx_weights")

#: which feature branches feed the audio vector, per ablation variant
VARIANTS: dict[str, dict[str, bool]] = {
    "baseline": {"class": True, "embedding": False, "aisfx": False},
    "yamnet-class": {"class": True, "embedding": False, "aisfx": False},
    "yamnet": {"class": True, "embedding": True, "aisfx": False},
    "aisfx": {"class": False, "embedding": False, "aisfx": True},
    "both": {"class": True, "embedding": True, "aisfx": True},
}
PROMPT = DEFAULT_TEMPLATE     # the zero-shot prompt of the evaluator and the query layer
HELD_OUT = "held-out"         # subfolder of a final_with_val run's model: its seed trained without validation


@dataclass
class CachedTrainConfig:
    """A cached-feature training run as data (trainer/configs/soundsift_base*.json).

    Manifest and weight paths are relative to the config file; ``cache_dir`` and ``out`` to the
    current folder (as the trainer's ``out_dir``). ``trainer`` is the discriminator that
    ``soundsift train`` dispatches on (:func:`trainer.config.trainer_of`).
    """

    trainer: str = "cached-features"
    train_manifest: str = "corpus/train.jsonl"
    val_manifest: str = "corpus/val.jsonl"
    cache_dir: str = "runs/soundsift-base/cache"
    views: int = 8                      # clean + 7 augmented views per training clip
    view_seed: int = 0
    augment: dict[str, Any] = field(default_factory=dict)   # AugmentConfig fields
    aisfx_weights: str | None = None    # frozen aisfx branch (converted EmbeddingNet)
    yamnet_min_peak_db: float | None = None   # quiet audio lifted to this peak for YAMNet (SoundsiftClapConfig)
    yamnet_weights: str = "int8"        # YAMNet's "int8" export or its "float" weights (SoundsiftClapConfig)
    yamnet_pool_db: float | None = None  # YAMNet's sound-aware pooling (SoundsiftClapConfig)
    yamnet_short_pad: str = "zeros"     # how YAMNet pads views shorter than a patch (SoundsiftClapConfig)
    yamnet_trim_silence: bool = False   # a view's edge digital silence cut before YAMNet (SoundsiftClapConfig)
    variant: str = "yamnet"             # a key of VARIANTS
    space: str = "minilm"               # the model's shared space: "minilm" or "audioset"
    class_prior_power: float = 0.5      # "audioset": posteriors / prior ** power
    text_temperature: float = 0.05      # "audioset": text → class softmax temperature
    minilm_mix: float = 0.0             # "audioset": weight of the baseline's MiniLM-space cosine (SoundsiftClapConfig)
    class_text_template: str | list[str] = "{}"   # how classes are written (SoundsiftClapConfig)
    train_text_classes: bool = True     # "audioset": train the text side's class table and τ too
    text_adapter: bool = False          # residual Linear on text vectors (off: MiniLM as is)
    query_carriers: list[str] = field(default_factory=list)   # phrases queries are read without (SoundsiftClapConfig)
    steps: int = 600
    batch_size: int = 64
    lr: float = 3e-4
    warmup_steps: int = 50
    decay_to_init: float = 0.3          # coefficient of ‖θ − θ₀‖² (summed over weights)
    label_power: float = 0.5            # label sampling ∝ count ** label_power
    seed: int = 0
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])   # judged on validation
    val_every: int = 100
    everyday_exclude: list[str] = field(default_factory=list)   # labels left out of *_everyday
    threads: int = 1                    # torch threads (tiny ops: more threads only add contention)
    final_with_val: bool = False        # the final run also trains on the validation clips (the seeds do not)
    out: str = "runs/soundsift-base/model"

    @classmethod
    def _read(cls, path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
        """A config file's keys over those of the file its ``"extends"`` names (relative to it),
        each file's manifest and weight paths made relative to the current folder."""
        data = read_config_file(path)
        for key in _FILE_PATHS:
            value = data.get(key)
            if value and not Path(value).expanduser().is_absolute():
                data[key] = str(path.parent / value)
        parent = data.pop("extends", None)
        if parent is None:
            return data
        base = path.parent / str(parent)
        if base.resolve() in seen + (path.resolve(),):
            raise InvalidConfig(f"{path}: \"extends\": {parent!r} leads back to {path.name}")
        return {**cls._read(base, seen + (path.resolve(),)), **data}

    @classmethod
    def from_file(cls, path: str | Path) -> "CachedTrainConfig":
        """Read and check a config; ``"extends": "other.json"`` takes that file's keys first."""
        path = Path(path)
        data = cls._read(path)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            from trainer.config import with_guesses
            raise InvalidConfig(f"{path}: unknown key(s) {', '.join(with_guesses(unknown, known))}; "
                                f"known: {', '.join(sorted(known))}")
        cfg = cls(**data)
        if cfg.trainer != "cached-features":
            raise InvalidConfig(f"{path}: trainer {cfg.trainer!r} is not 'cached-features'; "
                                f"run it with: soundsift train {path}")
        if cfg.variant not in VARIANTS:
            raise InvalidConfig(f"{path}: variant {cfg.variant!r} is not one of {', '.join(VARIANTS)}")
        if VARIANTS[cfg.variant]["aisfx"] and not cfg.aisfx_weights:
            raise InvalidConfig(f"{path}: variant {cfg.variant!r} needs aisfx_weights")
        if cfg.space not in ("minilm", "audioset"):
            raise InvalidConfig(f"{path}: space {cfg.space!r} is not 'minilm' or 'audioset'")
        if cfg.steps < 0:
            raise InvalidConfig(f"{path}: steps must be ≥ 0, not {cfg.steps}")
        try:        # the model's own rules (minilm_mix, text_temperature, templates …), before any work
            model_config(cfg).check()
        except ModelUnavailable as e:
            raise InvalidConfig(f"{path}: {e}") from e
        return cfg

    def augment_config(self) -> AugmentConfig:
        try:
            return AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.augment.items()})
        except TypeError as e:
            raise InvalidConfig(f"augment: {e}") from e


# --------------------------------------------------------------------------- data

@dataclass
class Split:
    """Items of a manifest with their cached features and text vectors."""

    items: list[Item]
    cache: FeatureCache
    labels: list[str]           # first tag of each item

    @classmethod
    def of(cls, items: list[Item], cache: FeatureCache) -> "Split":
        return cls(items, cache, [it.tags[0] if it.tags else it.captions[0] for it in items])


def _cache_settings(cfg: CachedTrainConfig) -> tuple[str, dict[str, Any]]:
    """The cache-name tag and the frozen-feature settings of a config."""
    tag = "both" if cfg.aisfx_weights else "yamnet"
    if cfg.yamnet_min_peak_db is not None:
        tag += f"_minpeak{cfg.yamnet_min_peak_db:g}"
    if cfg.yamnet_weights != "int8":
        tag += f"_{cfg.yamnet_weights}"
    if cfg.yamnet_pool_db is not None:
        tag += f"_pool{cfg.yamnet_pool_db:g}"
    if cfg.yamnet_short_pad != "zeros":
        tag += f"_{cfg.yamnet_short_pad}"
    if cfg.yamnet_trim_silence:
        tag += "_trim"
    return tag, {"aisfx_weights": cfg.aisfx_weights, "yamnet_min_peak_db": cfg.yamnet_min_peak_db,
                 "yamnet_weights": cfg.yamnet_weights, "yamnet_pool_db": cfg.yamnet_pool_db,
                 "yamnet_short_pad": cfg.yamnet_short_pad, "yamnet_trim_silence": cfg.yamnet_trim_silence}


def load_splits(cfg: CachedTrainConfig) -> tuple[Split, Split]:
    """Build (or reuse) the training-view and validation-segment caches."""
    # one item per audio file, as the loop's trainer has it (rows per caption add their captions)
    train_items = merge_repeated(read_manifest(cfg.train_manifest))
    val_items = merge_repeated(read_manifest(cfg.val_manifest))
    tag, level = _cache_settings(cfg)
    cache_dir = Path(cfg.cache_dir)
    t0 = time.perf_counter()
    train = build_cache(train_items, cache_dir / f"train_{tag}_v{cfg.views}_s{cfg.view_seed}.npz",
                        views=cfg.views, seed=cfg.view_seed, augment=cfg.augment_config(), **level)
    val = build_cache(val_items, cache_dir / f"val_{tag}.npz", views=0, **level)
    log.info("feature caches ready in %.0f s: %d training rows, %d validation rows",
             time.perf_counter() - t0, len(train), len(val))
    return Split.of(train_items, train), Split.of(val_items, val)


def validation_as_training(cfg: CachedTrainConfig, train: Split, val: Split) -> Split:
    """The training split joined by the validation clips as training views (clean + augmented).

    Their cache draws as if the validation manifest were appended to the training one; its name
    holds that offset, so a grown training manifest gets a new one rather than an error.
    """
    tag, level = _cache_settings(cfg)
    name = f"valtrain_{tag}_v{cfg.views}_s{cfg.view_seed}_at{len(train.items)}.npz"
    views = build_cache(val.items, Path(cfg.cache_dir) / name,
                        views=cfg.views, seed=cfg.view_seed, augment=cfg.augment_config(),
                        first_index=len(train.items), **level)
    cache = train.cache.take(np.arange(len(train.cache)))     # a copy, so ``train`` stays as it is
    cache.extend({"posteriors": views.posteriors, "embedding": views.embedding, "aisfx": views.aisfx,
                  "item": views.item + len(train.items), "view": views.view})
    return Split(train.items + val.items, cache, train.labels + val.labels)


class TextBank:
    """Frozen MiniLM vectors of strings, computed once (and kept in ``path`` when given).

    The modules of a run share its tower and the class tables :meth:`encode_list` keeps
    (:func:`build_module` with ``bank``), so MiniLM loads and encodes the class texts once.
    """

    def __init__(self, text_tower, path: str | Path | None = None) -> None:
        self.tower = text_tower
        self.lists: dict[tuple[str, ...], torch.Tensor] = {}
        self.index: dict[str, int] = {}
        self.vectors = torch.zeros(0, 384)
        self.path = Path(path) if path else None
        if self.path and self.path.is_file():
            from engine.towers.minilm import weights_id
            with np.load(self.path, allow_pickle=False) as data:
                if str(data["weights"]) == weights_id():
                    texts = [str(t) for t in data["texts"]]
                    self.index = {t: i for i, t in enumerate(texts)}
                    self.vectors = torch.from_numpy(data["vectors"])

    @torch.no_grad()
    def add(self, texts: Sequence[str]) -> None:
        new = [t for t in dict.fromkeys(texts) if t not in self.index]
        if not new:
            return
        base = len(self.index)
        self.index.update({t: base + i for i, t in enumerate(new)})
        self.vectors = torch.cat([self.vectors, self.tower.encode_many(new).float()])
        if self.path:
            from engine.towers.minilm import weights_id
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp.npz")
            np.savez(tmp, texts=np.array(list(self.index)), vectors=self.vectors.numpy(),
                     weights=np.array(weights_id()))
            tmp.replace(self.path)

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        return self.vectors[[self.index[t] for t in texts]]

    @torch.no_grad()
    def encode_list(self, texts: Sequence[str]) -> torch.Tensor:
        """The tower's ``encode_many`` of a whole list (as ``init_baseline`` encodes class texts;
        chunks padded alike, so the same numbers), computed once per list and kept in memory."""
        key = tuple(texts)
        if key not in self.lists:
            self.lists[key] = self.tower.encode_many(list(key))
        return self.lists[key].clone()


# --------------------------------------------------------------------------- model on features

def class_prior(cache: FeatureCache) -> np.ndarray:
    """Mean YAMNet posterior per class over the clean views (view 0) of a training cache."""
    clean = cache.view == 0
    return cache.posteriors[clean if clean.any() else slice(None)].mean(0)


def model_config(cfg: CachedTrainConfig):
    """The SoundsiftClapConfig a cached run trains and saves: the variant's branches, unfused, in ``cfg.space``."""
    from engine.models.soundsift_clap import SoundsiftClapConfig
    from engine.towers import yamnet

    branches = VARIANTS[cfg.variant]
    space = {"space": cfg.space, "dim": yamnet.NUM_CLASSES, "class_prior_power": cfg.class_prior_power,
             "text_temperature": cfg.text_temperature} if cfg.space == "audioset" else {}
    return SoundsiftClapConfig(use_yamnet_embedding=branches["embedding"], use_aisfx=branches["aisfx"],
                               aisfx_trainable=False, fusion=False, text_adapter=cfg.text_adapter,
                               class_text_template=cfg.class_text_template, minilm_mix=cfg.minilm_mix,
                               query_carriers=list(cfg.query_carriers),
                               yamnet_min_peak_db=cfg.yamnet_min_peak_db, yamnet_weights=cfg.yamnet_weights,
                               yamnet_pool_db=cfg.yamnet_pool_db, yamnet_short_pad=cfg.yamnet_short_pad,
                               yamnet_trim_silence=cfg.yamnet_trim_silence, **space)


def build_module(cfg: CachedTrainConfig, prior: np.ndarray | None = None, bank: TextBank | None = None):
    """A baseline-initialised SoundsiftClap with the variant's branches (unfused) in ``cfg.space``;
    with ``bank``, on its text tower and class tables (:meth:`TextBank.encode_list`)."""
    from engine.models.soundsift_clap import SoundsiftClap

    branches = VARIANTS[cfg.variant]
    module = SoundsiftClap(model_config(cfg), aisfx_weights=cfg.aisfx_weights if branches["aisfx"] else None,
                           text_tower=bank.tower if bank else None)
    return init_module(module, cfg, prior, bank)


def init_module(module, cfg: CachedTrainConfig, prior: np.ndarray | None = None, bank: TextBank | None = None):
    """Set ``module`` (built for ``cfg``, trained or not) to the start :func:`build_module` gives a
    new one with ``prior``, tensor for tensor; the final run of ``final_with_val`` re-initialises
    the seeds' module so, with the joined class prior, instead of building (and encoding) anew."""
    branches = VARIANTS[cfg.variant]
    module.init_baseline(prior, encode=bank.encode_list if bank else None)
    if not branches["class"]:
        with torch.no_grad():
            module.class_proj.weight.zero_()
        module.class_proj.weight.requires_grad_(False)
    if module.class_text is not None and not cfg.train_text_classes:
        module.class_text.requires_grad_(False)
        module.log_text_temperature.requires_grad_(False)
    if module.aisfx is not None:
        module.aisfx.eval()
    return module


def reset_module(module, cfg: CachedTrainConfig, init_state: dict[str, torch.Tensor], seed: int) -> None:
    """Back to the baseline initialisation; aisfx-only starts its projection at random (seeded)."""
    module.load_state_dict(init_state)
    if not VARIANTS[cfg.variant]["class"] and module.aisfx_proj is not None:
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            bound = 1.0 / math.sqrt(module.aisfx_proj.in_features)
            module.aisfx_proj.weight.copy_(torch.rand(module.aisfx_proj.weight.shape, generator=g) * 2 * bound - bound)


def trainable(module) -> dict[str, nn.Parameter]:
    """The parameters trained on cached features (never the frozen towers)."""
    names = ("class_proj.", "embedding_proj.", "aisfx_proj.", "text_adapter.", "logit_scale", "class_text",
             "log_text_temperature")
    return {n: p for n, p in module.named_parameters() if n.startswith(names) and p.requires_grad}


def project_rows(module, cache: FeatureCache, rows: np.ndarray | slice) -> torch.Tensor:
    """Audio vectors of cache rows (:meth:`SoundsiftClap.project_pooled` on the stored features)."""
    return module.project_pooled(
        torch.from_numpy(cache.posteriors[rows]), torch.from_numpy(cache.embedding[rows]),
        None if cache.aisfx is None else torch.from_numpy(cache.aisfx[rows]))


def encode_texts(module, bank: TextBank, texts: Sequence[str]) -> torch.Tensor:
    """Text vectors of strings from their cached MiniLM vectors, read as the model reads them
    (:meth:`SoundsiftClap.query_texts`, then :meth:`SoundsiftClap.text_head`)."""
    read = module.query_texts(texts)
    bank.add(read)                       # a no-op once every form is cached (prepare adds them)
    return module.text_head(bank(read))


# --------------------------------------------------------------------------- evaluation

def sounding_rows(cache: FeatureCache) -> np.ndarray:
    """The rows (indices, in order) of a validation cache that enter its clips' means: an item's
    segments that are all digital silence (``peak`` at most :data:`engine.segments.SILENT_PEAK`)
    are left out when it has one that is not, its first kept when it has none, as the indexer
    does (:func:`engine.segments.without_silence`). Every row of a cache without peaks."""
    from itertools import groupby

    from engine.segments import SILENT_PEAK, without_silence

    if cache.peak is None:
        return np.arange(len(cache))
    order = np.argsort(cache.item, kind="stable")
    kept = [row for _, rows in groupby(order.tolist(), key=lambda r: int(cache.item[r]))
            for row, _ in without_silence(rows, lambda r: float(cache.peak[r]) <= SILENT_PEAK)]
    return np.sort(np.asarray(kept, np.int64))


@torch.no_grad()
def clip_vectors(module, split: Split) -> np.ndarray:
    """One vector per item: the re-normalised mean of its segment vectors (:func:`sounding_rows`)."""
    rows = sounding_rows(split.cache)
    seg = project_rows(module, split.cache, rows).numpy().astype(np.float64)
    out = np.zeros((len(split.items), seg.shape[1]))
    np.add.at(out, split.cache.item[rows], seg)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


@torch.no_grad()
def evaluate(module, val: Split, bank: TextBank, seen_labels: set[str] | None = None,
             exclude: Sequence[str] = ()) -> dict[str, float]:
    """Zero-shot, text→audio and audio→text figures on the validation split (see module doc).

    With ``exclude``, the figures over the labels not excluded are added with suffix ``_everyday``.
    """
    audio = clip_vectors(module, val)
    out = _figures(module, bank, audio, val.labels, seen_labels)
    if exclude:
        excluded = set(exclude)
        keep = np.array([x not in excluded for x in val.labels])
        sub = _figures(module, bank, audio[keep], [x for x, k in zip(val.labels, keep) if k], None)
        out.update({f"{k}_everyday": v for k, v in sub.items()})
    return out


def _figures(module, bank: TextBank, audio: np.ndarray, clip_labels: Sequence[str],
             seen_labels: set[str] | None) -> dict[str, float]:
    """The figures for clip vectors and their labels, the candidates being the distinct labels."""
    from trainer.evaluation.metrics import (class_ranks, label_t2a_metrics, recall_at, relevant_ranks,
                                            zeroshot_from_logits)

    labels = sorted(set(clip_labels))
    targets = np.array([labels.index(x) for x in clip_labels])
    prompts = encode_texts(module, bank, [PROMPT.format(label=x) for x in labels]).numpy().astype(np.float64)
    bare = encode_texts(module, bank, labels).numpy().astype(np.float64)
    logits = audio @ prompts.T
    zs = zeroshot_from_logits(logits, targets, labels)
    out = {"zs_top1": zs["top1"], "zs_top5": zs["top5"]}
    if seen_labels is not None:
        seen = np.array([x in seen_labels for x in clip_labels])
        ranks = class_ranks(logits, targets)
        out["zs_top1_seen"] = recall_at(ranks[seen], 1) if seen.any() else float("nan")
        out["zs_top1_unseen"] = recall_at(ranks[~seen], 1) if (~seen).any() else float("nan")
    t2a = label_t2a_metrics(audio, bare, targets)
    out["t2a_R@1"], out["t2a_R@5"] = t2a["R@1"], t2a["R@5"]
    a2t = relevant_ranks(audio @ bare.T, [[t] for t in targets])
    out["a2t_R@1"] = recall_at(np.array([r[0] for r in a2t]), 1)
    return out


def tag_text_baseline(val: Split, bank: TextBank, seen_labels: set[str] | None = None,
                      exclude: Sequence[str] = ()) -> dict[str, float]:
    """:func:`evaluate` of the issue's training-free tag–text baseline (MiniLM space, posteriors only)."""
    return evaluate(build_module(CachedTrainConfig(variant="yamnet-class"), bank=bank), val, bank, seen_labels, exclude)


def score(metrics: dict[str, float]) -> float:
    """One number to compare runs: mean of zero-shot top-1, T2A R@1 and A2T R@1."""
    return (metrics["zs_top1"] + metrics["t2a_R@1"] + metrics["a2t_R@1"]) / 3


# --------------------------------------------------------------------------- training

class LabelBatches:
    """Batches of distinct labels (∝ count ** power), one random item, view and caption each."""

    def __init__(self, split: Split, batch_size: int, power: float, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.labels = sorted(set(split.labels))
        by_label = {x: [] for x in self.labels}
        for i, x in enumerate(split.labels):
            by_label[x].append(i)
        self.items_of = [np.array(by_label[x]) for x in self.labels]
        counts = np.array([len(v) for v in self.items_of], dtype=np.float64)
        self.p = counts ** power / np.sum(counts ** power)
        self.batch_size = min(batch_size, len(self.labels))
        self.rows_of = {}
        for r, i in enumerate(split.cache.item):
            self.rows_of.setdefault(int(i), []).append(r)
        self.split = split

    def __call__(self) -> tuple[np.ndarray, list[str]]:
        labels = self.rng.choice(len(self.labels), size=self.batch_size, replace=False, p=self.p)
        rows, texts = [], []
        for li in labels:
            item = int(self.rng.choice(self.items_of[li]))
            rows.append(int(self.rng.choice(self.rows_of[item])))
            caps = self.split.items[item].captions or [self.split.labels[item]]
            texts.append(caps[int(self.rng.integers(len(caps)))])
        return np.array(rows), texts


def train_run(module, cfg: CachedTrainConfig, train: Split, val: Split, bank: TextBank, seed: int,
              init_state: dict[str, torch.Tensor], seen: set[str]) -> list[dict[str, float]]:
    """One seeded run from the baseline init; returns validation figures every ``val_every`` steps."""
    from trainer.loss import ContrastiveLoss

    torch.manual_seed(seed)
    reset_module(module, cfg, init_state, seed)
    params = trainable(module)
    anchors = {n: p.detach().clone() for n, p in params.items() if n != "logit_scale"}
    opt = torch.optim.AdamW(list(params.values()), lr=cfg.lr, weight_decay=0.0)
    loss_fn = ContrastiveLoss()
    batches = LabelBatches(train, cfg.batch_size, cfg.label_power, seed)
    history = [{"step": 0, **evaluate(module, val, bank, seen, cfg.everyday_exclude)}]
    for step in range(1, cfg.steps + 1):
        warm = min(1.0, step / max(1, cfg.warmup_steps))
        cosine = 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        for g in opt.param_groups:
            g["lr"] = cfg.lr * warm * cosine
        rows, texts = batches()
        a = project_rows(module, train.cache, rows)
        t = encode_texts(module, bank, texts)
        loss = loss_fn(a, t, module.logit_scale)
        reg = sum(((params[n] - w0) ** 2).sum() for n, w0 in anchors.items())
        opt.zero_grad()
        (loss + cfg.decay_to_init * reg).backward()
        opt.step()
        if step % cfg.val_every == 0 or step == cfg.steps:
            history.append({"step": step, "loss": loss.item(), **evaluate(module, val, bank, seen, cfg.everyday_exclude)})
    return history


def prepare(cfg: CachedTrainConfig):
    """Caches, the module, its initial state and the text bank (its text tower) for a config."""
    from engine.towers.minilm import MiniLMTextTower

    torch.set_num_threads(cfg.threads)
    train, val = load_splits(cfg)
    bank = TextBank(MiniLMTextTower(), Path(cfg.cache_dir) / "text_minilm.npz")
    module = build_module(cfg, class_prior(train.cache), bank)
    labels = sorted(set(val.labels))
    bank.add(module.query_texts([c for it in train.items for c in it.captions] + train.labels + labels
                                + [PROMPT.format(label=x) for x in labels]))
    init_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    return train, val, module, bank, init_state


def run(cfg: CachedTrainConfig, out: str | Path | None = None) -> dict[str, Any]:
    """Train ``cfg.seeds`` on validation, then the final ``cfg.seed`` run, saved to ``out``.

    With ``final_with_val`` the final run trains on the validation clips too (as training views,
    class prior included): the seeds judge the recipe on sources never trained on, and the saved
    model has heard every source. Its figures on the validation split are then fit, and the model
    records the same seed's held-out figures instead (``validation_without_them``); that held-out
    model is saved too, in ``out/held-out``, for benchmarks on the validation split.
    """
    output_folder(out or cfg.out)     # before minutes of training, not after
    t0 = time.perf_counter()
    train, val, module, bank, init_state = prepare(cfg)
    t_cache = time.perf_counter() - t0
    seen = set(train.labels)
    baseline = evaluate(module, val, bank, seen, cfg.everyday_exclude)
    log.info("start (%s space, untrained): %s", cfg.space, _fmt(baseline))
    # in the MiniLM space the YAMNet variants start as the baseline itself (extra branches at zero)
    same_start = cfg.space == "minilm" and cfg.variant in ("baseline", "yamnet-class", "yamnet")
    tag_text = baseline if same_start else tag_text_baseline(val, bank, seen, cfg.everyday_exclude)
    log.info("tag-text baseline: %s", _fmt(tag_text))
    out = Path(out or cfg.out)
    trained: dict[str, Any] = {"variant": cfg.variant, "steps": cfg.steps, "seed": cfg.seed,
                               "data": trained_data(cfg, with_val=False)}
    runs = {}
    for seed in cfg.seeds:
        runs[seed] = train_run(module, cfg, train, val, bank, seed, init_state, seen)
        log.info("seed %d: %s", seed, _fmt(runs[seed][-1]))
        if cfg.final_with_val and seed == cfg.seed:     # the saved model's recipe, held out: for benchmarks
            _save(module, out / HELD_OUT, {**trained, "validation": _rounded(runs[seed][-1])})
    held_out = runs[cfg.seed][-1] if cfg.seed in runs else None
    if cfg.final_with_val:      # the recipe is judged above; the shipped model hears every source
        train = validation_as_training(cfg, train, val)
        seen = set(train.labels)
        init_module(module, cfg, class_prior(train.cache), bank)     # as a new module would start
        init_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        bank.add(module.query_texts([c for it in val.items for c in it.captions]))
        log.info("final run: %d training clips, the validation clips among them", len(train.items))
    t1 = time.perf_counter()
    history = train_run(module, cfg, train, val, bank, cfg.seed, init_state, seen)
    t_train = time.perf_counter() - t1
    final = history[-1]
    if not cfg.final_with_val:
        trained["validation"] = _rounded(final)
    else:       # its own figures on the validation clips are fit, not validation
        trained["validation_clips_trained_on"] = True
        trained["data"] = trained_data(cfg, with_val=True)
        if held_out is not None:
            trained["validation_without_them"] = _rounded(held_out)
    _save(module, out, trained)
    report = {"config": asdict(cfg), "baseline": tag_text, "start": baseline, "seeds": {str(s): h[-1] for s, h in runs.items()},
              "final": final, "final_trained_on_validation": cfg.final_with_val, "history": history,
              "seconds": {"caches": t_cache, "final_training": t_train, "total": time.perf_counter() - t0}}
    (out / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("final (seed %d): %s → %s (%.0f s)", cfg.seed, _fmt(final), out, time.perf_counter() - t0)
    return report


def note_if_trained_on_validation(model, folder: str | Path) -> bool:
    """For benchmarks on the validation split: say on stderr when ``model`` trained on its clips."""
    import sys

    if not ((model.config.extra or {}).get("trained") or {}).get("validation_clips_trained_on"):
        return False
    print(f"note: {folder} was trained on the validation clips too (final_with_val), so its figures on "
          f"the validation split are fit, not validation; the held-out model of its recipe is in "
          f"the training run's {HELD_OUT}/ folder", file=sys.stderr)
    return True


def trained_data(cfg: CachedTrainConfig, with_val: bool) -> list[dict[str, Any]]:
    """The record of the manifests a run trains on (:func:`trainer.trained_on.data_record`, as
    ``soundsift train``'s loop keeps it): the training manifest, and the validation manifest too
    for the final run of ``final_with_val``; ``soundsift eval`` on either then says its figures are fit."""
    from trainer.config import DatasetSpec
    from trainer.trained_on import data_record
    paths = [cfg.train_manifest] + ([cfg.val_manifest] if with_val else [])
    return data_record([DatasetSpec("manifest", path) for path in paths])


def _save(module, folder: Path, trained: dict[str, Any]) -> None:
    from trainer.loop import save_model
    module.config.extra = {"trained": trained}
    save_model(module, folder)          # its weights as readable as its config.json


def _rounded(m: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in m.items() if k != "step"}


def _fmt(m: dict[str, float]) -> str:
    keys = ("zs_top1", "zs_top5", "t2a_R@1", "t2a_R@5", "a2t_R@1", "zs_top1_seen", "zs_top1_unseen")
    keys += tuple(f"{k}_everyday" for k in keys[:5])
    return " ".join(f"{k} {m[k]:.3f}" for k in keys if k in m)


def main(argv: Sequence[str] | None = None) -> None:
    import argparse

    p = argparse.ArgumentParser(description="train soundsift-base's projections on cached frozen features")
    p.add_argument("config")
    p.add_argument("--out", default=None, help="model folder (default: the config's 'out')")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the config's 'steps')")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = CachedTrainConfig.from_file(args.config)
    if args.steps is not None:
        if args.steps < 1:
            p.error(f"--steps {args.steps}: must be at least 1")
        cfg.steps = args.steps
    report = run(cfg, args.out)
    print(json.dumps({"baseline": report["baseline"], "start": report["start"], "final": report["final"]}, indent=2))


if __name__ == "__main__":
    main()
