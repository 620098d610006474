"""A training run as data: a JSON or TOML file parsed into :class:`TrainConfig`.

Every field has a default, unknown keys are errors (a typo must not silently fall back to
a default), and data paths are resolved against the config file's folder, so a config
and its manifests travel together. ``out_dir`` is resolved against the current folder.

Minimal JSON::

    {"model": {"init": "soundsift-base"},
     "data": {"train": [{"format": "manifest", "path": "my_sounds.csv"}]},
     "steps": 500, "out_dir": "runs/mine"}

The optional top-level ``"trainer"`` key says which trainer a config is for (:func:`trainer_of`):
``"loop"`` (the default, this module's :class:`TrainConfig`) or ``"cached-features"``
(:class:`trainer.cached_train.CachedTrainConfig`); ``soundsift train CONFIG`` runs either.
"""
from __future__ import annotations

import dataclasses
import json
import re
import sys
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Mapping, Sequence

from engine.errors import InvalidConfig
from engine.zeroshot import DEFAULT_TEMPLATE
from trainer.augment import AugmentConfig

#: values of a config's ``"trainer"`` key (none: ``"loop"``)
TRAINERS = ("loop", "cached-features")


@dataclass
class DatasetSpec:
    """One data source: ``format`` is manifest | folders | clotho | webdataset."""

    format: str = "manifest"
    path: str | list[str] = ""
    audio_dir: str | None = None      # clotho: folder of the audio files


@dataclass
class ToyDataConfig:
    """Generate the toy set (trainer.toy_data) into ``<out_dir>/toy-data`` before training."""

    per_class: int = 8
    val_per_class: int = 2
    seconds: float = 1.0
    sample_rate: int = 16000
    seed: int = 0


@dataclass
class DataConfig:
    train: list[DatasetSpec] = field(default_factory=list)
    val: list[DatasetSpec] = field(default_factory=list)
    toy: ToyDataConfig | None = None
    clip_seconds: float | None = None   # crop length; default: the model's window
    num_workers: int = 0
    check_files: bool = True            # probe every file first and leave out unreadable ones
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class ModelSpec:
    """Where the weights start: ``init`` (a model name or folder load_model reads, e.g.
    ``soundsift-base`` to fine-tune) or, when empty, a fresh soundsift-clap built from
    ``config`` (keys of its config.json)."""

    init: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    train_text_tower: bool | None = None   # None: keep the model's own setting


@dataclass
class OptimConfig:
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    warmup_steps: int = 10
    min_lr_ratio: float = 0.0           # cosine decays to lr * min_lr_ratio
    grad_clip: float | None = 1.0


@dataclass
class CaptionConfig:
    seq2seq_model: str | None = None    # local transformers folder for keyword-to-caption
    prompt: str = "keywords: {tags}"


@dataclass
class TrainConfig:
    trainer: str = "loop"               # the discriminator (see trainer_of); always "loop" here
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    captions: CaptionConfig = field(default_factory=CaptionConfig)
    out_dir: str = "runs/train"
    seed: int = 0
    steps: int = 100                    # optimizer steps
    batch_size: int = 16                # per micro-batch (per rank)
    accum_steps: int = 1                # micro-batches per optimizer step
    amp: bool = True                    # mixed precision on CUDA (ignored on CPU)
    device: str = "auto"                # auto | cpu | cuda | cuda:N
    checkpoint_every: int = 0           # steps; 0: only at the end
    keep_checkpoints: int = 2
    val_every: int = 0                  # steps; 0: only at the end
    validate_at_start: bool | None = None   # also at step 0, before the first update; None: for a fine-tune (model.init)
    val_batch_size: int = 32
    log_every: int = 1
    zeroshot_prompt: str = DEFAULT_TEMPLATE
    progress: bool | None = None        # the progress bar on stderr; None: when stderr is a terminal

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validates_at_start(self) -> bool:
        """``validate_at_start`` when the config sets it, else whether the run fine-tunes a model
        (``model.init``): its log then holds the start's figures at step 0 beside its own."""
        return self.validate_at_start if self.validate_at_start is not None else bool(self.model.init)

    def shows_progress(self) -> bool:
        """``progress`` when the config or ``--progress/--no-progress`` set it, else the bar only
        when stderr is a terminal (a log file would fill with its redraws), as every command's bars,
        or in a Jupyter kernel (whose stderr is no terminal, and where tqdm.auto draws a widget)."""
        if self.progress is not None:
            return self.progress
        return sys.stderr.isatty() or "ipykernel" in sys.modules


def _build(cls: type, data: Any, where: str) -> Any:
    """Instantiate dataclass ``cls`` from ``data`` recursively, rejecting unknown keys."""
    if dataclasses.is_dataclass(cls):
        if not isinstance(data, dict):
            raise InvalidConfig(f"{where}: expected a table/object, got {type(data).__name__}")
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            sections = {k: {f.name for f in dataclasses.fields(hints[k])} for k in names
                        if dataclasses.is_dataclass(hints[k])}
            raise InvalidConfig(f"{where}: unknown key(s) {', '.join(with_guesses(unknown, names, sections))}; "
                                f"known: {', '.join(sorted(names))}")
        return cls(**{k: _build(hints[k], v, f"{where}.{k}") for k, v in data.items()})
    origin = typing.get_origin(cls)
    args = typing.get_args(cls)
    if origin is list and args:
        if not isinstance(data, list):
            raise InvalidConfig(f"{where}: expected a list")
        return [_build(args[0], v, f"{where}[{i}]") for i, v in enumerate(data)]
    if origin is tuple and args:
        if not isinstance(data, (list, tuple)) or len(data) != len(args):
            raise InvalidConfig(f"{where}: expected a list of {len(args)} values")
        return tuple(_build(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, data)))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if data is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _build(a, data, where)
            except InvalidConfig as e:
                errors.append(str(e))
        raise InvalidConfig(errors[0] if errors else f"{where}: invalid value {data!r}")
    if cls is float and isinstance(data, (int, float)) and not isinstance(data, bool):
        return float(data)
    if cls is Any or (origin is dict):
        return data
    if isinstance(cls, type) and not isinstance(data, cls) or (cls is int and isinstance(data, bool)):
        raise InvalidConfig(f"{where}: expected {getattr(cls, '__name__', cls)}, got {data!r}")
    return data


#: keys other trainers (Hugging Face's Trainer, open_clip) name otherwise → this config's
_OTHER_NAMES = {"learning_rate": "lr", "output_dir": "out_dir", "max_steps": "steps", "num_steps": "steps",
                "train_batch_size": "batch_size", "per_device_train_batch_size": "batch_size",
                "gradient_accumulation_steps": "accum_steps", "warmup": "warmup_steps", "wd": "weight_decay"}


def with_guesses(unknown: Sequence[str], names: Collection[str],
                 sections: Mapping[str, Collection[str]] | None = None) -> list[str]:
    """Each unknown key, with the known one it stands for when it looks like a typo of it or is
    another trainer's name for it ("batchsize (did you mean batch_size?)"), or when it is a key
    of one of ``sections`` (a table of this level: its name → its keys) written at this level
    ("learning_rate (did you mean optim.lr?)", "clip_seconds (did you mean data.clip_seconds?)");
    the list of every known key that follows does not say which was meant."""
    import difflib
    out = []
    for key in unknown:
        other = _OTHER_NAMES.get(str(key).lower())
        in_section = [f"{section}.{name}" for section, keys in (sections or {}).items()
                      for name in (str(key), other) if name in keys]
        close = ([other] if other in names else in_section[:1] or
                 difflib.get_close_matches(str(key).lower(), sorted(names), n=1, cutoff=0.75))
        out.append(f"{key} (did you mean {close[0]}?)" if close else str(key))
    return out


def _resolve(path: str, base: Path) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else base / p)


def _model_folder_path(value: str, base: Path) -> str:
    """``model.init``: a relative folder beside the config file when it is there, else as given,
    from the current folder (where an earlier run's ``out_dir`` put its model); a bundled name
    as it is. "./runs/mine/model" and "runs/mine/model" are one folder: the first was looked for
    beside the config only, and a model the current folder held was "no model folder"."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    beside = base / path
    return str(beside) if beside.is_dir() else value


def config_from_dict(data: dict[str, Any], base_dir: str | Path = ".") -> TrainConfig:
    """A :class:`TrainConfig` from a plain dict; data paths resolved against ``base_dir``."""
    cfg: TrainConfig = _build(TrainConfig, data, "config")
    base = Path(base_dir)
    cfg.out_dir = str(Path(cfg.out_dir).expanduser())     # "~/runs/mine": not a folder named "~"
    for spec in cfg.data.train + cfg.data.val:
        if not spec.path:
            raise InvalidConfig(f"config.data: a {spec.format} dataset has no 'path'")
        spec.path = ([_resolve(p, base) for p in spec.path] if isinstance(spec.path, list)
                     else _resolve(spec.path, base))
        if spec.audio_dir:
            spec.audio_dir = _resolve(spec.audio_dir, base)
    if cfg.model.init:
        cfg.model.init = _model_folder_path(cfg.model.init, base)
    if cfg.captions.seq2seq_model:
        cfg.captions.seq2seq_model = _resolve(cfg.captions.seq2seq_model, base)
    _check(cfg)
    return cfg


def _check(cfg: TrainConfig) -> None:
    if cfg.trainer != "loop":
        raise InvalidConfig(f"config.trainer is {cfg.trainer!r}; a {cfg.trainer!r} config is run by "
                            "`soundsift train CONFIG`, not loaded as a loop config")
    if cfg.steps < 1:
        raise InvalidConfig("config.steps must be at least 1")
    if cfg.batch_size < 2:
        raise InvalidConfig("config.batch_size must be at least 2 (a contrastive loss needs negatives)")
    if cfg.accum_steps < 1:
        raise InvalidConfig("config.accum_steps must be at least 1")
    if not cfg.data.train and cfg.data.toy is None:
        raise InvalidConfig("config.data.train is empty; list at least one dataset (or set data.toy)")
    if cfg.optim.lr <= 0:
        raise InvalidConfig("config.optim.lr must be positive")
    _check_counts(cfg)
    _check_formats(cfg)
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", cfg.device):
        raise InvalidConfig(f"config.device {cfg.device!r}: use auto, cpu, cuda or cuda:N (or mps)")
    if "{label}" not in cfg.zeroshot_prompt:      # checked here so training never fails at its first validation
        raise InvalidConfig(f"config.zeroshot_prompt {cfg.zeroshot_prompt!r} has no {{label}} placeholder; "
                            'use e.g. "This is a sound of {label}."')


def _check_counts(cfg: TrainConfig) -> None:
    """Sizes and intervals a run could otherwise meet only late (a val_batch_size of 0 fails at
    the first validation, after the steps; a clip_seconds of -1 trains on one-sample crops)."""
    at_least = {"val_batch_size": (cfg.val_batch_size, 1), "checkpoint_every": (cfg.checkpoint_every, 0),
                "keep_checkpoints": (cfg.keep_checkpoints, 0), "val_every": (cfg.val_every, 0),
                "log_every": (cfg.log_every, 0), "data.num_workers": (cfg.data.num_workers, 0),
                "optim.warmup_steps": (cfg.optim.warmup_steps, 0)}
    for key, (value, least) in at_least.items():
        if value < least:
            raise InvalidConfig(f"config.{key} is {value}; it must be at least {least}")
    if cfg.data.clip_seconds is not None and cfg.data.clip_seconds <= 0:
        raise InvalidConfig(f"config.data.clip_seconds is {cfg.data.clip_seconds}; give a positive length "
                            "in seconds, or leave it out for the model's window")


def _check_formats(cfg: TrainConfig) -> None:
    """A dataset format that is not one of trainer.datasets.FORMATS, named where it is."""
    from trainer.datasets import FORMATS
    for split in ("train", "val"):
        for i, spec in enumerate(getattr(cfg.data, split)):
            if spec.format not in FORMATS:
                raise InvalidConfig(f"config.data.{split}[{i}].format {spec.format!r}: use one of "
                                    f"{', '.join(FORMATS)}")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The top-level table of a ``.json`` or ``.toml`` config file, not yet checked."""
    path = Path(path)
    if path.is_dir():
        raise InvalidConfig(f"{path}: is a folder; give the training config file (.json or .toml) in it, "
                            "e.g. trainer/configs/toy.json")
    if not path.is_file():
        raise InvalidConfig(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidConfig(f"{path}: cannot read the config ({e})") from e
    kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"    # any other name is read as JSON
    try:
        data = tomllib.loads(text) if kind == "TOML" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise InvalidConfig(f"{path}: not a valid {kind} config ({e})") from e
    if not isinstance(data, dict):
        raise InvalidConfig(f"{path}: the top level must be an object/table")
    return data


def trainer_of(path: str | Path) -> str:
    """Which trainer a config file is for: its ``"trainer"`` key, or ``"loop"`` without one.

    ``"cached-features"`` configs are :class:`trainer.cached_train.CachedTrainConfig`; the
    others are :class:`TrainConfig` for :func:`trainer.train.run_training`.
    """
    data = read_config_file(path)
    kind = data.get("trainer", "loop")
    if kind not in TRAINERS:
        raise InvalidConfig(f"{path}: trainer {kind!r} is not one of {', '.join(map(repr, TRAINERS))}; "
                            "leave 'trainer' out for the default loop")
    return kind


def load_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read a ``.json`` or ``.toml`` training config; ``overrides`` replace top-level keys."""
    path = Path(path)
    data = read_config_file(path)
    if data.get("trainer", "loop") != "loop":
        raise InvalidConfig(f"{path}: a {data['trainer']!r} config, not a loop config; "
                            f"run it with: soundsift train {path}")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return config_from_dict(data, path.parent)
    except InvalidConfig as e:          # "config.steps: …" alone does not say which file is wrong
        raise InvalidConfig(f"{path}: {e}") from e
