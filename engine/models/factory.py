"""One factory for every model: ``load_model(name_or_path) -> AudioTextModel``.

Resolution order:
  1. a bundled model name (``soundsift-base``, ``soundsift-fast``) → its folder inside this package;
  2. an existing local folder → its ``config.json`` says which backend reads it
     (``"model_type": "clap"`` → Hugging Face CLAP, ``"model_type": "soundsift-clap"``
     → soundsift's own CLAP);
  3. anything shaped like a hub id (``laion/clap-htsat-unfused``) → Hugging Face CLAP,
     downloaded by transformers on a connected machine.
"""
from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

from engine.errors import ModelUnavailable
from engine.models.base import AudioTextModel

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "soundsift-base"

#: bundled model name → folder holding config.json + model.safetensors. soundsift-fast is the
#: same recipe without the aisfx branch: YAMNet alone at 16 kHz, about 4× faster (4.0× measured since soundsift-base's
#: aisfx CNN runs in int8; 8.5–12.6× before), less accurate.
BUNDLED: dict[str, Path] = {name: WEIGHTS_DIR / name for name in ("soundsift-base", "soundsift-fast")}

#: config.json "model_type" → "module:callable(path_or_id, name=...)" building the model
BACKENDS: dict[str, str] = {
    "clap": "engine.models.hf_clap:HFClapModel.load",
    "soundsift-clap": "engine.models.soundsift_clap:SoundsiftClapModel.load",
}

#: config.json "model_type" → the builder :func:`load_model` uses with ``text_only``: a model
#: whose text vectors need no torch (the same vectors; audio loads the full model on first use)
TEXT_BACKENDS: dict[str, str] = {
    "soundsift-clap": "engine.models.soundsift_text:SoundsiftTextModel.load",
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _backend(model_type: str, text_only: bool = False):
    try:
        target = TEXT_BACKENDS.get(model_type) if text_only else None
        target = target or BACKENDS[model_type]
    except KeyError:
        raise ModelUnavailable(
            f"unknown model_type {model_type!r} in config.json; "
            f"known: {', '.join(sorted(BACKENDS))}") from None
    module_name, _, attr = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def model_type_of(folder: str | Path) -> str:
    """The ``model_type`` the model folder ``folder``'s config.json names ("" when it names none):
    which backend reads the folder (:data:`BACKENDS`). OSError when config.json cannot be read;
    ModelUnavailable, naming the file, when it is not a JSON object."""
    config_path = Path(folder) / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except ValueError as e:         # not JSON, or not UTF-8 text
        raise ModelUnavailable(f"{config_path}: not valid JSON ({e})") from e
    if not isinstance(config, dict):
        raise ModelUnavailable(f"{config_path}: not a JSON object of model settings")
    return str(config.get("model_type", ""))


def load_model(name_or_path: str | Path | None = None, *, text_only: bool = False) -> AudioTextModel:
    """Build the model named by ``name_or_path`` (default: ``soundsift-base``).

    ``text_only``: for a one-shot command that embeds text and reads stored audio vectors; where
    the backend has one (:data:`TEXT_BACKENDS`), a model that makes the same text vectors without
    importing torch, and builds the full model only if it is given audio."""
    name = str(name_or_path) if name_or_path is not None else DEFAULT_MODEL
    if not name.strip():
        raise ModelUnavailable(
            f"the model name is empty: use {', '.join(map(repr, BUNDLED))}, a local folder with config.json, "
            "or a Hugging Face CLAP id (None: the default, soundsift-base)")
    if name.strip() in BUNDLED:        # " soundsift-fast" from a config file is the bundled model
        name = name.strip()
    folder = BUNDLED.get(name)
    if folder is not None and not (folder / "config.json").is_file():
        raise ModelUnavailable(
            f"bundled model {name!r} is missing its weights at {folder}; "
            "reinstall soundsift or pass --model with a local folder or a laion/* id")
    if folder is None:
        candidate = Path(name).expanduser()
        if candidate.is_dir():
            folder = candidate
        elif candidate.exists():
            raise ModelUnavailable(f"{name}: not a model folder (expected a directory with config.json)")
    if folder is not None:
        config_path = folder / "config.json"
        if not config_path.is_file():
            raise ModelUnavailable(f"{folder}: no config.json; a model folder needs config.json and its weights")
        return _backend(model_type_of(folder), text_only)(str(folder), name=name)
    if _HUB_ID.match(name):
        return _backend("clap")(name, name=name)
    raise ModelUnavailable(
        f"model {name!r} not found: use {', '.join(map(repr, BUNDLED))}, a local folder with config.json, "
        "or a Hugging Face CLAP id such as laion/clap-htsat-unfused")
