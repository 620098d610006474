"""``soundsift train CONFIG``: config → model → datasets → :func:`trainer.loop.fit` → a model folder.

The model is soundsift's own CLAP (:mod:`engine.models.soundsift_clap`): either fine-tuned
from a folder/bundled name (``model.init``, e.g. ``soundsift-base``) or built fresh from
``model.config`` and initialised to the training-free tag–text baseline.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from engine.errors import InvalidConfig, InvalidDataset, ModelUnavailable
from engine.outputs import make_folder, output_folder
from trainer.config import DatasetSpec, TrainConfig, load_config
from trainer.datasets import (AudioTextDataset, Item, audio_key, check_batch_size, drop_missing, merge_repeated,
                              paths_hint, read_items, say_short_clips)
from trainer.distributed import barrier, torchrun_process_group
from trainer.loop import TrainResult, finished_run, fit, pick_device, refuse_earlier_run

log = logging.getLogger(__name__)


def _model_folder(init: str) -> Path:
    from engine.models.factory import BUNDLED
    folder = BUNDLED.get(init) or Path(init).expanduser()
    if not (folder / "config.json").is_file():
        where = "" if folder.is_absolute() else f" (looked for beside the config file, then in {Path.cwd()})"
        raise InvalidConfig(f"model.init {init!r}: no model folder with config.json there{where}; "
                            "use 'soundsift-base', a soundsift-clap folder, or leave it empty for a fresh model")
    return folder


def build_model(cfg: TrainConfig):
    """The trainable :class:`~engine.models.soundsift_clap.SoundsiftClap` the config asks for."""
    from engine.models.soundsift_clap import SoundsiftClap, SoundsiftClapConfig
    spec = cfg.model
    if spec.init:
        folder, data = _init_folder(spec)
        if spec.train_text_tower is None or spec.train_text_tower == data.get("text_trainable", False):
            return SoundsiftClap.from_pretrained(folder)
        from safetensors.torch import load_file
        config = SoundsiftClapConfig.from_dict({**data, "text_trainable": spec.train_text_tower})
        model = SoundsiftClap(config)
        model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=False)
        return model
    config = _fresh_config(spec)
    if spec.train_text_tower is not None:
        config.text_trainable = spec.train_text_tower
    return SoundsiftClap(config).init_baseline()


def check_model_spec(cfg: TrainConfig) -> None:
    """InvalidConfig for a model the config cannot build (a folder that is not a trainable model,
    a typo in model.config), said before any data is made or read."""
    if cfg.model.init:
        _init_folder(cfg.model)
    else:
        _fresh_config(cfg.model)


def _init_folder(spec: Any) -> tuple[Path, dict[str, Any]]:
    """The model folder ``model.init`` names and its config, checked: one the trainer trains."""
    from engine.models.soundsift_clap import MODEL_TYPE
    folder = _model_folder(spec.init)
    data = json.loads((folder / "config.json").read_text())
    if data.get("model_type") != MODEL_TYPE:
        raise InvalidConfig(f"{folder}: model_type {data.get('model_type')!r} cannot be trained here; "
                            f"the trainer trains {MODEL_TYPE!r} models (soundsift-base or its descendants)")
    if spec.config:
        raise InvalidConfig("give either model.init (fine-tune a folder) or model.config (a fresh model), not both")
    return folder, data


def _fresh_config(spec: Any) -> Any:
    """``model.config`` as a SoundsiftClapConfig; InvalidConfig naming a bad key or value."""
    from engine.models.soundsift_clap import SoundsiftClapConfig
    try:
        config = SoundsiftClapConfig.from_dict(dict(spec.config))
        config.check()          # a value the model would refuse when built: said as the config's
    except (ModelUnavailable, TypeError) as e:
        raise InvalidConfig(f"model.config: {e}") from e
    return config


def load_items(specs: list[DatasetSpec], check_files: bool, what: str = "training") -> list[Item]:
    """The items of ``specs``, one per audio file (:func:`merge_repeated`), unreadable files
    left out when ``check_files`` (validation audio inside tar shards too, which is decoded whole
    at every validation anyway); ``what`` names the data in messages."""
    items: list[Item] = []
    for spec in specs:
        found = read_items(spec.format, spec.path, audio_dir=spec.audio_dir)
        log.info("%s %s: %d items", spec.format, spec.path, len(found))
        items += found
    items = merge_repeated(items)
    hint = "; ".join(dict.fromkeys(paths_hint(s.format, s.path, s.audio_dir) for s in specs))
    return (drop_missing(items, what, open_members=what == "validation", hint=hint) if check_files and items
            else items)


def warn_trivial_validation(val_items: list[Item]) -> None:
    """Say when every model would score 1.0 on the validation set (one clip, or clips that all
    share their first caption, as ``soundsift eval`` refuses such sets): its figures say nothing."""
    from trainer.evaluation.metrics import caption_key
    if not val_items:
        return
    if len(val_items) == 1:
        why = f"it holds one clip ({val_items[0].audio})"
    elif len({caption_key(it.caption(None)) for it in val_items}) == 1:
        why = f"its {len(val_items)} clips share one caption ({val_items[0].caption(None)!r})"
    else:
        return
    log.warning("the validation set's figures will say nothing: %s, so every model retrieves it perfectly; "
                "give data.val more clips with other captions", why)


def warn_overlap(train_items: list[Item], val_items: list[Item]) -> None:
    """Say when validation files are training files too: their figures would flatter the model."""
    train = {audio_key(it) for it in train_items}
    shared = [str(it.audio) for it in val_items if audio_key(it) in train]
    if shared:
        log.warning("%d of %d validation files are in the training data too (e.g. %s); the validation "
                    "figures will flatter the model", len(shared), len(val_items), shared[0])


def add_seq2seq_captions(items: list[Item], folder: str, prompt: str) -> None:
    """Give every tag-only item one caption written by a local seq2seq model."""
    from trainer.captions import Seq2SeqCaptioner
    todo = [it for it in items if it.tags and not it.captions]
    if not todo:
        return
    captioner = Seq2SeqCaptioner(folder, prompt=prompt)
    for start in range(0, len(todo), 32):
        chunk = todo[start:start + 32]
        for item, caption in zip(chunk, captioner([it.tags for it in chunk])):
            if caption:
                item.captions.append(caption)
    log.info("seq2seq captions for %d tag-only items", len(todo))


def prepare_data(cfg: TrainConfig, out_dir: Path) -> None:
    """Generate the toy set into ``out_dir/toy-data`` and add it to the config's datasets; one
    written there before is reused only when it was made with the same ``data.toy`` settings by
    the same generator (``toy-data/settings.json``, :data:`trainer.toy_data.GENERATOR_VERSION`),
    else written again."""
    if cfg.data.toy is None:
        return
    import json

    from trainer.toy_data import GENERATOR_VERSION, write_toy_set
    t = cfg.data.toy
    folder = out_dir / "toy-data"
    train, val, stamp = folder / "train.jsonl", folder / "val.jsonl", folder / "settings.json"
    settings = {"per_class": t.per_class, "val_per_class": t.val_per_class, "seconds": t.seconds,
                "sample_rate": t.sample_rate, "seed": t.seed}
    stamped = {**settings, "generator": GENERATOR_VERSION}      # an older generator's clips differ
    made_so = stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == stamped
    if not (train.is_file() and val.is_file() and made_so):
        train, val = write_toy_set(folder, **settings)
        stamp.write_text(json.dumps(stamped), encoding="utf-8")
    cfg.data.train = cfg.data.train + [DatasetSpec("manifest", str(train))]
    cfg.data.val = cfg.data.val + [DatasetSpec("manifest", str(val))]
    cfg.data.toy = None


def run_training(config: TrainConfig | str | Path, *, resume: bool = False, out_dir: str | Path | None = None,
                 max_steps: int | None = None, model: Any = None, source: str | Path | None = None) -> TrainResult:
    """Train as ``config`` says; returns the run's :class:`~trainer.loop.TrainResult`.

    ``out_dir`` overrides the config's; ``model`` (a trainable module) replaces
    :func:`build_model`, for tests and custom towers; ``source`` is the config file a loaded
    ``config`` came from, named in messages about its values. A run that fails before it kept
    anything (a log, a checkpoint, a model) leaves the output folder as it found it. Launched by
    ``torchrun`` with several processes, each joins the process group for the run
    (:mod:`trainer.distributed`) and trains on its share of every global batch; rank 0 writes the
    data, logs and model.
    """
    if not isinstance(config, TrainConfig):
        source = config if source is None else source
    cfg = config if isinstance(config, TrainConfig) else load_config(config)
    out_dir = Path(out_dir).expanduser() if out_dir is not None else None    # a quoted "~/runs/x"
    pick_device(cfg.device)                                  # a device this machine lacks: say so now
    output_folder(out_dir or cfg.out_dir)
    refuse_earlier_run(out_dir or cfg.out_dir, resume)      # before the data is made, not after
    done = finished_run(out_dir or cfg.out_dir, cfg.steps) if resume else None
    if done is not None:                                     # nothing to train: its data is not read again
        return done
    check_model_spec(cfg)
    with torchrun_process_group(cfg.device) as (rank, world):
        with _undone_on_failure(Path(out_dir or cfg.out_dir), enabled=rank == 0):
            return _run_training(cfg, rank, world, resume=resume, out_dir=out_dir, max_steps=max_steps,
                                 model=model, source=source)


# what a run writes before it trains: removed again when it fails before keeping anything else
SETUP_FILES = frozenset({"train_config.json", "toy-data"})


@contextmanager
def _undone_on_failure(out: Path, enabled: bool = True) -> Iterator[None]:
    """On an exception, undo what the run made in ``out`` when it kept nothing but its setup
    (:data:`SETUP_FILES`): the entries that were not there before, and ``out`` itself when the run
    made it. A run that wrote a log, checkpoint or model keeps everything."""
    before = set(os.listdir(out)) if enabled and out.is_dir() else None
    existed = out.is_dir()
    try:
        yield
    except BaseException:
        if enabled and out.is_dir():
            try:
                _undo_setup(out, before or set(), existed)
            except OSError as e:           # the run's own error is the one to report
                log.warning("%s: could not remove what the failed run made there (%s)", out, e)
        raise


def _undo_setup(out: Path, before: set[str], existed: bool) -> None:
    """Remove the entries of ``out`` not in ``before`` when all are setup files; then ``out``
    when it is empty and did not exist before."""
    new = set(os.listdir(out)) - before
    if not new <= SETUP_FILES:
        return
    for name in new:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    if not existed and not any(out.iterdir()):
        out.rmdir()
    if new or not existed:
        log.info("%s: the run failed before training; removed what it had made there", out)


def _check_batch_size(n_items: int, cfg: TrainConfig, world: int, source: str | Path | None) -> None:
    """:func:`~trainer.datasets.check_batch_size`, its message naming the config file ``source``."""
    try:
        check_batch_size(n_items, cfg.batch_size, world)
    except InvalidDataset as e:
        if source is None:
            raise
        raise InvalidDataset(f"{source}: {e}") from e


def _run_training(cfg: TrainConfig, rank: int, world: int, *, resume: bool, out_dir: str | Path | None,
                  max_steps: int | None, model: Any, source: str | Path | None) -> TrainResult:
    out = make_folder(out_dir or cfg.out_dir)
    cfg.out_dir = str(out)
    if rank == 0:   # the toy set is written once; the other ranks read it after the barrier
        prepare_data(cfg, out)
    barrier()
    if rank != 0:
        prepare_data(cfg, out)
    train_items = load_items(cfg.data.train, cfg.data.check_files)
    val_items = load_items(cfg.data.val, cfg.data.check_files, "validation") if cfg.data.val else []
    warn_overlap(train_items, val_items)
    warn_trivial_validation(val_items)
    if cfg.captions.seq2seq_model:
        add_seq2seq_captions(train_items, cfg.captions.seq2seq_model, cfg.captions.prompt)
    if model is None:
        model = build_model(cfg)
    sample_rate = int(model.sample_rate)
    clip = cfg.data.clip_seconds or float(getattr(model, "window_seconds", None) or model.config.window_seconds)
    say_short_clips(train_items, clip)
    say_short_clips(val_items, clip, "validation")
    train_set = AudioTextDataset(train_items, sample_rate, clip, train=True, augment=cfg.data.augment,
                                 seed=cfg.seed)
    val_set = AudioTextDataset(val_items, sample_rate, clip, train=False) if val_items else None
    _check_batch_size(len(train_set), cfg, world, source)      # before train_config.json is written
    if rank == 0:
        (out / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
    log.info("training on %d items (%d validation), %d steps of %d×%d, crops of %.2f s at %d Hz → %s",
             len(train_items), len(val_items), cfg.steps, cfg.batch_size, cfg.accum_steps, clip, sample_rate, out)
    return fit(model, train_set, cfg, val_set=val_set, out_dir=out, resume=resume, max_steps=max_steps)
