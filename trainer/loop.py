"""The training loop: AdamW, warmup + cosine, clipping, AMP, accumulation, checkpoints, validation.

It trains any ``torch.nn.Module`` that follows :class:`TrainableModel`:

* ``encode_audio(audio: Tensor (B, T)) -> Tensor (B, D)`` and
  ``encode_text(texts: list[str]) -> Tensor (B, D)``, both L2-normalised;
* ``logit_scale``: a scalar parameter in log space (clamped to [0, ln 100]);
* ``save_pretrained(folder)``: writes config.json + model.safetensors that
  :func:`engine.models.load_model` reads.

On disk, under ``out_dir``::

    log.jsonl                       one JSON object per logged step / validation
    checkpoints/step-0000100/       a loadable model folder + trainer_state.pt
    model/                          the final model (config.json + model.safetensors)
    summary.json                    steps, time, last loss, last validation

``resume=True`` continues from the newest checkpoint: weights, optimizer, scheduler,
AMP scaler, RNG states and the data position are restored, so the next step's loss is
the one the uninterrupted run would have had. A resume with another batch size, seed, step
count or training set continues with a warning (not exactly); one with another model config,
or from a checkpoint that cannot be read, is one message naming the checkpoint. A resume of a
run that has reached its steps (:func:`finished_run`) trains and writes nothing.

Ctrl-C (one process) finishes the step under way, checkpoints it and returns with
``interrupted`` set; a second Ctrl-C stops at once. Under torchrun, SIGINT or SIGTERM to any
rank (torchrun forwards the one it gets) stops every rank after the same step, checkpointed by
rank 0. A checkpoint is written beside its final name, flushed and renamed, so a full disk or a
crash never leaves one that --resume takes. A checkpoint due at a step is written before that
step's validation, and a validation that fails is said and logged, not the end of the run: the
result's ``validation_error`` names the cause when the final validation failed. A fine-tune
(``model.init``; config ``validate_at_start``) is also validated at step 0, before its first
update, and not again by a --resume.
"""
from __future__ import annotations

import json
import logging
import math
import os
import pickle
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np
import torch
from torch import nn

from engine.durable import fsync_file
from engine.errors import InvalidConfig, UnreadableAudio
from engine.models.soundsift_clap import readable_as_config
from engine.zeroshot import DEFAULT_TEMPLATE, class_prompts
from trainer.config import TrainConfig
from trainer.datasets import AudioTextDataset, EpochBatchSampler, check_batch_size, collate
from trainer.distributed import local_device_index, rank_and_world
from trainer.loss import MAX_LOG_SCALE, ContrastiveLoss
from trainer.trained_on import data_record, training_record

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.pt"
TRAINABLE_FILE = "trainable.safetensors"


class TrainableModel(Protocol):
    logit_scale: torch.Tensor

    def encode_audio(self, audio: torch.Tensor) -> torch.Tensor: ...
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor: ...
    def save_pretrained(self, folder: str | Path) -> None: ...


@dataclass
class TrainResult:
    """What a finished run produced."""

    out_dir: Path
    model_dir: Path
    steps: int
    seconds: float
    losses: list[float] = field(default_factory=list)      # per optimizer step of this process
    validation: dict[str, Any] | None = None
    interrupted: bool = False                               # stopped by Ctrl-C (checkpointed at ``steps``)
    validation_error: str | None = None                     # why the final validation failed (the model is complete)
    validated_at: int | None = None                         # the step ``validation`` was measured at
    resumed_at: int = 0                                     # the checkpoint's step this run began at


# --------------------------------------------------------------------------- schedule

def lr_factor(step: int, warmup: int, total: int, min_ratio: float = 0.0) -> float:
    """Linear warmup over ``warmup`` steps, then cosine from 1 to ``min_ratio`` at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters; biases, norms, gains and the logit scale get no weight decay."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim < 2 or "logit_scale" in name or "norm" in name.lower() or name.endswith(".bias"):
            no_decay.append(p)
        else:
            decay.append(p)
    if not decay and not no_decay:
        raise InvalidConfig("the model has no trainable parameters; unfreeze a tower or its projections")
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def pick_device(name: str) -> torch.device:
    """The config's device: ``auto`` is CUDA when there is a GPU, else the CPU. A CUDA or MPS
    device this machine does not have is an :class:`InvalidConfig`, before anything runs."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise InvalidConfig(f"device {name!r}: not a device; use auto, cpu, cuda or cuda:N") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidConfig(f"device {name!r}: no CUDA GPU is usable here (torch {torch.__version__}); "
                            "use --device cpu or auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InvalidConfig(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InvalidConfig(f"device {name!r}: MPS is not available here; use --device cpu or auto")
    return device


# --------------------------------------------------------------------------- checkpoints

def checkpoint_dirs(out_dir: str | Path) -> list[Path]:
    """Complete checkpoints under ``out_dir``, oldest first."""
    root = Path(out_dir) / "checkpoints"
    return sorted(p for p in root.glob("step-*") if (p / STATE_FILE).is_file()) if root.is_dir() else []


def refuse_earlier_run(out_dir: str | Path, resume: bool) -> None:
    """InvalidConfig when a run that does not ``resume`` would write into the checkpoints of an
    earlier one (they would mix, pruning could keep the old ones, and a later --resume could
    continue the wrong run), or would replace a ``model`` folder there at its end (an earlier
    run's model, or a folder of the user's in the --out they named)."""
    earlier = latest_checkpoint(out_dir)
    if earlier is not None and not resume:
        raise InvalidConfig(f"{out_dir} holds the checkpoints of an earlier run (newest: {earlier.name}); "
                            "--resume continues it; to start again give another --out, or remove "
                            f"{Path(out_dir) / 'checkpoints'}")
    model = Path(out_dir) / "model"
    if model.exists() and not resume:       # the finished run would replace it, whatever it holds
        raise InvalidConfig(f"{out_dir} holds a folder 'model' ({_what_model_holds(model)}), which this run "
                            f"would replace with its model; give another --out, or move {model} away")


def _what_model_holds(folder: Path) -> str:
    """A few words on an existing ``model`` folder, for the message refusing to replace it."""
    if (folder / "config.json").is_file():
        return "an earlier run's model"
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    return f"{len(names)} {'entry' if len(names) == 1 else 'entries'}, e.g. {names[0]}" if names else "empty"


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    found = checkpoint_dirs(out_dir)
    return found[-1] if found else None


def _trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Everything that can change while training: trainable parameters and all buffers."""
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k not in frozen}


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    # plain types and tensors only, so the state loads with torch.load(weights_only=True)
    state = {"torch": torch.get_rng_state(),
             "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)),
                       "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(out_dir: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer,
                    scheduler: Any, scaler: Any, keep: int, world_size: int = 1,
                    run: dict[str, Any] | None = None) -> Path:
    """Write ``checkpoints/step-NNNNNNN`` (written beside, then renamed) and prune old ones;
    ``world_size`` (the processes training) and ``run`` (:func:`run_shape`) are kept, so a
    resume with another count or shape is told."""
    from safetensors.torch import save_file
    root = out_dir / "checkpoints"
    final = root / f"step-{step:07d}"
    tmp = root / f".tmp-step-{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        model.save_pretrained(tmp)
        save_file(_trainable_state(model), str(tmp / TRAINABLE_FILE))
        readable_as_config(tmp)
        torch.save({"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None, "rng": _rng_state(),
                    "world_size": world_size, "run": run or {}},
                   tmp / STATE_FILE)
        _sync_folder(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)   # a full disk must not also keep the half-written files
        raise
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    for old in checkpoint_dirs(out_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_model(model: Any, folder: str | Path) -> None:
    """``model.save_pretrained(folder)``, its weights then as readable as its config.json
    (:func:`readable_as_config`)."""
    model.save_pretrained(folder)
    readable_as_config(folder)


def _sync_folder(folder: Path) -> None:
    """Flush a folder's files to the disk, so that a checkpoint renamed complete is complete
    after a power cut too (the rename alone may reach the disk before the data)."""
    for path in folder.rglob("*"):
        if path.is_file():
            fsync_file(path)


def load_checkpoint(folder: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                    scaler: Any, world_size: int = 1, batch_size: int | None = None,
                    run: dict[str, Any] | None = None) -> int:
    """Restore a checkpoint into live objects; returns its step. A checkpoint written by another
    number of processes than ``world_size`` is restored with a warning: the global batch (and
    so the rest of the run) is not the one the original run would have had."""
    weights, state = _read_checkpoint(folder)
    _refuse_another_model_config(folder, model)
    current = _trainable_state(model)
    missing = set(current) - set(weights)
    if missing:
        raise InvalidConfig(f"{folder}: checkpoint lacks {len(missing)} trainable tensors "
                            f"(e.g. {sorted(missing)[0]}); was it made with another model config?")
    for name, tensor in current.items():
        if tuple(weights[name].shape) != tuple(tensor.shape):
            raise InvalidConfig(f"{folder}: checkpoint tensor {name} has shape {tuple(weights[name].shape)} "
                                f"and this config's model {tuple(tensor.shape)}: the checkpoint was made with "
                                "another model config; resume with that config, or give another --out")
    model.load_state_dict(weights, strict=False)
    try:
        optimizer.load_state_dict(state["optimizer"])
    except ValueError as e:     # other parameter groups: other trainable towers
        raise InvalidConfig(f"{folder}: the checkpoint's optimizer state does not fit this config's model ({e}); "
                            "was it made with another model config (e.g. model.train_text_tower)?") from e
    scheduler.load_state_dict(state["scheduler"])
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"])
    saved = int(state.get("world_size") or 1)           # checkpoints from before it: one process
    if saved != world_size:
        batches = f" (global batch {saved * batch_size} → {world_size * batch_size})" if batch_size else ""
        log.warning("%s was written by a run of %d process%s and this one has %d%s: it continues, but "
                    "not as the original run would have; resume it with %d to continue exactly",
                    folder, saved, "" if saved == 1 else "es", world_size, batches, saved)
    saved_run = dict(state.get("run") or {})
    if run and "lr" in saved_run and saved_run.pop("lr") != run["lr"]:
        log.warning("%s: optim.lr %g is not used; a resumed run keeps the rate of its checkpoint (%g)",
                    folder, run["lr"], state["run"]["lr"])
    changed = [f"{key} {saved_run[key]} → {value}" for key, value in (run or {}).items()
               if key in saved_run and saved_run[key] != value]
    if changed:
        log.warning("%s was written by a run with other settings (%s): it continues, but not as the "
                    "original run would have (other batches, another schedule)", folder, ", ".join(changed))
    return int(state["step"])


#: model config keys that do not shape what is trained: how it runs, written off by save_pretrained,
#: or ``extra`` (a record of how the weights were trained: soundsift-base's figures, this loop's run)
_RUNTIME_MODEL_KEYS = frozenset({"onnx_threads", "aisfx_int8", "sample_rate", "extra"})


def _refuse_another_model_config(folder: Path, model: nn.Module) -> None:
    """InvalidConfig when the checkpoint's ``config.json`` and the model being resumed differ in
    a model setting: one that leaves every tensor's shape as it was (``window_seconds``, a YAMNet
    option) would otherwise continue silently into a model that is neither. Models without a
    ``config.to_dict()`` (or checkpoints without config.json) are not compared; a key the
    checkpoint's config lacks (written before the key existed) counts as its default, where the
    config class has ``from_dict``."""
    config = getattr(model, "config", None)
    to_dict = getattr(config, "to_dict", None)
    saved_file = folder / "config.json"
    if not callable(to_dict) or not saved_file.is_file():
        return
    try:
        saved = json.loads(saved_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InvalidConfig(f"{saved_file}: cannot be read ({e}); remove {folder} to resume from an earlier "
                            "checkpoint") from e
    from_dict = getattr(type(config), "from_dict", None)
    if callable(from_dict) and isinstance(saved, dict):
        try:
            saved = json.loads(json.dumps(from_dict(saved).to_dict()))      # its missing keys as their defaults
        except Exception as e:   # noqa: BLE001 — a config this class refuses is compared as written: it differs
            log.debug("%s: compared as written (this model's config class refuses it: %s)", saved_file, e)
    current = json.loads(json.dumps(to_dict()))      # as config.json holds it (lists, not tuples)
    changed = [f"{key} {saved.get(key)!r} → {current.get(key)!r}" for key in sorted(set(saved) | set(current))
               if key not in _RUNTIME_MODEL_KEYS and saved.get(key) != current.get(key)]
    if changed:
        raise InvalidConfig(f"{folder}: the checkpoint was made with another model config ({', '.join(changed)}); "
                            "resume with the config it was made with, or give another --out")


def run_shape(cfg: TrainConfig, train_items: int) -> dict[str, Any]:
    """What decides a run's batches and schedule, kept in each checkpoint: a --resume with other
    values continues, but not exactly, and is told so."""
    return {"batch_size": cfg.batch_size, "accum_steps": cfg.accum_steps, "seed": cfg.seed, "steps": cfg.steps,
            "warmup_steps": cfg.optim.warmup_steps, "lr": cfg.optim.lr, "train_items": train_items,
            "clip_seconds": cfg.data.clip_seconds}      # other crops: other batches (not kept before session 40)


def record_training(model: Any, cfg: TrainConfig, step: int, train_items: int,
                    started_from: dict[str, Any] | None, data: list[dict[str, Any]] | None = None) -> None:
    """Say in ``model``'s config (``extra["trained"]``, saved in its config.json) how this run
    trained it. A fine-tuned folder kept the record of the model it started from: its
    config.json described soundsift-base's 600 cached-feature steps and held-out figures, not
    the fine-tune. That record (``started_from``, :func:`training_record` of the model before
    the run) is kept inside, and ``validation_clips_trained_on`` stays true where it was (the
    weights descend from a model that heard those clips). ``data`` (:func:`trainer.trained_on.data_record`
    of the config's training sets) says what this run trained on, so ``soundsift eval`` can warn
    on it. A model whose config has no ``extra`` is left as it is."""
    config = getattr(model, "config", None)
    if config is None or not isinstance(getattr(config, "extra", None), dict):
        return
    trained: dict[str, Any] = {"trainer": "loop", "init": cfg.model.init, "steps": step, "seed": cfg.seed,
                               "batch_size": cfg.batch_size * cfg.accum_steps, "train_items": train_items}
    if data:
        trained["data"] = data
    if started_from is not None:
        if started_from.get("validation_clips_trained_on"):
            trained["validation_clips_trained_on"] = True
        trained["started_from"] = started_from
    config.extra = {**config.extra, "trained": trained}


def finished_run(out_dir: str | Path, steps: int) -> TrainResult | None:
    """The result of the run in ``out_dir`` when it has already reached ``steps``: its newest
    checkpoint is there, and its ``model`` folder and ``summary.json`` were written. A
    ``--resume`` of it has nothing to train; it read all its data again and then rewrote the
    model and the summary, whose validation figures, last loss and time became those of a run
    of no steps (null, null, 0.02 s). None when the run is not finished."""
    out = Path(out_dir)
    checkpoint = latest_checkpoint(out)
    model_dir = out / "model"
    if checkpoint is None or not (model_dir / "config.json").is_file():
        return None
    try:
        reached = int(checkpoint.name.removeprefix("step-"))
        summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if reached < steps or not isinstance(summary, dict) or summary.get("steps") != reached:
        return None
    return TrainResult(out, model_dir, reached, 0.0, validation=summary.get("validation"),
                       validated_at=summary.get("validation_step"), resumed_at=reached)


def _read_checkpoint(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A checkpoint's trainable tensors and trainer state; InvalidConfig naming the folder when
    either file cannot be read (cut short by a crash or a full disk)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        weights = load_file(str(folder / TRAINABLE_FILE))
        state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, SafetensorError, EOFError, ValueError, pickle.UnpicklingError) as e:
        earlier = [p.name for p in checkpoint_dirs(folder.parent.parent) if p.name < folder.name]
        hint = (f"remove it to resume from {earlier[-1]}" if earlier
                else "remove it and start again without --resume")
        raise InvalidConfig(f"{folder}: checkpoint cannot be read ({e}); {hint}") from e
    return weights, state


# --------------------------------------------------------------------------- validation

@torch.no_grad()
def embed_dataset(model: TrainableModel, dataset: AudioTextDataset, batch_size: int, device: torch.device
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(audio embeddings, caption embeddings) of a validation set, one caption per item."""
    audio, text = [], []
    for start in range(0, len(dataset), batch_size):
        batch = collate([dataset[i] for i in range(start, min(len(dataset), start + batch_size))])
        audio.append(model.encode_audio(batch["audio"].to(device)).float().cpu().numpy())
        text.append(model.encode_text(batch["text"]).float().cpu().numpy())
    return np.concatenate(audio), np.concatenate(text)


@torch.no_grad()
def validate(model: TrainableModel, dataset: AudioTextDataset, *, batch_size: int = 32,
             device: torch.device | str = "cpu", prompt: str = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """T2A/A2T R@1/5/10 and mAP@10 on the captions, and zero-shot accuracy when items have tags.

    Each item is embedded with its first caption. Items sharing a caption text (compared by
    :func:`trainer.evaluation.metrics.caption_key`) are relevant to each other: a caption query's
    relevant audios are every item that has that caption among its captions, an item's relevant
    texts are every embedded caption equal to one of its captions (as ``soundsift eval
    retrieval``); with distinct captions, each item's own caption only.

    Zero-shot classes are the distinct first tags, case folded as the evaluator reads labels; each
    class is the prompt with its label (:func:`engine.zeroshot.class_prompts`, as tagging and the
    evaluator fill it).
    """
    from trainer.evaluation.datasets import label_key
    from trainer.evaluation.metrics import retrieval_metrics, zeroshot_metrics
    device = torch.device(device)
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        audio, text = embed_dataset(model, dataset, batch_size, device)
        items = dataset.items
        out: dict[str, Any] = retrieval_metrics(audio, text, list(range(len(dataset))),
                                                captions=[item.caption(None) for item in items],
                                                audio_captions=[item.captions for item in items])
        tagged = [i for i, item in enumerate(dataset.items) if item.tags]
        keys, labels = _zero_shot_classes([dataset.items[i].tags[0] for i in tagged])
        if len(labels) >= 2:
            class_emb = model.encode_text(class_prompts(labels, prompt)).float().cpu().numpy()
            targets = [keys.index(label_key(dataset.items[i].tags[0])) for i in tagged]
            zs = zeroshot_metrics(audio[tagged], class_emb, targets, labels)
            out["zeroshot"] = {"top1": zs["top1"], "top5": zs["top5"], "n": zs["n"], "classes": len(labels)}
        out["n"] = len(dataset)
        return out
    finally:
        model.train(was_training)


def _zero_shot_classes(first_tags: Sequence[str]) -> tuple[list[str], list[str]]:
    """(class keys, class names) of the items' first tags: tags that differ only in case or
    underscores are one class, named by their first spelling, as ``soundsift eval zeroshot``
    reads labels ("Dog" and "dog" as two classes would tie and both rank pessimistically)."""
    from trainer.evaluation.datasets import label_key
    names: dict[str, str] = {}
    for tag in first_tags:
        names.setdefault(label_key(tag), tag)
    keys = sorted(names)
    return keys, [names[k] for k in keys]


def format_metrics(metrics: dict[str, Any]) -> str:
    """One line: R@1/R@5/mAP@10 both ways and zero-shot top-1."""
    parts = []
    for d in ("t2a", "a2t"):
        if d in metrics:
            parts.append(f"{d} R@1 {metrics[d]['R@1']:.3f} R@5 {metrics[d]['R@5']:.3f} "
                         f"mAP@10 {metrics[d]['mAP@10']:.3f}")
    if "zeroshot" in metrics:
        parts.append(f"zero-shot top1 {metrics['zeroshot']['top1']:.3f}")
    return "; ".join(parts)


# --------------------------------------------------------------------------- training

class _JsonlLog:
    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled

    def write(self, **record: Any) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def _set_aside_log_of_a_run_that_kept_nothing(jlog: _JsonlLog) -> None:
    """A run starting at step 0 where ``log.jsonl`` exists follows one that ended before its
    first checkpoint (a run with checkpoints is refused or resumed): its log is renamed
    ``log.abandoned.jsonl`` (replacing an older one), so the log holds this run's events only."""
    if not jlog.enabled or not jlog.path.is_file():
        return
    aside = jlog.path.with_name("log.abandoned.jsonl")
    jlog.path.replace(aside)
    log.info("%s held the log of a run that kept no checkpoint: moved to %s", jlog.path, aside.name)


class RankSlice:
    """Under torch.distributed: each global batch of ``world × B`` keys, this rank's ``B``."""

    def __init__(self, sampler: EpochBatchSampler, rank: int, world: int) -> None:
        self.sampler, self.rank, self.world = sampler, rank, world

    def __iter__(self):
        for batch in self.sampler:
            per = len(batch) // self.world
            yield batch[self.rank * per:(self.rank + 1) * per]


def _average_gradients(params: list[torch.Tensor], world: int) -> None:
    """Mean of the ranks' gradients (what DDP does; the model's encode_* bypass DDP's forward)."""
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        torch.distributed.all_reduce(p.grad)
        p.grad.div_(world)


class _StopRequest:
    """A request to stop while training, honoured after the step under way (checkpointed, so
    --resume continues exactly).

    One process: Ctrl-C (SIGINT) asks for it; a second Ctrl-C stops at once, as Ctrl-C does.
    Several processes (torch.distributed, e.g. torchrun): SIGINT or SIGTERM to any rank asks for
    it; torchrun forwards the one it gets to every worker, and a terminal's Ctrl-C reaches each
    worker both directly and through torchrun, so a repeated signal changes nothing here
    (torchrun kills the workers after its ``--shutdown-timeout``, 30 s). The ranks agree after
    every step (:meth:`agreed`), so all stop at the same step.

    Installed only in the main thread, and only over the signals' default handlers; a stop of
    several processes leaves it installed, as they are about to exit."""

    def __init__(self, world: int = 1) -> None:
        self.world = world
        defaults = {signal.SIGINT: signal.default_int_handler}
        if world > 1:
            defaults[signal.SIGTERM] = signal.SIG_DFL
        main = threading.current_thread() is threading.main_thread()
        self.signals = [sig for sig, default in defaults.items() if main and signal.getsignal(sig) is default]
        self.requested = False              # this process was asked to stop
        self.stopping = False               # the ranks agreed to stop (any rank was asked)
        self.cause: str | None = None       # the signal this process got first ("Ctrl-C", "SIGTERM")
        self._pid = os.getpid()

    def _handle(self, signum: int, frame: Any) -> None:
        if signum != signal.SIGINT and os.getpid() != self._pid:
            signal.signal(signum, signal.SIG_DFL)       # a forked DataLoader worker: SIGTERM ends it
            os.kill(os.getpid(), signum)
            return
        if self.requested or self.stopping:
            if self.world == 1:
                raise KeyboardInterrupt
            log.debug("%s again: already stopping", signal.Signals(signum).name)
            return
        self.requested = True
        self.cause = "Ctrl-C" if signum == signal.SIGINT and self.world == 1 else signal.Signals(signum).name
        if self.world == 1:
            log.warning("Ctrl-C: stopping after this step with a checkpoint (Ctrl-C again to stop at once)")
        else:
            log.warning("%s: stopping after this step with the other ranks, with a checkpoint", self.cause)

    def agreed(self, device: torch.device) -> bool:
        """Whether to stop after this step: this process was asked to, or (several processes)
        any rank was. Under torch.distributed every rank calls it once per step."""
        if self.world == 1:
            self.stopping = self.requested
        else:
            flag = torch.tensor([1.0 if self.requested else 0.0], device=device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            self.stopping = bool(flag.item())
        return self.stopping

    def __enter__(self) -> "_StopRequest":
        for sig in self.signals:
            signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.world > 1 and (self.stopping or self.requested):
            return      # kept while the stopped ranks meet and exit: torchrun signals them too, maybe late
        for sig in self.signals:
            signal.signal(sig, signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL)


def _validate_or_say(model: nn.Module, val_set: AudioTextDataset, cfg: TrainConfig, device: torch.device,
                     step: int, jlog: _JsonlLog) -> tuple[dict[str, Any] | None, str | None]:
    """Validate at ``step`` and log it; returns ``(figures, None)``, or ``(None, cause)`` when
    the validation failed. A validation file that fails to decode skips this validation with a
    warning naming it (no cause); any other error (a bad batch, out of memory) is a warning and a
    ``validation_failed`` log event naming it, and training goes on: the run is not lost."""
    try:
        validation = validate(model, val_set, batch_size=cfg.val_batch_size, device=device,
                              prompt=cfg.zeroshot_prompt)
    except UnreadableAudio as e:
        log.warning("step %d: validation skipped, %s", step, e)
        jlog.write(event="validation_skipped", step=step, reason=str(e))
        return None, None
    except Exception as e:      # noqa: BLE001 - said and logged; the trained steps must not be lost to it
        cause = f"{type(e).__name__}: {e}"
        log.warning("step %d: validation failed (%s); training goes on", step, cause,
                    exc_info=log.isEnabledFor(logging.DEBUG))
        jlog.write(event="validation_failed", step=step, reason=cause)
        return None, cause
    jlog.write(event="validation", step=step, **validation)
    log.info("step %d validation: %s", step, format_metrics(validation))
    return validation, None


def _validate_at_start(model: nn.Module, val_set: AudioTextDataset, cfg: TrainConfig, device: torch.device,
                       jlog: _JsonlLog) -> tuple[dict[str, Any] | None, str | None]:
    """Validate the model as it starts (step 0, before the first update; ``validate_at_start``),
    so a fine-tune's log holds its start's figures beside its own. The random states are kept as
    they were, so the steps that follow are those of a run without it."""
    import random
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        python_state, numpy_state = random.getstate(), np.random.get_state()
        try:
            return _validate_or_say(model, val_set, cfg, device, 0, jlog)
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def _seed_everything(seed: int) -> None:
    import random
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def fit(model: nn.Module, train_set: AudioTextDataset, cfg: TrainConfig, *,
        val_set: AudioTextDataset | None = None, out_dir: str | Path | None = None,
        resume: bool = False, max_steps: int | None = None) -> TrainResult:
    """Train ``model`` on ``train_set`` for ``cfg.steps`` optimizer steps.

    ``max_steps`` stops this process early (after that many total steps) while keeping the
    schedule of ``cfg.steps``: a checkpoint is written there, as when a session ends.

    Under ``torchrun`` (a process group already initialised), each rank takes its share of
    a global batch of ``world_size × batch_size``, features are gathered across ranks in
    the loss, gradients are averaged, and rank 0 alone logs, validates and checkpoints.
    """
    out = Path(out_dir or cfg.out_dir)
    refuse_earlier_run(out, resume)
    done = finished_run(out, cfg.steps) if resume else None
    if done is not None:
        log.info("%s: the run had reached its step %d; nothing left to train (its model and summary kept)",
                 out, done.steps)
        return done
    rank, world = rank_and_world()
    check_batch_size(len(train_set), cfg.batch_size, world)     # before anything is written to out
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.device)
    if device.type == "cuda" and world > 1 and device.index is None:
        device = torch.device("cuda", local_device_index(rank))
    _seed_everything(cfg.seed)
    started_from = training_record(model)       # the start's record, kept inside this run's
    trained_data = data_record(cfg.data.train) if rank == 0 else None     # what it trains on, for eval's warning
    model.to(device).train()
    optimizer = torch.optim.AdamW(param_groups(model, cfg.optim.weight_decay), lr=cfg.optim.lr,
                                  betas=cfg.optim.betas, eps=cfg.optim.eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, cfg.optim.warmup_steps, cfg.steps, cfg.optim.min_lr_ratio))
    use_amp = cfg.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    loss_fn = ContrastiveLoss()
    jlog = _JsonlLog(out / "log.jsonl", enabled=rank == 0)

    step = 0
    if resume:
        ckpt = latest_checkpoint(out)
        if ckpt is None:
            log.warning("--resume: no checkpoint under %s; starting from step 0", out / "checkpoints")
        else:
            step = load_checkpoint(ckpt, model, optimizer, scheduler, scaler, world, cfg.batch_size,
                                   run_shape(cfg, len(train_set)))
            log.info("resumed from %s (step %d)", ckpt, step)
            jlog.write(event="resume", step=step, checkpoint=str(ckpt))
    if step == 0:
        _set_aside_log_of_a_run_that_kept_nothing(jlog)
        jlog.write(event="start", config=cfg.to_dict(), train_items=len(train_set),
                   val_items=len(val_set) if val_set is not None else 0, device=str(device))

    resumed_at = step
    stop = min(cfg.steps, max_steps) if max_steps is not None else cfg.steps
    validation: dict[str, Any] | None = None
    validated_at: int | None = None
    if step == 0 and rank == 0 and val_set is not None and cfg.validates_at_start():
        validation, _ = _validate_at_start(model, val_set, cfg, device, jlog)
        validated_at = 0 if validation else None
    sampler: Any = EpochBatchSampler(len(train_set), cfg.batch_size * world, cfg.seed,
                                     start_batch=step * cfg.accum_steps)
    if world > 1:
        sampler = RankSlice(sampler, rank, world)
    loader = torch.utils.data.DataLoader(
        train_set, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.data.num_workers,
        persistent_workers=False, pin_memory=device.type == "cuda",
        # its own generator: starting the loader must not draw from the global RNG that
        # dropout and fusion crops use, or a resumed run would drift from the original
        generator=torch.Generator().manual_seed(cfg.seed))
    trainable = [p for g in optimizer.param_groups for p in g["params"]]
    losses: list[float] = []
    validation_error: str | None = None
    interrupted = False
    started = time.perf_counter()

    from tqdm.auto import tqdm
    bar = tqdm(total=stop, initial=step, desc="train", unit="step",
               disable=not cfg.shows_progress() or rank != 0, dynamic_ncols=True)
    stop_request = _StopRequest(world)
    batches = None
    try:
        stop_request.__enter__()       # before the workers fork, so that they inherit it
        batches = iter(loader)
        while step < stop:
            t0 = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            step_loss = 0.0
            for _ in range(cfg.accum_steps):
                batch = next(batches)
                audio = batch["audio"].to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                    a = model.encode_audio(audio)
                    t = model.encode_text(batch["text"])
                    loss = loss_fn(a, t, model.logit_scale) / cfg.accum_steps
                (scaler.scale(loss) if scaler is not None else loss).backward()
                step_loss += float(loss.detach())
            if not math.isfinite(step_loss):
                raise FloatingPointError(f"loss became {step_loss} at step {step + 1}; lower optim.lr "
                                         "or set optim.grad_clip")
            if world > 1:
                _average_gradients(trainable, world)
            if scaler is not None:
                scaler.unscale_(optimizer)
            grad_norm = (float(torch.nn.utils.clip_grad_norm_(trainable, cfg.optim.grad_clip))
                         if cfg.optim.grad_clip else float("nan"))
            step_lr = optimizer.param_groups[0]["lr"]      # what this step used (the log says it, not the next)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0.0, MAX_LOG_SCALE)
            step += 1
            losses.append(step_loss)
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.4f}")
            if cfg.log_every and (step % cfg.log_every == 0 or step == stop):
                jlog.write(event="step", step=step, loss=step_loss, lr=step_lr,
                           logit_scale=float(model.logit_scale.detach().exp()), grad_norm=grad_norm,
                           seconds=time.perf_counter() - t0)
            stopping = stop_request.agreed(device)          # every rank, every step: the same answer
            if step == stop or stopping or (cfg.checkpoint_every and step % cfg.checkpoint_every == 0):
                if rank == 0:       # before validation, which must not lose the steps if it fails
                    record_training(model, cfg, step, len(train_set), started_from, trained_data)
                    save_checkpoint(out, step, model, optimizer, scheduler, scaler, cfg.keep_checkpoints, world,
                                    run_shape(cfg, len(train_set)))
                if world > 1:
                    torch.distributed.barrier()
            if rank == 0 and val_set is not None and (step == cfg.steps or (cfg.val_every and step % cfg.val_every == 0)):
                figures, failed = _validate_or_say(model, val_set, cfg, device, step, jlog)
                if figures:
                    validation, validated_at = figures, step
                validation_error = failed if step == cfg.steps else None
            if stopping and step < stop:
                interrupted = True
                cause = stop_request.cause or "another rank's signal"
                jlog.write(event="interrupted", step=step)
                log.warning("stopped by %s at step %d (checkpointed); --resume continues from there", cause, step)
                break
    finally:
        stop_request.__exit__()
        bar.close()
        del batches, loader

    model_dir = out / "model"
    seconds = time.perf_counter() - started
    if step >= cfg.steps and rank == 0:
        tmp = out / ".model.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        record_training(model, cfg, step, len(train_set), started_from, trained_data)
        save_model(model, tmp)
        shutil.rmtree(model_dir, ignore_errors=True)
        tmp.rename(model_dir)
        summary = {"steps": step, "seconds": seconds, "last_loss": losses[-1] if losses else None,
                   "validation": validation, "validation_step": validated_at, "model_dir": str(model_dir)}
        if validation_error:
            summary["validation_error"] = validation_error
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        jlog.write(event="end", step=step, seconds=seconds, model_dir=str(model_dir))
    if world > 1:   # every rank returns once rank 0's model folder is complete
        torch.distributed.barrier()
    return TrainResult(out, model_dir, step, seconds, losses, validation, interrupted, validation_error,
                       validated_at, resumed_at)
